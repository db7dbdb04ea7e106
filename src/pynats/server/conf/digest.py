"""The configuration digest nats-server prints: `sha256:<hex>` of the parsed file as JSON.

nats-server encodes the parsed tree with Go's `encoding/json` (keys sorted by bytes, `<`, `>`
and `&` escaped, invalid UTF-8 as U+FFFD, Go's float format, a trailing newline) and hashes
it. Keys used as `$variables` are part of it: nats-server 2.15 has code to drop them, but
the digests it prints show they stay. The same
file must give the same digest here, so `-t`, the `Using configuration file` log line and
`/varz config_digest` agree with the Go server. The encoder is iterative: config arrays can
nest deeper than Python's recursion limit.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n"}
_SHORT_ESCAPES |= {"\r": "\\r", "\t": "\\t"}
_UNICODE_ESCAPED = frozenset("<>&\u2028\u2029") | frozenset(chr(c) for c in range(0x20))


def config_digest(data: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of `data` encoded as nats-server encodes it."""
    encoded = go_json(data) + "\n"
    return "sha256:" + hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def go_json(value: Any) -> str:
    """`value` as Go's `json.Marshal` writes it (HTML-safe escaping, sorted map keys)."""
    out: list[str] = []
    stack: list[Iterator[Any]] = [iter((value,))]
    closers: list[str] = []
    while stack:
        item = next(stack[-1], _DONE)
        if item is _DONE:
            stack.pop()
            if closers:
                out.append(closers.pop())
            continue
        if isinstance(item, _Separator):
            out.append(item.text)
            continue
        if isinstance(item, Mapping):
            out.append("{")
            closers.append("}")
            stack.append(_map_items(item))
        elif isinstance(item, list | tuple):
            out.append("[")
            closers.append("]")
            stack.append(_list_items(item))
        else:
            out.append(_scalar(item))
    return "".join(out)


class _Separator:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


_DONE = object()
_COMMA = _Separator(",")


def _map_items(mapping: Mapping[str, Any]) -> Iterator[Any]:
    keys = sorted(mapping, key=lambda key: key.encode("utf-8", "surrogateescape"))
    for index, key in enumerate(keys):
        if index:
            yield _COMMA
        yield _Separator(_string(key) + ":")
        yield mapping[key]


def _list_items(items: list[Any] | tuple[Any, ...]) -> Iterator[Any]:
    for index, item in enumerate(items):
        if index:
            yield _COMMA
        yield item


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, datetime):
        return _string(_rfc3339(value))
    if value is None:
        return "null"
    raise TypeError(f"cannot encode {type(value).__name__} in a config digest")


def _string(text: str) -> str:
    """Go's JSON string: HTML-safe, invalid UTF-8 (our surrogate escapes) as U+FFFD."""
    pieces = ['"']
    for char in text:
        if char in _SHORT_ESCAPES:
            pieces.append(_SHORT_ESCAPES[char])
        elif char in _UNICODE_ESCAPED:
            pieces.append(f"\\u{ord(char):04x}")
        elif "\ud800" <= char <= "\udfff":
            pieces.append("\ufffd")
        else:
            pieces.append(char)
    pieces.append('"')
    return "".join(pieces)


def _float(value: float) -> str:
    """Go's float64 JSON: shortest digits, exponent form below 1e-6 and from 1e21."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"unsupported float value {value!r}")
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    mantissa = "".join(map(str, digits))
    prefix = "-" if sign else ""
    magnitude = abs(value)
    if 1e-6 <= magnitude < 1e21:
        return prefix + _fixed(mantissa, exponent)
    scientific_exponent = exponent + len(mantissa) - 1
    head, tail = mantissa[0], mantissa[1:]
    number = head + ("." + tail if tail else "")
    sign_char = "-" if scientific_exponent < 0 else "+"
    exponent_digits = str(abs(scientific_exponent))
    if scientific_exponent >= 0 and len(exponent_digits) < 2:
        exponent_digits = "0" + exponent_digits
    return f"{prefix}{number}e{sign_char}{exponent_digits}"


def _fixed(mantissa: str, exponent: int) -> str:
    if exponent >= 0:
        return mantissa + "0" * exponent
    point = len(mantissa) + exponent
    if point > 0:
        return mantissa[:point] + "." + mantissa[point:]
    return "0." + "0" * -point + mantissa


def _rfc3339(moment: datetime) -> str:
    """Go's `time.Time` JSON for a whole-second UTC time."""
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z"
    )
