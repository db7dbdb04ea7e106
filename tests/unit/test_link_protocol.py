"""The server-to-server parser: every form nats-server sends on a route, split anywhere."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynats.server.link_protocol import LinkParser
from pynats.server.protocol import ProtocolError


class Recorder:
    def __init__(self) -> None:
        self.ops: list[tuple[Any, ...]] = []

    def process_info(self, arg: bytes) -> None:
        self.ops.append(("INFO", arg))

    def process_connect(self, arg: bytes) -> None:
        self.ops.append(("CONNECT", arg))

    def process_ping(self) -> None:
        self.ops.append(("PING",))

    def process_pong(self) -> None:
        self.ops.append(("PONG",))

    def process_err(self, text: bytes) -> None:
        self.ops.append(("ERR", text))

    def process_remote_sub(
        self,
        origin: bytes | None,
        account: bytes | None,
        subject: bytes,
        queue: bytes | None,
        weight: int,
    ) -> None:
        self.ops.append(("SUB", origin, account, subject, queue, weight))

    def process_remote_unsub(
        self, origin: bytes | None, account: bytes | None, subject: bytes, queue: bytes | None
    ) -> None:
        self.ops.append(("UNSUB", origin, account, subject, queue))

    def process_rmsg(
        self, account: bytes | None, subject: bytes, reply: bytes | None, msg: bytes
    ) -> None:
        self.ops.append(("MSG", None, account, subject, reply, None, 0, msg))

    def process_routed_msg(
        self,
        origin: bytes | None,
        account: bytes | None,
        subject: bytes,
        reply: bytes | None,
        queues: list[bytes] | None,
        hdr_len: int,
        msg: bytes,
    ) -> None:
        self.ops.append(("MSG", origin, account, subject, reply, queues, hdr_len, msg))


# What a Go 2.15 server sends on a pooled route (captured on the wire), and what it means.
ROUTE_STREAM = (
    b'INFO {"server_id":"NA","route_pool_size":3}\r\n'
    b"RS+ $G foo\r\n"
    b"RS+ $G q.* grp 1\r\n"
    b"LS+ LEAF1 $G bar.> lq 2\r\n"
    b"RMSG $G foo r.1 2\r\nhi\r\n"
    b"RMSG $G q.x | grp 2\r\nhi\r\n"
    b"RMSG $G q.x + r.2 grp other 0\r\n\r\n"
    b"HMSG $G foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
    b"HMSG $G foo + r.3 grp 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"
    b"LMSG LEAF1 $G bar.x | lq 0 3\r\nabc\r\n"
    b"RS- $G foo\r\n"
    b"RS- $G q.* grp\r\n"
    b"LS- LEAF1 $G bar.> lq\r\n"
    b"PING\r\nPONG\r\n"
    b"-ERR 'Duplicate Route'\r\n"
)
ROUTE_OPS = [
    ("INFO", b'{"server_id":"NA","route_pool_size":3}'),
    ("SUB", None, b"$G", b"foo", None, 0),
    ("SUB", None, b"$G", b"q.*", b"grp", 1),
    ("SUB", b"LEAF1", b"$G", b"bar.>", b"lq", 2),
    ("MSG", None, b"$G", b"foo", b"r.1", None, 0, b"hi"),
    ("MSG", None, b"$G", b"q.x", None, [b"grp"], 0, b"hi"),
    ("MSG", None, b"$G", b"q.x", b"r.2", [b"grp", b"other"], 0, b""),
    ("MSG", None, b"$G", b"foo", None, None, 12, b"NATS/1.0\r\n\r\nhi"),
    ("MSG", None, b"$G", b"foo", b"r.3", [b"grp"], 12, b"NATS/1.0\r\n\r\nhi"),
    ("MSG", b"LEAF1", b"$G", b"bar.x", None, [b"lq"], 0, b"abc"),
    ("UNSUB", None, b"$G", b"foo", None),
    ("UNSUB", None, b"$G", b"q.*", b"grp"),
    ("UNSUB", b"LEAF1", b"$G", b"bar.>", b"lq"),
    ("PING",),
    ("PONG",),
    ("ERR", b"'Duplicate Route'"),
]


def parse(data: bytes, **kwargs: Any) -> list[tuple[Any, ...]]:
    rec = Recorder()
    LinkParser(rec, **kwargs).feed(data)
    return rec.ops


def test_every_route_operation_is_understood() -> None:
    assert parse(ROUTE_STREAM) == ROUTE_OPS


def test_the_stream_split_at_every_offset_gives_the_same_operations() -> None:
    for cut in range(1, len(ROUTE_STREAM)):
        rec = Recorder()
        parser = LinkParser(rec)
        parser.feed(ROUTE_STREAM[:cut])
        parser.feed(ROUTE_STREAM[cut:])
        assert rec.ops == ROUTE_OPS, cut


def test_a_pinned_route_leaves_the_account_out() -> None:
    ops = parse(
        b"RS+ $SYS.REQ.SERVER.PING\r\nRMSG $SYS.SERVER.X.STATSZ 2\r\n{}\r\n",
        account_in_line=False,
    )
    assert ops == [
        ("SUB", None, None, b"$SYS.REQ.SERVER.PING", None, 0),
        ("MSG", None, None, b"$SYS.SERVER.X.STATSZ", None, None, 0, b"{}"),
    ]


def test_a_leaf_connection_has_no_origin_and_plain_lmsg() -> None:
    ops = parse(
        b"LS+ foo.x\r\nLS+ work grp 2\r\nLMSG foo.x r.1 7\r\npayload\r\n"
        b"LMSG work | grp 4\r\ntask\r\nHMSG foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nLS- work grp\r\n",
        account_in_line=False,
        leaf=True,
    )
    assert ops == [
        ("SUB", None, None, b"foo.x", None, 0),
        ("SUB", None, None, b"work", b"grp", 2),
        ("MSG", None, None, b"foo.x", b"r.1", None, 0, b"payload"),
        ("MSG", None, None, b"work", None, [b"grp"], 0, b"task"),
        ("MSG", None, None, b"foo", None, None, 12, b"NATS/1.0\r\n\r\nhi"),
        ("UNSUB", None, None, b"work", b"grp"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        b"RMSG $G foo\r\n",  # no size
        b"RMSG $G foo x y\r\nhi\r\n",  # size not a number
        b"RMSG $G foo ? r q 2\r\nhi\r\n",  # bad queue marker
        b"HMSG $G foo 20 14\r\n" + b"x" * 14 + b"\r\n",  # header longer than the message
        b"RMSG $G foo 2\r\nhello\r\n",  # payload longer than announced
        b"RS+ $G\r\n",
        b"RS+ $G foo grp\r\n",  # queue without weight
        b"RS+ $G foo grp -1\r\n",
        b"BOGUS x\r\n",
        b"INFO not-json\r\n",
    ],
)
def test_malformed_lines_close_the_connection(line: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse(line)


def test_a_control_line_may_not_grow_without_bound() -> None:
    rec = Recorder()
    parser = LinkParser(rec, max_control_line=64)
    with pytest.raises(ProtocolError):
        parser.feed(b"RS+ $G " + b"a" * 100)


def test_connect_must_come_first_when_awaited() -> None:
    rec = Recorder()
    parser = LinkParser(rec)
    parser.awaiting_connect = True
    with pytest.raises(ProtocolError):
        parser.feed(b"RS+ $G foo\r\n")


class Holder(Recorder):
    """Holds the parser at CONNECT, as a hub does while an auth callout decides a leaf."""

    parser: LinkParser

    def process_connect(self, arg: bytes) -> None:
        super().process_connect(arg)
        self.parser.hold()


def test_hold_at_connect_keeps_what_follows_until_release() -> None:
    rec = Holder()
    parser = rec.parser = LinkParser(rec, account_in_line=False, leaf=True)
    parser.awaiting_connect = True
    parser.feed(b'CONNECT {"name":"L"}\r\nPING\r\nLS+ fo')
    parser.feed(b"o\r\n")
    assert rec.ops == [("CONNECT", b'{"name":"L"}')]
    parser.awaiting_connect = False
    rest = parser.release()
    assert rest == b"PING\r\nLS+ foo\r\n"
    parser.feed(rest)
    assert rec.ops[1:] == [("PING",), ("SUB", None, None, b"foo", None, 0)]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_either_parses_or_raises_protocol_error(data: bytes) -> None:
    parser = LinkParser(Recorder())
    try:
        parser.feed(data)
    except ProtocolError:
        pass
