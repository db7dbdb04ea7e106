"""Strict JSON decoding of JS API requests, with the errors nats-server's Go decoder gives.

A request type is described once as a `Struct` (field name -> `Kind`); `decode(payload, spec)`
returns a plain dict holding the fields that were present (null counts as absent, as Go
leaves the zero value). Unknown fields are rejected in strict mode (nats-server's default),
type mismatches are reported the way `encoding/json` words them:

    invalid JSON: json: unknown field "x"
    invalid JSON: json: cannot unmarshal string into Go struct field StreamConfigRequest.max_msgs of type int64

Numbers keep their literal text (`1.5` stays `1.5` in the message), so a float sent for an
integer field is named as Go names it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import invalid_json


class RawNumber(str):
    """A JSON number that was not an integer, kept as its source text."""


def loads(payload: bytes | str) -> Any:
    """`json.loads` that keeps non-integer numbers as `RawNumber` text. Raises ApiError 10025
    worded as nats-server words syntax errors."""
    try:
        return json.loads(payload, parse_float=RawNumber, parse_constant=RawNumber)
    except (ValueError, UnicodeDecodeError):
        data = payload.encode() if isinstance(payload, str) else payload
        raise invalid_json(syntax_error_text(data)) from None


class _SyntaxError(Exception):
    def __init__(self, text: str) -> None:
        self.text = text


_WS = b" \t\r\n"
_ESCAPES = b'"\\/bfnrtu'


def syntax_error_text(data: bytes) -> str:
    """The first syntax error in `data`, as nats-server's JSON decoder reports it."""
    try:
        _Scanner(data).document()
    except _SyntaxError as e:
        return e.text
    return "invalid JSON"


def _quote_char(c: int) -> str:
    if c == 0x27:
        return "'\\''"
    if c == 0x22:
        return "'\"'"
    if 0x20 <= c < 0x7F:
        return f"'{chr(c)}'"
    return "'" + f"\\x{c:02x}" + "'"


class _Scanner:
    """A strict JSON syntax walk that stops at the first error (only run on bad input)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.n = len(data)

    def fail(self, i: int, context: str) -> _SyntaxError:
        return _SyntaxError(
            f"invalid character {_quote_char(self.data[i])} {context} at offset {i + 1}"
        )

    def ws(self, i: int) -> int:
        data, n = self.data, self.n
        while i < n and data[i] in _WS:
            i += 1
        return i

    def need(self, i: int) -> None:
        if i >= self.n:
            raise _SyntaxError("unexpected EOF")

    def document(self) -> None:
        i = self.ws(0)
        self.need(i)
        i = self.ws(self.value(i))
        if i < self.n:
            raise self.fail(i, "looking for beginning of value")

    def value(self, i: int) -> int:
        self.need(i)
        c = self.data[i]
        if c == 0x7B:
            return self.obj(i)
        if c == 0x5B:
            return self.arr(i)
        if c == 0x22:
            return self.string(i)
        if c == 0x2D or 0x30 <= c <= 0x39:
            return self.number(i)
        for word in (b"true", b"false", b"null"):
            if c == word[0]:
                return self.literal(i, word)
        raise self.fail(i, "looking for beginning of value")

    def obj(self, i: int) -> int:
        i = self.ws(i + 1)
        self.need(i)
        if self.data[i] == 0x7D:
            return i + 1
        while True:
            self.need(i)
            if self.data[i] != 0x22:
                raise self.fail(i, "looking for beginning of object key string")
            i = self.ws(self.string(i))
            self.need(i)
            if self.data[i] != 0x3A:
                raise self.fail(i, "after object key")
            i = self.ws(self.value(self.ws(i + 1)))
            self.need(i)
            c = self.data[i]
            if c == 0x2C:
                i = self.ws(i + 1)
                continue
            if c == 0x7D:
                return i + 1
            raise self.fail(i, "after object key:value pair")

    def arr(self, i: int) -> int:
        i = self.ws(i + 1)
        self.need(i)
        if self.data[i] == 0x5D:
            return i + 1
        while True:
            i = self.ws(self.value(i))
            self.need(i)
            c = self.data[i]
            if c == 0x2C:
                i = self.ws(i + 1)
                continue
            if c == 0x5D:
                return i + 1
            raise self.fail(i, "after array element")

    def string(self, i: int) -> int:
        data = self.data
        i += 1
        while True:
            self.need(i)
            c = data[i]
            if c == 0x22:
                return i + 1
            if c == 0x5C:
                self.need(i + 1)
                esc = data[i + 1]
                if esc not in _ESCAPES:
                    raise _SyntaxError(
                        f"invalid escape sequence `\\{chr(esc)}` in string at offset {i + 2}"
                    )
                i += 6 if esc == 0x75 else 2
                continue
            if c < 0x20:
                raise self.fail(i, "in string")
            i += 1

    def number(self, i: int) -> int:
        data, n = self.data, self.n
        if data[i] == 0x2D:
            i += 1
            self.need(i)
            if not 0x30 <= data[i] <= 0x39:
                raise self.fail(i, "in numeric literal")
        if data[i] == 0x30:
            i += 1
        else:
            while i < n and 0x30 <= data[i] <= 0x39:
                i += 1
        if i < n and data[i] == 0x2E:
            i += 1
            self.need(i)
            if not 0x30 <= data[i] <= 0x39:
                raise self.fail(i, "in numeric literal")
            while i < n and 0x30 <= data[i] <= 0x39:
                i += 1
        if i < n and data[i] in b"eE":
            i += 1
            self.need(i)
            if data[i] in b"+-":
                i += 1
                self.need(i)
            if not 0x30 <= data[i] <= 0x39:
                raise self.fail(i, "in numeric literal")
            while i < n and 0x30 <= data[i] <= 0x39:
                i += 1
        return i

    def literal(self, i: int, word: bytes) -> int:
        for k in range(1, len(word)):
            self.need(i + k)
            if self.data[i + k] != word[k]:
                raise self.fail(i + k, f"in literal {word.decode()} (expecting '{chr(word[k])}')")
        return i + len(word)


# -- kinds -----------------------------------------------------------------------------------

_INT_RANGES = {
    "int": (-(2**63), 2**63 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "time.Duration": (-(2**63), 2**63 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint64": (0, 2**64 - 1),
    "uint": (0, 2**64 - 1),
}


@dataclass(frozen=True)
class Kind:
    """How one JSON value is checked. `go` is the Go type name used in error texts."""

    go: str
    check: Callable[[Any, str, Kind], Any]
    item: Kind | None = None
    struct: Struct | None = None
    enum: tuple[str, ...] = ()
    fold_case: bool = False


@dataclass(frozen=True)
class Struct:
    """A Go struct: its type name (for error texts) and its JSON fields."""

    name: str
    fields: dict[str, Kind] = field(default_factory=dict)

    def lookup(self, key: str) -> tuple[str, Kind] | None:
        kind = self.fields.get(key)
        if kind is not None:
            return key, kind
        lowered = key.lower()
        for name, kind in self.fields.items():  # encoding/json matches names case-insensitively
            if name.lower() == lowered:
                return name, kind
        return None


class _Mismatch(Exception):
    def __init__(self, what: str, path: str, go: str) -> None:
        self.what, self.path, self.go = what, path, go


def json_kind(value: Any) -> str:
    """The JSON kind Go's decoder names in its errors (`cannot unmarshal <kind> into ...`)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, RawNumber)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _check_string(value: Any, path: str, kind: Kind) -> str:
    if isinstance(value, str) and not isinstance(value, RawNumber):
        return value
    raise _Mismatch(json_kind(value), path, kind.go)


def _check_bool(value: Any, path: str, kind: Kind) -> bool:
    if isinstance(value, bool):
        return value
    raise _Mismatch(json_kind(value), path, kind.go)


def _check_int(value: Any, path: str, kind: Kind) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, RawNumber)):
        raise _Mismatch(json_kind(value), path, kind.go)
    low, high = _INT_RANGES[kind.go]
    if isinstance(value, RawNumber) or not low <= value <= high:
        raise _Mismatch(f"number {value}", path, kind.go)
    return value


def _check_list(value: Any, path: str, kind: Kind) -> list[Any]:
    if not isinstance(value, list):
        raise _Mismatch(json_kind(value), path, kind.go)
    assert kind.item is not None
    out = []
    for item in value:
        if item is None:
            out.append(_zero(kind.item))
        else:
            out.append(kind.item.check(item, path, kind.item))
    return out


def _check_map(value: Any, path: str, kind: Kind) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _Mismatch(json_kind(value), path, kind.go)
    out = {}
    for k, v in value.items():
        if v is None:
            out[k] = ""
        elif isinstance(v, str) and not isinstance(v, RawNumber):
            out[k] = v
        else:
            raise _Mismatch(json_kind(v), f"{path}.{k}", "string")
    return out


def _check_struct(value: Any, path: str, kind: Kind) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Mismatch(json_kind(value), path, kind.go)
    assert kind.struct is not None
    return _decode_fields(value, kind.struct, path)


def _check_enum(value: Any, path: str, kind: Kind) -> str:
    if isinstance(value, str) and not isinstance(value, RawNumber):
        text = value.lower() if kind.fold_case else value
        if text in kind.enum:
            return text
    raw = value if isinstance(value, RawNumber) else json.dumps(value, separators=(",", ":"))
    raise invalid_json(f"can not unmarshal {json.dumps(raw)}")


def _zero(kind: Kind) -> Any:
    if kind.check is _check_string or kind.check is _check_enum:
        return ""
    if kind.check is _check_bool:
        return False
    if kind.check is _check_int:
        return 0
    return None


STRING = Kind("string", _check_string)
BOOL = Kind("bool", _check_bool)
INT = Kind("int", _check_int)
INT64 = Kind("int64", _check_int)
INT32 = Kind("int32", _check_int)
UINT64 = Kind("uint64", _check_int)
DURATION = Kind("time.Duration", _check_int)
STRINGS = Kind("[]string", _check_list, item=STRING)
STRING_MAP = Kind("map[string]string", _check_map)
TIME = Kind("time.Time", _check_string)  # RFC 3339 text, validated by the caller


def struct(go: str, spec: Struct) -> Kind:
    return Kind(go, _check_struct, struct=spec)


def list_of(go: str, item: Kind) -> Kind:
    return Kind(go, _check_list, item=item)


def enum(go: str, *values: str, fold_case: bool = False) -> Kind:
    return Kind(go, _check_enum, enum=values, fold_case=fold_case)


# -- decoding --------------------------------------------------------------------------------


def _decode_fields(obj: dict[str, Any], spec: Struct, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        found = spec.lookup(key)
        if found is None:
            raise _Unknown(key)
        name, kind = found
        if value is None:
            continue
        out[name] = kind.check(value, f"{path}.{name}", kind)
    return out


class _Unknown(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def decode(payload: bytes | str | Any, spec: Struct, *, strict: bool = True) -> dict[str, Any]:
    """Decode a request body (bytes, or an already parsed JSON value) against `spec`.

    Empty payload = empty request. Raises ApiError 10025 on syntax, unknown field (strict)
    or type errors.
    """
    if isinstance(payload, (bytes, str)):
        if not payload or not payload.strip():
            return {}
        obj = loads(payload)
    else:
        obj = payload
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise invalid_json(
            f"json: cannot unmarshal {json_kind(obj)} into Go value of type server.{spec.name}"
        )
    try:
        if strict:
            return _decode_fields(obj, spec, spec.name)
        return _decode_fields(
            {k: v for k, v in obj.items() if spec.lookup(k) is not None}, spec, spec.name
        )
    except _Unknown as e:
        raise invalid_json(f'json: unknown field "{e.key}"') from None
    except _Mismatch as e:
        raise invalid_json(
            f"json: cannot unmarshal {e.what} into Go struct field {e.path} of type {e.go}"
        ) from None
