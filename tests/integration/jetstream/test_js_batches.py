"""Atomic batch publish (ADR-50, `allow_atomic`): the same session against nats-server and
pynats - the stream rules, every per-message and commit-time error, `eob` commits, message
ids and expected-sequence headers inside a batch, the 1000-message limit - nats-py's PubAck
of a commit, the abandon-on-timeout advisory, and a batch cut by kill -9 mid-commit."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats
import pytest
from tests.conftest import connect
from tests.integration.jetstream.conftest import api
from tests.support.js_script import Step, differences
from tests.support.servers import start_server

CREATE = "$JS.API.STREAM.CREATE."


def batch(batch_id: str, seq: int | str | None, commit: str = "", **extra: str) -> dict[str, str]:
    headers = {"Nats-Batch-Id": batch_id}
    if seq is not None:
        headers["Nats-Batch-Sequence"] = str(seq)
    if commit:
        headers["Nats-Batch-Commit"] = commit
    headers.update({k.replace("_", "-"): v for k, v in extra.items()})
    return headers


def script() -> list[Step]:
    s: list[Step] = []

    def step(subject: str, body: object = None, headers: dict[str, str] | None = None) -> None:
        s.append((subject, body, headers))

    step(
        CREATE + "B",
        {
            "name": "B",
            "subjects": ["b.>"],
            "allow_atomic": True,
            "max_msg_size": 1000,
            "allow_rollup_hdrs": True,
        },
    )
    step(CREATE + "P", {"name": "P", "subjects": ["p.>"]})
    step(CREATE + "M", {"name": "M", "mirror": {"name": "B"}, "allow_atomic": True})
    step("p.1", b"x", batch("u1", 1))
    # a batch of three, then every way one goes wrong
    step("b.1", b"a", batch("id1", 1))
    step("b.2", b"b", batch("id1", 2, Other="kept"))
    step("$JS.API.STREAM.INFO.B")
    step("b.3", b"c", batch("id1", 3, "1"))
    step("$JS.API.STREAM.MSG.GET.B", {"seq": 2})
    step("$JS.API.STREAM.MSG.GET.B", {"seq": 3})
    step("b.1", b"a", batch("id2", 2))
    step("b.1", b"a", batch("id3", 1))
    step("b.1", b"a", batch("id3", 3))
    step("b.1", b"a", batch("id3", 2))
    step("b.1", b"a", batch("id4", None))
    step("b.1", b"a", batch("id4", "abc"))
    step("b.1", b"a", batch("id4", 0))
    step("b.1", b"a", batch("x" * 65, 1))
    step("b.1", b"a", batch("", 1))
    step("b.1", b"a", batch("id5", 1, "1"))
    step("b.1", b"a", batch("id6", 1, "eob"))
    step("b.1", b"a", batch("id7", 1))
    step("b.1", b"a", batch("id7", 2, "eob"))
    step("b.1", b"a", batch("id8", 1))
    step("b.1", b"a", batch("id8", 2, "yes"))
    step("b.1", b"a", batch("id8", 3, "1"))
    step("b.1", b"a", batch("c", 1))
    step("b.1", b"a", batch("c", 1))
    step("b.1", b"a", batch("c", 2, "1"))
    step("b.1", b"a", batch("f", 1))
    step("b.1", b"x" * 2000, batch("f", 2))
    step("b.1", b"a", batch("f", 3, "1"))
    # commit-time checks
    step("b.1", b"a", batch("e1", 1, Nats_Expected_Last_Sequence="9"))
    step("b.1", b"a", batch("e1", 2, "1"))
    step("b.1", b"a", batch("e2", 1))
    step("b.1", b"a", batch("e2", 2, "1", Nats_Expected_Last_Sequence="9"))
    step("b.1", b"a", batch("e3", 1, Nats_Msg_Id="m1"))
    step("b.1", b"a", batch("e3", 2, "1", Nats_Msg_Id="m1"))
    step("b.1", b"a", batch("e4", 1, "1", Nats_Msg_Id="m1"))
    step("b.1", b"a", batch("e5", 1, "1", Nats_Msg_Id="m1"))
    step("b.1", b"a", batch("e6", 1, "1", Nats_Expected_Last_Msg_Id="m1"))
    step("b.1", b"a", batch("e7", 1, Nats_Expected_Last_Subject_Sequence="99"))
    step("b.1", b"a", batch("e7", 2, "1"))
    step("b.9", b"a", batch("e8", 1, Nats_Expected_Last_Subject_Sequence="0"))
    step("b.9", b"a", batch("e8", 2, "1", Nats_Expected_Last_Subject_Sequence="0"))
    step("b.8", b"a", batch("e9", 1, Nats_Rollup="sub"))
    step("b.8", b"a", batch("e9", 2, "1", Nats_Rollup="all"))
    step("b.8", b"a", batch("e10", 1, Nats_Rollup="sub"))
    step("b.8", b"a", batch("e10", 2, "1"))
    step("b.7", b"a", batch("e11", 1, Nats_Expected_Stream="Z"))
    step("b.7", b"a", batch("e11", 2, "1"))
    step("b.7", b"a", batch("e12", 1, Nats_TTL="5s"))
    step("b.7", b"a", batch("e12", 2, "1"))
    step("b.6", b"a", batch("r1", 1, Nats_Required_Api_Level="99"))
    step("b.6", b"a", batch("r1", 2, "1"))
    step("b.6", b"a", batch("r2", 1, Nats_Required_Api_Level="1"))
    step("b.6", b"a", batch("r2", 2, "1"))
    step("$JS.API.STREAM.INFO.B")
    for seq in range(1, 12):
        step("$JS.API.STREAM.MSG.GET.B", {"seq": seq})
    step("$JS.API.STREAM.UPDATE.B", {"name": "B", "subjects": ["b.>"], "max_msg_size": 1000})
    step("b.1", b"a", batch("id15", 1))
    return s


async def test_atomic_batches_answer_like_nats_server(tmp_path: Path) -> None:
    mismatches = await differences(script(), str(tmp_path))
    assert not mismatches, mismatches


async def test_a_thousand_messages_commit_and_one_more_is_too_many(
    nc: nats.NATS, sname: str
) -> None:
    await api(nc, CREATE + sname, {"name": sname, "subjects": [f"{sname}.>"], "allow_atomic": True})
    for batch_id, size in (("fits", 1000), ("too-big", 1001)):
        for n in range(1, size):
            await nc.publish(f"{sname}.x", b"m", headers=batch(batch_id, n))
        last = await nc.request(f"{sname}.x", b"m", headers=batch(batch_id, size, "1"), timeout=5)
        answers = json.loads(last.data)
        if size == 1000:
            assert answers == {"stream": sname, "seq": 1000, "batch": "fits", "count": 1000}
        else:
            assert answers["error"]["err_code"] == 10199
    info = await api(nc, f"$JS.API.STREAM.INFO.{sname}")
    assert info["state"]["messages"] == 1000


async def test_nats_py_reads_the_commit_ack_and_the_batch_arrives_whole(
    nc: nats.NATS, sname: str
) -> None:
    js = nc.jetstream()
    await api(nc, CREATE + sname, {"name": sname, "subjects": [f"{sname}.>"], "allow_atomic": True})
    psub = await js.pull_subscribe(f"{sname}.>", durable="reader", stream=sname)
    await nc.request(f"{sname}.a", b"1", headers=batch("order-7", 1), timeout=2)
    await nc.request(f"{sname}.b", b"2", headers=batch("order-7", 2), timeout=2)
    info = await api(nc, f"$JS.API.STREAM.INFO.{sname}")
    assert info["state"]["messages"] == 0
    ack = await js.publish(f"{sname}.c", b"3", headers=batch("order-7", 3, "1"))
    assert (ack.seq, ack.batch_id, ack.batch_size) == (3, "order-7", 3)
    got = await psub.fetch(3, timeout=2)
    assert [m.data for m in got] == [b"1", b"2", b"3"]


async def test_an_idle_batch_is_abandoned_with_an_advisory(nc: nats.NATS, sname: str) -> None:
    await api(nc, CREATE + sname, {"name": sname, "subjects": [f"{sname}.>"], "allow_atomic": True})
    advisories = await nc.subscribe(f"$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.{sname}")
    await nc.request(f"{sname}.a", b"1", headers=batch("idle", 1), timeout=2)
    event = json.loads((await advisories.next_msg(timeout=15)).data)
    assert event["type"] == "io.nats.jetstream.advisory.v1.stream_batch_abandoned"
    assert (event["stream"], event["batch"], event["reason"]) == (sname, "idle", "timeout")
    late = await nc.request(f"{sname}.a", b"2", headers=batch("idle", 2, "1"), timeout=2)
    assert json.loads(late.data)["error"]["err_code"] == 10176


async def test_kill_9_during_commits_keeps_batches_whole(tmp_path: Path) -> None:
    """Commit 200-message batches while the server is killed: after the restart every batch
    is either all there (every acknowledged one is) or not there at all."""
    store = tmp_path / "js"
    srv = start_server(["-js", "-sd", str(store)])
    port = srv.port
    nc = await connect(srv.url)
    await api(nc, CREATE + "K", {"name": "K", "subjects": ["k.>"], "allow_atomic": True})
    acked: list[str] = []

    async def commit_batches() -> None:
        for b in range(1000):
            for n in range(1, 200):
                await nc.publish("k.x", b"%d" % n, headers=batch(f"b{b}", n))
            reply = await nc.request("k.x", b"200", headers=batch(f"b{b}", 200, "1"), timeout=2)
            if b"error" not in reply.data:
                acked.append(f"b{b}")

    writer = asyncio.create_task(commit_batches())
    while len(acked) < 5:
        await asyncio.sleep(0.01)
    srv.kill()
    writer.cancel()
    await asyncio.gather(writer, return_exceptions=True)
    await nc.close()
    srv = start_server(["-js", "-sd", str(store)], port=port)
    try:
        nc = await connect(srv.url)
        info = await api(nc, "$JS.API.STREAM.INFO.K")
        count = info["state"]["messages"]
        assert count % 200 == 0 and count >= 200 * len(acked), (count, acked)
        last = await api(nc, "$JS.API.STREAM.MSG.GET.K", {"last_by_subj": "k.x"})
        assert last["message"]["seq"] == count
        await nc.close()
    finally:
        srv.stop()


@pytest.mark.parametrize("oracle", [True, False], ids=["go", "pynats"])
async def test_a_thousand_open_batches_is_the_servers_limit(tmp_path: Path, oracle: bool) -> None:
    """50 open batches per stream, 1000 on the server: the next start gets 429 10210."""
    srv = start_server(["-js", "-sd", str(tmp_path / "js")], oracle=oracle)
    try:
        nc = await connect(srv.url)
        refused: list[tuple[int, int]] = []
        for i in range(21):
            await api(
                nc,
                CREATE + f"S{i}",
                {"name": f"S{i}", "subjects": [f"s{i}.>"], "allow_atomic": True},
            )
            for b in range(50 if i < 20 else 2):
                reply = await nc.request(f"s{i}.x", b"a", headers=batch(f"b{b}", 1), timeout=2)
                if reply.data:
                    assert json.loads(reply.data)["error"]["err_code"] == 10210
                    refused.append((i, b))
        extra = await nc.request("s0.x", b"a", headers=batch("b50", 1), timeout=2)
        assert json.loads(extra.data)["error"]["code"] == 429  # the stream's own 50 too
        assert refused == [(20, 0), (20, 1)]
        await nc.close()
    finally:
        srv.stop()
