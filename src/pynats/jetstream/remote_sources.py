"""A mirror's or source's origin in another JetStream: another domain, across a leaf node.

Nothing of the origin is in this process, so the link works as nats-server's does, on the
wire: it creates a push consumer on the origin through the origin's API
(`<external.api>.CONSUMER.CREATE.<stream>`, ack none, flow control, 1 s heartbeats, 10 s
inactive threshold, `direct` and `sourcing` set), subscribes to its deliver subject
(`$JS.M.<id>` for a mirror, `$JS.S.<id>` for a source, after `external.deliver` when given)
and stores what arrives. Its position is the stream's own: the mirror's last sequence, the
source's last `Nats-Stream-Source` sequence. So after any break (the leaf link down, the
origin server restarted, this server restarted) a new consumer starts right after what is
stored, and a delivery at or below it is dropped: every message arrives exactly once.

A break is noticed three ways: a delivery sequence that skips (the consumer lost something:
start again from the position), three heartbeats missed, or a create request that got no
answer. Each starts a new consumer after a back-off (0.5 s doubling to 5 s); the old one is
deleted when the origin can still be reached, else its inactive threshold removes it.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from typing import TYPE_CHECKING, Any

from . import headers as h
from .store import StoredMessage

if TYPE_CHECKING:
    from asyncio import TimerHandle

    from ..server.delivery import Publisher
    from ..server.sublist import Subscription
    from .sources import SourceLink

HEARTBEAT_NS = 1_000_000_000
INACTIVE_THRESHOLD_NS = 10_000_000_000
ACK_WAIT_NS = 22 * 3600 * 1_000_000_000  # what nats-server asks for: acks are never sent
CREATE_TIMEOUT = 5.0  # seconds without an answer to the create request
SILENCE = 3 * HEARTBEAT_NS / 1e9  # seconds without a message or heartbeat: the link is broken
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 5.0
_ALPHABET = string.ascii_letters + string.digits


def random_id(size: int = 8) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(size))


def parse_ack_reply(reply: bytes) -> tuple[int, int, int, int] | None:
    """(stream seq, delivery seq, timestamp ns, pending) from a `$JS.ACK` reply, in its old
    (9 tokens) or new (12 tokens, domain and account hash first) form."""
    tokens = reply.split(b".")
    if len(tokens) == 9:
        base = 4
    elif len(tokens) >= 11:
        base = 6
    else:
        return None
    try:
        return (
            int(tokens[base + 1]),
            int(tokens[base + 2]),
            int(tokens[base + 3]),
            int(tokens[base + 4]),
        )
    except ValueError:
        return None


class RemoteFeed:
    """The consumer on a remote origin that feeds one `SourceLink`."""

    def __init__(self, link: SourceLink, api: str) -> None:
        self.link = link
        self.api = api
        self.stream = link.stream
        self.client = link.stream.jsa.client
        self.consumer = ""  # the origin's name for our consumer, once created
        self.identity = ""  # the origin stream's identity, when its server sends one
        self.dseq = 0  # last delivery sequence seen from the current consumer
        self.pending = 0
        self.error: dict[str, Any] | None = None
        self._deliver_sub: Subscription | None = None
        self._reply_sub: Subscription | None = None
        self._timer: TimerHandle | None = None
        self._last_seen = 0.0
        self._fails = 0
        self._stopped = False

    # -- lifecycle --

    def start(self) -> None:
        self._create()

    def stop(self) -> None:
        self._stopped = True
        self._drop_consumer()
        self._cancel_timer()

    # -- the consumer --

    def _create(self) -> None:
        """Subscribe to a fresh deliver subject and ask the origin for a consumer on it."""
        if self._stopped or self.stream.closed:
            return
        self._drop_consumer()
        link = self.link
        cfg = link.cfg
        kind = "M" if link.is_mirror else "S"
        deliver = f"$JS.{kind}.{random_id()}"
        prefix = cfg.external.get("deliver", "") if cfg.external else ""
        if prefix:
            deliver = f"{prefix}.{deliver}".replace("..", ".")
        inbox = f"$JSC.R.{random_id()}"
        self._deliver_sub = self.client.subscribe(deliver, self._on_delivery)
        self._reply_sub = self.client.subscribe(inbox, self._on_created)
        self.dseq = 0
        request = {"stream_name": cfg.name, "config": self._consumer_config(deliver), "action": ""}
        self.client.publish(
            f"{self.api}.CONSUMER.CREATE.{cfg.name}", json.dumps(request).encode(), inbox
        )
        self._arm(CREATE_TIMEOUT, self._create_timed_out)

    def _consumer_config(self, deliver: str) -> dict[str, Any]:
        link = self.link
        cfg = link.cfg
        role = "mirror" if link.is_mirror else "src"
        out: dict[str, Any] = {
            "name": f"JS_{'MIRROR' if link.is_mirror else 'SRC'}_{random_id()}",
            "deliver_policy": "all",
        }
        start = link.next_seq
        if start > 1:
            out.update(deliver_policy="by_start_sequence", opt_start_seq=start)
        elif cfg.opt_start_seq:
            out.update(deliver_policy="by_start_sequence", opt_start_seq=cfg.opt_start_seq)
        elif cfg.opt_start_time:
            out.update(deliver_policy="by_start_time", opt_start_time=cfg.opt_start_time)
        out.update(
            ack_policy="none",
            ack_wait=ACK_WAIT_NS,
            max_deliver=1,
            replay_policy="instant",
            flow_control=True,
            deliver_subject=deliver,
            idle_heartbeat=HEARTBEAT_NS,
            inactive_threshold=INACTIVE_THRESHOLD_NS,
            num_replicas=0,
            direct=True,
            sourcing=True,
        )
        filters = [f for f, _ in link.filters if f != ">"]
        if len(filters) == 1:
            out["filter_subject"] = filters[0]
        elif filters:
            out["filter_subjects"] = filters
        jsa = self.stream.jsa
        meta = {f"_nats.{role}.acc": jsa.name, f"_nats.{role}.stream": self.stream.name}
        if jsa.js.domain:
            meta[f"_nats.{role}.domain"] = jsa.js.domain
        out["metadata"] = meta
        return out

    def _on_created(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        if sub is not self._reply_sub:
            return
        self._unsubscribe_reply()
        status, _ = h.status_of(headers) if headers else ("", "")
        if status == "503":  # no JetStream answered: the origin is out of reach for now
            self._retry_later()
            return
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = {"error": {"code": 500, "description": "invalid consumer create response"}}
        error = answer.get("error")
        if error:
            self.error = error
            self.link.error = str(error.get("description", ""))
            self._retry_later()
            return
        self.consumer = str(answer.get("name", ""))
        identity = h.get(headers, b"Nats-Stream-Identity") if headers else None
        self.identity = identity.decode() if identity else ""
        self.error = None
        self.link.error = ""
        self._fails = 0
        self._seen()
        self._arm(SILENCE, self._check_silence)

    def _create_timed_out(self) -> None:
        self._timer = None
        self._retry_later()

    def _retry_later(self) -> None:
        self._drop_consumer()
        delay = min(BACKOFF_FIRST * (2**self._fails), BACKOFF_MAX)
        self._fails += 1
        self._arm(delay, self._retry)

    def _retry(self) -> None:
        self._timer = None
        self._create()

    def _check_silence(self) -> None:
        self._timer = None
        silent = time.monotonic() - self._last_seen
        if silent >= SILENCE:
            self._retry_later()
        else:
            self._arm(SILENCE - silent, self._check_silence)

    def _drop_consumer(self) -> None:
        """Forget the current consumer: unsubscribe, and ask the origin to delete it."""
        self._unsubscribe_reply()
        if self._deliver_sub is not None:
            self.client.unsubscribe(self._deliver_sub)
            self._deliver_sub = None
        if self.consumer:
            name, self.consumer = self.consumer, ""
            self.client.publish(f"{self.api}.CONSUMER.DELETE.{self.link.cfg.name}.{name}")

    def _unsubscribe_reply(self) -> None:
        if self._reply_sub is not None:
            self.client.unsubscribe(self._reply_sub)
            self._reply_sub = None

    # -- deliveries --

    def _on_delivery(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        if sub is not self._deliver_sub:
            return
        self._seen()
        if headers.startswith(b"NATS/1.0 100"):
            self._on_control(headers, reply)
            return
        parsed = parse_ack_reply(reply) if reply else None
        if parsed is None:
            return
        sseq, dseq, ts, pending = parsed
        if dseq <= self.dseq:
            return  # delivered again: already taken
        if self.dseq and dseq != self.dseq + 1:
            self._retry_later()  # the consumer skipped something: start again from here
            return
        self.dseq = dseq
        self.pending = pending
        if sseq < self.link.next_seq:
            return
        message = StoredMessage(subject.decode(), sseq, ts, headers or None, payload)
        self.link.take(message)

    def _on_control(self, headers: bytes, reply: bytes | None) -> None:
        """Flow control is answered at once (everything delivered is stored already); a
        heartbeat may name a stall to answer, and tells a mirror where the origin ends."""
        _, text = h.status_of(headers)
        if text.startswith("FlowControl"):
            if reply:
                self.client.publish(reply)
            return
        stalled = h.get(headers, b"Nats-Consumer-Stalled")
        if stalled:
            self.client.publish(stalled)
        last_consumer = h.get(headers, b"Nats-Last-Consumer")
        if (
            last_consumer is not None
            and last_consumer.isdigit()
            and int(last_consumer) != self.dseq
        ):
            self._retry_later()  # deliveries went missing
            return
        last_stream = h.get(headers, b"Nats-Last-Stream")
        if self.link.is_mirror and last_stream is not None and last_stream.isdigit():
            self.link.mirror_reached(int(last_stream))

    def _seen(self) -> None:
        self._last_seen = time.monotonic()
        self.link.last_active_ns = time.time_ns()

    # -- timers --

    def _arm(self, delay: float, callback: Any) -> None:
        self._cancel_timer()
        if not self._stopped:
            self._timer = self.stream.loop.call_later(delay, callback)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class DurableFeed(RemoteFeed):
    """A source or mirror fed by a durable consumer someone created on the origin (ADR-60:
    `consumer: {name, deliver_subject}`, ack policy `flow_control`). Nothing is created or
    deleted here: the link listens on the deliver subject, stores what arrives, and answers
    flow control once that is on disk - the answer is the consumer's acknowledgement, so a
    work-queue or interest origin lets go of a message only when this stream keeps it."""

    def __init__(self, link: SourceLink) -> None:
        super().__init__(link, "")
        consumer = link.cfg.consumer or {}
        self.consumer_name = str(consumer.get("name", ""))
        self.deliver = str(consumer.get("deliver_subject", ""))

    def _create(self) -> None:
        if self._stopped or self.stream.closed or self._deliver_sub is not None:
            return
        self._deliver_sub = self.client.subscribe(self.deliver, self._on_delivery)
        self.dseq = 0

    def _drop_consumer(self) -> None:
        if self._deliver_sub is not None:
            self.client.unsubscribe(self._deliver_sub)
            self._deliver_sub = None

    def _retry_later(self) -> None:
        self.dseq = 0  # the durable consumer goes on by itself: take what comes next

    def _on_control(self, headers: bytes, reply: bytes | None) -> None:
        _, text = h.status_of(headers)
        answer = (
            reply if text.startswith("FlowControl") else h.get(headers, b"Nats-Consumer-Stalled")
        )
        if answer:
            client = self.client

            def answer_when_stored(_err: BaseException | None) -> None:
                client.publish(answer)

            self.stream.store.when_durable(answer_when_stored)
