"""`nats object` / `nats obj`: the real `nats` program against a JetStream server (cli.md §10).

One server per module; each test uses buckets of its own, seeded with nats-py where the
starting state is not what is being tested. Transfers are checked byte for byte and by
SHA-256 digest; prompts and progress bars are exercised on a pseudo-terminal.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import NatsCli
from tests.cli.test_cli_kv import STAMP, Seeder, cli_for, fails, finish, ok, on_terminal, table_rows
from tests.support.servers import RunningServer

MIB = 1024 * 1024
NO_TERMINAL = "nats: error: cannot ask for confirmation without a terminal\n"
CONFIRM_FAILED = (
    "nats: error: could not obtain confirmation: cannot ask for confirmation without a terminal\n"
)


class ObjectSeeder(Seeder):
    def store(self, bucket: str, *objects: tuple[str, bytes]) -> None:
        """An object store holding `objects` (name, content)."""

        async def work(js: Any) -> None:
            store = await js.create_object_store(bucket)
            for name, data in objects:
                await store.put(name, io.BytesIO(data))

        self.run(work)


@pytest.fixture(scope="module")
def bytecode(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bytecode")


@pytest.fixture
def obj(tmp_path: Path, js_server: RunningServer, bytecode: Path) -> Iterator[NatsCli]:
    runner = cli_for(tmp_path, js_server, bytecode)
    yield runner
    runner.cleanup()


@pytest.fixture
def seed(js_server: RunningServer) -> ObjectSeeder:
    return ObjectSeeder(js_server.url)


def screen_rows(screen: str) -> dict[str, str]:
    return dict(
        re.match(r" *([^:]+): ?(.*)", line).groups()
        for line in screen.splitlines()
        if re.match(r" +\S[^:]*: ", line)
    )


def test_ls_without_buckets_says_so(obj: NatsCli) -> None:
    assert ok(obj, "obj", "ls") == "No Object Store buckets found\n"
    assert ok(obj, "object", "ls", "-n") == ""


def test_add_creates_a_bucket_and_shows_its_info_screen(obj: NatsCli) -> None:
    screen = ok(
        obj, "obj", "add", "FILES", "--description", "shared files", "--ttl", "1d",
        "--max-bucket-size", "10MB", "--storage", "memory", "--metadata", "team=core", "--compress",
    )  # fmt: skip
    lines = screen.splitlines()
    assert re.fullmatch(rf"Information for Object Store Bucket FILES created {STAMP}", lines[0])
    assert lines[1:4] == ["", "Configuration:", ""]
    rows = screen_rows(screen)
    assert rows["Bucket Name"] == "FILES"
    assert rows["Description"] == "shared files"
    assert rows["Replicas"] == "1"
    assert rows["TTL"] == "1d0h0m0s"
    assert rows["Sealed"] == "false"
    assert rows["Size"] == "0 B"
    assert rows["Maximum Bucket Size"] == "10 MiB"
    assert rows["Storage"] == "Memory"
    assert rows["Backing Store Kind"] == "JetStream"
    assert rows["JetStream Stream"] == "OBJ_FILES"
    assert rows["Metadata"] == "team: core"
    plain = ok(obj, "obj", "add", "PLAIN")
    assert screen_rows(plain)["TTL"] == "unlimited"
    assert screen_rows(plain)["Maximum Bucket Size"] == "unlimited"
    assert fails(obj, "obj", "add", "bad.name") == "nats: error: nats: invalid object-store name\n"


def test_multi_megabyte_object_round_trips_with_its_digest(
    obj: NatsCli, seed: ObjectSeeder
) -> None:
    seed.store("BIG")
    content = os.urandom(5 * MIB + 123)
    digest = hashlib.sha256(content).hexdigest()
    (obj.home / "video.bin").write_bytes(content)
    put = ok(obj, "obj", "put", "BIG", "video.bin", "--description", "a clip", "-H", "Kind:video")
    assert put.startswith("\nObject information for BIG > video.bin\n\n"), put
    rows = screen_rows(put)
    assert rows["Description"] == "a clip"
    assert rows["Size"] == "5.0 MiB"
    assert re.fullmatch(STAMP, rows["Modification Time"])
    assert rows["Chunks"] == "41"  # 128 KiB chunks
    assert rows["Digest"] == f"SHA-256 {digest}"
    assert rows["Headers"] == "Kind: video"
    got = ok(obj, "obj", "get", "BIG", "video.bin", "-O", "copy.bin")
    target = obj.home / "copy.bin"
    assert re.fullmatch(rf"Wrote: 5\.0 MiB to {re.escape(str(target))} in \S+\n", got), got
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    assert target.read_bytes() == content
    info = ok(obj, "obj", "info", "BIG", "video.bin")
    assert info.startswith("Object information for BIG > video.bin\n\n")
    assert screen_rows(info)["Digest"] == f"SHA-256 {digest}"


def test_put_from_stdin_needs_a_name_and_get_defaults_to_the_base_name(
    obj: NatsCli, seed: ObjectSeeder
) -> None:
    seed.store("STDIN")
    assert fails(obj, "obj", "put", "STDIN") == (
        "nats: error: --name is required when reading from stdin\n"
    )
    put = obj.run(
        "obj",
        "put",
        "STDIN",
        "--name",
        "docs/readme.txt",
        "--chunk-size",
        "4",
        input="hello world\n",
    )
    assert put.returncode == 0, put
    assert screen_rows(put.stdout)["Chunks"] == "3"
    assert ok(obj, "obj", "get", "STDIN", "docs/readme.txt").startswith(
        f"Wrote: 12 B to {obj.home / 'readme.txt'} in "
    )
    assert (obj.home / "readme.txt").read_text() == "hello world\n"
    assert fails(obj, "obj", "put", "STDIN", "missing.txt") == (
        "nats: error: open missing.txt: no such file or directory\n"
    )


def test_replacing_an_object_or_a_local_file_needs_confirmation(
    obj: NatsCli, seed: ObjectSeeder
) -> None:
    seed.store("REPL", ("note.txt", b"old"))
    (obj.home / "note.txt").write_text("new")
    assert fails(obj, "obj", "put", "REPL", "note.txt").endswith(CONFIRM_FAILED)
    assert fails(obj, "obj", "get", "REPL", "note.txt") == CONFIRM_FAILED
    assert (obj.home / "note.txt").read_text() == "new"
    child = on_terminal(obj, "obj", "put", "REPL", "note.txt")
    child.expect_exact("Object information for REPL > note.txt")
    child.expect_exact("? Replace existing file REPL > note.txt (y/N)")
    child.sendline("n")
    assert finish(child) == (0, " n\r\n")
    child = on_terminal(obj, "obj", "put", "REPL", "note.txt")
    child.expect_exact("(y/N)")
    child.sendline("y")
    status, rest = finish(child)
    assert status == 0 and "Size: 3 B" in rest
    (obj.home / "note.txt").write_text("local edits")
    child = on_terminal(obj, "obj", "get", "REPL", "note.txt")
    child.expect_exact(f"? Replace existing target file {obj.home / 'note.txt'} (y/N)")
    child.sendline("n")
    assert finish(child)[0] == 0
    assert (obj.home / "note.txt").read_text() == "local edits"
    assert ok(obj, "obj", "get", "REPL", "note.txt", "-f").startswith("Wrote: 3 B to ")
    assert (obj.home / "note.txt").read_text() == "new"


def test_progress_bars_are_drawn_only_on_a_terminal(obj: NatsCli, seed: ObjectSeeder) -> None:
    seed.store("PROG")
    (obj.home / "large.bin").write_bytes(os.urandom(MIB))
    child = on_terminal(obj, "obj", "put", "PROG", "large.bin")
    child.expect(r"1\.0 MiB / 1\.0 MiB \S* +100\.0%")
    status, rest = finish(child)
    assert status == 0 and "Object information for PROG > large.bin" in rest
    child = on_terminal(obj, "obj", "get", "PROG", "large.bin", "-O", "back.bin")
    child.expect(r"1\.0 MiB / 1\.0 MiB \S* +100\.0%")
    child.expect_exact("Wrote: 1.0 MiB to ")
    assert finish(child)[0] == 0
    child = on_terminal(obj, "obj", "get", "PROG", "large.bin", "-O", "quiet.bin", "--no-progress")
    status, rest = finish(child)
    assert status == 0 and "%" not in rest and rest.startswith("Wrote: 1.0 MiB")
    piped = obj.run("obj", "get", "PROG", "large.bin", "-O", "piped.bin")
    assert piped.returncode == 0 and piped.stderr == ""
    assert (obj.home / "piped.bin").read_bytes() == (obj.home / "large.bin").read_bytes()


def test_ls_lists_buckets_and_their_contents(obj: NatsCli, seed: ObjectSeeder) -> None:
    seed.store("LSB", ("a.txt", b"aaa"), ("b.bin", b"b" * 2048))
    seed.store("LSEMPTY")
    table = ok(obj, "obj", "ls")
    assert table.splitlines()[1].strip("│ ") == "Object Store Buckets"
    rows = table_rows(table)
    assert rows[0] == ["Bucket", "Description", "Created", "Size", "Last Update"]
    names = [row[0] for row in rows[1:]]
    assert names.index("LSEMPTY") < names.index("LSB")  # smallest first
    assert {"LSB", "LSEMPTY"} <= set(ok(obj, "obj", "ls", "--names").split())
    contents = table_rows(ok(obj, "obj", "ls", "LSB"))
    assert contents[0] == ["Name", "Size", "Time"]
    assert [row[:2] for row in contents[1:]] == [["a.txt", "3 B"], ["b.bin", "2.0 KiB"]]
    assert all(re.fullmatch(STAMP, row[2]) for row in contents[1:])
    assert ok(obj, "obj", "ls", "LSB", "-n") == "a.txt\nb.bin\n"
    assert ok(obj, "obj", "ls", "LSEMPTY") == "No entries found\n"


def test_missing_buckets_and_objects_are_one_line_errors(obj: NatsCli, seed: ObjectSeeder) -> None:
    seed.store("MISS")
    assert fails(obj, "obj", "info", "MISS", "nope") == "nats: error: nats: object not found\n"
    assert fails(obj, "obj", "get", "MISS", "nope") == "nats: error: nats: object not found\n"
    assert fails(obj, "obj", "ls", "NOPE") == "nats: error: nats: bucket not found\n"
    assert fails(obj, "obj", "info") == (
        "nats: error: cannot prompt for user input without a terminal\n"
    )


def test_delete_objects_and_buckets(obj: NatsCli, seed: ObjectSeeder) -> None:
    seed.store("DEL", ("keep.txt", b"12345"), ("drop.txt", b"x" * 12))
    assert fails(obj, "obj", "del", "DEL", "drop.txt") == NO_TERMINAL
    child = on_terminal(obj, "obj", "rm", "DEL", "drop.txt")
    child.expect_exact("? Delete 12 B byte file DEL > drop.txt? (y/N)")
    child.sendline("n")
    status, rest = finish(child)
    assert status == 0 and "Skipping delete" in rest
    removed = ok(obj, "obj", "del", "DEL", "drop.txt", "-f")
    assert removed.startswith("Removed DEL > drop.txt\nInformation for Object Store Bucket DEL")
    assert ok(obj, "obj", "ls", "DEL", "-n") == "keep.txt\n"
    assert (
        fails(obj, "obj", "del", "DEL", "drop.txt", "-f") == "nats: error: nats: object not found\n"
    )
    child = on_terminal(obj, "obj", "del", "DEL")
    child.expect_exact("? Delete bucket DEL and all its files? (y/N)")
    child.sendline("y")
    assert finish(child)[0] == 0
    assert fails(obj, "obj", "info", "DEL") == "nats: error: nats: bucket not found\n"


def test_seal_stops_further_changes(obj: NatsCli, seed: ObjectSeeder) -> None:
    seed.store("SEAL", ("fixed.txt", b"final"))
    assert fails(obj, "obj", "seal", "SEAL") == CONFIRM_FAILED
    sealed = ok(obj, "obj", "seal", "SEAL", "-f")
    assert sealed.startswith("SEAL has been sealed\nInformation for Object Store Bucket SEAL")
    assert screen_rows(sealed)["Sealed"] == "true"
    (obj.home / "more.txt").write_text("more")
    refused = fails(obj, "obj", "put", "SEAL", "more.txt")
    assert "invalid operation on sealed stream" in refused, refused
    child = on_terminal(obj, "obj", "seal", "SEAL")
    child.expect_exact(
        "? Really seal Bucket SEAL, sealed buckets can not be unsealed or modified (y/N)"
    )
    child.sendline("n")
    assert finish(child) == (0, " n\r\n")


def test_watch_in_a_pipeline_shows_puts_and_deletes(obj: NatsCli, seed: ObjectSeeder) -> None:
    seed.store("OWATCH", ("first.txt", b"1" * 2048))
    watcher = obj.spawn("obj", "watch", "OWATCH")
    first = watcher.read_stdout_line().decode()
    assert re.fullmatch(
        rf"\[{STAMP}\] PUT OWATCH > first\.txt: 2\.0 KiB bytes in 1 chunks\n", first
    ), first
    (obj.home / "second.txt").write_text("22")
    ok(obj, "obj", "put", "OWATCH", "second.txt")
    assert (
        watcher.read_stdout_line()
        .decode()
        .endswith("] PUT OWATCH > second.txt: 2 B bytes in 1 chunks\n")
    )
    ok(obj, "obj", "del", "OWATCH", "first.txt", "-f")
    assert watcher.read_stdout_line().decode().endswith("] DEL OWATCH > first.txt\n")
    watcher.interrupt()
    assert watcher.wait() == 0
    assert "Traceback" not in watcher.stderr
