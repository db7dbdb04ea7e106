"""The server-wide JetStream limits (`jetstream { limits {} }`) and the clustering keys a single
server reads (`unique_tag`, `max_outstanding_catchup`), differential: the Go nats-server and
pynats load the same file and must answer the same.

What nats-server 2.15.1 does (parseJetStreamLimits, setConsumerConfigDefaults,
checkConsumerCfg, checkStreamCfg):
- `max_ack_pending`: a consumer's default max_ack_pending is the lowest of 1000, this and the
  account's; a higher one is refused (10121 `consumer max ack pending exceeds system limit of
  <n>`).
- `max_request_batch`: a pull consumer without `max_batch` (or a negative one) gets it; a
  higher one is refused (10125); a pull request for more is answered `409 Exceeded
  MaxRequestBatch of <n>`. With `pedantic` a missing max_batch is refused.
- `duplicate_window`: a stream without `duplicate_window` gets the lowest of 2m, this and its
  max_age; a longer one, on create or update, is 10052 `duplicates window can not be larger
  then server limit of <duration>` (after the max_age rule).
- `max_ha_assets` counts replicated assets, which a single server does not have: it is only
  shown.
- /varz `jetstream.limits` and /jsz `limits` show the limits that are set (`max_duplicate_window`
  in ns); `unique_tag` (trimmed, lower case) is in `jetstream.config`; `max_outstanding_catchup`
  is shown nowhere. `$JS.API.INFO` shows none of them.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
import pytest
from tests.conftest import connect
from tests.support.js_script import normalise
from tests.support.servers import start_server

LIMITS = """
  limits { max_ack_pending: 50, max_ha_assets: 3, max_request_batch: 10, duplicate_window: "30s" }
  unique_tag: " AZ: "
  max_outstanding_catchup: 64M
"""

S = 1_000_000_000


def _consumer(stream: str, name: str, **config: Any) -> tuple[str, dict[str, Any]]:
    subject = f"$JS.API.CONSUMER.CREATE.{stream}.{name}"
    body = {"stream_name": stream, "config": {"durable_name": name, "ack_policy": "explicit"}}
    body["config"].update(config)
    return subject, body


def script() -> list[tuple[str, dict[str, Any]]]:
    steps: list[tuple[str, dict[str, Any]]] = [
        ("$JS.API.STREAM.CREATE.S1", {"name": "S1", "duplicate_window": 60 * S}),
        ("$JS.API.STREAM.CREATE.S2", {"name": "S2", "subjects": ["s2"]}),
        (
            "$JS.API.STREAM.UPDATE.S2",
            {"name": "S2", "subjects": ["s2"], "duplicate_window": 31 * S},
        ),
        (
            "$JS.API.STREAM.UPDATE.S2",
            {"name": "S2", "subjects": ["s2"], "duplicate_window": 20 * S},
        ),
        ("$JS.API.STREAM.CREATE.S3", {"name": "S3", "duplicate_window": 30 * S, "max_age": 10 * S}),
        ("$JS.API.STREAM.CREATE.S4", {"name": "S4", "max_age": 10 * S}),
        ("$JS.API.STREAM.CREATE.S5", {"name": "S5", "duplicate_window": 30 * S}),
    ]
    for name, config in (
        ("C1", {"max_ack_pending": 100}),
        ("C2", {}),
        ("C3", {"max_batch": 20}),
        ("C4", {"max_batch": 5}),
        ("C5", {"ack_policy": "none", "deliver_subject": "dx"}),
        ("C6", {"deliver_subject": "dy"}),
        ("C7", {"max_batch": -1}),
        ("C8", {"max_ack_pending": 50, "max_batch": 10}),
    ):
        steps.append(_consumer("S2", name, **config))
    subject, body = _consumer("S2", "P1")
    steps.append((subject, {**body, "pedantic": True}))
    return steps


async def pull(nc: nats.NATS, consumer: str, batch: int) -> list[Any]:
    """What a pull request for `batch` gets back: the status, or how many messages came."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    request = json.dumps({"batch": batch, "no_wait": True}).encode()
    await nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.S2.{consumer}", request, reply=inbox)
    got: list[Any] = []
    while True:
        msg = await sub.next_msg(timeout=3)
        status = (msg.headers or {}).get("Status")
        if status:
            got.append((status, (msg.headers or {}).get("Description")))
            break
        got.append(len(msg.data))
    await sub.unsubscribe()
    return got


async def run(oracle: bool, tmp: Path) -> dict[str, Any]:
    name = "go" if oracle else "ours"
    conf = tmp / f"{name}.conf"
    conf.write_text(f'jetstream {{ store_dir: "{tmp / name}"\n{LIMITS} }}\n')
    srv = start_server(["-c", str(conf)], oracle=oracle, http_port=-1)
    out: dict[str, Any] = {"answers": []}
    try:
        nc = await connect(srv.url)
        for subject, body in script():
            msg = await nc.request(subject, json.dumps(body).encode(), timeout=3)
            out["answers"].append((subject, normalise(json.loads(msg.data))))
        for _ in range(3):
            await nc.publish("s2", b"x")
        await nc.flush()
        out["pulls"] = [await pull(nc, c, n) for c, n in (("C2", 20), ("C2", 10), ("C4", 8))]
        info = json.loads((await nc.request("$JS.API.INFO", b"", timeout=3)).data)
        out["info_limits"] = info["limits"]
        await nc.close()
        varz = srv.http_json("/varz")["jetstream"]
        out["varz_limits"] = varz["limits"]
        out["varz_unique_tag"] = varz["config"].get("unique_tag")
        out["varz_config_keys"] = sorted(varz["config"])
        jsz = srv.http_json("/jsz")
        out["jsz_limits"] = jsz["limits"]
        out["jsz_unique_tag"] = jsz["config"].get("unique_tag")
    finally:
        srv.stop()
    assert not any("Traceback" in line for line in srv.log_lines), srv.log_text()
    out["notes"] = [line for line in srv.log_lines if "not supported by pynats" in line]
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("js-server-limits")

    async def both() -> dict[str, dict[str, Any]]:
        return {"go": await run(True, tmp), "ours": await run(False, tmp)}

    return asyncio.run(both())


def test_stream_and_consumer_answers_are_the_go_servers(
    results: dict[str, dict[str, Any]],
) -> None:
    go, ours = results["go"]["answers"], results["ours"]["answers"]
    mismatches = [
        f"{g[0]}:\n  go:   {g[1]}\n  ours: {o[1]}" for g, o in zip(go, ours, strict=True) if g != o
    ]
    assert not mismatches, "\n".join(mismatches)
    answers = dict(go)
    assert answers["$JS.API.STREAM.CREATE.S1"]["error"]["description"] == (
        "duplicates window can not be larger then server limit of 30s"
    )
    assert answers["$JS.API.CONSUMER.CREATE.S2.C1"]["error"]["err_code"] == 10121
    assert answers["$JS.API.CONSUMER.CREATE.S2.C3"]["error"]["err_code"] == 10125
    assert answers["$JS.API.CONSUMER.CREATE.S2.C2"]["config"]["max_batch"] == 10


def test_pull_requests_over_the_batch_limit(results: dict[str, dict[str, Any]]) -> None:
    assert results["ours"]["pulls"] == results["go"]["pulls"]
    assert results["go"]["pulls"][0] == [("409", "Exceeded MaxRequestBatch of 10")]


def test_monitoring_shows_the_limits(results: dict[str, dict[str, Any]]) -> None:
    go, ours = results["go"], results["ours"]
    for key in (
        "info_limits",
        "varz_limits",
        "varz_unique_tag",
        "varz_config_keys",
        "jsz_limits",
        "jsz_unique_tag",
    ):
        assert ours[key] == go[key], key
    assert go["varz_limits"] == {
        "max_request_batch": 10,
        "max_ack_pending": 50,
        "max_ha_assets": 3,
        "max_duplicate_window": 30 * S,
        "default_max_consumers": 1000,
    }
    assert go["varz_unique_tag"] == "az:"
    assert ours["notes"] == []
