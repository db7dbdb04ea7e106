"""The index snapshot a file store writes on clean shutdown, so restart skips the log scan.

It holds the `MessageIndex` arrays, the TTL bookkeeping and, per segment, (id, base seq,
length, live count). It is trusted only when it verifies (CRC) and every segment file on disk
has exactly the recorded length: any append after the snapshot (new messages, tombstones,
an erase) changes a length or adds a segment, and then the logs are scanned instead.
"""

from __future__ import annotations

import json
import struct
import zlib
from array import array
from dataclasses import dataclass

from .index import MessageIndex

SNAPSHOT_NAME = "index.snap"
_MAGIC = b"PNIX"
_VERSION = 1
_HEAD = struct.Struct("<4sHIQ")
_SEG = struct.Struct("<QQQQ")


@dataclass
class SnapshotSegment:
    id: int
    base_seq: int
    size: int
    live: int


@dataclass
class Snapshot:
    segments: list[SnapshotSegment]
    index: MessageIndex
    ttl_heap: list[tuple[int, int]]
    age_exempt: set[int]
    extra: dict  # JSON-able: damage reports and lost sequences, so restarts keep reporting them


def encode(snap: Snapshot) -> bytes:
    parts = [struct.pack("<I", len(snap.segments))]
    parts.extend(_SEG.pack(s.id, s.base_seq, s.size, s.live) for s in snap.segments)
    heap = array("q", [v for pair in snap.ttl_heap for v in pair])
    parts += [struct.pack("<Q", len(heap)), heap.tobytes()]
    exempt = array("q", sorted(snap.age_exempt))
    parts += [struct.pack("<Q", len(exempt)), exempt.tobytes()]
    extra = json.dumps(snap.extra).encode()
    parts += [struct.pack("<Q", len(extra)), extra]
    parts.append(snap.index.to_bytes())
    body = b"".join(parts)
    return _HEAD.pack(_MAGIC, _VERSION, zlib.crc32(body), len(body)) + body


def decode(blob: bytes) -> Snapshot:
    """Parse a snapshot; ValueError when it is damaged or of another version."""
    if len(blob) < _HEAD.size:
        raise ValueError("short snapshot")
    magic, version, crc, length = _HEAD.unpack_from(blob)
    body = memoryview(blob)[_HEAD.size :]
    if magic != _MAGIC or version != _VERSION or len(body) != length or zlib.crc32(body) != crc:
        raise ValueError("snapshot does not verify")
    (n_segments,) = struct.unpack_from("<I", body)
    pos = 4
    segments = []
    for _ in range(n_segments):
        segments.append(SnapshotSegment(*_SEG.unpack_from(body, pos)))
        pos += _SEG.size
    heap_values, pos = _read_array(body, pos)
    heap = [(heap_values[i], heap_values[i + 1]) for i in range(0, len(heap_values), 2)]
    exempt, pos = _read_array(body, pos)
    (extra_len,) = struct.unpack_from("<Q", body, pos)
    extra = json.loads(bytes(body[pos + 8 : pos + 8 + extra_len]))
    pos += 8 + extra_len
    index = MessageIndex.from_bytes(bytes(body[pos:]), with_locations=True)
    return Snapshot(segments, index, heap, set(exempt), extra)


def _read_array(body: memoryview, pos: int) -> tuple[array, int]:
    (count,) = struct.unpack_from("<Q", body, pos)
    pos += 8
    values = array("q")
    values.frombytes(body[pos : pos + 8 * count])
    return values, pos + 8 * count
