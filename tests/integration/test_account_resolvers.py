"""Operator mode with the FULL, CACHE, MEMORY and URL account resolvers: account JWTs pushed
by the system user on `$SYS`, looked up, listed, packed and deleted, users of the pushed
accounts logging in, and the directory surviving a restart. Each test runs against pynats
and the Go server with the same files, and the answers (their `server` block aside) are
compared with what nats-server 2.15 sends."""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from tests.conftest import connect
from tests.support import jwts
from tests.support.servers import RunningServer, oracle_server_path, start_server
from tests.support.waiting import wait_until

SERVERS = pytest.mark.parametrize("oracle", [False, True], ids=["pynats", "go"])


@dataclass
class Operator:
    """An operator with its system account and user, and an application account."""

    base: Path
    op: jwts.Identity = field(default_factory=jwts.operator)
    sys_acc: jwts.Identity = field(default_factory=jwts.account)
    app: jwts.Identity = field(default_factory=jwts.account)
    sys_user: jwts.Identity = field(default_factory=jwts.user)
    app_user: jwts.Identity = field(default_factory=jwts.user)

    def __post_init__(self) -> None:
        (self.base / "op.jwt").write_text(jwts.operator_jwt(self.op))
        self.sys_jwt = jwts.account_jwt(self.op, self.sys_acc, "SYS")
        self.app_jwt = jwts.account_jwt(self.op, self.app, "APP")
        self.sys_creds = jwts.write_creds(
            self.base / "sys.creds",
            jwts.user_jwt(self.sys_acc, self.sys_user, "sys"),
            self.sys_user,
        )
        self.app_creds = jwts.write_creds(
            self.base / "app.creds", jwts.user_jwt(self.app, self.app_user, "u"), self.app_user
        )

    @property
    def dir(self) -> Path:
        return self.base / "jwt"

    def config(self, resolver: str, preload: dict[str, str] | None = None) -> Path:
        """A config file with `resolver` ("DIR" stands for the directory), the system
        account preloaded unless `preload` says otherwise."""
        entries = {self.sys_acc.public_key: self.sys_jwt} if preload is None else preload
        lines = "\n".join(f'  {key}: "{token}"' for key, token in entries.items())
        conf = self.base / "server.conf"
        conf.write_text(
            f'operator: "{self.base / "op.jwt"}"\n'
            f"system_account: {self.sys_acc.public_key}\n"
            f"resolver: {resolver.replace('DIR', str(self.dir))}\n"
            + (f"resolver_preload: {{\n{lines}\n}}\n" if entries else "")
        )
        return conf


@pytest.fixture
def operator(tmp_path: Path) -> Operator:
    return Operator(tmp_path)


@pytest.fixture
def servers() -> Iterator[list[RunningServer]]:
    started: list[RunningServer] = []
    yield started
    for srv in started:
        srv.stop()


def run(servers: list[RunningServer], conf: Path, oracle: bool) -> RunningServer:
    srv = start_server(["-c", str(conf)], oracle=oracle)
    servers.append(srv)
    return srv


async def ask(nc: nats.NATS, subject: str, payload: str | bytes = b"") -> Any:
    """A request's JSON answer without its `server` block (who answered, when)."""
    data = payload.encode() if isinstance(payload, str) else payload
    msg = await nc.request(subject, data, timeout=2)
    answer = json.loads(msg.data)
    assert set(answer["server"]) >= {"name", "id", "ver", "seq", "time"}
    del answer["server"]
    return answer


def updated(account: str, message: str = "jwt updated") -> dict[str, Any]:
    return {"data": {"account": account, "code": 200, "message": message}}


def failed(account: str | None, description: str) -> dict[str, Any]:
    error: dict[str, Any] = {"code": 500, "description": description}
    if account is not None:
        error = {"account": account, **error}
    return {"error": error}


# -- FULL ---------------------------------------------------------------------------------------


@SERVERS
async def test_a_pushed_account_is_stored_and_its_users_log_in(
    operator: Operator, servers: list[RunningServer], oracle: bool
) -> None:
    srv = run(servers, operator.config('{type: full, dir: "DIR"}'), oracle)
    app = operator.app.public_key
    sys_key = operator.sys_acc.public_key
    with pytest.raises(nats.errors.Error):
        await connect(srv.url, user_credentials=str(operator.app_creds))

    nc = await connect(srv.url, user_credentials=str(operator.sys_creds))
    subject = f"$SYS.REQ.ACCOUNT.{app}.CLAIMS.UPDATE"
    assert await ask(nc, subject, operator.app_jwt) == updated(app)
    assert (operator.dir / f"{app}.jwt").read_text() == operator.app_jwt
    # the same JWT again, and through the subject that names no account
    assert await ask(nc, "$SYS.REQ.CLAIMS.UPDATE", operator.app_jwt) == updated(app)

    user = await connect(srv.url, user_credentials=str(operator.app_creds))
    sub = await user.subscribe("hello")
    await user.publish("hello", b"pushed")
    assert (await sub.next_msg(2)).data == b"pushed"
    await user.close()

    lookup = await nc.request(f"$SYS.REQ.ACCOUNT.{app}.CLAIMS.LOOKUP", b"", timeout=2)
    assert lookup.data == operator.app_jwt.encode()
    unknown = jwts.account().public_key
    missing = await nc.request(f"$SYS.REQ.ACCOUNT.{unknown}.CLAIMS.LOOKUP", b"", timeout=2)
    assert missing.data == b""
    assert await ask(nc, "$SYS.REQ.CLAIMS.LIST") == {"data": sorted([app, sys_key])}
    await nc.close()


@SERVERS
async def test_bad_pushes_are_refused_with_nats_server_texts(
    operator: Operator, servers: list[RunningServer], oracle: bool
) -> None:
    srv = run(servers, operator.config('{type: full, dir: "DIR"}'), oracle)
    app = operator.app.public_key
    nc = await connect(srv.url, user_credentials=str(operator.sys_creds))
    update = "$SYS.REQ.CLAIMS.UPDATE"
    header, body, signature = operator.app_jwt.split(".")
    tampered = f"{header}.{body}.{signature[:-4]}AAAA"
    user_jwt = jwts.user_jwt(operator.app, operator.app_user, "u")
    wrong = f"$SYS.REQ.ACCOUNT.{operator.sys_acc.public_key}.CLAIMS.UPDATE"
    failure = "jwt update resulted in error - "
    assert await ask(nc, update, b"garbage") == failed("n/a", failure + "expected 3 chunks")
    assert await ask(nc, update, tampered) == failed(
        "n/a", failure + "claim failed V2 signature verification"
    )
    assert await ask(nc, update, user_jwt) == failed("n/a", failure + "not account claim")
    assert await ask(nc, wrong, operator.app_jwt) == failed(
        operator.sys_acc.public_key, failure + "subject does not match jwt content"
    )
    assert not (operator.dir / f"{app}.jwt").exists()
    await nc.close()


@SERVERS
async def test_accounts_pushed_before_a_restart_are_there_after_it(
    operator: Operator, servers: list[RunningServer], oracle: bool
) -> None:
    conf = operator.config('{type: full, dir: "DIR"}')
    srv = run(servers, conf, oracle)
    nc = await connect(srv.url, user_credentials=str(operator.sys_creds))
    subject = f"$SYS.REQ.ACCOUNT.{operator.app.public_key}.CLAIMS.UPDATE"
    assert await ask(nc, subject, operator.app_jwt) == updated(operator.app.public_key)
    await nc.close()
    srv.stop()

    srv = run(servers, conf, oracle)
    assert f"Managing all jwt in exclusive directory {operator.dir}" in srv.log_text()
    user = await connect(srv.url, user_credentials=str(operator.app_creds))
    await user.flush()
    await user.close()


@SERVERS
async def test_preload_writes_only_what_is_newer_than_the_directory(
    operator: Operator, servers: list[RunningServer], oracle: bool
) -> None:
    """resolver_preload stores a JWT unless the directory holds a later one of the account."""
    app = operator.app.public_key
    operator.dir.mkdir()
    later = jwts.encode(
        operator.op, app, "APP", {"type": "account", "limits": {}}, iat=int(time.time()) + 60
    )
    (operator.dir / f"{app}.jwt").write_text(later)
    preload = {operator.sys_acc.public_key: operator.sys_jwt, app: operator.app_jwt}
    run(servers, operator.config('{type: full, dir: "DIR"}', preload), oracle)
    assert (operator.dir / f"{app}.jwt").read_text() == later
    sys_file = operator.dir / f"{operator.sys_acc.public_key}.jwt"
    assert sys_file.read_text() == operator.sys_jwt


@SERVERS
async def test_delete_is_refused_without_allow_delete(
    operator: Operator, servers: list[RunningServer], oracle: bool
) -> None:
    srv = run(servers, operator.config('{type: full, dir: "DIR"}'), oracle)
    nc = await connect(srv.url, user_credentials=str(operator.sys_creds))
    await ask(nc, "$SYS.REQ.CLAIMS.UPDATE", operator.app_jwt)
    request = jwts.delete_request(operator.op, [operator.app.public_key])
    assert await ask(nc, "$SYS.REQ.CLAIMS.DELETE", request) == failed(
        None,
        f"delete accounts request by {operator.op.public_key} failed - "
        "delete must be enabled in server config",
    )
    assert (operator.dir / f"{operator.app.public_key}.jwt").exists()
    await nc.close()


@SERVERS
async def test_delete_needs_the_operators_signature_and_disconnects_the_account(
    operator: Operator, servers: list[RunningServer], oracle: bool
) -> None:
    app = operator.app.public_key
    op = operator.op
    srv = run(servers, operator.config('{type: full, dir: "DIR", allow_delete: true}'), oracle)
    nc = await connect(srv.url, user_credentials=str(operator.sys_creds))
    await ask(nc, "$SYS.REQ.CLAIMS.UPDATE", operator.app_jwt)
    by = f"delete accounts request by {op.public_key} failed - "
    stranger = jwts.operator()
    cases: list[tuple[str | bytes, str]] = [
        (b"junk", "delete accounts request by  failed - expected 3 chunks"),
        (
            jwts.delete_request(op, [app], subject=app),
            f"delete accounts request by {app} failed - not self signed",
        ),
        (
            jwts.delete_request(stranger, [app]),
            f"delete accounts request by {stranger.public_key} failed - not trusted",
        ),
        (jwts.delete_request(op, ["nope"]), by + "malformed request"),
        (
            jwts.delete_request(op, [operator.sys_acc.public_key]),
            by + "not allowed to delete system account",
        ),
    ]
    for payload, description in cases:
        assert await ask(nc, "$SYS.REQ.CLAIMS.DELETE", payload) == failed(None, description)

    user = await connect(srv.url, user_credentials=str(operator.app_creds))
    answer = await ask(nc, "$SYS.REQ.CLAIMS.DELETE", jwts.delete_request(op, [app]))
    assert answer == {"data": {"code": 200, "message": "deleted 1 accounts"}}
    await wait_until(lambda: user.is_closed, what="the deleted account's user to go")
    assert "account authentication expired" in str(user.last_error).lower()
    assert not (operator.dir / f"{app}.jwt").exists()
    assert (operator.dir / f"{app}.jwt.deleted").read_text() == operator.app_jwt
    assert await ask(nc, "$SYS.REQ.CLAIMS.LIST") == {"data": [operator.sys_acc.public_key]}
    with pytest.raises(nats.errors.Error):
        await connect(srv.url, user_credentials=str(operator.app_creds))
    await nc.close()


@SERVERS
async def test_a_lowered_connection_limit_closes_the_newest_client(
    operator: Operator, servers: list[RunningServer], oracle: bool
) -> None:
    srv = run(servers, operator.config('{type: full, dir: "DIR"}'), oracle)
    nc = await connect(srv.url, user_credentials=str(operator.sys_creds))
    app = operator.app.public_key
    await ask(nc, "$SYS.REQ.CLAIMS.UPDATE", operator.app_jwt)
    first = await connect(srv.url, user_credentials=str(operator.app_creds))
    second = await connect(srv.url, user_credentials=str(operator.app_creds))
    limited = jwts.account_jwt(operator.op, operator.app, "APP", {"conn": 1})
    assert await ask(nc, f"$SYS.REQ.ACCOUNT.{app}.CLAIMS.UPDATE", limited) == updated(app)
    await wait_until(lambda: second.is_closed, what="the newest client to be closed")
    assert "maximum account active connections exceeded" in str(second.last_error).lower()
    await first.flush()
    assert not first.is_closed
    await first.close()
    await nc.close()


@SERVERS
async def test_pack_sends_each_jwt_then_an_empty_message(
    operator: Operator, servers: list[RunningServer], oracle: bool
) -> None:
    srv = run(servers, operator.config('{type: full, dir: "DIR"}'), oracle)
    nc = await connect(srv.url, user_credentials=str(operator.sys_creds))
    await ask(nc, "$SYS.REQ.CLAIMS.UPDATE", operator.app_jwt)
    held = {
        operator.sys_acc.public_key: operator.sys_jwt,
        operator.app.public_key: operator.app_jwt,
    }

    async def pack(their_hash: bytes) -> list[bytes]:
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("$SYS.REQ.CLAIMS.PACK", their_hash, reply=inbox)
        messages: list[bytes] = []
        while not messages or messages[-1]:
            messages.append((await sub.next_msg(2)).data)
        await sub.unsubscribe()
        return messages

    expected = [f"{key}|{held[key]}".encode() for key in sorted(held)] + [b""]
    assert await pack(b"") == expected
    store_hash = bytearray(32)
    for token in held.values():
        for i, b in enumerate(hashlib.sha256(token.encode()).digest()):
            store_hash[i] ^= b
    assert await pack(bytes(store_hash)) == [b""]
    await nc.close()


# -- CACHE, MEMORY, URL ------------------------------------------------------------------------


@SERVERS
async def test_cache_resolver_updates_only_accounts_in_use(
    operator: Operator, servers: list[RunningServer], oracle: bool
) -> None:
    app = operator.app.public_key
    preload = {operator.sys_acc.public_key: operator.sys_jwt, app: operator.app_jwt}
    srv = run(servers, operator.config('{type: cache, dir: "DIR", ttl: "1h"}', preload), oracle)
    assert f"Managing some jwt in exclusive directory {operator.dir}" in srv.log_text()
    nc = await connect(srv.url, user_credentials=str(operator.sys_creds))
    other = jwts.account()
    other_jwt = jwts.account_jwt(operator.op, other, "OTHER")
    skipped = updated(other.public_key, "jwt update cache skipped")
    assert await ask(nc, "$SYS.REQ.CLAIMS.UPDATE", other_jwt) == skipped
    assert not (operator.dir / f"{other.public_key}.jwt").exists()

    user = await connect(srv.url, user_credentials=str(operator.app_creds))
    newer = jwts.account_jwt(operator.op, operator.app, "APP", {"subs": 5})
    subject = f"$SYS.REQ.ACCOUNT.{app}.CLAIMS.UPDATE"
    assert await ask(nc, subject, newer) == updated(app, "jwt updated cache")
    assert await ask(nc, subject, b"") == failed(
        app, "jwt update cache resulted in error - expected 3 chunks"
    )
    assert (operator.dir / f"{app}.jwt").read_text() == newer
    assert await ask(nc, "$SYS.REQ.CLAIMS.LIST") == {
        "data": sorted([app, operator.sys_acc.public_key])
    }
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request(f"$SYS.REQ.ACCOUNT.{app}.CLAIMS.LOOKUP", b"", timeout=2)
    await user.close()
    await nc.close()


@SERVERS
async def test_memory_resolver_takes_pushes_for_accounts_in_use(
    operator: Operator, servers: list[RunningServer], oracle: bool
) -> None:
    app = operator.app.public_key
    preload = {operator.sys_acc.public_key: operator.sys_jwt, app: operator.app_jwt}
    srv = run(servers, operator.config("MEMORY", preload), oracle)
    nc = await connect(srv.url, user_credentials=str(operator.sys_creds))
    first = await connect(srv.url, user_credentials=str(operator.app_creds))
    second = await connect(srv.url, user_credentials=str(operator.app_creds))
    limited = jwts.account_jwt(operator.op, operator.app, "APP", {"conn": 1})
    assert await ask(nc, f"$SYS.REQ.ACCOUNT.{app}.CLAIMS.UPDATE", limited) == updated(app)
    await wait_until(lambda: second.is_closed, what="the newest client to be closed")
    assert not first.is_closed

    other = jwts.account()
    other_jwt = jwts.account_jwt(operator.op, other, "OTHER")
    other_subject = f"$SYS.ACCOUNT.{other.public_key}.CLAIMS.UPDATE"
    assert await ask(nc, other_subject, other_jwt) == updated(
        other.public_key, "jwt update skipped"
    )
    assert await ask(nc, f"$SYS.REQ.ACCOUNT.{app}.CLAIMS.UPDATE", b"") == failed(
        app, "jwt update error - request body is empty"
    )
    for subject in ("$SYS.REQ.CLAIMS.UPDATE", "$SYS.REQ.CLAIMS.LIST"):
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request(subject, other_jwt.encode(), timeout=2)
    await first.close()
    await nc.close()


class AccountServer:
    """An account server on 127.0.0.1: GET <prefix><account key> answers the JWT or 404."""

    def __init__(self, jwts_by_key: dict[str, str]) -> None:
        self.jwts = jwts_by_key
        self.paths: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.paths.append(self.path)
                key = self.path.rsplit("/", 1)[-1]
                token = owner.jwts.get(key)
                self.send_response(200 if token or not key else 404)
                self.end_headers()
                if token:
                    self.wfile.write(token.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/jwt/v1/accounts/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@SERVERS
async def test_url_resolver_fetches_account_jwts_over_http(
    operator: Operator, servers: list[RunningServer], oracle: bool
) -> None:
    app = operator.app.public_key
    accounts = AccountServer({operator.sys_acc.public_key: operator.sys_jwt, app: operator.app_jwt})
    try:
        srv = run(servers, operator.config(f"URL({accounts.url})", preload={}), oracle)
        user = await connect(srv.url, user_credentials=str(operator.app_creds))
        sub = await user.subscribe("over.http")
        await user.publish("over.http", b"fetched")
        assert (await sub.next_msg(2)).data == b"fetched"
        assert f"/jwt/v1/accounts/{app}" in accounts.paths
        stranger, stranger_user = jwts.account(), jwts.user()
        creds = jwts.write_creds(
            operator.base / "stranger.creds",
            jwts.user_jwt(stranger, stranger_user, "s"),
            stranger_user,
        )
        with pytest.raises(nats.errors.Error):
            await connect(srv.url, user_credentials=str(creds))
        nc = await connect(srv.url, user_credentials=str(operator.sys_creds))
        limited = jwts.account_jwt(operator.op, operator.app, "APP", {"payload": 64})
        assert await ask(nc, f"$SYS.REQ.ACCOUNT.{app}.CLAIMS.UPDATE", limited) == updated(app)
        await nc.close()
        await user.close()
    finally:
        accounts.close()


# -- configuration ------------------------------------------------------------------------------


@SERVERS
def test_url_resolver_refuses_preloads_at_start(operator: Operator, oracle: bool) -> None:
    conf = operator.config("URL(http://127.0.0.1:1/accounts/)")
    cmd = [oracle_server_path()] if oracle else start_server_command()
    result = subprocess.run([*cmd, "-c", str(conf), "-p", "-1"], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "nats-server: resolver preloads only available for writeable resolver types "
        "MEM/DIR/CACHE_DIR"
    )


RESOLVER_CONFIG_ERRORS = [
    ("{type: full}", ["dir has no value and needs to point to a directory"]),
    ('{type: cache, dir: "DIR", interval: "2m"}', ["CACHE does not accept sync"]),
    ('{type: cache, dir: "DIR", allow_delete: true}', ["CACHE does not accept allow_delete"]),
    ('{type: full, dir: "DIR", ttl: "2m"}', ["FULL does not accept ttl"]),
    ('{type: full, dir: "DIR", interval: "xx"}', ['time: invalid duration "xx"']),
    ('{type: full, dir: "DIR", timeout: "0s"}', ["Fetch timeout 0s is too smal"]),
    (
        '{type: other, dir: "DIR"}',
        [
            'error parsing account resolver, should be MEM or  URL("url") or a map containing '
            "dir and type state=[FULL|CACHE])"
        ],
    ),
    ("5", ["error parsing operator resolver, wrong type int64"]),
]


@SERVERS
@pytest.mark.parametrize(("resolver", "errors"), RESOLVER_CONFIG_ERRORS)
def test_resolver_config_errors(
    operator: Operator, oracle: bool, resolver: str, errors: list[str]
) -> None:
    conf = operator.config(resolver)
    cmd = [oracle_server_path()] if oracle else start_server_command()
    result = subprocess.run([*cmd, "-t", "-c", str(conf)], capture_output=True, text=True)
    assert result.returncode == 1
    found = [
        line.split(": ", 1)[-1] for line in result.stderr.replace("nats-server: ", "").splitlines()
    ]
    for error in errors:
        assert any(line.endswith(error) for line in found), result.stderr


def start_server_command() -> list[str]:
    from tests.support.servers import pynats_server_command

    return pynats_server_command()
