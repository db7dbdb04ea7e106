"""Acknowledgements through nats-py (`ack`, `ack_sync`, `nak(delay=)`, `in_progress`, `term`)
and raw ack payloads; redelivery after `ack_wait` and `backoff`, `max_deliver`, the
advisories they raise. Timing tests wait on the condition and check the time it took."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import nats.errors
import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from tests.conftest import connect
from tests.integration.jetstream.consumers import (
    MS,
    NS,
    ack_meta,
    add_consumer,
    consumer_info,
    inbox,
    publish,
)

from pynats.jetstream.acks import account_hash


def explicit(**kwargs) -> ConsumerConfig:
    return ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, **kwargs)


async def test_ack_sync_is_answered_and_moves_the_ack_floor(js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 3)
    sub = await js.pull_subscribe(sname, durable="C", config=explicit())
    msgs = await sub.fetch(3, timeout=2)
    reply = await msgs[0].ack_sync(timeout=2)
    assert reply.data == b""
    info = await sub.consumer_info()
    assert (info.ack_floor.stream_seq, info.ack_floor.consumer_seq) == (1, 1)
    assert info.num_ack_pending == 2
    await msgs[2].ack_sync()
    info = await sub.consumer_info()
    assert info.ack_floor.stream_seq == 1, "the floor waits for the oldest pending"
    await msgs[1].ack_sync()
    info = await sub.consumer_info()
    assert (info.ack_floor.stream_seq, info.num_ack_pending) == (3, 0)


async def test_acking_twice_is_answered_but_acking_the_undelivered_is_not(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 2)
    await add_consumer(nc, sname, "C", ack_policy="explicit")
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 1})
    await box.wait_for(1)
    reply = box.msgs[0].reply
    assert (await nc.request(reply, b"+ACK", timeout=1)).data == b""
    assert (await nc.request(reply, b"+ACK", timeout=1)).data == b""
    undelivered = reply.replace(".1.1.1.", ".1.2.2.")
    with pytest.raises(nats.errors.TimeoutError):
        await nc.request(undelivered, b"+ACK", timeout=0.3)


async def test_a_client_listening_on_ack_subjects_gets_every_ack_on_its_subject(
    nc, js, sname
) -> None:
    """A consumer's acks are answered from one shared match while only the consumer listens;
    a client that subscribes to `$JS.ACK.>` (or part of it) then gets each ack on its own
    subject, and the consumer still gets them all."""
    await js.add_stream(name=sname)
    await publish(js, sname, 6)
    sub = await js.pull_subscribe(sname, durable="C", config=explicit())
    for msg in await sub.fetch(2, timeout=2):
        await msg.ack_sync()  # the consumer alone: its shared answer is in use
    everything = await nc.subscribe(f"$JS.ACK.{sname}.>")
    first_deliveries = await nc.subscribe(f"$JS.ACK.{sname}.C.1.*.4.>")
    msgs = await sub.fetch(4, timeout=2)
    for msg in msgs:
        await msg.ack_sync()
    seen = [(await everything.next_msg(timeout=2)).subject for _ in msgs]
    assert seen == [m.reply for m in msgs]
    only = await first_deliveries.next_msg(timeout=2)
    assert only.subject == msgs[1].reply  # consumer sequence 4
    with pytest.raises(nats.errors.TimeoutError):
        await first_deliveries.next_msg(timeout=0.2)
    info = await sub.consumer_info()
    assert (info.num_ack_pending, info.ack_floor.stream_seq) == (0, 6)


async def test_ack_none_consumers_take_no_acks(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 1)
    await add_consumer(nc, sname, "C", ack_policy="none")
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 1})
    await box.wait_for(1)
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request(box.msgs[0].reply, b"", timeout=1)
    info = await consumer_info(nc, sname, "C")
    assert info["ack_floor"]["stream_seq"] == 1 and info["num_ack_pending"] == 0


async def test_nak_redelivers_at_once_with_a_new_consumer_sequence(js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 1)
    sub = await js.pull_subscribe(sname, durable="C", config=explicit())
    (msg,) = await sub.fetch(1, timeout=2)
    await msg.nak()
    (again,) = await sub.fetch(1, timeout=2)
    assert again.data == msg.data
    assert (again.metadata.num_delivered, again.metadata.sequence.consumer) == (2, 2)
    assert again.metadata.sequence.stream == 1
    info = await sub.consumer_info()
    assert (info.num_redelivered, info.delivered.consumer_seq) == (1, 2)


async def test_nak_with_delay_waits_that_long(js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 1)
    sub = await js.pull_subscribe(sname, durable="C", config=explicit())
    (msg,) = await sub.fetch(1, timeout=2)
    naked_at = time.monotonic()
    await msg.nak(delay=0.4)
    with pytest.raises(nats.errors.TimeoutError):
        await sub.fetch(1, timeout=0.2)
    (again,) = await sub.fetch(1, timeout=2)
    assert time.monotonic() - naked_at >= 0.39
    assert again.metadata.num_delivered == 2


async def test_redelivery_after_ack_wait(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 2)
    await add_consumer(nc, sname, "C", ack_policy="explicit", ack_wait=300 * MS)
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 4, "expires": 3 * NS})
    delivered_at = time.monotonic()
    await box.wait_for(2)
    await box.msgs[0].ack()
    await box.wait_for(3)
    took = time.monotonic() - delivered_at
    again = box.msgs[2]
    assert again.data == b"m1", "only the unacked message comes back"
    assert 0.28 <= took < 2.0
    assert ack_meta(again) == {"deliveries": 2, "stream_seq": 2, "consumer_seq": 3, "pending": 0}
    info = await consumer_info(nc, sname, "C")
    assert (info["num_redelivered"], info["num_ack_pending"]) == (1, 1)


async def test_in_progress_restarts_the_ack_wait(js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 1)
    sub = await js.pull_subscribe(sname, durable="C", config=explicit(ack_wait=0.4))
    (msg,) = await sub.fetch(1, timeout=2)
    start = time.monotonic()
    for _ in range(3):
        await asyncio.sleep(0.2)
        await msg.in_progress()
    with pytest.raises(nats.errors.TimeoutError):
        await sub.fetch(1, timeout=0.25)
    (again,) = await sub.fetch(1, timeout=2)
    assert time.monotonic() - start >= 0.95, "kept alive by +WPI past two ack waits"
    assert again.metadata.num_delivered == 2


async def test_term_stops_redelivery_and_says_why(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 1)
    events = await inbox(nc, f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{sname}.C")
    await add_consumer(nc, sname, "C", ack_policy="explicit", ack_wait=200 * MS)
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 1})
    await box.wait_for(1)
    reply = await nc.request(box.msgs[0].reply, b"+TERM not for me", timeout=1)
    assert reply.data == b""
    await events.wait_for(1)
    body = json.loads(events.msgs[0].data)
    assert body["type"] == "io.nats.jetstream.advisory.v1.terminated"
    assert (body["stream_seq"], body["deliveries"], body["reason"]) == (1, 1, "not for me")
    await box.pull(sname, "C", {"batch": 1, "expires": 500 * MS})
    await box.wait_for(2)
    assert box.statuses == ["408 Request Timeout"]
    info = await consumer_info(nc, sname, "C")
    assert (info["num_ack_pending"], info["ack_floor"]["stream_seq"]) == (0, 1)


async def test_term_through_nats_py(js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 1)
    sub = await js.pull_subscribe(sname, durable="C", config=explicit(ack_wait=0.2))
    (msg,) = await sub.fetch(1, timeout=2)
    await msg.term()
    with pytest.raises(nats.errors.TimeoutError):
        await sub.fetch(1, timeout=0.5)


async def test_ack_all_acks_everything_up_to_the_message(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 4)
    await add_consumer(nc, sname, "C", ack_policy="all")
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 4})
    await box.wait_for(4)
    await nc.request(box.msgs[2].reply, b"+ACK", timeout=1)
    info = await consumer_info(nc, sname, "C")
    assert (info["ack_floor"]["stream_seq"], info["num_ack_pending"]) == (3, 1)


async def test_ack_next_acks_and_pulls(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 4)
    await add_consumer(nc, sname, "C", ack_policy="explicit")
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 1})
    await box.wait_for(1)
    await nc.publish(box.msgs[0].reply, b"+NXT 2", reply=box.subject)
    await box.wait_for(3)
    assert [m.data for m in box.msgs] == [b"m0", b"m1", b"m2"]
    info = await consumer_info(nc, sname, "C")
    assert (info["ack_floor"]["stream_seq"], info["num_ack_pending"]) == (1, 2)


async def test_the_v2_ack_subject_is_accepted(nc, js, sname) -> None:
    """`$JS.ACK.<domain or _>.<account hash>.<stream>.<consumer>...`"""
    await js.add_stream(name=sname)
    await publish(js, sname, 1)
    await add_consumer(nc, sname, "C", ack_policy="explicit")
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 1})
    await box.wait_for(1)
    tokens = box.msgs[0].reply.split(".")
    v2 = ".".join([*tokens[:2], "_", account_hash("$G"), *tokens[2:]])
    assert (await nc.request(v2, b"+ACK", timeout=1)).data == b""
    assert (await consumer_info(nc, sname, "C"))["num_ack_pending"] == 0


async def test_backoff_gaps_are_respected(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 1)
    await add_consumer(
        nc, sname, "C", ack_policy="explicit", backoff=[150 * MS, 450 * MS], max_deliver=3
    )
    box = await inbox(nc)
    stamps: list[float] = []
    await box.pull(sname, "C", {"batch": 3, "expires": 3 * NS})
    for n in (1, 2, 3):
        await box.wait_for(n, timeout=3)
        stamps.append(time.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert gaps[0] >= 0.13 and gaps[1] >= 0.42, gaps


async def test_max_deliver_stops_redelivery_with_an_advisory(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 1)
    events = await inbox(nc, f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{sname}.C")
    await add_consumer(nc, sname, "C", ack_policy="explicit", ack_wait=150 * MS, max_deliver=2)
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 5, "expires": 1500 * MS})
    await events.wait_for(1, timeout=3)
    body = json.loads(events.msgs[0].data)
    assert body["type"] == "io.nats.jetstream.advisory.v1.max_deliver"
    assert (body["stream_seq"], body["deliveries"]) == (1, 2)
    await box.wait_for(3, timeout=3)
    assert [ack_meta(m)["deliveries"] for m in box.data] == [1, 2]
    assert box.statuses == ["408 Request Timeout"]
    info = await consumer_info(nc, sname, "C")
    assert (info["num_ack_pending"], info["num_redelivered"]) == (0, 1)


async def test_ack_metrics_are_sampled(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 2)
    metrics = await inbox(nc, f"$JS.EVENT.METRIC.CONSUMER.ACK.{sname}.C")
    await add_consumer(nc, sname, "C", ack_policy="explicit", sample_freq="100%")
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 2})
    await box.wait_for(2)
    for m in box.msgs:
        await nc.request(m.reply, b"", timeout=1)
    await metrics.wait_for(2)
    body = json.loads(metrics.msgs[0].data)
    assert body["type"] == "io.nats.jetstream.metric.v1.consumer_ack"
    assert (body["stream_seq"], body["consumer_seq"], body["deliveries"]) == (1, 1, 1)
    assert body["ack_time"] > 0


async def test_a_consumer_that_dies_mid_batch_has_its_messages_redelivered_to_another(
    js_server, js, sname
) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 10)
    config = explicit(ack_wait=0.3)
    worker1 = await connect(js_server.url)
    sub1 = await worker1.jetstream().pull_subscribe(sname, durable="W", config=config)
    got = await sub1.fetch(10, timeout=2)
    for msg in got[:4]:
        await msg.ack()
    await worker1.flush()
    await worker1.close()  # dies holding six unacked messages
    worker2 = await connect(js_server.url)
    try:
        sub2 = await worker2.jetstream().pull_subscribe(sname, durable="W", config=config)
        redelivered = []
        deadline = time.monotonic() + 5
        while len(redelivered) < 6 and time.monotonic() < deadline:
            try:
                batch = await sub2.fetch(10, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for msg in batch:
                redelivered.append(msg)
                await msg.ack()
        assert sorted(m.data for m in redelivered) == [b"m%d" % i for i in range(4, 10)]
        assert all(m.metadata.num_delivered == 2 for m in redelivered)
        info = await sub2.consumer_info()
        assert (info.num_ack_pending, info.ack_floor.stream_seq) == (0, 10)
    finally:
        await worker2.close()


async def test_nak_advisory(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 1)
    events = await inbox(nc, f"$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.{sname}.C")
    await add_consumer(nc, sname, "C", ack_policy="explicit")
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 1})
    await box.wait_for(1)
    await nc.publish(box.msgs[0].reply, b'-NAK {"delay": 5000000000}')
    await events.wait_for(1)
    body = json.loads(events.msgs[0].data)
    assert (body["type"], body["stream_seq"], body["deliveries"]) == (
        "io.nats.jetstream.advisory.v1.nak",
        1,
        1,
    )


async def test_redeliveries_keep_coming_while_unacked(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 1)
    await add_consumer(nc, sname, "C", ack_policy="explicit", ack_wait=100 * MS)
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 3, "expires": 3 * NS})
    await box.wait_for(3)
    assert [ack_meta(m)["deliveries"] for m in box.msgs] == [1, 2, 3]


async def test_exactly_once_with_msg_id_dedupe_and_double_acks(js, sname) -> None:
    """A publisher that retries with the same Nats-Msg-Id stores the message once; a worker
    whose ack was confirmed never sees it again."""
    await js.add_stream(name=sname)
    acks = [await js.publish(sname, b"order-17", headers={"Nats-Msg-Id": "order-17"})]
    for _ in range(2):  # the retries of a publisher that did not hear the first ack
        acks.append(await js.publish(sname, b"order-17", headers={"Nats-Msg-Id": "order-17"}))
    assert [a.duplicate for a in acks] == [None, True, True]
    assert {a.seq for a in acks} == {1}
    sub = await js.pull_subscribe(sname, durable="W", config=explicit(ack_wait=0.3))
    (msg,) = await sub.fetch(5, timeout=1)
    await msg.ack_sync()
    with pytest.raises(nats.errors.TimeoutError):
        await sub.fetch(1, timeout=0.6)  # past the ack wait: confirmed means done
