"""Retention and consumers: interest streams keep a message until every consumer that
wants it acknowledged it; work-queue streams drop it on the first ack."""

from __future__ import annotations

from tests.integration.jetstream.conftest import api
from tests.integration.jetstream.consumers import add_consumer, inbox, publish
from tests.support.waiting import wait_until


async def stream_msgs(js, name: str) -> int:
    return (await js.stream_info(name)).state.messages


async def test_interest_stream_keeps_a_message_until_every_consumer_acked(nc, js, sname) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.>"], retention="interest")
    await js.publish(f"{sname}.a", b"nobody wants me")
    assert await stream_msgs(js, sname) == 0, "no consumer: not kept"
    await add_consumer(nc, sname, "one", ack_policy="explicit")
    await add_consumer(nc, sname, "two", ack_policy="explicit")
    await add_consumer(nc, sname, "only_b", ack_policy="explicit", filter_subject=f"{sname}.b")
    await publish(js, f"{sname}.a", 2)
    assert await stream_msgs(js, sname) == 2
    one, two = await inbox(nc), await inbox(nc)
    await one.pull(sname, "one", {"batch": 2})
    await two.pull(sname, "two", {"batch": 2})
    await one.wait_for(2)
    await two.wait_for(2)
    for m in one.msgs:
        await nc.request(m.reply, b"", timeout=1)
    assert await stream_msgs(js, sname) == 2, "'two' still needs them"
    await nc.request(two.msgs[0].reply, b"", timeout=1)
    assert await stream_msgs(js, sname) == 1
    await nc.request(two.msgs[1].reply, b"", timeout=1)
    assert await stream_msgs(js, sname) == 0


async def test_deleting_the_last_interested_consumer_releases_its_messages(nc, js, sname) -> None:
    await js.add_stream(name=sname, retention="interest")
    await add_consumer(nc, sname, "c", ack_policy="explicit")
    await publish(js, sname, 3)
    assert await stream_msgs(js, sname) == 3
    await api(nc, f"$JS.API.CONSUMER.DELETE.{sname}.c")
    assert await stream_msgs(js, sname) == 0


async def test_interest_with_ack_none_counts_delivery_as_ack(nc, js, sname) -> None:
    await js.add_stream(name=sname, retention="interest")
    await add_consumer(nc, sname, "c", ack_policy="none")
    await publish(js, sname, 2)
    box = await inbox(nc)
    await box.pull(sname, "c", {"batch": 2})
    await box.wait_for(2)

    async def empty() -> bool:
        return await stream_msgs(js, sname) == 0

    await wait_until(empty, timeout=3)


async def test_work_queue_drops_a_message_on_ack(js, sname) -> None:
    await js.add_stream(name=sname, retention="workqueue")
    await publish(js, sname, 3)
    sub = await js.pull_subscribe(sname, durable="w")
    msgs = await sub.fetch(3, timeout=2)
    await msgs[1].ack_sync()
    assert await stream_msgs(js, sname) == 2
    info = await js.stream_info(sname)
    assert info.state.num_deleted == 1
    await msgs[0].ack_sync()
    await msgs[2].term()

    async def empty() -> bool:
        return await stream_msgs(js, sname) == 0

    await wait_until(empty, timeout=3)


async def test_work_queue_with_filtered_consumers_splits_the_work(nc, js, sname) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.>"], retention="workqueue")
    a = await js.pull_subscribe(f"{sname}.a", durable="a")
    b = await js.pull_subscribe(f"{sname}.b", durable="b")
    await js.publish(f"{sname}.a", b"for a")
    await js.publish(f"{sname}.b", b"for b")
    (ma,) = await a.fetch(1, timeout=2)
    (mb,) = await b.fetch(1, timeout=2)
    assert (ma.data, mb.data) == (b"for a", b"for b")
    await ma.ack_sync()
    await mb.ack_sync()
    assert await stream_msgs(js, sname) == 0
