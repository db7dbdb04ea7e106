"""`nats bench` Core NATS modes (pub, sub, service) against both servers, and its errors.

The counts are what is checked: every client reports the messages it was given, the CSV
parses and adds up. Rates are printed, never asserted.
"""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
import trustme

from tests.cli.conftest import NatsCli, closed_port, wait_for_interest
from tests.support.servers import RunningServer, start_server

TIME = r"\d\d:\d\d:\d\d"
NUM = r"[\d,]+"
SIZE = r"[\d.]+ (?:B|KiB|MiB|GiB)"
US = r"[\d,.]+us"
LATENCIES = (
    rf" ~ min: {US} ~ avg: {US} ~ max: {US} ~ P50: {US} ~ P90: {US} ~ P99: {US} ~ P99\.9: {US}"
)
CSV_COLUMNS = [
    "#RunID",
    "ClientID",
    "MsgCount",
    "MsgBytes",
    "MsgsPerSec",
    "BytesPerSec",
    "DurationSecs",
]


def csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def client_counts(stdout: str) -> list[int]:
    """The `(N msgs)` of every per-client report line."""
    return [
        int(n.replace(",", ""))
        for n in re.findall(r"^  \[\d+\] .* \(([\d,]+) msgs\)$", stdout, re.M)
    ]


def test_pub_prints_the_banner_and_one_client_stats_line(nats: NatsCli) -> None:
    result = nats.run(
        "bench", "pub", "bench.one", "--msgs", "5000", "--size", "16", "--no-progress"
    )
    assert result.returncode == 0, result
    assert re.fullmatch(
        rf"{TIME} Starting Core NATS publisher benchmark \[clients=1, msg-size=16 B, "
        r"msgs=5,000, multi-subject=false, multi-subject-max=100,000, "
        r"multi-subject-randomize=false, sleep=0s, subject=bench\.one\]\n"
        rf"{TIME} \[1\] Starting Core NATS publisher, publishing 5,000 messages\n",
        result.stderr,
    ), result
    assert re.fullmatch(
        rf"\nNATS Core NATS publisher stats: {NUM} msgs/sec ~ {SIZE}/sec{LATENCIES}\n\n",
        result.stdout,
    ), result


def test_pub_splits_messages_over_clients_and_workers_and_saves_csv(
    nats: NatsCli, tmp_path: Path
) -> None:
    target = tmp_path / "pub.csv"
    result = nats.run(
        "bench", "pub", "bench.split", "--msgs", "1000", "--clients", "3", "--workers", "2",
        "--no-progress", "--csv", str(target),
    )  # fmt: skip
    assert result.returncode == 0, result
    for number, count in ((1, "334"), (2, "333"), (3, "333")):
        assert (
            f"[{number}] Starting Core NATS publisher, publishing {count} messages" in result.stderr
        )
    assert client_counts(result.stdout) == [334, 333, 333]
    assert re.search(
        rf"^ NATS Core NATS publisher aggregated stats: {NUM} msgs/sec ~ {SIZE}/sec\n"
        rf" message rates min {NUM} \| avg {NUM} \| max {NUM} \| stddev {NUM} msgs\n"
        rf" latencies per operation min {US} \| avg {US} \| max {US} \| stddev {US} \| "
        rf"P50 {US} \| P90 {US} \| P99 {US} \| P99\.9: {US}\n",
        result.stdout,
        re.M,
    ), result
    assert result.stdout.endswith(f"\nSaved metric data in csv file {target}\n")
    header = target.read_text().splitlines()[0].split(",")
    assert header[:7] == CSV_COLUMNS
    assert header[7:] == [
        "MinLatencyMicroSecs", "AvgLatencyMicroSecs", "MaxLatencyMicroSecs", "P50LatencyMicroSecs",
        "P90LatencyMicroSecs", "P99LatencyMicroSecs", "P99.9LatencyMicroSecs",
        "StdDevLatencyMicroSecs",
    ]  # fmt: skip
    rows = csv_rows(target)
    assert [row["ClientID"] for row in rows] == ["P0", "P1", "P2"]
    assert [int(row["MsgCount"]) for row in rows] == [334, 333, 333]
    assert [int(row["MsgBytes"]) for row in rows] == [334 * 128, 333 * 128, 333 * 128]
    assert len({row["#RunID"] for row in rows}) == 1
    assert all(float(row["DurationSecs"]) > 0 for row in rows)


def test_each_subscriber_counts_every_published_message(
    nats: NatsCli, core_server: RunningServer, tmp_path: Path
) -> None:
    target = tmp_path / "sub.csv"
    sub = nats.spawn(
        "bench", "sub", "bench.fan", "--msgs", "20000", "--clients", "2", "--size", "16",
        "--no-progress", "--csv", str(target),
    )  # fmt: skip
    wait_for_interest(core_server, "bench.fan", 2)
    pub = nats.run("bench", "pub", "bench.fan", "--msgs", "20000", "--size", "16", "--no-progress")
    assert pub.returncode == 0, pub
    assert sub.wait() == 0, sub.stderr
    assert "[2] Starting Core NATS subscriber, expecting 20,000 messages" in sub.stderr
    assert client_counts(sub.stdout) == [20000, 20000]
    assert " NATS Core NATS subscriber aggregated stats: " in sub.stdout
    assert "latencies per operation" not in sub.stdout
    rows = csv_rows(target)
    assert [row["ClientID"] for row in rows] == ["S0", "S1"]
    assert [int(row["MsgCount"]) for row in rows] == [20000, 20000]
    assert list(rows[0]) == CSV_COLUMNS


def test_multisubject_publishing_with_headers_reaches_a_wildcard_subscriber(
    nats: NatsCli, core_server: RunningServer, tmp_path: Path
) -> None:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"%d {{Count}} 100%\x00")
    sub = nats.spawn(
        "bench", "sub", "bench.multi", "--multisubject", "--msgs", "3000", "--no-progress"
    )
    wait_for_interest(core_server, "bench.multi.*")
    pub = nats.run(
        "bench", "pub", "bench.multi", "--multisubject", "--multisubjectmax", "10",
        "--msgs", "3000", "--clients", "2", "-H", "Trace:abc", "--payload", str(payload),
        "--no-progress",
    )  # fmt: skip
    assert pub.returncode == 0, pub
    assert "multi-subject=true, multi-subject-max=10," in pub.stderr
    assert "subject=bench.multi.*]" in pub.stderr
    assert sub.wait() == 0, sub.stderr
    assert re.fullmatch(
        rf"\nNATS Core NATS subscriber stats: {NUM} msgs/sec ~ {SIZE}/sec\n\n", sub.stdout
    ), sub.stdout


def test_throughput_and_duration_decide_how_many_messages_are_sent(
    nats: NatsCli, tmp_path: Path
) -> None:
    target = tmp_path / "paced.csv"
    result = nats.run(
        "bench", "pub", "bench.paced", "--throughput", "2000", "--duration", "250ms",
        "--no-progress", "--csv", str(target),
    )  # fmt: skip
    assert result.returncode == 0, result
    assert "msgs=500," in result.stderr
    assert "throughput=2,000" in result.stderr and "duration=250ms" in result.stderr
    (row,) = csv_rows(target)
    assert int(row["MsgCount"]) == 500
    # pacing can only slow a publisher down: 500 messages at 2,000/s take a quarter second
    assert float(row["DurationSecs"]) >= 0.2


def test_service_requests_are_answered_by_bench_service_serve(
    nats: NatsCli, core_server: RunningServer
) -> None:
    serve = nats.spawn("bench", "service", "serve", "bench.svc", "--clients", "2")
    wait_for_interest(core_server, "bench.svc", 2)
    assert "[2] Starting Core NATS service server, hit control-c to stop" in serve.stderr
    result = nats.run(
        "bench", "service", "request", "bench.svc", "--msgs", "300", "--clients", "2",
        "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result
    assert "[1] Starting Core NATS service requester, requesting 150 messages" in result.stderr
    assert client_counts(result.stdout) == [150, 150]
    assert re.search(
        rf"^  \[1\] {NUM} msgs/sec ~ {SIZE}/sec{LATENCIES} \(150 msgs\)$", result.stdout, re.M
    )
    serve.interrupt()
    assert serve.wait() == 130
    assert "Traceback" not in serve.stderr


def test_ctrl_c_ends_bench_service_serve_started_with_sigint_ignored(
    nats: NatsCli, core_server: RunningServer
) -> None:
    """A run that lasts until Ctrl-C must hear it even when it inherited SIGINT ignored (a
    background job, or a test runner's worker): natscli's signal.Notify takes it back too."""
    serve = nats.spawn("bench", "service", "serve", "bench.svc", sigint_ignored=True)
    wait_for_interest(core_server, "bench.svc", 1)
    serve.interrupt()
    assert serve.wait() == 130
    assert "Traceback" not in serve.stderr


def test_service_request_without_a_service_fails_like_natscli(nats: NatsCli) -> None:
    result = nats.run("bench", "service", "request", "bench.nobody", "--msgs", "5", "--no-progress")
    assert result.returncode == 1
    assert result.stderr.endswith(
        "Error from client 0: requesting: requesting: nats: no responders available for request\n"
        "nats: error: requesting: requesting: nats: no responders available for request\n"
    ), result


def test_progress_bars_are_drawn_on_a_terminal(nats: NatsCli) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "pynats.cli", "bench", "pub", "bench.tty", "--msgs", "3000", "--clients", "2",
         "--throughput", "6000", "-s", str(nats.url)],
        env=nats.environment({}),
        encoding="utf-8",
        timeout=15,
        dimensions=(24, 100),
    )  # fmt: skip
    child.expect(r"Publishing +\d+s \[=*>?-*\] +\d+%")
    child.expect(r"Finished +\d+s \[=+\] 100%")
    child.expect(r"NATS Core NATS publisher aggregated stats")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_plot_draws_throughput_and_latencies(nats: NatsCli, tmp_path: Path) -> None:
    """matplotlib is a test dependency, so the files are always drawn here (the error without
    it is checked by a test that blocks the import)."""
    page = tmp_path / "run.html"
    image = tmp_path / "run.png"
    html_run = nats.run(
        "bench", "pub", "bench.plot", "--msgs", "2000", "--no-progress", "--plot", str(page)
    )
    png_run = nats.run(
        "bench", "pub", "bench.plot", "--msgs", "2000", "--no-progress", "--plot", str(image)
    )
    assert html_run.returncode == 0, html_run
    assert html_run.stdout.endswith(f"Saved plot in file {page}\n")
    text = page.read_text()
    assert "<svg" in text and "Throughput over time" in text and "Latency per operation" in text
    assert "NATS Core NATS publisher stats:" in text
    assert png_run.returncode == 0, png_run
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def secured_server(
    server_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, str]]:
    """A server requiring TLS and a user/password; yields it and its CA file."""
    base = tmp_path_factory.mktemp("bench-pki")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(base / "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(base / "cert.pem"))
    cert.private_key_pem.write_to_path(str(base / "key.pem"))
    server = start_server(
        ["--user", "alice", "--pass", "s3cret", "--tls", "--tlscert", str(base / "cert.pem"),
         "--tlskey", str(base / "key.pem")],
        oracle=(server_kind == "go"),
        http_port=-1,
    )  # fmt: skip
    yield server, str(base / "ca.pem")
    server.stop()


def test_raw_clients_use_tls_and_credentials(
    cli: NatsCli, secured_server: tuple[RunningServer, str]
) -> None:
    server, ca = secured_server
    flags = ("-s", f"tls://127.0.0.1:{server.port}", "--tlsca", ca, "--user", "alice")
    sub = cli.spawn(
        "bench",
        "sub",
        "bench.tls",
        "--msgs",
        "500",
        "--no-progress",
        *flags,
        "--password",
        "s3cret",
    )
    wait_for_interest(server, "bench.tls")
    pub = cli.run(
        "bench",
        "pub",
        "bench.tls",
        "--msgs",
        "500",
        "--no-progress",
        *flags,
        "--password",
        "s3cret",
    )
    assert pub.returncode == 0, pub
    assert sub.wait() == 0, sub.stderr
    assert "NATS Core NATS subscriber stats: " in sub.stdout
    wrong = cli.run("bench", "pub", "bench.tls", "--msgs", "5", *flags, "--password", "nope")
    assert wrong.returncode == 1
    assert wrong.stderr.endswith("\nnats: error: nats: Authorization Violation\n"), wrong


# -- errors: natscli's messages and exit codes (no server needed) ---------------------------------


def test_plot_without_matplotlib_fails_before_running(cli: NatsCli, tmp_path: Path) -> None:
    blocker = tmp_path / "blocked" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('matplotlib is not installed')\n")
    result = cli.run(
        "bench", "pub", "x", "-s", f"nats://127.0.0.1:{closed_port()}", "--plot", "out.png",
        env={"PYTHONPATH": str(blocker.parent)},
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        "nats: error: --plot needs matplotlib, install it with: pip install 'pynats[plot]'\n"
    )


def test_invalid_values_are_refused_with_natscli_messages(cli: NatsCli) -> None:
    cases = {
        ("pub", "x", "--msgs", "0"): "number of messages should be greater than 0",
        ("sub", "x", "--size", "12XB"): (
            "can not parse or invalid the value specified for the message size: 12XB"
        ),
        ("pub", "x", "--duration", "1s"): "--duration requires --throughput to be set",
        ("js", "pub", "sync", "x", "--maxbytes", "0"): (
            "can not parse or invalid the value specified for the max stream/bucket size: 0"
        ),
        ("pub", "x", "--plot", "out.txt"): (
            "--plot needs a file name ending in .png or .html, not 'out.txt'"
        ),
    }
    for args, message in cases.items():
        result = cli.run("bench", *args)
        assert result.returncode == 1, result
        assert result.stderr == f"nats: error: {message}\n", result
        assert result.stdout == ""


def test_bad_flags_print_the_usage(cli: NatsCli) -> None:
    result = cli.run("bench", "pub", "x", "--bogus")
    assert result.returncode == 1
    assert result.stderr == "error: unknown long flag '--bogus'\n\n"
    assert "--multisubject" in result.stdout and "--throughput" in result.stdout
    missing = cli.run("bench", "pub")
    assert missing.returncode == 1
    assert missing.stderr == "error: required argument 'subject' not provided\n\n"
    enum = cli.run("bench", "js", "consume", "--acks", "maybe")
    assert enum.returncode == 1
    assert "--acks" in enum.stderr and "maybe" in enum.stderr
    group = cli.run("bench")
    assert group.returncode == 1
    assert group.stderr.startswith("error: a subcommand from the list below is required")


def test_help_explains_how_to_use_several_processes(cli: NatsCli) -> None:
    result = cli.run("bench", "--help")
    assert result.returncode == 0
    assert "--workers" in result.stdout and "--clients" in result.stdout
    assert "nats bench pub test --size 16 --msgs 5000000 --clients 2" in result.stdout


def test_unreachable_server_fails_with_the_connection_error(cli: NatsCli) -> None:
    url = f"nats://127.0.0.1:{closed_port()}"
    pub = cli.run("bench", "pub", "x", "-s", url, "--msgs", "10")
    assert pub.returncode == 1
    assert pub.stderr.endswith("\nnats: error: nats: no servers available for connection\n"), pub
    sub = cli.run("bench", "sub", "x", "-s", url, "--msgs", "10")
    assert sub.returncode == 1
    assert sub.stderr.endswith(
        "\nnats: error: client number 0 failed to connect: "
        "nats: no servers available for connection\n"
    ), sub
    js = cli.run("bench", "js", "pub", "sync", "x", "-s", url, "--msgs", "10")
    assert js.returncode == 1
    assert js.stderr.endswith("\nnats: error: nats: no servers available for connection\n"), js


def test_a_killed_run_leaves_no_worker_behind(nats: NatsCli, core_server: RunningServer) -> None:
    sub = nats.spawn("bench", "sub", "bench.orphans", "--clients", "2", "--workers", "2")
    wait_for_interest(core_server, "bench.orphans", 2)
    sub.proc.send_signal(signal.SIGKILL)
    sub.proc.wait()
    # the workers see their parent's pipe close and exit: the server loses both subscribers
    deadline = time.monotonic() + 10
    while (left := subscriptions(core_server, "bench.orphans")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == 0, f"{left} subscriptions of killed workers still present"


def subscriptions(server: RunningServer, subject: str) -> int:
    with urllib.request.urlopen(f"{server.monitor_url}/connz?subs=1", timeout=2) as response:
        connz = json.load(response)
    return sum(
        (c.get("subscriptions_list") or []).count(subject) for c in connz.get("connections") or []
    )
