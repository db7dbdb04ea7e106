"""The trace of a route's and a leaf node's traffic compared with the Go server's (`-DV`).

Two servers linked, a subscriber on one (`SUB foo`, a queue `SUB bar q`) and a publisher on
the other (a message with a reply, one with headers, one to the queue group), then the
subscription dropped: both servers trace the link's lines in (`<<- [RS+ $G foo]`,
`<<- [RMSG $G foo r 5]` and its `MSG_PAYLOAD`) and out (`->> [RS+ ...]`, `->> [RMSG ...]`),
named by the link (`127.0.0.1:6222 - rid:5 - `). Compared: those lines about the test's
subjects, without times, addresses and ids, and that PING/PONG are traced both ways.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.support.ports import free_port
from tests.support.raw import RawClient
from tests.support.servers import RunningServer, start_server

LINK_LINE = re.compile(r"\[TRC\] 127\.0\.0\.1:\d+ - (rid|lid):\d+ - (<<-|->>) (.*)$")
OURS = re.compile(r"\b(foo|bar)\b|\[\"(hello|xy|NATS/1\.0\\r\\n\\r\\nhi)\"\]")


def confs(kind: str) -> tuple[str, str]:
    """(subscriber's server, publisher's server) configs, the second dialling the first."""
    port = free_port()
    if kind == "route":
        block = "cluster { name: c, pool_size: 1, listen: 127.0.0.1:%d%s }\n"
        return (
            "server_name: A\n" + block % (port, ""),
            "server_name: B\n" + block % (free_port(), f", routes: [nats://127.0.0.1:{port}]"),
        )
    return (
        f"server_name: A\nleafnodes {{ listen: 127.0.0.1:{port} }}\n",
        f'server_name: B\nleafnodes {{ remotes: [ {{ url: "nats://127.0.0.1:{port}" }} ] }}\n',
    )


def link_trace(srv: RunningServer) -> tuple[list[str], set[str]]:
    """(the link lines about foo/bar and their payloads in order, the control lines seen)."""
    ours, control = [], set()
    for line in list(srv.log_lines):
        if m := LINK_LINE.search(line):
            text = f"{m.group(2)} {m.group(3)}"
            if OURS.search(m.group(3)):
                ours.append(text)
            elif m.group(3) in ("[PING]", "[PONG]"):
                control.add(text)
    return ours, control


def run(kind: str, oracle: bool, tmp: Path) -> tuple[list[str], set[str], list[str], set[str]]:
    tmp.mkdir()
    a_conf, b_conf = confs(kind)
    (tmp / "a.conf").write_text(a_conf)
    (tmp / "b.conf").write_text(b_conf)
    verb = "RS" if kind == "route" else "LS"
    acc = "$G " if kind == "route" else ""
    a = start_server(["-DV", "-c", str(tmp / "a.conf")], oracle=oracle)
    try:
        b = start_server(["-DV", "-c", str(tmp / "b.conf")], oracle=oracle)
        try:
            # the link up and its first burst of interest sent before the subscriptions:
            a.wait_for_log(r"(Route|Leafnode) connection created", timeout=10)
            b.wait_for_log(r"(Route|Leafnode) connection created", timeout=10)
            # "created" is logged before the burst goes out, so wait until the other side
            # has seen a subscription made now (in the burst or after it, untraced either
            # way here): later ones travel on their own, traced
            barrier = RawClient(a.port)
            barrier.send(b'CONNECT {"verbose":false}\r\nSUB sync 9\r\nPING\r\n')
            barrier.read_until(b"PONG\r\n")
            b.wait_for_log(re.escape(f"<<- [{verb}+ {acc}sync]"), timeout=10)
            sub = RawClient(a.port)
            sub.send(
                b'CONNECT {"verbose":false,"headers":true}\r\nSUB foo 1\r\nSUB bar q 2\r\nPING\r\n'
            )
            sub.read_until(b"PONG\r\n")
            b.wait_for_log(re.escape(f"<<- [{verb}+ {acc}bar q 1]"), timeout=10)
            pub = RawClient(b.port)
            pub.send(
                b'CONNECT {"verbose":false,"headers":true}\r\nPUB foo r 5\r\nhello\r\n'
                b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\nPUB bar 2\r\nxy\r\nPING\r\n"
            )
            pub.read_until(b"PONG\r\n")
            sub.read_until(b"xy\r\n")
            a.wait_for_log(re.escape('<<- MSG_PAYLOAD: ["xy"]'), timeout=10)
            sub.send(b"UNSUB 1\r\nPING\r\n")
            sub.read_until(b"PONG\r\n")
            b.wait_for_log(re.escape(f"<<- [{verb}- {acc}foo]"), timeout=10)
            # keepalives: each side pings the other once the link is up
            for srv in (a, b):
                srv.wait_for_log(r"(rid|lid):\d+ - ->> \[PING\]", timeout=10)
                srv.wait_for_log(r"(rid|lid):\d+ - <<- \[PING\]", timeout=10)
            sub.sock.close()  # its queue subscription goes with it
            b.wait_for_log(re.escape(f"<<- [{verb}- {acc}bar q]"), timeout=10)
            pub.sock.close()
            barrier.sock.close()
        finally:
            b.stop()
    finally:
        a.stop()
    return (*link_trace(a), *link_trace(b))


@pytest.mark.parametrize("kind", ["route", "leaf"])
def test_link_traffic_is_traced_as_nats_server_traces_it(kind: str, tmp_path: Path) -> None:
    go = run(kind, True, tmp_path / "go")
    m = "RMSG $G " if kind == "route" else "LMSG "
    acc = "$G " if kind == "route" else ""
    verb = "RS" if kind == "route" else "LS"
    assert go[0] == [
        f"->> [{verb}+ {acc}foo]",
        f"->> [{verb}+ {acc}bar q 1]",
        f"<<- [{m}foo r 5]",
        '<<- MSG_PAYLOAD: ["hello"]',
        f"<<- [HMSG {acc}foo 12 14]",
        '<<- MSG_PAYLOAD: ["NATS/1.0\\r\\n\\r\\nhi"]',
        f"<<- [{m}bar | q 2]",
        '<<- MSG_PAYLOAD: ["xy"]',
        f"->> [{verb}- {acc}foo]",
        f"->> [{verb}- {acc}bar q]",
    ]
    flipped = {"->>": "<<-", "<<-": "->>"}
    assert go[2] == [flipped[line[:3]] + line[3:] for line in go[0]]
    ours = run(kind, False, tmp_path / "py")
    assert ours[0] == go[0]
    assert ours[2] == go[2]
    for traced in (ours[1], ours[3]):
        assert traced == go[1] == {"->> [PING]", "<<- [PING]", "->> [PONG]", "<<- [PONG]"}
