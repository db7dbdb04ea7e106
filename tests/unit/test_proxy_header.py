"""The PROXY protocol header parser (sans-I/O): every split of the stream gives the same
answer, and what nats-server refuses is refused with its words."""

from __future__ import annotations

import struct

import pytest

from pynats.server.proxy_protocol import (
    NO_HEADER,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyHeaderError,
    parse_header,
)

CLIENT_BYTES = b"CONNECT {}\r\nPING\r\n"


def v2(command: int, family: int, body: bytes) -> bytes:
    return V2_SIGNATURE + bytes((0x20 | command, family)) + struct.pack(">H", len(body)) + body


HEADERS = [
    (b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 4222\r\n", ("192.0.2.7", 51234)),
    (b"PROXY TCP6 ::ffff:1.2.3.4 ::1 9 10\r\n", ("1.2.3.4", 9)),
    (b"PROXY UNKNOWN\r\n", None),
    (
        v2(1, 0x11, bytes((10, 1, 2, 3, 10, 0, 0, 1)) + struct.pack(">HH", 5555, 4222)),
        ("10.1.2.3", 5555),
    ),
    (v2(1, 0x11, bytes(8) + struct.pack(">HH", 1, 2) + b"\x04\x00\x01x"), ("0.0.0.0", 1)),
    (v2(0, 0x00, b""), None),
    (v2(1, 0x01, b"abc"), None),
]


@pytest.mark.parametrize(("header", "source"), HEADERS)
def test_the_header_is_found_whatever_the_split(
    header: bytes, source: tuple[str, int] | None
) -> None:
    stream = header + CLIENT_BYTES
    for cut in range(len(header)):
        assert parse_header(stream[:cut]) is None, cut
    for end in range(len(header), len(stream) + 1):
        assert parse_header(stream[:end]) == ProxyHeader(len(header), source)


def test_a_stream_without_a_header_is_left_whole() -> None:
    assert parse_header(b"CONN") is None
    assert parse_header(b"CONNECT {}\r\n") == NO_HEADER
    assert parse_header(b"PING\r\n") == NO_HEADER


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"PROXY TCP4 ::ffff:1.2.3.4 1.1.1.1 1 2\r\n", "TCP4 with IPv6 address"),
        (b"PROXY TCP4 1.2.3.4 1.1.1.1 +1 2\r\n", 'parsing "+1": invalid syntax'),
        (
            b"PROXY TCP4 1.2.3.4 1.1.1.1 1 70000\r\n",
            'dest port: strconv.ParseUint: parsing "70000"',
        ),
        (b"PROXY TCP4 01.2.3.4 1.1.1.1 1 2\r\n", "invalid address"),
        (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "invalid address"),
        (b"PROXY \r\n", "invalid v1 format"),
    ],
)
def test_refusals(data: bytes, why: str) -> None:
    with pytest.raises(ProxyHeaderError, match=why.replace("+", r"\+")):
        parse_header(data)


def test_a_v1_line_may_take_107_bytes_and_no_more() -> None:
    line = b"PROXY UNKNOWN " + b"x" * (107 - 16) + b"\r\n"
    assert len(line) == 107
    assert parse_header(line) == ProxyHeader(107)
    with pytest.raises(ProxyHeaderError, match="v1 line too long"):
        parse_header(line[:-2] + b"x\r\n")
