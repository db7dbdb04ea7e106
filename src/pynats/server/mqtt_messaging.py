"""The messages of an MQTT connection: PUBLISH in (QoS 0, 1 and 2), SUBSCRIBE and
UNSUBSCRIBE, and the deliveries out, as nats-server bridges them to NATS.

A PUBLISH on `a/b` is routed on `a.b` (mqtt_topics) with the header `Nmqtt-Pub:<qos>`; a
QoS >= 1 one is also stored in `$MQTT_msgs` (pipelined: its PUBACK goes out when JetStream
has it), a retained one in `$MQTT_rmsgs`, and a QoS 2 one is held in `$MQTT_qos2in` until
its PUBREL. Each subscription filter is a NATS subscription (two for `x/#`) that delivers at
QoS 0; a QoS >= 1 subscription also has a durable JetStream consumer on
`$MQTT.msgs.<subject>` that delivers the QoS 1 and 2 messages (the NATS subscription then
skips them), acknowledged by PUBACK or PUBREC; a QoS 2 session's PUBRELs wait in `$MQTT_out`
for their PUBCOMP. `MqttMessaging` holds these flows; `mqtt.MqttClient` (the connection:
CONNECT, sessions, keep-alive, wills) builds on it.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from . import mqtt_packets as mp
from .client import ClientConnection
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
    nats_header_qos,
)
from .mqtt_topics import (
    TopicError,
    filter_to_subjects,
    is_wildcard_first,
    subject_to_topic,
    topic_to_subject,
)
from .protocol import REASON_MAX_PAYLOAD, REASON_PROTOCOL_VIOLATION
from .subjects import subject_matches
from .sublist import Subscription

if TYPE_CHECKING:
    from .mqtt import MqttListener

DEFAULT_ACK_WAIT_S = 30.0
DEFAULT_MAX_ACK_PENDING = 1024
MAX_ACK_PENDING_TOTAL = 0xFFFF  # a session's packet identifiers
TRANSLATIONS_KEPT = 4096  # topics (and subjects) whose translation is remembered
ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def unique_id(n: int = 22) -> str:
    """A random id in nats-server's alphabet (generated client IDs, consumer names)."""
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(n))


class SubInfo:
    """One SUBSCRIBE filter of the connection: its NATS subscriptions and consumers."""

    __slots__ = ("consumers", "qos", "reserved", "subs")

    def __init__(self, qos: int, reserved: bool) -> None:
        self.qos = qos
        self.reserved = reserved
        self.subs: list[Subscription] = []
        self.consumers: list[tuple[str, Subscription]] = []  # (durable, deliver-subject sub)


class MqttMessaging(ClientConnection):
    """The message flows of an MQTT connection (the state is set up by mqtt.MqttClient)."""

    listener: MqttListener
    feeder: Any  # mqtt._Feeder: whether a CONNECT was read
    tracing: bool  # -V
    mqtt_client_id: str
    session: Session | None
    state: MqttAccount | None
    filters: dict[str, SubInfo]
    pending_acks: dict[int, str]  # packet id -> the JetStream ack subject
    pubrel_acks: dict[int, str]  # QoS 2 out: PUBREL sent, PUBCOMP due -> its ack subject
    pids_by_message: dict[bytes, int]  # a stored message's packet id, for its redelivery
    _sub_info: dict[bytes, SubInfo]  # sid -> the filter it serves
    _next_pid: int

    # -- what every flow uses --------------------------------------------------------------

    # The DELSUB trace lines of its subscriptions at close are MqttClient.on_closed's.
    traces_delsub_on_close = False

    @property
    def trace_label(self) -> str:
        return self.log_prefix

    @property
    def error_label(self) -> str:
        """nats-server names the client ID once a CONNECT was read."""
        if not self.feeder.seen_connect:
            return self.log_prefix
        return f'{self.log_prefix} - "{self.mqtt_client_id}"'

    def fail(self, text: str) -> None:
        """A protocol error: logged as nats-server logs it, and the connection closed."""
        if self.closed:
            return
        self.server.logger.error(f"{self.error_label} - {text}")
        self.close_connection(REASON_PROTOCOL_VIOLATION)

    def _write(self, data: bytes) -> None:
        """Queue one packet (written at the next flush)."""
        if self.tracing:
            from .mqtt_trace import outgoing

            self.server.logger.trace(f"{self.error_label} - {outgoing(data)}")
        self.out.append(data)
        if not self.flush_queued:
            self.flush_queued = True
            self.server.pending_flush.append(self)

    # -- PUBLISH in ------------------------------------------------------------------------

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
        size = len(pub_headers(p.qos)) + len(p.payload)
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
                pub_headers(p.qos),
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
        deliver = str(config["deliver_subject"]).encode()
        sub = Subscription(self, deliver, None, deliver, callback=self._deliver_pubrel)
        self.subs[deliver] = sub
        self.account.sublist.insert(sub)

    async def _deliver_published(self, subject: str, p: mp.Publish) -> None:
        state = self.state
        assert state is not None
        if not self._may_publish_to(subject.encode()):
            return
        self.publish_message(subject, p.payload, p.qos)
        if p.qos:
            await state.request("MS", MSGS_PREFIX + subject, p.payload, pub_headers(p.qos))
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
        headers = pub_headers(qos)
        route_message(self, self.account, subject.encode(), None, len(headers), headers + payload)

    # -- SUBSCRIBE / UNSUBSCRIBE -----------------------------------------------------------

    async def _subscribe(self, s: mp.Subscribe) -> None:
        state = self.state
        session = self.session
        assert state is not None and session is not None
        opts = self.listener.options
        codes: list[int] = []
        new: list[tuple[SubInfo, list[str]]] = []
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
            info = self.filters[topic_filter] = SubInfo(qos, is_wildcard_first(topic_filter))
            try:
                for i, subject in enumerate(subjects):
                    self._add_nats_sub(info, subject, parent_level=i == 1)
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
        for _, subjects in new:
            await state.refresh_retained(subjects)
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
        nuid = unique_id()
        config: dict[str, Any] = {
            "durable_name": f"{session.hash}_{nuid}",
            "deliver_subject": DELIVER_PREFIX + unique_id(),
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

    def _add_nats_sub(self, info: SubInfo, subject: str, *, parent_level: bool = False) -> None:
        """A filter's NATS subscription; its sid is its subject, as in nats-server (` fwc`
        added for the parent level of `x/#`, which is a subscription on `x`)."""
        sid = subject.encode() + (b" fwc" if parent_level else b"")
        sub = Subscription(self, subject.encode(), None, sid, callback=self._deliver_live)
        self.subs[sid] = sub
        self.account.sublist.insert(sub)
        info.subs.append(sub)
        self._sub_info[sid] = info

    def _bind_consumer(self, info: SubInfo, config: dict[str, Any]) -> None:
        deliver = str(config["deliver_subject"]).encode()
        sub = Subscription(self, deliver, None, deliver, callback=self._deliver_stored)
        sid = deliver
        self.subs[sid] = sub
        self.account.sublist.insert(sub)
        info.consumers.append((str(config["durable_name"]), sub))
        self._sub_info[sid] = info

    async def _drop(self, info: SubInfo, session: Session) -> None:
        """Remove a filter's NATS subscriptions and delete its consumers."""
        state = self.state
        for sub in info.subs:
            self._trace_delsub(sub)
            self.remove_subscription(sub)
            self._sub_info.pop(sub.sid, None)
            subject = sub.subject.decode()
            session.subs.pop(subject, None)
            session.cons.pop(subject, None)
        for durable, sub in info.consumers:
            self._trace_delsub(sub)
            self.remove_subscription(sub)
            self._sub_info.pop(sub.sid, None)
            if state is not None:
                await state.delete_consumer(durable)

    def _trace_delsub(self, sub: Subscription) -> None:
        if self.tracing:
            sid = sub.sid.decode(errors="replace")
            self.server.logger.trace(f"{self.error_label} - <-> [DELSUB {sid}]")

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

    def _send_retained(self, state: MqttAccount, info: SubInfo, subjects: list[str]) -> None:
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

    # -- deliveries out --------------------------------------------------------------------

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


def _ignore(error: str) -> None:
    """A store whose outcome does not matter (a QoS 2 message already held, a PUBREL)."""


_PUB_HEADERS = tuple(b"NATS/1.0\r\nNmqtt-Pub:%d\r\n\r\n" % qos for qos in range(3))


def pub_headers(qos: int) -> bytes:
    """The header block of a message an MQTT client published (nats-server's)."""
    return _PUB_HEADERS[qos]


def _ack_tokens(ack_reply: bytes) -> tuple[int, bytes]:
    """From `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>....` (or its v2 form, with
    the domain and the account hash after `$JS.ACK`): the delivery count, and what names the
    stored message (consumer and stream sequence)."""
    tokens = ack_reply.split(b".")
    if len(tokens) == 9:
        base = 2
    elif len(tokens) >= 11:
        base = 4
    else:
        return 1, ack_reply
    try:
        return int(tokens[base + 2]), tokens[base + 1] + b"." + tokens[base + 3]
    except ValueError:
        return 1, ack_reply
