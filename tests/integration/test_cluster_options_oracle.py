"""The `cluster {}` block and the cluster flags, judged by pynats exactly as by the Go server.

Every file in tests/data/cluster is checked with `-t` by both servers (verdict, exit code and
message); `runbad_*` files pass `-t` but both servers refuse to start with them. Flags that
nats-server checks only after reading the configuration (a `--cluster` URL that does not
parse, `--routes` without a cluster) are compared on start-up. Certificates for the TLS
samples are in tests/data/cluster/pki (relative paths: the servers run in that directory).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from tests.support.servers import oracle_server_path, pynats_server_command

DATA = Path(__file__).parent.parent / "data" / "cluster"
SAMPLES = sorted(DATA.glob("*.conf"))


def check(cmd: list[str], path: Path) -> tuple[int, str]:
    result = subprocess.run(
        [*cmd, "-t", "-c", path.name], capture_output=True, text=True, cwd=path.parent, timeout=20
    )
    # Go prints a map's contents where a type would do: compare up to there.
    return result.returncode, re.sub(r"got map\[.*", "got map", result.stderr.strip())


def refusal(cmd: list[str], args: list[str]) -> tuple[int, str]:
    """Start (meant to fail before listening): exit code and the `nats-server:` lines."""
    try:
        result = subprocess.run(
            [*cmd, "-a", "127.0.0.1", "-p", "-1", *args],
            capture_output=True,
            text=True,
            cwd=DATA,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        return -1, "still running: the server accepted the options"
    lines = [line for line in result.stderr.splitlines() if line.startswith("nats-server:")]
    return result.returncode, "\n".join(lines)


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_cluster_config_check_matches_nats_server(path: Path) -> None:
    """`bad_*` files fail `-t` with nats-server's message; `ok_*` and `runbad_*` pass it."""
    expected = check([oracle_server_path()], path)
    assert expected[0] == (1 if path.stem.startswith("bad_") else 0), expected
    assert check(pynats_server_command(), path) == expected


@pytest.mark.parametrize(
    "path", [p for p in SAMPLES if p.stem.startswith("runbad_")], ids=lambda p: p.stem
)
def test_cluster_start_up_refusal_matches_nats_server(path: Path) -> None:
    """Compression modes and pinned accounts are checked when the server starts."""
    expected = refusal([oracle_server_path()], ["-c", path.name])
    assert expected[0] == 1, expected
    assert refusal(pynats_server_command(), ["-c", path.name]) == expected


FLAG_REFUSALS = {
    "cluster_url_bad_host": ["--cluster", "nats://a b:6222"],
    "cluster_url_no_scheme": ["--cluster", "127.0.0.1:6222"],
    "cluster_url_no_port": ["--cluster", "nats://127.0.0.1"],
    "cluster_url_empty_port": ["--cluster", "nats://127.0.0.1:"],
    "cluster_url_too_many_colons": ["--cluster", "nats://a:b:6222"],
    "cluster_url_bad_escape": ["--cluster", "nats://u:p%zz@127.0.0.1:-1"],
    "cluster_url_user_without_password": ["--cluster", "nats://ru@127.0.0.1:-1"],
    "cluster_listen_alias": ["--cluster_listen", "nats://[::1:6222"],
    "routes_without_cluster": ["--routes", "nats://127.0.0.1:6222"],
    "routes_with_cluster_switched_off": [
        "--cluster",
        "",
        "--routes",
        "nats://127.0.0.1:6222",
    ],
    "cluster_name_with_spaces": ["--cluster_name", "a b", "--cluster", "nats://127.0.0.1:-1"],
    "file_compression_checked_with_flags": [
        "-c",
        "ok_compression_unknown_mode.conf",
        "--cluster",
        "nats://127.0.0.1:-1",
    ],
}


@pytest.mark.parametrize("args", FLAG_REFUSALS.values(), ids=FLAG_REFUSALS.keys())
def test_cluster_flag_refusal_matches_nats_server(args: list[str]) -> None:
    expected = refusal([oracle_server_path()], args)
    assert expected[0] == 1, expected
    assert refusal(pynats_server_command(), args) == expected


def test_config_check_ignores_cluster_flags_like_nats_server() -> None:
    """`-t -c FILE` judges the file only: a bad --cluster URL is not looked at."""
    args = ["--cluster", "nats://a b:1"]
    path = DATA / "ok_minimal.conf"
    go = subprocess.run(
        [oracle_server_path(), "-t", "-c", path.name, *args],
        capture_output=True,
        text=True,
        cwd=DATA,
        timeout=20,
    )
    py = subprocess.run(
        [*pynats_server_command(), "-t", "-c", path.name, *args],
        capture_output=True,
        text=True,
        cwd=DATA,
        timeout=20,
    )
    assert go.returncode == 0
    assert (py.returncode, py.stderr) == (go.returncode, go.stderr)
