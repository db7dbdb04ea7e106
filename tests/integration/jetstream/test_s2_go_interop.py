"""S2 and NATSARC1 against the Go nats-server: a snapshot the Go server takes (S2 blocks with
repeat copies, which Snappy cannot read) decodes with pynats.jetstream.s2 and archive into the
entries the stream holds, and an archive we write and compress is one the Go server restores."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator

import cramjam
import nats
import pytest
from tests.conftest import connect
from tests.support import backups
from tests.support.servers import RunningServer, start_server

from pynats.jetstream import s2
from pynats.jetstream.archive import END_ENTRY, MAGIC, ArchiveReader, Entry, encode_entry
from pynats.jetstream.s2 import S2Decoder, S2Encoder

MESSAGES = 3000
CHUNK_SIZE = 65536


def body_of(i: int) -> bytes:
    return f"order {i} for customer {i % 13}; ".encode() * 8


def headers_of(i: int) -> dict[str, str] | None:
    return {"X-Index": str(i)} if i % 100 == 0 else None


@pytest.fixture(scope="module")
def go_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    srv = start_server(["-js", "-sd", str(tmp_path_factory.mktemp("go-js"))], oracle=True)
    yield srv
    srv.stop()


@pytest.fixture
async def nc(go_server: RunningServer) -> AsyncIterator[nats.NATS]:
    client = await connect(go_server.url)
    yield client
    await client.close()


async def make_stream(nc: nats.NATS, name: str) -> None:
    js = nc.jetstream()
    await js.add_stream(name=name, subjects=[f"{name}.>"])
    for i in range(1, MESSAGES + 1):
        await js.publish(f"{name}.{i % 7}", body_of(i), headers=headers_of(i))
    await js.add_consumer(name, durable_name="C", ack_policy="explicit")


async def snapshot(nc: nats.NATS, stream: str) -> bytes:
    """The chunks of `$JS.API.STREAM.SNAPSHOT`, each acked, up to the empty last message."""
    snap = await backups.snapshot(nc, stream, chunk_size=CHUNK_SIZE)
    assert "error" not in snap.response
    return snap.data


def blocks_snappy_refuses(stream: bytes) -> int:
    """How many compressed blocks of the stream are S2-only (cramjam's Snappy refuses them)."""
    refused = 0
    pos = 0
    while pos < len(stream):
        kind = stream[pos]
        size = int.from_bytes(stream[pos + 1 : pos + 4], "little")
        if kind == s2.CHUNK_COMPRESSED:
            try:
                cramjam.snappy.decompress_raw(stream[pos + 8 : pos + 4 + size])
            except cramjam.DecompressionError:
                refused += 1
        pos += 4 + size
    return refused


def decode_backup(stream: bytes, piece: int) -> list[Entry]:
    decoder = S2Decoder()
    reader = ArchiveReader()
    entries: list[Entry] = []
    for start in range(0, len(stream), piece):
        entries += reader.feed(decoder.feed(stream[start : start + piece]))
    assert decoder.at_boundary and reader.ended
    return entries


async def test_a_go_snapshot_decodes_into_the_streams_entries(nc: nats.NATS) -> None:
    await make_stream(nc, "SNAP")
    stream = await snapshot(nc, "SNAP")
    assert stream.startswith(s2.STREAM_IDENTIFIER)
    assert blocks_snappy_refuses(stream) > 0  # the S2 block decoder is what reads these

    assert S2Decoder().feed(stream).startswith(MAGIC)
    entries = decode_backup(stream, 1000)
    assert decode_backup(stream, 7777) == entries

    state, consumer, *messages, end = entries
    assert state.name == "state.json"
    assert json.loads(state.payload)["messages"] == MESSAGES
    assert consumer.name == "consumers/C"
    assert json.loads(consumer.payload)["config"]["durable_name"] == "C"
    assert end.is_end
    assert [m.sequence for m in messages] == list(range(1, MESSAGES + 1))
    for m in messages:
        i = m.sequence
        assert (m.name, m.payload) == (f"SNAP.{i % 7}", body_of(i))
        assert m.timestamp > 1_600_000_000 * 10**9
        if headers_of(i):
            assert m.header == f"NATS/1.0\r\nX-Index: {i}\r\n\r\n".encode()
        else:
            assert m.header == b""


async def test_the_go_server_restores_an_archive_we_write(nc: nats.NATS) -> None:
    await make_stream(nc, "ORIG")
    entries = decode_backup(await snapshot(nc, "ORIG"), CHUNK_SIZE)
    archive = MAGIC + b"".join(
        encode_entry(e.name.replace("ORIG.", "COPY."), e.timestamp, e.sequence, e.header, e.payload)
        for e in entries
        if not e.is_end
    )
    encoder = S2Encoder(16 * 1024)
    backup = encoder.write(archive + END_ENTRY) + encoder.flush()

    config = {"name": "COPY", "subjects": ["COPY.>"], "storage": "file", "num_replicas": 1}
    reply = await nc.request("$JS.API.STREAM.RESTORE.COPY", json.dumps({"config": config}).encode())
    deliver = json.loads(reply.data)["deliver_subject"]
    for start in range(0, len(backup), CHUNK_SIZE):
        await nc.request(deliver, backup[start : start + CHUNK_SIZE], timeout=5)
    created = json.loads((await nc.request(deliver, b"", timeout=20)).data)
    assert "error" not in created, created
    assert created["state"]["messages"] == MESSAGES

    got = json.loads(
        (await nc.request("$JS.API.STREAM.MSG.GET.COPY", json.dumps({"seq": 200}).encode())).data
    )["message"]
    assert got["subject"] == "COPY.4"
    assert base64.b64decode(got["data"]) == body_of(200)
    assert base64.b64decode(got["hdrs"]) == b"NATS/1.0\r\nX-Index: 200\r\n\r\n"
    consumers = json.loads((await nc.request("$JS.API.CONSUMER.NAMES.COPY", b"")).data)
    assert consumers["consumers"] == ["C"]
