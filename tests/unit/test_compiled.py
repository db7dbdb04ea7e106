"""The compiled hot modules and their Python source give the same results.

`pynats.server.protocol` and `pynats.server.sublist` are whatever this process imported
(compiled by mypyc after `pip install`, the source under PYNATS_PURE=1); `load_pure` loads
each one's source next to it, so both are compared in the same process on the same inputs.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pynats.jetstream.acks as acks_imported
import pynats.jetstream.store.records as records_imported
import pynats.server.link_protocol as link_imported
import pynats.server.protocol as protocol_imported
import pynats.server.sublist as sublist_imported
from pynats import _compiled

protocol_pure = _compiled.load_pure("pynats.server.protocol")
link_pure = _compiled.load_pure(
    "pynats.server.link_protocol", with_pure=("pynats.server.protocol",)
)
sublist_pure = _compiled.load_pure("pynats.server.sublist")
acks_pure = _compiled.load_pure("pynats.jetstream.acks")
records_pure = _compiled.load_pure("pynats.jetstream.store.records")


def test_pure_modules_are_python_source() -> None:
    for mod in (protocol_pure, link_pure, sublist_pure, acks_pure, records_pure):
        assert mod.__file__.endswith(".py")
        assert not _compiled.is_compiled(mod)
    assert protocol_pure is not protocol_imported


def test_the_mode_is_the_one_asked_for() -> None:
    status = _compiled.status()
    if _compiled.pure_requested():
        assert not any(status.values()), status
    elif os.environ.get("PYNATS_EXPECT_COMPILED") == "1":  # CI: the build must have compiled
        assert all(status.values()), status
    else:  # all or nothing
        assert len(set(status.values())) == 1, status


class Recorder:
    """Any sink: every `process_*` call is recorded with its arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("process_"):
            raise AttributeError(name)
        return lambda *args: self.calls.append((name, *args))


CLIENT_STREAM = (
    b'CONNECT {"verbose":false,"headers":true}\r\n'
    b"PING\r\n"
    b"SUB foo 1\r\n"
    b"SUB bar.* workers 2\r\n"
    b"PUB foo 5\r\nhello\r\n"
    b"PUB foo reply.to 0\r\n\r\n"
    b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
    b"HPUB foo r 12 12\r\nNATS/1.0\r\n\r\n\r\n"
    b"pub lower 3\r\nabc\r\n"
    b"PUB\tfoo\t\t2\r\nab\r\n"
    b"PUB foo 4\r\n\r\n\r\n\r\n"
    b"PUB foo\x0bbar 1\r\nx\r\n"  # every blank split() splits at separates arguments
    b"PUB  foo \x0c r\t  1 \r\nx\r\n"
    b"PUB foo\rbar 1\r\nx\r\n"
    b"PUB " + b"s" * 40 + b" 300\r\n" + bytes(range(256)) + b"x" * 44 + b"\r\n"
    b"UNSUB 1\r\n"
    b"UNSUB 2 10\r\n"
    b"UNSUB 3 x\r\n"
    b"PONG\r\n"
    b"ping\n"
    b"PING foo\r\n"
    b"+OK\r\n"
    b"INFO {}\r\n"
)
BAD_ENDINGS = [
    b"PUB foo 3\r\nabcd\r\n",  # payload longer than announced
    b"PUB foo\r\n",
    b"PUB \r\n",
    b"PUB a b c 1\r\n",  # four arguments
    b"PUB foo 1a\r\nx\r\n",
    b"PUB foo 1234567890\r\n",  # more digits than a size may have
    b"PUB foo 1\r\nxy\r\n",
    b"PUB foo 99999999999\r\n",
    b"SUB\r\n",
    b"FOO bar\r\n",
    b"-ERR 'x'\r\n",
    b"INFO {not json\r\n",
    b"PUB foo 2000\r\n",  # past max_payload
    b"PUB " + b"x" * 300 + b" 1\r\n",  # past max_control_line
]


def run_client_parser(module: Any, chunks: list[bytes]) -> tuple[list[tuple[Any, ...]], Any]:
    rec = Recorder()
    parser = module.ProtocolParser(rec, max_payload=1000, max_control_line=200)
    parser.headers_enabled = True
    error = None
    try:
        for chunk in chunks:
            parser.feed(chunk)
    except Exception as exc:
        error = (type(exc).__name__, exc.err, exc.reason)
    return rec.calls, (error, parser.buffered)


def splits(stream: bytes) -> list[list[bytes]]:
    """The stream whole, cut at every offset, and byte by byte."""
    out = [[stream]]
    out += [[stream[:i], stream[i:]] for i in range(1, len(stream))]
    out.append([stream[i : i + 1] for i in range(len(stream))])
    return out


@pytest.mark.parametrize("ending", [b"", *BAD_ENDINGS])
def test_client_parser_same_calls_at_every_split(ending: bytes) -> None:
    stream = CLIENT_STREAM + ending
    for chunks in splits(stream):
        got = run_client_parser(protocol_imported, chunks)
        assert got == run_client_parser(protocol_pure, chunks), [len(c) for c in chunks]
    if not ending:
        calls, (error, buffered) = got
        assert error is None and buffered == 0 and len(calls) == 21


PUB_PIECES = [b" ", b"\t", b"\x0b", b"\x0c", b"\r", b"a", b"b.c", b"_R_", b"0", b"3", b"12", b"x1"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(PUB_PIECES), max_size=10), st.sampled_from([b"\r\n", b"\n"]))
def test_any_pub_line_parses_the_same(pieces: list[bytes], newline: bytes) -> None:
    """The compiled fast path scans PUB arguments byte by byte, the source splits them."""
    stream = b"PUB " + b"".join(pieces) + newline + b"xyz\r\n" + b"PING\r\n"
    assert run_client_parser(protocol_imported, [stream]) == run_client_parser(
        protocol_pure, [stream]
    )


class HoldingRecorder(Recorder):
    """Holds the parser at every CONNECT (as a client waiting for auth callout does)."""

    parser: Any = None

    def process_connect(self, arg: bytes) -> None:
        self.calls.append(("process_connect", arg))
        self.parser.hold()


def run_held(module: Any, chunks: list[bytes]) -> list[tuple[Any, ...]]:
    rec = HoldingRecorder()
    parser = rec.parser = module.ProtocolParser(rec)
    parser.headers_enabled = True
    for chunk in chunks:
        parser.feed(chunk)
        while parser._held is not None:
            rec.calls.append(("released",))
            parser.feed(parser.release())
    return rec.calls


def test_hold_and_release_same_calls_at_every_split() -> None:
    stream = CLIENT_STREAM + b'CONNECT {"again":1}\r\nPING\r\n'
    for chunks in splits(stream):
        got = run_held(protocol_imported, chunks)
        assert got == run_held(protocol_pure, chunks), [len(c) for c in chunks]
    assert got.count(("released",)) == 2


LINK_STREAM = (
    b"RS+ $G foo\r\n"
    b"RS+ $G bar.* q 3\r\n"
    b"RS- $G foo\r\n"
    b"RMSG $G foo 5\r\nhello\r\n"
    b"RMSG $G foo reply 0\r\n\r\n"
    b"RMSG $G foo + reply q1 q2 2\r\nab\r\n"
    b"RMSG $G foo | q1 1\r\nx\r\n"
    b"HMSG $G foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
    b"PING\r\nPONG\r\n"
    b"-ERR 'oops'\r\n"
)


def run_link_parser(module: Any, chunks: list[bytes]) -> tuple[list[tuple[Any, ...]], Any]:
    rec = Recorder()
    parser = module.LinkParser(rec)
    error = None
    try:
        for chunk in chunks:
            parser.feed(chunk)
    except Exception as exc:
        error = (type(exc).__name__, getattr(exc, "err", None), getattr(exc, "reason", None))
    return rec.calls, (error, parser.buffered)


@pytest.mark.parametrize("ending", [b"", b"RMSG $G foo 3\r\nabcd\r\n", b"XYZ\r\n"])
def test_link_parser_same_calls_at_every_split(ending: bytes) -> None:
    stream = LINK_STREAM + ending
    for chunks in splits(stream):
        got = run_link_parser(link_imported, chunks)
        assert got == run_link_parser(link_pure, chunks), [len(c) for c in chunks]
    assert got[0], "the link stream produced no calls"


# -- sublist ---------------------------------------------------------------------------------

TOKENS = [b"a", b"b", b"c", b"foo", b"bar"]
literal_subjects = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=4).map(b".".join)


@st.composite
def sub_subjects(draw: st.DrawFn) -> bytes:
    tokens = draw(st.lists(st.sampled_from([*TOKENS, b"*"]), min_size=1, max_size=4))
    if draw(st.booleans()):
        tokens.append(b">")
    return b".".join(tokens)


class Link:
    """A connection to another server (its subscriptions are remote interest)."""

    is_link = True

    def __init__(self, name: str) -> None:
        self.name = name


LINKS = [Link("r1"), Link("r2")]
operations = st.lists(
    st.tuples(
        st.sampled_from(["sub", "sub", "unsub", "match"]),
        sub_subjects(),
        st.sampled_from([None, b"q1", b"q2"]),
        literal_subjects,
        st.sampled_from([None, 0, 1]),  # local client, or one of the links
        st.integers(min_value=1, max_value=3),  # weight of a remote queue member
    ),
    max_size=80,
)


def normalised(result: Any) -> tuple[Any, ...]:
    """A match result with subscriptions named by (subject, queue, sid): the two modules'
    Subscription classes differ, their answers must not."""

    def name(s: Any) -> tuple[Any, ...]:
        return (s.subject, s.queue, s.sid)

    psubs, qsubs, framed, links = result
    return (
        [name(s) for s in psubs],
        [[name(s) for s in group] for group in qsubs],
        [(name(s), head) for s, head in framed],
        [link.name for link in links],
    )


@settings(max_examples=300, deadline=None)
@given(operations)
def test_sublist_same_matches(ops: list[Any]) -> None:
    lists = [sublist_imported.Sublist(), sublist_pure.Sublist()]
    live: list[list[Any]] = [[], []]
    for i, (op, subject, queue, probe, link, weight) in enumerate(ops):
        if op == "sub":
            client = None if link is None else LINKS[link]
            for mod, sl, subs in zip((sublist_imported, sublist_pure), lists, live, strict=True):
                sub = mod.Subscription(client, subject, queue, b"%d" % i)
                if client is not None and queue is not None:
                    sub.weight = weight
                sl.insert(sub)
                subs.append(sub)
        elif op == "unsub" and live[0]:
            at = i % len(live[0])
            removed = [sl.remove(subs.pop(at)) for sl, subs in zip(lists, live, strict=True)]
            assert removed == [True, True]
        results = [normalised(sl.match(probe)) for sl in lists]
        assert results[0] == results[1]
        assert lists[0].count == lists[1].count
        assert lists[0].has_interest(probe) == lists[1].has_interest(probe)
    assert sorted(s.sid for s in lists[0].all_subscriptions()) == sorted(
        s.sid for s in lists[1].all_subscriptions()
    )


# -- JetStream: ack subjects and store records ----------------------------------------------

ACK_PIECES = [b".", b"$JS", b"ACK", b"S", b"0", b"7", b"42", b"-1", b"+3", b" 5", b"1_0", b"x"]
ACK_PIECES += [b"9" * 18, b"9" * 19, b"123456789012345678901"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(ACK_PIECES), max_size=24))
def test_any_ack_subject_parses_the_same(pieces: list[bytes]) -> None:
    """The compiled ack parser scans digits itself and leaves signs, blanks, underscores and
    long numbers to int(), as the source does for all of them."""
    subject = b"".join(pieces)
    assert acks_imported.parse_subject(subject) == acks_pure.parse_subject(subject)


@pytest.mark.parametrize(
    "subject",
    [
        b"$JS.ACK.ORDERS.worker.3.42.17.1714550000123456789.5",
        b"$JS.ACK.hub.ACCHASH1.ORDERS.worker.3.42.17.1714550000123456789.5",
        b"$JS.ACK.hub.ACCHASH1.ORDERS.worker.3.42.17.1714550000123456789.5.x.y",
        b"$JS.ACK.S.C.0.0.0.0.0",
        b"$JS.ACK.S.C.1.2.3.4",
        b"$JS.ACK.S.C..2.3.4.5",
        b"$JS.ACK.S.C.1.-2.3.4.5",
        b"$JS.ACK.S.C.1.2.3.4.5.6",
        b"",
    ],
)
def test_ack_subjects_parse_the_same(subject: bytes) -> None:
    assert acks_imported.parse_subject(subject) == acks_pure.parse_subject(subject)


record_fields = st.tuples(
    st.sampled_from([1, 2, 6, 16, 21]),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, -1, 5_000_000_000]),
    st.binary(max_size=40),
    st.binary(max_size=60),
    st.binary(max_size=200),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(record_fields, min_size=1, max_size=6), st.integers(min_value=0, max_value=400))
def test_records_encode_decode_and_scan_the_same(fields: list[Any], flip: int) -> None:
    """The same bytes from both encoders; both decoders and scanners agree on them, also
    once one byte is flipped (damage) or the tail is cut (a torn write)."""
    encoded = [records_imported.encode(*f) for f in fields]
    assert encoded == [records_pure.encode(*f) for f in fields]
    for blob, f in zip(encoded, fields, strict=True):
        assert records_imported.decode(blob) == records_pure.decode(blob)
        assert records_imported.decode(blob)[:4] == (f[0], f[1], f[2], f[3])
    log = b"".join(encoded)
    damaged = bytearray(log)
    damaged[flip % len(log)] ^= 0x41
    for data in (log, bytes(damaged), log[: len(log) - 1 - flip % 40]):
        assert list(records_imported.scan(data, 0)) == list(records_pure.scan(data, 0))
    seqs = [f[1] for f in fields]
    body = records_imported.encode_seqs(records_imported.KIND_DELETE, seqs)
    assert body == records_pure.encode_seqs(records_pure.KIND_DELETE, seqs)
