"""`trace_verbose` (`-VV`) traces the system account's internal traffic as nats-server traces
its SYSTEM client, differential: both servers run the same file and clients, and the SYSTEM
lines must have the same shapes.

    [TRC] SYSTEM - <<- [SUB $SYS.SERVER.*.STATSZ  6]
    [TRC] SYSTEM - <<- [PUB $SYS.ACCOUNT.A.CONNECT  639]
    [TRC] SYSTEM - <<- MSG_PAYLOAD: ["{\"type\":\"io.nats.server.advisory.v1.client_connect\",..."]
    [TRC] SYSTEM - <<- [PUB _INBOX.x.y  96]          (the answer to a $SYS request)

The subscriptions themselves differ (pynats serves the same requests with fewer wildcards), so
their shape is compared, not their list; the events of a client and the answer to a request
are compared in order. Without `trace_verbose` neither server traces them.
"""

from __future__ import annotations

import itertools
import json
import re
import signal
from pathlib import Path

import pytest
from tests.conftest import connect
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

CONF = """server_name: s1
system_account: SYS
accounts {
  SYS { users: [{user: sys, password: sys}] }
  A { users: [{user: a, password: a}] }
}
"""
SYSTEM = re.compile(r"\[TRC\] SYSTEM - (.*)$")
SUB = re.compile(r"^<<- \[SUB (\S+)  (\d+)\]$")
PUB = re.compile(r"^<<- \[PUB (\S+) (\S*) (\d+)\]$")
PAYLOAD = re.compile(r'^<<- MSG_PAYLOAD: \[(".*")\]$')


def system_lines(srv: RunningServer, start: int = 0) -> list[str]:
    return [m.group(1) for line in srv.log_lines[start:] if (m := SYSTEM.search(line))]


def shapes(lines: list[str]) -> list[str]:
    """Each SYSTEM line as a shape: SUB, PUB <subject> (replies and ids blanked), PAYLOAD."""
    out: list[str] = []
    for line in lines:
        if m := SUB.match(line):
            out.append("SUB")
        elif m := PUB.match(line):
            subject = re.sub(r"_INBOX\.\S+", "_INBOX.<inbox>", m.group(1))
            subject = re.sub(r"\.N[A-Z0-9]{55}\.", ".<id>.", subject)
            out.append(f"PUB {subject}{' <reply>' if m.group(2) else ''}")
        elif PAYLOAD.match(line):
            out.append("PAYLOAD")
        else:
            raise AssertionError(f"not a line nats-server's SYSTEM client traces: {line}")
    return out


def check_sizes(lines: list[str]) -> None:
    """Each PUB is followed by its payload, of the size it says (pynats logs them together;
    nats-server's send loop may interleave other lines)."""
    for pub, payload in itertools.pairwise(lines):
        if (m := PUB.match(pub)) is not None:
            p = PAYLOAD.match(payload)
            assert p is not None and int(m.group(3)) == len(json.loads(p.group(1)).encode())


async def client_traffic(srv: RunningServer) -> list[str]:
    """Shapes of the SYSTEM lines a client's life and a `$SYS` request cause."""
    start = len(srv.log_lines)
    sys_client = await connect(srv.url, user="sys", password="sys", name="s")
    idz = await sys_client.request("$SYS.REQ.SERVER.PING.IDZ", b"", timeout=2)
    assert json.loads(idz.data)["name"] == "s1"
    a = await connect(srv.url, user="a", password="a", name="a")
    await a.flush()
    await a.close()
    await wait_until(
        lambda: any("client_disconnect" in line for line in system_lines(srv, start)),
        what="the disconnect event's trace",
        explain=srv.log_text,
    )
    await sys_client.close()
    traced = shapes(system_lines(srv, start))
    # from the answer (the SYS client's own events came before) to the disconnect event (the
    # account's connection counts may be sent again after it, on a timer)
    end = traced.index("PUB $SYS.ACCOUNT.A.DISCONNECT") + 2
    return traced[traced.index("PUB _INBOX.<inbox>") : end]


def write_conf(tmp_path: Path, name: str, text: str) -> Path:
    conf = tmp_path / f"{name}.conf"
    conf.write_text(text)
    return conf


@pytest.mark.parametrize("flag", ["-VV", "-DVV"])
async def test_system_traffic_is_traced_as_nats_server_traces_it(tmp_path: Path, flag: str) -> None:
    results = {}
    for oracle in (True, False):
        conf = write_conf(tmp_path, str(oracle), CONF)
        srv = start_server(["-c", str(conf), flag], oracle=oracle)
        try:
            startup = shapes(system_lines(srv))
            if not oracle:
                check_sizes(system_lines(srv))
            results[oracle] = (startup.count("SUB") > 10, await client_traffic(srv))
        finally:
            srv.stop()
    assert results[False] == results[True]
    assert results[True][1] == [
        "PUB _INBOX.<inbox>",
        "PAYLOAD",
        "PUB $SYS.SERVER.ACCOUNT.A.CONNS",
        "PAYLOAD",
        "PUB $SYS.ACCOUNT.A.SERVER.CONNS",
        "PAYLOAD",
        "PUB $SYS.ACCOUNT.A.CONNECT",
        "PAYLOAD",
        "PUB $SYS.SERVER.ACCOUNT.A.CONNS",
        "PAYLOAD",
        "PUB $SYS.ACCOUNT.A.SERVER.CONNS",
        "PAYLOAD",
        "PUB $SYS.ACCOUNT.A.DISCONNECT",
        "PAYLOAD",
    ]


async def test_without_trace_verbose_nothing_of_it_is_traced(tmp_path: Path) -> None:
    for oracle in (True, False):
        conf = write_conf(tmp_path, str(oracle), CONF)
        srv = start_server(["-c", str(conf), "-DV"], oracle=oracle)
        try:
            sys_client = await connect(srv.url, user="sys", password="sys")
            await sys_client.request("$SYS.REQ.SERVER.PING.IDZ", b"", timeout=2)
            await sys_client.close()
            assert system_lines(srv) == [], oracle
        finally:
            srv.stop()


async def test_trace_verbose_switched_by_a_reload(tmp_path: Path) -> None:
    results = {}
    for oracle in (True, False):
        conf = write_conf(tmp_path, str(oracle), f"trace: true\n{CONF}")
        srv = start_server(["-c", str(conf)], oracle=oracle)
        try:
            conf.write_text(f"trace_verbose: true\n{CONF}")
            srv.signal(signal.SIGHUP)
            srv.wait_for_log("Reloaded server configuration")
            on = await client_traffic(srv)
            start = len(srv.log_lines)
            conf.write_text(f"trace: true\n{CONF}")
            srv.signal(signal.SIGHUP)
            await wait_until(
                lambda srv=srv, start=start: any(
                    "Reloaded server conf" in line for line in srv.log_lines[start:]
                ),
                what="the second reload",
            )
            start = len(srv.log_lines)
            a = await connect(srv.url, user="a", password="a")
            await a.close()
            results[oracle] = (on, system_lines(srv, start))
        finally:
            srv.stop()
    assert results[False] == results[True]
    assert results[True][0][:2] == ["PUB _INBOX.<inbox>", "PAYLOAD"]
    assert results[True][1] == []
