"""`nats server ping|list|info` and `nats account info` through a system account."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.cli.conftest import NatsCli
from tests.support.servers import RunningServer


@pytest.fixture
def system(tmp_path, sys_server: RunningServer) -> Iterator[NatsCli]:
    """`nats` logged in as the system account user."""
    runner = NatsCli(tmp_path, sys_server.url)
    runner.env.update(NATS_USER="sys", NATS_PASSWORD="sys")
    yield runner
    runner.cleanup()


def as_user(tmp_path, server: RunningServer, user: str) -> NatsCli:
    runner = NatsCli(tmp_path / user, server.url)
    runner.home.mkdir(exist_ok=True)
    runner.env.update(HOME=str(runner.home), NATS_USER=user, NATS_PASSWORD=user)
    return runner


def test_server_ping_lists_each_server_with_its_rtt_and_a_summary(system: NatsCli) -> None:
    result = system.run("server", "ping")
    assert result.returncode == 0, result
    lines = result.stdout.split("\n")
    assert re.fullmatch(r"cli-test {53}rtt=[0-9.]+(ns|µs|ms|s)", lines[0])
    assert lines[1:3] == ["", "---- ping statistics ----"]
    assert re.fullmatch(r"1 replies max: \d+\.\d\d min: \d+\.\d\d avg: \d+\.\d\d", lines[3])
    with_id = system.run("srv", "ping", "--id")
    assert re.match(r"N[A-Z0-9]{55} cli-test ", with_id.stdout)


def test_server_ping_reports_missing_servers(system: NatsCli) -> None:
    result = system.run("server", "ping", "3", "--timeout", "500ms")
    assert result.returncode == 0, result
    assert result.stdout.endswith("\nMissing 2 server(s)\n")


def test_server_commands_need_the_system_account(tmp_path, sys_server: RunningServer) -> None:
    app = as_user(tmp_path, sys_server, "app")
    ping = app.run("server", "ping")
    assert ping.returncode == 1
    assert (
        ping.stdout
        == "503 status from $SYS.REQ.SERVER.PING, ensure a system account is used with appropriate permissions\n"
    )
    info = app.run("server", "info", "--timeout", "1s")
    assert info.returncode == 1
    assert (
        info.stderr
        == "nats: error: no results received, ensure the account used has system privileges and appropriate permissions\n"
    )


def test_server_list_shows_the_overview_table_and_raw_json(system: NatsCli) -> None:
    table = system.run("server", "list")
    assert table.returncode == 0, table
    lines = table.stdout.splitlines()
    assert lines[0].startswith("╭") and "Server Overview" in lines[1]
    header = [cell.strip() for cell in lines[3].strip("│").split("│")]
    assert header == [
        "Name",
        "Cluster",
        "Host",
        "Version",
        "JS",
        "Conns",
        "Subs",
        "Routes",
        "GWs",
        "Mem",
        "CPU %",
        "Cores",
        "Slow",
        "Uptime",
        "RTT",
    ]
    row = [cell.strip() for cell in lines[5].strip("│").split("│")]
    assert row[0] == "cli-test" and row[4] == "yes"
    footer = [cell.strip() for cell in lines[7].strip("│").split("│")]
    assert footer[1:3] == ["0", "1"]
    assert lines[-1].startswith("╰")
    raw = json.loads(system.run("server", "ls", "--json").stdout)
    assert raw[0]["server"]["name"] == "cli-test"
    assert "statsz" in raw[0]


def test_server_info_describes_one_server(system: NatsCli) -> None:
    result = system.run("server", "info", "cli-test")
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"Server information for cli-test \(N[A-Z0-9]{55}\)", lines[0])
    for section in (
        "Process Details:",
        "Connection Details:",
        "JetStream:",
        "Limits:",
        "Statistics:",
    ):
        assert section in lines
    assert re.search(r"^ +Maximum Payload: 1\.0 MiB$", result.stdout, re.M)
    assert re.search(r"^ +Auth Required: true$", result.stdout, re.M)
    server_id = re.search(r"\((N[A-Z0-9]{55})\)", lines[0]).group(1)
    by_id = system.run("server", "info", server_id)
    assert by_id.stdout.splitlines()[0] == lines[0]


def test_account_info_shows_the_user_connection_and_jetstream_usage(
    tmp_path, sys_server: RunningServer
) -> None:
    app = as_user(tmp_path, sys_server, "app")
    result = app.run("account", "info")
    assert result.returncode == 0, result
    text = result.stdout
    assert text.startswith("Account Information\n\n")
    for label, value in (
        ("User", "app"),
        ("Account", "APP"),
        ("Expires", "never"),
        ("Headers Supported", "true"),
        ("Maximum Payload", "1.0 MiB"),
        ("Connected Server Name", "cli-test"),
        ("TLS Connection", "no"),
    ):
        assert re.search(rf"^ +{label}: {re.escape(value)}$", text, re.M), label
    assert re.search(r"^ +RTT: [0-9.]+(ns|µs|ms|s)$", text, re.M)
    assert "\nJetStream Account Information:\n" in text
    assert re.search(r"^ +Streams: 0$", text, re.M)


def test_account_info_without_jetstream_still_succeeds(tmp_path, sys_server: RunningServer) -> None:
    plain = as_user(tmp_path, sys_server, "plain")
    result = plain.run("a", "nfo")
    assert result.returncode == 0, result
    assert "JetStream is not supported in this account" in result.stdout
