"""An ordered consumer (nats-py `subscribe(..., ordered_consumer=True)`) lives through a restart
of the server on the same store: its consumer (memory storage) is gone after the restart, the
client sees no heartbeats, recreates it from the stream sequence after the last message it
got, and the iteration goes on with every message exactly once, in order. Against nats-server
and against ours, after a clean stop and after `kill -9`."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest
from tests.conftest import connect
from tests.support.ports import free_port
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

HEARTBEAT_S = 0.5  # nats-py recreates the consumer after two silent heartbeat periods
BEFORE, AFTER = 120, 40
PAD = b"." * 32 * 1024  # 120 of them pass the first flow control window (2 MiB)


async def _start(args: list[str], *, oracle: bool, port: int) -> RunningServer:
    # in a thread: the client keeps running (and retrying its reconnect) meanwhile
    return await asyncio.to_thread(start_server, args, oracle=oracle, port=port)


async def _next(sub: Any, timeout: float) -> bytes:
    msg = await sub.next_msg(timeout=timeout)
    return msg.data.removesuffix(PAD)


@pytest.mark.parametrize("how", ["stop", "kill"])
@pytest.mark.parametrize("kind", ["go", "py"])
async def test_ordered_consumer_resumes_after_restart(tmp_path, kind: str, how: str) -> None:
    oracle = kind == "go"
    port = free_port()
    args = ["-js", "-sd", str(tmp_path)]
    srv = await _start(args, oracle=oracle, port=port)
    errors: list[BaseException] = []

    async def on_error(e: BaseException) -> None:
        errors.append(e)

    nc = await nats.connect(
        srv.url,
        connect_timeout=2,
        reconnect_time_wait=0.05,
        max_reconnect_attempts=400,  # ~20 s of retries, then the client gives up
        error_cb=on_error,
    )
    try:
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        for i in range(BEFORE):
            await js.publish("s.x", b"m%d" % i + PAD)
        sub = await js.subscribe("s.>", ordered_consumer=True, idle_heartbeat=HEARTBEAT_S)
        first_consumer = sub._consumer
        got = [await _next(sub, 5) for _ in range(10)]

        if how == "kill":
            await asyncio.to_thread(srv.kill)
        else:
            await asyncio.to_thread(srv.stop)
        srv = await _start(args, oracle=oracle, port=port)
        await wait_until(lambda: nc.is_connected, timeout=10, what="the client reconnected")

        other = await connect(srv.url)
        try:
            ojs = other.jetstream()
            assert (await ojs.stream_info("S")).state.last_seq == BEFORE
            for i in range(BEFORE, BEFORE + AFTER):
                await ojs.publish("s.x", b"m%d" % i + PAD)
            await ojs.publish("s.x", b"end")
        finally:
            await other.close()

        # the rest of what was stored before, then what came after, then the end marker:
        # anything delivered twice would come before the marker
        while not got or got[-1] != b"end":
            got.append(await _next(sub, 15))
        assert got == [b"m%d" % i for i in range(BEFORE + AFTER)] + [b"end"], errors
        assert sub._consumer != first_consumer, "the client recreated its consumer"
        info = await sub.consumer_info()
        assert info.delivered.stream_seq == BEFORE + AFTER + 1
    finally:
        await nc.close()
        srv.stop()
