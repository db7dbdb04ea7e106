"""`nats top`: nats-top's screen of one server, read through a pipe (`--max-refresh`, `-o -`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import NatsCli
from tests.support.raw import RawClient, connect_line
from tests.support.servers import RunningServer

SYS = ("--user", "sys", "--password", "sys")


@pytest.fixture
def nats(tmp_path: Path, sys_server: RunningServer) -> Iterator[NatsCli]:
    runner = NatsCli(tmp_path, sys_server.url)
    yield runner
    runner.cleanup()


@pytest.fixture
def watched(sys_server: RunningServer) -> Iterator[RawClient]:
    """A client of the APP account named `top-watched` that published 5 messages of 2 bytes and
    subscribes to `top.sub`."""
    client = RawClient(sys_server.port)
    credentials = {"user": "app", "pass": "app"}
    client.send(connect_line(name="top-watched", lang="raw", version="1.0", **credentials))
    client.send(b"SUB top.sub 1\r\n" + b"PUB top.x 2\r\nhi\r\n" * 5)
    client.ping_pong()
    yield client
    client.close()


def test_top_prints_screens_with_the_connection_and_its_counts(
    nats: NatsCli, watched: RawClient
) -> None:
    result = nats.run("top", "cli-test", "-r", "2", "-d", "1", *SYS)
    assert result.returncode == 0, result
    screens = re.split(r"\n(?=NATS server version )", result.stdout)
    assert len(screens) == 2, result.stdout
    for screen in screens:
        assert re.match(
            r"NATS server version \S+ \(uptime: \S+\) \nServer: cli-test\n  ID:   N\w{55}\n", screen
        )
        assert re.search(
            r"\n  Load: CPU:  [\d.]+%  Memory: [\d.]+[KMG]?  Slow Consumers: 0\n", screen
        )
        assert re.search(
            r"\n  In:   Msgs: \d+  Bytes: \S+  Msgs/Sec: [\d.]+  Bytes/Sec: \S+\n", screen
        )
        assert re.search(r"\nConnections Polled: [2-9]\n  HOST +CID +NAME +SUBS +PENDING +MSGS_TO "
                         r"+MSGS_FROM +BYTES_TO +BYTES_FROM +LANG +VERSION +UPTIME +LAST_ACTIVITY",
                         screen)  # fmt: skip
        cid = watched.info["client_id"]
        row = re.search(
            rf"\n  127\.0\.0\.1:\d+ +{cid} +top-watched +1 +0 +0 +5 +0 +10 +raw +1\.0 +\S+ +"
            r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC",
            screen,
        )
        assert row, screen
    # the second screen has rates: the top client itself asked the server something meanwhile
    assert re.search(r"\n  In:   Msgs: \d+  Bytes: \S+  Msgs/Sec: [1-9][\d.]*", screens[1])


def test_top_snapshot_sorted_limited_with_subscriptions_and_a_delimiter(
    nats: NatsCli, watched: RawClient
) -> None:
    result = nats.run(
        "top", "cli-test", "-o", "-", "--delimiter", ";", "--subs", "--sort", "msgs_from",
        "-n", "1", *SYS,
    )  # fmt: skip
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"NATS server version;\S+;\(uptime: \S+\);", lines[0]), lines
    assert lines[1:3] == ["Server:", lines[2]] and lines[2].startswith("Load:;CPU:;")
    assert lines[7] == (
        "HOST;CID;NAME;SUBS;PENDING;MSGS_TO;MSGS_FROM;BYTES_TO;BYTES_FROM;LANG;VERSION;UPTIME;"
        "LAST_ACTIVITY;SUBSCRIPTIONS"
    )
    (row,) = lines[8:]
    cells = row.split(";")
    assert cells[1:12] == [
        str(watched.info["client_id"]), "top-watched", "1", "0", "0", "5", "0", "10", "raw", "1.0",
        cells[11],
    ]  # fmt: skip
    assert cells[-1] == "top.sub"


def test_top_needs_the_system_account_and_an_existing_server(nats: NatsCli) -> None:
    result = nats.run("top", "cli-test", "-r", "1", "--user", "app", "--password", "app")
    assert result.returncode == 1
    assert result.stderr == (
        "nats: error: initial test request failed: no results received, ensure the account "
        "used has system privileges and appropriate permissions\n"
    )
    result = nats.run("top", "elsewhere", "-r", "1", *SYS)
    assert result.returncode == 1
    assert result.stderr == "nats: error: initial test request failed: nats: timeout\n"
