"""The store logic both stores share: limits, purge, queries, TTL, over a `MessageIndex`.

`MemoryStore` and `FileStore` differ only in where a message's bytes live; everything a
stream observes (sequences, subject state, limits, purge semantics, pending counts, expiry)
is decided here, once. Subclasses implement the `_persist_*`/`_fetch` hooks.

Removals the caller did not ask for (limits applied by `store_msg` and `update_config`) are
reported through `on_removed`; `expire()` returns its removals instead.
"""

from __future__ import annotations

import builtins
import heapq
import time
from typing import Final

from .base import (
    Damage,
    DamagedMessage,
    DamageListener,
    DiscardPolicy,
    DurableCallback,
    MaxBytesExceeded,
    MaxMsgsExceeded,
    MaxMsgsPerSubjectExceeded,
    MessageNotFound,
    MsgTooLarge,
    Removal,
    RemovalListener,
    RemovalReason,
    StoreClosed,
    StoreConfig,
    StoredMessage,
    StoreError,
    StreamState,
)
from .index import COUNT, FIRST, LAST, MessageIndex
from .subjects import is_literal, matches_all, subject_matches

_LINEAR_SCAN_LIMIT: Final = 4096  # slots a wildcard load_next walks before switching to per-subject

# `_new_tuple(Removal, fields)` without the NamedTuple constructor's Python frame (one per
# message a limit removes: every KV put replaces the previous revision)
_new_tuple: Final = tuple.__new__


class IndexedStore:
    def __init__(self, config: StoreConfig, with_locations: bool) -> None:
        self.config = config
        self.on_removed: RemovalListener | None = None
        self.on_damage: DamageListener | None = None
        self._index = MessageIndex(max(config.first_seq, 1), with_locations)
        self._ttl_heap: list[tuple[int, int]] = []  # (expires_at_ns, seq)
        self._age_exempt: set[int] = set()  # seqs with their own TTL: max_age does not apply
        self._damage: list[Damage] = []
        self._lost: dict[int, int] = {}  # seq -> accounted bytes (0 when unknown)
        self._closed = False
        self._match_cache: dict[tuple[str, str], bool] = {}
        self._has_limits = False
        self._checks_before_store = False
        self._apply_config_flags()

    # --- hooks for subclasses ---------------------------------------------------------------

    def _msg_size(self, subject: str, headers: bytes | None, data: bytes) -> int:
        raise NotImplementedError

    def _persist_msg(
        self, seq: int, subject: str, headers: bytes | None, data: bytes, ts: int, ttl: int
    ) -> tuple[int, int]:
        """Store the bytes; return (location, record length) for the index."""
        raise NotImplementedError

    def _fetch(self, seq: int) -> StoredMessage:
        raise NotImplementedError

    def _persist_removals(self, seqs: list[int], erase: bool) -> None:
        raise NotImplementedError

    def _before_erase(self, seq: int) -> None:
        """Overwrite the bytes of a message about to be removed (`erase=True`)."""

    def _persist_first(self, first_seq: int) -> None:
        """Everything below `first_seq` is gone."""
        raise NotImplementedError

    def _persist_skip(self, seq: int) -> None:
        raise NotImplementedError

    def _begin_batch(
        self, msgs: list[tuple[str, builtins.bytes | None, builtins.bytes, int]]
    ) -> None:
        """`msgs`, stored next, form one atomic batch (until `_end_batch`)."""

    def _end_batch(self, first_seq: int, last_seq: int) -> None:
        """The batch is whole: make it count (on disk, after a crash too)."""

    def when_durable(self, callback: DurableCallback) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Flush and close (the store can be opened again)."""
        raise NotImplementedError

    def delete(self) -> None:
        """Close and remove everything stored."""
        raise NotImplementedError

    # --- writes -----------------------------------------------------------------------------

    def store_msg(
        self, subject: str, headers: bytes | None, data: bytes, ttl: int = 0
    ) -> tuple[int, int]:
        """Append a message; returns (seq, ts_ns). Durability: see `when_durable`.

        `ttl` is the per-message TTL in ns (0 none, `TTL_NEVER` exempt from max_age). Raises a
        `StoreLimitError` when `discard: new` (or `max_msg_size`) refuses the message.
        """
        if self._closed:
            raise StoreClosed("store is closed")
        index = self._index
        if self._checks_before_store:
            self._check_refusals(subject, headers, data)
        ts = time.time_ns()
        if ts < index.last_ts:
            ts = index.last_ts
        seq = index.last_seq + 1
        self._append(seq, ts, subject, headers, data, ttl)
        return seq, ts

    def store_at(
        self, seq: int, ts: int, subject: str, headers: bytes | None, data: bytes, ttl: int = 0
    ) -> None:
        """Append a message with the sequence and time it had elsewhere (a restored backup):
        the sequences skipped before it become deleted slots. Limits apply; refusals do not
        (the message was accepted once already)."""
        if self._closed:
            raise StoreClosed("store is closed")
        index = self._index
        if seq <= index.last_seq:
            raise ValueError(f"sequence {seq} is not after {index.last_seq}")
        self._append(seq, max(ts, index.last_ts), subject, headers, data, ttl)

    def skip_to(self, seq: int) -> None:
        """Use up every sequence through `seq` without messages (a backup's deleted tail)."""
        if self._closed:
            raise StoreClosed("store is closed")
        if seq <= self._index.last_seq:
            return
        self._persist_skip(seq)
        self._index.pad_to(seq)

    def _append(
        self, seq: int, ts: int, subject: str, headers: bytes | None, data: bytes, ttl: int
    ) -> None:
        index = self._index
        loc, rlen = self._persist_msg(seq, subject, headers, data, ts, ttl)
        index.append(seq, subject, ts, self._msg_size(subject, headers, data), loc, rlen)
        if ttl:
            self._age_exempt.add(seq)
            if ttl > 0:
                heapq.heappush(self._ttl_heap, (ts + ttl, seq))
        if self._has_limits:
            self._enforce_limits(subject, ts)

    def store_batch(
        self, msgs: list[tuple[str, builtins.bytes | None, builtins.bytes, int]]
    ) -> list[tuple[int, int]]:
        """Append an atomic batch of (subject, headers, data, ttl): all of it, or - refused
        with the `StoreLimitError` of the first message that breaks a limit - none of it.
        After a crash in the middle of writing it, none of it is recovered."""
        if self._closed:
            raise StoreClosed("store is closed")
        if self._checks_before_store:
            self._check_batch_refusals(msgs)
        limits: bool = self._has_limits
        self._has_limits = False
        self._begin_batch(msgs)
        try:
            stored = [self.store_msg(s, h, d, ttl) for s, h, d, ttl in msgs]
        finally:
            self._has_limits = limits
        self._end_batch(stored[0][0], stored[-1][0])
        if limits:
            for subject in dict.fromkeys(s for s, *_ in msgs):
                self._enforce_limits(subject, stored[-1][1])
        return stored

    def _check_batch_refusals(
        self, msgs: list[tuple[str, builtins.bytes | None, builtins.bytes, int]]
    ) -> None:
        """`_check_refusals` for a whole batch, before any of it is stored."""
        cfg = self.config
        for _subject, headers, data, _ttl in msgs:
            if (
                cfg.max_msg_size >= 0
                and (len(headers) if headers else 0) + len(data) > cfg.max_msg_size
            ):
                raise MsgTooLarge()
        if cfg.discard is not DiscardPolicy.NEW:
            return
        index = self._index
        if cfg.max_msgs >= 0 and index.msgs + len(msgs) > cfg.max_msgs:
            raise MaxMsgsExceeded()
        added = sum(self._msg_size(s, h, d) for s, h, d, _ in msgs)
        if cfg.max_bytes >= 0 and index.bytes + added > cfg.max_bytes:
            raise MaxBytesExceeded()
        if cfg.discard_new_per_subject and cfg.max_msgs_per_subject > 0:
            counts: dict[str, int] = {}
            for subject, *_ in msgs:
                counts[subject] = counts.get(subject, 0) + 1
            for subject, n in counts.items():
                state = index.subjects.get(subject)
                if (state[COUNT] if state else 0) + n > cfg.max_msgs_per_subject:
                    raise MaxMsgsPerSubjectExceeded()

    def skip_msg(self) -> int:
        """Use up the next sequence without storing a message (interest retention)."""
        if self._closed:
            raise StoreClosed("store is closed")
        seq = self._index.last_seq + 1
        self._persist_skip(seq)
        self._index.pad_to(seq)
        return seq

    def remove_msg(self, seq: int, erase: bool = False) -> bool:
        """Remove one message; False when it was not there. `erase` overwrites its bytes."""
        if not self._index.is_live(seq):
            return False
        if erase:
            self._before_erase(seq)
        self._index.remove(seq)
        self._persist_removals([seq], erase)
        return True

    def purge(
        self, subject: str | None = None, seq: int | None = None, keep: int | None = None
    ) -> int:
        """The JS purge request: `subject` filter (wildcards ok), below `seq`, or keep newest `keep`.

        `seq` and `keep` together are a caller error (the API answers 10003).
        """
        if seq is not None and keep is not None:
            raise ValueError("seq and keep are mutually exclusive")
        index = self._index
        if matches_all(subject):
            if seq:
                return self.compact(min(seq, index.last_seq + 1))
            if keep:
                if keep >= index.msgs:
                    return 0
                return self.compact(self._nth_newest(keep))
            return self.compact(index.last_seq + 1)
        assert subject is not None
        seqs = self._matching_seqs(subject)
        if seq:
            seqs = [s for s in seqs if s < seq]
        elif keep:
            seqs = seqs[:-keep] if keep < len(seqs) else []
        for s in seqs:
            index.remove(s)
        if seqs:
            self._persist_removals(seqs, False)
        return len(seqs)

    def compact(self, seq: int) -> int:
        """Remove every message below `seq`; `seq` beyond the end moves the next sequence there."""
        index = self._index
        if seq <= index.first_seq:
            return 0
        if seq > index.last_seq:
            purged = index.msgs
            last_ts = index.last_ts
            index.reset(seq if seq > index.last_seq + 1 else index.last_seq + 1)
            index.last_ts = last_ts
        else:
            purged = 0
            for s in list(index.live_seqs(index.first_seq, seq - 1)):
                index.remove(s)
                purged += 1
        self._persist_first(index.first_seq if index.msgs else index.last_seq + 1)
        return purged

    # --- reads ------------------------------------------------------------------------------

    def load_msg(self, seq: int) -> StoredMessage:
        if not self._index.is_live(seq):
            raise MessageNotFound(f"no message found at sequence {seq}")
        return self._fetch(seq)

    def load_last(self, subject_filter: str = ">") -> StoredMessage:
        """The newest message matching the filter (wildcards ok)."""
        index = self._index
        # a stored subject is literal: a KV get finds its key with one lookup
        state = index.subjects.get(subject_filter)
        if state is not None:
            seq = state[LAST]
        elif matches_all(subject_filter):
            seq = index.last_seq
            while seq >= index.first_seq and not index.is_live(seq):
                seq -= 1
        elif is_literal(subject_filter):
            seq = 0
        else:
            seq = max(
                (
                    st[LAST]
                    for name, st in index.subjects.items()
                    if self._match(subject_filter, name)
                ),
                default=0,
            )
        if not seq or seq < index.first_seq:
            raise MessageNotFound("no message found")
        return self._fetch(seq)

    def load_next(self, subject_filter: str, start_seq: int) -> StoredMessage:
        """The first message at or after `start_seq` matching the filter."""
        seq = self._next_matching(subject_filter, start_seq)
        if not seq:
            raise MessageNotFound("no message found")
        return self._fetch(seq)

    def next_seq(self, subject_filter: str, start_seq: int) -> int:
        """Like `load_next` without reading the message: its sequence, or 0."""
        return self._next_matching(subject_filter, start_seq)

    def seq_for_time(self, ts_ns: int) -> int:
        """First sequence stored at or after `ts_ns` (0 if none): `start_time` lookups."""
        return self._index.seq_for_time(ts_ns)

    def state(self, deleted_details: bool = False) -> StreamState:
        index = self._index
        msgs = index.msgs
        first = index.first_seq if msgs else index.last_seq + 1
        return StreamState(
            msgs=msgs,
            bytes=index.bytes,
            first_seq=first,
            first_ts=index.ts_of(first) if msgs else 0,
            last_seq=index.last_seq,
            last_ts=index.last_ts if index.last_seq else 0,
            num_deleted=(index.last_seq - first + 1 - msgs) if msgs else 0,
            deleted=index.deleted_seqs() if deleted_details else None,
            num_subjects=len(index.subjects),
            lost=sorted(self._lost),
            lost_bytes=sum(self._lost.values()),
        )

    @property
    def msgs(self) -> int:
        return self._index.msgs

    @property
    def bytes(self) -> int:
        return self._index.bytes

    @property
    def first_seq(self) -> int:
        index = self._index
        return index.first_seq if index.msgs else index.last_seq + 1

    @property
    def last_seq(self) -> int:
        return self._index.last_seq

    def subject_of(self, seq: int) -> str | None:
        """The subject of a live message (from the index, no read), or None."""
        index = self._index
        return index.subject_of(seq) if index.is_live(seq) else None

    def last_seqs_per_subject(self, subject_filter: str = ">") -> list[int]:
        """The newest sequence of every subject matching the filter, ascending."""
        subjects = self._index.subjects
        everything = matches_all(subject_filter)
        return sorted(
            st[LAST]
            for name, st in subjects.items()
            if everything or self._match(subject_filter, name)
        )

    def subject_state(self, subject: str) -> tuple[int, int, int]:
        """(first, last, count) of one literal subject; zeros when it has no messages."""
        state = self._index.subjects.get(subject)
        return (state[FIRST], state[LAST], state[COUNT]) if state else (0, 0, 0)

    def subjects_state(self, subject_filter: str = ">") -> dict[str, int]:
        subjects = self._index.subjects
        if is_literal(subject_filter):
            state = subjects.get(subject_filter)
            return {subject_filter: state[COUNT]} if state else {}
        everything = matches_all(subject_filter)
        return {
            name: st[COUNT]
            for name, st in subjects.items()
            if everything or self._match(subject_filter, name)
        }

    def num_pending(
        self, start_seq: int, subject_filter: str = ">", last_per_subject: bool = False
    ) -> int:
        """Messages at or after `start_seq` matching the filter (or subjects whose last is)."""
        index = self._index
        everything = matches_all(subject_filter)
        if last_per_subject:
            return sum(
                1
                for name, st in index.subjects.items()
                if st[LAST] >= start_seq and (everything or self._match(subject_filter, name))
            )
        if everything:
            if start_seq <= index.first_seq:
                return index.msgs
            if start_seq > index.last_seq:
                return 0
            if start_seq - index.first_seq < index.last_seq - start_seq:
                return index.msgs - sum(1 for _ in index.live_seqs(index.first_seq, start_seq - 1))
            return sum(1 for _ in index.live_seqs(start_seq))
        if is_literal(subject_filter):
            return self._pending_on_subject(subject_filter, start_seq)
        return sum(
            self._pending_on_subject(name, start_seq)
            for name in index.subjects
            if self._match(subject_filter, name)
        )

    # --- limits and expiry ------------------------------------------------------------------

    def next_expiry(self) -> int | None:
        """When (ns since epoch) the next message expires by max_age or TTL; None if never."""
        candidates = []
        index = self._index
        heap = self._ttl_heap
        while heap and not index.is_live(heap[0][1]):
            heapq.heappop(heap)
        if heap:
            candidates.append(heap[0][0])
        if self.config.max_age > 0 and index.msgs:
            seq = self._first_age_bound()
            if seq:
                candidates.append(index.ts_of(seq) + self.config.max_age)
        return min(candidates) if candidates else None

    def expire(self, now_ns: int | None = None) -> list[Removal]:
        """Remove what max_age and TTLs say is due at `now_ns`; returns what was removed."""
        now = time.time_ns() if now_ns is None else now_ns
        removed: list[Removal] = []
        index = self._index
        if self.config.max_age > 0:
            cutoff = now - self.config.max_age
            seq = self._first_age_bound()
            while seq and index.ts_of(seq) <= cutoff:
                self._remove_by_limit(seq, RemovalReason.MAX_AGE, removed)
                seq = self._first_age_bound(seq + 1)
        heap = self._ttl_heap
        while heap and heap[0][0] <= now:
            _, seq = heapq.heappop(heap)
            if index.is_live(seq):
                self._remove_by_limit(seq, RemovalReason.TTL, removed)
        if removed:
            self._persist_removals([r.seq for r in removed], False)
        self._prune_exempt()
        return removed

    def update_config(self, config: StoreConfig) -> None:
        """Adopt new limits, applying them at once (removals go to `on_removed`)."""
        if config.storage != self.config.storage:
            raise StoreError("stream configuration update can not change storage type")
        self.config = config
        self._apply_config_flags()
        removed: list[Removal] = []
        mps = config.max_msgs_per_subject
        if mps > 0:
            for state in list(self._index.subjects.values()):
                while state[COUNT] > mps:
                    self._remove_by_limit(state[FIRST], RemovalReason.MAX_MSGS_PER_SUBJECT, removed)
        self._enforce_totals(removed)
        if removed:
            self._persist_removals([r.seq for r in removed], False)
            self._report(removed)
        self._report(self.expire())

    def damage(self) -> list[Damage]:
        """Damaged stretches found so far (at start-up or on read). Never cleared silently."""
        return list(self._damage)

    # --- internals --------------------------------------------------------------------------

    def _apply_config_flags(self) -> None:
        cfg = self.config
        self._has_limits = (
            cfg.max_msgs >= 0
            or cfg.max_bytes >= 0
            or cfg.max_msgs_per_subject > 0
            or cfg.max_age > 0
        )
        self._checks_before_store = cfg.max_msg_size >= 0 or (
            cfg.discard is DiscardPolicy.NEW
            and (cfg.max_msgs >= 0 or cfg.max_bytes >= 0 or cfg.discard_new_per_subject)
        )

    def _check_refusals(
        self, subject: str, headers: builtins.bytes | None, data: builtins.bytes
    ) -> None:
        cfg = self.config
        if (
            cfg.max_msg_size >= 0
            and (len(headers) if headers else 0) + len(data) > cfg.max_msg_size
        ):
            raise MsgTooLarge()
        if cfg.discard is not DiscardPolicy.NEW:
            return
        index = self._index
        if cfg.max_msgs >= 0 and index.msgs + 1 > cfg.max_msgs:
            raise MaxMsgsExceeded()
        if (
            cfg.max_bytes >= 0
            and index.bytes + self._msg_size(subject, headers, data) > cfg.max_bytes
        ):
            raise MaxBytesExceeded()
        if cfg.discard_new_per_subject and cfg.max_msgs_per_subject > 0:
            state = index.subjects.get(subject)
            if state and state[COUNT] >= cfg.max_msgs_per_subject:
                raise MaxMsgsPerSubjectExceeded()

    def _enforce_limits(self, subject: str, now: int) -> None:
        removed: list[Removal] = []
        cfg = self.config
        mps = cfg.max_msgs_per_subject
        if mps > 0:
            state = self._index.subjects[subject]
            while state[COUNT] > mps:
                self._remove_by_limit(state[FIRST], RemovalReason.MAX_MSGS_PER_SUBJECT, removed)
        self._enforce_totals(removed)
        if removed:
            self._persist_removals([r.seq for r in removed], False)
        if cfg.max_age > 0:
            removed.extend(self.expire(now))
        self._report(removed)

    def _enforce_totals(self, removed: list[Removal]) -> None:
        cfg, index = self.config, self._index
        if cfg.max_msgs >= 0:
            while index.msgs > cfg.max_msgs:
                self._remove_by_limit(index.first_seq, RemovalReason.MAX_MSGS, removed)
        if cfg.max_bytes >= 0:
            while index.bytes > cfg.max_bytes and index.msgs:
                self._remove_by_limit(index.first_seq, RemovalReason.MAX_BYTES, removed)

    def _remove_by_limit(self, seq: int, reason: RemovalReason, out: list[Removal]) -> None:
        result = self._index.remove(seq)
        if result is not None:
            out.append(_new_tuple(Removal, (seq, result[0], reason, result[2])))

    def _report(self, removed: list[Removal]) -> None:
        if removed and self.on_removed is not None:
            self.on_removed(removed)

    def _first_age_bound(self, start: int = 0) -> int:
        """First live seq >= start that max_age applies to (skips messages with a TTL)."""
        index, exempt = self._index, self._age_exempt
        seq = index.next_live(start or index.first_seq)
        while seq and seq in exempt:
            seq = index.next_live(seq + 1)
        return seq

    def _prune_exempt(self) -> None:
        exempt = self._age_exempt
        if len(exempt) > 64 and len(exempt) > 2 * self._index.msgs:
            self._age_exempt = {s for s in exempt if self._index.is_live(s)}

    def _nth_newest(self, n: int) -> int:
        """Sequence of the n-th newest live message (n >= 1)."""
        index = self._index
        seq = index.last_seq
        while True:
            if index.is_live(seq):
                n -= 1
                if n == 0:
                    return seq
            seq -= 1

    def _match(self, subject_filter: str, subject: str) -> bool:
        key = (subject_filter, subject)
        hit = self._match_cache.get(key)
        if hit is None:
            if len(self._match_cache) > 100_000:
                self._match_cache.clear()
            hit = self._match_cache[key] = subject_matches(subject_filter, subject)
        return hit

    def _matching_seqs(self, subject_filter: str) -> list[int]:
        index = self._index
        if is_literal(subject_filter):
            return index.subject_seqs(subject_filter)
        seqs: list[int] = []
        for name in [n for n in index.subjects if self._match(subject_filter, n)]:
            seqs.extend(index.subject_seqs(name))
        seqs.sort()
        return seqs

    def _next_matching(self, subject_filter: str, start_seq: int) -> int:
        index = self._index
        if matches_all(subject_filter):
            return index.next_live(start_seq)
        if is_literal(subject_filter):
            return index.next_of_subject(subject_filter, start_seq)
        seq = max(start_seq, index.first_seq)
        stop = min(index.last_seq, seq + _LINEAR_SCAN_LIMIT)
        size, sids, names, base = index.size, index.sid, index.names, index.base
        while seq <= stop:
            i = seq - base
            if size[i]:
                name = names[sids[i]]
                if name is not None and self._match(subject_filter, name):
                    return seq
            seq += 1
        if seq > index.last_seq:
            return 0
        found = [
            index.next_of_subject(name, seq)
            for name in index.subjects
            if self._match(subject_filter, name)
        ]
        return min((s for s in found if s), default=0)

    def _pending_on_subject(self, subject: str, start_seq: int) -> int:
        index = self._index
        state = index.subjects.get(subject)
        if state is None or state[LAST] < start_seq:
            return 0
        if start_seq <= state[FIRST]:
            return state[COUNT]
        count, seq, prv, base = 0, state[LAST], index.prv, index.base
        while seq >= start_seq:
            count += 1
            seq = prv[seq - base]
        return count

    def _fail_damaged(self, seq: int, damage: Damage) -> DamagedMessage:
        """Record a record that failed on read as a start-up scan records damage: in `damage()`,
        listed in `lost`, out of the counts and the subject index, never served. Only reads
        that fail come here, once per record (it is no longer indexed afterwards).

        The stream hears of it as a removal (consumers stop counting it as pending) and through
        `on_damage` (the log line)."""
        self._damage.append(damage)
        removed = self._index.remove(seq)
        self._lost[seq] = removed[1] if removed is not None else 0
        if removed is not None and self.on_removed is not None:
            self.on_removed([Removal(seq, removed[0], RemovalReason.DAMAGED, removed[2])])
        if self.on_damage is not None:
            self.on_damage(damage)
        return DamagedMessage(f"message {seq} is damaged: {damage.reason}")
