"""Subject mappings and leaf connections, in every mix with the Go server: an account's
mappings apply to what a leaf connection brings into it (nats-server maps in its parser for
CLIENT and LEAF connections), and their sources are interest each side announces, so a
message on a mapped subject crosses the link to be mapped on the other side."""

from __future__ import annotations

from collections.abc import Iterator

import nats.errors
import pytest
from tests.support.leafs import LeafPair, connect, interest_at, make_leaf_pair

MIXES = [
    pytest.param(("go", "py"), id="py-leaf-on-go-hub"),
    pytest.param(("py", "go"), id="go-leaf-on-py-hub"),
    pytest.param(("py", "py"), id="py-leaf-on-py-hub"),
]


@pytest.fixture(scope="module", params=MIXES)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LeafPair]:
    hub_kind, leaf_kind = request.param
    made = make_leaf_pair(
        hub_kind,
        leaf_kind,
        tmp_path_factory.mktemp("leafmap"),
        hub_extra='mappings { "up.*": "hub.mapped.$1" }',
        leaf_extra='mappings { "down.*": "leaf.mapped.$1" }',
    )
    try:
        made.wait_connected()
        yield made
    finally:
        made.stop_all()


async def test_a_message_from_the_leaf_is_mapped_by_the_hub_account(pair: LeafPair) -> None:
    hub, leaf = await connect(pair.hub), await connect(pair.leaf)
    try:
        mapped = await hub.subscribe("hub.mapped.1")
        unmapped = await hub.subscribe("up.1")
        await hub.flush()
        await interest_at(pair.leaf, "up.*")  # the mapping's source, no subscriber behind it
        await leaf.publish("up.1", b"from the leaf")
        assert (await mapped.next_msg(timeout=3)).data == b"from the leaf"
        await hub.flush()
        with pytest.raises(nats.errors.TimeoutError):
            await unmapped.next_msg(timeout=0.3)
    finally:
        await hub.close()
        await leaf.close()


async def test_a_message_from_the_hub_is_mapped_by_the_leaf_account(pair: LeafPair) -> None:
    hub, leaf = await connect(pair.hub), await connect(pair.leaf)
    try:
        mapped = await leaf.subscribe("leaf.mapped.2")
        await leaf.flush()
        await interest_at(pair.hub, "down.*")
        await interest_at(pair.hub, "leaf.mapped.2")
        await hub.publish("down.2", b"from the hub")
        assert (await mapped.next_msg(timeout=3)).data == b"from the hub"
    finally:
        await hub.close()
        await leaf.close()
