"""Durable consumer state: what a consumer confirmed is what a restart finds."""

from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.support.powerloss import RecordingFileIO

from pynats.jetstream.store import (
    ConsumerState,
    ConsumerStore,
    Pending,
    SequencePair,
    StoreClosed,
    SyncPolicy,
)


@pytest.fixture(params=["file", "memory"])
def consumer_dir(request, tmp_path):
    return str(tmp_path / "c") if request.param == "file" else None


def test_ack_floor_follows_the_oldest_pending(consumer_dir):
    store = ConsumerStore(consumer_dir)
    for n, seq in enumerate([10, 11, 12], start=1):
        store.update_delivered(n, seq, 1, 1000 + n)
    assert store.update_acks(2, 11)
    assert store.state.ack_floor == SequencePair(0, 9), "10 is still pending"
    assert store.update_acks(1, 10)
    assert store.state.ack_floor == SequencePair(2, 11)
    assert not store.update_acks(1, 10), "acking twice is a no-op"
    assert store.update_acks(3, 12)
    assert store.state.ack_floor == SequencePair(3, 12)
    assert store.state.pending == {}
    store.stop()


def test_redeliveries_are_counted_and_ack_all_clears_up_to_a_sequence(consumer_dir):
    store = ConsumerStore(consumer_dir)
    store.update_delivered(1, 1, 1, 1)
    store.update_delivered(2, 2, 1, 2)
    store.update_delivered(3, 1, 2, 3)
    store.update_delivered(4, 3, 1, 4)
    assert store.state.redelivered == {1: 1}
    assert store.state.pending[1].consumer_seq == 3
    assert store.ack_all(4, 2) == [1, 2]
    assert list(store.state.pending) == [3]
    assert store.state.redelivered == {}
    assert store.state.ack_floor.stream_seq == 2
    store.stop()
    with pytest.raises(StoreClosed):
        store.update_acks(4, 3)


def test_state_survives_restart_and_log_compaction(tmp_path):
    path = str(tmp_path / "c")
    store = ConsumerStore(path, compact_bytes=2000)
    for seq in range(1, 301):
        store.update_delivered(seq, seq, 1, seq)
        if seq % 3:
            store.update_acks(seq, seq)
    expected = store.state.copy()
    store.sync()
    logs = [n for n in os.listdir(path) if n.startswith("ops-")]
    assert len(logs) == 1 and logs[0] != "ops-0000000000.log", "the log should have been compacted"
    store.stop()
    again = ConsumerStore(path)
    assert again.state == expected
    assert again.damage() == []
    again.stop()


def test_always_fsyncs_plain_acks_by_group_commit_without_anyone_waiting(tmp_path):
    """`sync_interval: always`: deliveries and acks nobody waits for are fsynced too, by the
    next group-commit round (not one fsync each, on the loop thread)."""
    fileio = RecordingFileIO(str(tmp_path))
    log = os.path.join("c", "ops-0000000000.log")

    def log_synced() -> bool:
        ops = [op for op in fileio.history if op.path == log and op.kind in ("write", "fsync")]
        return bool(ops) and ops[-1].kind == "fsync"

    async def run() -> int:
        store = ConsumerStore(str(tmp_path / "c"), SyncPolicy.parse("always"), fileio=fileio)
        for seq in range(1, 51):
            store.update_delivered(seq, seq, 1, 0)
            store.update_acks(seq, seq)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not log_synced() and loop.time() < deadline:
            await asyncio.sleep(0.005)
        assert log_synced(), "the acks were never fsynced"
        fsyncs = sum(1 for op in fileio.history if op.kind == "fsync" and op.path == log)
        store.stop()
        return fsyncs

    assert asyncio.run(run()) <= 2


def test_update_state_replaces_everything(tmp_path):
    path = str(tmp_path / "c")
    store = ConsumerStore(path)
    store.update_delivered(1, 5, 1, 0)
    store.update_state(ConsumerState(SequencePair(0, 99), SequencePair(0, 99)))
    store.stop()
    again = ConsumerStore(path)
    assert again.state == ConsumerState(SequencePair(0, 99), SequencePair(0, 99))
    again.stop()


def test_a_torn_log_tail_is_reported_and_earlier_acks_kept(tmp_path):
    path = str(tmp_path / "c")
    store = ConsumerStore(path)
    store.update_delivered(1, 1, 1, 0)
    store.update_delivered(2, 2, 1, 0)
    store.sync()  # one batch (record) per sync: the deliveries, then the ack
    store.update_acks(1, 1)
    store.stop()
    log = os.path.join(path, "ops-0000000000.log")
    size = os.path.getsize(log)
    os.truncate(log, size - 5)  # the last ack record is torn
    again = ConsumerStore(path)
    assert again.state.ack_floor.stream_seq == 0 and 1 in again.state.pending
    assert [d.reason for d in again.damage()] == ["truncated record"]
    again.update_acks(1, 1)
    again.stop()
    assert os.path.exists(log), "the damaged log is kept for inspection"
    third = ConsumerStore(path)
    assert 1 not in third.state.pending
    third.stop()


def test_a_run_of_deliveries_keeps_every_consumer_and_delivery_time(tmp_path):
    """Consecutive stream sequences in one pass share a log operation only while the
    consumer sequences and timestamps follow too: a restart finds each one as it was."""
    path = str(tmp_path / "c")
    store = ConsumerStore(path)
    for cseq, sseq, ts in [(1, 1, 7), (2, 2, 7), (4, 3, 7), (5, 4, 9), (6, 5, 9)]:
        store.update_delivered(cseq, sseq, 1, ts)
    store.update_acks(1, 1)
    store.update_acks(2, 2)
    store.update_acks(6, 5)
    kept = store.state.copy()
    store.stop()
    again = ConsumerStore(path)
    assert again.state == kept
    assert again.state.pending == {3: Pending(4, 7), 4: Pending(5, 9)}
    again.stop()


consumer_ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["deliver", "deliver", "pass", "ack", "ack", "acks", "ack_all", "drop", "flush"]
        ),
        st.integers(min_value=1, max_value=40),
    ),
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(consumer_ops)
def test_ack_floor_and_pending_match_a_naive_model_and_a_restart(tmp_path_factory, ops) -> None:
    """Deliveries in and out of stream order, redeliveries, acks, ack-alls and drops, one by
    one and in runs: the pending set and the ack floor are what a naive model says, and a
    restart (replaying the operation batches, across compactions) finds the same state."""
    path = str(tmp_path_factory.mktemp("c") / "c")
    store = ConsumerStore(path, compact_bytes=3000)
    pending: dict[int, int] = {}  # stream seq -> consumer seq
    acked: set[int] = set()
    delivered = SequencePair(0, 0)
    floor = SequencePair(0, 0)
    cseq = 0
    for step, (op, first) in enumerate(ops):
        # a pass delivers the next four messages after the last one delivered at one
        # timestamp, `acks` acks four in a row: what the log packs as one run operation
        if op == "pass":
            first = delivered.stream_seq + 1
        seqs = range(first, first + 4) if op in ("pass", "acks") else (first,)
        acking = False  # the floor moves only when something was acked
        for seq in seqs:
            if op in ("deliver", "pass") and seq not in acked:
                cseq += 1
                deliveries = 2 if seq in pending else 1
                ts = 1000 + cseq if op == "deliver" else 100_000 + step
                store.update_delivered(cseq, seq, deliveries, ts)
                pending[seq] = cseq
                delivered = SequencePair(
                    max(delivered.consumer_seq, cseq), max(delivered.stream_seq, seq)
                )
            elif op in ("ack", "acks"):
                assert store.update_acks(pending.get(seq, 0), seq) == (seq in pending)
                acking = pending.pop(seq, None) is not None or acking
                acked.add(seq)
        if op == "ack_all":
            done = sorted(s for s in pending if s <= first)
            assert sorted(store.ack_all(cseq, first)) == done
            for s in done:
                del pending[s]
            acked.update(done)
            if first > floor.stream_seq:
                floor = SequencePair(max(cseq, floor.consumer_seq), first)
            acking = True
        elif op == "drop":
            assert store.drop_pending(first) == (pending.pop(first, None) is not None)
        elif op == "flush":
            store.sync()
        if acking and not pending:
            floor = SequencePair(delivered.consumer_seq, delivered.stream_seq)
        elif acking and min(pending) - 1 > floor.stream_seq:
            oldest = min(pending)
            floor = SequencePair(pending[oldest] - 1, oldest - 1)
        assert {s: p.consumer_seq for s, p in store.state.pending.items()} == pending
        assert store.state.ack_floor == floor
        assert store.state.delivered == delivered
    kept = store.state.copy()
    store.sync()
    store.stop()
    again = ConsumerStore(path)
    assert again.state == kept
    again.stop()
