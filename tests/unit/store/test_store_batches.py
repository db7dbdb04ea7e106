"""Atomic batches in the stores (`store_batch`): all of a batch or none of it - refused
whole by a limit, and after a crash that cut the log anywhere inside the batch, recovered
whole only when its END record made it to disk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pynats.jetstream.store import (
    DiscardPolicy,
    FileStore,
    MaxMsgsExceeded,
    MemoryStore,
    MessageNotFound,
    StoreConfig,
    records,
)
from pynats.jetstream.store.segment import SEG_HEADER_SIZE

BATCH = [(f"b.{i % 3}", None, b"batch-%d" % i, 0) for i in range(12)]


def crash_copy(store: FileStore, path: Path) -> Path:
    """The store directory as a crash right now would leave it (everything written synced)."""
    store.sync()
    copy = path.with_name(path.name + "-crash")
    shutil.copytree(path, copy)
    store.stop()
    return copy


def seqs_of(store: FileStore | MemoryStore) -> list[int]:
    out = []
    for seq in range(1, store.last_seq + 1):
        try:
            store.load_msg(seq)
            out.append(seq)
        except MessageNotFound:
            pass
    return out


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_a_batch_is_stored_in_order_and_read_back(tmp_path: Path, kind: str) -> None:
    cfg = StoreConfig(name="S")
    store = FileStore(str(tmp_path / "s"), cfg) if kind == "file" else MemoryStore(cfg)
    store.store_msg("a", None, b"before")
    stored = store.store_batch(BATCH)
    assert [seq for seq, _ in stored] == list(range(2, 14))
    assert [store.load_msg(s).data for s, _ in stored] == [m[2] for m in BATCH]
    assert store.state().msgs == 13
    if isinstance(store, FileStore):
        copy = crash_copy(store, tmp_path / "s")
        again = FileStore(str(copy), cfg)  # no snapshot: the log is scanned
        assert seqs_of(again) == list(range(1, 14))
        assert again.load_msg(13).data == b"batch-11"
        again.stop()


def test_a_limit_refuses_the_whole_batch(tmp_path: Path) -> None:
    cfg = StoreConfig(name="S", max_msgs=10, discard=DiscardPolicy.NEW)
    store = FileStore(str(tmp_path / "s"), cfg)
    store.store_msg("a", None, b"x")
    with pytest.raises(MaxMsgsExceeded):
        store.store_batch(BATCH)
    assert store.last_seq == 1 and store.state().msgs == 1
    store.stop()


@pytest.mark.parametrize(
    "segment_bytes", [1 << 20, 400], ids=["in the segment", "in a new segment"]
)
def test_a_crash_inside_a_batch_leaves_none_of_it(tmp_path: Path, segment_bytes: int) -> None:
    """Cut the log at every record boundary and in the middle of every record of the batch:
    the messages before it always survive; the batch survives only whole."""
    cfg = StoreConfig(name="S")
    path = tmp_path / "s"
    store = FileStore(str(path), cfg, segment_bytes=segment_bytes)
    for i in range(5):
        store.store_msg("a", None, b"before-%d" % i)
    store.sync()
    sizes_before = {n: os.path.getsize(path / n) for n in os.listdir(path) if n.startswith("seg-")}
    store.store_batch(BATCH)
    crashed = crash_copy(store, path)
    segments = sorted(n for n in os.listdir(crashed) if n.startswith("seg-"))
    # every place the batch's bytes could have stopped reaching the disk
    cuts: list[tuple[str, int]] = []
    for name in segments:
        data = (crashed / name).read_bytes()
        start = max(sizes_before.get(name, SEG_HEADER_SIZE), SEG_HEADER_SIZE)
        for offset, length, *_ in records.scan(data, SEG_HEADER_SIZE):
            if offset >= start:
                cuts += [(name, offset), (name, offset + length // 2)]
        cuts.append((name, len(data)))
    complete = 0
    for n, (name, cut) in enumerate(cuts):
        trial = tmp_path / f"trial-{n}"
        shutil.copytree(crashed, trial)
        (trial / name).write_bytes((crashed / name).read_bytes()[:cut])
        for later in segments[segments.index(name) + 1 :]:
            os.remove(trial / later)
        recovered = FileStore(str(trial), cfg, segment_bytes=segment_bytes)
        seqs = seqs_of(recovered)
        assert seqs in (list(range(1, 6)), list(range(1, 18))), (name, cut, seqs)
        complete += seqs == list(range(1, 18))
        recovered.stop()
    assert complete >= 1  # the cut after the END record keeps the whole batch
    assert complete < len(cuts)
