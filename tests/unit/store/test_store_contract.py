"""The MessageStore contract, run against the memory store and the file store alike."""

from __future__ import annotations

import pytest

from pynats.jetstream.store import (
    TTL_NEVER,
    DiscardPolicy,
    MaxBytesExceeded,
    MaxMsgsExceeded,
    MaxMsgsPerSubjectExceeded,
    MessageNotFound,
    MsgTooLarge,
    RemovalReason,
    StoreConfig,
    StoreError,
)

HDR = b"NATS/1.0\r\nKV-Operation: DEL\r\n\r\n"


def fill(store, subjects, count):
    """Store `count` messages cycling over `subjects`; payload names the sequence."""
    for i in range(count):
        store.store_msg(subjects[i % len(subjects)], None, b"m%d" % (i + 1))


def test_store_assigns_increasing_sequences_and_loads_them_back(make_store):
    store = make_store()
    seq1, ts1 = store.store_msg("orders.new", None, b"one")
    seq2, ts2 = store.store_msg("orders.paid", HDR, b"two")
    assert (seq1, seq2) == (1, 2)
    assert ts2 >= ts1 > 0
    first = store.load_msg(1)
    assert (first.subject, first.seq, first.headers, first.data) == ("orders.new", 1, None, b"one")
    second = store.load_msg(2)
    assert (second.headers, second.data, second.ts_ns) == (HDR, b"two", ts2)
    with pytest.raises(MessageNotFound):
        store.load_msg(3)


def test_byte_accounting_follows_nats_server(make_store):
    store = make_store()
    store.store_msg("a.b", None, b"12345")
    store.store_msg("a.b", HDR, b"12345")
    if store.config.storage == "memory":
        expected = (3 + 5 + 16) + (3 + len(HDR) + 5 + 16)
    else:
        expected = (3 + 5 + 30) + (3 + len(HDR) + 5 + 34)
    assert store.state().bytes == expected


def test_state_reports_first_last_deleted_and_subjects(make_store):
    store = make_store()
    fill(store, ["a", "b", "c"], 9)
    assert store.remove_msg(4)
    assert store.remove_msg(5)
    assert not store.remove_msg(5)
    state = store.state(deleted_details=True)
    assert (state.msgs, state.first_seq, state.last_seq) == (7, 1, 9)
    assert state.num_deleted == 2 and state.deleted == [4, 5]
    assert state.num_subjects == 3
    assert store.remove_msg(1)
    assert store.state().first_seq == 2


def test_last_by_subject_and_wildcards(make_store):
    store = make_store()
    for subject in ["kv.a", "kv.b", "kv.a", "other.x", "kv.c.d"]:
        store.store_msg(subject, None, subject.encode())
    assert store.load_last("kv.a").seq == 3
    assert store.load_last("kv.*").seq == 3
    assert store.load_last("kv.>").seq == 5
    assert store.load_last(">").seq == 5
    assert store.load_last("*.x").seq == 4
    with pytest.raises(MessageNotFound):
        store.load_last("nope")
    store.remove_msg(3)
    assert store.load_last("kv.a").seq == 1
    assert store.subject_state("kv.a") == (1, 1, 1)


def test_load_next_honours_filter_and_start(make_store):
    store = make_store()
    fill(store, ["x.1", "y.1", "x.2"], 12)
    assert store.load_next("x.*", 2).seq == 3
    assert store.load_next("y.1", 3).seq == 5
    assert store.load_next(">", 12).seq == 12
    store.remove_msg(4)
    assert store.load_next("x.1", 2).seq == 7
    with pytest.raises(MessageNotFound):
        store.load_next("x.1", 11)
    assert store.next_seq("z", 1) == 0


def test_wildcard_load_next_over_long_gaps(make_store):
    store = make_store()
    for i in range(6000):
        store.store_msg("noise", None, b"")
        if i == 5500:
            store.store_msg("rare.one", None, b"r")
    assert store.load_next("rare.*", 1).data == b"r"


def test_subjects_state_and_num_pending(make_store):
    store = make_store()
    fill(store, ["a.1", "a.2", "b.1"], 9)
    assert store.subjects_state() == {"a.1": 3, "a.2": 3, "b.1": 3}
    assert store.subjects_state("a.*") == {"a.1": 3, "a.2": 3}
    assert store.subjects_state("b.1") == {"b.1": 3}
    assert store.num_pending(1) == 9
    assert store.num_pending(4) == 6
    assert store.num_pending(4, "a.*") == 4
    assert store.num_pending(5, "a.2") == 2
    assert store.num_pending(1, "a.>", last_per_subject=True) == 2
    assert store.num_pending(9, ">", last_per_subject=True) == 1
    store.remove_msg(5)
    assert store.num_pending(4, "a.2") == 1
    assert store.num_pending(2) == 7


@pytest.mark.parametrize(
    ("kwargs", "purged", "left"),
    [
        ({}, 9, []),
        ({"subject": "a"}, 3, [2, 3, 5, 6, 8, 9]),
        ({"subject": "a", "keep": 1}, 2, [2, 3, 5, 6, 7, 8, 9]),
        ({"subject": "*", "keep": 4}, 5, [6, 7, 8, 9]),
        ({"subject": "b", "seq": 6}, 2, [1, 3, 4, 6, 7, 8, 9]),
        ({"seq": 4}, 3, [4, 5, 6, 7, 8, 9]),
        ({"keep": 2}, 7, [8, 9]),
        ({"keep": 20}, 0, list(range(1, 10))),
        ({"subject": ">"}, 9, []),
    ],
)
def test_purge_combinations(make_store, kwargs, purged, left):
    store = make_store()
    fill(store, ["a", "b", "c"], 9)
    assert store.purge(**kwargs) == purged
    remaining = [s for s in range(1, 10) if _has(store, s)]
    assert remaining == left
    state = store.state()
    assert state.msgs == len(left) and state.last_seq == 9
    if not left:
        assert state.first_seq == 10
    store = make_store.reopen()
    assert [s for s in range(1, 10) if _has(store, s)] == left
    assert store.store_msg("a", None, b"next")[0] == 10


def test_purge_rejects_seq_with_keep(make_store):
    store = make_store()
    with pytest.raises(ValueError):
        store.purge(seq=2, keep=1)


def test_compact_beyond_the_end_moves_the_next_sequence(make_store):
    store = make_store()
    fill(store, ["a"], 3)
    assert store.compact(100) == 3
    state = store.state()
    assert (state.msgs, state.first_seq, state.last_seq) == (0, 100, 99)
    assert store.store_msg("a", None, b"x")[0] == 100
    store = make_store.reopen()
    assert store.state().first_seq == 100
    assert store.load_msg(100).data == b"x"


def test_first_seq_config_and_skip(make_store):
    store = make_store(first_seq=50)
    assert store.store_msg("a", None, b"")[0] == 50
    assert store.skip_msg() == 51
    assert store.store_msg("a", None, b"")[0] == 52
    store = make_store.reopen(first_seq=50)
    assert store.state().last_seq == 52
    assert store.skip_msg() == 53
    store = make_store.reopen(first_seq=50)
    assert store.store_msg("a", None, b"")[0] == 54


def test_max_msgs_discard_old_reports_removals(make_store):
    store = make_store(max_msgs=3)
    removed = []
    store.on_removed = removed.extend
    fill(store, ["a", "b"], 5)
    assert [s for s in range(1, 6) if _has(store, s)] == [3, 4, 5]
    assert [(r.seq, r.reason) for r in removed] == [
        (1, RemovalReason.MAX_MSGS),
        (2, RemovalReason.MAX_MSGS),
    ]
    assert removed[0].subject == "a"


def test_max_bytes_discard_old(make_store):
    store = make_store(max_bytes=200)
    for _ in range(10):
        store.store_msg("s", None, b"x" * 50)
    assert store.state().bytes <= 200
    assert store.state().msgs == 2


def test_discard_new_refuses_with_nats_server_texts(make_store):
    store = make_store(max_msgs=2, discard=DiscardPolicy.NEW)
    fill(store, ["a"], 2)
    with pytest.raises(MaxMsgsExceeded, match="maximum messages exceeded"):
        store.store_msg("a", None, b"")
    store = make_store(max_bytes=100, discard=DiscardPolicy.NEW)
    store.store_msg("a", None, b"x" * 40)
    with pytest.raises(MaxBytesExceeded, match="maximum bytes exceeded"):
        store.store_msg("a", None, b"x" * 40)
    assert store.state().msgs == 1


def test_max_msg_size(make_store):
    store = make_store(max_msg_size=10)
    store.store_msg("a", None, b"x" * 10)
    with pytest.raises(MsgTooLarge):
        store.store_msg("a", b"NATS/1.0\r\n\r\n", b"x")


def test_per_subject_limit_keeps_newest_even_with_discard_new(make_store):
    store = make_store(max_msgs_per_subject=2, discard=DiscardPolicy.NEW)
    removed = []
    store.on_removed = removed.extend
    fill(store, ["k.1", "k.2"], 8)
    assert store.subjects_state() == {"k.1": 2, "k.2": 2}
    assert [s for s in range(1, 9) if _has(store, s)] == [5, 6, 7, 8]
    assert all(r.reason == RemovalReason.MAX_MSGS_PER_SUBJECT for r in removed)
    assert not any(r.was_last_on_subject for r in removed)


def test_discard_new_per_subject(make_store):
    store = make_store(
        max_msgs_per_subject=1, discard=DiscardPolicy.NEW, discard_new_per_subject=True
    )
    store.store_msg("k", None, b"1")
    with pytest.raises(MaxMsgsPerSubjectExceeded):
        store.store_msg("k", None, b"2")
    store.store_msg("j", None, b"1")


def test_max_age_expiry_is_driven_by_next_expiry(make_store):
    store = make_store(max_age=1_000_000_000)
    fill(store, ["a", "b"], 4)
    first_ts = store.load_msg(1).ts_ns
    assert store.next_expiry() == first_ts + 1_000_000_000
    assert store.expire(first_ts + 999_999_999) == []
    removed = store.expire(store.load_msg(4).ts_ns + 1_000_000_000)
    assert [r.seq for r in removed] == [1, 2, 3, 4]
    assert removed[-1].reason == RemovalReason.MAX_AGE and removed[-1].was_last_on_subject
    assert store.state().msgs == 0 and store.next_expiry() is None


def test_per_message_ttl_and_never(make_store):
    store = make_store(max_age=10_000_000_000, allow_msg_ttl=True)
    s1, ts1 = store.store_msg("t", None, b"short", ttl=1_000_000_000)
    s2, _ = store.store_msg("n", None, b"never", ttl=TTL_NEVER)
    s3, ts3 = store.store_msg("plain", None, b"aged")
    assert store.next_expiry() == ts1 + 1_000_000_000
    assert [r.seq for r in store.expire(ts1 + 1_000_000_000)] == [s1]
    assert store.expire(ts3 + 10_000_000_000)[0].seq == s3
    assert store.load_msg(s2).data == b"never"
    assert store.next_expiry() is None


def test_ttl_survives_restart(make_store):
    store = make_store(allow_msg_ttl=True)
    seq, ts = store.store_msg("t", None, b"x", ttl=5_000_000_000)
    store = make_store.reopen(allow_msg_ttl=True)
    assert store.next_expiry() == ts + 5_000_000_000
    assert store.expire(ts + 5_000_000_000)[0].seq == seq


def test_update_config_applies_new_limits(make_store):
    store = make_store()
    fill(store, ["a", "b"], 10)
    removed = []
    store.on_removed = removed.extend
    store.update_config(StoreConfig(name="S", storage=store.config.storage, max_msgs_per_subject=2))
    assert store.subjects_state() == {"a": 2, "b": 2}
    store.update_config(StoreConfig(name="S", storage=store.config.storage, max_msgs=1))
    assert store.state().msgs == 1 and store.load_last(">").seq == 10
    assert len(removed) == 9
    other = "memory" if store.config.storage == "file" else "file"
    with pytest.raises(StoreError):
        store.update_config(StoreConfig(name="S", storage=other))


def test_seq_for_time(make_store):
    store = make_store()
    fill(store, ["a"], 5)
    ts3 = store.load_msg(3).ts_ns
    assert store.load_msg(store.seq_for_time(ts3)).ts_ns == ts3
    assert store.seq_for_time(0) == 1
    assert store.seq_for_time(store.load_msg(5).ts_ns + 1) == 0


def test_restart_keeps_everything(make_store):
    store = make_store()
    fill(store, ["a.1", "a.2", "b"], 300)
    store.store_msg("h", HDR, b"with headers")
    store.remove_msg(7)
    store.remove_msg(8, erase=True)
    store.purge(subject="b", keep=2)
    before = store.state(deleted_details=True)
    messages = {s: store.load_msg(s) for s in range(1, 302) if _has(store, s)}
    store = make_store.reopen()
    assert store.state(deleted_details=True) == before
    assert {s: store.load_msg(s) for s in range(1, 302) if _has(store, s)} == messages
    assert store.subjects_state() == {"a.1": 99, "a.2": 99, "b": 2, "h": 1}


def test_durability_callback_fires(make_store):
    store = make_store()
    store.store_msg("a", None, b"x")
    results = []
    store.when_durable(results.append)
    assert results == [None]


def _has(store, seq):
    try:
        store.load_msg(seq)
        return True
    except MessageNotFound:
        return False
