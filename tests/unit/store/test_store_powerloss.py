"""Power cuts at every fsync boundary (and torn writes after it), on a disk rebuilt from the
recorded file-I/O history: every acknowledged record and config survives, nothing else is
served as if it were a message that was never written. In both sync modes that promise it:
the default (group commit) and `always` (`sync_interval: always`, group commit as well); the
lazy `interval` mode acknowledges before the fsync and promises nothing of the kind.

The default mode runs once more with the stores encrypted (store/crypt.py, the recorded
`FileIO` under the encrypting one): the same promise holds.

PYNATS_STORE_POWERLOSS_SEEDS (default 2) runs more randomised histories."""

from __future__ import annotations

import asyncio
import os
import random

import pytest
from tests.support.powerloss import RecordingFileIO, acked_notes, fsync_points, rebuild

from pynats.jetstream.store import (
    DEFAULT_FILEIO,
    ConsumerStore,
    FileIO,
    FileStore,
    MessageNotFound,
    StoreConfig,
    SyncPolicy,
    read_file,
    write_durable,
)
from pynats.jetstream.store.crypt import EncryptedFileIO, Keyring

SEEDS = int(os.environ.get("PYNATS_STORE_POWERLOSS_SEEDS", "2"))
CFG = StoreConfig(name="S")
MAX_CUTS = 80
POWER_SAFE_MODES = ["group", "always"]
KEYRING = Keyring("power-loss-key")


def policy_for(mode: str) -> SyncPolicy:
    return SyncPolicy.parse(None if mode == "group" else mode)


def data_for(seq: int) -> bytes:
    return b"payload-%d-" % seq + bytes([seq % 251]) * (seq % 40)


async def workload(
    root: str, fileio: RecordingFileIO, rng: random.Random, policy: SyncPolicy, encrypted=False
) -> None:
    """Concurrent publishers, deletes, a purge, consumer acks and a config write."""
    io: FileIO = EncryptedFileIO(KEYRING, fileio) if encrypted else fileio
    write_durable(os.path.join(root, "stream", "config.json"), b'{"name":"S"}', io)
    fileio.mark(("config", "stream"))
    store = FileStore(
        os.path.join(root, "stream", "msgs"), CFG, policy, fileio=io, segment_bytes=1500
    )
    consumer = ConsumerStore(
        os.path.join(root, "stream", "c1"), policy, fileio=io, compact_bytes=600
    )
    loop = asyncio.get_running_loop()

    async def durable(s) -> None:
        fut = loop.create_future()
        s.when_durable(lambda err: fut.set_result(err))
        assert await fut is None

    async def publisher(n: int) -> None:
        for _ in range(rng.randint(5, 15)):
            seq, _ = store.store_msg(f"p.{n}", None, data_for(store.last_seq + 1))
            await durable(store)
            fileio.mark(("msg", seq))
            if rng.random() < 0.15:
                victim = rng.randint(1, seq)
                fileio.mark(("delete-requested", victim))
                if store.remove_msg(victim):
                    await durable(store)
                    fileio.mark(("del", victim))
            if rng.random() < 0.3:
                consumer.update_delivered(seq, seq, 1, 0)
                consumer.update_acks(seq, seq)
                await durable(consumer)
                fileio.mark(("ack", seq))

    await asyncio.gather(*(publisher(n) for n in range(8)))
    purged_below = store.last_seq // 3
    fileio.mark(("purge-requested", purged_below))
    store.purge(seq=purged_below)
    await durable(store)
    fileio.mark(("purge", purged_below))
    await asyncio.gather(*(publisher(n) for n in range(3)))
    store.stop()
    consumer.stop()


def verify(dest: str, notes: list, io: FileIO = DEFAULT_FILEIO) -> None:
    acked = {n[1] for n in notes if n[0] == "msg"}
    deleted = {n[1] for n in notes if n[0] == "del"}
    may_be_deleted = {n[1] for n in notes if n[0] == "delete-requested"}
    purged_below = max((n[1] for n in notes if n[0] == "purge"), default=0)
    may_be_purged_below = max((n[1] for n in notes if n[0] == "purge-requested"), default=0)
    acks = {n[1] for n in notes if n[0] == "ack"}
    stream_dir = os.path.join(dest, "stream")
    if any(n[0] == "config" for n in notes):
        assert read_file(os.path.join(stream_dir, "config.json"), io) == b'{"name":"S"}'
    if not os.path.isdir(os.path.join(stream_dir, "msgs")):
        assert not acked, "acked messages but the store directory is gone"
        return
    store = FileStore(os.path.join(stream_dir, "msgs"), CFG, fileio=io)
    try:
        for seq in acked - may_be_deleted:
            if seq < may_be_purged_below:
                continue
            assert store.load_msg(seq).data == data_for(seq), f"acked message {seq} lost"
        for seq in deleted | set(range(1, purged_below)):
            with pytest.raises(MessageNotFound):
                store.load_msg(seq)
        for seq in range(1, store.last_seq + 1):
            try:
                msg = store.load_msg(seq)
            except MessageNotFound:
                continue
            assert msg.data == data_for(seq), f"garbage served at {seq}"
        assert store.last_seq >= max(acked, default=0)
    finally:
        store.stop()
    if acks:
        consumer = ConsumerStore(os.path.join(stream_dir, "c1"), fileio=io)
        try:
            state = consumer.state
            for seq in acks:
                assert seq not in state.pending and seq <= state.ack_floor.stream_seq, (
                    f"confirmed ack of {seq} lost"
                )
        finally:
            consumer.stop()


@pytest.mark.parametrize("mode", [*POWER_SAFE_MODES, "group-encrypted"])
@pytest.mark.parametrize("seed", range(SEEDS))
def test_every_acknowledged_write_survives_a_power_cut(tmp_path, seed, mode):
    root = tmp_path / "live"
    root.mkdir()
    fileio = RecordingFileIO(str(root))
    rng = random.Random(seed)
    encrypted = mode.endswith("-encrypted")
    mode = mode.removesuffix("-encrypted")
    io: FileIO = EncryptedFileIO(KEYRING) if encrypted else DEFAULT_FILEIO
    asyncio.run(workload(str(root), fileio, rng, policy_for(mode), encrypted))
    history = fileio.history
    cuts = fsync_points(history)
    assert len(cuts) > 20, "the workload should make many fsync rounds"
    if len(cuts) > MAX_CUTS:
        cuts = sorted(rng.sample(cuts, MAX_CUTS))
    for i, cut in enumerate(cuts):
        for tear in (None, random.Random(seed * 1000 + i)):
            dest = tmp_path / f"cut{i}-{'torn' if tear else 'clean'}"
            dest.mkdir()
            rebuild(fileio.baseline, history, cut, str(dest), tear)
            verify(str(dest), acked_notes(history, cut), io)


def test_a_write_without_fsync_is_lost_in_the_model(tmp_path):
    """The power-cut model itself: unsynced bytes and unsynced names do not survive."""
    root = tmp_path / "live"
    root.mkdir()
    fileio = RecordingFileIO(str(root))
    fd = fileio.open(str(root / "f"))
    fileio.pwrite(fd, b"durable", 0)
    fileio.fsync(fd)
    fileio.fsync_dir(str(root))
    fileio.pwrite(fd, b"-volatile", 7)
    fd2 = fileio.open(str(root / "g"))
    fileio.pwrite(fd2, b"x", 0)
    fileio.fsync(fd2)  # data synced, but the name never was
    fileio.close(fd)
    fileio.close(fd2)
    dest = tmp_path / "after"
    dest.mkdir()
    rebuild(fileio.baseline, fileio.history, len(fileio.history), str(dest))
    assert (dest / "f").read_bytes() == b"durable"
    assert not (dest / "g").exists()


async def batch_workload(
    root: str, fileio: RecordingFileIO, rng: random.Random, policy: SyncPolicy
) -> None:
    """Single messages and atomic batches of 2-40 messages, some of them past a segment."""
    store = FileStore(os.path.join(root, "msgs"), CFG, policy, fileio=fileio, segment_bytes=2500)
    loop = asyncio.get_running_loop()
    for _ in range(40):
        if rng.random() < 0.3:
            seq, _ = store.store_msg("single", None, data_for(store.last_seq + 1))
            batch = (seq, seq)
        else:
            first = store.last_seq + 1
            n = rng.randint(2, 40)
            fileio.mark(("batch-requested", first, first + n - 1))
            stored = store.store_batch(
                [(f"b.{i % 4}", None, data_for(first + i), 0) for i in range(n)]
            )
            batch = (stored[0][0], stored[-1][0])
        fut = loop.create_future()
        store.when_durable(lambda err, fut=fut: fut.set_result(err))
        assert await fut is None
        fileio.mark(("acked", *batch))
    store.stop()


def verify_batches(dest: str, notes: list) -> None:
    acked = [n[1:] for n in notes if n[0] == "acked"]
    requested = [n[1:] for n in notes if n[0] == "batch-requested"]
    if not os.path.isdir(os.path.join(dest, "msgs")):
        assert not acked
        return
    store = FileStore(os.path.join(dest, "msgs"), CFG)
    try:
        present = set()
        for seq in range(1, store.last_seq + 1):
            try:
                assert store.load_msg(seq).data == data_for(seq), f"garbage served at {seq}"
                present.add(seq)
            except MessageNotFound:
                pass
        for first, last in acked:
            assert set(range(first, last + 1)) <= present, f"acked {first}..{last} lost"
        for first, last in requested:
            got = present & set(range(first, last + 1))
            assert not got or len(got) == last - first + 1, f"part of batch {first}..{last}"
    finally:
        store.stop()


@pytest.mark.parametrize("mode", POWER_SAFE_MODES)
@pytest.mark.parametrize("seed", range(SEEDS))
def test_a_power_cut_keeps_each_batch_whole_or_drops_it(tmp_path, seed, mode):
    root = tmp_path / "live"
    root.mkdir()
    fileio = RecordingFileIO(str(root))
    rng = random.Random(seed)
    asyncio.run(batch_workload(str(root), fileio, rng, policy_for(mode)))
    history = fileio.history
    cuts = fsync_points(history)
    if len(cuts) > MAX_CUTS:
        cuts = sorted(rng.sample(cuts, MAX_CUTS))
    for i, cut in enumerate(cuts):
        for tear in (None, random.Random(seed * 1000 + i)):
            dest = tmp_path / f"cut{i}-{'torn' if tear else 'clean'}"
            dest.mkdir()
            rebuild(fileio.baseline, history, cut, str(dest), tear)
            verify_batches(str(dest), acked_notes(history, cut))
