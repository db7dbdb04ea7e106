"""A supercluster beyond plain messages: accounts' imports, the system account's events and
the servers a cluster is made of, each scenario with pynats and nats-server 2.15.1 mixed.

Checked: a service import is answered, and a stream import fed, when the exporting
account's receiver is in one cluster and the importing client in the other (both ways);
`$SYS` events (account CONNECT/DISCONNECT, STATSZ) reach the system-account subscribers of
the other cluster, every server of the supercluster answers `$SYS.REQ.SERVER.PING.*`, and
STATSZ lists the server's gateways as nats-server's does; when a server leaves a cluster,
its gateway URL leaves the gateway INFO of the others and what the other cluster dials; a
reload of the gateway `tls {}` counts for the next connections, accepted and dialled; an
unresolvable gateway host is logged with nats-server's text; a server links to the clusters
its route peers link to; a traced message is reported on both sides of a gateway.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import nats
import pytest
from tests.integration.test_gateways import (
    Node,
    cluster_a,
    cluster_a_and_b,
    explain,
    gateway_urls,
    inbound,
    shape,
    start,
)
from tests.support.ports import free_port
from tests.support.servers import start_server
from tests.support.waiting import wait_until

ACCOUNTS = """
accounts {
  SYS { users: [{user: sys, password: sys}] }
  SVC {
    users: [{user: svc, password: svc}]
    exports: [{service: "svc.>"}, {stream: "feed.>"}]
  }
  APP {
    users: [{user: app, password: app}]
    imports: [
      {service: {account: SVC, subject: "svc.>"}, to: "app.svc.>"}
      {stream: {account: SVC, subject: "feed.>"}, prefix: "in"}
    ]
  }
}
system_account: SYS
"""


def interest(node: Node, cluster: str, account: str, subject: str) -> bool:
    """`cluster` told `node` (on its outbound connection) it wants `subject` in `account`."""
    z = node.gatewayz(f"?acc_name={account}&subs=1")["outbound_gateways"].get(cluster, {})
    return any(subject in acc.get("subscriptions_list", []) for acc in z.get("accounts", []))


async def connect(node: Node, user: str) -> Any:
    return await nats.connect(
        node.url, user=user, password=user, max_reconnect_attempts=1, connect_timeout=2
    )


async def linked_pair(kinds: tuple[str, str], tmp_path: Path, extra: str) -> tuple[Node, Node]:
    a = Node(kinds[0], f"{kinds[0].upper()}-A", "A", free_port())
    b = Node(kinds[1], f"{kinds[1].upper()}-B", "B", free_port())
    start(a, [b], tmp_path, extra)
    start(b, [a], tmp_path, extra)
    await wait_until(
        lambda: a.linked_to("B") and b.linked_to("A"),
        timeout=10,
        step=0.05,
        what="the gateway links",
        explain=lambda: explain(a, b),
    )
    return a, b


def stop(*nodes: Node) -> None:
    for node in nodes:
        if node.server is not None:
            node.server.stop()


@pytest.mark.parametrize("kinds", [("py", "go"), ("go", "py")], ids=["py-go", "go-py"])
async def test_service_and_stream_imports_across_gateways(
    tmp_path: Path, kinds: tuple[str, str]
) -> None:
    """SVC exports a service and a stream, APP imports both. The service's responder in
    one cluster answers APP's requester in the other (its reply is the import's `_R_`
    one, and the request carries nats-server's `Nats-Request-Info`), and SVC's feed reaches APP's subscriber in the other cluster, both ways."""
    a = b = Node("py", "", "", 0)
    try:
        a, b = await linked_pair(kinds, tmp_path, ACCOUNTS)
        for home, away in ((a, b), (b, a)):
            other = away.cluster
            svc = await connect(home, "svc")
            app = await connect(away, "app")
            try:
                replies: list[str] = []
                infos: list[Any] = []

                async def answer(
                    msg: Any, svc: Any = svc, replies: list[str] = replies, infos: list[Any] = infos
                ) -> None:
                    replies.append(msg.reply)
                    headers = msg.headers or {}
                    infos.append(json.loads(headers.get("Nats-Request-Info", "{}")).get("acc"))
                    n = {"N": headers.get("N", "")}
                    await svc.publish(msg.reply, b"answer to " + msg.data, headers=n)

                await svc.subscribe("svc.>", cb=answer)
                feed = await app.subscribe("in.feed.>")
                await svc.flush()
                await app.flush()
                await wait_until(
                    lambda a=away, o=home.cluster: interest(a, o, "SVC", "svc.>"),
                    timeout=5,
                    step=0.05,
                    what="SVC's service interest",
                )
                await wait_until(
                    lambda h=home, o=other: interest(h, o, "SVC", "feed.>"),
                    timeout=5,
                    step=0.05,
                    what="the stream import's interest",
                )
                for i in range(3):
                    msg = await app.request(
                        f"app.svc.q{i}", b"q%d" % i, timeout=3, headers={"N": str(i)}
                    )
                    assert (msg.data, msg.headers) == (b"answer to q%d" % i, {"N": str(i)})
                assert len(replies) == 3 and all(r.startswith("_R_.") for r in replies), replies
                # the import says who asked, on either kind of server
                assert infos == ["APP"] * 3
                await svc.publish("feed.news", b"from SVC")
                msg = await feed.next_msg(timeout=3)
                assert (msg.subject, msg.data) == ("in.feed.news", b"from SVC")
            finally:
                await svc.close()
                await app.close()
    finally:
        stop(a, b)


async def collect(sub: Any, until: Any, timeout: float = 5.0) -> list[Any]:
    """Messages of `sub` until `until(messages)` holds."""
    got: list[Any] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not until(got):
        left = deadline - loop.time()
        if left <= 0:
            raise TimeoutError(f"got only {[m.subject for m in got]}")
        try:
            got.append(await sub.next_msg(timeout=left))
        except nats.errors.TimeoutError:
            continue
    return got


async def ping(nc: Any, subject: str, servers: int = 2) -> dict[str, Any]:
    """The answers to a `$SYS.REQ.SERVER.PING...` request by server name (once `servers`
    answered, or none came for a second)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(subject, b"", reply=inbox)
    found: dict[str, Any] = {}
    while len(found) < servers:
        try:
            msg = await sub.next_msg(timeout=1)
        except nats.errors.TimeoutError:
            break
        answer = json.loads(msg.data)
        found[answer["server"]["name"]] = answer
    await sub.unsubscribe()
    return found


async def test_system_events_cross_gateways(tmp_path: Path) -> None:
    """Cluster A is pynats, B nats-server: the system-account subscriber of each sees the
    other cluster's account CONNECT/DISCONNECT events and STATSZ (a reply-less
    `$SYS.REQ.SERVER.PING` makes every server send it at once); both servers answer
    `PING`, `PING.STATSZ` and `PING.VARZ` from either side, and STATSZ's `gateways` is
    nats-server's (the outbound connection's id, sent on it, received on the inbound ones)."""
    a = b = Node("py", "", "", 0)
    try:
        a, b = await linked_pair(("py", "go"), tmp_path, ACCOUNTS)
        assert a.server is not None and b.server is not None
        sys_a, sys_b = await connect(a, "sys"), await connect(b, "sys")
        try:
            watch = {}
            for nc, node in ((sys_a, a), (sys_b, b)):
                watch[node.cluster] = (
                    await nc.subscribe("$SYS.ACCOUNT.APP.*"),
                    await nc.subscribe("$SYS.SERVER.*.STATSZ"),
                )
                await nc.flush()
            await wait_until(
                lambda: (
                    interest(a, "B", "SYS", "$SYS.ACCOUNT.APP.*")
                    and interest(b, "A", "SYS", "$SYS.ACCOUNT.APP.*")
                ),
                timeout=5,
                step=0.05,
                what="the system subscribers' interest",
            )
            for node, far in ((a, b), (b, a)):
                app = await connect(node, "app")
                await app.close()
                events, _ = watch[far.cluster]

                def both(got: list[Any], node: Node = node) -> bool:
                    subjects = [
                        m.subject for m in got if json.loads(m.data)["server"]["name"] == node.name
                    ]
                    return "$SYS.ACCOUNT.APP.DISCONNECT" in subjects

                got = [
                    m
                    for m in await collect(events, both)
                    if json.loads(m.data)["server"]["name"] == node.name
                ]
                subjects = [m.subject for m in got]
                assert subjects == ["$SYS.ACCOUNT.APP.CONNECT", "$SYS.ACCOUNT.APP.DISCONNECT"]
                for m in got:
                    assert json.loads(m.data)["client"]["acc"] == "APP"
            await sys_b.publish("$SYS.REQ.SERVER.PING", b"")
            wanted = {f"$SYS.SERVER.{n.gatewayz()['server_id']}.STATSZ" for n in (a, b)}
            for node in (a, b):
                _, statsz = watch[node.cluster]
                await collect(statsz, lambda got, w=wanted: w <= {m.subject for m in got})
            for nc in (sys_a, sys_b):
                assert sorted(await ping(nc, "$SYS.REQ.SERVER.PING")) == sorted([a.name, b.name])
                varz = await ping(nc, "$SYS.REQ.SERVER.PING.VARZ")
                assert {n: v["data"]["gateway"]["name"] for n, v in varz.items()} == {
                    a.name: "A",
                    b.name: "B",
                }
                statsz = await ping(nc, "$SYS.REQ.SERVER.PING.STATSZ")
                gateways = {n: s["statsz"].get("gateways") for n, s in statsz.items()}
                assert sorted(gateways) == sorted([a.name, b.name])
                ours, theirs = gateways[a.name], gateways[b.name]
                assert shape(ours) == shape(theirs), (ours, theirs)
                assert [(g["name"], g["inbound_connections"]) for g in ours] == [("B", 1)]
                assert [(g["name"], g["inbound_connections"]) for g in theirs] == [("A", 1)]
                for node, (stat,) in ((a, ours), (b, theirs)):
                    out = node.gatewayz()["outbound_gateways"]
                    assert stat["gwid"] == out[stat["name"]]["connection"]["cid"]
        finally:
            await sys_a.close()
            await sys_b.close()
    finally:
        stop(a, b)


def varz_urls(node: Node, cluster: str) -> list[str]:
    """The URLs /varz lists for the configured gateway `cluster`."""
    assert node.server is not None
    for remote in node.server.http_json("/varz")["gateway"].get("gateways", []):
        if remote["name"] == cluster:
            return sorted(remote["urls"])
    return []


@pytest.mark.parametrize(
    "kinds", [("py", "go", "py"), ("go", "py", "go")], ids=["A=py+go,B=py", "A=go+py,B=go"]
)
async def test_a_departed_servers_gateway_url_is_dropped(
    tmp_path: Path, kinds: tuple[str, str, str]
) -> None:
    """A1 and A2 form cluster A, B dials A1. A1's gateway INFO lists both servers' gateway
    URLs, and so does what B knows of A (its /varz); when A2 stops, A1 drops A2's URL from
    its INFO and tells B, which drops it too (nats-server's removeGatewayURL, updateURLs)."""
    a1, a2, b = cluster_a_and_b(kinds)
    r1, r2 = free_port(), free_port()
    cluster = cluster_a

    try:
        start(a1, [b], tmp_path, cluster(r1, r2))
        start(b, [a1], tmp_path)
        start(a2, [b], tmp_path, cluster(r2, r1))
        both = sorted(f"127.0.0.1:{n.gateway_port}" for n in (a1, a2))
        alone = [f"127.0.0.1:{a1.gateway_port}"]
        await wait_until(
            lambda: (
                gateway_urls(a1.gateway_port) == both
                and b.linked_to("A")
                and varz_urls(b, "A") == both
            ),
            timeout=10,
            step=0.05,
            what="both of A's gateway URLs known to B",
            explain=lambda: explain(a1, a2, b),
        )
        assert a2.server is not None
        a2.server.stop()
        a2.server = None
        await wait_until(
            lambda: gateway_urls(a1.gateway_port) == alone and varz_urls(b, "A") == alone,
            timeout=5,
            step=0.05,
            what="A2's gateway URL dropped",
            explain=lambda: explain(a1, b),
        )
        assert len(inbound(b, "A")) <= 1
    finally:
        stop(a1, a2, b)


PKI = Path(__file__).parent.parent / "data" / "cluster" / "pki"


def tls_block(cert_file: str, key_file: str, ca_file: str) -> str:
    return (
        f'tls {{ cert_file: "{cert_file}", key_file: "{key_file}", ca_file: "{ca_file}",'
        " verify: true, timeout: 3 }"
    )


@pytest.mark.parametrize("kinds", [("py", "go"), ("go", "py")], ids=["A=py,B=go", "A=go,B=py"])
async def test_a_reload_of_the_gateway_tls_block_takes_effect(
    tmp_path: Path, kinds: tuple[str, str]
) -> None:
    """A and B are linked over TLS from one CA. A reloads its gateway `tls {}` with a
    certificate of another CA (the links up stay), and B is restarted with that other CA
    only: B's new link to A (A's listener) and A's new link to B (A's dialling) are made
    with the reloaded settings, as nats-server applies them."""
    from tests.support.staple_pki import StaplePKI

    second = StaplePKI(tmp_path, "")
    issued = second.issue("gateway", ocsp_url=None)
    old_tls = tls_block(str(PKI / "server.pem"), str(PKI / "server-key.pem"), str(PKI / "ca.pem"))
    new_tls = tls_block(issued.cert_file, issued.key_file, second.ca_file)
    a = Node(kinds[0], f"{kinds[0].upper()}-A", "A", free_port())
    b = Node(kinds[1], f"{kinds[1].upper()}-B", "B", free_port())
    try:
        start(a, [b], tmp_path, inside=old_tls)
        start(b, [a], tmp_path, inside=old_tls)
        await wait_until(
            lambda: a.linked_to("B") and b.linked_to("A"),
            timeout=10,
            step=0.05,
            what="the gateway links",
            explain=lambda: explain(a, b),
        )
        assert a.server is not None and b.server is not None
        before = a.gatewayz()["outbound_gateways"]["B"]["connection"]["cid"]
        conf = tmp_path / f"{a.name}.conf"
        conf.write_text(conf.read_text().replace(old_tls, new_tls))
        a.server.signal(signal.SIGHUP)
        a.server.wait_for_log("Reloaded server configuration")
        assert a.gatewayz()["outbound_gateways"]["B"]["connection"]["cid"] == before
        b.server.stop()
        b.server = None
        start(b, [a], tmp_path, inside=new_tls)
        await wait_until(
            lambda: a.linked_to("B") and b.linked_to("A"),
            timeout=10,
            step=0.05,
            what="the gateway links with the reloaded TLS",
            explain=lambda: explain(a, b),
        )
        assert a.gatewayz()["outbound_gateways"]["B"]["connection"]["cid"] != before
    finally:
        stop(a, b)


def test_an_unresolvable_gateway_url_is_logged_as_nats_server_logs_it(tmp_path: Path) -> None:
    """A configured gateway whose host does not resolve: each attempt logs nats-server's
    `Error getting IP ...: lookup <host> on <nameserver>:53: no such host` (pynats names the
    first resolv.conf nameserver, as Go's resolver does)."""
    import re

    servers = []
    try:
        for kind in ("go", "py"):
            conf = tmp_path / f"{kind}.conf"
            conf.write_text(
                f"gateway {{ name: A, listen: 127.0.0.1:{free_port()},"
                ' gateways: [{name: B, url: "nats://nowhere.invalid:4567"}] }\n'
            )
            servers.append(start_server(["-c", str(conf)], oracle=kind == "go"))
        lines = []
        for server in servers:
            line = server.wait_for_log(r"Error getting IP for explicit gateway", timeout=5)
            lines.append(re.sub(r"^\[\d+\] \S+ \S+ ", "", line))
        if not lines[0].endswith(": no such host"):
            pytest.skip(f"this machine's resolver does not answer: {lines[0]}")
        assert lines[1] == lines[0]
        assert lines[0].startswith(
            '[ERR] Error getting IP for explicit gateway "B" (nowhere.invalid:4567): '
            'lookup for host "nowhere.invalid": lookup nowhere.invalid'
        )
    finally:
        for server in servers:
            server.stop()


@pytest.mark.parametrize(
    ("kinds", "a2_later"),
    [(("py", "go", "go"), True), (("py", "py", "go"), False)],
    ids=["A=py+go,B=go,A2-later", "A=py+py,B=go"],
)
async def test_a_cluster_peer_links_to_the_clusters_its_route_peers_link_to(
    tmp_path: Path, kinds: tuple[str, str, str], a2_later: bool
) -> None:
    """A2 has a gateway block but no remote gateways, and B knows only A1: A2 links to B
    because A1 tells its route peers of every cluster it dialled (an INFO with `gateway`,
    `gateway_urls` and `gateway_cmd` 1 on the route, when A1's link registers and when a
    peer joins later), as nats-server does; A2's clients then reach B on A2's own link."""
    a1, a2, b = cluster_a_and_b(kinds)
    r1, r2 = free_port(), free_port()
    cluster = cluster_a

    try:
        start(a1, [b], tmp_path, cluster(r1, r2))
        start(b, [a1], tmp_path)
        if a2_later:
            await wait_until(
                lambda: a1.linked_to("B") and b.linked_to("A"),
                timeout=10,
                step=0.05,
                what="A1's links",
                explain=lambda: explain(a1, b),
            )
        start(a2, [], tmp_path, cluster(r2, r1))
        await wait_until(
            lambda: "B" in a2.gatewayz()["outbound_gateways"] and len(inbound(b, "A")) == 2,
            timeout=10,
            step=0.05,
            what="A2's link to B",
            explain=lambda: explain(a1, a2, b),
        )
        assert a2.server is not None
        a2.server.wait_for_log(r'Connecting to implicit gateway "B"')
        at_a2 = await nats.connect(a2.url, max_reconnect_attempts=1, connect_timeout=2)
        at_b = await nats.connect(b.url, max_reconnect_attempts=1, connect_timeout=2)
        try:
            sub = await at_b.subscribe("to.b")
            await at_b.flush()
            await wait_until(lambda: a2.remote_interest("B", "to.b"), timeout=5, step=0.05)
            await at_a2.publish("to.b", b"from A2")
            assert (await sub.next_msg(timeout=3)).data == b"from A2"
            assert a2.sent_to("B") >= 1
        finally:
            await at_a2.close()
            await at_b.close()
    finally:
        stop(a1, a2, b)


async def traced(at: Any, to: Any, origin: Node, far: Node) -> list[Any]:
    """Publish a traced message at `origin` to a subscriber at `far`: the trace events both
    servers send (keyed by role), without times and connection ids."""
    sub = await to.subscribe("traced.here")
    events = await at.subscribe("trace.dest")
    await at.flush()
    await to.flush()
    await wait_until(lambda: origin.remote_interest(far.cluster, "traced.here"), step=0.05)
    await wait_until(lambda: far.remote_interest(origin.cluster, "trace.dest"), step=0.05)
    await at.publish("traced.here", b"x", headers={"Nats-Trace-Dest": "trace.dest"})
    await sub.next_msg(timeout=3)
    roles = {origin.name: "origin", far.name: "far"}
    found = {}
    for _ in range(2):
        body = json.loads((await events.next_msg(timeout=3)).data)
        for event in body["events"]:
            del event["ts"], event["cid"]
            if "name" in event:
                event["name"] = roles[event["name"]]
        body.pop("server")
        # the origin's ingress is the client's, the far side's the gateway's
        found["far" if body["events"][0].get("name") == "origin" else "origin"] = body
    await sub.unsubscribe()
    await events.unsubscribe()
    return [found["origin"], found["far"]]


async def test_a_traced_message_is_reported_by_both_clusters(tmp_path: Path) -> None:
    """`Nats-Trace-Dest` across a gateway, both ways between pynats (A) and nats-server (B):
    the publishing server reports a gateway egress naming the other server (hop 1), the
    receiving one a gateway ingress and its subscriber, as nats-server's do."""
    a = b = Node("py", "", "", 0)
    try:
        a, b = await linked_pair(("py", "go"), tmp_path, "")
        at_a = await nats.connect(a.url, max_reconnect_attempts=1, connect_timeout=2)
        at_b = await nats.connect(b.url, max_reconnect_attempts=1, connect_timeout=2)
        try:
            ours = await traced(at_a, at_b, a, b)
            theirs = await traced(at_b, at_a, b, a)
        finally:
            await at_a.close()
            await at_b.close()
        assert ours == theirs
        assert [e["type"] for body in ours for e in body["events"]] == ["in", "eg", "in", "eg"]
    finally:
        stop(a, b)
