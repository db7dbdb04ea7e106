"""JetStream across a leaf connection: each side's JetStream answers for itself, and the
clients of a leaf reach the hub's JetStream through its domain (`$JS.<domain>.API`)."""

from __future__ import annotations

from pathlib import Path

import nats
import pytest
from nats.js.errors import ServiceUnavailableError
from tests.support.leafs import make_leaf_pair


@pytest.mark.parametrize(
    "mix", [("go", "py"), ("py", "go"), ("py", "py")], ids=lambda m: f"{m[1]}-leaf-on-{m[0]}-hub"
)
async def test_a_leafs_clients_use_the_hubs_jetstream_through_its_domain(
    tmp_path: Path, mix: tuple[str, str]
) -> None:
    pair = make_leaf_pair(
        *mix, tmp_path, hub_extra=f'jetstream {{ domain: hub, store_dir: "{tmp_path / "js"}" }}\n'
    )
    try:
        pair.wait_connected()
        nc = await nats.connect(pair.leaf.url)
        try:
            js = nc.jetstream(domain="hub", timeout=3)
            info = await js.account_info()
            assert info.domain == "hub"
            await js.add_stream(name="ORDERS", subjects=["orders.>"])
            ack = await js.publish("orders.new", b"from the edge")
            assert (ack.stream, ack.seq, ack.domain) == ("ORDERS", 1, "hub")
            pull = await js.pull_subscribe("orders.>", "worker")
            msg = (await pull.fetch(1, timeout=3))[0]
            assert (msg.subject, msg.data) == ("orders.new", b"from the edge")
            await msg.ack_sync()
            consumer = await js.consumer_info("ORDERS", "worker")
            assert consumer.num_ack_pending == 0
            # Without the domain, nothing answers: $JS.API does not cross the leaf connection.
            with pytest.raises(ServiceUnavailableError):
                await nc.jetstream(timeout=1).account_info()
        finally:
            await nc.close()
    finally:
        pair.stop_all()


@pytest.mark.parametrize("hub_kind", ["go", "py"])
async def test_a_leaf_with_its_own_jetstream_answers_locally_and_reaches_the_hub_by_domain(
    tmp_path: Path, hub_kind: str
) -> None:
    pair = make_leaf_pair(
        hub_kind,
        "py",
        tmp_path,
        hub_extra=f'jetstream {{ domain: hub, store_dir: "{tmp_path / "hubjs"}" }}\n',
        leaf_extra=f'jetstream {{ domain: edge, store_dir: "{tmp_path / "edgejs"}" }}\n',
    )
    try:
        pair.wait_connected()
        nc = await nats.connect(pair.leaf.url)
        try:
            local = nc.jetstream(timeout=3)
            hub = nc.jetstream(domain="hub", timeout=3)
            assert (await local.account_info()).domain == "edge"
            assert (await hub.account_info()).domain == "hub"
            await local.add_stream(name="EDGE", subjects=["edge.>"])
            await hub.add_stream(name="CENTRAL", subjects=["central.>"])
            assert (await local.publish("edge.1", b"kept at the edge")).stream == "EDGE"
            # The edge's stream is not the hub's and the other way around.
            assert [s.config.name for s in await local.streams_info()] == ["EDGE"]
            assert [s.config.name for s in await hub.streams_info()] == ["CENTRAL"]
        finally:
            await nc.close()
    finally:
        pair.stop_all()
