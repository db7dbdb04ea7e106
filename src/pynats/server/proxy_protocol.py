"""The PROXY protocol header (HAProxy's v1 text and v2 binary forms), sans-I/O.

With `proxy_protocol: true` a client connection may start with a header written by the load
balancer in front of the server, carrying the address the balancer saw the client come from:

    PROXY TCP4 192.0.2.7 10.0.0.1 51234 4222\\r\\n                     (v1)
    \\r\\n\\r\\n\\0\\r\\nQUIT\\n <ver|cmd> <family|proto> <len:2> <addresses> <TLVs>   (v2)

As in nats-server the header is optional: the first six bytes decide, and a stream that starts
with anything else is plain NATS, all of its bytes left for the client parser. A LOCAL (v2) or
UNKNOWN (v1) header is a balancer's own health check: it is consumed and the socket's address
kept. v2 TLVs are skipped with the addresses (the length covers both). What is wrong with a
header is told in nats-server's words (the `Error reading PROXY protocol header` warning);
running out of bytes is Go's `io.ReadFull` verdict, `EOF` with none of a part read and
`unexpected EOF` with some.

`parse_header` looks at the bytes received so far and either answers, asks for more (None) or
raises `ProxyHeaderError`; it never consumes anything itself: `ProxyHeader.length` says how
many bytes the header takes.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

V1_PREFIX = b"PROXY "
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX_LINE_BYTES = 107  # the longest v1 line, CRLF included (the spec's TCP6 worst case)
V2_FIXED_BYTES = 16  # signature, version/command, family/protocol, address length
HEADER_TIMEOUT_S = 5.0  # nats-server's proxyProtoReadTimeout

_DETECT_BYTES = len(V1_PREFIX)
_V1_REST_BYTES = V1_MAX_LINE_BYTES - _DETECT_BYTES

_INVALID = "invalid PROXY protocol header"
_UNSUPPORTED = "unsupported PROXY protocol feature"

_CMD_LOCAL = 0x0
_CMD_PROXY = 0x1
_FAMILY_UNSPEC = 0x00
_FAMILY_INET = 0x10
_FAMILY_INET6 = 0x20
_PROTO_STREAM = 0x1
_IPV4_ADDRESSES_BYTES = 12
_IPV6_ADDRESSES_BYTES = 36


class ProxyHeaderError(Exception):
    """A header that cannot be used; the text is what nats-server logs after the address."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """What the start of a stream holds: `length` bytes of header (0 when none was sent) and
    the client's address it carries (None for none, LOCAL and UNKNOWN)."""

    length: int
    source: tuple[str, int] | None = None


NO_HEADER = ProxyHeader(0)


def _short_read(what: str, have: int) -> ProxyHeaderError:
    return ProxyHeaderError(f"{what}: {'unexpected EOF' if have else 'EOF'}")


def parse_header(data: bytes, *, at_eof: bool = False) -> ProxyHeader | None:
    """The header at the start of `data`; None while more bytes are needed. `at_eof`: no more
    will come (the peer closed, or the header's time is up)."""
    if len(data) < _DETECT_BYTES:
        if at_eof:
            raise _short_read("failed to read protocol version", len(data))
        return None
    first = data[:_DETECT_BYTES]
    if first == V1_PREFIX:
        return _parse_v1(data, at_eof)
    if first == V2_SIGNATURE[:_DETECT_BYTES]:
        return _parse_v2(data, at_eof)
    return NO_HEADER


def _parse_v1(data: bytes, at_eof: bool) -> ProxyHeader | None:
    window = data[_DETECT_BYTES:V1_MAX_LINE_BYTES]
    end = window.find(b"\r\n")
    if end < 0:
        if len(window) >= _V1_REST_BYTES:
            raise ProxyHeaderError(f"{_INVALID}: v1 line too long")
        if at_eof:
            raise ProxyHeaderError("failed to read v1 line: EOF")
        return None
    length = _DETECT_BYTES + end + 2
    parts = window[:end].decode("latin-1").split()
    if not parts:
        raise ProxyHeaderError(f"{_INVALID}: invalid v1 format")
    if parts[0] == "UNKNOWN":
        return ProxyHeader(length)
    if len(parts) != 5:
        raise ProxyHeaderError(f"{_INVALID}: invalid v1 format")
    protocol, src_text, dst_text, src_port_text, dst_port_text = parts
    src, dst = _parse_ip(src_text), _parse_ip(dst_text)
    if src is None or dst is None:
        raise ProxyHeaderError(f"{_INVALID}: invalid address")
    src_port = _parse_port(src_port_text, "source")
    _parse_port(dst_port_text, "dest")
    src_is_v6, dst_is_v6 = ":" in src_text, ":" in dst_text
    if protocol == "TCP4" and (src_is_v6 or dst_is_v6):
        raise ProxyHeaderError(f"{_INVALID}: TCP4 with IPv6 address")
    if protocol == "TCP6" and not (src_is_v6 and dst_is_v6):
        raise ProxyHeaderError(f"{_INVALID}: TCP6 with IPv4 address")
    if protocol not in ("TCP4", "TCP6"):
        raise ProxyHeaderError(f"{_INVALID}: invalid protocol {protocol}")
    return ProxyHeader(length, (_ip_text(src), src_port))


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Go's net.ParseIP: dotted quads and IPv6 forms, no zone."""
    if "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _ip_text(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Go's net.IP.String(): an IPv4-mapped IPv6 address is written as the IPv4 one."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _parse_port(text: str, which: str) -> int:
    """Go's strconv.ParseUint(text, 10, 16) and its errors."""
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if not text or not all("0" <= c <= "9" for c in text):
        raise ProxyHeaderError(
            f"invalid {which} port: strconv.ParseUint: parsing {quoted}: invalid syntax"
        )
    value = int(text)
    if value > 0xFFFF:
        raise ProxyHeaderError(
            f"invalid {which} port: strconv.ParseUint: parsing {quoted}: value out of range"
        )
    return value


def _parse_v2(data: bytes, at_eof: bool) -> ProxyHeader | None:
    if len(data) < len(V2_SIGNATURE):
        if at_eof:
            raise _short_read("failed to read v2 signature", len(data) - _DETECT_BYTES)
        return None
    if data[: len(V2_SIGNATURE)] != V2_SIGNATURE:
        raise ProxyHeaderError(f"{_INVALID}: invalid signature")
    if len(data) < V2_FIXED_BYTES:
        if at_eof:
            raise _short_read("failed to read v2 header", len(data) - len(V2_SIGNATURE))
        return None
    ver_cmd, fam_proto, addr_len = struct.unpack_from(">BBH", data, len(V2_SIGNATURE))
    if ver_cmd & 0xF0 != 0x20:
        raise ProxyHeaderError(f"{_INVALID}: invalid version 0x{ver_cmd & 0xF0:02x}")
    command, family, protocol = ver_cmd & 0x0F, fam_proto & 0xF0, fam_proto & 0x0F
    length = V2_FIXED_BYTES + addr_len
    have = len(data) - V2_FIXED_BYTES
    if command == _CMD_LOCAL:
        if have < addr_len:
            if at_eof:
                raise ProxyHeaderError("failed to discard LOCAL command address data: EOF")
            return None
        return ProxyHeader(length)
    if command != _CMD_PROXY:
        raise ProxyHeaderError(f"unknown PROXY protocol command: 0x{command:02x}")
    if protocol != _PROTO_STREAM:
        raise ProxyHeaderError(f"{_UNSUPPORTED}: only STREAM protocol supported")
    if family == _FAMILY_UNSPEC:
        if have < addr_len:
            if at_eof:
                raise ProxyHeaderError("failed to discard UNSPEC address address data: EOF")
            return None
        return ProxyHeader(length)
    if family == _FAMILY_INET:
        name, minimum, ip_bytes = "IPv4", _IPV4_ADDRESSES_BYTES, 4
    elif family == _FAMILY_INET6:
        name, minimum, ip_bytes = "IPv6", _IPV6_ADDRESSES_BYTES, 16
    else:
        raise ProxyHeaderError(f"{_UNSUPPORTED}: unsupported address family 0x{family:02x}")
    if addr_len < minimum:
        raise ProxyHeaderError(f"{name} address data too short: {addr_len} bytes")
    if have < addr_len:
        if at_eof:
            raise _short_read(f"failed to read {name} address data", have)
        return None
    start = V2_FIXED_BYTES
    src = ipaddress.ip_address(data[start : start + ip_bytes])
    (src_port,) = struct.unpack_from(">H", data, start + 2 * ip_bytes)
    return ProxyHeader(length, (_ip_text(src), src_port))
