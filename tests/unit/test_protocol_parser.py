"""The sans-I/O parser: the same operations whatever the chunking, and the right errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynats.server.protocol import ProtocolError, ProtocolParser


class Recorder:
    def __init__(self) -> None:
        self.ops: list[tuple] = []

    def process_connect(self, arg: bytes) -> None:
        self.ops.append(("CONNECT", arg))

    def process_pub(
        self, subject: bytes, reply: bytes | None, hdr_len: int, payload: bytes
    ) -> None:
        if hdr_len:
            self.ops.append(("HPUB", subject, reply, hdr_len, payload))
        else:
            self.ops.append(("PUB", subject, reply, payload))

    def process_sub(self, subject: bytes, queue: bytes | None, sid: bytes) -> None:
        self.ops.append(("SUB", subject, queue, sid))

    def process_unsub(self, sid: bytes, max_msgs: int) -> None:
        self.ops.append(("UNSUB", sid, max_msgs))

    def process_ping(self) -> None:
        self.ops.append(("PING",))

    def process_pong(self) -> None:
        self.ops.append(("PONG",))


STREAM = (
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
    b"UNSUB 1\r\n"
    b"UNSUB 2 10\r\n"
    b"PONG\r\n"
    b"ping\n"
    b"PING foo\r\n"
    b"+OK\r\n"
    b"INFO {}\r\n"
)
EXPECTED = [
    ("CONNECT", b'{"verbose":false,"headers":true}'),
    ("PING",),
    ("SUB", b"foo", None, b"1"),
    ("SUB", b"bar.*", b"workers", b"2"),
    ("PUB", b"foo", None, b"hello"),
    ("PUB", b"foo", b"reply.to", b""),
    ("HPUB", b"foo", None, 12, b"NATS/1.0\r\n\r\nhi"),
    ("HPUB", b"foo", b"r", 12, b"NATS/1.0\r\n\r\n"),
    ("PUB", b"lower", None, b"abc"),
    ("PUB", b"foo", None, b"ab"),
    ("PUB", b"foo", None, b"\r\n\r\n"),
    ("UNSUB", b"1", 0),
    ("UNSUB", b"2", 10),
    ("PONG",),
    ("PING",),
    ("PING",),
]


def parse(chunks: list[bytes]) -> list[tuple]:
    rec = Recorder()
    parser = ProtocolParser(rec)
    parser.headers_enabled = True
    for chunk in chunks:
        parser.feed(chunk)
    assert parser.buffered == 0
    return rec.ops


def test_pipelined_batch_in_one_chunk() -> None:
    assert parse([STREAM]) == EXPECTED


def test_every_split_point_gives_the_same_operations() -> None:
    for i in range(len(STREAM) + 1):
        assert parse([STREAM[:i], STREAM[i:]]) == EXPECTED, i


def test_byte_by_byte_feeding() -> None:
    assert parse([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_random_chunkings(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    chunks = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    assert parse(chunks) == EXPECTED


def test_large_payload_arriving_in_many_chunks() -> None:
    payload = bytes(range(256)) * 4000
    data = b"PUB big %d\r\n" % len(payload) + payload + b"\r\n"
    ops = parse([data[i : i + 1000] for i in range(0, len(data), 1000)])
    assert ops == [("PUB", b"big", None, payload)]


def feed_error(data: bytes, **kwargs: int) -> ProtocolError:
    parser = ProtocolParser(Recorder(), **kwargs)
    with pytest.raises(ProtocolError) as info:
        parser.feed(data)
    return info.value


@pytest.mark.parametrize(
    "data,err",
    [
        (b"FOO bar\r\n", "Unknown Protocol Operation"),
        (b"PUB foo 2\r\nabc\r\n", "Unknown Protocol Operation"),
        (b"PUB foo 2000000\r\n", "Maximum Payload Violation"),
        (b"PUB foo\r\n", None),
        (b"PUB foo a b c\r\n", None),
        (b"PUB foo -1\r\n", None),
        (b"PUB foo 1_0\r\n", None),
        (b"PUB foo 1234567890\r\n", None),
        (b"SUB\r\n", "Unknown Protocol Operation"),
        (b"PUB\r\n", "Unknown Protocol Operation"),
        (b"MSG foo 1 1\r\nx\r\n", "Unknown Protocol Operation"),
        (b"\r\n", "Unknown Protocol Operation"),
        (b" PING\r\n", "Unknown Protocol Operation"),
        (b"INFOX\r\n", None),
        (b"SUB a b c d\r\n", None),
        (b"UNSUB\r\n", "Unknown Protocol Operation"),
        (b"HPUB foo 2 2\r\nab\r\n", None),  # headers not negotiated
        (b"-ERR 'boom'\r\n", None),
    ],
)
def test_protocol_errors(data: bytes, err: str | None) -> None:
    assert feed_error(data).err == err


def test_control_line_limit() -> None:
    e = feed_error(b"SUB " + b"a" * 5000 + b" 1\r\n")
    assert e.err == "maximum control line exceeded"
    # also while the line is still incomplete
    e = feed_error(b"SUB " + b"a" * 5000)
    assert e.err == "maximum control line exceeded"


def test_header_size_cannot_exceed_total() -> None:
    parser = ProtocolParser(Recorder())
    parser.headers_enabled = True
    with pytest.raises(ProtocolError):
        parser.feed(b"HPUB foo 10 5\r\n12345\r\n")


def test_first_operation_must_be_connect_when_auth_required() -> None:
    parser = ProtocolParser(Recorder())
    parser.awaiting_connect = True
    with pytest.raises(ProtocolError) as info:
        parser.feed(b"PUB foo 1\r\nx\r\n")
    assert info.value.err == "Authorization Violation"


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes_only_raise_protocol_errors(data: bytes) -> None:
    parser = ProtocolParser(Recorder(), max_payload=1000, max_control_line=200)
    parser.headers_enabled = True
    try:
        parser.feed(data)
        parser.feed(data)
    except ProtocolError:
        pass


def test_plain_pubs_go_to_the_plain_route_first_and_the_rest_in_order() -> None:
    """`route_plain_pubs`: every PUB without headers is offered to the plain route (the
    publisher passed along); one it declines, and every HPUB, still reach `process_pub`, all
    in the order they came."""
    rec = Recorder()
    publisher = object()

    def plain(who: object, subject: bytes, reply: bytes | None, payload: bytes) -> bool:
        assert who is publisher
        rec.ops.append(("PLAIN", subject, reply, payload))
        return subject != b"declined"

    parser = ProtocolParser(rec)
    parser.headers_enabled = True
    parser.route_plain_pubs(publisher, plain)
    data = (
        b"PUB a 1\r\nx\r\n"
        b"PUB declined r 2\r\nyz\r\n"
        b"HPUB h 12 12\r\nNATS/1.0\r\n\r\n\r\n"
        b"PUB b r 0\r\n\r\n"
    )
    for i in range(len(data) + 1):
        rec.ops.clear()
        parser.feed(data[:i])
        parser.feed(data[i:])
        assert rec.ops == [
            ("PLAIN", b"a", None, b"x"),
            ("PLAIN", b"declined", b"r", b"yz"),
            ("PUB", b"declined", b"r", b"yz"),
            ("HPUB", b"h", None, 12, b"NATS/1.0\r\n\r\n"),
            ("PLAIN", b"b", b"r", b""),
        ], i
