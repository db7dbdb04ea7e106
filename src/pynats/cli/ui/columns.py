"""Info screens as natscli lays them out (cli.md §0.7): right-aligned labels, a colon, the value.

```
Information for Stream ORDERS created 2025-03-02 10:14:07

              Subjects: ORDERS.>
              Replicas: 1

Options:

             Retention: Limits
```

Usage from a command module::

    screen = Columns("Information for Stream %s created %s" % (name, humanize.local_time(t)))
    screen.add_row("Subjects", ", ".join(subjects))
    screen.add_section("Options")
    screen.add_row("Retention", "Limits")
    out(screen.render(), end="")   # every line ends with a newline; add blank lines yourself

Every label of the screen is right-aligned to the longest label plus two spaces; a row with an
empty label continues the previous value on a new line. Values go through `humanize.value`, so
an int gets separators, a bool prints `true`/`false`, a datetime local time, a list `a, b`.
The same data should be available unrendered for `--json`: build the screen from the data, not
the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pynats.cli.ui import humanize

_ROW, _INDENT, _LINE, _TITLE = range(4)


@dataclass
class Columns:
    """An info screen being assembled; `render()` turns it into text."""

    heading: str = ""
    _items: list[tuple[int, Any, Any]] = field(default_factory=list)

    def add_row(self, label: str, value: Any) -> None:
        self._items.append((_ROW, label.removesuffix(":"), humanize.value(value)))

    def add_row_if(self, label: str, value: Any, condition: bool) -> None:
        if condition:
            self.add_row(label, value)

    def add_row_if_not_empty(self, label: str, value: str | None) -> None:
        if value:
            self.add_row(label, value)

    def add_rows(self, label: str, values: list[Any]) -> None:
        """One value per line under a single label (Client URLs, Alternates, ...)."""
        for i, item in enumerate(values):
            self.add_row(label if i == 0 else "", item)

    def add_map_as_value(self, label: str, mapping: dict[str, Any]) -> None:
        """`key: value` pairs (sorted by key) as the continued value of one label."""
        for i, key in enumerate(sorted(mapping)):
            self.add_row(label if i == 0 else "", f"{key}: {humanize.value(mapping[key])}")

    def add_section(self, title: str) -> None:
        self._items.append((_TITLE, title, None))

    def add_line(self, text: str = "") -> None:
        """A line outside the columnar layout (natscli's Println)."""
        self._items.append((_LINE, text, None))

    def indent(self, width: int) -> None:
        """Indent everything that follows by `width` spaces (0 resets)."""
        self._items.append((_INDENT, " " * width, None))

    def render(self) -> str:
        longest = max((len(label) for kind, label, _ in self._items if kind == _ROW), default=0)
        lines: list[str] = []
        if self.heading:
            lines += [self.heading, ""]
        indent = ""
        previous = None
        for position, (kind, label, value) in enumerate(self._items):
            if kind == _INDENT:
                indent = label
                continue
            if kind == _TITLE:
                if position != 0 and previous not in (_TITLE, _LINE):
                    lines.append("")
                lines += [indent + (label if label.endswith(":") else label + ":"), ""]
            elif kind == _ROW:
                padding = max(longest - len(label) + 2, 0)
                if label == "":
                    lines.append(f"{indent}{' ' * (padding + 1)} {value}")
                else:
                    lines.append(f"{indent}{' ' * padding}{label}: {value}")
            elif kind == _LINE:
                if previous == _TITLE and not label:
                    continue  # a title is already followed by a blank line
                lines.append((indent + label) if label else indent.rstrip() or "")
            previous = kind
        return "\n".join(lines) + ("\n" if lines else "")
