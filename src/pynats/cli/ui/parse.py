"""Parsers for the value syntaxes natscli accepts in flags and prompts (cli.md §0.3).

Durations: Go's syntax (`ns us µs ms s m h`, read by `pynats.gotime.parse_duration`) plus
natscli's `d` (24h), `w` (7d), `M` (30d), `y`/`Y` (365d); parts combine (`1d3h5m`), a leading
`-` negates, bare `0` is zero, and any other number without a unit is an error. Byte sizes: an
integer with an optional base-1024 unit; empty or negative means unlimited (-1). Each parser has
a click `ParamType` twin so a flag declared with `type=DURATION` or `type=BYTE_SIZE` fails at
parse time like fisk does.

A duration is integer nanoseconds, what the JetStream API wants; a caller that hands it to
asyncio or nats-py divides by `NS_PER_S` there.
"""

from __future__ import annotations

import re
from typing import Any

import click

from pynats.cli.ui.errors import CliError
from pynats.gotime import DurationError, parse_duration

# natscli's units beyond Go's, in hours: day, week, month (30 days), year (365 days).
_LONG_UNIT_HOURS = {"d": 24, "D": 24, "w": 168, "W": 168, "M": 720, "y": 8760, "Y": 8760}
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
    """A natscli duration in integer nanoseconds; ValueError when malformed."""
    value = text.strip()
    if value in ("0", "-0", "+0"):
        return 0
    sign = 1
    if value[:1] in ("-", "+"):
        sign = -1 if value[0] == "-" else 1
        value = value[1:]
    if not value:
        raise ValueError(f"invalid duration {text!r}")
    total = 0
    position = 0
    try:
        for match in _DURATION_PART.finditer(value):
            if match.start() != position:
                break
            number, unit = match.groups()
            hours = _LONG_UNIT_HOURS.get(unit)
            if hours is None:
                total += parse_duration(number + unit)
            else:
                total += parse_duration(number + "h") * hours
            position = match.end()
    except DurationError:
        raise ValueError(f"invalid duration {text!r}") from None
    if position != len(value) or position == 0:
        raise ValueError(f"invalid duration {text!r}")
    return sign * total


def checked_duration_ns(text: str, context: str) -> int:
    """`parse_duration_ns` for a flag or an answer: a bad one fails as `<context>: <reason>`."""
    try:
        return parse_duration_ns(text)
    except ValueError as exc:
        raise CliError(f"{context}: {exc}") from None


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
    """A click type for natscli durations; the value is integer nanoseconds."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_duration_ns(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class ByteSizeType(click.ParamType):
    """A click type for natscli byte sizes; the value is an int (-1 = unlimited)."""

    name = "BYTES"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_byte_size(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


DURATION = DurationType()
BYTE_SIZE = ByteSizeType()
