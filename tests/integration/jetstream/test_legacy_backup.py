"""Legacy backups against nats-server 2.14.6: a snapshot it takes (a tar of its file store,
S2-compressed) reads with pynats.jetstream.legacy_backup into exactly the live messages that
`$JS.API.STREAM.MSG.GET` returns, the stream state STREAM.INFO reports and the consumer states
CONSUMER.INFO reports, whatever deleted the others: limits, per-subject limits, deletes with
and without erasure, deletes at the end, purges."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from tests.conftest import connect
from tests.support import backups
from tests.support.servers import RunningServer, oracle_214_server_path, start_server

from pynats.gotime import parse_rfc3339
from pynats.jetstream.archive import Entry
from pynats.jetstream.legacy_backup import (
    LegacyBackup,
    looks_like_legacy_backup,
    read_legacy_backup,
)
from pynats.jetstream.s2 import S2Decoder

CHUNK_SIZE = 65536
# nats-server sizes a stream's blocks from max_bytes: at most 128 kB gives its smallest blocks
# (32 kB), so a few hundred messages fill several of them.
SMALL_BLOCKS_MAX_BYTES = 120_000
NO_MESSAGE = 10037


@pytest.fixture(scope="module")
def go_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    store = tmp_path_factory.mktemp("go214-js")
    srv = start_server(["-js", "-sd", str(store)], executable=oracle_214_server_path())
    yield srv
    srv.stop()


@pytest.fixture
async def nc(go_server: RunningServer) -> AsyncIterator[nats.NATS]:
    client = await connect(go_server.url)
    yield client
    await client.close()


async def api(nc: nats.NATS, subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    payload = json.dumps(body).encode() if body is not None else b""
    reply = await nc.request(f"$JS.API.{subject}", payload, timeout=5)
    return json.loads(reply.data)


async def create_stream(nc: nats.NATS, name: str, **config: Any) -> None:
    config = {"name": name, "subjects": [f"{name}.>"], "storage": "file", **config}
    reply = await api(nc, f"STREAM.CREATE.{name}", config)
    assert "error" not in reply, reply


async def delete(nc: nats.NATS, stream: str, seq: int, *, erase: bool = True) -> None:
    body: dict[str, Any] = {"seq": seq} if erase else {"seq": seq, "no_erase": True}
    reply = await api(nc, f"STREAM.MSG.DELETE.{stream}", body)
    assert reply.get("success"), reply


async def snapshot(nc: nats.NATS, stream: str) -> bytes:
    """`$JS.API.STREAM.SNAPSHOT`: the chunks, each acked, up to the empty one; decompressed."""
    snap = await backups.snapshot(nc, stream, timeout=30, chunk_size=CHUNK_SIZE)
    assert "error" not in snap.response, snap.response
    decoder = S2Decoder()
    tar = decoder.feed(snap.data)
    assert decoder.at_boundary
    return tar


async def live_messages(nc: nats.NATS, stream: str) -> list[Entry]:
    """Every message the Go server still has, by MSG.GET's next-by-subject walk."""
    entries: list[Entry] = []
    seq = 1
    while True:
        reply = await api(nc, f"STREAM.MSG.GET.{stream}", {"seq": seq, "next_by_subj": ">"})
        if "error" in reply:
            assert reply["error"]["err_code"] == NO_MESSAGE, reply
            return entries
        msg = reply["message"]
        entries.append(
            Entry(
                name=msg["subject"],
                timestamp=parse_rfc3339(msg["time"]),
                sequence=msg["seq"],
                header=base64.b64decode(msg.get("hdrs", "")),
                payload=base64.b64decode(msg.get("data", "")),
            )
        )
        seq = msg["seq"] + 1


async def expected_state(nc: nats.NATS, stream: str) -> dict[str, Any]:
    """STREAM.INFO's state in the shape of a NATSARC1 state.json."""
    state: dict[str, Any] = (await api(nc, f"STREAM.INFO.{stream}"))["state"]
    return state


async def check_backup_matches(nc: nats.NATS, stream: str) -> LegacyBackup:
    tar = await snapshot(nc, stream)
    assert looks_like_legacy_backup(tar)
    backup = read_legacy_backup(tar)
    assert backup.warnings == []  # index.db was read and trusted
    assert backup.config["name"] == stream
    assert backup.state == await expected_state(nc, stream)
    assert list(backup.messages) == await live_messages(nc, stream)
    return backup


async def consumer_info(nc: nats.NATS, stream: str, name: str) -> dict[str, Any]:
    return await api(nc, f"CONSUMER.INFO.{stream}.{name}")


def seqs(pair: dict[str, Any]) -> dict[str, int]:
    return {"consumer_seq": pair["consumer_seq"], "stream_seq": pair["stream_seq"]}


async def test_deletions_of_every_kind_stay_deleted_across_several_blocks(nc: nats.NATS) -> None:
    await create_stream(
        nc, "MIXED", max_bytes=SMALL_BLOCKS_MAX_BYTES, max_msgs_per_subject=5, discard="old"
    )
    js = nc.jetstream()
    for i in range(1, 701):
        subject = "MIXED.hot" if i % 7 == 0 else f"MIXED.m.{i}"
        headers = {"X-Index": str(i), "X-Kind": "test"} if i % 3 == 0 else None
        await js.publish(subject, f"message {i} ".encode() * 30, headers=headers)
    info = (await api(nc, "STREAM.INFO.MIXED"))["state"]
    first, last = info["first_seq"], info["last_seq"]
    assert first > 1  # max_bytes dropped the oldest: the first block starts mid-way
    for seq in (first + 3, first + 40, first + 41, first + 150):
        await delete(nc, "MIXED", seq)
    for seq in (first + 90, first + 200):
        await delete(nc, "MIXED", seq, erase=False)
    await delete(nc, "MIXED", last)
    await delete(nc, "MIXED", last - 1, erase=False)

    tar = await snapshot(nc, "MIXED")
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        blocks = [n for n in archive.getnames() if n.endswith(".blk")]
    assert len(blocks) >= 3

    backup = await check_backup_matches(nc, "MIXED")
    assert backup.state["last_seq"] == last  # the deleted tail is still counted
    assert backup.state["num_deleted"] > 0


async def test_a_compressed_stream_reads_like_a_plain_one(nc: nats.NATS) -> None:
    await create_stream(nc, "SQUEEZED", compression="s2", max_bytes=SMALL_BLOCKS_MAX_BYTES)
    js = nc.jetstream()
    for i in range(1, 501):
        headers = {"X-Index": str(i)} if i % 2 else None
        await js.publish(
            f"SQUEEZED.{i % 4}", f"compressible {i % 9} ".encode() * 25, headers=headers
        )
    for seq in (420, 421, 499, 500):
        await delete(nc, "SQUEEZED", seq)
    backup = await check_backup_matches(nc, "SQUEEZED")
    assert backup.config["compression"] == "s2"


async def test_purges_keep_their_sequence_range(nc: nats.NATS) -> None:
    await create_stream(nc, "PURGED")
    js = nc.jetstream()
    for i in range(1, 41):
        await js.publish(f"PURGED.{'keep' if i % 2 else 'drop'}", f"before {i}".encode())
    assert (await api(nc, "STREAM.PURGE.PURGED", {"filter": "PURGED.drop"}))["success"]
    await check_backup_matches(nc, "PURGED")

    assert (await api(nc, "STREAM.PURGE.PURGED"))["success"]
    backup = await check_backup_matches(nc, "PURGED")
    assert backup.state["messages"] == 0
    assert (backup.state["first_seq"], backup.state["last_seq"]) == (41, 40)

    for i in range(1, 6):
        await js.publish("PURGED.keep", f"after {i}".encode())
    await delete(nc, "PURGED", 45)
    backup = await check_backup_matches(nc, "PURGED")
    assert (backup.state["first_seq"], backup.state["last_seq"]) == (41, 45)


async def test_consumer_states_are_what_consumer_info_reports(nc: nats.NATS) -> None:
    await create_stream(nc, "WORK")
    js = nc.jetstream()
    for i in range(1, 61):
        await js.publish(f"WORK.{i % 3}", f"job {i}".encode())
    await delete(nc, "WORK", 5)
    await js.add_consumer("WORK", durable_name="WORKERS", ack_policy="explicit", ack_wait=30)
    await js.add_consumer("WORK", durable_name="IDLE", ack_policy="explicit")
    await js.add_consumer("WORK", durable_name="ALL_DONE", ack_policy="all")
    workers = await js.pull_subscribe("WORK.>", durable="WORKERS", stream="WORK")
    batch = await workers.fetch(12)
    for msg in batch[:3] + batch[6:8]:
        await msg.ack()
    for msg in batch[3:5]:
        await msg.nak()
    again = await workers.fetch(2)
    for msg in again:
        await msg.nak()
    await (await workers.fetch(2))[0].in_progress()
    done = await js.pull_subscribe("WORK.>", durable="ALL_DONE", stream="WORK")
    await (await done.fetch(20))[-1].ack()
    await nc.flush()

    backup = await check_backup_matches(nc, "WORK")
    by_name = {c["config"]["durable_name"]: c for c in backup.consumers}
    assert sorted(by_name) == ["ALL_DONE", "IDLE", "WORKERS"]
    for name, consumer in by_name.items():
        info = await consumer_info(nc, "WORK", name)
        state = consumer["state"]
        assert seqs(state["delivered"]) == seqs(info["delivered"]), name
        assert seqs(state["ack_floor"]) == seqs(info["ack_floor"]), name
        assert len(state.get("pending", {})) == info["num_ack_pending"], name
        assert len(state.get("redelivered", {})) == info["num_redelivered"], name
        assert consumer["config"]["ack_policy"] == info["config"]["ack_policy"]
        assert "Created" not in consumer["config"] and "Name" not in consumer["config"]
    workers_state = by_name["WORKERS"]["state"]
    assert workers_state["redelivered"]  # the nak'd messages, delivered again
    for sseq, pending in workers_state["pending"].items():
        assert int(sseq) > workers_state["ack_floor"]["stream_seq"]
        assert pending["Sequence"] > workers_state["ack_floor"]["consumer_seq"]
        assert pending["Timestamp"] > 0


async def test_the_store_directory_itself_reads_with_its_blocks_compressed_on_disk(
    tmp_path: Path,
) -> None:
    """Older servers' snapshots carried the block files as stored: compressed ones too."""
    srv = start_server(["-js", "-sd", str(tmp_path)], executable=oracle_214_server_path())
    try:
        client = await connect(srv.url)
        await create_stream(client, "ONDISK", compression="s2", max_bytes=SMALL_BLOCKS_MAX_BYTES)
        js = client.jetstream()
        for i in range(1, 401):
            await js.publish(f"ONDISK.{i % 5}", f"stored {i % 11} ".encode() * 25)
        await delete(client, "ONDISK", 350)
        expected = await live_messages(client, "ONDISK")
        state = await expected_state(client, "ONDISK")
        await client.close()
    finally:
        srv.stop()

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(tmp_path / "jetstream" / "$G" / "streams" / "ONDISK", arcname=".")
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as archive:
        heads = [
            archive.extractfile(m).read(3)  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.name.endswith(".blk")
        ]
    assert b"cmp" in heads

    backup = read_legacy_backup(buffer.getvalue())
    assert backup.state == state
    assert list(backup.messages) == expected
