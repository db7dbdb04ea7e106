"""`nats consumer` without a terminal: flags, `--config`, screens, `next`, edits (cli.md §8).

The module shares one JetStream server; each test makes its own stream and consumers.
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import NatsCli
from tests.cli.test_cli_stream import NO_CONFIRM, NO_TERMINAL, STAMP, Arrange, cells, rows
from tests.support.servers import RunningServer

NEXT_LINE = r"\[\d\d:\d\d:\d\d\] subj: {subject} / tries: {tries} / cons seq: {cseq} / str seq: {sseq} / pending: {pending}"


@pytest.fixture
def js(tmp_path: Path, js_server: RunningServer) -> Iterator[NatsCli]:
    runner = NatsCli(tmp_path, js_server.url)
    yield runner
    runner.cleanup()


@pytest.fixture
def arrange(js_server: RunningServer) -> Arrange:
    return Arrange(js_server.url)


# -- add ------------------------------------------------------------------------------------------


def test_add_pull_consumer_with_defaults_prints_the_info_screen(
    js: NatsCli, arrange: Arrange
) -> None:
    arrange.stream("PULLS", "pulls.>")
    arrange.publish("pulls.a", "one", "two")
    result = js.run(
        "consumer", "add", "PULLS", "WORKER", "--pull", "--defaults", "--filter", "pulls.a",
        "--max-deliver", "5", "--wait", "10s", "--description", "does the work",
    )  # fmt: skip
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert re.fullmatch(rf"Information for Consumer PULLS > WORKER created {STAMP}", lines[0])
    assert lines[1:4] == ["", "Configuration:", ""]
    assert "\n\nState:\n\n" in result.stdout
    values = rows(result.stdout)
    assert values["Name"] == "WORKER"
    assert values["Description"] == "does the work"
    assert values["Pull Mode"] == "true"
    assert values["Filter Subject"] == "pulls.a"
    assert values["Deliver Policy"] == "All"
    assert values["Ack Policy"] == "Explicit"
    assert values["Ack Wait"] == "10.00s"
    assert values["Replay Policy"] == "Instant"
    assert values["Maximum Deliveries"] == "5"
    assert values["Max Ack Pending"] == "1,000"
    assert values["Last Delivered Message"] == "Consumer sequence: 0 Stream sequence: 0"
    assert values["Outstanding Acks"] == "0 out of maximum 1,000"
    assert values["Unprocessed Messages"] == "2"
    assert values["Waiting Pulls"] == "0 of maximum 512"


def test_add_push_consumer_with_every_push_flag(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("PUSHES", "pushes.>")
    result = js.run(
        "consumer", "add", "PUSHES", "PUSHER", "--target", "out.pushes", "--deliver-group", "grp",
        "--deliver", "new", "--ack", "none", "--replay", "instant", "--filter", "pushes.a",
        "--filter", "pushes.b", "--heartbeat", "2s", "--flow-control", "--no-headers-only",
        "--bps", "8192", "--metadata", "owner=ops",
    )  # fmt: skip
    assert result.returncode == 0, result
    values = rows(result.stdout)
    assert values["Delivery Subject"] == "out.pushes"
    assert values["Filter Subjects"] == "pushes.a, pushes.b"
    assert values["Deliver Policy"] == "New"
    assert values["Deliver Queue Group"] == "grp"
    assert values["Ack Policy"] == "None"
    assert "Ack Wait" not in values and "Outstanding Acks" not in values
    assert values["Idle Heartbeat"] == "2.00s"
    assert values["Flow Control"] == "true"
    assert values["Rate Limit"] == "1.0 KiB / second"
    assert values["owner"] == "ops"
    assert values["Active Interest"] == "No interest"


def test_add_errors_and_missing_answers_without_a_terminal(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("ADDERR", "adderr")
    no_name = js.run("consumer", "add", "ADDERR", "--pull", "--defaults")
    assert no_name.returncode == 1
    assert no_name.stderr == f"nats: error: could not request durable name: {NO_TERMINAL}\n"
    no_mode = js.run("consumer", "add", "ADDERR", "C1", "--defaults")
    assert no_mode.stderr == f"nats: error: could not request delivery target: {NO_TERMINAL}\n"
    heartbeat = js.run(
        "consumer", "add", "ADDERR", "C1", "--pull", "--defaults", "--heartbeat", "1s"
    )
    assert heartbeat.stderr == "nats: error: pull subscribers does not support idle heartbeats\n"
    rate = js.run("consumer", "add", "ADDERR", "C1", "--pull", "--defaults", "--bps", "10")
    assert rate.stderr == "nats: error: rate limits are only possible on Push consumers\n"
    dotted = js.run("consumer", "add", "ADDERR", "a.b", "--pull", "--defaults")
    assert dotted.stderr == "nats: error: durable name can not contain '.', '*', '>'\n"
    no_stream = js.run("consumer", "add", "NOSUCH", "C1", "--pull", "--defaults")
    assert no_stream.stderr == (
        "nats: error: could not select Stream: "
        "cannot pick a Stream without a terminal and no Stream name supplied\n"
    )
    assert (arrange.api("CONSUMER.NAMES.ADDERR").get("consumers") or []) == []


def test_add_from_config_file_validate_and_output(
    js: NatsCli, arrange: Arrange, tmp_path: Path
) -> None:
    arrange.stream("CONFIGS", "configs.>")
    config = tmp_path / "consumer.json"
    config.write_text(
        json.dumps(
            {
                "durable_name": "FILED",
                "ack_policy": "explicit",
                "deliver_policy": "last",
                "max_ack_pending": 20,
                "filter_subject": "configs.x",
            }
        )
    )
    created = js.run("consumer", "add", "CONFIGS", "--config", str(config))
    assert created.returncode == 0, created
    values = rows(created.stdout)
    assert values["Name"] == "FILED" and values["Deliver Policy"] == "Last"
    assert values["Max Ack Pending"] == "20"

    info = js.run("consumer", "info", "CONFIGS", "FILED", "--json")
    exported = tmp_path / "info.json"
    exported.write_text(info.stdout)  # a `consumer info --json` document, renamed by the argument
    renamed = js.run("consumer", "add", "CONFIGS", "RENAMED", "--config", str(exported))
    assert renamed.returncode == 0, renamed
    assert rows(renamed.stdout)["Name"] == "RENAMED"

    checked = js.run("consumer", "add", "CONFIGS", "CHECKED", "--pull", "--defaults", "--validate")
    assert checked.returncode == 0, checked
    document, _, verdict = checked.stdout.rpartition("\n\n")
    assert json.loads(document)["durable_name"] == "CHECKED"
    assert json.loads(document)["ack_policy"] == "explicit"
    assert verdict == "Configuration is a valid Consumer\n"
    target = tmp_path / "saved.json"
    saved = js.run(
        "consumer", "add", "CONFIGS", "SAVED", "--pull", "--defaults", "--output", str(target)
    )
    assert saved.returncode == 0 and saved.stdout == ""
    assert json.loads(target.read_text())["durable_name"] == "SAVED"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    names = arrange.api("CONSUMER.NAMES.CONFIGS")["consumers"]
    assert sorted(names) == ["FILED", "RENAMED"]


# -- looking ----------------------------------------------------------------------------------------


def test_ls_info_state_and_report(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("LOOKS", "looks")
    arrange.publish("looks", "a", "b", "c", "d")
    arrange.consumer("LOOKS", "FIRST", description="the first")
    arrange.consumer("LOOKS", "SECOND", deliver_subject="out.second", ack_policy="none")

    table = js.run("consumer", "ls", "LOOKS")
    assert table.returncode == 0, table
    lines = table.stdout.splitlines()
    assert cells(lines[1]) == ["Consumers"]
    assert cells(lines[3]) == [
        "Name", "Description", "Created", "Ack Pending", "Unprocessed", "Last Delivery",
    ]  # fmt: skip
    first = next(cells(line) for line in lines if line.startswith("│ FIRST"))
    assert first[1] == "the first" and first[3:] == ["0", "4", "never"]
    assert json.loads(js.run("consumer", "list", "LOOKS", "--json").stdout) == ["FIRST", "SECOND"]
    assert js.run("c", "ls", "LOOKS", "-n").stdout == "FIRST\nSECOND\n"

    info = json.loads(js.run("consumer", "info", "LOOKS", "FIRST", "-j").stdout)
    assert info["name"] == "FIRST" and info["stream_name"] == "LOOKS"
    assert info["num_pending"] == 4 and "type" not in info

    state = js.run("consumer", "state", "LOOKS", "FIRST")
    assert re.match(
        rf"State for Consumer LOOKS > FIRST created {STAMP}\n\nState:\n\n", state.stdout
    )
    assert "Configuration:" not in state.stdout

    report = js.run("consumer", "report", "LOOKS")
    assert report.returncode == 0, report
    lines = report.stdout.splitlines()
    assert cells(lines[1]) == ["Consumer report for LOOKS with 2 consumers"]
    assert cells(lines[3])[:9] == [
        "Consumer", "Mode", "Ack Policy", "Ack Wait", "Ack Pending", "Redelivered",
        "Unprocessed", "Ack Floor", "API Level",
    ]  # fmt: skip
    first = next(cells(line) for line in lines if line.startswith("│ FIRST"))
    second = next(cells(line) for line in lines if line.startswith("│ SECOND"))
    assert first[:8] == ["FIRST", "Pull", "Explicit", "30.00s", "0", "0", "4 / 100%", "0"]
    assert second[:2] == ["SECOND", "Push"]


def test_unknown_consumers_and_streams_are_errors(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("EMPTYC", "emptyc")
    assert js.run("consumer", "ls", "EMPTYC").stdout == "No Consumers defined\n"
    info = js.run("consumer", "info", "EMPTYC", "GHOST")
    assert info.returncode == 1
    assert info.stderr == (
        "nats: error: could not select Consumer: "
        "cannot pick a Consumer without a terminal and no Consumer name supplied\n"
    )
    removed = js.run("consumer", "rm", "EMPTYC", "GHOST", "-f")
    assert removed.stderr == "nats: error: consumer not found (10014)\n"
    nameless = js.run("consumer", "rm", "EMPTYC", "-f")
    assert nameless.stderr == "nats: error: --force requires a stream and consumer name\n"


# -- next -------------------------------------------------------------------------------------------


def test_next_prints_and_acknowledges_one_message(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("NEXTS", "nexts.>")
    arrange.publish("nexts.a", '{"id":1}', headers={"Trace": "t1"})
    arrange.publish("nexts.b", "second", "third")
    arrange.consumer("NEXTS", "PULLER")

    first = js.run("consumer", "next", "NEXTS", "PULLER")
    assert first.returncode == 0, first
    lines = first.stdout.split("\n")
    assert re.fullmatch(
        NEXT_LINE.format(subject=r"nexts\.a", tries=1, cseq=1, sseq=1, pending=2), lines[0]
    )
    assert lines[1:] == [
        "", "Headers:", "", "  Trace: t1", "", "Data:", "", "", '{"id":1}', "",
        "Acknowledged message", "", "",
    ]  # fmt: skip

    unacked = js.run("consumer", "next", "NEXTS", "PULLER", "--no-ack")
    assert unacked.returncode == 0, unacked
    assert re.match(
        NEXT_LINE.format(subject=r"nexts\.b", tries=1, cseq=2, sseq=2, pending=1) + "\n\nsecond\n$",
        unacked.stdout,
    ), unacked.stdout
    state = arrange.api("CONSUMER.INFO.NEXTS.PULLER")
    assert state["num_ack_pending"] == 1 and state["ack_floor"]["stream_seq"] == 1

    raw = js.run("consumer", "next", "NEXTS", "PULLER", "--raw", "--count", "1")
    assert raw.stdout == "third\n"
    assert arrange.api("CONSUMER.INFO.NEXTS.PULLER")["delivered"]["stream_seq"] == 3


def test_next_when_nothing_is_there_or_the_consumer_is_not_pull(
    js: NatsCli, arrange: Arrange
) -> None:
    arrange.stream("DRY", "dry")
    arrange.consumer("DRY", "IDLE")
    arrange.consumer("DRY", "PUSHED", deliver_subject="out.dry", ack_policy="none")
    empty = js.run("consumer", "next", "DRY", "IDLE", "--timeout", "500ms")
    assert empty.returncode == 1
    assert empty.stderr == "nats: error: no message received: nats: timeout\n"
    pushed = js.run("consumer", "next", "DRY", "PUSHED", "--timeout", "500ms")
    assert pushed.stderr == 'nats: error: consumer "PUSHED" is not a Pull consumer\n'
    ghost = js.run("consumer", "next", "DRY", "GHOST", "--timeout", "500ms")
    assert (
        ghost.stderr == 'nats: error: could not load consumer "GHOST": consumer not found (10014)\n'
    )
    term = js.run("consumer", "next", "DRY", "IDLE", "--term", "--ack")
    assert term.stderr == "nats: error: can not both Acknowledge and Terminate message\n"


def test_next_count_nak_and_term(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("SETTLE", "settle")
    arrange.publish("settle", "a", "b", "c")
    arrange.consumer("SETTLE", "SETTLER")
    both = js.run("consumer", "next", "SETTLE", "SETTLER", "--count", "2", "--nak")
    assert both.returncode == 0, both
    assert both.stdout.count("Negative Acknowledged message") == 2
    # a NAK asks for redelivery at once: the same message comes back on the second fetch
    assert "tries: 1 / cons seq: 1 / str seq: 1 " in both.stdout
    assert "tries: 2 / cons seq: 2 / str seq: 1 " in both.stdout
    terminated = js.run("consumer", "next", "SETTLE", "SETTLER", "--term")
    assert terminated.returncode == 0, terminated
    assert "tries: 3 / cons seq: 3 / str seq: 1 " in terminated.stdout
    assert terminated.stdout.endswith("\n\nTerminated message\n")
    assert "Acknowledged" not in terminated.stdout
    assert arrange.api("CONSUMER.INFO.SETTLE.SETTLER")["ack_floor"]["stream_seq"] == 1


# -- edit / rm --------------------------------------------------------------------------------------


def test_edit_dry_run_then_forced_edit(js: NatsCli, arrange: Arrange, tmp_path: Path) -> None:
    arrange.stream("EDITS", "edits.>")
    arrange.consumer("EDITS", "CHANGED")
    dry = js.run("consumer", "edit", "EDITS", "CHANGED", "--max-deliver", "7", "--dry-run")
    assert dry.returncode == 1, dry
    assert dry.stdout.startswith("Differences (-old +new):\n  api.ConsumerConfig{\n")
    assert '-   "max_deliver": -1,' in dry.stdout and '+   "max_deliver": 7,' in dry.stdout
    assert arrange.api("CONSUMER.INFO.EDITS.CHANGED")["config"]["max_deliver"] == -1
    same = js.run("consumer", "edit", "EDITS", "CHANGED", "--max-deliver", "-1")
    assert same.returncode == 0 and same.stdout == "No difference in configuration\n"
    unconfirmed = js.run("consumer", "edit", "EDITS", "CHANGED", "--description", "x")
    assert unconfirmed.stderr == f"nats: error: could not obtain confirmation: {NO_CONFIRM}\n"

    edited = js.run(
        "consumer", "update", "EDITS", "CHANGED", "--description", "edited", "--filter", "edits.a",
        "--max-pending", "50", "-f",
    )  # fmt: skip
    assert edited.returncode == 0, edited
    after = rows(edited.stdout.partition("Information for Consumer")[2])
    assert after["Description"] == "edited"
    assert after["Filter Subject"] == "edits.a"
    assert after["Max Ack Pending"] == "50"

    config = arrange.api("CONSUMER.INFO.EDITS.CHANGED")["config"]
    config["max_deliver"] = 9
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(config))
    from_file = js.run("consumer", "edit", "EDITS", "CHANGED", "--config", str(path), "-f")
    assert from_file.returncode == 0, from_file
    assert arrange.api("CONSUMER.INFO.EDITS.CHANGED")["config"]["max_deliver"] == 9


def test_rm_needs_confirmation_or_force(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("RMS", "rms")
    arrange.consumer("RMS", "GONE")
    refused = js.run("consumer", "rm", "RMS", "GONE")
    assert refused.returncode == 1
    assert refused.stderr == f"nats: error: could not obtain confirmation: {NO_CONFIRM}\n"
    removed = js.run("consumer", "del", "RMS", "GONE", "-f")
    assert removed.returncode == 0 and removed.stdout == ""
    assert (arrange.api("CONSUMER.NAMES.RMS").get("consumers") or []) == []
