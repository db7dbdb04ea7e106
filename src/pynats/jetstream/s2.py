"""S2 streams: what nats-server's stream snapshots are compressed with (klauspost/compress s2).

An S2 stream is Snappy's framing format (github.com/google/snappy, framing_format.txt) with
three extensions: the stream identifier may be `S2sTwO` instead of `sNaPpY`, a block may
decompress to 4 MiB instead of 64 KiB, and a block may contain *repeat* copies. Both sides here
are sans-I/O: bytes in, bytes out, no socket, file or clock.

Framing. A stream is a sequence of chunks, each a type byte and a 3-byte little-endian body
length. 0xff is the stream identifier (body `S2sTwO` or `sNaPpY`); it must come first and may
come again, because concatenated streams are one stream. 0x00 is a compressed block and 0x01
an uncompressed one, each body starting with the masked CRC-32C of the *uncompressed* data.
0xfe (padding) and 0x80-0xfd (skippable, S2's seek index 0x99 among them) are skipped;
0x02-0x7f are reserved unskippable chunks, an error.

Blocks. A block is Snappy's: the uncompressed length as a uvarint, then literals and copies
(tags 00, 01, 10, 11 in the low two bits of each element's first byte). S2 adds one thing: a
1-byte-offset copy (tag 01) whose offset is 0 repeats the last copy's offset, with its length
read from the 3-bit field: 0-4 mean 4-8, 5 means 8 + one byte, 6 means 260 + two bytes, 7 means
65540 + three bytes (little endian). The last offset does not carry across blocks, so a repeat
before the block's first copy is corrupt, as the Go decoder has it. Copies with 2- and 4-byte
offsets keep Snappy's lengths (1-64); S2's encoders express longer matches as a copy followed
by repeats, so nothing else is new.

Speed. A block without repeats is a Snappy block: cramjam's C decoder takes it, and only when
it refuses one (offset 0 is invalid Snappy) does the pure-Python decoder below run. That one
appends slices to a bytearray and expands overlapping copies by repeating their period, so
there is no per-byte Python loop. Blocks are written with cramjam's Snappy compressor: a Snappy
block is a valid S2 block.
"""

from __future__ import annotations

import cramjam
import google_crc32c

STREAM_IDENTIFIER = b"\xff\x06\x00\x00S2sTwO"
S2_MAGIC_BODY = b"S2sTwO"
SNAPPY_MAGIC_BODY = b"sNaPpY"

CHUNK_COMPRESSED = 0x00
CHUNK_UNCOMPRESSED = 0x01
CHUNK_PADDING = 0xFE
CHUNK_STREAM_IDENTIFIER = 0xFF

CHUNK_HEADER_SIZE = 4
CHECKSUM_SIZE = 4
MAX_BLOCK_SIZE = 4 << 20  # S2: a block decompresses to at most 4 MiB
MAX_SNAPPY_BLOCK_SIZE = 64 << 10  # after a `sNaPpY` identifier: Snappy's limit
DEFAULT_BLOCK_SIZE = 64 << 10
# The largest compressed body a 4 MiB block can have (uvarint length, literal tags), plus
# slack; a chunk claiming more is corrupt before its body is read.
MAX_COMPRESSED_BODY_SIZE = CHECKSUM_SIZE + MAX_BLOCK_SIZE + 32
# A compressed block is kept only when it saves at least 1/32 of the input; otherwise the
# chunk is stored uncompressed (cheaper to read, about as small).
MIN_SAVING_SHIFT = 5

_CRC_MASK_DELTA = 0xA282EAD8


class S2Error(ValueError):
    """The input is not a valid S2 (or Snappy-framed) stream."""


def masked_crc(data: bytes) -> int:
    """The framing format's checksum: CRC-32C, rotated right by 15 bits, plus a constant."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _CRC_MASK_DELTA) & 0xFFFFFFFF


def _uvarint(src: bytes, pos: int) -> tuple[int, int]:
    """A block's uncompressed length: (value, position after it); at most 32 bits."""
    value = 0
    for shift in range(0, 70, 7):  # Go's uvarint: at most 10 bytes
        if pos >= len(src):
            break
        byte = src[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value > 0xFFFFFFFF:
                break
            return value, pos
    raise S2Error("s2: corrupt block length")


def decode_block(block: bytes, *, max_size: int = MAX_BLOCK_SIZE) -> bytes:
    """Decompress one S2 (or Snappy) block of at most `max_size` uncompressed bytes."""
    size, start = _uvarint(block, 0)
    if size > max_size:
        raise S2Error(f"s2: block of {size} bytes is larger than {max_size}")
    try:
        data = bytes(cramjam.snappy.decompress_raw(block))
    except cramjam.DecompressionError:
        return _decode_s2_block(block, start, size)
    if len(data) != size:  # cramjam checks this; a decoder that did not would be caught here
        raise S2Error("s2: corrupt block")
    return data


def _decode_s2_block(src: bytes, pos: int, size: int) -> bytes:
    """The pure-Python S2 block decoder: Snappy's elements plus repeat copies."""
    dst = bytearray()
    end = len(src)
    offset = 0  # no copy yet: a repeat here is corrupt
    while pos < end:
        tag = src[pos]
        kind = tag & 0x03
        if kind == 0:  # literal
            length = tag >> 2
            if length < 60:
                pos += 1
            else:
                width = length - 59  # 1-4 little-endian length bytes follow
                if pos + 1 + width > end:
                    raise S2Error("s2: corrupt block (literal length)")
                length = int.from_bytes(src[pos + 1 : pos + 1 + width], "little")
                pos += 1 + width
            length += 1
            if length > size - len(dst) or pos + length > end:
                raise S2Error("s2: corrupt block (literal)")
            dst += src[pos : pos + length]
            pos += length
            continue
        if kind == 1:  # copy with a 1-byte offset, or S2's repeat
            if pos + 2 > end:
                raise S2Error("s2: corrupt block (copy)")
            code = (tag >> 2) & 0x07
            new_offset = ((tag & 0xE0) << 3) | src[pos + 1]
            pos += 2
            if new_offset:
                offset = new_offset
                length = code + 4
            elif code < 5:
                length = code + 4
            else:
                width = code - 4  # 1, 2 or 3 bytes of length
                if pos + width > end:
                    raise S2Error("s2: corrupt block (repeat length)")
                extra = int.from_bytes(src[pos : pos + width], "little")
                pos += width
                length = extra + (8, 260, 65540)[width - 1]
        elif kind == 2:  # copy with a 2-byte offset
            if pos + 3 > end:
                raise S2Error("s2: corrupt block (copy)")
            length = (tag >> 2) + 1
            offset = src[pos + 1] | (src[pos + 2] << 8)
            pos += 3
        else:  # copy with a 4-byte offset
            if pos + 5 > end:
                raise S2Error("s2: corrupt block (copy)")
            length = (tag >> 2) + 1
            offset = int.from_bytes(src[pos + 1 : pos + 5], "little")
            pos += 5
        written = len(dst)
        if offset <= 0 or offset > written or length > size - written:
            raise S2Error("s2: corrupt block (copy offset)")
        start = written - offset
        if offset >= length:
            dst += dst[start : start + length]
        else:  # the copy overlaps its own output: the last `offset` bytes repeat
            period = dst[start:]
            whole, rest = divmod(length, offset)
            dst += period * whole + period[:rest]
    if len(dst) != size:
        raise S2Error("s2: corrupt block (length)")
    return bytes(dst)


def encode_block(data: bytes) -> bytes:
    """A Snappy block (a valid S2 block) of `data`."""
    return bytes(cramjam.snappy.compress_raw(data))


def _chunk(kind: int, checksum: int, body: bytes) -> bytes:
    size = CHECKSUM_SIZE + len(body)
    return (
        bytes((kind, size & 0xFF, (size >> 8) & 0xFF, size >> 16))
        + checksum.to_bytes(4, "little")
        + body
    )


def frame_block(data: bytes) -> bytes:
    """One data chunk for `data` (at most MAX_BLOCK_SIZE): compressed when that saves."""
    checksum = masked_crc(data)
    compressed = encode_block(data)
    if len(compressed) < len(data) - (len(data) >> MIN_SAVING_SHIFT):
        return _chunk(CHUNK_COMPRESSED, checksum, compressed)
    return _chunk(CHUNK_UNCOMPRESSED, checksum, data)


class S2Encoder:
    """Bytes in, S2 stream out: one chunk per `block_size` bytes, the rest kept until flush."""

    def __init__(self, block_size: int = DEFAULT_BLOCK_SIZE) -> None:
        if not 0 < block_size <= MAX_BLOCK_SIZE:
            raise ValueError(f"block size must be 1..{MAX_BLOCK_SIZE}, not {block_size}")
        self.block_size = block_size
        self._pending = bytearray()
        self._started = False

    def write(self, data: bytes) -> bytes:
        """The framed output of every block `data` completes (the identifier first)."""
        self._pending += data
        out = self._identifier()
        size = self.block_size
        if len(self._pending) < size:
            return out
        pending = self._pending
        full = len(pending) - len(pending) % size
        chunks = [frame_block(bytes(pending[i : i + size])) for i in range(0, full, size)]
        del pending[:full]
        return out + b"".join(chunks)

    def flush(self) -> bytes:
        """Whatever is buffered, as a final (short) block; the stream stays open for more."""
        out = self._identifier()
        if self._pending:
            out += frame_block(bytes(self._pending))
            self._pending.clear()
        return out

    def _identifier(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return STREAM_IDENTIFIER


class S2Decoder:
    """S2 stream in, decompressed bytes out; the input may be split anywhere.

    The decoder buffers at most one chunk (a 3-byte length: under 16 MiB); a chunk header
    that cannot be valid (unknown type, data before the identifier, a body too large for
    its kind) fails as soon as its four bytes are in, before its body is waited for.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._seen_identifier = False
        self._max_block = MAX_BLOCK_SIZE
        self._failed: S2Error | None = None

    @property
    def at_boundary(self) -> bool:
        """No partial chunk is buffered: the input so far ends where a chunk ends."""
        return not self._buffer

    def feed(self, data: bytes) -> bytes:
        """All decompressed bytes the chunks completed by `data` hold."""
        if self._failed is not None:
            raise self._failed
        try:
            return self._feed(data)
        except S2Error as exc:
            self._failed = exc
            raise

    def _feed(self, data: bytes) -> bytes:
        buffer = self._buffer
        buffer += data
        out: list[bytes] = []
        pos = 0
        available = len(buffer)
        while available - pos >= CHUNK_HEADER_SIZE:
            kind = buffer[pos]
            size = buffer[pos + 1] | (buffer[pos + 2] << 8) | (buffer[pos + 3] << 16)
            self._check_header(kind, size)
            body_start = pos + CHUNK_HEADER_SIZE
            body_end = body_start + size
            if body_end > available:
                break
            if kind in (CHUNK_COMPRESSED, CHUNK_UNCOMPRESSED):
                out.append(self._data_chunk(kind, bytes(buffer[body_start:body_end])))
            elif kind == CHUNK_STREAM_IDENTIFIER:
                self._identifier(bytes(buffer[body_start:body_end]))
            pos = body_end
        del buffer[:pos]
        return b"".join(out)

    def _check_header(self, kind: int, size: int) -> None:
        if not self._seen_identifier and kind != CHUNK_STREAM_IDENTIFIER:
            raise S2Error(f"s2: chunk type 0x{kind:02x} before the stream identifier")
        if kind == CHUNK_STREAM_IDENTIFIER:
            if size != len(S2_MAGIC_BODY):
                raise S2Error("s2: corrupt stream identifier")
        elif kind == CHUNK_COMPRESSED:
            if not CHECKSUM_SIZE <= size <= MAX_COMPRESSED_BODY_SIZE:
                raise S2Error(f"s2: compressed chunk of {size} bytes")
        elif kind == CHUNK_UNCOMPRESSED:
            if not CHECKSUM_SIZE <= size <= CHECKSUM_SIZE + self._max_block:
                raise S2Error(f"s2: uncompressed chunk of {size} bytes")
        elif kind < 0x80:
            raise S2Error(f"s2: unsupported chunk type 0x{kind:02x}")

    def _identifier(self, body: bytes) -> None:
        if body == S2_MAGIC_BODY:
            self._max_block = MAX_BLOCK_SIZE
        elif body == SNAPPY_MAGIC_BODY:
            self._max_block = MAX_SNAPPY_BLOCK_SIZE
        else:
            raise S2Error("s2: corrupt stream identifier")
        self._seen_identifier = True

    def _data_chunk(self, kind: int, body: bytes) -> bytes:
        checksum = int.from_bytes(body[:CHECKSUM_SIZE], "little")
        if kind == CHUNK_COMPRESSED:
            data = decode_block(body[CHECKSUM_SIZE:], max_size=self._max_block)
        else:
            data = body[CHECKSUM_SIZE:]
        if masked_crc(data) != checksum:
            raise S2Error("s2: corrupt input, crc mismatch")
        return data
