"""nats-py over WebSocket, against our server and Go's with the same `websocket {}` block:
what a client does over TCP works the same over a websocket, with and without compression,
and websocket and TCP clients see each other's messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import nats
import pytest
import pytest_asyncio
from tests.conftest import connect

from .support import KINDS, WsServer, ws_server


@pytest.fixture(
    params=[(k, c) for k in KINDS for c in (False, True)],
    ids=lambda p: f"{p[0]}-{'deflate' if p[1] else 'plain'}",
)
def server(request: pytest.FixtureRequest) -> Iterator[WsServer]:
    kind, compression = request.param
    with ws_server(kind, {"no_tls": True, "compression": compression}) as srv:
        yield srv


@pytest_asyncio.fixture
async def ws(server: WsServer) -> AsyncIterator[nats.NATS]:
    nc = await connect(server.ws_url)
    yield nc
    await nc.close()


@pytest_asyncio.fixture
async def tcp(server: WsServer) -> AsyncIterator[nats.NATS]:
    nc = await connect(server.url)
    yield nc
    await nc.close()


async def next_data(sub: Any, timeout: float = 5.0) -> bytes:
    msg = await sub.next_msg(timeout)
    data: bytes = msg.data
    return data


async def test_pub_sub_between_websocket_clients(server: WsServer) -> None:
    a = await connect(server.ws_url)
    b = await connect(server.ws_url)
    sub = await b.subscribe("greet.*")
    await b.flush()
    for i in range(100):
        await a.publish(f"greet.{i}", f"hello {i}".encode())
    await a.flush()
    assert [await next_data(sub) for _ in range(100)] == [f"hello {i}".encode() for i in range(100)]
    await a.close()
    await b.close()


async def test_websocket_and_tcp_clients_see_each_other(
    server: WsServer, ws: nats.NATS, tcp: nats.NATS
) -> None:
    from_ws = await tcp.subscribe("from.ws")
    from_tcp = await ws.subscribe("from.tcp")
    await tcp.flush()
    await ws.flush()
    await ws.publish("from.ws", b"over a websocket")
    await tcp.publish("from.tcp", b"over tcp")
    assert await next_data(from_ws) == b"over a websocket"
    assert await next_data(from_tcp) == b"over tcp"


async def test_request_reply_across_transports(ws: nats.NATS, tcp: nats.NATS) -> None:
    async def answer(msg: Any) -> None:
        await msg.respond(b"answer to " + msg.data)

    await ws.subscribe("svc.ws", cb=answer)
    await tcp.subscribe("svc.tcp", cb=answer)
    await ws.flush()
    await tcp.flush()
    assert (await tcp.request("svc.ws", b"tcp", timeout=5)).data == b"answer to tcp"
    assert (await ws.request("svc.tcp", b"ws", timeout=5)).data == b"answer to ws"
    assert (await ws.request("svc.ws", b"self", timeout=5)).data == b"answer to self"


async def test_no_responders_over_websocket(ws: nats.NATS) -> None:
    with pytest.raises(nats.errors.NoRespondersError):
        await ws.request("nobody.home", b"?", timeout=5)


async def test_headers_travel_over_websocket(ws: nats.NATS, tcp: nats.NATS) -> None:
    sub = await tcp.subscribe("h")
    await tcp.flush()
    await ws.publish("h", b"body", headers={"X-Trace": "abc", "X-Other": "1"})
    msg = await sub.next_msg(5)
    assert msg.data == b"body"
    assert msg.headers == {"X-Trace": "abc", "X-Other": "1"}


async def test_queue_group_members_over_both_transports_share_the_work(
    server: WsServer, tcp: nats.NATS
) -> None:
    members = [await connect(server.ws_url) for _ in range(2)]
    counts = [0, 0, 0]

    def counter(i: int) -> Any:
        async def cb(msg: Any) -> None:
            counts[i] += 1

        return cb

    for i, nc in enumerate(members):
        await nc.subscribe("work", queue="q", cb=counter(i))
        await nc.flush()
    await tcp.subscribe("work", queue="q", cb=counter(2))
    await tcp.flush()
    for _ in range(300):
        await tcp.publish("work", b"job")
    await tcp.flush()
    for _ in range(500):
        if sum(counts) == 300:
            break
        await asyncio.sleep(0.01)
    assert sum(counts) == 300
    assert all(c > 0 for c in counts)
    for nc in members:
        await nc.close()


@pytest.mark.parametrize("size", [125, 126, 65535, 65536, 900_000])
async def test_large_payloads_cross_frames(ws: nats.NATS, tcp: nats.NATS, size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    got_ws = await ws.subscribe("big")
    got_tcp = await tcp.subscribe("big")
    await ws.flush()
    await tcp.flush()
    await ws.publish("big", payload)
    await tcp.publish("big", payload)
    for sub in (got_ws, got_tcp):
        assert await next_data(sub) == payload
        assert await next_data(sub) == payload


async def test_many_small_messages_in_one_flush(ws: nats.NATS, tcp: nats.NATS) -> None:
    sub = await ws.subscribe("burst")
    await ws.flush()
    for i in range(5000):
        await tcp.publish("burst", b"%d" % i)
    await tcp.flush()
    received = [await next_data(sub) for _ in range(5000)]
    assert received == [b"%d" % i for i in range(5000)]


async def test_websocket_clients_are_listed_as_websocket(server: WsServer, ws: nats.NATS) -> None:
    await ws.flush()
    conns = server.monitor("/connz")["connections"]
    assert [c["type"] for c in conns] == ["websocket"]
    assert conns[0]["kind"] == "Client"
