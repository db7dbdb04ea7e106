"""`nats latency --server-b URL` (alias `lat`): end-to-end latency between two servers.

What natscli measures: one connection publishes to the context's server at --rate messages a
second for --duration, each message carrying its send time (Unix ns, little endian) in its
first 8 bytes (--size, at least 8); a second connection subscribed through --server-b (the
same server or another member of its cluster) takes the difference on arrival. Before that
it prints both connections' RTT, and, when they are on different servers, first waits until
a test message crosses (interest propagated). Everything is logged on stderr:
`Pub Server RTT`, `HDR Percentiles` (10 ... 100), `Actual Msgs/Sec`, `Minimum/Median/Maximum
Latency`, the wall times. `--histogram FILE` also writes FILE.raw, one latency in ms a line.

natscli waits for every message forever; here a test that has not received them all --timeout
after the last publish fails with `received N of M messages`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import struct
import time

import click
from nats.aio.client import Client
from nats.aio.msg import Msg

from pynats.cli.ui.command import NatsGroup
from pynats.cli.ui.connect import connect, flush_ordered, run_async, server_info
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import log
from pynats.cli.ui.parse import DURATION
from pynats.gotime import MICROSECOND, NS_PER_S, format_duration

MIN_PAYLOAD = 8
PERCENTILES = (
    ("10", 10.0),
    ("50", 50.0),
    ("75", 75.0),
    ("90", 90.0),
    ("99", 99.0),
    ("99.9", 99.9),
    ("99.99", 99.99),
    ("99.999", 99.999),
    ("99.9999", 99.9999),
    ("99.99999", 99.99999),
    ("100", 100.0),
)
RULE = "=============================="
ROUTE_WAIT_S = 2.0


def register(root: NatsGroup) -> None:
    @root.command("latency", aliases=["lat"], help="Perform latency tests between two NATS servers")
    @click.option("--server-b", required=True, help="The second server to subscribe on")
    @click.option("--size", default=8, type=int, help="Message size")
    @click.option("--rate", default=1000, type=int, help="Rate of messages per second")
    @click.option("--duration", "duration_ns", default="5s", type=DURATION, help="Test duration")
    @click.option("--histogram", default="", help="Output file to store the histogram in")
    def latency(server_b: str, size: int, rate: int, duration_ns: int, histogram: str) -> None:
        run_async(LatencyTest(server_b, size, rate, duration_ns, histogram).run())


def fmt_duration(ns: int) -> str:
    """natscli's fmtDur: the duration truncated to microseconds, as Go prints it."""
    return format_duration(ns - ns % MICROSECOND)


def byte_size(n: int) -> str:
    """natscli latency's own size words: `8B`, `15.6K`, `2.0M`."""
    sizes = ["B", "K", "M", "G", "T"]
    if n < 10:
        return f"{n}{sizes[0]}"
    exponent = min(math.floor(math.log(n) / math.log(1024)), len(sizes) - 1)
    value = math.floor(n / 1024**exponent * 10 + 0.5) / 10
    return f"{value:.1f}{sizes[exponent]}" if value < 10 else f"{value:.0f}{sizes[exponent]}"


def rps(count: int, elapsed_ns: int) -> int:
    return int(count / (elapsed_ns / NS_PER_S)) if elapsed_ns > 0 else 0


def value_at_quantile(ordered: list[int], quantile: float) -> int:
    """The recorded value at a percentile (HdrHistogram's rule on exact values)."""
    wanted = max(1, int(quantile / 100 * len(ordered) + 0.5))
    return ordered[min(wanted, len(ordered)) - 1]


def median(ordered: list[int]) -> int:
    n = len(ordered)
    if n % 2 == 0:
        return (ordered[n // 2 - 1] + ordered[n // 2]) // 2
    return ordered[n // 2]


@dataclasses.dataclass
class LatencyTest:
    server_b: str
    size: int
    rate: int
    duration_ns: int
    histogram: str

    async def run(self) -> None:
        start = time.monotonic_ns()
        count = (self.duration_ns // NS_PER_S) * self.rate
        if self.size < MIN_PAYLOAD:
            raise CliError(f"message Payload Size must be at least {MIN_PAYLOAD} bytes")
        if count <= 0:
            raise CliError("the test would send no messages: use a --duration of 1s or more")
        settings = current_settings()
        try:
            publisher = await connect()
        except CliError as exc:
            raise CliError(f"first connection failed: {exc}") from exc
        try:
            subscriber = await connect(dataclasses.replace(settings, servers=self.server_b))
        except CliError as exc:
            await publisher.close()
            raise CliError(f"second connection failed: {exc}") from exc
        try:
            await self._measure(publisher, subscriber, count, start)
        finally:
            await publisher.close()
            await subscriber.close()

    async def _measure(self, publisher: Client, subscriber: Client, count: int, start: int) -> None:
        log(RULE)
        log(f"Pub Server RTT : {fmt_duration(await _rtt(publisher, 'first'))}")
        log(f"Sub Server RTT : {fmt_duration(await _rtt(subscriber, 'second'))}")

        durations: list[int] = []
        all_received = asyncio.Event()

        async def on_message(msg: Msg) -> None:
            (sent,) = struct.unpack_from("<Q", msg.data)
            durations.append(time.time_ns() - sent)
            if len(durations) >= count:
                all_received.set()

        subject = subscriber.new_inbox()
        try:
            await subscriber.subscribe(subject, cb=on_message)
            await flush_ordered(subscriber)
        except Exception as exc:
            raise CliError(f"subscribing on second connection failed: {exc}") from exc
        await _wait_for_route(publisher, subscriber)

        log(f"Message Payload: {byte_size(self.size)}")
        log(f"Target Duration: {format_duration(self.duration_ns)}")
        log(f"Target Msgs/Sec: {self.rate}")
        log(f"Target Band/Sec: {byte_size(self.rate * self.size * 2)}")
        log(RULE)

        payload = bytearray(os.urandom(self.size))
        delay_ns = NS_PER_S // self.rate
        pub_start = time.monotonic_ns()
        for i in range(count):
            struct.pack_into("<Q", payload, 0, time.time_ns())
            try:
                await publisher.publish(subject, bytes(payload))
            except Exception as exc:
                log(f"Publishing failed: {exc}")
            # natscli's throttle: nudge the pause 5% towards the target rate after each message
            achieved = rps(i + 1, time.monotonic_ns() - pub_start)
            adjust = max(delay_ns // 20, 1)
            if achieved < self.rate:
                delay_ns = max(delay_ns - adjust, 0)
            elif achieved > self.rate:
                delay_ns += adjust
            await asyncio.sleep(delay_ns / NS_PER_S)
        await publisher.flush()
        pub_ns = time.monotonic_ns() - pub_start
        try:
            await asyncio.wait_for(all_received.wait(), current_settings().timeout_s)
        except TimeoutError:
            raise CliError(f"received {len(durations)} of {count} messages") from None
        sub_ns = time.monotonic_ns() - pub_start

        if self.histogram:
            self._write_raw(durations)
        ordered = sorted(durations)
        log("HDR Percentiles:")
        for label, quantile in PERCENTILES:
            log(f"{label + ':':<10}{fmt_duration(value_at_quantile(ordered, quantile))}")
        log(RULE)
        achieved = rps(count, pub_ns)
        log(f"Actual Msgs/Sec: {achieved}")
        log(f"Actual Band/Sec: {byte_size(achieved * self.size * 2)}")
        log(f"Minimum Latency: {fmt_duration(ordered[0])}")
        log(f"Median Latency : {fmt_duration(median(ordered))}")
        log(f"Maximum Latency: {fmt_duration(ordered[-1])}")
        log(f"1st Sent Wall Time : {fmt_duration(pub_start - start)}")
        log(f"Last Sent Wall Time: {fmt_duration(pub_ns)}")
        log(f"Last Recv Wall Time: {fmt_duration(sub_ns)}")

    def _write_raw(self, durations: list[int]) -> None:
        try:
            with open(self.histogram + ".raw", "w") as raw:
                raw.writelines(f"{d / 1_000_000:.6f}\n" for d in durations)
        except OSError as exc:
            log(f"Unable to write raw output file: {exc}")


async def _rtt(nc: Client, which: str) -> int:
    before = time.perf_counter_ns()
    try:
        await nc.flush(timeout=max(1, int(current_settings().timeout_s)))
    except Exception as exc:
        raise CliError(f"could not determin RTT for {which} connection: {exc}") from exc
    return time.perf_counter_ns() - before


async def _wait_for_route(publisher: Client, subscriber: Client) -> None:
    """With two servers, publish test messages until one crosses (at most ROUTE_WAIT_S)."""
    if server_info(publisher).get("server_id") == server_info(subscriber).get("server_id"):
        return
    routed = asyncio.Event()

    async def arrived(_msg: Msg) -> None:
        routed.set()

    subject = subscriber.new_inbox()
    sub = await subscriber.subscribe(subject, cb=arrived)
    await flush_ordered(subscriber)
    deadline = time.monotonic() + ROUTE_WAIT_S
    try:
        while not routed.is_set():
            if time.monotonic() > deadline:
                raise CliError("couldn't receive end-to-end test message")
            await publisher.publish(subject, b"")
            try:
                await asyncio.wait_for(routed.wait(), 0.01)
            except TimeoutError:
                pass
    finally:
        await sub.unsubscribe()
