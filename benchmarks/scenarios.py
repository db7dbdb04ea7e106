"""The benchmark scenarios: which generator roles run against a server, and what is counted.

Throughput is counted where it is real: delivered messages at the subscribers for pub/sub
scenarios, and for pub-only the messages the server has provably processed (PONG-confirmed)
rather than written into socket buffers. Every count is taken over a fixed window that starts
after a warm-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from loadgen import (
    QUEUE,
    SUBJECT,
    Latency,
    Memory,
    Role,
    Throughput,
    Window,
    new_event,
    open_idle_clients,
    payload_of,
    run_publisher,
    run_requester,
    run_responder,
    run_subscribers,
)

SETUP_TIMEOUT = 15.0
REPORT_SLACK = 15.0
SIZES = (16, 128, 1024)
WILDCARD = b"bench.*"  # matches loadgen.SUBJECT
Result = Throughput | Latency | Memory


class Target(Protocol):
    """What a scenario needs from the server under test."""

    port: int

    def rss_kb(self) -> int: ...


@dataclass(frozen=True)
class Settings:
    window: Window
    fanout: int = 8
    queue_members: int = 4
    idle_connections: int = 1000


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    unit: str
    sized: bool
    run: Callable[[Target, int, Settings], Result]

    def describe(self, settings: Settings) -> str:
        """The title with this run's group sizes filled in (e.g. `1:8 fan-out`)."""
        return self.title.format(fanout=settings.fanout, members=settings.queue_members)


def pub_only(target: Target, size: int, settings: Settings) -> Throughput:
    """One publisher, no subscriber: messages/s the server accepted and processed."""
    stop = new_event()
    pub = Role(run_publisher, target.port, SUBJECT, payload_of(size), settings.window, stop)
    try:
        pub.start().expect("ready", SETUP_TIMEOUT)
        return pub.expect("result", settings.window.total + REPORT_SLACK)
    finally:
        stop.set()
        pub.finish()


def pub_sub(target: Target, size: int, settings: Settings) -> Throughput:
    """One publisher, one subscriber: messages/s delivered."""
    return deliveries(target, size, settings, members=1)


def fan_out(target: Target, size: int, settings: Settings) -> Throughput:
    """One publisher, N plain subscribers: deliveries/s summed over all subscribers."""
    return deliveries(target, size, settings, members=settings.fanout)


def queue_group(target: Target, size: int, settings: Settings) -> Throughput:
    """One publisher, one queue group of N members: messages/s counted across members."""
    return deliveries(target, size, settings, members=settings.queue_members, queue=QUEUE)


def wildcard(target: Target, size: int, settings: Settings) -> Throughput:
    """One publisher, one subscriber on a wildcard (`bench.*`): messages/s delivered."""
    return deliveries(target, size, settings, members=1, pattern=WILDCARD)


def deliveries(
    target: Target,
    size: int,
    settings: Settings,
    members: int,
    queue: bytes = b"",
    pattern: bytes = b"",
) -> Throughput:
    """Subscribers and publisher on the one server under test."""
    return measure_deliveries(
        target.port, [target.port], size, settings, members, queue, pattern=pattern
    )


def measure_deliveries(
    pub_port: int,
    sub_ports: Sequence[int],
    size: int,
    settings: Settings,
    members: int,
    queue: bytes = b"",
    before_publish: Callable[[], None] | None = None,
    pattern: bytes = b"",
) -> Throughput:
    """Subscribers first (`members` on each of `sub_ports`, confirmed by PONG), then
    `before_publish` (a cluster waits there for the interest to cross its routes), then the
    publisher on `pub_port`; the subscribers report deliveries summed over all of them."""
    stop = new_event()
    window = settings.window
    subs = Role(run_subscribers, tuple(sub_ports), SUBJECT, size, members, queue, window, pattern)
    pub = Role(run_publisher, pub_port, SUBJECT, payload_of(size), window, stop)
    try:
        subs.start().expect("ready", SETUP_TIMEOUT)
        if before_publish is not None:
            before_publish()
        pub.start().expect("ready", SETUP_TIMEOUT)
        return subs.expect("result", window.total + REPORT_SLACK)
    finally:
        stop.set()
        pub.finish()
        subs.finish()


def subscribers_only(target: Target, size: int, settings: Settings, members: int) -> Throughput:
    """Subscribers against a source that publishes by itself (the self-test's blast sink)."""
    subs = Role(run_subscribers, target.port, SUBJECT, size, members, b"", settings.window)
    try:
        subs.start().expect("ready", SETUP_TIMEOUT)
        return subs.expect("result", settings.window.total + REPORT_SLACK)
    finally:
        subs.finish()


def request_reply(target: Target, size: int, settings: Settings) -> Latency:
    """One requester, one responder, sequential round trips: latency percentiles."""
    responder = Role(run_responder, target.port, size)
    requester = Role(run_requester, target.port, size, settings.window)
    try:
        responder.start().expect("ready", SETUP_TIMEOUT)
        requester.start().expect("ready", SETUP_TIMEOUT)
        return requester.expect("result", settings.window.total + REPORT_SLACK)
    finally:
        requester.finish()
        responder.finish(grace=0.0)


def idle_memory(target: Target, size: int, settings: Settings) -> Memory:
    """RSS growth of the server for N idle connections that each did CONNECT + PING/PONG."""
    time.sleep(0.3)
    before = target.rss_kb()
    socks = open_idle_clients(target.port, settings.idle_connections)
    try:
        time.sleep(0.5)
        after = target.rss_kb()
    finally:
        for sock in socks:
            sock.close()
    return Memory(settings.idle_connections, before, after)


SCENARIOS = (
    Scenario("pub", "pub-only", "msgs/s", True, pub_only),
    Scenario("pubsub", "1:1 pub/sub", "msgs/s", True, pub_sub),
    Scenario("fanout", "1:{fanout} fan-out", "deliveries/s", True, fan_out),
    Scenario("queue", "queue group ({members})", "msgs/s", True, queue_group),
    Scenario("wildcard", "1:1 via bench.*", "msgs/s", True, wildcard),
    Scenario("reqrep", "request/reply", "µs", True, request_reply),
    Scenario("idle", "idle conn memory", "KB/conn", False, idle_memory),
)
