"""Accounts and permissions over shared routes, and the same script on an all-Go cluster.

Accounts share the route connections but never each other's messages; permissions apply on
the server of the publisher and on the server of the subscriber. A scripted mix of plain,
wildcard, queue and header traffic gives the same deliveries on every mix as on Go alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from tests.support.cluster import Cluster, Member, make_cluster
from tests.support.waiting import wait_until

ACCOUNTS = """
accounts {
  A: { users: [ {user: a, password: a} ] }
  B: { users: [ {user: b, password: b} ] }
  P: { users: [
    {user: limited, password: p,
     permissions: {publish: {allow: ["allowed.>"]}, subscribe: {deny: ["secret.>"]}}},
    {user: free, password: p}
  ] }
}
"""


@pytest.fixture(scope="module", params=[["go", "py", "py"], ["py", "go", "py"]], ids=str)
def accounts_cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    cluster = make_cluster(request.param, tmp_path_factory.mktemp("acc"), extra=lambda m: ACCOUNTS)
    try:
        cluster.wait_formed()
        yield cluster
    finally:
        cluster.stop_all()


async def login(member: Member, user: str, password: str, **kwargs: Any) -> Client:
    return await nats.connect(
        member.url,
        user=user,
        password=password,
        allow_reconnect=False,
        max_reconnect_attempts=1,
        **kwargs,
    )


async def test_accounts_share_routes_but_not_messages(accounts_cluster: Cluster) -> None:
    for pub, sub in [(0, 1), (1, 2), (2, 0)]:
        a_sub = await login(accounts_cluster[sub], "a", "a")
        a_pub = await login(accounts_cluster[pub], "a", "a")
        b_pub = await login(accounts_cluster[pub], "b", "b")
        try:
            s = await a_sub.subscribe("shared.subject")
            await a_sub.flush()
            await wait_until(
                lambda pub=pub: accounts_cluster[pub].has_remote_interest("shared.subject")
            )
            await b_pub.publish("shared.subject", b"from B")
            await b_pub.flush()
            await a_pub.publish("shared.subject", b"from A")
            assert (await s.next_msg(timeout=3)).data == b"from A"
            with pytest.raises(nats.errors.TimeoutError):
                await s.next_msg(timeout=0.3)
        finally:
            for nc in (a_sub, a_pub, b_pub):
                await nc.close()


async def test_permissions_apply_where_the_publisher_and_the_subscriber_are(
    accounts_cluster: Cluster,
) -> None:
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    free_sub = await login(accounts_cluster[1], "free", "p")
    limited_pub = await login(accounts_cluster[0], "limited", "p", error_cb=on_error)
    limited_sub = await login(accounts_cluster[2], "limited", "p", error_cb=on_error)
    free_pub = await login(accounts_cluster[0], "free", "p")
    try:
        everything = await free_sub.subscribe(">")
        await free_sub.flush()
        await wait_until(lambda: accounts_cluster[0].has_remote_interest(">"))
        await limited_pub.publish("denied.x", b"no")
        await limited_pub.publish("allowed.x", b"yes")
        await limited_pub.flush()
        assert (await everything.next_msg(timeout=3)).subject == "allowed.x"
        with pytest.raises(nats.errors.TimeoutError):
            await everything.next_msg(timeout=0.3)
        await wait_until(lambda: any("denied.x" in str(e) for e in errors), timeout=3)

        wild = await limited_sub.subscribe("allowed.>")
        await limited_sub.subscribe("secret.>")
        await limited_sub.flush()
        await wait_until(lambda: any("secret.>" in str(e) for e in errors), timeout=3)
        await wait_until(lambda: accounts_cluster[0].has_remote_interest("allowed.>"))
        await free_pub.publish("allowed.y", b"for the limited one")
        assert (await wild.next_msg(timeout=3)).data == b"for the limited one"
    finally:
        for nc in (free_sub, limited_pub, limited_sub, free_pub):
            await nc.close()


# -- the same script on every mix and on Go alone ------------------------------------------------


async def run_script(cluster: Cluster) -> dict[str, Any]:
    """Subscribers of every kind on every server, messages from every server: who got what."""
    clients = [await nats.connect(m.url, allow_reconnect=False) for m in cluster]
    got: dict[str, list[str]] = {}
    queue_hits: list[str] = []

    def record(key: str) -> Callable[[Msg], Any]:
        async def cb(msg: Msg) -> None:
            got.setdefault(key, []).append(f"{msg.subject}|{msg.data.decode()}|{msg.headers}")

        return cb

    async def queue_cb(msg: Msg) -> None:
        queue_hits.append(msg.data.decode())

    try:
        for i, nc in enumerate(clients):
            await nc.subscribe("script.exact", cb=record(f"exact@{i}"))
            await nc.subscribe("script.*", cb=record(f"star@{i}"))
            await nc.subscribe("script.>", cb=record(f"full@{i}"))
            await nc.subscribe("script.q", queue="workers", cb=queue_cb)
            await nc.flush()
        for i in range(len(clients)):
            for subject in ("script.exact", "script.*", "script.>", "script.q"):
                await wait_until(
                    lambda i=i, subject=subject: all(
                        cluster[j].has_remote_interest(subject)
                        for j in range(len(clients))
                        if j != i
                    ),
                    timeout=10,
                )
        for i, nc in enumerate(clients):
            for n in range(20):
                await nc.publish("script.exact", f"{i}-{n}".encode())
                await nc.publish("script.other.deep", f"{i}-{n}".encode())
                await nc.publish("script.q", f"{i}-{n}".encode(), headers={"N": str(n)})
            await nc.flush()
        expected_queue = 20 * len(clients)
        await wait_until(lambda: len(queue_hits) >= expected_queue, timeout=10)
        await asyncio.sleep(0.3)
    finally:
        for nc in clients:
            await nc.close()
    return {
        "subscribers": {k: sorted(v) for k, v in got.items()},
        "queue": sorted(queue_hits),
    }


@pytest.fixture(scope="module")
def go_record(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cluster = make_cluster(["go", "go", "go"], tmp_path_factory.mktemp("go"))
    try:
        cluster.wait_formed()
        yield asyncio.run(run_script(cluster))
    finally:
        cluster.stop_all()


@pytest.mark.parametrize("kinds", [["py", "py", "py"], ["go", "go", "py"], ["go", "py", "py"]])
async def test_the_same_script_delivers_the_same_as_an_all_go_cluster(
    cluster_factory: Callable[..., Cluster],
    kinds: list[str],
    go_record: dict[str, Any],
    tmp_path: Path,
) -> None:
    cluster = cluster_factory(kinds)
    cluster.wait_formed()
    record = await run_script(cluster)
    assert record["queue"] == go_record["queue"]  # each once, none lost
    assert record["subscribers"] == go_record["subscribers"]


@pytest.mark.parametrize("guarded", ["py", "go"])
async def test_route_permissions_limit_what_a_server_takes_and_gives(
    cluster_factory: Callable[..., Cluster], guarded: str
) -> None:
    """`cluster { permissions { import, export } }` on one server (ours, or Go's as the
    reference): it only asks for imported subjects and only gives exported ones."""
    perms = '  permissions { import: { allow: ["in.>"] }, export: { allow: ["out.>"] } }'
    other = "go" if guarded == "py" else "py"
    cluster = cluster_factory(
        [guarded, other],
        cluster_extra=lambda m: perms if m.kind == guarded and m.name.endswith("-1") else "",
    )
    cluster.wait_formed()
    inside, outside = cluster[0], cluster[1]
    nc_in = await nats.connect(inside.url)
    nc_out = await nats.connect(outside.url)
    try:
        takes = await nc_in.subscribe("in.data")
        refuses = await nc_in.subscribe("other.data")
        gets = await nc_out.subscribe("out.data")
        never = await nc_out.subscribe("private.data")
        await nc_in.flush()
        await nc_out.flush()
        await wait_until(lambda: outside.has_remote_interest("in.data"))
        await wait_until(lambda: inside.has_remote_interest("out.data"))
        assert not outside.has_remote_interest("other.data")
        for subject in ("in.data", "other.data"):
            await nc_out.publish(subject, b"to the guarded server")
        for subject in ("out.data", "private.data"):
            await nc_in.publish(subject, b"from the guarded server")
        await nc_in.flush()
        await nc_out.flush()
        assert (await takes.next_msg(timeout=3)).data == b"to the guarded server"
        assert (await gets.next_msg(timeout=3)).data == b"from the guarded server"
        for s in (refuses, never):
            with pytest.raises(nats.errors.TimeoutError):
                await s.next_msg(timeout=0.3)
    finally:
        await nc_in.close()
        await nc_out.close()
