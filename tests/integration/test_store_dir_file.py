"""JetStream's store directory is not a usable directory: pynats must log and exit exactly as
the Go nats-server does (differential: both are run, their logs compared line by line).

What nats-server 2.15.1 does (enableJetStream): it logs `Starting JetStream` (and the
temporary-directory warning when no store directory is set), then checks
`<store_dir>/jetstream`. When that path cannot be stat'ed for another reason than "does not
exist" (a file in the way) or is not a directory, it gives up with `storage directory is not a
directory`; when it does not exist and cannot be created, with `could not create storage
directory - mkdir <path>: <reason>`. Either way it still logs `Took ... to start JetStream`,
then `[FTL] Can't start JetStream: <problem>` and exits with status 1, without the banner.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.servers import oracle_server_path, pynats_server_command

NOT_A_DIR = "[FTL] Can't start JetStream: storage directory is not a directory"
_PREFIX = re.compile(r"^\[\d+\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+ ")
_VARYING = re.compile(r"^(\[INF\]   (?:Version|Git|Name|Node|ID):)\s.*$")
_TOOK = re.compile(r"^\[INF\] Took \S+ to start JetStream$")


def run(
    oracle: bool, args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[int, list[str]]:
    """Run a server that is expected to give up at start-up: its exit status and its log,
    without pids and times, the version/name lines and the start-up duration blanked."""
    cmd = [oracle_server_path()] if oracle else pynats_server_command()
    proc = subprocess.run(
        [*cmd, "-a", "127.0.0.1", "-p", "-1", *args],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    lines = []
    for line in proc.stderr.splitlines():
        line = _PREFIX.sub("", line)
        line = _VARYING.sub(r"\1 *", line)
        line = _TOOK.sub("[INF] Took * to start JetStream", line)
        lines.append(line)
    return proc.returncode, lines


def both(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """Go's answer, after checking that ours is the very same."""
    go = run(True, args, cwd, env)
    ours = run(False, args, cwd, env)
    assert ours == go, f"go:\n{go}\nours:\n{ours}"
    return go


def assert_gives_up(result: tuple[int, list[str]], problem_line: str) -> None:
    code, lines = result
    assert code == 1
    assert lines[-1] == problem_line
    assert lines[-2] == "[INF] Took * to start JetStream"
    assert "[INF] Starting JetStream" in lines
    assert not any("JETSTREAM" in line or "Traceback" in line for line in lines)


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "somefile"
    path.write_text("not a directory\n")
    return path


def test_store_dir_flag_naming_a_file(tmp_path: Path, a_file: Path) -> None:
    result = both(["-js", "-sd", str(a_file)], tmp_path)
    assert_gives_up(result, NOT_A_DIR)
    assert a_file.read_text() == "not a directory\n"


def test_store_dir_under_a_file(tmp_path: Path, a_file: Path) -> None:
    assert_gives_up(both(["-js", "-sd", str(a_file / "sub")], tmp_path), NOT_A_DIR)


def test_jetstream_subdirectory_is_a_file(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "jetstream").write_text("")
    assert_gives_up(both(["-js", "-sd", str(store)], tmp_path), NOT_A_DIR)


def test_relative_store_dir_naming_a_file(tmp_path: Path, a_file: Path) -> None:
    assert_gives_up(both(["-js", "-sd", a_file.name], tmp_path), NOT_A_DIR)


@pytest.mark.parametrize(
    "conf",
    [
        'jetstream {{ store_dir: "{path}" }}\n',
        'jetstream {{ store: "{path}" }}\n',
        'jetstream: enabled\nstore_dir: "{path}"\n',
    ],
    ids=["jetstream-block", "store-alias", "top-level"],
)
def test_config_file_store_dir_naming_a_file(tmp_path: Path, a_file: Path, conf: str) -> None:
    path = tmp_path / "js.conf"
    path.write_text(conf.format(path=a_file))
    code, lines = both(["-c", str(path)], tmp_path)
    assert_gives_up((code, lines), NOT_A_DIR)
    assert any(line.startswith("[INF] Using configuration file: ") for line in lines)


def test_temporary_directory_is_a_file(tmp_path: Path, a_file: Path) -> None:
    """No store directory: Go's os.TempDir() is $TMPDIR as it is, even a file."""
    code, lines = both(["-js"], tmp_path, env={"TMPDIR": str(a_file)})
    assert_gives_up((code, lines), NOT_A_DIR)
    warning = "[WRN] Temporary storage directory used, data could be lost on system reboot"
    assert lines.index("[INF] Starting JetStream") + 1 == lines.index(warning)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_store_dir_that_cannot_be_created(tmp_path: Path) -> None:
    result = both(["-js", "-sd", "/proc/pynats-no-such-dir/x"], tmp_path)
    assert_gives_up(
        result,
        "[FTL] Can't start JetStream: could not create storage directory - "
        "mkdir /proc/pynats-no-such-dir: no such file or directory",
    )
