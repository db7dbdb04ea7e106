"""NATSARC1: the archive inside a stream backup of nats-server 2.15 (backup format v2).

The decompressed backup (see s2.py for the compression) is the 8-byte magic `NATSARC1` and then
entries. Each entry is five varints, the name, and its data:

    name length   uvarint (at most 1 MiB when read)
    timestamp     zigzag varint (Go's binary.PutVarint), nanoseconds since the epoch
    sequence      uvarint, 0 when the entry is not a message
    header size   uvarint  } the data is header-size + payload-size bytes: a message's
    payload size  uvarint  } header block, then its body
    name          name-length bytes (UTF-8; other bytes survive as surrogate escapes)
    data

A backup holds, in order: `state.json` (the stream state as JSON), one `consumers/<name>` per
consumer (JSON {"config": ..., "state": ...}), the messages in ascending sequence (name =
subject), and the end sentinel: an entry whose name is empty and whose numbers are all zero.
Nothing may follow the sentinel.

Sizes are stored as unsigned varints but meant as int64 (Go's): a size above 2**63 - 1, or
two whose sum is, is invalid, as is a varint longer than ten bytes. This module is sans-I/O:
`encode_entry` builds bytes, `ArchiveReader` takes bytes split anywhere and returns entries.
"""

from __future__ import annotations

from dataclasses import dataclass

MAGIC = b"NATSARC1"
MAX_NAME_LEN = 1 << 20  # nats-server's bound on a name read from an archive
DEFAULT_MAX_ENTRY_BYTES = 64 << 20  # header + payload bytes one entry may ask us to buffer
_MAX_INT64 = (1 << 63) - 1
_MAX_UINT64 = (1 << 64) - 1
_MAX_VARINT_LEN = 10


class ArchiveError(ValueError):
    """The data is a NATSARC1 archive, but an invalid one."""


class NotAnArchive(ValueError):
    """The data does not start with the NATSARC1 magic (a legacy tar backup, or garbage)."""


@dataclass(frozen=True)
class Entry:
    """One archive entry: a state file, a consumer, a message, or the end sentinel."""

    name: str
    timestamp: int
    sequence: int
    header: bytes
    payload: bytes

    @property
    def is_end(self) -> bool:
        return self.name == ""


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_entry(name: str, timestamp: int, sequence: int, header: bytes, payload: bytes) -> bytes:
    """One entry on the wire (without the magic, which starts the archive once)."""
    raw_name = name.encode(errors="surrogateescape")
    if len(raw_name) > MAX_NAME_LEN:
        raise ValueError(f"archive entry name of {len(raw_name)} bytes (at most {MAX_NAME_LEN})")
    if not -(1 << 63) <= timestamp <= _MAX_INT64:
        raise ValueError(f"archive timestamp {timestamp} is not an int64")
    if not 0 <= sequence <= _MAX_UINT64:
        raise ValueError(f"archive sequence {sequence} is not a uint64")
    zigzag = (timestamp << 1) ^ (timestamp >> 63)
    return b"".join(
        (
            _uvarint(len(raw_name)),
            _uvarint(zigzag),
            _uvarint(sequence),
            _uvarint(len(header)),
            _uvarint(len(payload)),
            raw_name,
            header,
            payload,
        )
    )


END_ENTRY = encode_entry("", 0, 0, b"", b"")


def _read_uvarint(buffer: bytearray, pos: int) -> tuple[int, int] | None:
    """(value, position after it), or None when the buffer ends inside the varint."""
    value = 0
    shift = 0
    for i in range(_MAX_VARINT_LEN):
        if pos + i >= len(buffer):
            return None
        byte = buffer[pos + i]
        if byte < 0x80:
            if i == _MAX_VARINT_LEN - 1 and byte > 1:
                break
            return value | (byte << shift), pos + i + 1
        value |= (byte & 0x7F) << shift
        shift += 7
    raise ArchiveError("archive: varint overflows a 64-bit integer")


class ArchiveReader:
    """NATSARC1 bytes in, entries out; the input may be split anywhere.

    An entry is returned once all of it has arrived. `max_entry` bounds the data (header
    plus payload) of one entry, checked as soon as its sizes are read, so a hostile archive
    cannot make the reader buffer more than that (plus a name of at most 1 MiB).
    """

    def __init__(self, max_entry: int = DEFAULT_MAX_ENTRY_BYTES) -> None:
        self.max_entry = max_entry
        self._buffer = bytearray()
        self._seen_magic = False
        self._ended = False
        self._failed: ValueError | None = None

    @property
    def ended(self) -> bool:
        """The end sentinel has been read."""
        return self._ended

    @property
    def at_boundary(self) -> bool:
        """No partial entry is buffered (the input so far ends where an entry ends)."""
        return not self._buffer

    def feed(self, data: bytes) -> list[Entry]:
        """The entries `data` completes; once it has raised, it raises the same again."""
        if self._failed is not None:
            raise self._failed
        try:
            return self._feed(data)
        except (ArchiveError, NotAnArchive) as exc:
            self._failed = exc
            raise

    def _feed(self, data: bytes) -> list[Entry]:
        buffer = self._buffer
        buffer += data
        if not self._seen_magic:
            if buffer[: len(MAGIC)] != MAGIC[: len(buffer)]:
                raise NotAnArchive("not a NATSARC1 archive")
            if len(buffer) < len(MAGIC):
                return []
            del buffer[: len(MAGIC)]
            self._seen_magic = True
        entries: list[Entry] = []
        pos = 0
        while pos < len(buffer):
            if self._ended:
                raise ArchiveError("archive: data after the end of the archive")
            parsed = self._entry(buffer, pos)
            if parsed is None:
                break
            entry, pos = parsed
            entries.append(entry)
        del buffer[:pos]
        return entries

    def _entry(self, buffer: bytearray, pos: int) -> tuple[Entry, int] | None:
        fields: list[int] = []
        for _ in range(5):
            field = _read_uvarint(buffer, pos)
            if field is None:
                return None
            value, pos = field
            fields.append(value)
        name_len, zigzag, sequence, header_size, payload_size = fields
        if name_len > MAX_NAME_LEN:
            raise ArchiveError(f"archive: entry name of {name_len} bytes")
        size = header_size + payload_size
        if header_size > _MAX_INT64 or payload_size > _MAX_INT64 or size > _MAX_INT64:
            raise ArchiveError("archive: negative entry size")
        if size > self.max_entry:
            raise ArchiveError(f"archive: entry of {size} bytes is larger than {self.max_entry}")
        end = pos + name_len + size
        if end > len(buffer):
            return None
        name = buffer[pos : pos + name_len].decode(errors="surrogateescape")
        pos += name_len
        timestamp = (zigzag >> 1) ^ -(zigzag & 1)
        entry = Entry(
            name=name,
            timestamp=timestamp,
            sequence=sequence,
            header=bytes(buffer[pos : pos + header_size]),
            payload=bytes(buffer[pos + header_size : end]),
        )
        if entry.is_end:
            if timestamp or sequence or size:
                raise ArchiveError("archive: an entry without a name")
            self._ended = True
        return entry, end
