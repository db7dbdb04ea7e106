"""A `nats-server` polls its sockets for a moment after close requests (busy_poll.py): once
they stop, it sleeps again and an idle server spends next to no CPU."""

from __future__ import annotations

import asyncio
import os

from nats.aio.msg import Msg
from tests.conftest import connect


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def test_an_idle_server_stops_polling_after_a_burst_of_requests(server_factory) -> None:
    srv = server_factory()
    nc = await connect(srv.url)
    try:

        async def answer(msg: Msg) -> None:
            await msg.respond(b"ok")

        await nc.subscribe("svc", cb=answer)
        for _ in range(500):  # one after another: the reads come close together
            assert (await nc.request("svc", b"x", timeout=5)).data == b"ok"
        await asyncio.sleep(0.1)  # well past the polling window (200 µs)
        before = _cpu_seconds(srv.proc.pid)
        await asyncio.sleep(1.0)  # the measured idle second
        spent = _cpu_seconds(srv.proc.pid) - before
        assert spent < 0.2, f"an idle server spent {spent:.2f} s of CPU in 1 s"
    finally:
        await nc.close()
