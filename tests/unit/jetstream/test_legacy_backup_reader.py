"""legacy_backup.py on hand-made file stores: which records are live (tombstones, erased
records, index.db's deleted sets and first sequences), compressed blocks, consumer states of
both versions, and a clear LegacyBackupError for everything it cannot read."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from typing import Any

import pytest

from pynats.jetstream.archive import MAGIC, Entry
from pynats.jetstream.legacy_backup import (
    ERASED_BIT,
    HEADERS_BIT,
    TOMBSTONE_BIT,
    LegacyBackupError,
    looks_like_legacy_backup,
    read_legacy_backup,
)
from pynats.jetstream.s2 import S2Encoder

STREAM_META = json.dumps(
    {"Created": "2025-01-02T03:04:05.123456789Z", "name": "S", "subjects": ["S.>"]}
).encode()
T0 = 1_700_000_000_000_000_000


# Writers for the Go layouts (test side only)


def uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varint(value: int) -> bytes:
    return uvarint((value << 1) ^ (value >> 63))


def record(
    seq: int, subject: bytes = b"S.a", body: bytes = b"", header: bytes = b"", **kw: int
) -> bytes:
    """One block record; `flags` ORs bits into the sequence, `ts` defaults to T0 + seq."""
    ts = kw.get("ts", T0 + seq)
    headers = len(header).to_bytes(4, "little") + header if header else b""
    rl = 22 + len(subject) + len(headers) + len(body) + 8
    content = (
        (rl | (HEADERS_BIT if header else 0)).to_bytes(4, "little")
        + (seq | kw.get("flags", 0)).to_bytes(8, "little")
        + ts.to_bytes(8, "little", signed=True)
        + len(subject).to_bytes(2, "little")
        + subject
        + headers
        + body
    )
    return content + hashlib.blake2b(content, digest_size=8).digest()


def seqset(seqs: set[int]) -> bytes:
    """nats-server's avl.SequenceSet, version 2 (32 words of 64 bits per node)."""
    nodes: dict[int, list[int]] = {}
    for seq in seqs:
        words = nodes.setdefault(seq // 2048 * 2048, [0] * 32)
        words[(seq % 2048) // 64] |= 1 << (seq % 64)
    out = bytes([22, 2]) + len(nodes).to_bytes(4, "little") + len(seqs).to_bytes(4, "little")
    for base, words in sorted(nodes.items()):
        out += base.to_bytes(8, "little") + b"".join(w.to_bytes(8, "little") for w in words)
        out += (1).to_bytes(2, "little")
    return out


def block_index(
    index: int, nbytes: int, first: int, last: int, deleted: set[int] | None = None
) -> dict[str, Any]:
    return {"index": index, "bytes": nbytes, "first": first, "last": last, "deleted": deleted}


def index_db(
    blocks: list[dict[str, Any]],
    *,
    messages: int,
    nbytes: int,
    first: int,
    last: int,
    last_checksum: bytes,
    subjects: dict[bytes, int] | None = None,
    version: int = 4,
) -> bytes:
    out = bytes([11, version]) + uvarint(messages) + uvarint(nbytes) + uvarint(first)
    out += varint(T0 + first) + uvarint(last) + varint(T0 + last)
    subjects = subjects if subjects is not None else {b"S.a": messages}
    out += uvarint(len(subjects))
    for subject, total in subjects.items():
        out += uvarint(len(subject)) + subject + uvarint(total) + uvarint(1)
        if version >= 4 or total > 1:
            out += uvarint(blocks[-1]["index"])
    out += uvarint(len(blocks))
    for b in blocks:
        deleted = b["deleted"] or set()
        out += uvarint(b["index"]) + uvarint(b["bytes"]) + uvarint(b["first"]) + varint(b["first"])
        out += uvarint(b["last"]) + varint(b["last"]) + uvarint(len(deleted))
        out += uvarint(0) * (version >= 2) + uvarint(0) * (version >= 3)
        out += seqset(deleted) if deleted else b""
    out += uvarint(blocks[-1]["index"]) + last_checksum
    return out + b"\x00" * 8  # its highwayhash, not checked


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def backup(files: dict[str, bytes]) -> bytes:
    return tar_of({"meta.inf": STREAM_META, "meta.sum": b"0" * 16, **files})


def sequences(data: bytes) -> list[int]:
    return [entry.sequence for entry in read_legacy_backup(data).messages]


def rl(seq: int, **kw: Any) -> int:
    return len(record(seq, **kw))


# Live records


def test_messages_come_out_as_archive_entries_in_sequence_order() -> None:
    block = record(1, b"S.one", b"first") + record(
        2, b"S.two", b"second", b"NATS/1.0\r\nA: b\r\n\r\n"
    )
    read = read_legacy_backup(backup({"msgs/1.blk": block}))
    assert read.config == {"name": "S", "subjects": ["S.>"]}
    assert read.created == "2025-01-02T03:04:05.123456789Z"
    assert list(read.messages) == [
        Entry("S.one", T0 + 1, 1, b"", b"first"),
        Entry("S.two", T0 + 2, 2, b"NATS/1.0\r\nA: b\r\n\r\n", b"second"),
    ]


def test_without_index_db_tombstones_and_erased_records_delete() -> None:
    first = record(1) + record(2) + record(3, flags=ERASED_BIT, ts=0) + record(4)
    second = record(5) + record(2, b"", flags=TOMBSTONE_BIT) + record(6, flags=ERASED_BIT, ts=0)
    second += record(6, b"", flags=TOMBSTONE_BIT)
    read = read_legacy_backup(backup({"msgs/1.blk": first, "msgs/2.blk": second}))
    assert [e.sequence for e in read.messages] == [1, 4, 5]
    assert read.warnings and "index.db" in read.warnings[0]
    assert read.state == {
        "messages": 3,
        "bytes": rl(1) * 3,
        "first_seq": 1,
        "first_ts": "2023-11-14T22:13:20.000000001Z",
        "last_seq": 6,
        "last_ts": "2023-11-14T22:13:20.000000006Z",
        "num_subjects": 1,
        "num_deleted": 3,
        "consumer_count": 0,
    }


def test_index_db_decides_when_it_agrees_with_the_blocks() -> None:
    """Removals by limits leave no tombstone: only index.db's first sequences and deleted
    sets know them, and messages past a block's last sequence do not exist yet."""
    first = record(1) + record(2) + record(3) + record(4)
    second = record(5) + record(6) + record(7)
    db = index_db(
        [
            block_index(1, 2 * rl(1), 2, 4, {3}),
            block_index(2, 2 * rl(1), 5, 8, {6, 8}),
        ],
        messages=4,
        nbytes=4 * rl(1),
        first=2,
        last=8,
        last_checksum=second[-8:],
    )
    read = read_legacy_backup(
        backup({"msgs/1.blk": first, "msgs/2.blk": second, "msgs/index.db": db})
    )
    assert read.warnings == []
    assert [e.sequence for e in read.messages] == [2, 4, 5, 7]
    assert (read.state["first_seq"], read.state["last_seq"]) == (2, 8)
    assert read.state["num_deleted"] == 3


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_every_index_db_version_reads(version: int) -> None:
    block = record(1, b"S.a") + record(2, b"S.b") + record(3, b"S.b")
    db = index_db(
        [block_index(1, 2 * rl(1), 1, 3, {2})],
        messages=2,
        nbytes=2 * rl(1),
        first=1,
        last=3,
        last_checksum=block[-8:],
        subjects={b"S.a": 1, b"S.b": 1},
        version=version,
    )
    read = read_legacy_backup(backup({"msgs/1.blk": block, "msgs/index.db": db}))
    assert read.warnings == []
    assert [e.sequence for e in read.messages] == [1, 3]


def test_a_stale_index_db_gives_way_to_the_blocks() -> None:
    block = record(1) + record(2) + record(3)
    db = index_db(
        [block_index(1, rl(1), 1, 2, {2})],
        messages=1,
        nbytes=rl(1),
        first=1,
        last=2,
        last_checksum=record(2)[-8:],  # written before record 3 was
    )
    read = read_legacy_backup(backup({"msgs/1.blk": block, "msgs/index.db": db}))
    assert [e.sequence for e in read.messages] == [1, 2, 3]
    assert "predates" in read.warnings[0]


def test_a_purged_stream_keeps_its_sequence_range() -> None:
    block = record(10, b"", flags=TOMBSTONE_BIT)
    db = index_db(
        [block_index(2, 0, 11, 10)],
        messages=0,
        nbytes=0,
        first=11,
        last=10,
        last_checksum=block[-8:],
        subjects={},
    )
    read = read_legacy_backup(backup({"msgs/2.blk": block, "msgs/index.db": db}))
    assert list(read.messages) == []
    assert read.warnings == []
    assert read.state == {
        "messages": 0,
        "bytes": 0,
        "first_seq": 11,
        "first_ts": "0001-01-01T00:00:00Z",
        "last_seq": 10,
        "last_ts": "2023-11-14T22:13:20.00000001Z",
        "consumer_count": 0,
    }


def test_compressed_blocks_read_like_plain_ones() -> None:
    plain = b"".join(record(seq, body=b"compress me " * 40) for seq in range(1, 30))
    encoder = S2Encoder()
    stream = encoder.write(plain[:-8]) + encoder.flush()
    compressed = b"cmp\x01" + uvarint(len(plain)) + stream + plain[-8:]
    assert sequences(backup({"msgs/1.blk": compressed})) == list(range(1, 30))


# Consumers


def consumer_files(name: str, state: bytes) -> dict[str, bytes]:
    meta = {"Created": "2025-01-02T03:04:05Z", "Name": name, "durable_name": name, "name": name}
    return {f"obs/{name}/meta.inf": json.dumps(meta).encode(), f"obs/{name}/o.dat": state}


def test_consumer_state_version_2_is_nats_servers_consumer_state_json() -> None:
    base = 1_700_000_100
    state = bytes([22, 2]) + uvarint(3) + uvarint(10) + uvarint(7) + uvarint(15)
    state += uvarint(2) + varint(base)
    state += uvarint(2) + uvarint(1) + varint(5)  # stream 12, consumer 4, 5 s before base
    state += uvarint(5) + uvarint(4) + varint(0)  # stream 15, consumer 7
    state += uvarint(1) + uvarint(12) + uvarint(3)
    read = read_legacy_backup(backup({"msgs/1.blk": record(1), **consumer_files("C", state)}))
    assert read.consumers == [
        {
            "config": {"durable_name": "C", "name": "C"},
            "state": {
                "delivered": {"consumer_seq": 7, "stream_seq": 15},
                "ack_floor": {"consumer_seq": 3, "stream_seq": 10},
                "pending": {
                    "12": {"Sequence": 4, "Timestamp": (base - 5) * 1_000_000_000},
                    "15": {"Sequence": 7, "Timestamp": base * 1_000_000_000},
                },
                "redelivered": {"12": 3},
            },
        }
    ]
    assert read.state["consumer_count"] == 1


def test_consumer_state_version_1_stored_the_next_to_deliver() -> None:
    state = bytes([22, 1]) + uvarint(3) + uvarint(10) + uvarint(2) + uvarint(4)
    state += uvarint(1) + varint(1_700_000_000) + uvarint(2) + varint(7) + uvarint(0)
    read = read_legacy_backup(backup({"msgs/1.blk": record(1), **consumer_files("OLD", state)}))
    assert read.consumers[0]["state"] == {
        "delivered": {"consumer_seq": 4, "stream_seq": 13},
        "ack_floor": {"consumer_seq": 3, "stream_seq": 10},
        "pending": {"12": {"Sequence": 0, "Timestamp": 1_700_000_007 * 1_000_000_000}},
    }


def test_a_consumer_that_never_saved_state_starts_from_zero() -> None:
    files = consumer_files("NEW", b"")
    read = read_legacy_backup(backup({"msgs/1.blk": record(1), **files}))
    assert read.consumers[0]["state"] == {
        "delivered": {"consumer_seq": 0, "stream_seq": 0},
        "ack_floor": {"consumer_seq": 0, "stream_seq": 0},
    }


# What it refuses, and why


def refusal(data: bytes) -> str:
    with pytest.raises(LegacyBackupError) as caught:
        list(read_legacy_backup(data).messages)
    return str(caught.value)


@pytest.mark.parametrize("data", [b"", b"garbage" * 200, MAGIC + b"\x00" * 600])
def test_what_is_not_a_tar_is_refused(data: bytes) -> None:
    assert "not a stream backup" in refusal(data)
    assert not looks_like_legacy_backup(data)


def test_a_tar_is_recognised_before_it_is_read() -> None:
    assert looks_like_legacy_backup(backup({}))


def test_a_tar_without_meta_inf_is_refused() -> None:
    assert "no meta.inf" in refusal(tar_of({"msgs/1.blk": record(1)}))


def test_a_truncated_tar_is_refused() -> None:
    data = backup({"msgs/1.blk": record(1, body=b"x" * 5000)})
    assert "truncated" in refusal(data[:3000])


def test_an_encrypted_store_is_refused_as_such() -> None:
    assert "encrypted" in refusal(backup({"meta.key": b"k" * 64, "msgs/1.blk": b"\x8f" * 80}))
    assert "encrypted" in refusal(tar_of({"meta.inf": b"\x13\x99\xfe" * 40}))


@pytest.mark.parametrize("cut", [1, 8, 21, 30, 40])
def test_a_truncated_block_is_refused(cut: int) -> None:
    block = record(1) + record(2, body=b"y" * 20)
    assert "1.blk" in refusal(backup({"msgs/1.blk": block[:-cut]}))


def test_a_garbage_block_is_refused() -> None:
    assert "msgs/1.blk" in refusal(backup({"msgs/1.blk": b"\xff\x7f" * 100}))


def test_a_header_longer_than_its_record_is_refused() -> None:
    block = bytearray(record(1, header=b"NATS/1.0\r\n\r\n", body=b"z"))
    block[25:29] = (500).to_bytes(4, "little")
    assert "header length" in refusal(backup({"msgs/1.blk": bytes(block)}))


def test_sequences_going_backwards_are_refused() -> None:
    assert "sequence 1 after 2" in refusal(backup({"msgs/1.blk": record(2) + record(1)}))


def test_a_corrupt_compressed_block_is_refused() -> None:
    block = (
        b"cmp\x01" + uvarint(200) + b"\xff\x06\x00\x00S2sTwO" + b"\x00\x09\x00\x00" + b"\x01" * 17
    )
    assert "compressed block" in refusal(backup({"msgs/1.blk": block}))


def test_an_index_db_naming_a_missing_block_is_refused() -> None:
    block = record(1)
    db = index_db(
        [block_index(1, rl(1), 1, 1), block_index(2, rl(1), 2, 2)],
        messages=2,
        nbytes=2 * rl(1),
        first=1,
        last=2,
        last_checksum=block[-8:],
    )
    assert "block 2" in refusal(backup({"msgs/1.blk": block, "msgs/index.db": db}))


def test_a_garbage_index_db_gives_way_to_the_blocks() -> None:
    read = read_legacy_backup(backup({"msgs/1.blk": record(1), "msgs/index.db": b"\x0b\x04" * 40}))
    assert [e.sequence for e in read.messages] == [1]
    assert "index.db" in read.warnings[0]


@pytest.mark.parametrize(
    "state",
    [b"\x00\x02\x01", b"\x16\x07\x01", b"\x16\x02\x01\x01", b"\x16\x02" + b"\xff" * 11],
)
def test_a_bad_consumer_state_is_refused(state: bytes) -> None:
    assert "obs/C/o.dat" in refusal(backup({"msgs/1.blk": record(1), **consumer_files("C", state)}))


def test_a_consumer_meta_that_is_not_json_is_refused() -> None:
    files = {"obs/C/meta.inf": b"\x00\x01", "obs/C/o.dat": b""}
    assert "obs/C/meta.inf is not JSON" in refusal(backup(files))
