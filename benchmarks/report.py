"""Turning results into the comparison table and the JSON record.

The ratio is always candidate / reference (pynats / Go, or generator / Go in the self-test):
above 1 is better for throughput, below 1 is better for latency and memory.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from loadgen import Latency, Memory, Throughput
from scenarios import Result, Scenario, Settings


@dataclass(frozen=True)
class Row:
    """One scenario at one size, with each contender's result or failure text."""

    scenario: Scenario
    title: str
    size: int | None
    results: dict[str, Result | str]


@dataclass(frozen=True)
class Metric:
    label: str
    value: float
    unit: str


def metrics(title: str, unit: str, result: Result) -> list[Metric]:
    """The numbers a result contributes to the table (request/reply gives two lines)."""
    if isinstance(result, Throughput):
        return [Metric(title, result.rate, unit)]
    if isinstance(result, Latency):
        return [
            Metric(f"{title} p50", result.p50_us, "µs"),
            Metric(f"{title} p99", result.p99_us, "µs"),
        ]
    if isinstance(result, Memory):
        return [Metric(title, result.per_connection_kb, "KB/conn")]
    raise TypeError(f"unknown result {result!r}")


def size_label(size: int | None) -> str:
    if size is None:
        return "-"
    return f"{size // 1024} KB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def format_value(value: float, unit: str) -> str:
    if unit == "KB/conn":
        return f"{value:,.1f} {unit}"
    return f"{value:,.0f} {unit}"


def render_table(rows: list[Row], names: list[str]) -> str:
    """Scenario, size, one column per contender, then candidate/reference when both ran."""
    header = ["scenario", "size", *names]
    if len(names) == 2:
        header.append(f"{names[1]}/{names[0]}")
    lines: list[list[str]] = [header]
    notes: list[str] = []
    for row in rows:
        lines.extend(_row_lines(row, names, notes))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        cells = [
            cell.ljust(w) if c < 2 else cell.rjust(w)
            for c, (cell, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    out.extend(notes)
    return "\n".join(out)


def _row_lines(row: Row, names: list[str], notes: list[str]) -> list[list[str]]:
    per_name: dict[str, list[Metric] | str] = {}
    for name in names:
        result = row.results.get(name, "not run")
        per_name[name] = (
            result if isinstance(result, str) else metrics(row.title, row.scenario.unit, result)
        )
    shapes = [m for m in per_name.values() if not isinstance(m, str)]
    labels = [m.label for m in shapes[0]] if shapes else [row.title]
    lines = []
    for i, label in enumerate(labels):
        cells = [label, size_label(row.size)]
        values: list[float | None] = []
        for name in names:
            got = per_name[name]
            if isinstance(got, str):
                notes.append(f"  [{len(notes) + 1}] {name}, {label} {size_label(row.size)}: {got}")
                cells.append(f"failed [{len(notes)}]")
                values.append(None)
            else:
                cells.append(format_value(got[i].value, got[i].unit))
                values.append(got[i].value)
        if len(names) == 2:
            ref, cand = values
            cells.append(f"{cand / ref:.2f}x" if ref and cand is not None else "-")
        lines.append(cells)
    return lines


def result_json(result: Result | str) -> dict[str, object]:
    if isinstance(result, str):
        return {"error": result}
    data: dict[str, object] = asdict(result)
    if isinstance(result, Throughput):
        data["rate"] = result.rate
    elif isinstance(result, Memory):
        data["per_connection_kb"] = result.per_connection_kb
    return data


def write_json(
    path: Path,
    rows: list[Row],
    names: list[str],
    commands: dict[str, str],
    settings: Settings,
    repeat: int,
    extra: dict[str, object] | None = None,
) -> None:
    """Everything needed to compare this run with a later one; `extra` goes into `meta`."""
    record: dict[str, object] = {
        "meta": {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "reference": names[0],
            "candidate": names[1] if len(names) > 1 else None,
            "commands": commands,
            "settings": asdict(settings),
            "repeat": repeat,
            **(extra or {}),
        },
        "results": [
            {
                "scenario": row.scenario.key,
                "title": row.title,
                "unit": row.scenario.unit,
                "size": row.size,
                "results": {name: result_json(res) for name, res in row.results.items()},
            }
            for row in rows
        ],
    }
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
