"""`nats server report accounts` and `nats server report jetstream` through the system account.

Each test runs against the Go server and ours (`server_kind`): the system user sys/sys asks,
app/app (account APP, with JetStream) makes the connections and the stream being reported.
The RAFT meta group section needs a clustered JetStream, which only Go has (pynats' JSZ has
no `meta_cluster`): that test runs a three-node Go cluster.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import WAIT_S, NatsCli, wait_for_interest
from tests.support.cluster import Member, make_cluster
from tests.support.servers import RunningServer

NO_PRIVILEGES = "ensure the account used has system privileges and appropriate permissions"


def as_user(tmp_path, server: RunningServer, user: str) -> NatsCli:
    runner = NatsCli(tmp_path / user, server.url)
    runner.home.mkdir()
    runner.env.update(HOME=str(runner.home), NATS_USER=user, NATS_PASSWORD=user)
    return runner


@pytest.fixture
def system(tmp_path, sys_server: RunningServer) -> Iterator[NatsCli]:
    runner = as_user(tmp_path, sys_server, "sys")
    yield runner
    runner.cleanup()


@pytest.fixture
def app(tmp_path, sys_server: RunningServer) -> Iterator[NatsCli]:
    runner = as_user(tmp_path, sys_server, "app")
    yield runner
    runner.cleanup()


def table_rows(text: str) -> list[list[str]]:
    """The cells of every row of a rounded table (title, headers, rows and footer alike)."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]


def test_report_accounts_counts_each_accounts_connections(
    system: NatsCli, app: NatsCli, sys_server: RunningServer
) -> None:
    app.spawn("sub", "acct.report.>")
    wait_for_interest(sys_server, "acct.report.>")

    result = system.run("server", "report", "accounts")
    assert result.returncode == 0, result
    rows = table_rows(result.stdout)
    assert rows[0] == ["2 Accounts Overview"]  # APP's subscriber, and the report's own (SYS)
    assert rows[1] == [
        "Account",
        "Connections",
        "In Msgs",
        "Out Msgs",
        "In Bytes",
        "Out Bytes",
        "Subs",
    ]
    by_account = {row[0]: row for row in rows[2:]}
    assert by_account["APP"][1] == "1"
    assert by_account["APP"][6] == "1"
    assert by_account["SYS"][1] == "1"

    top = system.run("server", "report", "acct", "--sort", "conns", "--top", "1", "--json")
    assert top.returncode == 0, top
    data = json.loads(top.stdout)
    assert len(data) == 1
    assert data[0]["connections"] == 1
    assert {"account", "connection_info", "in_msgs", "subscriptions", "server"} <= set(data[0])

    one = system.run("server", "report", "accounts", "APP")
    assert one.returncode == 0, one
    rows = table_rows(one.stdout)
    assert rows[0] == ["Top 1 Connections out of 1 by subs"]
    assert rows[2][5] == "APP"
    assert rows[2][2] == "cli-test"

    missing = system.run("server", "report", "accounts", "PLAIN")
    assert missing.returncode == 1, missing
    assert missing.stderr == "nats: error: did not get results from any servers\n"


def test_report_jetstream_shows_each_servers_streams_and_messages(
    system: NatsCli, app: NatsCli
) -> None:
    added = app.run("stream", "add", "REPORTED", "--subjects", "reported.>", "--defaults")
    assert added.returncode == 0, added
    published = app.run("pub", "reported.x", "hello", "--count", "3", "-J")
    assert published.returncode == 0, published

    result = system.run("server", "report", "jetstream")
    assert result.returncode == 0, result
    rows = table_rows(result.stdout)
    assert rows[0] == ["JetStream Summary"]
    headers = rows[1]
    assert headers[:10] == [
        "Server",
        "Cluster",
        "Streams",
        "Consumers",
        "Messages",
        "Bytes",
        "Memory",
        "File",
        "API Req",
        "API Err",
    ]
    server = dict(zip(headers, rows[2], strict=False))
    assert server["Server"] == "cli-test"  # a single server: no meta leader mark
    assert server["Streams"] == "1"
    assert server["Messages"] == "3"
    assert int(server["API Req"]) >= 1
    assert result.stdout.endswith("╯\n\n")  # a lone server has no RAFT meta group
    assert "RAFT Meta Group Information" not in result.stdout

    per_account = system.run("server", "report", "js", "--account", "APP", "--sort", "msgs")
    assert per_account.returncode == 0, per_account
    rows = table_rows(per_account.stdout)
    assert rows[0] == ["JetStream Summary for Account APP"]
    assert dict(zip(rows[1], rows[2], strict=False))["Messages"] == "3"


def test_reports_need_the_system_account(app: NatsCli) -> None:
    result = app.run("server", "report", "jetstream", "--timeout", "2s")
    assert result.returncode == 1, result
    assert NO_PRIVILEGES in result.stderr


def test_report_jetstream_draws_the_meta_group_of_a_clustered_jetstream(tmp_path: Path) -> None:
    def extra(member: Member) -> str:
        store = member.conf.parent / "js"
        return (
            "accounts { SYS { users = [{user: sys, password: sys}] } }\n"
            f"system_account: SYS\njetstream {{ store_dir: {json.dumps(str(store))} }}\n"
        )

    cluster = make_cluster(["go", "go", "go"], tmp_path / "cluster", extra=extra)
    try:
        cluster.wait_formed()
        deadline = time.monotonic() + WAIT_S
        while not all(
            (m.http_json("/jsz").get("meta_cluster") or {}).get("leader") for m in cluster
        ):
            assert time.monotonic() < deadline, "no JetStream meta leader"
            time.sleep(0.05)
        system = as_user(tmp_path, cluster[0].server, "sys")  # type: ignore[arg-type]
        result = system.run("server", "report", "jetstream", "--sort", "name")
    finally:
        cluster.stop_all()
    assert result.returncode == 0, result
    rows = table_rows(result.stdout)
    assert rows[0] == ["JetStream Summary"]
    summary = rows[2:5]
    assert [row[0].rstrip("*") for row in summary] == ["GO-1", "GO-2", "GO-3"]
    assert [row[1] for row in summary] == ["c1", "c1", "c1"]
    assert sum(row[0].endswith("*") for row in summary) == 1  # the meta leader
    title = rows.index(["RAFT Meta Group Information"])
    assert rows[title + 1] == [
        "Connection Name",
        "ID",
        "Leader",
        "Current",
        "Online",
        "Active",
        "Lag",
    ]
    peers = rows[title + 2 : title + 5]
    assert [peer[0] for peer in peers] == ["GO-1", "GO-2", "GO-3"]
    leaders = [peer for peer in peers if peer[2] == "yes"]
    assert len(leaders) == 1 and leaders[0][0] + "*" in [row[0] for row in summary]
    assert all(peer[4] == "true" and len(peer[1]) == 8 for peer in peers)
