"""A raw-socket NATS peer for protocol tests: send exact bytes, read exact replies."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

READ_TIMEOUT_S = 5.0


class RawClient:
    def __init__(self, port: int, host: str = "127.0.0.1", *, read_info: bool = True) -> None:
        self.sock = socket.create_connection((host, port), timeout=READ_TIMEOUT_S)
        self.buf = b""
        self.info: dict[str, Any] = {}
        if read_info:
            line = self.read_line()
            assert line.startswith(b"INFO "), line
            self.info = json.loads(line[5:])

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        """Read more bytes; False on EOF."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"timed out; have {self.buf!r}")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError(f"timed out; have {self.buf!r}") from None
        except ConnectionResetError:
            return False
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_line(self, timeout: float = READ_TIMEOUT_S) -> bytes:
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            if not self._fill(deadline):
                raise EOFError(f"closed; have {self.buf!r}")
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read_until(self, marker: bytes, timeout: float = READ_TIMEOUT_S) -> bytes:
        """Everything up to and including `marker`."""
        deadline = time.monotonic() + timeout
        while marker not in self.buf:
            if not self._fill(deadline):
                raise EOFError(f"closed before {marker!r}; have {self.buf!r}")
        idx = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:idx], self.buf[idx:]
        return out

    def read_all_until_closed(self, timeout: float = READ_TIMEOUT_S) -> bytes:
        """Everything the server sends before it closes the connection."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        out, self.buf = self.buf, b""
        return out

    def ping_pong(self, timeout: float = READ_TIMEOUT_S) -> bytes:
        """Send PING and return everything received before the PONG (the PONG excluded)."""
        self.send(b"PING\r\n")
        data = self.read_until(b"PONG\r\n", timeout)
        return data[: -len(b"PONG\r\n")]

    def handshake(self, **connect_fields: Any) -> dict[str, Any]:
        """CONNECT + PING as clients do; returns the async INFO that follows the PONG."""
        self.send(connect_line(**connect_fields) + b"PING\r\n")
        self.read_until(b"PONG\r\n")
        if connect_fields.get("protocol", 1) >= 1:
            line = self.read_line()
            assert line.startswith(b"INFO "), line
            return json.loads(line[5:])
        return {}

    def is_closed(self, timeout: float = READ_TIMEOUT_S) -> bool:
        try:
            self.read_all_until_closed(timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_line(**fields: Any) -> bytes:
    opts = {"verbose": False, "pedantic": False, "protocol": 1, "headers": True}
    opts.update(fields)
    return b"CONNECT " + json.dumps(opts).encode() + b"\r\n"
