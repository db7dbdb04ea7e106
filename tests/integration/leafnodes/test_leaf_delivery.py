"""A leaf and its hub, in every mix with the Go server: messages, queue groups, requests,
account binding, refused credentials, loops, and a link that breaks and comes back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg
from tests.support.leafs import LeafPair, connect, interest_at, make_leaf_pair
from tests.support.waiting import wait_until

MIXES = [
    pytest.param(("go", "py"), id="py-leaf-on-go-hub"),
    pytest.param(("py", "go"), id="go-leaf-on-py-hub"),
    pytest.param(("py", "py"), id="py-leaf-on-py-hub"),
]


@pytest.fixture(scope="module", params=MIXES)
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LeafPair]:
    hub_kind, leaf_kind = request.param
    made = make_leaf_pair(hub_kind, leaf_kind, tmp_path_factory.mktemp("leaf"))
    try:
        made.wait_connected()
        yield made
    finally:
        made.stop_all()


async def test_messages_cross_the_link_both_ways_with_headers(pair: LeafPair) -> None:
    hub, leaf = await connect(pair.hub), await connect(pair.leaf)
    try:
        at_hub = await hub.subscribe("edge.to.hub")
        at_leaf = await leaf.subscribe("hub.to.edge.*")
        await hub.flush()
        await leaf.flush()
        await interest_at(pair.leaf, "edge.to.hub")
        await interest_at(pair.hub, "hub.to.edge.*")
        await leaf.publish("edge.to.hub", b"up", headers={"K": "v"})
        await hub.publish("hub.to.edge.x", b"down")
        up = await at_hub.next_msg(timeout=3)
        assert (up.data, up.headers) == (b"up", {"K": "v"})
        assert (await at_leaf.next_msg(timeout=3)).data == b"down"
    finally:
        await hub.close()
        await leaf.close()


async def test_requests_are_answered_across_the_link(pair: LeafPair) -> None:
    hub, leaf = await connect(pair.hub), await connect(pair.leaf)
    try:

        async def answer(msg: Msg) -> None:
            await msg.respond(b"answer:" + msg.data)

        await hub.subscribe("svc.at.hub", cb=answer)
        await leaf.subscribe("svc.at.leaf", cb=answer)
        await hub.flush()
        await leaf.flush()
        await interest_at(pair.leaf, "svc.at.hub")
        await interest_at(pair.hub, "svc.at.leaf")
        assert (await leaf.request("svc.at.hub", b"1", timeout=3)).data == b"answer:1"
        assert (await hub.request("svc.at.leaf", b"2", timeout=3)).data == b"answer:2"
    finally:
        await hub.close()
        await leaf.close()


async def test_a_queue_group_across_the_link_takes_each_message_once(pair: LeafPair) -> None:
    hub, leaf = await connect(pair.hub), await connect(pair.leaf)
    got: list[tuple[str, bytes]] = []
    try:
        for where, nc in (("hub", hub), ("leaf", leaf)):

            async def take(msg: Msg, where: str = where) -> None:
                got.append((where, msg.data))

            for _ in range(2):
                await nc.subscribe("jobs", queue="workers", cb=take)
            await nc.flush()
        await interest_at(pair.hub, "jobs")
        await interest_at(pair.leaf, "jobs")
        for n in range(100):
            await hub.publish("jobs", b"h%d" % n)
            await leaf.publish("jobs", b"l%d" % n)
        await hub.flush()
        await leaf.flush()
        await wait_until(lambda: len(got) >= 200, timeout=5, what="200 jobs")
        await asyncio.sleep(0.2)
        assert sorted(d for _, d in got) == sorted(
            [b"h%d" % n for n in range(100)] + [b"l%d" % n for n in range(100)]
        )
        # Each side keeps its own jobs when it has members (leaf members are taken last).
        assert {w for w, d in got if d.startswith(b"h")} == {"hub"}
        assert {w for w, d in got if d.startswith(b"l")} == {"leaf"}
    finally:
        await hub.close()
        await leaf.close()


@pytest.mark.parametrize("mix", [("go", "py"), ("py", "go"), ("py", "py")], ids=str)
async def test_the_leaf_is_bound_to_the_account_its_credentials_name(
    tmp_path: Path, mix: tuple[str, str]
) -> None:
    accounts = """accounts {
  HUBACC: { users: [ {user: h, password: h} ] }
  OTHER: { users: [ {user: o, password: o} ] }
}"""
    pair = make_leaf_pair(
        *mix,
        tmp_path,
        hub_block=lambda hub: (
            "  authorization { users: [ {user: leafy, password: pw, account: HUBACC} ] }"
        ),
        remote=lambda hub: f'{{ url: "nats-leaf://leafy:pw@127.0.0.1:{hub.leaf_port}" }}',
        hub_extra=accounts,
    )
    try:
        pair.wait_connected()
        right = await nats.connect(pair.hub.url, user="h", password="h")
        wrong = await nats.connect(pair.hub.url, user="o", password="o")
        leaf = await connect(pair.leaf)
        try:
            in_account = await right.subscribe("bound.subject")
            elsewhere = await wrong.subscribe("bound.subject")
            await right.flush()
            await wrong.flush()
            await interest_at(pair.leaf, "bound.subject")
            await leaf.publish("bound.subject", b"to HUBACC")
            assert (await in_account.next_msg(timeout=3)).data == b"to HUBACC"
            with pytest.raises(nats.errors.TimeoutError):
                await elsewhere.next_msg(timeout=0.3)
        finally:
            for nc in (right, wrong, leaf):
                await nc.close()
    finally:
        pair.stop_all()


@pytest.mark.parametrize("mix", [("go", "py"), ("py", "go")], ids=str)
def test_wrong_leaf_credentials_are_refused(tmp_path: Path, mix: tuple[str, str]) -> None:
    pair = make_leaf_pair(
        *mix,
        tmp_path,
        hub_block=lambda hub: "  authorization { user: leafy, password: right }",
        remote=lambda hub: f'{{ url: "nats-leaf://leafy:wrong@127.0.0.1:{hub.leaf_port}" }}',
    )
    try:
        assert pair.hub.server is not None
        pair.hub.server.wait_for_log("authentication error", timeout=6)
        assert not pair.hub.leaf_names()
    finally:
        pair.stop_all()


@pytest.mark.parametrize("mix", [("go", "py"), ("py", "go"), ("py", "py")], ids=str)
def test_a_loop_of_leaf_connections_is_detected(tmp_path: Path, mix: tuple[str, str]) -> None:
    """Each server is the other's hub: the $LDS subjects come back, the link is closed."""
    pair = make_leaf_pair(*mix, tmp_path, start=False)
    pair.leaf.extra = (
        f"leafnodes {{\n  listen: 127.0.0.1:{pair.leaf.leaf_port}\n"
        f'  remotes: [ {{ url: "nats-leaf://127.0.0.1:{pair.hub.leaf_port}" }} ]\n}}\n'
    )
    pair.hub.extra = (
        f"leafnodes {{\n  listen: 127.0.0.1:{pair.hub.leaf_port}\n"
        f'  remotes: [ {{ url: "nats-leaf://127.0.0.1:{pair.leaf.leaf_port}" }} ]\n}}\n'
    )
    pair.start(pair.hub)
    pair.start(pair.leaf)
    try:
        logs = [n.server for n in (pair.hub, pair.leaf) if n.server is not None]
        deadline_found = False
        for srv in logs:
            try:
                srv.wait_for_log(r"Loop detected for leafnode account=\"\$G\"", timeout=8)
                deadline_found = True
                break
            except TimeoutError:
                continue
        assert deadline_found
    finally:
        pair.stop_all()


@pytest.mark.parametrize("mix", [("go", "py"), ("py", "go")], ids=str)
async def test_a_broken_link_comes_back_and_interest_is_renewed(
    tmp_path: Path, mix: tuple[str, str]
) -> None:
    pair = make_leaf_pair(*mix, tmp_path)
    try:
        pair.wait_connected()
        assert pair.hub.server is not None
        pair.hub.server.kill()
        pair.start(pair.hub)
        pair.wait_connected(timeout=15)
        hub, leaf = await connect(pair.hub), await connect(pair.leaf)
        try:
            s = await leaf.subscribe("after.restart")
            await leaf.flush()
            await interest_at(pair.hub, "after.restart")
            await hub.publish("after.restart", b"back")
            assert (await s.next_msg(timeout=3)).data == b"back"
        finally:
            await hub.close()
            await leaf.close()
    finally:
        pair.stop_all()


@pytest.mark.parametrize("mix", [("go", "py"), ("py", "go"), ("py", "py")], ids=str)
async def test_a_leaf_with_a_creds_file_signs_the_hubs_nonce_and_binds_its_account(
    tmp_path: Path, mix: tuple[str, str]
) -> None:
    """Operator mode on the hub: the leaf's .creds (user JWT + seed) authenticate it, and
    the user's account is the one the leaf connection is bound to."""
    from tests.support import jwts

    op = jwts.operator()
    (tmp_path / "op.jwt").write_text(jwts.operator_jwt(op))
    sys_acc, app = jwts.account(), jwts.account()
    leaf_user, app_user = jwts.user(), jwts.user()
    leaf_creds = jwts.write_creds(
        tmp_path / "leaf.creds", jwts.user_jwt(app, leaf_user, "leaf"), leaf_user
    )
    app_creds = jwts.write_creds(
        tmp_path / "app.creds", jwts.user_jwt(app, app_user, "app"), app_user
    )
    operator_mode = (
        f'operator: "{tmp_path / "op.jwt"}"\nsystem_account: {sys_acc.public_key}\n'
        "resolver: MEMORY\nresolver_preload: {\n"
        f'  {sys_acc.public_key}: "{jwts.account_jwt(op, sys_acc, "SYS")}"\n'
        f'  {app.public_key}: "{jwts.account_jwt(op, app, "APP")}"\n}}\n'
    )
    pair = make_leaf_pair(
        *mix,
        tmp_path,
        hub_extra=operator_mode,
        remote=lambda hub: (
            f'{{ url: "nats-leaf://127.0.0.1:{hub.leaf_port}", credentials: "{leaf_creds}" }}'
        ),
    )
    try:
        pair.wait_connected()
        hub = await nats.connect(pair.hub.url, user_credentials=str(app_creds))
        leaf = await connect(pair.leaf)
        try:
            s = await hub.subscribe("app.events")
            await hub.flush()
            await interest_at(pair.leaf, "app.events")
            await leaf.publish("app.events", b"signed in")
            assert (await s.next_msg(timeout=3)).data == b"signed in"
        finally:
            await hub.close()
            await leaf.close()
    finally:
        pair.stop_all()


@pytest.mark.parametrize("hub_kind", ["go", "py"])
@pytest.mark.parametrize("isolate", [False, True], ids=["shared", "isolated"])
async def test_isolate_leafnode_interest_keeps_leafs_apart(
    tmp_path: Path, hub_kind: str, isolate: bool
) -> None:
    """Two leafs on one hub hear of each other's interest, unless the hub isolates them."""
    from tests.support.leafs import make_node

    setting = "  isolate_leafnode_interest: true" if isolate else ""
    pair = make_leaf_pair(hub_kind, "py", tmp_path, hub_block=lambda hub: setting)
    second = make_node("py", "LEAF-TWO", tmp_path)
    second.extra = (
        f'leafnodes {{ remotes: [ {{ url: "nats-leaf://127.0.0.1:{pair.hub.leaf_port}" }} ] }}\n'
    )
    pair.start(second)
    try:
        pair.wait_connected()
        await wait_until(lambda: len(pair.hub.leaf_names()) == 2, timeout=10)
        one, two, hub = await connect(pair.leaf), await connect(second), await connect(pair.hub)
        try:
            s = await one.subscribe("east.west")
            await one.flush()
            await interest_at(pair.hub, "east.west")
            await hub.publish("east.west", b"from the hub")  # the hub always reaches it
            assert (await s.next_msg(timeout=3)).data == b"from the hub"
            if isolate:
                # The hub announced one's interest before this marker, if at all.
                await hub.subscribe("marker")
                await hub.flush()
                await interest_at(second, "marker")
                assert "east.west" not in second.leaf_interest()
            else:
                await interest_at(second, "east.west")
                await two.publish("east.west", b"from the other leaf")
                assert (await s.next_msg(timeout=3)).data == b"from the other leaf"
        finally:
            for nc in (one, two, hub):
                await nc.close()
    finally:
        pair.stop_all()
