"""MQTT 3.1.1 clients: the listener (`mqtt {}`), and the connection that bridges them to NATS.

An MQTT connection is a `ClientConnection` (so the server counts, lists, authenticates,
limits and closes it as any client) whose wire protocol is MQTT: `mqtt_packets` decodes
what arrives, and deliveries come through the one delivery path as in-process callbacks
that frame PUBLISH packets instead of MSG lines. Packets are handled in order by one task
per connection, because some of them wait for JetStream (CONNECT loads the session, a QoS 1
PUBLISH is acknowledged once stored, SUBSCRIBE creates consumers).

The bridge, as nats-server builds it: a PUBLISH on `a/b` is routed on `a.b` (mqtt_topics)
with the header `Nmqtt-Pub: <qos>`; a QoS >= 1 one is also stored in `$MQTT_msgs`, and a
retained one in `$MQTT_rmsgs` (mqtt_sessions). Each subscription filter is a NATS
subscription (two for `x/#`), which delivers at QoS 0; a QoS >= 1 subscription also has a
durable JetStream consumer on `$MQTT.msgs.<subject>` that delivers the QoS 1 messages (the
NATS subscription then skips them), acknowledged by the client's PUBACK.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar, cast

from . import mqtt_packets as mp
from .client import ClientConnection
from .conf.units import go_quote
from .connection import REASON_CLIENT_CLOSED, REASON_READ_ERROR
from .delivery import route_message
from .mqtt_sessions import (
    DELIVER_PREFIX,
    MSGS_PREFIX,
    OUT_STREAM,
    PUBREL_DELIVER_PREFIX,
    PUBREL_PREFIX,
    QOS2_IN_PREFIX,
    QOS2_IN_STREAM,
    JetStreamUnavailable,
    MqttAccount,
    Session,
    go_hash,
    nats_header_qos,
)
from .mqtt_topics import (
    TopicError,
    filter_to_subjects,
    is_wildcard_first,
    subject_to_topic,
    topic_to_subject,
)
from .protocol import REASON_AUTH, REASON_MAX_PAYLOAD, REASON_PROTOCOL_VIOLATION, ProtocolError
from .subjects import subject_matches
from .sublist import Subscription
from .websocket import WebsocketAuthenticator

if TYPE_CHECKING:
    import ssl

    from .auth import ConnectAuthenticator
    from .options import MqttOptions
    from .server import Server

DEFAULT_ACK_WAIT_S = 30.0
TRANSLATIONS_KEPT = 4096  # topics (and subjects) whose translation is remembered
DEFAULT_MAX_ACK_PENDING = 1024
MAX_ACK_PENDING_TOTAL = 0xFFFF  # a session's packet identifiers
FLAPPING_JAIL_S = 1.0  # how long a client ID just taken over refuses another connection
REASON_DUPLICATE_CLIENT_ID = "Duplicate Client ID"
ERR_NOT_WEBSOCKET_PORT = (
    "MQTT clients over websocket must connect to the Websocket port, not the MQTT port"
)
ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _unique_id(n: int = 22) -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(n))


# -- the listener ------------------------------------------------------------------------------


class MqttListener:
    """The MQTT port of a server (`Server.mqtt`) and the per-account MQTT state."""

    def __init__(self, server: Server, options: MqttOptions) -> None:
        self.server = server
        self.options = options
        self.port = 0
        self.tls_context: ssl.SSLContext | None = None
        self.authenticator = WebsocketAuthenticator(server, cast(Any, options))
        self.accounts: dict[str, MqttAccount] = {}
        # translations of the topics and subjects seen lately (the hot path's, both ways)
        self.subjects: dict[str, str] = {}
        self.topics: dict[bytes, bytes] = {}
        self._listener: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        """Bind and log as nats-server (`Listening for MQTT clients on mqtt://h:p`)."""
        from .server import ServerStartError, join_host_port

        opts = self.options
        if opts.tls is not None:
            from .tls import TLSConfigError, _server_context

            try:
                self.tls_context = _server_context(opts.tls, require_peer_cert=opts.tls.verify)
            except TLSConfigError as e:
                raise ServerStartError(str(e)) from None
        port = 0 if opts.port == -1 else opts.port
        try:
            self._listener = await self.server.loop.create_server(
                lambda: MqttClient(self.server, self),
                host=opts.host or None,
                port=port,
                reuse_address=True,
                backlog=1024,
                ssl=self.tls_context,
            )
        except (OSError, OverflowError) as e:
            where = join_host_port(opts.host or "0.0.0.0", port)
            errno = getattr(e, "errno", None)
            reason = (os.strerror(errno) if errno else str(e)).lower()
            raise ServerStartError(
                f"Unable to listen for MQTT connections: listen tcp {where}: bind: {reason}"
            ) from None
        sockets = self._listener.sockets
        self.port = int(sockets[0].getsockname()[1]) if sockets else port
        scheme = "tls" if self.tls_context is not None else "mqtt"
        host = opts.host or "0.0.0.0"
        self.server.logger.notice(f"Listening for MQTT clients on {scheme}://{host}:{self.port}")

    def close(self) -> None:
        """Stop accepting (shutdown, lame duck); connected clients stay."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None

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


class _SubInfo:
    """One SUBSCRIBE filter of the connection: its NATS subscriptions and consumers."""

    __slots__ = ("consumers", "qos", "reserved", "subs")

    def __init__(self, qos: int, reserved: bool) -> None:
        self.qos = qos
        self.reserved = reserved
        self.subs: list[Subscription] = []
        self.consumers: list[tuple[str, Subscription]] = []  # (durable, deliver-subject sub)


class MqttClient(ClientConnection):
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
        self.parser = cast(Any, self.feeder)
        self.verbose = False
        self.pedantic = False
        self.headers = True
        self.mqtt_client_id = ""
        self.session: Session | None = None
        self.state: MqttAccount | None = None
        self.will: mp.Will | None = None
        self.keep_alive = 0
        self.filters: dict[str, _SubInfo] = {}
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
        self._last_sid = 0
        self.last_read = self.start  # keep-alive's clock: when a packet last arrived
        self._sub_info: dict[bytes, _SubInfo] = {}  # sid -> the filter it serves

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, base_transport: asyncio.BaseTransport) -> None:
        self.attach(base_transport)
        server = self.server
        server.register_client(self)
        if server.is_over_connection_limit():
            self.close_connection("Maximum Connections Exceeded")
            return
        self._task = server.loop.create_task(self._run())
        if self.authenticator.required:
            timeout = self.listener.options.auth_timeout or self.auth_timeout()
            self._auth_timer = server.loop.call_later(timeout, self._on_mqtt_auth_timeout)

    @property
    def authenticator(self) -> ConnectAuthenticator:
        return cast(Any, self.listener.authenticator)

    @property
    def error_label(self) -> str:
        """nats-server names the client ID once a CONNECT was read."""
        if not self.feeder.seen_connect:
            return self.log_prefix
        return f'{self.log_prefix} - "{self.mqtt_client_id}"'

    def _schedule_first_ping(self) -> None:
        """MQTT clients are not sent NATS PINGs: keep-alive is theirs to drive."""

    def send_err(self, text: str) -> None:
        """MQTT has no -ERR: what would be one is logged at debug level."""
        self.server.logger.debug(f"{self.error_label} - {text}")

    def _on_mqtt_auth_timeout(self) -> None:
        self._auth_timer = None
        if not self.closed and self.session is None:
            self.close_connection("Authentication Timeout")

    def fail(self, text: str) -> None:
        """A protocol error: logged as nats-server logs it, and the connection closed."""
        if self.closed:
            return
        self.server.logger.error(f"{self.error_label} - {text}")
        self.close_connection(REASON_PROTOCOL_VIOLATION)

    def _write(self, data: bytes) -> None:
        self.out.append(data)
        if not self.flush_queued:
            self.flush_queued = True
            self.server.pending_flush.append(self)

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
            try:
                self._publish_now(packet)
            except TopicError as e:
                self.fail(str(e))
            return True
        if isinstance(packet, mp.PacketId):
            kind = packet.kind
            if kind == mp.PUBACK:
                self._acknowledged(packet.packet_id)
                return True
            if kind == mp.PUBCOMP:
                self._completed(packet.packet_id)
                return True
            return False
        if isinstance(packet, mp.Simple) and packet.kind == mp.PINGREQ:
            self._write(mp.PINGRESP_PACKET)
            return True
        return False

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
            self._refuse(mp.UNACCEPTABLE_PROTOCOL_VERSION, REASON_PROTOCOL_VIOLATION)
            return
        self.mqtt_client_id = c.client_id
        if not c.client_id:
            if not c.clean_session:
                self._refuse(mp.IDENTIFIER_REJECTED, REASON_PROTOCOL_VIOLATION)
                return
            self.mqtt_client_id = _unique_id()
        password = c.password.decode(errors="replace") if c.password is not None else None
        connect: dict[str, Any] = {}
        if c.username is not None:
            connect["user"] = c.username
        if password is not None:  # the password is also the token (a user name is not)
            connect["pass"] = password
            connect["auth_token"] = password
        self.connect_opts = connect
        result, why = self.authenticator.authenticate(connect, "", [])
        if result is None:
            detail = f" - {why}" if why and c.username else ""
            if c.username:
                detail = f' - User "{c.username}"'
            server.logger.error(f"{self.error_label} - authentication error{detail}")
            server.logger.error(f"{self.error_label} - unable to connect: authentication error")
            self._refuse(mp.NOT_AUTHORIZED, REASON_AUTH)
            return
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
            info = self._info_for_subject(subject, qos)
            self._add_nats_sub(info, subject)
            config = session.cons.get(subject)
            if config is not None:
                self._bind_consumer(info, config)
        if session.pubrel is not None:
            self._bind_pubrel(session.pubrel)

    def _info_for_subject(self, subject: str, qos: int) -> _SubInfo:
        topic_filter = subject_to_topic(subject.replace("*", "+").replace(">", "#"))
        info = self.filters.get(topic_filter)
        if info is None:
            info = self.filters[topic_filter] = _SubInfo(qos, is_wildcard_first(topic_filter))
        return info

    # -- keep-alive --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Any packet keeps the connection alive; only a PUBLISH counts as activity in
        /connz (`last_activity`), as in nats-server."""
        self.last_read = now = time.time()
        active = self.last_activity
        super().data_received(data)
        if self.last_activity == now:
            self.last_activity = active

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

    # -- PUBLISH -----------------------------------------------------------------------------

    def _count_publish(self, p: mp.Publish) -> str | None:
        """Count a PUBLISH as nats-server does (the NATS message, header block and payload,
        less the two bytes of a line end; it is what makes the client "active") and return
        the subject it goes to (the account's mappings applied), or None when it is over
        `max_payload` (the client is closed, as nats-server does)."""
        subjects = self.listener.subjects
        subject = subjects.get(p.topic)
        if subject is None:
            if len(subjects) >= TRANSLATIONS_KEPT:
                subjects.clear()
            subject = subjects[p.topic] = topic_to_subject(p.topic)
        size = len(_pub_headers(p.qos)) + len(p.payload)
        max_payload = self.parser.max_payload
        if size > max_payload:
            self.server.logger.error(
                f"{self.error_label} - maximum payload exceeded: {size} vs {max_payload}"
            )
            self.close_connection(REASON_MAX_PAYLOAD)
            return None
        self.in_msgs += 1
        self.in_bytes += size - 2
        self.last_activity = time.time()
        mappings = self.account.mappings
        if mappings is not None:
            subject = mappings.apply(subject.encode()).decode()
        return subject

    def _publish_now(self, p: mp.Publish) -> None:
        """QoS 0 and 1 without retain, handled while the bytes are read: routed at once; a
        QoS 1 one is stored without waiting, and its PUBACK goes out when JetStream has it
        (stores are acknowledged in order, so PUBACKs keep the PUBLISH order)."""
        subject = self._count_publish(p)
        if subject is None:
            return
        if not self._may_publish_to(subject.encode()):
            if p.qos:
                self._write(mp.packet_id(mp.PUBACK, p.packet_id))
            return
        self.publish_message(subject, p.payload, p.qos)
        if p.qos:
            state = self.state
            assert state is not None
            pid = p.packet_id
            state.store(
                MSGS_PREFIX + subject,
                p.payload,
                _pub_headers(p.qos),
                lambda error: self._stored(pid, error),
            )

    def _stored(self, pid: int, error: str) -> None:
        if self.closed:
            return
        if error:
            self.server.logger.error(
                f"{self.error_label} - JetStream failed a pipelined QoS1/2 operation "
                f"(pi={pid}): {error}; closing the connection"
            )
            self.close_connection(REASON_PROTOCOL_VIOLATION)
        else:
            self._write(mp.packet_id(mp.PUBACK, pid))
        self.server.flush_soon()

    async def _publish(self, p: mp.Publish) -> None:
        opts = self.listener.options
        if p.qos == 2 and opts.reject_qos2_publish:
            self.fail("QoS=2 is disabled for PUBLISH messages")
            return
        if p.qos < 2 and not p.retain:
            self._publish_now(p)
            return
        subject = self._count_publish(p)
        if subject is None:
            return
        session = self.session
        assert session is not None
        if p.qos == 2:
            # QoS 2 in, step 1: held (a resent PUBLISH with the same id is the same message)
            # until PUBREL releases it, in memory and in $MQTT_qos2in (for a reconnect)
            if p.packet_id not in session.qos2_incoming:
                session.qos2_incoming[p.packet_id] = (subject, p)
                state = self.state
                assert state is not None
                flags = (p.qos << 1) | (0x01 if p.retain else 0) | (0x08 if p.dup else 0)
                headers = b"NATS/1.0\r\nNmqtt-Pub:%d%d\r\nNmqtt-Subject:%b\r\n\r\n" % (
                    p.qos,
                    flags,
                    subject.encode(),
                )
                state.store(self._qos2_in_subject(p.packet_id), p.payload, headers, _ignore)
            self._write(mp.packet_id(mp.PUBREC, p.packet_id))
            return
        await self._deliver_published(subject, p)
        if p.qos == 1:
            self._write(mp.packet_id(mp.PUBACK, p.packet_id))

    def _qos2_in_subject(self, pid: int) -> str:
        return f"{QOS2_IN_PREFIX}{self.mqtt_client_id}.{pid}"

    async def _release(self, pid: int) -> None:
        """QoS 2 in, step 3: PUBREL: the held message goes out (once), then PUBCOMP. One
        held by an earlier connection of the session is read back from $MQTT_qos2in."""
        session = self.session
        state = self.state
        assert session is not None and state is not None
        held = session.qos2_incoming.pop(pid, None)
        stored_as = self._qos2_in_subject(pid)
        if held is None:
            stored = await state.load_last(QOS2_IN_STREAM, stored_as)
            if stored is not None:
                headers, payload = stored
                subject = headers.get("Nmqtt-Subject", "")
                flags = headers.get("Nmqtt-Pub", "2")[1:]
                retain = bool(int(flags or "0") & 0x01)
                if subject:
                    topic = subject_to_topic(subject)
                    held = (subject, mp.Publish(topic, payload, 2, retain, False, pid))
        if held is not None:
            await self._deliver_published(*held)
            await state.purge(QOS2_IN_STREAM, stored_as)
        self._write(mp.packet_id(mp.PUBCOMP, pid))

    def _received(self, pid: int) -> None:
        """QoS 2 out, step 2: PUBREC: the stored message is done with; the PUBREL to send is
        stored in $MQTT_out and comes back through the session's PUBREL consumer."""
        self._acknowledged(pid)
        session, state = self.session, self.state
        if session is None or state is None or session.pubrel is None:
            self._write(mp.packet_id(mp.PUBREL, pid))
            return
        headers = b"NATS/1.0\r\nNmqtt-PubRel:%d\r\n\r\n" % pid
        state.store(PUBREL_PREFIX + session.hash, b"", headers, _ignore)

    def _completed(self, pid: int) -> None:
        """QoS 2 out, step 4: PUBCOMP: the stored PUBREL is acknowledged."""
        ack = self.pubrel_acks.pop(pid, None)
        if ack and self.state is not None:
            self.state.client.publish(ack, b"")

    def _deliver_pubrel(
        self,
        sub: Subscription,
        publisher: Any,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        at = headers.find(b"Nmqtt-PubRel:")
        if self.closed or reply is None or at < 0:
            return
        end = headers.find(b"\r\n", at)
        try:
            pid = int(headers[at + 13 : end].strip())
        except ValueError:
            return
        self.pubrel_acks[pid] = reply.decode()
        self._write(mp.packet_id(mp.PUBREL, pid))

    async def _ensure_pubrel_consumer(self, session: Session, state: MqttAccount) -> None:
        """A session's first QoS 2 subscription gets the consumer of its stored PUBRELs."""
        if session.pubrel is not None:
            return
        opts = self.listener.options
        config: dict[str, Any] = {
            "durable_name": f"$MQTT_PUBREL_{session.hash}",
            "deliver_subject": PUBREL_DELIVER_PREFIX + session.hash,
            "deliver_policy": "new",
            "ack_policy": "explicit",
            "ack_wait": round((opts.ack_wait or DEFAULT_ACK_WAIT_S) * 1e9),
            "max_deliver": -1,
            "filter_subject": PUBREL_PREFIX + session.hash,
            "replay_policy": "instant",
            "max_ack_pending": opts.max_ack_pending or DEFAULT_MAX_ACK_PENDING,
        }
        await state.create_consumer(config, OUT_STREAM)
        session.pubrel = config
        self._bind_pubrel(config)

    def _bind_pubrel(self, config: dict[str, Any]) -> None:
        self._last_sid += 1
        sid = b"%d" % self._last_sid
        deliver = str(config["deliver_subject"]).encode()
        sub = Subscription(self, deliver, None, sid, callback=self._deliver_pubrel)
        self.subs[sid] = sub
        self.account.sublist.insert(sub)

    async def _deliver_published(self, subject: str, p: mp.Publish) -> None:
        state = self.state
        assert state is not None
        if not self._may_publish_to(subject.encode()):
            return
        self.publish_message(subject, p.payload, p.qos)
        if p.qos:
            await state.request("MS", MSGS_PREFIX + subject, p.payload, _pub_headers(p.qos))
        if p.retain:
            # a mapped subject is retained under its own topic, as nats-server does
            topic = p.topic if topic_to_subject(p.topic) == subject else subject_to_topic(subject)
            await state.retain(subject, topic, p.payload, p.qos)

    def _may_publish_to(self, subject: bytes) -> bool:
        perms = self.perms
        if perms is None or perms.can_publish(subject):
            return True
        self.server.logger.error(
            f'{self.error_label} - Publish Violation - Subject "{subject.decode()}"'
        )
        return False

    def publish_message(self, subject: str, payload: bytes, qos: int) -> None:
        """Route to NATS (and to MQTT subscribers' QoS 0 path) with the `Nmqtt-Pub` header."""
        headers = _pub_headers(qos)
        route_message(self, self.account, subject.encode(), None, len(headers), headers + payload)

    # -- SUBSCRIBE / UNSUBSCRIBE -------------------------------------------------------------

    async def _subscribe(self, s: mp.Subscribe) -> None:
        state = self.state
        session = self.session
        assert state is not None and session is not None
        opts = self.listener.options
        codes: list[int] = []
        new: list[tuple[_SubInfo, list[str]]] = []
        for topic_filter, asked in s.filters:
            qos = asked
            try:
                subjects = filter_to_subjects(topic_filter)
            except TopicError as e:
                self.server.logger.error(f"{self.error_label} - {e}")
                codes.append(mp.SUBACK_FAILURE)
                continue
            if any(x == "$MQTT" or x.startswith("$MQTT.") for x in subjects):
                codes.append(mp.SUBACK_FAILURE)  # the server's own subjects
                continue
            if asked == 2 and opts.downgrade_qos2_subscribe:
                qos = 1
                self.server.logger.warn(
                    f"{self.error_label} - Downgrading subscription QoS2 to QoS1 for "
                    f'"{subjects[0]}", as configured'
                )
            perms = self.perms
            denied = [
                x
                for x in subjects
                if perms is not None and not perms.can_subscribe(x.encode(), None)
            ]
            if denied:
                self.server.logger.error(
                    f'{self.error_label} - Subscription Violation - Subject "{denied[0]}", '
                    f"SID {denied[0]}"
                )
                codes.append(mp.SUBACK_FAILURE)
                continue
            if qos and not self._within_ack_pending_limit(topic_filter, len(subjects)):
                codes.append(mp.SUBACK_FAILURE)
                continue
            old = self.filters.pop(topic_filter, None)
            if old is not None:
                await self._drop(old, session)
            info = self.filters[topic_filter] = _SubInfo(qos, is_wildcard_first(topic_filter))
            try:
                for subject in subjects:
                    self._add_nats_sub(info, subject)
                    session.subs[subject] = qos
                    if qos == 2:
                        await self._ensure_pubrel_consumer(session, state)
                    if qos:
                        config = self._consumer_config(session, subject)
                        await state.create_consumer(config)
                        session.cons[subject] = config
                        self._bind_consumer(info, config)
            except JetStreamUnavailable as e:
                self.server.logger.error(f"{self.error_label} - {e}")
                await self._drop(self.filters.pop(topic_filter), session)
                codes.append(mp.SUBACK_FAILURE)
                continue
            codes.append(qos)
            new.append((info, subjects))
        await state.persist(session)
        self._write(mp.suback(s.packet_id, codes))
        for info, subjects in new:
            self._send_retained(state, info, subjects)

    def _within_ack_pending_limit(self, topic_filter: str, consumers: int) -> bool:
        """A session's consumers may together have at most 65535 messages pending (their
        packet identifiers): each consumer counts `max_ack_pending` (`x/#` has two)."""
        per_consumer = self.listener.options.max_ack_pending or DEFAULT_MAX_ACK_PENDING
        kept = sum(
            len(info.consumers) for name, info in self.filters.items() if name != topic_filter
        )
        return (kept + consumers) * per_consumer <= MAX_ACK_PENDING_TOTAL

    def _consumer_config(self, session: Session, subject: str) -> dict[str, Any]:
        opts = self.listener.options
        nuid = _unique_id()
        config: dict[str, Any] = {
            "durable_name": f"{session.hash}_{nuid}",
            "deliver_subject": DELIVER_PREFIX + _unique_id(),
            "deliver_policy": "new",
            "ack_policy": "explicit",
            "ack_wait": round((opts.ack_wait or DEFAULT_ACK_WAIT_S) * 1e9),
            "max_deliver": -1,
            "filter_subject": MSGS_PREFIX + subject,
            "replay_policy": "instant",
            "max_ack_pending": opts.max_ack_pending or DEFAULT_MAX_ACK_PENDING,
        }
        if opts.consumer_memory_storage:
            config["mem_storage"] = True
        if opts.consumer_inactive_threshold > 0:
            config["inactive_threshold"] = round(opts.consumer_inactive_threshold * 1e9)
        return config

    def _add_nats_sub(self, info: _SubInfo, subject: str) -> None:
        self._last_sid += 1
        sid = b"%d" % self._last_sid
        sub = Subscription(self, subject.encode(), None, sid, callback=self._deliver_live)
        self.subs[sid] = sub
        self.account.sublist.insert(sub)
        info.subs.append(sub)
        self._sub_info[sid] = info

    def _bind_consumer(self, info: _SubInfo, config: dict[str, Any]) -> None:
        self._last_sid += 1
        sid = b"%d" % self._last_sid
        deliver = str(config["deliver_subject"]).encode()
        sub = Subscription(self, deliver, None, sid, callback=self._deliver_stored)
        self.subs[sid] = sub
        self.account.sublist.insert(sub)
        info.consumers.append((str(config["durable_name"]), sub))
        self._sub_info[sid] = info

    async def _drop(self, info: _SubInfo, session: Session) -> None:
        """Remove a filter's NATS subscriptions and delete its consumers."""
        state = self.state
        for sub in info.subs:
            self.remove_subscription(sub)
            self._sub_info.pop(sub.sid, None)
            subject = sub.subject.decode()
            session.subs.pop(subject, None)
            session.cons.pop(subject, None)
        for durable, sub in info.consumers:
            self.remove_subscription(sub)
            self._sub_info.pop(sub.sid, None)
            if state is not None:
                await state.delete_consumer(durable)

    async def _unsubscribe(self, u: mp.Unsubscribe) -> None:
        session = self.session
        state = self.state
        assert session is not None and state is not None
        for topic_filter in u.filters:
            info = self.filters.pop(topic_filter, None)
            if info is not None:
                await self._drop(info, session)
        await state.persist(session)
        self._write(mp.packet_id(mp.UNSUBACK, u.packet_id))

    def _send_retained(self, state: MqttAccount, info: _SubInfo, subjects: list[str]) -> None:
        for subject, retained in state.retained.items():
            raw = subject.encode()
            if info.reserved and raw.startswith(b"$"):
                continue
            if any(subject_matches(x.encode(), raw) for x in subjects):
                qos = min(retained.qos, info.qos)
                pid = self._packet_id_for("") if qos else 0
                self._write(
                    mp.publish(retained.topic.encode(), retained.payload, qos, True, pid=pid)
                )

    # -- deliveries --------------------------------------------------------------------------

    def _deliver_live(
        self,
        sub: Subscription,
        publisher: Any,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        """A message on a filter's NATS subscription: sent at QoS 0, unless it is an MQTT
        QoS >= 1 message for a QoS >= 1 subscription (its consumer delivers that one)."""
        info = self._sub_info.get(sub.sid)
        if info is None or self.closed:
            return
        if info.reserved and subject.startswith(b"$"):
            return
        if info.qos and headers and nats_header_qos(headers):
            return
        topics = self.listener.topics
        topic = topics.get(subject)
        if topic is None:
            if len(topics) >= TRANSLATIONS_KEPT:
                topics.clear()
            topic = topics[subject] = subject_to_topic(subject.decode(errors="replace")).encode()
        self._write(mp.publish(topic, payload))

    def _deliver_stored(
        self,
        sub: Subscription,
        publisher: Any,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        """A QoS >= 1 message from the subscription's consumer, at the lower of the
        publisher's and the subscription's QoS; PUBACK (QoS 1) or PUBREC (QoS 2) acks it."""
        if self.closed or reply is None:
            return
        info = self._sub_info.get(sub.sid)
        qos = min(nats_header_qos(headers) or 1, info.qos if info is not None else 1)
        raw = subject.decode(errors="replace")
        if raw.startswith(MSGS_PREFIX):
            raw = raw[len(MSGS_PREFIX) :]
        delivered, stored_as = _ack_tokens(reply)
        pid = self.pids_by_message.get(stored_as) if delivered > 1 else None
        if pid is None:
            pid = self._packet_id_for(reply.decode())
            self.pids_by_message[stored_as] = pid
        else:  # a redelivery: the same packet identifier, with DUP [MQTT-4.4.0-1]
            self.pending_acks[pid] = reply.decode()
        redelivered = delivered > 1
        topic = subject_to_topic(raw).encode()
        self._write(mp.publish(topic, payload, qos, False, redelivered, pid))

    def _packet_id_for(self, ack_subject: str) -> int:
        for _ in range(0xFFFF):
            self._next_pid = self._next_pid % 0xFFFF + 1
            if self._next_pid not in self.pending_acks:
                break
        if ack_subject:
            self.pending_acks[self._next_pid] = ack_subject
        return self._next_pid

    def _acknowledged(self, pid: int) -> None:
        ack = self.pending_acks.pop(pid, None)
        if ack and self.state is not None:
            self.pids_by_message.pop(_ack_tokens(ack.encode())[1], None)
            self.state.client.publish(ack, b"")

    # -- closing -----------------------------------------------------------------------------

    def on_closed(self) -> None:
        if self._keep_alive_timer is not None:
            self._keep_alive_timer.cancel()
            self._keep_alive_timer = None
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
                        "MS", MSGS_PREFIX + subject, will.message, _pub_headers(will.qos)
                    )
                if will.retain:
                    await state.retain(subject, topic, will.message, will.qos)
            except JetStreamUnavailable as e:
                self.server.logger.error(f"{self.error_label} - will not stored: {e}")

        if will.qos or will.retain:
            self.server.loop.create_task(store())

    def __repr__(self) -> str:
        return f"{self.log_prefix} - {self.mqtt_client_id!r}"


def _ignore(error: str) -> None:
    """A store whose outcome does not matter (a QoS 2 message already held, a PUBREL)."""


def _go_number(seconds: float) -> float | int:
    """A float64 as Go's JSON writes it (3, not 3.0)."""
    return int(seconds) if float(seconds).is_integer() else seconds


_PUB_HEADERS = tuple(b"NATS/1.0\r\nNmqtt-Pub:%d\r\n\r\n" % qos for qos in range(3))


def _pub_headers(qos: int) -> bytes:
    return _PUB_HEADERS[qos]


def _ack_tokens(ack_reply: bytes) -> tuple[int, bytes]:
    """From `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>....`: the delivery count,
    and what names the stored message (consumer and stream sequence)."""
    tokens = ack_reply.split(b".")
    if len(tokens) < 9:
        return 1, ack_reply
    try:
        return int(tokens[4]), tokens[3] + b"." + tokens[5]
    except ValueError:
        return 1, ack_reply


__all__ = ["MqttClient", "MqttListener", "go_hash"]
