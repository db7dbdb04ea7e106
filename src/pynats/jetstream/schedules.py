"""Message schedules (ADR-51, `allow_msg_schedules`): a message with `Nats-Schedule` on its own
subject makes the stream publish a message to `Nats-Schedule-Target` later - once (`@at`), or
again and again (`@every`, cron).

The schedule message itself is stored (with `Nats-Rollup: sub`, so a newer schedule on the
subject replaces it); the stream's `Scheduler` keeps one entry per schedule subject and one
timer for the earliest due. A firing stores on the target the schedule's body (or, with
`Nats-Schedule-Source`, the body of the last message on that subject) and its headers other
than the schedule's own, plus `Nats-Scheduler` (where it came from) and `Nats-Schedule-Next`
(`purge` for `@at`, else the next firing); then an `@at` schedule is deleted. Purging the
schedule's subject, or publishing `Nats-Scheduler: <subject>` with `Nats-Schedule-Next:
purge`, stops it. After a restart the schedules are read back from the stream; one that
missed firings while the server was down fires once and goes on from now.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynats.gotime import NS_PER_S, rfc3339
from pynats.server.subjects import is_literal, is_valid_subject

from . import headers as h
from . import schedule_patterns
from .errors import ApiError, api_error
from .store import MessageNotFound
from .store.subjects import subject_matches

if TYPE_CHECKING:
    import asyncio

    from .stream import Stream

SCHEDULE = b"Nats-Schedule"
TARGET = b"Nats-Schedule-Target"
SCHEDULE_TTL = b"Nats-Schedule-TTL"
SOURCE = b"Nats-Schedule-Source"
TIME_ZONE = b"Nats-Schedule-Time-Zone"
SCHEDULE_ROLLUP = b"Nats-Schedule-Rollup"
SCHEDULER = b"Nats-Scheduler"
NEXT = b"Nats-Schedule-Next"
# what a fired message does not carry over from its schedule
_SCHEDULE_HEADERS = (SCHEDULE, TARGET, SCHEDULE_TTL, SOURCE, TIME_ZONE, SCHEDULE_ROLLUP, h.ROLLUP)


def check_publish(stream: Stream, subject: str, hdrs: dict[bytes, bytes], headers: bytes) -> bytes:
    """The schedule headers of a published message; returns its headers as stored (a schedule
    gets `Nats-Rollup: sub`). Raises ApiError."""
    if SCHEDULER in hdrs or NEXT in hdrs:
        scheduler = hdrs.get(SCHEDULER, b"")
        if (
            hdrs.get(NEXT) != b"purge"
            or not scheduler
            or not is_valid_subject(scheduler)
            or not is_literal(scheduler)
            or scheduler.decode() == subject
        ):
            raise api_error("JSMessageSchedulesSchedulerInvalidErr")
        return headers
    value = hdrs.get(SCHEDULE)
    if value is None:
        return headers
    cfg = stream.config
    if not cfg.allow_msg_schedules:
        raise api_error("JSMessageSchedulesDisabledErr")
    zone = hdrs.get(TIME_ZONE)
    schedule_patterns.parse(value.decode(), None if zone is None else zone.decode())
    target = hdrs.get(TARGET, b"")
    if not _in_stream(stream, target) or target.decode() == subject:
        raise api_error("JSMessageSchedulesTargetInvalidErr")
    ttl = hdrs.get(SCHEDULE_TTL)
    if ttl is not None:
        try:
            h.parse_ttl(ttl)
        except ApiError:
            raise api_error("JSMessageSchedulesTTLInvalidErr") from None
        if not cfg.allow_msg_ttl:
            raise api_error("JSMessageTTLDisabledErr")
    for name in (h.ROLLUP, SCHEDULE_ROLLUP):
        rollup = hdrs.get(name)
        if rollup is not None and rollup != h.ROLLUP_SUBJECT:
            raise api_error("JSMessageSchedulesRollupInvalidErr")
    source = hdrs.get(SOURCE)
    if source is not None and (
        not _in_stream(stream, source) or source.decode() == subject or source == target
    ):
        raise api_error("JSMessageSchedulesSourceInvalidErr")
    if h.ROLLUP not in hdrs:
        headers = h.append(headers, [("Nats-Rollup", "sub")])
    return headers


def _in_stream(stream: Stream, subject: bytes) -> bool:
    if not subject or not is_valid_subject(subject) or not is_literal(subject):
        return False
    text = subject.decode()
    return any(subject_matches(f, text) for f in stream.config.subjects or [stream.name])


@dataclass
class Entry:
    seq: int  # the schedule message
    pattern: schedule_patterns.Pattern
    due_ns: int


class Scheduler:
    """The schedules of one stream and the timer of the next firing."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.entries: dict[str, Entry] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0

    def track(self, subject: str, seq: int, ts: int, headers: bytes, *, restart: bool) -> None:
        """A schedule message stored at `seq` (or found in the stream at start-up)."""
        hdrs = h.parse(headers)
        zone = hdrs.get(TIME_ZONE)
        try:
            pattern = schedule_patterns.parse(
                hdrs[SCHEDULE].decode(), None if zone is None else zone.decode()
            )
        except ApiError:
            return
        base = ts
        if restart:  # firings already made before the restart do not count as missed
            base = max(base, self._last_fired(subject, hdrs.get(TARGET, b"").decode()))
        due = pattern.at_ns if pattern.kind == "at" else schedule_patterns.next_after(pattern, base)
        if due is None:
            return
        self.entries[subject] = Entry(seq, pattern, due)
        self._arm()

    def _last_fired(self, subject: str, target: str) -> int:
        try:
            last = self.stream.store.load_last(target)
        except MessageNotFound:
            return 0
        if h.get(last.headers or b"", SCHEDULER) == subject.encode():
            return last.ts_ns
        return 0

    def recover(self) -> None:
        store = self.stream.store
        for seq in store.last_seqs_per_subject(">"):
            try:
                msg = store.load_msg(seq)
            except MessageNotFound:
                continue
            if msg.headers and h.get(msg.headers, SCHEDULE) is not None:
                self.track(msg.subject, seq, msg.ts_ns, msg.headers, restart=True)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.entries.clear()

    def _arm(self) -> None:
        if not self.entries:
            return
        due = min(e.due_ns for e in self.entries.values())
        if self._timer is not None:
            if self._timer_at <= due:
                return
            self._timer.cancel()
        self._timer_at = due
        delay = max(due - time.time_ns(), 0) / NS_PER_S
        self._timer = self.stream.loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = time.time_ns()
        for subject, entry in list(self.entries.items()):
            if entry.due_ns <= now and not self.stream.closed:
                self._fire(subject, entry, now)
        self._arm()

    def _fire(self, subject: str, entry: Entry, now: int) -> None:
        stream = self.stream
        store = stream.store
        try:
            msg = store.load_msg(entry.seq)
            if store.subject_state(subject)[1] != entry.seq:
                raise MessageNotFound(entry.seq)
        except MessageNotFound:  # purged, deleted or replaced: the schedule is over
            if self.entries.get(subject) is entry:
                del self.entries[subject]
            return
        block = msg.headers or b""
        hdrs = h.parse(block)
        body = msg.data
        source = hdrs.get(SOURCE)
        if source is not None:
            try:
                body = store.load_last(source.decode()).data
            except MessageNotFound:
                pass
        recurring = entry.pattern.recurring
        following = schedule_patterns.next_after(entry.pattern, now) if recurring else None
        extra = [
            ("Nats-Scheduler", subject),
            (
                "Nats-Schedule-Next",
                rfc3339(following // NS_PER_S * NS_PER_S) if following else "purge",
            ),
        ]
        ttl = hdrs.get(SCHEDULE_TTL)
        if ttl is not None:
            extra.append(("Nats-TTL", ttl.decode()))
        if hdrs.get(SCHEDULE_ROLLUP) == h.ROLLUP_SUBJECT:
            extra.append(("Nats-Rollup", "sub"))
        out = h.append(h.remove(block, _SCHEDULE_HEADERS) or None, extra)
        try:
            stream.ingest(hdrs.get(TARGET, b"").decode(), out, body, scheduled=True)
        except ApiError as e:
            stream.jsa.js.server.logger.warn(
                f"Stream '{stream.jsa.name} > {stream.name}': message schedule {subject} "
                f"failed: {e.description}"
            )
        if following is None:
            del self.entries[subject]
            if not recurring:
                try:
                    stream.delete_msg(entry.seq, False)
                except ApiError:
                    pass
        else:
            entry.due_ns = following
