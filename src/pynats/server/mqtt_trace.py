"""How `-V` (trace) shows MQTT packets, in nats-server's words.

`<<- [CONNECT clientID=c keepAlive=45s will=(topic=t QoS=1 retain=false) clean username=u
password=****]` (the keep-alive as the read deadline, 1.5 times the client's), `<<- [PUBLISH
a/b dup=false QoS=1 retain=false size=5 pi=5]` followed by `<<- MSG_PAYLOAD: ["..."]`,
`<<- [SUBSCRIBE [a/b (a.b) QoS=1, c/# (c.>) QoS=0] pi=1]`, `->> [CONNACK sp=false rc=0]`,
`->> [SUBACK pi=1]`, `<<- [PINGREQ]`... Only called when tracing is on.
"""

from __future__ import annotations

from pynats.gotime import NS_PER_S, format_duration

from . import mqtt_packets as mp
from .mqtt_topics import TopicError, filter_to_subjects
from .trace import quote_payload

_ID_ONLY = {
    mp.PUBACK: "PUBACK",
    mp.PUBREC: "PUBREC",
    mp.PUBREL: "PUBREL",
    mp.PUBCOMP: "PUBCOMP",
    mp.UNSUBACK: "UNSUBACK",
    mp.SUBACK: "SUBACK",
}


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _publish(p: mp.Publish) -> str:
    text = (
        f"PUBLISH {p.topic} dup={_bool(p.dup)} QoS={p.qos} retain={_bool(p.retain)} "
        f"size={len(p.payload)}"
    )
    return f"{text} pi={p.packet_id}" if p.packet_id else text


def _subject(topic_filter: str) -> str:
    try:
        return filter_to_subjects(topic_filter)[0]
    except TopicError:
        return ""


def incoming(packet: mp.Packet, max_traced: int) -> list[str]:
    """The trace lines of a packet a client sent."""
    if isinstance(packet, mp.Connect):
        parts = [f"clientID={packet.client_id}"]
        if packet.keep_alive:
            parts.append(f"keepAlive={format_duration(packet.keep_alive * NS_PER_S * 3 // 2)}")
        will = packet.will
        if will is not None:
            parts.append(f"will=(topic={will.topic} QoS={will.qos} retain={_bool(will.retain)})")
        if packet.clean_session:
            parts.append("clean")
        if packet.username is not None:
            parts.append(f"username={packet.username}")
        if packet.password is not None:
            parts.append("password=****")
        return [f"<<- [CONNECT {' '.join(parts)}]"]
    if isinstance(packet, mp.Publish):
        payload = quote_payload(packet.payload, max_traced)
        return [f"<<- [{_publish(packet)}]", f"<<- MSG_PAYLOAD: [{payload}]"]
    if isinstance(packet, mp.Subscribe):
        filters = ", ".join(f"{f} ({_subject(f)}) QoS={q}" for f, q in packet.filters)
        return [f"<<- [SUBSCRIBE [{filters}] pi={packet.packet_id}]"]
    if isinstance(packet, mp.Unsubscribe):
        filters = ", ".join(f"{f} ({_subject(f)})" for f in packet.filters)
        return [f"<<- [UNSUBSCRIBE [{filters}] pi={packet.packet_id}]"]
    if isinstance(packet, mp.PacketId):
        return [f"<<- [{_ID_ONLY[packet.kind]} pi={packet.packet_id}]"]
    if isinstance(packet, mp.Simple):
        return ["<<- [PINGREQ]" if packet.kind == mp.PINGREQ else "<<- [DISCONNECT]"]
    return []


def outgoing(data: bytes) -> str:
    """The trace line of one packet the server writes."""
    (packet,) = mp.PacketDecoder(client_side=True).feed(data)
    if isinstance(packet, mp.Publish):
        return f"->> [{_publish(packet)}]"
    if isinstance(packet, mp.PacketId):
        return f"->> [{_ID_ONLY[packet.kind]} pi={packet.packet_id}]"
    if isinstance(packet, mp.Reply):
        body = packet.body
        if packet.kind == mp.CONNACK:
            return f"->> [CONNACK sp={_bool(bool(body[0] & 1))} rc={body[1]}]"
        if packet.kind in (mp.SUBACK, mp.UNSUBACK):
            return f"->> [{_ID_ONLY[packet.kind]} pi={(body[0] << 8) | body[1]}]"
        return "->> [PINGRESP]"
    return ""
