"""Reloading the top-level options (SIGHUP): which ones nats-server 2.15.1 refuses, and the
`Reloaded: ...` lines of the others (their values as Go prints them, their order), compared
line for line with the Go server. One pair of servers serves every case: each case rewrites
the file and reloads, then puts the starting file back and reloads again (both compared)."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.servers import RunningServer, start_server

BASE = "logtime: true\n"
PKI = Path(__file__).resolve().parents[1] / "data" / "cluster" / "pki"
TLS = f'tls {{ cert_file: "{PKI / "server.pem"}", key_file: "{PKI / "server-key.pem"}" }}'
NKEY = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"

# <files> is a directory both servers share (pid file, ports file directory).
CASES = {
    # reloaded and logged
    "debug": "debug: true",
    "trace": "trace: true",
    "trace_verbose": "trace_verbose: true",
    "trace_headers": "trace_headers: true",
    "logtime": "logtime: false",
    "logtime_utc": "logtime_utc: true",
    "max_connections": "max_connections: 100",
    "max_connections_0": "max_connections: 0",
    "max_payload": "max_payload: 2000",
    "max_payload_0": "max_payload: 0",
    "max_control_line": "max_control_line: 2000",
    "ping_interval": 'ping_interval: "1h30m"',
    "ping_interval_seconds": "ping_interval: 60",
    "ping_interval_0": "ping_interval: 0",
    "ping_max": "ping_max: 5",
    "write_deadline": 'write_deadline: "1500ms"',
    "auth_timeout": "authorization { timeout: 0.5 }",
    "auth_user": "authorization { user: a, password: b }",
    "auth_token": "authorization { token: abc }",
    "auth_nkey": f"authorization {{ users: [{{nkey: {NKEY}}}] }}",
    "connect_error_reports": "connect_error_reports: 5",
    "reconnect_error_reports": "reconnect_error_reports: 5",
    "max_traced_msg_len": "max_traced_msg_len: 100",
    "server_tags": 'server_tags: ["a:b"]',
    "server_metadata": "server_metadata: { a: b }",
    "no_fast_producer_stall": "no_fast_producer_stall: true",
    "pid_file": 'pid_file: "<files>/server.pid"',
    "ports_file_dir": 'ports_file_dir: "<files>"',
    "client_advertise": 'client_advertise: "1.2.3.4:5"',
    "tls": f"{TLS}\nwrite_deadline: 3s\nmax_payload: 2000\nping_max: 5",
    "tls_timeout": TLS.replace(" }", ", timeout: 3 }") + "\nauthorization { timeout: 5 }",
    # JetStream switched on (and off again), with the lines of its start and stop
    "jetstream": 'jetstream { store_dir: "<dir>/js" }\nmax_payload: 2000',
    # refused
    "server_name": "server_name: other",
    "http_port": "http_port: 1",
    "https_port": "https_port: 1",
    "max_pending": "max_pending: 2000000",
    "max_subscriptions": "max_subscriptions: 100",
    "max_sub_tokens": "max_sub_tokens: 5",
    "disable_sublist_cache": "disable_sublist_cache: true",
    "no_header_support": "no_header_support: true",
    "no_auth_user": "no_auth_user: foo\nauthorization { users: [{user: foo, password: bar}] }",
    "system_account": "system_account: SYS\naccounts { SYS {} }",
    "no_system_account": "no_system_account: true",
    "max_closed_clients": "max_closed_clients: 50",
    "log_size_limit": "log_size_limit: 1000",
    "log_max_num": "log_max_num: 3",
    "write_timeout": "write_timeout: close",
    "lame_duck_duration": 'lame_duck_duration: "60s"',
    "lame_duck_grace_period": 'lame_duck_grace_period: "1500ms"',
    "jetstream_domain": 'jetstream { store_dir: "<dir>/js", domain: d }',
    # refused by the checks before the comparison
    "no_auth_user_without_users": "no_auth_user: foo",
    "max_pending_below_max_payload": "max_pending: 1000",
    "client_advertise_invalid": 'client_advertise: "a:b:c"',
    # several refused ones: the first in nats-server's order is named
    "first_refused": "lame_duck_grace_period: 1s\nmax_closed_clients: 5\nwrite_timeout: close\n"
    "log_size_limit: 10\nmax_pending: 2000000\nno_system_account: true\nmax_sub_tokens: 5\n"
    "max_subscriptions: 10\nno_header_support: true",
    # several reloadable ones: nats-server's order
    "combined": "reconnect_error_reports: 5\nserver_metadata: { a: b }\nserver_tags: [x]\n"
    'connect_error_reports: 5\nmax_traced_msg_len: 100\nwrite_deadline: "3s"\n'
    'ports_file_dir: "<files>"\npid_file: "<files>/server.pid"\nno_fast_producer_stall: true\n'
    'max_payload: 2000\nmax_control_line: 2000\nping_max: 5\nping_interval: "30s"\n'
    "authorization { user: a, password: b, timeout: 3 }\nmax_connections: 100\n"
    "logtime_utc: true\ntrace_verbose: true\ndebug: true\ntrace: true",
}
DONE = re.compile(r"Reloaded server configuration|Failed to reload")
KEPT = re.compile(r"Reloaded: |Failed to reload|JetStream")


class Side:
    """One server of the pair, its file, and what a reload of it logs."""

    def __init__(self, oracle: bool, root: Path, files: Path, base: str = BASE) -> None:
        self.dir = root / ("go" if oracle else "py")
        self.dir.mkdir()
        self.conf = self.dir / "server.conf"
        self.files = files
        self.conf.write_text(base.replace("<dir>", str(self.dir)))
        self.server: RunningServer = start_server(["-c", str(self.conf)], oracle=oracle)

    def reload(self, text: str) -> list[str]:
        start = len(self.server.log_lines)
        text = text.replace("<files>", str(self.files)).replace("<dir>", str(self.dir))
        self.conf.write_text(text)
        self.server.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not any(DONE.search(line) for line in self.server.log_lines[start:]):
            if time.monotonic() > deadline:
                raise TimeoutError("no reload line:\n" + "\n".join(self.server.log_lines[start:]))
            time.sleep(0.005)  # polling the log for the reload's line
        lines = self.server.log_lines[start:]
        kept = [line.split("] ", 2)[-1] for line in lines if KEPT.search(line)]
        kept = [re.sub(r"Took \S+ to", "Took <t> to", line) for line in kept]
        return [line.replace(str(self.dir), "<dir>") for line in kept]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Side, Side]]:
    root = tmp_path_factory.mktemp("reload_options")
    files = root / "files"
    files.mkdir()
    go = Side(True, root, files)
    try:
        py = Side(False, root, files)
    except Exception:
        go.server.stop()
        raise
    try:
        yield go, py
    finally:
        go.server.stop()
        py.server.stop()


@pytest.mark.parametrize("change", CASES.values(), ids=CASES.keys())
def test_reload_of_an_option_logs_like_nats_server(pair: tuple[Side, Side], change: str) -> None:
    go, py = pair
    changed = f"{BASE}{change}\n"
    assert py.reload(changed) == go.reload(changed)
    assert py.reload(BASE) == go.reload(BASE)  # and back


# With a trusted proxy and a leaf node remote from the start (nats-server 2.15.1 crashes when a
# reload adds the first trusted proxy), and with MQTT: their lines' places among the others'.
PROXY_KEYS = (
    "ND2X6G23ILW2UKQMNDDF2JFJ4SN6HORCGUPO454ULLSK27ZCJQEKQNI4",
    "NBDRU4VFC27JXJ7HMATDY2GWNIKLHUT6QQMPMFABJVF4ARNIZNPFK7PN",
)
BLOCKS = {
    "proxies_and_leaf": (
        f"proxies {{ trusted: [ {{key: {PROXY_KEYS[0]}}} ] }}\n"
        'leafnodes { remotes: [ { url: "nats://127.0.0.1:1" } ] }\n',
        [
            f"proxies {{ trusted: [ {{key: {PROXY_KEYS[1]}}} ] }}",
            'leafnodes { remotes: [ { url: "nats://127.0.0.1:1", compression: off } ] }',
        ],
    ),
    "jetstream_and_leaf": (
        'server_name: s1\njetstream { store_dir: "<dir>/js" }\n'
        'leafnodes { remotes: [ { url: "nats://127.0.0.1:1" } ] }\n',
        ["debug: true"],
    ),
    "mqtt": (
        'server_name: s1\njetstream { store_dir: "<dir>/js" }\nmqtt { listen: "127.0.0.1:-1" }\n',
        ['mqtt { listen: "127.0.0.1:-1", ack_wait: "7s" }'],
    ),
}
OTHERS = (
    'max_payload: 3000\nno_fast_producer_stall: true\npid_file: "<files>/server.pid"\n'
    'write_deadline: "4s"\nserver_metadata: {a: b}\n'
)


@pytest.mark.parametrize("base, changes", BLOCKS.values(), ids=BLOCKS.keys())
def test_block_lines_come_where_nats_server_logs_them(
    tmp_path: Path, base: str, changes: list[str]
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    go = Side(True, tmp_path, files, base)
    try:
        py = Side(False, tmp_path, files, base)
    except Exception:
        go.server.stop()
        raise
    try:
        for change in changes:
            changed = f"{base}{change}\n{OTHERS}"
            assert py.reload(changed) == go.reload(changed), change
            assert py.reload(base) == go.reload(base), change
    finally:
        go.server.stop()
        py.server.stop()
