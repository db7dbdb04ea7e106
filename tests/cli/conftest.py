"""Fixtures for the `nats` CLI tests: real servers, and the real `nats` program as a subprocess.

Every test that talks to a server runs twice, once per server kind (`go` = the Go oracle,
`pynats` = ours), through the module-scoped `server_kind` parameter. Tests that need a feature
our server does not have yet run against Go only: the feature is derived from the server
fixture a test uses (FIXTURE_FEATURES) and switched on for pynats by removing it from
FEATURES_NOT_YET_IN_PYNATS — the one place to change.

The CLI runs as `python -m pynats.cli` with HOME and XDG_CONFIG_HOME in a temporary directory
(no context of the developer leaks in), no NATS_* variables, and without PYTHONUNBUFFERED, so a
missing flush shows up as a failing test.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import RunningServer, start_server

SERVER_KINDS = ("go", "pynats")
FEATURES_NOT_YET_IN_PYNATS: set[str] = set()
FIXTURE_FEATURES = {"js_server": "jetstream", "sys_server": "system_account"}
WAIT_S = 10.0
PYCACHE_DIR = os.path.join(tempfile.gettempdir(), "pynats-cli-test-pycache")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `server_kind` per module, leaving pynats out where a feature is missing."""
    if "server_kind" not in metafunc.fixturenames:
        return
    needed = {
        feature for name, feature in FIXTURE_FEATURES.items() if name in metafunc.fixturenames
    }
    kinds = [
        kind for kind in SERVER_KINDS if kind == "go" or not needed & FEATURES_NOT_YET_IN_PYNATS
    ]
    metafunc.parametrize("server_kind", kinds, scope="module")


def _start(kind: str, args: list[str] | None = None) -> RunningServer:
    return start_server(args, oracle=(kind == "go"), http_port=-1)


def wait_for_interest(
    server: RunningServer, subject: str, count: int = 1, timeout: float = WAIT_S
) -> None:
    """Wait until `count` client subscriptions on `subject` are known to the server.

    `nats sub --raw` and `--dump` print nothing before the first message (as natscli), so
    tests learn that a subscriber is ready from the server's /connz instead.
    """
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{server.monitor_url}/connz?subs=1", timeout=2) as response:
            connz = json.load(response)
        seen = sum(
            (c.get("subscriptions_list") or []).count(subject)
            for c in connz.get("connections") or []
        )
        if seen >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{seen} of {count} subscriptions on {subject!r} after {timeout}s")


@pytest.fixture(scope="module")
def core_server(server_kind: str) -> Iterator[RunningServer]:
    """A plain server of the parametrized kind, shared by a module."""
    server = _start(server_kind)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def js_server(
    server_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server with JetStream, storing in a temporary directory."""
    store = tmp_path_factory.mktemp("jetstream")
    server = _start(server_kind, ["-js", f"-sd={store}"])
    yield server
    server.stop()


SYSTEM_ACCOUNT_CONFIG = """
server_name: "cli-test"
accounts {
  SYS { users = [{user: sys, password: sys}] }
  APP { users = [{user: app, password: app}], jetstream: enabled }
  PLAIN { users = [{user: plain, password: plain}] }
}
system_account: SYS
jetstream { store_dir: "%s" }
"""


@pytest.fixture(scope="module")
def sys_server(
    server_kind: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server with a system account (sys/sys), a JetStream account (app/app) and one without."""
    directory = tmp_path_factory.mktemp("sysaccount")
    config = directory / "server.conf"
    config.write_text(SYSTEM_ACCOUNT_CONFIG % (directory / "js"))
    server = _start(server_kind, ["-c", str(config)])
    yield server
    server.stop()


# -- running the CLI ------------------------------------------------------------------------------


@dataclass
class Result:
    """A finished `nats` run."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    def __str__(self) -> str:
        return f"nats {' '.join(self.args)} -> {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@dataclass
class Background:
    """A `nats` process left running (sub, reply): its output is collected line by line."""

    proc: subprocess.Popen[bytes]
    stdout_lines: queue.Queue[bytes] = field(default_factory=queue.Queue)
    stderr_text: list[str] = field(default_factory=list)
    stdout_bytes: list[bytes] = field(default_factory=list)

    def start_readers(self) -> None:
        def read_stdout() -> None:
            assert self.proc.stdout is not None
            for line in iter(self.proc.stdout.readline, b""):
                self.stdout_bytes.append(line)
                self.stdout_lines.put(line)

        def read_stderr() -> None:
            assert self.proc.stderr is not None
            for line in iter(self.proc.stderr.readline, b""):
                self.stderr_text.append(line.decode(errors="replace"))

        threading.Thread(target=read_stdout, daemon=True).start()
        threading.Thread(target=read_stderr, daemon=True).start()

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_text)

    @property
    def stdout(self) -> str:
        return b"".join(self.stdout_bytes).decode(errors="replace")

    def wait_for_stderr(self, pattern: str, timeout: float = WAIT_S) -> re.Match[str]:
        """Wait until stderr matches `pattern` (the process logs readiness there)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.stderr)
            if match:
                return match
            if self.proc.poll() is not None:
                time.sleep(0.05)
                match = re.search(pattern, self.stderr)
                if match:
                    return match
                raise AssertionError(
                    f"nats exited ({self.proc.returncode}) before {pattern!r}:\n{self.stderr}"
                )
            time.sleep(0.01)
        raise AssertionError(f"no stderr matching {pattern!r} within {timeout}s:\n{self.stderr}")

    def read_stdout_line(self, timeout: float = WAIT_S) -> bytes:
        """The next line written on stdout (waiting for it proves the CLI flushed it)."""
        try:
            return self.stdout_lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"no stdout line within {timeout}s; stderr:\n{self.stderr}"
            ) from None

    def wait(self, timeout: float = WAIT_S) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"nats did not exit within {timeout}s; stderr:\n{self.stderr}"
            ) from None
        time.sleep(0.05)  # let the reader threads take the last lines
        return code

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class NatsCli:
    """Runs the real `nats` program with an isolated home directory."""

    def __init__(self, home: Path, url: str | None = None) -> None:
        self.home = home
        self.url = url
        self.config_dir = home / "xdg"
        self.env = {key: value for key, value in os.environ.items() if not key.startswith("NATS_")}
        self.env.pop("PYTHONUNBUFFERED", None)
        # Each `nats` run is a fresh interpreter: let it reuse compiled modules instead of
        # recompiling the package every time (this environment sets PYTHONDONTWRITEBYTECODE).
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.env["PYTHONPYCACHEPREFIX"] = PYCACHE_DIR
        self.env.update(HOME=str(home), XDG_CONFIG_HOME=str(self.config_dir))
        self.background: list[Background] = []

    @property
    def context_dir(self) -> Path:
        return self.config_dir / "nats" / "context"

    def command(self, args: tuple[str, ...]) -> list[str]:
        argv = [sys.executable, "-m", "pynats.cli", *args]
        if self.url is not None:
            argv += ["-s", self.url]
        return argv

    def environment(self, env: dict[str, str] | None) -> dict[str, str]:
        merged = dict(self.env)
        for key, value in (env or {}).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return merged

    def run(
        self,
        *args: str,
        input: bytes | str | None = None,
        env: dict[str, Any] | None = None,
        timeout: float = 20.0,
    ) -> Result:
        data = input.encode() if isinstance(input, str) else input
        started = time.monotonic()
        proc = subprocess.run(
            self.command(args),
            input=data if data is not None else b"",
            capture_output=True,
            env=self.environment(env),
            timeout=timeout,
            cwd=self.home,
        )
        return Result(
            list(args),
            proc.returncode,
            proc.stdout.decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
            time.monotonic() - started,
        )

    def spawn(
        self, *args: str, env: dict[str, Any] | None = None, sigint_ignored: bool = False
    ) -> Background:
        """`nats` in the background; `sigint_ignored` starts it as a shell starts a
        background job (SIGINT ignored, which the program inherits)."""
        ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint_ignored else None
        proc = subprocess.Popen(
            self.command(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.environment(env),
            cwd=self.home,
            preexec_fn=ignore,
        )
        background = Background(proc)
        background.start_readers()
        self.background.append(background)
        return background

    def cleanup(self) -> None:
        for background in self.background:
            background.kill()


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[NatsCli]:
    """`nats` without a server URL (contexts, help, errors)."""
    runner = NatsCli(tmp_path)
    yield runner
    runner.cleanup()


@pytest.fixture
def nats(tmp_path: Path, core_server: RunningServer) -> Iterator[NatsCli]:
    """`nats -s <core server>`."""
    runner = NatsCli(tmp_path, core_server.url)
    yield runner
    runner.cleanup()


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
