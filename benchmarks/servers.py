"""Starting, watching and stopping the servers under test.

Each benchmark run gets a fresh server on a free port, started the way harnesses start
nats-server: ready once the `Server is ready` line shows up in its log. The log goes to a
temporary file rather than a pipe, so the runner needs no reader thread (it forks the
generator processes) and a chatty server can never block on a full pipe.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from loadgen import HOST, ServerError

READY_LINE = b"Server is ready"
READY_TIMEOUT = 15.0
ROUTES_TIMEOUT = 15.0
INTEREST_TIMEOUT = 10.0
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
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports (all bound at once, so the kernel cannot repeat one)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class RunningServer:
    """A server process for the duration of a `with` block."""

    def __init__(self, spec: ServerSpec, port: int | None = None) -> None:
        self.spec = spec
        self.port = free_port() if port is None else port
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


class RunningCluster:
    """A full-mesh cluster of `size` servers of one kind for the duration of a `with` block.

    Every member gets a config file with its name, monitoring port and a `cluster {}` block
    listing every member's route URL (as operators write full-mesh configs); the client port
    is given on the command line like a single server's (`spec.argv`). Ready once every member
    logged `Server is ready` and has a route to every other member (its /routez).
    """

    NAMES = "ABCDEFGHIJ"

    def __init__(
        self, spec: ServerSpec, size: int = 3, name: str = "bench", gateways: bool = False
    ) -> None:
        """`gateways`: every member is a cluster of its own (named after it), joined to the
        others by a `gateway {}` block (a supercluster) instead of routes."""
        if not 2 <= size <= len(self.NAMES):
            raise ValueError(f"cluster size {size} outside 2..{len(self.NAMES)}")
        self.spec = spec
        self.gateways = gateways
        self.names = list(self.NAMES[:size])
        self._tmp = tempfile.TemporaryDirectory(prefix="pynats-bench-cluster-")
        ports = free_ports(3 * size)
        client, route, self.http_ports = ports[:size], ports[size : 2 * size], ports[2 * size :]
        routes = ", ".join(f"nats-route://{HOST}:{p}" for p in route)
        self.servers: list[RunningServer] = []
        try:
            for i, member in enumerate(self.names):
                conf = Path(self._tmp.name) / f"{member}.conf"
                if gateways:
                    remotes = ", ".join(
                        f'{{name: {other}, url: "nats://{HOST}:{route[j]}"}}'
                        for j, other in enumerate(self.names)
                        if j != i
                    )
                    links = (
                        f"gateway {{\n  name: {member}\n  listen: {HOST}:{route[i]}\n"
                        f"  gateways: [{remotes}]\n}}\n"
                    )
                else:
                    links = (
                        f"cluster {{\n  name: {name}\n  listen: {HOST}:{route[i]}\n"
                        f"  routes: [{routes}]\n}}\n"
                    )
                conf.write_text(
                    f"server_name: {member}\nhttp: {HOST}:{self.http_ports[i]}\n" + links
                )
                member_spec = ServerSpec(f"{spec.name} {member}", (*spec.command, "-c", str(conf)))
                self.servers.append(RunningServer(member_spec, client[i]))
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def member_argv(spec: ServerSpec) -> list[str]:
        """A member's command, for the record (its config file is written per run)."""
        return ServerSpec(spec.name, (*spec.command, "-c", "MEMBER.conf")).argv("PORT")

    def __enter__(self) -> RunningCluster:
        try:
            for server in self.servers:
                server.__enter__()
            self.wait_formed()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def ports(self) -> list[int]:
        """Client ports, in member order (A, B, C, ...)."""
        return [server.port for server in self.servers]

    @property
    def port(self) -> int:
        return self.servers[0].port

    def rss_kb(self) -> int:
        return sum(server.rss_kb() for server in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self._tmp.cleanup()

    def monitor(self, member: int, path: str) -> dict[str, object]:
        """One monitoring endpoint of one member (`/varz`, `/routez?subs=1`, ...)."""
        url = f"http://{HOST}:{self.http_ports[member]}{path}"
        with urllib.request.urlopen(url, timeout=5) as reply:
            return json.loads(reply.read())

    def routez(self, member: int, subs: bool = False) -> list[dict[str, object]]:
        """The routes of one member; with `gateways`, its outbound gateway connections in the
        same shape (`remote_name` the other member, `subscriptions_list` its `$G` interest)."""
        if self.gateways:
            return self._gateway_links(member, subs)
        routes = self.monitor(member, "/routez" + ("?subs=1" if subs else ""))
        return routes.get("routes") or []  # type: ignore[return-value]

    def _gateway_links(self, member: int, subs: bool) -> list[dict[str, object]]:
        z = self.monitor(member, "/gatewayz" + ("?accs=1&subs=1" if subs else ""))
        links: list[dict[str, object]] = []
        for name, out in (z.get("outbound_gateways") or {}).items():  # type: ignore[attr-defined]
            if name not in (z.get("inbound_gateways") or {}):  # type: ignore[operator]
                continue  # both directions up: messages go out, interest comes back
            subjects: list[str] = []
            for account in out.get("accounts") or []:
                if account.get("name") == "$G":
                    subjects += account.get("subscriptions_list") or []
            links.append({"remote_name": name, "subscriptions_list": subjects})
        return links

    def slow_consumers(self) -> dict[str, int]:
        """Connections (clients or routes) each member has cut as slow consumers so far."""
        return {
            name: int(self.monitor(i, "/varz").get("slow_consumers") or 0)  # type: ignore[call-overload]
            for i, name in enumerate(self.names)
        }

    def wait_formed(self, timeout: float = ROUTES_TIMEOUT) -> None:
        """Until every member has a route to every other member."""
        self._wait(
            lambda: {
                name: missing
                for i, name in enumerate(self.names)
                if (missing := set(self.names) - {name} - self._remote_names(i))
            },
            timeout,
            "cluster not formed; routes missing",
        )

    def wait_interest(
        self,
        subject: bytes,
        publisher: int,
        holders: Iterable[int],
        timeout: float = INTEREST_TIMEOUT,
    ) -> None:
        """Until `publisher`'s routes to every member in `holders` carry a subscription on
        `subject` (the RS+ crossed), so that a message published there is forwarded."""
        wanted = {self.names[i] for i in holders if i != publisher}
        text = subject.decode()

        def missing() -> set[str]:
            have = {
                str(route.get("remote_name"))
                for route in self.routez(publisher, subs=True)
                if text in (route.get("subscriptions_list") or [])  # type: ignore[operator]
            }
            return wanted - have

        self._wait(missing, timeout, f"no interest in {text} at {self.names[publisher]} from")

    def _remote_names(self, member: int) -> set[str]:
        try:
            return {str(route.get("remote_name")) for route in self.routez(member)}
        except OSError:
            return set()

    def _wait(self, missing: Callable[[], object], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while gap := missing():
            for server in self.servers:
                if server.proc.poll() is not None:
                    raise ServerError(f"{server.spec.name} exited: {server._tail()}")
            if time.monotonic() > deadline:
                raise ServerError(f"{self.spec.name}: {what} {gap} after {timeout:.0f}s")
            time.sleep(0.02)
