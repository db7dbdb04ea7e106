"""Times and durations written and read the way nats-server (Go) does."""

from __future__ import annotations

import pytest

from pynats.server.timefmt import (
    ZERO_TIME,
    go_duration,
    parse_go_duration,
    parse_rfc3339,
    rfc3339,
)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, ZERO_TIME),
        (1_700_000_000_000_000_000, "2023-11-14T22:13:20Z"),
        (1_700_000_000_123_456_789, "2023-11-14T22:13:20.123456789Z"),
        (1_700_000_000_120_000_000, "2023-11-14T22:13:20.12Z"),
    ],
)
def test_rfc3339_trims_trailing_zeros_like_go(ns: int, text: str) -> None:
    assert rfc3339(ns) == text
    assert parse_rfc3339(text) == ns


def test_parse_rfc3339_with_offsets() -> None:
    assert parse_rfc3339("2024-01-01T01:00:00.5+01:00") == parse_rfc3339("2024-01-01T00:00:00.5Z")
    with pytest.raises(ValueError):
        parse_rfc3339("yesterday")


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (15 * 60 * 10**9, "15m0s"),
        (2_500_000_000, "2.5s"),
        (1_500_000, "1.5ms"),
        (354_000, "354µs"),
        (999, "999ns"),
        (3_723 * 10**9, "1h2m3s"),
    ],
)
def test_go_duration_strings(ns: int, text: str) -> None:
    assert go_duration(ns) == text
    assert parse_go_duration(text) == ns


def test_parse_go_duration_rejects_garbage() -> None:
    assert parse_go_duration("1h30m") == 5400 * 10**9
    for bad in ("", "5", "1x", "h1"):
        with pytest.raises(ValueError):
            parse_go_duration(bad)
