"""Stream backup and restore (`$JS.API.STREAM.SNAPSHOT` / `RESTORE`) against the Go server.

The same session runs on pynats and on nats-server 2.15 and every answer is compared: the
snapshot response, the archive inside the chunks, how the transfer ends, the restore's
answers, and the restored stream and consumers. Backups also cross: one the Go server made is
restored by pynats and one pynats made by the Go server, and the messages come back whole.
"""

from __future__ import annotations

import json
import os
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from tests.conftest import connect
from tests.support.backups import api, restore, snapshot
from tests.support.servers import RunningServer, oracle_214_server_path, start_server

VOLATILE = {
    "created",
    "ts",
    "first_ts",
    "last_ts",
    "start",
    "end",
    "timestamp",
    "id",
}


def mask(value: Any) -> Any:
    """`value` without what differs from run to run (times, ids, the server's own metadata)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in VOLATILE or k == "Timestamp":
                out[k] = "*"
            elif k == "metadata":
                out[k] = {m: x for m, x in v.items() if not m.startswith("_nats.")} or None
            elif k in ("cluster", "client", "last_active"):
                continue
            else:
                out[k] = mask(v)
        return out
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, RunningServer]]:
    running = {
        "py": start_server(["-js", "-sd", str(tmp_path / "py")]),
        "go": start_server(["-js", "-sd", str(tmp_path / "go")], oracle=True),
    }
    yield running
    for srv in running.values():
        srv.stop()


async def fill(nc: nats.NATS, storage: str, count: int = 200) -> None:
    """Stream S: messages on several subjects, some with headers, a deleted one in the middle
    and the last one deleted (a trailing gap); consumer C with acks pending, F untouched."""
    await api(nc, "$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"], "storage": storage})
    js = nc.jetstream()
    for i in range(1, count + 1):
        hdrs = {"Nats-Msg-Id": f"id-{i}", "X-I": str(i)} if i % 10 == 0 else None
        await js.publish(f"s.{i % 7}", f"message {i} ".encode() * (i % 5 + 1), headers=hdrs)
    await api(nc, "$JS.API.STREAM.MSG.DELETE.S", {"seq": 3})
    await api(nc, "$JS.API.STREAM.MSG.DELETE.S", {"seq": count})
    await api(
        nc,
        "$JS.API.CONSUMER.CREATE.S.C",
        {"stream_name": "S", "config": {"durable_name": "C", "ack_policy": "explicit"}},
    )
    await api(
        nc,
        "$JS.API.CONSUMER.CREATE.S.F",
        {
            "stream_name": "S",
            "config": {"durable_name": "F", "ack_policy": "all", "filter_subject": "s.1"},
        },
    )
    sub = await js.pull_subscribe_bind("C", stream="S")
    msgs = await sub.fetch(4, timeout=3)
    await msgs[1].ack_sync()


async def all_messages(nc: nats.NATS, last_seq: int) -> list[Any]:
    out = []
    for seq in range(1, last_seq + 1):
        resp = await api(nc, "$JS.API.STREAM.MSG.GET.S", {"seq": seq})
        out.append(mask(resp.get("message") or resp["error"]["err_code"]))
    return out


async def session(url: str, storage: str) -> list[Any]:
    """Back S up, delete it, restore it: every answer on the way, masked."""
    nc = await connect(url)
    try:
        await fill(nc, storage)
        before = await all_messages(nc, 200)
        snap = await snapshot(nc, "S", chunk_size=1024)
        entries = snap.entries()
        transcript: list[Any] = [
            mask(snap.response),
            snap.end_status,
            [(e.name, e.sequence, e.header, e.payload) for e in entries if e.sequence],
            [mask(json.loads(e.payload)) for e in entries if not e.sequence and e.name],
            [e.name for e in entries if not e.sequence],
        ]
        config, state = snap.response["config"], snap.response["state"]
        transcript.append(await restore(nc, config, snap.data, state=state))  # exists: refused
        await api(nc, "$JS.API.STREAM.DELETE.S")
        done = await restore(nc, config, snap.data, state=state, chunk=700)
        transcript.append(mask(done))
        info = await api(nc, "$JS.API.STREAM.INFO.S", {"deleted_details": True})
        transcript.append(mask(info["state"]))
        for name in ("C", "F"):
            transcript.append(mask(await api(nc, f"$JS.API.CONSUMER.INFO.S.{name}")))
        after = await all_messages(nc, 200)
        assert after == before
        # the restored consumer goes on where it was: the unacked messages come again
        sub = await nc.jetstream().pull_subscribe_bind("C", stream="S")
        msgs = await sub.fetch(2, timeout=3)
        transcript.append([m.metadata.sequence.stream for m in msgs])
        return transcript
    finally:
        await nc.close()


@pytest.mark.parametrize("storage", ["file", "memory"])
async def test_backup_and_restore_match_go(servers: dict[str, RunningServer], storage: str) -> None:
    py = await session(servers["py"].url, storage)
    go = await session(servers["go"].url, storage)
    assert py == go
    assert py[1] == "204"  # several full chunks, then the end with its status


async def errors(url: str) -> list[Any]:
    nc = await connect(url)
    try:
        await api(nc, "$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"]})
        await nc.publish("s.1", b"one")
        out = [
            await api(nc, "$JS.API.STREAM.SNAPSHOT.S", {}),
            await api(nc, "$JS.API.STREAM.SNAPSHOT.S", b""),
            await api(nc, "$JS.API.STREAM.SNAPSHOT.X", {"deliver_subject": "a"}),
            await api(nc, "$JS.API.STREAM.SNAPSHOT.X", {"bogus": 1}),
            await api(nc, "$JS.API.STREAM.SNAPSHOT.S", {"deliver_subject": "q", "bogus": 1}),
            await api(nc, "$JS.API.STREAM.SNAPSHOT.S", {"deliver_subject": "a.*"}),
            await api(nc, "$JS.API.STREAM.SNAPSHOT.S", {"no_consumers": True}),
            await api(nc, "$JS.API.STREAM.SNAPSHOT.S", {"deliver_subject": "q", "chunk_size": "x"}),
            await api(nc, "$JS.API.STREAM.RESTORE.S", {"config": {"name": "S"}}),
            await api(nc, "$JS.API.STREAM.RESTORE.X", {"config": {"name": "Y"}}),
            await api(nc, "$JS.API.STREAM.RESTORE.X", b""),
            await api(nc, "$JS.API.STREAM.RESTORE.X", {"config": {"name": "X"}, "bogus": 1}),
            await api(nc, "$JS.API.STREAM.RESTORE.X", {"config": {"name": "X", "retention": "x"}}),
            await api(
                nc,
                "$JS.API.STREAM.RESTORE.X",
                {"config": {"name": "X", "subjects": ["a.>", "a.b"]}},
            ),
            await api(nc, "$JS.API.STREAM.RESTORE.X", {"config": {"name": "X", "max_age": -1}}),
        ]
        snap = await snapshot(nc, "S")
        cfg = {"name": "R", "subjects": ["r.>"]}
        out.append(await restore(nc, cfg, b"garbage"))
        out.append(await restore(nc, cfg, snap.data[: len(snap.data) // 2]))
        out.append(await restore(nc, cfg, b""))
        out.append(await api(nc, "$JS.API.STREAM.INFO.R"))
        return [mask(x) for x in out]
    finally:
        await nc.close()


async def test_bad_requests_and_uploads_are_answered_as_go_answers(
    servers: dict[str, RunningServer],
) -> None:
    assert await errors(servers["py"].url) == await errors(servers["go"].url)


async def test_a_receiver_that_stops_acking_ends_the_snapshot_with_408(
    servers: dict[str, RunningServer],
) -> None:
    ends = {}
    for which, srv in servers.items():
        nc = await connect(srv.url)
        try:
            await api(nc, "$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"]})
            js = nc.jetstream()
            for _ in range(40):  # incompressible: 40 KB of S2 stream
                await js.publish("s.x", random.randbytes(1000))
            snap = await snapshot(nc, "S", ack=False, chunk_size=1024, window_size=2048)
            ends[which] = (snap.end_status, snap.end_text, len(snap.chunks))
        finally:
            await nc.close()
    assert ends["py"] == ends["go"] == ("408", "No Flow Response", 2)


async def transfer(source: str, target: str, count: int) -> None:
    """A backup of a stream taken on `source`, restored on `target`: same messages."""
    src, dst = await connect(source), await connect(target)
    try:
        await fill(src, "file", count)
        snap = await snapshot(src, "S", chunk_size=4096, window_size=8192)
        assert snap.end_status == "204"
        done = await restore(dst, snap.response["config"], snap.data, chunk=100_000)
        assert "error" not in done, done
        assert mask(done["state"]) == mask(snap.response["state"])
        assert await all_messages(dst, count) == await all_messages(src, count)
        for name in ("C", "F"):
            a = await api(src, f"$JS.API.CONSUMER.INFO.S.{name}")
            b = await api(dst, f"$JS.API.CONSUMER.INFO.S.{name}")
            for key in ("delivered", "ack_floor", "num_ack_pending", "num_pending"):
                assert mask(a[key]) == mask(b[key]), (name, key)
    finally:
        await src.close()
        await dst.close()


async def test_a_go_backup_restores_into_pynats(servers: dict[str, RunningServer]) -> None:
    await transfer(servers["go"].url, servers["py"].url, 1500)


async def test_a_pynats_backup_restores_into_go(servers: dict[str, RunningServer]) -> None:
    await transfer(servers["py"].url, servers["go"].url, 1500)


async def test_a_restore_cut_by_kill_9_leaves_no_stream_and_can_be_redone(
    tmp_path: Path,
) -> None:
    store = str(tmp_path / "js")
    srv = start_server(["-js", "-sd", store])
    nc = await connect(srv.url)
    try:
        await fill(nc, "file")
        snap = await snapshot(nc, "S")
        await api(nc, "$JS.API.STREAM.DELETE.S")
        resp = await api(
            nc, "$JS.API.STREAM.RESTORE.S", {"config": snap.response["config"], "state": {}}
        )
        half = snap.data[: len(snap.data) // 2]
        await nc.request(resp["deliver_subject"], half, timeout=5)
    finally:
        await nc.close()
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait()
    srv = start_server(["-js", "-sd", store])
    nc = await connect(srv.url)
    try:
        info = await api(nc, "$JS.API.STREAM.INFO.S")
        assert info["error"]["err_code"] == 10059
        done = await restore(nc, snap.response["config"], snap.data)
        assert done["state"]["messages"] == snap.response["state"]["messages"]
    finally:
        await nc.close()
        srv.stop()


async def test_a_go_2_14_backup_restores_into_pynats(tmp_path: Path) -> None:
    """nats-server 2.14 backs up a tar of its file store: pynats restores it whole."""
    old = start_server(["-js", "-sd", str(tmp_path / "old")], executable=oracle_214_server_path())
    ours = start_server(["-js", "-sd", str(tmp_path / "py")])
    try:
        await transfer(old.url, ours.url, 700)
    finally:
        old.stop()
        ours.stop()
