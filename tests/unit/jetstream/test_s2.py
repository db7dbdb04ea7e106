"""S2 streams: what the encoder writes the decoder reads back whatever the splits, corrupt or
truncated input is refused, and hand-built S2 blocks (repeat copies of every length class) decode
as an independent byte-by-byte model of the format says. Go-made streams: the integration test
tests/integration/jetstream/test_s2_go_interop.py."""

from __future__ import annotations

import os
import random

import pytest

from pynats.jetstream import s2
from pynats.jetstream.s2 import S2Decoder, S2Encoder, S2Error

COMPRESSIBLE = b"".join(b"subject.%d message %d of the stream; " % (i % 7, i) for i in range(4000))


def encode(data: bytes, block_size: int = s2.DEFAULT_BLOCK_SIZE) -> bytes:
    encoder = S2Encoder(block_size)
    return encoder.write(data) + encoder.flush()


def chunks_of(stream: bytes) -> list[tuple[int, bytes]]:
    """(type, body) of each chunk of a well-formed stream."""
    out = []
    pos = 0
    while pos < len(stream):
        size = int.from_bytes(stream[pos + 1 : pos + 4], "little")
        out.append((stream[pos], stream[pos + 4 : pos + 4 + size]))
        pos += 4 + size
    return out


def chunk(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "little") + body


def data_chunk(data: bytes, block: bytes | None = None) -> bytes:
    """A data chunk holding `data`: compressed as `block` when given, else stored."""
    crc = s2.masked_crc(data).to_bytes(4, "little")
    if block is None:
        return chunk(s2.CHUNK_UNCOMPRESSED, crc + data)
    return chunk(s2.CHUNK_COMPRESSED, crc + block)


def feed_in_pieces(stream: bytes, cuts: list[int]) -> bytes:
    decoder = S2Decoder()
    out = []
    start = 0
    for cut in [*sorted(cuts), len(stream)]:
        out.append(decoder.feed(stream[start:cut]))
        start = cut
    assert decoder.at_boundary
    return b"".join(out)


# --- round trips ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"x", os.urandom(200_000), COMPRESSIBLE, os.urandom(50_000) + COMPRESSIBLE],
    ids=["empty", "one-byte", "random", "compressible", "mixed"],
)
def test_what_the_encoder_writes_the_decoder_reads_back(data: bytes) -> None:
    stream = encode(data)
    assert stream.startswith(s2.STREAM_IDENTIFIER)
    decoder = S2Decoder()
    assert decoder.feed(stream) == data
    assert decoder.at_boundary


def test_the_stream_decodes_the_same_split_at_every_offset() -> None:
    data = COMPRESSIBLE[:3000] + os.urandom(1000)
    stream = encode(data, block_size=1024)
    for cut in range(len(stream) + 1):
        assert feed_in_pieces(stream, [cut]) == data


def test_the_stream_decodes_the_same_fed_a_byte_at_a_time() -> None:
    data = COMPRESSIBLE[:5000]
    stream = encode(data, block_size=2000)
    assert feed_in_pieces(stream, list(range(len(stream)))) == data


def test_the_stream_decodes_the_same_under_random_splits() -> None:
    rng = random.Random(7)
    data = COMPRESSIBLE + rng.randbytes(100_000)
    stream = encode(data)
    for _ in range(50):
        cuts = [rng.randrange(len(stream) + 1) for _ in range(rng.randrange(1, 40))]
        assert feed_in_pieces(stream, cuts) == data


def test_the_output_does_not_depend_on_how_the_input_was_written() -> None:
    rng = random.Random(3)
    data = COMPRESSIBLE + rng.randbytes(30_000)
    encoder = S2Encoder(4096)
    pieces = []
    pos = 0
    while pos < len(data):
        step = rng.randrange(1, 9000)
        pieces.append(encoder.write(data[pos : pos + step]))
        pos += step
    pieces.append(encoder.flush())
    assert b"".join(pieces) == encode(data, 4096)


def test_each_full_block_is_emitted_as_soon_as_it_is_complete() -> None:
    encoder = S2Encoder(1000)
    assert encoder.write(b"a" * 999) == s2.STREAM_IDENTIFIER
    first = encoder.write(b"a")
    assert [kind for kind, _ in chunks_of(first)] == [s2.CHUNK_COMPRESSED]
    assert encoder.flush() == b""
    assert encoder.write(b"b" * 10) == b""
    assert S2Decoder().feed(s2.STREAM_IDENTIFIER + first + encoder.flush()) == (
        b"a" * 1000 + b"b" * 10
    )


def test_an_empty_stream_is_just_the_identifier() -> None:
    assert S2Encoder().flush() == s2.STREAM_IDENTIFIER


def test_incompressible_blocks_are_stored_and_compressible_ones_compressed() -> None:
    stream = encode(os.urandom(10_000) + COMPRESSIBLE[:10_000], block_size=10_000)
    kinds = [kind for kind, _ in chunks_of(stream)]
    assert kinds == [s2.CHUNK_STREAM_IDENTIFIER, s2.CHUNK_UNCOMPRESSED, s2.CHUNK_COMPRESSED]


@pytest.mark.parametrize("block_size", [0, -1, s2.MAX_BLOCK_SIZE + 1])
def test_block_size_must_fit_the_format(block_size: int) -> None:
    with pytest.raises(ValueError):
        S2Encoder(block_size)


def test_blocks_of_the_largest_size_round_trip() -> None:
    data = COMPRESSIBLE * 30  # about 4.5 MiB
    stream = encode(data, block_size=s2.MAX_BLOCK_SIZE)
    assert len(chunks_of(stream)) == 3
    assert S2Decoder().feed(stream) == data


# --- framing ----------------------------------------------------------------------------


def test_masked_crc_matches_the_framing_format() -> None:
    # CRC-32C("123456789") = 0xE3069283; masked: rotate right 15, add 0xa282ead8
    crc = 0xE3069283
    assert s2.masked_crc(b"123456789") == ((crc >> 15 | crc << 17) + 0xA282EAD8) & 0xFFFFFFFF


def test_concatenated_streams_are_one_stream() -> None:
    assert S2Decoder().feed(encode(b"first ") + encode(b"second")) == b"first second"


def test_a_snappy_framed_stream_is_read() -> None:
    stream = (
        chunk(0xFF, b"sNaPpY")
        + data_chunk(b"hello ")
        + data_chunk(b"snappy" * 100, s2.encode_block(b"snappy" * 100))
    )
    assert S2Decoder().feed(stream) == b"hello " + b"snappy" * 100


def test_a_snappy_framed_stream_keeps_snappys_64k_block_limit() -> None:
    big = b"z" * (64 * 1024 + 1)
    s2_stream = s2.STREAM_IDENTIFIER + data_chunk(big, s2.encode_block(big))
    assert S2Decoder().feed(s2_stream) == big
    with pytest.raises(S2Error):
        S2Decoder().feed(chunk(0xFF, b"sNaPpY") + data_chunk(big, s2.encode_block(big)))
    with pytest.raises(S2Error):
        S2Decoder().feed(chunk(0xFF, b"sNaPpY") + data_chunk(big))


@pytest.mark.parametrize("kind", [0xFE, 0x80, 0x99, 0xFD])
def test_padding_and_skippable_chunks_are_skipped(kind: int) -> None:
    stream = (
        s2.STREAM_IDENTIFIER
        + data_chunk(b"before ")
        + chunk(kind, os.urandom(300))
        + chunk(kind, b"")
        + data_chunk(b"after")
    )
    for cut in range(len(stream) + 1):
        assert feed_in_pieces(stream, [cut]) == b"before after"


@pytest.mark.parametrize("kind", [0x02, 0x10, 0x7F])
def test_reserved_unskippable_chunks_are_refused(kind: int) -> None:
    decoder = S2Decoder()
    decoder.feed(s2.STREAM_IDENTIFIER)
    with pytest.raises(S2Error, match="unsupported chunk"):
        decoder.feed(bytes([kind, 0xFF, 0xFF, 0x00]))  # refused before its body arrives


def test_data_before_the_stream_identifier_is_refused() -> None:
    with pytest.raises(S2Error, match="before the stream identifier"):
        S2Decoder().feed(data_chunk(b"hello"))
    with pytest.raises(S2Error, match="before the stream identifier"):
        S2Decoder().feed(chunk(0xFE, b""))


@pytest.mark.parametrize("body", [b"S2sTwo", b"sNaPpYx", b""])
def test_a_wrong_stream_identifier_is_refused(body: bytes) -> None:
    with pytest.raises(S2Error, match="stream identifier"):
        S2Decoder().feed(chunk(0xFF, body))


def test_a_wrong_checksum_is_refused() -> None:
    stream = bytearray(encode(COMPRESSIBLE[:1000]))
    stream[len(s2.STREAM_IDENTIFIER) + 4] ^= 0x01  # first checksum byte
    with pytest.raises(S2Error, match="crc mismatch"):
        S2Decoder().feed(bytes(stream))
    stored = s2.STREAM_IDENTIFIER + data_chunk(b"hello")[:-1] + b"j"
    with pytest.raises(S2Error, match="crc mismatch"):
        S2Decoder().feed(stored)


@pytest.mark.parametrize("size", [0, 3])
def test_data_chunks_too_short_for_a_checksum_are_refused(size: int) -> None:
    for kind in (s2.CHUNK_COMPRESSED, s2.CHUNK_UNCOMPRESSED):
        with pytest.raises(S2Error):
            S2Decoder().feed(s2.STREAM_IDENTIFIER + chunk(kind, b"\0" * size))


def test_an_oversized_data_chunk_is_refused_from_its_header() -> None:
    decoder = S2Decoder()
    with pytest.raises(S2Error):
        decoder.feed(s2.STREAM_IDENTIFIER + bytes([s2.CHUNK_UNCOMPRESSED]) + b"\xff\xff\xff")


def test_a_block_declaring_more_than_4_mib_is_refused() -> None:
    size = s2.MAX_BLOCK_SIZE + 1
    block = bytearray()
    while size >= 0x80:
        block.append(size & 0x7F | 0x80)
        size >>= 7
    block.append(size)
    with pytest.raises(S2Error, match="larger than"):
        s2.decode_block(bytes(block) + b"\x00a")


def test_truncated_input_leaves_the_decoder_mid_chunk() -> None:
    data = COMPRESSIBLE[:20_000]
    stream = encode(data, block_size=8192)
    decoder = S2Decoder()
    assert decoder.at_boundary
    out = decoder.feed(stream[:-1])
    assert not decoder.at_boundary
    assert data.startswith(out) and len(out) < len(data)
    assert decoder.feed(stream[-1:]) == data[len(out) :]
    assert decoder.at_boundary


def test_after_an_error_the_decoder_stays_failed() -> None:
    decoder = S2Decoder()
    with pytest.raises(S2Error):
        decoder.feed(b"\x00\x00\x00\x00")
    with pytest.raises(S2Error):
        decoder.feed(s2.STREAM_IDENTIFIER)


def test_mutated_streams_decode_or_raise_s2_error() -> None:
    rng = random.Random(11)
    valid = encode(COMPRESSIBLE[:4000] + rng.randbytes(500), block_size=1500)
    for _ in range(3000):
        data = bytearray(valid)
        for _ in range(rng.randrange(1, 4)):
            pos = rng.randrange(len(data))
            action = rng.randrange(3)
            if action == 0:
                data[pos] = rng.randrange(256)
            elif action == 1:
                del data[pos : pos + rng.randrange(1, 8)]
            else:
                data[pos:pos] = rng.randbytes(rng.randrange(1, 8))
        try:
            S2Decoder().feed(bytes(data))
        except S2Error:
            pass


# --- S2 blocks: repeat copies -----------------------------------------------------------


class BlockBuilder:
    """Writes S2 block elements and keeps, beside them, what a byte-at-a-time decoder of the
    format (an independent model) makes of them."""

    def __init__(self) -> None:
        self.elements = bytearray()
        self.expected = bytearray()
        self.offset = 0

    def literal(self, data: bytes) -> None:
        n = len(data) - 1
        if n < 60:
            self.elements.append(n << 2)
        else:
            width = (n.bit_length() + 7) // 8
            self.elements.append((59 + width) << 2)
            self.elements += n.to_bytes(width, "little")
        self.elements += data
        self.expected += data

    def copy1(self, offset: int, length: int) -> None:
        assert 1 <= offset < 2048 and 4 <= length <= 11
        self.elements += bytes([(offset >> 8) << 5 | (length - 4) << 2 | 1, offset & 0xFF])
        self._copy(offset, length)

    def copy2(self, offset: int, length: int) -> None:
        assert 1 <= length <= 64
        self.elements += bytes([(length - 1) << 2 | 2]) + offset.to_bytes(2, "little")
        self._copy(offset, length)

    def copy4(self, offset: int, length: int) -> None:
        assert 1 <= length <= 64
        self.elements += bytes([(length - 1) << 2 | 3]) + offset.to_bytes(4, "little")
        self._copy(offset, length)

    def repeat(self, length: int) -> None:
        """S2's repeat: a copy1 with offset 0, the length in the 3-bit field's classes."""
        if length <= 8:
            self.elements += bytes([(length - 4) << 2 | 1, 0])
        elif length < 260:
            self.elements += bytes([5 << 2 | 1, 0, length - 8])
        elif length < 65540:
            self.elements += bytes([6 << 2 | 1, 0]) + (length - 260).to_bytes(2, "little")
        else:
            self.elements += bytes([7 << 2 | 1, 0]) + (length - 65540).to_bytes(3, "little")
        self._copy(self.offset, length)

    def _copy(self, offset: int, length: int) -> None:
        self.offset = offset
        for _ in range(length):
            self.expected.append(self.expected[-offset])

    def block(self) -> bytes:
        size = len(self.expected)
        header = bytearray()
        while size >= 0x80:
            header.append(size & 0x7F | 0x80)
            size >>= 7
        header.append(size)
        return bytes(header + self.elements)


@pytest.mark.parametrize(
    "length",
    [4, 5, 6, 7, 8, 9, 100, 259, 260, 261, 5000, 65539, 65540, 65541, 300_000],
)
def test_repeat_copies_of_every_length_class_decode(length: int) -> None:
    b = BlockBuilder()
    b.literal(b"0123456789abcdef")
    b.copy1(10, 6)
    b.repeat(length)  # offset 10 again: overlapping its own output
    b.literal(b"!")
    b.copy2(20, 20)
    b.repeat(length)
    block = b.block()
    assert s2.decode_block(block) == bytes(b.expected)
    stream = s2.STREAM_IDENTIFIER + data_chunk(bytes(b.expected), block)
    assert S2Decoder().feed(stream) == bytes(b.expected)


def test_random_s2_blocks_decode_as_the_model_says() -> None:
    rng = random.Random(5)
    for _ in range(300):
        b = BlockBuilder()
        b.literal(rng.randbytes(rng.randrange(1, 200)))
        b.copy1(rng.randrange(1, len(b.expected) + 1), rng.randrange(4, 12))
        for _ in range(rng.randrange(1, 30)):
            written = len(b.expected)
            op = rng.randrange(6)
            if op == 0:
                b.literal(rng.randbytes(rng.choice([1, 30, 61, 300, 70_000])))
            elif op == 1:
                b.copy1(rng.randrange(1, min(written, 2047) + 1), rng.randrange(4, 12))
            elif op == 2:
                b.copy2(rng.randrange(1, min(written, 65535) + 1), rng.randrange(1, 65))
            elif op == 3:
                b.copy4(rng.randrange(1, written + 1), rng.randrange(1, 65))
            else:
                b.repeat(rng.choice([4, 7, 8, rng.randrange(9, 260), rng.randrange(260, 3000)]))
        assert s2.decode_block(b.block()) == bytes(b.expected)


def test_a_repeat_before_any_copy_is_corrupt() -> None:
    block = bytes([8, 3 << 2]) + b"abcd" + bytes([0x01, 0x00])
    with pytest.raises(S2Error):
        s2.decode_block(block)


@pytest.mark.parametrize(
    "block",
    [
        bytes([8, 3 << 2]) + b"abcd" + bytes([0x01, 5]),  # offset past the start
        bytes([8, 3 << 2]) + b"abcd" + bytes([0x02, 0, 0]),  # copy2 with offset 0
        bytes([9, 3 << 2]) + b"abcd" + bytes([0x01, 4]),  # one byte short of the length
        bytes([7, 3 << 2]) + b"abcd" + bytes([0x01, 4]),  # copies past the length
        bytes([8, 3 << 2]) + b"abc",  # literal cut short
        bytes([8, 60 << 2]),  # literal length byte missing
        bytes([8, 3 << 2]) + b"abcd" + bytes([0x01]),  # copy1 cut short
        bytes([8, 3 << 2]) + b"abcd" + bytes([0x01, 4, 0x15, 0]),  # repeat length missing
        bytes([8, 3 << 2]) + b"abcd" + bytes([0x03, 4, 0, 0]),  # copy4 cut short
        b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",  # length varint too long
        b"\xff\xff\xff\xff\x1f",  # length over 32 bits
        b"",
    ],
)
def test_corrupt_blocks_are_refused(block: bytes) -> None:
    with pytest.raises(S2Error):
        s2.decode_block(block)  # cramjam refuses each, then so does the S2 decoder


def test_the_s2_decoder_agrees_with_snappy_on_snappy_blocks() -> None:
    rng = random.Random(9)
    for data in (COMPRESSIBLE, rng.randbytes(70_000), b"ab" * 40_000, b"q"):
        block = s2.encode_block(data)
        size, start = s2._uvarint(block, 0)
        assert s2._decode_s2_block(block, start, size) == data
