"""JetStream in a cluster: one JetStream per cluster, used by the clients of every server.

- All pynats: JetStream runs on one server (R1) and clients of every server use it.
- pynats in a Go JetStream cluster: pynats does not run JetStream, and its clients use the Go
  cluster's (replicated) JetStream through the system account, as clients of a Go server do.
- A second JetStream server is refused with a log line, so no request is answered twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.js.errors import NoStreamResponseError, ServiceUnavailableError
from tests.support.cluster import Cluster, Member
from tests.support.waiting import wait_until


def jetstream_on(names: set[str], tmp: Path) -> Callable[[Member], str]:
    return lambda m: f'jetstream {{ store_dir: "{tmp / m.name}" }}\n' if m.name in names else ""


async def jetstream_ready(nc: Client, timeout: float = 20.0) -> None:
    """Until the cluster's JetStream answers (a Go meta group elects a leader first)."""
    js = nc.jetstream(timeout=1)

    async def answers() -> bool:
        try:
            await js.account_info()
        except (TimeoutError, nats.errors.TimeoutError, ServiceUnavailableError):
            return False
        except NoStreamResponseError:
            return False
        return True

    await wait_until(answers, timeout=timeout, step=0.2, what="JetStream to answer")


async def exercise_jetstream(nc: Client, tag: str, replicas: int = 1) -> None:
    """Streams, pull and push consumers, KV and object store through one client."""
    js = nc.jetstream(timeout=5)
    await js.add_stream(name=f"ORDERS_{tag}", subjects=[f"orders.{tag}.>"], num_replicas=replicas)
    for n in range(5):
        ack = await js.publish(f"orders.{tag}.new", b"order %d" % n)
        assert ack.seq == n + 1
    pull = await js.pull_subscribe(f"orders.{tag}.>", f"worker_{tag}")
    msgs = await pull.fetch(5, timeout=5)
    assert [m.data for m in msgs] == [b"order %d" % n for n in range(5)]
    assert {m.subject for m in msgs} == {f"orders.{tag}.new"}
    for m in msgs:
        await m.ack_sync()
    info = await js.consumer_info(f"ORDERS_{tag}", f"worker_{tag}")
    assert info.num_ack_pending == 0 and info.num_pending == 0
    push = await js.subscribe(f"orders.{tag}.>", durable=f"push_{tag}")
    first = await push.next_msg(timeout=5)
    assert first.data == b"order 0"
    await first.ack()
    await push.unsubscribe()

    kv = await js.create_key_value(bucket=f"CONFIG_{tag}", replicas=replicas)
    await kv.put("color", b"blue")
    await kv.put("color", b"green")
    entry = await kv.get("color")
    assert (entry.value, entry.revision) == (b"green", 2)

    obj = await js.create_object_store(bucket=f"FILES_{tag}", replicas=replicas)
    blob = bytes(range(256)) * 2000  # 512 KB: several chunks
    await obj.put("report.bin", blob)
    assert (await obj.get("report.bin")).data == blob


async def test_clients_of_every_server_use_the_one_pynats_jetstream(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory(["py", "go", "py"], start=False)
    cluster.extra = jetstream_on({"PY-1"}, tmp_path)
    for m in cluster:
        cluster.start(m)
    cluster.wait_formed()
    for member in cluster:
        nc = await nats.connect(member.url)
        try:
            await jetstream_ready(nc)
            await exercise_jetstream(nc, member.name.replace("-", "_"))
        finally:
            await nc.close()
    # Every stream lives on the one JetStream server.
    streams = cluster[0].http_json("/jsz")["streams"]
    assert streams == 3 * 3  # ORDERS, KV_CONFIG and OBJ_FILES per client


async def test_a_pynats_server_gives_its_clients_the_go_clusters_jetstream(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory(["go", "go", "go", "py"], start=False)
    cluster.extra = jetstream_on({"GO-1", "GO-2", "GO-3"}, tmp_path)
    for m in cluster:
        cluster.start(m)
    cluster.wait_formed()
    ours = cluster[3]
    info = ours.http_json("/varz")
    assert not info.get("jetstream", {}).get("config")  # no JetStream of its own
    nc = await nats.connect(ours.url)
    try:
        await jetstream_ready(nc, timeout=30)
        await exercise_jetstream(nc, "MIXED", replicas=3)
    finally:
        await nc.close()


@pytest.mark.parametrize("kinds", [["py", "py"], ["py", "go", "py"]], ids=["py-py", "py-go-py"])
async def test_a_second_jetstream_server_is_refused_and_nothing_answers_twice(
    cluster_factory: Callable[..., Cluster], tmp_path: Path, kinds: list[str]
) -> None:
    cluster = cluster_factory(kinds, start=False)
    pynats = [m for m in cluster if m.kind == "py"]
    cluster.extra = jetstream_on({m.name for m in pynats}, tmp_path)
    first, second = pynats
    cluster.start(first)
    first.server.wait_for_log("Server is ready")  # type: ignore[union-attr]
    for m in cluster:
        if m is not first:
            cluster.start(m)
    cluster.wait_formed()
    assert second.server is not None and first.server is not None
    second.server.wait_for_log(r"JetStream disabled on this server: server .PY-1. started", 10)
    assert "JetStream disabled" not in first.server.log_text()
    nc = await nats.connect(cluster[-1].url)
    try:
        inbox = nc.new_inbox()
        replies = await nc.subscribe(inbox)
        await nc.publish("$JS.API.INFO", b"", reply=inbox)
        await replies.next_msg(timeout=3)
        with pytest.raises(nats.errors.TimeoutError):
            await replies.next_msg(timeout=0.5)
        await exercise_jetstream(nc, "ONCE")
    finally:
        await nc.close()
    assert first.http_json("/jsz")["streams"] == 3


async def test_pynats_refuses_its_jetstream_inside_a_go_jetstream_cluster(
    cluster_factory: Callable[..., Cluster], tmp_path: Path
) -> None:
    cluster = cluster_factory(["go", "go", "go", "py"], start=False)
    cluster.extra = jetstream_on({m.name for m in cluster}, tmp_path)
    for m in cluster:
        cluster.start(m)
    cluster.wait_formed()
    ours = cluster[3]
    assert ours.server is not None
    ours.server.wait_for_log(r"JetStream disabled on this server: server .GO-\d. runs", 10)
    nc = await nats.connect(ours.url)
    try:
        await jetstream_ready(nc, timeout=30)
        js = nc.jetstream(timeout=5)
        await js.add_stream(name="GOSTREAM", subjects=["go.>"], num_replicas=3)
        ack = await js.publish("go.1", b"x")
        assert ack.stream == "GOSTREAM"
        await asyncio.sleep(0)
    finally:
        await nc.close()
