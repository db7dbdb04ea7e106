"""The contract between a consumer and its delivery: who decides what, and how they talk.

A `Consumer` decides *what* goes out: the next message (redeliveries first, then new ones at
its cursor), how it is framed (subject, ack reply, headers), and the books once it went out
(pending, redelivery counts, the cursor). Its delivery decides *to whom and when*: a pull
consumer delivers through a `pull.PullDelivery` (its queue of waiting MSG.NEXT requests), a
push consumer through a `push.PushDelivery` (its deliver subject, while someone listens,
under flow control and rate limit). A consumer has exactly one of them for its whole life,
chosen by whether its configuration has a deliver subject (an update cannot change that).

Each side owns its own state and sees the other only through the Protocol here:
`DeliverySource` is what a delivery may ask of its consumer, `Delivery` what the consumer
asks of its delivery.

Invariant of one delivery pass (`Delivery.serve`): every message `next_message` returns is
either sent and then `commit`ted before the next `next_message`, or not sent at all (the
pass ends, or tries another target), in which case it comes back from the next call.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from .store import SequencePair, StoredMessage

if TYPE_CHECKING:
    from pynats.server.accounts import Account
    from pynats.server.internal import InternalClient
    from pynats.server.server import Server

    from .consumer_config import ConsumerConfig
    from .service import JetStreamAccount
    from .stream import Stream

Next = tuple[StoredMessage, int, bool]
"""(message, its delivery count with this delivery, whether it is a redelivery)."""

Framed = tuple[bytes, bytes, bytes, bytes]
"""(subject, ack reply, header block, payload) of a message as it goes out."""

PASS_BUDGET = 1024
"""Messages one delivery pass sends before yielding to the loop (and scheduling another)."""

PASS_WRITE_EVERY = 128
"""A pass writes out what it framed every this many messages, so that the consumer's client
reads and acks the first ones while the pass frames the rest. One write at the end of the
pass would leave the client idle until then, and then the server idle while the client
catches up."""


class DeliverySource(Protocol):
    """What a delivery may ask of its consumer."""

    @property
    def config(self) -> ConsumerConfig: ...
    @property
    def closed(self) -> bool: ...
    @property
    def name(self) -> str: ...
    @property
    def stream(self) -> Stream: ...
    @property
    def jsa(self) -> JetStreamAccount: ...
    @property
    def account(self) -> Account: ...
    @property
    def client(self) -> InternalClient: ...
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...
    @property
    def server(self) -> Server: ...

    def next_message(self) -> Next | None:
        """The next message to deliver, or None (nothing there, or `max_ack_pending` full)."""

    def frame(self, msg: StoredMessage, deliveries: int, redelivery: bool, pin: str = "") -> Framed:
        """`msg` as it goes out as the next consumer sequence (a pinned group's `pin` added)."""

    def commit(self, msg: StoredMessage, deliveries: int, redelivery: bool, now_ns: int) -> None:
        """`msg` went out (at `now_ns`): advance the cursor and record it as pending."""

    def send_status(self, to: bytes, block: bytes) -> None:
        """Publish an empty message carrying the status header `block` to `to`."""

    def signal(self) -> None:
        """Something may let messages move: one delivery pass soon (once per loop iteration)."""

    def deliver_pass(self) -> None:
        """Run a delivery pass now."""

    def num_pending(self) -> int:
        """Messages left in the stream for this consumer, not yet delivered."""

    def num_ack_pending(self) -> int:
        """Messages delivered and not yet acknowledged."""

    def delivered(self) -> SequencePair:
        """The last delivered (consumer, stream) sequences, as heartbeats name them."""

    def ack_through(self, cseq: int, sseq: int) -> None:
        """Acknowledge everything delivered up to (cseq, sseq) (flow_control acks)."""

    def arm_inactivity(self) -> None:
        """Nobody to deliver to any more: `inactive_threshold` counts from now."""

    def disarm_inactivity(self) -> None:
        """Someone to deliver to again: the consumer is active."""


class Delivery(Protocol):
    """What a consumer asks of its (pull or push) delivery."""

    def start(self) -> None:
        """The consumer starts delivering (after its own subscriptions and listener)."""

    def stop(self, *, deleted: bool) -> None:
        """The consumer stops, deleted or at server shutdown: cancel timers, tell waiters."""

    def apply_config(self) -> None:
        """Take what this delivery derives from the consumer's (possibly new) config."""

    def config_changed(self, old: ConsumerConfig) -> None:
        """An update replaced `old` (already applied): react to what changed."""

    def is_active(self) -> bool:
        """Someone to deliver to (waiting requests, or interest in the deliver subject)."""

    def serve(self) -> None:
        """One delivery pass: send while there are messages, targets, room and budget."""

    def serve_paused(self) -> None:
        """A delivery pass while the consumer is paused: nothing is sent."""

    def num_waiting(self) -> int:
        """Pull requests waiting, as consumer info reports them."""
