"""Store and forward at the edge: a leaf runs its own JetStream (domain `edge`), the hub's
(domain `hub`) sources a stream of the edge and the edge mirrors a stream of the hub. The
network between them is cut for a while (a proxy on the leaf's link); both sides keep taking
publishes; when it comes back, every message reaches the other side exactly once.
In every mix with the Go server."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ExternalStream, StreamSource
from tests.support.leafs import MIXES, LeafPair, make_leaf_pair
from tests.support.proxy import CuttableProxy
from tests.support.waiting import wait_until


@contextlib.asynccontextmanager
async def edge_and_hub(hub_kind: str, leaf_kind: str, tmp_path: Path) -> AsyncIterator[Edge]:
    pair = make_leaf_pair(
        hub_kind,
        leaf_kind,
        tmp_path,
        hub_extra=f'jetstream {{ domain: hub, store_dir: "{tmp_path / "hubjs"}" }}\n',
        leaf_extra=f'jetstream {{ domain: edge, store_dir: "{tmp_path / "edgejs"}" }}\n',
        # Not advertised: a leaf that learnt the hub's own leaf URL would go around the proxy.
        hub_block=lambda hub: "  no_advertise: true",
        start=False,
    )
    proxy = await CuttableProxy(pair.hub.leaf_port).start()
    pair.leaf.extra = pair.leaf.extra.replace(f":{pair.hub.leaf_port}", f":{proxy.port}")
    pair.start(pair.hub)
    pair.start(pair.leaf)
    edge = Edge(pair, proxy)
    try:
        await edge.linked()
        edge.hub = await nats.connect(pair.hub.url, max_reconnect_attempts=1)
        edge.edge = await nats.connect(pair.leaf.url, max_reconnect_attempts=1)
        yield edge
    finally:
        for nc in (edge.hub, edge.edge):
            if nc is not None and not nc.is_closed:
                await nc.close()
        await proxy.close()
        pair.stop_all()


@dataclass
class Edge:
    pair: LeafPair
    proxy: CuttableProxy
    hub: Client | None = None
    edge: Client | None = None

    @property
    def hub_js(self) -> JetStreamContext:
        assert self.hub is not None
        return self.hub.jetstream(timeout=3)

    @property
    def edge_js(self) -> JetStreamContext:
        assert self.edge is not None
        return self.edge.jetstream(timeout=3)

    async def linked(self, timeout: float = 15) -> None:
        pair = self.pair
        await wait_until(lambda: pair.hub.leaf_names() and pair.leaf.leaf_names(), timeout, "link")

    async def streams(self) -> None:
        """ORDERS at the edge sourced into ALL_ORDERS at the hub; CMDS at the hub mirrored
        into CMDS_COPY at the edge."""
        hub_js, edge_js = self.hub_js, self.edge_js
        await edge_js.add_stream(name="ORDERS", subjects=["orders.>"])
        await hub_js.add_stream(name="CMDS", subjects=["cmds.>"])
        await hub_js.add_stream(
            name="ALL_ORDERS",
            sources=[StreamSource(name="ORDERS", external=ExternalStream(api="$JS.edge.API"))],
        )
        await edge_js.add_stream(
            name="CMDS_COPY",
            mirror=StreamSource(name="CMDS", external=ExternalStream(api="$JS.hub.API")),
        )

    async def arrived(self, n: int, what: str, timeout: float = 30) -> None:
        await wait_until(
            lambda: count_is(self.hub_js, "ALL_ORDERS", n), timeout, f"{what}: sourced"
        )
        await wait_until(
            lambda: count_is(self.edge_js, "CMDS_COPY", n), timeout, f"{what}: mirrored"
        )

    async def exactly_once(self, n: int) -> None:
        """Everything published up to `n`, once each, in order, on the other side."""
        expected_orders = [(f"orders.{i}", f"orders {i}".encode()) for i in range(n)]
        expected_cmds = [(f"cmds.{i}", f"cmds {i}".encode()) for i in range(n)]
        assert await stored(self.hub_js, "ALL_ORDERS") == expected_orders
        assert await stored(self.edge_js, "CMDS_COPY") == expected_cmds
        # A mirror keeps the origin's sequence numbers.
        assert (await self.edge_js.stream_info("CMDS_COPY")).state.last_seq == n


async def stored(js: JetStreamContext, stream: str) -> list[tuple[str, bytes]]:
    """Every message of a stream, in order, read back by sequence."""
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        out.append((msg.subject or "", msg.data or b""))
    return out


async def count(js: JetStreamContext, stream: str) -> int:
    return (await js.stream_info(stream)).state.messages


async def publish(js: JetStreamContext, subject: str, numbers: range) -> None:
    for i in numbers:
        await js.publish(f"{subject}.{i}", f"{subject} {i}".encode())


@pytest.mark.parametrize("mix", MIXES, ids=lambda m: f"{m[1]}-leaf-on-{m[0]}-hub")
async def test_sourced_and_mirrored_across_a_cut(mix: tuple[str, str], tmp_path: Path) -> None:
    async with edge_and_hub(*mix, tmp_path) as edge:
        pair, proxy = edge.pair, edge.proxy
        hub_js, edge_js = edge.hub_js, edge.edge_js
        await edge.streams()
        await publish(edge_js, "orders", range(10))
        await publish(hub_js, "cmds", range(10))
        await edge.arrived(10, "before the cut")

        proxy.cut()
        await wait_until(
            lambda: not pair.hub.leaf_names() and not pair.leaf.leaf_names(), 10, "the cut"
        )
        await publish(edge_js, "orders", range(10, 30))
        await publish(hub_js, "cmds", range(10, 30))
        # Both sides notice the silence (no heartbeat for seconds) before the link returns.
        await wait_until(lambda: quiet_for(hub_js, "ALL_ORDERS", 3.5), 15, "the source quiet")
        await wait_until(lambda: quiet_for(edge_js, "CMDS_COPY", 3.5), 15, "the mirror quiet")
        assert await count(hub_js, "ALL_ORDERS") == 10
        assert await count(edge_js, "CMDS_COPY") == 10

        proxy.restore()
        await edge.linked()
        await edge.arrived(30, "after the cut")
        # One more on each side, after anything an old consumer might still have sent.
        await publish(edge_js, "orders", range(30, 31))
        await publish(hub_js, "cmds", range(30, 31))
        await edge.arrived(31, "the last")
        await edge.exactly_once(31)
        sources = (await hub_js.stream_info("ALL_ORDERS")).sources
        assert sources is not None and sources[0].lag == 0


@pytest.mark.parametrize("hub_kind", ["go", "py"])
async def test_an_edge_killed_and_restarted_resumes_where_its_store_ends(
    hub_kind: str, tmp_path: Path
) -> None:
    """kill -9 of a pynats edge: its mirror restarts after its last stored sequence, and the
    hub's source of it after the last one it took; nothing is lost or doubled."""
    async with edge_and_hub(hub_kind, "py", tmp_path) as edge:
        pair = edge.pair
        await edge.streams()
        await publish(edge.edge_js, "orders", range(10))
        await publish(edge.hub_js, "cmds", range(10))
        await edge.arrived(10, "before the kill")

        assert pair.leaf.server is not None and edge.edge is not None
        pair.leaf.server.kill()
        await edge.edge.close()
        await publish(edge.hub_js, "cmds", range(10, 25))
        pair.start(pair.leaf)
        await edge.linked()
        edge.edge = await nats.connect(pair.leaf.url, max_reconnect_attempts=1)
        await publish(edge.edge_js, "orders", range(10, 25))
        await edge.arrived(25, "after the restart")
        await edge.exactly_once(25)


async def count_is(js: JetStreamContext, stream: str, n: int) -> bool:
    return await count(js, stream) == n


async def quiet_for(js: JetStreamContext, stream: str, seconds: float) -> bool:
    """The stream's mirror or source heard nothing from its origin for `seconds`."""
    info = await js.stream_info(stream)
    link = info.mirror or (info.sources[0] if info.sources else None)
    assert link is not None
    active = getattr(link, "active", None)
    return active is not None and active >= seconds * 1e9
