"""The start-up warning about plaintext passwords: the same configs warn on both servers, and
a config reloaded to plaintext does not warn (nats-server checks once, at start-up)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from tests.support.servers import RunningServer, start_server

WARNING = "[WRN] Plaintext passwords detected, use nkeys or bcrypt"
HASH = "$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG"

CONFIGS = {
    "single_user": "authorization { user: a, password: plain }",
    "single_user_hashed": f'authorization {{ user: a, password: "{HASH}" }}',
    "users": f'authorization {{ users = [ {{user: a, password: "{HASH}"}}, {{user: b, password: p}} ] }}',
    "users_hashed": f'authorization {{ users = [ {{user: a, password: "{HASH}"}} ] }}',
    "user_without_password": "authorization { users = [ {user: a} ] }",
    "account_user": "accounts { A { users = [ {user: a, password: plain} ] } }",
    "token": "authorization { token: secret }",
    "nkey_user": (
        "authorization { users = [ "
        "{nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4} ] }"
    ),
    "cluster_and_leaf_passwords": (
        "cluster { port: -1, authorization { user: r, password: plain } }\n"
        "leafnodes { port: -1, authorization { user: l, password: plain } }"
    ),
}


def warned(server: RunningServer) -> bool:
    return any(line.endswith(WARNING) for line in server.log_lines)


@pytest.mark.parametrize("name", CONFIGS)
def test_the_same_configs_warn_on_both_servers(name: str, tmp_path: Path) -> None:
    conf = tmp_path / "server.conf"
    conf.write_text(CONFIGS[name] + "\n")
    verdicts = []
    for oracle in (True, False):
        server = start_server(["-c", str(conf)], oracle=oracle)
        try:
            verdicts.append(warned(server))
        finally:
            server.stop()
    go, ours = verdicts
    assert ours == go
    assert go == (name in {"single_user", "users", "user_without_password", "account_user"})


def test_a_reload_to_plaintext_does_not_warn(tmp_path: Path) -> None:
    conf = tmp_path / "server.conf"
    conf.write_text(CONFIGS["users_hashed"] + "\n")
    server = start_server(["-c", str(conf)])
    try:
        conf.write_text(CONFIGS["users"] + "\n")
        server.signal(signal.SIGHUP)
        server.wait_for_log(r"Reloaded server configuration")
        assert not warned(server)
    finally:
        server.stop()
