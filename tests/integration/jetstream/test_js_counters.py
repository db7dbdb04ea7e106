"""Counters (ADR-49, `allow_msg_counter`): the same session against nats-server and pynats -
the stream rules, every publish error, totals beyond 64 bits, the stored `{"val":...}` body,
`val` in the PubAck, and a counter sourced into an aggregate (`Nats-Counter-Sources`) - and
the totals through nats-py."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import nats
from tests.integration.jetstream.conftest import api
from tests.support.js_script import Step, differences

CREATE = "$JS.API.STREAM.CREATE."


def script() -> list[Step]:
    s: list[Step] = []

    def step(subject: str | None, body: object = None, headers: dict[str, str] | None = None):
        s.append((subject, body, headers))

    def create(name: str, **cfg: object) -> None:
        step(CREATE + name, {"name": name, **cfg})

    # the stream rules
    create("C", subjects=["c.>"], allow_msg_counter=True)
    create("D", subjects=["d.>"])
    create("E", subjects=["e.>"], allow_msg_counter=True, retention="workqueue")
    create("E", subjects=["e.>"], allow_msg_counter=True, retention="interest")
    create("E", subjects=["e.>"], allow_msg_counter=True, discard="new")
    create("E", subjects=["e.>"], allow_msg_counter=True, allow_msg_ttl=True)
    create("E", subjects=["e.>"], allow_msg_counter=True, subject_delete_marker_ttl=10**9)
    create("E", mirror={"name": "C"}, allow_msg_counter=True)
    create("E", mirror={"name": "C"}, allow_msg_counter=True, retention="interest")
    create("E", subjects=["e.>"], allow_msg_counter=True, retention="interest", discard="new")
    create("E", subjects=["e.>"], allow_msg_counter=True, retention="interest", allow_msg_ttl=True)
    create("E", subjects=["e.>"], allow_msg_counter=True, discard="new", allow_msg_ttl=True)
    create("E", mirror={"name": "C"}, allow_msg_counter=True, allow_msg_ttl=True)
    step("$JS.API.STREAM.UPDATE.C", {"name": "C", "subjects": ["c.>"]})
    step("$JS.API.STREAM.UPDATE.D", {"name": "D", "subjects": ["d.>"], "allow_msg_counter": True})
    # publishing
    for body, headers in [
        (b"", {"Nats-Incr": "+5"}),
        (b"", {"Nats-Incr": "-2"}),
        (b"", {"Nats-Incr": "99999999999999999999999999"}),
        (b"x", {"Nats-Incr": "1"}),
        (b"", None),
        (b"x", {"Nats-Msg-Id": "q"}),
        (b"", {"Nats-Incr": ""}),
        (b"x", {"Nats-Incr": "abc"}),
        (b"", {"Nats-Incr": "+-1"}),
        (b"", {"Nats-Incr": "1.5"}),
        (b"", {"Nats-Incr": "1e3"}),
        (b"", {"Nats-Incr": "01"}),
        (b"", {"Nats-Incr": "-0"}),
        (b"", {"Nats-Incr": "+0"}),
        (b"", {"Nats-Incr": "1", "Nats-Rollup": "sub"}),
        (b"", {"Nats-Incr": "abc", "Nats-Rollup": "all"}),
        (b"", {"Nats-Incr": "1", "Nats-Expected-Stream": "C"}),
        (b"", {"Nats-Incr": "1", "Nats-Expected-Last-Sequence": "3"}),
        (b"", {"Nats-Incr": "1", "Nats-Expected-Last-Subject-Sequence": "3"}),
        (b"", {"Nats-Incr": "1", "Nats-Expected-Last-Msg-Id": "m"}),
        (b"", {"Nats-Incr": "1", "Nats-Msg-Id": "m"}),
        (b"", {"Nats-Incr": "1", "Nats-Msg-Id": "m"}),
        (b"x", {"Nats-Incr": "1", "Nats-Msg-Id": "m"}),
        (b"", {"Nats-Incr": "1", "Nats-TTL": "5s"}),
        (b"x", {"Nats-Incr": "1", "Nats-TTL": "5s"}),
        (b"", {"Nats-Incr": "1", "Nats-Stream-Source": "X 1 > > c.a"}),
        (b"", {"Nats-Incr": "1", "Other": "kept"}),
    ]:
        step("c.a", body, headers)
    step("c.b", b"", {"Nats-Incr": "-7"})
    step("d.a", b"", {"Nats-Incr": "1"})
    step("d.a", b"", {"Nats-Incr": "1", "Nats-Expected-Stream": "Z"})
    step("$JS.API.STREAM.MSG.GET.C", {"last_by_subj": "c.a"})
    step("$JS.API.STREAM.MSG.GET.C", {"last_by_subj": "c.b"})
    # a purged subject starts again from zero; a deleted last message gives way to the one before
    step("$JS.API.STREAM.PURGE.C", {"filter": "c.b"})
    step("c.b", b"", {"Nats-Incr": "4"})
    step("c.b", b"", {"Nats-Incr": "4"})
    step("$JS.API.STREAM.MSG.DELETE.C", {"seq": 11})
    step("c.b", b"", {"Nats-Incr": "1"})
    step("$JS.API.STREAM.INFO.C")
    # sourcing: into an aggregate counter (deltas per source), a plain stream and a mirror
    create("A", subjects=["a.>"], allow_msg_counter=True)
    step("a.x", b"", {"Nats-Incr": "+5"})
    create(
        "AGG",
        subjects=["agg.>"],
        allow_msg_counter=True,
        sources=[{"name": "A", "subject_transforms": [{"src": "a.>", "dest": "agg.>"}]}],
    )
    step(None, 0.5)
    step("a.x", b"", {"Nats-Incr": "+2"})
    step(None, 0.5)
    step("agg.x", b"", {"Nats-Incr": "+100"})
    step("a.x", b"", {"Nats-Incr": "-1"})
    create("PLAIN", subjects=["plain.>"], sources=[{"name": "A"}])
    create("M", mirror={"name": "A"})
    step(None, 1.0)
    for seq in range(1, 5):
        step("$JS.API.STREAM.MSG.GET.AGG", {"seq": seq})
    step("$JS.API.STREAM.MSG.GET.PLAIN", {"seq": 1})
    step("$JS.API.STREAM.MSG.GET.M", {"seq": 3})
    return s


async def test_counters_answer_like_nats_server(tmp_path: Path) -> None:
    ignored = {"created", "ts", "first_ts", "last_ts", "time", "_nats.ver", "_nats.level"}
    mismatches = await differences(script(), str(tmp_path), ignored | {"level", "leader", "lag"})
    assert not mismatches, mismatches


async def test_a_counter_through_nats_py(nc: nats.NATS, sname: str) -> None:
    """Concurrent increments from a client land exactly once in the total."""
    await api(
        nc, CREATE + sname, {"name": sname, "subjects": [f"{sname}.>"], "allow_msg_counter": True}
    )
    js = nc.jetstream()
    acks = [await js.publish(f"{sname}.hits", b"", headers={"Nats-Incr": "+3"}) for _ in range(20)]
    assert [(a.seq, a.val) for a in acks] == [(i, str(3 * i)) for i in range(1, 21)]
    raw = await nc.request(f"{sname}.hits", b"", headers={"Nats-Incr": "-10"}, timeout=2)
    assert json.loads(raw.data)["val"] == "50"
    got = await api(nc, f"$JS.API.STREAM.MSG.GET.{sname}", {"last_by_subj": f"{sname}.hits"})
    assert json.loads(base64.b64decode(got["message"]["data"])) == {"val": "50"}
