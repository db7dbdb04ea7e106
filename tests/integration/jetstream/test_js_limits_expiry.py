"""Limits enforced continuously: max_age expires on a timer (no publish needed), per-message
TTLs, and subject delete markers left behind when the last message of a subject ages out."""

from __future__ import annotations

import asyncio
import time

import nats.js.errors
import pytest
from tests.integration.jetstream.conftest import api
from tests.support.waiting import wait_until

NS = 1_000_000_000


async def messages(js, name: str) -> int:
    return (await js.stream_info(name)).state.messages


async def test_max_age_expires_without_further_publishes(js, sname) -> None:
    await js.add_stream(name=sname, max_age=0.4)
    for i in range(3):
        await js.publish(sname, b"%d" % i)
    assert await messages(js, sname) == 3
    started = time.monotonic()

    async def gone() -> bool:
        return await messages(js, sname) == 0

    await wait_until(gone, timeout=5)
    assert time.monotonic() - started >= 0.2  # not before its age
    info = await js.stream_info(sname)
    assert (info.state.first_seq, info.state.last_seq) == (4, 3)


async def test_per_message_ttl_expires_only_that_message(nc, js, sname) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.*"], allow_msg_ttl=True)
    await js.publish(f"{sname}.short", b"bye", headers={"Nats-TTL": "1s"})
    await js.publish(f"{sname}.long", b"stay", headers={"Nats-TTL": "1h"})
    await js.publish(f"{sname}.plain", b"stay too")

    async def one_gone() -> bool:
        return await messages(js, sname) == 2

    await wait_until(one_gone, timeout=6)
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.get_msg(sname, seq=1)
    assert (await js.get_msg(sname, seq=2)).data == b"stay"


async def test_ttl_never_survives_max_age(js, sname) -> None:
    await js.add_stream(name=sname, allow_msg_ttl=True, max_age=0.3)
    await js.publish(sname, b"forever", headers={"Nats-TTL": "never"})
    await js.publish(sname, b"ages out")

    async def aged() -> bool:
        return await messages(js, sname) == 1

    await wait_until(aged, timeout=5)
    assert (await js.get_msg(sname, seq=1)).data == b"forever"


async def test_subject_delete_marker_replaces_the_last_aged_out_message(nc, js, sname) -> None:
    await api(
        nc,
        f"$JS.API.STREAM.CREATE.{sname}",
        {
            "name": sname,
            "subjects": [f"{sname}.*"],
            "max_age": 500_000_000,
            "subject_delete_marker_ttl": NS,
            "allow_direct": True,
        },
    )
    await js.publish(f"{sname}.k", b"1")
    await js.publish(f"{sname}.k", b"2")

    async def marker_seq() -> int:
        try:
            msg = await js.get_last_msg(sname, f"{sname}.k")
        except nats.js.errors.NotFoundError:
            return 0
        return msg.seq if msg.headers and "Nats-Marker-Reason" in msg.headers else 0

    seq = await wait_until(marker_seq, timeout=5)
    marker = await js.get_msg(sname, seq=seq)
    assert seq == 3
    assert not marker.data
    assert marker.headers["Nats-Rollup"] == "sub"
    assert marker.headers["Nats-Marker-Reason"] == "MaxAge"
    assert marker.headers["Nats-TTL"] == "1s"

    # the marker itself goes after its TTL, and leaves no marker behind
    async def empty() -> bool:
        return await messages(js, sname) == 0

    await wait_until(empty, timeout=6)
    assert (await js.stream_info(sname)).state.last_seq == 3


async def test_limits_apply_when_a_stream_update_tightens_them(js, sname) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.*"])
    for i in range(6):
        await js.publish(f"{sname}.{i % 2}", b"x")
    await js.update_stream(name=sname, subjects=[f"{sname}.*"], max_msgs_per_subject=1)
    info = await js.stream_info(sname, subjects_filter=">")
    assert info.state.subjects == {f"{sname}.0": 1, f"{sname}.1": 1}
    assert info.state.first_seq == 5


async def test_max_bytes_discard_old(js, sname) -> None:
    size = len(sname) + 10 + 30  # file-store accounting of one message
    await js.add_stream(name=sname, max_bytes=3 * size)
    for _ in range(5):
        await js.publish(sname, b"0123456789")
    info = await js.stream_info(sname)
    assert (info.state.messages, info.state.bytes, info.state.first_seq) == (3, 3 * size, 3)


async def test_a_short_ttl_after_a_long_one_still_expires_on_time(js, sname) -> None:
    await js.add_stream(name=sname, allow_msg_ttl=True)
    await js.publish(sname, b"long", headers={"Nats-TTL": "1h"})
    await js.publish(sname, b"short", headers={"Nats-TTL": "1s"})
    started = asyncio.get_running_loop().time()

    async def short_gone() -> bool:
        return await messages(js, sname) == 1

    await wait_until(short_gone, timeout=5)
    assert asyncio.get_running_loop().time() - started < 4
    assert (await js.get_msg(sname, seq=1)).data == b"long"
