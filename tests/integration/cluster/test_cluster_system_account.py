"""The system account across a cluster: every server, Go and ours, answers `$SYS` requests,
broadcasts its STATSZ, counts the others, and publishes client events that reach a system
client on any server; a server leaving says so (SHUTDOWN, LAMEDUCK) and the others stop
counting it.

The shapes compared with Go's are those nats-server 2.15.1 sends (its `server` block also
has `feature_flags`, JetStream clustering capabilities pynats does not claim).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from tests.integration.cluster.conftest import TOPOLOGIES
from tests.integration.cluster.system_helpers import (
    SYSTEM_ACCOUNT_CONFIG,
    app_url,
    connect,
    gather,
    sys_url,
    wait_all_active,
)
from tests.support.cluster import Cluster, make_cluster
from tests.support.waiting import wait_until

from pynats.server.statsz import StatszSchedule

SERVER_BLOCK_KEYS = ["name", "host", "id", "cluster", "ver", "jetstream", "flags", "seq", "time"]
# nats-server 2.15.1's statsz of a server without JetStream, with routes.
STATSZ_KEYS = [
    "start",
    "mem",
    "cores",
    "cpu",
    "connections",
    "total_connections",
    "active_accounts",
    "subscriptions",
    "sent",
    "sent_to_clients",
    "received",
    "received_from_clients",
    "slow_consumers",
    "routes",
    "active_servers",
    "gomaxprocs",
]
ENDPOINT_KEYS = {
    "VARZ": "server_id",
    "CONNZ": "connections",
    "SUBSZ": "num_subscriptions",
    "ROUTEZ": "routes",
    "HEALTHZ": "status",
    "JSZ": "server_id",
    "ACCOUNTZ": "accounts",
    "GATEWAYZ": "server_id",
    "LEAFZ": "server_id",
}


@pytest.fixture(scope="module", params=TOPOLOGIES)
def mesh(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    tmp: Path = tmp_path_factory.mktemp("sysmesh")
    cluster = make_cluster(request.param, tmp, extra=lambda m: SYSTEM_ACCOUNT_CONFIG)
    try:
        cluster.wait_formed()
        asyncio.run(wait_all_active(cluster))
        yield cluster
    finally:
        cluster.stop_all()


def names(cluster: Cluster) -> list[str]:
    return sorted(m.name for m in cluster)


def by_name(answers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["server"]["name"]: a for a in answers}


async def test_every_server_answers_a_ping_sent_on_any_server(mesh: Cluster) -> None:
    for member in mesh:
        nc = await connect(sys_url(member))
        answers = await gather(nc, "$SYS.REQ.SERVER.PING", expect=3)
        await nc.close()
        assert sorted(a["server"]["name"] for a in answers) == names(mesh), member.name
        assert all(a["statsz"]["active_servers"] == 3 for a in answers)


@pytest.mark.parametrize("endpoint", [*ENDPOINT_KEYS, "STATSZ", "IDZ"])
async def test_monitoring_requests_are_answered_once_by_every_server(
    mesh: Cluster, endpoint: str
) -> None:
    nc = await connect(sys_url(mesh[-1]))
    answers = await gather(nc, f"$SYS.REQ.SERVER.PING.{endpoint}", expect=3)
    await nc.close()
    if endpoint == "IDZ":
        assert sorted(a["name"] for a in answers) == names(mesh)
        assert all(sorted(a) == ["host", "id", "name"] for a in answers)
        return
    assert sorted(a["server"]["name"] for a in answers) == names(mesh)
    for answer in answers:
        if endpoint == "STATSZ":
            assert sorted(answer) == ["server", "statsz"]
            assert answer["statsz"]["active_servers"] == 3
        else:
            assert sorted(answer) == ["data", "server"]
            assert ENDPOINT_KEYS[endpoint] in answer["data"], (answer["server"]["name"], answer)


async def test_a_request_to_one_server_id_is_answered_by_that_server_only(mesh: Cluster) -> None:
    nc = await connect(sys_url(mesh[0]))
    ids = {a["name"]: a["id"] for a in await gather(nc, "$SYS.REQ.SERVER.PING.IDZ", expect=3)}
    assert sorted(ids) == names(mesh)
    for name, server_id in ids.items():
        for endpoint in ("VARZ", "IDZ"):
            answers = await gather(nc, f"$SYS.REQ.SERVER.{server_id}.{endpoint}", expect=1)
            assert len(answers) == 1, (name, endpoint, answers)
            block = answers[0] if endpoint == "IDZ" else answers[0]["server"]
            assert (block["name"], block["id"]) == (name, server_id)
    await nc.close()


async def test_filters_in_the_request_choose_who_answers(mesh: Cluster) -> None:
    nc = await connect(sys_url(mesh[0]))
    for member in mesh:
        body = json.dumps({"server_name": member.name}).encode()
        answers = await gather(nc, "$SYS.REQ.SERVER.PING.VARZ", body, expect=1)
        assert [a["server"]["name"] for a in answers] == [member.name]
    everyone = await gather(nc, "$SYS.REQ.SERVER.PING", b'{"cluster":"c1"}', expect=3)
    assert len(everyone) == 3
    nobody = await gather(nc, "$SYS.REQ.SERVER.PING", b'{"cluster":"other"}', expect=1, timeout=0.5)
    assert nobody == []
    await nc.close()


async def test_an_account_sees_its_own_connections_on_every_server(mesh: Cluster) -> None:
    """nats-server's system imports: any account may ping its CONNZ/STATZ; every server
    answers, with that account's connections only."""
    apps = [await connect(app_url(m), name=f"app-on-{m.name}") for m in mesh]
    try:
        for nc in apps:
            for subject in ("$SYS.REQ.SERVER.PING.CONNZ", "$SYS.REQ.ACCOUNT.PING.CONNZ"):
                answers = await gather(nc, subject, expect=3)
                assert sorted(a["server"]["name"] for a in answers) == names(mesh), subject
                for answer in answers:
                    conns = answer["data"]["connections"]
                    assert [c["name"] for c in conns] == [f"app-on-{answer['server']['name']}"]
            statz = await gather(nc, "$SYS.REQ.ACCOUNT.PING.STATZ", expect=3)
            assert sorted(a["server"]["name"] for a in statz) == names(mesh)
            for answer in statz:
                (stat,) = answer["data"]["account_statz"]
                assert (stat["acc"], stat["conns"]) == ("A", 1)
    finally:
        for nc in apps:
            await nc.close()


async def test_server_blocks_and_stats_have_the_go_shape(mesh: Cluster) -> None:
    nc = await connect(sys_url(mesh[0]))
    answers = by_name(await gather(nc, "$SYS.REQ.SERVER.PING", expect=3))
    await nc.close()
    go = [answers[m.name] for m in mesh if m.kind == "go"]
    for member in mesh:
        answer = answers[member.name]
        block, stats = answer["server"], answer["statsz"]
        assert [k for k in block if k != "feature_flags"] == SERVER_BLOCK_KEYS, member.name
        assert (block["cluster"], block["host"], block["jetstream"], block["flags"]) == (
            "c1",
            "127.0.0.1",
            False,
            0,
        )
        assert list(stats) == STATSZ_KEYS, member.name
        routes = stats["routes"]
        assert {r["name"] for r in routes} == set(names(mesh)) - {member.name}
        assert all(list(r) == ["rid", "name", "sent", "received", "pending"] for r in routes)
        assert len({r["rid"] for r in routes}) == len(routes)
    for reference in go:
        assert [k for k in reference["server"] if k != "feature_flags"] == SERVER_BLOCK_KEYS
        assert list(reference["statsz"]) == STATSZ_KEYS


async def test_each_server_broadcasts_its_statsz_when_pinged_without_a_reply(
    mesh: Cluster,
) -> None:
    nc = await connect(sys_url(mesh[0]))
    seen: dict[str, dict[str, Any]] = {}

    async def take(msg: Msg) -> None:
        answer = json.loads(msg.data)
        assert msg.subject == f"$SYS.SERVER.{answer['server']['id']}.STATSZ"
        seen[answer["server"]["name"]] = answer

    await nc.subscribe("$SYS.SERVER.*.STATSZ", cb=take)
    await nc.flush()
    await nc.publish("$SYS.REQ.SERVER.PING", b"")
    await wait_until(lambda: len(seen) == 3, timeout=5, what="a STATSZ from every server")
    assert sorted(seen) == names(mesh)
    await nc.close()


async def test_client_events_reach_a_system_client_on_every_server(mesh: Cluster) -> None:
    watchers: list[Client] = []
    events: list[list[tuple[str, dict[str, Any]]]] = []
    for member in mesh:
        nc = await connect(sys_url(member))
        seen: list[tuple[str, dict[str, Any]]] = []

        async def take(msg: Msg, seen: list[tuple[str, dict[str, Any]]] = seen) -> None:
            seen.append((msg.subject, json.loads(msg.data)))

        await nc.subscribe("$SYS.ACCOUNT.A.>", cb=take)
        await nc.subscribe("$SYS.SERVER.ACCOUNT.A.CONNS", cb=take)
        watchers.append(nc)
        events.append(seen)
    await interest_everywhere(watchers, events, "$SYS.ACCOUNT.A.PROBE")
    for member in mesh:
        for seen in events:
            seen.clear()
        app = await connect(app_url(member), name=f"app-on-{member.name}")
        await app.close()

        def complete(seen: list[tuple[str, dict[str, Any]]]) -> bool:
            return {s for s, _ in seen} >= {
                "$SYS.ACCOUNT.A.CONNECT",
                "$SYS.ACCOUNT.A.DISCONNECT",
                "$SYS.ACCOUNT.A.SERVER.CONNS",
                "$SYS.SERVER.ACCOUNT.A.CONNS",
            }

        for i, seen in enumerate(events):
            await wait_until(partial(complete, seen), timeout=5, what=f"events at {i}")
            for subject, event in seen:
                if subject.endswith(".PROBE"):
                    continue
                assert event["server"]["name"] == member.name, subject
                if subject.endswith(".CONNECT"):
                    assert event["type"] == "io.nats.server.advisory.v1.client_connect"
                    assert event["client"]["name"] == f"app-on-{member.name}"
                    assert event["client"]["acc"] == "A"
                elif subject.endswith(".DISCONNECT"):
                    assert event["type"] == "io.nats.server.advisory.v1.client_disconnect"
                    assert event["reason"] in ("Client Closed", "Read Error")
                else:
                    assert event["type"] == "io.nats.server.advisory.v1.account_connections"
                    assert event["acc"] == "A" and event["name"] == "A"
    for nc in watchers:
        await nc.close()


async def interest_everywhere(
    watchers: list[Client], events: list[list[tuple[str, dict[str, Any]]]], subject: str
) -> None:
    """Until a probe published on each watcher's server reaches every watcher: their
    interest has crossed every route."""

    def probes(seen: list[tuple[str, dict[str, Any]]]) -> set[str]:
        return {e.get("from", "") for s, e in seen if s == subject}

    async def all_probed() -> bool:
        for i, nc in enumerate(watchers):
            await nc.publish(subject, json.dumps({"from": str(i)}).encode())
            await nc.flush()
        await asyncio.sleep(0.05)
        expected = {str(i) for i in range(len(watchers))}
        return all(probes(seen) == expected for seen in events)

    await wait_until(all_probed, timeout=5, what=f"interest in {subject} on every server")


# -- leaving the cluster ---------------------------------------------------------------------


@pytest.mark.parametrize("kinds", [["go", "py", "py"], ["py", "py", "py"]], ids=["go-py-py", "py"])
async def test_a_server_leaving_says_so_and_the_others_stop_counting_it(
    tmp_path: Path, kinds: list[str]
) -> None:
    """Lame duck mode sends LAMEDUCK and nothing after it; a plain shutdown sends SHUTDOWN.
    Either way the observer (Go's tracking or ours) drops the server from active_servers."""
    cluster = make_cluster(kinds, tmp_path, extra=lambda m: SYSTEM_ACCOUNT_CONFIG)
    try:
        cluster.wait_formed()
        await wait_all_active(cluster)
        observer, lame, stopped = cluster.members
        nc = await connect(sys_url(observer))
        heartbeats: dict[str, list[int]] = {}

        async def beat(msg: Msg) -> None:
            block = json.loads(msg.data)["server"]
            heartbeats.setdefault(block["name"], []).append(block["seq"])

        await nc.subscribe("$SYS.SERVER.*.STATSZ", cb=beat)
        # Young servers broadcast often (every 2 s, then 4 s, ... up to 10 s), each message
        # with a higher sequence number.
        # (a server up for a while under load is already at its 10 s interval)
        await wait_until(
            lambda: len(heartbeats) == 3,
            timeout=12,
            what="STATSZ from everyone",
            explain=cluster.logs,
        )
        assert all(seqs == sorted(seqs) for seqs in heartbeats.values())
        ids = {a["name"]: a["id"] for a in await gather(nc, "$SYS.REQ.SERVER.PING.IDZ", expect=3)}
        goodbyes: list[tuple[str, dict[str, Any]]] = []

        async def take(msg: Msg) -> None:
            goodbyes.append((msg.subject, json.loads(msg.data)))

        for name in (lame.name, stopped.name):
            await nc.subscribe(f"$SYS.SERVER.{ids[name]}.SHUTDOWN", cb=take)
            await nc.subscribe(f"$SYS.SERVER.{ids[name]}.LAMEDUCK", cb=take)
        await nc.flush()  # every server listens to these itself: no interest to wait for

        async def active() -> int:
            answers = await gather(nc, f"$SYS.REQ.SERVER.{ids[observer.name]}.STATSZ", expect=1)
            return int(answers[0]["statsz"]["active_servers"])

        assert lame.server is not None and stopped.server is not None
        lame.server.signal(signal.SIGUSR2)
        await wait_until(lambda: goodbyes, timeout=10, what="LAMEDUCK", explain=cluster.logs)
        await asyncio.to_thread(lame.server.proc.wait, 10)
        assert [s for s, _ in goodbyes] == [f"$SYS.SERVER.{ids[lame.name]}.LAMEDUCK"]
        block = goodbyes[0][1]
        assert [k for k in block if k != "feature_flags"] == SERVER_BLOCK_KEYS
        assert (block["name"], block["id"]) == (lame.name, ids[lame.name])
        await wait_until(lambda: _is(active(), 2), timeout=5, what="2 active servers")

        await asyncio.to_thread(stopped.server.stop)
        await wait_until(
            lambda: len(goodbyes) == 2, timeout=10, what="SHUTDOWN", explain=cluster.logs
        )
        assert goodbyes[1][0] == f"$SYS.SERVER.{ids[stopped.name]}.SHUTDOWN"
        assert goodbyes[1][1]["name"] == stopped.name
        await wait_until(lambda: _is(active(), 1), timeout=5, what="1 active server")
        await nc.close()
    finally:
        cluster.stop_all()


async def _is(value: Any, expected: int) -> bool:
    return bool(await value == expected)


# -- when STATSZ goes out ---------------------------------------------------------------------


@dataclass(order=True)
class FakeTimer:
    when: float
    order: int
    callback: Any = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class FakeLoop:
    """Just enough of an event loop for StatszSchedule, with a clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[FakeTimer] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Any, *args: Any) -> FakeTimer:
        timer = FakeTimer(when, len(self.timers), callback, args)
        self.timers.append(timer)
        return timer

    def call_later(self, delay: float, callback: Any, *args: Any) -> FakeTimer:
        return self.call_at(self.now + delay, callback, *args)

    def run_until(self, end: float) -> None:
        while True:
            due = sorted(t for t in self.timers if not t.cancelled and t.when <= end)
            if not due:
                break
            timer = due[0]
            timer.cancelled = True
            self.now = timer.when
            timer.callback(*timer.args)
        self.now = end


def test_statsz_backs_off_from_a_quarter_second_to_the_ten_second_heartbeat() -> None:
    loop = FakeLoop()
    sent: list[float] = []
    schedule = StatszSchedule(loop, lambda: sent.append(loop.now))  # type: ignore[arg-type]
    schedule.start()
    loop.run_until(50.0)
    # What nats-server 2.15.1 was seen doing: 0.25 s after start, then gaps of 1, 2, 4, 8 s and
    # the 10 s heartbeat (the 0.75 s turn falls within a second of the first and waits).
    assert sent == [0.25, 1.25, 3.25, 7.25, 15.25, 25.25, 35.25, 45.25]


def test_statsz_asked_for_too_soon_goes_out_when_the_limit_allows() -> None:
    loop = FakeLoop()
    sent: list[float] = []
    schedule = StatszSchedule(loop, lambda: sent.append(loop.now))  # type: ignore[arg-type]
    schedule.start()
    loop.run_until(30.0)  # the heartbeat is at its 10 s pace: last sent at 25.25
    assert sent[-1] == 25.25
    loop.now = 26.0
    assert not schedule.send_now()  # a new server appeared: too soon after the last one
    loop.run_until(26.2)
    assert sent[-1] == 25.25
    loop.run_until(26.3)
    assert sent[-1] == 26.25  # one second after the last, not at the next heartbeat
    schedule.reset_limit()  # a ping without a reply asks for it: no limit
    assert schedule.send_now() and sent[-1] == 26.3
    loop.run_until(40.0)
    assert sent[-1] == 36.25
