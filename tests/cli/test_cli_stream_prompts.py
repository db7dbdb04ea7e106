"""`nats stream` on a terminal: natscli's questions, pickers and confirmations (cli.md §0.4, §7).

Each test drives the real `nats` program on a pseudo-terminal with pexpect, answering what it
asks; the resulting server state is then checked directly.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.cli.conftest import NatsCli
from tests.cli.test_cli_stream import Arrange
from tests.support.servers import RunningServer

DOWN = "\x1b[B"
ENTER = "\r"


class Terminal:
    """`nats ...` on a pseudo-terminal: wait for a question, answer it."""

    def __init__(self, cli: NatsCli, *args: str) -> None:
        assert cli.url is not None
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "pynats.cli", *args, "-s", cli.url],
            env=cli.environment({"TERM": "xterm"}),
            cwd=str(cli.home),
            encoding="utf-8",
            timeout=10,
            dimensions=(40, 120),
        )

    def answer(self, question: str, reply: str) -> None:
        self.child.expect_exact(question)
        self.child.send(reply)

    def expect(self, text: str) -> None:
        self.child.expect_exact(text)

    def finish(self) -> tuple[int, str]:
        """Exit status and everything printed after the last expectation."""
        self.child.expect(pexpect.EOF)
        output = self.child.before
        self.child.close()
        return self.child.exitstatus, output


@pytest.fixture
def js(tmp_path: Path, js_server: RunningServer) -> Iterator[NatsCli]:
    runner = NatsCli(tmp_path, js_server.url)
    yield runner
    runner.cleanup()


@pytest.fixture
def arrange(js_server: RunningServer) -> Arrange:
    return Arrange(js_server.url)


def test_add_asks_every_missing_value_in_natscli_order(js: NatsCli, arrange: Arrange) -> None:
    term = Terminal(js, "stream", "add")
    term.answer("? Stream Name ", "ASKED" + ENTER)
    term.answer("? Subjects ", "asked.a, asked.b" + ENTER)
    term.answer("? Storage", DOWN)
    term.answer("> memory", ENTER)
    term.answer("? Replication (1) ", ENTER)
    term.answer("? Retention Policy", DOWN)
    term.answer("> Interest", ENTER)
    term.answer("? Discard Policy", ENTER)
    term.answer("? Stream Messages Limit (-1) ", "100" + ENTER)
    term.answer("? Per Subject Messages Limit (-1) ", ENTER)
    term.answer("? Total Stream Size (-1) ", "1MB" + ENTER)
    term.answer("? Message TTL (-1) ", "1h" + ENTER)
    term.answer("? Max Message Size (-1) ", ENTER)
    term.answer("? Duplicate tracking time window (2m0s) ", "1m" + ENTER)
    term.answer("? Allow message Roll-ups (y/N) ", "y" + ENTER)
    term.answer("? Allow message deletion (Y/n) ", "n" + ENTER)
    term.answer("? Allow purging subjects or the entire stream (Y/n) ", ENTER)
    term.expect("Stream ASKED was created")
    status, screen = term.finish()
    assert status == 0, screen
    assert "Information for Stream ASKED created" in screen
    config = arrange.api("STREAM.INFO.ASKED")["config"]
    assert config["subjects"] == ["asked.a", "asked.b"]
    assert config["storage"] == "memory" and config["retention"] == "interest"
    assert config["discard"] == "old" and config["num_replicas"] == 1
    assert config["max_msgs"] == 100 and config["max_msgs_per_subject"] == -1
    assert config["max_bytes"] == 1024 * 1024 and config["max_msg_size"] == -1
    assert config["max_age"] == 3600 * 10**9 and config["duplicate_window"] == 60 * 10**9
    assert config["allow_rollup_hdrs"] is True
    assert config["deny_delete"] is True and config["deny_purge"] is False


def test_missing_stream_name_offers_a_picker_without_internal_streams(
    js: NatsCli, arrange: Arrange
) -> None:
    arrange.stream("PICK_A", "pick.a")
    arrange.stream("PICK_B", "pick.b", description="the second")
    arrange.stream("KV_hidden", "$KV.hidden.>")
    term = Terminal(js, "stream", "info")
    term.expect("? Select a Stream")
    term.expect("  PICK_B\r\n")
    listed = term.child.before  # streams sort by name: KV_hidden would come before PICK_B
    assert "PICK_A" in listed and "KV_hidden" not in listed
    term.child.send("PICK_B")  # typing filters the list
    term.answer("> PICK_B", ENTER)
    term.expect("Information for Stream PICK_B created")
    status, screen = term.finish()
    assert status == 0
    assert "the second" in screen


def test_rm_asks_first_and_no_keeps_the_stream(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("KEEPME", "keepme")
    keep = Terminal(js, "stream", "rm", "KEEPME")
    keep.answer("? Really delete Stream KEEPME (y/N) ", "n" + ENTER)
    assert keep.finish()[0] == 0
    assert "KEEPME" in arrange.api("STREAM.NAMES")["streams"]
    delete = Terminal(js, "stream", "rm", "KEEPME")
    delete.answer("? Really delete Stream KEEPME (y/N) ", "y" + ENTER)
    assert delete.finish()[0] == 0
    assert "KEEPME" not in (arrange.api("STREAM.NAMES").get("streams") or [])


def test_edit_shows_the_difference_then_asks(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("TOEDIT", "toedit")
    term = Terminal(js, "stream", "edit", "TOEDIT", "--max-msgs", "42")
    term.expect("Differences (-old +new):")
    term.expect('+   "max_msgs": 42,')
    term.answer("? Really edit Stream TOEDIT (y/N) ", "y" + ENTER)
    term.expect("Stream TOEDIT was updated")
    assert term.finish()[0] == 0
    assert arrange.api("STREAM.INFO.TOEDIT")["config"]["max_msgs"] == 42


def test_get_and_rmm_ask_for_what_they_need(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("ASKMSG", "askmsg.>")
    arrange.publish("askmsg.a", "first", "second")
    get = Terminal(js, "stream", "get", "ASKMSG")
    get.answer("? Message Sequence to retrieve (-1) ", ENTER)
    get.answer("? Subject to retrieve last message for ", "askmsg.a" + ENTER)
    get.expect("Item: ASKMSG#2 received")
    status, output = get.finish()
    assert status == 0 and "second" in output

    rmm = Terminal(js, "stream", "rmm", "ASKMSG")
    rmm.answer("? Message Sequence to remove ", "1" + ENTER)
    rmm.answer("? Really remove message 1 from Stream ASKMSG (y/N) ", "y" + ENTER)
    assert rmm.finish()[0] == 0
    assert arrange.api("STREAM.INFO.ASKMSG")["state"]["messages"] == 1


def test_purge_of_a_kv_stream_warns_and_can_be_refused(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("KV_cfg", "$KV.cfg.>")
    arrange.publish("$KV.cfg.a", "1")
    term = Terminal(js, "stream", "purge", "KV_cfg")
    term.answer("? Really purge Stream KV_cfg (y/N) ", "y" + ENTER)
    term.expect("WARNING: Operating on the underlying stream of a Key-Value bucket is dangerous.")
    term.answer("? Really operate on the KV stream? (y/N) ", ENTER)
    term.expect("nats: error: aborting Key-Value store operation")
    assert term.finish()[0] == 1
    assert arrange.api("STREAM.INFO.KV_cfg")["state"]["messages"] == 1


def test_view_pages_through_the_stream(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("PAGED", "paged")
    arrange.publish("paged", "m1", "m2", "m3")
    term = Terminal(js, "stream", "view", "PAGED", "2")
    term.expect("[1] Subject: paged Received: ")
    term.expect("m1")
    term.expect("[2] Subject: paged Received: ")
    term.answer("? Next Page? (Y/n) ", ENTER)
    term.expect("[3] Subject: paged Received: ")
    term.expect("m3")
    term.expect("Reached apparent end of data")
    assert term.finish()[0] == 0
