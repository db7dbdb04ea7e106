"""Tables as natscli draws them (cli.md §0.6): go-pretty's "rounded" box with a centred title.

```
╭─────────────────────────────╮
│        Known Contexts       │
├────────┬────────────────────┤
│ Name   │ Description        │
├────────┼────────────────────┤
│ local* │ Local dev server   │
╰────────┴────────────────────╯
```

Usage from a command module::

    table = Table("Streams", headers=["Name", "Messages"])
    table.add_row("ORDERS", humanize.comma(1204))
    out(table.render())          # render() ends with a newline, so this leaves a blank line

Cells given as `str` are left-aligned; a column whose body cells are all `int`/`float` is
right-aligned (go-pretty's rule). `NATS_TABLE_FORMAT=md|markdown|csv|tsv` or `LLMFORMAT=1`
switch every table to that format. The colour scheme (`--colors` or the context's
`color_scheme`) only applies when stdout is a terminal, as in natscli; rich supplies the colours
and the display width of each cell (wide characters count double).
"""

from __future__ import annotations

import csv
import io
import os
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.cells import cell_len

from pynats.cli.ui.output import is_tty

COLOR_SCHEMES = ("blue", "cyan", "double", "green", "magenta", "red", "rounded", "yellow")


@dataclass(frozen=True)
class BoxStyle:
    """The characters of one box style, named by where they sit."""

    top_left: str
    top: str
    top_join: str
    top_right: str
    vertical: str
    left_join: str
    cross: str
    right_join: str
    bottom_left: str
    bottom_join: str
    bottom_right: str


ROUNDED = BoxStyle("╭", "─", "┬", "╮", "│", "├", "┼", "┤", "╰", "┴", "╯")
DOUBLE = BoxStyle("╔", "═", "╦", "╗", "║", "╠", "╬", "╣", "╚", "╩", "╝")

# The scheme chosen by --colors / NATS_COLOR / the context; set once by the command tree.
_color_scheme = ""


def set_color_scheme(scheme: str) -> None:
    """Choose the table style for this process (`rounded`, `double` or a border colour)."""
    global _color_scheme
    _color_scheme = scheme or ""


def color_scheme() -> str:
    """The scheme chosen for this process ('' when none was)."""
    return _color_scheme


@dataclass
class Table:
    """A table with an optional title, header and footer; `render()` returns the text."""

    title: str = ""
    headers: list[Any] = field(default_factory=list)
    rows: list[list[Any] | None] = field(default_factory=list)  # None = separator line
    footers: list[list[Any]] = field(default_factory=list)

    def add_headers(self, *cells: Any) -> None:
        self.headers = list(cells)

    def add_row(self, *cells: Any) -> None:
        self.rows.append(list(cells))

    def add_separator(self) -> None:
        """A rule after the last row added so far (go-pretty's AppendSeparator)."""
        self.rows.append(None)

    def add_footer(self, *cells: Any) -> None:
        self.footers.append(list(cells))

    def render(self) -> str:
        """The table in the format chosen by the environment, ending with a newline."""
        fmt = os.environ.get("NATS_TABLE_FORMAT", "").lower()
        if os.environ.get("LLMFORMAT") == "1" or fmt in ("md", "markdown"):
            return self.render_markdown() + "\n"
        if fmt == "csv":
            return self.render_separated(",") + "\n"
        if fmt == "tsv":
            return self.render_separated("\t") + "\n"
        return self.render_box() + "\n"

    # -- the box ----------------------------------------------------------------------------

    def render_box(self) -> str:
        style, paint = _style_for(color_scheme())
        body = [r for r in self.rows if r is not None]
        ncols = max(
            [len(self.headers), *(len(r) for r in body), *(len(f) for f in self.footers), 0]
        )
        if ncols == 0:
            return ""
        numeric = [_is_numeric_column(body, i) for i in range(ncols)]
        widths = [0] * ncols
        for cells in [self.headers, *body, *self.footers]:
            for i, cell in enumerate(cells):
                for text_line in _text(cell).split("\n"):
                    widths[i] = max(widths[i], cell_len(text_line))
        inner = sum(widths) + 2 * ncols + (ncols - 1)

        def rule(left: str, join: str, right: str) -> str:
            return paint(left + join.join(style.top * (w + 2) for w in widths) + right)

        def line(row: list[Any]) -> list[str]:
            cells = [row[i] if i < len(row) else "" for i in range(ncols)]
            texts = [_text(c).split("\n") for c in cells]
            height = max(len(t) for t in texts)
            lines = []
            for n in range(height):
                parts = []
                for i, text in enumerate(texts):
                    piece = text[n] if n < len(text) else ""
                    pad = " " * (widths[i] - cell_len(piece))
                    parts.append(" " + (pad + piece if numeric[i] else piece + pad) + " ")
                bar = paint(style.vertical)
                lines.append((bar + bar.join(parts) + bar).rstrip())
            return lines

        out: list[str] = []
        if self.title:
            out.append(paint(style.top_left + style.top * inner + style.top_right))
            for title_line in textwrap.wrap(self.title, max(inner - 2, 1)) or [""]:
                out.append(
                    (
                        paint(style.vertical)
                        + " "
                        + _center(title_line, inner - 2)
                        + " "
                        + paint(style.vertical)
                    ).rstrip()
                )
            out.append(rule(style.left_join, style.top_join, style.right_join))
        else:
            out.append(rule(style.top_left, style.top_join, style.top_right))
        if self.headers:
            out.extend(line(self.headers))
            out.append(rule(style.left_join, style.cross, style.right_join))
        for row in self.rows:
            if row is None:
                out.append(rule(style.left_join, style.cross, style.right_join))
            else:
                out.extend(line(row))
        if self.footers:
            out.append(rule(style.left_join, style.cross, style.right_join))
            for footer in self.footers:
                out.extend(line(footer))
        out.append(rule(style.bottom_left, style.bottom_join, style.bottom_right))
        return "\n".join(out)

    # -- the plain formats --------------------------------------------------------------------

    def render_markdown(self) -> str:
        body = [r for r in self.rows if r is not None]
        ncols = max([len(self.headers), *(len(r) for r in body), 0])
        numeric = [_is_numeric_column(body, i) for i in range(ncols)]
        lines = []
        if self.title:
            lines.append(f"# {self.title}")
        if self.headers:
            lines.append(_md_row(self.headers))
            lines.append("| " + " | ".join("---:" if n else "---" for n in numeric) + " |")
        lines.extend(_md_row(r) for r in [*body, *self.footers])
        return "\n".join(lines)

    def render_separated(self, delimiter: str) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\n")
        for row in [self.headers, *(r for r in self.rows if r is not None), *self.footers]:
            if row:
                writer.writerow([_text(c) for c in row])
        return buffer.getvalue().rstrip("\n")


def _text(cell: Any) -> str:
    return "" if cell is None else str(cell)


def _is_numeric_column(rows: list[list[Any]], index: int) -> bool:
    cells = [r[index] for r in rows if index < len(r)]
    return bool(cells) and all(
        isinstance(c, int | float) and not isinstance(c, bool) for c in cells
    )


def _center(text: str, width: int) -> str:
    """go-pretty's centring: the extra space of an odd remainder goes on the left."""
    spare = max(width - cell_len(text), 0)
    right = spare // 2
    return " " * (spare - right) + text + " " * right


def _md_row(cells: list[Any]) -> str:
    return (
        "| " + " | ".join(_text(c).replace("|", "\\|").replace("\n", "<br/>") for c in cells) + " |"
    )


def _style_for(scheme: str) -> tuple[BoxStyle, Callable[[str], str]]:
    """The box characters and border painter for a colour scheme (colours only on a TTY)."""
    import sys

    on_terminal = is_tty(sys.stdout)
    if scheme == "double" and on_terminal:
        return DOUBLE, _plain
    if scheme in COLOR_SCHEMES and scheme not in ("rounded", "double") and on_terminal:
        from rich.color import ColorSystem
        from rich.style import Style

        style = Style(color=scheme)
        return ROUNDED, lambda text: style.render(text, color_system=ColorSystem.STANDARD)
    return ROUNDED, _plain


def _plain(text: str) -> str:
    return text
