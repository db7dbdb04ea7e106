"""`nats stream` without a terminal: flags, `--config` files, screens, `--json`, errors (cli.md §7).

Every test runs the real `nats` program against one JetStream server shared by the module, and
works on streams of its own, so tests do not depend on each other's leftovers.
"""

from __future__ import annotations

import asyncio
import json
import re
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from tests.cli.conftest import NatsCli
from tests.support.servers import RunningServer

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
NO_TERMINAL = "cannot prompt for user input without a terminal"
NO_CONFIRM = "cannot ask for confirmation without a terminal"


class Arrange:
    """Arranges server state for a test through nats-py directly: setup is not under test, and
    one `nats` process per setup step would cost more time than the assertions themselves."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _run(self, work: Any) -> Any:
        async def session() -> Any:
            nc = await nats.connect(self.url)
            try:
                return await work(nc)
            finally:
                await nc.close()

        return asyncio.run(session())

    def api(self, subject: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        async def call(nc: Any) -> dict[str, Any]:
            body = json.dumps(payload).encode() if payload is not None else b""
            reply = await nc.request(f"$JS.API.{subject}", body, timeout=5)
            return json.loads(reply.data)

        reply = self._run(call)
        assert "error" not in reply, reply
        return reply

    def stream(self, name: str, *subjects: str, **config: Any) -> dict[str, Any]:
        return self.api(
            f"STREAM.CREATE.{name}",
            {"name": name, "subjects": list(subjects), "storage": "memory", **config},
        )

    def consumer(self, stream: str, name: str, **config: Any) -> dict[str, Any]:
        config = {"durable_name": name, "ack_policy": "explicit", **config}
        return self.api(
            f"CONSUMER.CREATE.{stream}.{name}", {"stream_name": stream, "config": config}
        )

    def publish(self, subject: str, *bodies: str, headers: dict[str, str] | None = None) -> None:
        async def send(nc: Any) -> None:
            for body in bodies:
                ack = await nc.request(subject, body.encode(), timeout=5, headers=headers)
                assert b'"seq"' in ack.data, ack.data

        self._run(send)


@pytest.fixture
def js(tmp_path: Path, js_server: RunningServer) -> Iterator[NatsCli]:
    runner = NatsCli(tmp_path, js_server.url)
    yield runner
    runner.cleanup()


@pytest.fixture
def arrange(js_server: RunningServer) -> Arrange:
    return Arrange(js_server.url)


def rows(screen: str) -> dict[str, str]:
    """`Label: value` rows of an info screen (labels are right-aligned, so strip them)."""
    found = {}
    for line in screen.splitlines():
        match = re.fullmatch(r"\s*([^:]+): (.*)", line)
        if match and not line.startswith(("Information", "State for")):
            found.setdefault(match.group(1).strip(), match.group(2))
    return found


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("│").split("│")]


# -- add ------------------------------------------------------------------------------------------


def test_add_with_flags_prints_created_line_and_the_info_screen(js: NatsCli) -> None:
    result = js.run(
        "stream", "add", "ORDERS", "--defaults",
        "--subjects", "orders.new, orders.done", "--subjects", "orders.late",
        "--description", "Order events", "--storage", "memory", "--max-msgs", "1000",
        "--max-bytes", "1MB", "--max-age", "1h", "--dupe-window", "30s",
        "--metadata", "team=shop", "--allow-rollup",
    )  # fmt: skip
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[:2] == ["Stream ORDERS was created", ""]
    assert re.fullmatch(rf"Information for Stream ORDERS created {STAMP}", lines[2])
    for title in ("Options:", "Limits:", "Metadata:", "State:"):
        assert f"\n\n{title}\n\n" in result.stdout
    values = rows(result.stdout)
    assert values["Description"] == "Order events"
    assert values["Subjects"] == "orders.new, orders.done, orders.late"
    assert values["Storage"] == "Memory"
    assert values["Retention"] == "Limits"
    assert values["Discard Policy"] == "Old"
    assert values["Duplicate Window"] == "30.00s"
    assert values["Maximum Messages"] == "1,000"
    assert values["Maximum Per Subject"] == "unlimited"
    assert values["Maximum Bytes"] == "1.0 MiB"
    assert values["Maximum Age"] == "1h0m0s"
    assert values["Allows Rollups"] == "true"
    assert values["Allows Purge"] == "true"
    assert values["team"] == "shop"
    assert values["Messages"] == "0"
    # every label of the screen is right-aligned to the longest one plus two spaces
    widths = {len(line.split(": ")[0]) for line in lines[3:] if ": " in line}
    assert widths == {len("  Allows Atomic Batch Publish")}


def test_add_without_a_terminal_fails_instead_of_asking(js: NatsCli, arrange: Arrange) -> None:
    missing_storage = js.run("stream", "add", "NOPROMPT", "--subjects", "np.>")
    assert missing_storage.returncode == 1
    assert missing_storage.stdout == ""
    assert missing_storage.stderr == f"nats: error: invalid input: {NO_TERMINAL}\n"
    missing_name = js.run("stream", "add", "--subjects", "np.>", "--defaults")
    assert missing_name.stderr == f"nats: error: invalid input: {NO_TERMINAL}\n"
    assert "NOPROMPT" not in (arrange.api("STREAM.NAMES").get("streams") or [])


def test_add_reports_server_and_validation_errors_in_natscli_words(
    js: NatsCli, arrange: Arrange
) -> None:
    arrange.stream("TAKEN", "taken.>")
    overlap = js.run("stream", "add", "OVERLAP", "--subjects", "taken.x", "--defaults")
    assert overlap.returncode == 1
    assert overlap.stderr == (
        "nats: error: could not create Stream: subjects overlap with an existing stream (10065)\n"
    )
    replicas = js.run("stream", "add", "R0", "--subjects", "r0", "--defaults", "--replicas", "-1")
    assert replicas.stderr == "nats: error: replicas should be >= 1\n"
    mirror = js.run("stream", "add", "M", "--mirror", "TAKEN", "--subjects", "m", "--defaults")
    assert mirror.stderr == "nats: error: mirrors cannot listen for messages on subjects\n"


def test_add_from_a_config_file_or_from_stream_info_json(js: NatsCli, tmp_path: Path) -> None:
    config = tmp_path / "fromfile.json"
    config.write_text(
        json.dumps(
            {
                "name": "FROMFILE",
                "subjects": ["file.>"],
                "storage": "memory",
                "retention": "limits",
                "max_msgs": 7,
                "max_bytes": -1,
                "max_age": 0,
                "max_msg_size": -1,
                "max_consumers": -1,
                "discard": "old",
                "num_replicas": 1,
                "metadata": {"_nats.level": "9", "owner": "ops"},
            }
        )
    )
    created = js.run("stream", "add", "--config", str(config), "--json")
    assert created.returncode == 0, created
    head, _, document = created.stdout.partition("\n\n")
    assert head == "Stream FROMFILE was created"
    info = json.loads(document)
    assert info["config"]["max_msgs"] == 7
    assert info["config"]["metadata"]["owner"] == "ops"
    assert info["config"]["metadata"]["_nats.level"] != "9"  # reserved keys are the server's

    exported = tmp_path / "info.json"
    exported.write_text(document)  # a whole `stream info --json` document
    again = js.run("stream", "add", "SECOND", "--config", str(exported), "--subjects", "second.>")
    assert again.returncode == 0, again
    assert again.stdout.startswith("Stream SECOND was created\n\nInformation for Stream SECOND")
    values = rows(again.stdout)
    assert values["Subjects"] == "second.>"
    assert values["Maximum Messages"] == "7"
    assert values["owner"] == "ops"

    missing = js.run("stream", "add", "--config", str(tmp_path / "absent.json"))
    assert missing.returncode == 1
    assert "absent.json" in missing.stderr and "does not exist" in missing.stderr


def test_validate_prints_the_config_and_output_writes_it_without_creating(
    js: NatsCli, arrange: Arrange, tmp_path: Path
) -> None:
    valid = js.run(
        "stream", "add", "CHECKED", "--subjects", "checked.>", "--defaults", "--validate"
    )
    assert valid.returncode == 0, valid
    document, _, verdict = valid.stdout.rpartition("\n\n")
    assert json.loads(document)["subjects"] == ["checked.>"]
    assert json.loads(document)["duplicate_window"] == 120_000_000_000
    assert verdict == (
        "Configuration is a valid Stream matching io.nats.jetstream.api.v1.stream_configuration\n"
    )
    wildcard = js.run("stream", "add", "ALL", "--subjects", ">", "--defaults", "--validate")
    assert wildcard.returncode == 1
    assert wildcard.stderr == (
        "nats: error: Validation Failed: subjects cannot be '>' when acknowledgement is enabled\n"
    )
    target = tmp_path / "saved.json"
    saved = js.run(
        "stream", "add", "SAVED", "--subjects", "saved", "--defaults", "--output", str(target)
    )
    assert saved.returncode == 0 and saved.stdout == ""
    assert json.loads(target.read_text())["name"] == "SAVED"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    names = arrange.api("STREAM.NAMES").get("streams") or []
    assert "CHECKED" not in names and "SAVED" not in names


# -- looking ----------------------------------------------------------------------------------------


def test_ls_shows_a_table_smallest_first_names_and_json(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("LSBIG", "lsbig")
    arrange.stream("LSSMALL", "lssmall", description="tiny")
    arrange.stream("KV_settings", "$KV.settings.>")
    arrange.publish("lsbig", "x" * 100)
    table = js.run("stream", "ls")
    assert table.returncode == 0, table
    lines = table.stdout.splitlines()
    assert cells(lines[1]) == ["Streams"]
    assert cells(lines[3]) == ["Name", "Description", "Created", "Messages", "Size", "Last Message"]
    body = [cells(line) for line in lines if line.startswith("│ LS")]
    assert [row[0] for row in body] == ["LSSMALL", "LSBIG"]
    assert body[0][1] == "tiny" and body[0][3] == "0" and body[0][5] == "never"
    assert re.fullmatch(STAMP, body[0][2])
    assert body[1][3] == "1" and re.fullmatch(r"[\d.]+m?s", body[1][5])
    assert "KV_settings" not in table.stdout
    assert table.stdout.endswith("╯\n\n")

    as_json = json.loads(js.run("stream", "list", "--json").stdout)
    assert {"LSBIG", "LSSMALL"} <= set(as_json) and "KV_settings" not in as_json
    everything = json.loads(js.run("stream", "-a", "ls", "-j").stdout)
    assert "KV_settings" in everything
    matching = js.run("str", "l", "--subject", "lssmall", "--names", "-a")
    assert matching.stdout == "LSSMALL\n"


def test_info_json_is_the_stream_info_and_state_shows_only_state(
    js: NatsCli, arrange: Arrange
) -> None:
    arrange.stream("INFO", "info.>")
    arrange.publish("info.a", "one")
    document = js.run("stream", "info", "INFO", "-j")
    assert document.returncode == 0, document
    info = json.loads(document.stdout)
    assert set(info) >= {"config", "created", "state", "ts"} and "type" not in info
    assert info["config"]["name"] == "INFO"
    assert info["state"]["messages"] == 1
    assert "\\u003e" in document.stdout  # Go's JSON escaping of `>`

    state = js.run("s", "state", "INFO")
    assert state.returncode == 0, state
    assert re.match(rf"State for Stream INFO created {STAMP}\n\nState:\n\n", state.stdout)
    assert "Options:" not in state.stdout
    values = rows(state.stdout)
    assert values["Messages"] == "1"
    assert re.fullmatch(rf"1 @ {STAMP}", values["First Sequence"])
    assert values["Number of Subjects"] == "1"
    assert state.stdout.endswith("\n\n")


def test_unknown_streams_are_errors_without_a_terminal(js: NatsCli) -> None:
    info = js.run("stream", "info", "MISSING")
    assert info.returncode == 1
    assert info.stderr == (
        "nats: error: could not pick a Stream to operate on: "
        "cannot pick a Stream without a terminal and no Stream name supplied\n"
    )
    removed = js.run("stream", "rm", "MISSING", "-f")
    assert removed.returncode == 1
    assert removed.stderr == "nats: error: stream not found (10059)\n"


def test_report_lists_every_stream(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("REPORTED", "reported")
    arrange.publish("reported", "a", "b", "c")
    report = js.run("stream", "report", "--name")
    assert report.returncode == 0, report
    assert report.stdout.startswith("Obtaining Stream stats\n\n")
    lines = report.stdout.splitlines()
    assert cells(lines[3]) == ["Stream Report"]
    assert cells(lines[5]) == [
        "Stream", "Storage", "Placement", "Consumers", "Messages", "Bytes", "Lost", "Deleted",
        "API Level", "Replicas",
    ]  # fmt: skip
    row = next(cells(line) for line in lines if line.startswith("│ REPORTED "))
    assert row[:5] == ["REPORTED", "Memory", "", "0", "3"]
    assert row[6:9] == ["0", "0", "0"]


# -- messages ---------------------------------------------------------------------------------------


def test_get_shows_a_stored_message_with_its_headers(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("GETS", "gets.>")
    arrange.publish("gets.one", '{"id":1}', headers={"Trace": "abc"})
    arrange.publish("gets.two", "second")
    item = js.run("stream", "get", "GETS", "1")
    assert item.returncode == 0, item
    assert re.fullmatch(
        r"Item: GETS#1 received \d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC \([\d.]+m?s\) "
        r"on Subject gets\.one\n\nHeaders:\n  Trace: abc\n\n\{\"id\":1\}\n\n\n",
        item.stdout,
    ), item.stdout
    last = js.run("stream", "get", "GETS", "-S", "gets.two")
    assert "Item: GETS#2" in last.stdout and last.stdout.endswith("\nsecond\n\n\n")
    stored = json.loads(js.run("stream", "get", "GETS", "2", "--json").stdout)
    assert stored["subject"] == "gets.two" and stored["seq"] == 2
    assert stored["data"] == "c2Vjb25k"  # base64 of "second"
    missing = js.run("stream", "get", "GETS", "9")
    assert missing.returncode == 1
    assert missing.stderr == "nats: error: could not retrieve GETS#9: no message found (10037)\n"
    unasked = js.run("stream", "get", "GETS")
    assert unasked.stderr == f"nats: error: invalid input: {NO_TERMINAL}\n"


def test_rmm_removes_one_message(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("RMM", "rmm")
    arrange.publish("rmm", "m1", "m2", "m3")
    refused = js.run("stream", "rmm", "RMM", "2")
    assert refused.returncode == 1
    assert refused.stderr == f"nats: error: could not obtain confirmation: {NO_CONFIRM}\n"
    removed = js.run("stream", "rmm", "RMM", "2", "-f")
    assert removed.returncode == 0 and removed.stdout == ""
    state = arrange.api("STREAM.INFO.RMM")["state"]
    assert state["messages"] == 2 and state["num_deleted"] == 1
    again = js.run("stream", "rmm", "RMM", "2", "-f")
    assert again.returncode == 1
    assert again.stderr == "nats: error: sequence 2 not found (10043)\n"


def test_purge_by_subject_keep_and_sequence(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("PURGE", "purge.>")
    arrange.publish("purge.a", "a1", "a2", "a3", "a4")
    arrange.publish("purge.b", "b1", "b2", "b3", "b4")
    by_subject = js.run("stream", "purge", "PURGE", "--subject", "purge.a", "--keep", "1", "-f")
    assert by_subject.returncode == 0, by_subject
    assert re.match(
        rf"Purged 3 messages from PURGE\n\nState for Stream PURGE created {STAMP}\n",
        by_subject.stdout,
    )
    assert rows(by_subject.stdout)["Messages"] == "5"
    below = js.run("stream", "purge", "PURGE", "--seq", "7", "-f", "--json")
    assert below.stdout.startswith("Purged 3 messages from PURGE\n\n")
    assert json.loads(below.stdout.partition("\n\n")[2])["state"]["messages"] == 2
    both = js.run("stream", "purge", "PURGE", "--seq", "2", "--keep", "1", "-f")
    assert both.returncode == 1
    assert both.stderr == "nats: error: sequence and keep cannot be combined when purging\n"
    unconfirmed = js.run("stream", "purge", "PURGE")
    assert unconfirmed.stderr == f"nats: error: could not obtain confirmation: {NO_CONFIRM}\n"
    assert arrange.api("STREAM.INFO.PURGE")["state"]["messages"] == 2


def test_view_needs_a_terminal(js: NatsCli) -> None:
    result = js.run("stream", "view", "ORDERS")
    assert result.returncode == 1
    assert result.stderr == "nats: error: interactive stream paging requires a valid terminal\n"


# -- edit / copy / rm ---------------------------------------------------------------------------------


def test_edit_dry_run_shows_the_difference_and_exits_1(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("EDITED", "edited.a")
    dry = js.run(
        "stream", "edit", "EDITED", "--max-msgs", "10", "--subjects", "edited.a,edited.b",
        "--dry-run",
    )  # fmt: skip
    assert dry.returncode == 1, dry
    assert dry.stderr == ""
    assert dry.stdout.startswith("Differences (-old +new):\n")
    assert '-   "max_msgs": -1,' in dry.stdout and '+   "max_msgs": 10,' in dry.stdout
    assert '+   "subjects": ["edited.a", "edited.b"],' in dry.stdout
    same = js.run("stream", "edit", "EDITED", "--subjects", "edited.a", "--dry-run")
    assert same.returncode == 0 and same.stdout == ""
    nothing = js.run("stream", "edit", "EDITED", "--subjects", "edited.a")
    assert nothing.returncode == 0 and nothing.stdout == "No difference in configuration\n"
    unconfirmed = js.run("stream", "edit", "EDITED", "--max-msgs", "10")
    assert unconfirmed.returncode == 1
    assert unconfirmed.stderr == f"nats: error: could not obtain confirmation: {NO_CONFIRM}\n"
    assert arrange.api("STREAM.INFO.EDITED")["config"]["max_msgs"] == -1


def test_edit_with_force_updates_the_stream(js: NatsCli, arrange: Arrange, tmp_path: Path) -> None:
    arrange.stream("UPDATED", "updated")
    edited = js.run(
        "stream", "update", "UPDATED", "--max-msgs", "10", "--description", "now limited", "-f"
    )
    assert edited.returncode == 0, edited
    assert edited.stdout.startswith("Differences (-old +new):\n")
    assert "Stream UPDATED was updated\n\nInformation for Stream UPDATED" in edited.stdout
    values = rows(edited.stdout.partition("was updated")[2])
    assert values["Maximum Messages"] == "10" and values["Description"] == "now limited"

    config = arrange.api("STREAM.INFO.UPDATED")["config"]
    config["max_age"] = 3_600_000_000_000
    path = tmp_path / "updated.json"
    path.write_text(json.dumps(config))
    from_file = js.run("stream", "edit", "UPDATED", "--config", str(path), "-f")
    assert from_file.returncode == 0, from_file
    assert rows(from_file.stdout.partition("was updated")[2])["Maximum Age"] == "1h0m0s"

    editor = tmp_path / "editor.py"
    editor.write_text(
        "import sys\n"
        "path = sys.argv[1]\n"
        "text = open(path).read()\n"
        "open(path, 'w').write(text.replace('max_msgs: 10', 'max_msgs: 55'))\n"
    )
    in_editor = js.run(
        "stream", "edit", "UPDATED", "-i", "-f", env={"EDITOR": f"{sys.executable} {editor}"}
    )
    assert in_editor.returncode == 0, in_editor
    assert '+   "max_msgs": 55,' in in_editor.stdout
    assert arrange.api("STREAM.INFO.UPDATED")["config"]["max_msgs"] == 55

    mirror = js.run("stream", "edit", "UPDATED", "--mirror", "X", "-f")
    assert mirror.stderr == (
        "nats: error: could not create new configuration for Stream UPDATED: "
        "cannot edit mirrors, or sources using the CLI, use --config instead\n"
    )


def test_copy_creates_a_stream_from_another_ones_config(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("ORIGINAL", "original", max_msgs=5)
    copied = js.run("stream", "cp", "ORIGINAL", "DUPLICATE", "--subjects", "duplicate")
    assert copied.returncode == 0, copied
    assert copied.stdout.startswith(
        "Stream DUPLICATE was created\n\nInformation for Stream DUPLICATE"
    )
    values = rows(copied.stdout)
    assert values["Subjects"] == "duplicate"
    assert values["Maximum Messages"] == "5" and values["Storage"] == "Memory"
    same = js.run("stream", "copy", "ORIGINAL", "ORIGINAL")
    assert same.stderr == "nats: error: source and destination Stream names cannot be the same\n"


def test_rm_needs_confirmation_or_force(js: NatsCli, arrange: Arrange) -> None:
    arrange.stream("DOOMED", "doomed")
    refused = js.run("stream", "rm", "DOOMED")
    assert refused.returncode == 1
    assert refused.stderr == f"nats: error: could not obtain confirmation: {NO_CONFIRM}\n"
    removed = js.run("stream", "delete", "DOOMED", "-f")
    assert removed.returncode == 0 and removed.stdout == ""
    assert "DOOMED" not in (arrange.api("STREAM.NAMES").get("streams") or [])
    nameless = js.run("stream", "rm", "-f")
    assert nameless.stderr == "nats: error: --force requires a stream name\n"


def test_mirrors_and_sources_get_their_own_sections_and_report(
    js: NatsCli, arrange: Arrange
) -> None:
    arrange.stream("ORIGIN", "origin.>")
    arrange.publish("origin.a", "one")
    arrange.stream("COPYOF", mirror={"name": "ORIGIN"})
    arrange.stream("MERGED", "merged", sources=[{"name": "ORIGIN", "filter_subject": "origin.a"}])
    mirror = js.run("stream", "info", "COPYOF")
    assert mirror.returncode == 0, mirror
    assert "\n\nReplication:\n\n" in mirror.stdout
    assert "\n\nMirror Information:\n\n" in mirror.stdout
    values = rows(mirror.stdout)
    assert values["Mirror"] == "ORIGIN"
    assert values["Stream Name"] == "ORIGIN"
    assert re.fullmatch(r"\d+", values["Lag"])
    assert "Subjects" not in values

    report = js.run("stream", "report")
    assert report.returncode == 0, report
    replication = report.stdout.partition("Replication Report")[2].splitlines()
    assert cells(replication[2]) == [
        "Stream", "Kind", "API Prefix", "Source Stream", "Filters and Transforms", "Active",
        "Lag", "Error",
    ]  # fmt: skip
    links = {(row[0], row[1]): row for row in map(cells, replication[4:]) if len(row) == 8}
    assert links[("COPYOF", "Mirror")][3] == "ORIGIN"
    assert links[("MERGED", "Source")][3:5] == ["ORIGIN", "origin.a untransformed"]


def test_empty_accounts_and_accounts_without_jetstream(
    tmp_path: Path, sys_server: RunningServer, js_server: RunningServer
) -> None:
    # js_server is not used, but asking for it keeps this JetStream test to the servers that
    # have JetStream (conftest's FEATURES_NOT_YET_IN_PYNATS)
    app_url = sys_server.url.replace("nats://", "nats://app:app@")
    app = NatsCli(tmp_path, app_url)
    assert app.run("stream", "ls").stdout == "No Streams defined\n"
    Arrange(app_url).stream("KV_only", "$KV.only.>")
    hidden = app.run("stream", "ls")
    assert hidden.stdout == "No Streams defined, pass -a to include system streams\n"
    assert app.run("stream", "ls", "--json").stdout == "null\n"

    plain = NatsCli(tmp_path, sys_server.url.replace("nats://", "nats://plain:plain@"))
    refused = plain.run("stream", "ls")
    assert refused.returncode == 1
    assert refused.stderr == (
        "nats: error: could not list streams: JetStream not enabled for account (10039)\n"
    )
