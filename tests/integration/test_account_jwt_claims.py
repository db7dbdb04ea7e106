"""What account and user JWTs carry, on pynats and the Go server with the same files:
exports and imports (public, private with activation tokens, revoked activations), user
revocations (refused at CONNECT, disconnected when a pushed account JWT revokes them), scoped
signing keys with permission templates, and the user limits `src`, `times` (in `times_location`),
`data` (carried, not enforced) and `bearer_token`.
Every security case has a subscriber that must receive nothing."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from tests.conftest import connect
from tests.support import jwts
from tests.support.raw import RawClient
from tests.support.servers import RunningServer, start_server

SERVERS = pytest.mark.parametrize("oracle", [False, True], ids=["pynats", "go"])
NOTHING_S = 0.3  # how long a subscriber that must receive nothing is watched after a flush


@dataclass
class Setup:
    base: Path
    op: jwts.Identity = field(default_factory=jwts.operator)
    sys_acc: jwts.Identity = field(default_factory=jwts.account)
    sys_user: jwts.Identity = field(default_factory=jwts.user)
    accounts: dict[str, str] = field(default_factory=dict)  # key -> JWT

    def __post_init__(self) -> None:
        (self.base / "op.jwt").write_text(jwts.operator_jwt(self.op))
        self.accounts[self.sys_acc.public_key] = jwts.account_jwt(self.op, self.sys_acc, "SYS")
        self.sys_creds = self.creds("sys", jwts.user_jwt(self.sys_acc, self.sys_user, "sys"))

    def add(self, acc: jwts.Identity, name: str, **nats_extra: Any) -> str:
        token = jwts.account_jwt(self.op, acc, name, **nats_extra)
        self.accounts[acc.public_key] = token
        return token

    def creds(self, name: str, token: str, usr: jwts.Identity | None = None) -> str:
        if usr is None:
            usr = self.sys_user
        return str(jwts.write_creds(self.base / f"{name}.creds", token, usr))

    def user(self, acc: jwts.Identity, name: str, **extra: Any) -> str:
        usr = jwts.user()
        return self.creds(name, jwts.user_jwt(acc, usr, name, **extra), usr)

    def config(self) -> Path:
        lines = "\n".join(f'  {key}: "{token}"' for key, token in self.accounts.items())
        conf = self.base / "server.conf"
        conf.write_text(
            f'operator: "{self.base / "op.jwt"}"\n'
            f"system_account: {self.sys_acc.public_key}\n"
            f"resolver: MEMORY\nresolver_preload: {{\n{lines}\n}}\n"
        )
        return conf


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


@pytest.fixture
def servers() -> Iterator[list[RunningServer]]:
    started: list[RunningServer] = []
    yield started
    for srv in started:
        srv.stop()


def run(servers: list[RunningServer], setup: Setup, oracle: bool) -> RunningServer:
    srv = start_server(["-c", str(setup.config())], oracle=oracle)
    servers.append(srv)
    return srv


async def receives_nothing(sub: Any, nc: nats.NATS) -> bool:
    await nc.flush()
    try:
        await sub.next_msg(NOTHING_S)
    except nats.errors.TimeoutError:
        return True
    return False


# -- exports and imports -------------------------------------------------------------------


@SERVERS
async def test_public_exports_reach_importers_under_their_local_subjects(
    setup: Setup, servers: list[RunningServer], oracle: bool
) -> None:
    exp, imp = jwts.account(), jwts.account()
    setup.add(
        exp,
        "EXP",
        exports=[
            {"name": "events", "subject": "events.>", "type": "stream"},
            {"name": "echo", "subject": "svc.echo", "type": "service"},
        ],
    )
    setup.add(
        imp,
        "IMP",
        imports=[
            {
                "name": "events",
                "subject": "events.>",
                "account": exp.public_key,
                "local_subject": "imported.>",
                "type": "stream",
            },
            {
                "name": "echo",
                "subject": "svc.echo",
                "account": exp.public_key,
                "local_subject": "echo",
                "type": "service",
            },
        ],
    )
    srv = run(servers, setup, oracle)
    exporter = await connect(srv.url, user_credentials=setup.user(exp, "e"))
    importer = await connect(srv.url, user_credentials=setup.user(imp, "i"))

    async def echo(msg: Any) -> None:
        await msg.respond(b"echo:" + msg.data)

    await exporter.subscribe("svc.echo", cb=echo)
    await exporter.flush()
    sub = await importer.subscribe("imported.>")
    await importer.flush()
    await exporter.publish("events.a.b", b"e1")
    msg = await sub.next_msg(2)
    assert (msg.subject, msg.data) == ("imported.a.b", b"e1")
    answer = await importer.request("echo", b"hi", timeout=2)
    assert answer.data == b"echo:hi"
    await exporter.close()
    await importer.close()


@SERVERS
async def test_a_private_export_reaches_only_importers_with_a_valid_activation(
    setup: Setup, servers: list[RunningServer], oracle: bool
) -> None:
    """Valid tokens (signed by the account, or by its signing key) let the stream in; an
    expired one, a revoked one and none at all keep it out; an account whose JWT carries a
    token made for another account is not usable (its users are refused)."""
    exp, signer = jwts.account(), jwts.account()
    good, by_key, expired, revoked, stolen, none = (jwts.account() for _ in range(6))
    now = int(time.time())
    setup.add(
        exp,
        "EXP",
        signing_keys=[signer.public_key],
        exports=[
            {
                "name": "private",
                "subject": "private.>",
                "type": "stream",
                "token_req": True,
                "revocations": {revoked.public_key: now + 5},
            }
        ],
    )

    def importing(acc: jwts.Identity, name: str, token: str) -> None:
        entry = {"subject": "private.>", "account": exp.public_key, "type": "stream"}
        if token:
            entry["token"] = token
        setup.add(acc, name, imports=[entry])

    def activation(importer: jwts.Identity, **extra: Any) -> str:
        return jwts.activation_jwt(exp, importer.public_key, "private.>", "stream", **extra)

    importing(good, "GOOD", activation(good))
    importing(
        by_key,
        "BYKEY",
        jwts.activation_jwt(
            signer, by_key.public_key, "private.>", "stream", issuer_account=exp.public_key
        ),
    )
    importing(expired, "EXPIRED", activation(expired, exp=now - 10, iat=now - 100))
    importing(revoked, "REVOKED", activation(revoked, iat=now - 100))
    importing(stolen, "STOLEN", activation(good))
    importing(none, "NONE", "")
    srv = run(servers, setup, oracle)
    publisher = await connect(srv.url, user_credentials=setup.user(exp, "p"))
    clients: dict[str, nats.NATS] = {}
    subs: dict[str, Any] = {}
    for acc, name in [
        (good, "good"),
        (by_key, "by_key"),
        (expired, "expired"),
        (revoked, "revoked"),
        (none, "none"),
    ]:
        clients[name] = await connect(srv.url, user_credentials=setup.user(acc, name))
        subs[name] = await clients[name].subscribe("private.>")
        await clients[name].flush()
    await publisher.publish("private.secret", b"s")
    assert (await subs["good"].next_msg(2)).data == b"s"
    assert (await subs["by_key"].next_msg(2)).data == b"s"
    for name in ("expired", "revoked", "none"):
        assert await receives_nothing(subs[name], clients[name]), name
    with pytest.raises(nats.errors.Error) as refused:
        await connect(srv.url, user_credentials=setup.user(stolen, "stolen"))
    assert "authorization violation" in str(refused.value).lower()
    for nc in [publisher, *clients.values()]:
        await nc.close()


@SERVERS
async def test_an_import_stops_when_its_activation_expires(
    setup: Setup, servers: list[RunningServer], oracle: bool
) -> None:
    exp, imp = jwts.account(), jwts.account()
    setup.add(
        exp,
        "EXP",
        exports=[{"subject": "svc.time", "type": "service", "token_req": True}],
    )
    until = int(time.time()) + 5  # room for a slow start under load, then the cut-off
    token = jwts.activation_jwt(exp, imp.public_key, "svc.time", "service", exp=until)
    setup.add(
        imp,
        "IMP",
        imports=[
            {"subject": "svc.time", "account": exp.public_key, "type": "service", "token": token}
        ],
    )
    srv = run(servers, setup, oracle)
    service = await connect(srv.url, user_credentials=setup.user(exp, "s"))
    client = await connect(srv.url, user_credentials=setup.user(imp, "c"))
    seen: list[bytes] = []

    async def answer(msg: Any) -> None:
        seen.append(msg.data)
        await msg.respond(b"ok")

    await service.subscribe("svc.time", cb=answer)
    await service.flush()
    assert (await client.request("svc.time", b"before", timeout=2)).data == b"ok"
    cut_off = False
    while not cut_off and time.time() < until + 3:
        try:
            await client.request("svc.time", b"after", timeout=0.5)
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            cut_off = True
        else:
            await asyncio.sleep(0.1)  # polling for the expiry, not waiting for luck
    assert cut_off and time.time() >= until - 1
    seen.clear()
    with pytest.raises((nats.errors.NoRespondersError, nats.errors.TimeoutError)):
        await client.request("svc.time", b"later", timeout=0.5)
    assert seen == []
    await service.close()
    await client.close()


# -- revocations -----------------------------------------------------------------------------


def _revoking_jwt(setup: Setup, acc: jwts.Identity, name: str, keys: dict[str, int]) -> str:
    return setup.add(acc, name, revocations=keys)


@SERVERS
async def test_a_revoked_user_is_refused_and_a_revocation_pushed_later_disconnects(
    setup: Setup, servers: list[RunningServer], oracle: bool
) -> None:
    app = jwts.account()
    alice, mallory = jwts.user(), jwts.user()
    now = int(time.time())
    alice_jwt = jwts.user_jwt(app, alice, "alice", iat=now - 10)
    mallory_creds = setup.creds(
        "mallory", jwts.user_jwt(app, mallory, "mallory", iat=now - 10), mallory
    )
    _revoking_jwt(setup, app, "APP", {mallory.public_key: now})
    srv = run(servers, setup, oracle)
    with pytest.raises(nats.errors.Error) as refused:
        await connect(srv.url, user_credentials=mallory_creds)
    assert "authorization violation" in str(refused.value).lower()

    watcher = await connect(srv.url, user_credentials=setup.user(app, "watcher"))
    with RawClient(srv.port) as raw:
        sig = base64.urlsafe_b64encode(alice.sign(raw.info["nonce"].encode()))
        raw.handshake(jwt=alice_jwt, sig=sig.decode().rstrip("="))
        raw.send(b"SUB secret 1\r\n")
        assert raw.ping_pong() == b""
        update = _revoking_jwt(
            setup, app, "APP", {mallory.public_key: now, alice.public_key: now + 1}
        )
        system = await connect(srv.url, user_credentials=setup.sys_creds)
        reply = await system.request(
            f"$SYS.REQ.ACCOUNT.{app.public_key}.CLAIMS.UPDATE", update.encode(), timeout=2
        )
        assert b"jwt updated" in reply.data
        assert raw.read_line(timeout=3) == b"-ERR 'User Authentication Revoked'"
        await watcher.publish("secret", b"for alice's eyes")
        await watcher.flush()
        assert raw.read_all_until_closed(timeout=2) == b""  # nothing more: closed
        await system.close()
    await watcher.close()


# -- signing keys with scopes ----------------------------------------------------------------


@SERVERS
async def test_a_scoped_signing_key_gives_its_users_the_template_permissions(
    setup: Setup, servers: list[RunningServer], oracle: bool
) -> None:
    app, scoped = jwts.account(), jwts.account()
    template = {
        "pub": {"allow": ["{{name()}}.>", "shared.{{tag(team)}}"]},
        "sub": {"allow": ["{{name()}}.>", "shared.{{tag(team)}}"]},
        "subs": -1,
        "data": -1,
        "payload": -1,
    }
    setup.add(
        app,
        "APP",
        signing_keys=[{"kind": "user_scope", "key": scoped.public_key, "template": template}],
    )
    bob, eve = jwts.user(), jwts.user()
    bob_creds = setup.creds(
        "bob", jwts.scoped_user_jwt(scoped, app, bob, "bob", tags=["team:red"]), bob
    )
    greedy = jwts.scoped_user_jwt(scoped, app, eve, "eve", pub={"allow": [">"]})
    eve_creds = setup.creds("eve", greedy, eve)
    srv = run(servers, setup, oracle)
    with pytest.raises(nats.errors.Error):
        await connect(srv.url, user_credentials=eve_creds)  # scoped users carry no permissions

    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    bob_nc = await connect(srv.url, user_credentials=bob_creds, error_cb=on_error)
    other = await connect(srv.url, user_credentials=setup.user(app, "alice"))
    mine = await bob_nc.subscribe("bob.>")
    team = await bob_nc.subscribe("shared.red")
    foreign = await bob_nc.subscribe("alice.>")
    await bob_nc.flush()
    await other.publish("bob.inbox", b"to bob")
    await other.publish("shared.red", b"to the team")
    await other.publish("alice.inbox", b"not for bob")
    assert (await mine.next_msg(2)).data == b"to bob"
    assert (await team.next_msg(2)).data == b"to the team"
    assert await receives_nothing(foreign, bob_nc)
    assert any("permissions violation" in str(e).lower() for e in errors)
    await bob_nc.close()
    await other.close()


# -- user limits -----------------------------------------------------------------------------


def _window(now_inside: bool) -> dict[str, str]:
    """A connect-time window (UTC) made when the test runs, that holds the present moment or
    lies hours away from it; it never crosses midnight."""
    now = time.time()
    if now_inside:
        day = now - now % 86400
        start = time.gmtime(max(day, now - 60))
        end = time.gmtime(min(day + 86399, now + 600))
        return {"start": time.strftime("%H:%M:%S", start), "end": time.strftime("%H:%M:%S", end)}
    if time.gmtime(now).tm_hour < 12:
        return {"start": "15:00:00", "end": "16:00:00"}
    return {"start": "03:00:00", "end": "04:00:00"}


@SERVERS
@pytest.mark.parametrize(
    ("limits", "admitted"),
    [
        ({"src": ["127.0.0.0/8"]}, True),
        ({"src": ["10.0.0.0/8", "192.168.0.0/16"]}, False),
        ({"times": "inside", "times_location": "UTC"}, True),
        ({"times": "outside", "times_location": "UTC"}, False),
    ],
    ids=["src-in", "src-out", "times-in", "times-out"],
)
async def test_source_networks_and_connect_times_decide_who_connects(
    setup: Setup,
    servers: list[RunningServer],
    oracle: bool,
    limits: dict[str, Any],
    admitted: bool,
) -> None:
    if "times" in limits:
        limits = {**limits, "times": [_window(limits["times"] == "inside")]}
    app = jwts.account()
    setup.add(app, "APP")
    usr = jwts.user()
    creds = setup.creds("limited", jwts.user_jwt(app, usr, "limited", limits), usr)
    srv = run(servers, setup, oracle)
    if admitted:
        nc = await connect(srv.url, user_credentials=creds)
        await nc.close()
    else:
        with pytest.raises(nats.errors.Error) as refused:
            await connect(srv.url, user_credentials=creds)
        assert "authorization violation" in str(refused.value).lower()


@SERVERS
async def test_a_bearer_token_needs_no_nonce_signature(
    setup: Setup, servers: list[RunningServer], oracle: bool
) -> None:
    app = jwts.account()
    setup.add(app, "APP")
    bearer, plain = jwts.user(), jwts.user()
    bearer_jwt = jwts.user_jwt(app, bearer, "bearer", {"bearer_token": True})
    plain_jwt = jwts.user_jwt(app, plain, "plain")
    srv = run(servers, setup, oracle)
    with RawClient(srv.port) as raw:
        raw.handshake(jwt=bearer_jwt)
        assert raw.ping_pong() == b""
    with RawClient(srv.port) as raw:
        raw.send(b'CONNECT {"verbose":false,"jwt":"' + plain_jwt.encode() + b'"}\r\nPING\r\n')
        assert raw.read_line(timeout=2) == b"-ERR 'Authorization Violation'"


# -- mappings ----------------------------------------------------------------------------------


async def _published_to(nc: nats.NATS, watched: dict[str, Any], subject: str) -> set[str]:
    """Where one message published on `subject` arrived, among the watched subscriptions."""
    await nc.publish(subject, b"m")
    await nc.flush()
    got = set()
    for name, sub in watched.items():
        try:
            await sub.next_msg(NOTHING_S)
            got.add(name)
        except nats.errors.TimeoutError:
            pass
    return got


@SERVERS
async def test_mappings_of_an_account_jwt_apply_and_follow_a_pushed_jwt(
    setup: Setup, servers: list[RunningServer], oracle: bool
) -> None:
    app = jwts.account()
    setup.add(
        app,
        "APP",
        mappings={
            "orders.*": [{"subject": "processed.{{wildcard(1)}}"}],
            "dup": [{"subject": "dup.a", "weight": 50}, {"subject": "dup.a", "weight": 50}],
            "here": [{"subject": "here.c1", "cluster": "C1"}, {"subject": "here.all"}],
        },
    )
    srv = run(servers, setup, oracle)
    nc = await connect(srv.url, user_credentials=setup.user(app, "app"))
    watched = {
        s: await nc.subscribe(s)
        for s in ("orders.1", "processed.1", "moved.1", "dup", "dup.a", "here.all", "here.c1")
    }
    assert await _published_to(nc, watched, "orders.1") == {"processed.1"}
    # a destination named twice: nats-server leaves the mapping out
    assert await _published_to(nc, watched, "dup") == {"dup"}
    # no cluster here: the destinations scoped to one are not used
    assert await _published_to(nc, watched, "here") == {"here.all"}

    update = setup.add(app, "APP", mappings={"orders.*": [{"subject": "moved.$1"}]})
    system = await connect(srv.url, user_credentials=setup.sys_creds)
    reply = await system.request(
        f"$SYS.REQ.ACCOUNT.{app.public_key}.CLAIMS.UPDATE", update.encode(), timeout=2
    )
    assert b"jwt updated" in reply.data
    assert await _published_to(nc, watched, "orders.1") == {"moved.1"}

    update = setup.add(app, "APP")
    reply = await system.request(
        f"$SYS.REQ.ACCOUNT.{app.public_key}.CLAIMS.UPDATE", update.encode(), timeout=2
    )
    assert b"jwt updated" in reply.data
    assert await _published_to(nc, watched, "orders.1") == {"orders.1"}
    await system.close()
    await nc.close()


@SERVERS
@pytest.mark.parametrize(
    "entries",
    [
        [{"subject": "a", "weight": 60}, {"subject": "b", "weight": 60}],
        [{"subject": "a", "weight": 100}, {"subject": "b"}],  # no weight: 100
        [
            {"subject": "a", "weight": 70, "cluster": "C"},
            {"subject": "b", "weight": 40, "cluster": "C"},
        ],
    ],
    ids=["over-100", "unweighted-counts-100", "over-100-in-a-cluster"],
)
async def test_an_account_jwt_whose_mapping_weighs_over_100_percent_is_refused(
    setup: Setup, servers: list[RunningServer], oracle: bool, entries: list[dict[str, Any]]
) -> None:
    app = jwts.account()
    setup.add(app, "APP", mappings={"src": entries})
    srv = run(servers, setup, oracle)
    with pytest.raises(nats.errors.Error) as refused:
        await connect(srv.url, user_credentials=setup.user(app, "app"))
    assert "authorization violation" in str(refused.value).lower()


@SERVERS
async def test_a_users_data_limit_is_carried_but_not_enforced(
    setup: Setup, servers: list[RunningServer], oracle: bool
) -> None:
    """`data` (max bytes) is in a user JWT's limits, but nats-server enforces only `subs` and
    `payload` on a connection: a user with `data: 5` sends and receives more."""
    app = jwts.account()
    setup.add(app, "APP")
    usr = jwts.user()
    creds = setup.creds("small", jwts.user_jwt(app, usr, "small", {"data": 5}), usr)
    srv = run(servers, setup, oracle)
    nc = await connect(srv.url, user_credentials=creds)
    try:
        sub = await nc.subscribe("big")
        for _ in range(3):
            await nc.publish("big", b"x" * 100)
        for _ in range(3):
            assert (await sub.next_msg(5)).data == b"x" * 100
        assert nc.is_connected
    finally:
        await nc.close()


@SERVERS
@pytest.mark.parametrize(
    ("zone_claims", "admitted"),
    [
        ({"locale": "Nowhere/Invalid"}, True),
        ({"times_location": "Nowhere/Invalid"}, False),
    ],
    ids=["locale-key-ignored", "bad-times-location"],
)
async def test_the_times_zone_is_times_location_only(
    setup: Setup,
    servers: list[RunningServer],
    oracle: bool,
    zone_claims: dict[str, str],
    admitted: bool,
) -> None:
    """The jwt library's `Locale` is the JSON key `times_location`; a `locale` key is no claim
    (the window is read in the server's local time, UTC here)."""
    app = jwts.account()
    setup.add(app, "APP")
    usr = jwts.user()
    limits = {"times": [_window(True)], **zone_claims}
    creds = setup.creds("zoned", jwts.user_jwt(app, usr, "zoned", limits), usr)
    srv = start_server(["-c", str(setup.config())], oracle=oracle, env={"TZ": "UTC"})
    servers.append(srv)
    if admitted:
        nc = await connect(srv.url, user_credentials=creds)
        await nc.close()
    else:
        with pytest.raises(nats.errors.Error) as refused:
            await connect(srv.url, user_credentials=creds)
        assert "authorization violation" in str(refused.value).lower()
