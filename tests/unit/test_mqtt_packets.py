"""The MQTT packet decoder: the same packets whatever the chunking, and nats-server's errors."""

from __future__ import annotations

import pytest

from pynats.server import mqtt_packets as mp
from pynats.server.mqtt_topics import (
    TopicError,
    filter_to_subjects,
    subject_to_topic,
    topic_to_subject,
)

STREAM = b"".join(
    [
        mp.connect_packet(
            mp.Connect("MQTT", 4, False, 30, "dev-1", mp.Will("w/t", b"bye", 1, True), "u", b"p")
        ),
        mp.subscribe_packet(mp.Subscribe(7, [("a/+", 1), ("b/#", 0)])),
        mp.publish(b"a/b", b"x" * 200, qos=1, pid=9),  # a two-byte remaining length
        mp.publish(b"c", b"", retain=True),
        mp.packet_id(mp.PUBACK, 3),
        mp.unsubscribe_packet(mp.Unsubscribe(8, ["a/+"])),
        bytes((mp.PINGREQ << 4, 0)),
        bytes((mp.DISCONNECT << 4, 0)),
    ]
)

EXPECTED = [
    mp.Connect("MQTT", 4, False, 30, "dev-1", mp.Will("w/t", b"bye", 1, True), "u", b"p"),
    mp.Subscribe(7, [("a/+", 1), ("b/#", 0)]),
    mp.Publish("a/b", b"x" * 200, 1, False, False, 9),
    mp.Publish("c", b"", 0, True, False, 0),
    mp.PacketId(mp.PUBACK, 3),
    mp.Unsubscribe(8, ["a/+"]),
    mp.Simple(mp.PINGREQ),
    mp.Simple(mp.DISCONNECT),
]


def test_every_split_of_the_stream_gives_the_same_packets() -> None:
    for cut in range(len(STREAM) + 1):
        decoder = mp.PacketDecoder()
        packets = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:])
        assert packets == EXPECTED, cut
        assert decoder.buffer == b""


def test_byte_by_byte() -> None:
    decoder = mp.PacketDecoder()
    packets = [p for i in range(len(STREAM)) for p in decoder.feed(STREAM[i : i + 1])]
    assert packets == EXPECTED


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"\x30\xff\xff\xff\xff\x01", "malformed variable int"),
        (b"\xf0\x00", "received unknown packet type 15"),
        (b"\x40\x02\x00\x00", "packet identifier cannot be 0"),
        (b"\x80\x02\x00\x01", "subscribe protocol has invalid flags: 0x0"),
        (b"\x82\x02\x00\x01", "subscribe protocol must contain at least 1 topic filter"),
        (
            b"\x10\x0c\x00\x04MQTT\x04\x01\x00\x00\x00\x00",
            "connect flags reserved bit not set to 0",
        ),
        (
            b"\x10\x0c\x00\x04MQTT\x04\x40\x00\x00\x00\x00",
            "password flag set but username flag is not",
        ),
        (
            b"\x10\x0c\x00\x04MQTT\x04\x20\x00\x00\x00\x00",
            "if Will flag is set to 0, Will Retain flag must be 0 too",
        ),
        (b"\x3a\x05\x00\x01a\x00\x00", "packet identifier cannot be 0"),
        (b"\x38\x03\x00\x01a", "duplicate flag set for QoS 0 message"),
    ],
)
def test_malformed_packets_are_refused_with_nats_server_texts(data: bytes, text: str) -> None:
    with pytest.raises(mp.MqttProtocolError) as refused:
        mp.PacketDecoder().feed(data)
    assert str(refused.value) == text


def test_other_protocol_levels_stop_after_the_level() -> None:
    packet = mp.connect_packet(mp.Connect("MQIsdp", 3, True, 0, "x"))
    (connect,) = mp.PacketDecoder().feed(packet)
    assert isinstance(connect, mp.Connect) and connect.level == 3


@pytest.mark.parametrize(
    ("topic", "subject"),
    [
        ("foo/bar", "foo.bar"),
        ("/foo/bar", "/.foo.bar"),
        ("foo/bar/", "foo.bar./"),
        ("foo//bar", "foo./.bar"),
        ("//foo/bar", "/./.foo.bar"),
        ("foo.bar", "foo//bar"),
        ("a", "a"),
    ],
)
def test_topics_and_subjects_translate_both_ways(topic: str, subject: str) -> None:
    assert topic_to_subject(topic) == subject
    assert subject_to_topic(subject) == topic


def test_nats_subjects_seen_from_mqtt() -> None:
    assert subject_to_topic("n.a///b") == "n/a.b"
    assert subject_to_topic("n.a/b") == "n/ab"
    assert subject_to_topic("n.//") == "n/."


def test_filters() -> None:
    assert filter_to_subjects("a/+/c") == ["a.*.c"]
    assert filter_to_subjects("#") == [">"]
    assert filter_to_subjects("foo/#") == ["foo.>", "foo"]
    with pytest.raises(TopicError):
        topic_to_subject("sp ace")
    with pytest.raises(TopicError):
        filter_to_subjects("a/#/b")


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"\x30\x01\x00", "error reading topic: EOF"),
        (b"\x30\x03\x00\x05a", "error reading topic: EOF"),
        (b"\x30\x02\x00\x00", "topic cannot be empty"),
        (b"\x32\x04\x00\x01a\x00", "error reading packet identifier: EOF"),
        (b"\x30\x03\x00\x01\xff", "invalid utf8 for topic"),
        (b"\x36\x03\x00\x01a", "QoS=3 is invalid in MQTT"),
    ],
)
def test_truncated_or_bad_publish_is_refused(data: bytes, text: str) -> None:
    with pytest.raises(mp.MqttProtocolError) as refused:
        mp.PacketDecoder().feed(data)
    assert str(refused.value) == text


def test_trace_lines_are_nats_server_s() -> None:
    """The -V lines, as nats-server 2.15 printed them for the same packets."""
    from pynats.server import mqtt_trace

    connect = mp.Connect("MQTT", 4, True, 30, "tr", mp.Will("w/t", b"bye", 1, False), "user", b"pw")
    assert mqtt_trace.incoming(connect, 0) == [
        "<<- [CONNECT clientID=tr keepAlive=45s will=(topic=w/t QoS=1 retain=false) clean "
        "username=user password=****]"
    ]
    subscribe = mp.Subscribe(1, [("a/b", 1), ("c/#", 0)])
    assert mqtt_trace.incoming(subscribe, 0) == [
        "<<- [SUBSCRIBE [a/b (a.b) QoS=1, c/# (c.>) QoS=0] pi=1]"
    ]
    publish = mp.Publish("a/b", b"hello", 1, False, False, 5)
    assert mqtt_trace.incoming(publish, 0) == [
        "<<- [PUBLISH a/b dup=false QoS=1 retain=false size=5 pi=5]",
        '<<- MSG_PAYLOAD: ["hello"]',
    ]
    assert mqtt_trace.incoming(mp.Unsubscribe(2, ["c/#"]), 0) == [
        "<<- [UNSUBSCRIBE [c/# (c.>)] pi=2]"
    ]
    assert mqtt_trace.incoming(mp.PacketId(mp.PUBACK, 1), 0) == ["<<- [PUBACK pi=1]"]
    assert mqtt_trace.incoming(mp.Simple(mp.PINGREQ), 0) == ["<<- [PINGREQ]"]
    assert mqtt_trace.incoming(mp.Simple(mp.DISCONNECT), 0) == ["<<- [DISCONNECT]"]
    assert mqtt_trace.outgoing(mp.connack(False, 0)) == "->> [CONNACK sp=false rc=0]"
    assert mqtt_trace.outgoing(mp.suback(1, [1, 0])) == "->> [SUBACK pi=1]"
    assert mqtt_trace.outgoing(mp.packet_id(mp.PUBACK, 5)) == "->> [PUBACK pi=5]"
    assert mqtt_trace.outgoing(mp.packet_id(mp.UNSUBACK, 2)) == "->> [UNSUBACK pi=2]"
    assert mqtt_trace.outgoing(mp.PINGRESP_PACKET) == "->> [PINGRESP]"
    assert (
        mqtt_trace.outgoing(mp.publish(b"a/b", b"hello", 1, pid=1))
        == "->> [PUBLISH a/b dup=false QoS=1 retain=false size=5 pi=1]"
    )
