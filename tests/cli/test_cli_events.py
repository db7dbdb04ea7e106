"""`nats events`: server advisories (connect, disconnect) and JetStream advisories as they come."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Background, NatsCli, wait_for_interest
from tests.support.raw import RawClient, connect_line
from tests.support.servers import RunningServer

SYS = ("--user", "sys", "--password", "sys")
APP = ("--user", "app", "--password", "app")
SERVER_LISTENING = [
    "Listening for Client Connection events on $SYS.ACCOUNT.*.CONNECT",
    "Listening for Client Disconnection events on $SYS.ACCOUNT.*.DISCONNECT",
    "Listening for Authentication Errors events on $SYS.SERVER.*.CLIENT.AUTH.ERR",
]


@pytest.fixture
def nats(tmp_path: Path, sys_server: RunningServer) -> Iterator[NatsCli]:
    runner = NatsCli(tmp_path, sys_server.url)
    yield runner
    runner.cleanup()


def lines_until(proc: Background, pattern: str) -> list[str]:
    """Lines of stdout up to the first one matching `pattern` (waiting for each)."""
    lines: list[str] = []
    while True:
        line = proc.read_stdout_line().decode().rstrip("\n")
        lines.append(line)
        if re.search(pattern, line):
            return lines


def connect_and_leave(server: RunningServer, name: str) -> int:
    """An APP client named `name` connects, proves it with a PING, and closes; its CID."""
    with RawClient(server.port) as client:
        client.send(
            connect_line(name=name, lang="raw", version="1.0", user="app", **{"pass": "app"})
        )
        client.ping_pong()
        return int(client.info["client_id"])


def test_events_connect_and_disconnect_in_short_long_and_json_forms(
    nats: NatsCli, sys_server: RunningServer
) -> None:
    short = nats.spawn("events", "--short", *SYS)
    long = nats.spawn("events", *SYS)
    as_json = nats.spawn("events", "--json", *SYS)
    for listener in (short, long):
        for line in SERVER_LISTENING:
            assert listener.read_stdout_line().decode() == f"{line}\n"
    # --json prints no Listening lines: the server tells when all three listen
    wait_for_interest(sys_server, "$SYS.ACCOUNT.*.DISCONNECT", count=3)

    cid = connect_and_leave(sys_server, "watched")

    lines = lines_until(short, rf"\[Disconnection\] user: app cid: {cid} ")
    assert re.fullmatch(
        rf"\d\d:\d\d:\d\d \[Connection\] user: app cid: {cid} in account APP", lines[-2]
    ), lines
    assert re.fullmatch(
        rf"\d\d:\d\d:\d\d \[Disconnection\] user: app cid: {cid} in account APP: Client Closed",
        lines[-1],
    )

    with RawClient(sys_server.port) as refused:
        refused.send(connect_line(user="app", **{"pass": "wrong"}) + b"PING\r\n")
        assert refused.read_line() == b"-ERR 'Authorization Violation'"
        refused_cid = refused.info["client_id"]
    failure = lines_until(short, r"Authentication Failure$")[-1]
    assert re.fullmatch(
        rf"\d\d:\d\d:\d\d \[Disconnection\] user: app cid: {refused_cid} in account \$G: "
        "Authentication Failure",
        failure,
    )

    block = "\n".join(lines_until(long, rf"^ +ID: {cid}$") + lines_until(long, r"^ +Host: "))
    assert re.search(
        r"(?:^|\n)\n\[\d\d:\d\d:\d\d\] \[\w+\] Client Connection\n\n   Server: cli-test\n\n   Client:\n"
        rf"            ID: {cid}\n          User: app\n          Name: watched\n"
        r"       Account: APP\n       Library Version: 1\.0  Language: raw\n"
        r"          Host: 127\.0\.0\.1$",
        block,
    ), block
    block = "\n".join(lines_until(long, r"Client Published: "))
    assert re.fullmatch(
        r"\n\[\d\d:\d\d:\d\d\] \[\w+\] Client Disconnection\n\n    Reason: Client Closed\n"
        r"    Server: cli-test\n\n   Client:\n"
        rf"                 ID: {cid}\n               User: app\n               Name: watched\n"
        r"            Account: APP\n    Library Version: 1\.0  Language: raw\n"
        r"               Host: 127\.0\.0\.1\n(.*\n)*"
        r"   Stats:\n                  RTT: \S+\n      Client Received: 0 messages \(0 B\)\n"
        r"     Client Published: 0 messages \(0 B\)",
        block,
    ), block

    events: list[dict[str, Any]] = []
    while not events or events[-1]["type"] != "io.nats.server.advisory.v1.client_disconnect":
        event = json.loads(as_json.read_stdout_line())  # one event per line
        if event["client"]["id"] == cid:  # the other `nats events` connected meanwhile
            events.append(event)
    assert [(e["type"], e["client"]["name"]) for e in events] == [
        ("io.nats.server.advisory.v1.client_connect", "watched"),
        ("io.nats.server.advisory.v1.client_disconnect", "watched"),
    ]
    assert events[1]["reason"] == "Client Closed"
    assert events[1]["client"]["acc"] == "APP"


def test_events_js_advisories_for_a_new_stream(nats: NatsCli) -> None:
    events = nats.spawn("events", "--js-advisory", "--no-srv-advisory", "--short", *APP)
    assert events.read_stdout_line() == b"Listening for Advisories on $JS.EVENT.ADVISORY.>\n"
    created = nats.run("stream", "add", "ADV", "--subjects", "adv.>", "--defaults", *APP)
    assert created.returncode == 0, created
    wanted = {
        r"\d\d:\d\d:\d\d \[Stream Create\] ADV",
        r"\d\d:\d\d:\d\d \[JS API\] \$JS\.API\.STREAM\.CREATE\.ADV app @ APP",
    }
    seen: list[str] = []
    while wanted:  # the two advisories may come in either order
        seen.append(events.read_stdout_line().decode().rstrip("\n"))
        wanted = {pattern for pattern in wanted if not re.fullmatch(pattern, seen[-1])}


def test_events_needs_something_to_listen_to(nats: NatsCli) -> None:
    result = nats.run("events", "--no-srv-advisory", *SYS)
    assert result.returncode == 1
    assert result.stderr == "nats: error: no events were chosen\n"
