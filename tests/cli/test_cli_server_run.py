"""`nats server run`: a local development pynats server with its contexts, until Ctrl-C.

The server is always ours (`python -m pynats.server`), so this runs once, without the
`server_kind` parameter.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from tests.cli.conftest import WAIT_S, NatsCli

NAME = "devbox"


def process_gone(pid: int, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


def test_server_run_serves_its_contexts_until_interrupted(cli: NatsCli, tmp_path: Path) -> None:
    data_home = tmp_path / "data"
    run = cli.spawn(
        "server", "run", NAME, "--jetstream", "--clean", env={"XDG_DATA_HOME": str(data_home)}
    )
    ready = run.wait_for_stderr(r"\[(\d+)\] \[INF\] Server is ready", timeout=20)
    server_pid = int(ready.group(1))
    assert server_pid != run.proc.pid
    assert "(pynats " in run.stderr  # our server, not another nats-server

    lines = []
    while not lines or not lines[-1].startswith("NOTE:"):
        lines.append(run.read_stdout_line().decode().rstrip("\n"))
    assert lines[0] == f"Starting local development NATS Server instance: {NAME}"
    details = "\n".join(lines)
    user = re.search(
        r"User Credentials: User: local   Password: (\w{32}) Context: devbox$", details, re.M
    )
    assert user, details
    assert re.search(
        r"Service Credentials: User: service Password: \w{32} Context: devbox_service$",
        details,
        re.M,
    )
    assert re.search(
        r"System Credentials: User: system  Password: \w{32} Context: devbox_system$", details, re.M
    )
    url = re.search(r"^ +URL: (nats://0\.0\.0\.0:\d+)$", details, re.M)
    assert url, details
    assert "           Clean on Exit: true" in lines

    context = json.loads((cli.context_dir / f"{NAME}.json").read_text())
    assert context["url"] == url.group(1)
    assert (context["user"], context["password"]) == ("local", user.group(1))
    assert {p.name for p in cli.context_dir.iterdir()} >= {
        f"{NAME}.json",
        f"{NAME}_service.json",
        f"{NAME}_system.json",
    }
    assert (data_home / "nats" / NAME).is_dir()  # JetStream's store

    sub = cli.spawn("--context", NAME, "sub", "dev.greeting", "--count", "1")
    sub.wait_for_stderr("Subscribing on ")
    published = cli.run("--context", NAME, "pub", "dev.greeting", "hello from dev")
    assert published.returncode == 0, published
    assert sub.wait() == 0
    assert "hello from dev" in sub.stdout

    info = cli.run("--context", f"{NAME}_system", "server", "ping", "1")
    assert info.returncode == 0, info
    assert info.stdout.startswith(NAME)

    run.interrupt()
    assert run.wait(timeout=20) == 0, run.stderr
    assert process_gone(server_pid)
    assert not any(cli.context_dir.glob(f"{NAME}*.json"))  # --clean
