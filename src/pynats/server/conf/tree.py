"""The values a parsed configuration is made of, and where each was written.

A parsed file is a `ConfigMap` (a `dict`) whose values are `str`, `bool`, `int`, `float`,
`datetime` (UTC), `ConfigList` (a `list`) or further `ConfigMap`s. Both containers behave
like their built-in bases and additionally remember positions, so the option layer can
report `file:line:column: unknown field "x"` exactly where nats-server does:

- `ConfigMap.position(key)` is where the key was written (for an included key, in the
  included file);
- `ConfigList.position(index)` is where nats-server places an element: the element's own
  token, which for a map or an array is its closing `}` or `]`.

`ConfigMap.is_used_variable(key)` tells whether the key was referenced as `$key`; nats-server
never reports such keys as unknown fields.

Values reached through a `$variable` are the same objects as the variable's value (as in
nats-server), so treat the tree as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Position:
    """A place in a config file, counted the way nats-server prints it.

    `file` is the path as given to the parser (None for text without a file). `column` is a
    byte offset within the line, 0-based on line 1 and 1-based on later lines: a quirk of
    nats-server's lexer that its messages show, kept so ours print the same numbers.
    """

    file: str | None
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file or ''}:{self.line}:{self.column}"


class ConfigMap(dict[str, Any]):
    """A config map that remembers key positions and which keys served as variables."""

    __slots__ = ("_positions", "_used_variables")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._positions: dict[str, Position] = {}
        self._used_variables: set[str] = set()

    def position(self, key: str) -> Position | None:
        """Where `key` was written, if it came from config text."""
        return self._positions.get(key)

    def is_used_variable(self, key: str) -> bool:
        """True when `key` was referenced as `$key` after being set to its current value."""
        return key in self._used_variables

    @property
    def used_variables(self) -> frozenset[str]:
        return frozenset(self._used_variables)

    def set_entry(self, key: str, value: Any, position: Position, *, used: bool = False) -> None:
        """Set `key` as written at `position`; a new value starts out unused as a variable."""
        self[key] = value
        self._positions[key] = position
        if used:
            self._used_variables.add(key)
        else:
            self._used_variables.discard(key)

    def mark_used(self, key: str) -> None:
        self._used_variables.add(key)


class ConfigList(list[Any]):
    """A config array that remembers where each element was written."""

    __slots__ = ("_positions",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._positions: list[Position | None] = [None] * len(self)

    def position(self, index: int) -> Position | None:
        """Where nats-server places element `index` (see the module docstring)."""
        try:
            return self._positions[index]
        except IndexError:
            return None

    def append_entry(self, value: Any, position: Position) -> None:
        self.append(value)
        self._positions.append(position)
