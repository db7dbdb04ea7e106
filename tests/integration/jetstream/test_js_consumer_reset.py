"""Consumer reset (ADR-60, `$JS.API.CONSUMER.RESET.<stream>.<consumer>`): the same session
against nats-server and pynats, and nats-py's `reset_consumer` end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.js.errors import APIError
from tests.conftest import connect
from tests.integration.jetstream.conftest import api
from tests.support.js_script import normalise
from tests.support.servers import start_server

IGNORED = {"created", "ts", "last_active", "_nats.ver", "_nats.level"}


async def session(nc: nats.NATS) -> list[Any]:
    """Pull three, ack the first, then reset in every allowed and refused way."""
    seen: list[Any] = []

    async def ask(subject: str, body: Any = b"") -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            msg = await nc.request(subject, payload, timeout=1)
        except nats.errors.TimeoutError:
            seen.append((subject, "no answer"))
            return
        seen.append((subject, normalise(json.loads(msg.data), IGNORED)))

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)

    async def pull(consumer: str, n: int) -> list[Any]:
        await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.S.{consumer}", b'{"batch":%d}' % n, inbox)
        got = [await sub.next_msg(timeout=2) for _ in range(n)]
        seen.append([(m.data, m.reply.split(".")[4:7]) for m in got])
        return got

    await ask("$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"]})
    for i in range(10):
        await nc.request(f"s.{i % 2}", b"m%d" % i, timeout=1)
    for name, extra in [
        ("C", {}),
        ("LAST", {"deliver_policy": "last"}),
        ("FROM4", {"deliver_policy": "by_start_sequence", "opt_start_seq": 4}),
        ("NONE", {"ack_policy": "none"}),
        ("NEW", {"deliver_policy": "new"}),
    ]:
        config = {"durable_name": name, "ack_policy": "explicit", **extra}
        await ask(f"$JS.API.CONSUMER.CREATE.S.{name}", {"stream_name": "S", "config": config})
    first, *_ = await pull("C", 3)
    await first.ack_sync()
    await ask("$JS.API.CONSUMER.RESET.S.C")
    await pull("C", 2)
    for body in ({"seq": 5}, {"seq": 0}, {"seq": 50}, b"junk", {"seq": 2, "extra": 1}, {"seq": -1}):
        await ask("$JS.API.CONSUMER.RESET.S.C", body)
    await pull("C", 1)
    await ask("$JS.API.CONSUMER.INFO.S.C")
    await ask("$JS.API.CONSUMER.RESET.S.NOPE")
    await ask("$JS.API.CONSUMER.RESET.NOPE.C")
    await ask("$JS.API.CONSUMER.RESET.S.LAST", {"seq": 3})
    await ask("$JS.API.CONSUMER.RESET.S.LAST")
    await ask("$JS.API.CONSUMER.RESET.S.FROM4", {"seq": 3})
    await ask("$JS.API.CONSUMER.RESET.S.FROM4", {"seq": 4})
    await ask("$JS.API.CONSUMER.RESET.S.FROM4")
    await ask("$JS.API.CONSUMER.RESET.S.NONE", {"seq": 3})
    await pull("NONE", 2)
    await ask("$JS.API.CONSUMER.RESET.S.NEW", {"seq": 3})
    await ask("$JS.API.CONSUMER.RESET.S.NEW")
    await pull("NEW", 0)
    return seen


async def test_consumer_reset_answers_like_nats_server(tmp_path: Path) -> None:
    answers = []
    for oracle in (True, False):
        srv = start_server(["-js", "-sd", str(tmp_path / str(oracle))], oracle=oracle)
        try:
            nc = await connect(srv.url)
            answers.append(await session(nc))
            await nc.close()
        finally:
            srv.stop()
    go, ours = answers
    assert len(go) == len(ours)
    mismatches = [
        f"{i}:\n  go:   {g}\n  ours: {o}"
        for i, (g, o) in enumerate(zip(go, ours, strict=True))
        if g != o
    ]
    assert not mismatches, "\n".join(mismatches)
    # what the session shows either way: after acking m0 and resetting, m1 comes again as
    # consumer sequence 1 (delivered once)
    assert go[8] == [(b"m1", ["1", "2", "1"]), (b"m2", ["1", "3", "2"])]


async def test_nats_py_resets_a_consumer_to_redeliver(nc: nats.NATS, sname: str) -> None:
    js = nc.jetstream()
    await js.add_stream(name=sname, subjects=[f"{sname}.>"])
    for i in range(5):
        await js.publish(f"{sname}.x", b"%d" % i)
    psub = await js.pull_subscribe(f"{sname}.x", durable="worker", stream=sname)
    for msg in await psub.fetch(5, timeout=2):
        await msg.ack_sync()
    reset = await js.reset_consumer(sname, "worker", seq=2)
    assert reset.reset_seq == 2
    again = await psub.fetch(4, timeout=2)
    assert [m.data for m in again] == [b"1", b"2", b"3", b"4"]
    assert [m.metadata.sequence.consumer for m in again] == [1, 2, 3, 4]
    await api(
        nc,
        f"$JS.API.CONSUMER.CREATE.{sname}.LAST",
        {
            "stream_name": sname,
            "config": {"durable_name": "LAST", "deliver_policy": "last", "ack_policy": "explicit"},
        },
    )
    with pytest.raises(APIError) as refused:
        await js.reset_consumer(sname, "LAST", seq=1)
    assert refused.value.err_code == 10204
