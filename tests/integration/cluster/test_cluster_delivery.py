"""Messages cross a cluster as they do between Go servers: one hop, once, to the right peers.

Every test runs on the three mixes (all ours; two Go + one of ours; one Go + two of ours) and
for every ordered pair of servers: the publisher's server and the subscriber's server.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from tests.integration.cluster.conftest import TOPOLOGIES
from tests.support.cluster import Cluster, Member, make_cluster
from tests.support.waiting import wait_until


@pytest.fixture(scope="module", params=TOPOLOGIES)
def mesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    tmp: Path = tmp_path_factory.mktemp("mesh")
    cluster = make_cluster(request.param, tmp)
    try:
        cluster.wait_formed()
        yield cluster
    finally:
        cluster.stop_all()


async def connect(member: Member, **kwargs: object) -> Client:
    opts: dict[str, object] = {
        "connect_timeout": 2,
        "allow_reconnect": False,
        "max_reconnect_attempts": 1,
    }
    opts.update(kwargs)
    return await nats.connect(member.url, **opts)  # type: ignore[arg-type]


@pytest.fixture
async def clients(mesh: Cluster) -> AsyncIterator[list[Client]]:
    ncs = [await connect(m) for m in mesh]
    yield ncs
    for nc in ncs:
        await nc.close()


def pairs(mesh: Cluster) -> list[tuple[int, int]]:
    return list(itertools.permutations(range(len(mesh.members)), 2))


async def interest_reaches(mesh: Cluster, subject: str, *, at: list[int]) -> None:
    for i in at:
        await wait_until(lambda i=i: mesh[i].has_remote_interest(subject), timeout=5, what=subject)


async def test_a_message_reaches_a_subscriber_on_every_other_server(
    mesh: Cluster, clients: list[Client]
) -> None:
    for pub, sub in pairs(mesh):
        subject = f"plain.{pub}.{sub}"
        s = await clients[sub].subscribe(subject)
        await interest_reaches(mesh, subject, at=[pub])
        await clients[pub].publish(subject, b"hello")
        msg = await s.next_msg(timeout=3)
        assert (msg.subject, msg.data) == (subject, b"hello")
        await s.unsubscribe()


async def test_wildcards_and_headers_cross_the_cluster(
    mesh: Cluster, clients: list[Client]
) -> None:
    for pub, sub in pairs(mesh):
        star = await clients[sub].subscribe(f"wild.{pub}{sub}.*")
        full = await clients[sub].subscribe(f"wild.{pub}{sub}.>")
        await interest_reaches(mesh, f"wild.{pub}{sub}.>", at=[pub])
        await interest_reaches(mesh, f"wild.{pub}{sub}.*", at=[pub])
        await clients[pub].publish(f"wild.{pub}{sub}.a", b"1", headers={"X-Trace": "abc"})
        await clients[pub].publish(f"wild.{pub}{sub}.a.b", b"2")
        m1 = await star.next_msg(timeout=3)
        assert (m1.data, m1.headers) == (b"1", {"X-Trace": "abc"})
        assert [(await full.next_msg(timeout=3)).data for _ in range(2)] == [b"1", b"2"]
        with pytest.raises(nats.errors.TimeoutError):
            await star.next_msg(timeout=0.2)  # a.b is not for `*`; nothing came twice
        await star.unsubscribe()
        await full.unsubscribe()


async def test_requests_are_answered_by_a_responder_on_another_server(
    mesh: Cluster, clients: list[Client]
) -> None:
    for requester, responder in pairs(mesh):
        subject = f"svc.{requester}.{responder}"

        async def answer(msg: Msg, who: int = responder) -> None:
            await msg.respond(f"answer from {who}".encode())

        s = await clients[responder].subscribe(subject, cb=answer)
        await interest_reaches(mesh, subject, at=[requester])
        reply = await clients[requester].request(subject, b"q", timeout=3)
        assert reply.data == f"answer from {responder}".encode()
        await s.unsubscribe()


async def test_a_queue_group_delivers_each_message_once_cluster_wide(
    mesh: Cluster, clients: list[Client]
) -> None:
    received: list[tuple[int, bytes]] = []
    subs = []
    for i, nc in enumerate(clients):
        for _ in range(2):

            async def take(msg: Msg, i: int = i) -> None:
                received.append((i, msg.data))

            subs.append(await nc.subscribe("work.items", queue="workers", cb=take))
    await interest_reaches(mesh, "work.items", at=range(len(mesh.members)))  # type: ignore[arg-type]
    total = 0
    for pub, nc in enumerate(clients):
        for n in range(300):
            await nc.publish("work.items", f"{pub}:{n}".encode())
        total += 300
        await nc.flush()
    await wait_until(lambda: len(received) >= total, timeout=10, what="all work items")
    await asyncio.sleep(0.2)  # anything extra would be a duplicate
    payloads = [data for _, data in received]
    assert len(payloads) == total
    assert len(set(payloads)) == total
    servers_used = {i for i, _ in received}
    assert servers_used == set(range(len(clients)))  # remote members are chosen too
    for s in subs:
        await s.unsubscribe()


async def test_no_responders_only_when_nobody_in_the_cluster_listens(
    mesh: Cluster, clients: list[Client]
) -> None:
    with pytest.raises(NoRespondersError):
        await clients[0].request("nobody.home", b"", timeout=2)
    responder = len(clients) - 1

    async def answer(msg: Msg) -> None:
        await msg.respond(b"here")

    s = await clients[responder].subscribe("somebody.home", cb=answer)
    await interest_reaches(mesh, "somebody.home", at=[0])
    assert (await clients[0].request("somebody.home", b"", timeout=3)).data == b"here"
    await s.unsubscribe()


async def test_echo_off_only_keeps_the_message_from_its_own_publisher(mesh: Cluster) -> None:
    quiet = await connect(mesh[0], no_echo=True)
    other = await connect(mesh[1])
    try:
        mine = await quiet.subscribe("echo.test")
        theirs = await other.subscribe("echo.test")
        await interest_reaches(mesh, "echo.test", at=[0, 1])
        await quiet.publish("echo.test", b"x")
        assert (await theirs.next_msg(timeout=3)).data == b"x"
        with pytest.raises(nats.errors.TimeoutError):
            await mine.next_msg(timeout=0.3)
    finally:
        await quiet.close()
        await other.close()


async def test_ten_thousand_subscriptions_are_propagated_and_removed(
    mesh: Cluster, clients: list[Client]
) -> None:
    owner = len(clients) - 1
    subs = [await clients[owner].subscribe(f"many.{n}") for n in range(10_000)]
    await clients[owner].flush()

    def remote_count(member: Member) -> int:
        routez = member.http_json("/routez?subs=1")
        return sum(
            1
            for r in routez["routes"]
            for s in r.get("subscriptions_list") or []
            if s.startswith("many.")
        )

    for i in range(len(clients) - 1):
        await wait_until(lambda i=i: remote_count(mesh[i]) == 10_000, timeout=15, what="RS+")
    await clients[0].publish("many.9999", b"last")
    assert (await subs[-1].next_msg(timeout=3)).data == b"last"
    for s in subs:
        await s.unsubscribe()
    await clients[owner].flush()
    for i in range(len(clients) - 1):
        await wait_until(lambda i=i: remote_count(mesh[i]) == 0, timeout=15, what="RS-")
