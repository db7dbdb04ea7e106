"""The `leafnodes {}` and `websocket {}` blocks, judged by pynats exactly as by the Go server.

Every file in tests/data/leafnodes and tests/data/websocket is checked with `-t` by both
servers (verdict, exit code and message); `runbad_*` files pass `-t` but both servers refuse
to start with them (nats-server's `validateLeafNode` and `validateWebsocketOptions`). The
TLS samples use the certificates of tests/data/cluster/pki (relative paths: the servers run in
the sample's directory).

nats-server reads a block's keys in an order that varies from run to run (a rotation of the
file's order), so each `bad_*` file has one key at fault, and a remote named twice names
itself with one key.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.support.servers import oracle_server_path, pynats_server_command

DATA = Path(__file__).parent.parent / "data"
SAMPLES = sorted([*(DATA / "leafnodes").glob("*.conf"), *(DATA / "websocket").glob("*.conf")])


def sample_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def check(cmd: list[str], path: Path) -> tuple[int, str]:
    result = subprocess.run(
        [*cmd, "-t", "-c", path.name], capture_output=True, text=True, cwd=path.parent, timeout=20
    )
    return result.returncode, result.stderr.strip()


def refusal(cmd: list[str], path: Path) -> tuple[int, str]:
    """Start (meant to fail before listening): exit code and the `nats-server:` lines."""
    try:
        result = subprocess.run(
            [*cmd, "-a", "127.0.0.1", "-p", "-1", "-c", path.name],
            capture_output=True,
            text=True,
            cwd=path.parent,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        return -1, "still running: the server accepted the options"
    lines = [line for line in result.stderr.splitlines() if line.startswith("nats-server:")]
    return result.returncode, "\n".join(lines)


def test_there_are_samples_of_every_kind_for_both_blocks() -> None:
    for block in ("leafnodes", "websocket"):
        names = [p.stem for p in SAMPLES if p.parent.name == block]
        assert len(names) >= 25, block
        for kind in ("ok_", "bad_", "runbad_"):
            assert any(n.startswith(kind) for n in names), (block, kind)


@pytest.mark.parametrize("path", SAMPLES, ids=sample_id)
def test_config_check_matches_nats_server(path: Path) -> None:
    """`bad_*` files fail `-t` with nats-server's message; `ok_*` and `runbad_*` pass it."""
    expected = check([oracle_server_path()], path)
    assert expected[0] == (1 if path.stem.startswith("bad_") else 0), expected
    assert check(pynats_server_command(), path) == expected


@pytest.mark.parametrize(
    "path", [p for p in SAMPLES if p.stem.startswith("runbad_")], ids=sample_id
)
def test_start_up_refusal_matches_nats_server(path: Path) -> None:
    expected = refusal([oracle_server_path()], path)
    assert expected[0] == 1, expected
    assert refusal(pynats_server_command(), path) == expected
