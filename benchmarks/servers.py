"""Starting, watching and stopping the servers under test.

Each benchmark run gets a fresh server on a free port, started the way harnesses start
nats-server: ready once the `Server is ready` line shows up in its log. The log goes to a
temporary file rather than a pipe, so the runner needs no reader thread (it forks the
generator processes) and a chatty server can never block on a full pipe.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from loadgen import HOST

READY_LINE = b"Server is ready"
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_GO = str(REPO_ROOT / ".venv-oracle" / "bin" / "nats-server")


class ServerFailed(RuntimeError):
    """The server exited or never became ready; the message carries its last log lines."""


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server: a name for the table and a command template."""

    name: str
    command: tuple[str, ...]

    def argv(self, port: int | str) -> list[str]:
        """The command for `port`: `{port}` is substituted, or `-a HOST -p PORT` appended."""
        if any("{port}" in part for part in self.command):
            return [part.replace("{port}", str(port)) for part in self.command]
        return [*self.command, "-a", HOST, "-p", str(port)]


def go_spec(path: str, extra: list[str] | None = None) -> ServerSpec:
    return ServerSpec("go", (path, *(extra or [])))


def pynats_spec(extra: list[str] | None = None) -> ServerSpec:
    return ServerSpec("pynats", (sys.executable, "-m", "pynats.server", *(extra or [])))


def custom_spec(command: str, name: str) -> ServerSpec:
    return ServerSpec(name, tuple(shlex.split(command)))


def default_go_path() -> str:
    return os.environ.get("PYNATS_ORACLE_SERVER") or DEFAULT_GO


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class RunningServer:
    """A server process for the duration of a `with` block."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.port = free_port()
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop())
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT / "src"), env.get("PYTHONPATH", "")) if p
        )
        argv = spec.argv(self.port)
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
                cwd=REPO_ROOT,
                env=env,
            )
        except OSError as exc:
            self._log.close()
            raise ServerFailed(f"{spec.name}: cannot run {argv[0]}: {exc}") from exc

    def __enter__(self) -> RunningServer:
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kb(self) -> int:
        """Resident set size of the server process, from /proc/<pid>/status."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise ServerFailed(f"{self.spec.name}: no VmRSS for pid {self.pid}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while READY_LINE not in self._log_bytes():
            if self.proc.poll() is not None:
                raise ServerFailed(
                    f"{self.spec.name} exited ({self.proc.returncode}): {self._tail()}"
                )
            if time.monotonic() > deadline:
                raise ServerFailed(
                    f"{self.spec.name} not ready after {READY_TIMEOUT:.0f}s: {self._tail()}"
                )
            time.sleep(0.02)

    def _log_bytes(self) -> bytes:
        self._log.seek(0)
        return self._log.read()

    def _tail(self, lines: int = 5) -> str:
        text = self._log_bytes().decode(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no output)"
