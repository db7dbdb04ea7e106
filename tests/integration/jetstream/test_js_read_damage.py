"""Damage found when a message is *read* is reported like damage found by a start-up scan.

After a clean shutdown the index snapshot is trusted and records are verified only when
read. A flipped bit in one message's record, under a cleanly stopped server, must then be:
(1) never served (STREAM.MSG.GET says no message, a consumer skips it), (2) logged once,
however often it is read, (3) listed in the stream state's `lost` and gone from its counts,
(4) visible in /jsz (its stream's state, the totals) with /healthz answering as it does for
damage a start-up scan found: ok, as nats-server's /healthz does for a stream with lost data
(the damage is permanent; failing the probe would only have the server restarted forever).
The same flip found by a scan (no snapshot: a kill -9) is the reference it is checked against.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import connect
from tests.integration.jetstream.conftest import api, error_of
from tests.integration.jetstream.consumers import add_consumer
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

STREAM = "RD"
COUNT = 10
DAMAGED = 5  # the sequence whose record gets the flipped bit
DAMAGE_LINE = re.compile(
    rf"\[WRN\] +Stream '\$G > {STREAM}': damaged data in seg-\d+\.log at \d+ "
    r"\(checksum mismatch\); 1 messages lost"
)


def payload(seq: int) -> bytes:
    return b"read-damage-payload-%03d" % seq


def healthz(srv: RunningServer) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(srv.monitor_url + "/healthz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def jsz(srv: RunningServer) -> dict[str, Any]:
    with urllib.request.urlopen(srv.monitor_url + "/jsz?streams=1", timeout=5) as resp:
        return json.loads(resp.read())


def damage_lines(srv: RunningServer) -> list[str]:
    return [line for line in list(srv.log_lines) if DAMAGE_LINE.search(line)]


async def stored_and_stopped(tmp_path: Path) -> tuple[list[str], dict[str, Any]]:
    """A file stream with COUNT messages and a durable consumer, stopped cleanly; returns the
    server's arguments and the stream state before the damage."""
    args = ["-js", "-sd", str(tmp_path)]
    srv = start_server(args, http_port=-1)
    try:
        nc = await connect(srv.url)
        created = await api(
            nc, f"$JS.API.STREAM.CREATE.{STREAM}", {"name": STREAM, "subjects": ["rd.>"]}
        )
        assert "error" not in created, created
        for seq in range(1, COUNT + 1):
            ack = json.loads((await nc.request("rd.x", payload(seq), timeout=5)).data)
            assert ack["seq"] == seq, ack
        await add_consumer(nc, STREAM, "D", durable_name="D", ack_policy="explicit")
        state = (await api(nc, f"$JS.API.STREAM.INFO.{STREAM}"))["state"]
        await nc.close()
    finally:
        assert srv.stop() == 0, srv.log_text()
    return args, state


def msgs_dir(tmp_path: Path) -> Path:
    return tmp_path / "jetstream" / "$G" / "streams" / STREAM / "msgs"


def flip_a_bit_in_payload(tmp_path: Path, seq: int) -> None:
    """Flip one bit inside the payload of `seq`'s record, found by its bytes on disk."""
    hits = []
    for seg in sorted(msgs_dir(tmp_path).glob("seg-*.log")):
        data = seg.read_bytes()
        at = data.find(payload(seq))
        while at >= 0:
            hits.append((seg, at))
            at = data.find(payload(seq), at + 1)
    assert len(hits) == 1, hits
    seg, at = hits[0]
    data = bytearray(seg.read_bytes())
    data[at + len(payload(seq)) // 2] ^= 0x08
    seg.write_bytes(bytes(data))


async def check_served_around_it(srv: RunningServer) -> None:
    """(1): never served; the consumer gets every other message and has nothing pending."""
    nc = await connect(srv.url)
    try:
        for _ in range(3):
            reply = await api(nc, f"$JS.API.STREAM.MSG.GET.{STREAM}", {"seq": DAMAGED})
            assert error_of(reply) == (404, 10037, "no message found"), reply
        reply = await api(nc, f"$JS.API.STREAM.MSG.GET.{STREAM}", {"seq": DAMAGED + 1})
        assert "message" in reply, reply
        js = nc.jetstream()
        sub = await js.pull_subscribe_bind("D", STREAM)
        got = await sub.fetch(COUNT - 1, timeout=5)
        seqs = [m.metadata.sequence.stream for m in got]
        assert seqs == [s for s in range(1, COUNT + 1) if s != DAMAGED]
        assert [m.data for m in got] == [payload(s) for s in seqs]
        for m in got:
            await m.ack_sync()
        info = await api(nc, f"$JS.API.CONSUMER.INFO.{STREAM}.D")
        assert info["num_pending"] == 0 and info["num_ack_pending"] == 0, info
        assert info["delivered"]["stream_seq"] == COUNT, info
    finally:
        await nc.close()


async def test_damage_found_on_read_is_logged_once_lost_uncounted_and_monitored(
    tmp_path,
) -> None:
    args, before = await stored_and_stopped(tmp_path)
    assert (msgs_dir(tmp_path) / "index.snap").exists(), "a clean stop writes the snapshot"
    flip_a_bit_in_payload(tmp_path, DAMAGED)
    srv = start_server(args, http_port=-1)
    try:
        assert not damage_lines(srv), "found at start-up: the test would not read it lazily"
        await check_served_around_it(srv)

        # (3) the stream state: listed under lost, no longer counted
        nc = await connect(srv.url)
        try:
            state = (await api(nc, f"$JS.API.STREAM.INFO.{STREAM}"))["state"]
        finally:
            await nc.close()
        size = before["bytes"] // COUNT  # every message has the same subject and length
        assert state["lost"] == {"msgs": [DAMAGED], "bytes": size}, state
        assert state["messages"] == COUNT - 1, state
        assert state["bytes"] == before["bytes"] - size, state
        assert (state["first_seq"], state["last_seq"]) == (1, COUNT), state
        assert state["num_deleted"] == 1, state

        # (4) /jsz shows the same state and totals; /healthz answers as for scan-found damage
        report = jsz(srv)
        detail = report["account_details"][0]["stream_detail"][0]
        assert detail["name"] == STREAM
        assert detail["state"]["lost"] == state["lost"], detail
        assert detail["state"]["messages"] == COUNT - 1, detail
        assert (report["messages"], report["bytes"]) == (COUNT - 1, state["bytes"]), report
        assert healthz(srv) == (200, {"status": "ok"})

        # (2) one log line, the start-up scan's kind, after all those reads
        await wait_until(lambda: damage_lines(srv), what="the damage log line")
        assert len(damage_lines(srv)) == 1, srv.log_text()
    finally:
        srv.stop()
    bugs = [line for line in srv.log_lines if "Traceback" in line or "internal error" in line]
    assert not bugs, srv.log_text()


async def test_the_same_damage_found_by_a_start_up_scan(tmp_path) -> None:
    """The reference: without the snapshot (as after kill -9) the scan finds the flip."""
    args, before = await stored_and_stopped(tmp_path)
    flip_a_bit_in_payload(tmp_path, DAMAGED)
    os.remove(msgs_dir(tmp_path) / "index.snap")
    srv = start_server(args, http_port=-1)
    try:
        assert len(damage_lines(srv)) == 1, srv.log_text()
        await check_served_around_it(srv)
        nc = await connect(srv.url)
        try:
            state = (await api(nc, f"$JS.API.STREAM.INFO.{STREAM}"))["state"]
        finally:
            await nc.close()
        assert state["lost"]["msgs"] == [DAMAGED], state  # its size is unknown to a scan
        assert state["messages"] == COUNT - 1, state
        assert state["bytes"] == before["bytes"] - before["bytes"] // COUNT, state
        detail = jsz(srv)["account_details"][0]["stream_detail"][0]
        assert detail["state"]["lost"] == state["lost"], detail
        assert healthz(srv) == (200, {"status": "ok"})
        assert len(damage_lines(srv)) == 1, srv.log_text()
    finally:
        srv.stop()
