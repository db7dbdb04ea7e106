"""File store specifics: restart with and without the index snapshot, segment compaction,
bounded memory, and the three sync policies."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from pynats.jetstream.store import FileStore, MessageNotFound, StoreConfig, SyncMode, SyncPolicy
from pynats.jetstream.store.snapshot import SNAPSHOT_NAME

CFG = StoreConfig(name="S")


def segments(path):
    return sorted(n for n in os.listdir(path) if n.startswith("seg-"))


def crash_image(store, tmp_path, name="crash"):
    """What the disk holds if the process died right now (after an explicit sync)."""
    store.sync()
    image = tmp_path / name
    shutil.copytree(store.directory, image)
    return str(image)


def contents(store):
    return {s: store.load_msg(s) for s in range(1, store.last_seq + 1) if store._index.is_live(s)}


def test_restart_without_snapshot_rebuilds_the_same_index(tmp_path):
    store = FileStore(str(tmp_path / "m"), CFG, segment_bytes=2048)
    for i in range(500):
        store.store_msg(f"s.{i % 13}", b"NATS/1.0\r\n\r\n" if i % 5 == 0 else None, b"%d" % i)
    for seq in (3, 100, 250):
        store.remove_msg(seq)
    store.purge(subject="s.4", keep=3)
    image = crash_image(store, tmp_path)
    expected_state, expected = store.state(deleted_details=True), contents(store)
    store.stop()
    assert not os.path.exists(os.path.join(image, SNAPSHOT_NAME))
    recovered = FileStore(image, CFG, segment_bytes=2048)
    assert recovered.state(deleted_details=True) == expected_state
    assert contents(recovered) == expected
    assert recovered.subjects_state() == store.subjects_state()
    assert recovered.damage() == []
    recovered.stop()


def test_snapshot_is_used_on_clean_restart_and_ignored_when_stale(tmp_path):
    path = str(tmp_path / "m")
    store = FileStore(path, CFG)
    for i in range(50):
        store.store_msg("a", None, b"%d" % i)
    store.stop()
    snap = os.path.join(path, SNAPSHOT_NAME)
    old_snapshot = Path(snap).read_bytes()
    store = FileStore(path, CFG)
    assert store.state().msgs == 50
    store.store_msg("a", None, b"after the snapshot")
    store.remove_msg(1)
    image = crash_image(store, tmp_path)
    store.stop()
    with open(os.path.join(image, SNAPSHOT_NAME), "wb") as f:
        f.write(old_snapshot)  # a snapshot older than the log must not be believed
    recovered = FileStore(image, CFG)
    assert recovered.state().msgs == 50
    assert recovered.load_msg(51).data == b"after the snapshot"
    with pytest.raises(MessageNotFound):
        recovered.load_msg(1)
    recovered.stop()


def test_emptied_segments_are_removed_and_tombstones_carried_forward(tmp_path):
    path = str(tmp_path / "m")
    store = FileStore(path, CFG, segment_bytes=1024)
    for i in range(200):
        store.store_msg("keep" if i < 10 else f"drop.{i}", None, b"x" * 20)
    many = len(segments(path))
    store.remove_msg(2)  # a tombstone for the oldest segment, written into a later one
    store.purge(subject="drop.>")
    store.store_msg("keep", None, b"new")
    store.sync()
    assert len(segments(path)) < many / 2
    image = crash_image(store, tmp_path)
    recovered = FileStore(image, CFG, segment_bytes=1024)
    assert recovered.subjects_state() == {"keep": 10}
    with pytest.raises(MessageNotFound):
        recovered.load_msg(2)
    recovered.stop()
    store.stop()


def test_full_purge_leaves_one_segment_and_keeps_the_sequence(tmp_path):
    path = str(tmp_path / "m")
    store = FileStore(path, CFG, segment_bytes=1024)
    for _ in range(100):
        store.store_msg("a", None, b"x" * 50)
    store.purge()
    store.sync()
    assert len(segments(path)) == 1
    image = crash_image(store, tmp_path)
    recovered = FileStore(image, CFG)
    assert (recovered.state().first_seq, recovered.state().last_seq) == (101, 100)
    recovered.stop()
    store.stop()


def test_payloads_are_not_kept_in_memory_beyond_the_cache(tmp_path):
    store = FileStore(str(tmp_path / "m"), CFG, cache_bytes=64 * 1024)
    for _ in range(2000):
        store.store_msg("big", None, os.urandom(1024))
    assert store._cache_bytes <= 64 * 1024
    assert len(store._cache) < 100
    assert len(store.load_msg(1).data) == 1024
    store.stop()


def _publish_concurrently(store, publishers, per_publisher):
    """Many publishers, each waiting for its ack before publishing again."""

    async def publisher(n):
        loop = asyncio.get_running_loop()
        for i in range(per_publisher):
            store.store_msg(f"p.{n}", None, b"%d" % i)
            acked = loop.create_future()
            store.when_durable(lambda err, f=acked: f.set_result(err))
            assert await acked is None

    async def main():
        await asyncio.gather(*(publisher(n) for n in range(publishers)))

    return main


def test_group_commit_covers_many_publishers_with_few_fsyncs(tmp_path):
    async def run():
        store = FileStore(str(tmp_path / "m"), CFG)
        await _publish_concurrently(store, 50, 20)()
        rounds = store.sync_rounds
        store.stop()
        return rounds

    rounds = asyncio.run(run())
    assert rounds < 1000 / 5, "group commit should cover many acks per fsync"


def test_always_mode_is_group_commit_too(tmp_path):
    """`sync_interval: always` keeps fsync-before-ack with one fsync for many acks, not one
    fsync per message on the loop thread."""

    async def run():
        store = FileStore(str(tmp_path / "m"), CFG, SyncPolicy.parse("always"))
        await _publish_concurrently(store, 50, 20)()
        rounds = store.sync_rounds
        store.stop()
        return rounds

    rounds = asyncio.run(run())
    assert rounds < 1000 / 5, "always should cover many acks per fsync"


def test_interval_mode_acks_before_fsync_and_always_mode_fsyncs_each_write_without_a_loop(
    tmp_path,
):
    lazy = FileStore(str(tmp_path / "lazy"), CFG, SyncPolicy.parse("2m"))
    assert lazy.sync_policy.mode is SyncMode.INTERVAL
    lazy.store_msg("a", None, b"x")
    acked = []
    lazy.when_durable(acked.append)
    assert acked == [None] and lazy.sync_rounds == 0
    lazy.stop()
    always = FileStore(str(tmp_path / "always"), CFG, SyncPolicy.parse("always"))
    start = always.sync_rounds
    for _ in range(5):
        always.store_msg("a", None, b"x")
    assert always.sync_rounds - start == 5
    always.stop()


def test_sync_policy_parsing():
    assert SyncPolicy.parse(None).mode is SyncMode.GROUP
    assert SyncPolicy.parse("always").mode is SyncMode.ALWAYS
    assert SyncPolicy.parse("1m30s").interval_ns == 90 * 10**9
    assert SyncPolicy.parse(5_000).interval_ns == 5_000
    with pytest.raises(ValueError):
        SyncPolicy.parse("soon")
