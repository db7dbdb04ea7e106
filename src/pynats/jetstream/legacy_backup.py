"""Legacy stream backups: the tar of nats-server's file store (2.10 to 2.14), sans-I/O.

A backup made by nats-server 2.14 or older (`nats stream backup`, `$JS.API.STREAM.SNAPSHOT`)
decompresses (see s2.py) to a tar of the stream's directory in the Go file store, not to a
NATSARC1 archive (archive.py). This module reads that tar from bytes already in memory and
hands back what a NATSARC1 archive would say: the stream's state, its consumers, and its live
messages as `archive.Entry`s in ascending sequence. It never touches a file or a socket.

The tar (names relative to the stream's directory):

    meta.inf               JSON: the stream config, plus "Created" (RFC 3339)
    meta.sum               hex highwayhash-64 of meta.inf (not checked: see below)
    msgs/<n>.blk           message block n (ascending n is ascending sequence)
    msgs/index.db          the stream state when the snapshot was taken
    obs/<name>/meta.inf    JSON: the consumer config, plus "Created" and "Name"
    obs/<name>/o.dat       the consumer state (binary, below)
    meta.key, msgs/<n>.key only in an encrypted store's files: refused, with that reason

A block is a run of records, all integers little endian:

    rl     u32   record length, all of it; bit 31 set when the record has headers
    seq    u64   sequence; bit 62 marks a tombstone (the sequence was deleted), bit 63 an
                 erased record (the bytes are noise) or a placeholder for skipped sequences
    ts     i64   nanoseconds since the epoch
    slen   u16   subject length
    subject, then (with headers) u32 header length and the header block, then the body
    hash   8 bytes: highwayhash-64 keyed by sha256("<stream>-<n>"); the last one of a block
           is its "last checksum", which index.db records for the block it ended with

A block on disk may be compressed: `cmp`, an algorithm byte (1 = S2), the uncompressed size as
a uvarint, an S2 stream of everything but the last 8 bytes, and those 8 bytes as they were.
nats-server 2.14 writes snapshot blocks uncompressed and decrypted; older ones may not.

index.db (version 1-4) is magic 11, its version, varints, and 8 bytes of highwayhash: messages,
bytes, first seq, first ts (its base time), last seq, last ts; the subjects (length, subject,
total, first block, and the last block when total > 1, or always from version 4); the blocks
(index, bytes, first seq, first ts and last ts relative to the base time, last seq, number of
deleted, then a TTL count from version 2 and a schedule count from version 3, then the deleted
sequences as an AVL sequence set when any); the index of the last block and its last checksum.
A deletion may be recorded nowhere else (removals by limits write no tombstone), so when
index.db agrees with the blocks (its last checksum is the last block's, no block comes after
it, the totals of its blocks are its totals) it decides which records are live, as nats-server
decides on recovery. Otherwise the blocks alone decide, as nats-server's rebuild does:
tombstones and erased records delete, everything else is live; `warnings` says so.

o.dat is magic 22, version (1 or 2), then uvarints: ack floor (consumer, stream), delivered
(consumer, stream), the pending count, and when there are pending: a base time in seconds
(varint) and per pending message its stream and (version 2) consumer sequences above the ack
floor and its delivery time as seconds below the base (varint); then the redelivered count and
per entry a stream sequence and a count. Version 1 stores delivered as the next to deliver,
above the ack floor, and times as seconds above the base.

Checksums are not verified: highwayhash has no well-kept Python package and a pure-Python one
would read a few hundred KiB a second. Structure is checked instead (every length in bounds,
sequences ascending, index.db's totals against the blocks'), and the S2 framing around the
backup carries CRC-32C. Layouts from before 2.10 (msgs/<n>.idx instead of index.db) are read
from their blocks alone.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pynats.gotime import parse_rfc3339, rfc3339
from pynats.jetstream.archive import Entry
from pynats.jetstream.s2 import S2Decoder, S2Error

STREAM_META = "meta.inf"
STREAM_STATE = "msgs/index.db"
KEY_FILE_RE = re.compile(r"(^|/)(meta\.key|\d+\.key)$")
BLOCK_RE = re.compile(r"^msgs/(\d+)\.blk$")
CONSUMER_META_RE = re.compile(r"^obs/([^/]+)/meta\.inf$")

RECORD_HEADER_SIZE = 22
RECORD_HASH_SIZE = 8
RECORD_MAX_LEN = 32 << 20  # nats-server's bound on a record length read back (rlBadThresh)
HEADERS_BIT = 1 << 31
TOMBSTONE_BIT = 1 << 62
ERASED_BIT = 1 << 63
SEQ_MASK = TOMBSTONE_BIT - 1

COMPRESSION_MAGIC = b"cmp"
COMPRESSION_S2 = 1
STATE_MAGIC = 11
STATE_MAX_VERSION = 4
STATE_HASH_SIZE = 8
SEQSET_MAGIC = 22
SEQSET_BUCKETS = 32  # 64-bit words per node in version 2 (64 in version 1)
CONSUMER_MAGIC = 22
NS_PER_S = 1_000_000_000
TAR_MAGIC_OFFSET = 257


class LegacyBackupError(ValueError):
    """The data is not a stream backup this module can read; the message says why."""


@dataclass
class LegacyBackup:
    """What a legacy backup holds, in the shapes of a NATSARC1 archive's entries.

    `messages` reads the blocks lazily, once; it raises LegacyBackupError if a block turns
    out unreadable, though read_legacy_backup has already walked every record it will yield.
    """

    config: dict[str, Any]
    created: str
    state: dict[str, Any]
    consumers: list[dict[str, Any]]
    messages: Iterator[Entry]
    warnings: list[str] = field(default_factory=list)


def looks_like_legacy_backup(data: bytes) -> bool:
    """The (decompressed) backup starts like a tar: a POSIX or GNU header's magic."""
    return data[TAR_MAGIC_OFFSET : TAR_MAGIC_OFFSET + 5] == b"ustar"


def read_legacy_backup(data: bytes) -> LegacyBackup:
    """Read a decompressed legacy backup; raises LegacyBackupError on anything unreadable."""
    files = _TarFiles(data)
    if any(KEY_FILE_RE.search(name) for name in files.names):
        raise LegacyBackupError(
            "backup of an encrypted stream store (it has key files): it cannot be read "
            "without the server's encryption key"
        )
    config, created = _stream_meta(files.read(STREAM_META, required=True))
    name = config.get("name")
    if not isinstance(name, str) or not name:
        raise LegacyBackupError("meta.inf: the stream config has no name")
    consumers = [_consumer(files, consumer) for consumer in files.consumer_names()]
    blocks = files.blocks()
    warnings: list[str] = []
    index = _trusted_index(files, blocks, warnings)
    plan: list[tuple[int, _BlockIndex | None]]
    if index is not None:
        plan = [(n, index.blocks[n]) for n in sorted(index.blocks)]
    else:
        plan = [(n, None) for n in sorted(blocks)]
    scan = _scan(files, blocks, plan, index)
    state = scan.state(index, len(consumers), warnings)
    return LegacyBackup(
        config=config,
        created=created,
        state=state,
        consumers=consumers,
        messages=_messages(files, blocks, plan, scan.tombstones),
        warnings=warnings,
    )


# The tar


class _TarFiles:
    """The regular files of the tar, by name; contents read on demand."""

    def __init__(self, data: bytes) -> None:
        try:
            # Over bytes in memory: nothing to close, and members are read after __init__.
            self._tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:")  # noqa: SIM115
            members = self._tar.getmembers()
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            if looks_like_legacy_backup(data):
                raise LegacyBackupError(f"truncated or damaged backup ({exc})") from None
            raise LegacyBackupError(f"not a stream backup (not a tar archive: {exc})") from None
        self._members = {m.name.removeprefix("./"): m for m in members if m.isfile()}

    @property
    def names(self) -> list[str]:
        return list(self._members)

    def read(self, name: str, *, required: bool = False) -> bytes | None:
        member = self._members.get(name)
        if member is None:
            if required:
                raise LegacyBackupError(f"not a stream backup: it has no {name}")
            return None
        try:
            reader = self._tar.extractfile(member)
            content = reader.read() if reader is not None else b""
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise LegacyBackupError(f"{name}: truncated backup ({exc})") from None
        if len(content) != member.size:
            raise LegacyBackupError(f"{name}: truncated backup")
        return content

    def consumer_names(self) -> list[str]:
        return sorted(m.group(1) for n in self._members if (m := CONSUMER_META_RE.match(n)))

    def blocks(self) -> dict[int, str]:
        """Block index -> file name."""
        return {int(m.group(1)): n for n in self._members if (m := BLOCK_RE.match(n))}


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise LegacyBackupError(
            f"{what} is not JSON (a backup of an encrypted store cannot be read)"
        ) from None
    if not isinstance(value, dict):
        raise LegacyBackupError(f"{what} is not a JSON object")
    return value


def _stream_meta(raw: bytes | None) -> tuple[dict[str, Any], str]:
    assert raw is not None
    config = _json_object(raw, STREAM_META)
    created = config.pop("Created", None)
    if created is None:
        return config, rfc3339(0)
    if not isinstance(created, str):
        raise LegacyBackupError("meta.inf: Created is not a time")
    try:
        parse_rfc3339(created)
    except ValueError:
        raise LegacyBackupError(f"meta.inf: Created {created!r} is not a time") from None
    return config, created


def _consumer(files: _TarFiles, name: str) -> dict[str, Any]:
    meta = files.read(f"obs/{name}/meta.inf")
    assert meta is not None
    config = _json_object(meta, f"obs/{name}/meta.inf")
    config.pop("Created", None)
    config.pop("Name", None)
    raw_state = files.read(f"obs/{name}/o.dat")
    state = _consumer_state(raw_state, name) if raw_state else _consumer_state_json(0, 0, 0, 0)
    return {"config": config, "state": state}


# Varints, as Go's encoding/binary reads them


class _Reader:
    """A cursor over bytes; every read past the end or malformed raises LegacyBackupError."""

    def __init__(self, buf: bytes, what: str, pos: int = 0) -> None:
        self.buf = buf
        self.pos = pos
        self.what = what

    def fail(self, why: str) -> LegacyBackupError:
        return LegacyBackupError(f"{self.what}: {why}")

    def uvarint(self) -> int:
        value = 0
        for i in range(10):
            if self.pos >= len(self.buf):
                raise self.fail("truncated")
            byte = self.buf[self.pos]
            self.pos += 1
            if byte < 0x80:
                if i == 9 and byte > 1:
                    break
                return value | (byte << (7 * i))
            value |= (byte & 0x7F) << (7 * i)
        raise self.fail("varint overflows 64 bits")

    def varint(self) -> int:
        zigzag = self.uvarint()
        return (zigzag >> 1) ^ -(zigzag & 1)

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.buf):
            raise self.fail("truncated")
        chunk = self.buf[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "little")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")


# Consumer state (o.dat)


def _consumer_state_json(ack_c: int, ack_s: int, dlv_c: int, dlv_s: int) -> dict[str, Any]:
    return {
        "delivered": {"consumer_seq": dlv_c, "stream_seq": dlv_s},
        "ack_floor": {"consumer_seq": ack_c, "stream_seq": ack_s},
    }


def _consumer_state(buf: bytes, name: str) -> dict[str, Any]:
    """o.dat as the JSON of nats-server's ConsumerState (pending and redelivered omitted
    when empty, as Go's `omitempty` has them)."""
    r = _Reader(buf, f"obs/{name}/o.dat")
    if len(buf) < 2 or buf[0] != CONSUMER_MAGIC:
        raise r.fail("not a consumer state (bad magic: an encrypted store's?)")
    version = buf[1]
    if version not in (1, 2):
        raise r.fail(f"unknown consumer state version {version}")
    r.pos = 2
    ack_c, ack_s, dlv_c, dlv_s = r.uvarint(), r.uvarint(), r.uvarint(), r.uvarint()
    if version == 1:  # delivered was stored as the next to deliver, above the ack floor
        dlv_c += ack_c - 1
        dlv_s += ack_s - 1
    state = _consumer_state_json(ack_c, ack_s, dlv_c, dlv_s)
    pending: dict[str, dict[str, int]] = {}
    if count := r.uvarint():
        base = r.varint()
        for _ in range(count):
            sseq = r.uvarint()
            cseq = r.uvarint() + ack_c if version == 2 else 0
            seconds = r.varint()
            if sseq == 0:
                raise r.fail("a pending message without a sequence")
            ts = (base - seconds if version == 2 else seconds + base) * NS_PER_S
            pending[str(sseq + ack_s)] = {"Sequence": cseq, "Timestamp": ts}
    redelivered: dict[str, int] = {}
    for _ in range(r.uvarint()):
        sseq, times = r.uvarint(), r.uvarint()
        if sseq == 0 or times == 0:
            raise r.fail("a redelivered entry without a sequence or count")
        redelivered[str(sseq)] = times
    if pending:
        state["pending"] = pending
    if redelivered:
        state["redelivered"] = redelivered
    return state


# Stream state (index.db)


@dataclass
class _BlockIndex:
    index: int
    byte_count: int
    first_seq: int
    first_ts: int
    last_seq: int
    last_ts: int
    deleted: set[int]

    @property
    def messages(self) -> int:
        span = self.last_seq - self.first_seq + 1
        return max(span - len(self.deleted), 0) if span > 0 else 0

    def is_live(self, seq: int) -> bool:
        return self.first_seq <= seq <= self.last_seq and seq not in self.deleted


@dataclass
class _StreamIndex:
    messages: int
    byte_count: int
    first_seq: int
    first_ts: int
    last_seq: int
    last_ts: int
    num_subjects: int
    blocks: dict[int, _BlockIndex]
    last_block: int
    last_checksum: bytes


def _sequence_set(r: _Reader) -> set[int]:
    """nats-server's avl.SequenceSet encoding: magic, version, node count, size (u32s), then
    per node its base (u64), its bitmap words (u64s) and its height (u16)."""
    if r.take(1)[0] != SEQSET_MAGIC:
        raise r.fail("bad deleted-sequence set")
    version = r.take(1)[0]
    if version not in (1, 2):
        raise r.fail(f"deleted-sequence set version {version}")
    words = SEQSET_BUCKETS if version == 2 else 2 * SEQSET_BUCKETS
    nodes, size = r.u32(), r.u32()
    if nodes * (8 * (words + 1) + 2) > len(r.buf) - r.pos:
        raise r.fail("truncated deleted-sequence set")
    seqs: set[int] = set()
    for _ in range(nodes):
        base = r.u64()
        for word in range(words):
            bits = r.u64()
            start = base + 64 * word
            while bits:
                low = bits & -bits
                seqs.add(start + low.bit_length() - 1)
                bits ^= low
        r.u16()
    if len(seqs) != size:
        raise r.fail("deleted-sequence set size mismatch")
    return seqs


def _stream_index(buf: bytes) -> _StreamIndex:
    r = _Reader(buf[:-STATE_HASH_SIZE], STREAM_STATE)
    if len(buf) < 32 or buf[0] != STATE_MAGIC or not 1 <= buf[1] <= STATE_MAX_VERSION:
        raise r.fail("not a stream state this reader knows")
    version = buf[1]
    r.pos = 2
    messages, nbytes, first_seq = r.uvarint(), r.uvarint(), r.uvarint()
    base_ts = r.varint()
    last_seq = r.uvarint()
    last_ts = r.varint()
    num_subjects = r.uvarint()
    for _ in range(num_subjects):
        r.take(r.uvarint())
        total = r.uvarint()
        r.uvarint()  # first block
        if version >= 4 or total > 1:
            r.uvarint()  # last block
    blocks: dict[int, _BlockIndex] = {}
    for _ in range(r.uvarint()):
        index, bbytes, fseq = r.uvarint(), r.uvarint(), r.uvarint()
        fts = r.varint()
        lseq = r.uvarint()
        lts = r.varint()
        num_deleted = r.uvarint()
        if version >= 2:
            r.uvarint()  # messages with a TTL
        if version >= 3:
            r.uvarint()  # scheduled messages
        deleted = _sequence_set(r) if num_deleted else set()
        blocks[index] = _BlockIndex(
            index, bbytes, fseq, fts + base_ts, lseq, lts + base_ts, deleted
        )
    last_block = r.uvarint()
    last_checksum = r.take(RECORD_HASH_SIZE)
    listed = list(blocks)
    for n in listed[:-1]:
        if not blocks[n].messages:
            del blocks[n]  # nats-server loads an empty block only when it is the last
    return _StreamIndex(
        messages,
        nbytes,
        first_seq,
        base_ts,
        last_seq,
        last_ts,
        num_subjects,
        blocks,
        last_block,
        last_checksum,
    )


def _trusted_index(
    files: _TarFiles, blocks: dict[int, str], warnings: list[str]
) -> _StreamIndex | None:
    """index.db when nats-server would trust it on recovery; None (and a warning) if not."""
    raw = files.read(STREAM_STATE)
    if raw is None:
        warnings.append("no msgs/index.db: deletions known only from the blocks' tombstones")
        return None
    try:
        index = _stream_index(raw)
    except LegacyBackupError as exc:
        warnings.append(f"{exc}: deletions known only from the blocks' tombstones")
        return None
    why = None
    if not index.blocks or index.last_block != list(index.blocks)[-1]:
        why = "does not end with the block it names as last"
    elif any(n > index.last_block for n in blocks):
        why = "predates the last blocks"
    elif missing := sorted(n for n in index.blocks if n not in blocks):
        raise LegacyBackupError(f"msgs/index.db names block {missing[0]}, missing from the backup")
    elif _last_checksum(files, blocks[index.last_block]) != index.last_checksum:
        why = "predates the last block's last record"
    elif not _totals_agree(index):
        why = "disagrees with its own blocks"
    if why is None:
        return index
    warnings.append(f"msgs/index.db {why}: deletions known only from the blocks' tombstones")
    return None


def _totals_agree(index: _StreamIndex) -> bool:
    blocks = list(index.blocks.values())
    first = min((b.first_seq for b in blocks if b.messages), default=index.first_seq)
    last = max(b.last_seq for b in blocks)
    return (
        sum(b.messages for b in blocks) == index.messages
        and sum(b.byte_count for b in blocks) == index.byte_count
        and last == index.last_seq
        and (index.messages == 0 or first == index.first_seq)
    )


def _last_checksum(files: _TarFiles, name: str) -> bytes:
    raw = files.read(name)
    assert raw is not None
    return raw[-RECORD_HASH_SIZE:] if len(raw) >= RECORD_HASH_SIZE else bytes(RECORD_HASH_SIZE)


# Blocks


def _block_data(files: _TarFiles, name: str) -> bytes:
    raw = files.read(name)
    assert raw is not None
    if raw[:3] != COMPRESSION_MAGIC or len(raw) < 5 + RECORD_HASH_SIZE:
        return raw
    r = _Reader(raw, name, 4)
    algorithm = raw[3]
    size = r.uvarint()
    if algorithm != COMPRESSION_S2:
        raise r.fail(f"block compressed with unknown algorithm {algorithm}")
    decoder = S2Decoder()
    try:
        body = decoder.feed(raw[r.pos : -RECORD_HASH_SIZE])
    except S2Error as exc:
        raise r.fail(f"compressed block: {exc}") from None
    if not decoder.at_boundary or len(body) + RECORD_HASH_SIZE != size:
        raise r.fail("compressed block is truncated")
    return body + raw[-RECORD_HASH_SIZE:]


def _records(data: bytes, name: str) -> Iterator[tuple[int, int, int, int, int]]:
    """(offset, record length, raw sequence, timestamp, subject length) of each record, its
    lengths checked against the block and each other."""
    pos = 0
    end = len(data)
    from_bytes = int.from_bytes
    while pos < end:
        if pos + RECORD_HEADER_SIZE > end:
            raise LegacyBackupError(f"{name}: truncated record at offset {pos}")
        rl = from_bytes(data[pos : pos + 4], "little")
        has_headers = rl & HEADERS_BIT
        rl &= ~HEADERS_BIT
        slen = from_bytes(data[pos + 20 : pos + 22], "little")
        body = rl - RECORD_HEADER_SIZE - RECORD_HASH_SIZE - slen
        if body < 0 or rl > RECORD_MAX_LEN or pos + rl > end:
            raise LegacyBackupError(
                f"{name}: bad or truncated record at offset {pos} (an encrypted store's?)"
            )
        if has_headers:
            if body < 4:
                raise LegacyBackupError(f"{name}: bad record at offset {pos}")
            hstart = pos + RECORD_HEADER_SIZE + slen
            if from_bytes(data[hstart : hstart + 4], "little") > body - 4:
                raise LegacyBackupError(f"{name}: bad header length at offset {pos}")
        seq = from_bytes(data[pos + 4 : pos + 12], "little")
        ts = from_bytes(data[pos + 12 : pos + 20], "little", signed=True)
        yield pos, rl | has_headers, seq, ts, slen
        pos += rl


def _is_message(raw_seq: int) -> bool:
    return raw_seq & (TOMBSTONE_BIT | ERASED_BIT) == 0 and raw_seq != 0


@dataclass
class _Scan:
    """What a first walk over the records found: the live messages' totals, the tombstones
    (needed before any block is read when index.db is not trusted), the highest sequence."""

    messages: int = 0
    byte_count: int = 0
    first_seq: int = 0
    first_ts: int = 0
    last_seq: int = 0
    last_ts: int = 0
    subjects: set[bytes] = field(default_factory=set)
    tombstones: set[int] = field(default_factory=set)
    highest_seq: int = 0
    highest_ts: int = 0

    def state(
        self, index: _StreamIndex | None, consumers: int, warnings: list[str]
    ) -> dict[str, Any]:
        """state.json as nats-server 2.15 writes it: the live messages' totals, and the
        sequence range including deletions at either end when index.db or the blocks say."""
        last_seq, last_ts = self.highest_seq, self.highest_ts
        if index is not None:
            if (self.messages, self.byte_count) != (index.messages, index.byte_count):
                warnings.append(
                    f"msgs/index.db counts {index.messages} messages ({index.byte_count} bytes), "
                    f"the blocks hold {self.messages} ({self.byte_count} bytes)"
                )
            if index.last_seq >= last_seq:
                last_seq, last_ts = index.last_seq, index.last_ts
        if self.messages:
            first_seq, first_ts = self.first_seq, self.first_ts
        else:
            first_seq, first_ts = last_seq + 1, 0
            if index is not None and index.messages == 0 and index.first_seq > last_seq:
                first_seq = index.first_seq
        state: dict[str, Any] = {
            "messages": self.messages,
            "bytes": self.byte_count,
            "first_seq": first_seq,
            "first_ts": rfc3339(first_ts),
            "last_seq": last_seq,
            "last_ts": rfc3339(last_ts),
        }
        if self.subjects:
            state["num_subjects"] = len(self.subjects)
        if self.messages and (deleted := last_seq - first_seq + 1 - self.messages) > 0:
            state["num_deleted"] = deleted
        state["consumer_count"] = consumers
        return state


def _scan(
    files: _TarFiles,
    blocks: dict[int, str],
    plan: list[tuple[int, _BlockIndex | None]],
    index: _StreamIndex | None,
) -> _Scan:
    scan = _Scan()
    if index is None:  # tombstones delete across blocks: all of them first
        for n, _ in plan:
            for _, _, raw_seq, _, _ in _records(_block_data(files, blocks[n]), blocks[n]):
                if raw_seq & TOMBSTONE_BIT and not raw_seq & ERASED_BIT:
                    scan.tombstones.add(raw_seq & SEQ_MASK)
    previous = 0
    for n, block in plan:
        name = blocks[n]
        data = _block_data(files, name)
        for pos, rl, raw_seq, ts, slen in _records(data, name):
            seq = raw_seq & SEQ_MASK
            if seq > scan.highest_seq or (seq == scan.highest_seq and not scan.highest_ts):
                scan.highest_seq, scan.highest_ts = seq, ts  # an erased record's ts is 0
            if not _is_live(raw_seq, block, scan.tombstones):
                continue
            if seq <= previous:
                raise LegacyBackupError(f"{name}: sequence {seq} after {previous}")
            previous = seq
            if not scan.messages:
                scan.first_seq, scan.first_ts = seq, ts
            scan.messages += 1
            scan.byte_count += rl & ~HEADERS_BIT
            scan.last_seq, scan.last_ts = seq, ts
            start = pos + RECORD_HEADER_SIZE
            scan.subjects.add(data[start : start + slen])
    return scan


def _is_live(raw_seq: int, block: _BlockIndex | None, tombstones: set[int]) -> bool:
    if not _is_message(raw_seq):
        return False
    if block is not None:
        return block.is_live(raw_seq)
    return raw_seq not in tombstones


def _messages(
    files: _TarFiles,
    blocks: dict[int, str],
    plan: list[tuple[int, _BlockIndex | None]],
    tombstones: set[int],
) -> Iterator[Entry]:
    from_bytes = int.from_bytes
    for n, block in plan:
        name = blocks[n]
        data = _block_data(files, name)
        for pos, rl, raw_seq, ts, slen in _records(data, name):
            if not _is_live(raw_seq, block, tombstones):
                continue
            start = pos + RECORD_HEADER_SIZE
            end = pos + (rl & ~HEADERS_BIT) - RECORD_HASH_SIZE
            subject = data[start : start + slen].decode(errors="surrogateescape")
            start += slen
            header = b""
            if rl & HEADERS_BIT:
                hlen = from_bytes(data[start : start + 4], "little")
                header = data[start + 4 : start + 4 + hlen]
                start += 4 + hlen
            yield Entry(
                name=subject,
                timestamp=ts,
                sequence=raw_seq,
                header=header,
                payload=data[start:end],
            )
