"""Logging options compared with the Go server: rotation of the log file (`log_size_limit`,
`logfile_max_num`). Both servers write the same kind of traffic to their own directory; the
files left on disk are compared by their names, sizes, modes and rotation lines."""

from __future__ import annotations

import re
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
from tests.support.ports import free_port
from tests.support.servers import oracle_server_path, pynats_server_command, start_server

SIZE_LIMIT = 1000
MAX_FILES = 3
STAMP = r"\d{4}\.\d\d\.\d\d\.\d\d\.\d\d\.\d\d\.\d{9}"


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.02)


def make_log_lines(port: int, clients: int) -> None:
    """Each client costs a `created` and a `closed` debug line."""
    for i in range(clients):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.recv(65536)
            s.sendall(b'CONNECT {"name":"client-%d"}\r\nPING\r\n' % i)
            got = b""
            while b"PONG" not in got:
                got += s.recv(65536)


def run_rotating_server(kind: str, where: Path) -> dict[str, bytes]:
    where.mkdir()
    log_file = where / "server.log"
    port = free_port()
    conf = where / "server.conf"
    conf.write_text(
        f'port: {port}\ndebug: true\nlog_file: "{log_file}"\n'
        f"log_size_limit: {SIZE_LIMIT}\nlogfile_max_num: {MAX_FILES}\n"
    )
    command = [oracle_server_path()] if kind == "go" else pynats_server_command()
    proc = subprocess.Popen([*command, "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        make_log_lines(port, 40)
    finally:
        proc.terminate()
        proc.wait(10)
    files = {}
    for path in where.iterdir():
        if path.name.startswith("server.log"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
            files[path.name] = path.read_bytes()
    return files


@pytest.mark.parametrize("kind", ["pynats", "go"])
def test_the_log_file_is_rotated_as_nats_server_rotates_it(kind: str, tmp_path: Path) -> None:
    files = run_rotating_server(kind, tmp_path / kind)
    backups = sorted(name for name in files if name != "server.log")
    assert len(backups) == MAX_FILES - 1
    for name in backups:
        assert re.fullmatch(rf"server\.log\.{STAMP}", name)
        # The purge lines are not counted (nats-server writes them past its counter).
        lines = [line for line in files[name].splitlines(keepends=True) if b"Purged" not in line]
        counted = sum(map(len, lines))
        # A file is rotated by the write that takes it past the limit, not before.
        assert counted > SIZE_LIMIT >= counted - len(lines[-1])
    live = files["server.log"].split(b"\n")
    rotated = rb"\[\d+\] \S+ \S+ \[INF\] Rotated log, backup saved as \"(.+)\"\r"
    match = re.fullmatch(rotated, live[0])
    assert match and Path(match.group(1).decode()).name == backups[-1]
    assert re.fullmatch(
        rf'\[\d+\] \S+ \S+ \[INF\] Purged log file "server\.log\.{STAMP}"\r'.encode(), live[1]
    )
    purged = re.search(rb'"(server\.log\.[^"]+)"', live[1])
    assert purged and purged.group(1).decode() < backups[0]
    assert not any(b"not supported by pynats" in data for data in files.values())


def test_a_file_already_past_the_limit_is_rotated_at_start(tmp_path: Path) -> None:
    seen = {}
    for kind in ("pynats", "go"):
        where = tmp_path / kind
        where.mkdir()
        log_file = where / "server.log"
        log_file.write_text("x" * (SIZE_LIMIT + 1) + "\n")
        port = free_port()
        conf = where / "server.conf"
        conf.write_text(f'port: {port}\nlog_file: "{log_file}"\nlog_size_limit: {SIZE_LIMIT}\n')
        command = [oracle_server_path()] if kind == "go" else pynats_server_command()
        proc = subprocess.Popen([*command, "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port)
        finally:
            proc.terminate()
            proc.wait(10)
        # The oldest backup is the file found at start (the banner may rotate again).
        backup = min(p for p in where.iterdir() if p.name.startswith("server.log."))
        lines = backup.read_text().splitlines()
        seen[kind] = (
            lines[0] == "x" * (SIZE_LIMIT + 1),
            re.sub(r"^\[\d+\] \S+ \S+ ", "", lines[1]),
        )
        assert "Rotated log, backup saved as" in log_file.read_text().splitlines()[0]
    assert seen["pynats"] == seen["go"] == (True, "[INF] Rotating logfile...")


def hpub(headers: bytes, payload: bytes) -> bytes:
    return b"HPUB a %d %d\r\n%s%s\r\n" % (
        len(headers),
        len(headers) + len(payload),
        headers,
        payload,
    )


def traced_messages(oracle: bool, conf: Path) -> list[str]:
    srv = start_server(["-c", str(conf)], oracle=oracle)
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.recv(65536)
            s.sendall(
                b'CONNECT {"headers":true,"verbose":false,"name":"t"}\r\nSUB a 1\r\n'
                + hpub(b"NATS/1.0\r\nA: b\r\n\r\n", b"hi")
                + b"PUB a 2\r\nhi\r\n"
                + hpub(b"NATS/1.0\r\n\r\n", b"")
                + hpub(b"NATS/1.0\r\nLong-Header: abcdefghijklmnopqrstuvwxyz\r\n\r\n", b"hi")
                + b"PING\r\n"
            )
            got = b""
            while b"PONG" not in got:
                chunk = s.recv(65536)
                assert chunk, got
                got += chunk
        srv.wait_for_log(r"->> \[PONG\]")
    finally:
        srv.stop()
    wanted = re.compile(r'\[TRC\] .* - "t" - ((<<-|->>) (MSG_PAYLOAD: .*|\[H?(PUB|MSG) .*))$')
    return [m.group(1) for line in srv.log_lines if (m := wanted.search(line))]


def test_trace_headers_traces_the_headers_instead_of_the_payload(tmp_path: Path) -> None:
    conf = tmp_path / "trace.conf"
    conf.write_text("trace: true\ntrace_headers: true\nmax_traced_msg_len: 20\n")
    go = traced_messages(True, conf)
    assert traced_messages(False, conf) == go
    assert go == [
        "<<- [HPUB a 18 20]",
        '<<- MSG_PAYLOAD: ["NATS/1.0\\r\\nA: b"]',
        "->> [HMSG a 1 18 20]",
        '->> MSG_PAYLOAD: ["NATS/1.0\\r\\nA: b"]',
        "<<- [PUB a 2]",
        "->> [MSG a 1 2]",
        "<<- [HPUB a 12 12]",
        '<<- MSG_PAYLOAD: ["NATS/1.0"]',
        "->> [HMSG a 1 12 12]",
        '->> MSG_PAYLOAD: ["NATS/1.0"]',
        "<<- [HPUB a 53 55]",
        '<<- MSG_PAYLOAD: ["NATS/1.0\\r\\nLong-Heade..."]',
        "->> [HMSG a 1 53 55]",
        '->> MSG_PAYLOAD: ["NATS/1.0\\r\\nLong-Heade..."]',
    ]


def test_max_traced_msg_len_cuts_the_payload_inside_the_quotes(tmp_path: Path) -> None:
    conf = tmp_path / "trace.conf"
    conf.write_text("trace: true\nmax_traced_msg_len: 5\n")
    go = traced_messages(True, conf)
    assert traced_messages(False, conf) == go
    assert '<<- MSG_PAYLOAD: ["NATS/..."]' in go
    assert '->> MSG_PAYLOAD: ["hi"]' in go
