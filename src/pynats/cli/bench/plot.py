"""`nats bench --plot FILE.png|FILE.html`: throughput over time and a latency histogram.

Beyond natscli. The throughput curve comes from the progress counters the parent process
samples every 100 ms (all clients together, and each client when there are few); the
histogram shows the per-operation latencies the report summarises. PNG is a plain image;
HTML is a self-contained page with the chart as inline SVG and the report under it.

matplotlib is optional (`pip install 'pynats[plot]'`); without it --plot fails before the
benchmark starts, so no run is wasted.
"""

from __future__ import annotations

import html
import io
import itertools
from pathlib import Path
from typing import Any

from pynats.cli.bench.report import Benchmark
from pynats.cli.ui.errors import CliError

FORMATS = (".png", ".html")
PER_CLIENT_LINES_MAX = 8
HISTOGRAM_BINS = 50


def check_target(path: str) -> None:
    """Fail early on a file type we cannot draw, or when matplotlib is missing."""
    if Path(path).suffix.lower() not in FORMATS:
        raise CliError(f"--plot needs a file name ending in .png or .html, not {path!r}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CliError(
            "--plot needs matplotlib, install it with: pip install 'pynats[plot]'"
        ) from None


def rates(timeline: list[tuple[float, list[float]]]) -> tuple[list[float], list[list[float]]]:
    """Per-interval message rates from cumulative counters: (mid-times, rates per client)."""
    times: list[float] = []
    per_client: list[list[float]] = []
    for (t0, done0), (t1, done1) in itertools.pairwise(timeline):
        span = t1 - t0
        if span <= 0:
            continue
        times.append((t0 + t1) / 2)
        per_client.append([(b - a) / span for a, b in zip(done0, done1, strict=True)])
    return times, per_client


def write_plot(path: str, benchmark: Benchmark, timeline: list[tuple[float, list[float]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8))
    figure.suptitle(f"NATS {benchmark.label}")
    _draw_throughput(top, timeline)
    _draw_latencies(bottom, benchmark)
    figure.tight_layout()
    try:
        if path.lower().endswith(".png"):
            figure.savefig(path, dpi=100)
        else:
            Path(path).write_text(_html_page(figure, benchmark))
    except OSError as exc:
        raise CliError(f"writing file {path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(figure)


def _draw_throughput(axes: Any, timeline: list[tuple[float, list[float]]]) -> None:
    times, per_client = rates(timeline)
    axes.set_title("Throughput over time")
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("msgs/sec")
    if not times:
        axes.text(0.5, 0.5, "run too short to sample", ha="center", transform=axes.transAxes)
        return
    axes.plot(times, [sum(row) for row in per_client], label="all clients", linewidth=2)
    clients = len(per_client[0])
    if 1 < clients <= PER_CLIENT_LINES_MAX:
        for index in range(clients):
            axes.plot(times, [row[index] for row in per_client], label=f"[{index + 1}]", alpha=0.6)
    axes.legend(loc="best")
    axes.grid(True, alpha=0.3)


def _draw_latencies(axes: Any, benchmark: Benchmark) -> None:
    latencies = [value / 1000 for value in benchmark.latencies_ns]
    axes.set_title("Latency per operation")
    axes.set_xlabel("microseconds")
    axes.set_ylabel("operations (log scale)")
    if not latencies:
        axes.text(
            0.5,
            0.5,
            "no per-operation latencies in this mode",
            ha="center",
            transform=axes.transAxes,
        )
        return
    axes.hist(latencies, bins=HISTOGRAM_BINS)
    axes.set_yscale("log")  # long tails stay visible next to the bulk
    axes.grid(True, alpha=0.3)


def _html_page(figure: Any, benchmark: Benchmark) -> str:
    svg = io.StringIO()
    figure.savefig(svg, format="svg")
    chart = svg.getvalue()
    chart = chart[chart.find("<svg") :]
    title = html.escape(f"NATS {benchmark.label}")
    report = html.escape(benchmark.report())
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n"
        f"{chart}\n<pre>{report}</pre>\n</body></html>\n"
    )
