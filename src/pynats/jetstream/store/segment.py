"""One segment file of the message log: a small header, then records (see records.py).

    offset size field
         0    4 magic b"PNJS"
         4    2 format version (1)
         6    2 flags (0)
         8    8 segment id (also in the file name)
        16    8 base seq: the next sequence when the segment was created (all its messages
                are >= it; the previous segment's messages are all < it)
        24    8 length of the previous segment when this one was started: a later restart
                that finds the previous file shorter knows it was truncated
        32    4 crc32 of bytes [0, 32)

A segment is appended to only while it is the active (last) one; afterwards its bytes change
only when an erasing delete overwrites a record in place (same length, new checksum).
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

SEG_HEADER = struct.Struct("<4sHHQQQ")
SEG_HEADER_SIZE = SEG_HEADER.size + 4
SEG_MAGIC = b"PNJS"
SEG_VERSION = 1
_NAME_RE = re.compile(r"^seg-(\d{10})\.log$")


@dataclass
class Segment:
    """A segment as the store tracks it. `size` counts bytes handed to the OS."""

    id: int
    path: str
    fd: int
    base_seq: int
    size: int = 0
    live: int = 0  # live messages stored in it
    has_damage: bool = False  # damaged segments are never removed

    @property
    def name(self) -> str:
        return segment_name(self.id)


def segment_name(segment_id: int) -> str:
    return f"seg-{segment_id:010d}.log"


def parse_segment_name(name: str) -> int | None:
    m = _NAME_RE.match(name)
    return int(m.group(1)) if m else None


def encode_header(segment_id: int, base_seq: int, prev_len: int) -> bytes:
    head = SEG_HEADER.pack(SEG_MAGIC, SEG_VERSION, 0, segment_id, base_seq, prev_len)
    return head + struct.pack("<I", zlib.crc32(head))


def decode_header(buf: bytes) -> tuple[int, int, int] | None:
    """(segment id, base seq, previous segment length), or None when damaged."""
    if len(buf) < SEG_HEADER_SIZE:
        return None
    head = buf[: SEG_HEADER.size]
    (crc,) = struct.unpack_from("<I", buf, SEG_HEADER.size)
    if zlib.crc32(head) != crc:
        return None
    magic, version, _flags, segment_id, base_seq, prev_len = SEG_HEADER.unpack(head)
    if magic != SEG_MAGIC or version != SEG_VERSION:
        return None
    return segment_id, base_seq, prev_len
