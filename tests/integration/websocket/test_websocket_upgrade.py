"""The HTTP upgrade and the frames around it, byte for byte against Go's server: the answers
to bad requests (status, text, whether the connection stays), the 101 and its headers, the
log lines, the leaf node path, control frames and broken frames."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from pynats.server import ws_frames
from pynats.server.ws_upgrade import accept_key

from .support import (
    GO,
    KINDS,
    OURS,
    RawWebSocket,
    WsServer,
    client_frame,
    http_exchange,
    new_key,
    upgrade_request,
    without_date,
    ws_server,
)

WS_BLOCK = {"no_tls": True, "headers": {"X-Custom": "hello", "Access-Control-Allow-Origin": "*"}}


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, WsServer]]:
    with ws_server(OURS, WS_BLOCK) as ours, ws_server(GO, WS_BLOCK) as go:
        yield {OURS: ours, GO: go}


@pytest.fixture(scope="module")
def compressing() -> Iterator[dict[str, WsServer]]:
    block = {"no_tls": True, "compression": True}
    with ws_server(OURS, block) as ours, ws_server(GO, block) as go:
        yield {OURS: ours, GO: go}


KEY = new_key()
GOOD = f"Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"

BAD_REQUESTS = {
    "post": ("POST / HTTP/1.1\r\nHost: x\r\n\r\n", "request method must be GET"),
    "head": ("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "request method must be GET"),
    "post-close": (
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "request method must be GET",
    ),
    "no-host-http10": (
        f"GET / HTTP/1.0\r\n{GOOD.replace('Host: x', 'X-No: host')}\r\n",
        "'Host' missing in request",
    ),
    "bad-upgrade": (
        f"GET / HTTP/1.1\r\n{GOOD.replace('Upgrade: websocket', 'Upgrade: h2c')}\r\n",
        "invalid value for header 'Upgrade'",
    ),
    "bad-connection": (
        f"GET / HTTP/1.1\r\n{GOOD.replace('Connection: Upgrade', 'Connection: keep-alive')}\r\n",
        "invalid value for header 'Connection'",
    ),
    "no-key": (
        f"GET / HTTP/1.1\r\n{GOOD.replace(f'Sec-WebSocket-Key: {KEY}', 'X-No: key')}\r\n",
        "key missing",
    ),
    "short-key": (
        f"GET / HTTP/1.1\r\n{GOOD.replace(KEY, 'abc')}\r\n",
        "invalid websocket key",
    ),
    "version-12": (
        f"GET / HTTP/1.1\r\n{GOOD.replace('Version: 13', 'Version: 12')}\r\n",
        "invalid version",
    ),
    "mqtt": (f"GET /mqtt HTTP/1.1\r\n{GOOD}\r\n", "mqtt websocket endpoint not enabled"),
    "no-host-http11": ("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", None),
    "garbage": ("HELLO\r\n\r\n", None),
    "two-in-a-row": ("POST / HTTP/1.1\r\nHost: x\r\n\r\n" * 2, "request method must be GET"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_upgrade_requests_get_nats_server_answers(
    servers: dict[str, WsServer], case: str
) -> None:
    request, reason = BAD_REQUESTS[case]
    answers = {}
    for kind, server in servers.items():
        response, closed = http_exchange(server.ws_port, request.encode(), timeout=0.3)
        answers[kind] = (without_date(response), closed)
        if reason is not None:
            line = server.wait_for_log(re.escape(f"websocket handshake error: {reason}"))
            assert re.search(r"\[ERR\] 127\.0\.0\.1:\d+ - websocket handshake error", line)
    assert answers[OURS] == answers[GO]


def test_data_sent_before_the_handshake_completes_closes_silently(
    servers: dict[str, WsServer],
) -> None:
    for server in servers.values():
        request = upgrade_request() + b"\x82\x80abcd"
        assert http_exchange(server.ws_port, request, timeout=2) == (b"", True)
        server.wait_for_log("websocket handshake error: client sent data before handshake")


def test_the_101_answer_is_nats_servers(servers: dict[str, WsServer]) -> None:
    key = new_key()
    extra = "Nats-No-Masking: true\r\n"
    responses = {
        kind: RawWebSocket.connect(s.ws_port, upgrade_request(key=key, extra=extra)).response
        for kind, s in servers.items()
    }
    fixed = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\nNats-No-Masking: true\r\n"
    )
    for response in responses.values():
        assert response.startswith(fixed)
        # The configured headers come last, in no fixed order (a Go map).
        assert sorted(response[len(fixed) :].split(b"\r\n")) == [
            b"",
            b"",
            b"Access-Control-Allow-Origin: *",
            b"X-Custom: hello",
        ]


def test_compression_is_agreed_with_no_context_takeover(
    compressing: dict[str, WsServer],
) -> None:
    key = new_key()
    extra = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    for server in compressing.values():
        ws = RawWebSocket.connect(server.ws_port, upgrade_request(key=key, extra=extra))
        assert (
            b"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
            b"client_no_context_takeover\r\n" in ws.response
        )
        info = ws.next_frame()
        assert info is not None and info.compressed  # INFO is larger than 64 bytes
        assert ws_frames.inflate_message([info.payload], 0).startswith(b"INFO {")
        ws.send(b'CONNECT {"verbose":false}\r\nPING\r\n')
        pong = ws.next_frame()
        assert pong is not None and (pong.compressed, pong.payload) == (False, b"PONG\r\n")
        ws.close()
        plain = RawWebSocket.connect(server.ws_port)
        assert b"permessage-deflate" not in plain.response
        plain.close()


def test_no_masking_is_honoured_when_asked(servers: dict[str, WsServer]) -> None:
    for server in servers.values():
        ws = RawWebSocket.connect(
            server.ws_port, upgrade_request(extra="Nats-No-Masking: true\r\n")
        )
        ws.next_frame()
        ws.send_raw(ws_frames.frame_header(6) + b"PING\r\n")
        assert ws.read_payload_until(b"PONG\r\n") == b"PONG\r\n"
        ws.close()


def test_leafnode_path_is_upgraded_then_closed_without_leafnodes(
    servers: dict[str, WsServer],
) -> None:
    for server in servers.values():
        ws = RawWebSocket.connect(server.ws_port, upgrade_request("/some/leafnode"))
        assert ws.status == 101
        assert ws.frames_until_closed() == []
        server.wait_for_log(r"\[ERR\] Not configured to accept leaf node connections")


def test_pings_are_answered_with_their_payload(servers: dict[str, WsServer]) -> None:
    for server in servers.values():
        ws = RawWebSocket.connect(server.ws_port)
        ws.next_frame()
        ws.send_raw(
            RawWebSocketFrames.ping(b"are you there")
            + RawWebSocketFrames.data(b'CONNECT {"verbose":false}\r\nPING\r\n')
        )
        pong = ws.next_frame()
        assert pong is not None
        assert (pong.opcode, pong.payload) == (ws_frames.OP_PONG, b"are you there")
        assert ws.read_payload_until(b"PONG\r\n") == b"PONG\r\n"


def test_a_close_frame_is_echoed_and_the_connection_ends(servers: dict[str, WsServer]) -> None:
    for close_body in (b"\x03\xe8bye", b""):
        for server in servers.values():
            ws = RawWebSocket.connect(server.ws_port)
            ws.next_frame()
            ws.send_raw(
                RawWebSocketFrames.data(b'CONNECT {"verbose":false}\r\n')
                + RawWebSocketFrames.close(close_body)
                + RawWebSocketFrames.data(b"PING\r\n")
            )
            frames = ws.frames_until_closed()
            assert [(f.opcode, f.payload) for f in frames] == [(ws_frames.OP_CLOSE, close_body)]


class RawWebSocketFrames:
    """Masked client frames by kind."""

    @staticmethod
    def data(payload: bytes) -> bytes:
        return client_frame(payload)

    @staticmethod
    def ping(payload: bytes) -> bytes:
        return client_frame(payload, ws_frames.OP_PING)

    @staticmethod
    def close(payload: bytes) -> bytes:
        return client_frame(payload, ws_frames.OP_CLOSE)


BROKEN = {
    "unmasked": (ws_frames.frame_header(6) + b"PING\r\n", "mask bit missing"),
    "rsv2": (
        bytes([0xA2]) + RawWebSocketFrames.data(b"PING\r\n")[1:],
        "RSV2 and RSV3 must be clear",
    ),
    "unknown-opcode": (
        bytes([0x83]) + RawWebSocketFrames.data(b"PING\r\n")[1:],
        "unknown opcode 3",
    ),
    "continuation-first": (
        bytes([0x80]) + RawWebSocketFrames.data(b"PING\r\n")[1:],
        "invalid continuation frame",
    ),
    "compressed-not-agreed": (
        bytes([0xC2]) + RawWebSocketFrames.data(b"PING\r\n")[1:],
        "compressed frame received without negotiated permessage-deflate",
    ),
    "close-one-byte": (RawWebSocketFrames.close(b"\x03"), "close frame payload cannot be 1 byte"),
}


@pytest.mark.parametrize("case", list(BROKEN))
@pytest.mark.parametrize("kind", KINDS)
def test_broken_frames_close_the_connection(
    servers: dict[str, WsServer], kind: str, case: str
) -> None:
    server = servers[kind]
    frame, text = BROKEN[case]
    ws = RawWebSocket.connect(server.ws_port)
    ws.next_frame()
    ws.send_raw(frame)
    frames = ws.frames_until_closed()
    server.wait_for_log(re.escape(f"- read error: {text}"))
    # nats-server queues the close frame but may close the socket before writing it.
    if kind == OURS or frames:
        assert [(f.opcode, f.close_status, f.close_text) for f in frames] == [
            (ws_frames.OP_CLOSE, ws_frames.CLOSE_PROTOCOL_ERROR, text)
        ]


@pytest.mark.parametrize("kind", KINDS)
def test_protocol_errors_end_with_the_close_reason(servers: dict[str, WsServer], kind: str) -> None:
    ws = RawWebSocket.connect(servers[kind].ws_port)
    ws.next_frame()
    ws.send(b'CONNECT {"verbose":false}\r\nPUB foo 2000000\r\n')
    frames = ws.frames_until_closed()
    assert frames[0].payload == b"-ERR 'Maximum Payload Violation'\r\n"
    close = frames[-1]
    assert (close.opcode, close.close_status, close.close_text) == (
        ws_frames.OP_CLOSE,
        ws_frames.CLOSE_MESSAGE_TOO_BIG,
        "Maximum Message Payload Exceeded",
    )


def test_log_lines_name_websocket_clients_by_wid_and_forwarded_address(
    servers: dict[str, WsServer],
) -> None:
    """Seen in the trace of nats-server: `10.1.2.3/127.0.0.1:PORT - wid:N`."""
    for server in servers.values():
        ws = RawWebSocket.connect(
            server.ws_port, upgrade_request(extra="X-Forwarded-For: 10.1.2.3\r\n")
        )
        ws.next_frame()
        ws.send_raw(ws_frames.frame_header(6) + b"PING\r\n")  # unmasked
        ws.frames_until_closed()
        server.wait_for_log(r"10\.1\.2\.3/127\.0\.0\.1:\d+ - wid:\d+ - read error: mask bit")
