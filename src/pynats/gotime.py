"""Go's times and durations, as nats-server and natscli write and read them: one module for
the server, the store and the CLI, with no dependencies (the CLI imports it without the server).

Every duration here is an integer of nanoseconds (Go's `time.Duration`); callers that keep
seconds convert at their edge, so a name never means two units.

- Durations: `format_duration(ns)` is Go's `Duration.String()` (`1h2m3.5s`, `15m0s`, `250ms`);
  `parse_duration(text)` is Go's `time.ParseDuration`, exact, with Go's error texts
  (`DurationError`).
- Timestamps: `rfc3339(ns)` is Go's RFC3339Nano in UTC (trailing zeros trimmed) and
  `parse_rfc3339(text)` reads it back; Go's zero time `0001-01-01T00:00:00Z` is 0 ns.
"""

from __future__ import annotations

import calendar
import re
import time

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_DURATION_UNITS = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # micro sign
    "\u03bcs": MICROSECOND,  # Greek small letter mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}
_MAX_DURATION_NS = (1 << 63) - 1


class DurationError(ValueError):
    """A duration string Go's `time.ParseDuration` rejects; the text is Go's."""


def parse_duration(text: str) -> int:
    """Nanoseconds in a Go duration string (Go's `time.ParseDuration`, exact). DurationError."""
    rest = text
    negative = False
    if rest[:1] in ("-", "+"):
        negative = rest[0] == "-"
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise DurationError(f"time: invalid duration {_go_time_quote(text)}")
    total = 0
    while rest:
        amount, rest = _duration_term(rest, text)
        total += amount
        if total > 1 << 63:
            raise DurationError(f"time: invalid duration {_go_time_quote(text)}")
    if negative:
        return -total
    if total > _MAX_DURATION_NS:
        raise DurationError(f"time: invalid duration {_go_time_quote(text)}")
    return total


def _duration_term(rest: str, whole: str) -> tuple[int, str]:
    """One `<number><unit>` from the front of `rest`, in nanoseconds, and what follows."""
    invalid = DurationError(f"time: invalid duration {_go_time_quote(whole)}")
    if not (rest[0] == "." or "0" <= rest[0] <= "9"):
        raise invalid
    whole_digits, rest = _leading_digits(rest)
    if whole_digits and int(whole_digits) > 1 << 63:
        raise invalid
    fraction_digits = ""
    if rest[:1] == ".":
        fraction_digits, rest = _leading_digits(rest[1:])
        if not whole_digits and not fraction_digits:
            raise invalid
    elif not whole_digits:
        raise invalid
    unit_end = 0
    while unit_end < len(rest) and not (rest[unit_end] == "." or "0" <= rest[unit_end] <= "9"):
        unit_end += 1
    unit, rest = rest[:unit_end], rest[unit_end:]
    if not unit:
        raise DurationError(f"time: missing unit in duration {_go_time_quote(whole)}")
    if unit not in _DURATION_UNITS:
        raise DurationError(
            f"time: unknown unit {_go_time_quote(unit)} in duration {_go_time_quote(whole)}"
        )
    scale = _DURATION_UNITS[unit]
    amount = int(whole_digits or "0")
    if amount > (1 << 63) // scale:
        raise invalid
    amount *= scale
    amount += _fraction_ns(fraction_digits, scale)
    if amount > 1 << 63:
        raise invalid
    return amount, rest


def _leading_digits(text: str) -> tuple[str, str]:
    end = 0
    while end < len(text) and "0" <= text[end] <= "9":
        end += 1
    return text[:end], text[end:]


def _fraction_ns(digits: str, scale: int) -> int:
    """Go keeps the fraction's digits while they fit in an int64 and converts through a
    float64, so `1.5555555555s` rounds the way Go rounds."""
    value, divisor = 0, 1
    for digit in digits:
        if value > ((1 << 63) - 1) // 10:
            break
        candidate = value * 10 + int(digit)
        if candidate < 0 or candidate > (1 << 63):
            break
        value, divisor = candidate, divisor * 10
    if not value:
        return 0
    return int(float(value) * (float(scale) / float(divisor)))


def _go_time_quote(text: str) -> str:
    """How Go's time package quotes input in errors: non-ASCII and control bytes as \\xNN."""
    out = ['"']
    for char in text:
        if char < " " or char >= "\x80":
            raw = char.encode("utf-8", "surrogateescape")
            out.extend(f"\\x{byte:02x}" for byte in raw)
        else:
            if char in '"\\':
                out.append("\\")
            out.append(char)
    out.append('"')
    return "".join(out)


NS_PER_S = SECOND


ZERO_TIME = "0001-01-01T00:00:00Z"

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
        # nine digits without a format spec, which is parsed on every call (every direct
        # get's reply formats a timestamp)
        base += "." + str(frac + NS_PER_S)[1:].rstrip("0")
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


def format_duration(ns: int) -> str:
    """Go's `Duration.String()` of `ns` nanoseconds: `1h2m3.5s`, `15m0s`, `1.5µs`, `0s`."""
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
