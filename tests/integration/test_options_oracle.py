"""`nats-server -t` on option-level sample files: pynats accepts and rejects exactly what the
Go server does, with the same message (the files are in tests/data/options)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from tests.support.servers import oracle_server_path, pynats_server_command

SAMPLES = sorted((Path(__file__).parent.parent / "data" / "options").glob("*.conf"))


def check(cmd: list[str], path: Path) -> tuple[int, str]:
    result = subprocess.run(
        [*cmd, "-t", "-c", path.name], capture_output=True, text=True, cwd=path.parent, timeout=20
    )
    # Go prints a map's address where we print its type: compare up to there.
    text = re.sub(r"got map\[.*", "got map", result.stderr.strip())
    return result.returncode, text


def start(cmd: list[str], path: Path) -> tuple[int, str]:
    """Start with the file (files meant to fail at start-up): exit code and the error line."""
    result = subprocess.run(
        [*cmd, "-c", path.name, "-a", "127.0.0.1", "-p", "-1"],
        capture_output=True,
        text=True,
        cwd=path.parent,
        timeout=20,
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("nats-server:")]
    return result.returncode, errors[0] if errors else ""


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_config_check_matches_nats_server(path: Path) -> None:
    """`bad_*` files fail `-t`, `ok_*` and `runbad_*` pass it."""
    expected = check([oracle_server_path()], path)
    assert check(pynats_server_command(), path) == expected
    assert expected[0] == (1 if path.stem.startswith("bad_") else 0)


@pytest.mark.parametrize(
    "path", [p for p in SAMPLES if p.stem.startswith("runbad_")], ids=lambda p: p.stem
)
def test_start_up_refusal_matches_nats_server(path: Path) -> None:
    """`runbad_*` files pass `-t` but the server refuses to start with them."""
    expected = start([oracle_server_path()], path)
    assert expected[0] == 1
    assert start(pynats_server_command(), path) == expected
