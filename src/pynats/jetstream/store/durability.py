"""When a write counts as durable: the sync policy and group commit, shared by every store.

A store appends records (to a user-space buffer, then to the OS) on the event-loop thread and
hands its `GroupCommit` the file descriptors it dirtied. Durability is signalled separately:
`when_durable(callback)` fires once everything appended before the call is as safe as the
policy promises:

- `group` (default): after an fsync that covers it. One fsync runs at a time, in a worker
  thread; every record appended while it runs is covered by the next one, and all their
  callbacks fire together. Nothing blocks the loop.
- `always` (nats-server's `sync_interval: always` / `sync_always: true`): the same group
  commit, and the same promise (no callback before the fsync that covers its data), with one
  difference: every append starts a round even when nobody waits, so consumer state (plain
  acks, delivered positions), which `group` only fsyncs for a waiter, is never left unsynced
  past the round in flight. nats-server fsyncs each write on the spot; that costs one fsync per
  message (and per ack) on the loop thread, for no stronger promise: an acknowledgement waits
  for its fsync either way.
- `interval`: nats-server's lazy mode; callbacks fire once the OS has the bytes, and an fsync
  runs on a timer.

Without an event loop (tools, tests) every sync happens inline, and `always` fsyncs each
append there.

Invariants: callbacks fire in the order they were registered, on the loop thread, exactly
once, with `None` or the error that made the data unsafe. Post-sync actions (unlinking files
whose removal depended on tombstones) run only after the fsync covering those tombstones.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from pynats.gotime import parse_duration

from .base import DurableCallback
from .fileio import FileIO

_executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="pynats-fsync")


class SyncMode(enum.StrEnum):
    GROUP = "group"
    INTERVAL = "interval"
    ALWAYS = "always"


@dataclass(frozen=True)
class SyncPolicy:
    """How durable an acknowledged write is. The default is `group` (fsync before ack)."""

    mode: SyncMode = SyncMode.GROUP
    interval_ns: int = 0

    @classmethod
    def parse(cls, value: str | int | None) -> SyncPolicy:
        """From the config's `sync_interval`: None -> group, "always", or a duration (ns or "2m")."""
        if value is None or value == "" or value == "group":
            return cls()
        if isinstance(value, str) and value.lower() == "always":
            return cls(SyncMode.ALWAYS)
        ns = value if isinstance(value, int) else parse_duration(value)
        if ns <= 0:
            raise ValueError(f"invalid sync_interval: {value!r}")
        return cls(SyncMode.INTERVAL, ns)


class GroupCommit:
    """Tracks what a store wrote but did not yet fsync, and releases durability callbacks.

    `flush` is the store's function that moves its user-space buffer to the OS (called before
    any fsync and before any callback in lazy mode).

    `sync_on_append=False` (consumer state): appends only reach the OS at the end of the
    loop iteration; an fsync round runs when someone waits in `when_durable` (a double ack
    to confirm), so plain acks cost no fsync of their own. The `always` policy overrides it:
    there, every append is fsynced by the next round.
    """

    def __init__(
        self,
        policy: SyncPolicy,
        fileio: FileIO,
        flush: Callable[[], None],
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        sync_on_append: bool = True,
    ) -> None:
        self.policy = policy
        self.sync_on_append = sync_on_append or policy.mode is SyncMode.ALWAYS
        self.fileio = fileio
        self.flush = flush
        self.loop = loop
        self.failure: BaseException | None = None
        self.syncs = 0  # fsync rounds completed (for tests and /jsz)
        self._dirty_fds: set[int] = set()
        self._dirty_dirs: set[str] = set()
        self._appended = False  # appended since the last flush (the store's buffer may hold it)
        self._after_sync: list[Callable[[], None]] = []
        self._retired_fds: list[int] = []
        self._waiting: list[DurableCallback] = []
        self._in_flight: tuple[Future[None], list[DurableCallback]] | None = None
        self._scheduled = False
        self._closed = False
        self._timer: asyncio.TimerHandle | None = None
        if loop is not None and policy.mode is SyncMode.INTERVAL:
            self._timer = loop.call_later(policy.interval_ns / 1e9, self._on_timer)

    # --- what the store reports -------------------------------------------------------------

    def dirty(self, fd: int) -> None:
        self._dirty_fds.add(fd)

    def dirty_dir(self, path: str) -> None:
        self._dirty_dirs.add(path)

    def after_sync(self, action: Callable[[], None]) -> None:
        """Run `action` (in the sync thread) only after the next fsync round completed."""
        self._after_sync.append(action)

    def retire_fd(self, fd: int) -> None:
        """Close `fd` once no fsync needs it any more."""
        if fd in self._dirty_fds or self._in_flight is not None:
            self._retired_fds.append(fd)
        else:
            self.fileio.close(fd)

    def appended(self) -> None:
        """Called by the store after each append: start or schedule the work the policy wants."""
        self._appended = True
        if self.loop is None:
            if self.policy.mode is SyncMode.ALWAYS:
                self.sync_now()
        elif not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._kick)

    # --- what the stream asks ---------------------------------------------------------------

    def when_durable(self, callback: DurableCallback) -> None:
        if self.failure is not None:
            callback(self.failure)
            return
        if self.policy.mode is SyncMode.INTERVAL:
            self._flush()
            callback(None)
        elif self.loop is None:
            self.sync_now()
            callback(self.failure)
        else:
            self._waiting.append(callback)
            if not self._scheduled:
                self._scheduled = True
                self.loop.call_soon(self._kick)

    @property
    def has_unsynced(self) -> bool:
        return bool(
            self._appended
            or self._dirty_fds
            or self._dirty_dirs
            or self._after_sync
            or self._waiting
        )

    def sync_now(self) -> None:
        """Flush and fsync everything now, on this thread (waits for a running round first)."""
        self._wait_in_flight()
        self._run_round_inline()

    def close(self) -> None:
        """Make everything durable, fire every pending callback, stop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.sync_now()
        self._closed = True

    # --- rounds -----------------------------------------------------------------------------

    def _kick(self) -> None:
        self._scheduled = False
        if self._closed or self._in_flight is not None:
            return
        if self.policy.mode is SyncMode.INTERVAL or (
            not self.sync_on_append and not self._waiting and not self._after_sync
        ):
            self._flush()
            return
        if self.has_unsynced:
            self._start_round()

    def _flush(self) -> None:
        self._appended = False
        self.flush()

    def _on_timer(self) -> None:
        if self._closed or self.loop is None:
            return
        self._timer = self.loop.call_later(self.policy.interval_ns / 1e9, self._on_timer)
        if self._in_flight is None:
            self._start_round()

    def _take_round(
        self,
    ) -> tuple[list[int], list[str], list[Callable[[], None]], list[DurableCallback]]:
        try:
            self._flush()
        except BaseException as exc:  # the write itself failed: nothing is safe
            self.failure = self.failure or exc
        fds, dirs = list(self._dirty_fds), list(self._dirty_dirs)
        actions, waiting = self._after_sync, self._waiting
        self._dirty_fds, self._dirty_dirs = set(), set()
        self._after_sync, self._waiting = [], []
        return fds, dirs, actions, waiting

    def _start_round(self) -> None:
        fds, dirs, actions, waiting = self._take_round()
        job = _executor.submit(self._sync_job, fds, dirs, actions)
        self._in_flight = (job, waiting)
        loop = self.loop
        assert loop is not None

        def done(finished: Future[None]) -> None:
            try:
                loop.call_soon_threadsafe(self._round_done, finished)
            except RuntimeError:  # loop closed: close() already settled it
                pass

        job.add_done_callback(done)

    def _round_done(self, job: Future[None]) -> None:
        if self._in_flight is None or self._in_flight[0] is not job:
            return  # already settled by _wait_in_flight
        _, waiting = self._in_flight
        self._in_flight = None
        self._finish(job.exception(), waiting)
        loop = self.loop
        if loop is not None and self.has_unsynced and not self._closed and not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._kick)

    def _wait_in_flight(self) -> None:
        if self._in_flight is None:
            return
        job, waiting = self._in_flight
        self._in_flight = None
        self._finish(job.exception(), waiting)  # blocks until the worker is done

    def _run_round_inline(self) -> None:
        fds, dirs, actions, waiting = self._take_round()
        error = None
        try:
            self._sync_job(fds, dirs, actions)
        except BaseException as exc:
            error = exc
        self._finish(error, waiting)

    def _finish(self, error: BaseException | None, waiting: list[DurableCallback]) -> None:
        if error is not None:
            self.failure = self.failure or error
        self.syncs += 1
        retired, self._retired_fds = self._retired_fds, []
        for fd in retired:
            if fd in self._dirty_fds:
                self._retired_fds.append(fd)
            else:
                self.fileio.close(fd)
        for callback in waiting:
            callback(self.failure)

    def _sync_job(self, fds: list[int], dirs: list[str], actions: list[Callable[[], None]]) -> None:
        if self.failure is not None:
            raise self.failure
        for fd in fds:
            self.fileio.fsync(fd)
        for path in dirs:
            self.fileio.fsync_dir(path)
        for action in actions:
            action()
