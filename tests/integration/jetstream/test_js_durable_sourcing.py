"""Durable sourcing (ADR-59/60): a source or mirror fed by a durable consumer with
`ack_policy: flow_control` on the origin, so a work-queue origin is drained only into the
stream that keeps its messages - on nats-server and pynats alike."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from tests.conftest import connect
from tests.integration.jetstream.conftest import api
from tests.support.js_script import Step, differences
from tests.support.servers import start_server
from tests.support.waiting import wait_until


def script() -> list[Step]:
    s: list[Step] = [("$JS.API.STREAM.CREATE.W", {"name": "W", "subjects": ["w.>"]}, None)]

    def create(name: str, **cfg: object) -> None:
        s.append((f"$JS.API.STREAM.CREATE.{name}", {"name": name, **cfg}, None))

    good = {"name": "c1", "deliver_subject": "dd.c1"}
    create("A", subjects=["a.>"], sources=[{"name": "W", "consumer": {"name": "x"}}])
    create("B", subjects=["b.>"], sources=[{"name": "W", "consumer": {"deliver_subject": "d.b"}}])
    create(
        "C", subjects=["c.>"], sources=[{"name": "W", "consumer": good, "filter_subject": "w.y"}]
    )
    create(
        "D",
        subjects=["d.>"],
        sources=[{"name": "W", "consumer": {"name": "c", "deliver_subject": "d.*"}}],
    )
    create("E", mirror={"name": "W", "consumer": {"deliver_subject": "d.e"}})
    create("F", mirror={"name": "W", "consumer": good})
    create("G", subjects=["g.>"], sources=[{"name": "W", "consumer": good}])
    return s


async def test_durable_source_rules_answer_like_nats_server(tmp_path: Path) -> None:
    mismatches = await differences(
        script(),
        str(tmp_path),
        {
            "created",
            "ts",
            "first_ts",
            "last_ts",
            "time",
            "_nats.ver",
            "_nats.level",
            "level",
            "lag",
            "active",
        },
    )
    assert not mismatches, mismatches


@pytest.mark.parametrize("oracle", [True, False], ids=["go", "pynats"])
async def test_a_work_queue_drains_into_the_stream_that_sources_it(
    tmp_path: Path, oracle: bool
) -> None:
    srv = start_server(["-js", "-sd", str(tmp_path / "js")], oracle=oracle)
    try:
        nc = await connect(srv.url)
        await api(
            nc,
            "$JS.API.STREAM.CREATE.WQ",
            {"name": "WQ", "subjects": ["wq.>"], "retention": "workqueue"},
        )
        for i in range(5):
            await nc.request("wq.job", b"job-%d" % i, timeout=2)
        consumer = {
            "durable_name": "feed",
            "ack_policy": "flow_control",
            "deliver_subject": "feed.wq",
            "max_ack_pending": 100,
        }
        created = await api(
            nc, "$JS.API.CONSUMER.CREATE.WQ.feed", {"stream_name": "WQ", "config": consumer}
        )
        assert created["config"]["flow_control"] is True
        source = {"name": "WQ", "consumer": {"name": "feed", "deliver_subject": "feed.wq"}}
        await api(
            nc,
            "$JS.API.STREAM.CREATE.ARCHIVE",
            {"name": "ARCHIVE", "subjects": ["archive.>"], "sources": [source]},
        )
        for i in range(5, 8):
            await nc.request("wq.job", b"job-%d" % i, timeout=2)

        async def drained() -> bool:
            wq = await api(nc, "$JS.API.STREAM.INFO.WQ")
            archive = await api(nc, "$JS.API.STREAM.INFO.ARCHIVE")
            return wq["state"]["messages"] == 0 and archive["state"]["messages"] == 8

        await wait_until(drained, timeout=10, what="the work queue drained into ARCHIVE")
        bodies = []
        for seq in range(1, 9):
            got = await api(nc, "$JS.API.STREAM.MSG.GET.ARCHIVE", {"seq": seq})
            bodies.append(base64.b64decode(got["message"]["data"]))
        assert bodies == [b"job-%d" % i for i in range(8)]
        await nc.close()
    finally:
        srv.stop()
