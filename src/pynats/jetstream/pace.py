"""`replay_policy: original` for push and pull deliveries, and the timer that wakes a
delivery when a held message is due.

As nats-server replays: each message waits, from the moment it is next in line, as long as
the gap between its stored time and that of the message delivered before it (the first goes
at once). A message held back stays the one in line until it is due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .store import StoredMessage


class OriginalPace:
    __slots__ = ("_due", "_held_seq", "_last_ts")

    def __init__(self) -> None:
        self._last_ts = 0  # stored time of the last message delivered (0: none yet)
        self._held_seq = 0
        self._due = 0.0

    def due(self, msg: StoredMessage, now: float) -> float:
        """The loop time `msg` may go out."""
        if msg.seq != self._held_seq:
            gap = (msg.ts_ns - self._last_ts) / 1e9 if self._last_ts else 0.0
            self._held_seq = msg.seq
            self._due = now + max(gap, 0.0)
        return self._due

    def sent(self, msg: StoredMessage) -> None:
        self._last_ts = msg.ts_ns
        self._held_seq = 0


class Waker:
    """One timer calling `wake` at the earliest time asked for."""

    __slots__ = ("_at", "_loop", "_timer", "_wake")

    def __init__(self, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
        self._loop = loop
        self._wake = wake
        self._timer: asyncio.TimerHandle | None = None
        self._at = 0.0

    def at(self, when: float) -> None:
        if self._timer is not None:
            if self._at <= when:
                return
            self._timer.cancel()
        self._at = when
        self._timer = self._loop.call_at(when, self._fire)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        self._wake()
