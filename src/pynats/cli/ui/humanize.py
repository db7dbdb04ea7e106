"""Value formatting shared by every table and info screen (cli.md §0.5).

natscli renders numbers with thousands separators, sizes in IEC units (base 1024), times as
local `YYYY-MM-DD HH:MM:SS`, and durations in two styles: Go's `time.Duration.String()`
(`1.512379ms`, `2m0s`) where it prints a raw Go duration (rtt lines, flag echoes), which is
`pynats.gotime.format_duration`, and the "human" style of its info screens (`30.00s`, `2m3s`,
`1d2h3m4s`, `never`), which is `human_duration` here. Durations are integer nanoseconds;
callers holding float seconds (nats-py, asyncio) convert at their edge. `value()` picks the
right rendering for a Python value, like natscli's `columns.F`.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from pynats.gotime import MICROSECOND, MILLISECOND, NS_PER_S, format_duration, parse_rfc3339

# Go's largest time.Duration (math.MaxInt64 ns): what the server sends for "never".
MAX_DURATION_NS = 2**63 - 1
_IEC_SUFFIXES = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def comma(number: int) -> str:
    """`1234567` -> `1,234,567`."""
    return f"{int(number):,}"


def float_comma(number: float, digits: int = 3) -> str:
    """Separators and at most `digits` decimals, trailing zeros dropped: `1,234.5`."""
    text = f"{number:,.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def ibytes(size: int | float) -> str:
    """IEC size like go-humanize's IBytes: `0 B`, `512 B`, `1.9 KiB`, `318 KiB`, `21 MiB`."""
    size = int(size)
    if size < 0:
        return f"-{ibytes(-size)}"
    if size < 10:
        return f"{size} B"
    exponent = 0
    while exponent + 1 < len(_IEC_SUFFIXES) and size >= 1024 ** (exponent + 1):
        exponent += 1
    value = math.floor(size / 1024**exponent * 10 + 0.5) / 10
    if value < 10:
        return f"{value:.1f} {_IEC_SUFFIXES[exponent]}"
    return f"{value:.0f} {_IEC_SUFFIXES[exponent]}"


def human_duration(ns: int) -> str:
    """natscli's info-screen duration: `850µs`, `12ms`, `30.00s`, `2m3s`, `1d2h3m4s`, `never`."""
    if ns >= MAX_DURATION_NS:
        return "never"
    if ns < 0:
        return format_duration(ns)
    if ns < MILLISECOND:
        return format_duration(round_duration(ns, MICROSECOND))
    if ns < NS_PER_S:
        return format_duration(round_duration(ns, MILLISECOND))
    total_seconds = ns // NS_PER_S
    minutes, seconds = divmod(total_seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    years, days = divmod(days, 365)
    if years:
        return f"{years}y{days}d{hours}h{minutes}m{seconds}s"
    if days:
        return f"{days}d{hours}h{minutes}m{seconds}s"
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{ns / NS_PER_S:.2f}s"


def round_duration(ns: int, unit_ns: int) -> int:
    """Go's `Duration.Round(unit)` for a non-negative duration: halves round up."""
    quotient, remainder = divmod(ns, unit_ns)
    if remainder * 2 >= unit_ns:
        quotient += 1
    return quotient * unit_ns


def seconds_to_ns(seconds: float) -> int:
    """A duration nats-py or the clock gave in float seconds, as integer nanoseconds."""
    return round(seconds * NS_PER_S)


def ns_between(later: dt.datetime, earlier: dt.datetime) -> int:
    """`later - earlier` in nanoseconds (exact to the microsecond datetimes keep)."""
    delta = later - earlier
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * MICROSECOND


def utc_time(ns: int) -> dt.datetime:
    """Nanoseconds since the epoch as an aware UTC datetime (truncated to microseconds)."""
    return _EPOCH + dt.timedelta(microseconds=ns // MICROSECOND)


def local_time(moment: dt.datetime) -> str:
    """A timestamp as natscli shows it: local time `YYYY-MM-DD HH:MM:SS`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def parse_go_time(text: str) -> dt.datetime | None:
    """A timestamp the server sent in JSON (RFC 3339 with nanoseconds) as a UTC datetime;
    None when it is missing, unparseable or Go's zero time (a time the server never set)."""
    try:
        ns = parse_rfc3339(text.strip())
    except ValueError:
        return None
    return utc_time(ns) if ns else None


def compact_names(names: list[str]) -> list[str]:
    """natscli's compactStrings: server names without the dot-separated suffix they all
    share (`n1.example.com`, `n2.example.com` -> `n1`, `n2`); a name is never emptied."""
    split = [name.split(".") for name in names]
    shortest = min((len(parts) for parts in split), default=0)
    shared = 0
    while (
        len(names) > 1
        and shared < shortest - 1
        and len({tuple(parts[len(parts) - shared - 1 :]) for parts in split}) == 1
    ):
        shared += 1
    return [".".join(parts[: len(parts) - shared]) for parts in split]


def value(item: Any) -> str:
    """Render any value the way natscli's columns layout does (`columns.F`)."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return comma(item)
    if isinstance(item, float):
        return float_comma(item)
    if isinstance(item, dt.datetime):
        return local_time(item)
    if isinstance(item, dt.timedelta):
        return human_duration(seconds_to_ns(item.total_seconds()))
    if isinstance(item, list | tuple):
        return ", ".join(str(x) for x in item)
    if item is None:
        return ""
    return str(item)
