"""Stream: what happens to a message published on a stream's subjects, and to it afterwards.

Ingest. The stream holds one internal subscription per subject (in its account). A publish
is handed to `Stream.on_publish` synchronously while it is routed: headers are looked at only
when there are any (expected-stream/sequence/msg-id checks, dedupe, rollup, TTL), then the
store appends the record and returns at once. The pub-ack waits for durability: acks of one
loop iteration form a batch, released by one `store.when_durable` callback (group commit; a
memory store answers at once). Errors answer at once, in order with the batch.

Afterwards. Limits are applied by the store (`on_removed`), `max_age` and per-message TTLs by
a timer armed for `store.next_expiry()`; expiring the last message of a subject can leave a
subject delete marker. Purge, message delete/get and stream info read and change the store.

Hooks for consumers: a `StreamListener` registered with `add_listener` hears of every
stored message (`on_stored`), removal (`on_removed`, with the subjects) and purge
(`on_purged`). Interest and work-queue retention ask listeners whether a message is wanted
(`wants`) and whether any still needs to acknowledge it (`needs_ack`); consumers report acks
with `acked(listener, seq)`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from pynats.gotime import NS_PER_S, format_duration, rfc3339
from pynats.server.conf.units import go_quote
from pynats.server.delivery import route_message
from pynats.server.msgtrace import jetstream_error, jetstream_subject
from pynats.server.subject_transform import SubjectTransform, compile_transform

from . import batches, counters, fast_batches, queues, schedules
from . import headers as h
from .config import StreamConfig
from .errors import ApiError, api_error
from .store import (
    MessageNotFound,
    MessageStore,
    MsgTooLarge,
    Removal,
    RemovalReason,
    StoredMessage,
    StoreError,
)
from .store.base import file_msg_size, memory_msg_size
from .store.crypt import EncryptionError
from .store.indexed import IndexedStore

if TYPE_CHECKING:
    from pynats.server.delivery import Publisher
    from pynats.server.internal import InternalClient
    from pynats.server.sublist import Subscription

    from .consumer import Consumer
    from .service import JetStreamAccount
    from .sources import SourceLinks

MAX_HEADER_BYTES: Final = 65535
TRACE_TOO_LARGE: Final = (
    "maximum payload exceeded"  # nats-server's ErrMaxPayload, in a message trace
)
RECOVERY_FILE: Final = "dedupe.json"
MARKER_REASON_MAX_AGE: Final = "MaxAge"


class StreamListener(Protocol):
    """What a consumer registers with its stream (`Stream.add_listener`)."""

    def on_stored(self, seq: int, subject: str) -> None: ...
    def on_removed(self, removed: Sequence[tuple[int, str]]) -> None: ...
    def on_purged(self, event: PurgeEvent) -> None: ...
    def wants(self, subject: str) -> bool: ...
    def needs_ack(self, seq: int, subject: str) -> bool: ...


@dataclass(frozen=True)
class PurgeEvent:
    """A purge that happened: the request (`filter`, `seq`, `keep`) and its effect."""

    filter: str
    seq: int
    keep: int
    purged: int
    first_seq: int  # the stream's first sequence afterwards


class Stream:
    def __init__(
        self,
        jsa: JetStreamAccount,
        config: StreamConfig,
        store: MessageStore,
        created_ns: int,
        directory: str | None = None,
    ) -> None:
        self.jsa = jsa
        self.config = config
        # Every store is one of IndexedStore's two; typed as that class (not the protocol)
        # so that compiled, each call on the hot path goes straight to the store's method.
        assert isinstance(store, IndexedStore)
        self.store: IndexedStore = store
        self.created_ns = created_ns
        self.directory = directory
        self.name = config.name
        self.client: InternalClient = jsa.client
        self.loop = jsa.js.server.loop
        self.listeners: list[StreamListener] = []
        self.consumers: dict[str, Consumer] = {}
        self.closed = False
        self.sources: SourceLinks | None = None
        self._subs: list[Subscription] = []
        self._direct_subs: list[Subscription] = []
        self._msg_ids: dict[str, tuple[int, int]] = {}
        self._msg_id_times: deque[tuple[int, str]] = deque()
        self.last_msg_id = ""
        self._acks: list[tuple[bytes, bytes]] = []
        self._ack_batch_open = False
        # Messages stored and waiting for their fsync (this iteration's batch, and all of
        # them), limited by `max_buffered_msgs` / `max_buffered_size` (queues.py).
        self._batch_msgs = 0
        self._batch_bytes = 0
        self._buffered_msgs = 0
        self._buffered_bytes = 0
        self._max_buffered_msgs = jsa.js.max_buffered_msgs
        self._max_buffered_bytes = jsa.js.max_buffered_size
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._expiry_at = 0
        self._markers_due: list[str] = []
        self._marker_seqs: set[int] = set()
        # The total the last counter publish left (for its PubAck's "val").
        self.counter_total = 0
        self.batches: batches.AtomicBatches | None = None  # atomic batches arriving
        self.fast_batches: fast_batches.FastBatches | None = None  # allow_batched
        self.scheduler: schedules.Scheduler | None = None  # allow_msg_schedules
        self.offline_consumers: dict[str, str] = {}  # stored, too new for this server: why
        store.on_removed = self._on_limit_removals
        self._apply_config()

    # -- configuration -----------------------------------------------------------------------

    def _apply_config(self) -> None:
        cfg = self.config
        domain = self.jsa.js.domain
        name = cfg.name.encode()
        if domain:
            self._ack_prefix = b'{"stream":"%b","domain":"%b","seq":' % (name, domain.encode())
        else:
            self._ack_prefix = b'{"stream":"%b","seq":' % name
        self._err_suffix = b',"stream":"%b","seq":0}' % name
        self._memory = cfg.is_memory
        # PubAcks without waiting for the disk: memory, or `persist_mode: async` (ADR-56)
        self._ack_at_once = cfg.is_memory or cfg.persist_mode == "async"
        self._no_ack = cfg.no_ack
        self._sealed = cfg.sealed
        self._max_msg_size = cfg.max_msg_size
        self._interest = cfg.retention == "interest"
        self._counter = cfg.allow_msg_counter
        self._has_ttl_timer = cfg.max_age > 0 or cfg.allow_msg_ttl
        self._has_max_age = cfg.max_age > 0
        self._transform: SubjectTransform | None = None
        st = cfg.subject_transform
        if st is not None and st.dest:
            self._transform = compile_transform(st.src, st.dest)
        self._republish: SubjectTransform | None = None
        rp = cfg.republish
        if rp is not None and rp.dest:
            self._republish = compile_transform(rp.src, rp.dest, strict=True)
        self._subject_cache: dict[bytes, str] = {}

    def start(self) -> None:
        """Subscribe to the stream's subjects (and the direct-get subjects)."""
        self._subscribe()
        self._recover_msg_ids()
        self._arm_expiry()
        if self.config.allow_msg_schedules:
            self.scheduler = schedules.Scheduler(self)
            self.scheduler.recover()

    def _subscribe(self) -> None:
        for sub in self._subs:
            self.client.unsubscribe(sub)
        self._subs = [
            self.client.subscribe(subject, self.on_publish) for subject in self.config.subjects
        ]
        from .direct import direct_subscriptions

        for sub in self._direct_subs:
            self.client.unsubscribe(sub)
        self._direct_subs = direct_subscriptions(self)

    def update(self, config: StreamConfig) -> None:
        """Adopt a validated new configuration (subscriptions and limits follow it)."""
        old = self.config
        self.config = config
        self._apply_config()
        for consumer in self.consumers.values():
            consumer.stream_updated()
        self.store.update_config(config.store_config())
        if (
            old.subjects != config.subjects
            or old.allow_direct != config.allow_direct
            or (old.mirror_direct != config.mirror_direct)
        ):
            self._subscribe()
        self._place_markers()
        self._arm_expiry()
        if config.allow_msg_schedules and self.scheduler is None:
            self.scheduler = schedules.Scheduler(self)

    def stop(self) -> None:
        """Stop taking messages (delete or shutdown); the store is the caller's."""
        self.closed = True
        for sub in self._subs + self._direct_subs:
            self.client.unsubscribe(sub)
        self._subs, self._direct_subs = [], []
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None
        if self.sources is not None:
            self.sources.stop()
        if self.batches is not None:
            self.batches.stop()
        if self.fast_batches is not None:
            self.fast_batches.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        self._release_acks()

    # -- listeners (consumers) ---------------------------------------------------------------

    def add_listener(self, listener: StreamListener) -> None:
        self.listeners.append(listener)

    def remove_listener(self, listener: StreamListener, collect: bool = True) -> None:
        """`collect`: under interest retention, drop what no remaining listener needs (a
        consumer deleted); not when the server only shuts down."""
        if listener in self.listeners:
            self.listeners.remove(listener)
        if collect and self.config.retention == "interest" and not self.closed:
            self.collect_unneeded()

    def acked(self, listener: StreamListener, seq: int) -> None:
        """A consumer acknowledged `seq`: under interest/work-queue retention it may go."""
        retention = self.config.retention
        if retention == "limits":
            return
        subject = self.store.subject_of(seq)
        if subject is None:
            return
        if retention == "interest":
            for other in self.listeners:
                if other is not listener and other.needs_ack(seq, subject):
                    return
        self._remove(seq, subject)

    def collect_unneeded(self) -> None:
        """Interest retention: drop every message no listener still needs."""
        store = self.store
        seq = store.first_seq
        doomed = []
        while seq and seq <= store.last_seq:
            seq = store.next_seq(">", seq)
            if not seq:
                break
            subject = store.subject_of(seq)
            if subject is not None and not any(
                lst.needs_ack(seq, subject) for lst in self.listeners
            ):
                doomed.append((seq, subject))
            seq += 1
        for seq, subject in doomed:
            self._remove(seq, subject)

    def _remove(self, seq: int, subject: str) -> None:
        if self.store.remove_msg(seq):
            self._notify_removed([(seq, subject)])

    def _notify_removed(self, removed: Sequence[tuple[int, str]]) -> None:
        for listener in self.listeners:
            listener.on_removed(removed)

    # -- ingest (the hot path) ---------------------------------------------------------------

    def on_publish(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        """One message published on a stream subject (a `DeliveryCallback`)."""
        if self._no_ack:
            reply = None
        if not self._ack_at_once:
            if not self._ack_batch_open:
                # Scheduled before the store's own sync kick, so the batch joins the next fsync.
                self._ack_batch_open = True
                self.loop.call_soon(self._release_acks)
            if (
                self._buffered_msgs >= self._max_buffered_msgs
                or self._buffered_bytes >= self._max_buffered_bytes
            ):
                self._refuse_buffered(reply)
                return
        subj = self._subject_cache.get(subject)
        if subj is None:
            subj = subject.decode()
            if len(self._subject_cache) < 10_000:
                self._subject_cache[subject] = subj
        if reply is not None and (
            reply[-4:] == b".$FI"  # a fast-ingest batch (fast_batches.py)
            or (headers and b"$FI" in headers and fast_batches.imported_pattern(headers))
        ):
            if self.fast_batches is None:
                self.fast_batches = fast_batches.FastBatches(self)
            self.fast_batches.receive(subj, reply, headers, payload)
            return
        if headers and b"Nats-Batch-Id:" in headers and h.get(headers, h.BATCH_ID):
            if self.batches is None:
                self.batches = batches.AtomicBatches(self)
            self.batches.receive(subj, reply, headers, payload)
            return
        try:
            seq = self.ingest(subj, headers, payload)
        except ApiError as e:
            # a traced message's `js` event says why, in nats-server's words
            jetstream_error(e.trace_error(), self.stored_subject(subj, e))
            if reply is not None:
                self._reply(reply, self._error_ack(e))
            return
        if seq < 0:
            jetstream_error("msgid is duplicate")
        elif not self._ack_at_once:
            size = len(headers) + len(payload)
            self._batch_msgs += 1
            self._batch_bytes += size
            self._buffered_msgs += 1
            self._buffered_bytes += size
        if reply is not None:
            if seq < 0:
                self._reply(reply, self._ack_prefix + b'%d,"duplicate": true}' % -seq)
            elif self._counter:
                self._reply(reply, self._ack_prefix + b'%d,"val":"%d"}' % (seq, self.counter_total))
            else:
                self._reply(reply, self._ack_prefix + b"%d}" % seq)

    def ingest(
        self,
        subject: str,
        headers: bytes,
        payload: bytes,
        *,
        source_header: bool = False,
        scheduled: bool = False,
    ) -> int:
        """Store one message after the publish checks; returns its sequence (negative: the
        sequence of the original when it is a duplicate). Raises ApiError."""
        if self._sealed:
            raise api_error("JSStreamSealedErr")
        ttl = 0
        msg_id = ""
        rollup = b""
        if headers:
            if headers[8:10] != b"\r\n":
                headers = h.strip_status(headers)
            if b"Nats-" in headers:
                checked = self._check_headers(subject, headers, payload, source_header, scheduled)
                if isinstance(checked, int):
                    return -checked
                msg_id, rollup, ttl, headers = checked
            elif self._counter:
                raise api_error("JSMessageIncrMissingErr")
        elif self._counter:
            raise api_error("JSMessageIncrMissingErr")
        self.check_size(headers, payload)
        if self._transform is not None:
            subject = self._transform.apply(subject) or subject
            jetstream_subject(subject)
        store = self.store
        if self._counter:
            headers, payload, total = counters.apply(
                store, subject, headers, payload, sourced=source_header
            )
        limits = self.jsa.limits
        cap = limits.max_memory if self._memory else limits.max_storage
        if cap >= 0:
            self._check_account_usage(cap, subject, headers, payload)
        if self._interest and not self._someone_wants(subject):
            seq = store.skip_msg()
            if msg_id:
                self._remember_msg_id(msg_id, seq, time.time_ns())
            return seq
        republish = self._republish
        prev_on_subject = store.subject_state(subject)[1] if republish is not None else 0
        if rollup == h.ROLLUP_SUBJECT and self.config.discard_new_per_subject:
            store.purge(subject)
        try:
            seq, ts = store.store_msg(subject, headers or None, payload, ttl)
        except MsgTooLarge:
            raise api_error("JSStreamMessageExceedsMaximumErr").traced_as(
                "maximum payload exceeded"
            ) from None
        except StoreError as e:  # a limit of `discard: new`, nats-server's text
            raise api_error("JSStreamStoreFailedF", err=str(e)).traced_as(
                str(e), keeps_subject=True
            ) from None
        if self._counter:
            self.counter_total = total
        self.after_store(subject, seq, ts, ttl, msg_id, rollup, headers, payload, prev_on_subject)
        if not scheduled and headers and b"Nats-Scheduler:" in headers:
            # a schedule cancelled (check_publish made sure it names one)
            cancelled = (h.get(headers, schedules.SCHEDULER) or b"").decode()
            self.purge(cancelled, None, None)
        return seq

    def after_store(
        self,
        subject: str,
        seq: int,
        ts: int,
        ttl: int,
        msg_id: str,
        rollup: bytes,
        headers: bytes,
        payload: bytes,
        prev_on_subject: int,
    ) -> None:
        """What follows storing one message: dedupe memory, rollup, delete markers,
        republish, consumers, the expiry timer."""
        if msg_id:
            self._remember_msg_id(msg_id, seq, ts)
            self.last_msg_id = msg_id
        elif self.last_msg_id:
            self.last_msg_id = ""
        if rollup:
            self._rollup(rollup, subject, seq)
        if self._markers_due:
            self._place_markers()
        republish = self._republish
        if republish is not None:
            self._republish_msg(republish, subject, seq, ts, prev_on_subject, headers, payload)
        for listener in self.listeners:
            listener.on_stored(seq, subject)
        if self.scheduler is not None and headers and b"Nats-Schedule:" in headers:
            self.scheduler.track(subject, seq, ts, headers, restart=False)
        # a message expires by max_age or by its own TTL: without either (a KV put in a bucket
        # that allows TTLs, mostly) it cannot bring the next expiry forward
        if (
            self._has_ttl_timer
            and (ttl > 0 or self._has_max_age)
            and (self._expiry_timer is None or (ttl > 0 and ts + ttl < self._expiry_at))
        ):
            self._arm_expiry()

    def check_size(self, headers: bytes, payload: bytes) -> None:
        max_size = self._max_msg_size
        if max_size >= 0 and len(headers) + len(payload) > max_size:
            raise api_error("JSStreamMessageExceedsMaximumErr").traced_as(TRACE_TOO_LARGE)
        if len(headers) > MAX_HEADER_BYTES:
            raise api_error("JSStreamHeaderExceedsMaximumErr").traced_as(TRACE_TOO_LARGE)

    def stored_subject(self, subject: str, e: ApiError) -> str | None:
        """The subject a refused message's trace event names: the one it would have been
        stored under, when the error was found after the stream took it (else None)."""
        if not e.trace_keeps_subject:
            return None
        if self._transform is not None:
            return self._transform.apply(subject) or subject
        return subject

    def store_atomic(self, msgs: list[tuple[str, bytes, bytes]]) -> int:
        """Store a committed atomic batch whole (see batches.py); returns its last sequence.
        Raises ApiError for the first message any check refuses, and then stores nothing."""
        if self._sealed:
            raise api_error("JSStreamSealedErr")
        rules = batches.BatchRules(self)
        prepared: list[tuple[str, bytes, bytes, int, str, bytes]] = []
        for position, (subject, headers, payload) in enumerate(msgs):
            msg_id, rollup, ttl = "", b"", 0
            if headers:
                if headers[8:10] != b"\r\n":
                    headers = h.strip_status(headers)
                rules.check(position, subject, headers)
                if b"Nats-" in headers:
                    checked = self._check_headers(subject, headers, payload, False)
                    if isinstance(checked, int):
                        raise api_error("JSAtomicPublishContainsDuplicateMessageErr").traced_as(
                            "msgid is duplicate"
                        )
                    msg_id, rollup, ttl, headers = checked
            else:
                rules.check(position, subject, headers)
            self.check_size(headers, payload)
            if self._transform is not None:
                subject = self._transform.apply(subject) or subject
            prepared.append((subject, headers, payload, ttl, msg_id, rollup))
        limits = self.jsa.limits
        cap = limits.max_memory if self._memory else limits.max_storage
        if cap >= 0:
            for subject, headers, payload, *_ in prepared:
                self._check_account_usage(cap, subject, headers, payload)
        try:
            stored = self.store.store_batch([(s, hd or None, p, t) for s, hd, p, t, *_ in prepared])
        except MsgTooLarge:
            raise api_error("JSStreamMessageExceedsMaximumErr") from None
        except StoreError as e:
            raise api_error("JSStreamStoreFailedF", err=str(e)) from None
        for (subject, headers, payload, ttl, msg_id, rollup), (seq, ts) in zip(
            prepared, stored, strict=True
        ):
            self.after_store(subject, seq, ts, ttl, msg_id, rollup, headers, payload, 0)
        jetstream_subject(prepared[-1][0])  # a traced commit names the last one stored
        return stored[-1][0]

    @property
    def ack_prefix(self) -> bytes:
        """`{"stream":...,"seq":` (with the domain when there is one) of every PubAck."""
        return self._ack_prefix

    def error_ack(self, e: ApiError) -> bytes:
        return self._error_ack(e)

    def reply(self, reply: bytes, data: bytes) -> None:
        self._reply(reply, data)

    def recent_msg_id(self, msg_id: str) -> bool:
        """`msg_id` was stored within the duplicate window."""
        seen = self._msg_ids.get(msg_id)
        return seen is not None and self._within_window(seen[1])

    def _check_account_usage(self, cap: int, subject: str, headers: bytes, payload: bytes) -> None:
        """The account's memory/storage limit, counted as nats-server counts message bytes."""
        if self._memory:
            size = memory_msg_size(subject, headers or None, payload)
            used = self.jsa.memory_used()
        else:
            size = file_msg_size(len(subject.encode()), len(headers), len(payload))
            used = self.jsa.storage_used()
        if used + size > cap:
            raise api_error("JSAccountResourcesExceededErr")

    def store_mirrored(
        self, origin_seq: int, subject: str, headers: bytes | None, data: bytes, ts_ns: int
    ) -> None:
        """A mirror stores the origin's message at the origin's sequence and time (the
        sequences in between become deleted ones)."""
        store = self.store
        nxt = store.last_seq + 1
        if origin_seq < nxt:
            return
        if origin_seq > nxt and store.msgs == 0:
            store.compact(origin_seq)
        store.store_at(origin_seq, ts_ns, subject, headers or None, data)
        for listener in self.listeners:
            listener.on_stored(origin_seq, subject)
        if self._has_ttl_timer and self._expiry_timer is None:
            self._arm_expiry()

    def _check_headers(
        self,
        subject: str,
        headers: bytes,
        payload: bytes,
        source_header: bool,
        scheduled: bool = False,
    ) -> int | tuple[str, bytes, int, bytes]:
        """The Nats-* publish headers, in nats-server's order. Returns the original sequence
        for a duplicate, else (msg_id, rollup, ttl_ns, headers)."""
        hdrs = h.parse(headers)
        get = hdrs.get
        if self._counter:
            if not (source_header and h.STREAM_SOURCE in hdrs):
                counters.check_publish(hdrs, payload)
        elif h.INCR in hdrs and not source_header:  # sourced counters are kept verbatim
            raise api_error("JSMessageIncrDisabledErr")
        expected = get(h.EXPECTED_STREAM)
        if expected and expected.decode() != self.name:
            raise api_error("JSStreamNotMatchErr").traced_as("expected stream does not match")
        msg_id = (get(h.MSG_ID) or b"").decode()
        if msg_id:
            seen = self._msg_ids.get(msg_id)
            if seen is not None and self._within_window(seen[1]):
                return seen[0]
        store = self.store
        value = get(h.EXPECTED_LAST_SEQ)
        if value and _uint(value) != store.last_seq:
            raise api_error("JSStreamWrongLastSequenceErrF", seq=store.last_seq).traced_as(
                f"last sequence mismatch: {_go_uint(value)} vs {store.last_seq}"
            )
        value = get(h.EXPECTED_LAST_MSG_ID)
        if value and value.decode() != self.last_msg_id:
            raise api_error("JSStreamWrongLastMsgIDErrF", id=self.last_msg_id).traced_as(
                f"last msgid mismatch: {go_quote(value.decode())} vs {go_quote(self.last_msg_id)}"
            )
        value = get(h.EXPECTED_LAST_SUBJ_SEQ)
        override = get(h.EXPECTED_LAST_SUBJ_SEQ_SUBJ)
        if value:
            check_subject = override.decode() if override else subject
            if "*" in check_subject or ">" in check_subject:
                try:
                    last = store.load_last(check_subject).seq
                except MessageNotFound:
                    last = 0
            else:
                last = store.subject_state(check_subject)[1]
            if _uint(value) != last:
                raise api_error("JSStreamWrongLastSequenceErrF", seq=last).traced_as(
                    f"last sequence by subject mismatch: {_go_uint(value)} vs {last}"
                )
        elif override:
            raise api_error("JSStreamExpectedLastSeqPerSubjectInvalid")
        rollup = get(h.ROLLUP) or b""
        if rollup:
            if not self.config.allow_rollup_hdrs or self.config.deny_purge:
                err = "rollup not permitted"
                raise api_error("JSStreamRollupFailedF", err=err).traced_as(err)
            if rollup not in (h.ROLLUP_SUBJECT, h.ROLLUP_ALL):
                err = f'rollup value invalid: "{rollup.decode()}"'
                raise api_error("JSStreamRollupFailedF", err=err).traced_as(err)
        if get(h.STREAM_SOURCE) is not None and not source_header:
            raise api_error("JSMessageSourceHdrNotAllowedErr")
        ttl = 0
        value = get(h.TTL)
        if value is not None:
            try:
                ttl = h.parse_ttl(value)
            except ApiError as e:  # found after nats-server took the subject
                raise e.traced_as(keeps_subject=True) from None
            if not self.config.allow_msg_ttl:
                raise api_error("JSMessageTTLDisabledErr").traced_as("message TTL disabled")
            sdm = self.config.subject_delete_marker_ttl
            if 0 < ttl < sdm and self.config.max_msgs_per_subject != 1:
                ttl = sdm
                headers = h.append(
                    h.remove(headers, (h.TTL,)), [("Nats-TTL", str(sdm // NS_PER_S))]
                )
        if get(h.REQUEST_INFO) is not None:
            headers = h.remove(headers, (h.REQUEST_INFO,))
        if b"Nats-Schedule" in headers and not scheduled:
            headers = schedules.check_publish(self, subject, hdrs, headers)
            if not rollup and schedules.SCHEDULE in hdrs:
                rollup = h.ROLLUP_SUBJECT
        return msg_id, rollup, ttl, headers

    def _within_window(self, ts: int) -> bool:
        window = self.config.duplicate_window
        return window > 0 and time.time_ns() - ts < window

    def _remember_msg_id(self, msg_id: str, seq: int, ts: int) -> None:
        window = self.config.duplicate_window
        if window <= 0:
            return
        self._msg_ids[msg_id] = (seq, ts)
        times = self._msg_id_times
        times.append((ts, msg_id))
        cutoff = ts - window
        while times and times[0][0] < cutoff:
            old_ts, old_id = times.popleft()
            seen = self._msg_ids.get(old_id)
            if seen is not None and seen[1] == old_ts:
                del self._msg_ids[old_id]

    def _someone_wants(self, subject: str) -> bool:
        return any(listener.wants(subject) for listener in self.listeners)

    def _rollup(self, rollup: bytes, subject: str, seq: int) -> None:
        store = self.store
        if rollup == h.ROLLUP_ALL:
            purged = store.compact(seq)
            event = PurgeEvent("", seq, 0, purged, store.first_seq)
        else:  # everything on the subject before this message (in a batch: not after it)
            purged = store.purge(subject, seq=seq)
            event = PurgeEvent(subject, seq, 0, purged, store.first_seq)
        if purged:
            for listener in self.listeners:
                listener.on_purged(event)

    def _republish_msg(
        self,
        transform: SubjectTransform,
        subject: str,
        seq: int,
        ts: int,
        prev: int,
        headers: bytes,
        payload: bytes,
    ) -> None:
        dest = transform.apply(subject)
        if dest is None or "*" in dest or ">" in dest:
            return
        extra = [
            (h.STREAM, self.name),
            (h.SUBJECT, subject),
            (h.SEQUENCE, str(seq)),
            (h.TIME_STAMP, rfc3339(ts)),
            (h.LAST_SEQUENCE, str(prev)),
        ]
        assert self.config.republish is not None
        if self.config.republish.headers_only:
            extra.append((h.MSG_SIZE, str(len(payload))))
            payload = b""
        self.client.publish(dest.encode(), payload, headers=h.append(headers or None, extra))

    # -- acks ---------------------------------------------------------------------------------

    def _error_ack(self, e: ApiError) -> bytes:
        err = json.dumps(e.to_json(), separators=(",", ":")).encode()
        return b'{"error":' + err + self._err_suffix

    def _reply(self, reply: bytes, data: bytes) -> None:
        if self._ack_batch_open:
            self._acks.append((reply, data))
        else:
            # Straight into routing: we are inside the publisher's read, whose end flushes.
            route_message(self.client, self.jsa.account, reply, None, 0, data)
            self.jsa.js.server.flush_soon()

    def _refuse_buffered(self, reply: bytes | None) -> None:
        """Too much is waiting for the disk: refuse the message as nats-server does when a
        stream's ingest queue is full."""
        what = "len" if self._buffered_msgs >= self._max_buffered_msgs else "size"
        queues.ingest_limit_reached(self.jsa.js.server, self.jsa.name, self.name, what)
        if reply is not None:
            self._reply(reply, self._error_ack(api_error("JSStreamTooManyRequests")))

    def _release_acks(self) -> None:
        """End of the loop iteration's batch: its acks go out once all of it is durable."""
        self._ack_batch_open = False
        acks, self._acks = self._acks, []
        msgs, size = self._batch_msgs, self._batch_bytes
        self._batch_msgs = self._batch_bytes = 0
        if acks or msgs:
            self.store.when_durable(lambda err: self._send_acks(acks, err, msgs, size))

    def _send_acks(
        self, acks: list[tuple[bytes, bytes]], err: BaseException | None, msgs: int, size: int
    ) -> None:
        self._buffered_msgs -= msgs
        self._buffered_bytes -= size
        client, account = self.client, self.jsa.account
        if err is None:
            for reply, data in acks:
                route_message(client, account, reply, None, 0, data)
        else:
            failure = self._error_ack(api_error("JSStreamStoreFailedF", err=str(err)))
            prefix = self._ack_prefix
            for reply, data in acks:
                route_message(
                    client, account, reply, None, 0, failure if data.startswith(prefix) else data
                )
        self.jsa.js.server.flush_soon()

    # -- limits, expiry, markers --------------------------------------------------------------

    def _on_limit_removals(self, removals: Sequence[Removal]) -> None:
        self._note_removals(removals)
        if self.listeners:
            self._notify_removed([(r.seq, r.subject) for r in removals])

    def _note_removals(self, removals: Sequence[Removal]) -> None:
        if not self.config.subject_delete_marker_ttl:
            return
        for r in removals:
            if r.seq in self._marker_seqs:
                self._marker_seqs.discard(r.seq)
                continue
            if r.was_last_on_subject and r.reason in (RemovalReason.MAX_AGE, RemovalReason.TTL):
                self._markers_due.append(r.subject)

    def _place_markers(self) -> None:
        """Subject delete markers for subjects whose last message aged out."""
        due, self._markers_due = self._markers_due, []
        ttl = self.config.subject_delete_marker_ttl
        if not ttl or self.config.mirror is not None:
            return
        block = h.build(
            [
                ("Nats-Marker-Reason", MARKER_REASON_MAX_AGE),
                ("Nats-TTL", format_duration(ttl)),
                ("Nats-Rollup", "sub"),
            ]
        )
        for subject in due:
            if self.store.subject_state(subject)[2]:
                continue  # the subject has messages again
            try:
                seq, _ = self.store.store_msg(subject, block, b"", ttl)
            except StoreError:
                continue
            self._marker_seqs.add(seq)
            for listener in self.listeners:
                listener.on_stored(seq, subject)

    def _arm_expiry(self) -> None:
        if self.closed or not self._has_ttl_timer:
            return
        when = self.store.next_expiry()
        if when is None:
            return
        if self._expiry_timer is not None:
            if self._expiry_at <= when:
                return
            self._expiry_timer.cancel()
        delay = max((when - time.time_ns()) / 1e9, 0.0)
        self._expiry_at = when
        self._expiry_timer = self.loop.call_later(delay + 0.001, self._on_expiry_timer)

    def _on_expiry_timer(self) -> None:
        self._expiry_timer = None
        if self.closed:
            return
        removals = self.store.expire(time.time_ns())
        if removals:
            self._on_limit_removals(removals)
            self._place_markers()
        self._arm_expiry()

    # -- requests: purge, delete, get ---------------------------------------------------------

    def purge(self, subject: str | None, seq: int | None, keep: int | None) -> int:
        if self._sealed:
            raise api_error("JSStreamSealedErr")
        if self.config.deny_purge:
            raise api_error("JSStreamPurgeFailedF", err="stream purge not permitted")
        store = self.store
        try:
            purged = store.purge(subject or None, seq or None, keep or None)
        except StoreError as e:
            raise api_error("JSStreamPurgeFailedF", err=str(e)) from None
        event = PurgeEvent(subject or "", seq or 0, keep or 0, purged, store.first_seq)
        for listener in self.listeners:
            listener.on_purged(event)
        return purged

    def delete_msg(self, seq: int, erase: bool) -> None:
        if self._sealed:
            raise api_error("JSStreamSealedErr")
        if self.config.deny_delete:
            raise api_error("JSStreamMsgDeleteFailedF", err="message delete not permitted")
        subject = self.store.subject_of(seq)
        if subject is None or not self.store.remove_msg(seq, erase):
            raise api_error("JSSequenceNotFoundErrF", seq=seq)
        self._notify_removed([(seq, subject)])

    def get_msg(self, req: dict[str, Any]) -> StoredMessage:
        """STREAM.MSG.GET selectors: seq | last_by_subj | next_by_subj[+seq] | start_time."""
        store = self.store
        try:
            if req.get("last_by_subj"):
                return store.load_last(req["last_by_subj"])
            start = req.get("seq", 0)
            if req.get("start_time_ns") is not None:
                start = store.seq_for_time(req["start_time_ns"])
                if not start:
                    raise MessageNotFound("no message found")
                return store.load_next(req.get("next_by_subj") or ">", start)
            if req.get("next_by_subj"):
                return store.load_next(req["next_by_subj"], max(start, 1))
            return store.load_msg(start)
        except MessageNotFound:
            raise api_error("JSNoMessageFoundErr") from None

    # -- info ---------------------------------------------------------------------------------

    def state_json(
        self, *, deleted_details: bool = False, subjects: dict[str, int] | None = None
    ) -> dict[str, Any]:
        st = self.store.state(deleted_details)
        first_seq = st.first_seq
        if not st.msgs and st.last_seq == 0:
            first_seq = 0
        out: dict[str, Any] = {
            "messages": st.msgs,
            "bytes": st.bytes,
            "first_seq": first_seq,
            "first_ts": rfc3339(st.first_ts),
            "last_seq": st.last_seq,
            "last_ts": rfc3339(st.last_ts),
        }
        if st.num_subjects:
            out["num_subjects"] = st.num_subjects
        if subjects:
            out["subjects"] = subjects
        if st.num_deleted:
            out["num_deleted"] = st.num_deleted
        if st.deleted:
            out["deleted"] = st.deleted
        if st.lost:
            out["lost"] = {"msgs": st.lost, "bytes": st.lost_bytes}
        out["consumer_count"] = len(self.consumers)
        return out

    def info_json(
        self,
        *,
        server_meta: bool = True,
        cluster: bool = False,
        deleted_details: bool = False,
        subjects: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        js = self.jsa.js
        out: dict[str, Any] = {
            "config": self.config.to_json(js.server_metadata() if server_meta else None),
            "created": rfc3339(self.created_ns),
            "state": self.state_json(deleted_details=deleted_details, subjects=subjects),
        }
        if js.domain:
            out["domain"] = js.domain
        if cluster:
            out["cluster"] = js.cluster_info()
        if self.sources is not None:
            out.update(self.sources.info_json())
        out["ts"] = rfc3339(time.time_ns())
        return out

    # -- restart ------------------------------------------------------------------------------

    def save_recovery_state(self) -> None:
        """At a clean shutdown: keep the dedupe window, so that the next start need not read
        back every message of the last `duplicate_window` (after a crash it is rebuilt)."""
        if self._memory or not self.directory or not self.store.msgs:
            return
        by_time = sorted(self._msg_ids.items(), key=lambda item: item[1][1])
        ids = [[msg_id, seq, ts] for msg_id, (seq, ts) in by_time]
        state = {
            "last_seq": self.store.state().last_seq,
            "last_msg_id": self.last_msg_id,
            "markers": sorted(self._marker_seqs),
            "ids": ids,
        }
        path = os.path.join(self.directory, RECOVERY_FILE)
        fileio = self.jsa.js.fileio
        if self.jsa.js.keyring is None:
            with open(path, "w") as f:
                json.dump(state, f)
            return
        fd = fileio.open(path)  # encrypted at rest (store/crypt.py)
        try:
            fileio.truncate(fd, 0)
            fileio.pwrite(fd, json.dumps(state).encode(), 0)
        finally:
            fileio.close(fd)

    def _load_recovery_state(self) -> bool:
        """The dedupe window saved at the last clean shutdown, if it still fits the store.

        The file is removed as it is read: after a later crash it would be stale."""
        if self._memory or not self.directory:
            return False
        path = os.path.join(self.directory, RECOVERY_FILE)
        try:
            if self.jsa.js.keyring is None:
                with open(path) as f:
                    state = json.load(f)
            else:
                state = json.loads(self.jsa.js.fileio.read_file(path))
            os.unlink(path)
        except (OSError, ValueError, EncryptionError):
            return False
        if not isinstance(state, dict) or state.get("last_seq") != self.store.state().last_seq:
            return False
        self.last_msg_id = str(state.get("last_msg_id") or "")
        self._marker_seqs.update(int(s) for s in state.get("markers") or ())
        now = time.time_ns()
        window = self.config.duplicate_window
        for msg_id, seq, ts in state.get("ids") or ():
            if window > 0 and now - ts < window:
                self._remember_msg_id(str(msg_id), int(seq), int(ts))
        return True

    def _recover_msg_ids(self) -> None:
        """Rebuild the dedupe window and the last msg id from the stored messages."""
        store = self.store
        if not store.msgs:
            return
        if self._load_recovery_state():
            return
        try:
            last = store.load_last(">")
        except MessageNotFound:
            return
        if last.headers:
            self.last_msg_id = (h.get(last.headers, h.MSG_ID) or b"").decode()
        if (
            self.config.subject_delete_marker_ttl
            and last.headers
            and (h.get(last.headers, h.MARKER_REASON) is not None)
        ):
            self._marker_seqs.add(last.seq)
        window = self.config.duplicate_window
        if window <= 0:
            return
        start = store.seq_for_time(time.time_ns() - window)
        seq = start
        while seq:
            try:
                msg = store.load_next(">", seq)
            except MessageNotFound:
                break
            if msg.headers:
                msg_id = h.get(msg.headers, h.MSG_ID)
                if msg_id:
                    self._remember_msg_id(msg_id.decode(), msg.seq, msg.ts_ns)
                if (
                    self.config.subject_delete_marker_ttl
                    and h.get(msg.headers, h.MARKER_REASON) is not None
                ):
                    self._marker_seqs.add(msg.seq)
            seq = msg.seq + 1


def _uint(value: bytes) -> int:
    try:
        return int(value)
    except ValueError:
        return -1


def _go_uint(value: bytes) -> int:
    """An expected sequence as nats-server shows it: one it cannot read is uint64's -1."""
    seq = _uint(value)
    return seq if seq >= 0 else (1 << 64) - 1


def stored_message_json(msg: StoredMessage, *, no_hdr: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"subject": msg.subject, "seq": msg.seq}
    if msg.headers and not no_hdr:
        out["hdrs"] = base64.b64encode(msg.headers).decode()
    if msg.data:
        out["data"] = base64.b64encode(msg.data).decode()
    out["time"] = rfc3339(msg.ts_ns)
    return out
