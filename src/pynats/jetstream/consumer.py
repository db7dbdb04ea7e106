"""Consumer: which stored messages go to whom, and what happens until they are acknowledged.

State. A consumer is a cursor over its stream (`sseq`, the next stream sequence to look at,
filtered by `filter_subject(s)`) plus the durable `ConsumerStore` state: delivered and ack
floor positions, the pending (delivered, not yet acked) messages with their last delivery
time, and redelivery counts. Every change is appended to the store's log on the loop thread;
a double ack (an ack sent as a request) is answered only once the store's group commit made
it durable (`durable_replies`), so a confirmed ack is never undone by a crash. Plain acks
ride along lazily.

Delivery. Anything that may let a message move (a new message stored, a pull request, an ack
below `max_ack_pending`, a redelivery coming due, interest appearing on a push subject, the
end of a pause) calls `signal()`, which schedules one delivery pass per loop iteration (a
pull request arriving runs its pass at once). A pass takes redeliveries first, then new
messages at the cursor (`next_message`), and its delivery object hands them out: a pull
consumer's `pull.PullDelivery` to the head of its waiting-request queue (round robin), a push
consumer's `push.PushDelivery` to the deliver subject, until it runs out of messages,
targets, room or its budget. The consumer and its delivery meet only through the Protocols
of `consumer_delivery` (the consumer is the delivery's `DeliverySource`).

Timers, all batched per consumer: one ack timer armed for the earliest pending deadline
(`ack_wait`, `backoff`, NAK delays, `+WPI` restarts); an inactivity timer; a pause timer. The
delivery objects keep their own (request expiry and heartbeats, pins; push heartbeats, pace).
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from pynats.gotime import rfc3339

from . import acks, advisories, consumer_reset, pull
from . import headers as h
from .consumer_config import ConsumerConfig, sample_percent, with_required_level
from .consumer_delivery import Delivery, Framed, Next
from .durable_replies import DurableReplies
from .errors import ApiError, api_error
from .pull import PullDelivery
from .push import PushDelivery
from .store import ConsumerState, ConsumerStore, MessageNotFound, SequencePair, StoredMessage

if TYPE_CHECKING:
    from pynats.server.delivery import Publisher
    from pynats.server.sublist import Subscription

    from .stream import PurgeEvent, Stream

MAX_SUBJECT_CACHE: Final = 10_000


class Consumer:
    """One consumer of a stream: its cursor, what is pending, redeliveries, acks and pause,
    and the delivery pass that feeds its (pull or push) delivery object."""

    def __init__(
        self,
        stream: Stream,
        name: str,
        config: ConsumerConfig,
        store: ConsumerStore,
        created_ns: int,
        directory: str | None = None,
    ) -> None:
        self.stream = stream
        self.jsa = stream.jsa
        self.account = self.jsa.account
        self.client = self.jsa.client
        self.server = self.jsa.js.server
        self.loop: asyncio.AbstractEventLoop = stream.loop
        self.config = config
        self.name = name
        self.store = store
        self.created_ns = created_ns
        self.directory = directory
        self.closed = False
        self._subs: list[Subscription] = []
        self._subject_bytes: dict[str, bytes] = {}
        self._match_cache: dict[str, bool] = {}
        # cursor
        self.sseq = 1
        self._dseq = 1  # the next consumer sequence
        self._lss: deque[int] = deque()  # last_per_subject start set
        self._lss_resume = 0
        self._num_pending = 0
        self._num_pending_dirty = True
        # redelivery
        self._rdq: deque[int] = deque()
        self._rdq_set: set[int] = set()
        self._nak_until: dict[int, int] = {}
        self._progress: dict[int, int] = {}
        self._ack_timer: asyncio.TimerHandle | None = None
        self._ack_timer_at = 0
        self._ack_blocked = False
        # timers and activity
        self._kick_scheduled = False
        self._inactive_timer: asyncio.TimerHandle | None = None
        self._pause_timer: asyncio.TimerHandle | None = None
        self.last_delivered_ns = 0
        self.last_ack_ns = 0
        self._replies = DurableReplies(store, stream, self.client, self.loop)
        # delivery: exactly one of pull and push, for life (an update cannot change the kind)
        self._pull: PullDelivery | None = None
        self._push: PushDelivery | None = None
        self.delivery: Delivery
        if not config.deliver_subject:
            self._pull = self.delivery = PullDelivery(self)
        else:
            self._push = self.delivery = PushDelivery(self)
        self._apply_config()

    # -- configuration -----------------------------------------------------------------------

    def _apply_config(self) -> None:
        cfg = self.config
        self._ack_none = cfg.ack_policy == "none"
        # flow_control acks like AckAll: an answered flow control request acks all before it
        self._ack_all = cfg.ack_policy in ("all", "flow_control")
        self.acks_by_flow_control = cfg.ack_policy == "flow_control"
        self._max_ack = cfg.max_ack_pending if cfg.max_ack_pending > 0 else 0
        self._max_deliver = cfg.max_deliver if cfg.max_deliver > 0 else 0
        self._filters = [f for f in cfg.filters if f != ">"]
        self._match_cache.clear()
        if self.jsa.js.ack_fc_v2:
            self._ack_prefix = acks.v2_ack_prefix(
                self.jsa.js.domain, self.jsa.name, self.stream.name, self.name
            )
        else:
            self._ack_prefix = acks.ack_prefix(self.stream.name, self.name)
        self._headers_only = cfg.headers_only
        self._sample = sample_percent(cfg)
        self._retention = self.stream.config.retention
        # acks that need nothing but the store: explicit policy, limits retention, no metrics
        self._plain_acks = (
            cfg.ack_policy == "explicit" and self._retention == "limits" and not self._sample
        )
        until = cfg.pause_until_ns
        self._pause_until = until if until > time.time_ns() else 0
        self.delivery.apply_config()

    def matches(self, subject: str) -> bool:
        filters = self._filters
        if not filters:
            return True
        hit = self._match_cache.get(subject)
        if hit is None:
            from pynats.server.subjects import subject_matches

            if len(self._match_cache) >= MAX_SUBJECT_CACHE:
                self._match_cache.clear()
            enc = subject.encode()
            hit = any(subject_matches(f.encode(), enc) for f in filters)
            self._match_cache[subject] = hit
        return hit

    # -- lifecycle ---------------------------------------------------------------------------

    def start_new(self) -> None:
        """A freshly created consumer: pick the start position from the deliver policy."""
        start = self._start_seq()
        state = ConsumerState(SequencePair(0, start - 1), SequencePair(0, start - 1))
        self.store.update_state(state)
        self.sseq = start
        self._start()

    def start_recovered(self) -> None:
        """A consumer read back from disk: continue after what it had delivered."""
        state = self.store.state
        last = self.stream.store.last_seq
        if state.delivered.stream_seq > last:
            # The stream lost its unsynced tail: never point past what exists.
            fixed = state.copy()
            fixed.delivered.stream_seq = last
            if fixed.ack_floor.stream_seq > last:
                fixed.ack_floor.stream_seq = last
            fixed.pending = {s: p for s, p in fixed.pending.items() if s <= last}
            fixed.redelivered = {s: n for s, n in fixed.redelivered.items() if s in fixed.pending}
            self.store.update_state(fixed)
        self.sseq = self.store.state.delivered.stream_seq + 1
        self._start()
        if self.store.state.pending and not self.acks_by_flow_control:
            self.loop.call_soon(self._on_ack_timer)

    def _start(self) -> None:
        state = self.store.state
        self._dseq = state.delivered.consumer_seq + 1
        self._num_pending_dirty = True
        client = self.client
        stream, name = self.stream.name, self.name
        self._subs.append(
            client.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}", self._on_next_request)
        )
        self._subs.append(
            client.subscribe(f"$JS.API.CONSUMER.RESET.{stream}.{name}", self._on_reset_request)
        )
        if not self._ack_none:
            self._subs.append(client.subscribe(f"$JS.ACK.{stream}.{name}.>", self._on_ack_msg))
            # the v2 form: `$JS.ACK.<domain or _>.<account hash>.<stream>.<consumer>...`
            v2 = acks.v2_subscription(self.jsa.js.domain, self.jsa.name, stream, name)
            self._subs.append(client.subscribe(v2, self._on_ack_msg))
        self.stream.add_listener(self)
        self._apply_pause()
        self.delivery.start()
        if not self.delivery.is_active():
            self.arm_inactivity()

    def stop(self, *, deleted: bool) -> None:
        """Stop delivering: deleted, or (not deleted) at server shutdown, when waiting pull
        requests are told so. The store is the caller's to stop/delete."""
        if self.closed:
            return
        self.closed = True
        for timer in (self._ack_timer, self._inactive_timer, self._pause_timer):
            if timer is not None:
                timer.cancel()
        for sub in self._subs:
            self.client.unsubscribe(sub)
        self._subs = []
        self.stream.remove_listener(self, collect=deleted)
        self.delivery.stop(deleted=deleted)
        self._replies.release()
        self.server.flush_soon()

    def stream_updated(self) -> None:
        """The stream's configuration changed (its retention may have)."""
        self._apply_config()

    def update(self, cfg: ConsumerConfig) -> None:
        """Adopt a validated new configuration (see `consumer_config.check_update`)."""
        old = self.config
        self.config = cfg
        self._apply_config()
        if old.filters != cfg.filters:
            self._num_pending_dirty = True
            if self._retention == "interest":
                self.stream.collect_unneeded()
        if old.ack_wait != cfg.ack_wait or old.backoff != cfg.backoff:
            self._arm_ack_timer(time.time_ns())
        if old.inactive_threshold != cfg.inactive_threshold:
            self.arm_inactivity()
        self.delivery.config_changed(old)
        self.signal()

    # -- the stream's listener hooks ---------------------------------------------------------

    def on_stored(self, seq: int, subject: str) -> None:
        if self._filters and not self.matches(subject):
            return
        if seq >= self.sseq:
            self._num_pending += 1
        if not self._kick_scheduled and self.delivery.is_active():
            self._kick_scheduled = True
            self.loop.call_soon(self.deliver_pass)

    def on_removed(self, removed: Sequence[tuple[int, str]]) -> None:
        sseq = self.sseq
        for seq, subject in removed:
            if seq >= sseq and (not self._filters or self.matches(subject)):
                if self._lss:
                    self._num_pending_dirty = True
                elif self._num_pending > 0:
                    self._num_pending -= 1

    def on_purged(self, event: PurgeEvent) -> None:
        store = self.stream.store
        if not event.filter and not event.keep and self.sseq < event.first_seq:
            self.sseq = event.first_seq
            state = self.store.state.copy()
            if state.delivered.stream_seq < event.first_seq - 1:
                state.delivered.stream_seq = event.first_seq - 1
            self.store.update_state(state)
        if self._lss:
            self._lss = deque(s for s in self._lss if store.subject_of(s) is not None)
        gone = [s for s in self.store.state.pending if store.subject_of(s) is None]
        for seq in gone:
            self._forget(seq)
        self._num_pending_dirty = True

    def wants(self, subject: str) -> bool:
        return self.matches(subject)

    def needs_ack(self, seq: int, subject: str) -> bool:
        if not self.matches(subject):
            return False
        return seq >= self.sseq or seq in self.store.state.pending

    # -- start position and pending count ----------------------------------------------------

    def _start_seq(self) -> int:
        cfg = self.config
        store = self.stream.store
        last = store.last_seq
        policy = cfg.deliver_policy
        if policy == "all":
            return max(store.first_seq, 1)
        if policy == "new":
            return last + 1
        if policy == "by_start_sequence":
            return max(cfg.opt_start_seq, 1)
        if policy == "by_start_time":
            return store.seq_for_time(cfg.start_time_ns) or last + 1
        if policy == "last":
            if not self._filters:
                return last if store.msgs else last + 1
            found = 0
            for f in self._filters:
                try:
                    found = max(found, store.load_last(f).seq)
                except MessageNotFound:
                    pass
            return found or last + 1
        # last_per_subject
        seqs: list[int] = []
        for f in self._filters or [">"]:
            seqs.extend(store.last_seqs_per_subject(f))
        seqs.sort()
        self._lss = deque(seqs)
        self._lss_resume = last + 1
        return seqs[0] if seqs else last + 1

    def num_pending(self) -> int:
        if self._num_pending_dirty:
            self._num_pending = self._count_pending()
            self._num_pending_dirty = False
        return self._num_pending

    def _count_pending(self) -> int:
        store = self.stream.store
        start = self.sseq
        count = 0
        if self._lss:
            count = sum(1 for s in self._lss if store.subject_of(s) is not None)
            start = max(start, self._lss_resume)
        for f in self._filters or [">"]:
            count += store.num_pending(start, f)
        return count

    # -- choosing the next message -----------------------------------------------------------

    def next_message(self) -> Next | None:
        """The next message to deliver: (message, delivery count, is a redelivery)."""
        state = self.store.state
        pending = state.pending
        rdq = self._rdq
        load = self.stream.store.load_msg
        while rdq:
            seq = rdq[0]
            if seq not in pending:
                rdq.popleft()
                self._rdq_set.discard(seq)
                continue
            deliveries = state.redelivered.get(seq, 0) + 2
            if self._max_deliver and deliveries > self._max_deliver:
                rdq.popleft()
                self._rdq_set.discard(seq)
                self._max_delivered(seq, deliveries - 1)
                continue
            try:
                return load(seq), deliveries, True
            except MessageNotFound:
                rdq.popleft()
                self._rdq_set.discard(seq)
                self._forget(seq)
        if self._max_ack and len(pending) >= self._max_ack:
            self._ack_blocked = True
            return None
        if not self._filters and not self._lss:
            # unfiltered: the message at the cursor is usually simply there
            try:
                return load(self.sseq), 1, False
            except MessageNotFound:
                pass
        while True:
            seq = self._next_new_seq()
            if not seq:
                return None
            try:
                return load(seq), 1, False
            except MessageNotFound:
                self._advance_past(seq)

    def _next_new_seq(self) -> int:
        lss = self._lss
        if lss:
            subject_of = self.stream.store.subject_of
            while lss:
                seq = lss[0]
                if subject_of(seq) is not None:
                    return seq
                lss.popleft()
            self.sseq = max(self.sseq, self._lss_resume)
        store = self.stream.store
        start = self.sseq
        if start > store.last_seq:
            return 0
        filters = self._filters
        if not filters:
            return store.next_seq(">", start)
        if len(filters) == 1:
            return store.next_seq(filters[0], start)
        found = [s for s in (store.next_seq(f, start) for f in filters) if s]
        return min(found) if found else 0

    def _advance_past(self, seq: int) -> None:
        lss = self._lss
        if lss and lss[0] == seq:
            lss.popleft()
            self.sseq = lss[0] if lss else max(self._lss_resume, seq + 1)
        else:
            self.sseq = seq + 1

    # -- delivering --------------------------------------------------------------------------

    def signal(self) -> None:
        if not self._kick_scheduled and not self.closed:
            self._kick_scheduled = True
            self.loop.call_soon(self.deliver_pass)

    def deliver_pass(self) -> None:
        self._kick_scheduled = False
        if self.closed:
            return
        if self._pause_until:
            self.delivery.serve_paused()
            return
        self.delivery.serve()

    def frame(self, msg: StoredMessage, deliveries: int, redelivery: bool, pin: str = "") -> Framed:
        """(subject, reply, headers, payload) for delivering `msg` as the next consumer seq."""
        subject = self._subject_bytes.get(msg.subject)
        if subject is None:
            subject = msg.subject.encode()
            if len(self._subject_bytes) < MAX_SUBJECT_CACHE:
                self._subject_bytes[msg.subject] = subject
        pending = self.num_pending()
        if not redelivery and pending > 0:
            pending -= 1
        reply = acks.reply_subject(
            self._ack_prefix, deliveries, msg.seq, self._dseq, msg.ts_ns, pending
        )
        headers = msg.headers or b""
        payload = msg.data
        if self._headers_only:
            headers = h.append(headers or None, [(h.MSG_SIZE, str(len(payload)))])
            payload = b""
        if pin:
            headers = h.append(headers or None, [("Nats-Pin-Id", pin)])
        return subject, reply, headers, payload

    def commit(self, msg: StoredMessage, deliveries: int, redelivery: bool, now_ns: int) -> None:
        """Record that `msg` went out (at `now_ns`) as consumer sequence `_dseq`."""
        seq = msg.seq
        cseq = self._dseq
        self._dseq = cseq + 1
        self.last_delivered_ns = now_ns
        if redelivery:
            self._rdq.popleft()
            self._rdq_set.discard(seq)
            self._nak_until.pop(seq, None)
            self._progress.pop(seq, None)
        else:
            if self._lss:
                self._advance_past(seq)
            else:
                self.sseq = seq + 1
            if self._num_pending > 0:
                self._num_pending -= 1
        if self._ack_none:
            self.store.update_delivered(cseq, seq, 0, now_ns)
            if self._retention != "limits":
                self.stream.acked(self, seq)
            return
        self.store.update_delivered(cseq, seq, deliveries, now_ns)
        if self._ack_timer is None and not self.acks_by_flow_control:  # no ack wait there
            self._arm_ack_timer(now_ns + self.config.ack_wait_for(deliveries))

    def send_status(self, to: bytes, block: bytes) -> None:
        self.client.publish(to, b"", headers=block)

    def num_ack_pending(self) -> int:
        return len(self.store.state.pending)

    def delivered(self) -> SequencePair:
        return self.store.state.delivered

    # -- pull requests -----------------------------------------------------------------------

    def _on_next_request(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        if self.closed or not reply:
            return
        if headers and h.level_unmet(headers, self.jsa.js.api_level):
            self.send_status(reply, pull.API_LEVEL)
            return
        try:
            self.pull_request(reply, payload)
        except Exception as e:
            self._log_bug("pull request", e)

    def _on_reset_request(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        if self.closed or not reply:
            return
        try:
            if headers and h.level_unmet(headers, self.jsa.js.api_level):
                raise api_error("JSRequiredApiLevelErr")
            seq = consumer_reset.target_seq(self, payload)
        except ApiError as e:
            self.client.publish(reply, consumer_reset.error_response(e))
            self.server.flush_soon()
            return
        self.reset(seq)
        self.store.when_durable(lambda _err: self._answer_reset(reply, seq))

    def _answer_reset(self, reply: bytes, seq: int) -> None:
        if not self.closed:
            self.client.publish(reply, consumer_reset.response(self, seq))
            self.server.flush_soon()

    def reset(self, seq: int) -> None:
        """Deliver from stream sequence `seq` on as if nothing had been delivered before it:
        nothing pending or redelivered, consumer sequences from 1 again."""
        before = SequencePair(0, seq - 1)
        self.store.update_state(ConsumerState(before, SequencePair(0, seq - 1)))
        self.sseq = seq
        self._dseq = 1
        self._lss.clear()
        self._rdq.clear()
        self._rdq_set.clear()
        self._nak_until.clear()
        self._progress.clear()
        self._ack_blocked = False
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        self._num_pending_dirty = True
        if self._retention == "interest":
            self.stream.collect_unneeded()
        self.signal()

    def pull_request(self, reply: bytes, payload: bytes) -> None:
        """A MSG.NEXT request (or the request part of `+NXT`) answered at `reply`."""
        if self._pull is None:
            self.send_status(reply, pull.PUSH_BASED)
            return
        self._pull.request(reply, payload)

    def unpin(self, group: str, reason: str = "admin") -> None:
        if self._pull is not None:
            self._pull.unpin(group, reason)

    @property
    def bound(self) -> bool:
        """Push: someone listens on the deliver subject (`push_bound`)."""
        return self._push is not None and self._push.bound

    def _log_bug(self, what: str, err: Exception) -> None:
        self.server.logger.error(
            f"JetStream consumer '{self.jsa.name} > {self.stream.name} > {self.name}' "
            f"{what}: {type(err).__name__}: {err}\n{traceback.format_exc()}"
        )

    # -- acks --------------------------------------------------------------------------------

    def _on_ack_msg(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        info = acks.parse_subject(subject)
        if info is None or self.closed:
            return
        try:
            if (not payload or payload == b"+ACK") and reply is None and self._plain_acks:
                # the common case, kept short: an explicit ack of a pending message
                _deliveries, sseq, cseq = info
                if self.store.update_acks(cseq, sseq):
                    self.last_ack_ns = time.time_ns()
                    if self._nak_until:
                        self._nak_until.pop(sseq, None)
                    if self._progress:
                        self._progress.pop(sseq, None)
                    if self._ack_blocked:
                        self._ack_blocked = False
                        self.signal()
                return
            self.process_ack(info, payload, reply)
        except Exception as e:  # a bug here must not cost the acking client its connection
            self._log_bug("ack", e)

    def process_ack(self, info: acks.AckInfo, payload: bytes, reply: bytes | None) -> None:
        kind, rest = acks.parse_payload(payload)
        deliveries, sseq, cseq = info
        pending = self.store.state.pending
        if sseq not in pending and sseq >= self.sseq:
            return  # never delivered: ignored, no answer
        if kind == acks.ACK:
            self._ack(sseq, cseq, deliveries)
        elif kind == acks.NAK:
            self._nak(sseq, cseq, deliveries, acks.nak_delay(rest))
        elif kind == acks.PROGRESS:
            if sseq in pending:
                self._progress[sseq] = time.time_ns()
        elif kind == acks.TERM:
            if sseq in pending:
                advisories.terminated(
                    self.jsa,
                    self.stream.name,
                    self.name,
                    cseq,
                    sseq,
                    deliveries,
                    rest.decode(errors="replace"),
                )
            self._ack(sseq, cseq, deliveries, sample=False)
        elif kind == acks.NEXT:
            self._ack(sseq, cseq, deliveries)
            if reply:
                self.pull_request(reply, rest)
            return
        else:
            return
        if reply:
            self._replies.add(reply)

    def _ack(self, sseq: int, cseq: int, deliveries: int, sample: bool = True) -> None:
        store = self.store
        if self._ack_all:
            acked = store.ack_all(cseq, sseq)
        elif store.update_acks(cseq, sseq):
            acked = [sseq]
        else:
            return
        if not acked:
            return
        self.last_ack_ns = time.time_ns()
        if self._retention != "limits":
            for seq in acked:
                self.stream.acked(self, seq)
        for seq in acked:
            self._nak_until.pop(seq, None)
            self._progress.pop(seq, None)
        if sample and self._sample and random.random() * 100 < self._sample:
            delivered_at = self.last_delivered_ns
            advisories.ack_metric(
                self.jsa,
                self.stream.name,
                self.name,
                cseq,
                sseq,
                max(self.last_ack_ns - delivered_at, 0),
                deliveries,
            )
        if self._ack_blocked:
            self._ack_blocked = False
            self.signal()

    def ack_through(self, cseq: int, sseq: int) -> None:
        """Everything delivered up to (cseq, sseq) is acknowledged (flow_control acks)."""
        if cseq and sseq:
            self._ack(sseq, cseq, 1, sample=False)

    def _nak(self, sseq: int, cseq: int, deliveries: int, delay: int) -> None:
        if sseq not in self.store.state.pending:
            return
        advisories.nak(self.jsa, self.stream.name, self.name, cseq, sseq, deliveries)
        if delay > 0:
            due = time.time_ns() + delay
            self._nak_until[sseq] = due
            self._arm_ack_timer(due)
            return
        self._nak_until.pop(sseq, None)
        self._queue_redelivery(sseq)
        self.signal()

    def _queue_redelivery(self, sseq: int) -> None:
        if sseq not in self._rdq_set:
            self._rdq_set.add(sseq)
            self._rdq.append(sseq)

    def _forget(self, seq: int) -> None:
        """The message is gone from the stream: nothing left to redeliver or acknowledge."""
        if self.store.update_acks(self.store.state.pending[seq].consumer_seq, seq):
            self._nak_until.pop(seq, None)
            self._progress.pop(seq, None)

    def _max_delivered(self, seq: int, deliveries: int) -> None:
        self.store.drop_pending(seq)
        self._nak_until.pop(seq, None)
        self._progress.pop(seq, None)
        advisories.max_deliveries(self.jsa, self.stream.name, self.name, seq, deliveries)
        if self._ack_blocked:
            self._ack_blocked = False
            self.signal()

    # -- redelivery timer --------------------------------------------------------------------

    def _arm_ack_timer(self, due_ns: int) -> None:
        if self.closed:
            return
        if self._ack_timer is not None:
            if self._ack_timer_at <= due_ns:
                return
            self._ack_timer.cancel()
        self._ack_timer_at = due_ns
        delay = max((due_ns - time.time_ns()) / 1e9, 0.0)
        self._ack_timer = self.loop.call_later(delay + 0.0005, self._on_ack_timer)

    def _on_ack_timer(self) -> None:
        """Queue every pending message whose ack deadline passed; re-arm for the next one."""
        self._ack_timer = None
        if self.closed:
            return
        now = time.time_ns()
        state = self.store.state
        redelivered = state.redelivered
        wait_for = self.config.ack_wait_for
        nak_until = self._nak_until
        progress = self._progress
        rdq_set = self._rdq_set
        due_now: list[int] = []
        earliest = 0
        for seq, p in state.pending.items():
            if seq in rdq_set:
                continue
            due = nak_until.get(seq)
            if due is None:
                due = progress.get(seq, p.ts_ns) + wait_for(redelivered.get(seq, 0) + 1)
            if due <= now:
                due_now.append(seq)
            elif not earliest or due < earliest:
                earliest = due
        if due_now:
            due_now.sort()
            for seq in due_now:
                deliveries = redelivered.get(seq, 0) + 1
                if self._max_deliver and deliveries >= self._max_deliver:
                    self._max_delivered(seq, deliveries)
                else:
                    self._queue_redelivery(seq)
            self.signal()
        if earliest:
            self._arm_ack_timer(earliest)

    # -- inactivity and pause ----------------------------------------------------------------

    def arm_inactivity(self) -> None:
        if self._inactive_timer is not None:
            self._inactive_timer.cancel()
            self._inactive_timer = None
        threshold = self.config.inactive_threshold
        if threshold <= 0 or self.closed:
            return
        self._inactive_timer = self.loop.call_later(threshold / 1e9, self._on_inactive)

    def disarm_inactivity(self) -> None:
        if self._inactive_timer is not None:
            self._inactive_timer.cancel()
            self._inactive_timer = None

    def is_active(self) -> bool:
        return self.delivery.is_active()

    def _on_inactive(self) -> None:
        self._inactive_timer = None
        if self.closed or self.is_active():
            return
        self.jsa.delete_inactive_consumer(self)

    def _apply_pause(self) -> None:
        if self._pause_timer is not None:
            self._pause_timer.cancel()
            self._pause_timer = None
        until = self._pause_until
        if until and until > time.time_ns():
            self._pause_timer = self.loop.call_later(
                (until - time.time_ns()) / 1e9, self._on_unpause
            )
        else:
            self._pause_until = 0
            self.signal()

    def _on_unpause(self) -> None:
        self._pause_timer = None
        self._pause_until = 0
        advisories.consumer_pause(self.jsa, self.stream.name, self.name, False, "")
        self.signal()

    def pause(self, until_ns: int) -> None:
        self.config.pause_until = rfc3339(until_ns) if until_ns > time.time_ns() else ""
        with_required_level(self.config)
        self._pause_until = self.config.pause_until_ns
        self._apply_pause()
        advisories.consumer_pause(
            self.jsa, self.stream.name, self.name, bool(self._pause_until), self.config.pause_until
        )

    @property
    def paused(self) -> bool:
        return bool(self._pause_until) and self._pause_until > time.time_ns()

    # -- info --------------------------------------------------------------------------------

    def info_json(self, *, server_meta: bool = True) -> dict[str, Any]:
        num_waiting = self.delivery.num_waiting()
        state = self.store.state
        js = self.jsa.js
        out: dict[str, Any] = {
            "stream_name": self.stream.name,
            "name": self.name,
            "created": rfc3339(self.created_ns),
            "config": self.config.to_json(js.server_metadata() if server_meta else None),
            "delivered": _seq_info(state.delivered, self.last_delivered_ns),
            "ack_floor": _seq_info(state.ack_floor, 0 if self._ack_none else self.last_ack_ns),
            "num_ack_pending": len(state.pending),
            "num_redelivered": len(state.redelivered),
            "num_waiting": num_waiting,
            "num_pending": self.num_pending(),
        }
        if self.bound:
            out["push_bound"] = True
        if self.paused:
            out["paused"] = True
            out["pause_remaining"] = self._pause_until - time.time_ns()
        if self.config.priority_groups:
            pins = self._pull.pins if self._pull is not None else {}
            groups = []
            for group in self.config.priority_groups:
                entry: dict[str, Any] = {"group": group}
                pinned = pins.get(group)
                if pinned is not None:
                    entry["pinned_client_id"] = pinned[0]
                    entry["pinned_ts"] = rfc3339(pinned[1])
                groups.append(entry)
            out["priority_groups"] = groups
        out["ts"] = rfc3339(time.time_ns())
        return out


def _seq_info(pair: SequencePair, last_ns: int) -> dict[str, Any]:
    out: dict[str, Any] = {"consumer_seq": pair.consumer_seq, "stream_seq": pair.stream_seq}
    if last_ns:
        out["last_active"] = rfc3339(last_ns)
    return out
