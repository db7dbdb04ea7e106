"""The syslog wire format and `remote_syslog` addresses (no socket)."""

from __future__ import annotations

import time

import pytest

from pynats.server.syslog import (
    SyslogError,
    format_message,
    parse_remote,
    process_tag,
    rfc3339_local,
    stamp_local,
)


def test_a_remote_message_carries_the_rfc3339_time_and_the_host() -> None:
    data = format_message(
        5, "nats-server", "Server is ready", is_local=False, now=0.0, hostname="box", pid=42
    )
    assert data == f"<5>{rfc3339_local(0.0)} box nats-server[42]: Server is ready\n".encode()


def test_a_local_message_has_the_short_stamp_and_no_host() -> None:
    data = format_message(29, "nats-server", "x\n", is_local=True, now=0.0, hostname="box", pid=7)
    assert data == f"<29>{stamp_local(0.0)} nats-server[7]: x\n".encode()


def test_time_stamps_are_go_layouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        assert rfc3339_local(86400 * 3 + 5) == "1970-01-04T00:00:05Z"
        assert stamp_local(86400 * 3 + 5) == "Jan  4 00:00:05"
        monkeypatch.setenv("TZ", "EST+5")
        time.tzset()
        assert rfc3339_local(86400 * 3 + 5) == "1970-01-03T19:00:05-05:00"
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("udp://127.0.0.1:514", ("udp", "127.0.0.1:514")),
        ("tcp://[::1]:514", ("tcp", "[::1]:514")),
        ("unix:///var/run/x.sock", ("unix", "/var/run/x.sock")),
    ],
)
def test_remote_addresses(url: str, parsed: tuple[str, str]) -> None:
    assert parse_remote(url) == parsed


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://h:1", 'error invalid network type: "http"'),
        ("localhost:514", 'error invalid network type: "localhost"'),
        ("127.0.0.1:514", 'parse "127.0.0.1:514": first path segment in URL cannot contain colon'),
        ("udp://[::1", "parse \"udp://[::1\": missing ']' in host"),
    ],
)
def test_bad_remote_addresses_are_refused_in_nats_servers_words(url: str, error: str) -> None:
    with pytest.raises(SyslogError) as e:
        parse_remote(url)
    assert str(e.value) == error


def test_the_tag_is_the_program_name() -> None:
    assert process_tag("/usr/local/bin/nats-server") == "nats-server"
    assert process_tag("/opt/pynats-server") == "pynats-server"
    assert process_tag("/x/pynats/server/__main__.py") == "nats-server"
