"""Raw-protocol building blocks of the load generator: frames, connections and roles.

The generator must never be what limits a benchmark, so nothing here parses messages on the
hot path. A publisher writes one pre-built buffer of PUB frames over and over; a subscriber
counts received bytes and divides by the frame length, which is fixed for a fixed subject,
sid and payload. Each role runs in its own process (see `Role`) and reports one result back
through a pipe, so the server process competes with as little generator work as possible.
"""

from __future__ import annotations

import multiprocessing
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

HOST = "127.0.0.1"
SUBJECT = b"bench.s"
REQUEST_SUBJECT = b"bench.req"
INBOX = b"_INBOX.bench"
SID = b"1"
QUEUE = b"q"
# One write of the publisher: large enough that the per-write Python cost vanishes.
BATCH_BYTES = 1 << 20
# A subscriber is woken only when this much is readable: fewer wake-ups, less CPU taken
# from the server on a small machine, no effect on what the server does.
RECV_LOWAT = 32 * 1024
IO_TIMEOUT = 10.0
CONNECT = (
    b'CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":false,'
    b'"name":"pynats-bench","lang":"raw","version":"0"}\r\n'
)
PING = b"PING\r\n"
PONG = b"PONG\r\n"

_CTX = multiprocessing.get_context("fork")


class ServerError(RuntimeError):
    """The server answered with -ERR or closed a connection the generator still needed."""


# --- measurement windows and results -------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """When to measure: skip `warmup` seconds after the first message, then measure `duration`."""

    warmup: float
    duration: float

    @property
    def total(self) -> float:
        return self.warmup + self.duration


@dataclass(frozen=True)
class Throughput:
    """Messages counted over a measured interval (delivered, or accepted for pub-only)."""

    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Latency:
    """Round-trip times of sequential requests, in microseconds."""

    count: int
    p50_us: float
    p99_us: float
    mean_us: float

    @classmethod
    def from_samples(cls, samples_ns: list[int]) -> Latency:
        if not samples_ns:
            raise ServerError("no request completed inside the measurement window")
        ordered = sorted(samples_ns)
        last = len(ordered) - 1
        return cls(
            count=len(ordered),
            p50_us=ordered[round(0.50 * last)] / 1000,
            p99_us=ordered[round(0.99 * last)] / 1000,
            mean_us=sum(ordered) / len(ordered) / 1000,
        )


@dataclass(frozen=True)
class Memory:
    """Server RSS before and after opening idle connections."""

    connections: int
    rss_before_kb: int
    rss_after_kb: int

    @property
    def per_connection_kb(self) -> float:
        return (self.rss_after_kb - self.rss_before_kb) / self.connections


# --- frames ---------------------------------------------------------------------------------


def pub_frame(subject: bytes, payload: bytes, reply: bytes = b"") -> bytes:
    reply_part = b" " + reply if reply else b""
    return b"PUB %s%s %d\r\n%s\r\n" % (subject, reply_part, len(payload), payload)


def msg_header(subject: bytes, sid: bytes, size: int, reply: bytes = b"") -> bytes:
    """The control line the server must write for one delivery (what subscribers expect)."""
    reply_part = b" " + reply if reply else b""
    return b"MSG %s %s%s %d\r\n" % (subject, sid, reply_part, size)


def msg_frame_len(subject: bytes, sid: bytes, size: int, reply: bytes = b"") -> int:
    return len(msg_header(subject, sid, size, reply)) + size + 2


def pub_batch(subject: bytes, payload: bytes, target: int = BATCH_BYTES) -> tuple[bytes, int]:
    """PUB frames filling about `target` bytes, closed by a PING; returns (buffer, messages).

    The server answers PINGs in order, so each PONG proves one more whole batch was processed
    rather than merely sitting in socket buffers.
    """
    frame = pub_frame(subject, payload)
    count = max(1, target // len(frame))
    return frame * count + PING, count


def payload_of(size: int) -> bytes:
    return b"x" * size


def count_across(carry: bytes, buf: bytearray, n: int, pattern: bytes) -> tuple[int, bytes]:
    """Count `pattern` in buf[:n], including a match split with the previous chunk (`carry`)."""
    keep = len(pattern) - 1
    head = bytes(buf[: min(n, keep)])
    found = (carry + head).count(pattern) + buf.count(pattern, 0, n)
    new_carry = bytes(buf[n - keep : n]) if n >= keep else (carry + head)[-keep:]
    return found, new_carry


# --- connections ----------------------------------------------------------------------------


def open_client(port: int, setup: bytes = b"") -> socket.socket:
    """Connect as a client, send `setup` (SUBs), and return once the server processed it all.

    Two PING/PONG round trips: the first confirms CONNECT, and the asynchronous INFO that
    nats-server sends right after that first PONG is consumed before the second PONG. Bytes
    after the second PONG stay in the socket for the role to read.
    """
    sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _read_through(sock, b"\r\n")
    sock.sendall(CONNECT + PING)
    _read_through(sock, PONG)
    sock.sendall(setup + PING)
    _read_through(sock, PONG)
    return sock


def _read_through(sock: socket.socket, marker: bytes) -> None:
    """Consume bytes up to and including `marker`, leaving whatever follows in the socket.

    Peeks first, so a source that starts streaming right after the handshake (the self-test
    sink) does not lose its first frames here. Raises on -ERR or close.
    """
    keep = len(marker) - 1
    seen = b""
    while True:
        data = sock.recv(65536, socket.MSG_PEEK)
        if not data:
            raise ServerError(f"connection closed while waiting for {marker!r}")
        at = data.find(marker)
        _raise_on_err(seen + (data if at < 0 else data[:at]))
        if at >= 0:
            _consume(sock, at + len(marker))
            return
        if len(data) <= keep:
            time.sleep(0.001)  # a marker's first bytes only: peeking again would spin
            continue
        _consume(sock, len(data) - keep)
        seen = (seen + data[: len(data) - keep])[-4096:]


def _raise_on_err(text: bytes) -> None:
    at = text.find(b"-ERR")
    if at >= 0 and text.find(b"\r\n", at) >= 0:
        raise ServerError(text[at:].split(b"\r\n")[0].decode(errors="replace"))


def _consume(sock: socket.socket, count: int) -> None:
    while count > 0:
        chunk = sock.recv(count)
        if not chunk:
            raise ServerError("connection closed during handshake")
        count -= len(chunk)


def open_idle_clients(port: int, count: int) -> list[socket.socket]:
    """Open `count` connections that each did CONNECT + PING/PONG, then stay idle.

    Each connection waits for its INFO before the next one opens (so a small accept backlog
    never makes the kernel drop and retry SYNs); the PINGs are then pipelined across all.
    """
    socks = []
    for _ in range(count):
        sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
        _read_through(sock, b"\r\n")
        socks.append(sock)
    for sock in socks:
        sock.sendall(CONNECT + PING)
    for sock in socks:
        _read_through(sock, PONG)
    return socks


class FrameReader:
    """Reads whole MSG frames of one known shape from a blocking socket.

    Used by the request/reply roles only (one frame in flight), so it can afford to look at
    what arrives: it answers a server PING (nats-server sends one about 2 s after connect)
    and skips other control lines, which a pure length count could not.
    """

    def __init__(self, sock: socket.socket, header: bytes, size: int) -> None:
        self.sock = sock
        self.header = header
        self.frame_len = len(header) + size + 2
        self.buf = bytearray()

    def read_frame(self) -> None:
        buf = self.buf
        while True:
            if buf.startswith(self.header):
                if len(buf) >= self.frame_len:
                    del buf[: self.frame_len]
                    return
            elif (eol := buf.find(b"\r\n")) >= 0:
                self._control_line(bytes(buf[:eol]))
                del buf[: eol + 2]
                continue
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ServerError("server closed the connection")
            buf += chunk

    def _control_line(self, line: bytes) -> None:
        if line == b"PING":
            self.sock.sendall(PONG)
        elif line.startswith(b"-ERR"):
            raise ServerError(line.decode(errors="replace"))
        elif line.startswith(b"MSG "):
            raise ServerError(f"unexpected frame {line!r}, expected {self.header!r}")


# --- roles: each runs in its own process ----------------------------------------------------


def new_event() -> Any:
    """An Event that role processes share with the runner (the publisher's stop signal)."""
    return _CTX.Event()


class Role:
    """One generator process and the pipe it reports through.

    The child sends ("ready", None) when set up, then ("result", value) or ("error", text).
    """

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        self.name = target.__name__
        self.conn, child = _CTX.Pipe(duplex=False)
        self.proc = _CTX.Process(target=_run_role, args=(child, target, args), daemon=True)

    def start(self) -> Role:
        self.proc.start()
        return self

    def expect(self, kind: str, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"{self.name}: no {kind!r} within {timeout:.0f}s")
        try:
            got, value = self.conn.recv()
        except EOFError:
            raise ServerError(f"{self.name}: process exited without reporting") from None
        if got == "error":
            raise ServerError(f"{self.name}: {value}")
        if got != kind:
            raise ServerError(f"{self.name}: expected {kind!r}, got {got!r}")
        return value

    def finish(self, grace: float = 1.0) -> None:
        if self.proc.pid is not None:
            self.proc.join(grace)
            if self.proc.is_alive():
                self.proc.terminate()
                self.proc.join(grace)
        self.conn.close()


def _run_role(out: Connection, target: Callable[..., None], args: tuple[Any, ...]) -> None:
    try:
        target(out, *args)
    except Exception as exc:
        _send(out, "error", f"{type(exc).__name__}: {exc}")


_SEND_LOCK = threading.Lock()


def _send(out: Connection, kind: str, value: Any) -> None:
    """Report to the runner; the publisher's writer and meter threads may both report."""
    try:
        with _SEND_LOCK:
            out.send((kind, value))
    except (BrokenPipeError, OSError):
        pass  # the runner already stopped listening: nothing left to report to


def run_publisher(
    out: Connection,
    port: int,
    subject: bytes,
    payload: bytes,
    window: Window,
    stop: Any,
) -> None:
    """Publish as fast as the server accepts until `stop` is set.

    A reader thread turns PONG arrival times into accepted-message counts and reports the
    accepted rate over the window (the pub-only result); the writer keeps going so that
    subscribers measuring their own window are never starved.
    """
    batch, per_batch = pub_batch(subject, payload)
    sock = open_client(port)
    meter = _PongMeter(sock, per_batch, window, out)
    _send(out, "ready", None)
    threading.Thread(target=meter.run, daemon=True).start()
    try:
        while not stop.is_set():
            sock.sendall(batch)
    except OSError:
        if not stop.is_set() and not meter.done:
            raise
    finally:
        sock.close()


class _PongMeter:
    """Accepted messages over time, from the PONGs that answer each batch's closing PING."""

    def __init__(self, sock: socket.socket, per_batch: int, window: Window, out: Connection):
        self.sock = sock
        self.per_batch = per_batch
        self.window = window
        self.out = out
        self.done = False
        self.pongs = 0
        self._buf = bytearray(65536)
        self._carry = b""

    def run(self) -> None:
        try:
            result = self._measure()
            self.done = True
            _send(self.out, "result", result)
        except Exception as exc:
            if not self.done:
                _send(self.out, "error", f"{type(exc).__name__}: {exc}")
        finally:
            self.done = True

    def _measure(self) -> Throughput:
        warm_until = start_time = None
        start_pongs = 0
        while True:
            now = self._next_pongs()
            if warm_until is None:
                warm_until = now + self.window.warmup
            elif start_time is None:
                if now >= warm_until:
                    start_time, start_pongs = now, self.pongs
            elif now - start_time >= self.window.duration:
                batches = self.pongs - start_pongs
                return Throughput(batches * self.per_batch, now - start_time)

    def _next_pongs(self) -> float:
        """Block until at least one more PONG arrives; return its arrival time."""
        buf = self._buf
        while True:
            n = self.sock.recv_into(buf)
            now = time.perf_counter()
            if n == 0:
                raise ServerError("server closed the publisher connection")
            if buf.find(b"-ERR", 0, n) >= 0:
                raise ServerError(bytes(buf[:n]).decode(errors="replace").strip())
            found, self._carry = count_across(self._carry, buf, n, PONG)
            if found:
                self.pongs += found
                return now


def run_subscribers(
    out: Connection,
    port: int | Sequence[int],
    subject: bytes,
    size: int,
    members: int,
    queue: bytes,
    window: Window,
    pattern: bytes = b"",
) -> None:
    """Open `members` subscriptions (one connection each) and count deliveries over the window.

    With several ports (the servers of a cluster), `members` subscriptions on each. The
    subscriptions are on `pattern` when given (a wildcard matching `subject`), else `subject`.

    Counting is by bytes: every frame is `MSG <subject> 1 <size>` plus payload, so the total
    across connections divided by the frame length is the number of messages delivered. Past
    the first chunk (checked to be such a frame) the bytes are received with MSG_TRUNC: the
    kernel drops them without copying them out, which keeps the subscribers cheap.
    """
    queue_part = b" " + queue if queue else b""
    setup = b"SUB %s%s %s\r\n" % (pattern or subject, queue_part, SID)
    ports = [port] if isinstance(port, int) else list(port)
    socks = [open_client(p, setup) for p in ports for _ in range(members)]
    header = msg_header(subject, SID, size)
    selector = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, RECV_LOWAT)
        selector.register(sock, selectors.EVENT_READ)
    _send(out, "ready", None)
    received = _count_bytes(selector, header, window)
    frame_len = len(header) + size + 2
    _send(out, "result", Throughput(received[0] // frame_len, received[1]))


def _count_bytes(
    selector: selectors.BaseSelector, header: bytes, window: Window
) -> tuple[int, float]:
    """Bytes received across all sockets over the window, and the window's exact length."""
    buf = bytearray(1 << 22)
    total = 0
    first = start_time = None
    start_total = 0
    last_data = time.perf_counter()
    while True:
        events = selector.select(0.05)
        now = time.perf_counter()
        for key, _ in events:
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if first is None:
                n = sock.recv_into(buf)
                _check_first_frame(buf, n, header)
                first = now
            else:
                n = sock.recv_into(buf, 0, socket.MSG_TRUNC)
            if n == 0:
                raise ServerError("server closed a subscriber connection (slow consumer?)")
            total += n
            last_data = now
        if now - last_data > IO_TIMEOUT:
            raise ServerError(f"no delivery for {IO_TIMEOUT:.0f}s")
        if first is None:
            continue
        if start_time is None:
            if now - first >= window.warmup:
                start_time, start_total = now, total
        elif now - start_time >= window.duration:
            return total - start_total, now - start_time


def _check_first_frame(buf: bytearray, n: int, header: bytes) -> None:
    """Counting by length is only right if frames look as expected: check the first one."""
    seen = bytes(buf[: min(n, len(header))])
    if not header.startswith(seen):
        raise ServerError(f"unexpected frame {seen!r}, expected {header!r}")


def run_responder(out: Connection, port: int, size: int) -> None:
    """Answer every request on REQUEST_SUBJECT with a payload of `size` to INBOX, forever."""
    sock = open_client(port, b"SUB %s %s\r\n" % (REQUEST_SUBJECT, SID))
    sock.settimeout(None)
    reader = FrameReader(sock, msg_header(REQUEST_SUBJECT, SID, size, INBOX), size)
    reply = pub_frame(INBOX, payload_of(size))
    _send(out, "ready", None)
    while True:
        reader.read_frame()
        sock.sendall(reply)


def run_requester(out: Connection, port: int, size: int, window: Window) -> None:
    """Sequential round trips: publish a request, wait for its reply, time it."""
    sock = open_client(port, b"SUB %s %s\r\n" % (INBOX, SID))
    reader = FrameReader(sock, msg_header(INBOX, SID, size), size)
    request = pub_frame(REQUEST_SUBJECT, payload_of(size), INBOX)
    _send(out, "ready", None)
    clock = time.perf_counter_ns
    warm_until = clock() + int(window.warmup * 1e9)
    while clock() < warm_until:
        sock.sendall(request)
        reader.read_frame()
    samples: list[int] = []
    end = clock() + int(window.duration * 1e9)
    while (started := clock()) < end:
        sock.sendall(request)
        reader.read_frame()
        samples.append(clock() - started)
    _send(out, "result", Latency.from_samples(samples))
