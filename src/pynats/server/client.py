"""ClientConnection: one per client socket.

On top of what every connection has (`connection.Connection`: outbound list, back-pressure,
keepalive, close), a client has the client protocol: CONNECT and authentication, permissions,
subscriptions, PUB/HPUB. Inbound bytes are parsed in one synchronous pass per chunk; every
message is routed at once (`delivery.route_message`) to the outbound lists of its receivers,
and each receiver is written once when the chunk is done (`Server.flush_pending`). Nothing on
this path creates a task, future or log line per message.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, cast

from . import const, jwt_users
from .auth import (
    AuthResult,
    PermissionChecker,
    Permissions,
    ResponseTracker,
    connection_type_allowed,
    verify_nonce_signature,
)
from .conf.units import go_quote
from .connection import PONG, REASON_TLS_FAILURE, Connection
from .delivery import RESERVED_REPLY_PREFIXES, filtered_delivery, publish_plain, route_message
from .msgtrace import (
    TRACE_DEST,
    TRACE_PARENT,
    route_traced,
    trace_denied,
    trace_dest_permitted,
)
from .protocol import (
    ERR_AUTH_VIOLATION,
    REASON_AUTH,
    REASON_PROTOCOL_VIOLATION,
    ProtocolError,
    ProtocolParser,
)
from .proxy_protocol import HEADER_TIMEOUT_S, ProxyHeader, ProxyHeaderError, parse_header
from .subjects import is_valid_literal_subject, is_valid_subject
from .sublist import Subscription

if TYPE_CHECKING:
    from .auth import ConnectAuthenticator
    from .auth_callout import CalloutTarget, PendingCallout
    from .delivery import DeliveryCallback
    from .server import Server

OK = b"+OK\r\n"

# Closed-connection reasons of clients, as /connz shows them (the shared ones: connection.py).
REASON_AUTH_TIMEOUT = "Authentication Timeout"
REASON_AUTH_EXPIRED = "Authentication Expired"
REASON_MAX_CONNECTIONS = "Maximum Connections Exceeded"
REASON_MAX_SUBSCRIPTIONS_EXCEEDED = "Maximum Subscriptions Exceeded"
ERR_MAX_SUBSCRIPTIONS = "maximum subscriptions exceeded"
MAX_SUBS_REPORT_INTERVAL_S = 2.0
REASON_BAD_PROTOCOL = "Bad Client Protocol Version"
REASON_NO_RESPONDERS_HEADERS = "No Responders Requires Headers"


class _ProxyHeaderStage:
    """A client's parser until its PROXY protocol header is read (`proxy_protocol: true`):
    collects the first bytes, then hands the client what the header said and the rest."""

    __slots__ = ("buffer", "client", "parser", "timer")

    def __init__(self, client: ClientConnection, parser: ProtocolParser) -> None:
        self.client = client
        self.parser = parser
        self.buffer = b""
        self.timer = client.server.loop.call_later(HEADER_TIMEOUT_S, self.end)

    @property
    def awaiting_connect(self) -> bool:
        return self.parser.awaiting_connect

    def feed(self, data: bytes) -> None:
        self.buffer += data
        self._decide(at_eof=False)

    def end(self) -> None:
        """No more bytes will come: the peer closed, or the header's time is up."""
        if not self.client.closed:
            self._decide(at_eof=True)

    def _decide(self, *, at_eof: bool) -> None:
        client = self.client
        try:
            header = parse_header(self.buffer, at_eof=at_eof)
        except ProxyHeaderError as e:
            self.timer.cancel()
            client.proxy_header_failed(str(e))
            return
        if header is not None:
            self.timer.cancel()
            client.proxy_header_read(header, self.buffer[header.length :])


class ClientConnection(Connection):
    """The server side of one client connection."""

    # Over WebSocket (websocket.WebSocketClient): its INFO and /connz entry say so.
    is_websocket: ClassVar[bool] = False
    # How an auth callout request names it (auth_callout.CalloutParty)
    callout_kind: ClassVar[str] = "Client"

    __slots__ = (
        "_auth_timer",
        "_callout",
        "_connect_info_sent",
        "_label",
        "checks",
        "connect_opts",
        "connected",
        "echo",
        "headers",
        "lang",
        "max_subs",
        "name",
        "no_responders",
        "nonce",
        "pedantic",
        "perms",
        "protocol",
        "proxied_from",
        "proxy_key",
        "pub_allowed",
        "responses",
        "subs",
        "user",
        "verbose",
        "version",
    )

    traces_delsub_on_close: ClassVar[bool] = True  # after the `connection closed` line

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        opts = server.options
        sink: Any = self
        if server.logger.trace_enabled:
            from .trace import TracingSink

            sink = TracingSink(self)
        self.parser: ProtocolParser = ProtocolParser(
            sink, max_payload=opts.max_payload, max_control_line=opts.max_control_line
        )
        self.parser.traffic = self.ob  # it counts in_msgs and in_bytes
        if sink is self:  # (a trace logs every PUB first)
            self.parser.route_plain_pubs(self, publish_plain)
        self.subs: dict[bytes, Subscription] = {}
        self.connected = False
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
        self._label = ""  # trace_label once the CONNECT is taken
        self.max_subs = -1  # a user JWT's `subs` (the account's limit is checked apart)
        self._auth_timer: asyncio.TimerHandle | None = None
        self._callout: PendingCallout | None = None  # an auth callout request in flight
        self._connect_info_sent = False
        self.nonce = ""
        self.proxy_key = ""  # the trusted proxy that signed this client's nonce
        self.connect_opts: dict[str, Any] | None = None  # kept to re-check auth on reload
        # Permissions (None = everything allowed) and reply subjects granted by allow_responses
        self.perms: PermissionChecker | None = None
        self.responses: ResponseTracker | None = None
        # True when a publish must go through _may_publish (verbose, pedantic)
        self.checks = True
        # The publish-permission cache (subject -> allowed), None without publish permissions
        self.pub_allowed: dict[bytes, bool] | None = None
        # The socket's own peer (`host:port`) when a PROXY header named the client's address:
        # log lines keep naming the socket, as nats-server's do.
        self.proxied_from = ""

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, base_transport: asyncio.BaseTransport) -> None:
        self.attach(base_transport)
        server = self.server
        server.register_client(self)
        if server.tls_context is not None and not server.options.tls_handshake_first:
            # TLS upgrade after INFO. (With handshake_first the listener itself is TLS.)
            server.loop.create_task(self._upgrade_to_tls())
            return
        if server.options.tls_handshake_first and not self.is_websocket:
            opts = server.options
            if not server.tls_handshake_allowed():
                # the listener did the handshake already: refused right after it
                self.close_with_error(
                    "Connection throttling is active. Please try again later.",
                    REASON_MAX_CONNECTIONS,
                )
                return
            if not self.pinned_cert_valid():
                return
            if opts.tls_ocsp_peer is not None and opts.tls_ocsp_peer.verify:
                server.loop.create_task(self._start_after_ocsp_check())
                return
        self.send(server.info_line(self))
        server.flush_pending()
        self._ready_for_connect()
        if server.options.proxy_protocol and not self.is_websocket and not self.closed:
            self.parser = cast(Any, _ProxyHeaderStage(self, self.parser))

    def proxy_header_read(self, header: ProxyHeader, rest: bytes) -> None:
        """The PROXY header is read off a plain connection: the bytes after it go to the
        client parser."""
        stage = cast(_ProxyHeaderStage, self.parser)
        self.parser = stage.parser
        self._use_proxy_header(header)
        if rest and not self.closed:
            self.parser.feed(rest)

    def _use_proxy_header(self, header: ProxyHeader) -> None:
        """The header's address becomes the client's (monitoring, `src` limits, request
        info, events); LOCAL and UNKNOWN keep the socket's."""
        if header.source is not None:
            self.proxied_from = f"{self.host}:{self.port}"
            self.host, self.port = header.source

    def proxy_header_failed(self, why: str) -> None:
        """As nats-server: a warning naming the socket's peer, and the connection closed
        without a word to the client."""
        self.server.logger.warn(
            f"Error reading PROXY protocol header from {self.host}:{self.port}: {why}"
        )
        self.close_connection(REASON_PROTOCOL_VIOLATION)

    def connection_lost(self, exc: Exception | None) -> None:
        stage = self.parser
        if isinstance(stage, _ProxyHeaderStage) and not self.closed:
            stage.end()
        super().connection_lost(exc)

    @property
    def log_prefix(self) -> str:
        if self.proxied_from:
            return f"{self.proxied_from} - {self.id_label}:{self.cid}"
        return super().log_prefix

    def _ready_for_connect(self) -> None:
        """After INFO (and TLS): refuse over the connection limit, else start the auth clock."""
        server = self.server
        if server.is_over_connection_limit():
            self.close_with_error("maximum connections exceeded", REASON_MAX_CONNECTIONS)
            return
        if self.authenticator.required:
            self.parser.awaiting_connect = True
            self._auth_timer = server.loop.call_later(self.auth_timeout(), self._on_auth_timeout)
        server.flush_pending()

    @property
    def authenticator(self) -> ConnectAuthenticator:
        """Who decides this client's CONNECT (a listener may have its own rules)."""
        return self.server.authenticator

    def auth_timeout(self) -> float:
        """Seconds from INFO to the CONNECT when authentication is required."""
        return self.server.options.effective_auth_timeout()

    async def _upgrade_to_tls(self) -> None:
        """INFO in the clear, then the handshake. Reading is paused before INFO goes out, so
        the client's ClientHello (sent only after INFO) reaches the TLS layer, never the
        parser. With `allow_non_tls` the client's first byte decides: a TLS record, or plain
        NATS read by the parser as if TLS were not configured."""
        server = self.server
        transport = self.transport
        context = server.tls_context
        if self.closed or transport is None or context is None:
            return
        transport.pause_reading()
        self.send(server.info_line(self))
        server.flush_pending()
        opts = server.options
        if opts.proxy_protocol:
            # In the clear, between INFO and the handshake, as nats-server reads it.
            from .tls import read_proxy_header

            try:
                header = await read_proxy_header(server.loop, transport, HEADER_TIMEOUT_S)
            except ProxyHeaderError as e:
                if not self.closed:
                    self.proxy_header_failed(str(e))
                return
            if self.closed:
                return
            self._use_proxy_header(header)
        if opts.allow_non_tls:
            from .tls import client_starts_tls

            if not await client_starts_tls(server.loop, transport, opts.tls_timeout):
                if not self.closed:
                    transport.resume_reading()
                    self._ready_for_connect()
                return
        if not server.tls_handshake_allowed():
            # `connection_rate_limit`: refused before the handshake, in the clear
            self.close_with_error(
                "Connection throttling is active. Please try again later.",
                REASON_MAX_CONNECTIONS,
            )
            return
        # What arrives before start_tls returns (the CONNECT right after the handshake) is
        # held by the parser, so that nothing is answered on the plain transport underneath.
        self.parser.hold()
        try:
            if server.stapling_context is not None:
                # `ocsp {}`: pyOpenSSL's handshake, which staples the certificate's status
                from .tls_openssl import start_tls

                new_transport: asyncio.Transport | None = await start_tls(
                    server.loop,
                    transport,
                    self,
                    server.stapling_context,
                    handshake_timeout=opts.tls_timeout,
                )
            else:
                new_transport = await server.loop.start_tls(
                    transport,
                    self,
                    context,
                    server_side=True,
                    ssl_handshake_timeout=opts.tls_timeout,
                )
        except Exception as e:  # any handshake failure closes this connection only
            self.parser.release()
            if not self.closed:
                server.logger.error(f"{self.log_prefix} - TLS handshake error: {e}")
                self.close_connection(REASON_TLS_FAILURE, abort=True)
            return
        valid = False
        if not self.closed and new_transport is not None:
            # nats-server checks the certificate's OCSP status inside the handshake; here
            # it is checked right after, before anything the client sent is read.
            self.transport = new_transport
            valid = self.pinned_cert_valid() and await self.ocsp_peer_valid()
        held = self.parser.release()
        if self.closed or new_transport is None or not valid:
            return
        self.transport = new_transport
        self._ready_for_connect()
        if held:
            self.data_received(held)

    def pinned_cert_valid(self) -> bool:
        """`tls { pinned_certs }`: the client's certificate must be one of them, else the
        connection is closed as a failed handshake (nats-server's log lines)."""
        server = self.server
        pinned = server.options.tls_pinned_certs
        if pinned is None or self.closed:
            return True
        from .tls_options import NOT_PINNED, unpinned

        transport = self.transport
        refusal = unpinned(transport.get_extra_info("ssl_object") if transport else None, pinned)
        if refusal is None:
            return True
        server.logger.debug(f"{self.log_prefix} - {refusal}")
        server.logger.error(f"{self.log_prefix} - TLS handshake error: {NOT_PINNED}")
        self.close_connection(REASON_TLS_FAILURE, abort=True)
        return False

    async def ocsp_peer_valid(self) -> bool:
        """`tls { ocsp_peer }`: the verified client certificate's OCSP status, asked while
        reading is paused; an invalid one is refused as nats-server refuses the handshake
        (logged, closed as a TLS handshake failure). True without the option."""
        server = self.server
        cfg = server.options.tls_ocsp_peer
        verifier = server.start_ocsp_peer()
        transport = self.transport
        if cfg is None or not cfg.verify or verifier is None or transport is None:
            return True
        # None only without TLS: the check then finds no chain and refuses
        ssl_object = transport.get_extra_info("ssl_object")
        from .ocsp_peer import CLIENT_REJECT

        transport.pause_reading()
        try:
            valid = await verifier.client_valid(ssl_object, cfg)
        except Exception as e:  # a bug in the check must not leave the connection hanging
            server.logger.error(f"{self.log_prefix} - OCSP peer check failed: {e}")
            valid = False
        if self.closed:
            return False
        if not valid:
            server.logger.error(f"{self.log_prefix} - TLS handshake error: {CLIENT_REJECT}")
            self.close_connection(REASON_TLS_FAILURE, abort=True)
            return False
        transport.resume_reading()
        return True

    async def _start_after_ocsp_check(self) -> None:
        """handshake_first with `ocsp_peer`: the check, then INFO and the rest."""
        if not await self.ocsp_peer_valid() or self.closed:
            return
        server = self.server
        self.send(server.info_line(self))
        server.flush_pending()
        self._ready_for_connect()

    # -- inbound operations (called by the parser) ------------------------------------------

    def process_connect(self, arg: bytes) -> None:
        try:
            opts = json.loads(arg)
        except ValueError:
            raise ProtocolError(None) from None
        if not isinstance(opts, dict):
            raise ProtocolError(None)
        server = self.server
        if not self.rtt:  # nats-server's first estimate: from accepting to the CONNECT
            self.rtt = max(time.time() - self.start, 1e-9)
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
        self._check_proxy(opts)
        callout = server.auth_callout
        if callout is not None and self.authenticator.required:
            target = callout.config_target(opts)
            if target is not None:
                self._await_callout(opts, target)
                return
        identities: list[str] = []
        if server.options.tls_map and self.transport is not None:
            from .tls import certificate_identities

            identities = certificate_identities(self.transport.get_extra_info("peercert"))
        result, why = self.authenticator.authenticate(opts, self.nonce, identities)
        if result is None:
            from .jwt_auth import JwtAuthenticator

            if isinstance(self.authenticator, JwtAuthenticator) and opts.get("jwt"):
                # why a user JWT is refused: nats-server's debug line (its texts, mostly)
                server.logger.debug(f"{self.log_prefix} - {why}")
            server.logger.error(f"{self.log_prefix} - authentication error{_refused_login(opts)}")
            raise ProtocolError(ERR_AUTH_VIOLATION, REASON_AUTH)
        if callout is not None:
            target = callout.account_target(result)
            if target is not None:
                self._await_callout(opts, target)
                return
            result = callout.admitting(result)
        self._admit(result)

    def _check_proxy(self, opts: dict[str, Any]) -> None:
        """A `proxy_sig` (the INFO nonce signed by a proxy) must be a trusted proxy's when
        `proxies {}` lists any (ADR-55); without that list it is not looked at."""
        trusted = self.server.options.trusted_proxies
        signature = opts.get("proxy_sig")
        if not trusted or signature is None:
            return
        for key in trusted:
            if isinstance(signature, str) and verify_nonce_signature(key, self.nonce, signature):
                self.proxy_key = key
                return
        self._refuse_proxied("proxy is not trusted", "Proxy Not Trusted")

    def _refuse_proxied(self, debug: str, reason: str) -> NoReturn:
        server = self.server
        server.logger.debug(f"{self.log_prefix} - {debug}")
        opts = self.connect_opts or {}
        user = opts.get("user") or opts.get("nkey") or ""
        server.logger.error(
            f'{self.log_prefix} - "{self._client_label()}" - authentication error - '
            f"User {go_quote(str(user))}"
        )
        raise ProtocolError(ERR_AUTH_VIOLATION, reason)

    def _admit(self, result: AuthResult) -> None:
        """CONNECT succeeds as `result` says: account, permissions, limits, +OK."""
        server = self.server
        proxy_required = result.proxy_required or (result.jwt_claims or {}).get("proxy_required")
        if proxy_required and not self.proxy_key:
            self._refuse_proxied("proxy connection required", "Proxy Required")
        kind = self.connection_type
        if not connection_type_allowed(result, kind):
            server.logger.error(
                f'{self.log_prefix} - "{self._client_label()}" - authentication error - '
                f"connection type {kind} not allowed"
            )
            raise ProtocolError(ERR_AUTH_VIOLATION, REASON_AUTH)
        window_s = 0.0
        if result.jwt_limits is not None:
            window_s = self._check_jwt_limits(result.jwt_limits)
        self.user = result.user
        if result.account and result.account != self.account.name:
            server.move_client(self, result.account)
        self._label = self._connected_label()
        account = self.account
        if result.jwt_claims is not None:
            limits = self.authenticator.account_limits(account.name)
            account.max_connections = int(limits.get("conn", -1))
            account.max_subscriptions = int(limits.get("subs", -1))
            account.max_payload = int(limits.get("payload", -1))
        # The account's limits (its JWT's or its config `limits {}`), with the user JWT's:
        # nats-server's applyAccountLimits. Subscriptions and payload are this client's own.
        user_limits = result.jwt_limits or {}
        self.max_subs = jwt_users.int_limit(user_limits, "subs")
        payload = jwt_users.min_limit(
            jwt_users.int_limit(user_limits, "payload"), account.max_payload
        )
        if payload >= 0:
            self.parser.max_payload = min(self.parser.max_payload, payload)
        conn_limit = account.max_connections
        if 0 <= conn_limit < len(account.clients):
            # nats-server logs it twice: once only per server (a rate-limited statement)
            # when it refuses the account, then every time as the CONNECT's error
            text = "maximum account active connections exceeded"
            server.error_once(self.log_prefix, text)
            server.logger.error(f"{self.log_prefix} - {text}")
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
        expires = (result.jwt_claims or {}).get("exp")
        delay = -1.0
        if isinstance(expires, (int, float)) and expires > 0:
            delay = max(expires - time.time(), 0.0)
        if window_s > 0 and (delay < 0 or window_s < delay):
            delay = window_s  # the end of its connect-time window
        if delay >= 0:
            # the same timer now ends the connection when the user's JWT expires
            self._auth_timer = server.loop.call_later(delay, self._on_auth_expired)
        if not self.connected:
            self.connected = True
            self._schedule_first_ping()
            for hook in server.on_client_connect:
                hook(self)
        if self.verbose:
            self.send(OK)
        if self.subscription_limit() == 0:
            # No subscription allowed at all: nats-server says so at once and closes the
            # connection 20 ms later.
            server.loop.call_soon(self._no_subscriptions_allowed)

    def _check_jwt_limits(self, limits: dict[str, Any]) -> float:
        """A user JWT's `src` and `times` (nats-server's texts); the seconds left in its
        connect-time window (0: no window)."""
        logger = self.server.logger
        if not jwt_users.source_allowed(limits, self.host):
            logger.error(f"{self.log_prefix} - Bad src Ip {self.host}")
            raise ProtocolError(ERR_AUTH_VIOLATION, REASON_AUTH)
        allowed, window_s = jwt_users.connect_window(limits)
        if not allowed:
            logger.error(f"{self.log_prefix} - Outside connect times")
            raise ProtocolError(ERR_AUTH_VIOLATION, REASON_AUTH)
        return window_s

    @property
    def callout_type(self) -> str:
        return "websocket" if self.is_websocket else "nats"

    @property
    def connection_type(self) -> str:
        """Its name among a user's `allowed_connection_types`."""
        return "WEBSOCKET" if self.is_websocket else "STANDARD"

    @property
    def verifies_peer(self) -> bool:
        return self.server.options.tls_verify

    def _await_callout(self, connect: dict[str, Any], target: CalloutTarget) -> None:
        """The auth callout service decides: nothing after this CONNECT is read or parsed
        until it has (`finish_callout`), or it refuses, or the auth timeout passes."""
        callout = self.server.auth_callout
        assert callout is not None
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        self.parser.hold()
        if self.transport is not None:
            self.transport.pause_reading()
        self._callout = callout.start(self, connect, target)

    def finish_callout(self, result: AuthResult) -> None:
        """The service admitted this client: CONNECT completes, then what followed it."""
        self._callout = None
        if self.closed:
            return
        try:
            self._admit(result)
        except ProtocolError as e:
            self.close_with_error(e.err, e.reason)
            self.server.flush_pending()
            return
        rest = self.parser.release()
        if self.transport is not None:
            self.transport.resume_reading()
        if rest:
            self.data_received(rest)
        else:
            self.server.flush_pending()

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
        """PUB and HPUB (`hdr_len` > 0: the payload starts with the header block), counted
        in in_msgs/in_bytes by the parser, with every check; the parser routes a plain PUB
        that needs none through `publish_plain` instead."""
        account = self.account
        mappings = account.mappings
        published = subject
        if mappings is not None:  # permissions apply to where the message goes (as Go does)
            subject = mappings.apply(subject)
        pub_allowed = self.pub_allowed
        if pub_allowed is not None and hdr_len and payload.find(TRACE_DEST, 0, hdr_len) >= 0:
            if not trace_dest_permitted(self, hdr_len, payload):
                return
            if not pub_allowed.get(subject) and not self._publish_permitted(subject):
                trace_denied(self, subject, hdr_len, payload)
                return
        elif (
            pub_allowed is not None
            and not pub_allowed.get(subject)
            and not self._publish_permitted(subject)
        ):
            return
        if (self.checks or reply is not None) and not self._may_publish(published, reply):
            return
        if hdr_len and (
            payload.find(TRACE_DEST, 0, hdr_len) >= 0
            or (self.account.trace_dest and payload.find(TRACE_PARENT, 0, hdr_len) >= 0)
        ):
            delivered = route_traced(
                self, self.account, subject, reply, hdr_len, payload, published
            )
            if delivered is None:
                delivered = route_message(self, self.account, subject, reply, hdr_len, payload)
        else:
            delivered = route_message(self, self.account, subject, reply, hdr_len, payload)
        if not delivered and reply is not None and self.no_responders:
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
        result = self.account.sublist.match(reply)
        candidates = list(result.psubs)
        for group in result.qsubs:
            candidates.extend(group)
        for sub in candidates:
            if sub.client is self and sub.callback is None:
                hdr = b"NATS/1.0 503\r\nNats-Subject: %b\r\n\r\n" % subject
                self.send(b"HMSG %b %b %d %d\r\n%b\r\n" % (reply, sub.sid, len(hdr), len(hdr), hdr))
                return

    def subscription_limit(self) -> int:
        """How many subscriptions this client may hold (-1: any number): the lowest of its
        user JWT's, its account's (JWT or config `limits {}`) and the server's `max_subs`,
        each client on its own, as nats-server counts them."""
        limit = jwt_users.min_limit(self.max_subs, self.account.max_subscriptions)
        server_limit = self.server.options.max_subscriptions
        return jwt_users.min_limit(limit, server_limit if server_limit > 0 else -1)

    def _no_subscriptions_allowed(self) -> None:
        if self.closed:
            return
        self._max_subscriptions_exceeded()
        self.server.loop.call_later(0.02, self.close_connection, REASON_MAX_SUBSCRIPTIONS_EXCEEDED)

    def process_sub(self, subject: bytes, queue: bytes | None, sid: bytes) -> None:
        if not is_valid_subject(subject):
            self.send_err("Invalid Subject")
            return
        if sid in self.subs:
            if self.verbose:
                self.send(OK)
            return
        limit = self.subscription_limit()
        if limit >= 0 and len(self.subs) >= limit:
            self._max_subscriptions_exceeded()
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
                if self.server.logger.trace_enabled:
                    self._trace_delsub(sub)
        if self.verbose:
            self.send(OK)

    def _trace_delsub(self, sub: Subscription) -> None:
        """`<-> [DELSUB <sid>]`: a subscription gone by UNSUB or at close, as nats-server
        traces it."""
        sid = sub.sid.decode(errors="replace")
        self.server.logger.trace(f"{self.trace_label} - <-> [DELSUB {sid}]")

    def process_ping(self) -> None:
        self.send(PONG)
        if self.connected and self.protocol >= 1 and not self._connect_info_sent:
            self._connect_info_sent = True
            self.send(self.server.connect_info_line(self))

    # -- subscriptions ----------------------------------------------------------------------

    def _delivery_callback(self, subject: bytes) -> DeliveryCallback | None:
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
        opts = self.server.options
        interval = opts.ping_interval
        if opts.disable_short_first_ping:
            self.start_pings(interval, interval, jitter=False)
        else:
            self.start_pings(min(interval, const.FIRST_PING_INTERVAL_S), interval)

    def _on_auth_timeout(self) -> None:
        self._auth_timer = None
        if not self.closed and self.parser.awaiting_connect:
            self.close_with_error("Authentication Timeout", REASON_AUTH_TIMEOUT)

    def _on_auth_expired(self) -> None:
        self._auth_timer = None
        if not self.closed:
            self.server.logger.debug(f"{self.log_prefix} - User Authentication Expired")
            self.close_with_error("User Authentication Expired", REASON_AUTH_EXPIRED)

    # -- closing ----------------------------------------------------------------------------

    def on_closed(self) -> None:
        stage = self.parser
        if isinstance(stage, _ProxyHeaderStage):
            stage.timer.cancel()
        if self._callout is not None:
            self._callout.cancel()
            self._callout = None
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        sublist = self.account.sublist
        for sub in self.subs.values():
            sublist.remove(sub)
        self.server.unregister_client(self)
        if self.traces_delsub_on_close and self.server.logger.trace_enabled:
            for sub in self.subs.values():
                self._trace_delsub(sub)

    # -- descriptions -----------------------------------------------------------------------

    def client_info(self) -> dict[str, Any]:
        """Who this client is, in nats-server's ClientInfo shape (events, request info)."""
        from .monitor import rfc3339_seconds

        info: dict[str, Any] = {
            "start": rfc3339_seconds(self.start),
            "host": self.host,
            "id": self.cid,
            "acc": self.account.name,
        }
        if self.user:
            info["user"] = self.user
        if self.name:
            info["name"] = self.name
        if self.lang:
            info["lang"] = self.lang
        if self.version:
            info["ver"] = self.version
        return info

    @property
    def trace_label(self) -> str:
        """How nats-server names a client in its log lines once its CONNECT is taken:
        `<addr> - cid:N - "v<version>:<lang>:<name>" - "<account>/user:<user>"`, each part
        there when the CONNECT gave something for it (`_connected_label`); before, `<addr> -
        cid:N`."""
        return self._label or self.log_prefix

    @property
    def error_label(self) -> str:
        """nats-server's errors about a client name it as its trace lines do."""
        return self.trace_label

    def _connected_label(self) -> str:
        """The label of a client whose CONNECT is taken: what the client said it is (version,
        lang, name: those it gave, joined by `:`), then its account and what it logged in
        with, as nats-server reads it from the CONNECT: `nkey:<nkey>`, else `user:<user>`,
        else `jwt:<user key>`, else `token`; a client placed by `no_auth_user` is that user.
        An account of an account JWT is `<key>/<JWT name>`. Both Go-quoted."""
        from .system import account_name_tag

        label = self.log_prefix
        ident = ":".join(
            p for p in (self.version and f"v{self.version}", self.lang, self.name) if p
        )
        if ident:
            label += f" - {go_quote(ident)}"
        opts = self.connect_opts or {}

        def given(key: str) -> str:
            value = opts.get(key)
            return value if isinstance(value, str) else ""

        if nkey := given("nkey"):
            login = f"nkey:{nkey}"
        elif user := given("user"):
            login = f"user:{user}"
        elif given("jwt") and self.user:
            login = f"jwt:{self.user}"
        elif given("auth_token"):
            login = "token"
        elif self.user:
            login = f"user:{self.user}"
        else:
            return label
        account = self.account
        tag = account_name_tag(self.server, account)
        account_label = f"{account.name}/{tag}" if tag != account.name else account.name
        return f"{label} - {go_quote(f'{account_label}/{login}')}"

    def _max_subscriptions_exceeded(self) -> None:
        """`-ERR 'maximum subscriptions exceeded'`; the error is logged at most every 2 s per
        account (nats-server's maxSubLimitReportThreshold)."""
        account = self.account
        now = time.monotonic()
        if now - account.last_limit_error >= MAX_SUBS_REPORT_INTERVAL_S:
            account.last_limit_error = now
            self.server.logger.error(f"{self.error_label} - {ERR_MAX_SUBSCRIPTIONS}")
        self.send_err(ERR_MAX_SUBSCRIPTIONS)

    def _client_label(self) -> str:
        return self.name or self.version or ""

    def __repr__(self) -> str:
        return f"<ClientConnection cid={self.cid} {self.host}:{self.port}>"


def _refused_login(opts: dict[str, Any]) -> str:
    """What nats-server adds to `authentication error` about a refused CONNECT: its nkey,
    else its user, else that a token was given (never the token)."""
    for key, word in (("nkey", "Nkey"), ("user", "User")):
        value = opts.get(key)
        if isinstance(value, str) and value:
            return f" - {word} {go_quote(value)}"
    token = opts.get("auth_token")
    if isinstance(token, str) and token:
        return ' - Token "[REDACTED]"'
    return ""
