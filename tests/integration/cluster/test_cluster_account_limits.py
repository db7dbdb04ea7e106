"""An account's connection limit (its JWT's `conn`) counts every server of the cluster.

Servers share each account's client count (`$SYS.SERVER.ACCOUNT.<acc>.CONNS` events, and
answers to `$SYS.REQ.ACCOUNT.<acc>.CONNS` when they start tracking an account), so with a
limit of 2 and two clients elsewhere, a third is refused wherever it connects, by our server
as by Go's. A server that admitted a client before it knew the others' counts closes its
newest clients once it learns the account is over (the others may close some too, as
nats-server does).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from tests.integration.cluster.conftest import TOPOLOGIES
from tests.integration.cluster.system_helpers import connect
from tests.support import jwts
from tests.support.cluster import Cluster, Member, make_cluster
from tests.support.waiting import wait_until

TOO_MANY = "maximum account active connections exceeded"


@dataclass
class Setup:
    cluster: Cluster
    sys_creds: str
    creds: dict[str, str]  # account name -> a user's creds file
    keys: dict[str, str]  # account name -> account public key

    @property
    def ours(self) -> Member:
        """The pynats member the test is about (the last one)."""
        return next(m for m in reversed(self.cluster.members) if m.kind == "py")

    @property
    def others(self) -> list[Member]:
        return [m for m in self.cluster if m is not self.ours]


@pytest.fixture(scope="module", params=TOPOLOGIES)
def setup(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    tmp: Path = tmp_path_factory.mktemp("limits")
    op = jwts.operator()
    (tmp / "op.jwt").write_text(jwts.operator_jwt(op))
    sys_acc = jwts.account()
    accounts = {name: jwts.account() for name in ("REFUSE_HERE", "REFUSE_THERE", "CLOSE", "FRESH")}
    preload = [f'  {sys_acc.public_key}: "{jwts.account_jwt(op, sys_acc, "SYS")}"']
    for name, acc in accounts.items():
        preload.append(f'  {acc.public_key}: "{jwts.account_jwt(op, acc, name, {"conn": 2})}"')
    config = (
        f'operator: "{tmp / "op.jwt"}"\n'
        f"system_account: {sys_acc.public_key}\n"
        "resolver: MEMORY\n"
        "resolver_preload: {\n" + "\n".join(preload) + "\n}\n"
    )
    sys_user = jwts.user()
    sys_creds = jwts.write_creds(
        tmp / "sys.creds", jwts.user_jwt(sys_acc, sys_user, "sys"), sys_user
    )
    creds = {}
    for name, acc in accounts.items():
        user = jwts.user()
        creds[name] = str(
            jwts.write_creds(tmp / f"{name}.creds", jwts.user_jwt(acc, user, name), user)
        )
    cluster = make_cluster(request.param, tmp, extra=lambda m: config)
    try:
        cluster.wait_formed()
        yield Setup(
            cluster,
            str(sys_creds),
            creds,
            {name: acc.public_key for name, acc in accounts.items()},
        )
    finally:
        cluster.stop_all()


class CountWatcher:
    """A system client on one server, noting each server's latest count of an account."""

    def __init__(self, nc: Client, account_key: str) -> None:
        self.nc = nc
        self.account_key = account_key
        self.counts: dict[str, int] = {}

    @classmethod
    async def on(cls, member: Member, setup: Setup, account: str) -> CountWatcher:
        nc = await connect(member.url, user_credentials=setup.sys_creds)
        watcher = cls(nc, setup.keys[account])

        async def take(msg: Msg) -> None:
            event = json.loads(msg.data)
            watcher.counts[event["server"]["id"]] = event["conns"]

        # Every server listens to this subject itself: no interest to wait for.
        await nc.subscribe(f"$SYS.SERVER.ACCOUNT.{watcher.account_key}.CONNS", cb=take)
        await nc.flush()
        return watcher

    def total(self) -> int:
        return sum(self.counts.values())


async def client(member: Member, setup: Setup, account: str, **kwargs: Any) -> Client:
    return await connect(member.url, user_credentials=setup.creds[account], **kwargs)


async def visit(members: list[Member], setup: Setup, account: str) -> None:
    """A client of the account on each member, gone at once: the servers know the account."""
    for member in members:
        nc = await client(member, setup, account)
        await nc.close()


async def test_a_client_over_the_limit_is_refused_when_the_others_are_on_other_servers(
    setup: Setup,
) -> None:
    account = "REFUSE_HERE"
    await visit([setup.ours], setup, account)
    watcher = await CountWatcher.on(setup.ours, setup, account)
    elsewhere = [await client(m, setup, account) for m in setup.others]
    assert len(elsewhere) == 2
    await wait_until(lambda: watcher.total() == 2, timeout=5, what="the others' counts")
    with pytest.raises(nats.errors.Error) as refused:
        await client(setup.ours, setup, account)
    assert TOO_MANY in str(refused.value).lower()
    for nc in elsewhere:
        await nc.close()
    await wait_until(lambda: watcher.total() == 0, timeout=5, what="the counts back to zero")
    accepted = await client(setup.ours, setup, account)  # room again
    await accepted.close()
    await watcher.nc.close()


async def test_other_servers_refuse_a_client_over_the_limit_when_the_others_are_on_ours(
    setup: Setup,
) -> None:
    account = "REFUSE_THERE"
    await visit(setup.others, setup, account)
    watchers = [await CountWatcher.on(m, setup, account) for m in setup.others]
    here = [await client(setup.ours, setup, account) for _ in range(2)]
    await wait_until(
        lambda: all(w.total() == 2 for w in watchers), timeout=5, what="our count everywhere"
    )
    for member in setup.others:
        with pytest.raises(nats.errors.Error) as refused:
            await client(member, setup, account)
        assert TOO_MANY in str(refused.value).lower(), member.name
    for nc in here:
        await nc.close()
    for watcher in watchers:
        await watcher.nc.close()


async def test_a_server_closes_its_newest_client_once_it_learns_the_account_is_over(
    setup: Setup,
) -> None:
    """Our server meets the account for the first time with a client the others' two put
    over the limit: it admits it, asks for the counts, and closes it when they arrive."""
    account = "CLOSE"
    x = setup.others[0]
    await visit([x], setup, account)
    watcher = await CountWatcher.on(x, setup, account)
    first, second = [await client(x, setup, account) for _ in range(2)]
    await wait_until(lambda: watcher.total() == 2, timeout=5, what="two clients counted")
    ours = await connect(setup.ours.url, user_credentials=setup.sys_creds)
    events = await ours.subscribe(f"$SYS.ACCOUNT.{setup.keys[account]}.*")
    await ours.flush()
    try:
        third = await client(setup.ours, setup, account, name="third")
    except nats.errors.Error as e:  # closed before the client library was done connecting
        assert TOO_MANY in str(e).lower()
    else:
        await wait_until(lambda: third.is_closed, timeout=5, what="the third client closed")
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < 2:  # the other server's events come here too
        msg = await events.next_msg(timeout=5)
        event = json.loads(msg.data)
        if event["server"]["name"] == setup.ours.name and "client" in event:
            assert event["client"].get("name") == "third"
            seen[msg.subject.rsplit(".", 1)[1]] = event
    assert sorted(seen) == ["CONNECT", "DISCONNECT"]  # admitted, then closed
    assert seen["DISCONNECT"]["reason"] == "Maximum Account Connections Exceeded"
    await ours.close()
    # The other server learned of our client too, and closed its own newest (as Go does).
    await wait_until(
        lambda: sum(not nc.is_closed for nc in (first, second)) <= 1,
        timeout=5,
        what="the other server's newest closed",
    )
    for nc in (first, second):
        if not nc.is_closed:
            await nc.close()
    await watcher.nc.close()


async def test_interest_of_an_account_with_no_client_here_yet_is_kept(setup: Setup) -> None:
    """Operator mode: a server takes a peer's interest for an account it knows (its JWT is
    preloaded) before any client of that account has connected to it."""
    far = await client(setup.others[0], setup, "FRESH")
    try:
        sub = await far.subscribe("fresh.news")
        await far.flush()

        def known_here() -> bool:
            routez = setup.ours.http_json("/routez?subs=1")
            return any(
                "fresh.news" in (r.get("subscriptions_list") or []) for r in routez["routes"]
            )

        await wait_until(known_here, timeout=5, what="the interest on our server")
        near = await client(setup.ours, setup, "FRESH")
        try:
            await near.publish("fresh.news", b"hello from the first client here")
            await near.flush()
            assert (await sub.next_msg(timeout=3)).data == b"hello from the first client here"
        finally:
            await near.close()
    finally:
        await far.close()
