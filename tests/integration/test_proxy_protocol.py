"""`proxy_protocol: true`: a client connection behind a load balancer starts with a PROXY
protocol header (v1 text or v2 binary) naming the client's address. The same file is started
on pynats and the Go server; /connz, the log and what the client sees are compared."""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import ssl
import struct
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from tests.support.raw import RawClient, connect_line
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until_sync

KINDS = ["pynats", "go"]
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(command: int, family: int, addresses: bytes, tlvs: bytes = b"") -> bytes:
    body = addresses + tlvs
    return V2_SIGNATURE + bytes((0x20 | command, family)) + struct.pack(">H", len(body)) + body


def v2_addresses(src: str, dst: str, sport: int, dport: int) -> bytes:
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    return a.packed + b.packed + struct.pack(">HH", sport, dport)


def connz(server: RunningServer, query: str = "") -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{server.monitor_url}/connz{query}") as resp:
        conns: list[dict[str, Any]] = json.loads(resp.read())["connections"]
    return conns


@pytest.fixture(scope="module", params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def server(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    conf = tmp_path_factory.mktemp(f"proxy-{kind}") / "server.conf"
    conf.write_text("proxy_protocol: true\ndebug: true\n")
    srv = start_server(["-c", str(conf)], oracle=kind == "go", http_port=-1)
    try:
        yield srv
    finally:
        srv.stop()


def address_seen(server: RunningServer, header: bytes) -> tuple[str, int]:
    """Send `header` (then CONNECT and PING in the same write) and return the client's
    ip/port in /connz while it is connected."""
    with RawClient(server.port) as raw:
        raw.send(header + connect_line(name="behind-lb") + b"PING\r\n")
        raw.read_until(b"PONG\r\n")
        (conn,) = [c for c in connz(server) if c.get("name") == "behind-lb"]
        return conn["ip"], conn["port"]


def test_the_startup_log_says_proxy_protocol_is_on(server: RunningServer) -> None:
    server.wait_for_log(r"\[INF\] PROXY protocol enabled for client connections$")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(
            b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 4222\r\n", ("192.0.2.7", 51234), id="v1"
        ),
        pytest.param(
            b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 4222\r\n",
            ("2001:db8::7", 40000),
            id="v1-tcp6",
        ),
        pytest.param(
            b"PROXY TCP6 ::ffff:198.51.100.9 ::1 9 10\r\n", ("198.51.100.9", 9), id="v1-mapped"
        ),
        pytest.param(
            v2_header(1, 0x11, v2_addresses("203.0.113.5", "10.0.0.1", 5555, 4222)),
            ("203.0.113.5", 5555),
            id="v2-ipv4",
        ),
        pytest.param(
            v2_header(
                1,
                0x21,
                v2_addresses("2001:db8::5", "::1", 7, 8),
                tlvs=bytes((0x04, 0, 3)) + b"abc",  # a TLV (NOOP): skipped with the addresses
            ),
            ("2001:db8::5", 7),
            id="v2-ipv6-tlv",
        ),
    ],
)
def test_the_header_names_the_client(
    server: RunningServer, header: bytes, expected: tuple[str, int]
) -> None:
    assert address_seen(server, header) == expected


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"", id="none"),
        pytest.param(b"PROXY UNKNOWN\r\n", id="v1-unknown"),
        pytest.param(v2_header(0, 0x11, bytes(12)), id="v2-local"),
        pytest.param(v2_header(1, 0x01, b"xyz"), id="v2-unspec"),
    ],
)
def test_without_an_address_the_socket_peer_is_the_client(
    server: RunningServer, header: bytes
) -> None:
    assert address_seen(server, header)[0] == "127.0.0.1"


def test_the_header_arrives_in_pieces(server: RunningServer) -> None:
    with RawClient(server.port) as raw:
        for part in (b"PRO", b"XY TCP4 192.0.2.8 10.0.0.1 ", b"1 2\r", b"\n"):
            raw.send(part)
        raw.send(connect_line(name="pieces") + b"PING\r\n")
        raw.read_until(b"PONG\r\n")
        (conn,) = [c for c in connz(server) if c.get("name") == "pieces"]
        assert (conn["ip"], conn["port"]) == ("192.0.2.8", 1)


def test_log_lines_keep_naming_the_socket(server: RunningServer) -> None:
    with RawClient(server.port) as raw:
        local_port = raw.sock.getsockname()[1]
        raw.send(
            b"PROXY TCP4 192.0.2.9 10.0.0.1 7 8\r\n" + connect_line(name="logged") + b"PING\r\n"
        )
        raw.read_until(b"PONG\r\n")
    line = server.wait_for_log(r'"logged" - Client connection closed: Client Closed$')
    assert f"127.0.0.1:{local_port} - cid:" in line


BAD_HEADERS = [
    (b"PROXY TCP4 300.1.1.1 10.0.0.1 1 2\r\n", "invalid PROXY protocol header: invalid address"),
    (
        b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n",
        'invalid source port: strconv.ParseUint: parsing "99999": value out of range',
    ),
    (
        b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
        "invalid PROXY protocol header: TCP6 with IPv4 address",
    ),
    (b"PROXY FOO 1.2.3.4 5.6.7.8 1 2\r\n", "invalid PROXY protocol header: invalid protocol FOO"),
    (b"PROXY TCP4 1.2.3.4\r\n", "invalid PROXY protocol header: invalid v1 format"),
    (b"PROXY " + b"x" * 120, "invalid PROXY protocol header: v1 line too long"),
    (V2_SIGNATURE[:11] + b"X\x21\x11\x00\x0c", "invalid PROXY protocol header: invalid signature"),
    (V2_SIGNATURE + b"\x31\x11\x00\x0c", "invalid PROXY protocol header: invalid version 0x30"),
    (V2_SIGNATURE + b"\x22\x11\x00\x0c", "unknown PROXY protocol command: 0x02"),
    (
        V2_SIGNATURE + b"\x21\x12\x00\x0c",
        "unsupported PROXY protocol feature: only STREAM protocol supported",
    ),
    (
        V2_SIGNATURE + b"\x21\x31\x00\x0c",
        "unsupported PROXY protocol feature: unsupported address family 0x30",
    ),
    (V2_SIGNATURE + b"\x21\x11\x00\x04abcd", "IPv4 address data too short: 4 bytes"),
]


@pytest.mark.parametrize(("header", "why"), BAD_HEADERS, ids=[w for _, w in BAD_HEADERS])
def test_a_bad_header_is_warned_and_the_connection_closed(
    server: RunningServer, header: bytes, why: str
) -> None:
    with RawClient(server.port) as raw:
        local_port = raw.sock.getsockname()[1]
        raw.send(header)
        assert raw.read_all_until_closed() == b""  # no -ERR, the connection just ends
    line = server.wait_for_log(
        rf"\[WRN\] Error reading PROXY protocol header from 127\.0\.0\.1:{local_port}: "
    )
    assert line.endswith(f": {why}")
    # nats-server logs the header's error before it has recorded the closed connection
    reasons = wait_until_sync(
        lambda: [c["reason"] for c in connz(server, "?state=closed") if c["port"] == local_port],
        what="the closed connection",
    )
    assert reasons == ["Protocol Violation"]


@pytest.mark.parametrize(
    ("sent", "why"),
    [
        (b"", "failed to read protocol version: EOF"),
        (b"PIN", "failed to read protocol version: unexpected EOF"),
        (b"PROXY TCP4 1.2", "failed to read v1 line: EOF"),
        (V2_SIGNATURE[:6], "failed to read v2 signature: EOF"),
        (V2_SIGNATURE, "failed to read v2 header: EOF"),
        (
            V2_SIGNATURE + b"\x21\x11\x00\x0c\x01\x02",
            "failed to read IPv4 address data: unexpected EOF",
        ),
        (
            V2_SIGNATURE + b"\x20\x00\x00\x04\x01",
            "failed to discard LOCAL command address data: EOF",
        ),
    ],
)
def test_a_peer_that_leaves_inside_the_header(server: RunningServer, sent: bytes, why: str) -> None:
    with RawClient(server.port) as raw:
        local_port = raw.sock.getsockname()[1]
        raw.send(sent)
    line = server.wait_for_log(
        rf"\[WRN\] Error reading PROXY protocol header from 127\.0\.0\.1:{local_port}: "
    )
    assert line.endswith(f": {why}")


def test_a_silent_client_is_closed_after_five_seconds(server: RunningServer) -> None:
    with RawClient(server.port) as raw:
        local_port = raw.sock.getsockname()[1]
        assert raw.is_closed(timeout=8.0)
    line = server.wait_for_log(
        rf"\[WRN\] Error reading PROXY protocol header from 127\.0\.0\.1:{local_port}: "
    )
    assert line.endswith(": failed to read protocol version: EOF")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    where = tmp_path_factory.mktemp("proxy-pki")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {"cert": str(where / "cert.pem"), "key": str(where / "key.pem")}
    paths["ca"] = str(where / "ca.pem")
    cert.cert_chain_pems[0].write_to_path(paths["cert"])
    cert.private_key_pem.write_to_path(paths["key"])
    ca.cert_pem.write_to_path(paths["ca"])
    return paths


@pytest.mark.parametrize("coalesced", [False, True], ids=["apart", "with-client-hello"])
def test_with_tls_the_header_comes_between_info_and_the_handshake(
    kind: str, pki: dict[str, str], tmp_path: Path, coalesced: bool
) -> None:
    conf = tmp_path / "tls.conf"
    conf.write_text(
        f'proxy_protocol: true\ntls {{ cert_file: "{pki["cert"]}", key_file: "{pki["key"]}" }}\n'
    )
    srv = start_server(["-c", str(conf)], oracle=kind == "go", http_port=-1)
    try:
        context = ssl.create_default_context(cafile=pki["ca"])
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            info = sock.recv(65536)
            assert info.startswith(b"INFO ") and b'"tls_required":true' in info
            header = b"PROXY TCP4 192.0.2.10 10.0.0.1 4444 4222\r\n"
            if coalesced:
                # The header and the ClientHello in one segment, as a balancer may send them.
                incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
                tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
                with pytest.raises(ssl.SSLWantReadError):
                    tls.do_handshake()
                sock.sendall(header + outgoing.read())
                while True:
                    incoming.write(sock.recv(65536))
                    try:
                        tls.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        sock.sendall(outgoing.read())
                sock.sendall(outgoing.read())
                tls.write(connect_line(name="tls-lb") + b"PING\r\n")
                sock.sendall(outgoing.read())
                got = b""
                while b"PONG" not in got:
                    try:
                        got += tls.read(65536)
                    except ssl.SSLWantReadError:
                        incoming.write(sock.recv(65536))
            else:
                sock.sendall(header)
                with context.wrap_socket(sock, server_hostname="127.0.0.1") as tls_sock:
                    tls_sock.sendall(connect_line(name="tls-lb") + b"PING\r\n")
                    got = b""
                    while b"PONG" not in got:
                        got += tls_sock.recv(65536)
                    seen = [(c["ip"], c["port"]) for c in connz(srv) if c.get("name") == "tls-lb"]
                assert seen == [("192.0.2.10", 4444)]
                return
            seen = [(c["ip"], c["port"]) for c in connz(srv) if c.get("name") == "tls-lb"]
            assert seen == [("192.0.2.10", 4444)]
    finally:
        srv.stop()


def test_without_the_option_a_header_is_a_protocol_error(kind: str, tmp_path: Path) -> None:
    srv = start_server(oracle=kind == "go")
    try:
        with RawClient(srv.port) as raw:
            raw.send(b"PROXY TCP4 192.0.2.7 10.0.0.1 51234 4222\r\n")
            assert re.match(rb"-ERR 'Unknown Protocol Operation'", raw.read_all_until_closed())
    finally:
        srv.stop()
