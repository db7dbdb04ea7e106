"""Auth callout for leaf connections: a leaf that dials a hub whose leafnode port has no
authorization of its own is decided by the hub's callout service, as a client would be.

The hub (pynats or the Go server, same file) has `authorization { auth_callout {} }`; the
callout service (nats-py, the one of test_auth_callout.py) answers by the user name the leaf's
remote URL carries: a user JWT placing the leaf in APP, or an error. The leaf (pynats or Go)
binds its $G to whatever account the service chose on the hub.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.msg import Msg
from tests.conftest import connect
from tests.integration.test_auth_callout import CalloutService, Keys, answer, user_jwt
from tests.support import jwts
from tests.support.leafs import LeafPair, Node, make_node
from tests.support.waiting import wait_until

# (hub, leaf)
MIXES = [("go", "go"), ("go", "py"), ("py", "go"), ("py", "py")]


def mix_id(mix: tuple[str, str]) -> str:
    return f"{mix[1]}-leaf-on-{mix[0]}-hub"


def hub_config(keys: Keys) -> str:
    return f"""
accounts {{
  AUTH {{ users: [ {{user: auth, password: auth}} ] }}
  APP {{}}
  OTHER {{}}
}}
authorization {{
  timeout: 1
  auth_callout {{
    issuer: {keys.issuer.public_key}
    auth_users: [ auth ]
    account: AUTH
  }}
}}
"""


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory, keys: Keys) -> Iterator[dict[str, LeafPair]]:
    """One hub of each kind for the whole module; each test dials them with its own leaf."""
    tmp = tmp_path_factory.mktemp("callout-hubs")
    pairs: dict[str, LeafPair] = {}
    try:
        for kind in ("py", "go"):
            hub = make_node(kind, f"HUB-{kind.upper()}", tmp)
            hub.extra = f"leafnodes {{\n  listen: 127.0.0.1:{hub.leaf_port}\n}}\n{hub_config(keys)}"
            pair = LeafPair(hub, hub)
            pair.start(hub)
            pairs[kind] = pair
        yield pairs
    finally:
        for pair in pairs.values():
            pair.stop_all()


@pytest.fixture
async def services(
    hubs: dict[str, LeafPair], keys: Keys
) -> AsyncIterator[dict[str, CalloutService]]:
    """The callout service of each hub: alice and leafy go to APP, bob to OTHER, and every
    `intruder...` is refused."""

    async def into_app(claims: dict[str, Any]) -> bytes:
        return answer(keys, claims, user_jwt=user_jwt(keys.issuer, claims, "APP"))

    async def into_other(claims: dict[str, Any]) -> bytes:
        return answer(keys, claims, user_jwt=user_jwt(keys.issuer, claims, "OTHER"))

    async def refuse(claims: dict[str, Any]) -> bytes:
        user = claims["nats"]["connect_opts"].get("user", "")
        return answer(keys, claims, error=f"no leaf for {user}")

    out: dict[str, CalloutService] = {}
    for kind, pair in hubs.items():
        svc = CalloutService(keys)
        svc.answers = {"alice": into_app, "leafy": into_app, "bob": into_other}
        for leaf_kind in ("py", "go"):
            svc.answers[f"intruder-{leaf_kind}"] = refuse
        await svc.start(pair.hub.url)
        out[kind] = svc
    yield out
    for svc in out.values():
        await svc.stop()


def start_leaf(
    hub: Node, kind: str, tmp: Path, user: str = "", creds: Path | None = None
) -> LeafPair:
    """A leaf of `hub` whose remote logs in as `user` (its $G binds the hub's account), or
    with a credentials file."""
    leaf = make_node(kind, f"LEAF-{kind.upper()}", tmp)
    login = f"{user}:secret@" if user else ""
    url = f"nats-leaf://{login}127.0.0.1:{hub.leaf_port}"
    with_creds = f', credentials: "{creds}"' if creds is not None else ""
    leaf.extra = f'leafnodes {{\n  remotes: [ {{ url: "{url}"{with_creds} }} ]\n}}\n'
    pair = LeafPair(hub, leaf)
    pair.start(leaf)
    return pair


def leafs_of(node: Node) -> list[dict[str, Any]]:
    return list(node.http_json("/leafz").get("leafs") or [])


async def logged(node: Node, pattern: str) -> None:
    """Wait for a log line of `node` (without blocking the loop: the service runs on it)."""
    assert node.server is not None
    rx = re.compile(pattern, re.MULTILINE)
    server = node.server
    await wait_until(lambda: rx.search(server.log_text()), what=pattern, explain=server.log_text)


def logs(pair: LeafPair) -> str:
    return "\n\n".join(
        f"== {n.name}\n{n.server.log_text() if n.server else ''}" for n in (pair.hub, pair.leaf)
    )


# -- admitted --------------------------------------------------------------------------------


@pytest.mark.parametrize("mix", MIXES, ids=mix_id)
async def test_admitted_leaf_is_bound_to_the_account_the_callout_chose(
    mix: tuple[str, str],
    hubs: dict[str, LeafPair],
    services: dict[str, CalloutService],
    tmp_path: Path,
) -> None:
    hub_kind, leaf_kind = mix
    hub = hubs[hub_kind].hub
    service = services[hub_kind]
    pair = start_leaf(hub, leaf_kind, tmp_path, "leafy")
    try:
        placed = await wait_until(
            lambda: [leaf for leaf in leafs_of(hub) if leaf["name"] == pair.leaf.name],
            what="the leaf on the hub",
            explain=lambda: logs(pair),
        )
        assert placed[0]["account"] == "APP"
        request = service.requests_of("leafy")[-1]["nats"]
        assert request["client_info"]["kind"] == "Leafnode"
        assert request["client_info"]["name"] == pair.leaf.name

        alice = await connect(hub.url, user="alice", password="secret")  # APP
        bob = await connect(hub.url, user="bob", password="secret")  # OTHER
        local = await connect(pair.leaf.url)  # the leaf's $G
        # leaf -> hub, in APP only
        at_alice = await alice.subscribe("up.>")
        at_bob = await bob.subscribe("up.>")
        await alice.flush()
        await bob.flush()
        await wait_until(lambda: "up.>" in pair.leaf.leaf_interest(), what="up.> heard by the leaf")
        await local.publish("up.1", b"from the leaf")
        assert (await at_alice.next_msg(3)).data == b"from the leaf"
        # hub -> leaf
        at_leaf = await local.subscribe("down.>")
        await local.flush()
        await wait_until(lambda: "down.>" in hub.leaf_interest(), what="down.> heard by the hub")
        await alice.publish("down.1", b"from the hub")
        assert (await at_leaf.next_msg(3)).data == b"from the hub"
        # a request across the leaf, answered on the hub

        async def echo(msg: Msg) -> None:
            await msg.respond(b"re: " + msg.data)

        await alice.subscribe("svc", cb=echo)
        await alice.flush()
        await wait_until(lambda: "svc" in pair.leaf.leaf_interest(), what="svc heard by the leaf")
        assert (await local.request("svc", b"hi", timeout=3)).data == b"re: hi"
        # bob's account never saw the leaf's message
        with pytest.raises(nats.errors.TimeoutError):
            await at_bob.next_msg(0.2)
        for nc in (alice, bob, local):
            await nc.close()
    finally:
        pair.stop_all()


# -- refused ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mix", MIXES, ids=mix_id)
async def test_leaf_refused_by_the_callout_is_not_connected(
    mix: tuple[str, str],
    hubs: dict[str, LeafPair],
    services: dict[str, CalloutService],
    tmp_path: Path,
) -> None:
    hub_kind, leaf_kind = mix
    hub = hubs[hub_kind].hub
    service = services[hub_kind]
    user = f"intruder-{leaf_kind}"
    pair = start_leaf(hub, leaf_kind, tmp_path, user)
    try:
        alice = await connect(hub.url, user="alice", password="secret")
        at_alice = await alice.subscribe(">")
        await alice.flush()
        await logged(hub, rf'\[ERR\] .* - lid:\d+ - authentication error - User "{user}"$')
        await logged(hub, rf"\[WRN\] Auth callout service returned an error: no leaf for {user}$")
        await logged(pair.leaf, r"\[ERR\] .* - Leafnode Error 'Authorization Violation'$")
        assert service.requests_of(user)[0]["nats"]["client_info"]["kind"] == "Leafnode"
        assert leafs_of(hub) == []
        assert hub.http_json("/varz")["leafnodes"] == 0
        # nothing published on the leaf reaches the account a leaf would have had
        local = await connect(pair.leaf.url)
        await local.publish("leak", b"x")
        await local.flush()
        with pytest.raises(nats.errors.TimeoutError):
            await at_alice.next_msg(0.3)
        await local.close()
        await alice.close()
    finally:
        pair.stop_all()


# -- the request -----------------------------------------------------------------------------


def shape(claims: dict[str, Any]) -> dict[str, Any]:
    """What must be alike on both hubs: the keys at each level, the leaf's description and
    what its CONNECT said (not the ids, keys, times and host names that differ)."""
    body = claims["nats"]
    return {
        "claims": sorted(claims),
        "nats": sorted(body),
        "server_id": sorted(body["server_id"]),
        "client_info": {k: v for k, v in body["client_info"].items() if k not in ("id", "nonce")},
        "nonce": "nonce" in body["client_info"],
        "connect_opts": {k: v for k, v in body["connect_opts"].items() if k != "sig"},
        "signed": "sig" in body["connect_opts"],
        "aud": claims["aud"],
        "type": body["type"],
        "version": body["version"],
    }


@pytest.mark.parametrize("login", ["password", "credentials"])
async def test_leaf_request_has_the_same_shape_on_both_hubs(
    login: str, hubs: dict[str, LeafPair], services: dict[str, CalloutService], tmp_path: Path
) -> None:
    """The same (Go) leaf dials each hub, with a user and password or with a credentials file
    (a user JWT and the signed nonce): the requests differ only in ids, keys and times."""
    creds = None
    if login == "credentials":
        usr = jwts.user()
        creds = jwts.write_creds(
            tmp_path / "leaf.creds", jwts.user_jwt(jwts.account(), usr, "leaf-user"), usr
        )
    shapes = {}
    for hub_kind, pair in hubs.items():
        service = services[hub_kind]

        def requests(service: CalloutService = service) -> list[dict[str, Any]]:
            return [r for r in service.requests if r["nats"]["client_info"]["kind"] == "Leafnode"]

        leaf = start_leaf(pair.hub, "go", tmp_path / hub_kind, "" if creds else "leafy", creds)
        try:
            await wait_until(requests, what="a leaf's request")
        finally:
            leaf.stop_all()
        request = requests()[0]
        assert request["iss"] == pair.hub.http_json("/varz")["server_id"]
        shapes[hub_kind] = shape(request)
    assert shapes["py"] == shapes["go"]
    info = shapes["py"]["client_info"]
    assert info["kind"] == "Leafnode"
    assert "type" not in info  # a leaf is not a client type (nats, websocket, mqtt)
    assert shapes["py"]["connect_opts"]["protocol"] == 3
    if creds is None:
        assert info["user"] == "leafy"
        assert not shapes["py"]["signed"] and not shapes["py"]["nonce"]
    else:
        assert shapes["py"]["signed"] and shapes["py"]["nonce"]


async def test_what_the_leaf_sends_after_connect_waits_for_the_answer(
    hubs: dict[str, LeafPair], services: dict[str, CalloutService], keys: Keys
) -> None:
    """A leaf's CONNECT and PING at once: nothing comes back before the service has
    answered; then the INFO that binds the account, and the PONG."""
    for hub_kind, pair in hubs.items():
        service = services[hub_kind]
        release = asyncio.Event()
        asked = asyncio.Event()

        async def slow(
            claims: dict[str, Any], asked: asyncio.Event = asked, release: asyncio.Event = release
        ) -> bytes:
            asked.set()
            await release.wait()
            return answer(keys, claims, user_jwt=user_jwt(keys.issuer, claims, "APP"))

        service.answers["slow"] = slow
        reader, writer = await asyncio.open_connection("127.0.0.1", pair.hub.leaf_port)
        assert (await asyncio.wait_for(reader.readline(), 5)).startswith(b"INFO ")
        connect_opts = {
            "user": "slow",
            "pass": "x",
            "name": f"RAW-{hub_kind}",
            "headers": True,
            "protocol": 3,
        }
        writer.write(b"CONNECT " + json.dumps(connect_opts).encode() + b"\r\nPING\r\n")
        await writer.drain()
        await asyncio.wait_for(asked.wait(), 5)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.readline(), 0.3)  # held until the answer
        release.set()
        lines = []
        while not lines or lines[-1] != b"PONG\r\n":
            lines.append(await asyncio.wait_for(reader.readline(), 5))
        info = json.loads(lines[0][len(b"INFO ") :])
        assert info["connect_info"] is True, hub_kind
        assert info["remote_account"] == "APP", hub_kind
        writer.close()


# -- the leafnode port's own authorization comes first ---------------------------------------


@pytest.mark.parametrize("hub_kind", ["py", "go"])
async def test_leafnode_authorization_of_its_own_is_not_a_callout(
    hub_kind: str, keys: Keys, tmp_path: Path
) -> None:
    """`leafnodes { authorization {} }` decides its leafs itself: the service never hears of
    them (as nats-server's isLeafNodeAuthorized, which asks the clients' authentication,
    callout included, only when the leafnode port has no users of its own)."""
    hub = make_node(hub_kind, f"HUB-{hub_kind.upper()}", tmp_path)
    hub.extra = (
        f"leafnodes {{\n  listen: 127.0.0.1:{hub.leaf_port}\n"
        "  authorization { user: leafport, password: secret, account: OTHER }\n}\n"
        f"{hub_config(keys)}"
    )
    hubs = LeafPair(hub, hub)
    hubs.start(hub)
    service = CalloutService(keys)
    pair: LeafPair | None = None
    try:
        await service.start(hub.url)
        pair = start_leaf(hub, "py", tmp_path, "leafport")
        placed = await wait_until(
            lambda: leafs_of(hub), what="the leaf on the hub", explain=lambda: logs(pair)
        )
        assert placed[0]["account"] == "OTHER"
        assert service.requests == []
    finally:
        await service.stop()
        if pair is not None:
            pair.stop_all()
        hubs.stop_all()


# -- operator mode ---------------------------------------------------------------------------
#
# The hub trusts an operator; the callout account AUTH says so in its JWT. The leaf's remote
# logs in with the credentials of a "sentinel" user of AUTH; the service places it in APP
# with a user JWT issued by APP, and a client of the hub (also placed by the service) in APP.


@dataclass
class Operator:
    conf: str
    auth: jwts.Identity
    app: jwts.Identity
    service_creds: Path
    sentinel_creds: Path


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> Operator:
    base = Path(tmp_path_factory.mktemp("callout-leaf-op"))
    op = jwts.operator()
    sys_acc, auth, app = (jwts.account() for _ in range(3))
    service_user, sentinel = jwts.user(), jwts.user()
    (base / "op.jwt").write_text(jwts.operator_jwt(op))
    authorization = {
        "auth_users": [service_user.public_key],
        "allowed_accounts": [app.public_key],
    }
    auth_jwt = jwts.account_jwt(op, auth, "AUTH", authorization=authorization)
    conf = f"""
operator: "{base / "op.jwt"}"
system_account: {sys_acc.public_key}
resolver: MEMORY
resolver_preload: {{
  {sys_acc.public_key}: "{jwts.account_jwt(op, sys_acc, "SYS")}"
  {auth.public_key}: "{auth_jwt}"
  {app.public_key}: "{jwts.account_jwt(op, app, "APP")}"
}}
"""
    return Operator(
        conf=conf,
        auth=auth,
        app=app,
        service_creds=jwts.write_creds(
            base / "service.creds", jwts.user_jwt(auth, service_user, "service"), service_user
        ),
        sentinel_creds=jwts.write_creds(
            base / "sentinel.creds", jwts.user_jwt(auth, sentinel, "sentinel"), sentinel
        ),
    )


@pytest.fixture(scope="module")
def op_hubs(
    tmp_path_factory: pytest.TempPathFactory, operator: Operator
) -> Iterator[dict[str, LeafPair]]:
    tmp = tmp_path_factory.mktemp("callout-leaf-op-hubs")
    pairs: dict[str, LeafPair] = {}
    try:
        for kind in ("py", "go"):
            hub = make_node(kind, f"OPHUB-{kind.upper()}", tmp)
            hub.extra = f"leafnodes {{\n  listen: 127.0.0.1:{hub.leaf_port}\n}}\n{operator.conf}"
            pair = LeafPair(hub, hub)
            pair.start(hub)
            pairs[kind] = pair
        yield pairs
    finally:
        for pair in pairs.values():
            pair.stop_all()


@pytest.mark.parametrize("mix", MIXES, ids=mix_id)
async def test_operator_mode_leaf_is_placed_by_its_account_callout(
    mix: tuple[str, str],
    op_hubs: dict[str, LeafPair],
    operator: Operator,
    keys: Keys,
    tmp_path: Path,
) -> None:
    hub_kind, leaf_kind = mix
    hub = op_hubs[hub_kind].hub

    async def to_app(claims: dict[str, Any]) -> bytes:
        token = user_jwt(operator.app, claims, "", name="placed")
        return answer(keys, claims, signer=operator.auth, user_jwt=token)

    service = CalloutService(keys, by="name")
    leaf_name = f"LEAF-{leaf_kind.upper()}"
    service.answers = {leaf_name: to_app, "hub-client": to_app}
    await service.start(hub.url, user_credentials=str(operator.service_creds))
    pair = start_leaf(hub, leaf_kind, tmp_path, creds=operator.sentinel_creds)
    try:
        placed = await wait_until(
            lambda: leafs_of(hub), what="the leaf on the hub", explain=lambda: logs(pair)
        )
        assert placed[0]["account"] == operator.app.public_key
        request = service.requests_of(leaf_name)[-1]["nats"]
        assert request["client_info"]["kind"] == "Leafnode"
        assert request["connect_opts"]["jwt"]  # operator mode keeps the sentinel's JWT
        on_hub = await connect(
            hub.url, user_credentials=str(operator.sentinel_creds), name="hub-client"
        )
        local = await connect(pair.leaf.url)
        sub = await on_hub.subscribe("up")
        await on_hub.flush()
        await wait_until(lambda: "up" in pair.leaf.leaf_interest(), what="up heard by the leaf")
        await local.publish("up", b"placed by the callout")
        assert (await sub.next_msg(3)).data == b"placed by the callout"
        await on_hub.close()
        await local.close()
    finally:
        pair.stop_all()
        await service.stop()
