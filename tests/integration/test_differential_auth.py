"""Authentication and permissions: the same config file on pynats and the Go server must give
the same replies to the same protocol scenarios."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.differential import run_scenario
from tests.support.servers import RunningServer, start_server

CONFIG = """
max_sub_tokens: 4
authorization {
  users: [
    {user: a, password: a, permissions: {
        publish: {allow: ["foo.>", "_INBOX.>"], deny: ["foo.secret"]},
        subscribe: {allow: ["bar.*", "q.> workers", "_INBOX.>", "foo.>"]}}}
    {user: b, password: b, permissions: {publish: ["x"], subscribe: {deny: ["y", "foo.secret"]},
        allow_responses: true}}
    {user: c, password: "$2b$04$N28UHyuSSkA1Ag6pWFyXtOXN/3DsXuwb/5piaJ5FrEbAygyQ8dkKe"}
    {user: d, password: d, permissions: {publish: {deny: ">"}, subscribe: {deny: "foo.secret"}}}
  ]
}
"""


def connect_as(user: str, password: str, **extra: object) -> bytes:
    import json

    opts = {
        "verbose": False,
        "pedantic": False,
        "protocol": 1,
        "headers": True,
        "user": user,
        "pass": password,
    }
    opts.update(extra)
    return b"CONNECT " + json.dumps(opts).encode() + b"\r\n"


A = connect_as("a", "a")
B = connect_as("b", "b")
D = connect_as("d", "d")

SCENARIOS: dict[str, list[bytes]] = {
    "publish_allowed_and_denied": [
        A,
        b"SUB foo.> 1\r\n",
        b"PUB foo.x 1\r\nx\r\nPUB foo.secret 1\r\nx\r\nPUB other 1\r\nx\r\n",
    ],
    "subscribe_allowed_and_denied": [
        A,
        b"SUB bar.x 1\r\nSUB baz 2\r\nSUB q.a workers 3\r\nSUB q.a 4\r\nSUB q.a other 5\r\n",
    ],
    "verbose_with_violations": [
        connect_as("a", "a", verbose=True),
        b"PUB other 1\r\nx\r\nSUB baz 2\r\n",
    ],
    "plain_list_is_allow": [B, b"SUB y 1\r\nSUB z 2\r\nPUB x 1\r\nx\r\nPUB zz 1\r\nx\r\n"],
    "sys_queue_reserved": [A, b"SUB foo.> _sys_ 1\r\n"],
    "bcrypt_password_ok": [connect_as("c", "secret")],
    "bcrypt_password_bad": [connect_as("c", "nope")],
    "unknown_user": [connect_as("zz", "a")],
    "no_credentials": [b'CONNECT {"verbose":false,"pedantic":false}\r\n'],
    "wildcard_sub_filters_denied_subject": [D, b"SUB foo.* 1\r\n"],
    "reply_permission_without_request": [B, b"PUB _INBOX.abc 1\r\nx\r\n"],
    "too_many_subscription_tokens": [
        A,
        b"SUB foo.a.b.c 1\r\nSUB foo.a.b.c.d 2\r\nSUB foo.a.b.c.d q 3\r\n",
    ],
}


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningServer, RunningServer]]:
    path = Path(tmp_path_factory.mktemp("auth")) / "auth.conf"
    path.write_text(CONFIG)
    ours = start_server(["-c", str(path)])
    go = start_server(["-c", str(path)], oracle=True)
    yield ours, go
    ours.stop()
    go.stop()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_same_replies_as_nats_server(
    name: str, servers: tuple[RunningServer, RunningServer]
) -> None:
    ours, go = servers
    steps = SCENARIOS[name]
    assert run_scenario(ours.port, steps) == run_scenario(go.port, steps)
