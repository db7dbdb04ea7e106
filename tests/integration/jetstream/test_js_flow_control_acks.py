"""`ack_policy: flow_control` (ADR-59/60, API level 4): the config rules as nats-server
answers them, and acknowledgement by answering a flow control request."""

from __future__ import annotations

import json
from pathlib import Path

import nats
from tests.integration.jetstream.conftest import api
from tests.support.js_script import Step, differences
from tests.support.waiting import wait_until


def script() -> list[Step]:
    s: list[Step] = [("$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"]}, None)]

    def create(name: str, pedantic: bool = False, **cfg: object) -> None:
        body: dict[str, object] = {"stream_name": "S", "config": {"name": name, **cfg}}
        if pedantic:
            body["pedantic"] = True
        s.append((f"$JS.API.CONSUMER.CREATE.S.{name}", body, None))

    fc = {"ack_policy": "flow_control"}
    create("A", **fc)
    create("B", **fc, deliver_subject="d.b")
    create("C", **fc, deliver_subject="d.c", flow_control=True, idle_heartbeat=10**9)
    create("D", **fc, deliver_subject="d.d", max_ack_pending=100)
    create("E", **fc, deliver_subject="d.e", ack_wait=5 * 10**9)
    create("F", **fc, deliver_subject="d.f", max_deliver=3)
    create("G", **fc, deliver_subject="d.g", max_ack_pending=-1)
    create("H", True, **fc, deliver_subject="d.h")
    create("I", True, **fc, deliver_subject="d.i", flow_control=True, idle_heartbeat=10**9)
    create("J", ack_policy="bogus")
    return s


async def test_flow_control_ack_rules_answer_like_nats_server(tmp_path: Path) -> None:
    mismatches = await differences(script(), str(tmp_path))
    assert not mismatches, mismatches


async def test_answering_flow_control_acknowledges_what_was_delivered(
    nc: nats.NATS, sname: str
) -> None:
    await api(nc, f"$JS.API.STREAM.CREATE.{sname}", {"name": sname, "subjects": [f"{sname}.>"]})
    for _ in range(30):
        await nc.publish(f"{sname}.x", b"x" * 100)
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    config = {
        "name": "F",
        "ack_policy": "flow_control",
        "deliver_subject": inbox,
        "max_ack_pending": 20,
    }
    await api(nc, f"$JS.API.CONSUMER.CREATE.{sname}.F", {"stream_name": sname, "config": config})
    data = []
    while True:  # 20 messages, then a flow control request: the consumer waits for its answer
        msg = await sub.next_msg(timeout=3)
        if msg.data:
            data.append(msg.data)
        elif msg.reply:
            break
    assert len(data) == 20
    info = await api(nc, f"$JS.API.CONSUMER.INFO.{sname}.F")
    assert (info["num_ack_pending"], info["ack_floor"]["stream_seq"]) == (20, 0)
    await nc.publish(msg.reply, b"")

    async def acked() -> bool:
        info = await api(nc, f"$JS.API.CONSUMER.INFO.{sname}.F")
        return info["ack_floor"]["stream_seq"] == 20

    await wait_until(acked, timeout=5, what="the flow control answer acknowledging 1..20")
    rest = [m.data for m in [await sub.next_msg(timeout=3) for _ in range(10)]]
    assert all(len(d) == 100 for d in rest)
    assert json.loads(json.dumps(info))["config"]["flow_control"] is True
