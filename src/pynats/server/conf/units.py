"""Durations and storage sizes as nats-server reads them from configuration values.

- `parse_duration("1h30m")` follows Go's `time.ParseDuration`: a sign, then one or more
  decimal numbers each with a unit (`ns`, `us`/`µs`/`μs`, `ms`, `s`, `m`, `h`); `"0"` needs
  no unit. Errors carry Go's text (`time: invalid duration "abc"`).
- `parse_size("1G")` follows nats-server's `getStorageSize` for JetStream limits: an int is
  taken as is; a string is an integer followed by one of `K`, `M`, `G`, `T` (upper case,
  powers of 1024), and `""` is 0.
- `duration_from_config(field, value)` is how most duration options read a value: a string
  is a duration, a bare integer is seconds plus a warning for the caller to report.

Errors are `ValueError`s whose text is what nats-server says after the field name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
_STORAGE_SHIFTS = {"K": 10, "M": 20, "G": 30, "T": 40}
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


class DurationError(ValueError):
    """A duration string Go's `time.ParseDuration` rejects; the text is Go's."""


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string (`"1h30m"` -> 5400.0)."""
    return parse_duration_ns(text) / SECOND


def parse_duration_ns(text: str) -> int:
    """Nanoseconds in a Go duration string; exact, like Go's `time.Duration`."""
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


def parse_size(value: Any) -> int:
    """Bytes in a JetStream storage size: an int as is, or `"<int>K|M|G|T"` (powers of 1024)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise ValueError("must be int64 or string")
    if value == "":
        return 0
    number_text, suffix = value[:-1], value[-1:]
    number = _parse_int64(number_text)
    if suffix not in _STORAGE_SHIFTS:
        raise ValueError("sizes defined as strings must end in K, M, G, T")
    return _wrap_int64(number << _STORAGE_SHIFTS[suffix])


def _parse_int64(text: str) -> int:
    """Go's `strconv.ParseInt(text, 10, 64)` with its error text."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not all("0" <= char <= "9" for char in body):
        raise ValueError(f"strconv.ParseInt: parsing {_go_quote(text)}: invalid syntax")
    number = int(text)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise ValueError(f"strconv.ParseInt: parsing {_go_quote(text)}: value out of range")
    return number


def _wrap_int64(value: int) -> int:
    return ((value - _INT64_MIN) % (1 << 64)) + _INT64_MIN


def _go_quote(text: str) -> str:
    """Close to Go's `strconv.Quote`: printable runes kept, the rest escaped."""
    short = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    short |= {"\v": "\\v", '"': '\\"', "\\": "\\\\"}
    out = ['"']
    for char in text:
        code = ord(char)
        if char in short:
            out.append(short[char])
        elif 0xDC80 <= code <= 0xDCFF:  # an invalid UTF-8 byte kept as a surrogate escape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char.isprintable() or char == " ":
            out.append(char)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def duration_from_config(field: str, value: Any) -> tuple[float, str | None]:
    """Seconds for a duration option, and the warning nats-server logs for bare integers.

    A string is parsed as a Go duration (ValueError: `error parsing <field>: time: ...`);
    an integer counts seconds and comes with `<field> should be converted to a duration`.
    Anything else is refused with Go's wording (nats-server also logs the warning then).
    """
    if isinstance(value, str):
        try:
            return parse_duration(value), None
        except DurationError as exc:
            raise ValueError(f"error parsing {field}: {exc}") from None
    warning = f"{field} should be converted to a duration"
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value), warning
    raise ValueError(f"interface conversion: interface {{}} is {go_type_name(value)}, not int64")


def go_type_name(value: Any) -> str:
    """The Go type nats-server's parser would have produced for a config value."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "time.Time"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return type(value).__name__
