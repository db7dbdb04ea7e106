"""Message tracing across a route or a leaf connection (ADR-41 hops), every mix of pynats
and Go.

The origin server reports an egress to the route with `hop` "1" and `hops: 1`; the copy
carries `Nats-Trace-Hop: 1` and the other server reports its own ingress (kind 1, the
origin's name) and egress to its subscriber. What each mix emits is compared with what two
Go servers emit, with timestamps, connection ids and server ids masked and the server names
replaced by their position.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from tests.support.cluster import make_cluster
from tests.support.ports import free_port
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

MIXES = [["go", "go"], ["py", "go"], ["go", "py"], ["py", "py"]]


def _mask(event: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    event["server"] = {"name": names.get(event["server"]["name"], "?")}
    header = event["request"].get("header", {})
    header.pop("Nats-Trace-Dest", None)
    for item in event["events"]:
        item["ts"] = "<ts>"
        item["cid"] = "<cid>"
        if "name" in item:
            item["name"] = names.get(item["name"], item["name"])
    return event


Knows = Callable[[str], bool]  # does this server know of interest in a subject elsewhere?


def leaf_knows(server: RunningServer) -> Knows:
    def knows(subject: str) -> bool:
        leafs = server.http_json("/leafz?subs=1")["leafs"]
        return any(subject in (leaf.get("subscriptions_list") or []) for leaf in leafs)

    return knows


async def _trace(
    urls: list[str], knows: list[Knows], only: bool, queue: str | None
) -> list[dict[str, Any]]:
    """Publish a traced message on the first server for a subscriber on the second, once
    each knows of the other's interest; the two servers' trace events."""
    origin = await nats.connect(urls[0])
    remote = await nats.connect(urls[1])
    try:
        await remote.subscribe("foo", queue=queue or "")
        await remote.flush()
        inbox = origin.new_inbox()
        tsub = await origin.subscribe(inbox)
        await origin.flush()
        await wait_until(lambda: knows[0]("foo"), what="interest in foo")
        await wait_until(lambda: knows[1](inbox), what="interest in the trace inbox")
        headers = {"Nats-Trace-Dest": inbox}
        if only:
            headers["Nats-Trace-Only"] = "true"
        await origin.publish("foo", b"x", headers=headers)
        events = []
        for _ in range(2):
            msg = await tsub.next_msg(timeout=3)
            events.append(json.loads(msg.data))
        return events
    finally:
        await origin.close()
        await remote.close()


@pytest.mark.parametrize("only", [False, True], ids=["deliver", "trace_only"])
@pytest.mark.parametrize("queue", [None, "g"], ids=["plain", "queue"])
async def test_route_hop_events_match_go(tmp_path: Path, only: bool, queue: str | None) -> None:
    results = {}
    for i, kinds in enumerate(MIXES):
        cluster = make_cluster(kinds, tmp_path / f"c{i}")
        try:
            cluster.wait_formed()
            names = {cluster[0].name: "S1", cluster[1].name: "S2"}
            pair = [cluster[0], cluster[1]]
            events = await _trace(
                [m.url for m in pair], [m.has_remote_interest for m in pair], only, queue
            )
        finally:
            cluster.stop_all()
        masked = sorted(
            (_mask(e, names) for e in events), key=lambda e: json.dumps(e, sort_keys=True)
        )
        results["-".join(kinds)] = masked
    reference = results["go-go"]
    assert [e["server"]["name"] for e in reference] == ["S1", "S2"]
    assert reference[0]["hops"] == 1
    for mix, events in results.items():
        assert events == reference, mix


@pytest.mark.parametrize("only", [False, True], ids=["deliver", "trace_only"])
@pytest.mark.parametrize("direction", ["hub_to_leaf", "leaf_to_hub"])
async def test_leaf_hop_events_match_go(tmp_path: Path, only: bool, direction: str) -> None:
    results = {}
    for hub_kind, leaf_kind in MIXES:
        base = tmp_path / f"{hub_kind}-{leaf_kind}"
        base.mkdir()
        port = free_port()
        hub_conf = base / "hub.conf"
        hub_conf.write_text(f'server_name: HUB\nleafnodes {{ listen: "127.0.0.1:{port}" }}\n')
        leaf_conf = base / "leaf.conf"
        leaf_conf.write_text(
            f'server_name: LEAF\nleafnodes {{ remotes [{{url: "nats://127.0.0.1:{port}"}}] }}\n'
        )
        hub = start_server(["-c", str(hub_conf)], oracle=hub_kind == "go", http_port=-1)
        leaf = None
        try:
            leaf = start_server(["-c", str(leaf_conf)], oracle=leaf_kind == "go", http_port=-1)
            pair = [hub, leaf] if direction == "hub_to_leaf" else [leaf, hub]
            events = await _trace([s.url for s in pair], [leaf_knows(s) for s in pair], only, None)
        finally:
            if leaf is not None:
                leaf.stop()
            hub.stop()
        names = {"HUB": "HUB", "LEAF": "LEAF"}
        results[f"{hub_kind}-{leaf_kind}"] = sorted(
            (_mask(e, names) for e in events), key=lambda e: json.dumps(e, sort_keys=True)
        )
    reference = results["go-go"]
    assert any(e.get("hops") == 1 for e in reference)
    for mix, events in results.items():
        assert events == reference, mix
