"""The results of a `nats bench` run: one sample per client, natscli's report block and CSV.

Definitions (the same as natscli's, so numbers compare across the two tools):
* a client's rate is its messages divided by its own start-to-end time, truncated to an integer;
  its throughput is messages x --size bytes over the same time;
* the aggregate uses the earliest start and the latest end of all clients;
* "message rates min | avg | max | stddev" are over the per-client rates (population stddev);
* latencies are per operation (a publish, a request, a get, a batch...), in microseconds, and a
  percentile p is the sorted latency at index ceil(p/100 x n) - 1.

One deliberate difference: natscli's latency standard deviation mixes nanoseconds and
microseconds in one formula; here it is the plain population standard deviation.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from pynats.cli.ui.humanize import comma, float_comma, ibytes

NAME = "NATS"
NOTHING_TO_REPORT = "No publisher or subscribers. Nothing to report."
CSV_HEADER = [
    "#RunID",
    "ClientID",
    "MsgCount",
    "MsgBytes",
    "MsgsPerSec",
    "BytesPerSec",
    "DurationSecs",
]
CSV_LATENCY_HEADER = [
    "MinLatencyMicroSecs",
    "AvgLatencyMicroSecs",
    "MaxLatencyMicroSecs",
    "P50LatencyMicroSecs",
    "P90LatencyMicroSecs",
    "P99LatencyMicroSecs",
    "P99.9LatencyMicroSecs",
    "StdDevLatencyMicroSecs",
]


@dataclass
class Sample:
    """What one client did: its job, its time window (monotonic seconds) and its latencies."""

    job_msgs: int
    msg_size: int
    start: float
    end: float
    latencies_ns: Sequence[float] = ()
    io_msgs: int = 0
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.latencies_ns = sorted(self.latencies_ns)

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-9)

    @property
    def msg_bytes(self) -> int:
        return self.job_msgs * self.msg_size

    @property
    def rate(self) -> int:
        return int(self.job_msgs / self.seconds)

    @property
    def throughput(self) -> float:
        return self.msg_bytes / self.seconds

    def text(self) -> str:
        """`<rate> msgs/sec ~ <bytes>/sec` plus the latency summary when there is one."""
        head = f"{comma(self.rate)} msgs/sec ~ {ibytes(self.throughput)}/sec"
        if not self.latencies_ns:
            return head
        lat = LatencyStats.of(self.latencies_ns)
        return (
            f"{head} ~ min: {us(lat.min)}us ~ avg: {us(lat.avg)}us ~ max: {us(lat.max)}us"
            f" ~ P50: {us(lat.p50)}us ~ P90: {us(lat.p90)}us ~ P99: {us(lat.p99)}us"
            f" ~ P99.9: {us(lat.p999)}us"
        )


@dataclass(frozen=True)
class LatencyStats:
    """Summary of sorted latencies, in microseconds."""

    min: float
    avg: float
    max: float
    p50: float
    p90: float
    p99: float
    p999: float
    stddev: float

    @classmethod
    def of(cls, ordered_ns: Sequence[float]) -> LatencyStats:
        if not ordered_ns:
            return cls(0, 0, 0, 0, 0, 0, 0, 0)
        count = len(ordered_ns)
        mean = sum(ordered_ns) / count
        variance = sum((value - mean) ** 2 for value in ordered_ns) / count
        return cls(
            min=ordered_ns[0] / 1000,
            avg=mean / 1000,
            max=ordered_ns[-1] / 1000,
            p50=percentile(ordered_ns, 50) / 1000,
            p90=percentile(ordered_ns, 90) / 1000,
            p99=percentile(ordered_ns, 99) / 1000,
            p999=percentile(ordered_ns, 99.9) / 1000,
            stddev=math.sqrt(variance) / 1000,
        )


def percentile(ordered: Sequence[float], pct: float) -> float:
    """natscli's percentile: the value at index ceil(pct/100 x n) - 1 of the sorted list."""
    index = max(math.ceil(pct / 100 * len(ordered)) - 1, 0)
    return ordered[index]


def us(value: float) -> str:
    """Microseconds as natscli prints them: separators, at most two decimals."""
    return float_comma(value, 2)


@dataclass
class Benchmark:
    """All samples of one run, and their natscli-style renderings."""

    label: str
    prefix: str
    run_id: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def start(self) -> float:
        return min(s.start for s in self.samples)

    @property
    def end(self) -> float:
        return max(s.end for s in self.samples)

    @property
    def job_msgs(self) -> int:
        return sum(s.job_msgs for s in self.samples)

    @property
    def msg_bytes(self) -> int:
        return sum(s.msg_bytes for s in self.samples)

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-9)

    @property
    def rate(self) -> int:
        return int(self.job_msgs / self.seconds)

    @property
    def throughput(self) -> float:
        return self.msg_bytes / self.seconds

    @functools.cached_property
    def latencies_ns(self) -> list[float]:
        return sorted(value for s in self.samples for value in s.latencies_ns)

    def rate_stats(self) -> tuple[int, int, int, int]:
        """min, avg, max and population stddev of the per-client rates (natscli's integers)."""
        rates = [s.rate for s in self.samples]
        average = sum(rates) // len(rates)
        variance = sum((r - average) ** 2 for r in rates) / len(rates)
        return min(rates), average, max(rates), int(math.sqrt(variance))

    def report(self) -> str:
        """The block natscli prints after a run (ends with a newline)."""
        if not self.samples:
            return NOTHING_TO_REPORT
        if len(self.samples) == 1:
            merged = Sample(
                self.job_msgs,
                self.samples[0].msg_size,
                self.start,
                self.end,
                self.latencies_ns,
            )
            return f"{NAME} {self.label} stats: {merged.text()}\n"
        lines = [
            f"  [{number}] {sample.text()} ({comma(sample.job_msgs)} msgs)"
            for number, sample in enumerate(self.samples, 1)
        ]
        low, average, high, spread = self.rate_stats()
        lines.append("")
        lines.append(
            f" {NAME} {self.label} aggregated stats: {comma(self.rate)} msgs/sec"
            f" ~ {ibytes(self.throughput)}/sec"
        )
        lines.append(
            f" message rates min {comma(low)} | avg {comma(average)} | max {comma(high)}"
            f" | stddev {comma(spread)} msgs"
        )
        latencies = self.latencies_ns
        if latencies:
            lat = LatencyStats.of(latencies)
            lines.append(
                f" latencies per operation min {us(lat.min)}us | avg {us(lat.avg)}us"
                f" | max {us(lat.max)}us | stddev {us(lat.stddev)}us | P50 {us(lat.p50)}us"
                f" | P90 {us(lat.p90)}us | P99 {us(lat.p99)}us | P99.9: {us(lat.p999)}us"
            )
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        """One row per client, natscli's columns (latency columns when there are latencies)."""
        with_latency = any(s.latencies_ns for s in self.samples)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_HEADER + (CSV_LATENCY_HEADER if with_latency else []))
        for number, sample in enumerate(self.samples):
            row = [
                self.run_id,
                f"{self.prefix}{number}",
                str(sample.io_msgs),
                str(sample.msg_bytes),
                str(sample.rate),
                f"{sample.throughput:f}",
                f"{sample.seconds:f}",
            ]
            if with_latency:
                lat = LatencyStats.of(sample.latencies_ns)
                row += [
                    f"{value:f}"
                    for value in (
                        lat.min,
                        lat.avg,
                        lat.max,
                        lat.p50,
                        lat.p90,
                        lat.p99,
                        lat.p999,
                        lat.stddev,
                    )
                ]
            writer.writerow(row)
        return buffer.getvalue()
