"""Servers with a websocket listener, ours and Go's, from the same `websocket {}` block, and a
raw WebSocket client for what nats-py cannot send (cookies, bad frames, bad requests).

`start_ws_server(kind, ws, ...)` writes the block (and any more configuration) into a config
file, and both servers run as processes from the same file.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import socket
import ssl
import struct
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.servers import RunningServer, start_server

from pynats.server import ws_frames

GO = "go"
OURS = "pynats"
KINDS = [OURS, GO]
WS_LISTEN_RE = re.compile(r"Listening for websocket clients on (wss?)://(.*):(\d+)")


def conf_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(conf_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)}: {conf_value(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(value)


def conf_text(ws: dict[str, Any], top: str = "") -> str:
    block = {"listen": "127.0.0.1:-1", **ws}
    return f"{top}\nwebsocket {conf_value(block)}\n"


@dataclass
class WsServer:
    """A running server with a websocket port, whichever it is."""

    kind: str
    port: int
    ws_port: int
    scheme: str
    http_port: int | None
    log: Callable[[], str]
    process: RunningServer

    @property
    def ws_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.ws_port}"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def monitor(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as r:
            result: dict[str, Any] = json.load(r)
            return result

    def wait_for_log(self, pattern: str, timeout: float = 5.0) -> str:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log().splitlines():
                if rx.search(line):
                    return line
            time.sleep(0.01)
        raise TimeoutError(f"no log line matching {pattern!r}; log:\n{self.log()}")

    def stop(self) -> None:
        self.process.stop()


def start_ws_server(
    kind: str,
    ws: dict[str, Any],
    tmp: Path,
    *,
    top: str = "",
    cluster: dict[str, Any] | None = None,
) -> WsServer:
    """A server of `kind` with the websocket block `ws` (listen defaults to a random port)
    and `top`, more configuration for the file."""
    name = f"{kind}-{len(list(tmp.glob('*.conf')))}"
    conf = tmp / f"{name}.conf"
    text = conf_text(ws, top)
    if cluster is not None:
        text += f"cluster {conf_value(cluster)}\n"
    conf.write_text(text)
    proc = start_server(["-c", str(conf)], oracle=kind == GO, http_port=-1)
    line = proc.wait_for_log(WS_LISTEN_RE.pattern)
    m = WS_LISTEN_RE.search(line)
    assert m is not None
    return WsServer(
        kind=kind,
        port=proc.port,
        ws_port=int(m.group(3)),
        scheme=m.group(1),
        http_port=proc.http_port,
        log=proc.log_text,
        process=proc,
    )


@contextlib.contextmanager
def ws_server(kind: str, ws: dict[str, Any], **kwargs: Any) -> Iterator[WsServer]:
    with tempfile.TemporaryDirectory(prefix="pynats-ws-") as tmp:
        server = start_ws_server(kind, ws, Path(tmp), **kwargs)
        try:
            yield server
        finally:
            server.stop()


# -- a raw client ---------------------------------------------------------------------------


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(
    path: str = "/", *, host: str = "127.0.0.1", key: str | None = None, extra: str = ""
) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key or new_key()}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def client_frame(payload: bytes, opcode: int = ws_frames.OP_BINARY, **kwargs: Any) -> bytes:
    """One masked frame, as a client sends it."""
    key = os.urandom(4)
    head = ws_frames.frame_header(len(payload), opcode, mask_key=key, **kwargs)
    return head + ws_frames.xor_mask(payload, key)


@dataclass
class Frame:
    opcode: int
    final: bool
    compressed: bool
    payload: bytes

    @property
    def close_status(self) -> int | None:
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_text(self) -> str:
        return self.payload[2:].decode()


@dataclass
class RawWebSocket:
    """A blocking WebSocket client on a plain socket (or TLS), for exact bytes."""

    sock: socket.socket
    buffer: bytes = b""
    response: bytes = b""
    frames: list[Frame] = field(default_factory=list)

    @classmethod
    def connect(
        cls,
        port: int,
        request: bytes | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        timeout: float = 5.0,
    ) -> RawWebSocket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls is not None:
            sock = tls.wrap_socket(sock, server_hostname="127.0.0.1")
        ws = cls(sock)
        sock.sendall(request if request is not None else upgrade_request())
        ws.response = ws.read_response()
        return ws

    def read_response(self) -> bytes:
        """The HTTP response head (with the blank line); b"" if the server closed first."""
        while b"\r\n\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                return b""
            self.buffer += data
        end = self.buffer.index(b"\r\n\r\n") + 4
        head, self.buffer = self.buffer[:end], self.buffer[end:]
        return head

    @property
    def status(self) -> int:
        return int(self.response.split(b" ", 2)[1]) if self.response else 0

    def send(self, data: bytes) -> None:
        self.sock.sendall(client_frame(data))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _frame(self) -> Frame | None:
        data = self.buffer
        if len(data) < 2:
            return None
        b0, b1 = data[0], data[1]
        length, pos = b1 & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                return None
            length, pos = struct.unpack("!H", data[2:4])[0], 4
        elif length == 127:
            if len(data) < 10:
                return None
            length, pos = struct.unpack("!Q", data[2:10])[0], 10
        if len(data) < pos + length:
            return None
        self.buffer = data[pos + length :]
        return Frame(b0 & 0x0F, bool(b0 & 0x80), bool(b0 & 0x40), data[pos : pos + length])

    def next_frame(self, timeout: float = 5.0) -> Frame | None:
        """The next frame; None when the server closed the socket."""
        self.sock.settimeout(timeout)
        while True:
            frame = self._frame()
            if frame is not None:
                self.frames.append(frame)
                return frame
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buffer += data

    def read_payload_until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        """Data payloads (inflated when compressed) until `marker` shows up."""
        out = b""
        deadline = time.monotonic() + timeout
        while marker not in out:
            frame = self.next_frame(max(deadline - time.monotonic(), 0.01))
            if frame is None:
                raise EOFError(out)
            if frame.opcode in (ws_frames.OP_BINARY, ws_frames.OP_CONTINUATION):
                out += (
                    ws_frames.inflate_message([frame.payload], 0)
                    if frame.compressed
                    else frame.payload
                )
        return out

    def frames_until_closed(self, timeout: float = 5.0) -> list[Frame]:
        """Every frame until the server closes the socket."""
        out = []
        while True:
            try:
                frame = self.next_frame(timeout)
            except (ConnectionResetError, TimeoutError):
                return out
            if frame is None:
                return out
            out.append(frame)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def http_exchange(port: int, request: bytes, timeout: float = 1.0) -> tuple[bytes, bool]:
    """Send raw bytes; everything the server answers within `timeout`, and whether it closed
    the connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(request)
    data = b""
    closed = False
    with contextlib.suppress(TimeoutError, ConnectionResetError):
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    sock.close()
    return data, closed


def without_date(response: bytes) -> bytes:
    return re.sub(rb"Date: [^\r]*\r\n", b"Date: X\r\n", response)
