"""Gateways between two clusters, each side pynats or the Go server (`gateway {}`).

Cluster A and cluster B are one server each (and, in the last test, A is two servers joined
by a route); every pairing of our server and nats-server 2.15.1 is run. Checked: the link
forms both ways with nats-server's log lines, messages (with headers) cross in both
directions only where the other cluster announced interest (interest-only mode), a queue
group is served across the gateway only when this cluster has no member, requests are
answered across the gateway (replies rewritten to `_GR_.<cluster>.<server>.` and routed
back), and /gatewayz and the /varz `gateway` section have nats-server's shape.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
from tests.support.ports import free_port
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

OUTBOUND_RE = r'Outbound gateway connection to "{name}" \(\w+\) registered'
INBOUND_RE = r'Inbound gateway connection from "{name}" \(\w+\) registered'


@dataclass
class Node:
    """One server of the supercluster."""

    kind: str  # "py" or "go"
    name: str  # server name
    cluster: str  # gateway (cluster) name
    gateway_port: int
    server: RunningServer | None = None

    def gatewayz(self, query: str = "") -> Any:
        assert self.server is not None
        return self.server.http_json("/gatewayz" + query)

    def linked_to(self, cluster: str) -> bool:
        """Outbound and inbound gateway connections to `cluster` are registered."""
        z = self.gatewayz()
        return cluster in z["outbound_gateways"] and cluster in z["inbound_gateways"]

    def remote_interest(self, cluster: str, subject: str) -> bool:
        """`cluster` told us (on our outbound connection) it wants `subject` in `$G`."""
        z = self.gatewayz("?accs=1&subs=1")
        out = z["outbound_gateways"].get(cluster)
        if out is None:
            return False
        for account in out.get("accounts", []):
            if account["name"] == "$G" and subject in account.get("subscriptions_list", []):
                return True
        return False

    def sent_to(self, cluster: str) -> int:
        return int(self.gatewayz()["outbound_gateways"][cluster]["connection"]["out_msgs"])

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url


def start(
    node: Node, remotes: list[Node], tmp_path: Path, extra: str = "", inside: str = ""
) -> None:
    """Start `node` with a gateway to each of `remotes`; `inside` goes into the gateway
    block, `extra` after it."""
    gateways = ", ".join(
        f'{{name: {r.cluster}, url: "nats://127.0.0.1:{r.gateway_port}"}}' for r in remotes
    )
    conf = tmp_path / f"{node.name}.conf"
    conf.write_text(
        f"server_name: {node.name}\n"
        f"gateway {{ name: {node.cluster}, listen: 127.0.0.1:{node.gateway_port},"
        f" gateways: [{gateways}], {inside} }}\n" + extra
    )
    node.server = start_server(["-c", str(conf)], oracle=node.kind == "go", http_port=-1)


def inbound(node: Node, cluster: str) -> list[Any]:
    return list(node.gatewayz()["inbound_gateways"].get(cluster, []))


def explain(*nodes: Node) -> str:
    return "\n\n".join(
        f"--- {n.name} ({n.kind})\n" + (n.server.log_text() if n.server else "") for n in nodes
    )


@pytest.fixture
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    kind_a, kind_b = request.param
    a = Node(kind_a, f"{kind_a.upper()}-A", "A", free_port())
    b = Node(kind_b, f"{kind_b.upper()}-B", "B", free_port())
    try:
        start(a, [b], tmp_path)
        start(b, [a], tmp_path)
        yield a, b
    finally:
        for node in (a, b):
            if node.server is not None:
                node.server.stop()


PAIRS = [("py", "go"), ("go", "py"), ("py", "py")]


@pytest.mark.parametrize("pair", PAIRS, ids=["py-go", "go-py", "py-py"], indirect=True)
async def test_two_clusters_exchange_messages_through_their_gateways(
    pair: tuple[Node, Node],
) -> None:
    a, b = pair
    await wait_until(
        lambda: a.linked_to("B") and b.linked_to("A"),
        timeout=10,
        what="the gateway links",
        explain=lambda: explain(a, b),
    )
    for node, other in ((a, "B"), (b, "A")):
        assert node.server is not None
        node.server.wait_for_log(OUTBOUND_RE.format(name=other))
        node.server.wait_for_log(INBOUND_RE.format(name=other))
    at_a = await nats.connect(a.url, max_reconnect_attempts=1, connect_timeout=2)
    at_b = await nats.connect(b.url, max_reconnect_attempts=1, connect_timeout=2)
    try:
        # -- plain messages both ways, with headers, only where there is interest
        sub_a = await at_a.subscribe("to.a.>")
        sub_b = await at_b.subscribe("to.b")
        await at_a.flush()
        await at_b.flush()
        await wait_until(lambda: b.remote_interest("A", "to.a.>"), timeout=5)
        await wait_until(lambda: a.remote_interest("B", "to.b"), timeout=5)
        sent_before = a.sent_to("B")
        await at_a.publish("nobody.listens", b"stays home")
        await at_a.publish("to.b", b"from a", headers={"X-Hop": "gw"})
        await at_b.publish("to.a.1", b"from b")
        msg = await sub_b.next_msg(timeout=3)
        assert (msg.data, msg.headers) == (b"from a", {"X-Hop": "gw"})
        assert (await sub_a.next_msg(timeout=3)).data == b"from b"
        # interest-only: the message nobody in B wanted never crossed
        assert a.sent_to("B") == sent_before + 1

        # -- requests answered across the gateway, both ways (replies mapped and routed back;
        # the responder sees the reply the requester gave, as with nats-server)
        replies: list[str] = []

        async def answer(msg: Any) -> None:
            replies.append(msg.reply)
            await msg.respond(b"answer to " + msg.data)

        await at_b.subscribe("svc.b", cb=answer)
        await at_a.subscribe("svc.a", cb=answer)
        await at_a.flush()
        await at_b.flush()
        await wait_until(lambda: a.remote_interest("B", "svc.b"), timeout=5)
        await wait_until(lambda: b.remote_interest("A", "svc.a"), timeout=5)
        for _ in range(3):
            assert (await at_a.request("svc.b", b"q-a", timeout=3)).data == b"answer to q-a"
            assert (await at_b.request("svc.a", b"q-b", timeout=3)).data == b"answer to q-b"
        assert replies and all(r.startswith("_INBOX.") for r in replies), replies

        # -- a queue group: served across the gateway while A has no member, locally after
        far = await at_b.subscribe("work", queue="workers")
        await at_b.flush()
        await wait_until(lambda: a.remote_interest("B", "work"), timeout=5)
        for i in range(5):
            await at_a.publish("work", b"%d" % i)
        got = [(await far.next_msg(timeout=3)).data for _ in range(5)]
        assert sorted(got) == [b"0", b"1", b"2", b"3", b"4"]
        near = await at_a.subscribe("work", queue="workers")
        await at_a.flush()
        for i in range(5):
            await at_a.publish("work", b"local %d" % i)
        got = [(await near.next_msg(timeout=3)).data for _ in range(5)]
        assert got == [b"local %d" % i for i in range(5)]
        with pytest.raises(nats.errors.TimeoutError):
            await far.next_msg(timeout=0.2)
    finally:
        await at_a.close()
        await at_b.close()


def shape(value: Any) -> Any:
    """The keys of a JSON value, recursively (lists by their first element)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__ if not isinstance(value, (int, float)) else "number"


def normalized(z: dict[str, Any]) -> dict[str, Any]:
    """A /gatewayz answer with the remote gateway names made "X" and only `$G` accounts
    kept (the system accounts' interest differs between the two servers)."""
    (out,) = z["outbound_gateways"].values()
    (ins,) = z["inbound_gateways"].values()
    for entry in [out, *ins]:
        if "accounts" in entry:
            entry["accounts"] = [acc for acc in entry["accounts"] if acc["name"] == "$G"]
    z["outbound_gateways"] = {"X": out}
    z["inbound_gateways"] = {"X": ins}
    return z


@pytest.mark.parametrize("pair", [("py", "go")], ids=["py-go"], indirect=True)
async def test_gatewayz_and_varz_have_nats_servers_shape(pair: tuple[Node, Node]) -> None:
    """Our /gatewayz (with accounts and subscriptions) and /varz `gateway` section against
    the Go server's, each seen from its own side of the same link."""
    a, b = pair
    await wait_until(
        lambda: a.linked_to("B") and b.linked_to("A"),
        timeout=10,
        what="the gateway links",
        explain=lambda: explain(a, b),
    )
    at_a = await nats.connect(a.url, max_reconnect_attempts=1, connect_timeout=2)
    at_b = await nats.connect(b.url, max_reconnect_attempts=1, connect_timeout=2)
    try:
        await at_a.subscribe("seen.from.b")
        await at_a.flush()
        await wait_until(lambda: b.remote_interest("A", "seen.from.b"), timeout=5)
        assert a.server is not None

        def counts() -> tuple[int, int, list[str]]:
            assert a.server is not None
            subsz = a.server.http_json("/subsz?subs=1&limit=1000")
            subjects = [s["subject"] for s in subsz.get("subscriptions_list", [])]
            return (
                a.server.http_json("/varz")["subscriptions"],
                subsz["num_subscriptions"],
                subjects,
            )

        before = counts()
        await at_b.subscribe("seen.from.a")
        await at_b.flush()
        await wait_until(lambda: a.remote_interest("B", "seen.from.a"), timeout=5)
        # another cluster's interest is not counted nor listed (nats-server keeps it apart)
        assert counts() == before
        assert "seen.from.a" not in before[2] and "seen.from.b" in before[2]
        b_id = b.server.http_json("/varz")["server_id"] if b.server else ""
        for query in ("", "?accs=1", "?accs=1&subs=1", "?acc_name=$G&subs=1", "?gw_name={}"):
            ours = normalized(a.gatewayz(query.format("B")))
            theirs = normalized(b.gatewayz(query.format("A")))
            assert shape(ours) == shape(theirs), query
            out = ours["outbound_gateways"]["X"]
            assert out["configured"] is True
            assert out["connection"]["name"] == b_id
        ours_v = a.server.http_json("/varz") if a.server else {}
        theirs_v = b.server.http_json("/varz") if b.server else {}
        assert shape(ours_v["gateway"]) == shape(theirs_v["gateway"])
        assert ours_v["gateway"]["gateways"] == [
            {"name": "B", "urls": [f"127.0.0.1:{b.gateway_port}"]}
        ]
        assert ours_v["cluster"] == {"name": "A"}
        assert theirs_v["cluster"] == {"name": "B"}
    finally:
        await at_a.close()
        await at_b.close()
    assert a.server is not None
    assert re.search(r"Listening for gateways connections on 127\.0\.0\.1:\d+", a.server.log_text())


def cluster_a_and_b(kinds: tuple[str, str, str]) -> tuple[Node, Node, Node]:
    """A1 and A2 of cluster A and B of cluster B, of the kinds given (each on its own
    gateway port)."""
    kind_a1, kind_a2, kind_b = kinds
    return (
        Node(kind_a1, f"{kind_a1.upper()}-A1", "A", free_port()),
        Node(kind_a2, f"{kind_a2.upper()}-A2", "A", free_port()),
        Node(kind_b, f"{kind_b.upper()}-B", "B", free_port()),
    )


def cluster_a(own: int, other: int, extra: str = "") -> str:
    """The `cluster {}` block of a server of cluster A listening on `own`, routed to
    `other` (then `extra`)."""
    return (
        f"cluster {{ name: A, listen: 127.0.0.1:{own},"
        f' routes: ["nats-route://127.0.0.1:{other}"] }}\n' + extra
    )


@pytest.mark.parametrize(
    "kinds",
    [("py", "go", "go"), ("go", "py", "py")],
    ids=["A=py+go,B=go", "A=go+py,B=py"],
)
async def test_a_reply_comes_back_over_the_route_of_the_cluster_that_asked(
    tmp_path: Path, kinds: tuple[str, str, str]
) -> None:
    """Cluster A is two servers joined by a route, cluster B one server that knows A1's
    gateway. A requester on A2 asks B (on A2's own gateway link); B answers to the
    `_GR_` reply, which reaches A1 (B's link to A) and goes over the route to A2, whatever
    kind each server is. Messages for A2's subscribers and queue members cross B -> A1 ->
    A2 the same way (A1 announces its whole cluster's interest), and a leaf node of A1 (a Go
    server) is reached from B and reaches B."""
    a1, a2, b = cluster_a_and_b(kinds)
    r1, r2, leaf_port = free_port(), free_port(), free_port()
    leaf: RunningServer | None = None

    def cluster(own: int, other: int) -> str:
        # a gateway beside a leaf node listener needs a configured system account
        return cluster_a(own, other, "accounts { SYS: {} }\nsystem_account: SYS\n")

    try:
        # B must link to A1: A2 starts once it did (B learns A2's gateway URL later, from
        # A2's own link, and would otherwise pick either server of A)
        leafnodes = f"leafnodes {{ listen: 127.0.0.1:{leaf_port} }}\n"
        start(a1, [b], tmp_path, cluster(r1, r2) + leafnodes)
        start(b, [a1], tmp_path)
        await wait_until(
            lambda: a1.linked_to("B") and b.linked_to("A"),
            timeout=10,
            what="the gateway links of A1",
            explain=lambda: explain(a1, b),
        )
        start(a2, [b], tmp_path, cluster(r2, r1))
        await wait_until(
            lambda: "B" in a2.gatewayz()["outbound_gateways"] and len(inbound(b, "A")) == 2,
            timeout=10,
            what="the gateway link of A2",
            explain=lambda: explain(a1, a2, b),
        )
        assert b.gatewayz()["outbound_gateways"]["A"]["connection"]["port"] == a1.gateway_port
        leaf_conf = tmp_path / "leaf.conf"
        leaf_conf.write_text(
            f'leafnodes {{ remotes: [ {{ url: "nats://127.0.0.1:{leaf_port}" }} ] }}\n'
        )
        leaf = start_server(["-c", str(leaf_conf)], oracle=True)
        at_a2 = await nats.connect(a2.url, max_reconnect_attempts=1, connect_timeout=2)
        at_b = await nats.connect(b.url, max_reconnect_attempts=1, connect_timeout=2)
        try:

            async def answer(msg: Any) -> None:
                await msg.respond(b"from B: " + msg.data)

            await at_b.subscribe("svc", cb=answer)
            far_sub = await at_a2.subscribe("news")
            far_queue = await at_a2.subscribe("jobs", queue="workers")
            await at_b.flush()
            await at_a2.flush()
            await wait_until(lambda: a2.remote_interest("B", "svc"), timeout=5)
            await wait_until(lambda: b.remote_interest("A", "news"), timeout=5)
            await wait_until(lambda: b.remote_interest("A", "jobs"), timeout=5)
            for i in range(3):
                reply = await at_a2.request("svc", b"q%d" % i, timeout=3)
                assert reply.data == b"from B: q%d" % i
            # and the other way: B asks a responder on A2, the request crossing A1's route
            # (both pass the `_GR_` reply on and A2 strips it: A2's responder sees the reply
            # B's requester gave)
            seen: list[str] = []

            async def answer_a2(msg: Any) -> None:
                seen.append(msg.reply)
                await msg.respond(b"from A2")

            await at_a2.subscribe("svc.a2", cb=answer_a2)
            await at_a2.flush()
            await wait_until(lambda: b.remote_interest("A", "svc.a2"), timeout=5)
            assert (await at_b.request("svc.a2", b"", timeout=3)).data == b"from A2"
            assert seen and seen[0].startswith("_INBOX."), seen
            # a leaf node of A1: B's message reaches it, its message reaches B
            at_leaf = await nats.connect(leaf.url, max_reconnect_attempts=1, connect_timeout=2)
            try:
                leaf_sub = await at_leaf.subscribe("to.leaf")
                b_sub = await at_b.subscribe("from.leaf")
                await at_leaf.flush()
                await at_b.flush()
                await wait_until(lambda: b.remote_interest("A", "to.leaf"), timeout=5)
                await wait_until(lambda: a1.remote_interest("B", "from.leaf"), timeout=5)
                await at_b.publish("to.leaf", b"B to the leaf")
                await at_leaf.publish("from.leaf", b"the leaf to B")
                assert (await leaf_sub.next_msg(timeout=3)).data == b"B to the leaf"
                assert (await b_sub.next_msg(timeout=3)).data == b"the leaf to B"
            finally:
                await at_leaf.close()
            await at_b.publish("news", b"to A2 through A1")
            await at_b.publish("jobs", b"a job for A2")
            assert (await far_sub.next_msg(timeout=3)).data == b"to A2 through A1"
            assert (await far_queue.next_msg(timeout=3)).data == b"a job for A2"
        finally:
            await at_a2.close()
            await at_b.close()
    finally:
        if leaf is not None:
            leaf.stop()
        for node in (a1, a2, b):
            if node.server is not None:
                node.server.stop()


def refusal(port: int, connect: dict[str, Any]) -> bytes:
    """Dial a gateway port as a gateway would (CONNECT, then INFO): what comes back before
    the server closes the connection, INFO line left out."""
    import json
    import socket
    import time

    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.settimeout(2)
        buf = b""
        while b"\r\n" not in buf:
            buf += s.recv(4096)
        info = {"server_id": "NFAKE", "gateway": connect.get("gateway", ""), "headers": True}
        s.sendall(
            b"CONNECT " + json.dumps(connect).encode() + b"\r\nINFO " + json.dumps(info).encode()
        )
        s.sendall(b"\r\n")
        rest = b""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            rest += chunk
        return rest


@pytest.mark.parametrize("kind", ["py", "go"])
async def test_gateway_authorization_and_reject_unknown(tmp_path: Path, kind: str) -> None:
    """`authorization { user, password }` and `reject_unknown_cluster`: a configured cluster
    with the credentials in its URL links; a wrong password and an unknown cluster are
    refused with nats-server's errors and log lines."""
    a = Node(kind, f"{kind.upper()}-A", "A", free_port())
    b = Node("py", "PY-B", "B", free_port())
    try:
        start(
            a,
            [b],
            tmp_path,
            inside="authorization { user: gw, password: s3cret }, reject_unknown_cluster: true",
        )
        conf = tmp_path / "PY-B.conf"
        conf.write_text(
            "server_name: PY-B\n"
            f"gateway {{ name: B, listen: 127.0.0.1:{b.gateway_port}, gateways: ["
            f'{{name: A, url: "nats://gw:s3cret@127.0.0.1:{a.gateway_port}"}}] }}\n'
        )
        b.server = start_server(["-c", str(conf)], http_port=-1)
        await wait_until(
            lambda: a.linked_to("B") and b.linked_to("A"),
            timeout=10,
            what="the gateway links",
            explain=lambda: explain(a, b),
        )
        base = {"echo": False, "verbose": False, "pedantic": False, "headers": True}
        wrong = refusal(a.gateway_port, {**base, "gateway": "B", "user": "gw", "pass": "nope"})
        assert wrong == b"-ERR 'Authorization Violation'\r\n"
        unknown = refusal(a.gateway_port, {**base, "gateway": "C", "user": "gw", "pass": "s3cret"})
        assert unknown == b"-ERR 'Connection to gateway \"A\" rejected'\r\n"
        assert a.server is not None
        a.server.wait_for_log(r'authentication error - User "gw"')
        a.server.wait_for_log(r"Gateway connection closed: Authentication Failure")
        a.server.wait_for_log(r'Rejecting connection from gateway "C"')
        a.server.wait_for_log(r"Gateway connection closed: Wrong Gateway")
    finally:
        for node in (a, b):
            if node.server is not None:
                node.server.stop()


ACCOUNTS = """
accounts { SYS { users: [{user: sys, password: sys}] }, APP { users: [{user: app, password: app}] } }
system_account: SYS
"""


async def servers_answering_ping(url: str) -> list[tuple[str, str]]:
    """(name, cluster) of every server answering `$SYS.REQ.SERVER.PING` (until none comes
    for half a second)."""
    import json

    nc = await nats.connect(url, max_reconnect_attempts=1, connect_timeout=2)
    try:
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish("$SYS.REQ.SERVER.PING", b"", reply=inbox)
        found = []
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                return sorted(found)
            server = json.loads(msg.data)["server"]
            found.append((server["name"], server.get("cluster", "")))
    finally:
        await nc.close()


async def test_accounts_and_the_system_account_cross_gateways(tmp_path: Path) -> None:
    """Each account's traffic crosses in that account; a server ping in the system account
    is answered by the servers of both clusters (each naming its cluster after its
    gateway), from either side; the client INFO names the cluster too."""
    a = Node("py", "PY-A", "A", free_port())
    b = Node("go", "GO-B", "B", free_port())
    try:
        start(a, [b], tmp_path, ACCOUNTS)
        start(b, [a], tmp_path, ACCOUNTS)
        await wait_until(
            lambda: a.linked_to("B") and b.linked_to("A"),
            timeout=10,
            what="the gateway links",
            explain=lambda: explain(a, b),
        )
        at_a = await nats.connect(
            a.url, user="app", password="app", max_reconnect_attempts=1, connect_timeout=2
        )
        at_b = await nats.connect(
            b.url, user="app", password="app", max_reconnect_attempts=1, connect_timeout=2
        )
        try:
            assert at_a._server_info.get("cluster") == "A"
            sub = await at_b.subscribe("in.app")
            await at_b.flush()

            def app_interest() -> bool:
                z = a.gatewayz("?acc_name=APP&subs=1")["outbound_gateways"].get("B", {})
                return any(
                    "in.app" in acc.get("subscriptions_list", []) for acc in z.get("accounts", [])
                )

            await wait_until(app_interest, timeout=5)
            await at_a.publish("in.app", b"APP to APP")
            assert (await sub.next_msg(timeout=3)).data == b"APP to APP"
        finally:
            await at_a.close()
            await at_b.close()
        both = [("GO-B", "B"), ("PY-A", "A")]
        for node in (a, b):
            url = node.url.replace("nats://", "nats://sys:sys@")
            assert await servers_answering_ping(url) == both, node.name
    finally:
        for node in (a, b):
            if node.server is not None:
                node.server.stop()


def gateway_urls(port: int) -> list[str]:
    """The `gateway_urls` of the INFO a gateway port sends first."""
    import json
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        buf = b""
        while b"\r\n" not in buf:
            buf += s.recv(4096)
    info = json.loads(buf.split(b"\r\n")[0][len(b"INFO ") :])
    return sorted(info.get("gateway_urls") or [])


async def test_the_servers_of_a_cluster_advertise_each_others_gateway_urls(
    tmp_path: Path,
) -> None:
    """A route INFO carries the server's `gateway_url`: both servers of a cluster (ours and
    nats-server) list both gateway URLs in the INFO another cluster gets, so it can dial
    either of them."""
    a1 = Node("py", "PY-A1", "A", free_port())
    a2 = Node("go", "GO-A2", "A", free_port())
    r1, r2 = free_port(), free_port()
    try:
        for node, own, other in ((a1, r1, r2), (a2, r2, r1)):
            start(
                node,
                [],
                tmp_path,
                f"cluster {{ name: A, listen: 127.0.0.1:{own},"
                f' routes: ["nats-route://127.0.0.1:{other}"] }}\n',
            )
        both = sorted(f"127.0.0.1:{n.gateway_port}" for n in (a1, a2))
        await wait_until(
            lambda: gateway_urls(a1.gateway_port) == both == gateway_urls(a2.gateway_port),
            timeout=10,
            what="both gateway URLs in both INFOs",
            explain=lambda: explain(a1, a2),
        )
    finally:
        for node in (a1, a2):
            if node.server is not None:
                node.server.stop()


@pytest.mark.parametrize("kind", ["py", "go"])
def test_a_reload_may_not_change_the_gateway_block(tmp_path: Path, kind: str) -> None:
    """nats-server refuses to reload a changed `gateway {}` (its TLS aside) and keeps
    running with the old one; a reload of the same block is fine."""
    import signal

    port = free_port()
    conf = tmp_path / "gw.conf"
    block = 'gateway {{ name: A, listen: 127.0.0.1:{}, gateways: [{{name: {}, url: "{}"}}] }}\n'
    conf.write_text(block.format(port, "B", "nats://127.0.0.1:1"))
    server = start_server(["-c", str(conf)], oracle=kind == "go")
    try:
        server.signal(signal.SIGHUP)
        server.wait_for_log("Reloaded server configuration")
        conf.write_text(block.format(port, "C", "nats://127.0.0.1:2"))
        server.signal(signal.SIGHUP)
        server.wait_for_log(
            "Failed to reload server configuration: config reload not supported for Gateway"
        )
    finally:
        server.stop()


PKI = Path(__file__).parent.parent / "data" / "cluster" / "pki"


@pytest.mark.parametrize("kinds", [("py", "go")], ids=["py-go"])
async def test_gateways_over_tls(tmp_path: Path, kinds: tuple[str, str]) -> None:
    """`gateway { tls {} }` on both sides: the link is made over TLS (each side verifying
    the other) in both directions (each server dials the other: both accept and dial over
    TLS), and messages cross."""
    tls = (
        f'tls {{ cert_file: "{PKI / "server.pem"}", key_file: "{PKI / "server-key.pem"}",'
        f' ca_file: "{PKI / "ca.pem"}", verify: true, timeout: 3 }}'
    )
    a = Node(kinds[0], f"{kinds[0].upper()}-A", "A", free_port())
    b = Node(kinds[1], f"{kinds[1].upper()}-B", "B", free_port())
    try:
        start(a, [b], tmp_path, inside=tls)
        start(b, [a], tmp_path, inside=tls)
        await wait_until(
            lambda: a.linked_to("B") and b.linked_to("A"),
            timeout=10,
            what="the gateway links over TLS",
            explain=lambda: explain(a, b),
        )
        at_a = await nats.connect(a.url, max_reconnect_attempts=1, connect_timeout=2)
        at_b = await nats.connect(b.url, max_reconnect_attempts=1, connect_timeout=2)
        try:
            sub = await at_b.subscribe("secure")
            await at_b.flush()
            await wait_until(lambda: a.remote_interest("B", "secure"), timeout=5)
            await at_a.publish("secure", b"over TLS")
            assert (await sub.next_msg(timeout=3)).data == b"over TLS"
            assert a.server is not None and b.server is not None
            varz_a, varz_b = a.server.http_json("/varz"), b.server.http_json("/varz")
            assert shape(varz_a["gateway"]) == shape(varz_b["gateway"])
            for varz in (varz_a, varz_b):
                assert varz["gateway"]["tls_required"] is varz["gateway"]["tls_verify"] is True
        finally:
            await at_a.close()
            await at_b.close()
    finally:
        for node in (a, b):
            if node.server is not None:
                node.server.stop()


@pytest.mark.parametrize("kind_b", ["go", "py"])
async def test_jetstream_of_one_cluster_used_from_the_other(tmp_path: Path, kind_b: str) -> None:
    """A stream on pynats in cluster A, its clients in cluster B: a publish from B is
    stored, a request to a stream subject gets its ack, a push consumer delivers to a
    subscriber in B with the stored subject and an ack reply B's client can parse and use."""
    a = Node("py", "PY-A", "A", free_port())
    b = Node(kind_b, f"{kind_b.upper()}-B", "B", free_port())
    try:
        start(a, [b], tmp_path, f'jetstream {{ store_dir: "{tmp_path / "js"}" }}\n')
        start(b, [a], tmp_path)
        await wait_until(
            lambda: a.linked_to("B") and b.linked_to("A"),
            timeout=10,
            what="the gateway links",
            explain=lambda: explain(a, b),
        )
        at_a = await nats.connect(a.url, max_reconnect_attempts=1, connect_timeout=2)
        at_b = await nats.connect(b.url, max_reconnect_attempts=1, connect_timeout=2)
        try:
            js = at_a.jetstream(timeout=3)
            await js.add_stream(name="S", subjects=["s.>"])
            await wait_until(lambda: b.remote_interest("A", "s.>"), timeout=5)
            await at_b.publish("s.one", b"from B")
            ack = await at_b.request("s.two", b"acked from B", timeout=3)
            assert b'"seq":2' in ack.data
            sub = await at_b.subscribe("deliver.b")
            await at_b.flush()
            await wait_until(lambda: a.remote_interest("B", "deliver.b"), timeout=5)
            await js.add_consumer(
                "S", durable_name="pc", deliver_subject="deliver.b", ack_policy="explicit"
            )
            for subject, data in (("s.one", b"from B"), ("s.two", b"acked from B")):
                msg = await sub.next_msg(timeout=3)
                assert (msg.subject, msg.data) == (subject, data)
                assert msg.metadata.stream == "S"
                await msg.ack()

            async def acked() -> bool:
                info = await js.consumer_info("S", "pc")
                return info.ack_floor.stream_seq == 2 and info.num_ack_pending == 0

            await wait_until(acked, timeout=5)
        finally:
            await at_a.close()
            await at_b.close()
    finally:
        for node in (a, b):
            if node.server is not None:
                node.server.stop()


class FakeCluster:
    """Cluster "A" played over raw sockets: its inbound link dials the server under test,
    and its listener takes the outbound link that server makes back to it."""

    def __init__(self, target_port: int) -> None:
        import socket

        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.listener.settimeout(10)
        port = self.listener.getsockname()[1]
        self.link_in = socket.create_connection(("127.0.0.1", target_port), timeout=5)
        self.link_in.settimeout(5)
        self._read_line(self.link_in)  # the server's INFO
        info = {
            "server_id": "NFAKEA",
            "server_name": "FAKE-A",
            "gateway": "A",
            "gateway_url": f"127.0.0.1:{port}",
            "gateway_urls": [f"127.0.0.1:{port}"],
            "headers": True,
        }
        self.link_in.sendall(
            b'CONNECT {"echo":false,"verbose":false,"headers":true,"name":"NFAKEA",'
            b'"gateway":"A"}\r\nINFO ' + _json(info) + b"\r\n"
        )
        # the server dials the cluster it just learned of (an implicit gateway)
        self.link_out, _ = self.listener.accept()
        self.link_out.settimeout(5)
        self.link_out.sendall(b"INFO " + _json(info) + b"\r\n")
        self.buffers: dict[Any, bytes] = {self.link_in: b"", self.link_out: b""}

    @staticmethod
    def _read_line(sock: Any) -> bytes:
        buf = b""
        while b"\r\n" not in buf:
            buf += sock.recv(1)
        return buf

    def read_until(self, sock: Any, marker: bytes) -> bytes:
        """What the server sent on one link until `marker` (PINGs answered): interest
        comes on `link_in` (the server's inbound link), messages on `link_out`."""
        while marker not in self.buffers[sock]:
            chunk = sock.recv(65536)
            if not chunk:
                break
            if b"PING\r\n" in chunk:
                sock.sendall(b"PONG\r\n")
            self.buffers[sock] += chunk
        return self.buffers[sock]

    def close(self) -> None:
        for s in (self.link_in, self.link_out, self.listener):
            s.close()


def _json(value: Any) -> bytes:
    import json

    return json.dumps(value).encode()


@pytest.mark.parametrize("kind", ["py", "go"])
async def test_a_reply_is_mapped_back_without_interest(tmp_path: Path, kind: str) -> None:
    """nats-server's gateway reply mapping, on the wire: a request from cluster A arrives
    with the reply `_GR_.<A>.<server>.<reply>`; the responder sees `<reply>`, and its answer
    (nobody in this cluster wanting `<reply>`) goes back to A under the prefix. A message of
    an account this cluster does not have is answered with `A-`."""
    from pynats.server.gateways import gw_hash

    b = Node(kind, f"{kind.upper()}-B", "B", free_port())
    fake: FakeCluster | None = None
    try:
        start(b, [], tmp_path)
        fake = FakeCluster(b.gateway_port)
        await wait_until(lambda: b.linked_to("A"), timeout=10, what="the fake cluster's links")
        responder = await nats.connect(b.url, max_reconnect_attempts=1, connect_timeout=2)
        try:
            seen: list[str] = []

            async def answer(msg: Any) -> None:
                seen.append(msg.reply)
                await msg.respond(b"pong")

            await responder.subscribe("svc", cb=answer)
            await responder.flush()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, fake.read_until, fake.link_in, b"RS+ $G svc\r\n")
            routed = b"_GR_." + gw_hash("A") + b"." + gw_hash("NFAKEA") + b".my.reply"
            fake.link_in.sendall(b"RMSG $G svc " + routed + b" 4\r\nping\r\n")
            await wait_until(lambda: bool(seen), timeout=5, what="the request")
            assert seen == ["my.reply"]
            sent = await loop.run_in_executor(
                None, fake.read_until, fake.link_out, b"RMSG $G " + routed
            )
            assert b"RMSG $G " + routed + b" 4\r\npong\r\n" in sent
            # a message of an account this cluster does not have: A- (no interest in it)
            fake.link_in.sendall(b"RMSG NOPE svc 1\r\nx\r\n")
            told = await loop.run_in_executor(None, fake.read_until, fake.link_in, b"A- NOPE")
            assert b"A- NOPE\r\n" in told
        finally:
            await responder.close()
    finally:
        if fake is not None:
            fake.close()
        if b.server is not None:
            b.server.stop()


@pytest.mark.parametrize(
    "kinds", [("py", "go", "go"), ("go", "py", "py")], ids=["A=py,B=go,C=go", "A=go,B=py,C=py"]
)
async def test_a_third_cluster_finds_the_others_by_gossip(
    tmp_path: Path, kinds: tuple[str, str, str]
) -> None:
    """A and B know each other; C knows only A. A tells C about B when C registers (INFO
    `gateway_cmd` 1), C dials B (an implicit gateway) and the three clusters are linked
    both ways, whichever kind tells and whichever dials."""
    a, b, c = (
        Node(k, f"{k.upper()}-{n}", n, free_port()) for k, n in zip(kinds, "ABC", strict=True)
    )
    try:
        start(a, [b], tmp_path)
        start(b, [a], tmp_path)
        start(c, [a], tmp_path)

        def meshed() -> bool:
            for node in (a, b, c):
                z = node.gatewayz()
                others = {"A", "B", "C"} - {node.cluster}
                if set(z["outbound_gateways"]) != others or set(z["inbound_gateways"]) != others:
                    return False
            return True

        await wait_until(
            meshed, timeout=10, what="three linked clusters", explain=lambda: explain(a, b, c)
        )
        assert c.server is not None
        c.server.wait_for_log(r'Connecting to implicit gateway "B"')
        z = c.gatewayz()
        assert z["outbound_gateways"]["A"]["configured"] is True
        assert z["outbound_gateways"]["B"]["configured"] is False
    finally:
        for node in (a, b, c):
            if node.server is not None:
                node.server.stop()
