"""A record found damaged on read (after a restart from the index snapshot) is treated like
damage a start-up scan finds: out of the counts and the subject index, listed in `lost`, told
once to `on_damage` and to `on_removed` (so consumers stop counting it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pynats.jetstream.store import (
    DamagedMessage,
    FileStore,
    MessageNotFound,
    RemovalReason,
    StoreConfig,
    records,
)
from pynats.jetstream.store.segment import SEG_HEADER_SIZE

CFG = StoreConfig(name="S")


def damaged_store(path: str, seq: int) -> FileStore:
    """Ten messages on subjects a/b, stopped cleanly, one bit flipped in `seq`'s payload."""
    store = FileStore(path, CFG)
    for i in range(1, 11):
        store.store_msg("a" if i % 2 else "b", None, b"payload-%02d" % i)
    size = store.bytes // 10
    store.stop()
    for name in sorted(os.listdir(path)):
        if not name.startswith("seg-"):
            continue
        full = os.path.join(path, name)
        data = bytearray(Path(full).read_bytes())
        for offset, length, kind, rseq, *_ in records.scan(bytes(data), SEG_HEADER_SIZE):
            if kind == records.KIND_MSG and rseq == seq:
                data[offset + length - 2] ^= 0x10
                Path(full).write_bytes(data)
    store = FileStore(path, CFG)  # the snapshot is trusted: nothing is verified yet
    assert store.msgs == 10 and not store.damage()
    assert store.bytes == 10 * size
    return store


@pytest.mark.parametrize("first_read", [5, 4], ids=["read-itself", "read-ahead-of-4"])
def test_found_on_read_is_lost_uncounted_and_told_once(tmp_path, first_read):
    store = damaged_store(str(tmp_path / "m"), 5)
    size = store.bytes // 10
    removed, told = [], []
    store.on_removed = removed.extend
    store.on_damage = told.append
    if first_read == 5:
        with pytest.raises(DamagedMessage):
            store.load_msg(5)
    else:
        assert store.load_msg(4).data == b"payload-04"  # its read-ahead meets 5's record
    for _ in range(3):
        with pytest.raises(MessageNotFound):
            store.load_msg(5)
    assert store.load_next("a", 4).seq == 7
    assert [(r.seq, r.subject, r.reason) for r in removed] == [(5, "a", RemovalReason.DAMAGED)]
    assert [(d.seqs, d.found_at) for d in told] == [((5,), "read")]
    assert store.damage() == told
    state = store.state()
    assert (state.msgs, state.bytes, state.lost, state.lost_bytes) == (9, 9 * size, [5], size)
    assert (state.first_seq, state.last_seq, state.num_deleted) == (1, 10, 1)
    assert store.subject_state("a") == (1, 9, 4)
    assert store.num_pending(1, "a") == 4 and store.num_pending(1) == 9
    store.stop()
    store = FileStore(str(tmp_path / "m"), CFG)  # still reported after a clean restart
    assert store.state().lost == [5] and store.msgs == 9
    assert [d.found_at for d in store.damage()] == ["read"]
    store.stop()
