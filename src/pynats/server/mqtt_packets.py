"""MQTT 3.1.1 packets: a sans-I/O decoder (bytes in, packets out) and the encoders of what
the server sends.

Every packet starts with a fixed header: a type/flags byte and the remaining length, a
varint of at most four bytes (seven bits each, low first). `PacketDecoder.feed` keeps a
partial packet for the next chunk, so a stream split anywhere yields the same packets.
Errors are `MqttProtocolError` carrying nats-server's text; the connection is closed on them
(MQTT has no error reply, except the CONNACK return codes decided by the caller).
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
SUBSCRIBE = 8
SUBACK = 9
UNSUBSCRIBE = 10
UNSUBACK = 11
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14

# CONNACK return codes
ACCEPTED = 0
UNACCEPTABLE_PROTOCOL_VERSION = 1
IDENTIFIER_REJECTED = 2
SERVER_UNAVAILABLE = 3
BAD_USER_OR_PASSWORD = 4
NOT_AUTHORIZED = 5

SUBACK_FAILURE = 0x80
PROTOCOL_LEVEL = 4  # MQTT 3.1.1
MAX_REMAINING_LENGTH = 0xFFFFFFF


class MqttProtocolError(Exception):
    """A packet the server cannot accept; the text is what nats-server logs."""


@dataclass
class Will:
    topic: str
    message: bytes
    qos: int
    retain: bool


@dataclass
class Connect:
    protocol_name: str
    level: int
    clean_session: bool
    keep_alive: int  # seconds, 0 = none
    client_id: str
    will: Will | None = None
    username: str | None = None
    password: bytes | None = None


@dataclass
class Publish:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int = 0


@dataclass
class PacketId:
    """PUBACK, PUBREC, PUBREL, PUBCOMP: a kind and a packet identifier."""

    kind: int
    packet_id: int


@dataclass
class Subscribe:
    packet_id: int
    filters: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Unsubscribe:
    packet_id: int
    filters: list[str] = field(default_factory=list)


@dataclass
class Simple:
    """PINGREQ, DISCONNECT: no body."""

    kind: int


@dataclass
class Reply:
    """What only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP): its kind and body.
    Decoded only by a client-side decoder (tests, tools)."""

    kind: int
    body: bytes


Packet = Connect | Publish | PacketId | Subscribe | Unsubscribe | Simple | Reply


class _Body:
    """A cursor over one packet's body; reading past its end is a protocol error."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def byte(self, what: str) -> int:
        if self.pos >= len(self.data):
            raise MqttProtocolError(f"error reading {what}: EOF")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uint16(self, what: str) -> int:
        if self.pos + 2 > len(self.data):
            raise MqttProtocolError(f"error reading {what}: EOF")
        v = int.from_bytes(self.data[self.pos : self.pos + 2], "big")
        self.pos += 2
        return v

    def binary(self, what: str) -> bytes:
        n = self.uint16(what)
        if self.pos + n > len(self.data):
            raise MqttProtocolError(f"error reading {what}: EOF")
        v = self.data[self.pos : self.pos + n]
        self.pos += n
        return v

    def string(self, what: str) -> str:
        raw = self.binary(what)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise MqttProtocolError(f"invalid utf8 for {what}") from None

    def rest(self) -> bytes:
        v = self.data[self.pos :]
        self.pos = len(self.data)
        return v


class PacketDecoder:
    """Bytes from the socket in, whole packets out. A server's decoder refuses what only a
    server sends; `client_side` decodes those too (as `Reply`)."""

    def __init__(self, *, client_side: bool = False) -> None:
        self.buffer = b""
        self.client_side = client_side

    def feed(self, data: bytes) -> list[Packet]:
        buf = self.buffer + data if self.buffer else data
        packets: list[Packet] = []
        pos = 0
        n = len(buf)
        while pos < n:
            first = buf[pos]
            length = 0
            shift = 0
            i = pos + 1
            complete = False
            while i < n:
                b = buf[i]
                i += 1
                length |= (b & 0x7F) << shift
                if not b & 0x80:
                    complete = True
                    break
                shift += 7
                if shift >= 28:
                    raise MqttProtocolError("malformed variable int")
            if not complete or i + length > n:
                break
            body = buf[i : i + length]
            kind = first >> 4
            if self.client_side and kind in (CONNACK, SUBACK, UNSUBACK, PINGRESP):
                packets.append(Reply(kind, body))
            else:
                packets.append(decode_packet(first, body))
            pos = i + length
        self.buffer = buf[pos:]
        return packets


def decode_packet(first: int, body: bytes) -> Packet:
    kind = first >> 4
    flags = first & 0x0F
    if kind == PUBLISH:
        return _publish(flags, body)
    r = _Body(body)
    if kind in (PUBACK, PUBREC, PUBCOMP, PUBREL):
        pid = r.uint16("packet identifier")
        if pid == 0:
            raise MqttProtocolError("packet identifier cannot be 0")
        return PacketId(kind, pid)
    if kind == SUBSCRIBE:
        return _subscribe(flags, r)
    if kind == UNSUBSCRIBE:
        return _unsubscribe(flags, r)
    if kind == CONNECT:
        return _connect(r)
    if kind in (PINGREQ, DISCONNECT):
        return Simple(kind)
    raise MqttProtocolError(f"received unknown packet type {kind}")


def _publish(flags: int, body: bytes) -> Publish:
    """The busiest packet, read without the `_Body` cursor."""
    qos = (flags >> 1) & 0x03
    if qos > 2:
        raise MqttProtocolError(f"QoS={qos} is invalid in MQTT")
    dup = bool(flags & 0x08)
    if qos == 0 and dup:
        raise MqttProtocolError("duplicate flag set for QoS 0 message")
    size = len(body)
    end = 2 + ((body[0] << 8) | body[1]) if size >= 2 else size + 1
    if end > size:
        raise MqttProtocolError("error reading topic: EOF")
    try:
        topic = body[2:end].decode()
    except UnicodeDecodeError:
        raise MqttProtocolError("invalid utf8 for topic") from None
    if not topic:
        raise MqttProtocolError("topic cannot be empty")
    pid = 0
    if qos:
        if end + 2 > size:
            raise MqttProtocolError("error reading packet identifier: EOF")
        pid = (body[end] << 8) | body[end + 1]
        if pid == 0:
            raise MqttProtocolError("packet identifier cannot be 0")
        end += 2
    return Publish(topic, body[end:], qos, bool(flags & 0x01), dup, pid)


def _subscribe(flags: int, r: _Body) -> Subscribe:
    if flags != 0x02:
        raise MqttProtocolError(f"subscribe protocol has invalid flags: {flags:#x}")
    pid = r.uint16("packet identifier")
    if pid == 0:
        raise MqttProtocolError("packet identifier cannot be 0")
    sub = Subscribe(pid)
    while r.remaining():
        topic_filter = r.string("topic filter")
        if not topic_filter:
            raise MqttProtocolError("topic filter cannot be empty")
        qos = r.byte("QoS")
        if qos > 2:
            raise MqttProtocolError(f"subscribe QoS value must be 0, 1 or 2, got {qos}")
        sub.filters.append((topic_filter, qos))
    if not sub.filters:
        raise MqttProtocolError("subscribe protocol must contain at least 1 topic filter")
    return sub


def _unsubscribe(flags: int, r: _Body) -> Unsubscribe:
    if flags != 0x02:
        raise MqttProtocolError(f"unsubscribe protocol has invalid flags: {flags:#x}")
    pid = r.uint16("packet identifier")
    if pid == 0:
        raise MqttProtocolError("packet identifier cannot be 0")
    unsub = Unsubscribe(pid)
    while r.remaining():
        topic_filter = r.string("topic filter")
        if not topic_filter:
            raise MqttProtocolError("topic filter cannot be empty")
        unsub.filters.append(topic_filter)
    if not unsub.filters:
        raise MqttProtocolError("unsubscribe protocol must contain at least 1 topic filter")
    return unsub


def _connect(r: _Body) -> Connect:
    name = r.string("protocol name")
    level = r.byte("protocol level")
    flags = r.byte("flags")
    keep_alive = r.uint16("keep alive")
    if flags & 0x01:
        raise MqttProtocolError("connect flags reserved bit not set to 0")
    will_flag = bool(flags & 0x04)
    will_qos = (flags >> 3) & 0x03
    will_retain = bool(flags & 0x20)
    if not will_flag and (will_qos or will_retain):
        if will_retain:
            raise MqttProtocolError("if Will flag is set to 0, Will Retain flag must be 0 too")
        raise MqttProtocolError("if Will flag is set to 0, Will QoS must be 0 too")
    if will_qos > 2:
        raise MqttProtocolError(f"invalid Will QoS {will_qos}")
    has_user = bool(flags & 0x80)
    has_password = bool(flags & 0x40)
    if has_password and not has_user:
        raise MqttProtocolError("password flag set but username flag is not")
    connect = Connect(name, level, bool(flags & 0x02), keep_alive, "")
    if level != PROTOCOL_LEVEL:
        return connect  # the caller answers CONNACK 1; the rest may be another version's
    connect.client_id = r.string("client ID")
    if will_flag:
        topic = r.string("Will topic")
        if not topic:
            raise MqttProtocolError("empty Will topic not allowed")
        connect.will = Will(topic, r.binary("Will message"), will_qos, will_retain)
    if has_user:
        connect.username = r.string("user name")
        if not connect.username:
            raise MqttProtocolError("empty user name not allowed")
    if has_password:
        connect.password = r.binary("password")
    return connect


# -- encoders ----------------------------------------------------------------------------------


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + remaining_length(len(body)) + body


def connack(session_present: bool, code: int) -> bytes:
    return bytes((CONNACK << 4, 2, 1 if session_present else 0, code))


def publish(
    topic: bytes,
    payload: bytes,
    qos: int = 0,
    retain: bool = False,
    dup: bool = False,
    pid: int = 0,
) -> bytes:
    first = (PUBLISH << 4) | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    head = len(topic).to_bytes(2, "big") + topic
    if qos:
        head += pid.to_bytes(2, "big")
    return bytes((first,)) + remaining_length(len(head) + len(payload)) + head + payload


def packet_id(kind: int, pid: int) -> bytes:
    """PUBACK, PUBREC, PUBREL (flags 0b0010), PUBCOMP, UNSUBACK."""
    first = (kind << 4) | (0x02 if kind == PUBREL else 0)
    return bytes((first, 2)) + pid.to_bytes(2, "big")


def suback(pid: int, codes: list[int]) -> bytes:
    return _packet(SUBACK << 4, pid.to_bytes(2, "big") + bytes(codes))


PINGRESP_PACKET = bytes((PINGRESP << 4, 0))


# -- what clients send (tests and tools) -----------------------------------------------------


def _string(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return len(raw).to_bytes(2, "big") + raw


def connect_packet(c: Connect) -> bytes:
    flags = 0x02 if c.clean_session else 0
    payload = _string(c.client_id)
    if c.will is not None:
        flags |= 0x04 | (c.will.qos << 3) | (0x20 if c.will.retain else 0)
        payload += _string(c.will.topic) + _string(c.will.message)
    if c.username is not None:
        flags |= 0x80
        payload += _string(c.username)
    if c.password is not None:
        flags |= 0x40
        payload += _string(c.password)
    head = _string(c.protocol_name) + bytes((c.level, flags)) + c.keep_alive.to_bytes(2, "big")
    return _packet(CONNECT << 4, head + payload)


def subscribe_packet(s: Subscribe) -> bytes:
    body = s.packet_id.to_bytes(2, "big")
    for topic_filter, qos in s.filters:
        body += _string(topic_filter) + bytes((qos,))
    return _packet((SUBSCRIBE << 4) | 0x02, body)


def unsubscribe_packet(u: Unsubscribe) -> bytes:
    body = u.packet_id.to_bytes(2, "big")
    for topic_filter in u.filters:
        body += _string(topic_filter)
    return _packet((UNSUBSCRIBE << 4) | 0x02, body)
