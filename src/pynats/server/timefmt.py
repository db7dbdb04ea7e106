"""Times and durations as nats-server writes and reads them, in integer nanoseconds.

- Timestamps: RFC 3339 in UTC with up to nine fractional digits, trailing zeros trimmed
  (Go's RFC3339Nano); Go's zero time is `0001-01-01T00:00:00Z` (we use 0 ns for it).
- Durations: Go's `time.Duration` text (`1h2m3.5s`, `15m0s`, `250ms`).
"""

from __future__ import annotations

import calendar
import re
import time

ZERO_TIME = "0001-01-01T00:00:00Z"
NS_PER_S = 1_000_000_000

_RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)


_seconds_cache: dict[int, str] = {}


def rfc3339(ns: int) -> str:
    """RFC3339Nano in UTC; 0 is Go's zero time."""
    if not ns:
        return ZERO_TIME
    secs, frac = divmod(ns, NS_PER_S)
    base = _seconds_cache.get(secs)
    if base is None:
        if len(_seconds_cache) > 4096:
            _seconds_cache.clear()
        base = _seconds_cache[secs] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def parse_rfc3339(text: str) -> int:
    """Nanoseconds since the epoch (Go's zero time -> 0). Raises ValueError."""
    m = _RFC3339_RE.match(text)
    if m is None:
        raise ValueError(f"parsing time {text!r} as RFC3339")
    year, month, day, hour, minute, sec = (int(m.group(i)) for i in range(1, 7))
    if year == 1 and month == 1 and day == 1 and not (hour or minute or sec):
        return 0
    frac = m.group(7) or ""
    ns = int((frac + "000000000")[:9])
    secs = calendar.timegm((year, month, day, hour, minute, sec, 0, 0, 0))
    if m.group(9):
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        secs -= offset if m.group(9) == "+" else -offset
    return secs * NS_PER_S + ns


def go_duration(ns: int) -> str:
    """Go's Duration.String() of `ns` nanoseconds."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return sign + _fraction(ns, 1_000) + "µs"
    if ns < NS_PER_S:
        return sign + _fraction(ns, 1_000_000) + "ms"
    hours, rem = divmod(ns, 3600 * NS_PER_S)
    minutes, rem = divmod(rem, 60 * NS_PER_S)
    out = sign
    if hours:
        out += f"{hours}h"
    if hours or minutes:
        out += f"{minutes}m"
    return out + _fraction(rem, NS_PER_S) + "s"


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")


def parse_go_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds (surrounding blanks ignored). ValueError."""
    from .conf.units import parse_duration_ns

    return parse_duration_ns(text.strip())
