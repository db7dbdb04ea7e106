"""Core messaging through the official nats-py client against a pynats subprocess."""

from __future__ import annotations

import asyncio
from collections import Counter

import nats.errors
import pytest
from tests.conftest import connect
from tests.support.servers import RunningServer
from tests.support.waiting import wait_until


async def test_publish_reaches_subscriber(server: RunningServer) -> None:
    nc = await connect(server.url)
    sub = await nc.subscribe("greet.joe")
    await nc.publish("greet.joe", b"hello")
    msg = await sub.next_msg(timeout=2)
    assert (msg.subject, msg.data) == ("greet.joe", b"hello")
    await nc.close()


async def test_wildcards_match_as_nats_defines(server: RunningServer) -> None:
    nc = await connect(server.url)
    star = await nc.subscribe("prices.*")
    full = await nc.subscribe("prices.>")
    for subject in ["prices.aapl", "prices.nyse.ibm", "prices"]:
        await nc.publish(subject, subject.encode())
    await nc.flush()
    assert (await star.next_msg(1)).subject == "prices.aapl"
    with pytest.raises(nats.errors.TimeoutError):
        await star.next_msg(0.2)
    got = [(await full.next_msg(1)).subject for _ in range(2)]
    assert got == ["prices.aapl", "prices.nyse.ibm"]
    with pytest.raises(nats.errors.TimeoutError):
        await full.next_msg(0.2)
    await nc.close()


async def test_queue_group_delivers_each_message_once_and_spreads_load(
    server: RunningServer,
) -> None:
    members = [await connect(server.url) for _ in range(3)]
    received: Counter[int] = Counter()
    seen: list[bytes] = []

    def handler(i: int):
        async def cb(msg) -> None:
            received[i] += 1
            seen.append(msg.data)

        return cb

    for i, nc in enumerate(members):
        await nc.subscribe("work", queue="workers", cb=handler(i))
        await nc.flush()
    watcher = await connect(server.url)
    plain = await watcher.subscribe("work")
    pub = await connect(server.url)
    total = 300
    for i in range(total):
        await pub.publish("work", str(i).encode())
    await pub.flush()
    await wait_until(lambda: len(seen) == total)
    assert sorted(seen, key=int) == [str(i).encode() for i in range(total)]
    assert all(received[i] > 30 for i in range(3)), received
    # a plain subscriber on the same subject still gets every message
    for _ in range(total):
        await plain.next_msg(1)
    for nc in [*members, watcher, pub]:
        await nc.close()


async def test_request_reply_with_inbox(server: RunningServer) -> None:
    responder = await connect(server.url)

    async def echo(msg) -> None:
        await msg.respond(b"re: " + msg.data)

    await responder.subscribe("svc.echo", cb=echo)
    await responder.flush()
    requester = await connect(server.url)
    reply = await requester.request("svc.echo", b"ping", timeout=2)
    assert reply.data == b"re: ping"
    replies = await asyncio.gather(
        *(requester.request("svc.echo", str(i).encode(), timeout=2) for i in range(50))
    )
    assert [r.data for r in replies] == [b"re: %d" % i for i in range(50)]
    await requester.close()
    await responder.close()


async def test_request_without_responders_fails_fast(server: RunningServer) -> None:
    nc = await connect(server.url)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request("nobody.home", b"?", timeout=5)
    assert loop.time() - started < 1.0
    await nc.close()


async def test_headers_round_trip(server: RunningServer) -> None:
    nc = await connect(server.url)
    sub = await nc.subscribe("hdr")
    await nc.publish("hdr", b"body", headers={"Trace-Id": "abc", "X-Multi": "1"})
    msg = await sub.next_msg(2)
    assert msg.data == b"body"
    assert msg.headers == {"Trace-Id": "abc", "X-Multi": "1"}
    await nc.close()


async def test_client_without_headers_gets_plain_message(server: RunningServer) -> None:
    from tests.support.raw import RawClient

    with RawClient(server.port) as raw:
        raw.handshake(headers=False)
        raw.send(b"SUB hdr.plain 7\r\n")
        raw.ping_pong()
        nc = await connect(server.url)
        await nc.publish("hdr.plain", b"body", headers={"A": "b"})
        await nc.flush()
        assert raw.read_until(b"body\r\n") == b"MSG hdr.plain 7 4\r\nbody\r\n"
        await nc.close()


async def test_unsubscribe_after_max_messages(server: RunningServer) -> None:
    nc = await connect(server.url)
    sub = await nc.subscribe("limited", max_msgs=3)
    for i in range(10):
        await nc.publish("limited", str(i).encode())
    await nc.flush()
    got = [(await sub.next_msg(1)).data for _ in range(3)]
    assert got == [b"0", b"1", b"2"]
    with pytest.raises((nats.errors.TimeoutError, nats.errors.BadSubscriptionError)):
        await sub.next_msg(0.3)
    await nc.close()


async def test_explicit_unsubscribe_stops_delivery(server: RunningServer) -> None:
    nc = await connect(server.url)
    sub = await nc.subscribe("gone")
    other = await connect(server.url)
    await sub.unsubscribe()
    await nc.flush()
    watcher = await nc.subscribe("gone")
    await nc.flush()  # the server has the new subscription before the other client publishes
    await other.publish("gone", b"x")
    await other.flush()
    assert (await watcher.next_msg(1)).data == b"x"
    await nc.close()
    await other.close()


async def test_drain_delivers_pending_messages_then_closes(server: RunningServer) -> None:
    nc = await connect(server.url)
    got: list[bytes] = []

    async def slow(msg) -> None:
        await asyncio.sleep(0.001)
        got.append(msg.data)

    await nc.subscribe("drain.me", cb=slow)
    pub = await connect(server.url)
    for i in range(100):
        await pub.publish("drain.me", b"%d" % i)
    await pub.flush()
    await nc.flush()
    await nc.drain()
    assert len(got) == 100
    assert nc.is_closed
    await pub.close()


async def test_no_echo_connection_does_not_receive_own_messages(server: RunningServer) -> None:
    nc = await connect(server.url, no_echo=True)
    sub = await nc.subscribe("echo.test")
    other = await connect(server.url)
    await nc.publish("echo.test", b"mine")
    await other.publish("echo.test", b"theirs")
    await other.flush()
    await nc.flush()
    assert (await sub.next_msg(1)).data == b"theirs"
    with pytest.raises(nats.errors.TimeoutError):
        await sub.next_msg(0.2)
    await nc.close()
    await other.close()


async def test_large_payload_up_to_max(server: RunningServer) -> None:
    nc = await connect(server.url)
    assert nc.max_payload == 1024 * 1024
    sub = await nc.subscribe("big")
    payload = bytes(range(256)) * 4096  # exactly 1 MiB
    await nc.publish("big", payload)
    msg = await sub.next_msg(3)
    assert msg.data == payload
    await nc.close()


async def test_flush_round_trips(server: RunningServer) -> None:
    nc = await connect(server.url)
    for _ in range(5):
        await nc.flush(timeout=2)
    assert nc.is_connected
    await nc.close()


async def test_server_info_identifies_a_modern_nats_server(server: RunningServer) -> None:
    nc = await connect(server.url)
    info = nc._server_info
    assert info["server_id"].startswith("N") and len(info["server_id"]) == 56
    assert info["proto"] == 1
    assert info["headers"] is True
    assert info["max_payload"] == 1048576
    assert info["port"] == server.port
    major, minor, _ = (int(x) for x in info["version"].split("."))
    assert (major, minor) >= (2, 10)
    assert isinstance(info["client_id"], int)
    await nc.close()
