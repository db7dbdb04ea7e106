"""WebSocket framing, sans I/O: the same bytes and control frames whatever the chunking, the
checks and texts of nats-server, permessage-deflate both ways."""

from __future__ import annotations

import os
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pynats.server import ws_frames
from pynats.server.ws_frames import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONTINUATION,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    FrameDecoder,
    FrameEncoder,
    apply_mask,
    close_payload,
    deflate_message,
    frame_header,
    xor_mask,
)


def client_frame(
    payload: bytes,
    opcode: int = OP_BINARY,
    *,
    final: bool = True,
    rsv: int = 0,
    masked: bool = True,
) -> bytes:
    """A frame as a client sends it (masked), with any header bits a test needs. The mask
    key is fixed: frames built for parametrized tests must be the same in every pytest-xdist
    worker (the payloads make the masking non-trivial)."""
    key = b"\x37\xfa\x21\x3d" if masked else None
    head = bytearray(frame_header(len(payload), opcode, final=final, mask_key=key))
    head[0] |= rsv
    return bytes(head) + (apply_mask(payload, key) if key else payload)


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def decode_in_pieces(stream: bytes, cuts: list[int], **kwargs: object) -> tuple[bytes, list]:
    decoder = FrameDecoder(**kwargs)  # type: ignore[arg-type]
    out = bytearray()
    start = 0
    for cut in [*sorted(cuts), len(stream)]:
        out += decoder.feed(stream[start:cut])
        start = cut
    return bytes(out), [decoder.pongs, decoder.close_reply, decoder.error]


STREAM = b"".join(
    [
        client_frame(b'CONNECT {"verbose":false}\r\nPI'),
        client_frame(b"hello", OP_PING),
        client_frame(b"NG\r\nPUB foo 5\r\n"),
        client_frame(b"hel", OP_TEXT, final=False),
        client_frame(b"", OP_CONTINUATION, final=False),
        client_frame(b"lo\r\n", OP_CONTINUATION),
        client_frame(b"", OP_PONG),
        client_frame(b"x" * 70000),
        client_frame(b"y" * 300),
        client_frame(b"", OP_PING),
    ]
)
PAYLOAD = b'CONNECT {"verbose":false}\r\nPING\r\nPUB foo 5\r\nhello\r\n' + b"x" * 70000 + b"y" * 300


def test_data_frames_are_one_byte_stream_and_pings_are_answered() -> None:
    payload, (pongs, close, error) = decode_in_pieces(STREAM, [])
    assert payload == PAYLOAD
    assert pongs == [b"hello", b""]
    assert close is None and error is None


def test_the_same_bytes_split_at_every_offset_of_the_headers() -> None:
    # Every cut in the first 200 bytes (headers, masks, a control frame) and a few later.
    for cut in [*range(1, 200), 40000, len(STREAM) - 5]:
        payload, rest = decode_in_pieces(STREAM, [cut])
        assert payload == PAYLOAD, cut
        assert rest[0] == [b"hello", b""]


def test_fed_byte_by_byte() -> None:
    stream = b"".join(
        [
            client_frame(b"abc"),
            client_frame(b"p", OP_PING),
            client_frame(b"d" * 200, final=False),
            client_frame(b"e", OP_CONTINUATION),
        ]
    )
    payload, (pongs, _, error) = decode_in_pieces(stream, list(range(1, len(stream))))
    assert payload == b"abc" + b"d" * 200 + b"e"
    assert pongs == [b"p"] and error is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_chunking_gives_the_same_stream(cuts: list[int]) -> None:
    payload, (pongs, close, error) = decode_in_pieces(STREAM, cuts)
    assert payload == PAYLOAD
    assert pongs == [b"hello", b""] and close is None and error is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.booleans(), st.booleans())
def test_garbage_never_raises(data: bytes, masked: bool, compression: bool) -> None:
    decoder = FrameDecoder(masked=masked, compression=compression, max_payload=1000)
    for i in range(0, len(data), 7):
        decoder.feed(data[i : i + 7])
    if decoder.is_done:
        assert decoder.feed(b"\x82\x00") == b""


@pytest.mark.parametrize(
    ("frames", "text"),
    [
        (client_frame(b"x", masked=False), "mask bit missing"),
        (client_frame(b"x", rsv=ws_frames.RSV2_BIT), "RSV2 and RSV3 must be clear"),
        (client_frame(b"x", rsv=ws_frames.RSV3_BIT), "RSV2 and RSV3 must be clear"),
        (
            client_frame(b"x", rsv=ws_frames.RSV1_BIT),
            "compressed frame received without negotiated permessage-deflate",
        ),
        (client_frame(b"x", OP_CONTINUATION), "invalid continuation frame"),
        (client_frame(b"x", 3), "unknown opcode 3"),
        (client_frame(b"x", 11), "unknown opcode 11"),
        (
            client_frame(b"x" * 126, OP_PING),
            "control frame length bigger than maximum allowed of 125 bytes",
        ),
        (client_frame(b"x", OP_PING, final=False), "control frame does not have final bit set"),
        (
            client_frame(b"a", final=False) + client_frame(b"b"),
            "new message started before final frame for previous message was received",
        ),
        (
            client_frame(b"a", final=False) + client_frame(b"b", OP_CONTINUATION, rsv=0x40),
            "invalid continuation frame",
        ),
        (client_frame(b"\x03", OP_CLOSE), "close frame payload cannot be 1 byte"),
    ],
)
def test_broken_frames_are_refused_with_nats_server_texts(frames: bytes, text: str) -> None:
    decoder = FrameDecoder()
    decoder.feed(frames)
    assert decoder.error is not None
    assert decoder.error.text == text
    assert decoder.error.status == ws_frames.CLOSE_PROTOCOL_ERROR
    assert decoder.is_done


def test_payload_before_an_error_is_still_returned() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(client_frame(b"PING\r\n") + client_frame(b"x", 3)) == b"PING\r\n"
    assert decoder.error is not None


def test_unmasked_frames_when_no_masking_was_agreed() -> None:
    decoder = FrameDecoder(masked=False)
    assert decoder.feed(client_frame(b"abc", masked=False) + client_frame(b"d")) == b"abcd"


def test_close_frames_are_echoed_and_end_the_stream() -> None:
    decoder = FrameDecoder()
    body = struct.pack("!H", 1000) + b"bye"
    assert decoder.feed(client_frame(b"A") + client_frame(body, OP_CLOSE) + client_frame(b"B")) == (
        b"A"
    )
    assert decoder.close_reply == body
    assert decoder.feed(client_frame(b"C")) == b""


def test_close_without_status_is_answered_empty() -> None:
    decoder = FrameDecoder()
    decoder.feed(client_frame(b"", OP_CLOSE))
    assert decoder.close_reply == b""


def test_close_with_a_body_that_is_not_utf8() -> None:
    decoder = FrameDecoder()
    decoder.feed(client_frame(b"\x03\xe8\xff\xfe", OP_CLOSE))
    assert decoder.close_reply == b"\x03\xefinvalid utf8 body in close frame"


def test_compressed_messages_across_frames_and_chunks() -> None:
    message = b"PUB foo 11\r\nhello world\r\n" * 500
    z = deflated(message)
    third = len(z) // 3
    stream = (
        client_frame(z[:third], rsv=ws_frames.RSV1_BIT, final=False)
        + client_frame(b"ping", OP_PING)
        + client_frame(z[third : 2 * third], OP_CONTINUATION, final=False)
        + client_frame(z[2 * third :], OP_CONTINUATION)
        + client_frame(b"PING\r\n")
    )
    for cut in (1, 5, third, len(stream) - 3):
        payload, (pongs, _, error) = decode_in_pieces(stream, [cut], compression=True)
        assert error is None
        assert payload == message + b"PING\r\n"
        assert pongs == [b"ping"]


def test_a_compressed_message_may_not_inflate_past_max_payload() -> None:
    decoder = FrameDecoder(compression=True, max_payload=1000)
    decoder.feed(client_frame(deflated(b"x" * 1001), rsv=ws_frames.RSV1_BIT))
    assert decoder.error is not None
    assert decoder.error.text == "maximum payload exceeded"
    assert decoder.error.status is None
    decoder = FrameDecoder(compression=True, max_payload=1000)
    assert decoder.feed(client_frame(deflated(b"x" * 1000), rsv=ws_frames.RSV1_BIT)) == (
        b"x" * 1000
    )


def test_a_compressed_message_is_not_buffered_past_what_max_payload_allows() -> None:
    decoder = FrameDecoder(compression=True, max_payload=1000)
    decoder.feed(client_frame(os.urandom(3000), rsv=ws_frames.RSV1_BIT, final=False))
    assert decoder.error is not None and decoder.error.text == "maximum payload exceeded"


def test_corrupt_compressed_data_is_a_read_error() -> None:
    decoder = FrameDecoder(compression=True)
    decoder.feed(client_frame(b"\xff\xff\xff garbage", rsv=ws_frames.RSV1_BIT))
    assert decoder.error is not None and decoder.error.text.startswith("flate: ")


# -- the writing side ------------------------------------------------------------------------


def server_frames(pieces: list[bytes], **kwargs: object) -> list[tuple[int, bool, bool, bytes]]:
    """(opcode, final, rsv1, payload) of each frame an encoder wrote (read back unmasked)."""
    data = b"".join(pieces)
    frames = []
    pos = 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        length = b1 & 0x7F
        pos += 2
        if length == 126:
            (length,) = struct.unpack("!H", data[pos : pos + 2])
            pos += 2
        elif length == 127:
            (length,) = struct.unpack("!Q", data[pos : pos + 8])
            pos += 8
        key = data[pos : pos + 4] if b1 & 0x80 else b""
        pos += len(key)
        payload = data[pos : pos + length]
        pos += length
        frames.append((b0 & 0x0F, bool(b0 & 0x80), bool(b0 & 0x40), xor_mask(payload, key)))
    return frames


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200000])
def test_one_flush_is_one_binary_frame(size: int) -> None:
    data = os.urandom(size)
    assert server_frames(FrameEncoder().encode(data)) == [(OP_BINARY, True, False, data)]


def test_browsers_get_frames_of_4096_bytes() -> None:
    data = os.urandom(10000)
    frames = server_frames(FrameEncoder(browser=True).encode(data))
    assert [len(f[3]) for f in frames] == [4096, 4096, 1808]
    assert all(f[:3] == (OP_BINARY, True, False) for f in frames)
    assert b"".join(f[3] for f in frames) == data


def test_small_flushes_are_not_compressed() -> None:
    encoder = FrameEncoder(compression=True)
    assert server_frames(encoder.encode(b"PONG\r\n")) == [(OP_BINARY, True, False, b"PONG\r\n")]


def test_compressed_flushes_inflate_back() -> None:
    data = b"MSG foo 1 11\r\nhello world\r\n" * 1000
    [(opcode, final, rsv1, payload)] = server_frames(FrameEncoder(compression=True).encode(data))
    assert (opcode, final, rsv1) == (OP_BINARY, True, True)
    assert len(payload) < len(data) // 10
    assert ws_frames.inflate_message([payload], 0) == data


def test_compressed_frames_for_browsers_are_fragments_of_one_message() -> None:
    data = os.urandom(9000)  # incompressible: more than two browser frames
    frames = server_frames(FrameEncoder(compression=True, browser=True).encode(data))
    assert [f[:3] for f in frames] == [
        (OP_BINARY, False, True),
        (OP_CONTINUATION, False, False),
        (OP_CONTINUATION, True, False),
    ]
    assert ws_frames.inflate_message([f[3] for f in frames], 0) == data
    safari = FrameEncoder(compression=True, browser=True, no_compressed_fragments=True)
    assert len(server_frames(safari.encode(data))) == 1


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=20000), st.booleans(), st.booleans())
def test_what_a_client_encoder_writes_our_decoder_reads(
    data: bytes, compression: bool, browser: bool
) -> None:
    encoder = FrameEncoder(compression=compression, browser=browser, masked=True)
    stream = b"".join(encoder.encode(data))
    payload, (_, _, error) = decode_in_pieces(stream, [len(stream) // 2], compression=compression)
    assert error is None
    assert payload == data


def test_deflate_message_is_a_sync_flushed_stream_without_its_tail() -> None:
    data = b"abc" * 1000
    out = deflate_message(data)
    assert not out.endswith(ws_frames.SYNC_FLUSH_TAIL)
    assert zlib.decompressobj(-15).decompress(out + ws_frames.SYNC_FLUSH_TAIL) == data


def test_control_frames() -> None:
    assert FrameEncoder().control(OP_PONG, b"hi") == b"\x8a\x02hi"
    assert FrameEncoder().control(OP_CLOSE, close_payload(1000, "")) == b"\x88\x02\x03\xe8"


def test_close_texts_are_cut_to_fit_a_control_frame() -> None:
    body = close_payload(1002, "x" * 200)
    assert len(body) == 2 + 123
    assert body.endswith(b"xx...")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100), st.binary(min_size=4, max_size=4))
def test_pure_python_mask_matches_the_fast_one(data: bytes, key: bytes) -> None:
    assert xor_mask(data, key) == apply_mask(data, key)
    assert xor_mask(xor_mask(data, key), key) == data
