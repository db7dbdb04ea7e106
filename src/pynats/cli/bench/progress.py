"""natscli's `nats bench` progress bars: one line per client, redrawn in place.

Each line reads `<state> <elapsed> [=====>------] <pct>%` as natscli's uiprogress bars do:
the state word (`Publishing`, `Receiving `, ..., `Finished  `), the whole seconds since the
client started (`---` before), a bar whose width is the terminal width - 30 (at least 10, 80
when the width is unknown) with `[`/`]` ends, `=` fill and a `>` head, and the percentage.

Unlike natscli, the bars go to stderr and are drawn only when stderr is a terminal, so that
the report on stdout stays clean when it is piped or captured.
"""

from __future__ import annotations

import shutil
import sys
from typing import TextIO

from pynats.cli.ui.output import is_tty
from pynats.gotime import NS_PER_S, format_duration

UNKNOWN_WIDTH_BAR = 80
MIN_BAR = 10
NOT_STARTED = "---"


def bar_width(columns: int | None) -> int:
    if not columns:
        return UNKNOWN_WIDTH_BAR
    return max(columns - 30, MIN_BAR)


def render_bar(done: float, total: float, width: int) -> str:
    """`[====>-----]`: ends included in `width`, the head replacing the last filled cell."""
    fraction = min(max(done / total, 0.0), 1.0) if total > 0 else 1.0
    filled = int(width * fraction)
    cells = ["="] * filled + ["-"] * (width - filled)
    if 0 < filled < width:
        cells[filled - 1] = ">"
    cells[0] = "["
    cells[-1] = "]"
    return "".join(cells)


def render_line(state: str, elapsed: float | None, done: float, total: float, width: int) -> str:
    seconds = NOT_STARTED if elapsed is None else format_duration(int(elapsed) * NS_PER_S)
    percent = min(done / total, 1.0) * 100 if total > 0 else 100.0
    return f"{state} {seconds:>5} {render_bar(done, total, width)} {percent:3.0f}%"


class ProgressBoard:
    """Draws one bar per client on a terminal; does nothing when disabled or not a terminal."""

    def __init__(self, totals: list[int], enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.totals = totals
        self.enabled = enabled and is_tty(self.stream)
        self.drawn = 0

    def draw(self, states: list[str], elapsed: list[float | None], done: list[float]) -> None:
        if not self.enabled:
            return
        width = bar_width(shutil.get_terminal_size((0, 0)).columns)
        lines = [
            render_line(states[i], elapsed[i], done[i], self.totals[i], width)
            for i in range(len(self.totals))
        ]
        text = f"\x1b[{self.drawn}A" if self.drawn else ""
        text += "".join(f"\r\x1b[2K{line}\n" for line in lines)
        self.stream.write(text)
        self.stream.flush()
        self.drawn = len(lines)
