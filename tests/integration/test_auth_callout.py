"""Auth callout (ADR-26): a callout service written with nats-py decides who connects, on
pynats and on the Go server with the same files and the same service.

The service checks the server's signature on each request, records it, and answers as the
connecting user's name asks: a user JWT placing the client in an account with permissions,
an error, a broken answer, or nothing at all.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
import trustme
from nats.aio.msg import Msg
from tests.conftest import connect
from tests.support import jwts
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

AUTH_SUBJECT = "$SYS.REQ.USER.AUTH"
AUTH_TIMEOUT_S = 1  # `authorization { timeout }`: how long a server waits for an answer
IMPLS = ["pynats", "go"]

Answer = Callable[[dict[str, Any]], Awaitable[bytes | None]]


@dataclass
class Keys:
    issuer: jwts.Identity = field(default_factory=jwts.account)
    stranger: jwts.Identity = field(default_factory=jwts.account)  # an account key not trusted
    service_xkey: jwts.CurveKey = field(default_factory=jwts.curve)


def config(keys: Keys, *, sealed: bool = False) -> str:
    xkey = f"xkey: {keys.service_xkey.public_key}" if sealed else ""
    return f"""
accounts {{
  AUTH {{ users: [ {{user: auth, password: auth}}, {{user: auth2, password: auth2}} ] }}
  APP {{}}
  OTHER {{}}
}}
authorization {{
  timeout: {AUTH_TIMEOUT_S}
  auth_callout {{
    issuer: {keys.issuer.public_key}
    auth_users: [ auth, auth2 ]
    account: AUTH
    {xkey}
  }}
}}
"""


class CalloutService:
    """The callout service: answers `$SYS.REQ.USER.AUTH` with `answers[connect user]`."""

    def __init__(self, keys: Keys, *, sealed: bool = False, by: str = "user") -> None:
        self.keys = keys
        self.sealed = sealed
        self.by = by  # the CONNECT field that names who connects
        self.requests: list[dict[str, Any]] = []  # verified claims, in arrival order
        self.raw: list[Msg] = []
        self.answers: dict[str, Answer] = {}
        self.nc: nats.NATS | None = None

    async def start(self, url: str, **credentials: Any) -> None:
        self.nc = await connect(url, **(credentials or {"user": "auth", "password": "auth"}))
        await self.nc.subscribe(AUTH_SUBJECT, cb=self._on_request)
        await self.nc.flush()

    async def stop(self) -> None:
        if self.nc is not None:
            await self.nc.close()

    async def _on_request(self, msg: Msg) -> None:
        self.raw.append(msg)
        data = msg.data
        server_xkey = (msg.headers or {}).get("Nats-Server-Xkey")
        if server_xkey:
            data = self.keys.service_xkey.open(data, server_xkey)
        claims = jwts.decode_verified(data.decode())
        self.requests.append(claims)
        user = claims["nats"]["connect_opts"].get(self.by, "")
        answer = self.answers.get(user)
        reply = await answer(claims) if answer is not None else None
        if reply is None:
            return
        if server_xkey and reply:
            reply = self.keys.service_xkey.seal(reply, server_xkey)
        await msg.respond(reply)

    def requests_of(self, user: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["nats"]["connect_opts"].get(self.by) == user]


def user_jwt(
    signer: jwts.Identity, claims: dict[str, Any], account: str, name: str = "", **extra: Any
) -> str:
    """A user JWT for the user key the request named, placed in `account` (its `aud`)."""
    usr = jwts.Identity(b"", claims["nats"]["user_nkey"])
    return jwts.user_jwt(signer, usr, name, extra.pop("permissions", None), aud=account, **extra)


def answer(keys: Keys, claims: dict[str, Any], **kwargs: Any) -> bytes:
    nats_claims = claims["nats"]
    signer = kwargs.pop("signer", keys.issuer)
    return jwts.authorization_response(
        signer, nats_claims["user_nkey"], nats_claims["server_id"]["id"], **kwargs
    ).encode()


APP_PERMISSIONS = {"pub": {"allow": ["ok.>", "_INBOX.>"]}, "sub": {"allow": ["ok.>", "_INBOX.>"]}}


def standard_answers(keys: Keys) -> dict[str, Answer]:
    """Who gets what, by the user name given in CONNECT."""

    def jwt_in(account: str, **extra: Any) -> Answer:
        async def reply(claims: dict[str, Any]) -> bytes:
            return answer(keys, claims, user_jwt=user_jwt(keys.issuer, claims, account, **extra))

        return reply

    def fixed(make: Callable[[dict[str, Any]], bytes]) -> Answer:
        async def reply(claims: dict[str, Any]) -> bytes:
            return make(claims)

        return reply

    def for_other_user(c: dict[str, Any]) -> bytes:
        other = jwts.user().public_key
        return jwts.authorization_response(
            keys.issuer,
            other,
            c["nats"]["server_id"]["id"],
            user_jwt=user_jwt(keys.issuer, c, "APP"),
        ).encode()

    return {
        "alice": jwt_in("APP", name="alice", permissions=APP_PERMISSIONS),
        "bob": jwt_in("OTHER", name="bob"),
        "carol": jwt_in("AUTH", name="carol"),
        "mallory": fixed(lambda c: answer(keys, c, error="no entry for mallory")),
        "wrong_issuer": fixed(
            lambda c: answer(keys, c, user_jwt=user_jwt(keys.stranger, c, "APP"))
        ),
        "unknown_account": fixed(
            lambda c: answer(keys, c, user_jwt=user_jwt(keys.issuer, c, "NOPE"))
        ),
        "not_for_server": fixed(
            lambda c: jwts.authorization_response(
                keys.issuer,
                c["nats"]["user_nkey"],
                jwts.Identity.new(13 << 3).public_key,
                user_jwt=user_jwt(keys.issuer, c, "APP"),
            ).encode()
        ),
        "not_for_user": fixed(for_other_user),
        "untrusted_signer": fixed(
            lambda c: answer(
                keys, c, signer=keys.stranger, user_jwt=user_jwt(keys.issuer, c, "APP")
            )
        ),
        "expired": fixed(
            lambda c: answer(
                keys, c, user_jwt=user_jwt(keys.issuer, c, "APP", exp=int(time.time()) - 60)
            )
        ),
        "brief": fixed(
            lambda c: answer(
                keys, c, user_jwt=user_jwt(keys.issuer, c, "APP", exp=int(time.time()) + 2)
            )
        ),
        "empty": fixed(lambda c: b""),
        "garbage": fixed(lambda c: b"not a jwt"),
    }


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


def start(tmp: Path, keys: Keys, impl: str, *, sealed: bool = False) -> RunningServer:
    conf = tmp / ("sealed.conf" if sealed else "plain.conf")
    conf.write_text(config(keys, sealed=sealed))
    return start_server(["-c", str(conf), "-D"], oracle=impl == "go")


@pytest.fixture(scope="module", params=IMPLS)
def plain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, keys: Keys
) -> Iterator[RunningServer]:
    srv = start(tmp_path_factory.mktemp("callout"), keys, request.param)
    yield srv
    srv.stop()


@pytest.fixture
async def service(plain: RunningServer, keys: Keys) -> AsyncIterator[CalloutService]:
    svc = CalloutService(keys)
    svc.answers = standard_answers(keys)
    await svc.start(plain.url)
    yield svc
    await svc.stop()


async def refused(url: str, user: str, password: str = "secret") -> str:
    """Connect as `user`: the error the client got (it must be refused)."""
    with pytest.raises(nats.errors.Error) as info:
        nc = await connect(url, user=user, password=password, connect_timeout=AUTH_TIMEOUT_S + 3)
        await nc.close()
    return str(info.value)


# -- admitted --------------------------------------------------------------------------------


async def test_callout_user_gets_the_account_and_permissions_granted(
    plain: RunningServer, service: CalloutService
) -> None:
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    alice = await connect(plain.url, user="alice", password="secret", error_cb=on_error)
    bob = await connect(plain.url, user="bob", password="secret")
    mine = await alice.subscribe("ok.>")
    theirs = await bob.subscribe("ok.>")
    await bob.flush()
    await alice.publish("ok.1", b"granted")
    assert (await mine.next_msg(2)).data == b"granted"
    await alice.publish("denied", b"x")
    await alice.flush()
    await wait_until(
        lambda: any('permissions violation for publish to "denied"' in str(e) for e in errors),
        what="a publish permissions violation",
    )
    await alice.subscribe("elsewhere")
    await alice.flush()
    await wait_until(
        lambda: any("permissions violation for subscription" in str(e) for e in errors),
        what="a subscribe permissions violation",
    )
    # bob was placed in another account: alice's message never reached him
    with pytest.raises(nats.errors.TimeoutError):
        await theirs.next_msg(0.2)
    await alice.close()
    await bob.close()


async def test_request_is_signed_by_the_server_and_describes_the_client(
    plain: RunningServer, service: CalloutService, keys: Keys
) -> None:
    nc = await connect(plain.url, user="alice", password="secret", name="callout-test")
    server_id = nc._server_info["server_id"]
    await nc.close()
    request = service.requests_of("alice")[-1]  # signature checked by the service
    assert request["iss"] == server_id
    assert request["sub"] == keys.issuer.public_key
    assert request["aud"] == "nats-authorization-request"
    assert 0 < request["exp"] - request["iat"] <= AUTH_TIMEOUT_S + 1
    body = request["nats"]
    assert body["type"] == "authorization_request"
    assert body["version"] == 2
    assert body["server_id"]["id"] == server_id
    assert "xkey" not in body["server_id"]
    assert body["user_nkey"].startswith("U") and len(body["user_nkey"]) == 56
    assert body["connect_opts"]["user"] == "alice"
    assert body["connect_opts"]["pass"] == "secret"
    assert body["connect_opts"]["name"] == "callout-test"
    assert body["connect_opts"]["protocol"] == 1
    info = body["client_info"]
    assert (info["user"], info["name"], info["kind"], info["type"]) == (
        "alice",
        "callout-test",
        "Client",
        "nats",
    )
    assert "client_tls" not in body
    # a fresh user key for every request
    nc = await connect(plain.url, user="alice", password="secret")
    await nc.close()
    assert service.requests_of("alice")[-1]["nats"]["user_nkey"] != body["user_nkey"]


async def test_auth_users_skip_the_callout(plain: RunningServer, service: CalloutService) -> None:
    nc = await connect(plain.url, user="auth2", password="auth2")
    await nc.close()
    assert service.requests_of("auth2") == []


async def test_auth_user_with_a_wrong_password_is_refused_without_a_callout(
    plain: RunningServer, service: CalloutService
) -> None:
    error = await refused(plain.url, "auth2", "wrong")
    assert "authorization violation" in error.lower()
    assert service.requests_of("auth2") == []


async def test_clients_of_the_callout_account_cannot_publish_requests(
    plain: RunningServer, service: CalloutService
) -> None:
    for user, password in (("carol", "secret"), ("auth2", "auth2")):
        errors: list[Exception] = []

        async def on_error(e: Exception, errors: list[Exception] = errors) -> None:
            errors.append(e)

        nc = await connect(plain.url, user=user, password=password, error_cb=on_error)
        await nc.publish(AUTH_SUBJECT, b"forged")
        await nc.flush()
        await wait_until(
            lambda errors=errors: any("permissions violation" in str(e) for e in errors),
            what=f"{user}: a publish permissions violation",
        )
        await nc.close()


async def test_operations_after_connect_wait_for_the_answer(
    plain: RunningServer, service: CalloutService, keys: Keys
) -> None:
    """CONNECT, SUB, PUB and PING sent at once: nothing is answered before the service
    has answered, then everything is, in order."""
    release = asyncio.Event()
    asked = asyncio.Event()

    async def slow(claims: dict[str, Any]) -> bytes:
        asked.set()
        await release.wait()
        return answer(keys, claims, user_jwt=user_jwt(keys.issuer, claims, "APP"))

    service.answers["slow"] = slow
    reader, writer = await asyncio.open_connection("127.0.0.1", plain.port)
    info = await reader.readline()
    assert info.startswith(b"INFO ")
    connect_opts = {"verbose": False, "pedantic": False, "protocol": 1, "user": "slow"}
    writer.write(
        b"CONNECT " + json.dumps({**connect_opts, "pass": "x"}).encode() + b"\r\n"
        b"SUB held.> 1\r\nPUB held.x 2\r\nhi\r\nPING\r\n"
    )
    await writer.drain()
    await asyncio.wait_for(asked.wait(), 5)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(reader.readline(), 0.3)  # no PONG before the answer
    release.set()
    assert await asyncio.wait_for(reader.readline(), 5) == b"MSG held.x 1 2\r\n"
    assert await asyncio.wait_for(reader.readline(), 5) == b"hi\r\n"
    assert await asyncio.wait_for(reader.readline(), 5) == b"PONG\r\n"
    writer.close()


async def test_user_jwt_expiry_ends_the_connection(
    plain: RunningServer, service: CalloutService
) -> None:
    closed = asyncio.Event()

    async def on_closed() -> None:
        closed.set()

    nc = await connect(plain.url, user="brief", password="secret", closed_cb=on_closed)
    await asyncio.wait_for(closed.wait(), 5)
    # (not the close reason: nats-server may see the client leave before it closes itself)
    plain.wait_for_log(r"\[DBG\] .* - User Authentication Expired")
    await nc.close()


# -- refused ---------------------------------------------------------------------------------


async def test_error_answer_refuses_the_client(
    plain: RunningServer, service: CalloutService
) -> None:
    assert "'Authorization Violation'" in await refused(plain.url, "mallory")
    plain.wait_for_log(r'\[ERR\] .* - authentication error - User "mallory"$')
    plain.wait_for_log(r"\[WRN\] Auth callout service returned an error: no entry for mallory$")


@pytest.mark.parametrize(
    ("user", "warning"),
    [
        ("wrong_issuer", r'Wrong issuer for auth callout response on account "AUTH", expected '),
        (
            "unknown_account",
            r'No valid account "NOPE" for auth callout response on account "AUTH": '
            "account missing$",
        ),
        ("not_for_server", r"Auth callout violation: auth callout response is not for server$"),
        (
            "not_for_user",
            r"Auth callout violation: auth callout response is not for expected user$",
        ),
        ("untrusted_signer", r"Auth callout signing key is unknown$"),
        ("expired", r"Error validating user JWT: claim is expired$"),
        ("empty", r'Auth callout violation: "no reason supplied" on account "AUTH"$'),
        ("garbage", r"Expected 3 chunks$"),
    ],
)
async def test_bad_answers_refuse_the_client(
    plain: RunningServer, service: CalloutService, user: str, warning: str
) -> None:
    assert "'Authorization Violation'" in await refused(plain.url, user)
    plain.wait_for_log(rf'\[ERR\] .* - authentication error - User "{user}"$')
    plain.wait_for_log(rf"\[WRN\] {warning}")


async def test_no_answer_refuses_the_client_after_the_auth_timeout(
    plain: RunningServer, service: CalloutService
) -> None:
    started = time.monotonic()
    assert "'Authorization Violation'" in await refused(plain.url, "nobody_answers")
    assert time.monotonic() - started >= AUTH_TIMEOUT_S * 0.9
    assert service.requests_of("nobody_answers")
    plain.wait_for_log(
        r'\[DBG\] Authorization callout response not received in time on account "AUTH"$'
    )
    plain.wait_for_log(r'\[ERR\] .* - authentication error - User "nobody_answers"$')


@pytest.mark.parametrize("impl", IMPLS)
async def test_without_a_service_clients_are_refused_after_the_auth_timeout(
    impl: str, tmp_path: Path, keys: Keys
) -> None:
    srv = start(tmp_path, keys, impl)
    try:
        auth = await connect(srv.url, user="auth", password="auth")  # no callout for it
        await auth.close()
        assert "'Authorization Violation'" in await refused(srv.url, "alice")
        srv.wait_for_log(r'\[ERR\] .* - authentication error - User "alice"$')
    finally:
        srv.stop()


# -- sealed with xkeys -----------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
async def test_xkey_seals_requests_and_answers(impl: str, tmp_path: Path, keys: Keys) -> None:
    srv = start(tmp_path, keys, impl, sealed=True)
    svc = CalloutService(keys, sealed=True)
    svc.answers = standard_answers(keys)
    try:
        await svc.start(srv.url)
        errors: list[Exception] = []

        async def on_error(e: Exception) -> None:
            errors.append(e)

        alice = await connect(srv.url, user="alice", password="secret", error_cb=on_error)
        server_xkey = alice._server_info["xkey"]
        await alice.publish("denied", b"x")
        await alice.flush()
        await wait_until(lambda: errors, what="a permissions violation")
        await alice.close()
        msg = svc.raw[-1]
        assert msg.headers == {"Nats-Server-Xkey": server_xkey}
        assert msg.data.startswith(b"xkv1")
        assert svc.requests_of("alice")[-1]["nats"]["server_id"]["xkey"] == server_xkey
        assert "'Authorization Violation'" in await refused(srv.url, "mallory")
        srv.wait_for_log(r"\[WRN\] Auth callout service returned an error: no entry for mallory$")
    finally:
        await svc.stop()
        srv.stop()


# -- operator mode ---------------------------------------------------------------------------
#
# The callout account (AUTH) says so in its JWT (`authorization`: its auth users, the other
# accounts it may place users in, its xkey). Clients log in to it with a "sentinel" user
# (a .creds file that may do nothing by itself); the service answers with a response signed
# by AUTH (or one of its signing keys) and a user JWT issued by the account to place them in.


@dataclass
class Operator:
    base: Path
    conf: Path
    auth: jwts.Identity  # the callout account
    auth_signer: jwts.Identity  # a signing key of AUTH
    app: jwts.Identity  # an account AUTH may place users in
    other: jwts.Identity  # an account it may not
    service_creds: Path
    sentinel_creds: Path


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> Operator:
    base = Path(tmp_path_factory.mktemp("callout-op"))
    op = jwts.operator()
    sys_acc, auth, signer, app, other = (jwts.account() for _ in range(5))
    service_user, sentinel = jwts.user(), jwts.user()
    (base / "op.jwt").write_text(jwts.operator_jwt(op))
    authorization = {
        "auth_users": [service_user.public_key],
        "allowed_accounts": [app.public_key],
    }
    auth_jwt = jwts.account_jwt(
        op, auth, "AUTH", authorization=authorization, signing_keys=[signer.public_key]
    )
    conf = base / "server.conf"
    conf.write_text(f"""
operator: "{base / "op.jwt"}"
system_account: {sys_acc.public_key}
resolver: MEMORY
resolver_preload: {{
  {sys_acc.public_key}: "{jwts.account_jwt(op, sys_acc, "SYS")}"
  {auth.public_key}: "{auth_jwt}"
  {app.public_key}: "{jwts.account_jwt(op, app, "APP")}"
  {other.public_key}: "{jwts.account_jwt(op, other, "OTHER")}"
}}
""")
    deny_all = {"pub": {"deny": [">"]}, "sub": {"deny": [">"]}}
    return Operator(
        base=base,
        conf=conf,
        auth=auth,
        auth_signer=signer,
        app=app,
        other=other,
        service_creds=jwts.write_creds(
            base / "service.creds", jwts.user_jwt(auth, service_user, "service"), service_user
        ),
        sentinel_creds=jwts.write_creds(
            base / "sentinel.creds", jwts.user_jwt(auth, sentinel, "sentinel", deny_all), sentinel
        ),
    )


def operator_answers(keys: Keys, op: Operator) -> dict[str, Answer]:
    """Who gets what, by the client name given in CONNECT."""

    def reply(signer: jwts.Identity, issuer: jwts.Identity, **extra: Any) -> Answer:
        async def make(claims: dict[str, Any]) -> bytes:
            token = user_jwt(issuer, claims, "", name="placed", **extra)
            return answer(keys, claims, signer=signer, user_jwt=token)

        return make

    async def refuse(claims: dict[str, Any]) -> bytes:
        return answer(keys, claims, signer=op.auth, error="not today")

    return {
        "to_app": reply(op.auth, op.app, permissions=APP_PERMISSIONS),
        "to_auth": reply(op.auth, op.auth),
        "by_signing_key": reply(op.auth_signer, op.app),
        "to_other": reply(op.auth, op.other),
        "untrusted_signer": reply(op.other, op.app),
        "refused": refuse,
    }


@pytest.fixture(scope="module", params=IMPLS)
def op_server(request: pytest.FixtureRequest, operator: Operator) -> Iterator[RunningServer]:
    srv = start_server(["-c", str(operator.conf), "-D"], oracle=request.param == "go")
    yield srv
    srv.stop()


@pytest.fixture
async def op_service(
    op_server: RunningServer, operator: Operator, keys: Keys
) -> AsyncIterator[CalloutService]:
    svc = CalloutService(keys, by="name")
    svc.answers = operator_answers(keys, operator)
    await svc.start(op_server.url, user_credentials=str(operator.service_creds))
    yield svc
    await svc.stop()


async def sentinel(server: RunningServer, op: Operator, name: str, **kwargs: Any) -> nats.NATS:
    return await connect(server.url, user_credentials=str(op.sentinel_creds), name=name, **kwargs)


async def test_operator_mode_places_users_where_the_callout_account_says(
    op_server: RunningServer, op_service: CalloutService, operator: Operator
) -> None:
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    placed = await sentinel(op_server, operator, "to_app", error_cb=on_error)
    sub = await placed.subscribe("ok.>")
    await placed.publish("ok.1", b"in APP")
    assert (await sub.next_msg(2)).data == b"in APP"
    await placed.publish("denied", b"x")
    await placed.flush()
    await wait_until(
        lambda: any('permissions violation for publish to "denied"' in str(e) for e in errors),
        what="a publish permissions violation",
    )
    await placed.close()
    request = op_service.requests_of("to_app")[-1]
    assert request["sub"] == operator.auth.public_key  # the callout account asks
    assert request["nats"]["connect_opts"]["jwt"]  # the sentinel's JWT, for the service
    assert "xkey" not in request["nats"]["server_id"]


async def test_operator_mode_answer_signed_by_a_signing_key_of_the_account(
    op_server: RunningServer, op_service: CalloutService, operator: Operator
) -> None:
    nc = await sentinel(op_server, operator, "by_signing_key")
    await nc.close()


async def test_operator_mode_callout_account_users_cannot_publish_requests(
    op_server: RunningServer, op_service: CalloutService, operator: Operator
) -> None:
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    nc = await sentinel(op_server, operator, "to_auth", error_cb=on_error)
    await nc.publish(AUTH_SUBJECT, b"forged")
    await nc.flush()
    await wait_until(
        lambda: any("permissions violation" in str(e) for e in errors),
        what="a publish permissions violation",
    )
    await nc.close()


async def test_operator_mode_auth_users_skip_the_callout(
    op_server: RunningServer, op_service: CalloutService, operator: Operator
) -> None:
    nc = await connect(
        op_server.url, user_credentials=str(operator.service_creds), name="service-again"
    )
    await nc.close()
    assert op_service.requests_of("service-again") == []


@pytest.mark.parametrize(
    ("name", "warning"),
    [
        ("to_other", r'Account "A\w+" not permitted as valid account option for auth callout '),
        ("untrusted_signer", r"Auth callout signing key is unknown$"),
        ("refused", r"Auth callout service returned an error: not today$"),
    ],
)
async def test_operator_mode_bad_answers_refuse_the_client(
    op_server: RunningServer,
    op_service: CalloutService,
    operator: Operator,
    name: str,
    warning: str,
) -> None:
    with pytest.raises(nats.errors.Error) as info:
        nc = await sentinel(op_server, operator, name)
        await nc.close()
    assert "'Authorization Violation'" in str(info.value)
    op_server.wait_for_log(r'\[ERR\] .* - authentication error - JWT User "U\w+"$')
    op_server.wait_for_log(rf"\[WRN\] {warning}")


# -- TLS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
async def test_request_carries_the_client_certificate(
    impl: str, tmp_path: Path, keys: Keys
) -> None:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("alice@example.com", common_name="alice")
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key", "ccert", "ckey")}
    ca.cert_pem.write_to_path(str(files["ca"]))
    server_cert.cert_chain_pems[0].write_to_path(str(files["cert"]))
    server_cert.private_key_pem.write_to_path(str(files["key"]))
    client_cert.cert_chain_pems[0].write_to_path(str(files["ccert"]))
    client_cert.private_key_pem.write_to_path(str(files["ckey"]))
    conf = tmp_path / "tls.conf"
    conf.write_text(
        config(keys)
        + f"""
tls {{
  cert_file: "{files["cert"]}"
  key_file: "{files["key"]}"
  ca_file: "{files["ca"]}"
  verify: true
}}
"""
    )
    srv = start_server(["-c", str(conf)], oracle=impl == "go")
    tls = ssl.create_default_context(cafile=str(files["ca"]))
    tls.load_cert_chain(str(files["ccert"]), str(files["ckey"]))
    svc = CalloutService(keys)
    svc.answers = standard_answers(keys)
    url = f"tls://127.0.0.1:{srv.port}"
    try:
        await svc.start(url, user="auth", password="auth", tls=tls)
        nc = await connect(url, user="alice", password="secret", tls=tls)
        await nc.close()
        client_tls = svc.requests_of("alice")[-1]["nats"]["client_tls"]
        assert client_tls["version"] in ("1.2", "1.3")
        assert client_tls["cipher"]
        # the client's own certificate first (nats-server adds the CA after it)
        assert (
            client_tls["verified_chains"][0][0] == client_cert.cert_chain_pems[0].bytes().decode()
        )
        assert "certs" not in client_tls
    finally:
        await svc.stop()
        srv.stop()


# -- across a cluster --------------------------------------------------------------------------


@pytest.mark.parametrize("kinds", [["py", "go"], ["go", "py"], ["py", "py"]], ids="-".join)
async def test_service_on_another_server_of_the_cluster(
    kinds: list[str], tmp_path: Path, keys: Keys
) -> None:
    """Clients of the first server are decided by a service connected to the second."""
    from tests.support.cluster import make_cluster

    body = config(keys)
    cluster = make_cluster(kinds, tmp_path, extra=lambda m: body)
    svc = CalloutService(keys)
    svc.answers = standard_answers(keys)
    try:
        cluster.wait_formed()
        first, second = cluster[0], cluster[1]
        await svc.start(second.url)
        assert svc.nc is not None

        async def ready(msg: Msg) -> None:
            await msg.respond(b"yes")

        await svc.nc.subscribe("ready", cb=ready)
        await svc.nc.flush()
        auth = await connect(first.url, user="auth2", password="auth2")

        async def service_reachable() -> bool:
            try:
                return (await auth.request("ready", b"", timeout=0.5)).data == b"yes"
            except nats.errors.Error:
                return False

        await wait_until(service_reachable, timeout=10, what="the service's interest")
        await auth.close()
        alice = await connect(first.url, user="alice", password="secret")
        await alice.close()
        request = svc.requests_of("alice")[-1]
        assert request["nats"]["server_id"]["name"] == first.name
        assert request["nats"]["server_id"]["cluster"] == cluster.name
        assert "'Authorization Violation'" in await refused(first.url, "mallory")
    finally:
        await svc.stop()
        cluster.stop_all()


# -- websocket -------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
async def test_websocket_clients_are_decided_by_the_service(
    impl: str, tmp_path: Path, keys: Keys
) -> None:
    from tests.support.ports import free_port

    ws_port = free_port()
    conf = tmp_path / "ws.conf"
    conf.write_text(
        config(keys) + f'\nwebsocket {{ listen: "127.0.0.1:{ws_port}", no_tls: true }}\n'
    )
    srv = start_server(["-c", str(conf)], oracle=impl == "go")
    svc = CalloutService(keys)
    svc.answers = standard_answers(keys)
    try:
        await svc.start(srv.url)
        alice = await connect(f"ws://127.0.0.1:{ws_port}", user="alice", password="secret")
        sub = await alice.subscribe("ok.ws")
        await alice.publish("ok.ws", b"over websocket")
        assert (await sub.next_msg(2)).data == b"over websocket"
        await alice.close()
        assert svc.requests_of("alice")[-1]["nats"]["client_info"]["type"] == "websocket"
        assert "'Authorization Violation'" in await refused(f"ws://127.0.0.1:{ws_port}", "mallory")
    finally:
        await svc.stop()
        srv.stop()
