"""Connection: what every socket the server holds has in common, whatever is on the other end.

A client, a route to another server (and later a leaf node) all read through a sans-I/O parser
in `data_received`, queue outbound bytes on `out` and are written once per batch by
`Server.flush_pending`, keep the peer alive with PING/PONG, and are cut when they cannot keep
up (past `max_pending`, or blocked past the write deadline). Subclasses add what their peer
speaks; this class owns the outbound list, back-pressure, keepalive and the close.

`kind` says what is on the other end (nats-server's client kinds). `is_link` is true for
server-to-server connections: they take one copy of a message per connection, framed with
the account, instead of one MSG per subscription.

What passing the write deadline does is nats-server's `write_timeout` policy: `close` (the
clients' default) cuts the connection, `retry` (the default of routes and leaf nodes) reports
the slow consumer and keeps the connection as long as its socket drains at all; a socket that
took nothing for a whole deadline is cut either way.
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from pynats.gotime import NS_PER_S, format_duration

from . import const
from .const import ACCOUNT as ACCOUNT  # the connection kinds, imported from here by most
from .const import CLIENT as CLIENT
from .const import GATEWAY as GATEWAY
from .const import JETSTREAM as JETSTREAM
from .const import LEAF as LEAF
from .const import ROUTER as ROUTER
from .const import SYSTEM as SYSTEM
from .delivery import write_pending, write_queued
from .protocol import ProtocolError
from .sublist import Outbound

if TYPE_CHECKING:
    # (only for the checker: importing collections.abc.Callable at run time here measurably
    # slowed pub-only 1 KB, 0.9M -> 0.5M msgs/s, for reasons not understood; see git log)
    from collections.abc import Callable

    from .accounts import Account
    from .server import Server
    from .trace import LinkTrace


PING = b"PING\r\n"
PONG = b"PONG\r\n"

REASON_CLIENT_CLOSED = "Client Closed"
REASON_READ_ERROR = "Read Error"
REASON_SLOW_PENDING = "Slow Consumer (Pending Bytes)"
REASON_SLOW_DEADLINE = "Slow Consumer (Write Deadline)"
REASON_STALE = "Stale Connection"
REASON_SERVER_SHUTDOWN = "Server Shutdown"
REASON_INTERNAL_ERROR = "Internal Client"
REASON_TLS_FAILURE = "TLS Handshake Failure"


class Feeder(Protocol):
    """A sans-I/O parser: takes whole chunks, raises ProtocolError to close."""

    def feed(self, data: bytes) -> None: ...


async def open_listener(
    server: Server,
    factory: Callable[[], asyncio.Protocol],
    host: str,
    port: int,
    ssl_context: Any,
    what: str,
) -> tuple[asyncio.Server, int]:
    """A listener for other servers (routes, gateways, leaf nodes) and the port it got
    (`RANDOM_PORT` picks a free one); failing to bind is nats-server's start-up error for
    that port (`Error listening on <what> port: ...`)."""
    from .server import ServerStartError

    bind_port = 0 if port == const.RANDOM_PORT else port
    try:
        listener = await server.loop.create_server(
            factory, host=host or None, port=bind_port, reuse_address=True, ssl=ssl_context
        )
    except OSError as e:
        raise ServerStartError(f"Error listening on {what} port: {port} - {e}") from None
    sockets = listener.sockets
    return listener, int(sockets[0].getsockname()[1]) if sockets else bind_port


def link_tls_contexts(tls: Any) -> tuple[Any, Any]:
    """The accepting and the dialling TLS contexts of a route or gateway `tls {}` block; a
    bad block is nats-server's start-up error."""
    from .server import ServerStartError
    from .tls import TLSConfigError, build_route_client_context, build_route_server_context

    try:
        return build_route_server_context(tls), build_route_client_context(tls)
    except TLSConfigError as e:
        raise ServerStartError(str(e)) from None


def stapled_link(
    server: Server,
    key: str,
    settings: Any,
    factory: Callable[[], asyncio.Protocol],
    handshake_timeout: float,
) -> tuple[Callable[[], asyncio.Protocol], Any] | None:
    """`ocsp {}` stapling a route or gateway certificate (`key` as in ocsp_staple): the
    listener's protocol factory on pyOpenSSL (TLS from the first byte, the certificate's
    staple in each handshake) and the dialling side's context (tls_openssl.client_context);
    None when the certificate is not stapled (the stdlib's TLS then)."""
    context = server.stapling_listener_context(key, settings, require_peer_cert=True)
    if context is None:
        return None
    from .tls import follow_reloaded_context
    from .tls_openssl import client_context, listener_factory

    # each handshake takes the context of the last reload's stapling (Server.reload_ocsp)
    follow_reloaded_context(context, lambda: server.stapling_contexts.get(key))
    wrapped = listener_factory(server.loop, context, factory, handshake_timeout=handshake_timeout)
    return wrapped, client_context(settings)


async def dial_stapled(
    server: Server,
    key: str,
    app: asyncio.Protocol,
    host: str,
    port: int,
    context: Any,
    *,
    server_hostname: str,
    handshake_timeout: float,
) -> None:
    """Dial a route or gateway whose certificate is stapled (`key` as in ocsp_staple): the
    peer's staple is checked inside the handshake, as nats-server's dialling side checks it;
    PeerStapleRefused (tls.py) with nats-server's text when it is missing or not good."""
    from .ocsp_staple import peer_staple_problem
    from .tls_openssl import connect

    stapler = server.stapling_dialer(key)
    kind = stapler.kind if stapler is not None else ""
    log = server.logger

    def check(raw: bytes, chain: list[Any]) -> str | None:
        return peer_staple_problem(kind, raw, chain, log) if stapler is not None else None

    await connect(
        server.loop,
        app,
        host,
        port,
        context,
        server_hostname=server_hostname,
        handshake_timeout=handshake_timeout,
        peer_check=check,
    )


class Connection(asyncio.Protocol):
    """The server's side of one socket. Subclasses set `kind`, `id_label` and, in their
    __init__, the `parser`."""

    parser: Feeder

    kind: ClassVar[int] = CLIENT
    is_link: ClassVar[bool] = False
    # The id's name in log lines: `cid` for clients, `rid` for routes, `lid` for leafs.
    id_label: ClassVar[str] = "cid"
    headers: bool  # the peer takes HMSG (set by each kind from its CONNECT or INFO)
    kind_name: ClassVar[str] = "client"

    __slots__ = (
        "_ping_timer",
        "_stalled_producers",
        "_write_deadline_timer",
        "_written_at_deadline",
        "account",
        "bytes_written",
        "cid",
        "closed",
        "host",
        "is_write_blocked",
        "last_activity",
        "link_trace",
        "ob",
        "parser",
        "ping_sent_at",
        "pings_out",
        "port",
        "reason",
        "relay_reply",
        "rtt",
        "server",
        "start",
        "stop",
        "transport",
    )

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.account: Account = server.global_account
        self.cid = 0
        self.host = ""
        self.port = 0
        # out, out_msgs, out_bytes, flush_queued (see the properties)
        self.ob = Outbound(server.pending_flush)
        self.closed = False
        self.reason = ""
        # the reply a message being routed keeps when relayed to other servers (gateways.py)
        self.relay_reply: bytes | None = None
        self.start = time.time()
        self.stop = 0.0
        self.last_activity = self.start
        self.rtt = 0.0
        self.pings_out = 0
        self.ping_sent_at = 0.0
        self.is_write_blocked = False
        self._ping_timer: asyncio.TimerHandle | None = None
        self._write_deadline_timer: asyncio.TimerHandle | None = None
        # Bytes handed to the transport, and (with its buffered size) when the deadline ran:
        # what drained in between is the progress the `retry` policy asks for.
        self.bytes_written = 0
        self._written_at_deadline = (0, 0)
        self._stalled_producers: list[Connection] = []
        # the inbound trace of a link while tracing is on (trace.LinkTrace)
        self.link_trace: LinkTrace | None = None

    # -- what subclasses describe ---------------------------------------------------------

    @property
    def log_prefix(self) -> str:
        """`host:port - cid:N` as nats-server starts every line about a connection."""
        return f"{self.host}:{self.port} - {self.id_label}:{self.cid}"

    @property
    def error_label(self) -> str:
        """How nats-server's errors about this connection name it (clients add who they are)."""
        return self.log_prefix

    @property
    def trace_label(self) -> str:
        """How -V trace lines name this connection (clients add their name or version)."""
        return self.log_prefix

    def on_closed(self) -> None:
        """Called once by close_connection after the socket is gone (drop subs, registries)."""

    # -- asyncio.Protocol ------------------------------------------------------------------

    def attach(self, base_transport: asyncio.BaseTransport) -> asyncio.Transport:
        """Take the transport: peer address and write-buffer limits. Subclasses call it first
        in connection_made."""
        self.transport = transport = cast(asyncio.Transport, base_transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.host, self.port = str(peer[0]), int(peer[1])
        # The socket counts as blocked well before max_pending, so that the slow-consumer
        # check (and the producer stall) happens while there is still room.
        high = min(const.WRITE_BUFFER_HIGH_BYTES, self.server.options.max_pending // 2)
        transport.set_write_buffer_limits(
            high=high, low=min(const.WRITE_BUFFER_LOW_BYTES, high // 4)
        )
        return transport

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.time()
        server = self.server
        server.current_producer = self
        if self.is_link and server.logger.trace_enabled:
            from .trace import trace_link_in

            trace_link_in(self, data)
        try:
            self.parser.feed(data)
        except ProtocolError as e:
            if e.log:
                server.logger.error(f"{self.error_label} - {e.log}")
            self.close_with_error(e.err, e.reason)
        except Exception:  # a bug must cost one connection, never the server
            server.logger.error(
                f"{self.log_prefix} - internal error processing {self.kind_name} data:\n"
                f"{traceback.format_exc()}"
            )
            self.close_connection(REASON_INTERNAL_ERROR)
        # Written while this connection still counts as the producer: a receiver whose socket
        # is full pauses it (back-pressure), see _stall_current_producer. While it counts,
        # `Server.flush_soon` leaves the writing to this call, so it must stop counting
        # whatever happens here.
        try:
            write_pending(server.pending_flush)
        finally:
            server.current_producer = None
        server.busy_poll.after_read()

    def connection_lost(self, exc: Exception | None) -> None:
        self.close_connection(REASON_READ_ERROR if exc else REASON_CLIENT_CLOSED)

    def write_timeout_policy(self) -> tuple[float, bool]:
        """(write deadline in seconds, whether passing it closes the connection): the
        `cluster {}`, `leafnodes {}` and `gateway {}` blocks may set their own, as in
        nats-server."""
        opts = self.server.options
        if self.kind == ROUTER:
            deadline, policy = opts.cluster.write_deadline, opts.cluster.write_timeout
        elif self.kind == LEAF:
            deadline, policy = opts.leafnodes.write_deadline, opts.leafnodes.write_timeout
        elif self.kind == GATEWAY:
            deadline, policy = opts.gateway.write_deadline, opts.gateway.write_timeout
        else:
            deadline, policy = 0.0, opts.write_timeout
        if policy in ("", "default"):
            policy = "close" if self.kind == CLIENT else "retry"
        return deadline or opts.write_deadline, policy == "close"

    def pause_writing(self) -> None:
        """The socket's write buffer passed the high-water mark: the write deadline runs."""
        self.is_write_blocked = True
        if self._write_deadline_timer is None:
            self._arm_write_deadline()

    def _arm_write_deadline(self) -> None:
        deadline = self.write_timeout_policy()[0]
        if deadline <= 0 or self.transport is None:
            return
        self._written_at_deadline = (self.bytes_written, self.transport.get_write_buffer_size())
        self._write_deadline_timer = self.server.loop.call_later(deadline, self._on_write_deadline)

    def resume_writing(self) -> None:
        self.is_write_blocked = False
        if self._write_deadline_timer is not None:
            self._write_deadline_timer.cancel()
            self._write_deadline_timer = None
        self._release_stalled_producers()

    # -- outbound --------------------------------------------------------------------------

    # The outbound frames and the traffic counts live in `ob` (sublist.Outbound, compiled
    # for the delivery loop and the client parser); these are their names everywhere else.
    @property
    def out(self) -> list[bytes]:
        return self.ob.parts

    @out.setter
    def out(self, parts: list[bytes]) -> None:
        self.ob.parts = parts

    @property
    def out_msgs(self) -> int:
        return self.ob.msgs

    @out_msgs.setter
    def out_msgs(self, value: int) -> None:
        self.ob.msgs = value

    @property
    def out_bytes(self) -> int:
        return self.ob.size

    @out_bytes.setter
    def out_bytes(self, value: int) -> None:
        self.ob.size = value

    @property
    def in_msgs(self) -> int:
        return self.ob.in_msgs

    @in_msgs.setter
    def in_msgs(self, value: int) -> None:
        self.ob.in_msgs = value

    @property
    def in_bytes(self) -> int:
        return self.ob.in_bytes

    @in_bytes.setter
    def in_bytes(self, value: int) -> None:
        self.ob.in_bytes = value

    @property
    def flush_queued(self) -> bool:
        return self.ob.queued

    @flush_queued.setter
    def flush_queued(self, value: bool) -> None:
        self.ob.queued = value

    def send(self, data: bytes) -> None:
        """Queue protocol bytes for this connection; written at the next flush (a link's are
        traced there, with its messages)."""
        if self.server.logger.trace_enabled and not self.is_link:
            from .trace import trace_out

            trace_out(self, data)
        ob = self.ob
        ob.parts.append(data)
        if not ob.queued:
            ob.queued = True
            self.server.pending_flush.append(self)

    def queue_link_msg(
        self,
        plain: bytes,
        target: bytes,
        reply: bytes | None,
        queues: list[bytes] | None,
        hdr_len: int,
        msg: bytes,
    ) -> None:
        """One message to another server: `plain` (b"RMSG " or b"LMSG ") or HMSG when it has
        headers the peer takes (else they are dropped), `target` (`[account ]subject`), the
        reply and queue groups; counted with its payload bytes, written at the next flush."""
        if queues:
            names = b" ".join(queues)
            mid = b" + %b %b" % (reply, names) if reply is not None else b" | " + names
        elif reply is not None:
            mid = b" " + reply
        else:
            mid = b""
        if hdr_len and self.headers:
            verb = b"HMSG "
            n = len(msg)
            tail = b" %d %d\r\n" % (hdr_len, n)
        else:
            if hdr_len:
                msg = msg[hdr_len:]
            verb = plain
            n = len(msg)
            tail = b" %d\r\n" % n
        ob = self.ob
        ob.parts += (verb, target, mid, tail, msg, b"\r\n")
        ob.msgs += 1
        ob.size += n
        if not ob.queued:
            ob.queued = True
            self.server.pending_flush.append(self)

    def send_err(self, text: str) -> None:
        self.send(b"-ERR '%b'\r\n" % text.encode())

    def flush(self) -> None:
        """Write everything queued in one call (`delivery.write_queued`)."""
        ob = self.ob
        if ob.parts:
            write_queued(self, ob)

    def trace_frames_out(self, parts: list[bytes]) -> None:
        """A link's outbound frames, traced as they are written (link tracing is on)."""
        from .trace import trace_link_out

        trace_link_out(self, parts)

    def written_while_blocked(self) -> None:
        """Bytes went to a socket over its high-water mark: cut a slow consumer, else pause
        the publisher feeding it."""
        transport = self.transport
        if transport is None:
            return
        max_pending = self.server.options.max_pending
        if transport.get_write_buffer_size() > max_pending:
            self.server.logger.notice(
                f"{self.log_prefix} - Slow Consumer Detected: MaxPending of {max_pending} Exceeded"
            )
            self.server.count_slow_consumer(self.kind)
            self.close_connection(REASON_SLOW_PENDING, abort=True)
            return
        self._stall_current_producer()

    def _stall_current_producer(self) -> None:
        """Back-pressure: pause the publisher feeding this blocked socket.

        A client is stalled for a moment (nats-server's fast-producer stall) and cut if it
        stays behind. A link to another server carries everyone's traffic, so a publisher
        feeding it waits until the link drains (`resume_writing`): the publisher's socket
        stops being read and TCP slows it down, instead of the route being cut with its
        messages. The write deadline still cuts a link that never drains."""
        server = self.server
        producer = server.current_producer
        if (
            producer is None
            or producer is self
            or producer.closed
            or server.options.no_fast_producer_stall
            or producer in self._stalled_producers
            or producer.transport is None
        ):
            return
        producer.transport.pause_reading()
        self._stalled_producers.append(producer)
        server.stalled_clients += 1
        if not self.is_link:
            server.loop.call_later(const.PRODUCER_STALL_MAX_S, self._release_stalled_producers)

    def _release_stalled_producers(self) -> None:
        producers, self._stalled_producers = self._stalled_producers, []
        for producer in producers:
            if not producer.closed and producer.transport is not None:
                producer.transport.resume_reading()

    # -- keepalive -------------------------------------------------------------------------

    def start_pings(self, first: float, interval: float, *, jitter: bool = True) -> None:
        """First PING after `first` seconds (plus up to 20% jitter), then every `interval`;
        the peer is stale after `ping_max` unanswered PINGs."""
        if interval <= 0:
            return
        if jitter:
            first *= 1 + random.random() * 0.2
        self._ping_timer = self.server.loop.call_later(first, self._on_ping_timer, interval)

    def _on_ping_timer(self, interval: float) -> None:
        self._ping_timer = None
        if self.closed:
            return
        if self.pings_out + 1 > self.server.options.ping_max:
            self.server.count_stale_connection(self.kind)
            self.server.logger.debug(f"{self.log_prefix} - Stale Client Connection - Closing")
            self.close_with_error("Stale Connection", REASON_STALE)
            return
        # Skip the ping when the peer showed it is alive within the interval, as long as
        # we have a round-trip time already.
        recently_active = time.time() - self.last_activity < interval
        if not (recently_active and self.rtt and self.pings_out == 0):
            self.pings_out += 1
            self.ping_sent_at = time.monotonic()
            self.send(PING)
            self.server.flush_pending()
        self._ping_timer = self.server.loop.call_later(interval, self._on_ping_timer, interval)

    def process_ping(self) -> None:
        self.send(PONG)

    def process_pong(self) -> None:
        self.pings_out = 0
        if self.ping_sent_at:
            self.rtt = time.monotonic() - self.ping_sent_at
            self.ping_sent_at = 0.0

    def _on_write_deadline(self) -> None:
        self._write_deadline_timer = None
        transport = self.transport
        if self.closed or not self.is_write_blocked or transport is None:
            return
        deadline, closes = self.write_timeout_policy()
        size = transport.get_write_buffer_size()
        written_then, buffered_then = self._written_at_deadline
        drained = buffered_then + (self.bytes_written - written_then) - size
        self.server.logger.notice(
            f"{self.log_prefix} - Slow Consumer Detected: WriteDeadline of "
            f"{format_duration(round(deadline * NS_PER_S))} exceeded with {size} total bytes."
        )
        self.server.count_slow_consumer(self.kind)
        if closes or drained <= 0:
            self.close_connection(REASON_SLOW_DEADLINE, abort=True)
            return
        self._arm_write_deadline()  # `retry`: still draining, give it another deadline

    # -- closing ---------------------------------------------------------------------------

    def close_with_error(self, err: str | None, reason: str) -> None:
        if err:
            self.send_err(err)
        self.close_connection(reason)

    def close_connection(self, reason: str, *, abort: bool = False) -> None:
        """Close once: flush what is queued (unless aborting), record the reason, clean up."""
        if self.closed:
            return
        transport = self.transport
        out = self.ob.parts
        if transport is not None and not abort and out and not transport.is_closing():
            transport.write(b"".join(out))
        out.clear()
        self.closed = True
        self.reason = reason
        self.stop = time.time()
        for timer in (self._ping_timer, self._write_deadline_timer):
            if timer is not None:
                timer.cancel()
        self._release_stalled_producers()
        if transport is not None:
            if abort:
                transport.abort()
            else:
                transport.close()
        self.on_closed()

    def describe(self) -> dict[str, Any]:
        """Counters shared by /connz and /routez entries."""
        return {
            "in_msgs": self.in_msgs,
            "out_msgs": self.out_msgs,
            "in_bytes": self.in_bytes,
            "out_bytes": self.out_bytes,
        }
