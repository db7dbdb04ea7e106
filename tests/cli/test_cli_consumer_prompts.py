"""`nats consumer` on a terminal: natscli's questions, pickers and confirmations (cli.md §8)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import NatsCli
from tests.cli.test_cli_stream import Arrange
from tests.cli.test_cli_stream_prompts import DOWN, ENTER, Terminal
from tests.support.servers import RunningServer

UP = "\x1b[A"


@pytest.fixture
def js(tmp_path: Path, js_server: RunningServer) -> Iterator[NatsCli]:
    runner = NatsCli(tmp_path, js_server.url)
    yield runner
    runner.cleanup()


@pytest.fixture
def arrange(js_server: RunningServer) -> Arrange:
    return Arrange(js_server.url)


def test_add_pull_consumer_asks_every_question_in_order(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("ASKING", "asking.>")
    term = Terminal(js, "consumer", "add")
    term.expect("? Select a Stream")
    term.child.send("ASKING")
    term.answer("> ASKING", ENTER)
    term.answer("? Consumer name ", "QUIZ" + ENTER)
    term.answer("? Delivery target (empty for Pull Consumers) ", ENTER)
    term.answer("? Start policy (all, new, last, subject, 1h, msg sequence) (all) ", "last" + ENTER)
    term.answer("? Acknowledgment policy", ENTER)  # explicit is the default for pull
    term.answer("? Replay policy", ENTER)
    term.answer("? Filter Stream by subjects (blank for all) ", "asking.a asking.b" + ENTER)
    term.answer("? Maximum Allowed Deliveries (-1) ", ENTER)
    term.answer("? Maximum Acknowledgments Pending (0) ", "30" + ENTER)
    term.answer("? Deliver headers only without bodies (y/N) ", ENTER)
    term.answer("? Add a Retry Backoff Policy (y/N) ", "y" + ENTER)
    term.answer("? Backoff policy", UP)
    term.answer("> linear", ENTER)
    term.answer("? Minimum retry time (1m) ", "1s" + ENTER)
    term.answer("? Maximum retry time (10m) ", "5s" + ENTER)
    term.answer("? Number of steps to generate in the policy (20) ", "4" + ENTER)
    term.expect("Information for Consumer ASKING > QUIZ created")
    status, screen = term.finish()
    assert status == 0, screen
    assert "Backoff: 1s, 2s, 3s, 4s" in screen
    config = arrange.api("CONSUMER.INFO.ASKING.QUIZ")["config"]
    assert config["deliver_policy"] == "last" and config["ack_policy"] == "explicit"
    assert config["filter_subjects"] == ["asking.a", "asking.b"]
    assert config["max_ack_pending"] == 30
    assert config["backoff"] == [s * 10**9 for s in (1, 2, 3, 4)]
    assert config["max_deliver"] == 5  # backoff steps + 1 when deliveries are unlimited
    assert "deliver_subject" not in config


def test_add_push_consumer_asks_the_push_questions(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("PUSHQ", "pushq")
    term = Terminal(js, "consumer", "add", "PUSHQ", "PUSHED", "--defaults")
    term.answer("? Delivery target (empty for Pull Consumers) ", "out.pushq" + ENTER)
    term.expect("Information for Consumer PUSHQ > PUSHED created")
    status, screen = term.finish()
    assert status == 0, screen
    config = arrange.api("CONSUMER.INFO.PUSHQ.PUSHED")["config"]
    assert config["deliver_subject"] == "out.pushq" and config["ack_policy"] == "none"

    asked = Terminal(js, "consumer", "add", "PUSHQ", "ASKED", "--target", "out.asked")
    asked.answer("? Delivery Queue Group ", "workers" + ENTER)
    asked.answer("? Start policy (all, new, last, subject, 1h, msg sequence) (all) ", ENTER)
    asked.answer("? Acknowledgment policy", ENTER)  # none is the default for push
    asked.answer("? Replay policy", DOWN)
    asked.answer("> original", ENTER)
    asked.answer("? Filter Stream by subjects (blank for all) ", ENTER)
    asked.answer("? Idle Heartbeat (0s) ", "5s" + ENTER)
    asked.answer("? Enable Flow Control, ie --flow-control (y/N) ", "y" + ENTER)
    asked.answer("? Deliver headers only without bodies (y/N) ", "y" + ENTER)
    asked.expect("Information for Consumer PUSHQ > ASKED created")
    assert asked.finish()[0] == 0
    config = arrange.api("CONSUMER.INFO.PUSHQ.ASKED")["config"]
    assert config["deliver_group"] == "workers" and config["replay_policy"] == "original"
    assert config["idle_heartbeat"] == 5 * 10**9 and config["flow_control"] is True
    assert config["headers_only"] is True and config["ack_policy"] == "none"


def test_missing_consumer_name_offers_a_picker(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("PICKC", "pickc")
    arrange.consumer("PICKC", "ALPHA")
    arrange.consumer("PICKC", "BETA", description="second one")
    term = Terminal(js, "consumer", "info", "PICKC")
    term.expect("? Select a Consumer")
    term.answer("> ALPHA", DOWN)
    term.answer("> BETA", ENTER)
    term.expect("Information for Consumer PICKC > BETA created")
    status, screen = term.finish()
    assert status == 0 and "second one" in screen


def test_rm_and_edit_ask_for_confirmation(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("CONFIRMS", "confirms")
    arrange.consumer("CONFIRMS", "KEPT")
    edit = Terminal(js, "consumer", "edit", "CONFIRMS", "KEPT", "--description", "changed")
    edit.expect('+   "description": "changed",')
    edit.answer("? Really edit Consumer CONFIRMS > KEPT (y/N) ", "y" + ENTER)
    edit.expect("Information for Consumer CONFIRMS > KEPT")
    assert edit.finish()[0] == 0
    assert arrange.api("CONSUMER.INFO.CONFIRMS.KEPT")["config"]["description"] == "changed"

    keep = Terminal(js, "consumer", "rm", "CONFIRMS", "KEPT")
    keep.answer("? Really delete Consumer CONFIRMS > KEPT (y/N) ", ENTER)
    assert keep.finish()[0] == 0
    assert arrange.api("CONSUMER.NAMES.CONFIRMS")["consumers"] == ["KEPT"]
