"""Schedule patterns: which texts are patterns, and when each fires next."""

from __future__ import annotations

import datetime as dt

import pytest

from pynats.jetstream.errors import ApiError
from pynats.jetstream.schedule_patterns import next_after, parse

NS = 1_000_000_000


def ns(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * NS


def fires(pattern: str, after: str, zone: str | None = None) -> str:
    found = next_after(parse(pattern, zone), ns(after))
    assert found is not None
    return dt.datetime.fromtimestamp(found // NS, dt.UTC).isoformat()


@pytest.mark.parametrize(
    ("pattern", "after", "zone", "expected"),
    [
        ("*/15 * * * * *", "2026-03-01T10:00:07+00:00", None, "2026-03-01T10:00:15+00:00"),
        ("0 30 9 * * MON-FRI", "2026-03-06T10:00:00+00:00", None, "2026-03-09T09:30:00+00:00"),
        ("0 0 0 1 JAN,JUL *", "2026-03-01T00:00:00+00:00", None, "2026-07-01T00:00:00+00:00"),
        ("0 0 12 13 * FRI", "2026-03-01T00:00:00+00:00", None, "2026-03-06T12:00:00+00:00"),
        ("@monthly", "2026-12-15T00:00:00+00:00", None, "2027-01-01T00:00:00+00:00"),
        ("@daily", "2026-06-01T12:00:00+00:00", "Europe/Amsterdam", "2026-06-01T22:00:00+00:00"),
        ("@hourly", "2026-06-01T12:00:00+00:00", None, "2026-06-01T13:00:00+00:00"),
        ("0 0 0 29 FEB *", "2026-03-01T00:00:00+00:00", None, "2028-02-29T00:00:00+00:00"),
        ("@every 1m30s", "2026-06-01T12:00:00+00:00", None, "2026-06-01T12:01:30+00:00"),
    ],
)
def test_next_firing(pattern: str, after: str, zone: str | None, expected: str) -> None:
    assert fires(pattern, after, zone) == expected


def test_an_at_fires_once() -> None:
    pattern = parse("@at 2026-06-01T12:00:00Z", None)
    assert next_after(pattern, ns("2026-06-01T11:00:00+00:00")) == ns("2026-06-01T12:00:00+00:00")
    assert next_after(pattern, ns("2026-06-01T12:00:00+00:00")) is None


@pytest.mark.parametrize(
    ("pattern", "zone", "err_code"),
    [
        ("* * * * *", None, 10189),
        ("0 0 0 L * *", None, 10189),
        ("0 0 0 * * 7", None, 10189),
        ("60 * * * * *", None, 10189),
        ("*/0 * * * * *", None, 10189),
        ("5-1 * * * * *", None, 10189),
        ("@every 999ms", None, 10189),
        ("@every 1s", "UTC", 10189),
        ("@at 2026-06-01T12:00:00Z", "UTC", 10189),
        ("@at tomorrow", None, 10189),
        ("@daily", "Nowhere/Else", 10223),
    ],
)
def test_what_is_not_a_pattern(pattern: str, zone: str | None, err_code: int) -> None:
    with pytest.raises(ApiError) as refused:
        parse(pattern, zone)
    assert refused.value.err_code == err_code
