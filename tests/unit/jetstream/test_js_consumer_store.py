"""ConsumerStore additions for consumers: deliveries without acks, dropping a message that
reached max deliveries, batched operation records replayed after a restart."""

from __future__ import annotations

import os

from pynats.jetstream.store import ConsumerStore, SequencePair


def test_ack_none_deliveries_move_the_floor_and_leave_nothing_pending(tmp_path) -> None:
    path = str(tmp_path / "c")
    store = ConsumerStore(path)
    store.update_delivered(1, 5, 0, 0)
    store.update_delivered(2, 6, 0, 0)
    assert store.state.ack_floor == SequencePair(2, 6)
    assert store.state.pending == {}
    store.stop()
    again = ConsumerStore(path)
    assert again.state.delivered == SequencePair(2, 6)
    assert again.state.ack_floor == SequencePair(2, 6)
    again.stop()


def test_dropping_a_pending_message_keeps_the_floor(tmp_path) -> None:
    path = str(tmp_path / "c")
    store = ConsumerStore(path)
    store.update_delivered(1, 1, 1, 0)
    store.update_delivered(2, 2, 1, 0)
    store.update_delivered(3, 1, 2, 0)
    assert store.drop_pending(1)
    assert not store.drop_pending(1)
    assert store.state.ack_floor == SequencePair(0, 0)
    assert store.state.redelivered == {1: 1}, "still counted as redelivered"
    store.update_acks(2, 2)
    assert store.state.ack_floor.stream_seq == 2
    store.stop()
    again = ConsumerStore(path)
    assert again.state.pending == {}
    assert again.state.ack_floor.stream_seq == 2
    again.stop()


def test_operations_of_one_flush_form_one_record(tmp_path) -> None:
    path = str(tmp_path / "c")
    store = ConsumerStore(path)
    for seq in range(1, 101):
        store.update_delivered(seq, seq, 1, seq)
    for seq in range(1, 51):
        store.update_acks(seq, seq)
    store.stop()
    log = os.path.join(path, "ops-0000000000.log")
    size = os.path.getsize(log)
    assert size < 150 * 40, "no per-operation framing"
    again = ConsumerStore(path)
    assert len(again.state.pending) == 50
    assert again.state.ack_floor == SequencePair(50, 50)
    again.stop()


def test_memory_only_store_for_mem_storage_consumers() -> None:
    store = ConsumerStore(None)
    store.update_delivered(1, 1, 1, 0)
    assert store.update_acks(1, 1)
    assert store.ack_all(1, 1) == []
    store.stop()
