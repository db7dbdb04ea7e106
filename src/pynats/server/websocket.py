"""WebSocket clients: the listener, the HTTP/1.1 upgrade, and the transport under a client.

A socket accepted on the websocket port starts as HTTP: `WebSocketProtocol` reads the request,
`ws_upgrade.check_upgrade` decides it as nats-server's `wsUpgrade` does (the same checks in
the same order, the same HTTP status and text on failure, the same log line), and a good
request gets the 101 answer. From then on the socket carries WebSocket frames, and the connection behind
it is an ordinary `ClientConnection` (`WebSocketClient` only adds what the upgrade request
told: cookies, the websocket `authorization {}`, X-Forwarded-For): the same parser, delivery,
permissions, limits and back-pressure. Between the two sits `WebSocketTransport`: what the
client writes in one flush becomes one binary frame (`ws_frames.FrameEncoder`), and the
payloads of the frames that arrive are one byte stream fed to the client's parser
(`ws_frames.FrameDecoder`). A request to a path ending in `/leafnode` is for a leaf node:
`Server.leafnodes.new_websocket_connection(upgrade)` takes it when leaf nodes accept
connections (the hook), else it is upgraded and closed, as nats-server does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from typing import TYPE_CHECKING, Any, ClassVar, cast

from . import ws_frames
from .auth import AuthResult, ConnectAuthenticator, secret_matches
from .client import ClientConnection
from .connection import LEAF, REASON_CLIENT_CLOSED, REASON_READ_ERROR, Connection
from .ws_upgrade import (
    MAX_REQUEST_HEAD_BYTES,
    MQTT,
    HandshakeError,
    HttpError,
    OriginPolicy,
    Upgrade,
    check_upgrade,
    error_response,
    parse_request_head,
)

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable

    from .ocsp_peer import OCSPPeerConfig
    from .options import WebsocketOptions
    from .server import Server

READ_BUFFER_BYTES = 128 * 1024  # one read of a websocket socket, at most
# asyncio's handshake timeout when `handshake_timeout` is not set (the stdlib path's)
DEFAULT_SSL_HANDSHAKE_TIMEOUT_S = 60.0
ERR_DATA_BEFORE_HANDSHAKE = "client sent data before handshake is complete"

# The close frame nats-server sends for each closed-connection reason (wsEnqueueCloseMessage).
_CLOSE_STATUS = {
    "Client Closed": ws_frames.CLOSE_NORMAL,
    "Authentication Timeout": ws_frames.CLOSE_POLICY_VIOLATION,
    "Authentication Failure": ws_frames.CLOSE_POLICY_VIOLATION,
    "Slow Consumer (Pending Bytes)": ws_frames.CLOSE_POLICY_VIOLATION,
    "Slow Consumer (Write Deadline)": ws_frames.CLOSE_POLICY_VIOLATION,
    "Maximum Account Connections Exceeded": ws_frames.CLOSE_POLICY_VIOLATION,
    "Maximum Connections Exceeded": ws_frames.CLOSE_POLICY_VIOLATION,
    "Maximum Control Line Exceeded": ws_frames.CLOSE_POLICY_VIOLATION,
    "Maximum Subscriptions Exceeded": ws_frames.CLOSE_POLICY_VIOLATION,
    "Missing Account": ws_frames.CLOSE_POLICY_VIOLATION,
    "Authentication Expired": ws_frames.CLOSE_POLICY_VIOLATION,
    "Credentials Revoked": ws_frames.CLOSE_POLICY_VIOLATION,
    "TLS Handshake Failure": ws_frames.CLOSE_TLS_HANDSHAKE,
    "Parse Error": ws_frames.CLOSE_PROTOCOL_ERROR,
    "Protocol Violation": ws_frames.CLOSE_PROTOCOL_ERROR,
    "Bad Client Protocol Version": ws_frames.CLOSE_PROTOCOL_ERROR,
    "Maximum Message Payload Exceeded": ws_frames.CLOSE_MESSAGE_TOO_BIG,
    "Server Shutdown": ws_frames.CLOSE_GOING_AWAY,
    "Write Error": ws_frames.CLOSE_ABNORMAL,
    "Read Error": ws_frames.CLOSE_ABNORMAL,
    "Stale Connection": ws_frames.CLOSE_ABNORMAL,
}

# -- the listener ----------------------------------------------------------------------------


class WebsocketListener:
    """The websocket port of a server (`Server.websocket`)."""

    def __init__(self, server: Server, options: WebsocketOptions) -> None:
        self.server = server
        self.options = options
        self.port = 0
        self.tls_context: ssl.SSLContext | None = None
        self.origin_errors: list[str] = []
        self.origins = OriginPolicy.from_options(options, self.origin_errors)
        self.authenticator = WebsocketAuthenticator(server, options)
        self._listener: asyncio.base_events.Server | None = None
        # Where every socket of the port reads (see WebSocketProtocol).
        self.read_view = memoryview(bytearray(READ_BUFFER_BYTES))

    @property
    def is_tls(self) -> bool:
        return self.tls_context is not None

    @property
    def scheme(self) -> str:
        return "wss" if self.is_tls else "ws"

    async def start(self) -> None:
        """Bind and log as nats-server (`Listening for websocket clients on ws://h:p`)."""
        from .server import ServerStartError, join_host_port

        opts = self.options
        log = self.server.logger
        for problem in self.origin_errors:
            log.error(problem)
        if opts.tls is not None:
            # The client listener's context rules (verify when asked, CA, minimum version).
            from .tls import TLSConfigError, _server_context

            try:
                self.tls_context = _server_context(opts.tls, require_peer_cert=opts.tls.verify)
            except TLSConfigError as e:
                raise ServerStartError(str(e)) from None
        elif not opts.no_tls:
            raise ServerStartError("websocket requires TLS configuration")
        port = 0 if opts.port == -1 else opts.port
        loop = self.server.loop
        factory: Callable[[], asyncio.BaseProtocol] = lambda: WebSocketProtocol(self)  # noqa: E731
        tls_context = self.tls_context
        # `ocsp {}`: a stapled certificate is served through pyOpenSSL (tls_openssl.py)
        from .ocsp_staple import WEBSOCKET

        stapling = self.server.stapling_listener_context(
            WEBSOCKET, opts.tls, require_peer_cert=opts.tls is not None and opts.tls.verify
        )
        if stapling is not None:
            from .tls import follow_reloaded_context
            from .tls_openssl import listener_factory

            # each handshake takes the context of the last reload's stapling
            follow_reloaded_context(stapling, lambda: self.server.stapling_contexts.get(WEBSOCKET))

            timeout = opts.handshake_timeout or DEFAULT_SSL_HANDSHAKE_TIMEOUT_S
            factory = listener_factory(loop, stapling, factory, handshake_timeout=timeout)
            tls_context = None
        try:
            self._listener = await loop.create_server(
                factory,
                host=opts.host or None,
                port=port,
                reuse_address=True,
                backlog=1024,
                ssl=tls_context,
                ssl_handshake_timeout=(
                    (opts.handshake_timeout or None) if tls_context is not None else None
                ),
            )
        except (OSError, OverflowError) as e:
            where = join_host_port(opts.host or "0.0.0.0", port)
            errno = getattr(e, "errno", None)
            reason = (os.strerror(errno) if errno else str(e)).lower()
            raise ServerStartError(
                f"Unable to listen for websocket connections: listen tcp {where}: bind: {reason}"
            ) from None
        sockets = self._listener.sockets
        self.port = int(sockets[0].getsockname()[1]) if sockets else port
        host = opts.host or "0.0.0.0"
        log.notice(f"Listening for websocket clients on {self.scheme}://{host}:{self.port}")
        if not self.is_tls:
            log.warn("Websocket not configured with TLS. DO NOT USE IN PRODUCTION!")

    def close(self) -> None:
        """Stop accepting (shutdown, lame duck); connections already upgraded stay."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    # -- what clients and the cluster are told ----------------------------------------------

    def connect_urls(self) -> list[str]:
        """This server's websocket URLs (`host:port`) as the cluster advertises them."""
        from .server import advertised_hosts, join_host_port

        opts = self.options
        if opts.advertise:
            return [opts.advertise]
        hosts = [h for h in advertised_hosts(opts.host) if not h.startswith("127.")]
        if opts.host not in ("", "0.0.0.0", "::") or not hosts:
            hosts = [opts.host or "0.0.0.0"]
        return [join_host_port(h, self.port) for h in hosts]

    def cluster_connect_urls(self) -> list[str]:
        """Every websocket URL of the cluster, ours first (peers in lame duck left out)."""
        urls = self.connect_urls()
        cluster = self.server.cluster
        if cluster is not None:
            for peer in cluster.peers.values():
                theirs = peer.info.get("ws_connect_urls")
                if peer.info.get("ldm") or not isinstance(theirs, list):
                    continue
                urls += [str(u) for u in theirs if str(u) not in urls]
        return urls

    def client_info(self, info: dict[str, Any]) -> None:
        """Turn a client INFO into a websocket client's: the websocket address, its TLS,
        its authorization, and the cluster's websocket URLs as `connect_urls`."""
        info["host"] = self.options.host or "0.0.0.0"
        info["port"] = self.port
        if "connect_urls" in info:
            info["connect_urls"] = self.cluster_connect_urls()
        flags: dict[str, Any] = {}
        if info.get("auth_required") or self.authenticator.is_override:
            flags["auth_required"] = True
        if self.is_tls:
            flags["tls_required"] = flags["tls_available"] = True
        rebuilt: dict[str, Any] = {}
        for key, value in info.items():
            if key in ("auth_required", "tls_required", "tls_verify", "tls_available"):
                continue
            if key == "max_payload":  # where nats-server's Info struct has them
                rebuilt.update(flags)
            rebuilt[key] = value
        info.clear()
        info.update(rebuilt)

    def varz(self) -> dict[str, Any]:
        """The `websocket` section of /varz."""
        from pynats.gotime import NS_PER_S

        opts = self.options
        out: dict[str, Any] = {"host": opts.host or "0.0.0.0", "port": self.port}
        if opts.advertise:
            out["advertise"] = opts.advertise
        if opts.no_auth_user:
            out["no_auth_user"] = opts.no_auth_user
        if opts.jwt_cookie:
            out["jwt_cookie"] = opts.jwt_cookie
        if opts.handshake_timeout > 0:
            out["handshake_timeout"] = round(opts.handshake_timeout * NS_PER_S)
        if opts.auth_timeout > 0:
            out["auth_timeout"] = opts.auth_timeout
        if opts.no_tls:
            out["no_tls"] = True
        if opts.tls is not None and opts.tls.verify_and_map:
            out["tls_map"] = True
        if opts.same_origin:
            out["same_origin"] = True
        if opts.allowed_origins:
            out["allowed_origins"] = list(opts.allowed_origins)
        if opts.compression:
            out["compression"] = True
        if opts.tls is not None:
            from .tls import certificate_not_after

            not_after = certificate_not_after(opts.tls.cert_file)
            if not_after:
                out["tls_cert_not_after"] = not_after
        return out


# -- authentication --------------------------------------------------------------------------


class WebsocketAuthenticator:
    """The server's authentication, overridden by the websocket `authorization {}` block
    (user/password, token, no_auth_user) when it has one, as nats-server does."""

    def __init__(self, server: Server, options: WebsocketOptions) -> None:
        self.server = server
        self.options = options
        self.is_override = bool(options.username or options.token or options.no_auth_user)

    @property
    def base(self) -> ConnectAuthenticator:
        return self.server.authenticator

    @property
    def required(self) -> bool:
        return self.is_override or self.base.required

    @property
    def needs_nonce(self) -> bool:
        return self.base.needs_nonce

    def authenticate(
        self, connect: dict[str, Any], nonce: str = "", tls_identities: list[str] | None = None
    ) -> tuple[AuthResult | None, str]:
        opts = self.options
        if not self.is_override:
            return self.base.authenticate(connect, nonce, tls_identities)
        if opts.no_auth_user and not any(
            connect.get(k) for k in ("user", "pass", "auth_token", "nkey", "sig", "jwt")
        ):
            from .auth import Authenticator, _user_result

            base = self.base
            user = base.users.get(opts.no_auth_user) if isinstance(base, Authenticator) else None
            if user is not None:
                return _user_result(user), ""
        if opts.token:
            token = connect.get("auth_token")
            if isinstance(token, str) and secret_matches(token, opts.token):
                return AuthResult(), ""
            return None, "invalid token" if token else "no token provided"
        if opts.username:
            user_name, password = connect.get("user"), connect.get("pass")
            if (
                user_name == opts.username
                and isinstance(password, str)
                and secret_matches(password, opts.password)
            ):
                return AuthResult(user=opts.username), ""
            return None, "invalid user/password"
        return self.base.authenticate(connect, nonce, tls_identities)

    def account_limits(self, account_key: str) -> dict[str, Any]:
        return self.base.account_limits(account_key)

    def knows_account(self, name: str) -> bool:
        return self.base.knows_account(name)


# -- the connection --------------------------------------------------------------------------


class WebSocketClient(ClientConnection):
    """A client over WebSocket: a ClientConnection that knows its upgrade request."""

    is_websocket: ClassVar[bool] = True
    id_label: ClassVar[str] = "wid"

    __slots__ = ("listener", "upgrade")

    def __init__(self, server: Server, listener: WebsocketListener, upgrade: Upgrade) -> None:
        super().__init__(server)
        self.listener = listener
        self.upgrade = upgrade

    def connection_made(self, base_transport: asyncio.BaseTransport) -> None:
        """INFO at once: TLS, when there is any, was the websocket listener's."""
        self.attach(base_transport)
        server = self.server
        server.register_client(self)
        self.send(server.info_line(self))
        server.flush_pending()
        self._ready_for_connect()

    @property
    def log_prefix(self) -> str:
        prefix = super().log_prefix
        return f"{self.upgrade.client_ip}/{prefix}" if self.upgrade.client_ip else prefix

    @property
    def authenticator(self) -> ConnectAuthenticator:
        return self.listener.authenticator

    def auth_timeout(self) -> float:
        return self.listener.options.auth_timeout or super().auth_timeout()

    def process_connect(self, arg: bytes) -> None:
        """The cookies named in the websocket block stand in for credentials the CONNECT
        leaves out (each one on its own)."""
        cookies = self.upgrade.cookies
        opts = self.listener.options
        if cookies:
            try:
                connect = json.loads(arg)
            except ValueError:
                connect = None
            if isinstance(connect, dict):
                changed = False
                for key, cookie in (
                    ("jwt", opts.jwt_cookie),
                    ("user", opts.username_cookie),
                    ("pass", opts.password_cookie),
                    ("auth_token", opts.token_cookie),
                ):
                    if cookie and not connect.get(key) and cookies.get(cookie):
                        connect[key] = cookies[cookie]
                        changed = True
                if changed:
                    arg = json.dumps(connect).encode()
        super().process_connect(arg)

    def _schedule_first_ping(self) -> None:
        interval = self.listener.options.ping_interval
        if interval <= 0:
            super()._schedule_first_ping()
            return
        self.start_pings(min(interval, 2.0), interval)


# -- the socket ------------------------------------------------------------------------------


class WebSocketTransport(asyncio.Transport):
    """What a connection writes to and controls, over a WebSocket: every write is framed,
    closing sends a close frame (its status from the connection's close reason, as
    nats-server's wsEnqueueCloseMessage), everything else is the socket's."""

    def __init__(self, raw: asyncio.Transport, encoder: ws_frames.FrameEncoder) -> None:
        super().__init__()
        self.raw = raw
        self.encoder = encoder
        self.connection: Connection | None = None
        # The body of the close frame to send, when the peer's close frame or a framing
        # error already decided it.
        self.close_reply: bytes | None = None
        self.close_sent = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.close_sent or not data:
            return
        self.raw.writelines(self.encoder.encode(bytes(data)))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def send_control(self, opcode: int, payload: bytes) -> None:
        if not self.close_sent and not self.raw.is_closing():
            self.raw.write(self.encoder.control(opcode, payload))

    def close(self) -> None:
        raw = self.raw
        if not self.close_sent and not raw.is_closing():
            body = self.close_reply
            if body is None:
                reason = self.connection.reason if self.connection is not None else ""
                status = _CLOSE_STATUS.get(reason, ws_frames.CLOSE_INTERNAL_ERROR)
                body = ws_frames.close_payload(status, reason)
            raw.write(self.encoder.control(ws_frames.OP_CLOSE, body))
        self.close_sent = True
        raw.close()

    def abort(self) -> None:
        self.close_sent = True
        self.raw.abort()

    def is_closing(self) -> bool:
        return self.raw.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.raw.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self.raw.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.raw.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.raw.set_write_buffer_limits(high=high, low=low)

    def pause_reading(self) -> None:
        self.raw.pause_reading()

    def resume_reading(self) -> None:
        self.raw.resume_reading()

    def is_reading(self) -> bool:
        return self.raw.is_reading()

    def can_write_eof(self) -> bool:
        return False

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self.connection is not None
        return self.connection

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        raise NotImplementedError("a websocket connection keeps its protocol")


class WebSocketProtocol(asyncio.BufferedProtocol):
    """One accepted socket of the websocket port: HTTP until the upgrade, frames after.

    Reads land in the listener's one read buffer (`get_buffer`), which every socket of the
    port shares: each read is decoded completely before the event loop reads again, and the
    decoder keeps nothing that points into it. Unmasking then makes the only copy of the
    payload: a buffer per read would be one more large allocation per chunk (and, with
    glibc, a `brk` system call nearly as often)."""

    def __init__(self, listener: WebsocketListener) -> None:
        self.listener = listener
        self.server = listener.server
        self.raw: asyncio.Transport | None = None
        self.peer = ""
        self.connection: Connection | None = None
        self.ws_transport: WebSocketTransport | None = None
        self.decoder: ws_frames.FrameDecoder | None = None
        self._head = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        from .server import join_host_port

        self.raw = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer = join_host_port(str(peer[0]), int(peer[1]))
        timeout = self.listener.options.handshake_timeout
        if timeout > 0:
            self._timer = self.server.loop.call_later(timeout, self._on_handshake_timeout)
        tls = self.listener.options.tls
        if self.listener.is_tls and tls is not None and tls.ocsp_peer and tls.ocsp_peer.verify:
            transport.pause_reading()
            self.server.loop.create_task(self._check_ocsp_peer(transport, tls.ocsp_peer))

    async def _check_ocsp_peer(self, transport: asyncio.Transport, cfg: OCSPPeerConfig) -> None:
        """`tls { ocsp_peer }` of the websocket port: the client certificate's OCSP status,
        before the HTTP upgrade is read; refused as nats-server's HTTP server logs a failed
        handshake."""
        verifier = self.server.start_ocsp_peer()
        ssl_object = transport.get_extra_info("ssl_object")
        valid = True
        if verifier is not None:
            try:
                valid = await verifier.client_valid(ssl_object, cfg)
            except Exception as e:  # a bug in the check must not leave the socket hanging
                self.server.logger.error(f"websocket: OCSP peer check failed: {e}")
                valid = False
        if transport.is_closing():
            return
        if not valid:
            from .ocsp_peer import CLIENT_REJECT

            self.server.logger.error(
                f"websocket: TLS handshake error from {self.peer}: {CLIENT_REJECT}"
            )
            transport.abort()
            return
        transport.resume_reading()

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.listener.read_view

    def buffer_updated(self, nbytes: int) -> None:
        data = self.listener.read_view[:nbytes]
        decoder = self.decoder
        if decoder is None:
            self._handshake_data(bytes(data))
            return
        payload = decoder.feed(data)
        connection = self.connection
        assert connection is not None
        if decoder.pongs:  # ahead of what the payload makes the connection write, as Go
            self._send_pongs(decoder)
        if payload:
            connection.data_received(payload)
        if decoder.is_done:
            self._end_of_stream(decoder, connection)

    def _send_pongs(self, decoder: ws_frames.FrameDecoder) -> None:
        ws = self.ws_transport
        assert ws is not None
        for payload in decoder.pongs:
            ws.send_control(ws_frames.OP_PONG, payload)
        decoder.pongs.clear()

    def _end_of_stream(self, decoder: ws_frames.FrameDecoder, conn: Connection) -> None:
        """A close frame came (answered with ours) or the frames broke (a read error)."""
        ws = self.ws_transport
        assert ws is not None
        if conn.closed:
            return
        if decoder.close_reply is not None:
            ws.close_reply = decoder.close_reply
            conn.close_connection(REASON_CLIENT_CLOSED)
        elif decoder.error is not None:
            error = decoder.error
            self.server.logger.error(f"{conn.log_prefix} - read error: {error.text}")
            if error.status is not None:
                ws.close_reply = ws_frames.close_payload(error.status, error.text)
            conn.close_connection(REASON_READ_ERROR)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self.connection is not None:
            self.connection.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.connection is not None:
            self.connection.pause_writing()

    def resume_writing(self) -> None:
        if self.connection is not None:
            self.connection.resume_writing()

    # -- the HTTP part ----------------------------------------------------------------------

    def _handshake_data(self, data: bytes) -> None:
        raw = self.raw
        if raw is None or raw.is_closing():
            return
        buf = self._head + data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_REQUEST_HEAD_BYTES:
                    raw.write(HttpError("431 Request Header Fields Too Large").response())
                    raw.close()
                    buf = b""
                self._head = buf
                return
            head, buf = buf[:end], buf[end + 4 :]
            if self._handle_request(head, buf):
                self._head = b""
                return

    def _handle_request(self, head: bytes, rest: bytes) -> bool:
        """Answer one request; True when the socket is done with HTTP (upgraded or closed)."""
        raw = self.raw
        assert raw is not None
        log = self.server.logger
        try:
            request = parse_request_head(head)
        except HttpError as e:
            raw.write(e.response())
            raw.close()
            return True
        listener = self.listener
        try:
            upgrade = check_upgrade(
                request,
                listener.options,
                listener.origins,
                is_tls=listener.is_tls,
                mqtt_enabled=self.server.mqtt is not None,
            )
        except HandshakeError as e:
            log.error(f"{self.peer} - websocket handshake error: {e.reason}")
            raw.write(error_response(e.status, request))
            if not request.keep_alive:
                raw.close()
                return True
            return False
        if rest:
            log.error(f"{self.peer} - websocket handshake error: {ERR_DATA_BEFORE_HANDSHAKE}")
            raw.close()
            return True
        self._cancel_timer()
        raw.write(upgrade.response(listener.options.headers))
        self._start(upgrade)
        return True

    def _start(self, upgrade: Upgrade) -> None:
        """After the 101: the connection behind the frames."""
        raw = self.raw
        assert raw is not None
        server = self.server
        connection: Connection | None
        if upgrade.kind == LEAF:
            connection = self._leaf_connection(upgrade)
            if connection is None:
                server.logger.error("Not configured to accept leaf node connections")
                raw.close()
                return
        elif upgrade.kind == MQTT and server.mqtt is not None:
            connection = server.mqtt.new_websocket_connection()
        else:
            connection = WebSocketClient(server, self.listener, upgrade)
        encoder = ws_frames.FrameEncoder(
            compression=upgrade.compression,
            browser=upgrade.browser,
            no_compressed_fragments=upgrade.no_compressed_fragments,
        )
        self.decoder = ws_frames.FrameDecoder(
            masked=not upgrade.no_masking,
            compression=upgrade.compression,
            max_payload=server.options.max_payload,
        )
        ws = WebSocketTransport(raw, encoder)
        ws.connection = connection
        self.ws_transport = ws
        self.connection = connection
        connection.connection_made(ws)

    def _leaf_connection(self, upgrade: Upgrade) -> Connection | None:
        """The hook for leaf nodes over WebSocket: `Server.leafnodes` gives the connection
        when it accepts leafs (`new_websocket_connection(upgrade)`), else None."""
        leafnodes = self.server.leafnodes
        if leafnodes is None or not self.server.options.leafnodes.is_enabled():
            return None
        make = getattr(leafnodes, "new_websocket_connection", None)
        if make is None:  # leaf nodes do not take websocket connections yet
            return None
        connection: Connection | None = make(upgrade)
        return connection

    def _on_handshake_timeout(self) -> None:
        """Go's HTTP server read timeout: the socket closes without an answer."""
        self._timer = None
        if self.connection is None and self.raw is not None:
            self.raw.close()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class WebSocketDialer(asyncio.Protocol):
    """The dialling side of a WebSocket (a leaf connecting to its hub with ws:// or wss://):
    the upgrade request to `<path>/leafnode`, the 101 checked, then the connection it carries
    reads unmasked frames and writes masked ones (unless the hub agreed to `Nats-No-Masking`).
    """

    def __init__(
        self,
        server: Server,
        connection: Connection,
        *,
        host: str,
        path: str,
        compression: bool,
        no_masking: bool,
    ) -> None:
        self.server = server
        self.connection = connection
        self.host = host
        self.path = path.rstrip("/") + "/leafnode"
        self.compression = compression
        self.no_masking = no_masking
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.raw: asyncio.Transport | None = None
        self.decoder: ws_frames.FrameDecoder | None = None
        self.ws_transport: WebSocketTransport | None = None
        self.upgraded: asyncio.Future[None] = server.loop.create_future()
        self._head = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.raw = cast(asyncio.Transport, transport)
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {self.key}",
            "Sec-WebSocket-Version: 13",
        ]
        if self.compression:
            lines.append(
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                "client_no_context_takeover"
            )
        if self.no_masking:
            lines.append("Nats-No-Masking: true")
        self.raw.write(("\r\n".join(lines) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        decoder = self.decoder
        if decoder is None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > 16384:
                    self._fail("websocket upgrade response too large")
                return
            head, rest = self._head[:end], self._head[end + 4 :]
            self._head = b""
            if not self._upgrade(head):
                return
            decoder = self.decoder
            assert decoder is not None
            if not rest:
                return
            data = rest
        payload = decoder.feed(data)
        ws = self.ws_transport
        assert ws is not None
        for pong in decoder.pongs:
            ws.send_control(ws_frames.OP_PONG, pong)
        decoder.pongs.clear()
        if payload:
            self.connection.data_received(payload)
        if decoder.is_done and not self.connection.closed:
            if decoder.close_reply is not None:
                ws.close_reply = decoder.close_reply
            self.connection.close_connection(REASON_CLIENT_CLOSED)

    def _upgrade(self, head: bytes) -> bool:
        """The hub's answer to the upgrade: 101 with our accept key, and what it agreed to."""
        from .ws_upgrade import accept_key

        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if len(status) < 2 or status[1] != "101":
            self._fail(f"websocket upgrade refused: {lines[0]}")
            return False
        if headers.get("sec-websocket-accept") != accept_key(self.key):
            self._fail("websocket upgrade: invalid Sec-WebSocket-Accept")
            return False
        compressed = "permessage-deflate" in headers.get("sec-websocket-extensions", "")
        unmasked = headers.get("nats-no-masking", "").lower() == "true"
        self.decoder = ws_frames.FrameDecoder(
            masked=False, compression=compressed, max_payload=self.server.options.max_payload
        )
        encoder = ws_frames.FrameEncoder(compression=compressed, masked=not unmasked)
        assert self.raw is not None
        ws = WebSocketTransport(self.raw, encoder)
        ws.connection = self.connection
        self.ws_transport = ws
        self.connection.connection_made(ws)
        if not self.upgraded.done():
            self.upgraded.set_result(None)
        return True

    def _fail(self, text: str) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(OSError(text))
        if self.raw is not None:
            self.raw.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(OSError("connection closed during the websocket upgrade"))
        if self.ws_transport is not None:
            self.connection.connection_lost(exc)
