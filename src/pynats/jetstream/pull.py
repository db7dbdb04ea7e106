"""Pull requests: `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` bodies, the waiting request,
the status messages a request can end with, and `PullDelivery`, how a pull consumer serves
its queue of waiting requests.

A body is empty (one message), an ASCII number (that many), or JSON with `batch`, `expires`,
`max_bytes`, `no_wait`, `idle_heartbeat` and the priority-group fields (`group`,
`min_pending`, `min_ack_pending`, `id`, `priority`). Unknown JSON fields are ignored, as
nats-server ignores them here; anything that is neither JSON nor a number asks for one
message. Statuses are empty messages whose header block carries the code (protocol §6).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Final

from pynats.gotime import format_duration
from pynats.server.delivery import route_as

from . import advisories
from .consumer_config import ConsumerConfig
from .consumer_delivery import PASS_BUDGET, PASS_WRITE_EVERY, DeliverySource
from .decode import json_kind
from .pace import OriginalPace, Waker

PENDING_MSGS: Final = "Nats-Pending-Messages"
PENDING_BYTES: Final = "Nats-Pending-Bytes"


class BadPullRequest(Exception):
    """The request is answered with `400 Bad Request - <text>`."""


@dataclass
class PullRequest:
    batch: int = 1
    expires: int = 0  # ns, 0 = none
    max_bytes: int = 0
    no_wait: bool = False
    heartbeat: int = 0  # ns
    group: str = ""
    min_pending: int = 0
    min_ack_pending: int = 0
    pin_id: str = ""
    priority: int = 0


_INT_FIELDS = {
    "batch": "int",
    "expires": "time.Duration",
    "max_bytes": "int",
    "idle_heartbeat": "time.Duration",
    "min_pending": "int64",
    "min_ack_pending": "int64",
    "priority": "int",
}

# Checked before they are stored: PullRequest's fields are typed (compiled, a wrong type
# would be a TypeError rather than nats-server's 400).
_TYPED_FIELDS: Final[tuple[tuple[str, str, type], ...]] = (
    ("no_wait", "bool", bool),
    ("group", "string", str),
    ("id", "string", str),
)


def parse_request(payload: bytes) -> PullRequest:
    """A MSG.NEXT body. Raises BadPullRequest with nats-server's text."""
    body = payload.strip()
    if not body:
        return PullRequest()
    if body[:1] != b"{":
        try:
            return PullRequest(batch=int(body))
        except ValueError:
            return PullRequest()
    try:
        obj = json.loads(body)
    except ValueError as e:
        from .decode import syntax_error_text

        text = syntax_error_text(body)
        if text.startswith("invalid character"):
            text = text.rsplit(" at offset ", 1)[0]
        raise BadPullRequest(text) from e
    if not isinstance(obj, dict):
        return PullRequest()
    req = PullRequest()
    for key, go_type in _INT_FIELDS.items():
        value = obj.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            kind = "number " + json.dumps(value) if isinstance(value, float) else json_kind(value)
            raise BadPullRequest(
                f"json: cannot unmarshal {kind} into Go struct field .{key} of type {go_type}"
            )
    for key, go_type, py_type in _TYPED_FIELDS:
        value = obj.get(key)
        if value is not None and not isinstance(value, py_type):
            kind = "number" if isinstance(value, float) else json_kind(value)
            raise BadPullRequest(
                f"json: cannot unmarshal {kind} into Go struct field .{key} of type {go_type}"
            )
    req.batch = obj.get("batch") or 0
    req.expires = obj.get("expires") or 0
    req.max_bytes = obj.get("max_bytes") or 0
    req.no_wait = obj.get("no_wait") or False
    req.heartbeat = obj.get("idle_heartbeat") or 0
    req.group = obj.get("group") or ""
    req.min_pending = obj.get("min_pending") or 0
    req.min_ack_pending = obj.get("min_ack_pending") or 0
    req.pin_id = obj.get("id") or ""
    req.priority = obj.get("priority") or 0
    return req


@dataclass(eq=False)
class WaitingRequest:
    """A pull request waiting for messages (in the consumer's queue)."""

    reply: bytes
    batch: int  # messages still wanted
    max_bytes: int  # 0 = no byte limit
    bytes_left: int
    expires_at: float  # loop time (s), 0 = never
    no_wait: bool
    heartbeat: int  # ns, 0 = none
    last_sent: float  # loop time (s) of the last message or heartbeat sent to it
    group: str = ""
    min_pending: int = 0
    min_ack_pending: int = 0
    pin_id: str = ""
    priority: int = 0
    delivered: int = 0
    requested: int = 1  # the batch as asked (a zero or negative batch still gets one)

    def remaining(self) -> int:
        return self.batch if self.requested > 0 or self.delivered else self.requested

    def unfilled(self) -> list[tuple[str, str]]:
        """The pending headers of a request that ends before its batch is full."""
        return pending_headers(self.remaining(), self.bytes_left if self.max_bytes else 0)


def status(code: str, text: str, extra: list[tuple[str, str]] | None = None) -> bytes:
    line = f"NATS/1.0 {code} {text}\r\n"
    for name, value in extra or ():
        line += f"{name}: {value}\r\n"
    return (line + "\r\n").encode()


def pending_headers(batch: int, bytes_left: int) -> list[tuple[str, str]]:
    return [(PENDING_MSGS, str(batch)), (PENDING_BYTES, str(bytes_left))]


NO_MESSAGES: Final = status("404", "No Messages")
EXCEEDED_MAX_WAITING: Final = status("409", "Exceeded MaxWaiting")
CONSUMER_DELETED: Final = status("409", "Consumer Deleted")
PUSH_BASED: Final = status("409", "Consumer is push based")
PIN_MISMATCH: Final = status("423", "Nats-Pin-Id mismatch")
API_LEVEL: Final = status("412", "Required Api Level")


def bad_request(text: str) -> bytes:
    return status("400", f"Bad Request - {text}")


def exceeded_batch(limit: int) -> bytes:
    return status("409", f"Exceeded MaxRequestBatch of {limit}")


def exceeded_expires(limit_ns: int) -> bytes:
    return status("409", f"Exceeded MaxRequestExpires of {format_duration(limit_ns)}")


def exceeded_max_bytes(limit: int) -> bytes:
    return status("409", f"Exceeded MaxRequestMaxBytes of {limit}")


def request_timeout(req: WaitingRequest) -> bytes:
    return status("408", "Request Timeout", req.unfilled())


def server_shutdown(req: WaitingRequest) -> bytes:
    return status("409", "Server Shutdown", req.unfilled())


def heartbeat(last_consumer: int, last_stream: int, stalled: str = "") -> bytes:
    extra = [("Nats-Last-Consumer", str(last_consumer)), ("Nats-Last-Stream", str(last_stream))]
    if stalled:
        extra.append(("Nats-Consumer-Stalled", stalled))
    return status("100", "Idle Heartbeat", extra)


B62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_pin_id() -> str:
    return "".join(random.choice(B62) for _ in range(22))


class PullDelivery:
    """A pull consumer's delivery: MSG.NEXT requests wait in `waiting` until their batch is
    full, they expire, or they end with a status (the statuses nats-server sends). Several
    waiting requests are served round robin, unless a priority policy picks. One timer serves
    every request's expiry and idle heartbeat. A pinned-client group keeps its pin (`pins`)
    while the pinned client keeps asking; `priority_timeout` without a request unpins it.

    `waiting` empty is what makes a pull consumer inactive (`inactive_threshold` counts)."""

    def __init__(self, source: DeliverySource) -> None:
        self.source = source
        self.account = source.account
        self.client = source.client
        self.loop = source.loop
        self.server = source.server
        self.waiting: deque[WaitingRequest] = deque()
        self.pins: dict[str, tuple[str, int]] = {}  # group -> (pin id, pinned at in ns)
        self._pin_seen: dict[str, float] = {}  # group -> loop time the pinned client last asked
        self._pin_timer: asyncio.TimerHandle | None = None
        self._req_waker = Waker(self.loop, self._on_request_timer)  # expiries, heartbeats
        self._pace: OriginalPace | None = None  # replay_policy: original
        self._waker = Waker(self.loop, source.deliver_pass)

    # -- the consumer's side (`consumer_delivery.Delivery`) -------------------------------------

    def start(self) -> None:
        pass

    def stop(self, *, deleted: bool) -> None:
        """Waiting requests end: `409 Consumer Deleted`, or `409 Server Shutdown` (once per
        reply subject, as nats-server tells its pending requests when the server shuts down)."""
        if self._pin_timer is not None:
            self._pin_timer.cancel()
            self._pin_timer = None
        self._req_waker.cancel()
        self._waker.cancel()
        send_status = self.source.send_status
        if deleted:
            for req in self.waiting:
                send_status(req.reply, CONSUMER_DELETED)
        elif self.server.is_shutting_down:
            last = {req.reply: req for req in self.waiting}
            for reply, req in last.items():
                send_status(reply, server_shutdown(req))
        self.waiting.clear()

    def apply_config(self) -> None:
        if self.source.config.replay_policy != "original":
            self._pace = None
        elif self._pace is None:
            self._pace = OriginalPace()

    def config_changed(self, old: ConsumerConfig) -> None:
        pass

    def is_active(self) -> bool:
        return bool(self.waiting)

    def num_waiting(self) -> int:
        if self.waiting:
            self.prune()
        return len(self.waiting)

    def serve(self) -> None:
        waiting = self.waiting
        if not waiting:
            return
        source = self.source
        next_message, frame, commit = source.next_message, source.frame, source.commit
        has_interest = self.account.sublist.has_interest
        account = self.account
        client = self.client
        budget = PASS_BUDGET
        now = self.loop.time()
        now_ns = time.time_ns()
        policy = source.config.priority_policy
        priority = policy != "none"
        pinned = policy == "pinned_client"
        sent = False
        checked: set[int] = set()  # requests whose requester was seen listening this pass
        pace = self._pace
        held = False
        while waiting and budget > 0:
            req = self._pick_request() if priority else waiting[0]
            if req is None:
                break
            if id(req) not in checked:
                if not has_interest(req.reply):
                    self._remove_request(req)
                    continue
                checked.add(id(req))
            item = next_message()
            if item is None:
                break
            msg, deliveries, redelivery = item
            if pace is not None:
                due = pace.due(msg, now)
                if due > now + 0.0005:
                    held = True
                    self._waker.at(due)
                    break
            pin = self._pin_for(req) if pinned else ""
            subject, reply, headers, payload = frame(msg, deliveries, redelivery, pin)
            size = len(subject) + len(reply) + len(headers) + len(payload)
            if req.max_bytes and size > req.bytes_left:
                self._remove_request(req)
                source.send_status(
                    req.reply,
                    status(
                        "409",
                        "Message Size Exceeds MaxBytes",
                        pending_headers(req.batch, req.bytes_left),
                    ),
                )
                continue
            route_as(client, account, req.reply, subject, reply, headers, payload)
            commit(msg, deliveries, redelivery, now_ns)
            if pace is not None:
                pace.sent(msg)
            sent = True
            budget -= 1
            if not budget % PASS_WRITE_EVERY:
                self.server.flush_pending()
            req.batch -= 1
            req.bytes_left -= size
            req.delivered += 1
            req.last_sent = now
            if req.batch <= 0:
                self._remove_request(req)
                if req.max_bytes:
                    source.send_status(
                        req.reply,
                        status("409", "Batch Completed", pending_headers(0, req.bytes_left)),
                    )
            elif len(waiting) > 1:
                waiting.remove(req)
                waiting.append(req)
        if budget <= 0:
            source.signal()
        elif not held:  # a message held for its replay time is still to come
            self._end_no_wait()
        if sent:
            self.server.flush_soon()

    def serve_paused(self) -> None:
        self._end_no_wait()

    def _end_no_wait(self) -> None:
        """No more messages right now: `no_wait` requests end with 404 (those with an expiry
        only once they got something; before that they wait like any other)."""
        for req in [r for r in self.waiting if r.no_wait and (not r.expires_at or r.delivered)]:
            self._remove_request(req)
            self.source.send_status(req.reply, NO_MESSAGES)

    # -- requests ------------------------------------------------------------------------------

    def request(self, reply: bytes, payload: bytes) -> None:
        """A MSG.NEXT request (or the request part of `+NXT`) answered at `reply`."""
        send_status = self.source.send_status
        try:
            req = parse_request(payload)
        except BadPullRequest as e:
            send_status(reply, bad_request(str(e)))
            return
        cfg = self.source.config
        if cfg.max_batch and req.batch > cfg.max_batch:
            send_status(reply, exceeded_batch(cfg.max_batch))
            return
        if cfg.max_expires and req.expires > cfg.max_expires:
            send_status(reply, exceeded_expires(cfg.max_expires))
            return
        if cfg.max_bytes and req.max_bytes > cfg.max_bytes:
            send_status(reply, exceeded_max_bytes(cfg.max_bytes))
            return
        if req.heartbeat > 0 and (req.expires <= 0 or 2 * req.heartbeat > req.expires):
            send_status(reply, bad_request("heartbeat value too large"))
            return
        if req.expires < 0:
            send_status(reply, status("408", "Request Timeout", pending_headers(req.batch, 0)))
            return
        error = self._check_priority(req)
        if error is not None:
            send_status(reply, error)
            return
        now = self.loop.time()
        if len(self.waiting) >= cfg.max_waiting > 0:
            if req.no_wait:
                send_status(reply, NO_MESSAGES)
            elif not req.heartbeat:
                send_status(reply, EXCEEDED_MAX_WAITING)
            return
        waiting = WaitingRequest(
            reply=reply,
            batch=max(req.batch, 1),
            max_bytes=req.max_bytes,
            bytes_left=req.max_bytes,
            expires_at=now + req.expires / 1e9 if req.expires else 0,
            no_wait=req.no_wait,
            heartbeat=req.heartbeat,
            last_sent=now,
            group=req.group,
            min_pending=req.min_pending,
            min_ack_pending=req.min_ack_pending,
            pin_id=req.pin_id,
            priority=req.priority,
            requested=req.batch,
        )
        self.waiting.append(waiting)
        if req.pin_id:
            self._pin_seen[req.group] = now
        self.source.disarm_inactivity()
        if waiting.expires_at or waiting.heartbeat:
            due = waiting.expires_at or (now + waiting.heartbeat / 1e9)
            if waiting.heartbeat:
                due = min(due, now + waiting.heartbeat / 1e9)
            self._req_waker.at(due)
        self.source.deliver_pass()

    def prune(self) -> None:
        """Forget pull requests whose reply subject nobody listens to any more."""
        has_interest = self.account.sublist.has_interest
        for req in [r for r in self.waiting if not has_interest(r.reply)]:
            self._remove_request(req)

    def _remove_request(self, req: WaitingRequest) -> None:
        try:
            self.waiting.remove(req)
        except ValueError:
            return
        if not self.waiting:
            self.source.arm_inactivity()

    def _on_request_timer(self) -> None:
        """Expire what is due (408) and send the idle heartbeats that are due."""
        if self.source.closed:
            return
        now = self.loop.time()
        earliest = 0.0
        for req in list(self.waiting):
            if req.expires_at and now >= req.expires_at - 0.0005:
                self._remove_request(req)
                self.source.send_status(req.reply, request_timeout(req))
                continue
            if req.heartbeat:
                interval = req.heartbeat / 1e9
                if now - req.last_sent >= interval - 0.0005:
                    delivered = self.source.delivered()
                    self.source.send_status(
                        req.reply, heartbeat(delivered.consumer_seq, delivered.stream_seq)
                    )
                    req.last_sent = now
                due = req.last_sent + interval
                earliest = due if not earliest else min(earliest, due)
            if req.expires_at:
                earliest = req.expires_at if not earliest else min(earliest, req.expires_at)
        if earliest:
            self._req_waker.at(earliest)

    # -- priority groups -----------------------------------------------------------------------

    def _check_priority(self, req: PullRequest) -> bytes | None:
        cfg = self.source.config
        policy = cfg.priority_policy
        if policy == "none":
            return None
        if not req.group:
            return bad_request("Priority Group missing")
        if req.group not in cfg.priority_groups:
            return bad_request("Invalid Priority Group")
        if req.pin_id and policy != "pinned_client":
            return bad_request("Not a Pinned Client Priority consumer")
        if (req.min_pending or req.min_ack_pending) and policy != "overflow":
            return bad_request("Not a Overflow Priority consumer")
        if policy == "prioritized" and not 0 <= req.priority <= 9:
            return bad_request("Priority must be between 0 and 9")
        if policy == "pinned_client" and req.pin_id:
            current = self.pins.get(req.group)
            if current is None:
                return status("423", "Nats-Wrong-Pin-Id", pending_headers(req.batch, req.max_bytes))
            if current[0] != req.pin_id:
                return PIN_MISMATCH
        return None

    def _pick_request(self) -> WaitingRequest | None:
        """The next request to serve under the consumer's priority policy."""
        policy = self.source.config.priority_policy
        waiting = self.waiting
        if policy == "overflow":
            pending = self.source.num_pending()
            acking = self.source.num_ack_pending()
            for req in waiting:
                if not (req.min_pending or req.min_ack_pending):
                    return req
                if req.min_pending and pending >= req.min_pending:
                    return req
                if req.min_ack_pending and acking >= req.min_ack_pending:
                    return req
            return None
        if policy == "prioritized":
            return min(waiting, key=lambda r: r.priority)
        if policy == "pinned_client":
            for req in waiting:
                current = self.pins.get(req.group)
                if current is None or req.pin_id == current[0]:
                    return req
            return None
        return waiting[0]

    def _pin_for(self, req: WaitingRequest) -> str:
        current = self.pins.get(req.group)
        if current is not None:
            return current[0]
        pin = new_pin_id()
        self.pins[req.group] = (pin, time.time_ns())
        self._pin_seen[req.group] = self.loop.time()
        req.pin_id = pin
        source = self.source
        advisories.consumer_pinned(source.jsa, source.stream.name, source.name, req.group, pin)
        self._arm_pin_timer()
        return pin

    def unpin(self, group: str, reason: str = "admin") -> None:
        if self.pins.pop(group, None) is not None:
            source = self.source
            advisories.consumer_unpinned(source.jsa, source.stream.name, source.name, group, reason)
            for req in [r for r in self.waiting if r.group == group and r.pin_id]:
                self._remove_request(req)
                source.send_status(
                    req.reply,
                    status("423", "Nats-Wrong-Pin-Id", pending_headers(req.batch, req.max_bytes)),
                )
            source.signal()

    def _arm_pin_timer(self) -> None:
        if self._pin_timer is None and self.pins:
            ttl = self.source.config.priority_timeout / 1e9
            self._pin_timer = self.loop.call_later(ttl, self._on_pin_timer)

    def _on_pin_timer(self) -> None:
        self._pin_timer = None
        now = self.loop.time()
        ttl = self.source.config.priority_timeout / 1e9
        for group in list(self.pins):
            pin = self.pins[group][0]
            active = any(r.pin_id == pin for r in self.waiting)
            if not active and now - self._pin_seen.get(group, 0) >= ttl:
                self.unpin(group, "timeout")
        self._arm_pin_timer()
