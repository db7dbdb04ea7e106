"""Config reload (SIGHUP): tightened permissions apply to live clients, removed users are
disconnected, a bad file is refused and the old configuration kept."""

from __future__ import annotations

import signal
from pathlib import Path

import nats.errors
import pytest
from tests.conftest import connect
from tests.support.servers import start_server
from tests.support.waiting import wait_until

BEFORE = """
authorization {
  users: [
    {user: alice, password: a}
    {user: bob, password: b}
  ]
}
"""
AFTER = """
debug: true
authorization {
  users: [
    {user: alice, password: a, permissions: {publish: ["allowed.>"], subscribe: ["allowed.>"]}}
  ]
}
"""


@pytest.mark.parametrize("kind", ["pynats", "go"])
async def test_reload_tightens_permissions_on_live_clients(kind: str, tmp_path: Path) -> None:
    conf = tmp_path / "server.conf"
    conf.write_text(BEFORE)
    srv = start_server(["-c", str(conf)], oracle=kind == "go")
    try:
        errors: list[Exception] = []

        async def on_error(e: Exception) -> None:
            errors.append(e)

        alice = await connect(f"nats://alice:a@127.0.0.1:{srv.port}", error_cb=on_error)
        bob = await connect(f"nats://bob:b@127.0.0.1:{srv.port}")
        kept = await alice.subscribe("allowed.x")
        await alice.subscribe("other.x")
        await alice.flush()

        conf.write_text(AFTER)
        srv.signal(signal.SIGHUP)
        srv.wait_for_log("Reloaded server configuration")
        srv.wait_for_log("Reloaded: debug = true")

        await wait_until(lambda: bob.is_closed or not bob.is_connected, what="bob disconnected")
        await wait_until(
            lambda: any('subscription to "other.x"' in str(e).lower() for e in errors),
            what="subscription violation",
        )
        assert alice.is_connected
        await alice.publish("forbidden", b"x")
        await alice.publish("allowed.x", b"ok")
        assert (await kept.next_msg(2)).data == b"ok"
        await wait_until(
            lambda: any('publish to "forbidden"' in str(e).lower() for e in errors),
            what="publish violation",
        )
        await alice.close()
    finally:
        srv.stop()


@pytest.mark.parametrize("kind", ["pynats", "go"])
async def test_bad_file_is_refused_and_old_config_kept(kind: str, tmp_path: Path) -> None:
    conf = tmp_path / "server.conf"
    conf.write_text(BEFORE)
    srv = start_server(["-c", str(conf)], oracle=kind == "go")
    try:
        conf.write_text("authorization { users: [ {user: alice, password: a} ] }\nbogus_key: 1\n")
        srv.signal(signal.SIGHUP)
        line = srv.wait_for_log(r"\[ERR\] Failed to reload server configuration")
        assert 'unknown field "bogus_key"' in line
        bob = await connect(f"nats://bob:b@127.0.0.1:{srv.port}")  # bob still exists
        await bob.flush()
        await bob.close()
        assert srv.proc.poll() is None
    finally:
        srv.stop()


async def test_reload_refuses_identity_change(tmp_path: Path) -> None:
    conf = tmp_path / "server.conf"
    conf.write_text("server_name: one\n")
    srv = start_server(["-c", str(conf)])
    try:
        conf.write_text("server_name: two\n")
        srv.signal(signal.SIGHUP)
        line = srv.wait_for_log(r"\[ERR\] Failed to reload")
        assert "config reload not supported for ServerName" in line
        nc = await connect(srv.url)
        with pytest.raises(nats.errors.NoRespondersError):
            await nc.request("nobody", b"", timeout=1)
        await nc.close()
    finally:
        srv.stop()
