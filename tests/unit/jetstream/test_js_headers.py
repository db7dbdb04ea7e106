"""NATS header blocks: parsing, lookup and edits keep the wire format exact."""

from __future__ import annotations

from pynats.jetstream import headers as h


def test_parse_and_get_find_values_case_sensitively() -> None:
    block = b"NATS/1.0\r\nNats-Msg-Id: abc\r\nX: 1\r\nX: 2\r\n\r\n"
    assert h.parse(block) == {b"Nats-Msg-Id": b"abc", b"X": b"1"}
    assert h.parse_all(block) == [(b"Nats-Msg-Id", b"abc"), (b"X", b"1"), (b"X", b"2")]
    assert h.get(block, b"Nats-Msg-Id") == b"abc"
    assert h.get(block, b"nats-msg-id") is None
    assert h.get(block, b"Missing") is None


def test_get_does_not_match_a_longer_header_name() -> None:
    block = b"NATS/1.0\r\nNats-Expected-Last-Subject-Sequence-Subject: a.b\r\n\r\n"
    assert h.get(block, b"Nats-Expected-Last-Subject-Sequence") is None
    assert h.get(block, b"Nats-Expected-Last-Subject-Sequence-Subject") == b"a.b"


def test_build_with_status_and_headers() -> None:
    assert h.build(status="404", text="Message Not Found") == (
        b"NATS/1.0 404 Message Not Found\r\n\r\n"
    )
    assert h.build([("A", "1")]) == b"NATS/1.0\r\nA: 1\r\n\r\n"
    assert h.status_of(b"NATS/1.0 408 Request Timeout\r\n\r\n") == ("408", "Request Timeout")
    assert h.status_of(h.EMPTY_BLOCK) == ("", "")


def test_append_keeps_existing_headers_first() -> None:
    assert h.append(None, [("Nats-Stream", "S")]) == b"NATS/1.0\r\nNats-Stream: S\r\n\r\n"
    block = b"NATS/1.0\r\nH: x\r\n\r\n"
    assert h.append(block, [("Nats-Stream", "S"), ("Nats-Sequence", "3")]) == (
        b"NATS/1.0\r\nH: x\r\nNats-Stream: S\r\nNats-Sequence: 3\r\n\r\n"
    )


def test_remove_drops_named_headers_and_empty_blocks() -> None:
    block = b"NATS/1.0\r\nA: 1\r\nB: 2\r\n\r\n"
    assert h.remove(block, (b"A",)) == b"NATS/1.0\r\nB: 2\r\n\r\n"
    assert h.remove(block, (b"A", b"B")) == b""


def test_strip_status_keeps_headers() -> None:
    assert h.strip_status(b"NATS/1.0 503\r\nA: 1\r\n\r\n") == b"NATS/1.0\r\nA: 1\r\n\r\n"
    assert h.strip_status(b"NATS/1.0\r\nA: 1\r\n\r\n") == b"NATS/1.0\r\nA: 1\r\n\r\n"
