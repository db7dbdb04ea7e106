"""A websocket client is an ordinary client underneath: slow consumers are cut, browsers get
small frames, a request that never completes is dropped, and the listener shows up in the
start-up log where nats-server puts it. Each against our server and Go's."""

from __future__ import annotations

import re
import socket
import time

import pytest

from pynats.server import ws_frames

from .support import KINDS, RawWebSocket, http_exchange, upgrade_request, ws_server

CONNECT = b'CONNECT {"verbose":false,"pedantic":false}\r\n'


@pytest.mark.parametrize("kind", KINDS)
def test_start_up_log_names_the_listener_before_the_client_port(kind: str) -> None:
    with ws_server(kind, {"no_tls": True}) as server:
        lines = server.log().splitlines()
        [ws] = [i for i, line in enumerate(lines) if "Listening for websocket clients" in line]
        [client] = [i for i, line in enumerate(lines) if "Listening for client connections" in line]
        assert ws < client
        assert re.search(
            r"\[INF\] Listening for websocket clients on ws://127\.0\.0\.1:\d+$", lines[ws]
        )
        assert lines[ws + 1].endswith(
            "[WRN] Websocket not configured with TLS. DO NOT USE IN PRODUCTION!"
        )


@pytest.mark.parametrize("kind", KINDS)
def test_browsers_get_frames_of_at_most_4096_bytes(kind: str) -> None:
    agent = "User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36\r\n"
    with ws_server(kind, {"no_tls": True}) as server:
        browser = RawWebSocket.connect(server.ws_port, upgrade_request(extra=agent))
        browser.next_frame()
        browser.send(CONNECT + b"SUB big 1\r\nPING\r\n")
        browser.read_payload_until(b"PONG\r\n")
        other = RawWebSocket.connect(server.ws_port)
        other.next_frame()
        payload = b"x" * 20000
        other.send(CONNECT + b"SUB big 1\r\nPUB big 20000\r\n" + payload + b"\r\nPING\r\n")
        data = browser.read_payload_until(payload + b"\r\n")
        assert data == b"MSG big 1 20000\r\n" + payload + b"\r\n"
        assert all(len(f.payload) <= 4096 for f in browser.frames)
        assert len(browser.frames) >= 5
        # Not a browser: the whole flush in one frame.
        other.read_payload_until(payload + b"\r\n")
        assert max(len(f.payload) for f in other.frames) > 20000


@pytest.mark.parametrize("kind", KINDS)
def test_an_upgrade_that_never_completes_is_dropped_after_the_handshake_timeout(
    kind: str,
) -> None:
    with ws_server(kind, {"no_tls": True, "handshake_timeout": "1s"}) as server:
        start = time.monotonic()
        response, closed = http_exchange(server.ws_port, b"GET / HTTP/1.1\r\nHost: x\r\n", 5)
        assert (response, closed) == (b"", True)
        assert 0.8 < time.monotonic() - start < 4


@pytest.mark.parametrize("kind", KINDS)
def test_a_websocket_subscriber_that_does_not_read_is_a_slow_consumer(kind: str) -> None:
    top = 'max_pending: 262144\nmax_payload: 65536\nwrite_deadline: "1s"'
    with ws_server(
        kind,
        {"no_tls": True},
        top=top,
    ) as server:
        lazy = RawWebSocket.connect(server.ws_port)
        lazy.next_frame()
        lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy.send(CONNECT + b"SUB flood 1\r\nPING\r\n")
        lazy.read_payload_until(b"PONG\r\n")
        publisher = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        publisher.recv(4096)
        payload = b"y" * 1000
        batch = b"".join(b"PUB flood 1000\r\n" + payload + b"\r\n" for _ in range(100))
        publisher.sendall(CONNECT)
        deadline = time.monotonic() + 20
        reason = ""
        while time.monotonic() < deadline and not reason:
            publisher.sendall(batch * 10)
            closed = server.monitor("/connz?state=closed")["connections"]
            reason = next((c["reason"] for c in closed if c["type"] == "websocket"), "")
        assert reason.startswith("Slow Consumer")
        assert server.monitor("/varz")["slow_consumers"] >= 1
        publisher.close()
        lazy.close()


@pytest.mark.parametrize("kind", KINDS)
def test_server_shutdown_says_going_away(kind: str) -> None:
    with ws_server(kind, {"no_tls": True}) as server:
        ws = RawWebSocket.connect(server.ws_port)
        ws.next_frame()
        ws.send(CONNECT + b"PING\r\n")
        ws.read_payload_until(b"PONG\r\n")
        server.stop()
        frames = ws.frames_until_closed()
        closes = [f for f in frames if f.opcode == ws_frames.OP_CLOSE]
        # nats-server queues the close frame, and may close the socket before writing it.
        if kind != "go" or closes:
            assert [(f.close_status, f.close_text) for f in closes] == [
                (ws_frames.CLOSE_GOING_AWAY, "Server Shutdown")
            ]


@pytest.mark.parametrize("kind", KINDS)
def test_lame_duck_mode_stops_accepting_websocket_clients(kind: str) -> None:
    import signal

    top = 'lame_duck_duration: "30s"\nlame_duck_grace_period: "10s"'
    with ws_server(kind, {"no_tls": True}, top=top) as server:
        ws = RawWebSocket.connect(server.ws_port)
        ws.next_frame()
        ws.send(CONNECT + b"PING\r\n")
        ws.read_payload_until(b"PONG\r\n")
        server.process.signal(signal.SIGUSR2)
        server.wait_for_log("Entering lame duck mode")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", server.ws_port), timeout=1).close()
            except ConnectionRefusedError:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the websocket port still accepts connections in lame duck mode")
        ws.send(b"PING\r\n")  # clients already there stay until the grace period ends
        assert ws.read_payload_until(b"PONG\r\n").endswith(b"PONG\r\n")
        server.process.kill()  # SIGTERM is ignored in lame duck mode
