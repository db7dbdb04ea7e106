"""A config account's `limits { max_connections, max_subscriptions, max_payload, max_leafnodes }`,
differential: the Go nats-server and pynats load the same file, the same clients and leaf
connections do the same things, and what they get back, the log and /connz must match.

What nats-server 2.15.1 does (parseAccountLimits, registerWithAccount, applyAccountLimits):
- A client over the account's connections is refused after CONNECT: `-ERR 'maximum account
  active connections exceeded'`, the error logged twice, closed as `Maximum Account
  Connections Exceeded`; a leaf connection over `max_leafnodes` the same way, with the
  `Leafnode connection created` and `closed` lines around the first error.
- `max_subscriptions` is each client's, as low as the server's `max_subs` (and a user JWT's):
  `-ERR 'maximum subscriptions exceeded'`, the connection stays; logged at most every 2 s per
  account. With 0 the client is told at once and closed (`Maximum Subscriptions Exceeded`).
- `max_payload` lowers the `max_payload` of the INFO after CONNECT (0 included); a bigger
  message is `-ERR 'Maximum Payload Violation'`, logged `maximum payload exceeded: <n> vs <max>`.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from tests.support.raw import RawClient, connect_line
from tests.support.servers import RunningServer, start_server

CONFIG = """
max_subs: 3
leafnodes { listen: "127.0.0.1:-1" }
accounts {
  A { users [{user: a, password: a}], limits { max_conn: 1, max_payload: 100 } }
  S { users [{user: s, password: s}], limits { max_subscriptions: 2 } }
  Q { users [{user: q, password: q}], limits { MAX_SUBS: 5, max_connections: -1 } }
  P { users [{user: p, password: p}], limits { max_pay: 0, max_subs: 0 } }
  L { users [{user: l, password: l}], limits { max_leafs: 1 } }
  B { users [{user: b, password: b}] }
}
"""

LEAF_PORT = re.compile(r"Listening for leafnode connections on .*:(\d+)")


def without_pings(data: bytes) -> bytes:
    """The Go server's first PING to a client may come at any point: leave it out."""
    return data.replace(b"PING\r\n", b"")


def login(port: int, user: str) -> tuple[RawClient, dict[str, Any]]:
    raw = RawClient(port)
    return raw, raw.handshake(user=user, **{"pass": user})


def refused(port: int, user: str, **fields: Any) -> bytes:
    with RawClient(port) as raw:
        raw.send(connect_line(user=user, **{"pass": user}, **fields) + b"PING\r\n")
        return without_pings(raw.read_all_until_closed())


def subscribe(raw: RawClient, count: int) -> bytes:
    raw.send(b"".join(b"SUB s%d %d\r\n" % (i, i) for i in range(count)))
    return without_pings(raw.ping_pong())


def leaf(port: int) -> RawClient:
    raw = RawClient(port)
    raw.send(
        b'CONNECT {"user":"l","pass":"l","name":"leafy","headers":true,"compression":"off"}\r\nPING\r\n'
    )
    return raw


def scenario(srv: RunningServer) -> dict[str, Any]:
    port = srv.port
    out: dict[str, Any] = {}
    a1, info = login(port, "a")
    out["a_max_payload"] = info["max_payload"]
    out["a_second"] = refused(port, "a")
    _, info = login(port, "b")
    out["b_max_payload"] = info["max_payload"]
    out["a_subs"] = subscribe(a1, 4)  # the server's max_subs: 3
    a1.send(b"PUB x 101\r\n" + b"x" * 101 + b"\r\n")
    out["a_big"] = without_pings(a1.read_all_until_closed())
    # S: two subscriptions each, not two in all; the second refusal is not logged (2 s)
    s1, _ = login(port, "s")
    s2, _ = login(port, "s")
    out["s_subs"] = [subscribe(s1, 3), subscribe(s2, 3)]
    q1, _ = login(port, "q")
    out["q_subs"] = subscribe(q1, 4)  # the server's 3 is lower than the account's 5
    with RawClient(port) as p:
        p.send(connect_line(user="p", **{"pass": "p"}) + b"PING\r\n")
        out["p"] = without_pings(p.read_all_until_closed())
    # the -ERR may come before or after the PONG and the INFO (nats-server sends it aside)
    out["p"] = sorted(
        re.sub(rb"INFO \{.*\} ?", lambda m: _info_payload(m.group(0)), line)
        for line in out["p"].split(b"\r\n")
        if line
    )
    # leaf connections of L: the second is over max_leafnodes
    leaf_port = int(LEAF_PORT.search(srv.log_text()).group(1))  # type: ignore[union-attr]
    first = leaf(leaf_port)
    srv.wait_for_log(r"Leafnode connection created")
    second = leaf(leaf_port)
    out["leaf_second"] = second.read_all_until_closed()
    second.close()
    out["leaf_first_open"] = not first.is_closed(timeout=0.3)
    first.close()
    for raw in (s1, s2, q1):
        raw.close()
    # why the connections the limits closed were closed (the server closes some on its own
    # schedule: wait for them)
    expected = {
        "Maximum Account Connections Exceeded",
        "Maximum Message Payload Exceeded",
        "Maximum Subscriptions Exceeded",
    }
    deadline = time.monotonic() + 5
    while True:
        closed = srv.http_json("/connz?state=closed")["connections"]
        out["closed"] = {c["reason"] for c in closed} - {"Client Closed"}
        if out["closed"] >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    return out


def _info_payload(info: bytes) -> bytes:
    return b"INFO max_payload=%d" % json.loads(info[5:])["max_payload"]


def log_lines(srv: RunningServer) -> list[str]:
    """The errors and leaf lines, without pid, time, address and connection id."""
    lines = []
    for line in srv.log_lines:
        if "[ERR]" in line or "Leafnode connection" in line:
            line = re.sub(r"^\[\d+\] \S+ \S+ ", "", line)
            lines.append(re.sub(r"\S+:\d+ - (cid|lid):\d+", "<conn>", line))
    return lines


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("account-limits")
    conf = tmp / "limits.conf"
    conf.write_text(CONFIG)
    out: dict[str, dict[str, Any]] = {}
    for kind in ("go", "ours"):
        srv = start_server(["-c", str(conf)], oracle=kind == "go", http_port=-1)
        try:
            out[kind] = scenario(srv)
        finally:
            srv.stop()
        out[kind]["log"] = log_lines(srv)
        out[kind]["notes"] = [line for line in srv.log_lines if "not supported" in line]
    return out


def test_clients_get_what_nats_server_gives(results: dict[str, dict[str, Any]]) -> None:
    go, ours = results["go"], results["ours"]
    for key in go:
        if key not in ("log", "notes"):
            assert ours[key] == go[key], key
    assert go["a_max_payload"] == 100
    assert go["b_max_payload"] == 1048576
    assert go["a_second"] == b"-ERR 'maximum account active connections exceeded'\r\n"
    assert go["a_big"] == b"-ERR 'Maximum Payload Violation'\r\n"
    assert go["s_subs"] == [b"-ERR 'maximum subscriptions exceeded'\r\n"] * 2
    assert go["a_subs"] == b"-ERR 'maximum subscriptions exceeded'\r\n"
    assert go["p"] == [b"-ERR 'maximum subscriptions exceeded'", b"INFO max_payload=0", b"PONG"]
    assert go["leaf_second"] == b"-ERR 'maximum account active connections exceeded'\r\n"
    assert go["leaf_first_open"]
    assert "Maximum Subscriptions Exceeded" in go["closed"]  # P: max_subs 0


def test_the_log_is_nats_servers(results: dict[str, dict[str, Any]]) -> None:
    go, ours = results["go"], results["ours"]
    assert ours["log"] == go["log"]
    assert '[ERR] <conn> - "A/user:a" - maximum payload exceeded: 101 vs 100' in go["log"]
    assert ours["notes"] == []
