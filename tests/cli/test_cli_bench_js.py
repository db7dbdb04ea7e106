"""`nats bench js ...` and `nats bench kv ...` against servers with JetStream.

Each test uses its own stream (or bucket), fills it with a `js pub` mode and reads it back with
a consumer or getter mode; the promise checked is that every client handles the number of
messages it was given and that the stream really holds what was published.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import NatsCli
from tests.cli.test_cli_bench import LATENCIES, NUM, SIZE, client_counts, csv_rows
from tests.support.servers import RunningServer

TIME = r"\d\d:\d\d:\d\d"


@pytest.fixture
def js(tmp_path: Path, js_server: RunningServer) -> Iterator[NatsCli]:
    runner = NatsCli(tmp_path, js_server.url)
    yield runner
    runner.cleanup()


def stream_state(js: NatsCli, stream: str) -> dict[str, int]:
    result = js.run("request", f"$JS.API.STREAM.INFO.{stream}", "", "--raw")
    assert result.returncode == 0, result
    return json.loads(result.stdout)["state"]


def fill(js: NatsCli, stream: str, subject: str, msgs: int) -> None:
    """A memory stream `stream` on `subject` holding `msgs` messages (async publisher)."""
    result = js.run(
        "bench", "js", "pub", "async", subject, "--stream", stream, "--create", "--storage",
        "memory", "--purge", "--msgs", str(msgs), "--batch", "100", "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result
    assert stream_state(js, stream)["messages"] == msgs


def test_js_sync_publish_creates_the_stream_and_stores_every_message(
    js: NatsCli, tmp_path: Path
) -> None:
    target = tmp_path / "sync.csv"
    result = js.run(
        "bench", "js", "pub", "sync", "bench.sync", "--stream", "SYNC", "--create",
        "--storage", "memory", "--dedup", "--msgs", "300", "--clients", "2", "--no-progress",
        "--csv", str(target),
    )  # fmt: skip
    assert result.returncode == 0, result
    assert re.match(
        rf"{TIME} Starting JetStream synchronous publisher benchmark \[batch=500, clients=2, "
        r"dedup-window=2m0s, deduplication=true, max-bytes=1,073,741,824, msg-size=128 B, "
        r"msgs=300, multi-subject=false, multi-subject-max=100,000, "
        r"multi-subject-randomize=false, purge=false, replicas=1, sleep=0s, storage=memory, "
        r"stream=SYNC, subject=bench\.sync\]\n"
        rf"{TIME} Using stream: SYNC\n",
        result.stderr,
    ), result
    assert client_counts(result.stdout) == [150, 150]
    assert re.search(
        rf"^  \[2\] {NUM} msgs/sec ~ {SIZE}/sec{LATENCIES} \(150 msgs\)$", result.stdout, re.M
    )
    assert stream_state(js, "SYNC")["messages"] == 300
    rows = csv_rows(target)
    # natscli's MsgCount is the connection's messages in and out: a publish and its ack
    assert [int(row["MsgCount"]) for row in rows] == [300, 300]


def test_js_async_and_atomic_publishers_store_their_batches(js: NatsCli, server_kind: str) -> None:
    fill(js, "ASYNC", "bench.async", 450)
    atomic = js.run(
        "bench", "js", "pub", "atomic", "bench.async", "--stream", "ASYNC", "--msgs", "250",
        "--batch", "100", "--no-progress",
    )  # fmt: skip
    assert atomic.returncode == 0, atomic
    assert re.fullmatch(
        rf"\nNATS JetStream atomic batch publisher stats: {NUM} msgs/sec ~ {SIZE}/sec{LATENCIES}\n\n",
        atomic.stdout,
    ), atomic
    assert stream_state(js, "ASYNC")["messages"] == 700


def test_publishing_to_a_missing_stream_fails(js: NatsCli) -> None:
    result = js.run("bench", "js", "pub", "sync", "bench.none", "--stream", "NOPE", "--msgs", "5")
    assert result.returncode == 1
    assert result.stderr.endswith(
        "nats: error: could not access stream NOPE: nats: stream not found\n"
    ), result


def test_ordered_consumers_each_read_the_whole_stream(js: NatsCli) -> None:
    fill(js, "ORDERED", "bench.ordered", 400)
    result = js.run(
        "bench", "js", "ordered", "--stream", "ORDERED", "--msgs", "400", "--clients", "2",
        "--batch", "50", "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result
    assert (
        "[2] Starting JetStream ordered ephemeral consumer, expecting 400 messages" in result.stderr
    )
    assert client_counts(result.stdout) == [400, 400]
    assert " NATS JetStream ordered ephemeral consumer aggregated stats: " in result.stdout


def test_durable_consume_shares_the_stream_between_clients(js: NatsCli) -> None:
    fill(js, "CONSUME", "bench.consume", 400)
    result = js.run(
        "bench", "js", "consume", "--stream", "CONSUME", "--msgs", "400", "--clients", "2",
        "--batch", "50", "--doubleack", "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result
    assert (
        "acks=explicit, batch=50, clients=2, consumer=nats-bench, double-acked=true"
        in result.stderr
    )
    assert client_counts(result.stdout) == [200, 200]
    consumer = js.run("request", "$JS.API.CONSUMER.INFO.CONSUME.nats-bench", "", "--raw")
    info = json.loads(consumer.stdout)
    assert info["num_pending"] == 0 and info["num_ack_pending"] == 0
    assert info["delivered"]["stream_seq"] == 400


def test_durable_fetch_reads_in_batches_without_acks(js: NatsCli) -> None:
    fill(js, "FETCH", "bench.fetch", 300)
    result = js.run(
        "bench", "js", "fetch", "--stream", "FETCH", "--msgs", "300", "--batch", "100",
        "--acks", "none", "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result
    assert re.fullmatch(
        rf"\nNATS JetStream durable consumer \(fetch\) stats: {NUM} msgs/sec ~ {SIZE}/sec{LATENCIES}\n\n",
        result.stdout,
    ), result


def test_direct_gets_one_by_one_and_in_batches(js: NatsCli) -> None:
    fill(js, "GETS", "bench.gets", 300)
    single = js.run(
        "bench", "js", "get", "sync", "--stream", "GETS", "--msgs", "300", "--no-progress"
    )
    assert single.returncode == 0, single
    assert "NATS JetStream synchronous getter stats: " in single.stdout
    batched = js.run(
        "bench", "js", "get", "batch", "--stream", "GETS", "--msgs", "300", "--batch", "100",
        "--clients", "2", "--no-progress",
    )  # fmt: skip
    assert batched.returncode == 0, batched
    assert "batch=100, clients=2, filter=>," in batched.stderr
    assert client_counts(batched.stdout) == [300, 300]
    too_many = js.run(
        "bench", "js", "get", "sync", "--stream", "GETS", "--msgs", "301", "--no-progress"
    )
    assert too_many.returncode == 1
    assert "getting message sequence number 301 from the stream" in too_many.stderr


def test_kv_put_then_get_every_key(js: NatsCli) -> None:
    put = js.run(
        "bench", "kv", "put", "--msgs", "200", "--clients", "2", "--storage", "memory",
        "--size", "32", "--no-progress",
    )  # fmt: skip
    assert put.returncode == 0, put
    assert re.search(
        r"Starting JetStream KV putter benchmark \[bucket=benchbucket, clients=2, "
        r"msg-size=32 B, msgs=200, purge=false, sleep=0s\]",
        put.stderr,
    ), put
    assert client_counts(put.stdout) == [100, 100]
    assert stream_state(js, "KV_benchbucket")["messages"] == 200
    get = js.run("bench", "kv", "get", "--msgs", "200", "--clients", "2", "--no-progress")
    assert get.returncode == 0, get
    assert "[1] Starting JetStream KV getter, trying to get 100 messages" in get.stderr
    assert client_counts(get.stdout) == [100, 100]
    missing = js.run("bench", "kv", "get", "--msgs", "201", "--no-progress")
    assert missing.returncode == 1
    assert missing.stderr.endswith("nats: error: getting key '200': nats: key not found\n"), missing
