"""Options that change what a running server does, each started with the same file on pynats
and the Go server and compared by what clients, the log and /varz show: feature flags,
`default_js_domain`, `write_timeout`, `connect_error_reports`."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import connect
from tests.support.ports import free_port
from tests.support.raw import RawClient, connect_line
from tests.support.servers import RunningServer, start_server

KINDS = ["pynats", "go"]


@contextmanager
def server_with(kind: str, tmp_path: Path, text: str, *args: str) -> Iterator[RunningServer]:
    conf = tmp_path / f"{kind}.conf"
    conf.write_text(text)
    srv = start_server(["-c", str(conf), *args], oracle=kind == "go", http_port=-1)
    try:
        yield srv
    finally:
        srv.stop()


def varz(server: RunningServer, path: str = "/varz") -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.monitor_url}{path}") as resp:
        result: dict[str, Any] = json.loads(resp.read())
    return result


def after_label(line: str) -> str:
    """A log line without its pid, time and level."""
    return re.sub(r"^\[\d+\] \S+ \S+ \[\w+\] ", "", line)


def feature_flag_lines(server: RunningServer) -> list[str]:
    lines = [after_label(line) for line in server.log_lines]
    start = lines.index("  Feature flags:")
    return lines[start : start + 3]


FLAGS = """
feature_flags {
  js_raft_delete_range: false
  js_ack_fc_v2: false
  js_snapshot_sources: true
  Not_A_Flag: true
  another: false
}
"""


def test_feature_flags_are_reported_as_nats_server_reports_them(tmp_path: Path) -> None:
    seen = {}
    for kind in KINDS:
        with server_with(kind, tmp_path, FLAGS) as srv:
            seen[kind] = (feature_flag_lines(srv), varz(srv)["feature_flags"])
    assert seen["pynats"] == seen["go"]
    lines, flags = seen["go"]
    assert lines[1].strip().startswith("Configured:")
    assert flags["js_snapshot_sources"] is True


def test_without_feature_flags_varz_shows_the_defaults(tmp_path: Path) -> None:
    seen = {}
    for kind in KINDS:
        with server_with(kind, tmp_path, "port: -1\n") as srv:
            seen[kind] = varz(srv)["feature_flags"]
            assert not any("Feature flags" in line for line in srv.log_lines)
    assert seen["pynats"] == seen["go"]


JS_DOMAIN = """
accounts {
  A { users: [ {user: a, password: a} ] }
  B { users: [ {user: b, password: b} ] }
}
default_js_domain { A: hub, B: "" }
"""


@pytest.mark.parametrize("kind", KINDS)
async def test_default_js_domain_maps_an_accounts_jetstream_api(kind: str, tmp_path: Path) -> None:
    with server_with(kind, tmp_path, JS_DOMAIN) as srv:
        srv.wait_for_log(r"\[WRN\] The option `default_js_domain` is a temporary backwards")
        for user, expected in (("a", "$JS.hub.API.INFO"), ("b", "$JS.API.INFO")):
            nc = await connect(f"nats://{user}:{user}@127.0.0.1:{srv.port}")
            sub = await nc.subscribe("$JS.>")
            await nc.flush()
            await nc.publish("$JS.API.INFO", b"")
            assert (await sub.next_msg(2)).subject == expected
            await nc.close()


ACK_FC_V2 = """
jetstream {{ store_dir: "{store}", domain: hub }}
feature_flags {{ js_ack_fc_v2: true }}
"""


async def v2_subjects(srv: RunningServer) -> tuple[str, str, int]:
    """The ack reply of a pulled message and the flow control subject of a push consumer,
    with the numbers blanked; and how many acks stayed pending after acking all."""
    nc = await connect(f"nats://127.0.0.1:{srv.port}")
    js = nc.jetstream(domain="hub")
    await js.add_stream(name="S", subjects=["s.>"], storage="memory")
    for _ in range(3000):  # 3 MB: push flow control asks before that
        await nc.publish("s.x", b"p" * 1024)
    await js.publish("s.x", b"p" * 1024)  # stored after the others
    pull = await js.pull_subscribe("s.x", durable="D")
    msgs = await pull.fetch(400, timeout=5)
    reply = re.sub(r"\.\d+", ".N", msgs[0].reply)
    for m in msgs:
        await m.ack()
    requests: list[Any] = []

    async def keep(m: Any) -> None:
        if m.reply:
            requests.append(m)

    inbox = nc.new_inbox()
    # a subscriber that answers nothing: the server asks for flow control on its own
    await nc.subscribe(inbox, cb=keep)
    await js._jsm.add_consumer(
        "S", durable_name="P", deliver_subject=inbox, flow_control=True, idle_heartbeat=1.0
    )
    deadline = time.monotonic() + 5
    fc = [m for m in requests if m.reply.startswith("$JS.FC.")]
    while not fc and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
        fc = [m for m in requests if m.reply.startswith("$JS.FC.")]
    assert fc, "no flow control request"
    await nc.publish(fc[0].reply, b"")  # answered: the consumer goes on
    await nc.flush()
    pending = (await js.consumer_info("S", "D")).num_ack_pending
    await nc.close()
    return reply, fc[0].reply.rsplit(".", 1)[0], pending


async def test_js_ack_fc_v2_sends_the_v2_ack_and_flow_control_subjects(tmp_path: Path) -> None:
    seen = {}
    for kind in KINDS:
        store = tmp_path / f"{kind}-js"
        with server_with(kind, tmp_path, ACK_FC_V2.format(store=store)) as srv:
            seen[kind] = await v2_subjects(srv)
    assert seen["pynats"] == seen["go"]
    reply, fc, pending = seen["go"]
    assert reply.startswith("$JS.ACK.hub.") and reply.endswith(".S.D.N.N.N.N.N"), reply
    assert fc.startswith("$JS.FC.hub.") and fc.endswith(".S.P"), fc
    assert pending == 0


def slow_consumer_reason(server: RunningServer, timeout: float = 20.0) -> str:
    """Flood a subscriber that never reads until the server cuts it; its close reason."""
    lazy = RawClient(server.port)
    lazy.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    lazy.send(connect_line(verbose=False) + b"SUB flood 1\r\nPING\r\n")
    lazy.read_until(b"PONG\r\n")
    cid = lazy.info["client_id"]
    publisher = RawClient(server.port)
    publisher.send(connect_line(verbose=False))
    batch = b"".join(b"PUB flood 1000\r\n" + b"y" * 1000 + b"\r\n" for _ in range(1000))
    deadline = time.monotonic() + timeout
    reason = ""
    try:
        while time.monotonic() < deadline and not reason:
            publisher.send(batch)
            closed = varz(server, f"/connz?state=closed&cid={cid}")["connections"]
            reason = closed[0]["reason"] if closed else ""
    finally:
        publisher.close()
        lazy.close()
    return reason


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("policy", ["close", "retry"])
def test_a_client_that_takes_nothing_is_cut_at_the_write_deadline(
    kind: str, policy: str, tmp_path: Path
) -> None:
    """`retry` keeps a client only while its socket drains: one that reads nothing is cut."""
    text = f'write_deadline: "500ms"\nwrite_timeout: {policy}\n'
    with server_with(kind, tmp_path, text) as srv:
        assert slow_consumer_reason(srv) == "Slow Consumer (Write Deadline)"
        line = srv.wait_for_log(r"Slow Consumer Detected: WriteDeadline of 500ms exceeded")
        assert "[INF]" in line
        assert varz(srv)["slow_consumers"] >= 1


@pytest.mark.parametrize("kind", KINDS)
def test_connect_error_reports_paces_the_route_dial_errors(kind: str, tmp_path: Path) -> None:
    """Errors at attempts 1, 2 and 4 (every 2nd), attempt 3 at debug level only."""
    dead = free_port()
    text = f"""
connect_error_reports: 2
cluster {{
  name: c
  listen: "127.0.0.1:-1"
  routes: ["nats-route://127.0.0.1:{dead}"]
}}
"""
    with server_with(kind, tmp_path, text, "-D") as srv:
        srv.wait_for_log(r"\[ERR\] Error trying to connect to route \(attempt 4\)", timeout=15)
        levels = {}
        for line in srv.log_lines:
            if m := re.search(r"\[(\w+)\] Error trying to connect to route \(attempt (\d)\)", line):
                levels[int(m.group(2))] = m.group(1)
        assert levels == {1: "ERR", 2: "ERR", 3: "DBG", 4: "ERR"}
