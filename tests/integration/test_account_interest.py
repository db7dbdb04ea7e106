"""Interest across accounts: a stream import exists in the exporter only while the importer
has a subscriber (nats-server's shadow subscriptions), against pynats and the Go nats-server
with the same config file.

Account A exports `ev.>` (imported by B under the prefix `fromA`) and `deliver.>` (imported
as is: the deliver subjects of A's push consumers). What the tests assert is what the Go
server does: a push consumer is bound only while B subscribes, an interest-retention stream
keeps its messages until then, overlapping subscriptions in B get one copy each, a queue group
in B stays one group, `/subsz` counts the shadow, and across a cluster A's messages reach B on
another server only while B is subscribed there.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.js.api import ConsumerConfig, RetentionPolicy, StreamConfig
from tests.conftest import connect
from tests.support.cluster import make_cluster
from tests.support.leafs import MIXES, make_leaf_pair, mix_id
from tests.support.ports import free_port
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

ACCOUNTS = """
accounts {
  A {
    users [{user: a, password: a}]
    jetstream: enabled
    exports [{stream: "ev.>"}, {stream: "deliver.>"}]
  }
  B {
    users [{user: b, password: b}]
    imports [
      {stream: {account: A, subject: "ev.>"}, prefix: "fromA"}
      {stream: {account: A, subject: "deliver.>"}}
    ]
  }
}
"""


@pytest.fixture(scope="module", params=["pynats", "go"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    base = Path(tmp_path_factory.mktemp(f"interest-{request.param}"))
    path = base / "server.conf"
    path.write_text(f'jetstream {{ store_dir: "{base / "js"}" }}\n' + ACCOUNTS)
    srv = start_server(["-c", str(path)], oracle=request.param == "go", http_port=free_port())
    yield srv
    srv.stop()


def url(srv: RunningServer | Any, user: str) -> str:
    return f"nats://{user}:{user}@127.0.0.1:{srv.port if hasattr(srv, 'port') else srv}"


def http_json(srv: RunningServer, path: str) -> Any:
    with urllib.request.urlopen(srv.monitor_url + path, timeout=5) as r:
        return json.loads(r.read())


async def test_push_consumer_is_bound_only_while_the_importer_subscribes(
    server: RunningServer,
) -> None:
    a = await connect(url(server, "a"))
    b = await connect(url(server, "b"))
    try:
        js = a.jetstream()
        await js.add_stream(StreamConfig(name="BOUND", subjects=["bound.>"]))
        await js.add_consumer(
            "BOUND", ConsumerConfig(durable_name="C", deliver_subject="deliver.bound")
        )

        async def bound() -> bool:
            return bool((await js.consumer_info("BOUND", "C")).push_bound)

        assert not await bound()
        sub = await b.subscribe("deliver.bound")
        await b.flush()
        await wait_until(bound, 3, "push_bound once B subscribes")
        await sub.unsubscribe()
        await b.flush()
        await wait_until(lambda: _not(bound), 3, "push_bound false once B has left")
    finally:
        await a.close()
        await b.close()


async def _not(fn: Any) -> bool:
    return not await fn()


async def test_interest_stream_keeps_messages_until_the_importer_subscribes(
    server: RunningServer,
) -> None:
    a = await connect(url(server, "a"))
    b = await connect(url(server, "b"))
    try:
        js = a.jetstream()
        await js.add_stream(
            StreamConfig(name="INT", subjects=["int.>"], retention=RetentionPolicy.INTEREST)
        )
        await js.add_consumer(
            "INT",
            ConsumerConfig(durable_name="C", deliver_subject="deliver.int", ack_policy="none"),
        )
        for i in range(3):
            await js.publish(f"int.{i}", b"m%d" % i)
        kept = (await js.stream_info("INT")).state.messages
        got: list[tuple[str, bytes]] = []

        async def take(msg: Any) -> None:
            got.append((msg.subject, msg.data))

        await b.subscribe("deliver.int", cb=take)
        await b.flush()
        await wait_until(lambda: len(got) == 3, 5, "the three messages in B")

        async def left() -> int:
            return int((await js.stream_info("INT")).state.messages)

        await wait_until(lambda: _is_zero(left), 5, "interest stream emptied")
        assert kept == 3
        assert got == [("int.0", b"m0"), ("int.1", b"m1"), ("int.2", b"m2")]
    finally:
        await a.close()
        await b.close()


async def _is_zero(fn: Any) -> bool:
    return await fn() == 0


async def test_overlapping_subscriptions_in_the_importer_get_one_copy_each(
    server: RunningServer,
) -> None:
    a = await connect(url(server, "a"))
    b = await connect(url(server, "b"))
    try:
        seen: dict[str, list[str]] = {}

        def collector(name: str) -> Any:
            seen[name] = []

            async def cb(msg: Any) -> None:
                seen[name].append(msg.subject)

            return cb

        for subject in ("fromA.ev.>", "fromA.ev.*", "fromA.ev.x", "fromA.>", ">"):
            await b.subscribe(subject, cb=collector(subject))
        await b.flush()
        await a.publish("ev.x", b"1")
        await a.publish("ev.y", b"2")
        await a.publish("ev.end", b"3")
        await a.flush()
        await wait_until(lambda: "fromA.ev.end" in seen[">"], 3, "the marker in B")
        assert seen == {
            "fromA.ev.>": ["fromA.ev.x", "fromA.ev.y", "fromA.ev.end"],
            "fromA.ev.*": ["fromA.ev.x", "fromA.ev.y", "fromA.ev.end"],
            "fromA.ev.x": ["fromA.ev.x"],
            "fromA.>": ["fromA.ev.x", "fromA.ev.y", "fromA.ev.end"],
            ">": ["fromA.ev.x", "fromA.ev.y", "fromA.ev.end"],
        }
    finally:
        await a.close()
        await b.close()


async def test_queue_group_in_the_importer_takes_each_message_once(
    server: RunningServer,
) -> None:
    a = await connect(url(server, "a"))
    members = [await connect(url(server, "b")) for _ in range(3)]
    plain = await connect(url(server, "b"))
    try:
        queued: list[str] = []
        everything: list[str] = []

        async def take_queued(msg: Any) -> None:
            queued.append(msg.data.decode())

        async def take_plain(msg: Any) -> None:
            everything.append(msg.data.decode())

        for nc in members:
            await nc.subscribe("fromA.ev.>", queue="workers", cb=take_queued)
            await nc.flush()
        await plain.subscribe("fromA.ev.>", cb=take_plain)
        await plain.flush()
        for i in range(30):
            await a.publish(f"ev.q.{i}", str(i).encode())
        await a.flush()
        await wait_until(lambda: len(everything) == 30, 5, "30 messages to the plain subscriber")
        await wait_until(lambda: len(queued) >= 30, 5, "30 messages to the queue group")
        for nc in members:
            await nc.flush()
        assert sorted(queued, key=int) == [str(i) for i in range(30)]
    finally:
        for nc in [a, plain, *members]:
            await nc.close()


async def test_subsz_counts_the_shadow_and_connz_lists_only_the_subscription(
    server: RunningServer,
) -> None:
    b = await connect(url(server, "b"), name="importer")
    try:
        before = http_json(server, "/subsz")["num_subscriptions"]
        await b.subscribe("fromA.ev.counted")
        await b.flush()
        # the subscription in B and its shadow in A (the Go server may count them one at a time)
        assert await wait_until(
            lambda: http_json(server, "/subsz")["num_subscriptions"] - before == 2, 3, "subsz"
        )
        conns = http_json(server, "/connz?subs=1")["connections"]
        mine = [c for c in conns if c.get("name") == "importer"]
        assert mine[0]["subscriptions_list"] == ["fromA.ev.counted"]
        assert mine[0]["subscriptions"] == 1
    finally:
        await b.close()
    gone = await wait_until(
        lambda: http_json(server, "/subsz")["num_subscriptions"] == before, 3, "subsz after"
    )
    assert gone


@pytest.mark.parametrize("kinds", [["py", "py"], ["py", "go"], ["go", "py"]])
async def test_across_a_cluster_the_importer_is_reached_only_while_subscribed(
    tmp_path: Path, kinds: list[str]
) -> None:
    cluster = make_cluster(
        kinds, tmp_path, extra=lambda m: ACCOUNTS.replace("jetstream: enabled", "")
    )
    try:
        cluster.wait_formed()
        pub = await connect(url(cluster[0].client_port, "a"))
        sub_side = await connect(url(cluster[1].client_port, "b"))
        try:
            assert await _no_interest(pub, "ev.cluster")
            got: list[str] = []

            async def take(msg: Any) -> None:
                got.append(msg.subject)

            sub = await sub_side.subscribe("fromA.ev.>", cb=take)
            await sub_side.flush()
            await wait_until(
                lambda: _reached(pub, "ev.cluster", got), 5, "A's message in B on the other server"
            )
            assert set(got) == {"fromA.ev.cluster"}
            await sub.unsubscribe()
            await sub_side.flush()
            await wait_until(
                lambda: _no_interest(pub, "ev.cluster"), 5, "no interest once B has left"
            )
        finally:
            await pub.close()
            await sub_side.close()
    finally:
        cluster.stop_all()


SHARED_JS = """
accounts {
  A {
    users [{user: a, password: a}]
    jetstream: enabled
    exports [
      {service: "$JS.API.>"}
      {service: "$JS.FC.>"}
      {service: "$JS.ACK.>"}
      {stream: "_INBOX_B.>"}
    ]
  }
  B {
    users [{user: b, password: b}]
    imports [
      {service: {account: A, subject: "$JS.API.>"}, to: "JS.A.API.>"}
      {service: {account: A, subject: "$JS.FC.>"}}
      {service: {account: A, subject: "$JS.ACK.>"}}
      {stream: {account: A, subject: "_INBOX_B.>"}}
    ]
  }
}
"""


@pytest.fixture(scope="module", params=["pynats", "go"])
def shared_js(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    base = Path(tmp_path_factory.mktemp(f"shared-js-{request.param}"))
    path = base / "server.conf"
    path.write_text(f'jetstream {{ store_dir: "{base / "js"}" }}\n' + SHARED_JS)
    srv = start_server(["-c", str(path)], oracle=request.param == "go")
    yield srv
    srv.stop()


async def test_kv_watch_and_history_across_accounts(shared_js: RunningServer) -> None:
    a = await connect(url(shared_js, "a"))
    b = await connect(url(shared_js, "b"), inbox_prefix="_INBOX_B")
    try:
        kv = await a.jetstream().create_key_value(bucket="CFG", history=5)
        await kv.put("k", b"1")
        await kv.put("k", b"2")
        kvb = await b.jetstream(prefix="JS.A.API").key_value("CFG")
        assert (await kvb.get("k")).value == b"2"
        watcher = await kvb.watchall()
        first = await watcher.updates(timeout=3)
        assert (first.key, first.value) == ("k", b"2")
        assert await watcher.updates(timeout=3) is None  # caught up
        await kv.put("k", b"3")
        third = await watcher.updates(timeout=3)
        assert (third.key, third.value) == ("k", b"3")
        await watcher.stop()
        history = await kvb.history("k")
        assert [e.value for e in history] == [b"1", b"2", b"3"]
    finally:
        await a.close()
        await b.close()


async def test_durable_push_consumer_binds_across_accounts(shared_js: RunningServer) -> None:
    a = await connect(url(shared_js, "a"))
    b = await connect(url(shared_js, "b"), inbox_prefix="_INBOX_B")
    try:
        js = a.jetstream()
        await js.add_stream(StreamConfig(name="ORD", subjects=["ord.>"]))
        await js.add_consumer(
            "ORD", ConsumerConfig(durable_name="D", deliver_subject="_INBOX_B.durable")
        )
        jsb = b.jetstream(prefix="JS.A.API")
        sub = await jsb.subscribe("ord.>", stream="ORD", durable="D", manual_ack=True)
        await js.publish("ord.1", b"one")
        msg = await sub.next_msg(timeout=3)
        assert (msg.subject, msg.data) == ("ord.1", b"one")
        await msg.ack_sync(timeout=3)
        info = await js.consumer_info("ORD", "D")
        assert info.push_bound
        assert info.num_ack_pending == 0
        await sub.unsubscribe()
        await b.flush()

        async def unbound() -> bool:
            return not (await js.consumer_info("ORD", "D")).push_bound

        await wait_until(unbound, 3, "push_bound false once B has left")
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("mix", MIXES, ids=mix_id)
async def test_a_leaf_subscriber_of_the_importer_is_reached_only_while_subscribed(
    tmp_path: Path, mix: tuple[str, str]
) -> None:
    """The hub shadows the subscription its leaf (bound to B) made: A's messages reach the
    leaf's client under B's subject, and A has interest only while it is there."""
    pair = make_leaf_pair(
        mix[0],
        mix[1],
        tmp_path,
        hub_extra=ACCOUNTS.replace("jetstream: enabled", ""),
        remote=lambda hub: f'{{ url: "nats-leaf://b:b@127.0.0.1:{hub.leaf_port}" }}',
    )
    try:
        pair.wait_connected()
        pub = await connect(f"nats://a:a@127.0.0.1:{pair.hub.client_port}")
        leaf_client = await connect(pair.leaf.url)
        try:
            assert await _no_interest(pub, "ev.leaf")
            got: list[str] = []

            async def take(msg: Any) -> None:
                got.append(msg.subject)

            sub = await leaf_client.subscribe("fromA.ev.>", cb=take)
            await leaf_client.flush()
            await wait_until(lambda: _reached(pub, "ev.leaf", got), 5, "A's message on the leaf")
            assert set(got) == {"fromA.ev.leaf"}
            await sub.unsubscribe()
            await leaf_client.flush()
            await wait_until(lambda: _no_interest(pub, "ev.leaf"), 5, "no interest once gone")
        finally:
            await pub.close()
            await leaf_client.close()
    finally:
        pair.stop_all()


async def _no_interest(pub: nats.NATS, subject: str) -> bool:
    """A request on `subject` is answered by the server's no-responders status."""
    try:
        await pub.request(subject, b"", timeout=0.5)
    except nats.errors.NoRespondersError:
        return True
    except nats.errors.TimeoutError:
        return False
    return False


async def _reached(pub: nats.NATS, subject: str, got: list[str]) -> bool:
    await pub.publish(subject, b"x")
    await pub.flush()
    await asyncio.sleep(0.05)  # a round for the message to arrive before polling again
    return bool(got)
