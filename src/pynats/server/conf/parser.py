"""Parser for the nats-server configuration language: tokens in, a `ConfigMap` out.

The parser follows nats-server's observable behaviour, including its odd corners, because a
config file must mean the same thing to both servers:

- Values are attached to keys through a stack of pending keys, not by grammar. A key whose
  value never arrives (`m { a }`, or an integer with an unknown suffix such as `1kbi`)
  stays pending and takes the next value set in a map: `m { a }` sets `a` to `{}`.
- `$name` looks in the maps that are still open, innermost first, then in the environment;
  an environment value is parsed as if written `pk=<value>`. A reference marks the key it
  found as used (unless the value came from the environment). `$2a$...` is a bcrypt hash,
  not a variable.
- `include path` reads `path` relative to the including file's directory, always: an
  absolute-looking path is joined too (nats-server uses `filepath.Join`). Without a file
  name the base is the working directory. Its top-level keys are merged where the include
  appears.
- Input that ends right after a key is invalid (`config is invalid (file:line:col)`), except
  for a key spelled `}`, which lets JSON-style files end with a stray brace.

Beyond nats-server: an include cycle is an error here (nats-server recurses until its stack
overflows), and a datetime in year 0, which Python cannot represent, stays a string.
"""

from __future__ import annotations

import math
import os
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from .errors import ConfigError
from .lexer import BOOL_WORDS, TRUE_WORDS, Token, TokenKind, decode, tokenize
from .tree import ConfigList, ConfigMap, Position
from .units import INT64_MAX, INT64_MIN, wrap_int64

ENV_KEY = "pk"
"""The key an environment value is parsed under (`pk=<value>`), as nats-server does."""

BCRYPT_PREFIX = "2a$"

_UINT64_MAX = (1 << 64) - 1
_SIZE_MULTIPLIERS = {
    "": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "t": 1000**4,
    "p": 1000**5,
    "e": 1000**6,
}
for _letter, _power in zip("kmgtpe", range(1, 7), strict=True):
    for _spelling in ("b", "i", "ib"):
        _SIZE_MULTIPLIERS[_letter + _spelling] = 1024**_power
_ZULU = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z", re.ASCII)


def parse_config(
    text: str | bytes,
    *,
    filename: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> ConfigMap:
    """Parse config text. `filename` names it in errors and positions and anchors includes
    (without it they are relative to the working directory); `env` replaces `os.environ`
    for `$VARIABLE` lookups."""
    source = os.fspath(filename) if filename is not None else ""
    scope = _Scope(env=os.environ if env is None else env)
    if source:
        scope = scope.including(source)
    data = text if isinstance(text, bytes) else _encode(text)
    return _Parser(data, source=source, pedantic=True, scope=scope).run()


def read_config_bytes(path: str) -> bytes:
    """The bytes of `path`, or a ConfigError worded like Go's `os.ReadFile` error."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except IsADirectoryError:
        raise ConfigError(f"read {path}: is a directory", file=path) from None
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise ConfigError(f"open {path}: {reason[:1].lower()}{reason[1:]}", file=path) from None
    except ValueError:  # a NUL byte in the path
        raise ConfigError(f"open {path}: invalid argument", file=path) from None


def _encode(text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class _Scope:
    """What a parse inherits from the parse that started it: the environment, and the
    environment variables and files being expanded above it (to stop cycles)."""

    env: Mapping[str, str]
    env_chain: frozenset[str] = frozenset()
    include_chain: frozenset[str] = frozenset()

    def expanding(self, name: str) -> _Scope:
        return replace(self, env_chain=self.env_chain | {name})

    def including(self, path: str) -> _Scope:
        return replace(self, include_chain=self.include_chain | {_identity(path)})


def _identity(path: str) -> str:
    try:
        return os.path.realpath(path)
    except (OSError, ValueError):
        return path


class _Parser:
    """Turns one text's tokens into a ConfigMap.

    `pedantic` is nats-server's mode for files: it marks keys used as variables and words
    file errors without the `error opening config file` prefix. Environment values are
    parsed without it, like nats-server does.
    """

    def __init__(self, data: bytes, *, source: str, pedantic: bool, scope: _Scope) -> None:
        self.data = data
        self.source = source
        self.file = source or None
        self.base_dir = _go_dir(source)
        self.pedantic = pedantic
        self.scope = scope
        self.root = ConfigMap()
        self.open: list[ConfigMap | ConfigList] = [self.root]
        self.pending_keys: list[tuple[str, Position]] = []
        self.handlers: dict[TokenKind, Callable[[Token], None]] = {
            TokenKind.ERROR: self._error,
            TokenKind.KEY: self._key,
            TokenKind.MAP_START: lambda _: self.open.append(ConfigMap()),
            TokenKind.MAP_END: self._close,
            TokenKind.ARRAY_START: lambda _: self.open.append(ConfigList()),
            TokenKind.ARRAY_END: self._close,
            TokenKind.STRING: lambda token: self._set(token.text, token),
            TokenKind.BOOL: self._bool,
            TokenKind.INTEGER: self._integer,
            TokenKind.FLOAT: self._float,
            TokenKind.DATETIME: self._datetime,
            TokenKind.VARIABLE: self._variable,
            TokenKind.INCLUDE: self._include,
            TokenKind.COMMENT: lambda _: None,
        }

    def run(self) -> ConfigMap:
        previous: Token | None = None
        for token in tokenize(self.data):
            if token.kind is TokenKind.EOF:
                self._check_not_dangling(previous, token)
                break
            previous = token
            self.handlers[token.kind](token)
        return self.root

    def _check_not_dangling(self, previous: Token | None, eof: Token) -> None:
        if previous is not None and previous.kind is TokenKind.KEY and previous.text != "}":
            raise ConfigError(
                f"config is invalid ({self.source}:{eof.line}:{eof.column})",
                **self._where(eof),
                reason="config is invalid",
            )

    def _where(self, token: Token) -> dict[str, Any]:
        return {"file": self.file, "line": token.line, "column": token.column}

    def _position(self, token: Token) -> Position:
        return Position(self.file, token.line, token.column)

    def _fail(self, message: str, token: Token) -> ConfigError:
        return ConfigError(message, **self._where(token))

    # -- structure ----------------------------------------------------------------------

    def _set(self, value: Any, token: Token) -> None:
        self._attach(value, self._position(token))

    def _attach(self, value: Any, element_position: Position, *, used: bool = False) -> None:
        """Append `value` to the open array, or set it in the open map under the latest
        pending key (`element_position` is only used for array elements)."""
        target = self.open[-1]
        if isinstance(target, ConfigList):
            target.append_entry(value, element_position)
            return
        if not self.pending_keys:  # the lexer never produces a map value without a key
            raise ConfigError("config is invalid: value without a key", file=self.file)
        key, position = self.pending_keys.pop()
        target.set_entry(key, value, position, used=used)

    def _error(self, token: Token) -> None:
        raise ConfigError(
            f"Parse error on line {token.line}: '{token.text}'",
            **self._where(token),
            reason=token.text,
        )

    def _key(self, token: Token) -> None:
        self.pending_keys.append((token.text, self._position(token)))

    def _close(self, token: Token) -> None:
        finished = self.open.pop()
        self._set(finished, token)

    # -- scalars ------------------------------------------------------------------------

    def _bool(self, token: Token) -> None:
        word = token.text.lower()
        if word not in BOOL_WORDS:
            raise self._fail(f"expected boolean value, but got '{token.text}'", token)
        self._set(word in TRUE_WORDS, token)

    def _integer(self, token: Token) -> None:
        value = _integer_value(token.text)
        if isinstance(value, str):
            raise self._fail(value, token)
        if value is not None:  # None: a suffix nats-server ignores, leaving the key pending
            self._set(value, token)

    def _float(self, token: Token) -> None:
        text = token.text
        if not text or any(c not in "0123456789.-" for c in text):
            raise self._fail(f"expected float, but got '{text}'", token)
        value = float(text)
        if math.isinf(value):
            raise self._fail(f"float '{text}' is out of the range", token)
        self._set(value, token)

    def _datetime(self, token: Token) -> None:
        self._set(_zulu_value(token.text, lambda m: self._fail(m, token)), token)

    # -- variables ----------------------------------------------------------------------

    def _variable(self, token: Token) -> None:
        name = token.text
        if name.startswith(BCRYPT_PREFIX):
            self._set("$" + name, token)
            return
        for enclosing in reversed(self.open):
            if isinstance(enclosing, ConfigMap) and name in enclosing:
                if self.pedantic:
                    enclosing.mark_used(name)
                self._set(enclosing[name], token)
                return
        value = self._environment_value(name, token)
        self._set(value, token)

    def _environment_value(self, name: str, token: Token) -> Any:
        env = self.scope.env
        if name in env:
            try:
                parsed = self._parse_environment(name, env[name])
            except ConfigError as exc:
                raise ConfigError(
                    f"variable reference for '{name}' on line {token.line} "
                    f"could not be parsed: {exc.message}",
                    **self._where(token),
                    reason=exc.reason,
                ) from None
            if ENV_KEY in parsed:
                return parsed[ENV_KEY]
        raise self._fail(
            f"variable reference for '{name}' on line {token.line} can not be found", token
        )

    def _parse_environment(self, name: str, value: str) -> ConfigMap:
        if name in self.scope.env_chain:
            raise ConfigError(f"variable reference cycle for '{name}'")
        text = f"{ENV_KEY}={value}"
        scope = self.scope.expanding(name)
        return _Parser(_encode(text), source="", pedantic=False, scope=scope).run()

    # -- include ------------------------------------------------------------------------

    def _include(self, token: Token) -> None:
        try:
            included = self._parse_included(_go_join(self.base_dir, token.text))
        except ConfigError as exc:
            raise exc.wrapped(f"error parsing include file '{token.text}', {exc.message}") from None
        for key, value in included.items():
            position = included.position(key) or self._position(token)
            self.pending_keys.append((key, position))
            self._attach(value, position, used=included.is_used_variable(key))

    def _parse_included(self, path: str) -> ConfigMap:
        if _identity(path) in self.scope.include_chain:
            raise ConfigError(f"include cycle: {path} is already being read", file=path)
        try:
            data = read_config_bytes(path)
        except ConfigError as exc:
            if self.pedantic:
                raise
            raise exc.wrapped(f"error opening config file: {exc.message}") from None
        scope = self.scope.including(path)
        return _Parser(data, source=path, pedantic=self.pedantic, scope=scope).run()


def _integer_value(text: str) -> int | str | None:
    """The value of an integer token; a str is an error message, None an unknown suffix."""
    digits = 0
    for char in text:
        if not (char.isdecimal() or char == "-"):
            break
        digits += 1
    raw = _encode(text)
    try:
        number = _go_parse_int(raw[:digits])
    except OverflowError:
        return f"integer '{text}' is out of the range"
    except ValueError:
        return f"expected integer, but got '{text}'"
    suffix = decode(raw[digits:]).strip().lower()
    multiplier = _SIZE_MULTIPLIERS.get(suffix)
    if multiplier is None:
        return None
    return wrap_int64(number * multiplier)


def _go_parse_int(raw: bytes) -> int:
    """Base-10 int64 parsing with Go's rules: ValueError for syntax, OverflowError for range,
    whichever a left-to-right scan meets first."""
    negative = raw[:1] == b"-"
    body = raw[1:] if raw[:1] in (b"-", b"+") else raw
    if not body:
        raise ValueError("invalid syntax")
    magnitude = 0
    for byte in body:
        if not 0x30 <= byte <= 0x39:
            raise ValueError("invalid syntax")
        magnitude = magnitude * 10 + (byte - 0x30)
        if magnitude > _UINT64_MAX:
            raise OverflowError("value out of range")
    value = -magnitude if negative else magnitude
    if not INT64_MIN <= value <= INT64_MAX:
        raise OverflowError("value out of range")
    return value


def _zulu_value(text: str, fail: Callable[[str], ConfigError]) -> datetime | str:
    match = _ZULU.fullmatch(text)
    if match is None:
        raise fail(f"expected Zulu formatted DateTime, but got '{text}'")
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    if year == 0:  # valid for Go, beyond Python's datetime: check it on a leap year alike
        try:
            datetime(2000, month, day, hour, minute, second)
        except ValueError:
            raise fail(f"expected Zulu formatted DateTime, but got '{text}'") from None
        return text
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise fail(f"expected Zulu formatted DateTime, but got '{text}'") from None


def _go_clean(path: str) -> str:
    """Go's `filepath.Clean` on POSIX: like normpath, but `//x` becomes `/x`."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def _go_dir(path: str) -> str:
    """Go's `filepath.Dir`: `.` for a bare name or the empty path."""
    return _go_clean(path[: path.rfind("/") + 1])


def _go_join(base: str, name: str) -> str:
    """Go's `filepath.Join`: `/etc/x` joined to `conf` is `conf/etc/x`."""
    parts = [part for part in (base, name) if part]
    return _go_clean("/".join(parts)) if parts else ""
