"""WebSocket framing (RFC 6455) and permessage-deflate (RFC 7692) as NATS uses them: no I/O.

NATS over WebSocket treats the payloads of data frames as one byte stream: a protocol
operation may span frames and a frame may hold many operations, so the decoder hands back
payload bytes, never "messages". `FrameDecoder.feed(chunk)` returns the payload bytes found in
the chunk (a partial data frame gives its bytes at once; a compressed message is inflated
when its final frame is complete); control frames are answered through `pongs` and
`close_reply`; a broken stream sets `error` and decodes nothing more. `FrameEncoder.encode`
turns whatever one flush writes into frames: one binary frame, or 4096-byte frames for
browsers, compressed when the connection agreed to it and the data is worth it.

The checks, their order and their texts are nats-server's (`wsRead`, `wsHandleControlFrame`):
clients must mask unless `Nats-No-Masking` was agreed, RSV2/RSV3 must be clear, RSV1 only on
the first frame of a message and only after compression was negotiated, control frames are
final and at most 125 bytes, a close frame's body is UTF-8. A compressed message may not
inflate past the connection's maximum payload.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from typing import Final

OP_CONTINUATION: Final = 0
OP_TEXT: Final = 1
OP_BINARY: Final = 2
OP_CLOSE: Final = 8
OP_PING: Final = 9
OP_PONG: Final = 10

FIN_BIT: Final = 0x80
RSV1_BIT: Final = 0x40  # "this message is compressed" (permessage-deflate)
RSV2_BIT: Final = 0x20
RSV3_BIT: Final = 0x10
MASK_BIT: Final = 0x80

MAX_CONTROL_PAYLOAD_BYTES: Final = 125
BROWSER_FRAME_BYTES: Final = 4096  # nats-server's frame size for user agents "Mozilla/..."
COMPRESS_THRESHOLD_BYTES: Final = 64  # flushes this small are sent uncompressed

# RFC 6455 section 7.4.1 status codes nats-server sends.
CLOSE_NORMAL: Final = 1000
CLOSE_GOING_AWAY: Final = 1001
CLOSE_PROTOCOL_ERROR: Final = 1002
CLOSE_UNSUPPORTED_DATA: Final = 1003
CLOSE_NO_STATUS: Final = 1005
CLOSE_ABNORMAL: Final = 1006
CLOSE_INVALID_PAYLOAD: Final = 1007
CLOSE_POLICY_VIOLATION: Final = 1008
CLOSE_MESSAGE_TOO_BIG: Final = 1009
CLOSE_INTERNAL_ERROR: Final = 1011
CLOSE_TLS_HANDSHAKE: Final = 1015

# Appended to a compressed message before inflating: the sync-flush tail the sender stripped
# (RFC 7692 section 7.2.2) and an empty final block, so the inflater sees a whole stream.
COMPRESS_LAST_BLOCK: Final = b"\x00\x00\xff\xff\x01\x00\x00\xff\xff"
SYNC_FLUSH_TAIL: Final = b"\x00\x00\xff\xff"

ERR_MAX_PAYLOAD: Final = "maximum payload exceeded"


def xor_mask(data: bytes | memoryview, key: bytes) -> bytes:
    """`data` XOR the 4-byte `key` repeated: masking and unmasking are the same operation.

    Pure Python on big integers (about 0.5 GB/s); `apply_mask` uses the C loop of the
    `websockets` package when it is installed."""
    n = len(data)
    if n == 0:
        return b""
    repeated = key * ((n >> 2) + 1)
    return (int.from_bytes(data, "little") ^ int.from_bytes(repeated[:n], "little")).to_bytes(
        n, "little"
    )


def _fastest_mask() -> Callable[[bytes | memoryview, bytes], bytes]:
    try:  # the C loop of the `websockets` package: tens of GB/s
        from websockets.speedups import apply_mask as c_apply_mask
    except ImportError:  # pragma: no cover - depends on the environment
        return xor_mask
    return c_apply_mask


apply_mask = _fastest_mask()


class WsError(Exception):
    """The stream is broken and the connection closes (a read error). `text` is
    nats-server's log text (`read error: <text>`). With a `status` (the framing checks) the
    close frame carries it and the text; without (a message that does not inflate) the close
    frame is the one of the connection's close reason."""

    def __init__(self, text: str, status: int | None = CLOSE_PROTOCOL_ERROR) -> None:
        super().__init__(text)
        self.text = text
        self.status = status


def close_payload(status: int, text: str) -> bytes:
    """A close frame body: the status, then the text cut to fit 125 bytes ("..." marks the
    cut), as nats-server's `wsCreateCloseMessage`."""
    body = text.encode()
    if len(body) > MAX_CONTROL_PAYLOAD_BYTES - 2:
        body = body[: MAX_CONTROL_PAYLOAD_BYTES - 5] + b"..."
    return struct.pack("!H", status) + body


def frame_header(
    length: int,
    opcode: int = OP_BINARY,
    *,
    final: bool = True,
    compressed: bool = False,
    mask_key: bytes | None = None,
) -> bytes:
    """The header of one frame carrying `length` payload bytes (masked with `mask_key`)."""
    b0 = opcode | (FIN_BIT if final else 0) | (RSV1_BIT if compressed else 0)
    mask = MASK_BIT if mask_key is not None else 0
    if length <= 125:
        head = struct.pack("!BB", b0, mask | length)
    elif length < 65536:
        head = struct.pack("!BBH", b0, mask | 126, length)
    else:
        head = struct.pack("!BBQ", b0, mask | 127, length)
    return head + mask_key if mask_key is not None else head


def deflate_message(data: bytes) -> bytes:
    """A permessage-deflate payload with no context takeover: a fresh compressor per message
    (fastest level, as nats-server), sync-flushed, the 4-byte flush tail removed.

    The window and the compressor's memory are sized to the message: creating a full-size
    compressor costs more than compressing a small flush."""
    wbits = min(15, max(9, (len(data) - 1).bit_length()))
    compressor = zlib.compressobj(1, zlib.DEFLATED, -wbits, 4)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4] if out.endswith(SYNC_FLUSH_TAIL) else out


def inflate_message(parts: list[bytes], max_size: int) -> bytes:
    """The data of a compressed message from its frames' payloads; WsError past `max_size`
    bytes (0: no bound) or on corrupt input."""
    inflater = zlib.decompressobj(-15)
    try:
        data = inflater.decompress(
            b"".join(parts) + COMPRESS_LAST_BLOCK, max_size + 1 if max_size else 0
        )
    except zlib.error:
        raise WsError("flate: corrupt input", None) from None
    if max_size and len(data) > max_size:
        raise WsError(ERR_MAX_PAYLOAD, None)
    return data


class FrameDecoder:
    """The reading side of one WebSocket connection.

    `masked`: frames must carry a mask (a client's, unless `Nats-No-Masking` was agreed).
    `compression`: permessage-deflate was negotiated. `max_payload` bounds an inflated
    message (0: none).
    """

    __slots__ = (
        "_compressed",
        "_compressed_bound",
        "_compressed_size",
        "_in_compressed_message",
        "_key",
        "_key_offset",
        "_message_final",
        "_mid_message",
        "_pending",
        "_remaining",
        "close_reply",
        "compression",
        "error",
        "masked",
        "max_payload",
        "pongs",
    )

    def __init__(self, *, masked: bool = True, compression: bool = False, max_payload: int = 0):
        self.masked = masked
        self.compression = compression
        self.max_payload = max_payload
        # Payloads of pings to answer, in order (the caller sends the pongs and clears it).
        self.pongs: list[bytes] = []
        # Set when a close frame arrived: the body to echo in our close frame.
        self.close_reply: bytes | None = None
        # Set when the stream is broken: nothing more is decoded.
        self.error: WsError | None = None
        self._pending = b""  # bytes of an incomplete header (or control frame)
        self._remaining = 0  # payload bytes still due in the current data frame
        self._key = b""  # the current data frame's mask ("" when unmasked)
        self._key_offset = 0
        self._mid_message = False  # a data message is open (its final frame not seen)
        self._message_final = False  # the current data frame ends its message
        self._in_compressed_message = False
        self._compressed: list[bytes] = []
        self._compressed_size = 0
        # A deflate stream this much larger than max_payload cannot inflate to less
        # (stored blocks cost 5 bytes per 64 KiB): stop buffering it.
        self._compressed_bound = max_payload + max_payload // 8192 + 1024

    @property
    def is_done(self) -> bool:
        """A close frame arrived or the stream broke: there is nothing more to read."""
        return self.error is not None or self.close_reply is not None

    def feed(self, data: bytes | memoryview) -> bytes:
        """The payload bytes in `data` (b"" when none); see `pongs`, `close_reply`, `error`.

        `data` may be a view of a buffer the caller reuses: nothing is kept that points
        into it, and payloads are copied only once (unmasking writes the copy)."""
        if self.error is not None or self.close_reply is not None:
            return b""
        if self._pending:
            data = self._pending + data
            self._pending = b""
        out: list[bytes] = []
        try:
            self._decode(data, memoryview(data), out)
        except WsError as e:
            self.error = e
        if not out:
            return b""
        return out[0] if len(out) == 1 else b"".join(out)

    def _decode(self, data: bytes | memoryview, view: memoryview, out: list[bytes]) -> None:
        pos = 0
        end = len(view)
        while pos < end:
            remaining = self._remaining
            if remaining:
                take = remaining if remaining <= end - pos else end - pos
                key = self._key
                if key:
                    offset = self._key_offset
                    if offset:
                        key = key[offset:] + key[:offset]
                    chunk = apply_mask(view[pos : pos + take], key)
                    self._key_offset = (offset + take) & 3
                elif take == end and isinstance(data, bytes):
                    chunk = data
                else:
                    chunk = bytes(view[pos : pos + take])
                pos += take
                self._remaining = remaining - take
                if self._in_compressed_message:
                    self._compressed.append(chunk)
                    self._compressed_size += take
                    if self.max_payload and self._compressed_size > self._compressed_bound:
                        raise WsError(ERR_MAX_PAYLOAD, None)
                else:
                    out.append(chunk)
                if not self._remaining:
                    self._end_of_frame(out)
                continue
            pos = self._header(view, pos, end, out)
            if pos < 0:
                return

    def _header(self, data: memoryview, start: int, end: int, out: list[bytes]) -> int:
        """Read one frame header at `start`: returns where its payload starts, or -1 when the
        header (or a control frame) is not complete yet (its bytes are kept)."""
        if end - start < 2:
            self._pending = bytes(data[start:])
            return -1
        b0 = data[start]
        b1 = data[start + 1]
        if b0 & (RSV2_BIT | RSV3_BIT):
            raise WsError("RSV2 and RSV3 must be clear")
        if self.masked and not b1 & MASK_BIT:
            raise WsError("mask bit missing")
        opcode = b0 & 0x0F
        final = bool(b0 & FIN_BIT)
        compressed = bool(b0 & RSV1_BIT)
        length = b1 & 0x7F
        if opcode >= OP_CLOSE:
            if opcode > OP_PONG:
                raise WsError(f"unknown opcode {opcode}")
            if length > MAX_CONTROL_PAYLOAD_BYTES:
                raise WsError(
                    "control frame length bigger than maximum allowed of "
                    f"{MAX_CONTROL_PAYLOAD_BYTES} bytes"
                )
            if not final:
                raise WsError("control frame does not have final bit set")
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._mid_message:
                raise WsError(
                    "new message started before final frame for previous message was received"
                )
            if compressed and not self.compression:
                raise WsError("compressed frame received without negotiated permessage-deflate")
        elif opcode == OP_CONTINUATION:
            if not self._mid_message or compressed:
                raise WsError("invalid continuation frame")
        else:
            raise WsError(f"unknown opcode {opcode}")
        pos = start + 2
        if length == 126:
            if end - pos < 2:
                self._pending = bytes(data[start:])
                return -1
            length = (data[pos] << 8) | data[pos + 1]
            pos += 2
        elif length == 127:
            if end - pos < 8:
                self._pending = bytes(data[start:])
                return -1
            length = int.from_bytes(data[pos : pos + 8], "big")
            pos += 8
        key = b""
        if b1 & MASK_BIT:
            if end - pos < 4:
                self._pending = bytes(data[start:])
                return -1
            key = bytes(data[pos : pos + 4])
            pos += 4
        if opcode >= OP_CLOSE:
            if end - pos < length:
                self._pending = bytes(data[start:])
                return -1
            payload = bytes(data[pos : pos + length])
            if key:
                payload = apply_mask(payload, key)
            self._control(opcode, payload)
            return end if self.close_reply is not None else pos + length
        # A data frame: its payload streams out as it arrives.
        if opcode != OP_CONTINUATION:
            self._in_compressed_message = compressed
        self._mid_message = not final
        self._message_final = final
        self._key = key
        self._key_offset = 0
        self._remaining = length
        if not length:
            self._end_of_frame(out)
        return pos

    def _end_of_frame(self, out: list[bytes]) -> None:
        if self._message_final and self._in_compressed_message:
            parts, self._compressed = self._compressed, []
            self._compressed_size = 0
            self._in_compressed_message = False
            out.append(inflate_message(parts, self.max_payload))

    def _control(self, opcode: int, payload: bytes) -> None:
        if opcode == OP_PING:
            self.pongs.append(payload)
        elif opcode == OP_CLOSE:
            if len(payload) == 1:
                raise WsError("close frame payload cannot be 1 byte")
            if len(payload) > 2:
                try:
                    payload[2:].decode()
                except UnicodeDecodeError:
                    payload = close_payload(
                        CLOSE_INVALID_PAYLOAD, "invalid utf8 body in close frame"
                    )
            self.close_reply = payload


class FrameEncoder:
    """The writing side: frames for what one flush writes.

    `compression`: permessage-deflate was negotiated. `browser`: frames of at most 4096 bytes
    (nats-server found browsers do better with them); `no_compressed_fragments`: a compressed
    message stays in one frame (Safari). `masked`: frames are masked, as a client's must be.
    """

    __slots__ = ("browser", "compression", "masked", "no_compressed_fragments")

    def __init__(
        self,
        *,
        compression: bool = False,
        browser: bool = False,
        no_compressed_fragments: bool = False,
        masked: bool = False,
    ) -> None:
        self.compression = compression
        self.browser = browser
        self.no_compressed_fragments = no_compressed_fragments
        self.masked = masked

    def encode(self, data: bytes) -> list[bytes]:
        """The frames (headers and payloads, to be written in order) carrying `data`."""
        if self.compression and len(data) > COMPRESS_THRESHOLD_BYTES:
            return self._compressed(deflate_message(data))
        size = len(data)
        if self.browser and size > BROWSER_FRAME_BYTES:
            pieces: list[bytes] = []
            view = memoryview(data)
            for start in range(0, size, BROWSER_FRAME_BYTES):
                pieces += self._frame(bytes(view[start : start + BROWSER_FRAME_BYTES]))
            return pieces
        return self._frame(data)

    def _frame(
        self, payload: bytes, opcode: int = OP_BINARY, *, final: bool = True, comp: bool = False
    ) -> list[bytes]:
        if self.masked:
            key = os.urandom(4)
            header = frame_header(len(payload), opcode, final=final, compressed=comp, mask_key=key)
            return [header, apply_mask(payload, key)]
        return [frame_header(len(payload), opcode, final=final, compressed=comp), payload]

    def _compressed(self, payload: bytes) -> list[bytes]:
        size = len(payload)
        if not self.browser or self.no_compressed_fragments or size <= BROWSER_FRAME_BYTES:
            return self._frame(payload, comp=True)
        pieces: list[bytes] = []
        for start in range(0, size, BROWSER_FRAME_BYTES):
            first = start == 0
            pieces += self._frame(
                payload[start : start + BROWSER_FRAME_BYTES],
                OP_BINARY if first else OP_CONTINUATION,
                final=start + BROWSER_FRAME_BYTES >= size,
                comp=first,
            )
        return pieces

    def control(self, opcode: int, payload: bytes = b"") -> bytes:
        """One control frame (pong, close), never compressed."""
        return b"".join(self._frame(payload, opcode))
