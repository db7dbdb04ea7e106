"""A leaf connected to one server of a cluster reaches all of it: its interest travels over
the hub's routes, and messages from any server of the cluster reach it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nats
import pytest
from tests.support.cluster import Cluster, Member
from tests.support.leafs import LeafPair, make_node
from tests.support.ports import free_port
from tests.support.waiting import wait_until


def remote_interest(member: Member, subject: str) -> bool:
    routez = member.http_json("/routez?subs=1")
    return any(subject in (r.get("subscriptions_list") or []) for r in routez["routes"])


@pytest.mark.parametrize(
    ("hub_kinds", "leaf_kind"),
    [(["go", "py"], "py"), (["py", "go"], "go"), (["py", "py"], "py")],
    ids=["py-leaf-on-go-of-mixed-hub", "go-leaf-on-py-of-mixed-hub", "py-leaf-on-py-hub"],
)
async def test_a_leaf_on_one_hub_server_reaches_the_whole_cluster(
    cluster_factory: Callable[..., Cluster], tmp_path: Path, hub_kinds: list[str], leaf_kind: str
) -> None:
    leaf_ports: dict[str, int] = {}

    def leaf_listener(m: Member) -> str:
        port = leaf_ports.setdefault(m.name, free_port())
        return f"leafnodes {{ listen: 127.0.0.1:{port} }}\n"

    cluster = cluster_factory(hub_kinds, extra=leaf_listener)
    cluster.wait_formed()
    entry, far = cluster[0], cluster[1]
    leaf = make_node(leaf_kind, f"LEAF-{leaf_kind.upper()}", tmp_path)
    leaf.extra = (
        "leafnodes { remotes: [ { url: "
        f'"nats-leaf://127.0.0.1:{leaf_ports[entry.name]}" }} ] }}\n'
    )
    pair = LeafPair(hub=leaf, leaf=leaf)  # one node: LeafPair only starts and stops it
    pair.start(leaf)
    try:
        await wait_until(lambda: bool(leaf.leaf_names()), timeout=10, what="the leaf link")
        at_far = await nats.connect(far.url)
        at_leaf = await nats.connect(leaf.url)
        try:
            far_sub = await at_far.subscribe("from.edge")
            leaf_sub = await at_leaf.subscribe("to.edge")
            await at_far.flush()
            await at_leaf.flush()
            await wait_until(lambda: "from.edge" in leaf.leaf_interest(), timeout=5)
            await wait_until(lambda: remote_interest(far, "to.edge"), timeout=5)
            await at_leaf.publish("from.edge", b"up and across")
            await at_far.publish("to.edge", b"across and down")
            assert (await far_sub.next_msg(timeout=3)).data == b"up and across"
            assert (await leaf_sub.next_msg(timeout=3)).data == b"across and down"
        finally:
            await at_far.close()
            await at_leaf.close()
    finally:
        pair.stop_all()
