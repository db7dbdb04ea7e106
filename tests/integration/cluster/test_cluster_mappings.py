"""Cluster-scoped mappings in a mixed cluster: a destination scoped to this cluster's name is
used by every member (pynats and Go alike), one scoped to another cluster is not (the
unscoped destinations are, or the subject stays), and a message is mapped once, on the
server its publisher is connected to - never again when it arrives over a route."""

from __future__ import annotations

from collections.abc import Iterator

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from tests.support.cluster import Cluster, Member, make_cluster
from tests.support.waiting import wait_until

MAPPINGS = """
mappings {
  "here": [
    { destination: "here.c1", weight: 100%, cluster: "C1" }
    { destination: "here.default", weight: 100% }
  ]
  "there": [
    { destination: "there.c2", weight: 100%, cluster: "C2" }
    { destination: "there.default", weight: 100% }
  ]
  "only.there": [ { destination: "only.there.c2", weight: 100%, cluster: "C2" } ]
  "split": [
    { destination: "split.a", weight: 50%, cluster: "C1" }
    { destination: "split.b", weight: 50%, cluster: "C1" }
  ]
  "here.c1": "mapped.twice"
}
"""
WATCHED = [
    "here",
    "here.c1",
    "here.default",
    "mapped.twice",
    "there",
    "there.c2",
    "there.default",
    "only.there",
    "only.there.c2",
    "split.a",
    "split.b",
]
SPLIT_MESSAGES = 200


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    made = make_cluster(
        ["go", "py"], tmp_path_factory.mktemp("mapc"), name="C1", extra=lambda m: MAPPINGS
    )
    try:
        made.wait_formed()
        yield made
    finally:
        made.stop_all()


async def _connect(member: Member) -> Client:
    return await nats.connect(member.url, allow_reconnect=False, max_reconnect_attempts=1)


def _remote_interest(member: Member) -> set[str]:
    routez = member.http_json("/routez?subs=1")
    return {s for r in routez["routes"] for s in r.get("subscriptions_list") or []}


@pytest.mark.parametrize("publisher", [0, 1], ids=["published-on-go", "published-on-pynats"])
async def test_destinations_scoped_to_this_cluster_are_used_by_every_member(
    cluster: Cluster, publisher: int
) -> None:
    """The subscriber is on the other member: the message crosses a route once mapped."""
    pub_member, sub_member = cluster[publisher], cluster[1 - publisher]
    pub, sub = await _connect(pub_member), await _connect(sub_member)
    try:
        got: dict[str, int] = {}

        async def count(msg: nats.aio.msg.Msg) -> None:
            got[msg.subject] = got.get(msg.subject, 0) + 1

        for subject in WATCHED:
            await sub.subscribe(subject, cb=count)
        await sub.flush()
        await wait_until(
            lambda: set(WATCHED) <= _remote_interest(pub_member), timeout=5, what="interest"
        )
        for subject in ("here", "there", "only.there"):
            await pub.publish(subject, b"")
        for _ in range(SPLIT_MESSAGES):
            await pub.publish("split", b"")
        await pub.flush()
        await wait_until(
            lambda: sum(got.values()) >= 3 + SPLIT_MESSAGES, timeout=5, what="deliveries"
        )
        await sub.flush()
        split = {k: got.pop(k, 0) for k in ("split.a", "split.b")}
        assert got == {"here.c1": 1, "there.default": 1, "only.there": 1}
        assert sum(split.values()) == SPLIT_MESSAGES
        assert min(split.values()) > SPLIT_MESSAGES // 5  # both halves of C1's split
    finally:
        await pub.close()
        await sub.close()
