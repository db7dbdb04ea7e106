"""Message schedules (ADR-51): the same session against nats-server and pynats (stream rules,
every publish error, an `@at` firing, cancelling), then recurring schedules (`@every`, cron
with a time zone, subject sampling) and a schedule that survives a restart, on both servers."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import nats
import pytest
from tests.conftest import connect
from tests.integration.jetstream.conftest import api
from tests.support.js_script import Step, differences
from tests.support.servers import start_server
from tests.support.waiting import wait_until

CREATE = "$JS.API.STREAM.CREATE."


def at(seconds: float) -> str:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return "@at " + when.strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule(pattern: str, target: str = "s.out", **extra: str) -> dict[str, str]:
    headers = {"Nats-Schedule": pattern, "Nats-Schedule-Target": target}
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    return headers


def script() -> list[Step]:
    s: list[Step] = []

    def step(subject: str | None, body: object = None, headers: dict[str, str] | None = None):
        s.append((subject, body, headers))

    def create(name: str, **cfg: object) -> None:
        step(CREATE + name, {"name": name, **cfg})

    create("S", subjects=["s.>"], allow_msg_schedules=True)
    create("S2", subjects=["t.>"], allow_msg_schedules=True, discard="new")
    create("S3", mirror={"name": "S"}, allow_msg_schedules=True)
    create("S4", subjects=["u.>"], sources=[{"name": "S"}], allow_msg_schedules=True)
    create("S5", subjects=["v.>"], allow_msg_schedules=True, allow_msg_ttl=True)
    create("P", subjects=["p.>"], allow_msg_schedules=True, pedantic=True)
    create("C", subjects=["c.>"], allow_msg_schedules=True, allow_msg_counter=True)
    create("N", subjects=["n.>"])
    step("$JS.API.STREAM.UPDATE.S", {"name": "S", "subjects": ["s.>"]})
    step("n.x", b"", schedule("@every 1s", "n.y"))
    step("$JS.API.STREAM.UPDATE.N", {"name": "N", "subjects": ["n.>"], "allow_msg_schedules": True})
    far = "@at 2099-01-01T00:00:00Z"
    for subject, headers in [
        ("s.e1", {"Nats-Schedule": far}),
        ("s.e2", schedule(far, "s.e2")),
        ("s.e3", schedule("@at bogus")),
        ("s.e4", schedule(far, "zz.out")),
        ("s.e5", schedule(far, "s.*")),
        ("s.e6", schedule(far, Nats_Schedule_TTL="5s")),
        ("s.e7", schedule(far, Nats_Schedule_TTL="junk")),
        ("s.e8", schedule(far, Nats_Rollup="all")),
        ("s.e9", schedule(far, Nats_Schedule_Rollup="all")),
        ("s.e10", schedule("@every 500ms")),
        ("s.e11", schedule("* * * * *")),
        ("s.e12", schedule("0 0 0 L * *")),
        ("s.e13", schedule("0 0 0 * * 7")),
        ("s.e14", schedule("60 0 0 * * *")),
        ("s.e15", schedule("@daily", Nats_Schedule_Time_Zone="Nowhere/Else")),
        ("s.e16", schedule("@every 1s", Nats_Schedule_Time_Zone="Europe/Amsterdam")),
        ("s.e17", schedule(far, Nats_Schedule_Source="s.*")),
        ("s.e18", schedule(far, Nats_Schedule_Source="s.e18")),
        ("s.e19", schedule(far, Nats_Schedule_Source="s.out")),
        ("s.ok1", schedule("0 0 0 1 JAN,FEB MON-FRI")),
        ("s.ok2", schedule("0 0 0 ? * *")),
        ("s.ok3", schedule("@every 1m30s")),
        ("s.ok4", schedule("@weekly", Nats_Schedule_Time_Zone="America/New_York")),
        ("s.c1", {"Nats-Schedule-Target": "s.y"}),
        ("s.c2", {"Nats-Schedule-Next": "purge"}),
        ("s.c3", {"Nats-Scheduler": "s.*", "Nats-Schedule-Next": "purge"}),
        ("s.c4", {"Nats-Scheduler": "s.c4", "Nats-Schedule-Next": "purge"}),
        ("s.c5", {"Nats-Scheduler": "s.ok3"}),
        ("s.c6", {"Nats-Scheduler": "s.ok3", "Nats-Schedule-Next": "purge"}),
    ]:
        step(subject, b"body", headers)
    step("$JS.API.STREAM.MSG.GET.S", {"last_by_subj": "s.ok1"})
    step("$JS.API.STREAM.MSG.GET.S", {"last_by_subj": "s.ok3"})
    step("s.data", b"sampled")
    step("s.once", b"hello", schedule(at(2), X="kept"))
    step("s.sampler", b"own", schedule(at(3), "s.sampled", Nats_Schedule_Source="s.data"))
    step(None, 4.5)
    for subject in ("s.out", "s.sampled", "s.once", "s.sampler"):
        step("$JS.API.STREAM.MSG.GET.S", {"last_by_subj": subject})
    return s


async def test_schedules_answer_like_nats_server(tmp_path: Path) -> None:
    mismatches = await differences(script, str(tmp_path))
    assert not mismatches, mismatches


async def last_on(nc: nats.NATS, stream: str, subject: str) -> dict | None:
    reply = await api(nc, f"$JS.API.STREAM.MSG.GET.{stream}", {"last_by_subj": subject})
    return reply.get("message")


def headers_of(message: dict) -> bytes:
    return base64.b64decode(message.get("hdrs", ""))


@pytest.mark.parametrize("oracle", [True, False], ids=["go", "pynats"])
async def test_recurring_schedules_fire_again_and_stop_when_cancelled(
    tmp_path: Path, oracle: bool
) -> None:
    srv = start_server(["-js", "-sd", str(tmp_path / "js")], oracle=oracle)
    try:
        nc = await connect(srv.url)
        await api(nc, CREATE + "R", {"name": "R", "subjects": ["r.>"], "allow_msg_schedules": True})
        await nc.request("r.tick", b"tick", headers=schedule("@every 1s", "r.ticks"), timeout=2)
        await nc.request(
            "r.cron",
            b"cron",
            headers=schedule("*/1 * * * * *", "r.crons", Nats_Schedule_Time_Zone="Asia/Tokyo"),
            timeout=2,
        )

        async def count(subject: str) -> int:
            info = await api(nc, "$JS.API.STREAM.INFO.R", {"subjects_filter": subject})
            return info["state"].get("subjects", {}).get(subject, 0)

        await wait_until(lambda: count("r.ticks"), timeout=5, what="a tick")
        await wait_until(lambda: count("r.crons"), timeout=5, what="a cron firing")
        tick = await last_on(nc, "R", "r.ticks")
        assert tick is not None and base64.b64decode(tick["data"]) == b"tick"
        assert b"Nats-Scheduler: r.tick\r\nNats-Schedule-Next: 20" in headers_of(tick)
        first = await count("r.ticks")
        await wait_until(lambda: _more(count, "r.ticks", first), timeout=5, what="a second tick")
        cancel = await nc.request(
            "r.stop",
            b"",
            headers={"Nats-Scheduler": "r.tick", "Nats-Schedule-Next": "purge"},
            timeout=2,
        )
        assert "seq" in json.loads(cancel.data)
        assert await last_on(nc, "R", "r.tick") is None
        await nc.close()
    finally:
        srv.stop()


async def _more(count, subject: str, than: int) -> bool:
    return await count(subject) > than


@pytest.mark.parametrize("oracle", [True, False], ids=["go", "pynats"])
async def test_an_at_schedule_missed_while_down_fires_after_the_restart(
    tmp_path: Path, oracle: bool
) -> None:
    store = tmp_path / "js"
    srv = start_server(["-js", "-sd", str(store)], oracle=oracle)
    port = srv.port
    nc = await connect(srv.url)
    await api(nc, CREATE + "D", {"name": "D", "subjects": ["d.>"], "allow_msg_schedules": True})
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    pattern = "@at " + due.strftime("%Y-%m-%dT%H:%M:%SZ")
    await nc.request("d.later", b"late", headers=schedule(pattern, "d.out"), timeout=2)
    await nc.close()
    srv.stop()
    # down while it is due: the firing is missed
    await wait_until(lambda: dt.datetime.now(dt.UTC) > due, timeout=5, step=0.05)
    srv = start_server(["-js", "-sd", str(store)], oracle=oracle, port=port)
    try:
        nc = await connect(srv.url)

        async def fired() -> dict | None:
            return await last_on(nc, "D", "d.out")

        message = await wait_until(fired, timeout=8, what="the missed firing")
        assert base64.b64decode(message["data"]) == b"late"
        await wait_until(lambda: _gone(nc), timeout=5, what="the schedule deleted")
        await nc.close()
    finally:
        srv.stop()


async def _gone(nc: nats.NATS) -> bool:
    return await last_on(nc, "D", "d.later") is None
