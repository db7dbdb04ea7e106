"""The subject index returns exactly the subscriptions a naive matcher would."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pynats.server.sublist import EMPTY_RESULT, Sublist, Subscription

TOKENS = [b"a", b"b", b"c", b"foo", b"bar"]


def naive_match(sub_subject: bytes, subject: bytes) -> bool:
    """Reference semantics, written independently of the trie."""
    pattern = sub_subject.split(b".")
    tokens = subject.split(b".")
    for i, p in enumerate(pattern):
        if p == b">":
            return len(tokens) > i
        if i >= len(tokens):
            return False
        if p != b"*" and p != tokens[i]:
            return False
    return len(pattern) == len(tokens)


literal_subjects = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=4).map(b".".join)


@st.composite
def sub_subjects(draw: st.DrawFn) -> bytes:
    tokens = draw(st.lists(st.sampled_from([*TOKENS, b"*"]), min_size=1, max_size=4))
    if draw(st.booleans()):
        tokens.append(b">")
    return b".".join(tokens)


operations = st.lists(
    st.tuples(
        st.sampled_from(["sub", "unsub", "match"]),
        sub_subjects(),
        st.sampled_from([None, b"q1", b"q2"]),
        literal_subjects,
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(operations)
def test_sublist_matches_exactly_what_naive_matcher_says(ops: list) -> None:
    sl = Sublist()
    live: list[Subscription] = []
    for i, (op, subject, queue, probe) in enumerate(ops):
        if op == "sub":
            sub = Subscription(None, subject, queue, str(i).encode())
            sl.insert(sub)
            live.append(sub)
        elif op == "unsub" and live:
            victim = live.pop(i % len(live))
            assert sl.remove(victim)
        # every step, including after changes, the cached answer must be right
        plain, groups, framed, _ = sl.match(probe)
        assert framed == tuple((s, probe + b" " + s.sid + b" ") for s in plain)
        expected = [s for s in live if naive_match(s.subject, probe)]
        assert sorted(map(id, plain)) == sorted(id(s) for s in expected if s.queue is None)
        got_groups = {g[0].queue: sorted(map(id, g)) for g in groups}
        want_groups: dict[bytes, list[int]] = {}
        for s in expected:
            if s.queue is not None:
                want_groups.setdefault(s.queue, []).append(id(s))
        assert got_groups == {q: sorted(v) for q, v in want_groups.items()}
        assert sl.count == len(live)


def test_removing_unknown_subscription_reports_false() -> None:
    sl = Sublist()
    assert not sl.remove(Subscription(None, b"a.b", None, b"1"))
    sub = Subscription(None, b"a.*", None, b"1")
    sl.insert(sub)
    assert sl.remove(sub)
    assert not sl.remove(sub)


def test_full_wildcard_needs_at_least_one_token() -> None:
    sl = Sublist()
    sl.insert(Subscription(None, b"foo.>", None, b"1"))
    assert sl.match(b"foo") == EMPTY_RESULT
    assert len(sl.match(b"foo.bar.baz")[0]) == 1


def test_cache_is_bounded() -> None:
    from pynats.server.sublist import CACHE_MAX_ENTRIES

    sl = Sublist()
    sl.insert(Subscription(None, b">", None, b"1"))
    for i in range(CACHE_MAX_ENTRIES * 2):
        sl.match(b"s.%d" % i)
    assert len(sl.cache) <= CACHE_MAX_ENTRIES


def test_wildcard_subscribe_invalidates_cached_literal_answers() -> None:
    sl = Sublist()
    assert sl.match(b"orders.new") == EMPTY_RESULT
    sub = Subscription(None, b"orders.*", None, b"1")
    sl.insert(sub)
    assert sl.match(b"orders.new")[0] == (sub,)
    sl.remove(sub)
    assert sl.match(b"orders.new") == EMPTY_RESULT


def test_a_wildcard_subscribe_invalidates_by_whole_tokens() -> None:
    """Cached answers are dropped by the wildcard subject's literal tokens, not by a string
    prefix: `ab.c` is no business of `a.*`, `a.c` and `a.b.c` of `a.>` are."""
    sl = Sublist()
    for subject in (b"a.c", b"ab.c", b"a.b.c", b"b.c"):
        assert sl.match(subject) == EMPTY_RESULT
    one = Subscription(None, b"a.*", None, b"1")
    sl.insert(one)
    assert sl.match(b"a.c")[0] == (one,)
    assert sl.match(b"ab.c") == EMPTY_RESULT
    every = Subscription(None, b"a.>", None, b"2")
    sl.insert(every)
    assert sl.match(b"a.b.c")[0] == (every,)
    assert set(sl.match(b"a.c")[0]) == {one, every}
    anything = Subscription(None, b"*.c", None, b"3")
    sl.insert(anything)
    assert sl.match(b"b.c")[0] == (anything,)
