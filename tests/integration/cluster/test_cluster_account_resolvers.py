"""FULL account resolvers across a cluster of pynats and Go servers: packs keep the
directories in step, and an account one server has never heard of is looked up on the others."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nats.errors
import pytest
from tests.conftest import connect
from tests.support import jwts
from tests.support.cluster import Cluster, Member
from tests.support.waiting import wait_until

# The first server holds the account (or takes the push), the second is asked for it.
MIXES = [
    pytest.param(["go", "py"], id="go-py"),
    pytest.param(["py", "go"], id="py-go"),
    pytest.param(["py", "py"], id="py-py"),
]


def jwt_dir(m: Member) -> Path:
    return m.conf.parent / "jwt"


@pytest.mark.parametrize("kinds", MIXES)
async def test_an_account_known_to_one_server_reaches_the_others(
    cluster_factory: Callable[..., Cluster], tmp_path: Path, kinds: list[str]
) -> None:
    """The account is only in the first server's directory: a user of it logging in at the
    second is admitted once that server has looked the JWT up on $SYS (Go waits for the
    answer; pynats refuses the first attempt meanwhile), and the periodic pack brings it into
    the second server's directory too."""
    op, sys_acc, app, user = jwts.operator(), jwts.account(), jwts.account(), jwts.user()
    (tmp_path / "op.jwt").write_text(jwts.operator_jwt(op))
    sys_jwt = jwts.account_jwt(op, sys_acc, "SYS")
    app_jwt = jwts.account_jwt(op, app, "APP")
    creds = jwts.write_creds(tmp_path / "u.creds", jwts.user_jwt(app, user, "u"), user)

    def config(m: Member) -> str:
        return (
            f'operator: "{tmp_path / "op.jwt"}"\n'
            f"system_account: {sys_acc.public_key}\n"
            f'resolver: {{type: full, dir: "{jwt_dir(m)}", interval: "1s"}}\n'
            f'resolver_preload: {{ {sys_acc.public_key}: "{sys_jwt}" }}\n'
        )

    cluster = cluster_factory(kinds, extra=config, start=False)
    holder, asker = cluster[0], cluster[1]
    jwt_dir(holder).mkdir()
    (jwt_dir(holder) / f"{app.public_key}.jwt").write_text(app_jwt)
    for m in cluster:
        cluster.start(m)
    cluster.wait_formed()

    async def logs_in() -> bool:
        try:
            nc = await connect(asker.url, user_credentials=str(creds))
        except (nats.errors.Error, OSError):
            return False
        await nc.close()
        return True

    assert await wait_until(logs_in, timeout=10, what="the user to be admitted")
    copied = jwt_dir(asker) / f"{app.public_key}.jwt"
    await wait_until(copied.exists, timeout=10, what="the JWT in our directory")
    assert copied.read_text() == app_jwt


@pytest.mark.parametrize("kinds", MIXES)
async def test_a_push_to_one_server_is_stored_by_all(
    cluster_factory: Callable[..., Cluster], tmp_path: Path, kinds: list[str]
) -> None:
    op, sys_acc, app = jwts.operator(), jwts.account(), jwts.account()
    sys_user, user = jwts.user(), jwts.user()
    (tmp_path / "op.jwt").write_text(jwts.operator_jwt(op))
    sys_jwt = jwts.account_jwt(op, sys_acc, "SYS")
    app_jwt = jwts.account_jwt(op, app, "APP")
    sys_creds = jwts.write_creds(
        tmp_path / "sys.creds", jwts.user_jwt(sys_acc, sys_user, "sys"), sys_user
    )
    creds = jwts.write_creds(tmp_path / "u.creds", jwts.user_jwt(app, user, "u"), user)

    def config(m: Member) -> str:
        return (
            f'operator: "{tmp_path / "op.jwt"}"\n'
            f"system_account: {sys_acc.public_key}\n"
            f'resolver: {{type: full, dir: "{jwt_dir(m)}"}}\n'
            f'resolver_preload: {{ {sys_acc.public_key}: "{sys_jwt}" }}\n'
        )

    cluster = cluster_factory(kinds, extra=config)
    cluster.wait_formed()
    nc = await connect(cluster[1].url, user_credentials=str(sys_creds))
    await nc.request("$SYS.REQ.CLAIMS.UPDATE", app_jwt.encode(), timeout=2)
    for m in cluster:
        stored = jwt_dir(m) / f"{app.public_key}.jwt"
        await wait_until(stored.exists, what=f"the JWT on {m.name}")
        user_nc = await connect(m.url, user_credentials=str(creds))
        await user_nc.close()
    await nc.close()
