"""--user/--pass and --auth: good credentials get in, everything else is an Authorization
Violation, exactly as nats-server answers it."""

from __future__ import annotations

from collections.abc import Iterator

import bcrypt
import nats.errors
import pytest
from tests.conftest import connect
from tests.support.raw import RawClient, connect_line
from tests.support.servers import RunningServer, start_server


@pytest.fixture(scope="module")
def user_server() -> Iterator[RunningServer]:
    srv = start_server(["--user", "alice", "--pass", "s3cret"])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def token_server() -> Iterator[RunningServer]:
    srv = start_server(["--auth", "tok-123"])
    yield srv
    srv.stop()


async def test_user_and_password_accepted(user_server: RunningServer) -> None:
    nc = await connect(f"nats://alice:s3cret@127.0.0.1:{user_server.port}")
    sub = await nc.subscribe("in")
    await nc.publish("in", b"ok")
    assert (await sub.next_msg(2)).data == b"ok"
    assert nc._server_info["auth_required"] is True
    await nc.close()


@pytest.mark.parametrize("creds", ["alice:wrong@", "bob:s3cret@", ""])
async def test_bad_or_missing_credentials_rejected(user_server: RunningServer, creds: str) -> None:
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    with pytest.raises(Exception) as info:
        await connect(f"nats://{creds}127.0.0.1:{user_server.port}", error_cb=on_error)
    text = str(info.value).lower() + " ".join(str(e).lower() for e in errors)
    assert "authorization violation" in text


def test_raw_bad_password_gets_authorization_violation(user_server: RunningServer) -> None:
    with RawClient(user_server.port) as raw:
        assert raw.info["auth_required"] is True
        raw.send(connect_line(user="alice", **{"pass": "nope"}) + b"PING\r\n")
        assert raw.read_all_until_closed() == b"-ERR 'Authorization Violation'\r\n"


def test_first_operation_must_be_connect(user_server: RunningServer) -> None:
    with RawClient(user_server.port) as raw:
        raw.send(b"SUB foo 1\r\n")
        assert raw.read_all_until_closed() == b"-ERR 'Authorization Violation'\r\n"


def test_failed_auth_is_logged_without_the_password(user_server: RunningServer) -> None:
    with RawClient(user_server.port) as raw:
        raw.send(connect_line(user="alice", **{"pass": "leaky-guess"}) + b"PING\r\n")
        raw.read_all_until_closed()
    line = user_server.wait_for_log(r"\[ERR\].*authentication error")
    assert "leaky-guess" not in user_server.log_text()
    assert "alice" not in line or 'User "alice"' in line


async def test_token_accepted_and_rejected(token_server: RunningServer) -> None:
    nc = await connect(f"nats://127.0.0.1:{token_server.port}", token="tok-123")
    await nc.flush()
    await nc.close()
    with pytest.raises(nats.errors.Error):
        await connect(f"nats://127.0.0.1:{token_server.port}", token="nope")


def test_bcrypt_password_from_flag() -> None:
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    srv = start_server(["--user", "u", "--pass", hashed])
    try:
        with RawClient(srv.port) as raw:
            info = raw.handshake(user="u", **{"pass": "pw"})
            assert info["connect_info"] is True
        with RawClient(srv.port) as raw:
            raw.send(connect_line(user="u", **{"pass": hashed}) + b"PING\r\n")
            assert raw.read_all_until_closed() == b"-ERR 'Authorization Violation'\r\n"
    finally:
        srv.stop()
