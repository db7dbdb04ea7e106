"""Where the flags of `stream add/edit` and `consumer add/edit` land in a JetStream configuration.

Each noun describes its flags once, as a table of `ConfigField`s: the flag (a field of its
flags dataclass), the configuration key it sets, how the value is turned into the key's value,
and how a typed value is told from the flag's "not given" default. Both verbs use the table:

* `edit` writes the fields whose flags were given over the current configuration
  (`write_given`), in the table's order, which is natscli's;
* `add` writes the same way the fields it takes as given, and with `ConfigField.write` the
  ones it resolved itself, by asking natscli's questions or taking natscli's defaults
  (`write_value` when it already read the value into the configuration's terms).

What stays outside the tables is what is more than one flag to one key: placement, subject
transforms and republishing, mirrors and sources, filters, backoff and priority groups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


def unchanged(value: Any) -> Any:
    return value


def is_set(value: Any) -> bool:
    """A tri-state flag (`--x/--no-x`, or a value flag defaulting to None) was given."""
    return value is not None


def is_positive(value: int) -> bool:
    return value > 0


@dataclass(frozen=True)
class ConfigField:
    """One flag and the configuration key it sets."""

    flag: str
    key: str
    to_config: Callable[[Any], Any] = unchanged
    is_given: Callable[[Any], bool] = bool

    def write(self, config: dict[str, Any], value: Any) -> None:
        """Set the key from a value of the flag (typed, asked for or defaulted)."""
        config[self.key] = self.to_config(value)

    def write_value(self, config: dict[str, Any], value: Any) -> None:
        """Set the key from a value already in the configuration's terms (read by the verb)."""
        config[self.key] = value

    def write_given(self, config: dict[str, Any], flags: object) -> None:
        """Set the key when the flag was given."""
        value = getattr(flags, self.flag)
        if self.is_given(value):
            self.write(config, value)


def write_given(config: dict[str, Any], flags: object, table: Iterable[ConfigField]) -> None:
    """`ConfigField.write_given` for every field of `table`, in order."""
    for field in table:
        field.write_given(config, flags)


def fields_by_flag(table: Iterable[ConfigField]) -> dict[str, ConfigField]:
    """A table keyed by flag, for the verbs that write a resolved value of one flag."""
    return {field.flag: field for field in table}
