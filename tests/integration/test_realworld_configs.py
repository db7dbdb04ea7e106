"""Real deployments' config files (tests/data/realworld/), each started on pynats and on the
Go server, with the same clients doing the same things: every outcome is compared.

A scenario is a list of steps run by named clients: connect (as a user, or with creds),
subscribe, publish, request, JetStream and KV calls. The transcript holds what each step
answered (a reply, an error, a refusal) and, at the end, every message each subscriber got.
Some steps are security checks: a client that may not have a message (a denied subscription,
a revoked or expired user, a subject outside an import) must end with nothing.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import trustme
from tests.conftest import connect
from tests.support import jwts
from tests.support.servers import start_server

DATA = Path(__file__).resolve().parent.parent / "data" / "realworld"
KINDS = ("go", "pynats")


@dataclass
class Session:
    url: str
    clients: dict[str, nats.NATS] = field(default_factory=dict)
    inbox: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    transcript: list[Any] = field(default_factory=list)
    subs: list[Any] = field(default_factory=list)

    async def connect(self, who: str, **opts: Any) -> None:
        errors = self.errors.setdefault(who, [])
        tls = bool(opts.get("tls"))

        async def on_error(e: Exception) -> None:
            errors.append(_same_refusal(str(e).lower(), tls))

        try:
            url = opts.pop("url", self.url)
            nc = await connect(url, error_cb=on_error, **opts)
            # a server that refuses after the handshake may close before nats-py sees an error
            await nc.flush(timeout=2)
            self.clients[who] = nc
            self.transcript.append((who, "connected"))
        except Exception as e:
            self.transcript.append((who, "refused", _same_refusal(str(e).lower(), tls)))

    async def sub(self, who: str, subject: str, name: str = "") -> None:
        box = self.inbox.setdefault(name or f"{who}:{subject}", [])

        async def on_msg(msg: Any) -> None:
            box.append((msg.subject, msg.data))

        self.subs.append(await self.clients[who].subscribe(subject, cb=on_msg))
        await self.clients[who].flush()

    async def pub(self, who: str, subject: str, data: bytes = b"x") -> None:
        await self.clients[who].publish(subject, data)
        await self.clients[who].flush()

    async def req(self, who: str, subject: str, data: bytes = b"q") -> None:
        try:
            msg = await self.clients[who].request(subject, data, timeout=1)
            self.transcript.append((who, "req", subject, msg.data))
        except Exception as e:
            self.transcript.append((who, "req", subject, type(e).__name__))

    async def expect(self, box: str, count: int) -> None:
        """Until `box` holds `count` messages (5 s at most): a delivery the scenario counts on."""
        for _ in range(500):
            if len(self.inbox.get(box, ())) >= count:
                return
            await asyncio.sleep(0.01)

    async def settle(self) -> None:
        for nc in self.clients.values():
            if nc.is_connected:
                await nc.flush()

    async def finish(self) -> list[Any]:
        # Every publisher flushed after its publish, so what it sent was handed to the
        # subscribers' connections; a flush of each subscriber then has it all delivered,
        # and the callbacks run until no subscription holds a message still to handle.
        await self.settle()
        for _ in range(500):
            if all(sub.pending_msgs == 0 for sub in self.subs):
                break
            await asyncio.sleep(0.01)
        boxes = {name: sorted(msgs) for name, msgs in sorted(self.inbox.items())}
        errs = {who: sorted(set(e)) for who, e in sorted(self.errors.items()) if e}
        for nc in self.clients.values():
            await nc.close()
        return [self.transcript, boxes, errs]


def _same_refusal(text: str, tls: bool) -> str:
    """A failed TLS handshake reads differently on the client (Go sends an alert and only its
    own certificate; pynats closes, and OpenSSL sends the CA along): the same refusal."""
    if "[ssl:" in text or (
        tls
        and text
        in (
            "connection lost",
            "[errno 104] connection reset by peer",
            "[errno 32] broken pipe",
            "nats: unexpected eof",
            "nats: flush timeout",
        )
    ):
        return "tls handshake failed"
    return text


async def both(
    config: Path | Callable[[str], Path], scenario: Callable[[Session], Any]
) -> list[Any]:
    """`scenario` on each server (`config` a file, or the file for a kind), the outcomes
    compared; the Go server's."""
    results = {}
    for kind in KINDS:
        path = config(kind) if callable(config) else config
        srv = start_server(["-c", str(path)], oracle=kind == "go")
        try:
            session = Session(srv.url)
            await scenario(session)
            results[kind] = await session.finish()
        finally:
            srv.stop()
    assert results["pynats"] == results["go"]
    return results["go"]


# -- static accounts, permissions, imports and mappings --------------------------------------


async def tenants(s: Session) -> None:
    await s.connect("orders", user="orders", password="secret")
    await s.connect("auditor", user="auditor", password="secret")
    await s.connect("shop", user="shop", password="secret")
    await s.connect("guest")  # the no_auth_user, in SHOP
    await s.connect("intruder", user="orders", password="wrong")

    async def price(msg: Any) -> None:
        await msg.respond(b"price of " + msg.subject.encode())

    await s.clients["orders"].subscribe("price.*", cb=price)
    await s.sub("orders", "orders.>")
    await s.sub("orders", "in.>")
    await s.sub("auditor", "orders.>")
    await s.sub("shop", "feed.orders.>")
    await s.sub("guest", "orders.>")  # SHOP has no orders.> of its own: nothing
    await s.sub("shop", "admin.>")
    await s.req("shop", "shop.price.apple")
    await s.req("guest", "shop.price.pear")
    await s.req("shop", "price.apple")  # not imported under this name: no responders
    for n in ("1", "2", "3"):
        await s.pub("orders", f"orders.{n}")  # mapped into a partition
    await s.pub("orders", "in.a.b")  # reordered
    await s.pub("orders", "legacy.orders.7")  # top-level mapping is $G's, not ORDERS'
    await s.pub("auditor", "orders.9")  # denied: -ERR, nobody gets it
    await s.pub("shop", "admin.reset")  # denied by shop's own permissions
    await s.settle()


async def test_static_accounts_with_permissions_imports_and_mappings() -> None:
    result = await both(DATA / "accounts_mappings.conf", tenants)
    transcript, boxes, errors = result
    assert ("intruder", "refused", "nats: 'authorization violation'") in transcript
    assert boxes["guest:orders.>"] == []  # another account's subject space
    assert boxes["shop:admin.>"] == []  # a denied publish reaches no one
    assert all(not subject.endswith(".9") for subject, _ in boxes["auditor:orders.>"])
    assert any("permissions violation" in e for e in errors["auditor"])


# -- JetStream tenants: limits, a domain, a KV bucket shared through imports -----------------


async def jetstream_tenants(s: Session) -> None:
    await s.connect("team", user="team", password="secret")
    await s.connect("other", user="other", password="secret")
    team = s.clients["team"].jetstream()
    kv = await team.create_key_value(bucket="config", history=3)
    await kv.put("db.url", b"postgres://db")
    await kv.put("db.url", b"postgres://db2")
    other = s.clients["other"].jetstream(prefix="team.api")
    shared = await other.key_value("config")
    entry = await shared.get("db.url")
    s.transcript.append(("other", "kv get", entry.value, entry.revision))
    await shared.put("feature.x", b"on")
    s.transcript.append(("team", "kv get", (await kv.get("feature.x")).value))
    own = s.clients["other"].jetstream()
    try:
        await own.add_stream(name="BIG", subjects=["big.>"], max_bytes=10 * 1024 * 1024)
        s.transcript.append(("other", "stream", "created"))
    except Exception as e:
        s.transcript.append(("other", "stream", type(e).__name__, str(e)))
    try:
        await own.add_stream(name="MEM", subjects=["mem.>"], storage="memory")
        s.transcript.append(("other", "mem stream", "created"))
    except Exception as e:
        s.transcript.append(("other", "mem stream", type(e).__name__, str(e)))
    info = await s.clients["other"].request("$JS.hub.API.INFO", b"", timeout=2)
    body = json.loads(info.data)
    s.transcript.append(("other", "domain info", body.get("domain"), body.get("limits")))


async def test_jetstream_tenants_share_a_kv_bucket_through_imports(tmp_path: Path) -> None:
    def config(kind: str) -> Path:
        conf = tmp_path / f"{kind}.conf"
        text = (DATA / "jetstream_tenants.conf").read_text()
        conf.write_text(text.replace("{store}", str(tmp_path / kind)))
        return conf

    transcript, _, _ = await both(config, jetstream_tenants)
    assert ("other", "kv get", b"postgres://db2", 2) in transcript


# -- operator mode from nsc: v2 and v1 JWTs, exports, a revoked and an expired user ----------


@dataclass
class Operator:
    config: Path
    creds: dict[str, Path]


def nsc_setup(tmp_path: Path) -> Operator:
    """What `nsc` would have made: an operator, SYS, APP (v2) exporting a service and a
    stream, LEGACY (v1) importing both; users of each, one revoked, one expired."""
    op, sys_acc, app, legacy = jwts.operator(), jwts.account(), jwts.account(), jwts.account()
    users = {name: jwts.user() for name in ("svc", "alice", "old", "revoked", "expired")}
    now = int(time.time())
    app_jwt = jwts.account_jwt(
        op,
        app,
        "APP",
        exports=[
            {"name": "time", "subject": "time.now", "type": "service"},
            {"name": "events", "subject": "events.>", "type": "stream"},
        ],
        revocations={users["revoked"].public_key: now + 60},
    )
    legacy_jwt = jwts.account_jwt(
        op,
        legacy,
        "LEGACY",
        v1=True,
        imports=[
            {"name": "time", "subject": "time.now", "account": app.public_key, "type": "service"},
            {
                "name": "events",
                "subject": "events.>",
                "account": app.public_key,
                "type": "stream",
                "local_subject": "app.events.>",
            },
        ],
    )
    preload = {
        sys_acc.public_key: jwts.account_jwt(op, sys_acc, "SYS"),
        app.public_key: app_jwt,
        legacy.public_key: legacy_jwt,
    }
    conf = tmp_path / "nsc.conf"
    conf.write_text(
        (DATA / "nsc_operator.conf")
        .read_text()
        .replace("{operator_jwt}", jwts.operator_jwt(op))
        .replace("{sys_pub}", sys_acc.public_key)
        .replace("{preload}", "\n".join(f"  {k}: {v}" for k, v in preload.items()))
    )
    creds = {}
    for name, usr in users.items():
        acc, v1 = (legacy, True) if name == "old" else (app, False)
        extra: dict[str, Any] = {"exp": now - 1} if name == "expired" else {}
        token = jwts.user_jwt(acc, usr, name, v1=v1, **extra)
        creds[name] = jwts.write_creds(tmp_path / f"{name}.creds", token, usr)
    return Operator(conf, creds)


async def nsc_scenario(s: Session, creds: dict[str, Path]) -> None:
    for name in ("svc", "alice", "old", "revoked", "expired"):
        await s.connect(name, user_credentials=str(creds[name]))

    async def now(msg: Any) -> None:
        await msg.respond(b"12:00")

    await s.clients["svc"].subscribe("time.now", cb=now)
    await s.clients["svc"].flush()
    await s.sub("old", "app.events.>")
    await s.sub("old", "events.>")  # LEGACY's own events.>: APP's do not arrive here
    await s.req("old", "time.now")  # through the service import
    await s.req("alice", "time.now")
    await s.pub("alice", "events.login")
    await s.pub("svc", "events.logout")
    await s.settle()


async def test_an_nsc_operator_setup_with_v1_and_v2_jwts(tmp_path: Path) -> None:
    setup = nsc_setup(tmp_path)

    async def scenario(s: Session) -> None:
        await nsc_scenario(s, setup.creds)

    transcript, boxes, _ = await both(setup.config, scenario)
    assert ("old", "req", "time.now", b"12:00") in transcript
    assert [t for t in transcript if t[0] in ("revoked", "expired")] == [
        ("revoked", "refused", "nats: 'authorization violation'"),
        ("expired", "refused", "nats: 'authorization violation'"),
    ]
    assert sorted(s for s, _ in boxes["old:app.events.>"]) == [
        "app.events.login",
        "app.events.logout",
    ]
    assert boxes["old:events.>"] == []


# -- TLS: client certificates mapped to users, plain connections still allowed ---------------


def pki(tmp_path: Path) -> dict[str, str]:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    alice = ca.issue_cert("alice@example.com", common_name="alice")
    bob = ca.issue_cert("bob@example.com", common_name="bob")
    stranger = trustme.CA().issue_cert("alice@example.com", common_name="alice")  # other CA
    files = {"ca": ca.cert_pem, "cert": server.cert_chain_pems[0], "key": server.private_key_pem}
    files |= {"alice": alice.cert_chain_pems[0], "alice_key": alice.private_key_pem}
    files |= {"bob": bob.cert_chain_pems[0], "bob_key": bob.private_key_pem}
    files |= {"stranger": stranger.cert_chain_pems[0], "stranger_key": stranger.private_key_pem}
    out = {}
    for name, blob in files.items():
        path = tmp_path / f"{name}.pem"
        blob.write_to_path(str(path))
        out[name] = str(path)
    return out


def tls_context(files: dict[str, str], who: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=files["ca"])
    ctx.load_cert_chain(files[who], files[f"{who}_key"])
    return ctx


def tls_config(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    conf = tmp_path / name
    text = (DATA / name).read_text()
    for key in ("cert", "key", "ca"):
        text = text.replace("{" + key + "}", files[key])
    conf.write_text(text)
    return conf


async def test_tls_users_mapped_from_their_certificates(tmp_path: Path) -> None:
    files = pki(tmp_path)
    conf = tls_config(tmp_path, "tls_mapped_users.conf", files)

    async def scenario(s: Session) -> None:
        tls_url = s.url.replace("nats://", "tls://")
        await s.connect("alice", url=tls_url, tls=tls_context(files, "alice"))
        await s.connect("bob", url=tls_url, tls=tls_context(files, "bob"))
        await s.connect("stranger", url=tls_url, tls=tls_context(files, "stranger"))
        await s.connect("plain")  # TLS is required here
        await s.sub("bob", "orders.>")
        await s.sub("alice", "legacy.>")
        await s.pub("alice", "orders.1")
        await s.pub("bob", "legacy.1")  # alice may not subscribe to legacy.>: nothing arrives
        await s.pub("bob", "orders.2")  # not bob's to publish
        await s.settle()

    transcript, boxes, errors = await both(conf, scenario)
    assert ("alice", "connected") in transcript and ("bob", "connected") in transcript
    assert [t[:2] for t in transcript if t[0] in ("stranger", "plain")] == [
        ("stranger", "refused"),
        ("plain", "refused"),
    ]
    assert boxes["bob:orders.>"] == [("orders.1", b"x")]
    assert boxes["alice:legacy.>"] == []
    assert any("permissions violation" in e for e in errors["bob"])


async def test_tls_offered_to_clients_that_upgraded_and_plain_for_the_rest(
    tmp_path: Path,
) -> None:
    files = pki(tmp_path)
    conf = tls_config(tmp_path, "tls_optional.conf", files)

    async def scenario(s: Session) -> None:
        tls_url = s.url.replace("nats://", "tls://")
        trust = ssl.create_default_context(cafile=files["ca"])
        await s.connect("upgraded", url=tls_url, tls=trust, user="upgraded", password="s3cret")
        await s.connect("legacy", user="legacy", password="old")
        await s.connect("guesser", user="legacy", password="guess")
        await s.sub("legacy", "news.>")
        await s.pub("upgraded", "news.1")
        await s.expect("legacy:news.>", 1)
        await s.pub("legacy", "news.2")  # not legacy's to publish
        await s.settle()

    transcript, boxes, _ = await both(conf, scenario)
    assert ("guesser", "refused", "nats: 'authorization violation'") in transcript
    assert boxes["legacy:news.>"] == [("news.1", b"x")]
