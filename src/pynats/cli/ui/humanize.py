"""Value formatting shared by every table and info screen (cli.md §0.5).

natscli renders numbers with thousands separators, sizes in IEC units (base 1024), times as
local `YYYY-MM-DD HH:MM:SS`, and durations in two styles: the "human" style of its info screens
(`30.00s`, `2m3s`, `1d2h3m4s`, `never`) and Go's `time.Duration.String()` (`1.512379ms`,
`2m0s`) where it prints a raw Go duration (rtt lines, flag echoes). `value()` picks the right
rendering for a Python value, like natscli's `columns.F`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

NANOS_PER_SECOND = 1_000_000_000
MAX_DURATION_NS = 2**63 - 1
_IEC_SUFFIXES = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]


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


def go_duration(nanos: int | float) -> str:
    """Go's `time.Duration.String()`: `0s`, `850ns`, `1.5µs`, `1.512379ms`, `2m0s`, `1h0m0.5s`."""
    nanos = int(nanos)
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < 1_000:
        return f"{sign}{nanos}ns"
    if nanos < 1_000_000:
        return f"{sign}{_fraction(nanos, 1_000)}µs"
    if nanos < NANOS_PER_SECOND:
        return f"{sign}{_fraction(nanos, 1_000_000)}ms"
    hours, rest = divmod(nanos, 3600 * NANOS_PER_SECOND)
    minutes, rest = divmod(rest, 60 * NANOS_PER_SECOND)
    seconds = _fraction(rest, NANOS_PER_SECOND)
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{sign}{minutes}m{seconds}s"
    return f"{sign}{seconds}s"


def _fraction(value: int, unit: int) -> str:
    """`value / unit` printed with only the significant fractional digits."""
    whole, frac = divmod(value, unit)
    if frac == 0:
        return str(whole)
    width = len(str(unit)) - 1
    return f"{whole}.{str(frac).rjust(width, '0').rstrip('0')}"


def go_duration_seconds(seconds: float) -> str:
    """`go_duration` for a duration held in float seconds."""
    return go_duration(round(seconds * NANOS_PER_SECOND))


def human_duration(nanos: int | float) -> str:
    """natscli's info-screen duration: `850µs`, `12ms`, `30.00s`, `2m3s`, `1d2h3m4s`, `never`."""
    nanos = int(nanos)
    if nanos >= MAX_DURATION_NS:
        return "never"
    if nanos < 0:
        return go_duration(nanos)
    if nanos < 1_000_000:
        return go_duration(_round_to(nanos, 1_000))
    if nanos < NANOS_PER_SECOND:
        return go_duration(_round_to(nanos, 1_000_000))
    total_seconds = nanos // NANOS_PER_SECOND
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
    return f"{nanos / NANOS_PER_SECOND:.2f}s"


def human_duration_seconds(seconds: float) -> str:
    """`human_duration` for a duration held in float seconds."""
    return human_duration(round(seconds * NANOS_PER_SECOND))


def _round_to(value: int, unit: int) -> int:
    """Go's Duration.Round: halves away from zero."""
    quotient, remainder = divmod(value, unit)
    if remainder * 2 >= unit:
        quotient += 1
    return quotient * unit


def local_time(moment: dt.datetime) -> str:
    """A timestamp as natscli shows it: local time `YYYY-MM-DD HH:MM:SS`."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def rfc3339(moment: dt.datetime | None = None) -> str:
    """Go's `time.RFC3339` in local time: `2025-03-02T10:14:07+01:00` (or `...Z` in UTC)."""
    moment = (moment or dt.datetime.now()).astimezone()
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    offset = moment.utcoffset() or dt.timedelta(0)
    if offset == dt.timedelta(0):
        return text + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{text}{sign}{hours:02d}:{mins:02d}"


_GO_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)")


def parse_go_time(text: str) -> dt.datetime | None:
    """Parse the RFC3339(nano) timestamps the server sends in JSON; None if unparseable."""
    match = _GO_TIME.fullmatch(text.strip())
    if match is None:
        return None
    base, fraction, zone = match.groups()
    micros = int((fraction or ".0")[1:7].ljust(6, "0"))
    zone = "+00:00" if zone == "Z" else zone
    moment = dt.datetime.fromisoformat(base + zone)
    return moment.replace(microsecond=micros)


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
        return human_duration(round(item.total_seconds() * NANOS_PER_SECOND))
    if isinstance(item, list | tuple):
        return ", ".join(str(x) for x in item)
    if item is None:
        return ""
    return str(item)
