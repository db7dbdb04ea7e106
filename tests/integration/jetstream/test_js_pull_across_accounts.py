"""A pull consumer of account A used from account B through service imports of `$JS.API.>`
and `$JS.ACK.>`, on pynats and the Go server with the same config file.

A pull request's answers are many messages on one reply subject: the stored messages (framed
with their own subjects, acked through `$JS.ACK`), `100 Idle Heartbeat`s and the closing
`408`. They reach B only while the response mapping of the import lives: with the export's
`response_type: stream` all of them cross, with the default singleton only the first does
(nats-server removes a singleton's mapping after one response, and so do we).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.msg import Msg
from tests.conftest import connect
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

ACCOUNTS = """
accounts {
  A {
    users [{user: a, password: a}]
    jetstream: enabled
    exports [
      {service: "$JS.API.CONSUMER.MSG.NEXT.STREAMED.>", response_type: stream}
      {service: "$JS.API.CONSUMER.MSG.NEXT.SINGLE.>"}
      {service: "$JS.ACK.>"}
    ]
  }
  B {
    users [{user: b, password: b}]
    imports [
      {service: {account: A, subject: "$JS.API.CONSUMER.MSG.NEXT.STREAMED.>"}}
      {service: {account: A, subject: "$JS.API.CONSUMER.MSG.NEXT.SINGLE.>"}}
      {service: {account: A, subject: "$JS.ACK.>"}}
    ]
  }
}
"""
HEARTBEAT_NS = 200_000_000
EXPIRES_NS = 1_500_000_000


@pytest.fixture(scope="module", params=["pynats", "go"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    base = Path(tmp_path_factory.mktemp(f"pullx-{request.param}"))
    path = base / "server.conf"
    path.write_text(f'jetstream {{ store_dir: "{base / "js"}" }}\n' + ACCOUNTS)
    srv = start_server(["-c", str(path)], oracle=request.param == "go")
    yield srv
    srv.stop()


def _kind(msg: Msg) -> str:
    status = (msg.headers or {}).get("Status")
    return status if status else msg.subject


async def _pull(server: RunningServer, stream: str) -> tuple[list[str], list[Msg]]:
    """One MSG.NEXT from B with idle heartbeats; a message is stored once B heard the first
    heartbeat. What B received, until the 408 or a quiet expiry."""
    a = await connect(f"nats://a:a@127.0.0.1:{server.port}")
    b = await connect(f"nats://b:b@127.0.0.1:{server.port}")
    try:
        js = a.jetstream()
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
        await js.add_consumer(stream, durable_name="C", ack_policy="explicit")
        inbox = b.new_inbox()
        sub = await b.subscribe(inbox)
        request = {"batch": 2, "expires": EXPIRES_NS, "idle_heartbeat": HEARTBEAT_NS}
        await b.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.C", json.dumps(request).encode(), reply=inbox
        )
        got: list[Msg] = [await sub.next_msg(timeout=2)]
        await js.publish(f"{stream.lower()}.1", b"stored")
        while _kind(got[-1]) != "408":
            try:
                got.append(await sub.next_msg(timeout=1))
            except nats.errors.TimeoutError:
                break
        for msg in got:
            if msg.reply and msg.reply.startswith("$JS.ACK."):
                await b.publish(msg.reply, b"+ACK")
        await b.flush()

        async def acked() -> bool:
            info = await js.consumer_info(stream, "C")
            return info.num_ack_pending == 0 and info.delivered.stream_seq == 1

        if any(m.subject == f"{stream.lower()}.1" for m in got):
            await wait_until(acked, timeout=3, what="the ack from B")
        kinds = [_kind(m) for m in got]
        return [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1]], got
    finally:
        await a.close()
        await b.close()


async def test_a_streamed_import_carries_heartbeats_messages_and_the_timeout(
    server: RunningServer,
) -> None:
    kinds, got = await _pull(server, "STREAMED")
    assert kinds == ["100", "streamed.1", "100", "408"]
    stored = next(m for m in got if m.subject == "streamed.1")
    assert stored.data == b"stored"
    assert stored.reply.startswith("$JS.ACK.STREAMED.C.")


async def test_a_singleton_import_carries_only_the_first_answer(server: RunningServer) -> None:
    kinds, _ = await _pull(server, "SINGLE")
    assert kinds == ["100"]
