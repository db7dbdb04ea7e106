"""Limits and keepalive, on an in-process server (pynats.testing) configured for each test."""

from __future__ import annotations

import asyncio
import socket
import time

import nats.errors
import pytest
from tests.conftest import connect
from tests.support.raw import RawClient, connect_line
from tests.support.waiting import wait_until

from pynats.testing import InProcessServer


async def in_thread(fn, *args):
    """Blocking raw-socket work must not block the loop the server runs on."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def test_max_payload_violation_closes_connection() -> None:
    async with InProcessServer(max_payload=1024) as srv:

        def scenario() -> bytes:
            with RawClient(srv.port) as raw:
                assert raw.info["max_payload"] == 1024
                raw.send(connect_line() + b"PUB foo 1025\r\n")
                return raw.read_all_until_closed()

        assert await in_thread(scenario) == b"-ERR 'Maximum Payload Violation'\r\n"
        nc = await connect(srv.url)
        assert nc.max_payload == 1024
        with pytest.raises(nats.errors.MaxPayloadError):
            await nc.publish("foo", b"x" * 1025)
        await nc.close()


async def test_stale_connection_after_unanswered_pings() -> None:
    async with InProcessServer(ping_interval=0.05, ping_max=2) as srv:

        def scenario() -> bytes:
            with RawClient(srv.port) as raw:
                raw.send(connect_line())
                return raw.read_all_until_closed(timeout=5)

        out = await in_thread(scenario)
        assert out == b"PING\r\nPING\r\n-ERR 'Stale Connection'\r\n"
        assert srv.server.stale_connections == 1


async def test_answered_pings_keep_connection_alive() -> None:
    async with InProcessServer(ping_interval=0.05, ping_max=1) as srv:
        nc = await connect(srv.url)
        await asyncio.sleep(0.5)  # ten ping intervals: nats-py answers every PING
        assert nc.is_connected
        await nc.flush()
        await nc.close()


async def test_authentication_timeout() -> None:
    async with InProcessServer(username="u", password="p", auth_timeout=0.2) as srv:

        def scenario() -> bytes:
            with RawClient(srv.port) as raw:
                return raw.read_all_until_closed(timeout=5)

        started = time.monotonic()
        assert await in_thread(scenario) == b"-ERR 'Authentication Timeout'\r\n"
        assert time.monotonic() - started < 2


async def test_max_connections_exceeded() -> None:
    async with InProcessServer(max_connections=1) as srv:
        nc = await connect(srv.url)

        def scenario() -> bytes:
            with RawClient(srv.port) as raw:  # INFO first, then the error
                return raw.read_all_until_closed()

        assert await in_thread(scenario) == b"-ERR 'maximum connections exceeded'\r\n"
        await nc.flush()
        await nc.close()


async def test_max_subscriptions_is_not_fatal() -> None:
    async with InProcessServer(max_subscriptions=2) as srv:

        def scenario() -> bytes:
            with RawClient(srv.port) as raw:
                raw.send(connect_line() + b"SUB a 1\r\nSUB b 2\r\nSUB c 3\r\nPUB a 1\r\nx\r\n")
                return raw.ping_pong()

        out = await in_thread(scenario)
        assert out == b"-ERR 'maximum subscriptions exceeded'\r\nMSG a 1 1\r\nx\r\n"


async def test_slow_consumer_is_cut_and_nobody_else_waits() -> None:
    max_pending = 512 * 1024
    async with InProcessServer(max_pending=max_pending, max_payload=64 * 1024) as srv:
        # A subscriber that never reads, with a small receive buffer.
        slow = socket.create_connection(("127.0.0.1", srv.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(connect_line() + b"SUB firehose 1\r\nPING\r\n")
        healthy = await connect(srv.url)
        received = 0
        done = asyncio.Event()
        total = 600

        async def count(msg) -> None:
            nonlocal received
            received += 1
            if received == total:
                done.set()

        await healthy.subscribe("firehose", cb=count)
        await healthy.flush()
        publisher = await connect(srv.url)
        payload = b"x" * (32 * 1024)  # 600 x 32 KiB = ~19 MiB, far past max_pending
        for i in range(1, total + 1):
            await publisher.publish("firehose", payload)
            if i % 8 == 0:  # keep pace with the healthy subscriber, never with the slow one
                await wait_until(lambda i=i: received >= i, 10, "healthy subscriber")
        await publisher.flush(timeout=10)
        await asyncio.wait_for(done.wait(), 20)
        assert srv.server.slow_consumers == 1
        closed = list(srv.server.closed_clients)
        assert [c["reason"] for c in closed] == ["Slow Consumer (Pending Bytes)"]
        assert publisher.is_connected and healthy.is_connected
        slow.close()
        await publisher.close()
        await healthy.close()


async def test_lame_duck_closes_clients_over_the_duration_then_exits() -> None:
    srv = InProcessServer(lame_duck_duration=1.0, lame_duck_grace_period=0.3)
    await srv.start()
    server = srv.server
    assert server is not None
    ldm: list[bool] = []

    async def on_ldm() -> None:
        ldm.append(True)

    clients = [await connect(srv.url, lame_duck_mode_cb=on_ldm) for _ in range(3)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    server.enter_lame_duck_mode()
    await wait_until(lambda: len(ldm) == 3, 3, "lame duck INFO to every client")
    await wait_until(lambda: all(not c.is_connected for c in clients), 5, "clients closed")
    await wait_until(lambda: server.is_shutting_down, 5, "shutdown")
    elapsed = loop.time() - started
    assert 0.3 <= elapsed < 3.0
    assert [c["reason"] for c in server.closed_clients] == ["Server Shutdown"] * 3
    for c in clients:
        await c.close()
    await srv.stop()
