"""Offline assets (ADR-44): a stored stream or consumer that needs a newer API level than
this server has is not served - its info answers 10194/10195 with the reason, lists name it
under `offline` and `missing`, and its files are left alone."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import connect
from tests.integration.jetstream.conftest import api, error_of
from tests.support.servers import start_server


def raise_required_level(meta: Path, level: int) -> None:
    doc = json.loads(meta.read_text())
    doc["config"].setdefault("metadata", {})["_nats.req.level"] = str(level)
    meta.write_text(json.dumps(doc))


async def test_a_stream_and_a_consumer_from_a_newer_server_stay_offline(tmp_path: Path) -> None:
    store = tmp_path / "js"
    srv = start_server(["-js", "-sd", str(store)])
    port = srv.port
    nc = await connect(srv.url)
    for name in ("NEW", "OLD"):
        await api(
            nc, f"$JS.API.STREAM.CREATE.{name}", {"name": name, "subjects": [f"{name.lower()}.>"]}
        )
        await nc.request(f"{name.lower()}.x", b"kept", timeout=2)
    for consumer in ("C_NEW", "C_OLD"):
        config = {"durable_name": consumer, "ack_policy": "explicit"}
        await api(
            nc, f"$JS.API.CONSUMER.CREATE.OLD.{consumer}", {"stream_name": "OLD", "config": config}
        )
    await nc.close()
    srv.stop()
    streams = store / "jetstream" / "$G" / "streams"
    raise_required_level(streams / "NEW" / "meta.inf", 9)
    raise_required_level(streams / "OLD" / "obs" / "C_NEW" / "meta.inf", 7)
    before = sorted(p.name for p in (streams / "NEW").rglob("*"))
    srv = start_server(["-js", "-sd", str(store)], port=port)
    try:
        nc = await connect(srv.url)
        info = await api(nc, "$JS.API.STREAM.INFO.NEW")
        reason = "unsupported - required API level: 9, current API level: 4"
        assert error_of(info) == (500, 10194, f"stream is offline: {reason}")
        listed = await api(nc, "$JS.API.STREAM.LIST", {})
        assert [s["config"]["name"] for s in listed["streams"]] == ["OLD"]
        assert listed["offline"] == {"NEW": reason} and listed["missing"] == ["NEW"]
        again = await api(nc, "$JS.API.STREAM.CREATE.NEW", {"name": "NEW", "subjects": ["new.>"]})
        assert error_of(again)[1] == 10194
        consumer = await api(nc, "$JS.API.CONSUMER.INFO.OLD.C_NEW")
        assert error_of(consumer) == (
            500,
            10195,
            "consumer is offline: unsupported - required API level: 7, current API level: 4",
        )
        consumers = await api(nc, "$JS.API.CONSUMER.LIST.OLD", {})
        assert [c["name"] for c in consumers["consumers"]] == ["C_OLD"]
        assert list(consumers["offline"]) == ["C_NEW"]
        assert (await api(nc, "$JS.API.STREAM.INFO.OLD"))["state"]["messages"] == 1
        await nc.close()
        assert sorted(p.name for p in (streams / "NEW").rglob("*")) == before
        assert any("is offline" in line for line in srv.log_lines)
    finally:
        srv.stop()
