"""`nats account report connections|statistics`: what an ordinary account sees of itself,
through the imports every account has from the system account. Against Go and pynats.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.conftest import NatsCli, wait_for_interest
from tests.cli.test_cli_server_report import as_user, table_rows
from tests.support.servers import RunningServer


@pytest.fixture
def app(tmp_path, sys_server: RunningServer) -> Iterator[NatsCli]:
    runner = as_user(tmp_path, sys_server, "app")
    yield runner
    runner.cleanup()


@pytest.fixture
def plain(tmp_path, sys_server: RunningServer) -> Iterator[NatsCli]:
    runner = as_user(tmp_path, sys_server, "plain")
    yield runner
    runner.cleanup()


def test_account_report_connections_lists_only_this_accounts_connections(
    app: NatsCli, plain: NatsCli, sys_server: RunningServer
) -> None:
    app.spawn("sub", "mine.>")
    plain.spawn("sub", "theirs.>")
    wait_for_interest(sys_server, "mine.>")
    wait_for_interest(sys_server, "theirs.>")

    result = app.run("account", "report", "connections", "--sort", "subs", "-R")
    assert result.returncode == 0, result
    rows = table_rows(result.stdout)
    assert rows[0] == ["Top 2 Connections out of 2 by subs"]
    connections = rows[2:4]
    assert [row[5] for row in connections] == ["APP", "APP"]
    assert connections[0][11] == "1"  # the subscriber first (-R: most subscriptions first)
    assert rows[4][1] == "Totals for 2 connections"
    assert "Connections per server" in result.stdout


def test_account_report_statistics_shows_the_account_on_each_server(
    app: NatsCli, sys_server: RunningServer
) -> None:
    app.spawn("sub", "stats.>")
    wait_for_interest(sys_server, "stats.>")

    result = app.run("account", "report", "stats")
    assert result.returncode == 0, result
    rows = table_rows(result.stdout)
    assert rows[0] == ["Server Statistics"]
    assert rows[1][:6] == [
        "Server",
        "Cluster",
        "Version",
        "Tags",
        "Connections",
        "Subscriptions",
    ]
    server = dict(zip(rows[1], rows[2], strict=False))
    assert server["Connections"] == "2"  # the subscriber and the report itself
    assert int(server["Subscriptions"]) >= 1
    assert rows[3][0] == "1"  # the footer counts the servers that answered
