"""The raw NATS client protocol for `nats bench pub` and `nats bench sub`.

Why not nats-py here: a core publish through nats-py costs several microseconds of Python per
message, so a benchmark built on it measures the client, not the server. This module speaks the
wire protocol directly and keeps Python off the per-message path:

* a publisher writes pre-built runs of PUB frames (one `transport.write` per few thousand
  messages) and waits only on TCP back-pressure;
* a subscriber counts MSG frames without building message objects: once it has seen a frame,
  the following bytes are compared against runs of that same frame with one `bytes ==`
  (memcmp), and only frames that differ (other subjects, sizes, payloads, PINGs) go through the
  general, still allocation-light parser.

Layout, in the sans-I/O style: `WireParser` turns bytes into counts and control events and
never touches a socket; `WireProtocol` is the asyncio shell around one connection;
`open_wire()` does the INFO/CONNECT/PING handshake with the same auth and TLS settings as the
rest of the CLI (user/password, token, creds, nkey, JWT, TLS, TLS-first).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import ssl
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlparse

from pynats.cli.ui.connect import cli_version, connect_options, server_list, tls_context
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.options import Settings

CRLF = b"\r\n"
PING = b"PING\r\n"
PONG = b"PONG\r\n"
DEFAULT_PORT = 4222
# A run of identical frames compared at once by the subscriber's fast path.
FAST_RUN_BYTES = 64 * 1024
# Bytes the transport may buffer before a publisher waits for the socket to drain.
WRITE_HIGH_WATER_BYTES = 4 * 1024 * 1024
NO_SERVERS = "nats: no servers available for connection"
AUTH_VIOLATION = "nats: Authorization Violation"


class WireError(CliError):
    """The server sent -ERR, closed the connection, or spoke something else than NATS."""


# -- the parser ----------------------------------------------------------------------------------


class WireParser:
    """Counts MSG/HMSG frames and collects control lines from a byte stream.

    After `feed()`: `msgs` is the total of messages seen so far; `pings` and `pongs` count the
    PINGs and PONGs not yet handled (the owner resets them); `infos` holds decoded INFO objects
    not yet handled; `error` is the first -ERR text, if any.
    """

    def __init__(self, run_bytes: int = FAST_RUN_BYTES) -> None:
        self.run_bytes = run_bytes
        self.msgs = 0
        self.pings = 0
        self.pongs = 0
        self.infos: list[dict[str, Any]] = []
        self.error: str | None = None
        self._pending = b""
        self._frame: bytes | None = None
        self._run: bytes | None = None
        self._run_count = 0

    def feed(self, data: bytes) -> None:
        buf = self._pending + data if self._pending else data
        end = len(buf)
        pos = 0
        while pos < end:
            pos = self._skip_repeats(buf, pos, end)
            if pos >= end:
                break
            consumed = self._one_op(buf, pos, end)
            if consumed < 0:
                break
            pos = consumed
        self._pending = buf[pos:] if pos < end else b""

    def _skip_repeats(self, buf: bytes, pos: int, end: int) -> int:
        """Count frames identical to the last one seen, a whole run at a time when possible."""
        frame = self._frame
        if frame is None:
            return pos
        size = len(frame)
        if buf[pos : pos + size] != frame:
            return pos
        if self._run is None:
            self._run_count = max(1, self.run_bytes // size)
            self._run = frame * self._run_count
        run = self._run
        run_size = len(run)
        while pos + run_size <= end and buf[pos : pos + run_size] == run:
            pos += run_size
            self.msgs += self._run_count
        while pos + size <= end and buf[pos : pos + size] == frame:
            pos += size
            self.msgs += 1
        return pos

    def _one_op(self, buf: bytes, pos: int, end: int) -> int:
        """Parse one protocol op at `pos`; return where the next starts, or -1 if incomplete."""
        eol = buf.find(CRLF, pos)
        if eol < 0:
            return -1
        head = buf[pos : min(pos + 4, eol)].upper()
        if head in (b"MSG ", b"HMSG"):
            size_at = buf.rfind(b" ", pos, eol) + 1
            try:
                size = int(buf[size_at:eol])
            except ValueError:
                raise WireError(f"nats: protocol error in {buf[pos:eol]!r}") from None
            stop = eol + 2 + size + 2
            if stop > end:
                return -1
            self.msgs += 1
            frame = buf[pos:stop]
            if frame != self._frame:
                self._frame = bytes(frame)
                self._run = None
            return stop
        if head == b"PING":
            self.pings += 1
        elif head == b"PONG":
            self.pongs += 1
        elif head == b"INFO":
            try:
                self.infos.append(json.loads(buf[pos + 5 : eol]))
            except ValueError:
                raise WireError("nats: invalid INFO from the server") from None
        elif head == b"-ERR":
            if self.error is None:
                self.error = buf[pos + 4 : eol].strip().strip(b"'").decode(errors="replace")
        elif head != b"+OK":
            raise WireError(f"nats: protocol error, unexpected {buf[pos:eol][:40]!r}")
        return eol + 2


# -- the connection ------------------------------------------------------------------------------


class WireProtocol(asyncio.Protocol):
    """One connection: feeds the parser, answers PINGs, resolves flushes, tracks back-pressure.

    `on_messages(total)` is called after each chunk that carried messages, with the running
    total, so a subscriber's cost per chunk is one call however many messages it held.
    """

    def __init__(self, on_messages: Callable[[int], None] | None = None) -> None:
        self.parser = WireParser()
        self.on_messages = on_messages
        self.transport: Any = None
        self.info: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._writable = asyncio.Event()
        self._writable.set()
        self._pong_waiters: deque[asyncio.Future[None]] = deque()
        self._seen_msgs = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER_BYTES)

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        try:
            parser.feed(data)
        except WireError as exc:
            self._fail(exc)
            return
        if parser.pings:
            self.transport.write(PONG * parser.pings)
            parser.pings = 0
        if parser.infos:
            if not self.info.done():
                self.info.set_result(parser.infos[0])
            parser.infos.clear()
        if parser.error is not None:
            self._fail(server_error(parser.error))
            return
        while parser.pongs and self._pong_waiters:
            parser.pongs -= 1
            waiter = self._pong_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        parser.pongs = 0
        if parser.msgs != self._seen_msgs:
            self._seen_msgs = parser.msgs
            if self.on_messages is not None:
                self.on_messages(parser.msgs)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(WireError(f"nats: connection closed{f': {exc}' if exc else ''}"))

    def _fail(self, exc: Exception) -> None:
        waiters: list[asyncio.Future[Any]] = [self.info, *self._pong_waiters]
        for future in waiters:
            if not future.done():
                future.set_exception(exc)
        self._pong_waiters.clear()
        if not self.closed.done():
            self.closed.set_exception(exc)
            self.closed.exception()  # a failure nobody awaits is still not "never retrieved"
        self._writable.set()
        if self.transport is not None:
            self.transport.close()

    # -- used by the clients --

    def write(self, data: bytes) -> None:
        if self.closed.done():
            self.closed.result()
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport holds more than the high-water mark."""
        if not self._writable.is_set():
            await self._writable.wait()
        if self.closed.done():
            self.closed.result()

    async def flush(self, timeout: float) -> None:
        """PING and wait for the PONG: everything written before was processed by the server."""
        waiter = asyncio.get_running_loop().create_future()
        self._pong_waiters.append(waiter)
        self.write(PING)
        await asyncio.wait_for(waiter, timeout)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def server_error(text: str) -> WireError:
    """nats.go's words for a -ERR line."""
    if "authorization violation" in text.lower():
        return WireError(AUTH_VIOLATION)
    if "maximum payload" in text.lower():
        return WireError("nats: maximum payload exceeded")
    return WireError(f"nats: {text.lower()}")


# -- connecting ----------------------------------------------------------------------------------


class WireConnection:
    """A handshaken connection and what the server told about itself."""

    def __init__(self, protocol: WireProtocol, info: dict[str, Any]) -> None:
        self.protocol = protocol
        self.info = info

    @property
    def max_payload(self) -> int:
        return int(self.info.get("max_payload") or 1024 * 1024)

    @property
    def has_headers(self) -> bool:
        return bool(self.info.get("headers"))


async def open_wire(
    settings: Settings,
    name: str,
    on_messages: Callable[[int], None] | None = None,
) -> WireConnection:
    """Connect to the first server of the list that accepts us, or CliError like nats.go."""
    options = connect_options(settings)
    last: Exception | None = None
    for url in server_list(settings.servers):
        try:
            return await asyncio.wait_for(
                _open_one(url, settings, options, name, on_messages),
                timeout=max(settings.timeout_s, 1.0),
            )
        except WireError as exc:
            if str(exc) == AUTH_VIOLATION:
                raise
            last = exc
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            last = exc
    if isinstance(last, ssl.SSLError):
        raise CliError(f"nats: {last}")
    raise CliError(NO_SERVERS)


async def _open_one(
    url: str,
    settings: Settings,
    options: dict[str, Any],
    name: str,
    on_messages: Callable[[int], None] | None,
) -> WireConnection:
    parsed = urlparse(url)
    host = parsed.hostname or "127.0.0.1"
    port = parsed.port or DEFAULT_PORT
    loop = asyncio.get_running_loop()
    tls = options.get("tls") or tls_context(settings)
    tls_first = bool(options.get("tls_handshake_first"))
    transport, protocol = await loop.create_connection(
        lambda: WireProtocol(on_messages),
        host,
        port,
        ssl=tls if tls_first else None,
        server_hostname=host if tls_first else None,
    )
    try:
        info = await protocol.info
        if not tls_first and (info.get("tls_required") or tls is not None):
            context = tls or ssl.create_default_context()
            protocol.transport = await loop.start_tls(
                transport, protocol, context, server_hostname=host
            )
        fields = connect_fields(info, options, parsed.username, parsed.password)
        fields.update(
            verbose=False,
            pedantic=False,
            tls_required=bool(tls or info.get("tls_required")),
            name=name,
            lang="python-raw",
            version=cli_version(),
            protocol=1,
            echo=True,
            headers=True,
            no_responders=True,
        )
        protocol.write(b"CONNECT " + json.dumps(fields).encode() + CRLF)
        await protocol.flush(max(settings.timeout_s, 1.0))
    except BaseException:
        protocol.close()
        raise
    return WireConnection(protocol, info)


def connect_fields(
    info: dict[str, Any], options: dict[str, Any], url_user: str | None, url_password: str | None
) -> dict[str, Any]:
    """The auth part of CONNECT for nats-py style options (see connect.connect_options)."""
    fields: dict[str, Any] = {}
    nonce = str(info.get("nonce") or "")
    if "user" in options:
        fields.update(user=options["user"], **{"pass": options["password"]})
    elif "token" in options:
        fields["auth_token"] = options["token"]
    elif url_user and url_password is not None:
        fields.update(user=unquote(url_user), **{"pass": unquote(url_password)})
    elif url_user:
        fields["auth_token"] = unquote(url_user)
    if "user_credentials" in options:
        jwt, seed = read_creds(options["user_credentials"])
        fields.update(jwt=jwt, sig=_sign(seed, nonce))
    elif "nkeys_seed_str" in options:
        import nkeys

        keys = nkeys.from_seed(bytearray(options["nkeys_seed_str"].encode()))
        fields.update(nkey=keys.public_key.decode(), sig=_sign(options["nkeys_seed_str"], nonce))
    elif "user_jwt_cb" in options:
        fields["jwt"] = bytes(options["user_jwt_cb"]()).decode()
        signature = options["signature_cb"](nonce)
        fields["sig"] = signature.decode() if isinstance(signature, bytes) else str(signature)
    return fields


def _sign(seed: str, nonce: str) -> str:
    import nkeys

    keys = nkeys.from_seed(bytearray(seed.encode()))
    return base64.b64encode(keys.sign(nonce.encode())).decode()


def read_creds(source: Any) -> tuple[str, str]:
    """The user JWT and seed of a .creds file (a path, or its text as RawCredentials)."""
    if isinstance(source, str) and os.path.exists(source):
        with open(source) as stream:
            text = stream.read()
    else:
        text = str(source)
    jwt = _armored(text, "NATS USER JWT")
    seed = _armored(text, "USER NKEY SEED")
    if not jwt or not seed:
        raise CliError("nats: invalid credentials file")
    return jwt, seed


def _armored(text: str, title: str) -> str:
    """The first line after the `-----BEGIN <title>-----` marker."""
    lines = [line.strip() for line in text.splitlines()]
    for number, line in enumerate(lines):
        if line.startswith("-") and f"BEGIN {title}" in line:
            for candidate in lines[number + 1 :]:
                if candidate:
                    return candidate
    return ""


# -- frames --------------------------------------------------------------------------------------


def header_block(headers: tuple[tuple[str, str], ...]) -> bytes:
    """`NATS/1.0` header block for HPUB, or b"" without headers."""
    if not headers:
        return b""
    lines = b"".join(f"{key}: {value}\r\n".encode() for key, value in headers)
    return b"NATS/1.0\r\n" + lines + b"\r\n"


def pub_frame(subject: str, payload: bytes, headers: bytes = b"") -> bytes:
    """One PUB (or HPUB with a header block) frame."""
    if headers:
        return b"HPUB %s %d %d\r\n%s%s\r\n" % (
            subject.encode(),
            len(headers),
            len(headers) + len(payload),
            headers,
            payload,
        )
    return b"PUB %s %d\r\n%s\r\n" % (subject.encode(), len(payload), payload)
