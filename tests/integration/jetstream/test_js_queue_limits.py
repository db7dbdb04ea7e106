"""JetStream's queue limits (`request_queue_limit`, `info_queue_limit`, `max_buffered_msgs`,
`max_buffered_size`), differential: the Go nats-server and pynats load the same file.

What nats-server 2.15.1 does, and these tests hold both servers to:
- When its API queue reaches `request_queue_limit`, every queued request is dropped without
  an answer (the requester times out), `JetStream API queue limit reached, dropping N
  requests` is logged (at most once a second) and `$JS.EVENT.ADVISORY.API.LIMIT_REACHED`
  (`io.nats.jetstream.advisory.v1.api_limit_reached`, with the server's name and `dropped`)
  goes out in the system account. (With a limit of 1 nats-server races: its worker may take
  the request before the queue is emptied, so the tests use a burst against a limit of 2.)
- Info requests (`STREAM.INFO`, `STREAM.NAMES`, ...) use the info queue, whose limit is
  `info_queue_limit`: a full main queue does not touch them.
- A stream whose ingest queue holds `max_buffered_msgs` messages or `max_buffered_size`
  bytes refuses more: a publisher asking for an ack gets 429 10167 "too many requests", the
  message is not stored, and `Dropping messages due to excessive stream ingest rate on
  '<account>' > '<stream>': IPQ len|size limit reached` is logged.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import connect
from tests.support.servers import start_server

ACCOUNTS = """
server_name: QUEUES
accounts {
  SYS { users [{user: sys, password: sys}] }
  A { jetstream: enabled, users [{user: a, password: a}] }
}
system_account: SYS
"""

TOO_MANY = {"code": 429, "err_code": 10167, "description": "too many requests"}


def _config(tmp: Path, name: str, jetstream: str) -> Path:
    conf = tmp / f"{name}.conf"
    conf.write_text(f'{ACCOUNTS}\njetstream {{ store_dir: "{tmp / name}"\n{jetstream} }}\n')
    return conf


async def _api_queue(oracle: bool, tmp: Path) -> dict[str, Any]:
    """A burst of stream creates against `request_queue_limit: 2`: the queue fills while the
    first ones are written, and is emptied each time it does."""
    name = "go" if oracle else "ours"
    conf = _config(tmp, name, "request_queue_limit: 2\ninfo_queue_limit: 100")
    srv = start_server(["-c", str(conf)], oracle=oracle)
    count = 100
    try:
        sys_nc = await connect(srv.url, user="sys", password="sys")
        nc = await connect(srv.url, user="a", password="a")
        advisories = await sys_nc.subscribe("$JS.EVENT.ADVISORY.API.LIMIT_REACHED")
        in_account = await nc.subscribe("$JS.EVENT.ADVISORY.API.>")
        await sys_nc.flush()
        inbox = nc.new_inbox()
        replies = await nc.subscribe(inbox + ".*")
        for i in range(count):
            create = json.dumps({"name": f"X{i}", "subjects": [f"x{i}"]}).encode()
            await nc.publish(f"$JS.API.STREAM.CREATE.X{i}", create, reply=f"{inbox}.{i}")
        await nc.flush()
        answered: set[str] = set()
        seen: list[dict[str, Any]] = []

        async def settled() -> bool:
            while True:
                try:
                    msg = await replies.next_msg(timeout=0.05)
                    body = json.loads(msg.data)
                    assert "error" not in body, body
                    answered.add(body["config"]["name"])
                    continue
                except TimeoutError:
                    pass
                try:
                    seen.append(json.loads((await advisories.next_msg(timeout=0.05)).data))
                    continue
                except TimeoutError:
                    pass
                return len(answered) + sum(a["dropped"] for a in seen) >= count

        deadline = asyncio.get_running_loop().time() + 20
        while not await settled():
            assert asyncio.get_running_loop().time() < deadline, (len(answered), seen)
        names = json.loads((await nc.request("$JS.API.STREAM.NAMES", b"", timeout=5)).data)
        try:
            await in_account.next_msg(timeout=0.1)
            in_account_too = True
        except TimeoutError:
            in_account_too = False
        await sys_nc.close()
        await nc.close()
        srv.wait_for_log("JetStream API queue limit reached, dropping 2 requests", timeout=5)
    finally:
        srv.stop()
    assert not any("Traceback" in line for line in srv.log_lines), srv.log_text()
    return {
        "advisory": {k: v for k, v in seen[0].items() if k not in ("id", "timestamp", "dropped")},
        "advisory_keys": sorted(seen[0]),
        "some_answered": bool(answered),
        "some_dropped": any(a["dropped"] for a in seen),
        # every request was answered or dropped, and the dropped ones made no stream
        "answered_or_dropped": len(answered) + sum(a["dropped"] for a in seen) == count,
        "streams_are_the_answered": set(names.get("streams") or []) == answered,
        "advisory_in_the_account": in_account_too,
    }


def test_a_full_api_queue_drops_its_requests_as_nats_server_does(tmp_path: Path) -> None:
    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        return await _api_queue(True, tmp_path), await _api_queue(False, tmp_path)

    go, ours = asyncio.run(both())
    # How many nats-server answers before its queue first fills depends on its scheduler (a
    # loaded machine drops them all); pynats always runs the first while the rest queue.
    del go["some_answered"]
    assert ours.pop("some_answered")
    assert ours == go
    assert go["advisory"] == {
        "type": "io.nats.jetstream.advisory.v1.api_limit_reached",
        "server": "QUEUES",
    }
    assert go["some_dropped"] and go["answered_or_dropped"]
    assert go["streams_are_the_answered"] and not go["advisory_in_the_account"]


async def _ingest(oracle: bool, tmp: Path, limit: str) -> dict[str, Any]:
    name = ("go" if oracle else "ours") + limit.split(":")[0]
    conf = _config(tmp, name, f"sync_interval: always\n{limit}")
    srv = start_server(["-c", str(conf)], oracle=oracle)
    count = 300
    try:
        nc = await connect(srv.url, user="a", password="a")
        create = json.dumps({"name": "S", "subjects": ["s"], "storage": "file"}).encode()
        await nc.request("$JS.API.STREAM.CREATE.S", create, timeout=5)
        inbox = nc.new_inbox()
        acks = await nc.subscribe(inbox + ".*")
        for i in range(count):
            await nc.publish("s", b"m" * 1000, reply=f"{inbox}.{i}")
        answers: dict[int, dict[str, Any]] = {}
        while len(answers) < count:
            msg = await acks.next_msg(timeout=10)
            answers[int(msg.subject.rsplit(".", 1)[1])] = json.loads(msg.data)
        info = await nc.request("$JS.API.STREAM.INFO.S", b"", timeout=5)
        state = json.loads(info.data)["state"]
        await nc.close()
    finally:
        srv.stop()
    assert not any("Traceback" in line for line in srv.log_lines), srv.log_text()
    refused = [a for a in answers.values() if "error" in a]
    stored = sorted(a["seq"] for a in answers.values() if "error" not in a)
    return {
        "refusals": {json.dumps(a, sort_keys=True) for a in refused},
        "some_refused": bool(refused),
        "some_stored": bool(stored),
        # every message acknowledged is in the stream, in order, and nothing else is
        "acked_are_stored": stored == list(range(1, state["messages"] + 1)),
        "log": [
            line[line.index("[WRN]") :]
            for line in srv.log_lines
            if "[WRN] Dropping messages" in line
        ][:1],
    }


@pytest.mark.parametrize(
    "limit, what", [("max_buffered_msgs: 1", "len"), ("max_buffered_size: 1500", "size")]
)
def test_a_stream_refuses_what_its_ingest_queue_cannot_hold(
    tmp_path: Path, limit: str, what: str
) -> None:
    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        return await _ingest(True, tmp_path, limit), await _ingest(False, tmp_path, limit)

    go, ours = asyncio.run(both())
    assert ours == go
    assert go["refusals"] == {
        json.dumps({"error": TOO_MANY, "stream": "S", "seq": 0}, sort_keys=True)
    }
    assert go["some_stored"] and go["acked_are_stored"]
    assert go["log"] == [
        f"[WRN] Dropping messages due to excessive stream ingest rate on 'A' > 'S': "
        f"IPQ {what} limit reached"
    ]


def test_without_limits_nothing_is_refused(tmp_path: Path) -> None:
    """The defaults (100,000 messages, 128 MiB) leave a burst alone."""

    async def run() -> dict[str, Any]:
        return await _ingest(False, tmp_path, "")

    ours = asyncio.run(run())
    assert not ours["some_refused"] and ours["acked_are_stored"] and not ours["log"]
