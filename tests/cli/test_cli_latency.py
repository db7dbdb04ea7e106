"""`nats latency`: publish through one connection, receive through another, report percentiles."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.conftest import NatsCli
from tests.support.servers import RunningServer

TIME = r"\d\d:\d\d:\d\d"
DURATION = r"[0-9.]+(ns|µs|ms|s)"


def test_latency_reports_rtts_percentiles_and_rates(
    nats: NatsCli, core_server: RunningServer, tmp_path: Path
) -> None:
    histogram = tmp_path / "hist"
    result = nats.run(
        "latency",
        "--server-b",
        core_server.url,
        "--rate",
        "200",
        "--duration",
        "1s",
        "--size",
        "16",
        "--histogram",
        str(histogram),
    )
    assert result.returncode == 0, result
    assert result.stdout == ""
    lines = [line[9:] for line in result.stderr.splitlines()]
    assert all(re.match(TIME, line) for line in result.stderr.splitlines())
    assert re.fullmatch(rf"Pub Server RTT : {DURATION}", lines[1])
    assert re.fullmatch(rf"Sub Server RTT : {DURATION}", lines[2])
    assert lines[3:7] == [
        "Message Payload: 16B",
        "Target Duration: 1s",
        "Target Msgs/Sec: 200",
        "Target Band/Sec: 6.3K",
    ]
    assert lines[8] == "HDR Percentiles:"
    assert [line.split(":")[0] for line in lines[9:20]] == [
        "10",
        "50",
        "75",
        "90",
        "99",
        "99.9",
        "99.99",
        "99.999",
        "99.9999",
        "99.99999",
        "100",
    ]
    assert re.fullmatch(r"Actual Msgs/Sec: \d+", lines[21])
    assert re.fullmatch(rf"Median Latency : {DURATION}", lines[24])
    assert lines[-1].startswith("Last Recv Wall Time: ")
    assert len((tmp_path / "hist.raw").read_text().splitlines()) == 200


def test_latency_rejects_small_payloads(nats: NatsCli, core_server: RunningServer) -> None:
    result = nats.run("latency", "--server-b", core_server.url, "--size", "4")
    assert result.returncode == 1
    assert result.stderr == "nats: error: message Payload Size must be at least 8 bytes\n"
    missing = nats.run("latency")
    assert missing.returncode == 1
    assert "required flag --server-b not provided" in missing.stderr
