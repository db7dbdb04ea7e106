"""ClientConnection: one per client socket.

It owns the parser, the outbound list, keepalive pings, limits and slow-consumer handling.
Inbound bytes are parsed in one synchronous pass per chunk; every message is routed at once to
the outbound lists of its receivers, and each receiver is written once when the chunk is done
(`Server.flush_pending`). Nothing on this path creates a task, future or log line per message.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import traceback
from typing import TYPE_CHECKING, Any, cast

from . import const
from .auth import PermissionChecker, Permissions, ResponseTracker
from .protocol import (
    ERR_AUTH_VIOLATION,
    REASON_AUTH,
    ProtocolError,
    ProtocolParser,
)
from .subjects import is_valid_literal_subject, is_valid_subject
from .sublist import EMPTY_RESULT, Subscription

if TYPE_CHECKING:
    from .accounts import Account
    from .delivery import Publisher
    from .server import Server

CRLF = b"\r\n"
OK = b"+OK\r\n"
PING = b"PING\r\n"
PONG = b"PONG\r\n"
RESERVED_REPLY_PREFIXES = (b"_R_.", b"$JS.ACK.", b"$GNR.")

# Closed-connection reasons, as /connz shows them.
REASON_CLIENT_CLOSED = "Client Closed"
REASON_AUTH_TIMEOUT = "Authentication Timeout"
REASON_SLOW_PENDING = "Slow Consumer (Pending Bytes)"
REASON_SLOW_DEADLINE = "Slow Consumer (Write Deadline)"
REASON_STALE = "Stale Connection"
REASON_SERVER_SHUTDOWN = "Server Shutdown"
REASON_MAX_CONNECTIONS = "Maximum Connections Exceeded"
REASON_BAD_PROTOCOL = "Bad Client Protocol Version"
REASON_NO_RESPONDERS_HEADERS = "No Responders Requires Headers"
REASON_READ_ERROR = "Read Error"
REASON_TLS_FAILURE = "TLS Handshake Failure"
REASON_INTERNAL_ERROR = "Internal Client"


# b"<size>\r\n" for the sizes most messages have, so the frame tail is a lookup, not a format.
SIZE_TAILS = [b"%d\r\n" % i for i in range(4096)]


def route_message(
    publisher: Publisher,
    account: Account,
    subject: bytes,
    reply: bytes | None,
    hdr_len: int,
    msg: bytes,
) -> int:
    """Deliver one message to every matching subscription in `account`; returns deliveries.

    `msg` is the header block (the first `hdr_len` bytes, if any) followed by the payload.
    Socket receivers get a MSG/HMSG frame appended to their outbound list and are queued for
    the next flush; internal subscriptions are called at once.
    """
    sublist = account.sublist
    result = sublist.cache.get(subject)
    if result is None:
        result = sublist.match(subject)
    if result is EMPTY_RESULT:
        return 0
    plain, groups, heads = result
    if hdr_len:
        return _route_with_headers(publisher, subject, reply, hdr_len, msg, plain, groups)
    n = len(msg)
    if reply is None:
        tail = SIZE_TAILS[n] if n < 4096 else b"%d\r\n" % n
    else:
        tail = b"%b %d\r\n" % (reply, n)
    pending = publisher.server.pending_flush
    delivered = 0
    sub: Subscription | None
    for sub, head in zip(plain, heads, strict=True):
        c = sub.client
        if sub.callback is not None:
            sub.callback(sub, publisher, subject, reply, b"", msg)
        elif c is publisher and not c.echo:
            continue
        else:
            out = c.out
            out += (b"MSG ", head, tail, msg, CRLF)
            c.out_msgs += 1
            c.out_bytes += n
            if not c.flush_queued:
                c.flush_queued = True
                pending.append(c)
        delivered += 1
        sub.delivered += 1
        if sub.max_msgs and sub.delivered >= sub.max_msgs:
            c.remove_subscription(sub)
    for group in groups:
        sub = _pick_member(group, publisher)
        if sub is None:
            continue
        c = sub.client
        if sub.callback is not None:
            sub.callback(sub, publisher, subject, reply, b"", msg)
        else:
            out = c.out
            out += (b"MSG ", subject, b" ", sub.sid, b" ", tail, msg, CRLF)
            c.out_msgs += 1
            c.out_bytes += n
            if not c.flush_queued:
                c.flush_queued = True
                pending.append(c)
        delivered += 1
        sub.delivered += 1
        if sub.max_msgs and sub.delivered >= sub.max_msgs:
            c.remove_subscription(sub)
    return delivered


def _route_with_headers(
    publisher: Publisher,
    subject: bytes,
    reply: bytes | None,
    hdr_len: int,
    msg: bytes,
    plain: tuple[Subscription, ...],
    groups: tuple[tuple[Subscription, ...], ...],
) -> int:
    """The HMSG variant: receivers without header support get a MSG with the headers cut."""
    pending = publisher.server.pending_flush
    n = len(msg)
    hpre = b"HMSG " + subject + b" "
    hpost = b" %b %d %d\r\n" % (reply, hdr_len, n) if reply else b" %d %d\r\n" % (hdr_len, n)
    headers = msg[:hdr_len]
    body = msg[hdr_len:]
    delivered = 0
    targets = list(plain)
    for group in groups:
        sub = _pick_member(group, publisher)
        if sub is not None:
            targets.append(sub)
    for sub in targets:
        if sub.callback is not None:
            sub.callback(sub, publisher, subject, reply, headers, body)
            delivered += 1
            continue
        c = sub.client
        if c is publisher and not c.echo:
            continue
        if c.headers:
            c.out.extend((hpre, sub.sid, hpost, msg, CRLF))
            c.out_bytes += n
        else:
            c.out.append(
                b"MSG %b %b %b%d\r\n"
                % (subject, sub.sid, reply + b" " if reply else b"", n - hdr_len)
            )
            c.out.extend((body, CRLF))
            c.out_bytes += n - hdr_len
        c.out_msgs += 1
        if not c.flush_queued:
            c.flush_queued = True
            pending.append(c)
        delivered += 1
        sub.delivered += 1
        if sub.max_msgs and sub.delivered >= sub.max_msgs:
            c.remove_subscription(sub)
    return delivered


def route_as(
    publisher: Publisher,
    account: Account,
    to: bytes,
    subject: bytes,
    reply: bytes | None,
    headers: bytes,
    payload: bytes,
) -> int:
    """Deliver to everyone interested in `to`, with `subject` in the MSG/HMSG line.

    This is how JetStream delivers a stored message to a consumer's inbox or deliver
    subject: routed by one subject, framed with the message's own. Returns deliveries
    (a queue group counts once).
    """
    result = account.sublist.cache.get(to)
    if result is None:
        result = account.sublist.match(to)
    if result is EMPTY_RESULT:
        return 0
    plain, groups, _ = result
    targets = list(plain)
    for group in groups:
        member = _pick_member(group, publisher)
        if member is not None:
            targets.append(member)
    for sub in targets:
        if sub.callback is not None:
            sub.callback(sub, publisher, subject, reply, headers, payload)
        else:
            deliver_to_client(sub.client, sub, subject, reply, headers, payload)
        sub.delivered += 1
        if sub.max_msgs and sub.delivered >= sub.max_msgs:
            sub.client.remove_subscription(sub)
    return len(targets)


def _pick_member(group: tuple[Subscription, ...], publisher: Publisher) -> Subscription | None:
    """One member of a queue group, at random; skip members that cannot take the message."""
    count = len(group)
    start = int(random.random() * count)
    for i in range(count):
        sub = group[(start + i) % count]
        c = sub.client
        if c is publisher and sub.callback is None and not c.echo:
            continue
        return sub
    return None


def deliver_to_client(
    c: ClientConnection,
    sub: Subscription,
    subject: bytes,
    reply: bytes | None,
    headers: bytes,
    payload: bytes,
) -> None:
    """Append one MSG/HMSG for `sub` to its connection (used off the main routing loop)."""
    if c.closed:
        return
    if headers and c.headers:
        total = len(headers) + len(payload)
        if reply is not None:
            line = b"HMSG %b %b %b %d %d\r\n" % (subject, sub.sid, reply, len(headers), total)
        else:
            line = b"HMSG %b %b %d %d\r\n" % (subject, sub.sid, len(headers), total)
        c.out += (line, headers, payload, CRLF)
        c.out_bytes += total
    else:
        if reply is not None:
            line = b"MSG %b %b %b %d\r\n" % (subject, sub.sid, reply, len(payload))
        else:
            line = b"MSG %b %b %d\r\n" % (subject, sub.sid, len(payload))
        c.out += (line, payload, CRLF)
        c.out_bytes += len(payload)
    c.out_msgs += 1
    if not c.flush_queued:
        c.flush_queued = True
        c.server.pending_flush.append(c)


def filtered_delivery(
    sub: Subscription,
    publisher: Publisher,
    subject: bytes,
    reply: bytes | None,
    headers: bytes,
    payload: bytes,
) -> None:
    """Delivery for subscriptions of clients with subscribe-deny filters or allow_responses:
    those subscriptions carry this callback so that nobody else pays for the checks."""
    c: ClientConnection = sub.client
    if c is publisher and not c.echo:
        return
    perms = c.perms
    if perms is not None and perms.delivery_denied(subject):
        return
    if reply is not None and c.responses is not None:
        c.responses.grant(reply)
    deliver_to_client(c, sub, subject, reply, headers, payload)


class ClientConnection(asyncio.Protocol):
    """The server side of one client connection."""

    __slots__ = (
        "_auth_timer",
        "_connect_info_sent",
        "_ping_timer",
        "_stalled_producers",
        "_write_deadline_timer",
        "account",
        "checks",
        "cid",
        "closed",
        "connect_opts",
        "connected",
        "echo",
        "flush_queued",
        "headers",
        "host",
        "in_bytes",
        "in_msgs",
        "is_write_blocked",
        "lang",
        "last_activity",
        "name",
        "no_responders",
        "nonce",
        "out",
        "out_bytes",
        "out_msgs",
        "parser",
        "pedantic",
        "perms",
        "ping_sent_at",
        "pings_out",
        "port",
        "protocol",
        "pub_allowed",
        "reason",
        "responses",
        "rtt",
        "server",
        "start",
        "stop",
        "subs",
        "transport",
        "user",
        "verbose",
        "version",
    )

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        opts = server.options
        sink: Any = self
        if server.logger.trace_enabled:
            from .trace import TracingSink

            sink = TracingSink(self)
        self.parser = ProtocolParser(
            sink, max_payload=opts.max_payload, max_control_line=opts.max_control_line
        )
        self.account: Account = server.global_account
        self.cid = 0
        self.host = ""
        self.port = 0
        self.subs: dict[bytes, Subscription] = {}
        self.out: list[bytes] = []
        self.flush_queued = False
        self.closed = False
        self.connected = False
        self.reason = ""
        # CONNECT options: pre-set as nats-server does, so an absent key keeps these values.
        self.verbose = True
        self.pedantic = True
        self.echo = True
        self.headers = False
        self.no_responders = False
        self.protocol = 0
        self.name = ""
        self.lang = ""
        self.version = ""
        self.user = ""
        # Counters and times for /connz
        self.in_msgs = 0
        self.in_bytes = 0
        self.out_msgs = 0
        self.out_bytes = 0
        self.start = time.time()
        self.stop = 0.0
        self.last_activity = self.start
        self.rtt = 0.0
        self.pings_out = 0
        self.ping_sent_at = 0.0
        self.is_write_blocked = False
        self._auth_timer: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._write_deadline_timer: asyncio.TimerHandle | None = None
        self._stalled_producers: list[ClientConnection] = []
        self._connect_info_sent = False
        self.nonce = ""
        self.connect_opts: dict[str, Any] | None = None  # kept to re-check auth on reload
        # Permissions (None = everything allowed) and reply subjects granted by allow_responses
        self.perms: PermissionChecker | None = None
        self.responses: ResponseTracker | None = None
        # True when a publish must go through _may_publish (verbose, pedantic)
        self.checks = True
        # The publish-permission cache (subject -> allowed), None without publish permissions
        self.pub_allowed: dict[bytes, bool] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, base_transport: asyncio.BaseTransport) -> None:
        # A stream server hands its protocols stream (read and write) transports.
        self.transport = transport = cast(asyncio.Transport, base_transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.host, self.port = str(peer[0]), int(peer[1])
        server = self.server
        # The socket counts as blocked well before max_pending, so that the slow-consumer
        # check (and the producer stall) happens while there is still room.
        high = min(const.WRITE_BUFFER_HIGH_BYTES, server.options.max_pending // 2)
        transport.set_write_buffer_limits(
            high=high, low=min(const.WRITE_BUFFER_LOW_BYTES, high // 4)
        )
        server.register_client(self)
        if server.tls_context is not None and not server.options.tls_handshake_first:
            # TLS upgrade after INFO. (With handshake_first the listener itself is TLS.)
            server.loop.create_task(self._upgrade_to_tls())
            return
        self.send(server.info_line(self))
        server.flush_pending()
        self._ready_for_connect()

    def _ready_for_connect(self) -> None:
        """After INFO (and TLS): refuse over the connection limit, else start the auth clock."""
        server = self.server
        if server.is_over_connection_limit():
            self.close_with_error("maximum connections exceeded", REASON_MAX_CONNECTIONS)
            return
        if server.authenticator.required:
            self.parser.awaiting_connect = True
            self._auth_timer = server.loop.call_later(
                server.options.effective_auth_timeout(), self._on_auth_timeout
            )
        server.flush_pending()

    async def _upgrade_to_tls(self) -> None:
        """INFO in the clear, then the handshake. Reading is paused before INFO goes out, so
        the client's ClientHello (sent only after INFO) reaches the TLS layer, never the
        parser."""
        server = self.server
        transport = self.transport
        context = server.tls_context
        if self.closed or transport is None or context is None:
            return
        transport.pause_reading()
        self.send(server.info_line(self))
        server.flush_pending()
        try:
            new_transport = await server.loop.start_tls(
                transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=server.options.tls_timeout,
            )
        except Exception as e:  # any handshake failure closes this connection only
            if not self.closed:
                server.logger.error(
                    f"{self.host}:{self.port} - cid:{self.cid} - TLS handshake error: {e}"
                )
                self.close_connection(REASON_TLS_FAILURE, abort=True)
            return
        if self.closed or new_transport is None:
            return
        self.transport = new_transport
        self._ready_for_connect()

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.time()
        server = self.server
        server.current_producer = self
        try:
            self.parser.feed(data)
        except ProtocolError as e:
            self.close_with_error(e.err, e.reason)
        except Exception:  # a bug must cost one connection, never the server
            server.logger.error(
                f"{self.host}:{self.port} - cid:{self.cid} - internal error processing "
                f"client data:\n{traceback.format_exc()}"
            )
            self.close_connection(REASON_INTERNAL_ERROR)
        finally:
            server.current_producer = None
        server.flush_pending()

    def connection_lost(self, exc: Exception | None) -> None:
        self.close_connection(REASON_READ_ERROR if exc else REASON_CLIENT_CLOSED)

    def pause_writing(self) -> None:
        """The socket's write buffer passed the high-water mark: the write deadline runs."""
        self.is_write_blocked = True
        deadline = self.server.options.write_deadline
        if deadline > 0 and self._write_deadline_timer is None:
            self._write_deadline_timer = self.server.loop.call_later(
                deadline, self._on_write_deadline
            )

    def resume_writing(self) -> None:
        self.is_write_blocked = False
        if self._write_deadline_timer is not None:
            self._write_deadline_timer.cancel()
            self._write_deadline_timer = None
        self._release_stalled_producers()

    # -- outbound ---------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue protocol bytes for this connection; written at the next flush."""
        if self.server.logger.trace_enabled:
            from .trace import trace_out

            trace_out(self, data)
        self.out.append(data)
        if not self.flush_queued:
            self.flush_queued = True
            self.server.pending_flush.append(self)

    def send_err(self, text: str) -> None:
        self.send(b"-ERR '%b'\r\n" % text.encode())

    def flush(self) -> None:
        """Write everything queued in one call; cut the connection if it is a slow consumer."""
        out = self.out
        if not out:
            return
        transport = self.transport
        if self.closed or transport is None or transport.is_closing():
            out.clear()
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        transport.write(data)
        if self.is_write_blocked:
            if transport.get_write_buffer_size() > self.server.options.max_pending:
                self.server.logger.notice(
                    f"{self.host}:{self.port} - cid:{self.cid} - "
                    f"Slow Consumer Detected: MaxPending of {self.server.options.max_pending} "
                    "Exceeded"
                )
                self.server.count_slow_consumer()
                self.close_connection(REASON_SLOW_PENDING, abort=True)
                return
            self._stall_current_producer()

    def _stall_current_producer(self) -> None:
        """Back-pressure: pause the publisher feeding this blocked socket, for a moment."""
        producer = self.server.current_producer
        if (
            producer is None
            or producer is self
            or producer.closed
            or self.server.options.no_fast_producer_stall
            or producer in self._stalled_producers
        ):
            return
        assert producer.transport is not None
        producer.transport.pause_reading()
        self._stalled_producers.append(producer)
        self.server.stalled_clients += 1
        self.server.loop.call_later(const.PRODUCER_STALL_MAX_S, self._release_stalled_producers)

    def _release_stalled_producers(self) -> None:
        producers, self._stalled_producers = self._stalled_producers, []
        for producer in producers:
            if not producer.closed and producer.transport is not None:
                producer.transport.resume_reading()

    # -- inbound operations (called by the parser) ------------------------------------------

    def process_connect(self, arg: bytes) -> None:
        try:
            opts = json.loads(arg)
        except ValueError:
            raise ProtocolError(None) from None
        if not isinstance(opts, dict):
            raise ProtocolError(None)
        server = self.server
        self.verbose = bool(opts.get("verbose", self.verbose))
        self.pedantic = bool(opts.get("pedantic", self.pedantic))
        self.echo = bool(opts.get("echo", self.echo))
        protocol = opts.get("protocol", 0)
        if not isinstance(protocol, int) or protocol < 0 or protocol > 1:
            raise ProtocolError("invalid client protocol", REASON_BAD_PROTOCOL)
        self.protocol = protocol
        self.headers = bool(opts.get("headers")) and not server.options.no_header_support
        self.no_responders = bool(opts.get("no_responders"))
        if self.no_responders and not self.headers:
            raise ProtocolError(
                "no responders requires headers support", REASON_NO_RESPONDERS_HEADERS
            )
        self.name = str(opts.get("name") or "")
        self.lang = str(opts.get("lang") or "")
        self.version = str(opts.get("version") or "")
        if "account" in opts or "new_account" in opts:
            raise ProtocolError(ERR_AUTH_VIOLATION, REASON_AUTH)
        self.connect_opts = opts
        identities: list[str] = []
        if server.options.tls_map and self.transport is not None:
            from .tls import certificate_identities

            identities = certificate_identities(self.transport.get_extra_info("peercert"))
        result, why = server.authenticator.authenticate(opts, self.nonce, identities)
        if result is None:
            server.logger.error(
                f"{self.host}:{self.port} - cid:{self.cid} - "
                f'"{self._client_label()}" - authentication error - {why}'
            )
            raise ProtocolError(ERR_AUTH_VIOLATION, REASON_AUTH)
        self.user = result.user
        if result.account and result.account != self.account.name:
            server.move_client(self, result.account)
        if result.jwt_claims is not None:
            account = self.account
            limits = server.authenticator.account_limits(account.name)
            account.max_connections = int(limits.get("conn", -1))
            account.max_subscriptions = int(limits.get("subs", -1))
            account.max_payload = int(limits.get("payload", -1))
            if account.max_payload > 0:
                self.parser.max_payload = min(self.parser.max_payload, account.max_payload)
            conn_limit = account.max_connections
            if 0 <= conn_limit < len(account.clients):
                raise ProtocolError(
                    "maximum account active connections exceeded",
                    "Maximum Account Connections Exceeded",
                )
        self.apply_permissions(result.permissions)
        self.parser.awaiting_connect = False
        self.parser.headers_enabled = self.headers
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        if not self.connected:
            self.connected = True
            self._schedule_first_ping()
            for hook in server.on_client_connect:
                hook(self)
        if self.verbose:
            self.send(OK)

    def apply_permissions(self, perms: Permissions | None) -> None:
        if perms is None or perms.is_empty():
            self.perms = None
            self.responses = None
        else:
            self.perms = PermissionChecker(perms)
            self.responses = ResponseTracker(perms.response) if perms.response else None
        self.pub_allowed = (
            self.perms.publish_cache
            if self.perms is not None and self.perms.restricts_publish
            else None
        )
        self.checks = self.verbose or self.pedantic

    def process_pub(
        self, subject: bytes, reply: bytes | None, hdr_len: int, payload: bytes
    ) -> None:
        """PUB and HPUB (`hdr_len` > 0: the payload starts with the header block)."""
        self.in_msgs += 1
        self.in_bytes += len(payload)
        pub_allowed = self.pub_allowed
        if (
            pub_allowed is not None
            and not pub_allowed.get(subject)
            and not self._publish_permitted(subject)
        ):
            return
        if (self.checks or reply is not None) and not self._may_publish(subject, reply):
            return
        if (
            not route_message(self, self.account, subject, reply, hdr_len, payload)
            and reply is not None
            and self.no_responders
        ):
            self.send_no_responders(subject, reply)

    def _publish_permitted(self, subject: bytes) -> bool:
        """The slow path of the publish permission check (the cache said not "allowed")."""
        perms = self.perms
        assert perms is not None
        if perms.can_publish(subject):
            return True
        if self.responses is not None and self.responses.consume(subject):
            return True
        text = subject.decode(errors="replace")
        self.send_err(f'Permissions Violation for Publish to "{text}"')
        return False

    def _may_publish(self, subject: bytes, reply: bytes | None) -> bool:
        """The other checks nats-server makes before delivering; +OK when verbose.

        Only called when one of them can apply, so a plain PUB pays nothing for them.
        """
        if self.pedantic and not is_valid_literal_subject(subject):
            self.send_err("Invalid Publish Subject")
        if reply is not None and reply.startswith(RESERVED_REPLY_PREFIXES):
            text = reply.decode(errors="replace")
            self.send_err(f'Permissions Violation for Publish with Reply of "{text}"')
            return False
        if self.verbose:
            self.send(OK)
        return True

    def send_no_responders(self, subject: bytes, reply: bytes) -> None:
        """Status 503 to the requester's own subscription on the reply subject."""
        plain, groups, _ = self.account.sublist.match(reply)
        candidates = list(plain)
        for group in groups:
            candidates.extend(group)
        for sub in candidates:
            if sub.client is self and sub.callback is None:
                hdr = b"NATS/1.0 503\r\nNats-Subject: %b\r\n\r\n" % subject
                self.send(b"HMSG %b %b %d %d\r\n%b\r\n" % (reply, sub.sid, len(hdr), len(hdr), hdr))
                return

    def process_sub(self, subject: bytes, queue: bytes | None, sid: bytes) -> None:
        if not is_valid_subject(subject):
            self.send_err("Invalid Subject")
            return
        if sid in self.subs:
            if self.verbose:
                self.send(OK)
            return
        limit = self.server.options.max_subscriptions
        account_limit = self.account.max_subscriptions
        if (limit > 0 and len(self.subs) >= limit) or (
            account_limit >= 0
            and self.account.sublist.count - self.account.internal_subs >= account_limit
        ):
            self.send_err("maximum subscriptions exceeded")
            return
        max_tokens = self.server.options.max_sub_tokens
        if max_tokens > 0 and subject.count(b".") >= max_tokens:
            text = subject.decode(errors="replace")
            self.send_err(f'Permissions Violation for Subscription to "{text}", too many tokens')
            return
        perms = self.perms
        if (perms is not None and not perms.can_subscribe(subject, queue)) or queue == b"_sys_":
            text = subject.decode(errors="replace")
            if queue is not None:
                q = queue.decode(errors="replace")
                self.send_err(
                    f'Permissions Violation for Subscription to "{text}" using queue "{q}"'
                )
            else:
                self.send_err(f'Permissions Violation for Subscription to "{text}"')
            return
        sub = Subscription(self, subject, queue, sid, callback=self._delivery_callback(subject))
        self.subs[sid] = sub
        self.account.sublist.insert(sub)
        if self.verbose:
            self.send(OK)

    def process_unsub(self, sid: bytes, max_msgs: int) -> None:
        sub = self.subs.get(sid)
        if sub is not None:
            if max_msgs > sub.delivered:
                sub.max_msgs = max_msgs
            else:
                self.remove_subscription(sub)
        if self.verbose:
            self.send(OK)

    def process_ping(self) -> None:
        self.send(PONG)
        if self.connected and self.protocol >= 1 and not self._connect_info_sent:
            self._connect_info_sent = True
            self.send(self.server.connect_info_line(self))

    def process_pong(self) -> None:
        self.pings_out = 0
        if self.ping_sent_at:
            self.rtt = time.monotonic() - self.ping_sent_at
            self.ping_sent_at = 0.0

    # -- subscriptions ----------------------------------------------------------------------

    def _delivery_callback(self, subject: bytes) -> Any:
        if self.server.logger.trace_enabled:
            from .trace import traced_delivery

            return traced_delivery
        perms = self.perms
        if self.responses is not None or (
            perms is not None and perms.needs_delivery_filter(subject)
        ):
            return filtered_delivery
        return None

    def drop_disallowed_subscriptions(self) -> None:
        """After a reload: remove the subscriptions the new permissions no longer allow."""
        perms = self.perms
        for sub in list(self.subs.values()):
            if perms is not None and not perms.can_subscribe(sub.subject, sub.queue):
                self.remove_subscription(sub)
                text = sub.subject.decode(errors="replace")
                sid = sub.sid.decode(errors="replace")
                if sub.queue is not None:
                    q = sub.queue.decode(errors="replace")
                    self.send_err(
                        f'Permissions Violation for Subscription to "{text}" using queue "{q}" (sid "{sid}")'
                    )
                else:
                    self.send_err(
                        f'Permissions Violation for Subscription to "{text}" (sid "{sid}")'
                    )
            else:
                sub.callback = self._delivery_callback(sub.subject)

    def remove_subscription(self, sub: Subscription) -> None:
        if self.subs.get(sub.sid) is sub:
            del self.subs[sub.sid]
        self.account.sublist.remove(sub)

    # -- timers -----------------------------------------------------------------------------

    def _schedule_first_ping(self) -> None:
        interval = self.server.options.ping_interval
        if interval <= 0:
            return
        first = interval
        if not self.server.options.disable_short_first_ping:
            first = min(interval, const.FIRST_PING_INTERVAL_S) * (1 + random.random() * 0.2)
        self._ping_timer = self.server.loop.call_later(first, self._on_ping_timer)

    def _on_ping_timer(self) -> None:
        self._ping_timer = None
        if self.closed:
            return
        opts = self.server.options
        if self.pings_out + 1 > opts.ping_max:
            self.server.stale_connections += 1
            self.server.logger.debug(
                f"{self.host}:{self.port} - cid:{self.cid} - Stale Client Connection - Closing"
            )
            self.close_with_error("Stale Connection", REASON_STALE)
            return
        # Skip the ping when the client showed it is alive within the interval, as long as
        # we have a round-trip time already.
        recently_active = time.time() - self.last_activity < opts.ping_interval
        if not (recently_active and self.rtt and self.pings_out == 0):
            self.pings_out += 1
            self.ping_sent_at = time.monotonic()
            self.send(PING)
            self.server.flush_pending()
        self._ping_timer = self.server.loop.call_later(opts.ping_interval, self._on_ping_timer)

    def _on_auth_timeout(self) -> None:
        self._auth_timer = None
        if not self.closed and self.parser.awaiting_connect:
            self.close_with_error("Authentication Timeout", REASON_AUTH_TIMEOUT)

    def _on_write_deadline(self) -> None:
        self._write_deadline_timer = None
        if self.closed or not self.is_write_blocked:
            return
        assert self.transport is not None
        size = self.transport.get_write_buffer_size()
        self.server.logger.notice(
            f"{self.host}:{self.port} - cid:{self.cid} - Slow Consumer Detected: WriteDeadline "
            f"of {self.server.options.write_deadline:g}s exceeded with {size} total bytes."
        )
        self.server.count_slow_consumer()
        self.close_connection(REASON_SLOW_DEADLINE, abort=True)

    # -- closing ----------------------------------------------------------------------------

    def close_with_error(self, err: str | None, reason: str) -> None:
        if err:
            self.send_err(err)
        self.close_connection(reason)

    def close_connection(self, reason: str, *, abort: bool = False) -> None:
        """Close once: flush what is queued (unless aborting), drop subs, record the reason."""
        if self.closed:
            return
        transport = self.transport
        if transport is not None and not abort and self.out and not transport.is_closing():
            transport.write(b"".join(self.out))
        self.out.clear()
        self.closed = True
        self.reason = reason
        self.stop = time.time()
        for timer in (self._auth_timer, self._ping_timer, self._write_deadline_timer):
            if timer is not None:
                timer.cancel()
        self._release_stalled_producers()
        sublist = self.account.sublist
        for sub in self.subs.values():
            sublist.remove(sub)
        if transport is not None:
            if abort:
                transport.abort()
            else:
                transport.close()
        self.server.unregister_client(self)

    # -- descriptions -----------------------------------------------------------------------

    def _client_label(self) -> str:
        return self.name or self.version or ""

    def __repr__(self) -> str:
        return f"<ClientConnection cid={self.cid} {self.host}:{self.port}>"
