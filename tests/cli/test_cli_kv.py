"""`nats kv`: the real `nats` program against a JetStream server, as natscli behaves (cli.md §9).

One server per module; every test works in buckets of its own. State a test only needs as a
starting point is written with nats-py directly (`Seeder`, fast); what is under test always
runs as the `nats` program. Confirmations are answered on a pseudo-terminal through pexpect;
without a terminal they must fail with natscli's words.
"""

from __future__ import annotations

import asyncio
import base64
import queue
import re
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import nats
import pexpect
import pytest
from nats.js import api

from tests.cli.conftest import WAIT_S, NatsCli
from tests.support.servers import RunningServer

STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
NO_TERMINAL = "nats: error: cannot ask for confirmation without a terminal\n"
T = TypeVar("T")


class Seeder:
    """Writes a test's starting state with nats-py, one short connection per call."""

    def __init__(self, url: str) -> None:
        self.url = url

    def run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        async def main() -> T:
            nc = await nats.connect(self.url)
            try:
                return await work(nc.jetstream())
            finally:
                await nc.close()

        return asyncio.run(main())

    def bucket(self, name: str, *entries: tuple[str, bytes | None], history: int = 1) -> None:
        """A KV bucket with `entries` written in order (a None value deletes the key)."""

        async def work(js: Any) -> None:
            store = await js.create_key_value(api.KeyValueConfig(bucket=name, history=history))
            for key, value in entries:
                if value is None:
                    await store.delete(key)
                else:
                    await store.put(key, value)

        self.run(work)


def ok(runner: NatsCli, *args: str, input: str | bytes | None = None) -> str:
    """Run a command that must succeed; its stdout."""
    result = runner.run(*args, input=input)
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr, result
    return result.stdout


def fails(runner: NatsCli, *args: str) -> str:
    """Run a command that must fail the natscli way (exit 1, no traceback); its stderr."""
    result = runner.run(*args)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result
    return result.stderr


def on_terminal(runner: NatsCli, *args: str) -> pexpect.spawn:
    """The `nats` program on a pseudo-terminal (stdin and stdout are a TTY)."""
    argv = runner.command(args)
    return pexpect.spawn(
        argv[0],
        argv[1:],
        env=runner.environment({"TERM": "xterm"}),
        cwd=str(runner.home),
        encoding="utf-8",
        timeout=WAIT_S,
        dimensions=(40, 160),
    )


def finish(child: pexpect.spawn) -> tuple[int, str]:
    """Wait for the program on the terminal to end: its exit status and remaining output."""
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus, child.before


def table_rows(table: str) -> list[list[str]]:
    """The cells of each line of a rounded table that has column separators."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in table.splitlines()
        if line.startswith("│") and line.count("│") > 2
    ]


def cli_for(home: Path, server: RunningServer, bytecode: Path) -> NatsCli:
    """`nats -s <server>` whose compiled modules are cached in `bytecode` between runs.

    This environment sets PYTHONDONTWRITEBYTECODE, which makes every run of the program
    compile all of its modules again (~0.2 s each time); caching them outside the work tree
    changes nothing but the time these many short runs take.
    """
    runner = NatsCli(home, server.url)
    runner.env.pop("PYTHONDONTWRITEBYTECODE", None)
    runner.env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    return runner


@pytest.fixture(scope="module")
def bytecode(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bytecode")


@pytest.fixture
def kv(tmp_path: Path, js_server: RunningServer, bytecode: Path) -> Iterator[NatsCli]:
    runner = cli_for(tmp_path, js_server, bytecode)
    yield runner
    runner.cleanup()


@pytest.fixture
def seed(js_server: RunningServer) -> Seeder:
    return Seeder(js_server.url)


def test_ls_without_buckets_says_so(kv: NatsCli) -> None:
    assert ok(kv, "kv", "ls") == "No Key-Value buckets found\n"
    assert ok(kv, "kv", "ls", "--names") == ""


def test_add_creates_the_bucket_and_shows_its_info_screen(kv: NatsCli) -> None:
    screen = ok(
        kv, "kv", "add", "CONFIG", "--history", "5", "--ttl", "1h", "--description", "app settings",
        "--max-value-size", "1KB", "--max-bucket-size", "1MiB", "--storage", "memory",
    )  # fmt: skip
    lines = screen.splitlines()
    assert re.fullmatch(rf"Information for Key-Value Store Bucket CONFIG created {STAMP}", lines[0])
    assert lines[1:4] == ["", "Configuration:", ""]
    rows = dict(re.match(r" *([^:]+): ?(.*)", line).groups() for line in lines[4:] if ": " in line)
    assert rows["Bucket Name"] == "CONFIG"
    assert rows["History Kept"] == "5"
    assert rows["Values Stored"] == "0"
    assert rows["Compressed"] == "false"
    assert rows["Per-Key TTL Supported"] == "false"
    assert rows["Backing Store Kind"] == "JetStream"
    assert rows["Description"] == "app settings"
    assert rows["Maximum Bucket Size"] == "1.0 MiB"
    assert rows["Maximum Value Size"] == "1.0 KiB"
    assert rows["Maximum Age"] == "1h0m0s"
    assert rows["JetStream Stream"] == "KV_CONFIG"
    assert rows["Storage"] == "Memory"
    assert "Cluster Information:" in lines
    colons = {line.index(": ") for line in lines[4:] if re.match(r" +\S[^:]*: ", line)}
    assert len(colons) == 1, screen  # labels are right-aligned on their colon
    for alias in ("info", "status", "view"):
        assert "History Kept: 5\n" in ok(kv, "kv", alias, "CONFIG")


def test_add_with_settings_beyond_the_client_config(kv: NatsCli) -> None:
    screen = ok(
        kv, "kv", "new", "TUNED", "--compress", "--metadata", "team=core", "--marker-ttl", "2s"
    )
    assert "Compressed: true\n" in screen
    assert "Per-Key TTL Supported: true\n" in screen
    assert "Limit Marker TTL: 2.00s\n" in screen
    assert re.search(r"^Metadata:\n\n +team: core$", screen, re.M), screen


def test_add_rejects_bad_names_and_limits(kv: NatsCli) -> None:
    assert fails(kv, "kv", "add", "bad.name") == "nats: error: nats: invalid bucket name\n"
    assert fails(kv, "kv", "add", "H", "--history", "65").startswith(
        "nats: error: invalid value for --history"
    )
    assert "bytes must end in B, K, KB, M, MB, G, GB, T or TB" in fails(
        kv, "kv", "add", "H", "--max-value-size", "1.5GB"
    )


def test_put_prints_the_value_and_get_shows_it(kv: NatsCli, seed: Seeder) -> None:
    seed.bucket("PG")
    assert ok(kv, "kv", "put", "PG", "db.host", "db01.internal") == "db01.internal\n"
    shown = ok(kv, "kv", "get", "PG", "db.host")
    assert re.fullmatch(
        rf"PG > db\.host revision: 1 created @ {STAMP}\n\ndb01\.internal\n\n", shown
    )
    assert ok(kv, "kv", "get", "PG", "db.host", "--raw") == "db01.internal"


def test_put_reads_stdin_and_get_shows_binary_as_base64(kv: NatsCli, seed: Seeder) -> None:
    seed.bucket("BIN", ("long", b"x" * 200))
    payload = b"line one\nline two\x00\xff"
    assert ok(kv, "kv", "put", "BIN", "blob", input=payload) == "\n"
    assert ok(kv, "kv", "get", "BIN", "blob").splitlines()[2] == base64.b64encode(payload).decode()
    lines = ok(kv, "kv", "get", "BIN", "long").splitlines()
    assert lines[2:] == [
        "Showing first 120 bytes of 200, use --raw for full data",
        "",
        "x" * 120,
        "",
    ]
    raw = subprocess.run(
        kv.command(("kv", "get", "BIN", "blob", "--raw")),
        capture_output=True,
        env=kv.environment(None),
        timeout=20,
    )
    assert raw.returncode == 0 and raw.stdout == payload


def test_missing_buckets_keys_and_bad_keys_are_one_line_errors(kv: NatsCli, seed: Seeder) -> None:
    seed.bucket("ERRS")
    assert fails(kv, "kv", "get", "ERRS", "nope") == "nats: error: nats: key not found\n"
    assert fails(kv, "kv", "put", "NOPE", "k", "v") == "nats: error: nats: bucket not found\n"
    assert fails(kv, "kv", "put", "ERRS", "bad key", "v") == "nats: error: nats: invalid key\n"
    assert fails(kv, "kv", "purge", "ERRS", "a*b", "-f") == "nats: error: nats: invalid key\n"
    assert fails(kv, "kv", "history", "ERRS", "nope") == "nats: error: nats: key not found\n"
    assert fails(kv, "kv", "ls", "NOPE") == (
        "nats: error: unable to load bucket: nats: bucket not found\n"
    )
    assert fails(kv, "kv", "get", "ERRS").startswith("error: required argument 'key' not provided")


def test_create_and_update_compare_revisions(kv: NatsCli, seed: Seeder) -> None:
    seed.bucket("CAS", history=5)
    assert ok(kv, "kv", "create", "CAS", "lock", "mine") == "mine\n"
    taken = fails(kv, "kv", "create", "CAS", "lock", "yours")
    assert "wrong last sequence: 1" in taken and taken.endswith(": key exists\n"), taken
    assert "wrong last sequence: 1" in fails(kv, "kv", "update", "CAS", "lock", "newer", "7")
    assert ok(kv, "kv", "update", "CAS", "lock", "newer", "1") == "newer\n"
    seed.run(lambda js: _delete(js, "CAS", "lock"))
    assert ok(kv, "kv", "create", "CAS", "lock", "again") == "again\n"
    assert ok(kv, "kv", "get", "CAS", "lock", "--revision", "2", "--raw") == "newer"


async def _delete(js: Any, bucket: str, key: str) -> None:
    await (await js.key_value(bucket)).delete(key)


def test_ls_lists_buckets_and_keys(kv: NatsCli, seed: Seeder) -> None:
    seed.bucket(
        "LIST", ("db.host", b"h"), ("db.port", b"5432"), ("web.port", b"80"), ("web.port", None)
    )
    ok(kv, "kv", "add", "EMPTY", "--description", "nothing yet")
    table = ok(kv, "kv", "ls")
    assert table.splitlines()[1].strip("│ ") == "Key-Value Buckets"
    rows = table_rows(table)
    assert rows[0] == ["Bucket", "Description", "Created", "Size", "Values", "Last Update"]
    by_name = {row[0]: row for row in rows[1:]}
    assert by_name["EMPTY"][1:2] + by_name["EMPTY"][3:6] == ["nothing yet", "0 B", "0", "never"]
    assert by_name["LIST"][4] == "3" and re.fullmatch(STAMP, by_name["LIST"][2])
    assert [row[0] for row in rows[1:]].index("EMPTY") < [row[0] for row in rows[1:]].index("LIST")
    assert {"EMPTY", "LIST"} <= set(ok(kv, "kv", "list", "-n").split())
    assert ok(kv, "kv", "ls", "LIST") == "db.host\ndb.port\n"
    assert ok(kv, "kv", "ls", "LIST", "*.port") == "db.port\n"
    verbose = ok(kv, "kv", "ls", "LIST", "-v", "--display-value")
    assert "Contents for bucket 'LIST'" in verbose
    assert re.search(rf"│ db\.port +│ {STAMP} │ +0 │ +2 │ 5432 +│", verbose), verbose
    assert ok(kv, "kv", "ls", "EMPTY") == "No keys found in bucket\n"


def test_history_shows_every_revision(kv: NatsCli, seed: Seeder) -> None:
    seed.bucket("HIST", ("k", b"first"), ("k", b"y" * 50), ("k", None), history=10)
    table = ok(kv, "kv", "history", "HIST", "k")
    assert "History for HIST > k" in table
    rows = table_rows(table)
    assert rows[0] == ["Key", "Revision", "Op", "Created", "Length", "Value"]
    assert [[r[0], r[1], r[2], r[4], r[5]] for r in rows[1:]] == [
        ["k", "1", "PUT", "5", "first"],
        ["k", "2", "PUT", "50", "y" * 15 + "..." + "y" * 15],
        ["k", "3", "DELETE", "0", ""],
    ]
    assert all(re.fullmatch(STAMP, r[3]) for r in rows[1:])


def test_confirmations_fail_without_a_terminal_and_force_skips_them(
    kv: NatsCli, seed: Seeder
) -> None:
    seed.bucket("CONF", ("k", b"v1"), ("k", b"v2"), ("gone", b"x"), ("gone", None), history=5)
    for args in (("del", "CONF", "k"), ("rm", "CONF"), ("purge", "CONF", "k"), ("compact", "CONF")):
        assert fails(kv, "kv", *args) == NO_TERMINAL
    assert ok(kv, "kv", "get", "CONF", "k", "--raw") == "v2"
    assert ok(kv, "kv", "purge", "CONF", "k", "-f") == ""
    assert [row[2] for row in table_rows(ok(kv, "kv", "history", "CONF", "k"))[1:]] == ["PURGE"]
    assert ok(kv, "kv", "compact", "CONF", "--force") == ""
    # the value under the recent delete marker is gone, the marker itself kept (< 30 minutes old)
    assert [row[2] for row in table_rows(ok(kv, "kv", "history", "CONF", "gone"))[1:]] == ["DELETE"]
    assert ok(kv, "kv", "rm", "CONF", "-f") == ""
    assert fails(kv, "kv", "info", "CONF") == "nats: error: nats: bucket not found\n"
    assert fails(kv, "kv", "del", "CONF", "-f") == "nats: error: nats: bucket not found\n"


def test_confirmations_on_a_terminal_act_only_on_yes(kv: NatsCli, seed: Seeder) -> None:
    seed.bucket("ASK", ("k", b"v"))
    child = on_terminal(kv, "kv", "del", "ASK", "k")
    child.expect_exact("? Delete key ASK > k? (y/N)")
    child.sendline("n")
    status, rest = finish(child)
    assert status == 0 and "Skipping delete" in rest
    child = on_terminal(kv, "kv", "purge", "ASK", "k")
    child.expect_exact("? Purge key ASK > k? (y/N)")
    child.sendline("")
    status, rest = finish(child)
    assert status == 0 and "Skipping purge" in rest
    child = on_terminal(kv, "kv", "compact", "ASK")
    child.expect_exact(
        "? Purge all historic values and audit trails for deleted keys in bucket ASK? (y/N)"
    )
    child.sendline("n")
    assert finish(child) == (0, " n\r\nSkipping delete\r\n")
    assert ok(kv, "kv", "get", "ASK", "k", "--raw") == "v"
    child = on_terminal(kv, "kv", "del", "ASK", "k")
    child.expect_exact("(y/N)")
    child.sendline("y")
    assert finish(child)[0] == 0
    assert fails(kv, "kv", "get", "ASK", "k") == "nats: error: nats: key not found\n"
    child = on_terminal(kv, "kv", "rm", "ASK")
    child.expect_exact("? Delete bucket ASK? (y/N)")
    child.sendline("y")
    assert finish(child)[0] == 0
    assert fails(kv, "kv", "info", "ASK") == "nats: error: nats: bucket not found\n"


def test_revert_writes_an_old_value_as_a_new_revision(kv: NatsCli, seed: Seeder) -> None:
    seed.bucket("ONE", ("k", b"v"), ("k", b"w"))
    assert fails(kv, "kv", "revert", "ONE", "k", "1") == (
        "nats: error: cannot revert key in a bucket where history=1\n"
    )
    seed.bucket("REV", ("k", b"good"), ("k", b"bad"), history=5)
    assert fails(kv, "kv", "revert", "REV", "k", "1") == (
        "nats: error: could not obtain confirmation: cannot ask for confirmation without a terminal\n"
    )
    child = on_terminal(kv, "kv", "revert", "REV", "k", "1")
    child.expect_exact("Revision: 1\r\n\r\ngood\r\n\r\n? Really revert to revision 1 (y/N)")
    child.sendline("y")
    status, rest = finish(child)
    assert status == 0 and "History for REV > k" in rest
    rows = table_rows(ok(kv, "kv", "revert", "REV", "k", "2", "--force"))
    assert [(r[1], r[5]) for r in rows[1:]] == [
        ("1", "good"),
        ("2", "bad"),
        ("3", "good"),
        ("4", "bad"),
    ]


def test_info_without_a_bucket_picks_one_on_a_terminal(kv: NatsCli, seed: Seeder) -> None:
    seed.bucket("PICKME")
    assert (
        fails(kv, "kv", "info") == "nats: error: cannot prompt for user input without a terminal\n"
    )
    child = on_terminal(kv, "kv", "info")
    child.expect_exact("? Select a Bucket")
    child.send("PICKME")  # typing filters the list
    child.expect_exact("> PICKME")
    child.send("\r")
    child.expect_exact("Information for Key-Value Store Bucket PICKME")
    assert finish(child)[0] == 0


def test_watch_in_a_pipeline_prints_each_change_as_it_happens(kv: NatsCli, seed: Seeder) -> None:
    seed.bucket("WATCH", ("old", b"before"), history=5)
    watcher = kv.spawn("kv", "watch", "WATCH")
    first = watcher.read_stdout_line().decode()
    assert re.fullmatch(rf"\[{STAMP}\] PUT WATCH > old: before\n", first), first
    ok(kv, "kv", "put", "WATCH", "new.key", "after")
    assert watcher.read_stdout_line().decode().endswith("] PUT WATCH > new.key: after\n")
    ok(kv, "kv", "del", "WATCH", "old", "-f")
    assert watcher.read_stdout_line().decode().endswith("] DELETE WATCH > old\n")
    watcher.interrupt()
    assert watcher.wait() == 0
    assert "Traceback" not in watcher.stderr


def test_watch_options_choose_what_is_shown(kv: NatsCli, seed: Seeder) -> None:
    seed.bucket("WOPT", ("a", b"a1"), ("a", b"a2"), ("gone", b"x"), ("gone", None), history=5)
    history = kv.spawn("kv", "watch", "WOPT", "--history", "--no-deletes")
    lines = [history.read_stdout_line().decode().split("] ", 1)[1] for _ in range(3)]
    assert lines == ["PUT WOPT > a: a1\n", "PUT WOPT > a: a2\n", "PUT WOPT > gone: x\n"]
    resumed = kv.spawn("kv", "watch", "WOPT", "a", "--revision", "2")
    assert resumed.read_stdout_line().decode().endswith("] PUT WOPT > a: a2\n")
    updates = kv.spawn("kv", "watch", "WOPT", "--updates")
    line = b""
    for n in range(1, 100):  # until the watcher is up, a put may count as an existing value
        seed.run(lambda js, n=n: _put(js, "WOPT", "fresh", f"f{n}".encode()))
        try:
            line = updates.stdout_lines.get(timeout=0.2)
            break
        except queue.Empty:
            continue
    assert re.search(rb"\] PUT WOPT > fresh: f\d+\n$", line), line
    for process in (history, resumed, updates):
        process.interrupt()
        assert process.wait() == 0
    assert "DELETE" not in history.stdout
    assert not re.search(r"a1|a2|gone", updates.stdout), updates.stdout


async def _put(js: Any, bucket: str, key: str, value: bytes) -> None:
    await (await js.key_value(bucket)).put(key, value)


def test_create_with_a_ttl_expires_the_key(kv: NatsCli) -> None:
    ok(kv, "kv", "add", "TTL", "--marker-ttl", "1s")
    assert ok(kv, "kv", "create", "TTL", "session", "token", "--ttl", "1s") == "token\n"
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:  # the server expires it about a second later
        result = kv.run("kv", "get", "TTL", "session", "--raw")
        if result.returncode == 1:
            assert result.stderr == "nats: error: nats: key not found\n"
            break
        assert result.stdout == "token"
    else:
        raise AssertionError("the key with a 1s TTL never expired")
