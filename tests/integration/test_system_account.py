"""The system account: $SYS requests and events, as `nats server ...` and tools use them.
Runs against pynats and the Go server with the same config."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import nats.errors
import pytest
from tests.conftest import connect
from tests.support.raw import RawClient, connect_line
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

CONFIG = """
accounts {
  SYS: { users: [{user: sys, password: sys}] }
  A: { users: [{user: a, password: a, permissions: {publish: {allow: [">"]}, subscribe: {deny: ["x"]}}}] }
}
system_account: SYS
server_name: sysd
"""


@pytest.fixture(scope="module", params=["pynats", "go"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    path = Path(tmp_path_factory.mktemp("sys")) / "sys.conf"
    path.write_text(CONFIG)
    srv = start_server(["-c", str(path)], oracle=request.param == "go", http_port=-1)
    yield srv
    srv.stop()


def url(server: RunningServer, user: str, password: str) -> str:
    return f"nats://{user}:{password}@127.0.0.1:{server.port}"


async def test_server_ping_answers_with_statsz(server: RunningServer) -> None:
    nc = await connect(url(server, "sys", "sys"))
    reply = json.loads((await nc.request("$SYS.REQ.SERVER.PING", b"", timeout=2)).data)
    assert reply["server"]["name"] == "sysd"
    assert reply["server"]["id"].startswith("N")
    stats = reply["statsz"]
    for key in (
        "start",
        "mem",
        "cores",
        "connections",
        "total_connections",
        "subscriptions",
        "sent",
        "received",
        "slow_consumers",
        "active_servers",
    ):
        assert key in stats, key
    assert stats["connections"] >= 1
    await nc.close()


@pytest.mark.parametrize(
    "endpoint,key",
    [
        ("VARZ", "server_id"),
        ("CONNZ", "connections"),
        ("SUBSZ", "num_subscriptions"),
        ("HEALTHZ", "status"),
    ],
)
async def test_ping_endpoints_wrap_monitoring_json(
    server: RunningServer, endpoint: str, key: str
) -> None:
    nc = await connect(url(server, "sys", "sys"))
    reply = json.loads((await nc.request(f"$SYS.REQ.SERVER.PING.{endpoint}", b"", timeout=2)).data)
    assert key in reply["data"]
    server_id = reply["server"]["id"]
    direct = json.loads(
        (await nc.request(f"$SYS.REQ.SERVER.{server_id}.{endpoint}", b"", timeout=2)).data
    )
    assert key in direct["data"]
    await nc.close()


async def test_varz_request_with_server_name_filter(server: RunningServer) -> None:
    nc = await connect(url(server, "sys", "sys"))
    reply = json.loads(
        (await nc.request("$SYS.REQ.SERVER.PING.VARZ", b'{"server_name":"sysd"}', timeout=2)).data
    )
    assert reply["data"]["server_name"] == "sysd"
    await nc.close()


async def test_user_info_from_a_normal_account(server: RunningServer) -> None:
    nc = await connect(url(server, "a", "a"))
    reply = json.loads((await nc.request("$SYS.REQ.USER.INFO", b"", timeout=2)).data)
    data = reply["data"]
    assert (data["user"], data["account"]) == ("a", "A")
    assert data["permissions"] == {"publish": {"allow": [">"]}, "subscribe": {"deny": ["x"]}}
    await nc.close()


async def test_normal_account_cannot_ping_servers(server: RunningServer) -> None:
    nc = await connect(url(server, "a", "a"))
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request("$SYS.REQ.SERVER.PING", b"", timeout=2)
    await nc.close()


async def test_connect_and_disconnect_events(server: RunningServer) -> None:
    sys_nc = await connect(url(server, "sys", "sys"))
    sub = await sys_nc.subscribe("$SYS.ACCOUNT.A.*")
    await sys_nc.flush()
    nc = await connect(url(server, "a", "a"), name="watched")
    await nc.close()
    events = {}
    while set(events) != {"CONNECT", "DISCONNECT"}:
        msg = await sub.next_msg(3)
        events[msg.subject.rsplit(".", 1)[1]] = json.loads(msg.data)
    assert events["CONNECT"]["type"] == "io.nats.server.advisory.v1.client_connect"
    assert events["CONNECT"]["client"]["name"] == "watched"
    assert events["CONNECT"]["client"]["acc"] == "A"
    assert events["DISCONNECT"]["type"] == "io.nats.server.advisory.v1.client_disconnect"
    # nats-server says "Read Error" when the close races its read: both mean the client left
    assert events["DISCONNECT"]["reason"] in ("Client Closed", "Read Error")
    await sys_nc.close()


async def test_a_refused_client_is_an_auth_error_event(server: RunningServer) -> None:
    sys_nc = await connect(url(server, "sys", "sys"))
    sub = await sys_nc.subscribe("$SYS.SERVER.*.CLIENT.AUTH.ERR")
    await sys_nc.flush()
    with RawClient(server.port) as refused:
        refused.send(connect_line(user="a", name="intruder", **{"pass": "wrong"}))
        assert refused.read_line() == b"-ERR 'Authorization Violation'"
    event = json.loads((await sub.next_msg(3)).data)
    assert event["type"] == "io.nats.server.advisory.v1.client_disconnect"
    assert event["reason"] == "Authentication Failure"
    assert (event["client"]["user"], event["client"]["name"]) == ("a", "intruder")
    await sys_nc.close()


def test_accountz_and_accstatz(server: RunningServer) -> None:
    import urllib.request

    with urllib.request.urlopen(server.monitor_url + "/accountz") as resp:
        accountz = json.loads(resp.read())
    assert accountz["system_account"] == "SYS"
    assert {"$G", "SYS", "A"} <= set(accountz["accounts"])
    with urllib.request.urlopen(server.monitor_url + "/accountz?acc=A") as resp:
        detail = json.loads(resp.read())["account_detail"]
    assert detail["account_name"] == "A"
    with urllib.request.urlopen(server.monitor_url + "/accstatz?unused=1") as resp:
        statz = json.loads(resp.read())["account_statz"]
    assert {"$G", "SYS", "A"} <= {s["acc"] for s in statz}


async def test_account_statistics_keep_the_traffic_of_clients_that_left(
    server: RunningServer,
) -> None:
    """/accstatz counts since start: what a publisher sent and a subscriber received stays
    in the account's numbers after both have gone (nats `account report statistics`)."""

    def traffic() -> tuple[int, int, int, int]:
        statz = server.http_json("/accstatz?unused=1")["account_statz"]
        a = next(s for s in statz if s["acc"] == "A")
        return (
            a["received"]["msgs"],
            a["received"]["bytes"],
            a["sent"]["msgs"],
            a["sent"]["bytes"],
        )

    before = traffic()
    sub = await connect(url(server, "a", "a"))
    messages = await sub.subscribe("stats.here")
    await sub.flush()
    pub = await connect(url(server, "a", "a"))
    for _ in range(3):
        await pub.publish("stats.here", b"hello")
    await pub.close()
    for _ in range(3):
        await messages.next_msg(timeout=2)
    await sub.close()
    after = (before[0] + 3, before[1] + 15, before[2] + 3, before[3] + 15)
    await wait_until(lambda: traffic() == after, timeout=5, what=f"traffic {after}")


UNKNOWN_ACCOUNT_ANSWERS = {
    # what nats-server answers about an account it does not have (no JetStream here)
    "$SYS.REQ.ACCOUNT.NOPE.CONNZ": (
        {"server_id": "", "num_connections": 0, "total": 0, "connections": None},
        None,
    ),
    "$SYS.REQ.ACCOUNT.PING.CONNZ": (
        {"server_id": "", "num_connections": 0, "total": 0, "connections": None},
        None,
    ),
    "$SYS.REQ.ACCOUNT.NOPE.SUBSZ": ({"num_subscriptions": 0, "num_matches": 0}, None),
    "$SYS.REQ.ACCOUNT.NOPE.LEAFZ": ({"leafnodes": 0, "leafs": []}, None),
    "$SYS.REQ.ACCOUNT.NOPE.INFO": (None, "Account NOPE does not exist"),
    "$SYS.REQ.ACCOUNT.NOPE.JSZ": (None, "jetstream not enabled"),
}


@pytest.mark.parametrize("subject", UNKNOWN_ACCOUNT_ANSWERS)
async def test_requests_about_an_unknown_account(server: RunningServer, subject: str) -> None:
    """Tools that ask about an account this server does not have (or ping CONNZ from the
    system account, whose `PING` then names an account) get nats-server's answer, not
    silence."""
    nc = await connect(url(server, "sys", "sys"))
    reply = json.loads((await nc.request(subject, b"", timeout=2)).data)
    await nc.close()
    data, error = UNKNOWN_ACCOUNT_ANSWERS[subject]
    if error is None:
        assert "error" not in reply
        assert data is not None
        assert {k: reply["data"][k] for k in data} == data
    else:
        assert reply["data"] is None
        assert reply["error"] == {"code": 500, "description": error}
