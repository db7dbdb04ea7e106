"""Accounts, imports/exports, permissions and credentials through nats-py.

Every test runs against pynats and against the Go nats-server with the same config file, so
the behaviour asserted is nats-server's."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import nats.errors
import nkeys
import pytest
from tests.conftest import connect
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

USER_SEED = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
USER_NKEY = nkeys.from_seed(USER_SEED).public_key.decode()

CONFIG = f"""
accounts {{
  A: {{
    users: [
      {{user: a, password: a}}
      {{user: responder, password: r, permissions: {{
          publish: {{deny: ">"}}, subscribe: {{allow: ["svc.>"]}}, allow_responses: true}}}}
      {{user: limited, password: l, permissions: {{
          publish: ["allowed.>"], subscribe: {{allow: ">", deny: ["secret.>"]}}}}}}
      {{nkey: {USER_NKEY}}}
    ]
    exports: [
      {{stream: "events.>"}}
      {{service: "svc.>"}}
      {{service: "feed.>", response: stream}}
      {{stream: "private.>", accounts: [C]}}
    ]
  }}
  B: {{
    users: [{{user: b, password: b}}]
    imports: [
      {{stream: {{account: A, subject: "events.>"}}, prefix: "fromA"}}
      {{service: {{account: A, subject: "svc.>"}}, to: "a.svc.>"}}
      {{service: {{account: A, subject: "feed.>"}}}}
    ]
  }}
  C: {{
    users: [{{user: c, password: c}}]
    imports: [{{stream: {{account: A, subject: "private.>"}}}}]
  }}
  D: {{ users: [{{user: guest, password: g}}] }}
}}
no_auth_user: guest
"""


@pytest.fixture(scope="module", params=["pynats", "go"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    path = Path(tmp_path_factory.mktemp("acc")) / "accounts.conf"
    path.write_text(CONFIG)
    srv = start_server(["-c", str(path)], oracle=request.param == "go")
    yield srv
    srv.stop()


def url(server: RunningServer, user: str = "", password: str = "") -> str:
    creds = f"{user}:{password}@" if user else ""
    return f"nats://{creds}127.0.0.1:{server.port}"


async def publish_until_received(pub, subject: str, data: bytes, sub, timeout: float = 3.0):
    """Cross-account interest may take a moment to settle on the Go server: publish again
    until the message arrives (or fail after `timeout`)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await pub.publish(subject, data)
        try:
            return await sub.next_msg(0.2)
        except nats.errors.TimeoutError:
            if asyncio.get_running_loop().time() > deadline:
                raise


async def no_message(sub, timeout: float = 0.3) -> bool:
    try:
        await sub.next_msg(timeout)
    except nats.errors.TimeoutError:
        return True
    return False


async def test_accounts_are_isolated(server: RunningServer) -> None:
    a = await connect(url(server, "a", "a"))
    b = await connect(url(server, "b", "b"))
    sub_b = await b.subscribe("orders.new")
    await b.flush()
    await a.publish("orders.new", b"from A")
    await a.flush()
    assert await no_message(sub_b)
    await a.close()
    await b.close()


async def test_stream_import_with_prefix(server: RunningServer) -> None:
    a = await connect(url(server, "a", "a"))
    b = await connect(url(server, "b", "b"))
    sub = await b.subscribe("fromA.events.>")
    await b.flush()
    msg = await publish_until_received(a, "events.login", b"alice", sub)
    assert (msg.subject, msg.data) == ("fromA.events.login", b"alice")
    await a.close()
    await b.close()


async def test_service_import_answers_across_accounts(server: RunningServer) -> None:
    a = await connect(url(server, "a", "a"))

    async def handle(msg) -> None:
        await msg.respond(b"served " + msg.subject.encode())

    await a.subscribe("svc.>", cb=handle)
    await a.flush()
    b = await connect(url(server, "b", "b"))
    reply = await b.request("a.svc.time", b"?", timeout=2)
    assert reply.data == b"served svc.time"
    await a.close()
    await b.close()


async def test_service_import_without_responder_is_no_responders(server: RunningServer) -> None:
    b = await connect(url(server, "b", "b"))
    with pytest.raises(nats.errors.NoRespondersError):
        await b.request("a.svc.nobody", b"?", timeout=2)
    await b.close()


async def test_private_export_only_for_named_accounts(server: RunningServer) -> None:
    a = await connect(url(server, "a", "a"))
    c = await connect(url(server, "c", "c"))
    sub = await c.subscribe("private.>")
    await c.flush()
    msg = await publish_until_received(a, "private.x", b"for C", sub)
    assert msg.data == b"for C"
    await a.close()
    await c.close()


async def test_allow_responses_lets_a_deny_all_user_answer_once(server: RunningServer) -> None:
    responder = await connect(url(server, "responder", "r"))
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    responder._error_cb = on_error

    async def handle(msg) -> None:
        await msg.respond(b"first")
        await msg.respond(b"second")  # over the max of 1: refused

    await responder.subscribe("svc.ping", cb=handle)
    await responder.flush()
    a = await connect(url(server, "a", "a"))
    inbox = a.new_inbox()
    replies = await a.subscribe(inbox)
    await a.publish("svc.ping", b"", reply=inbox)
    assert (await replies.next_msg(2)).data == b"first"
    assert await no_message(replies)
    # publishing anywhere else is denied
    await responder.publish("anything", b"x")
    await responder.flush()
    await wait_until(lambda: any("permissions violation" in str(e).lower() for e in errors))
    await responder.close()
    await a.close()


async def test_subscribe_deny_filters_wildcard_deliveries(server: RunningServer) -> None:
    limited = await connect(url(server, "limited", "l"))
    sub = await limited.subscribe(">")
    await limited.flush()
    a = await connect(url(server, "a", "a"))
    await a.publish("secret.plans", b"no")
    await a.publish("public.news", b"yes")
    await a.flush()
    msg = await sub.next_msg(2)
    assert msg.subject == "public.news"
    assert await no_message(sub)
    await limited.close()
    await a.close()


async def test_publish_permission_violation_keeps_connection(server: RunningServer) -> None:
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    limited = await connect(url(server, "limited", "l"), error_cb=on_error)
    await limited.publish("forbidden", b"x")
    await limited.flush()
    await wait_until(
        lambda: any(
            'permissions violation for publish to "forbidden"' in str(e).lower() for e in errors
        )
    )
    assert limited.is_connected
    await limited.publish("allowed.x", b"ok")
    await limited.flush()
    await limited.close()


async def test_nkey_user_signs_the_nonce(server: RunningServer) -> None:
    nc = await connect(url(server), nkeys_seed_str=USER_SEED.decode())
    sub = await nc.subscribe("events.x")
    await nc.publish("events.x", b"nkey")
    assert (await sub.next_msg(2)).data == b"nkey"
    await nc.close()


async def test_wrong_nkey_is_refused(server: RunningServer) -> None:
    other = nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER).decode()
    with pytest.raises(Exception) as info:
        await connect(url(server), nkeys_seed_str=other)
    assert "authorization violation" in str(info.value).lower()


async def test_no_auth_user_binds_anonymous_clients(server: RunningServer) -> None:
    anon = await connect(url(server))
    guest = await connect(url(server, "guest", "g"))
    sub = await guest.subscribe("lobby")
    await guest.flush()
    msg = await publish_until_received(anon, "lobby", b"hi", sub)
    assert msg.data == b"hi"  # same account D
    assert anon._server_info.get("auth_required") is not True
    await anon.close()
    await guest.close()


async def test_streamed_service_responses_all_reach_the_importer(server: RunningServer) -> None:
    a = await connect(url(server, "a", "a"))

    async def handle(msg) -> None:
        for i in range(3):
            await a.publish(msg.reply, b"part %d" % i)

    await a.subscribe("feed.prices", cb=handle)
    await a.flush()
    b = await connect(url(server, "b", "b"))
    inbox = b.new_inbox()
    parts = await b.subscribe(inbox)
    await b.publish("feed.prices", b"", reply=inbox)
    got = [(await parts.next_msg(2)).data for _ in range(3)]
    assert got == [b"part 0", b"part 1", b"part 2"]
    await a.close()
    await b.close()
