"""Reloading the `leafnodes {}` and `websocket {}` blocks (SIGHUP): what may change, what is
refused, and the log lines, compared line for line with the Go server.

The remotes point at a port nobody listens on: both servers keep dialling it, which the
compared lines leave out. Go prints pointers for some values (the leaf users, the websocket
TLS config); they are compared as `0x?`, and a random port as `<bound>`.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from tests.support.servers import start_server

REMOTE = '{ url: "nats://127.0.0.1:1" }'
BEFORE_REMOTE = f"leafnodes {{ remotes: [ {REMOTE} ] }}\n"
REMOTE_CASES = {
    "unchanged": BEFORE_REMOTE,
    "remote_replaced": 'leafnodes { remotes: [ { url: "nats://127.0.0.1:2" } ] }\n',
    "remote_added": f'leafnodes {{ remotes: [ {REMOTE}, {{ url: "nats://127.0.0.1:2" }} ] }}\n',
    "block_removed": "max_payload: 1000\n",
    "compression_and_disabled": 'leafnodes { remotes: [ { url: "nats://127.0.0.1:1", '
    "compression: s2_fast, disabled: true } ] }\n",
    "compression_thresholds": 'leafnodes { remotes: [ { url: "nats://127.0.0.1:1", '
    'compression: { mode: s2_auto, rtt_thresholds: ["5ms", "10ms"] } } ] }\n',
    "hub_refused": 'leafnodes { remotes: [ { url: "nats://127.0.0.1:1", hub: true } ] }\n',
    "deny_imports_refused": 'leafnodes { remotes: [ { url: "nats://127.0.0.1:1", '
    'deny_imports: ["a"] } ] }\n',
    "first_info_timeout_refused": 'leafnodes { remotes: [ { url: "nats://127.0.0.1:1", '
    'first_info_timeout: "3s" } ] }\n',
    "websocket_options_refused": 'leafnodes { remotes: [ { url: "nats://127.0.0.1:1", '
    "ws_compression: true } ] }\n",
    "tls_added_refused": 'leafnodes { remotes: [ { url: "nats://127.0.0.1:1", tls {} } ] }\n',
    "listener_compression": f"leafnodes {{ compression: s2_best, remotes: [ {REMOTE} ] }}\n",
    "reconnect_refused": f'leafnodes {{ reconnect: "3s", remotes: [ {REMOTE} ] }}\n',
    "account_missing": 'leafnodes { remotes: [ { url: "nats://127.0.0.1:1", account: X } ] }\n',
}
BEFORE_LISTENER = "leafnodes { port: -1 }\n"
LISTENER_CASES = {
    "unchanged": BEFORE_LISTENER,
    "auth_timeout_refused": "leafnodes { port: -1, authorization { timeout: 2.5 } }\n",
    "user_refused": "leafnodes { port: -1, authorization { user: a, password: b } }\n",
    "users_refused": "leafnodes { port: -1, authorization { users: [ {user: a, password: b} ] } }\n",
    "compression_default_is_s2_auto": "leafnodes { port: -1, compression: s2_auto }\n",
    "compression_off": "leafnodes { port: -1, compression: off }\n",
    "write_timeout_refused": "leafnodes { port: -1, write_timeout: close }\n",
    "min_version_refused": 'leafnodes { port: -1, isolate: true, min_version: "2.9.0" }\n',
    "dial_timeout_refused": 'leafnodes { port: -1, dial_timeout: "3s" }\n',
}
BEFORE_WEBSOCKET = "websocket { port: -1, no_tls: true }\n"
WEBSOCKET_CASES = {
    "unchanged": BEFORE_WEBSOCKET,
    "compression_refused": "websocket { port: -1, no_tls: true, compression: true }\n",
    "everything_refused": 'websocket { port: -1, no_tls: true, allowed_origins: ["http://b", '
    '"http://a"], headers { X-A: b }, authorization { user: u, password: p, timeout: 3 } }\n',
    "block_removed": "max_payload: 1000\n",
}
RELOAD_LINE = re.compile(r"Reloaded: LeafNode|Failed to reload|Reloaded server configuration")


def reload_lines(oracle: bool, tmp_path: Path, before: str, after: str) -> list[str]:
    conf = tmp_path / ("go.conf" if oracle else "py.conf")
    conf.write_text(before)
    srv = start_server(["-c", str(conf)], oracle=oracle)
    try:
        conf.write_text(after)
        srv.signal(signal.SIGHUP)
        srv.wait_for_log(r"Reloaded server configuration|Failed to reload")
        lines = [line.split("] ", 2)[-1] for line in srv.log_lines if RELOAD_LINE.search(line)]
    finally:
        srv.stop()
    # Pointers and the random port bound differ from run to run.
    lines = [re.sub(r"0x[0-9a-f]+", "0x?", line) for line in lines]
    return [re.sub(r"\{0\.0\.0\.0 \d+ ", "{0.0.0.0 <bound> ", line) for line in lines]


def assert_same_reload(tmp_path: Path, before: str, after: str) -> None:
    expected = reload_lines(True, tmp_path, before, after)
    assert expected, "nats-server logged nothing about the reload"
    assert reload_lines(False, tmp_path, before, after) == expected


@pytest.mark.parametrize("after", REMOTE_CASES.values(), ids=REMOTE_CASES.keys())
def test_remote_reload_logs_like_nats_server(tmp_path: Path, after: str) -> None:
    assert_same_reload(tmp_path, BEFORE_REMOTE, after)


@pytest.mark.parametrize("after", LISTENER_CASES.values(), ids=LISTENER_CASES.keys())
def test_listener_reload_logs_like_nats_server(tmp_path: Path, after: str) -> None:
    assert_same_reload(tmp_path, BEFORE_LISTENER, after)


@pytest.mark.parametrize("after", WEBSOCKET_CASES.values(), ids=WEBSOCKET_CASES.keys())
def test_websocket_reload_logs_like_nats_server(tmp_path: Path, after: str) -> None:
    assert_same_reload(tmp_path, BEFORE_WEBSOCKET, after)
