"""How tools launch, watch and stop the server: flags, log lines, ports/pid files, signals."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import connect
from tests.support.raw import RawClient
from tests.support.servers import pynats_server_command, start_server
from tests.support.waiting import wait_until

LOG_LINE = re.compile(
    r"^\[(\d+)\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6} \[(INF|WRN|ERR|DBG|TRC|FTL)\] "
)


def run_cli(*args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*pynats_server_command(), *args], capture_output=True, text=True, timeout=timeout
    )


def test_startup_lines_in_nats_server_format_and_order() -> None:
    srv = start_server(["-n", "alpha"], http_port=-1)
    try:
        lines = srv.log_lines
        for line in lines:
            assert LOG_LINE.match(line), line
            assert LOG_LINE.match(line).group(1) == str(srv.proc.pid)
        text = [LOG_LINE.sub("", line) for line in lines]
        assert text[0] == "Starting nats-server"
        assert text[1].startswith("  Version:  2.")
        assert text[2].startswith("  Git:      [")
        assert "  Name:     alpha" in text
        ids = [t for t in text if t.startswith("  ID:       N")]
        assert len(ids) == 1 and len(ids[0].split()[-1]) == 56
        monitor = text.index(f"Starting http monitor on 127.0.0.1:{srv.http_port}")
        listening = text.index(f"Listening for client connections on 127.0.0.1:{srv.port}")
        assert monitor < listening < text.index("Server is ready") == len(text) - 1
    finally:
        srv.stop()


def test_random_port_is_reported_and_really_bound() -> None:
    srv = start_server()
    try:
        assert srv.port > 0
        with socket.create_connection(("127.0.0.1", srv.port), timeout=2) as s:
            assert s.recv(4096).startswith(b"INFO ")
    finally:
        srv.stop()


def test_ready_well_under_a_second() -> None:
    started = time.monotonic()
    srv = start_server()
    elapsed = time.monotonic() - started
    srv.stop()
    assert elapsed < 1.0, elapsed


def test_sigterm_and_sigint_shut_down_cleanly() -> None:
    for sig, name in ((signal.SIGTERM, "terminated"), (signal.SIGINT, "interrupt")):
        srv = start_server()
        srv.signal(sig)
        assert srv.proc.wait(5) == 0
        srv.wait_for_log(f'Trapped "{name}" signal')
        srv.wait_for_log("Server Exiting..")


def test_ports_file_written_when_bound_and_removed_on_exit(tmp_path: Path) -> None:
    srv = start_server(["--ports_file_dir", str(tmp_path)], http_port=-1)
    try:
        path = tmp_path / f"nats-server_{srv.proc.pid}.ports"
        ports = json.loads(path.read_text())
        assert f"nats://127.0.0.1:{srv.port}" in ports["nats"]
        assert f"http://127.0.0.1:{srv.http_port}" in ports["monitoring"]
        assert "cluster" not in ports
    finally:
        srv.stop()
    assert not path.exists()


def test_pid_file(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    srv = start_server(["-P", str(pid_file)])
    try:
        assert pid_file.read_text().strip() == str(srv.proc.pid)
    finally:
        srv.stop()


def test_signal_flag_reaches_the_server_by_pid_file(tmp_path: Path) -> None:
    pid_file = tmp_path / "server.pid"
    srv = start_server(["-P", str(pid_file)])
    result = run_cli("--signal", f"quit={pid_file}")
    assert result.returncode == 0, result.stderr
    assert srv.proc.wait(5) == 0
    srv.wait_for_log('Trapped "interrupt" signal')


def test_signal_errors() -> None:
    bad = run_cli("-sl", "foo=123")
    assert bad.returncode == 1 and 'unknown signal "foo"' in bad.stderr
    nopid = run_cli("-sl", "ldm=abc")
    assert nopid.returncode == 1 and "nats-server: invalid pid: abc" in nopid.stderr


def test_version_and_help() -> None:
    out = run_cli("-v")
    assert out.returncode == 0 and re.match(r"nats-server: v2\.\d+\.\d+", out.stdout)
    help_ = run_cli("--help")
    assert help_.returncode == 0 and "Usage: nats-server [options]" in help_.stdout
    assert "-js, --jetstream" in help_.stdout


@pytest.mark.parametrize(
    "args,stderr,code",
    [
        (["-xyz"], "flag provided but not defined: -xyz", 0),
        (["-p", "abc"], 'invalid value "abc" for flag -p: parse error', 0),
        (["-p"], "flag needs an argument: -p", 0),
        (["-js=maybe"], 'invalid boolean value "maybe" for -js: parse error', 0),
        (["foo"], 'nats-server: unrecognized command: "foo"', 1),
        (["--routes", "nats://127.0.0.1:6222"], "solicited routes require cluster capabilities", 1),
        (["--tls"], "TLS Server certificate must be present and valid", 1),
    ],
)
def test_bad_command_lines_answer_like_nats_server(args: list[str], stderr: str, code: int) -> None:
    result = run_cli(*args)
    assert stderr in result.stderr
    assert result.returncode == code


def test_port_in_use_is_fatal_and_names_the_port() -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        result = run_cli("-a", "127.0.0.1", "-p", str(port))
        assert result.returncode == 1
        fatal = [line for line in result.stderr.splitlines() if "[FTL]" in line]
        assert fatal and f"127.0.0.1:{port}" in fatal[0] and "address already in use" in fatal[0]
    finally:
        blocker.close()


def test_flag_forms_like_go_flag_package(tmp_path: Path) -> None:
    """`-sd=DIR`, `--store_dir DIR`, single and double dashes are the same thing."""
    srv = start_server(["--server_name=beta", "-DV", "-T=false"])
    try:
        assert any("  Name:     beta" in line for line in srv.log_lines)
        assert not re.search(r"\d{4}/\d\d/\d\d", srv.log_lines[0])  # -T=false: no timestamps
    finally:
        srv.stop()


async def test_lame_duck_signal_tells_clients_and_stops_accepting() -> None:
    srv = start_server()
    try:
        ldm_seen = []

        async def on_ldm() -> None:
            ldm_seen.append(True)

        nc = await connect(srv.url, lame_duck_mode_cb=on_ldm)
        srv.signal(signal.SIGUSR2)
        srv.wait_for_log("Entering lame duck mode, stop accepting new clients")
        await wait_until(lambda: bool(ldm_seen), what="lame duck INFO")
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
        # SIGTERM is ignored during lame duck mode
        srv.signal(signal.SIGTERM)
        srv.wait_for_log('Trapped "terminated" signal')
        assert srv.proc.poll() is None
        await nc.close()
    finally:
        srv.kill()


def test_lame_duck_without_clients_exits_at_once() -> None:
    srv = start_server()
    srv.signal(signal.SIGUSR2)
    assert srv.proc.wait(5) == 0
    srv.wait_for_log("Server Exiting..")


async def test_client_reconnects_after_server_restart_on_same_port() -> None:
    import asyncio

    first = start_server()
    port = first.port
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    nc = await connect(
        first.url,
        allow_reconnect=True,
        max_reconnect_attempts=60,
        reconnect_time_wait=0.1,
        reconnected_cb=on_reconnect,
    )
    sub = await nc.subscribe("after.restart")
    first.stop()
    second = start_server(port=port)
    try:
        await asyncio.wait_for(reconnected.wait(), 10)
        await nc.publish("after.restart", b"back")
        assert (await sub.next_msg(2)).data == b"back"  # the subscription was restored
        await nc.close()
    finally:
        second.stop()


def test_python_dash_m_entry_point_and_console_script_agree() -> None:
    exe = Path(sys.executable).parent / "nats-server"
    assert exe.exists()
    out = subprocess.run([str(exe), "-v"], capture_output=True, text=True, timeout=10)
    assert out.stdout == run_cli("-v").stdout
    assert os.access(exe, os.X_OK)


def wait_for_text(path: Path, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and text in path.read_text()):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path}"
        time.sleep(0.02)


def test_log_file_and_reopen_signal(tmp_path: Path) -> None:
    log_file = tmp_path / "server.log"
    pid_file = tmp_path / "server.pid"
    proc = subprocess.Popen(
        [
            *pynats_server_command(),
            "-a",
            "127.0.0.1",
            "-p",
            "-1",
            "-l",
            str(log_file),
            "-P",
            str(pid_file),
        ],
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_text(log_file, "Server is ready")
        assert "Starting nats-server" in log_file.read_text()
        log_file.rename(tmp_path / "server.log.1")  # what logrotate does, then SIGUSR1
        result = run_cli("--signal", f"reopen={pid_file}")
        assert result.returncode == 0, result.stderr
        wait_for_text(log_file, "File log re-opened")
    finally:
        proc.terminate()
        proc.wait(5)
    assert proc.stderr is not None and b"Server is ready" not in proc.stderr.read()


def test_trace_flag_logs_protocol_like_nats_server() -> None:
    srv = start_server(["-V"])
    try:
        with RawClient(srv.port) as raw:
            raw.handshake(name="tracer")
            raw.send(b"SUB foo 1\r\nPUB foo r 5\r\nhello\r\n")
            assert raw.ping_pong() == b"MSG foo 1 r 5\r\nhello\r\n"
        for line in (
            r'\[TRC\] 127\.0\.0\.1:\d+ - cid:\d+ - <<- \[CONNECT \{.*"name": "tracer".*\}\]',
            r'- "tracer" - <<- \[SUB foo 1\]',
            r'- "tracer" - <<- \[PUB foo r 5\]',
            r'- "tracer" - <<- MSG_PAYLOAD: \["hello"\]',
            r'- "tracer" - ->> \[MSG foo 1 r 5\]',
            r'- "tracer" - ->> MSG_PAYLOAD: \["hello"\]',
            r'- "tracer" - ->> \[PONG\]',
        ):
            srv.wait_for_log(line)
    finally:
        srv.stop()
