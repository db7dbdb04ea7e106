"""MQTT 3.1.1 clients: the listener (`mqtt {}`), and the connection that bridges them to NATS.

An MQTT connection is a `ClientConnection` (so the server counts, lists, authenticates,
limits and closes it as any client) whose wire protocol is MQTT: `mqtt_packets` decodes
what arrives, and deliveries come through the one delivery path as in-process callbacks
that frame PUBLISH packets instead of MSG lines. What needs no JetStream round trip (QoS 0
and 1 PUBLISH, PUBACK, PINGREQ) is handled while the bytes are read; the rest in order by
one task per connection (CONNECT loads or creates the session, SUBSCRIBE creates consumers,
a retained or QoS 2 message is stored first).

This module is the connection's life: the listener (also `/mqtt` on the websocket port),
CONNECT with its return codes, authentication, the session (clean or resumed, a client ID
taken over, flapping clients held), keep-alive, and the will sent when it ends.
The message flows themselves (PUBLISH, SUBSCRIBE, the deliveries) are `mqtt_messaging`'s,
the JetStream-kept state `mqtt_sessions`'.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar, cast

from . import mqtt_packets as mp
from .auth import Authenticator, AuthResult, _user_result, connection_type_allowed
from .conf.units import go_quote
from .connection import REASON_CLIENT_CLOSED, REASON_READ_ERROR, REASON_TLS_FAILURE
from .mqtt_messaging import MqttMessaging, SubInfo, pub_headers, unique_id
from .mqtt_sessions import (
    MSGS_PREFIX,
    JetStreamUnavailable,
    MqttAccount,
    Session,
    go_hash,
)
from .mqtt_topics import (
    TopicError,
    is_wildcard_first,
    subject_to_topic,
    topic_to_subject,
)
from .protocol import REASON_AUTH, REASON_PROTOCOL_VIOLATION, ProtocolError
from .websocket import WebsocketAuthenticator

if TYPE_CHECKING:
    import socket
    import ssl

    from .auth import ConnectAuthenticator
    from .auth_callout import CalloutTarget
    from .options import MqttOptions
    from .server import Server

DEFAULT_TLS_TIMEOUT_S = 2.0  # nats-server's MQTT `tls { timeout }` default
FLAPPING_JAIL_S = 1.0  # how long a client ID just taken over refuses another connection
REASON_DUPLICATE_CLIENT_ID = "Duplicate Client ID"
ERR_NOT_WEBSOCKET_PORT = (
    "MQTT clients over websocket must connect to the Websocket port, not the MQTT port"
)


# -- the listener ------------------------------------------------------------------------------


class MqttListener:
    """The MQTT port of a server (`Server.mqtt`) and the per-account MQTT state."""

    def __init__(self, server: Server, options: MqttOptions) -> None:
        self.server = server
        self.options = options
        self.port = 0
        self.tls_context: ssl.SSLContext | None = None
        # `ocsp {}`: the pyOpenSSL context serving a stapled certificate (tls_openssl.py)
        self.stapling_context: Any = None
        self.authenticator = MqttAuthenticator(server, cast(Any, options))
        self.accounts: dict[str, MqttAccount] = {}
        # translations of the topics and subjects seen lately (the hot path's, both ways)
        self.subjects: dict[str, str] = {}
        self.topics: dict[bytes, bytes] = {}
        self._listener: asyncio.base_events.Server | None = None
        self._tls_socket: socket.socket | None = None  # `tls {}`: accepted by _accept_tls
        self._accepting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind and log as nats-server (`Listening for MQTT clients on mqtt://h:p`)."""
        from .server import ServerStartError, join_host_port

        opts = self.options
        if opts.tls is not None:
            from .tls import TLSConfigError, _server_context

            require = opts.tls.verify or opts.tls.verify_and_map
            try:
                self.tls_context = _server_context(opts.tls, require_peer_cert=require)
            except TLSConfigError as e:
                raise ServerStartError(str(e)) from None
            from .ocsp_staple import MQTT

            self.stapling_context = self.server.stapling_listener_context(
                MQTT, opts.tls, require_peer_cert=require
            )
        port = 0 if opts.port == -1 else opts.port
        try:
            if self.tls_context is not None:
                # TLS: accepted here, so that the connection exists (and is logged) before
                # its handshake and a refused handshake is told as nats-server tells it
                import socket

                self._tls_socket = sock = socket.create_server(
                    (opts.host or "", port), backlog=1024
                )
                sock.setblocking(False)
                self._accepting = self.server.loop.create_task(self._accept_tls(sock))
                bound = [sock]
            else:
                self._listener = await self.server.loop.create_server(
                    lambda: MqttClient(self.server, self),
                    host=opts.host or None,
                    port=port,
                    reuse_address=True,
                    backlog=1024,
                )
                bound = list(self._listener.sockets)
        except (OSError, OverflowError) as e:
            where = join_host_port(opts.host or "0.0.0.0", port)
            errno = getattr(e, "errno", None)
            reason = (os.strerror(errno) if errno else str(e)).lower()
            raise ServerStartError(
                f"Unable to listen for MQTT connections: listen tcp {where}: bind: {reason}"
            ) from None
        self.port = int(bound[0].getsockname()[1]) if bound else port
        scheme = "tls" if self.tls_context is not None else "mqtt"
        host = opts.host or "0.0.0.0"
        self.server.logger.notice(f"Listening for MQTT clients on {scheme}://{host}:{self.port}")

    async def _accept_tls(self, listening: socket.socket) -> None:
        loop = self.server.loop
        while True:
            try:
                sock, _ = await loop.sock_accept(listening)
            except asyncio.CancelledError:
                raise
            except OSError:
                if self._tls_socket is None:
                    return
                await asyncio.sleep(0.01)  # out of descriptors: try again, as Go does
                continue
            loop.create_task(MqttClient(self.server, self).accept_tls(sock))

    def close(self) -> None:
        """Stop accepting (shutdown, lame duck); connected clients stay."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        if self._tls_socket is not None:
            self._tls_socket.close()
            self._tls_socket = None

    def shutdown(self) -> None:
        self.close()
        for account in self.accounts.values():
            account.close()
        self.accounts.clear()

    def new_websocket_connection(self) -> MqttClient:
        """An MQTT client over the websocket port (path `/mqtt`): the same connection, under
        the websocket transport."""
        return MqttClient(self.server, self, over_websocket=True)

    def account_state(self, client: MqttClient) -> MqttAccount:
        name = client.account.name
        state = self.accounts.get(name)
        if state is None:
            state = self.accounts[name] = MqttAccount(self.server, client.account)
        return state

    def varz(self) -> dict[str, Any]:
        """The `mqtt` section of /varz."""
        from pynats.gotime import NS_PER_S

        opts = self.options
        out: dict[str, Any] = {"host": opts.host or "0.0.0.0", "port": self.port}
        if opts.no_auth_user:
            out["no_auth_user"] = opts.no_auth_user
        if opts.auth_timeout > 0:
            out["auth_timeout"] = _go_number(opts.auth_timeout)
        if opts.tls is not None and opts.tls.verify_and_map:
            out["tls_map"] = True
        # always there (nats-server's default is 2 s, TLS or not)
        out["tls_timeout"] = _go_number((opts.tls.timeout if opts.tls is not None else 0) or 2)
        if opts.js_domain:
            out["js_domain"] = opts.js_domain
        if opts.ack_wait > 0:
            out["ack_wait"] = round(opts.ack_wait * NS_PER_S)
        if opts.max_ack_pending > 0:
            out["max_ack_pending"] = opts.max_ack_pending
        if opts.tls is not None:
            from .tls import certificate_not_after

            not_after = certificate_not_after(opts.tls.cert_file)
            if not_after:
                out["tls_cert_not_after"] = not_after
        return out


class MqttAuthenticator(WebsocketAuthenticator):
    """The server's authentication, overridden by the mqtt `authorization {}` block as the
    websocket one is, and with `tls { verify_and_map }` the client certificate naming the
    user (then a user name in CONNECT is refused, as nats-server refuses it)."""

    def authenticate(
        self, connect: dict[str, Any], nonce: str = "", tls_identities: list[str] | None = None
    ) -> tuple[AuthResult | None, str]:
        tls = self.options.tls
        base = self.base
        if tls is None or not tls.verify_and_map or not isinstance(base, Authenticator):
            return super().authenticate(connect, nonce, tls_identities)
        mapped = next((base.users[n] for n in tls_identities or () if n in base.users), None)
        if mapped is None:
            return None, "no user mapped from the client certificate"
        given = connect.get("user")
        if given:
            self.server.logger.warn(
                f'User "{given}" found in connect proto, but user required from cert'
            )
            return None, f'User "{mapped.username}"'
        return _user_result(mapped), ""


# -- the connection --------------------------------------------------------------------------


class _Feeder:
    """What `Connection.data_received` feeds: decodes and queues packets for the handler.
    It carries the attributes ClientConnection expects of its parser."""

    def __init__(self, client: MqttClient) -> None:
        self.client = client
        self.decoder = mp.PacketDecoder()
        self.seen_connect = False
        self.awaiting_connect = False
        self.headers_enabled = True
        self.max_payload = client.server.options.max_payload

    def feed(self, data: bytes) -> None:
        client = self.client
        if not self.seen_connect and data:
            # judged on the first byte, as nats-server does, before any length is read
            if data.startswith(b"GET ") and not client.over_websocket:
                client.fail(ERR_NOT_WEBSOCKET_PORT)
                return
            kind = data[0] & 0xF0
            if kind != mp.CONNECT << 4:
                client.fail(f"the first packet should be a CONNECT (16), got {kind}")
                return
            self.seen_connect = True
        try:
            packets = self.decoder.feed(data)
        except mp.MqttProtocolError as e:
            client.fail(str(e))
            return
        if packets:
            client.enqueue(packets)


class MqttClient(MqttMessaging):
    """An MQTT client: a ClientConnection speaking MQTT on the wire."""

    is_mqtt: ClassVar[bool] = True
    id_label: ClassVar[str] = "mid"
    callout_kind: ClassVar[str] = "Client"

    def __init__(
        self, server: Server, listener: MqttListener, *, over_websocket: bool = False
    ) -> None:
        super().__init__(server)
        self.listener = listener
        self.over_websocket = over_websocket  # came through the websocket port's `/mqtt`
        self.feeder = _Feeder(self)
        self.tracing = server.logger.trace_enabled  # -V: packets logged (mqtt_trace)
        self.parser = cast(Any, self.feeder)
        self.verbose = False
        self.pedantic = False
        self.headers = True
        self.mqtt_client_id = ""
        self.session: Session | None = None
        self.state: MqttAccount | None = None
        self.will: mp.Will | None = None
        self.keep_alive = 0
        self.filters: dict[str, SubInfo] = {}
        self.pending_acks: dict[int, str] = {}  # packet id -> the JetStream ack subject
        # QoS 2 out: PUBREL sent, PUBCOMP due (packet id -> the stored PUBREL's ack subject)
        self.pubrel_acks: dict[int, str] = {}
        # the packet id each stored message went out with, so a redelivery reuses it
        self.pids_by_message: dict[bytes, int] = {}
        self._next_pid = 0
        self._inbox: deque[mp.Packet] = deque()
        self._wake: asyncio.Event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = False  # the task is handling a packet: later ones queue behind it
        self._keep_alive_timer: asyncio.TimerHandle | None = None
        self.last_read = self.start  # keep-alive's clock: when a packet last arrived
        self._sub_info: dict[bytes, SubInfo] = {}  # sid -> the filter it serves
        self._handshaking = False  # `mqtt { tls {} }`: the TLS handshake is under way
        # an auth callout's answer awaited by CONNECT (None: refused)
        self._callout_wait: asyncio.Future[AuthResult | None] | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, base_transport: asyncio.BaseTransport) -> None:
        self.attach(base_transport)
        server = self.server
        if self._handshaking:  # accept_tls registered it already, before the handshake
            if self.closed:
                base_transport.close()
                return
        else:
            server.register_client(self)
            if server.is_over_connection_limit():
                self.close_connection("Maximum Connections Exceeded")
                return
        self._start()

    def _start(self) -> None:
        server = self.server
        self._task = server.loop.create_task(self._run())
        if self.authenticator.required:
            timeout = self.listener.options.auth_timeout or self.auth_timeout()
            self._auth_timer = server.loop.call_later(timeout, self._on_mqtt_auth_timeout)

    async def accept_tls(self, sock: socket.socket) -> None:
        """A connection on the TLS port: registered (and logged) first, then the first bytes
        peeked and judged as Go's TLS judges them (not TLS at all, nothing before the
        timeout, gone), then the handshake; a refused one is logged with nats-server's text
        (`TLS handshake error: tls: client didn't provide a certificate`) and closes the
        connection as `TLS Handshake Failure`."""
        server = self.server
        context = self.listener.tls_context
        assert context is not None
        try:
            peer = sock.getpeername()
            local = sock.getsockname()
        except OSError:
            sock.close()
            return
        self.host, self.port = str(peer[0]), int(peer[1])
        self._handshaking = True
        server.register_client(self)
        if server.is_over_connection_limit():
            sock.close()
            self.close_connection("Maximum Connections Exceeded")
            return
        server.logger.debug(f"{self.log_prefix} - Starting TLS client connection handshake")
        tls = self.listener.options.tls
        timeout = (tls.timeout if tls is not None else 0) or DEFAULT_TLS_TIMEOUT_S
        failure: Exception | None = None
        passed = False
        from .tls import peek_first_bytes

        first = await peek_first_bytes(server.loop, sock, 5, timeout)
        if first is None:
            failure = TimeoutError()
        elif not first:
            failure = ConnectionResetError()
        elif first[0] not in (0x15, 0x16) or (len(first) >= 3 and first[1] >= 0x10):
            failure = NotTLSError()
        elif not self.closed:
            passed = True  # from here the transport (or its failure) closes the socket
            stapling = self.listener.stapling_context
            try:
                if stapling is not None:
                    from .tls_openssl import accept

                    await accept(server.loop, sock, self, stapling, handshake_timeout=timeout)
                else:
                    await server.loop.connect_accepted_socket(
                        lambda: self, sock, ssl=context, ssl_handshake_timeout=timeout
                    )
            except Exception as e:  # any failure closes this connection only
                failure = e
                if isinstance(e, ConnectionError) and len(first) < 5:
                    failure = UnexpectedEOF()
        self._handshaking = False
        if failure is None:
            return  # connection_made has the TLS transport
        if not passed:
            sock.close()
        if not self.closed:
            debug, text = handshake_error(failure, local, (self.host, self.port))
            line = f"{self.log_prefix} - TLS handshake error: {text}"
            if debug:
                server.logger.debug(line)
            else:
                server.logger.error(line)
            self.close_connection(REASON_TLS_FAILURE, abort=True)

    def data_received(self, data: bytes) -> None:
        """Any packet keeps the connection alive; only a PUBLISH counts as activity in
        /connz (`last_activity`), as in nats-server."""
        self.last_read = now = time.time()
        active = self.last_activity
        super().data_received(data)
        if self.last_activity == now:
            self.last_activity = active

    @property
    def authenticator(self) -> ConnectAuthenticator:
        return cast(Any, self.listener.authenticator)

    @property
    def connection_type(self) -> str:
        """Its name among a user's `allowed_connection_types` (nats-server's)."""
        return "MQTT_WS" if self.over_websocket else "MQTT"

    def _schedule_first_ping(self) -> None:
        """MQTT clients are not sent NATS PINGs: keep-alive is theirs to drive."""

    def send_err(self, text: str) -> None:
        """MQTT has no -ERR: what would be one is logged at debug level."""
        self.server.logger.debug(f"{self.error_label} - {text}")

    def _on_mqtt_auth_timeout(self) -> None:
        self._auth_timer = None
        if not self.closed and self.session is None:
            self.close_connection("Authentication Timeout")

    # -- the packet loop -------------------------------------------------------------------

    def enqueue(self, packets: list[mp.Packet]) -> None:
        """Packets that need no JetStream round trip are handled here, while the bytes are
        read (no task switch per message); from the first one that does, in order, by the
        connection's task."""
        if not self._inbox and not self._busy and self.session is not None:
            for i, packet in enumerate(packets):
                if self.closed:
                    return
                if not self._handle_now(packet):
                    self._inbox.extend(packets[i:])
                    self._wake.set()
                    return
            return
        self._inbox.extend(packets)
        self._wake.set()

    def _handle_now(self, packet: mp.Packet) -> bool:
        """Handle `packet` synchronously if it can be; False leaves it to the task."""
        if isinstance(packet, mp.Publish):
            if packet.retain or packet.qos == 2:
                return False
            if self.tracing:
                self._trace_in(packet)
            try:
                self._publish_now(packet)
            except TopicError as e:
                self.fail(str(e))
            return True
        if isinstance(packet, mp.PacketId):
            kind = packet.kind
            if kind not in (mp.PUBACK, mp.PUBCOMP):
                return False
            if self.tracing:
                self._trace_in(packet)
            if kind == mp.PUBACK:
                self._acknowledged(packet.packet_id)
            else:
                self._completed(packet.packet_id)
            return True
        if isinstance(packet, mp.Simple) and packet.kind == mp.PINGREQ:
            if self.tracing:
                self._trace_in(packet)
            self._write(mp.PINGRESP_PACKET)
            return True
        return False

    def _trace_in(self, packet: mp.Packet) -> None:
        from . import mqtt_trace

        if isinstance(packet, mp.Connect) and not self.mqtt_client_id:
            self.mqtt_client_id = packet.client_id  # the line names the client
        label = self.error_label
        for line in mqtt_trace.incoming(packet, self.server.options.max_traced_msg_len):
            self.server.logger.trace(f"{label} - {line}")

    async def _run(self) -> None:
        server = self.server
        while not self.closed:
            if not self._inbox:
                self._wake.clear()
                await self._wake.wait()
                continue
            packet = self._inbox.popleft()
            self._busy = True
            try:
                await self._handle(packet)
            except TopicError as e:
                self.fail(str(e))
            except mp.MqttProtocolError as e:
                self.fail(str(e))
            except JetStreamUnavailable as e:
                self.fail(f"unable to process: {e}")
            except Exception:
                import traceback

                server.logger.error(
                    f"{self.log_prefix} - internal error processing MQTT packet:\n"
                    f"{traceback.format_exc()}"
                )
                self.close_connection("Internal Client")
            self._busy = False
            server.flush_pending()

    async def _handle(self, packet: mp.Packet) -> None:
        if self.tracing:
            self._trace_in(packet)
        if isinstance(packet, mp.Connect):
            await self._connect(packet)
            return
        if self.session is None:
            raise mp.MqttProtocolError("the first packet should be a CONNECT (16), got other")
        if isinstance(packet, mp.Publish):
            await self._publish(packet)
        elif isinstance(packet, mp.PacketId):
            pid = packet.packet_id
            if packet.kind == mp.PUBACK:
                self._acknowledged(pid)
            elif packet.kind == mp.PUBREC:
                self._received(pid)
            elif packet.kind == mp.PUBCOMP:
                self._completed(pid)
            elif packet.kind == mp.PUBREL:
                await self._release(pid)
        elif isinstance(packet, mp.Subscribe):
            await self._subscribe(packet)
        elif isinstance(packet, mp.Unsubscribe):
            await self._unsubscribe(packet)
        elif packet.kind == mp.PINGREQ:
            self._write(mp.PINGRESP_PACKET)
        elif packet.kind == mp.DISCONNECT:
            self.will = None  # a clean disconnect drops the will [MQTT-3.1.2-8]
            self.close_connection(REASON_CLIENT_CLOSED)

    # -- CONNECT -----------------------------------------------------------------------------

    async def _connect(self, c: mp.Connect) -> None:
        server = self.server
        if self.session is not None or self.connected:
            raise mp.MqttProtocolError("received a second CONNECT packet")
        if c.level != mp.PROTOCOL_LEVEL or c.protocol_name != "MQTT":
            server.logger.error(f"{self.error_label} - unacceptable protocol version of {c.level}")
            self._refuse(mp.UNACCEPTABLE_PROTOCOL_VERSION, REASON_PROTOCOL_VIOLATION)
            return
        self.mqtt_client_id = c.client_id
        if not c.client_id:
            if not c.clean_session:
                self._refuse(mp.IDENTIFIER_REJECTED, REASON_PROTOCOL_VIOLATION)
                return
            self.mqtt_client_id = unique_id()
        password = c.password.decode(errors="replace") if c.password is not None else None
        connect: dict[str, Any] = {}
        if c.username is not None:
            connect["user"] = c.username
        if password is not None:  # the password is also the token and the user JWT
            connect["pass"] = password
            connect["auth_token"] = password
            connect["jwt"] = password  # (a bearer one: MQTT has no nonce to sign)
        self.connect_opts = connect
        callout = server.auth_callout
        if callout is not None and self.authenticator.required:
            target = callout.config_target(connect)
            if target is not None:
                await self._connect_by_callout(c, connect, target)
                return
        identities: list[str] = []
        tls = self.listener.options.tls
        if tls is not None and tls.verify_and_map and self.transport is not None:
            # `tls { verify_and_map }`: the client certificate names the user
            from .tls import certificate_identities

            identities = certificate_identities(self.transport.get_extra_info("peercert"))
        result, why = self.authenticator.authenticate(connect, "", identities)
        if result is not None and not connection_type_allowed(result, self.connection_type):
            result = None  # `allowed_connection_types` without MQTT: a failed login
        if result is None:
            detail = ""
            if why.startswith('User "'):
                detail = f" - {why}"
            elif c.username:
                detail = f' - User "{c.username}"'
            server.logger.error(f"{self.error_label} - authentication error{detail}")
            server.logger.error(f"{self.error_label} - unable to connect: authentication error")
            self._refuse(mp.NOT_AUTHORIZED, REASON_AUTH)
            return
        if callout is not None:
            target = callout.account_target(result)
            if target is not None:  # operator mode: the account's callout decides
                await self._connect_by_callout(c, connect, target)
                return
            result = callout.admitting(result)
        await self._connected(c, result)

    async def _connect_by_callout(
        self, c: mp.Connect, connect: dict[str, Any], target: CalloutTarget
    ) -> None:
        """The auth callout service decides (its request names an MQTT client: `"type":
        "mqtt"`, `"mqtt_id"`); refused or unanswered, CONNACK 5."""
        callout = self.server.auth_callout
        assert callout is not None
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        decided: asyncio.Future[AuthResult | None] = self.server.loop.create_future()
        self._callout_wait = decided
        self._callout = callout.start(_CalloutParty(self, decided), connect, target)
        if self._callout is None and not decided.done():
            decided.set_result(None)
        result = await decided
        self._callout = None
        self._callout_wait = None
        if self.closed:
            return
        if result is None:
            self.server.logger.error(
                f"{self.error_label} - unable to connect: authentication error"
            )
            self._refuse(mp.NOT_AUTHORIZED, REASON_AUTH)
            return
        await self._connected(c, result)

    async def _connected(self, c: mp.Connect, result: AuthResult) -> None:
        """Authenticated as `result`: admitted to its account, then the session."""
        server = self.server
        try:
            self._admit(result)
        except ProtocolError:
            server.logger.error(f"{self.error_label} - unable to connect: authentication error")
            self._refuse(mp.NOT_AUTHORIZED, REASON_AUTH)
            return
        state = self.listener.account_state(self)
        if state.is_flapping(self.mqtt_client_id):
            # a client ID taken over less than a second ago: held for a second, then closed,
            # so that two clients reconnecting with one ID do not flap as fast as they can
            await asyncio.sleep(FLAPPING_JAIL_S)
            server.logger.error(f"{self.error_label} - unable to connect: connection closed")
            self.close_connection(REASON_DUPLICATE_CLIENT_ID)
            return
        try:
            await state.ready()
            session_present = await self._take_session(state, c.clean_session)
        except JetStreamUnavailable as e:
            # no CONNACK: nats-server ends the connection on this error
            server.logger.error(f"{self.error_label} - unable to connect: {e}")
            self.close_connection(REASON_PROTOCOL_VIOLATION)
            return
        if self.closed:
            return
        self.state = state
        self.will = c.will
        self.keep_alive = c.keep_alive
        self._write(mp.connack(session_present, mp.ACCEPTED))
        if self.keep_alive:
            self._arm_keep_alive()
        if session_present:
            await self._resume_subscriptions()

    def _refuse(self, code: int, reason: str) -> None:
        self._write(mp.connack(False, code))
        self.close_connection(reason)

    async def _take_session(self, state: MqttAccount, clean: bool) -> bool:
        """Bind this connection to its client ID's session; True when one was resumed."""
        cid = self.mqtt_client_id
        existing = await state.load_session(cid)
        if existing is not None and existing.connection is not None:
            old = existing.connection
            self.server.logger.warn(
                f"{self.error_label} - Replacing old client {go_quote(old.error_label)} since "
                f'both have the same client ID "{cid}"'
            )
            existing.connection = self  # the old one closes without forgetting the session
            old.will = None  # nor sending its will
            state.flappers[cid] = time.monotonic()
            old.close_connection(REASON_DUPLICATE_CLIENT_ID)
        if clean:
            if existing is not None:
                await state.clear(existing)
            session = Session(cid, True)
            state.sessions[cid] = session
            session.connection = self
            self.session = session
            await state.persist(session)
            return False
        if existing is not None and not existing.clean:
            existing.connection = self
            self.session = existing
            return True
        if existing is not None:
            await state.clear(existing)
        session = Session(cid, False)
        state.sessions[cid] = session
        session.connection = self
        self.session = session
        await state.persist(session)
        return False

    async def _resume_subscriptions(self) -> None:
        """A persistent session's subscriptions, live again (their consumers kept what was
        published meanwhile, and deliver it now)."""
        session = self.session
        assert session is not None
        for subject, qos in session.subs.items():
            # `x` beside `x.>` is the parent level of the one filter `x/#`
            parent_of = subject + ".>"
            parent_level = parent_of in session.subs
            info = self._info_for_subject(parent_of if parent_level else subject, qos)
            self._add_nats_sub(info, subject, parent_level=parent_level)
            config = session.cons.get(subject)
            if config is not None:
                self._bind_consumer(info, config)
        if session.pubrel is not None:
            self._bind_pubrel(session.pubrel)

    def _info_for_subject(self, subject: str, qos: int) -> SubInfo:
        topic_filter = subject_to_topic(subject.replace("*", "+").replace(">", "#"))
        info = self.filters.get(topic_filter)
        if info is None:
            info = self.filters[topic_filter] = SubInfo(qos, is_wildcard_first(topic_filter))
        return info

    # -- keep-alive --------------------------------------------------------------------------

    def _arm_keep_alive(self) -> None:
        limit = self.keep_alive * 1.5
        due = self.last_read + limit - time.time()
        self._keep_alive_timer = self.server.loop.call_later(max(due, 0.0), self._check_alive)

    def _check_alive(self) -> None:
        self._keep_alive_timer = None
        if self.closed:
            return
        if time.time() - self.last_read >= self.keep_alive * 1.5:
            # nats-server's read deadline: the connection ends as a read error
            self.server.logger.debug(f"{self.error_label} - keep-alive expired")
            self.close_connection(REASON_READ_ERROR)
            self.server.flush_pending()
            return
        self._arm_keep_alive()

    # -- closing -----------------------------------------------------------------------------

    def on_closed(self) -> None:
        wait = self._callout_wait
        if wait is not None and not wait.done():
            wait.set_result(None)
        if self._keep_alive_timer is not None:
            self._keep_alive_timer.cancel()
            self._keep_alive_timer = None
        if self.tracing:
            for sub in self.subs.values():
                self._trace_delsub(sub)
        super().on_closed()
        self._wake.set()
        session, state, will = self.session, self.state, self.will
        self.will = None
        if session is None or state is None:
            return
        if session.connection is self:
            session.connection = None
        if will is not None:
            self._publish_will(state, will)
        if session.clean and session.connection is None:
            self.server.loop.create_task(self._forget(state, session))

    async def _forget(self, state: MqttAccount, session: Session) -> None:
        try:
            await state.clear(session)
        except JetStreamUnavailable as e:
            self.server.logger.error(f"{self.error_label} - {e}")

    def _publish_will(self, state: MqttAccount, will: mp.Will) -> None:
        try:
            subject = topic_to_subject(will.topic)
        except TopicError:
            return
        topic = will.topic
        mappings = self.account.mappings
        if mappings is not None:
            mapped = mappings.apply(subject.encode()).decode()
            if mapped != subject:
                subject, topic = mapped, subject_to_topic(mapped)
        self.publish_message(subject, will.message, will.qos)
        self.server.flush_soon()

        async def store() -> None:
            try:
                if will.qos:
                    await state.request(
                        "MS", MSGS_PREFIX + subject, will.message, pub_headers(will.qos)
                    )
                if will.retain:
                    await state.retain(subject, topic, will.message, will.qos)
            except JetStreamUnavailable as e:
                self.server.logger.error(f"{self.error_label} - will not stored: {e}")

        if will.qos or will.retain:
            self.server.loop.create_task(store())

    def __repr__(self) -> str:
        return f"{self.log_prefix} - {self.mqtt_client_id!r}"


class _CalloutParty:
    """An MQTT CONNECT as the auth callout sees it (auth_callout.CalloutParty): the client,
    named as nats-server's MQTT errors name it, whose CONNECT task awaits `decided` (the
    result, or None when refused) instead of being closed or admitted by the service."""

    callout_kind = "Client"
    callout_type = "mqtt"

    def __init__(self, client: MqttClient, decided: asyncio.Future[AuthResult | None]) -> None:
        self.client = client
        self.decided = decided

    @property
    def server(self) -> Server:
        return self.client.server

    @property
    def host(self) -> str:
        return self.client.host

    @property
    def cid(self) -> int:
        return self.client.cid

    @property
    def transport(self) -> Any:
        return self.client.transport

    @property
    def closed(self) -> bool:
        return self.client.closed or self.decided.done()

    @property
    def log_prefix(self) -> str:
        return self.client.error_label

    @property
    def connect_opts(self) -> dict[str, Any] | None:
        return self.client.connect_opts

    @property
    def nonce(self) -> str:
        return ""

    @property
    def mqtt_id(self) -> str:
        return self.client.mqtt_client_id

    @property
    def verifies_peer(self) -> bool:
        tls = self.client.listener.options.tls
        return tls is not None and bool(tls.verify or tls.verify_and_map)

    def close_with_error(self, err: str | None, reason: str) -> None:
        if not self.decided.done():
            self.decided.set_result(None)

    def finish_callout(self, result: AuthResult) -> None:
        if not self.decided.done():
            self.decided.set_result(result)


class NotTLSError(Exception):
    """The first bytes on the TLS port are not a TLS record."""


class UnexpectedEOF(Exception):
    """The client went away in the middle of a TLS record."""


def handshake_error(
    e: Exception | None, local: tuple[str, int] | None, peer: tuple[str, int]
) -> tuple[bool, str]:
    """A failed server-side TLS handshake as nats-server (Go's crypto/tls) tells it:
    (logged at debug level only, the text). A connection that is not TLS at all, or says
    nothing until the timeout, is debug; a refused certificate or a client gone is an error."""
    import ssl

    from .tls import TLSHandshakeError

    if isinstance(e, TLSHandshakeError):  # the stapling layer's: OpenSSL's reason
        text = str(e)
        if "did not return a certificate" in text:
            return False, "tls: client didn't provide a certificate"
        if "taking longer than" in text:
            here = f"{local[0]}:{local[1]}" if local else "-"
            return True, f"read tcp {here}->{peer[0]}:{peer[1]}: i/o timeout"
        if "certificate verify failed" in text:
            return (
                False,
                "tls: failed to verify certificate: x509: certificate signed by unknown authority",
            )
        return False, text
    if isinstance(e, NotTLSError):
        return True, "tls: first record does not look like a TLS handshake"
    if isinstance(e, UnexpectedEOF):
        return False, "unexpected EOF"
    if isinstance(e, ConnectionAbortedError | TimeoutError):  # `tls { timeout }`
        here = f"{local[0]}:{local[1]}" if local else "-"
        return True, f"read tcp {here}->{peer[0]}:{peer[1]}: i/o timeout"
    if isinstance(e, ssl.SSLCertVerificationError):
        if e.verify_code in (10, 9):  # expired, not yet valid
            return (
                False,
                "tls: failed to verify certificate: x509: certificate has expired or is not yet valid",
            )
        return (
            False,
            "tls: failed to verify certificate: x509: certificate signed by unknown authority",
        )
    if isinstance(e, ssl.SSLError):
        reason = e.reason or ""
        if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
            return False, "tls: client didn't provide a certificate"
        if reason in (
            "WRONG_VERSION_NUMBER",
            "HTTP_REQUEST",
            "HTTPS_PROXY_REQUEST",
            "UNKNOWN_PROTOCOL",
        ):
            return True, "tls: first record does not look like a TLS handshake"
        if reason in ("UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION"):
            return False, "tls: client offered only unsupported versions"
        if reason == "NO_SHARED_CIPHER":
            return False, "tls: no cipher suite supported by both client and server"
        return False, str(e)
    if isinstance(e, ConnectionError):  # gone before (or in the middle of) its hello
        return False, "EOF"
    return False, str(e)


def _go_number(seconds: float) -> float | int:
    """A float64 as Go's JSON writes it (3, not 3.0)."""
    return int(seconds) if float(seconds).is_integer() else seconds


__all__ = ["MqttClient", "MqttListener", "go_hash"]
