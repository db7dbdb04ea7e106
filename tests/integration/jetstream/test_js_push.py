"""Push consumers: nats-py `subscribe` (with and without a queue group, ordered), delivery
only while the deliver subject has interest, flow control, idle heartbeats, rate limit,
replay at the original pace, and the cleanup of abandoned ephemerals."""

from __future__ import annotations

import asyncio
import time

from nats.js.api import AckPolicy, ConsumerConfig
from tests.integration.jetstream.consumers import (
    MS,
    NS,
    ack_meta,
    add_consumer,
    consumer_info,
    inbox,
    publish,
    status_of,
)
from tests.support.waiting import wait_until


async def test_subscribe_delivers_and_auto_acks(js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 5)
    got: list[bytes] = []
    sub = await js.subscribe(sname, durable="P", cb=lambda m: _append(got, m))
    await wait_until(lambda: len(got) == 5, timeout=3)
    assert got == [b"m%d" % i for i in range(5)]

    async def all_acked() -> bool:
        info = await sub.consumer_info()
        return info.num_ack_pending == 0 and info.ack_floor.stream_seq == 5

    await wait_until(all_acked, timeout=3)
    info = await sub.consumer_info()
    assert info.push_bound is True
    await sub.unsubscribe()


async def _append(box: list[bytes], msg) -> None:
    box.append(msg.data)


async def test_delivery_waits_for_interest(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 3)
    deliver = f"{sname}.deliver"
    created = await add_consumer(nc, sname, "P", ack_policy="none", deliver_subject=deliver)
    assert "push_bound" not in created
    info = await consumer_info(nc, sname, "P")
    assert info["delivered"]["stream_seq"] == 0, "nobody listens: nothing is sent"
    box = await inbox(nc, deliver)
    await box.wait_for(3)
    assert [m.data for m in box.msgs] == [b"m0", b"m1", b"m2"]
    assert [m.subject for m in box.msgs] == [sname] * 3, "the stored subject, not the inbox"
    assert (await consumer_info(nc, sname, "P"))["push_bound"] is True
    await box.stop()

    async def unbound() -> bool:
        return "push_bound" not in await consumer_info(nc, sname, "P")

    await wait_until(unbound, timeout=3)
    await js.publish(sname, b"while away")
    box = await inbox(nc, deliver)
    await box.wait_for(1)
    assert box.msgs[0].data == b"while away"


async def test_queue_group_members_share_the_messages(js, sname) -> None:
    await js.add_stream(name=sname)
    a: list[bytes] = []
    b: list[bytes] = []
    await js.subscribe(sname, queue="workers", cb=lambda m: _append(a, m))
    await js.subscribe(sname, queue="workers", cb=lambda m: _append(b, m))
    await publish(js, sname, 40)
    await wait_until(lambda: len(a) + len(b) == 40, timeout=5)
    assert sorted(a + b) == sorted(b"m%d" % i for i in range(40)), "each message once"
    assert a and b, "both members got work"


async def test_idle_heartbeats_name_the_last_delivered_sequences(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 2)
    deliver = f"{sname}.hb"
    box = await inbox(nc, deliver)
    await add_consumer(
        nc, sname, "P", ack_policy="none", deliver_subject=deliver, idle_heartbeat=150 * MS
    )
    await box.wait_for(4, timeout=3)
    beats = [m for m in box.msgs if status_of(m) == "100 Idle Heartbeat"]
    assert beats, box.msgs
    assert beats[0].headers["Nats-Last-Consumer"] == "2"
    assert beats[0].headers["Nats-Last-Stream"] == "2"
    assert beats[0].reply in ("", None)


async def test_flow_control_stalls_until_the_client_answers(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    payload = b"z" * 100_000
    for _ in range(30):
        await js.publish(sname, payload)
    deliver = f"{sname}.fc"
    box = await inbox(nc, deliver)
    await add_consumer(
        nc,
        sname,
        "P",
        ack_policy="none",
        deliver_subject=deliver,
        flow_control=True,
        idle_heartbeat=200 * MS,
    )

    def fc_requests() -> list:
        return [m for m in box.msgs if status_of(m) == "100 FlowControl Request"]

    await wait_until(lambda: fc_requests(), timeout=3)
    request = fc_requests()[0]
    assert request.reply.startswith(f"$JS.FC.{sname}.P.")
    # not answered: delivery stops short of the whole stream, heartbeats say it is stalled
    await wait_until(
        lambda: any(
            m.headers and m.headers.get("Nats-Consumer-Stalled") == request.reply for m in box.msgs
        ),
        timeout=3,
    )
    stalled_at = len(box.data)
    assert stalled_at < 30
    await nc.publish(request.reply, b"")
    await wait_until(lambda: len(box.data) == 30 or fc_requests()[-1] is not request, timeout=3)
    assert len(box.data) > stalled_at


async def test_ordered_consumer_reads_everything_in_order(js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 50)
    sub = await js.subscribe(sname, ordered_consumer=True)
    seen = []
    for _ in range(50):
        msg = await sub.next_msg(timeout=2)
        seen.append(msg.data)
    assert seen == [b"m%d" % i for i in range(50)]
    info = await sub.consumer_info()
    assert info.config.ack_policy == AckPolicy.NONE and info.config.mem_storage is True
    await sub.unsubscribe()


async def test_ephemeral_push_consumer_goes_when_its_subscriber_leaves(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    sub = await js.subscribe(
        sname, config=ConsumerConfig(inactive_threshold=0.3, ack_policy=AckPolicy.NONE)
    )
    name = sub._consumer
    assert "error" not in await consumer_info(nc, sname, name)
    await sub.unsubscribe()

    async def gone() -> bool:
        return "error" in await consumer_info(nc, sname, name)

    await wait_until(gone, timeout=5)


async def test_rate_limit_paces_delivery(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    payload = b"r" * 100_000
    for _ in range(30):
        await js.publish(sname, payload)
    deliver = f"{sname}.rate"
    box = await inbox(nc, deliver)
    began = time.monotonic()
    await add_consumer(
        nc, sname, "P", ack_policy="none", deliver_subject=deliver, rate_limit_bps=16_000_000
    )
    await box.wait_for(30, timeout=5)
    took = time.monotonic() - began
    # 3 MB at 2 MB/s after a burst of one maximum payload (1 MB): about a second
    assert took >= 0.8, took


async def test_replay_original_keeps_the_gaps(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await js.publish(sname, b"first")
    await asyncio.sleep(0.4)
    await js.publish(sname, b"second")
    deliver = f"{sname}.replay"
    box = await inbox(nc, deliver)
    await add_consumer(
        nc, sname, "P", ack_policy="none", deliver_subject=deliver, replay_policy="original"
    )
    await box.wait_for(1)
    first_at = time.monotonic()
    await box.wait_for(2)
    assert time.monotonic() - first_at >= 0.35
    instant = f"{sname}.instant"
    fast = await inbox(nc, instant)
    await add_consumer(nc, sname, "Q", ack_policy="none", deliver_subject=instant)
    await fast.wait_for(2, timeout=1)


async def test_push_redelivery_and_ack_metadata(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 1)
    deliver = f"{sname}.re"
    box = await inbox(nc, deliver)
    await add_consumer(nc, sname, "P", ack_policy="explicit", deliver_subject=deliver, ack_wait=NS)
    await box.wait_for(1)
    await nc.publish(box.msgs[0].reply, b"-NAK")
    await box.wait_for(2)
    assert ack_meta(box.msgs[1])["deliveries"] == 2
