"""Operator (JWT) mode with the MEMORY resolver: users log in with .creds files as the
official clients send them. Runs against pynats and the Go server with the same files."""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats.errors
import nkeys
import pytest
from tests.conftest import connect
from tests.support import jwts
from tests.support.raw import RawClient
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = Path(tmp_path_factory.mktemp("op"))
    op = jwts.operator()
    sys_acc, app, other = jwts.account(), jwts.account(), jwts.account()
    alice, limited, expired, bounded = jwts.user(), jwts.user(), jwts.user(), jwts.user()
    (base / "op.jwt").write_text(jwts.operator_jwt(op))
    conf = base / "server.conf"
    conf.write_text(f"""
operator: "{base / "op.jwt"}"
system_account: {sys_acc.public_key}
resolver: MEMORY
resolver_preload: {{
  {sys_acc.public_key}: "{jwts.account_jwt(op, sys_acc, "SYS")}"
  {app.public_key}: "{jwts.account_jwt(op, app, "APP", {"conn": 2})}"
  {other.public_key}: "{jwts.account_jwt(op, other, "OTHER", {"subs": 2, "payload": 100})}"
}}
""")
    creds = {
        "alice": jwts.write_creds(base / "alice.creds", jwts.user_jwt(app, alice, "alice"), alice),
        "limited": jwts.write_creds(
            base / "limited.creds",
            jwts.user_jwt(app, limited, "limited", {"pub": {"allow": ["ok.>"]}}),
            limited,
        ),
        "expired": jwts.write_creds(
            base / "expired.creds",
            jwts.user_jwt(app, expired, "expired", exp=int(time.time()) - 60),
            expired,
        ),
        "bounded": jwts.write_creds(
            base / "bounded.creds", jwts.user_jwt(other, bounded, "bounded"), bounded
        ),
        "stranger": jwts.write_creds(
            base / "stranger.creds",
            jwts.user_jwt(jwts.account(), jwts.user(), "stranger"),  # account not preloaded
            jwts.user(),
        ),
    }
    return {"conf": conf, "creds": creds}


@pytest.fixture(scope="module", params=["pynats", "go"])
def server(request: pytest.FixtureRequest, setup: dict[str, Any]) -> Iterator[RunningServer]:
    srv = start_server(["-c", str(setup["conf"])], oracle=request.param == "go")
    yield srv
    srv.stop()


async def test_creds_file_login_and_messaging(server: RunningServer, setup: dict[str, Any]) -> None:
    nc = await connect(server.url, user_credentials=str(setup["creds"]["alice"]))
    assert nc._server_info.get("nonce")
    sub = await nc.subscribe("hello")
    await nc.publish("hello", b"jwt")
    assert (await sub.next_msg(2)).data == b"jwt"
    await nc.close()


async def test_permissions_from_user_jwt(server: RunningServer, setup: dict[str, Any]) -> None:
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    nc = await connect(
        server.url, user_credentials=str(setup["creds"]["limited"]), error_cb=on_error
    )
    await nc.publish("not.ok", b"x")
    await nc.flush()
    await wait_until(lambda: any("permissions violation" in str(e).lower() for e in errors))
    await nc.close()


@pytest.mark.parametrize("who", ["expired", "stranger"])
async def test_bad_users_are_refused(
    server: RunningServer, setup: dict[str, Any], who: str
) -> None:
    with pytest.raises(nats.errors.Error) as info:
        await connect(server.url, user_credentials=str(setup["creds"][who]))
    assert "authorization violation" in str(info.value).lower()


async def test_no_credentials_refused(server: RunningServer) -> None:
    with pytest.raises(nats.errors.Error) as info:
        await connect(server.url)
    assert "authorization violation" in str(info.value).lower()


async def test_account_connection_limit_from_account_jwt(
    server: RunningServer, setup: dict[str, Any]
) -> None:
    creds = str(setup["creds"]["alice"])
    first = await connect(server.url, user_credentials=creds)
    second = await connect(server.url, user_credentials=creds)
    with pytest.raises(nats.errors.Error) as info:
        await connect(server.url, user_credentials=creds)
    assert "maximum account active connections exceeded" in str(info.value).lower()
    await first.close()
    await second.close()


def test_account_subscription_and_payload_limits(
    server: RunningServer, setup: dict[str, Any]
) -> None:
    """Limits from the account JWT: subscriptions over the limit are refused (the connection
    stays) and the lower max_payload is announced in the INFO after CONNECT."""
    jwt, seed = read_creds(setup["creds"]["bounded"])
    with RawClient(server.port) as raw:
        sig = base64.urlsafe_b64encode(nkeys.from_seed(seed).sign(raw.info["nonce"].encode()))
        info = raw.handshake(jwt=jwt, sig=sig.decode().rstrip("="))
        assert info["max_payload"] == 100
        raw.send(b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\n")
        assert raw.ping_pong() == b"-ERR 'maximum subscriptions exceeded'\r\n"


def read_creds(path: Path) -> tuple[str, bytes]:
    lines = [line.strip() for line in path.read_text().splitlines()]
    jwt = next(line for line in lines if line.startswith("eyJ"))
    seed = next(line for line in lines if line.startswith("SU"))
    return jwt, seed.encode()


@pytest.mark.parametrize("oracle", [False, True], ids=["pynats", "go"])
async def test_v1_jwts_as_older_operators_hold_them(tmp_path: Path, oracle: bool) -> None:
    """Operator, accounts and users all in the older JWT format (type at the top level,
    "alg":"ed25519", the signature over the claims part): the server starts, users log in
    with their permissions, and a user JWT whose v1 signature was made the v2 way is refused."""
    op, sys_acc, app = jwts.operator(), jwts.account(), jwts.account()
    alice, bob = jwts.user(), jwts.user()
    (tmp_path / "op.jwt").write_text(jwts.operator_jwt(op, v1=True))
    conf = tmp_path / "server.conf"
    conf.write_text(f"""
operator: "{tmp_path / "op.jwt"}"
system_account: {sys_acc.public_key}
resolver: MEMORY
resolver_preload: {{
  {sys_acc.public_key}: "{jwts.account_jwt(op, sys_acc, "SYS", v1=True)}"
  {app.public_key}: "{jwts.account_jwt(op, app, "APP", v1=True)}"
}}
""")
    alice_creds = jwts.write_creds(
        tmp_path / "alice.creds",
        jwts.user_jwt(app, alice, "alice", {"pub": {"allow": ["ok.>"]}}, v1=True),
        alice,
    )
    header, body, _ = jwts.user_jwt(app, bob, "bob", v1=True).split(".")
    wrong = jwts._b64(app.sign(f"{header}.{body}".encode()))  # signed like a v2 JWT
    bob_creds = jwts.write_creds(tmp_path / "bob.creds", f"{header}.{body}.{wrong}", bob)
    srv = start_server(["-c", str(conf)], oracle=oracle)
    try:
        nc = await connect(srv.url, user_credentials=str(alice_creds))
        sub = await nc.subscribe("ok.>")
        await nc.publish("ok.go", b"allowed")
        await nc.publish("not.ok", b"denied")
        assert (await sub.next_msg(2)).data == b"allowed"
        await nc.close()
        with pytest.raises(nats.errors.Error):
            await connect(srv.url, user_credentials=str(bob_creds))
    finally:
        srv.stop()


@pytest.mark.parametrize("oracle", [False, True], ids=["pynats", "go"])
async def test_a_user_is_disconnected_when_its_jwt_expires(tmp_path: Path, oracle: bool) -> None:
    op, sys_acc, app, short = jwts.operator(), jwts.account(), jwts.account(), jwts.user()
    (tmp_path / "op.jwt").write_text(jwts.operator_jwt(op))
    conf = tmp_path / "server.conf"
    conf.write_text(f"""
operator: "{tmp_path / "op.jwt"}"
system_account: {sys_acc.public_key}
resolver: MEMORY
resolver_preload: {{
  {sys_acc.public_key}: "{jwts.account_jwt(op, sys_acc, "SYS")}"
  {app.public_key}: "{jwts.account_jwt(op, app, "APP")}"
}}
""")
    expires = int(time.time()) + 2
    jwt = jwts.user_jwt(app, short, "short", exp=expires)
    srv = start_server(["-c", str(conf)], oracle=oracle, http_port=-1)
    try:
        with RawClient(srv.port) as raw:
            sig = base64.urlsafe_b64encode(short.sign(raw.info["nonce"].encode()))
            raw.handshake(jwt=jwt, sig=sig.decode().rstrip("="))
            assert raw.ping_pong() == b""  # logged in, until the JWT expires
            line = raw.read_line(timeout=6)
            assert line == b"-ERR 'User Authentication Expired'"
            assert time.time() >= expires - 0.5

        def closed_reason() -> str:
            url = srv.monitor_url + "/connz?state=closed"
            with urllib.request.urlopen(url, timeout=5) as response:
                conns = json.loads(response.read())["connections"]
            return conns[0]["reason"] if conns else ""

        assert await wait_until(closed_reason, timeout=5) == "Authentication Expired"
    finally:
        srv.stop()
