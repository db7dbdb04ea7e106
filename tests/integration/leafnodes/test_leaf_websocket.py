"""Leaf nodes over WebSocket: a leaf dials its hub's websocket port (`ws://`), in every mix
with the Go server, plain, compressed and unmasked, and messages cross it both ways."""

from __future__ import annotations

from collections.abc import Iterator

import nats
import pytest
import trustme
from tests.support.leafs import MIXES, LeafPair, connect, interest_at, make_leaf_pair
from tests.support.ports import free_port

OPTIONS = {
    "plain": "",
    "compressed": "ws_compression: true",
    "unmasked": "ws_no_masking: true",
}
CASES = [
    pytest.param((hub, leaf, opt), id=f"{leaf}-leaf-on-{hub}-hub-{opt}")
    for hub, leaf in MIXES
    for opt in OPTIONS
]


@pytest.fixture(scope="module", params=CASES)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LeafPair]:
    hub_kind, leaf_kind, opt = request.param
    ws_port = free_port()
    compress = "compression: true" if opt == "compressed" else ""
    made = make_leaf_pair(
        hub_kind,
        leaf_kind,
        tmp_path_factory.mktemp("leafws"),
        hub_extra=f"websocket {{\n  listen: 127.0.0.1:{ws_port}\n  no_tls: true\n  {compress}\n}}\n",
        remote=lambda hub: f'{{ url: "ws://127.0.0.1:{ws_port}", {OPTIONS[opt]} }}',
    )
    try:
        made.wait_connected()
        yield made
    finally:
        made.stop_all()


async def test_messages_cross_a_websocket_leaf_both_ways(pair: LeafPair) -> None:
    hub, leaf = await connect(pair.hub), await connect(pair.leaf)
    try:
        at_hub = await hub.subscribe("ws.edge.to.hub")
        at_leaf = await leaf.subscribe("ws.hub.to.edge.*")
        await hub.flush()
        await leaf.flush()
        await interest_at(pair.leaf, "ws.edge.to.hub")
        await interest_at(pair.hub, "ws.hub.to.edge.*")
        big = bytes(range(256)) * 1024  # 256 KiB: many reads, several frames
        await leaf.publish("ws.edge.to.hub", b"up", headers={"K": "v"})
        await leaf.publish("ws.edge.to.hub", big)
        await hub.publish("ws.hub.to.edge.x", b"down")
        up = await at_hub.next_msg(timeout=3)
        assert (up.data, up.headers) == (b"up", {"K": "v"})
        assert (await at_hub.next_msg(timeout=3)).data == big
        assert (await at_leaf.next_msg(timeout=3)).data == b"down"
    finally:
        await hub.close()
        await leaf.close()


async def test_requests_are_answered_across_a_websocket_leaf(pair: LeafPair) -> None:
    hub, leaf = await connect(pair.hub), await connect(pair.leaf)
    try:

        async def answer(msg: nats.aio.msg.Msg) -> None:
            await msg.respond(b"pong:" + msg.data)

        await hub.subscribe("ws.svc", cb=answer)
        await hub.flush()
        await interest_at(pair.leaf, "ws.svc")
        reply = await leaf.request("ws.svc", b"ping", timeout=3)
        assert reply.data == b"pong:ping"
    finally:
        await hub.close()
        await leaf.close()


@pytest.mark.parametrize("hub_kind,leaf_kind", MIXES, ids=lambda k: k)
async def test_a_leaf_dials_its_hub_over_wss(
    hub_kind: str, leaf_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("leafwss")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.cert_chain_pems[0].write_to_path(folder / "cert.pem")
    cert.private_key_pem.write_to_path(folder / "key.pem")
    ca.cert_pem.write_to_path(folder / "ca.pem")
    ws_port = free_port()
    tls = f'tls {{ cert_file: "{folder / "cert.pem"}", key_file: "{folder / "key.pem"}" }}'
    made = make_leaf_pair(
        hub_kind,
        leaf_kind,
        folder,
        hub_extra=f"websocket {{\n  listen: 127.0.0.1:{ws_port}\n  {tls}\n}}\n",
        remote=lambda hub: (
            f'{{ url: "wss://127.0.0.1:{ws_port}", tls {{ ca_file: "{folder / "ca.pem"}" }} }}'
        ),
    )
    try:
        made.wait_connected()
        hub, leaf = await connect(made.hub), await connect(made.leaf)
        try:
            at_hub = await hub.subscribe("wss.up")
            await hub.flush()
            await interest_at(made.leaf, "wss.up")
            await leaf.publish("wss.up", b"secure")
            assert (await at_hub.next_msg(timeout=3)).data == b"secure"
        finally:
            await hub.close()
            await leaf.close()
    finally:
        made.stop_all()
