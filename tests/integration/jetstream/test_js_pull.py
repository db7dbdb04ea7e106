"""Pull consumers: `fetch` through nats-py, and raw `MSG.NEXT` requests with every way a
request can end (404, 408 with the pending counts, 409s, 400s, 100 heartbeats)."""

from __future__ import annotations

import asyncio
import time

import nats.errors
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from tests.integration.jetstream.conftest import api
from tests.integration.jetstream.consumers import (
    MS,
    NS,
    ack_meta,
    add_consumer,
    consumer_info,
    inbox,
    publish,
)


async def test_fetch_delivers_in_order_with_the_ack_metadata(js, sname) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.>"])
    await publish(js, f"{sname}.a", 5)
    sub = await js.pull_subscribe(f"{sname}.a", durable="worker")
    msgs = await sub.fetch(3, timeout=2)
    assert [m.data for m in msgs] == [b"m0", b"m1", b"m2"]
    assert [m.subject for m in msgs] == [f"{sname}.a"] * 3
    meta = msgs[0].metadata
    assert (meta.stream, meta.consumer, meta.num_delivered) == (sname, "worker", 1)
    assert (meta.sequence.stream, meta.sequence.consumer) == (1, 1)
    assert [m.metadata.num_pending for m in msgs] == [4, 3, 2]
    for m in msgs:
        await m.ack()
    rest = await sub.fetch(5, timeout=1)
    assert [m.data for m in rest] == [b"m3", b"m4"]
    assert rest[-1].metadata.num_pending == 0
    info = await sub.consumer_info()
    assert (info.num_ack_pending, info.num_pending) == (2, 0)
    assert info.delivered.stream_seq == 5


async def test_fetch_waits_for_new_messages(js, sname) -> None:
    await js.add_stream(name=sname)
    sub = await js.pull_subscribe(sname, durable="late")

    async def later() -> None:
        await asyncio.sleep(0.2)
        await js.publish(sname, b"arrived")

    task = asyncio.create_task(later())
    msgs = await sub.fetch(1, timeout=3)
    await task
    assert msgs[0].data == b"arrived"


async def test_fetch_times_out_on_an_empty_stream(js, sname) -> None:
    await js.add_stream(name=sname)
    sub = await js.pull_subscribe(sname, durable="idle")
    with pytest.raises(nats.errors.TimeoutError):
        await sub.fetch(1, timeout=0.5)


async def test_no_wait_answers_404_when_nothing_is_there(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await add_consumer(nc, sname, "C", ack_policy="explicit")
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 5, "no_wait": True})
    await box.wait_for(1)
    assert box.statuses == ["404 No Messages"]
    await publish(js, sname, 2)
    await box.pull(sname, "C", {"batch": 5, "no_wait": True})
    await box.wait_for(4)
    assert [m.data for m in box.data] == [b"m0", b"m1"]
    assert box.statuses == ["404 No Messages", "404 No Messages"], "drained: end of batch"


async def test_expired_request_ends_with_408_and_what_it_still_wanted(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 2)
    await add_consumer(nc, sname, "C", ack_policy="explicit")
    box = await inbox(nc)
    began = time.monotonic()
    await box.pull(sname, "C", {"batch": 5, "expires": 300 * MS})
    await box.wait_for(3)
    assert time.monotonic() - began >= 0.29
    status = box.msgs[-1]
    assert (status.headers["Status"], status.headers["Description"]) == ("408", "Request Timeout")
    assert status.headers["Nats-Pending-Messages"] == "3"
    assert status.headers["Nats-Pending-Bytes"] == "0"
    # no_wait with an expiry and nothing there waits like any other request
    await box.pull(sname, "C", {"batch": 2, "no_wait": True, "expires": 200 * MS})
    await box.wait_for(4)
    assert box.statuses[-1] == "408 Request Timeout"


async def test_max_bytes(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 3)
    await add_consumer(nc, sname, "C", ack_policy="explicit")
    box = await inbox(nc)
    # too small for even one message: the request ends
    await box.pull(sname, "C", {"batch": 5, "max_bytes": 10, "expires": NS})
    await box.wait_for(1)
    status = box.msgs[0]
    assert status.headers["Description"] == "Message Size Exceeds MaxBytes"
    assert (status.headers["Nats-Pending-Messages"], status.headers["Nats-Pending-Bytes"]) == (
        "5",
        "10",
    )
    # batch done with bytes to spare
    await box.pull(sname, "C", {"batch": 2, "max_bytes": 1000, "expires": NS})
    await box.wait_for(4)
    assert [m.data for m in box.data] == [b"m0", b"m1"]
    done = box.msgs[-1]
    assert done.headers["Description"] == "Batch Completed"
    used = sum(
        len(m.subject) + len(m.reply) + len(m.data) for m in box.data
    )  # subject + reply + payload, no headers here
    assert done.headers["Nats-Pending-Bytes"] == str(1000 - used)


async def test_request_limits_of_the_consumer(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await add_consumer(nc, sname, "C", max_batch=10, max_expires=NS, max_bytes=100)
    box = await inbox(nc)
    for body in (
        {"batch": 11},
        {"batch": 1, "expires": 2 * NS},
        {"batch": 1, "max_bytes": 101},
    ):
        await box.pull(sname, "C", body)
    await box.wait_for(3)
    assert box.statuses == [
        "409 Exceeded MaxRequestBatch of 10",
        "409 Exceeded MaxRequestExpires of 1s",
        "409 Exceeded MaxRequestMaxBytes of 100",
    ]


async def test_max_waiting(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await add_consumer(nc, sname, "C", max_waiting=1)
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 1, "expires": 2 * NS})
    await box.pull(sname, "C", {"batch": 1, "expires": 2 * NS})
    await box.wait_for(1)
    assert box.statuses == ["409 Exceeded MaxWaiting"]
    assert (await consumer_info(nc, sname, "C"))["num_waiting"] == 1


async def test_idle_heartbeats_while_a_request_waits(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 1)
    await add_consumer(nc, sname, "C", ack_policy="explicit")
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 2, "expires": NS, "idle_heartbeat": 200 * MS})
    await box.wait_for(3)
    beat = box.msgs[1]
    assert (beat.headers["Status"], beat.headers["Description"]) == ("100", "Idle Heartbeat")
    assert (beat.headers["Nats-Last-Consumer"], beat.headers["Nats-Last-Stream"]) == ("1", "1")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (
            b"{bad",
            "400 Bad Request - invalid character 'b' looking for beginning of object key string",
        ),
        (
            {"batch": 1.5},
            "400 Bad Request - json: cannot unmarshal number 1.5 into Go struct field .batch of type int",
        ),
        (
            {"batch": 1, "expires": NS, "idle_heartbeat": 600 * MS},
            "400 Bad Request - heartbeat value too large",
        ),
        ({"batch": 1, "idle_heartbeat": 100 * MS}, "400 Bad Request - heartbeat value too large"),
        ({"batch": 1, "expires": -5}, "408 Request Timeout"),
        (
            {"batch": 1, "group": 5},
            "400 Bad Request - json: cannot unmarshal number into Go struct field .group of type string",
        ),
        (
            {"batch": 1, "id": 1.5},
            "400 Bad Request - json: cannot unmarshal number into Go struct field .id of type string",
        ),
        (
            {"batch": 1, "group": [1]},
            "400 Bad Request - json: cannot unmarshal array into Go struct field .group of type string",
        ),
        (
            {"batch": 1, "no_wait": "x"},
            "400 Bad Request - json: cannot unmarshal string into Go struct field .no_wait of type bool",
        ),
    ],
)
async def test_bad_requests(nc, js, sname, body, status) -> None:
    await js.add_stream(name=sname)
    await add_consumer(nc, sname, "C")
    box = await inbox(nc)
    await box.pull(sname, "C", body)
    await box.wait_for(1)
    assert box.statuses == [status]


async def test_bodies_a_number_or_nothing(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 4)
    await add_consumer(nc, sname, "C", ack_policy="explicit")
    box = await inbox(nc)
    await box.pull(sname, "C", b"")
    await box.wait_for(1)
    await box.pull(sname, "C", b"2")
    await box.wait_for(3)
    assert [m.data for m in box.msgs] == [b"m0", b"m1", b"m2"]


async def test_waiting_requests_get_409_when_the_consumer_is_deleted(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await add_consumer(nc, sname, "C")
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 3, "expires": 5 * NS})
    await box.pull(sname, "C", {"batch": 3, "expires": 5 * NS})
    assert (await consumer_info(nc, sname, "C"))["num_waiting"] == 2
    r = await api(nc, f"$JS.API.CONSUMER.DELETE.{sname}.C")
    assert r["success"]
    await box.wait_for(2)
    assert box.statuses == ["409 Consumer Deleted", "409 Consumer Deleted"]


async def test_push_consumers_refuse_pull_requests(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await add_consumer(nc, sname, "P", deliver_subject=f"{sname}.push")
    box = await inbox(nc)
    await box.pull(sname, "P", {"batch": 1})
    await box.wait_for(1)
    assert box.statuses == ["409 Consumer is push based"]


async def test_requests_for_a_missing_consumer_get_no_responders(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request(f"$JS.API.CONSUMER.MSG.NEXT.{sname}.NOPE", b"1", timeout=1)


async def test_waiting_requests_take_new_messages_in_turn(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await add_consumer(nc, sname, "C", ack_policy="explicit")
    first, second = await inbox(nc), await inbox(nc)
    await first.pull(sname, "C", {"batch": 2, "expires": 3 * NS})
    await second.pull(sname, "C", {"batch": 2, "expires": 3 * NS})
    for i in range(4):
        await nc.request(sname, b"%d" % i, timeout=2)
    await first.wait_for(2)
    await second.wait_for(2)
    assert [m.data for m in first.data] == [b"0", b"2"]
    assert [m.data for m in second.data] == [b"1", b"3"]


async def test_a_request_whose_requester_left_is_dropped(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await add_consumer(nc, sname, "C")
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 1, "expires": 10 * NS})
    assert (await consumer_info(nc, sname, "C"))["num_waiting"] == 1
    await box.stop()
    assert (await consumer_info(nc, sname, "C"))["num_waiting"] == 0
    await js.publish(sname, b"x")
    info = await consumer_info(nc, sname, "C")
    assert (info["num_pending"], info["delivered"]["stream_seq"]) == (1, 0), "not delivered"


async def test_max_ack_pending_holds_back_new_messages(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 5)
    sub = await js.pull_subscribe(
        sname, durable="C", config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=2)
    )
    msgs = await sub.fetch(5, timeout=1)
    assert [m.data for m in msgs] == [b"m0", b"m1"]
    await msgs[0].ack()
    more = await sub.fetch(5, timeout=1)
    assert [m.data for m in more] == [b"m2"]


@pytest.mark.parametrize(
    ("config", "expected", "pending"),
    [
        ({"deliver_policy": "all"}, [b"a0", b"b1", b"a2", b"b3"], [3, 2, 1, 0]),
        ({"deliver_policy": "last"}, [b"b3"], [0]),
        ({"deliver_policy": "new"}, [], []),
        ({"deliver_policy": "by_start_sequence", "opt_start_seq": 3}, [b"a2", b"b3"], [1, 0]),
        ({"filter_subject": "{s}.a"}, [b"a0", b"a2"], [1, 0]),
        ({"filter_subjects": ["{s}.b", "{s}.c"]}, [b"b1", b"b3"], [1, 0]),
        (
            {"deliver_policy": "last_per_subject", "filter_subject": "{s}.*"},
            [b"a2", b"b3"],
            [1, 0],
        ),
        ({"deliver_policy": "last", "filter_subject": "{s}.a"}, [b"a2"], [0]),
    ],
)
async def test_deliver_policies_and_filters(nc, js, sname, config, expected, pending) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.>"])
    for i, key in enumerate("abab"):
        await js.publish(f"{sname}.{key}", b"%s%d" % (key.encode(), i))
    cfg = {
        k: [f.format(s=sname) for f in v] if isinstance(v, list) else v for k, v in config.items()
    }
    cfg = {k: v.format(s=sname) if isinstance(v, str) else v for k, v in cfg.items()}
    created = await add_consumer(nc, sname, "C", **cfg)
    assert created["num_pending"] == len(expected)
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 10, "no_wait": True})
    await box.wait_for(len(expected) + 1)
    assert [m.data for m in box.data] == expected
    assert [ack_meta(m)["pending"] for m in box.data] == pending


async def test_deliver_by_start_time(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await js.publish(sname, b"old")
    await asyncio.sleep(0.05)
    from pynats.gotime import rfc3339

    cutoff = rfc3339(time.time_ns())
    await js.publish(sname, b"new")
    await add_consumer(nc, sname, "C", deliver_policy="by_start_time", opt_start_time=cutoff)
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 5, "no_wait": True})
    await box.wait_for(2)
    assert [m.data for m in box.data] == [b"new"]


async def test_headers_only_delivers_the_size_instead_of_the_payload(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await js.publish(sname, b"x" * 1234, headers={"Kind": "big"})
    await add_consumer(nc, sname, "C", headers_only=True)
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 1})
    await box.wait_for(1)
    msg = box.msgs[0]
    assert msg.data == b""
    assert (msg.headers["Kind"], msg.headers["Nats-Msg-Size"]) == ("big", "1234")


async def test_overflow_priority_group_serves_only_when_the_backlog_is_large(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 3)
    await add_consumer(
        nc, sname, "C", ack_policy="explicit", priority_policy="overflow", priority_groups=["g"]
    )
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 1})
    await box.pull(sname, "C", {"batch": 1, "group": "h"})
    await box.pull(sname, "C", {"batch": 1, "group": "g", "min_pending": 10, "expires": 200 * MS})
    await box.wait_for(3)
    assert box.statuses == [
        "400 Bad Request - Priority Group missing",
        "400 Bad Request - Invalid Priority Group",
        "408 Request Timeout",
    ]
    await box.pull(sname, "C", {"batch": 1, "group": "g", "min_pending": 3})
    await box.wait_for(4)
    assert box.msgs[-1].data == b"m0"


async def test_pinned_client_group(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 4)
    await add_consumer(
        nc,
        sname,
        "C",
        ack_policy="explicit",
        priority_policy="pinned_client",
        priority_groups=["g"],
    )
    pinned, other = await inbox(nc), await inbox(nc)
    await pinned.pull(sname, "C", {"batch": 1, "group": "g"})
    await pinned.wait_for(1)
    pin = pinned.msgs[0].headers["Nats-Pin-Id"]
    assert len(pin) == 22
    await other.pull(sname, "C", {"batch": 1, "group": "g", "expires": 300 * MS})
    await other.pull(sname, "C", {"batch": 1, "group": "g", "id": "not-the-pin"})
    await other.wait_for(2)
    assert other.statuses == ["423 Nats-Pin-Id mismatch", "408 Request Timeout"]
    await pinned.pull(sname, "C", {"batch": 1, "group": "g", "id": pin})
    await pinned.wait_for(2)
    assert pinned.msgs[1].headers["Nats-Pin-Id"] == pin
    info = await consumer_info(nc, sname, "C")
    assert info["priority_groups"][0]["pinned_client_id"] == pin
    await api(nc, f"$JS.API.CONSUMER.UNPIN.{sname}.C", {"group": "g"}, check_schema=False)
    await pinned.pull(sname, "C", {"batch": 1, "group": "g", "id": pin})
    await pinned.wait_for(3)
    assert pinned.statuses == ["423 Nats-Wrong-Pin-Id"]
    await other.pull(sname, "C", {"batch": 1, "group": "g"})
    await other.wait_for(3)
    assert other.msgs[-1].headers["Nats-Pin-Id"] != pin


async def test_prioritized_group_refuses_out_of_range_priorities(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    # nats.py's schema predates the `prioritized` policy: not schema-checked
    body = {
        "stream_name": sname,
        "config": {"name": "C", "priority_policy": "prioritized", "priority_groups": ["g"]},
    }
    created = await api(nc, f"$JS.API.CONSUMER.CREATE.{sname}.C", body, check_schema=False)
    assert created["config"]["priority_policy"] == "prioritized"
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 1, "group": "g", "priority": 11})
    await box.wait_for(1)
    assert box.statuses == ["400 Bad Request - Priority must be between 0 and 9"]


async def test_fetch_through_nats_py_with_deliver_policy_new(js, sname) -> None:
    await js.add_stream(name=sname)
    await js.publish(sname, b"before")
    sub = await js.pull_subscribe(
        sname, durable="N", config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW)
    )
    await js.publish(sname, b"after")
    msgs = await sub.fetch(2, timeout=1)
    assert [m.data for m in msgs] == [b"after"]


async def test_garbage_requests_and_acks_leave_the_consumer_working(nc, js, sname) -> None:
    import random

    rng = random.Random(7)
    await js.add_stream(name=sname)
    await publish(js, sname, 3)
    await add_consumer(nc, sname, "C", ack_policy="explicit")
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 1})
    await box.wait_for(1)
    reply = box.msgs[0].reply
    samples = [
        b'{"batch": "x"}',
        b'{"batch": null, "expires": -1e99}',
        b"[1, 2]",
        b'{"group": 7}',
        b"\xff\xfe",
        b"-NAK {",
        b"+TERM \xff",
        b"+NXT {bad",
        b'-NAK {"delay": true}',
    ]
    samples += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) for _ in range(40)]
    junk = await inbox(nc)
    for payload in samples:
        await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{sname}.C", payload, reply=junk.subject)
        await nc.publish(reply, payload, reply=junk.subject)
        await nc.publish(f"$JS.ACK.{sname}.C.x.y.z.1.2", payload)
    await nc.flush()
    await box.pull(sname, "C", {"batch": 5, "no_wait": True})
    info = await consumer_info(nc, sname, "C")
    assert info["stream_name"] == sname
    assert nc.is_connected, "garbage costs nobody their connection"


async def test_a_pin_expires_when_its_client_stops_asking(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 3)
    await add_consumer(
        nc,
        sname,
        "C",
        ack_policy="explicit",
        priority_policy="pinned_client",
        priority_groups=["g"],
        priority_timeout=300 * MS,
    )
    first, second = await inbox(nc), await inbox(nc)
    await first.pull(sname, "C", {"batch": 1, "group": "g"})
    await first.wait_for(1)
    pin = first.msgs[0].headers["Nats-Pin-Id"]
    began = time.monotonic()
    await second.pull(sname, "C", {"batch": 1, "group": "g", "expires": 3 * NS})
    await second.wait_for(1, timeout=3)
    assert time.monotonic() - began >= 0.25, "served only once the pin timed out"
    assert second.msgs[0].headers["Nats-Pin-Id"] != pin


async def test_replay_original_spaces_pulled_messages_as_they_were_stored(nc, js, sname) -> None:
    """Each message waits the gap to the one delivered before it, as nats-server replays; a
    no_wait request waits for them too rather than ending with 404."""
    await js.add_stream(name=sname, subjects=[f"{sname}.>"])
    for i in range(3):
        if i:
            await asyncio.sleep(0.4)  # the stored times the replay reproduces
        await js.publish(f"{sname}.x", b"%d" % i)
    for durable, body in (
        ("WAITS", b'{"batch":3,"expires":5000000000}'),
        ("NOWAIT", b'{"batch":3,"no_wait":true}'),
    ):
        config = {"durable_name": durable, "ack_policy": "explicit", "replay_policy": "original"}
        await api(
            nc,
            f"$JS.API.CONSUMER.CREATE.{sname}.{durable}",
            {"stream_name": sname, "config": config},
        )
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        start = time.monotonic()
        await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{sname}.{durable}", body, inbox)
        arrivals = []
        for _ in range(3):
            msg = await sub.next_msg(timeout=3)
            arrivals.append((msg.data, time.monotonic() - start))
        assert [data for data, _ in arrivals] == [b"0", b"1", b"2"]
        times = [t for _, t in arrivals]
        assert times[0] < 0.3
        assert 0.3 < times[1] - times[0] < 0.7 and 0.3 < times[2] - times[1] < 0.7
        await sub.unsubscribe()
