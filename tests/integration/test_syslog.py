"""`remote_syslog` and `syslog` compared with the Go server: a syslog listener in the test (UDP
on 127.0.0.1, a unix stream socket) receives both servers' messages; their framing (priority,
time stamp, host name, tag, pid) and which levels get which severities are compared, and the
ways a syslog that cannot be reached stops both servers."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.support.ports import free_port
from tests.support.servers import oracle_server_path, pynats_server_command

KINDS = ("pynats", "go")
REMOTE = re.compile(r"<(\d+)>(\S+) (\S+) nats-server\[(\d+)\]: (.*)\n", re.S)
LOCAL = re.compile(
    r"<(\d+)>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) nats-server\[(\d+)\]: (.*)\n", re.S
)
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)")


class SyslogListener:
    """Collects what arrives on a UDP port or a unix stream socket, one message per entry."""

    def __init__(self, sock: socket.socket, *, stream: bool) -> None:
        self.sock = sock
        self.stream = stream
        self.messages: list[str] = []
        self._closing = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if not self.stream:
            while not self._closing:
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                self.messages.append(data.decode())
            return
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            pending = b""
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                pending += data
                *lines, pending = pending.split(b"\n")
                self.messages.extend(line.decode() + "\n" for line in lines)

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in list(self.messages):
                if text in message:
                    return message
            time.sleep(0.01)
        raise AssertionError(f"no syslog message with {text!r}: {self.messages}")

    def close(self) -> None:
        self._closing = True
        self.sock.close()
        self._thread.join(5)


def udp_listener() -> tuple[SyslogListener, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    return SyslogListener(sock, stream=False), sock.getsockname()[1]


def command(kind: str) -> list[str]:
    return [oracle_server_path()] if kind == "go" else pynats_server_command()


@contextmanager
def running(kind: str, conf: Path) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(
        [*command(kind), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def client_session(port: int) -> None:
    """A client that connects, publishes, gets its message back, and one refused."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.recv(65536)
        s.sendall(
            b'CONNECT {"user":"a","pass":"b","verbose":false}\r\nSUB a 1\r\nPUB a 2\r\nhi\r\n'
            b"PING\r\n"
        )
        got = b""
        while b"PONG" not in got:
            got += s.recv(65536)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.recv(65536)
        s.sendall(b'CONNECT {"user":"a","pass":"wrong"}\r\nPING\r\n')
        got = b""
        while b"Authorization Violation" not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk


SEEN_LINES = {
    "notice": "Server is ready",
    "warning": "Websocket not configured with TLS. DO NOT USE IN PRODUCTION!",
    "error": "authentication error",
    "debug": "Client connection created",
    "trace": "<<- [SUB a 1]",
}


def remote_messages(kind: str, tmp_path: Path) -> dict[str, tuple[int, str, str, int]]:
    listener, syslog_port = udp_listener()
    port = free_port()
    conf = tmp_path / f"{kind}.conf"
    conf.write_text(
        f'port: {port}\nremote_syslog: "udp://127.0.0.1:{syslog_port}"\n'
        "debug: true\ntrace: true\nauthorization { user: a, password: b }\n"
        f"websocket {{ port: {free_port()}, no_tls: true }}\n"
    )
    try:
        with running(kind, conf) as proc:
            listener.wait_for("Server is ready")
            client_session(port)
            found = {name: listener.wait_for(text) for name, text in SEEN_LINES.items()}
            pid = proc.pid
            proc.send_signal(signal.SIGINT)
            assert proc.wait(10) == 0
            assert proc.stderr is not None
            stderr = proc.stderr.read()
        listener.wait_for("Server Exiting..")
    finally:
        listener.close()
    assert stderr == b"", f"{kind} logged to stderr too: {stderr!r}"
    seen = {}
    for name, message in found.items():
        match = REMOTE.fullmatch(message)
        assert match, f"{kind}: {message!r}"
        assert RFC3339.fullmatch(match.group(2)), message
        assert match.group(3) == socket.gethostname()
        assert int(match.group(4)) == pid
        seen[name] = (int(match.group(1)), match.group(2)[-1:], pid)
    return seen


def test_remote_syslog_over_udp_gets_what_nats_server_sends(tmp_path: Path) -> None:
    seen = {kind: remote_messages(kind, tmp_path) for kind in KINDS}
    for name in SEEN_LINES:
        go, ours = seen["go"][name], seen["pynats"][name]
        assert ours[:2] == go[:2], name
    # facility 0 (Go's writer is dialled with the bare LOG_DEBUG priority)
    assert {name: value[0] for name, value in seen["go"].items()} == {
        "notice": 5,
        "warning": 4,
        "error": 3,
        "debug": 7,
        "trace": 5,
    }


def test_remote_syslog_on_a_unix_socket_gets_the_local_form(tmp_path: Path) -> None:
    seen = {}
    for kind in KINDS:
        path = tmp_path / f"{kind}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        sock.listen()
        sock.settimeout(10)
        listener = SyslogListener(sock, stream=True)
        port = free_port()
        conf = tmp_path / f"{kind}.conf"
        conf.write_text(f'port: {port}\nremote_syslog: "unix://{path}"\n')
        try:
            with running(kind, conf) as proc:
                message = listener.wait_for("Server is ready")
                starting = listener.wait_for("Starting nats-server")
                pid = proc.pid
        finally:
            listener.close()
        shapes = []
        for line in (starting, message):
            match = LOCAL.fullmatch(line)
            assert match, f"{kind}: {line!r}"
            assert int(match.group(3)) == pid
            shapes.append((int(match.group(1)), match.group(4)))
        seen[kind] = shapes
    assert (
        seen["pynats"]
        == seen["go"]
        == [
            (5, "Starting nats-server"),
            (5, "Server is ready"),
        ]
    )


def is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def refusal(kind: str, conf: Path) -> tuple[int, str]:
    result = subprocess.run(
        [*command(kind), "-c", str(conf)], capture_output=True, timeout=20, text=True
    )
    lines = result.stderr.strip().splitlines()
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d .*", lines[-1]), result.stderr
    return result.returncode, lines[-1][20:]


def test_a_syslog_that_cannot_be_reached_stops_both_servers(tmp_path: Path) -> None:
    closed = free_port()
    cases = [
        f"tcp://127.0.0.1:{closed}",
        "http://127.0.0.1:514",
        "127.0.0.1:514",
        f"unix://{tmp_path}/missing.sock",
    ]
    for address in cases:
        conf = tmp_path / "refused.conf"
        conf.write_text(f'port: {free_port()}\nremote_syslog: "{address}"\n')
        got = {kind: refusal(kind, conf) for kind in KINDS}
        assert got["pynats"] == got["go"], address
        assert got["go"][0] == 1
    if not any(is_socket(path) for path in ("/dev/log", "/var/run/syslog", "/var/run/log")):
        conf = tmp_path / "local.conf"
        conf.write_text(f"port: {free_port()}\nsyslog: true\n")
        got = {kind: refusal(kind, conf) for kind in KINDS}
        assert (
            got["pynats"]
            == got["go"]
            == (
                1,
                'error connecting to syslog: "Unix syslog delivery error"',
            )
        )
    else:
        pytest.skip("this machine has a local syslog socket: not written to by tests")
