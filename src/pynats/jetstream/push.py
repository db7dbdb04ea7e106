"""Push consumers: `PushDelivery`, delivery to the deliver subject while it has interest,
with flow control, idle heartbeats, rate limit and original-pace replay; and `InterestWatch`,
how push deliveries learn that their deliver subject gained or lost interest.

A push consumer delivers only while someone subscribes to its deliver subject (and reports
that as `push_bound`); an ephemeral one is deleted after `inactive_threshold` without
interest. The core tells us about subscription changes through
`Sublist.add_change_listener`; a change schedules one re-check per loop iteration, so
nothing is looked at unless a subscription changed.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

from pynats.server.delivery import route_as

from . import acks, pull
from .consumer_config import ConsumerConfig
from .consumer_delivery import PASS_BUDGET, PASS_WRITE_EVERY, DeliverySource
from .pace import OriginalPace, Waker
from .store import StoredMessage

if TYPE_CHECKING:
    from pynats.server.accounts import Account
    from pynats.server.delivery import Publisher
    from pynats.server.sublist import Subscription

FC_INITIAL_WINDOW = 2 * 1024 * 1024
FC_MAX_WINDOW = 32 * 1024 * 1024
B62 = pull.B62


class InterestWatch:
    """Per account: re-checks its push deliveries' interest whenever subscriptions changed."""

    def __init__(self, account: Account, loop: asyncio.AbstractEventLoop) -> None:
        self.account = account
        self.loop = loop
        self.deliveries: set[PushDelivery] = set()
        self._scheduled = False
        account.sublist.add_change_listener(self._on_change)

    def add(self, delivery: PushDelivery) -> None:
        self.deliveries.add(delivery)
        delivery.check_interest()

    def remove(self, delivery: PushDelivery) -> None:
        self.deliveries.discard(delivery)

    def _on_change(self, subject: bytes) -> None:
        if self.deliveries and not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._recheck)

    def _recheck(self) -> None:
        self._scheduled = False
        for delivery in list(self.deliveries):
            delivery.check_interest()

    def stop(self) -> None:
        self.deliveries.clear()


class PushDelivery:
    """A push consumer's delivery: one pass sends to the deliver subject while it is bound.

    Flow control keeps at most a window of bytes unconfirmed by the client (the window starts
    at 2 MiB and doubles per answer up to 32 MiB); while a request is unanswered past the
    window, nothing is sent. Idle heartbeats name the last delivered sequences (and the
    unanswered flow control subject, if stalled). The rate limit is a token bucket holding
    one maximum payload; `replay_policy: original` spaces messages as they were stored.

    `bound` false is what makes a push consumer inactive (`inactive_threshold` counts)."""

    def __init__(self, source: DeliverySource) -> None:
        self.source = source
        self.account = source.account
        self.client = source.client
        self.loop = source.loop
        self.server = source.server
        self.bound = False
        self._to = b""  # the deliver subject
        # flow control: the unanswered request's subject, bytes sent since, and at it
        self._fc_sub: Subscription | None = None
        self._fc_subject = ""
        self._fc_prefix = ""  # acks.flow_control_prefix, set when flow control starts
        self._fc_bytes = 0
        self._fc_mark = 0
        self._fc_window = FC_INITIAL_WINDOW
        # ack_policy flow_control: what the unanswered request acknowledges once answered
        self._fc_acks: tuple[int, int] | None = None
        self._acks_by_fc = False
        # rate limit and replay pace
        self._rate_bps = 0
        self._rate_burst_s = 0.0
        self._rate_next = 0.0  # loop time the bucket is full again
        self._pace: OriginalPace | None = None
        self._waker = Waker(self.loop, source.deliver_pass)
        # idle heartbeats
        self._hb_timer: asyncio.TimerHandle | None = None
        self._last_send = 0.0

    # -- the consumer's side (`consumer_delivery.Delivery`) -------------------------------------

    def start(self) -> None:
        source = self.source
        if source.config.flow_control:
            js = source.jsa.js
            self._fc_prefix = acks.flow_control_prefix(
                js.ack_fc_v2, js.domain, source.jsa.name, source.stream.name, source.name
            )
            self._fc_sub = self.client.subscribe(f"{self._fc_prefix}.*", self._on_fc_reply)
        source.jsa.interest_watch().add(self)

    def stop(self, *, deleted: bool) -> None:
        if self._hb_timer is not None:
            self._hb_timer.cancel()
        self._hb_timer = None
        self._waker.cancel()
        if self._fc_sub is not None:
            self.client.unsubscribe(self._fc_sub)
            self._fc_sub = None
        self.source.jsa.interest_watch().remove(self)

    def apply_config(self) -> None:
        cfg = self.source.config
        self._to = cfg.deliver_subject.encode()
        self._rate_bps = cfg.rate_limit_bps
        # the bucket holds one maximum payload, as nats-server's limiter does
        burst = self.server.options.max_payload
        self._rate_burst_s = burst * 8 / cfg.rate_limit_bps if cfg.rate_limit_bps else 0.0
        self._acks_by_fc = cfg.ack_policy == "flow_control"  # answers to FC are the acks
        if cfg.replay_policy != "original":
            self._pace = None
        elif self._pace is None:
            self._pace = OriginalPace()

    def config_changed(self, old: ConsumerConfig) -> None:
        if old.deliver_subject != self.source.config.deliver_subject:
            self.bound = False
            self.check_interest()

    def is_active(self) -> bool:
        return self.bound

    def num_waiting(self) -> int:
        return 0

    def serve(self) -> None:
        if not self.bound:
            return
        source = self.source
        next_message, frame, commit = source.next_message, source.frame, source.commit
        account = self.account
        client = self.client
        to = self._to
        budget = PASS_BUDGET
        fc = source.config.flow_control
        sent = False
        while budget > 0:
            if fc and self._fc_subject and self._fc_bytes >= self._fc_window:
                break  # stalled until the client answers the flow control request
            item = next_message()
            if item is None:
                break
            msg, deliveries, redelivery = item
            if (self._pace is not None or self._rate_bps) and not self._may_send_now(msg):
                break
            subject, reply, headers, payload = frame(msg, deliveries, redelivery)
            if not route_as(client, account, to, subject, reply, headers, payload):
                self.bound = False
                source.arm_inactivity()
                break
            commit(msg, deliveries, redelivery, time.time_ns())
            if self._pace is not None:
                self._pace.sent(msg)
            sent = True
            budget -= 1
            if not budget % PASS_WRITE_EVERY:
                self.server.flush_pending()
            size = len(subject) + len(reply) + len(headers) + len(payload)
            if self._rate_bps:
                # a token bucket: the allowance refills at the rate, up to one burst
                now = self.loop.time()
                self._rate_next = max(self._rate_next, now) + size * 8 / self._rate_bps
            if fc:
                self._fc_bytes += size
                if not self._fc_subject and self._fc_bytes >= self._fc_window // 2:
                    self._send_flow_control()
        if (
            fc
            and not self._fc_subject
            and self._acks_by_fc
            and source.num_ack_pending() >= source.config.max_ack_pending
        ):
            self._send_flow_control()  # the answer acknowledges what is pending
            sent = True
        if sent:
            self._last_send = self.loop.time()
            self.server.flush_soon()
        if budget <= 0:
            source.signal()

    def serve_paused(self) -> None:
        pass

    # -- interest --------------------------------------------------------------------------------

    def check_interest(self) -> None:
        """Follow the deliver subject's interest (bound / unbound)."""
        if self.source.closed:
            return
        bound = self.account.sublist.has_interest(self._to)
        if bound == self.bound:
            return
        self.bound = bound
        if bound:
            self.source.disarm_inactivity()
            self._arm_heartbeat()
            self.source.signal()
        else:
            self.source.arm_inactivity()

    # -- pace: rate limit and original replay ---------------------------------------------------

    def _may_send_now(self, msg: StoredMessage) -> bool:
        """Rate limit and `replay_policy: original`: wait (a timer) when it is too early."""
        now = self.loop.time()
        due = now
        if self._rate_bps:
            due = self._rate_next - self._rate_burst_s
        if self._pace is not None:
            due = max(due, self._pace.due(msg, now))
        if due <= now + 0.0005:
            return True
        self._waker.at(due)
        return False

    # -- flow control ----------------------------------------------------------------------------

    def _send_flow_control(self) -> None:
        source = self.source
        token = "".join(random.choice(B62) for _ in range(4))
        self._fc_subject = f"{self._fc_prefix}.{token}"
        self._fc_mark = self._fc_bytes
        if self._acks_by_fc:
            pair = source.delivered()
            self._fc_acks = (pair.consumer_seq, pair.stream_seq)
        self.client.publish(
            self._to,
            b"",
            self._fc_subject,
            pull.status("100", "FlowControl Request"),
        )

    def _on_fc_reply(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        if not self._fc_subject or subject.decode() != self._fc_subject:
            return
        self._fc_subject = ""
        if self._fc_acks is not None:
            acked, self._fc_acks = self._fc_acks, None
            self.source.ack_through(*acked)
        self._fc_bytes = max(self._fc_bytes - self._fc_mark, 0)
        self._fc_mark = 0
        self._fc_window = min(self._fc_window * 2, FC_MAX_WINDOW)
        self.source.signal()

    # -- idle heartbeats -------------------------------------------------------------------------

    def _arm_heartbeat(self) -> None:
        hb = self.source.config.idle_heartbeat
        if hb and self._hb_timer is None and not self.source.closed:
            self._hb_timer = self.loop.call_later(hb / 1e9, self._on_heartbeat)

    def _on_heartbeat(self) -> None:
        self._hb_timer = None
        if self.source.closed or not self.bound:
            return
        interval = self.source.config.idle_heartbeat / 1e9
        now = self.loop.time()
        idle = now - self._last_send
        if (
            not self._fc_subject
            and self._fc_sub is not None
            and self._acks_by_fc
            and self.source.num_ack_pending()
        ):
            # flow_control acks: a quiet moment with messages unacknowledged asks for them
            self._send_flow_control()
            self.server.flush_soon()
        if idle >= interval * 0.95:
            delivered = self.source.delivered()
            self.source.send_status(
                self._to,
                pull.heartbeat(delivered.consumer_seq, delivered.stream_seq, self._fc_subject),
            )
            self._last_send = now
            delay = interval
        else:
            delay = interval - idle
        self._hb_timer = self.loop.call_later(delay, self._on_heartbeat)
