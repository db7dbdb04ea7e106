"""Parsers for the value syntaxes natscli accepts in flags and prompts (cli.md §0.3).

Durations: Go's syntax (`ns us µs ms s m h`) plus `d` (24h), `w` (7d), `M` (30d), `y`/`Y`
(365d); parts combine (`1d3h5m`), a leading `-` negates, bare `0` is zero, and any other number
without a unit is an error. Byte sizes: an integer with an optional base-1024 unit; empty or
negative means unlimited (-1). Each parser has a click `ParamType` twin so a flag declared with
`type=DURATION` or `type=BYTE_SIZE` fails at parse time like fisk does.

Durations are returned as float seconds (what asyncio wants) or int nanoseconds (what the
JetStream API wants): see `parse_duration` and `parse_duration_ns`.
"""

from __future__ import annotations

import re

import click

NANOS_PER_SECOND = 1_000_000_000

_UNIT_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": NANOS_PER_SECOND,
    "m": 60 * NANOS_PER_SECOND,
    "h": 3600 * NANOS_PER_SECOND,
    "d": 24 * 3600 * NANOS_PER_SECOND,
    "D": 24 * 3600 * NANOS_PER_SECOND,
    "w": 7 * 24 * 3600 * NANOS_PER_SECOND,
    "W": 7 * 24 * 3600 * NANOS_PER_SECOND,
    "M": 30 * 24 * 3600 * NANOS_PER_SECOND,
    "y": 365 * 24 * 3600 * NANOS_PER_SECOND,
    "Y": 365 * 24 * 3600 * NANOS_PER_SECOND,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|D|w|W|M|y|Y)")

_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
}
_BYTE_SIZE = re.compile(r"(-?\d+)\s*([a-zA-Z]*)")
BYTE_SIZE_ERROR = "bytes must end in B, K, KB, M, MB, G, GB, T or TB"


def parse_duration_ns(text: str) -> int:
    """Parse a natscli duration into integer nanoseconds; ValueError when malformed."""
    value = text.strip()
    if value in ("0", "-0", "+0"):
        return 0
    sign = 1
    if value[:1] in ("-", "+"):
        sign = -1 if value[0] == "-" else 1
        value = value[1:]
    if not value:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_NANOS[match.group(2)]
        position = match.end()
    if position != len(value) or position == 0:
        raise ValueError(f"invalid duration {text!r}")
    return sign * round(total)


def parse_duration(text: str) -> float:
    """Parse a natscli duration into float seconds; ValueError when malformed."""
    return parse_duration_ns(text) / NANOS_PER_SECOND


def parse_byte_size(text: str) -> int:
    """Parse `1GB`, `512k`, `10MiB`, `100` into bytes; empty or negative means -1 (unlimited)."""
    value = text.strip()
    if value == "":
        return -1
    match = _BYTE_SIZE.fullmatch(value)
    if match is None:
        raise ValueError(BYTE_SIZE_ERROR)
    number = int(match.group(1))
    unit = match.group(2).lower()
    if unit not in _BYTE_UNITS:
        raise ValueError(BYTE_SIZE_ERROR)
    if number < 0:
        return -1
    return number * _BYTE_UNITS[unit]


def parse_header(text: str) -> tuple[str, str]:
    """Split a `-H KEY:VALUE` flag on the first colon, both sides trimmed."""
    key, sep, value = text.partition(":")
    if not sep or not key.strip():
        raise ValueError(f"invalid header {text!r}")
    return key.strip(), value.strip()


def parse_key_value(text: str) -> tuple[str, str]:
    """Split a `--metadata KEY=VALUE` (or `KEY:VALUE`) flag."""
    match = re.match(r"([^=:]+)[=:](.*)", text, re.DOTALL)
    if match is None:
        raise ValueError(f"invalid metadata {text!r}, expected KEY=VALUE")
    return match.group(1).strip(), match.group(2)


class DurationType(click.ParamType):
    """A click type for natscli durations; the value is float seconds."""

    name = "DURATION"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class ByteSizeType(click.ParamType):
    """A click type for natscli byte sizes; the value is an int (-1 = unlimited)."""

    name = "BYTES"

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, int):
            return value
        try:
            return parse_byte_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = DurationType()
BYTE_SIZE = ByteSizeType()
