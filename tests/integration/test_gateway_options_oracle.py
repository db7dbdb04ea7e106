"""The `gateway {}` block, judged by pynats exactly as by the Go server.

Every file in tests/data/gateway is checked with `-t` by both servers (verdict, exit code and
message); `runbad_*` files pass `-t` but both servers refuse to start with them (a gateway
without a name or a port, a remote without a name or a URL, a cluster named differently).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.integration.test_cluster_options_oracle import check
from tests.support.servers import oracle_server_path, pynats_server_command

DATA = Path(__file__).parent.parent / "data" / "gateway"
SAMPLES = sorted(DATA.glob("*.conf"))


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_gateway_config_check_matches_nats_server(path: Path) -> None:
    """`bad_*` files fail `-t` with nats-server's message; `ok_*` and `runbad_*` pass it."""
    expected = check([oracle_server_path()], path)
    assert expected[0] == (1 if path.stem.startswith("bad_") else 0), expected
    assert check(pynats_server_command(), path) == expected


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


@pytest.mark.parametrize(
    "path", [p for p in SAMPLES if p.stem.startswith("runbad_")], ids=lambda p: p.stem
)
def test_gateway_start_up_refusal_matches_nats_server(path: Path) -> None:
    """The names, the port and the URLs are checked when the server starts."""
    expected = refusal([oracle_server_path()], path)
    assert expected[0] == 1, expected
    assert refusal(pynats_server_command(), path) == expected
