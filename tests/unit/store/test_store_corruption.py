"""Flipped bits and truncated segments: nothing damaged is served, nothing intact is lost,
the damage is reported, and no file is deleted or shortened because of it.

Rounds: PYNATS_STORE_FUZZ_ROUNDS (default 12 per case)."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import pytest

from pynats.jetstream.store import DamagedMessage, FileStore, MessageNotFound, StoreConfig, records
from pynats.jetstream.store.segment import SEG_HEADER_SIZE
from pynats.jetstream.store.snapshot import SNAPSHOT_NAME

ROUNDS = int(os.environ.get("PYNATS_STORE_FUZZ_ROUNDS", "12"))
CFG = StoreConfig(name="S")


def payload(seq: int, rng: random.Random) -> bytes:
    return b"%d:" % seq + rng.randbytes(rng.randint(0, 120))


def build(path: str, rng: random.Random, with_snapshot: bool):
    """A store of ~300 messages over several segments; returns what was written."""
    store = FileStore(path, CFG, segment_bytes=3000)
    written = {}
    for _ in range(300):
        data = payload(store.last_seq + 1, rng)
        subject = f"s.{rng.randint(0, 9)}"
        seq, _ = store.store_msg(subject, None, data)
        written[seq] = (subject, data)
    removed = set(rng.sample(sorted(written), 15))
    for seq in removed:
        store.remove_msg(seq)
    if with_snapshot:
        store.stop()
    else:
        store.sync()
        crash = path + ".crash"
        shutil.copytree(path, crash)
        store.stop()
        shutil.rmtree(path)
        os.rename(crash, path)
    return written, set(written) - removed


def record_spans(path: str) -> dict[int, tuple[str, int, int]]:
    """seq -> (segment file, offset, length) of each message record, read before damage."""
    spans = {}
    for name in sorted(os.listdir(path)):
        if not name.startswith("seg-"):
            continue
        data = Path(path, name).read_bytes()
        for offset, length, kind, seq, *_ in records.scan(data, SEG_HEADER_SIZE):
            if kind == records.KIND_MSG:
                spans[seq] = (name, offset, length)
    return spans


def check(path, written, live, spans, touched_files_ranges):
    """Reopen and verify the promises; `touched_files_ranges` = {file: [(start, end)]}."""
    sizes = {n: os.path.getsize(os.path.join(path, n)) for n in os.listdir(path)}
    store = FileStore(path, CFG, segment_bytes=3000)
    damaged_seqs = set()
    for seq in sorted(written):
        subject, data = written[seq]
        name, offset, length = spans[seq]
        touched = any(
            start < offset + length and offset < end
            for start, end in touched_files_ranges.get(name, [])
        )
        try:
            msg = store.load_msg(seq)
        except DamagedMessage:
            assert touched, f"intact message {seq} reported damaged"
            damaged_seqs.add(seq)
            continue
        except MessageNotFound:
            assert touched or seq not in live, f"intact message {seq} lost"
            continue
        assert (msg.subject, msg.data) == (subject, data), f"garbage served for {seq}"
    lost_or_touched = {
        s
        for s in live
        if any(
            start < spans[s][1] + spans[s][2] and spans[s][1] < end
            for start, end in touched_files_ranges.get(spans[s][0], [])
        )
    }
    if lost_or_touched:
        assert store.damage(), "damage to live records must be reported"
    state = store.state()
    assert damaged_seqs <= set(state.lost)
    store.stop()
    for name, size in sizes.items():
        if name.startswith("seg-"):
            assert os.path.getsize(os.path.join(path, name)) >= size, "a damaged file was shortened"
    return lost_or_touched


@pytest.mark.parametrize("with_snapshot", [False, True])
def test_flipped_bits_are_detected_and_intact_records_survive(tmp_path, with_snapshot):
    rng = random.Random(1234 + with_snapshot)
    for round_ in range(ROUNDS):
        path = str(tmp_path / f"r{round_}")
        written, live = build(path, rng, with_snapshot)
        spans = record_spans(path)
        names = sorted(n for n in os.listdir(path) if n.startswith("seg-"))
        touched: dict[str, list[tuple[int, int]]] = {}
        for _ in range(rng.randint(1, 4)):
            name = rng.choice(names)
            full = os.path.join(path, name)
            data = bytearray(Path(full).read_bytes())
            pos = rng.randrange(len(data))
            data[pos] ^= 1 << rng.randrange(8)
            Path(full).write_bytes(data)
            touched.setdefault(name, []).append((pos, pos + 1))
        check(path, written, live, spans, touched)


def test_truncated_segments_lose_only_the_cut_records(tmp_path):
    rng = random.Random(99)
    for round_ in range(ROUNDS):
        path = str(tmp_path / f"r{round_}")
        written, live = build(path, rng, with_snapshot=rng.random() < 0.5)
        spans = record_spans(path)
        names = sorted(n for n in os.listdir(path) if n.startswith("seg-"))
        name = rng.choice(names)
        full = os.path.join(path, name)
        size = os.path.getsize(full)
        cut = rng.randrange(SEG_HEADER_SIZE, size)
        os.truncate(full, cut)
        touched = {name: [(cut, size)]}
        lost = check(path, written, live, spans, touched)
        if lost:
            store = FileStore(path, CFG, segment_bytes=3000)
            reported = {s for d in store.damage() for s in d.seqs} | set(store.state().lost)
            is_last = name == names[-1]
            if not is_last:
                assert lost <= reported, "a truncated middle segment must name what it lost"
            store.stop()


def test_damage_found_on_read_stays_reported_after_restart(tmp_path):
    path = str(tmp_path / "m")
    store = FileStore(path, CFG)
    for i in range(10):
        store.store_msg("a", None, b"payload-%d" % i)
    store.stop()
    spans = record_spans(path)
    name, offset, length = spans[4]
    full = os.path.join(path, name)
    data = bytearray(Path(full).read_bytes())
    data[offset + length - 1] ^= 0xFF
    Path(full).write_bytes(data)
    store = FileStore(path, CFG)  # the snapshot is valid: no scan, found on read
    with pytest.raises(DamagedMessage):
        store.load_msg(4)
    assert [d.found_at for d in store.damage()] == ["read"]
    assert store.load_msg(5).data == b"payload-4"
    store.stop()
    assert os.path.exists(os.path.join(path, SNAPSHOT_NAME))
    store = FileStore(path, CFG)
    assert store.damage() and 4 in store.state().lost
    with pytest.raises(MessageNotFound):
        store.load_msg(4)
    store.stop()
