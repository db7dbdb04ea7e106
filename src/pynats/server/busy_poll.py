"""Busy polling between close requests: the event loop keeps polling its sockets without
sleeping for a moment after a read, when reads have been arriving close together.

Why: a sleeping event loop is woken by the kernel when a request arrives, and on a virtual
machine that wakeup (the idle vCPU halts; the host must run it again) costs tens of
microseconds, more than a KV get's whole server-side work. A client doing one request after
another (a KV get, a request/reply) sends its next request within tens of microseconds of
the answer: polling without sleeping in between finds it at once. Measured on the 2-core
machine: KV get p50 80 -> 40-50 µs, Go 90-100 µs (benchmarks/README.md, sixth round). Go's
runtime spins its idle threads for the same reason.

What it costs is bounded: polling starts only after a read that came less than `window`
after the one before it (a server whose reads are farther apart never polls), and stops
`window` after the last read. Each round of polling is one `call_soon` callback and one
non-blocking `epoll_pwait`, so a socket that turns readable is served within a few
microseconds. Timers, other callbacks and threads (fsync) run as usual meanwhile.

`window` is 0 (never) for a server embedded in another program's loop (`pynats.testing`):
it does not spend its host's CPU.
"""

from __future__ import annotations

import asyncio
import time


class BusyPoll:
    """Keeps the running event loop polling for `window` seconds after close reads."""

    def __init__(self, window: float) -> None:
        self._window = window
        self._last_read = 0.0
        self._polling = False

    @property
    def polling(self) -> bool:
        """The loop is polling instead of sleeping."""
        return self._polling

    def after_read(self) -> None:
        """A socket was read: poll on if it came soon after the previous read."""
        now = time.monotonic()
        close = now - self._last_read < self._window
        self._last_read = now
        if close and not self._polling:
            self._polling = True
            asyncio.get_running_loop().call_soon(self._poll)

    def _poll(self) -> None:
        if time.monotonic() - self._last_read < self._window:
            asyncio.get_running_loop().call_soon(self._poll)
        else:
            self._polling = False
