"""When a server of the cluster dies, goes lame duck, or comes back: clients move to the
survivors (found through the cluster's connect_urls) and nothing is delivered twice."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import nats
import pytest
import trustme
from nats.aio.client import Client
from nats.aio.msg import Msg
from tests.support.cluster import Cluster, Member
from tests.support.waiting import wait_until


async def resilient_client(member: Member, **kwargs: object) -> Client:
    """A client that knows only `member` and learns the others from the cluster."""
    return await nats.connect(  # type: ignore[arg-type]
        servers=[member.url],
        connect_timeout=2,
        reconnect_time_wait=0.1,
        max_reconnect_attempts=50,
        **kwargs,
    )


def client_urls(member: Member) -> set[str]:
    return set(member.http_json("/varz").get("connect_urls") or [])


@pytest.mark.parametrize(
    ("kinds", "victim"),
    [(["py", "py", "py"], 0), (["go", "py", "go"], 1), (["py", "go", "py"], 1)],
    ids=["py-dies-among-py", "py-dies-among-go", "go-dies-among-py"],
)
async def test_a_killed_servers_clients_reconnect_elsewhere_and_get_each_message_once(
    cluster_factory: Callable[..., Cluster], kinds: list[str], victim: int
) -> None:
    cluster = cluster_factory(kinds)
    cluster.wait_formed()
    doomed = cluster[victim]
    survivor = cluster[(victim + 1) % 3]
    await wait_until(lambda: len(client_urls(doomed)) == 3, what="connect_urls of all three")
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    sub_nc = await resilient_client(doomed, reconnected_cb=on_reconnect)
    pub_nc = await resilient_client(survivor)
    received: list[bytes] = []

    async def take(msg: Msg) -> None:
        received.append(msg.data)

    await sub_nc.subscribe("failover.data", cb=take)
    await sub_nc.flush()
    try:
        cluster.kill(doomed)
        await asyncio.wait_for(reconnected.wait(), 10)
        assert sub_nc.connected_url is not None
        assert sub_nc.connected_url.port != doomed.client_port
        new_home = next(m for m in cluster if m.client_port == sub_nc.connected_url.port)
        await wait_until(
            lambda: new_home is survivor or survivor.has_remote_interest("failover.data"),
            timeout=10,
            what="the subscription re-made on a survivor",
        )
        for n in range(200):
            await pub_nc.publish("failover.data", b"%d" % n)
        await pub_nc.flush()
        await wait_until(lambda: len(received) >= 200, timeout=10, what="200 messages")
        await asyncio.sleep(0.2)
        assert received == [b"%d" % n for n in range(200)]
    finally:
        await sub_nc.close()
        await pub_nc.close()


@pytest.mark.parametrize(
    "kinds", [["py", "go", "py"], ["go", "py", "go"]], ids=["py-ldm", "go-peers"]
)
async def test_lame_duck_moves_clients_off_a_server_and_out_of_the_cluster_urls(
    cluster_factory: Callable[..., Cluster], kinds: list[str]
) -> None:
    cluster = cluster_factory(
        kinds, extra=lambda m: "lame_duck_duration: 30s\nlame_duck_grace_period: 1s\n"
    )
    cluster.wait_formed()
    leaving = next(m for m in cluster if m.kind == "py")
    staying = next(m for m in cluster if m is not leaving)
    await wait_until(lambda: len(client_urls(staying)) == 3, what="connect_urls of all three")
    nc = await resilient_client(leaving)
    try:
        assert nc.connected_url is not None and nc.connected_url.port == leaving.client_port
        assert leaving.server is not None
        leaving.server.signal(signal.SIGUSR2)  # nats-server --signal ldm
        await wait_until(
            lambda: f"127.0.0.1:{leaving.client_port}" not in client_urls(staying),
            timeout=10,
            what="the lame duck server dropped from the others' connect_urls",
        )
        await wait_until(
            lambda: (
                nc.is_connected
                and nc.connected_url is not None
                and nc.connected_url.port != leaving.client_port
            ),
            timeout=15,
            what="the client moved to another server",
        )
    finally:
        await nc.close()


async def test_a_lost_route_comes_back_with_its_interest(
    cluster_factory: Callable[..., Cluster],
) -> None:
    cluster = cluster_factory(["go", "py", "py"])
    cluster.wait_formed()
    returning = cluster[2]
    cluster.kill(returning)
    cluster.restart(returning)
    cluster.wait_formed()
    sub_nc = await nats.connect(returning.url)
    pub_nc = await nats.connect(cluster[0].url)
    try:
        s = await sub_nc.subscribe("back.again")
        await sub_nc.flush()
        await wait_until(lambda: cluster[0].has_remote_interest("back.again"), timeout=5)
        await pub_nc.publish("back.again", b"welcome")
        assert (await s.next_msg(timeout=3)).data == b"welcome"
    finally:
        await sub_nc.close()
        await pub_nc.close()


@pytest.mark.parametrize("kinds", [["py", "go"], ["go", "py"], ["py", "py"]])
async def test_routes_over_tls_between_go_and_us(
    cluster_factory: Callable[..., Cluster], kinds: list[str], tmp_path: Path
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    tls = (
        f'  tls {{ cert_file: "{cert_file}", key_file: "{key_file}", ca_file: "{ca_file}", '
        "verify: true, timeout: 3 }"
    )
    cluster = cluster_factory(kinds, cluster_extra=lambda m: tls)
    cluster.wait_formed()
    sub_nc = await nats.connect(cluster[0].url)
    pub_nc = await nats.connect(cluster[1].url)
    try:
        s = await sub_nc.subscribe("secret.channel")
        await sub_nc.flush()
        await wait_until(lambda: cluster[1].has_remote_interest("secret.channel"), timeout=5)
        await pub_nc.publish("secret.channel", b"psst")
        assert (await s.next_msg(timeout=3)).data == b"psst"
    finally:
        await sub_nc.close()
        await pub_nc.close()
