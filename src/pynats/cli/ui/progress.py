"""A one-line progress bar on stderr, for long runs (`pub --count 1000`, object transfers).

natscli draws go-pretty progress bars; here the bar shows block characters, the percentage,
done/total, elapsed time and the rate, redrawn at most every 250 ms. It draws only when stderr
is a terminal, so piped and scripted runs get clean output.
"""

from __future__ import annotations

import shutil
import sys
import time

from pynats.cli.ui.humanize import comma, float_comma
from pynats.cli.ui.output import is_tty

REDRAW_INTERVAL_S = 0.25


class ProgressBar:
    """Counts towards `total`; `advance()` as work completes, `finish()` at the end."""

    def __init__(self, total: int, label: str = "") -> None:
        self.total = max(total, 1)
        self.label = label
        self.done = 0
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.enabled = is_tty(sys.stderr)

    def advance(self, amount: int = 1) -> None:
        self.done += amount
        now = time.monotonic()
        if self.enabled and (now - self.last_draw >= REDRAW_INTERVAL_S or self.done >= self.total):
            self.last_draw = now
            self._draw(now)

    def finish(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            sys.stderr.write("\n")
            sys.stderr.flush()

    # Room the text around the bar takes; subclasses with longer text reserve more.
    TEXT_WIDTH = 30

    def _draw(self, now: float) -> None:
        width = shutil.get_terminal_size((0, 0)).columns
        length = max((width - self.TEXT_WIDTH) // 2, 10) if width > self.TEXT_WIDTH else 40
        fraction = min(self.done / self.total, 1.0)
        filled = int(length * fraction)
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        bar = "█" * filled + "░" * (length - filled)
        sys.stderr.write("\r" + self.describe(bar, fraction, elapsed, rate))
        sys.stderr.flush()

    def describe(self, bar: str, fraction: float, elapsed: float, rate: float) -> str:
        """The line around the bar (counts of things)."""
        return (
            f"{self.label}{bar} {fraction * 100:5.1f}% {comma(self.done)}/{comma(self.total)}"
            f" {elapsed:.1f}s {float_comma(rate, 1)}/s"
        )
