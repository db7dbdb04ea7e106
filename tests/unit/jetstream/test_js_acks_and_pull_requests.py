"""The ack subject and payload grammar, and MSG.NEXT bodies: pure parsing, no server."""

from __future__ import annotations

import pytest

from pynats.jetstream import acks, pull

NS = 1_000_000_000


def test_v1_and_v2_ack_subjects_name_the_same_message() -> None:
    v1 = b"$JS.ACK.ORDERS.worker.3.42.17.1714550000123456789.5"
    v2 = b"$JS.ACK.hub.ACCHASH1.ORDERS.worker.3.42.17.1714550000123456789.5"
    assert acks.parse_subject(v1) == (3, 42, 17)
    assert acks.parse_subject(v2) == (3, 42, 17)
    assert acks.subject_names(v1) == acks.subject_names(v2) == (b"ORDERS", b"worker")
    v2_more = v2 + b".extra.tokens"
    assert acks.parse_subject(v2_more) == (3, 42, 17)


@pytest.mark.parametrize(
    "subject", [b"$JS.ACK.S.C.1.2", b"$JS.ACK.S.C.x.2.3.4.5", b"$JS.ACK.S.C.1.2.3.4.5.6"]
)
def test_malformed_ack_subjects_are_not_acks(subject) -> None:
    assert acks.parse_subject(subject) is None


def test_reply_subject_is_what_clients_parse() -> None:
    prefix = acks.ack_prefix("S", "C")
    assert acks.reply_subject(prefix, 1, 5, 7, 123, 0) == b"$JS.ACK.S.C.1.5.7.123.0"


@pytest.mark.parametrize(
    ("payload", "kind", "rest"),
    [
        (b"", acks.ACK, b""),
        (b"+ACK", acks.ACK, b""),
        (b"+OK", acks.ACK, b""),
        (b"-NAK", acks.NAK, b""),
        (b'-NAK {"delay": 5000}', acks.NAK, b'{"delay": 5000}'),
        (b"+WPI", acks.PROGRESS, b""),
        (b"+NXT", acks.NEXT, b""),
        (b"+NXT 10", acks.NEXT, b"10"),
        (b"+TERM", acks.TERM, b""),
        (b"+TERM no thanks", acks.TERM, b"no thanks"),
        (b"hello", 0, b""),
    ],
)
def test_ack_payloads(payload, kind, rest) -> None:
    assert acks.parse_payload(payload) == (kind, rest)


@pytest.mark.parametrize(
    ("rest", "delay"),
    [
        (b"", 0),
        (b'{"delay": 2000000000}', 2 * NS),
        (b"2s", 2 * NS),
        (b"1m30s", 90 * NS),
        (b'{"delay": "soon"}', 0),
        (b"{broken", 0),
        (b"forever", 0),
    ],
)
def test_nak_delays_and_bad_ones_are_plain_naks(rest, delay) -> None:
    assert acks.nak_delay(rest) == delay


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"", pull.PullRequest()),
        (b"7", pull.PullRequest(batch=7)),
        (b" 3 ", pull.PullRequest(batch=3)),
        (b"abc", pull.PullRequest()),
        (b"null", pull.PullRequest()),
        (
            b'{"batch": 5, "expires": 1000, "no_wait": true, "max_bytes": 99}',
            pull.PullRequest(batch=5, expires=1000, no_wait=True, max_bytes=99),
        ),
        (b'{"batch": 2, "unknown": 1}', pull.PullRequest(batch=2)),
        (
            b'{"group": "g", "min_pending": 3, "id": "pin", "priority": 2}',
            pull.PullRequest(batch=0, group="g", min_pending=3, pin_id="pin", priority=2),
        ),
    ],
)
def test_pull_request_bodies(payload, expected) -> None:
    assert pull.parse_request(payload) == expected


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        (b"{bad", "invalid character 'b' looking for beginning of object key string"),
        (
            b'{"batch": 1.5}',
            "json: cannot unmarshal number 1.5 into Go struct field .batch of type int",
        ),
        (
            b'{"expires": "1s"}',
            "json: cannot unmarshal string into Go struct field .expires of type time.Duration",
        ),
    ],
)
def test_bad_pull_requests(payload, text) -> None:
    with pytest.raises(pull.BadPullRequest) as err:
        pull.parse_request(payload)
    assert str(err.value) == text


def test_status_blocks() -> None:
    assert pull.NO_MESSAGES == b"NATS/1.0 404 No Messages\r\n\r\n"
    assert pull.status("408", "Request Timeout", pull.pending_headers(3, 0)) == (
        b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\nNats-Pending-Bytes: 0\r\n\r\n"
    )
    assert pull.exceeded_expires(1_500_000_000) == (
        b"NATS/1.0 409 Exceeded MaxRequestExpires of 1.5s\r\n\r\n"
    )
    assert pull.heartbeat(4, 9, "$JS.FC.S.C.abcd") == (
        b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 4\r\nNats-Last-Stream: 9\r\n"
        b"Nats-Consumer-Stalled: $JS.FC.S.C.abcd\r\n\r\n"
    )
