"""The byte counter behind `nats bench sub`: every split of the stream gives the same counts.

The parser takes its fast path over runs of identical frames (compared RUN_BYTES at a time
here, so short streams exercise it), so the stream below mixes runs with frames that differ in
subject, size, headers and payload, and control lines in between.
"""

from __future__ import annotations

import pytest

from pynats.cli.bench.wire import WireError, WireParser


def msg(subject: bytes, payload: bytes, sid: bytes = b"1") -> bytes:
    return b"MSG %s %s %d\r\n%s\r\n" % (subject, sid, len(payload), payload)


RUN_BYTES = 200
HMSG = b"HMSG bench.h 1 12 15\r\nNATS/1.0\r\n\r\nabc\r\n"
STREAM = b"".join(
    [
        b'INFO {"server_id":"x","max_payload":1048576}\r\n',
        msg(b"bench.s", bytes(16)) * 60,
        b"PING\r\n",
        msg(b"bench.s", bytes(16)) * 3,
        msg(b"bench.other", b"MSG bench.s 1 16\r\n"),
        HMSG,
        b"+OK\r\n",
        msg(b"bench.s", bytes(16)) * 5,
        msg(b"bench.s", b"x" * 40, b"1 reply.to"),
        b"PONG\r\n",
        msg(b"bench.s", bytes(16)) * 2,
    ]
)
MESSAGES = 60 + 3 + 1 + 1 + 5 + 1 + 2


def feed(pieces: list[bytes]) -> WireParser:
    parser = WireParser(run_bytes=RUN_BYTES)
    for piece in pieces:
        parser.feed(piece)
    return parser


def test_whole_stream_counts_messages_and_control_lines() -> None:
    parser = feed([STREAM])
    assert parser.msgs == MESSAGES
    assert (parser.pings, parser.pongs) == (1, 1)
    assert parser.infos == [{"server_id": "x", "max_payload": 1048576}]
    assert parser.error is None


def test_every_split_point_gives_the_same_counts() -> None:
    for cut in range(1, len(STREAM)):
        parser = feed([STREAM[:cut], STREAM[cut:]])
        assert (parser.msgs, parser.pings, parser.pongs) == (MESSAGES, 1, 1), cut


def test_byte_by_byte_gives_the_same_counts() -> None:
    parser = feed([STREAM[i : i + 1] for i in range(len(STREAM))])
    assert (parser.msgs, parser.pings, parser.pongs) == (MESSAGES, 1, 1)


def test_server_errors_and_garbage() -> None:
    parser = feed([b"-ERR 'Authorization Violation'\r\n"])
    assert parser.error == "Authorization Violation"
    with pytest.raises(WireError):
        feed([b"HELLO there\r\n"])
    with pytest.raises(WireError):
        feed([b"MSG bench.s 1 sixteen\r\n"])
