"""`nats server ping|list|info|report connections` against mixed clusters: every member shows,
Go's and ours, whichever server the CLI is connected to."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import NatsCli, Result
from tests.integration.cluster.conftest import TOPOLOGIES
from tests.integration.cluster.system_helpers import (
    SYSTEM_ACCOUNT_CONFIG,
    app_url,
    connect,
    wait_all_active,
)
from tests.support.cluster import Cluster, Member, make_cluster


@pytest.fixture(scope="module", params=TOPOLOGIES)
def mesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    tmp: Path = tmp_path_factory.mktemp("climesh")
    cluster = make_cluster(request.param, tmp, extra=lambda m: SYSTEM_ACCOUNT_CONFIG)
    try:
        cluster.wait_formed()
        asyncio.run(wait_all_active(cluster))
        yield cluster
    finally:
        cluster.stop_all()


def system_cli(tmp_path: Path, member: Member) -> NatsCli:
    """`nats` logged in to `member` as the system account user."""
    home = tmp_path / member.name
    home.mkdir(exist_ok=True)
    runner = NatsCli(home, member.url)
    runner.env.update(NATS_USER="sys", NATS_PASSWORD="sys")
    return runner


def names(mesh: Cluster) -> list[str]:
    return sorted(m.name for m in mesh)


def table_rows(text: str) -> list[list[str]]:
    """The cells of every body, header and footer line of the tables in `text`."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│") and line.count("│") > 2
    ]


def ok(result: Result) -> Result:
    assert result.returncode == 0, result
    return result


@pytest.mark.parametrize("at", [0, -1], ids=["first", "last"])
def test_server_ping_hears_every_member(mesh: Cluster, tmp_path: Path, at: int) -> None:
    result = ok(system_cli(tmp_path, mesh[at]).run("server", "ping"))
    lines = result.stdout.splitlines()
    replies = [re.fullmatch(r"(\S+) +rtt=\S+", line) for line in lines[:3]]
    assert sorted(m.group(1) for m in replies if m) == names(mesh), result
    assert lines[3:5] == ["", "---- ping statistics ----"]
    assert lines[5].startswith("3 replies max: ")
    assert "Missing" not in result.stdout


def test_server_list_shows_every_member_in_one_cluster(mesh: Cluster, tmp_path: Path) -> None:
    cli = system_cli(tmp_path, mesh[-1])
    result = ok(cli.run("server", "list", "--sort", "name", "--no-compact"))
    rows = table_rows(result.stdout)
    header = rows.index(["Name", "Cluster", "Host", *rows[0][3:]])
    members = rows[header + 1 : header + 4]
    assert [r[0] for r in members] == names(mesh)
    assert all(r[1] == "c1" and r[2] == "127.0.0.1" for r in members)
    assert len({r[7] for r in members}) == 1 and int(members[0][7]) >= 2  # route connections
    footer = rows[header + 4]
    assert footer[1:3] == ["1", "3"]  # one cluster, three servers
    assert footer[7] == ""  # every member has as many routes
    assert "Cluster Overview" in result.stdout
    assert rows[-2][:4] == ["c1", "3", "0", "0"]
    raw = json.loads(ok(cli.run("server", "list", "--json")).stdout)
    assert sorted(r["server"]["name"] for r in raw) == names(mesh)
    assert all(r["statsz"]["active_servers"] == 3 for r in raw)


def test_server_info_describes_each_member(mesh: Cluster, tmp_path: Path) -> None:
    cli = system_cli(tmp_path, mesh[0])
    for member in mesh:
        result = ok(cli.run("server", "info", member.name))
        lines = result.stdout.splitlines()
        assert re.fullmatch(rf"Server information for {member.name} \(N[A-Z0-9]{{55}}\)", lines[0])
        assert "Cluster:" in lines, result
        assert re.search(r"^ +Name: c1$", result.stdout, re.M)
        assert re.search(rf"^ +Host: 127\.0\.0\.1:{member.cluster_port}$", result.stdout, re.M)


async def test_server_report_connections_covers_every_server(mesh: Cluster, tmp_path: Path) -> None:
    apps = [await connect(app_url(m), name=f"app-on-{m.name}") for m in mesh]
    for nc in apps:
        await nc.subscribe(f"work.{id(nc)}")
        await nc.flush()
    cli = system_cli(tmp_path, mesh[-1])
    try:
        result = ok(await asyncio.to_thread(cli.run, "server", "report", "connections"))
        data = ok(await asyncio.to_thread(cli.run, "server", "report", "conns", "--json"))
        only_a = ok(await asyncio.to_thread(cli.run, "server", "report", "connz", "--account", "A"))
    finally:
        for nc in apps:
            await nc.close()
    assert result.stdout.startswith("\n")
    assert "│ Top 4 Connections out of 4 by subs │" in re.sub(" +", " ", result.stdout)
    rows = table_rows(result.stdout)
    apps_seen = {r[1]: r for r in rows if r[1].startswith("app-on-")}
    assert sorted(apps_seen) == [f"app-on-{n}" for n in names(mesh)]
    for name, row in apps_seen.items():
        assert (row[2], row[3], row[5]) == (name.removeprefix("app-on-"), "c1", "A")
    assert any(r[1] == "Totals for 4 connections" for r in rows)
    per_server = rows[rows.index(["Server", "Cluster", "Connections"]) + 1 :]
    assert sorted(r[0] for r in per_server) == names(mesh)
    assert sorted(int(r[2]) for r in per_server) == [1, 1, 2]  # the CLI's own is one of them
    conns = json.loads(data.stdout)
    assert sorted(c["server"]["name"] for c in conns if c.get("account") == "A") == names(mesh)
    assert all(c["server"]["cluster"] == "c1" for c in conns)
    assert "Top 3 Connections out of 3 by subs" in only_a.stdout
