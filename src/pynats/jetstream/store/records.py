"""The on-disk record: a fixed little-endian header, the variable parts, one CRC-32.

    offset size field
         0    4 crc32 of bytes [4, length)  -- covers everything below, magic and kind too
         4    2 magic 0xA7E5                 -- lets a scan find the next record after damage
         6    1 kind (KIND_*)
         7    1 flags (reserved, 0)
         8    4 length of the whole record
        12    8 seq   (for DELETE: the count of sequences in the body)
        20    8 ts_ns
        28    8 ttl_ns (0 none, -1 never expire)
        36    2 subject length
        38    4 headers length
        42      subject, headers, data

The same frame carries messages, tombstones and consumer-state operations, so one scanner
serves every log. A record is valid only if its CRC matches: a torn tail or a flipped bit
is found by the checksum, and `scan` resynchronises on the next magic whose record verifies.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from typing import Final

HEADER: Final = struct.Struct("<IHBBIQqqHI")
# bound once: compiled code calls them without a lookup per record
_unpack_header: Final = HEADER.unpack_from
_crc32: Final = zlib.crc32
# (crc, magic, kind, flags, length, seq, ts, ttl, subject length, headers length)
Header = tuple[int, int, int, int, int, int, int, int, int, int]
# `scan`'s (offset, length, kind, seq, ts, ttl, subject length, headers length)
Scanned = tuple[int, int, int, int, int, int, int, int]
HEAD_NO_CRC: Final = struct.Struct("<HBBIQqqHI")
CRC: Final = struct.Struct("<I")
HEADER_SIZE: Final = HEADER.size  # 42
MAGIC: Final = 0xA7E5
MAGIC_BYTES: Final = struct.pack("<H", MAGIC)
MAX_RECORD_SIZE: Final = 1 << 30

KIND_MSG: Final = 1  # a message
KIND_DELETE: Final = 2  # tombstones: body = `count` u64 sequences
KIND_ERASED: Final = 3  # a message overwritten in place by an erasing delete
KIND_FIRST: Final = 4  # "every sequence below `seq` is gone" (purge / compact)
KIND_SKIP: Final = 5  # sequence `seq` was used without a message (last_seq must survive)
KIND_BATCH_MSG: Final = 6  # a message of an atomic batch: it counts once the batch's end follows
KIND_BATCH_END: Final = 7  # the atomic batch ending at sequence `seq` is complete
# consumer-state operations (consumer.py)
KIND_DELIVERED: Final = 16
KIND_ACK: Final = 17
KIND_ACK_ALL: Final = 18
KIND_STATE: Final = 19
KIND_DROP: Final = 20  # a pending message no longer tracked (not acked)
KIND_OPS: Final = 21  # a batch of consumer operations (store/consumer.py `_OP`)

DAMAGE_CHECKSUM: Final = 1
DAMAGE_TRUNCATED: Final = 2

_u64s: Final = struct.Struct("<Q")


def encode(
    kind: int,
    seq: int,
    ts_ns: int = 0,
    ttl_ns: int = 0,
    subject: bytes = b"",
    headers: bytes = b"",
    data: bytes = b"",
) -> bytes:
    """One complete record."""
    slen, hlen = len(subject), len(headers)
    length = HEADER_SIZE + slen + hlen + len(data)
    head = HEAD_NO_CRC.pack(MAGIC, kind, 0, length, seq, ts_ns, ttl_ns, slen, hlen)
    crc = _crc32(data, _crc32(headers, _crc32(subject, _crc32(head))))
    return b"".join((CRC.pack(crc), head, subject, headers, data))


def encode_seqs(kind: int, seqs: list[int], ts_ns: int = 0) -> bytes:
    """A record whose body is a list of sequences (tombstones)."""
    body = struct.pack(f"<{len(seqs)}Q", *seqs)
    return encode(kind, len(seqs), ts_ns, data=body)


def decode_seqs(body: bytes | memoryview, count: int) -> tuple[int, ...]:
    return struct.unpack_from(f"<{count}Q", body)


def _header(buf: bytes | bytearray | memoryview, pos: int) -> Header:
    """The fixed header at `pos`, as ints: `struct` hands back untyped values, and every
    sum, comparison and slice made from them would be generic compiled code."""
    return _unpack_header(buf, pos)


def decode(buf: bytes) -> tuple[int, int, int, int, bytes, bytes]:
    """Verify and split one whole record; raises ValueError when it does not check out."""
    return decode_at(buf, 0, len(buf))


def decode_at(buf: bytes, pos: int, size: int) -> tuple[int, int, int, int, bytes, bytes]:
    """`decode` of the `size` bytes of `buf` at `pos`, without copying the record out first
    (a read-ahead buffer holds many): (kind, seq, ts, ttl, headers, data). The subject is
    checked by the CRC but not copied out: a reader knows it from the index (or has none)."""
    if size < HEADER_SIZE or pos + size > len(buf):
        raise ValueError("short record")
    crc, magic, kind, _flags, length, seq, ts, ttl, slen, hlen = _header(buf, pos)
    if magic != MAGIC or length != size or HEADER_SIZE + slen + hlen > length:
        raise ValueError("bad record header")
    end = pos + length
    # a small record's copy costs less than a memoryview (most messages are small)
    body = buf[pos + 4 : end] if length <= 4096 else memoryview(buf)[pos + 4 : end]
    if _crc32(body) != crc:
        raise ValueError("checksum mismatch")
    headers_end = pos + HEADER_SIZE + slen + hlen
    return kind, seq, ts, ttl, buf[headers_end - hlen : headers_end], buf[headers_end:end]


def _verifies(view: memoryview, pos: int, end: int) -> int:
    """Length of a valid record at `pos`, or 0."""
    if pos + HEADER_SIZE > end:
        return 0
    crc, magic, _kind, _flags, length, _seq, _ts, _ttl, slen, hlen = _header(view, pos)
    if magic != MAGIC or length < HEADER_SIZE + slen + hlen or pos + length > end:
        return 0
    if _crc32(view[pos + 4 : pos + length]) != crc:
        return 0
    return length


def scan(buf: bytes | bytearray | memoryview, start: int) -> Iterator[Scanned]:
    """Walk the records of `buf` from `start`.

    Yields `(offset, length, kind, seq, ts, ttl, slen, hlen)` for every valid record and
    `(offset, length, -1, reason, 0, 0, 0, 0)` for every damaged stretch (reason is
    DAMAGE_CHECKSUM or DAMAGE_TRUNCATED when the stretch runs into the end of the buffer).
    """
    view = memoryview(buf)
    end = len(view)
    pos = start
    while pos < end:
        if pos + HEADER_SIZE <= end:
            crc, magic, kind, _f, length, seq, ts, ttl, slen, hlen = _header(view, pos)
            if (
                magic == MAGIC
                and HEADER_SIZE + slen + hlen <= length
                and pos + length <= end
                and _crc32(view[pos + 4 : pos + length]) == crc
            ):
                yield (pos, length, kind, seq, ts, ttl, slen, hlen)
                pos += length
                continue
        bad_start = pos
        nxt = _resync(view, pos + 1, end)
        if nxt < 0:
            yield (bad_start, end - bad_start, -1, _tail_reason(view, bad_start, end), 0, 0, 0, 0)
            return
        yield (bad_start, nxt - bad_start, -1, DAMAGE_CHECKSUM, 0, 0, 0, 0)
        pos = nxt


def _resync(view: memoryview, pos: int, end: int) -> int:
    """Offset of the next record at or after `pos` that verifies, or -1."""
    raw = (
        view.obj
        if isinstance(view.obj, bytes | bytearray) and len(view.obj) == end
        else bytes(view)
    )
    search = pos + 4
    while True:
        found = raw.find(MAGIC_BYTES, search)
        if found < 0:
            return -1
        candidate = found - 4
        if candidate >= pos and _verifies(view, candidate, end):
            return candidate
        search = found + 1


def _tail_reason(view: memoryview, pos: int, end: int) -> int:
    """A damaged stretch at the end is a truncation when its first record claims to run past it."""
    if pos + HEADER_SIZE > end:
        return DAMAGE_TRUNCATED
    _crc, magic, _k, _f, length, *_ = _header(view, pos)
    if magic == MAGIC and pos + length > end and length < MAX_RECORD_SIZE:
        return DAMAGE_TRUNCATED
    return DAMAGE_CHECKSUM
