"""Advisories: stream created/updated/deleted and the API audit, on `$JS.EVENT.ADVISORY.>`."""

from __future__ import annotations

import json

import nats.errors
import pytest
from tests.integration.jetstream.conftest import api


async def drain(sub, timeout: float = 0.5) -> list:
    out = []
    while True:
        try:
            out.append(await sub.next_msg(timeout=timeout))
        except nats.errors.TimeoutError:
            return out


async def test_stream_lifecycle_advisories(nc, js, sname) -> None:
    sub = await nc.subscribe(f"$JS.EVENT.ADVISORY.STREAM.*.{sname}")
    await js.add_stream(name=sname)
    await js.update_stream(name=sname, max_msgs=5)
    await js.delete_stream(sname)
    events = [await sub.next_msg(timeout=3) for _ in range(3)]
    subjects = [m.subject for m in events]
    assert subjects == [
        f"$JS.EVENT.ADVISORY.STREAM.CREATED.{sname}",
        f"$JS.EVENT.ADVISORY.STREAM.UPDATED.{sname}",
        f"$JS.EVENT.ADVISORY.STREAM.DELETED.{sname}",
    ]
    bodies = [json.loads(m.data) for m in events]
    assert [b["action"] for b in bodies] == ["create", "modify", "delete"]
    for body in bodies:
        assert body["type"] == "io.nats.jetstream.advisory.v1.stream_action"
        assert body["stream"] == sname
        assert len(body["id"]) == 22
        assert body["timestamp"].endswith("Z")


async def test_api_audit_advisory_carries_request_and_response(nc, sname) -> None:
    sub = await nc.subscribe("$JS.EVENT.ADVISORY.API")
    await drain(sub, 0.1)
    request = {"name": sname}
    response = await api(nc, f"$JS.API.STREAM.CREATE.{sname}", request)
    audits = [json.loads(m.data) for m in await drain(sub)]
    mine = [a for a in audits if a["subject"] == f"$JS.API.STREAM.CREATE.{sname}"]
    assert len(mine) == 1
    audit = mine[0]
    assert audit["type"] == "io.nats.jetstream.advisory.v1.api_audit"
    assert json.loads(audit["request"]) == request
    assert json.loads(audit["response"])["config"]["name"] == response["config"]["name"]
    assert audit["client"]["acc"] == "$G"
    assert audit["client"]["kind"] == "Client"
    assert audit["server"]


@pytest.mark.parametrize("with_listener", [False, True])
async def test_api_answers_with_and_without_advisory_listeners(nc, sname, with_listener) -> None:
    """Advisories are only built when someone listens; the API answers either way."""
    sub = await nc.subscribe("$JS.EVENT.ADVISORY.>") if with_listener else None
    r = await api(nc, f"$JS.API.STREAM.CREATE.{sname}", {"name": sname})
    assert r["did_create"] is True
    if sub is not None:
        got = await drain(sub)
        assert any(m.subject.endswith(f"CREATED.{sname}") for m in got)
