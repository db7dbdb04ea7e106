"""`pub --jetstream` and the JetStream modes of `sub` (run against servers with JetStream)."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator

import pytest

from tests.cli.conftest import NatsCli
from tests.support.servers import RunningServer

TIME = r"\d\d:\d\d:\d\d"
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


@pytest.fixture
def js(tmp_path, js_server: RunningServer) -> Iterator[NatsCli]:
    runner = NatsCli(tmp_path, js_server.url)
    yield runner
    runner.cleanup()


def create_stream(js: NatsCli, name: str, subjects: list[str]) -> None:
    config = json.dumps({"name": name, "subjects": subjects, "storage": "memory"})
    result = js.run("request", f"$JS.API.STREAM.CREATE.{name}", config, "--raw")
    assert '"did_create":true' in result.stdout or f'"name":"{name}"' in result.stdout, result


def test_jetstream_publish_waits_for_the_ack(js: NatsCli) -> None:
    create_stream(js, "ACKS", ["acks.>"])
    first = js.run("pub", "-J", "acks.new", '{"id":7}')
    assert first.returncode == 0, first
    assert re.fullmatch(
        rf'{TIME} Published 8 bytes to "acks\.new"\n{TIME} Stored in Stream: ACKS Sequence: 1\n',
        first.stderr,
    )
    many = js.run(
        "pub",
        "--jetstream",
        "acks.new",
        "n{{Count}}",
        "--count",
        "3",
        "-H",
        "Nats-Msg-Id:m{{Count}}",
    )
    assert many.stderr.count("Stored in Stream: ACKS") == 3
    again = js.run("pub", "-J", "acks.new", "dupe", "-H", "Nats-Msg-Id:m1")
    assert "Duplicate: true" in again.stderr


def test_jetstream_publish_without_a_stream_fails(js: NatsCli) -> None:
    result = js.run("pub", "-J", "no.stream.here", "x")
    assert result.returncode == 1
    assert result.stderr.endswith("nats: error: nats: no responders available for request\n")


def test_sub_stream_all_prints_jetstream_message_lines(js: NatsCli) -> None:
    create_stream(js, "ORDERS", ["orders.>"])
    for body in ("first", "second"):
        assert js.run("pub", "-J", "orders.new", body, "-q").returncode == 0
    result = js.run("sub", "--stream", "ORDERS", "--all", "--count", "2")
    assert result.returncode == 0, result
    assert re.search(
        rf"^{TIME} Subscribing to subject orders\.> from first received message$",
        result.stderr,
        re.M,
    )
    lines = result.stdout.split("\n")
    assert re.fullmatch(
        rf"\[#1\] Received JetStream message: stream: ORDERS seq: 1 / pending: 1 / subject: orders\.new / time: {STAMP}",
        lines[0],
    )
    assert lines[1:4] == ["first", "", ""]
    assert re.fullmatch(
        r"\[#2\] Received JetStream message: stream: ORDERS seq: 2 / pending: 0 / subject: orders\.new / time: .*",
        lines[4],
    )


def test_sub_deliver_modes_start_where_asked(js: NatsCli) -> None:
    create_stream(js, "MODES", ["modes.>"])
    for n in range(1, 4):
        assert js.run("pub", "-J", f"modes.{n}", f"m{n}", "-q").returncode == 0
    last = js.run("sub", "modes.>", "--last", "--raw", "--terminate-at-end")
    assert last.stdout == "m3\n", last
    since = js.run("sub", "modes.>", "--since", "1h", "--raw", "-T")
    assert since.stdout == "m1\nm2\nm3\n", since
    from_two = js.run("sub", "modes.>", "--start-sequence", "2", "--raw", "-T")
    assert from_two.stdout == "m2\nm3\n", from_two
    per_subject = js.run("sub", "--stream", "MODES", "--last-per-subject", "-T", "--subjects-only")
    assert per_subject.stdout.count("Received JetStream message") == 3
    new = js.spawn("sub", "modes.>", "--new", "--count", "1")
    new.wait_for_stderr(r"Subscribing to subject modes\.> for new messages")
    assert js.run("pub", "-J", "modes.4", "fresh", "-q").returncode == 0
    assert new.wait() == 0
    assert " seq: 4 / pending: 0 / subject: modes.4 " in new.stdout
    assert new.stdout.endswith("\nfresh\n\n\n")


def test_sub_jetstream_errors_are_explained(js: NatsCli) -> None:
    missing = js.run("sub", "unknown.subject", "--all")
    assert missing.returncode == 1
    assert missing.stderr == "nats: error: no stream found with subject: unknown.subject\n"
    two = js.run("sub", "a", "b", "--all")
    assert two.stderr == "nats: error: streams subscribe support only 1 subject\n"
    queue = js.run("sub", "a", "--all", "--queue", "q")
    assert (
        queue.stderr == "nats: error: queue group subscriptions are not supported with JetStream\n"
    )
    core = js.run("sub", "a", "-T")
    assert (
        core.stderr
        == "nats: error: --terminate-at-end is only supported for JetStream subscriptions\n"
    )


def test_ack_flag_acknowledges_messages_of_a_push_consumer(js: NatsCli) -> None:
    create_stream(js, "WORK", ["work.>"])
    consumer = {
        "stream_name": "WORK",
        "config": {
            "durable_name": "W",
            "deliver_subject": "deliver.work",
            "ack_policy": "explicit",
            "ack_wait": 30_000_000_000,
        },
    }
    assert (
        js.run(
            "request", "$JS.API.CONSUMER.CREATE.WORK.W", json.dumps(consumer), "--raw"
        ).returncode
        == 0
    )
    sub = js.spawn("sub", "deliver.work", "--ack", "--count", "1")
    sub.wait_for_stderr("Subscribing on deliver.work with acknowledgement of JetStream messages")
    assert js.run("pub", "-J", "work.item", "do it", "-q").returncode == 0
    assert sub.wait() == 0
    info = json.loads(js.run("request", "$JS.API.CONSUMER.INFO.WORK.W", "", "--raw").stdout)
    assert info["num_ack_pending"] == 0
    assert info["ack_floor"]["stream_seq"] == 1


def create_with(js: NatsCli, name: str, **config: object) -> None:
    body = json.dumps({"name": name, "storage": "memory", **config})
    result = js.run("request", f"$JS.API.STREAM.CREATE.{name}", body, "--raw")
    assert f'"name":"{name}"' in result.stdout, result


def test_pub_atomic_sends_stdin_lines_as_one_batch(js: NatsCli) -> None:
    create_with(js, "ATOMIC", subjects=["atomic.>"], allow_atomic=True)
    result = js.run(
        "pub", "-J", "--atomic", "--send-on", "newline", "atomic.x", input="a\nbb\nccc\n"
    )
    assert result.returncode == 0, result
    lines = result.stderr.splitlines()
    assert [re.sub(rf"^{TIME} ", "", line) for line in lines[1:4]] == [
        'Adding 1 bytes to batch on subject "atomic.x"',
        'Adding 2 bytes to batch on subject "atomic.x"',
        'Adding 3 bytes to batch on subject "atomic.x"',
    ]
    assert re.fullmatch(rf"{TIME} Wrote batch ID: \w{{22}} Messages: 3 Sequence: 3", lines[4])
    refused = js.run("pub", "--atomic", "atomic.x", "body")
    assert refused.returncode == 1
    assert (
        "atomic batch publishing requires JetStream and STDIN with --send-on=newline"
        in refused.stderr
    )


def test_pub_schedule_flags_make_a_schedule_that_fires(js: NatsCli) -> None:
    create_with(js, "TIMER", subjects=["timer.>"], allow_msg_schedules=True)
    result = js.run(
        "pub", "timer.sched", "wake up", "--schedule-after", "1s", "--schedule-dest", "timer.out"
    )
    assert result.returncode == 0, result
    assert "Stored in Stream: TIMER Sequence: 1" in result.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = js.run(
            "request", "$JS.API.STREAM.MSG.GET.TIMER", '{"last_by_subj":"timer.out"}', "--raw"
        )
        if '"message"' in got.stdout:
            break
        time.sleep(0.2)
    message = json.loads(got.stdout)["message"]
    assert base64.b64decode(message["data"]) == b"wake up"
    missing = js.run("pub", "timer.sched", "x", "--schedule-every", "1m")
    assert missing.returncode == 1 and "--schedule-dest" in missing.stderr
