"""`nats stream backup` / `nats stream restore` and `nats account backup` / `restore` (cli.md §7.10).

Every test runs the real `nats` program against one JetStream server of the module's kind (the
Go oracle, then pynats); the cross-server tests take a backup from a server of the other kind
and restore it into this one, so a backup of either server restores with either. Server state is
arranged and inspected through nats-py directly.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from pynats.cli.stream.backup import (
    ARCHIVE_FILE,
    LEGACY_ARCHIVE_FILE,
    META_FILE,
    ArchiveProbe,
    SnapshotOptions,
    _check_end_of_snapshot,
    chunk_sizes,
)
from pynats.cli.ui.errors import CliError
from tests.cli.conftest import NatsCli
from tests.support.servers import RunningServer, start_server

SUMMARY = re.compile(
    r'Received [\d.]+ (?:B|KiB|MiB) compressed data in ([\d,]+) chunks for stream "(\w+)"'
    r" in [\d.]+(?:ms|s|µs), [\d.]+ (?:B|KiB|MiB) uncompressed \n"
)


# -- arranging and inspecting state through nats-py ------------------------------------------------


class Server:
    """One server's JetStream API, called through nats-py (setup is not under test)."""

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

        return self._run(call)

    def ok(self, subject: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = self.api(subject, payload)
        assert "error" not in reply, reply
        return reply

    def filled_stream(self, name: str, count: int = 20, body_size: int = 200) -> None:
        """A file stream of `count` (at least 7) messages, every third with headers, message 4
        deleted, and a durable consumer that has been delivered and acked the first five."""
        self.ok(
            f"STREAM.CREATE.{name}",
            {"name": name, "subjects": [f"{name.lower()}.>"], "storage": "file"},
        )

        async def fill(nc: Any) -> None:
            for i in range(1, count + 1):
                headers = {"Order-Id": f"o-{i}", "Nats-Msg-Id": f"m-{i}"} if i % 3 == 0 else None
                body = (f"{i:04d}" * body_size)[:body_size].encode() + os.urandom(body_size)
                ack = await nc.request(f"{name.lower()}.{i % 4}", body, headers=headers, timeout=5)
                assert b'"seq"' in ack.data, ack.data

        self._run(fill)
        self.ok(f"STREAM.MSG.DELETE.{name}", {"seq": 4})
        self.ok(
            f"CONSUMER.CREATE.{name}.WORKER",
            {
                "stream_name": name,
                "config": {"durable_name": "WORKER", "ack_policy": "explicit"},
            },
        )

        async def consume(nc: Any) -> None:
            sub = await nc.subscribe(nc.new_inbox())
            subject = f"$JS.API.CONSUMER.MSG.NEXT.{name}.WORKER"
            await nc.publish(subject, json.dumps({"batch": 5}).encode(), reply=sub.subject)
            for _ in range(5):
                msg = await sub.next_msg(timeout=5)
                await nc.request(msg.reply, b"+ACK", timeout=5)

        self._run(consume)

    def info(self, name: str) -> dict[str, Any]:
        return self.ok(f"STREAM.INFO.{name}")

    def consumer(self, stream: str, name: str) -> dict[str, Any]:
        return self.ok(f"CONSUMER.INFO.{stream}.{name}")

    def message(self, stream: str, seq: int) -> dict[str, Any]:
        return self.api(f"STREAM.MSG.GET.{stream}", {"seq": seq})

    def delete(self, name: str) -> None:
        self.ok(f"STREAM.DELETE.{name}")


def kept_state(info: dict[str, Any]) -> dict[str, Any]:
    """What a restore must bring back of a stream's state."""
    state = info["state"]
    return {
        key: state.get(key)
        for key in (
            "messages",
            "bytes",
            "first_seq",
            "last_seq",
            "num_deleted",
            "num_subjects",
            "consumer_count",
        )
    }


def kept_progress(info: dict[str, Any]) -> dict[str, Any]:
    """What a restore must bring back of a consumer without pending acks."""
    return {
        "delivered": info["delivered"]["stream_seq"],
        "ack_floor": info["ack_floor"]["stream_seq"],
        "num_pending": info["num_pending"],
        "num_ack_pending": info["num_ack_pending"],
    }


# -- fixtures ---------------------------------------------------------------------------------------


def _jetstream_server(kind: str, store: Path) -> RunningServer:
    return start_server(["-js", f"-sd={store}"], oracle=(kind == "go"))


@pytest.fixture(scope="module")
def other_server(
    server_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A JetStream server of the other kind: backups cross between the two."""
    other = "pynats" if server_kind == "go" else "go"
    server = _jetstream_server(other, tmp_path_factory.mktemp("other"))
    yield server
    server.stop()


@pytest.fixture
def js(tmp_path: Path, js_server: RunningServer) -> Iterator[NatsCli]:
    runner = NatsCli(tmp_path, js_server.url)
    yield runner
    runner.cleanup()


@pytest.fixture
def server(js_server: RunningServer) -> Server:
    return Server(js_server.url)


# -- stream backup and restore ------------------------------------------------------------------------


def test_backup_then_restore_brings_back_messages_deletes_and_consumers(
    js: NatsCli, server: Server, tmp_path: Path
) -> None:
    server.filled_stream("ORDERS")
    before = server.info("ORDERS")
    worker_before = server.consumer("ORDERS", "WORKER")
    target = tmp_path / "orders"

    backup = js.run("stream", "backup", "ORDERS", str(target))

    assert backup.returncode == 0, backup
    assert backup.stdout.startswith('Starting backup of Stream "ORDERS" with '), backup
    assert SUMMARY.search(backup.stdout), backup
    assert sorted(os.listdir(target)) == [META_FILE, ARCHIVE_FILE]
    meta = json.loads((target / META_FILE).read_text())
    assert meta["config"]["name"] == "ORDERS"
    assert meta["state"]["last_seq"] == 20
    assert (target / META_FILE).read_text().startswith('{\n  "config": {\n')

    server.delete("ORDERS")
    restore = js.run("stream", "restore", str(target))

    assert restore.returncode == 0, restore
    lines = restore.stdout.splitlines()
    assert lines[:3] == [f'Starting restore of Stream "ORDERS" from file "{target}"', "", ""]
    assert re.fullmatch(r'Restored stream "ORDERS" in \d+s', lines[3]), restore
    assert lines[4] == ""
    assert lines[5].startswith("Information for Stream  created "), restore
    assert "Deleted Messages: 1" in restore.stdout
    after = server.info("ORDERS")
    assert kept_state(after) == kept_state(before)
    assert kept_progress(server.consumer("ORDERS", "WORKER")) == kept_progress(worker_before)
    with_headers = server.message("ORDERS", 3)["message"]
    assert with_headers["hdrs"] and with_headers["subject"] == "orders.3"
    assert server.message("ORDERS", 4)["error"]["err_code"] == 10037  # still deleted


def test_backup_without_consumers_restores_the_stream_alone(
    js: NatsCli, server: Server, tmp_path: Path
) -> None:
    server.filled_stream("LONELY", count=7)
    target = tmp_path / "lonely"

    backup = js.run("stream", "snapshot", "LONELY", str(target), "--no-consumers", "--no-progress")
    server.delete("LONELY")
    restore = js.run("stream", "restore", str(target), "--no-progress")

    assert backup.returncode == 0, backup
    assert restore.returncode == 0, restore
    info = server.info("LONELY")
    assert info["state"]["consumer_count"] == 0
    assert info["state"]["messages"] == 6
    assert "Sent 1 chunks, server will now restore the snapshot" in restore.stderr


def test_small_chunks_arrive_in_many_acknowledged_pieces(
    js: NatsCli, server: Server, tmp_path: Path
) -> None:
    server.filled_stream("CHUNKY", count=40, body_size=500)
    before = server.info("CHUNKY")
    target = tmp_path / "chunky"

    backup = js.run(
        "stream", "backup", "CHUNKY", str(target), "--chunk-size", "1KB", "--window-size", "4KB"
    )
    server.delete("CHUNKY")
    restore = js.run("stream", "restore", str(target))

    assert backup.returncode == 0, backup
    match = SUMMARY.search(backup.stdout)
    assert match and int(match.group(1).replace(",", "")) >= 20, backup
    assert restore.returncode == 0, restore
    assert kept_state(server.info("CHUNKY")) == kept_state(before)


def test_check_asks_the_server_to_check_the_stream_first(
    js: NatsCli, server: Server, tmp_path: Path
) -> None:
    server.filled_stream("CHECKED", count=7)

    backup = js.run("stream", "backup", "CHECKED", str(tmp_path / "checked"), "--check")

    assert backup.returncode == 0, backup
    assert "Health Check was requested, this can take a long time" in backup.stdout


def test_restore_onto_an_existing_stream_fails(js: NatsCli, server: Server, tmp_path: Path) -> None:
    server.filled_stream("TAKEN", count=7)
    target = tmp_path / "taken"
    assert js.run("stream", "backup", "TAKEN", str(target)).returncode == 0

    restore = js.run("stream", "restore", str(target))

    assert restore.returncode == 1
    assert restore.stderr == 'nats: error: Stream "TAKEN" already exist\n'
    assert restore.stdout == ""


def test_backup_of_an_unknown_stream_fails(js: NatsCli, tmp_path: Path) -> None:
    result = js.run("stream", "backup", "NOPE", str(tmp_path / "nope"))

    assert result.returncode == 1
    assert result.stderr == "nats: error: stream not found (10059)\n"
    assert not (tmp_path / "nope").exists()


def test_restore_needs_a_backup_directory(js: NatsCli, tmp_path: Path) -> None:
    missing = js.run("stream", "restore", str(tmp_path / "absent"))
    empty = js.run("stream", "restore", str(tmp_path))

    assert missing.returncode == 1
    assert f"path '{tmp_path / 'absent'}' does not exist" in missing.stderr
    assert empty.returncode == 1
    assert empty.stderr == (
        f"nats: error: restore failed: open {tmp_path / META_FILE}: no such file or directory\n"
    )


def test_restore_with_a_config_file(js: NatsCli, server: Server, tmp_path: Path) -> None:
    server.filled_stream("TUNED", count=7)
    target = tmp_path / "tuned"
    assert js.run("stream", "backup", "TUNED", str(target)).returncode == 0
    config = json.loads((target / META_FILE).read_text())["config"]
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps({**config, "name": "OTHER"}))
    described = tmp_path / "described.json"
    described.write_text(json.dumps({"config": {**config, "description": "restored"}}))
    server.delete("TUNED")

    refused = js.run("stream", "restore", str(target), "--config", str(renamed))
    restored = js.run("stream", "restore", str(target), "--config", str(described))

    assert refused.returncode == 1
    assert refused.stderr == "nats: error: stream names may not be changed during restore\n"
    assert restored.returncode == 0, restored
    assert server.info("TUNED")["config"]["description"] == "restored"
    assert server.info("TUNED")["state"]["messages"] == 6


def test_bad_chunk_size_is_refused(js: NatsCli, tmp_path: Path) -> None:
    result = js.run("stream", "backup", "X", str(tmp_path / "x"), "--chunk-size", "lots")

    assert result.returncode == 1
    assert "bytes must end in" in result.stderr


# -- across servers ------------------------------------------------------------------------------------


def test_a_backup_of_the_other_server_restores_here_and_back(
    js: NatsCli, server: Server, other_server: RunningServer, tmp_path: Path
) -> None:
    there = Server(other_server.url)
    there.filled_stream("TRAVEL")
    before = there.info("TRAVEL")
    worker_before = there.consumer("TRAVEL", "WORKER")
    from_there = tmp_path / "from-there"
    from_here = tmp_path / "from-here"
    elsewhere = NatsCli(tmp_path / "elsewhere-home", other_server.url)
    (tmp_path / "elsewhere-home").mkdir()

    taken = elsewhere.run("stream", "backup", "TRAVEL", str(from_there))
    restored_here = js.run("stream", "restore", str(from_there))

    assert taken.returncode == 0, taken
    assert restored_here.returncode == 0, restored_here
    assert kept_state(server.info("TRAVEL")) == kept_state(before)
    assert kept_progress(server.consumer("TRAVEL", "WORKER")) == kept_progress(worker_before)

    taken_here = js.run("stream", "backup", "TRAVEL", str(from_here))
    there.delete("TRAVEL")
    restored_there = elsewhere.run("stream", "restore", str(from_here))

    assert taken_here.returncode == 0, taken_here
    assert restored_there.returncode == 0, restored_there
    assert kept_state(there.info("TRAVEL")) == kept_state(before)
    assert kept_progress(there.consumer("TRAVEL", "WORKER")) == kept_progress(worker_before)


# -- account backup and restore ------------------------------------------------------------------------


def test_account_backup_and_restore_every_stream(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, server_kind: str
) -> None:
    account_server = _jetstream_server(server_kind, tmp_path_factory.mktemp("account"))
    try:
        server = Server(account_server.url)
        server.filled_stream("FIRST", count=7)
        server.filled_stream("SECOND", count=9)
        before = {name: kept_state(server.info(name)) for name in ("FIRST", "SECOND")}
        home = tmp_path / "home"
        home.mkdir()
        cli = NatsCli(home, account_server.url)
        target = tmp_path / "account"

        unconfirmed = cli.run("account", "backup", str(target))

        assert unconfirmed.returncode == 1, unconfirmed
        assert "cannot ask for confirmation without a terminal" in unconfirmed.stderr
        assert not target.exists()

        backup = cli.run("account", "backup", str(target), "--force")

        assert backup.returncode == 0, backup
        assert backup.stdout.startswith(
            f"Performing backup of all streams to {target}\n\n    Streams: 2\n"
        ), backup
        assert "  Consumers: 2\n\n" in backup.stdout
        assert sorted(os.listdir(target)) == ["FIRST", "SECOND"]
        assert len(SUMMARY.findall(backup.stdout)) == 2

        refused = cli.run("account", "restore", str(target))
        assert refused.returncode == 1
        assert refused.stderr == 'nats: error: stream "FIRST" exists already\n'

        server.delete("FIRST")
        server.delete("SECOND")
        restore = cli.run("account", "restore", str(target))

        assert restore.returncode == 0, restore
        assert restore.stdout.startswith(
            f'Restoring backup of all 2 streams in directory "{target}"\n\n'
        ), restore
        assert restore.stdout.count("Information for Stream  created") == 2
        after = {name: kept_state(server.info(name)) for name in ("FIRST", "SECOND")}
        assert after == before
    finally:
        account_server.stop()


# -- nats-server 2.14's tar backups -----------------------------------------------------------------


def _server_214() -> str | None:
    try:
        from tests.support.servers import oracle_214_server_path
    except ImportError:
        return None
    try:
        return oracle_214_server_path()
    except RuntimeError:
        return None


def test_a_tar_backup_of_nats_server_214_keeps_its_name_and_restores(
    js: NatsCli, server: Server, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    executable = _server_214()
    if executable is None:
        pytest.skip("nats-server 2.14 is not installed (make test installs it)")
    old = start_server(["-js", f"-sd={tmp_path_factory.mktemp('v214')}"], executable=executable)
    try:
        Server(old.url).filled_stream("OLDIE", count=7)
        before = kept_state(Server(old.url).info("OLDIE"))
        home = tmp_path / "old-home"
        home.mkdir()
        target = tmp_path / "oldie"

        backup = NatsCli(home, old.url).run("stream", "backup", "OLDIE", str(target))
    finally:
        old.stop()

    assert backup.returncode == 0, backup
    assert sorted(os.listdir(target)) == [META_FILE, LEGACY_ARCHIVE_FILE]
    restore = js.run("stream", "restore", str(target))
    assert restore.returncode == 0, restore
    assert kept_state(server.info("OLDIE")) == before


# -- the pieces without a server ----------------------------------------------------------------------


def test_snapshot_request_leaves_unset_sizes_to_the_server() -> None:
    assert SnapshotOptions().request("_INBOX.x") == {
        "deliver_subject": "_INBOX.x",
        "no_consumers": False,
    }
    assert SnapshotOptions(consumers=False, check=True, chunk_size=1024, window_size=4096).request(
        "_INBOX.y"
    ) == {
        "deliver_subject": "_INBOX.y",
        "no_consumers": True,
        "chunk_size": 1024,
        "window_size": 4096,
        "jsck": True,
    }
    assert chunk_sizes("128KB", "") == (128 * 1024, 0)


@pytest.mark.parametrize(
    ("headers", "failure"),
    [
        ({}, None),
        ({"Status": "204"}, None),
        ({"Status": "408", "Description": "No Flow Response"}, "408 No Flow Response"),
        ({"Status": "408", "Description": "No Interest"}, "408 No Interest"),
        ({"Status": "500", "Description": "store is closed"}, "500 store is closed"),
    ],
)
def test_the_end_of_a_snapshot_says_whether_it_worked(
    headers: dict[str, str], failure: str | None
) -> None:
    if failure is None:
        _check_end_of_snapshot(headers)
    else:
        with pytest.raises(CliError, match=f"^{failure}$"):
            _check_end_of_snapshot(headers)


def test_the_probe_counts_uncompressed_bytes_and_knows_an_archive() -> None:
    from pynats.jetstream.s2 import S2Encoder

    encoder = S2Encoder()
    stream = encoder.write(b"NATSARC1" + b"x" * 100_000) + encoder.flush()
    probe = ArchiveProbe()
    total = sum(probe.feed(stream[i : i + 1000]) for i in range(0, len(stream), 1000))

    assert total == probe.uncompressed == 100_008
    assert probe.is_archive

    garbage = ArchiveProbe()
    assert garbage.feed(b"not an s2 stream at all") == 0
    assert not garbage.is_archive
