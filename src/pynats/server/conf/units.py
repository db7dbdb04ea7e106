"""Durations and storage sizes as nats-server reads them from configuration values.

Go durations themselves are parsed by `pynats.gotime`; this module adds the config rules:

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

from pynats.gotime import NS_PER_S, DurationError, parse_duration

_STORAGE_SHIFTS = {"K": 10, "M": 20, "G": 30, "T": 40}
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


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
    return wrap_int64(number << _STORAGE_SHIFTS[suffix])


def _parse_int64(text: str) -> int:
    """Go's `strconv.ParseInt(text, 10, 64)` with its error text."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not all("0" <= char <= "9" for char in body):
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(text)}: invalid syntax")
    number = int(text)
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"strconv.ParseInt: parsing {go_quote(text)}: value out of range")
    return number


def wrap_int64(value: int) -> int:
    """Two's-complement wrap-around, as Go's int64 arithmetic does silently."""
    return ((value - INT64_MIN) % (1 << 64)) + INT64_MIN


def go_quote(text: str) -> str:
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
            return parse_duration(value) / NS_PER_S, None
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
