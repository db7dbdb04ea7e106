"""A trivial NATS-speaking peer for the generator's self-test.

It does as little as the protocol allows, so that a run against it shows the generator's own
ceiling (or, strictly, a lower bound of it: the sink shares the machine too):

- `discard`: drops the publisher's batches unread and answers each batch's closing PING
  with a PONG (the publisher's accepted-message meter needs them).
- `blast`: after a connection's SUB, writes pre-built MSG frames to it as fast as the socket
  takes them: the subscribers' ceiling, with no publisher involved.
- `relay`: a minimal router for literal subjects (no wildcards, no queues), enough for the
  request/reply roles: the round-trip floor of requester + responder.
"""

from __future__ import annotations

import selectors
import socket
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from loadgen import (
    HOST,
    PING,
    PONG,
    SUBJECT,
    Role,
    count_across,
    msg_header,
    payload_of,
    pub_batch,
)

INFO = (
    b'INFO {"server_id":"SINK","server_name":"sink","version":"2.15.1","proto":1,'
    b'"host":"127.0.0.1","port":0,"headers":true,"max_payload":1048576} \r\n'
)
BLAST_BYTES = 1 << 20
MODES = ("discard", "blast", "relay")


class Sink:
    """The sink as a benchmark target: a child process serving one mode on a free port."""

    def __init__(self, mode: str, size: int) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown sink mode {mode!r}")
        self._listener = socket.create_server((HOST, 0), backlog=1024)
        self.port: int = self._listener.getsockname()[1]
        self._role = Role(run_sink, self._listener, mode, size)

    def __enter__(self) -> Sink:
        try:
            self._role.start().expect("ready", 5.0)
        except BaseException:
            self.__exit__()
            raise
        self._listener.close()  # the child holds its own copy
        return self

    def __exit__(self, *exc: object) -> None:
        self._role.finish(grace=0.0)
        self._listener.close()

    def rss_kb(self) -> int:
        raise NotImplementedError("the sink has no memory scenario")


def run_sink(out: Connection, listener: socket.socket, mode: str, size: int) -> None:
    """Serve until terminated: accept, greet with INFO, hand each event to the mode."""
    handler = {"discard": _Discard, "blast": _Blast, "relay": _Relay}[mode](size)
    selector = selectors.DefaultSelector()
    listener.setblocking(False)
    selector.register(listener, selectors.EVENT_READ)
    out.send(("ready", None))
    while True:
        for key, events in selector.select():
            sock = key.fileobj
            if sock is listener:
                conn, _ = listener.accept()
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.sendall(INFO)
                handler.add(conn, selector)
            elif not handler.on_event(sock, events, selector):  # type: ignore[arg-type]
                selector.unregister(sock)
                sock.close()  # type: ignore[union-attr]


class _Discard:
    """Answer the handshake PINGs, then drop publisher batches unread, one PONG per batch.

    The publisher's batches have a known length, each ending in PING, so after the two
    handshake PINGs a byte count tells when to PONG; MSG_TRUNC makes the kernel drop the data
    without copying it, so the sink costs as little as possible next to the publisher.
    """

    def __init__(self, size: int) -> None:
        self.batch_len = len(pub_batch(SUBJECT, payload_of(size))[0])
        self.buf = bytearray(1 << 22)
        self.conns: dict[socket.socket, _Publisher] = {}

    def add(self, conn: socket.socket, selector: selectors.BaseSelector) -> None:
        self.conns[conn] = _Publisher()
        selector.register(conn, selectors.EVENT_READ)

    def on_event(self, conn: socket.socket, events: int, selector: selectors.BaseSelector) -> bool:
        pub = self.conns[conn]
        if pub.handshake_pings:
            return self._handshake(conn, pub)
        n = conn.recv_into(self.buf, 0, socket.MSG_TRUNC)
        if n == 0:
            return False
        batches, pub.partial = divmod(pub.partial + n, self.batch_len)
        if batches:
            conn.sendall(PONG * batches)
        return True

    def _handshake(self, conn: socket.socket, pub: _Publisher) -> bool:
        n = conn.recv_into(self.buf)
        if n == 0:
            return False
        pings, pub.carry = count_across(pub.carry, self.buf, n, PING)
        pub.handshake_pings -= pings
        if pings:
            conn.sendall(PONG * pings)
        return True


@dataclass
class _Publisher:
    handshake_pings: int = 2
    carry: bytes = b""
    partial: int = 0


@dataclass
class _Subscriber:
    pending: bytes = b""
    blast: memoryview | None = None
    offset: int = 0


@dataclass
class _Blast:
    """Answer the handshake, then stream MSG frames for the connection's SUB without end."""

    size: int
    subs: dict[socket.socket, _Subscriber] = field(default_factory=dict)

    def add(self, conn: socket.socket, selector: selectors.BaseSelector) -> None:
        conn.setblocking(False)
        self.subs[conn] = _Subscriber()
        selector.register(conn, selectors.EVENT_READ)

    def on_event(self, conn: socket.socket, events: int, selector: selectors.BaseSelector) -> bool:
        sub = self.subs[conn]
        if events & selectors.EVENT_READ and not self._read(conn, sub, selector):
            return False
        if events & selectors.EVENT_WRITE and sub.blast is not None:
            try:
                sent = conn.send(sub.blast[sub.offset :])
            except BlockingIOError:
                return True
            except OSError:
                return False
            sub.offset = (sub.offset + sent) % len(sub.blast)
        return True

    def _read(
        self, conn: socket.socket, sub: _Subscriber, selector: selectors.BaseSelector
    ) -> bool:
        try:
            chunk = conn.recv(65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        *lines, sub.pending = (sub.pending + chunk).split(b"\r\n")
        for line in lines:
            if line == b"PING":
                conn.send(PONG)  # handshake only: the socket is empty, this cannot block
            elif line.startswith(b"SUB "):
                sub.blast = memoryview(self._frames(line))
        if sub.blast is not None:
            selector.modify(conn, selectors.EVENT_READ | selectors.EVENT_WRITE)
        return True

    def _frames(self, sub_line: bytes) -> bytes:
        parts = sub_line.split()
        frame = msg_header(parts[1], parts[-1], self.size) + payload_of(self.size) + b"\r\n"
        return frame * max(1, BLAST_BYTES // len(frame))


@dataclass
class _Relay:
    """Route PUBs on literal subjects to the one connection subscribed to that subject."""

    size: int
    inbound: dict[socket.socket, bytearray] = field(default_factory=dict)
    routes: dict[bytes, tuple[socket.socket, bytes]] = field(default_factory=dict)

    def add(self, conn: socket.socket, selector: selectors.BaseSelector) -> None:
        self.inbound[conn] = bytearray()
        selector.register(conn, selectors.EVENT_READ)

    def on_event(self, conn: socket.socket, events: int, selector: selectors.BaseSelector) -> bool:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        buf = self.inbound[conn]
        buf += chunk
        while (eol := buf.find(b"\r\n")) >= 0:
            parts = bytes(buf[:eol]).split()
            op = parts[0].upper() if parts else b""
            if op == b"PUB":
                end = eol + 2 + int(parts[-1]) + 2
                if len(buf) < end:
                    break
                self._deliver(parts[1], parts[2] if len(parts) == 4 else b"", buf[eol + 2 : end])
                del buf[:end]
                continue
            if op == b"PING":
                conn.sendall(PONG)
            elif op == b"SUB":
                self.routes[parts[1]] = (conn, parts[-1])
            del buf[: eol + 2]
        return True

    def _deliver(self, subject: bytes, reply: bytes, payload_crlf: bytearray) -> None:
        target = self.routes.get(subject)
        if target is not None:
            conn, sid = target
            conn.sendall(msg_header(subject, sid, len(payload_crlf) - 2, reply) + payload_crlf)
