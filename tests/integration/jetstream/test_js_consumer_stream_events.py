"""What a consumer does when its stream changes under it: purges, message deletes, limits,
the stream's deletion, and how it shows in /jsz."""

from __future__ import annotations

from tests.integration.jetstream.conftest import api, http_json
from tests.integration.jetstream.consumers import add_consumer, consumer_info, inbox, publish


async def test_purge_moves_the_consumer_past_what_was_purged(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await publish(js, sname, 6)
    await add_consumer(nc, sname, "C", ack_policy="explicit")
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 2})
    await box.wait_for(2)
    await js.purge_stream(sname)
    info = await consumer_info(nc, sname, "C")
    assert info["num_pending"] == 0
    assert info["num_ack_pending"] == 0, "purged messages are not waited for"
    assert info["ack_floor"]["stream_seq"] >= 2
    await publish(js, sname, 1, prefix=b"after")
    await box.pull(sname, "C", {"batch": 5, "no_wait": True})
    await box.wait_for(4)
    assert [m.data for m in box.data][2:] == [b"after0"]


async def test_filtered_purge_updates_pending_counts(nc, js, sname) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.>"])
    for key in "abab":
        await js.publish(f"{sname}.{key}", key.encode())
    await add_consumer(nc, sname, "C")
    assert (await consumer_info(nc, sname, "C"))["num_pending"] == 4
    await js.purge_stream(sname, subject=f"{sname}.a")
    assert (await consumer_info(nc, sname, "C"))["num_pending"] == 2


async def test_deleted_and_limited_messages_leave_the_pending_count(nc, js, sname) -> None:
    await js.add_stream(name=sname, max_msgs=5)
    await publish(js, sname, 3)
    await add_consumer(nc, sname, "C")
    await js.delete_msg(sname, 2)
    assert (await consumer_info(nc, sname, "C"))["num_pending"] == 2
    await publish(js, sname, 5, prefix=b"more")
    assert (await consumer_info(nc, sname, "C"))["num_pending"] == 5, "max_msgs dropped three"
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 10, "no_wait": True})
    await box.wait_for(6)
    assert [m.data for m in box.data] == [b"more%d" % i for i in range(5)]


async def test_deleting_the_stream_ends_waiting_requests(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await add_consumer(nc, sname, "C")
    box = await inbox(nc)
    await box.pull(sname, "C", {"batch": 1, "expires": 5_000_000_000})
    assert (await consumer_info(nc, sname, "C"))["num_waiting"] == 1
    await js.delete_stream(sname)
    await box.wait_for(1)
    assert box.statuses == ["409 Consumer Deleted"]
    await js.add_stream(name=sname)
    names = await api(nc, f"$JS.API.CONSUMER.NAMES.{sname}")
    assert names["consumers"] == [], "a new stream of the same name starts without consumers"


async def test_jsz_lists_consumers(js_server, nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await add_consumer(nc, sname, "C", ack_policy="explicit")
    body = http_json(js_server, "/jsz?consumers=1&acc=$G")
    streams = body["account_details"][0]["stream_detail"]
    mine = next(s for s in streams if s["name"] == sname)
    assert [c["name"] for c in mine["consumer_detail"]] == ["C"]
    assert body["consumers"] >= 1
