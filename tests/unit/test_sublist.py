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


def assert_naive_answer(sl: Sublist, live: list[Subscription], probe: bytes) -> None:
    """`sl.match(probe)` names exactly the live subscriptions the naive matcher picks (plain
    ones, and queue members grouped by queue name), each framed subscription with its
    `b"<subject> <sid> "` head and each called one with none."""
    plain, groups, framed, _ = sl.match(probe)
    heads = tuple(
        (s, b"" if s.callback is not None else probe + b" " + s.sid + b" ") for s in plain
    )
    assert framed == heads
    expected = [s for s in live if naive_match(s.subject, probe)]
    assert sorted(map(id, plain)) == sorted(id(s) for s in expected if s.queue is None)
    got_groups = {g[0].queue: sorted(map(id, g)) for g in groups}
    want_groups: dict[bytes, list[int]] = {}
    for s in expected:
        if s.queue is not None:
            want_groups.setdefault(s.queue, []).append(id(s))
    assert got_groups == {q: sorted(v) for q, v in want_groups.items()}


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
        assert_naive_answer(sl, live, probe)
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


def _called(*_: object) -> None:
    """An in-process subscriber's callback (a consumer's ack subscription has one)."""


@st.composite
def ack_sub_subjects(draw: st.DrawFn) -> bytes:
    """Subscriptions around ack subjects: a consumer's own `$JS.ACK.<stream>.<consumer>.>`,
    its v2 form, and others cut from an ack subject at any length, with `*` for any token and
    maybe a `>` at the end, that reach into or past the consumer's part."""
    shape = draw(st.sampled_from(["v1", "v2", "cut", "cut"]))
    stream = draw(st.sampled_from([b"S", b"S", b"T"]))
    if shape == "v1":
        return b"$JS.ACK.%b.%b.>" % (stream, draw(st.sampled_from([b"C", b"D"])))
    if shape == "v2":
        return b"$JS.ACK._.H.%b.C.>" % stream
    template = draw(
        st.sampled_from(
            [[b"$JS", b"ACK", stream, b"C"], [b"$JS", b"ACK", b"_", b"H", stream, b"C"]]
        )
    )
    template += [b"%d" % draw(st.integers(1, 2)) for _ in range(5)]
    tokens = template[: draw(st.integers(1, len(template)))]
    tokens = [b"*" if draw(st.integers(0, 3)) == 0 else t for t in tokens]
    if draw(st.booleans()):
        tokens.append(b">")
    return b".".join(tokens)


@st.composite
def ack_subjects(draw: st.DrawFn) -> bytes:
    numbers = [b"%d" % draw(st.integers(1, 2)) for _ in range(5)]
    stream = draw(st.sampled_from([b"S", b"S", b"T"]))
    consumer = draw(st.sampled_from([b"C", b"C", b"D"]))
    if draw(st.booleans()):
        return b".".join([b"$JS", b"ACK", stream, consumer, *numbers])
    return b".".join([b"$JS", b"ACK", b"_", b"H", stream, consumer, *numbers, b"r"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["sub", "sub", "unsub", "match", "match"]),
            ack_sub_subjects(),
            st.sampled_from([None, None, b"q1"]),
            st.integers(0, 3).map(bool),  # called (in-process) mostly, or framed (a client's)
            ack_subjects(),
        ),
        max_size=60,
    )
)
def test_ack_subjects_match_exactly_what_naive_matcher_says(ops: list) -> None:
    """Ack subjects are cached by their consumer's part when nothing past it can change
    the answer; through subscribes and unsubscribes every answer must stay exact."""
    sl = Sublist()
    live: list[Subscription] = []
    for i, (op, subject, queue, called, probe) in enumerate(ops):
        if op == "sub":
            sub = Subscription(None, subject, queue, str(i).encode(), _called if called else None)
            sl.insert(sub)
            live.append(sub)
        elif op == "unsub" and live:
            assert sl.remove(live.pop(i % len(live)))
        assert_naive_answer(sl, live, probe)


def test_a_consumers_ack_subjects_share_one_cached_answer() -> None:
    """Every ack of one consumer gets the same answer object (no trie walk per ack), and a
    subscription that reaches past the consumer's part ends the sharing."""
    sl = Sublist()
    own = Subscription(None, b"$JS.ACK.S.C.>", None, b"1", _called)
    sl.insert(own)
    first = sl.match(b"$JS.ACK.S.C.1.1.1.1700000000000000000.9")
    assert first.psubs == (own,)
    assert sl.match(b"$JS.ACK.S.C.1.2.2.1700000000000000001.8") is first
    one = Subscription(None, b"$JS.ACK.S.C.1.5.>", None, b"2", _called)
    sl.insert(one)
    assert sl.match(b"$JS.ACK.S.C.1.5.5.1700000000000000002.7").psubs == (own, one)
    assert sl.match(b"$JS.ACK.S.C.1.6.6.1700000000000000003.6").psubs == (own,)
