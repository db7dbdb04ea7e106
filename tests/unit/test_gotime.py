"""Times and durations written and read the way nats-server (Go) does."""

from __future__ import annotations

import pytest

from pynats.gotime import (
    NS_PER_S,
    ZERO_TIME,
    DurationError,
    format_duration,
    parse_duration,
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
def test_format_duration_strings(ns: int, text: str) -> None:
    assert format_duration(ns) == text
    assert parse_duration(text) == ns


def test_parse_duration_rejects_garbage() -> None:
    assert parse_duration("1h30m") == 5400 * 10**9
    for bad in ("", "5", "1x", "h1"):
        with pytest.raises(ValueError):
            parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h30m", 5400.0),
        ("2m", 120.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("1h0m0.5s", 3600.5),
        (".5s", 0.5),
        ("1.s", 1.0),
        ("0", 0.0),
        ("-0", 0.0),
        ("+5s", 5.0),
        ("-1m", -60.0),
        ("300us", 0.0003),
        ("1m1s1ms", 61.001),
    ],
)
def test_parse_duration_reads_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) / NS_PER_S == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("1ns", 1),
        ("1.5\u00b5s", 1500),  # micro sign
        ("2\u03bcs", 2000),  # Greek mu
        ("3us", 3000),
        ("1.0000000009s", 1_000_000_000),
        ("1.9999999999s", 1_999_999_999),
        ("2562047h47m16.854775807s", 2**63 - 1),
        ("-2562047h47m16.854775808s", -(2**63)),
    ],
)
def test_parse_duration_is_exact_like_go(text: str, nanoseconds: int) -> None:
    assert parse_duration(text) == nanoseconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("abc", 'time: invalid duration "abc"'),
        ("-", 'time: invalid duration "-"'),
        (".s", 'time: invalid duration ".s"'),
        (" 1s", 'time: invalid duration " 1s"'),
        ("5", 'time: missing unit in duration "5"'),
        ("1..5s", 'time: missing unit in duration "1..5s"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("1h-5m", 'time: unknown unit "h-" in duration "1h-5m"'),
        ("1Ms", 'time: unknown unit "Ms" in duration "1Ms"'),
        ("1\u00b5", 'time: unknown unit "\\xc2\\xb5" in duration "1\\xc2\\xb5"'),
        ("\t", 'time: invalid duration "\\x09"'),
        ("9223372037s", 'time: invalid duration "9223372037s"'),
        ("2562047h47m16.854775808s", 'time: invalid duration "2562047h47m16.854775808s"'),
        ("99999999999999999999ns", 'time: invalid duration "99999999999999999999ns"'),
    ],
)
def test_parse_duration_errors_read_like_go(text: str, message: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)
