"""Who may connect over WebSocket, against our server and Go's with the same configuration: the
websocket `authorization {}` block (it applies to websocket clients only), credentials from
cookies, `no_auth_user`, and the Origin checks."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import connect

from pynats.server import ws_frames

from .support import KINDS, RawWebSocket, WsServer, upgrade_request, ws_server

AUTH_BLOCK = {
    "no_tls": True,
    "authorization": {"user": "wsuser", "password": "wspass", "timeout": 2},
    "user_cookie": "nats_user",
    "pass_cookie": "nats_pass",
}
OK = b"PONG\r\n"
DENIED = b"-ERR 'Authorization Violation'\r\n"


@pytest.fixture(scope="module", params=KINDS)
def server(request: pytest.FixtureRequest) -> Iterator[WsServer]:
    with ws_server(request.param, AUTH_BLOCK) as srv:
        yield srv


def raw_connect(server: WsServer, connect: dict[str, str], cookie: str = "") -> list[bytes]:
    """The frames' payloads after CONNECT+PING, until PONG or the close frame."""
    extra = f"Cookie: {cookie}\r\n" if cookie else ""
    ws = RawWebSocket.connect(server.ws_port, upgrade_request(extra=extra))
    ws.next_frame()  # INFO
    ws.send(b"CONNECT " + json.dumps({"verbose": False, **connect}).encode() + b"\r\nPING\r\n")
    out = []
    while True:
        frame = ws.next_frame()
        if frame is None:
            break
        out.append(frame.payload)
        if frame.opcode == ws_frames.OP_CLOSE or frame.payload == OK:
            break
    ws.close()
    return out


def first_info(server: WsServer, request: bytes | None = None) -> dict[str, object]:
    ws = RawWebSocket.connect(server.ws_port, request)
    frame = ws.next_frame()
    ws.close()
    assert frame is not None and frame.payload.startswith(b"INFO ")
    info: dict[str, object] = json.loads(frame.payload[5:])
    return info


def test_websocket_clients_are_told_auth_is_required(server: WsServer) -> None:
    assert first_info(server)["auth_required"] is True


async def test_tcp_clients_are_not_concerned(server: WsServer) -> None:
    nc = await connect(server.url)
    await nc.publish("x", b"")
    await nc.flush()
    await nc.close()


@pytest.mark.parametrize(
    ("connect", "cookie", "answer"),
    [
        ({"user": "wsuser", "pass": "wspass"}, "", OK),
        ({}, "nats_user=wsuser; nats_pass=wspass", OK),
        ({"pass": "wspass"}, "nats_user=wsuser", OK),
        ({"user": "wsuser", "pass": "wspass"}, "nats_user=wsuser; nats_pass=wrong", OK),
        ({}, "", DENIED),
        ({"user": "wsuser", "pass": "wrong"}, "", DENIED),
        ({}, "nats_user=wsuser; nats_pass=wrong", DENIED),
        ({}, "other=wsuser; nats_pass=wspass", DENIED),
    ],
    ids=[
        "connect",
        "cookies",
        "user-cookie-and-connect-password",
        "connect-wins-over-cookie",
        "nothing",
        "wrong-password",
        "wrong-cookie",
        "cookie-with-another-name",
    ],
)
def test_credentials_from_connect_or_cookies(
    server: WsServer, connect: dict[str, str], cookie: str, answer: bytes
) -> None:
    frames = raw_connect(server, connect, cookie)
    assert frames[0] == answer
    if answer == DENIED:
        close = frames[-1]
        assert close[:2] == ws_frames.CLOSE_POLICY_VIOLATION.to_bytes(2, "big")
        assert close[2:] == b"Authentication Failure"


async def test_nats_py_with_credentials_in_the_url(server: WsServer) -> None:
    nc = await connect(f"ws://wsuser:wspass@127.0.0.1:{server.ws_port}")
    sub = await nc.subscribe("a")
    await nc.publish("a", b"hi")
    assert (await sub.next_msg(5)).data == b"hi"
    await nc.close()


@pytest.mark.parametrize("kind", KINDS)
def test_token_in_a_cookie(kind: str) -> None:
    block = {"no_tls": True, "authorization": {"token": "s3cr3t"}, "token_cookie": "tok"}
    with ws_server(kind, block) as server:
        assert raw_connect(server, {}, "tok=s3cr3t")[0] == OK
        assert raw_connect(server, {"auth_token": "s3cr3t"})[0] == OK
        assert raw_connect(server, {}, "tok=wrong")[0] == DENIED


@pytest.mark.parametrize("kind", KINDS)
def test_no_auth_user_of_the_websocket_block(kind: str) -> None:
    top = (
        "accounts { A { users: [{user: a, password: a}] }, B { users: [{user: b, password: b}] } }"
    )
    block = {"no_tls": True, "no_auth_user": "b"}
    with ws_server(kind, block, top=top) as server:
        assert raw_connect(server, {"name": "anon"})[0] == OK
        assert raw_connect(server, {"user": "a", "pass": "a", "name": "a"})[0] == OK
        ws = RawWebSocket.connect(server.ws_port)
        ws.next_frame()
        ws.send(b'CONNECT {"verbose":false,"name":"anon"}\r\nPING\r\n')
        assert ws.read_payload_until(OK) == OK
        conns = server.monitor("/connz?auth=1")["connections"]
        assert [(c["name"], c.get("authorized_user"), c["account"]) for c in conns] == [
            ("anon", "b", "B")
        ]
        ws.close()


ORIGIN_BLOCK = {
    "no_tls": True,
    "same_origin": True,
    "allowed_origins": ["http://app.example.com:8080", "https://127.0.0.1"],
}


@pytest.fixture(scope="module", params=KINDS)
def origin_server(request: pytest.FixtureRequest) -> Iterator[WsServer]:
    with ws_server(request.param, ORIGIN_BLOCK) as srv:
        yield srv


@pytest.mark.parametrize(
    ("host", "origin", "error"),
    [
        ("127.0.0.1", "", None),
        ("app.example.com:8080", "http://app.example.com:8080", None),
        ("APP.example.com:8080", "http://app.EXAMPLE.com:8080", None),
        ("127.0.0.1:443", "https://127.0.0.1", "not same origin"),  # a plain listener
        ("x:1", "ws://x:1", "not same origin"),
        ("[::1]:80", "http://[::1]", "not same origin"),
        ("127.0.0.1", "http://127.0.0.1", "not in the allowed list"),
        ("evil.com", "http://evil.com", "not in the allowed list"),
        ("127.0.0.1", "http://elsewhere.com", "not same origin"),
        ("127.0.0.1", "::bad", 'parse "::bad": missing protocol scheme'),
        ("127.0.0.1", "app.example.com", 'parse "app.example.com": invalid URI for request'),
    ],
)
def test_origins(origin_server: WsServer, host: str, origin: str, error: str | None) -> None:
    extra = f"Origin: {origin}\r\n" if origin else ""
    ws = RawWebSocket.connect(origin_server.ws_port, upgrade_request(host=host, extra=extra))
    if error is None:
        assert ws.status == 101
    else:
        assert ws.status == 403
        origin_server.wait_for_log(
            re.escape(f"websocket handshake error: origin not allowed: {error}")
        )
    ws.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_bearer_jwt_in_a_cookie_in_operator_mode(kind: str, tmp_path: Path) -> None:
    from tests.support import jwts

    op, sys_acc, app = jwts.operator(), jwts.account(), jwts.account()
    (tmp_path / "op.jwt").write_text(jwts.operator_jwt(op))
    top = f"""
operator: "{tmp_path / "op.jwt"}"
system_account: {sys_acc.public_key}
resolver: MEMORY
resolver_preload: {{
  {sys_acc.public_key}: "{jwts.account_jwt(op, sys_acc, "SYS")}"
  {app.public_key}: "{jwts.account_jwt(op, app, "APP")}"
}}
"""
    bearer = jwts.user_jwt(app, jwts.user(), "browser", {"bearer_token": True})
    with ws_server(kind, {"no_tls": True, "jwt_cookie": "nats_jwt"}, top=top) as server:
        assert raw_connect(server, {}, f"nats_jwt={bearer}")[0] == OK
        assert raw_connect(server, {})[0] == DENIED


USERS_BY_TYPE = """authorization {
  users: [
    { user: ws_only, password: p, allowed_connection_types: ["WEBSOCKET"] }
    { user: tcp_only, password: p, allowed_connection_types: ["STANDARD"] }
    { user: anyone, password: p }
  ]
}
"""


@pytest.mark.parametrize("kind", KINDS)
async def test_allowed_connection_types_keep_users_to_their_transport(
    tmp_path: Path, kind: str
) -> None:
    """A user limited to WEBSOCKET cannot come in over plain TCP, and the reverse."""
    from .support import start_ws_server

    srv = start_ws_server(kind, {"no_tls": True}, tmp_path, top=USERS_BY_TYPE)
    try:
        for user, over_ws, allowed in [
            ("ws_only", True, True),
            ("ws_only", False, False),
            ("tcp_only", True, False),
            ("tcp_only", False, True),
            ("anyone", True, True),
            ("anyone", False, True),
        ]:
            if over_ws:
                answer = raw_connect(srv, {"user": user, "pass": "p"})
                assert (answer[-1] == OK) == allowed, (user, answer)
            else:
                from tests.support.raw import RawClient

                with RawClient(srv.port) as raw:
                    raw.send(
                        b'CONNECT {"user":"%s","pass":"p","verbose":false}\r\nPING\r\n'
                        % user.encode()
                    )
                    first = raw.read_line(timeout=3)
                assert (first == b"PONG") == allowed, (user, first)
    finally:
        srv.stop()
