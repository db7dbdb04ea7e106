"""Push consumers: delivery to the deliver subject while it has interest, flow control,
idle heartbeats, rate limit and original-pace replay (`PushServing`, mixed into
`Consumer`), and how they learn that their deliver subject gained or lost interest.

A push consumer delivers only while someone subscribes to its deliver subject (and reports
that as `push_bound`); an ephemeral one is deleted after `inactive_threshold` without
interest. The core tells us about subscription changes through
`Sublist.add_change_listener`; a change schedules one re-check per loop iteration, so
nothing is looked at unless a subscription changed.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING, Any

from pynats.server.client import route_as

from . import pull
from .store import StoredMessage

if TYPE_CHECKING:
    from pynats.server.accounts import Account
    from pynats.server.sublist import Subscription

    from .consumer import Consumer

FC_INITIAL_WINDOW = 2 * 1024 * 1024
FC_MAX_WINDOW = 32 * 1024 * 1024
B62 = pull.B62
PASS_BUDGET = pull.PASS_BUDGET


class InterestWatch:
    """Per account: re-checks its push consumers' interest whenever subscriptions changed."""

    def __init__(self, account: Account, loop: Any) -> None:
        self.account = account
        self.loop = loop
        self.consumers: set[Consumer] = set()
        self._scheduled = False
        account.sublist.add_change_listener(self._on_change)

    def add(self, consumer: Consumer) -> None:
        self.consumers.add(consumer)
        consumer.check_interest()

    def remove(self, consumer: Consumer) -> None:
        self.consumers.discard(consumer)

    def _on_change(self, subject: bytes) -> None:
        if self.consumers and not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self._recheck)

    def _recheck(self) -> None:
        self._scheduled = False
        for consumer in list(self.consumers):
            consumer.check_interest()

    def stop(self) -> None:
        self.consumers.clear()


class PushServing:
    """The push side of `Consumer`: one delivery pass sends to the deliver subject while it
    is bound; flow control keeps at most a window of bytes unconfirmed by the client (the
    window starts at 2 MiB and doubles per answer up to 32 MiB); idle heartbeats name the
    last delivered sequences."""

    def _serve_push(self) -> None:
        account = self.account
        client = self.client
        to = self._deliver_subject
        budget = PASS_BUDGET
        fc = self.config.flow_control
        sent = False
        while budget > 0:
            if fc and self._fc_subject and self._fc_bytes >= self._fc_window:
                break  # stalled until the client answers the flow control request
            item = self._next()
            if item is None:
                break
            msg, deliveries, redelivery = item
            if (self._replay_original or self._rate_bps) and not self._may_send_now(msg):
                break
            subject, reply, headers, payload = self._frame(msg, deliveries, redelivery)
            if not route_as(client, account, to, subject, reply, headers, payload):
                self.bound = False
                self._arm_inactivity()
                break
            self._commit(msg, deliveries, redelivery, time.time_ns())
            sent = True
            budget -= 1
            size = len(subject) + len(reply) + len(headers) + len(payload)
            if self._rate_bps:
                # a token bucket: the allowance refills at the rate, up to one burst
                now = self.loop.time()
                self._rate_next = max(self._rate_next, now) + size * 8 / self._rate_bps
            if fc:
                self._fc_bytes += size
                if not self._fc_subject and self._fc_bytes >= self._fc_window // 2:
                    self._send_flow_control()
        if sent:
            self._last_push_send = self.loop.time()
            self.server.flush_soon()
        if budget <= 0:
            self._signal()

    def _may_send_now(self, msg: StoredMessage) -> bool:
        """Rate limit and `replay_policy: original`: wait (a timer) when it is too early."""
        now = self.loop.time()
        due = now
        if self._rate_bps:
            due = self._rate_next - self._rate_burst_s
        if self._replay_original:
            base = self._replay_base
            if base is None:
                self._replay_base = (now, msg.ts_ns)
            else:
                due = max(due, base[0] + (msg.ts_ns - base[1]) / 1e9)
        if due <= now + 0.0005:
            return True
        self._wake_at_time(due)
        return False

    def _wake_at_time(self, when: float) -> None:
        if self._wake_timer is not None:
            if self._wake_at <= when:
                return
            self._wake_timer.cancel()
        self._wake_at = when
        self._wake_timer = self.loop.call_at(when, self._on_wake)

    def _on_wake(self) -> None:
        self._wake_timer = None
        self._deliver_pass()

    def check_interest(self) -> None:
        """Push: follow the deliver subject's interest (bound / unbound)."""
        if self.closed or self.is_pull:
            return
        bound = self.account.sublist.has_interest(self._deliver_subject)
        if bound == self.bound:
            return
        self.bound = bound
        if bound:
            if self._inactive_timer is not None:
                self._inactive_timer.cancel()
                self._inactive_timer = None
            self._arm_push_heartbeat()
            self._signal()
        else:
            self._arm_inactivity()

    def _send_flow_control(self) -> None:
        token = "".join(random.choice(B62) for _ in range(4))
        self._fc_subject = f"$JS.FC.{self.stream.name}.{self.name}.{token}"
        self._fc_mark = self._fc_bytes
        self.client.publish(
            self._deliver_subject,
            b"",
            self._fc_subject,
            pull.status("100", "FlowControl Request"),
        )

    def _on_fc_reply(
        self,
        sub: Subscription,
        publisher: Any,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        if not self._fc_subject or subject.decode() != self._fc_subject:
            return
        self._fc_subject = ""
        self._fc_bytes = max(self._fc_bytes - self._fc_mark, 0)
        self._fc_mark = 0
        self._fc_window = min(self._fc_window * 2, FC_MAX_WINDOW)
        self._signal()

    def _arm_push_heartbeat(self) -> None:
        hb = self.config.idle_heartbeat
        if hb and self._hb_timer is None and not self.closed:
            self._hb_timer = self.loop.call_later(hb / 1e9, self._on_push_heartbeat)

    def _on_push_heartbeat(self) -> None:
        self._hb_timer = None
        if self.closed or not self.bound:
            return
        interval = self.config.idle_heartbeat / 1e9
        now = self.loop.time()
        idle = now - self._last_push_send
        if idle >= interval * 0.95:
            state = self.store.state
            self._status(
                self._deliver_subject,
                pull.heartbeat(
                    state.delivered.consumer_seq, state.delivered.stream_seq, self._fc_subject
                ),
            )
            self._last_push_send = now
            delay = interval
        else:
            delay = interval - idle
        self._hb_timer = self.loop.call_later(delay, self._on_push_heartbeat)
