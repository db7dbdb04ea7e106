"""Traced CONNECTs compared with the Go server: what `-V` shows of a CONNECT's credentials.

nats-server hides the value after `pass...`/`auth_token...` keys, `sig` and `nkey` as
`[REDACTED]` (the `jwt` and `user` are shown), for the CONNECT of a client and the inbound
CONNECT of a route, leaf or gateway; the CONNECT a server sends on a link is not traced.
Once a client's CONNECT is taken, its lines carry nats-server's label (what it is, its account
and login), and a refused one's error names its login.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.support.ports import free_port
from tests.support.raw import RawClient
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until_sync

SECRET = "s3cr3t-value"

# Odd ones included: the scan is nats-server's, key names running on, values cut at a comma.
CLIENT_CONNECTS = [
    '{"verbose":false,"user":"u","pass":"%s","auth_token":"%s","sig":"%s","jwt":"JWT",'
    '"nkey":"%s","name":"n","lang":"go","version":"1.2","password":"%s","token":"y"}'
    % ((SECRET,) * 5),
    '{"verbose":false,"PASS":"a","Pass":"b","pass" : "c d","x":"pass","y":"\\"pass\\":\\"zz\\"",'
    '"pass":12,"auth_token":null}',
    '{"verbose":false,"pass":"a\\"b","my_pass":"q","passw":"r","sig":"s","signature":"t"}',
    '{"a":"signature","b":"sigx","c":"xsig","d":"b","e":"sig","f":"q"}',
    '{"nkeyx":"1","xnkey":"2","auth_tokenx":"3","xauth_token":"4","signature":"5"}',
    '{"a":"pass word","b":"v","c":"pass"   ,   "d":"e"}',
    '{sig:"x",nkey:"y",pass:"z",auth_token:"w",_sig:"1",-sig:"2",1sig:"3",.nkey:"4"}',
    '{"pass"="v","sig"\t:\t"x y","nkey"  :  "a b","auth_token"="y"}',
    '{"pass":"a}b","sig":"c}d","nkey":"e,f","auth_token":"g,h","x":["pass",1]}',
    '{"sig":"pass,x":"q","nkey":"pass,y":"r"}',
    '{"auth_token":"pass,x":"q"}',
    '{"pass":"auth_token,x":"q"}',
    '{"a":"pass","b":"auth_token:q","c":"r","d":"x sig:abc"}',
    '{"pass":["x"],"sig":{"a":"b"},"nkey":true,"pass":""}',
]


def traced_connects(oracle: bool, connects: list[str]) -> list[str]:
    """The `<<- [CONNECT ...]` trace of each CONNECT, each on its own connection."""
    srv = start_server(["-V"], oracle=oracle)
    try:
        for i, arg in enumerate(connects, 1):
            c = RawClient(srv.port)
            c.send(b"CONNECT " + arg.encode() + b"\r\n")
            wait_for_lines(srv, r"<<- \[CONNECT ", i)
            c.sock.close()
    finally:
        srv.stop()
    assert SECRET not in srv.log_text()
    return [line.split(" - <<- ", 1)[1] for line in srv.log_lines if "<<- [CONNECT " in line]


def wait_for_lines(srv: RunningServer, pattern: str, count: int, timeout: float = 5.0) -> None:
    rx = re.compile(pattern)

    def enough() -> bool:
        return sum(1 for line in list(srv.log_lines) if rx.search(line)) >= count

    wait_until_sync(enough, timeout, f"{count} lines matching {pattern!r}")


def test_client_connects_are_traced_with_nats_servers_redactions() -> None:
    go = traced_connects(True, CLIENT_CONNECTS)
    assert len(go) == len(CLIENT_CONNECTS)
    assert '"pass":"[REDACTED]"' in go[0] and '"jwt":"JWT"' in go[0]
    assert traced_connects(False, CLIENT_CONNECTS) == go


def link_confs(kind: str, listen_port: int) -> tuple[str, str]:
    """(acceptor, dialler) configs of a route, leaf or gateway link with credentials."""
    auth = f"authorization {{ user: lu, password: {SECRET} }}"
    url = f"nats://lu:{SECRET}@127.0.0.1:{listen_port}"
    common = "trace: true\n"
    if kind == "route":
        cluster = "cluster { name: c, pool_size: 1, listen: 127.0.0.1:%d, " + auth
        accept = cluster % listen_port + " }\n"
        dial = cluster % free_port() + f", routes: [{url}] }}\n"
    elif kind == "leaf":
        accept = f"leafnodes {{ listen: 127.0.0.1:{listen_port}, {auth} }}\n"
        dial = f'leafnodes {{ remotes: [ {{ url: "{url}" }} ] }}\n'
    else:
        accept = f"gateway {{ name: ga, listen: 127.0.0.1:{listen_port}, {auth} }}\n"
        dial = (
            f"gateway {{ name: gb, listen: 127.0.0.1:{free_port()}, {auth}, "
            f'gateways: [ {{ name: ga, url: "{url}" }} ] }}\n'
        )
    return common + "server_name: A\n" + accept, common + "server_name: B\n" + dial


# What differs between two runs, or with what the acceptor told the dialler in its INFO.
NAME_RE = re.compile(r'"(name|server_id|version|compress_mode)":"[^"]*"')
SENT_CONNECT = re.compile(r"->> \[CONNECT ")


def traced_link_connect(
    kind: str, acceptor_oracle: bool, dialler_oracle: bool, tmp: Path
) -> tuple[str, str, str]:
    """The acceptor's trace of the dialler's CONNECT (ids blanked), and both servers' logs."""
    tmp.mkdir()
    port = free_port()
    accept, dial = link_confs(kind, port)
    (tmp / "a.conf").write_text(accept)
    (tmp / "b.conf").write_text(dial)
    a = start_server(["-c", str(tmp / "a.conf")], oracle=acceptor_oracle)
    try:
        b = start_server(["-c", str(tmp / "b.conf")], oracle=dialler_oracle)
        try:
            line = a.wait_for_log(r"<<- \[CONNECT ", timeout=10)
        finally:
            b.stop()
            b.wait_for_log("Server Exiting")
    finally:
        a.stop()
    traced = NAME_RE.sub(r'"\1":""', line.split(" - <<- ", 1)[1])
    return traced, a.log_text(), b.log_text()


@pytest.mark.parametrize("kind", ["route", "leaf", "gateway"])
def test_link_connects_are_traced_redacted_by_the_acceptor_only(kind: str, tmp_path: Path) -> None:
    go, go_a, go_b = traced_link_connect(kind, True, True, tmp_path / "go")
    assert '"pass":"[REDACTED]"' in go
    assert SECRET not in go_a + go_b
    assert not SENT_CONNECT.search(go_b)  # the dialler does not trace what it sends
    # The same (Go) CONNECT traced by pynats as the acceptor.
    ours, py_a, _ = traced_link_connect(kind, False, True, tmp_path / "py-accepts")
    assert ours == go
    assert SECRET not in py_a
    # pynats dialling: its CONNECT (with the password) is not traced, as nats-server's is not.
    _, go_a2, py_b = traced_link_connect(kind, True, False, tmp_path / "py-dials")
    assert SECRET not in go_a2 + py_b
    assert not SENT_CONNECT.search(py_b)


# -- the label of a client's log lines once its CONNECT is taken ---------------------------

LABEL_CONF = """
accounts {
  A { users: [ { user: u, password: p } ] }
  B { users: [ { user: v, password: q } ] }
}
"""
LABEL_CONNECTS = [
    '{"verbose":false,"user":"u","pass":"p","name":"cli","lang":"python3","version":"2.1"}',
    '{"verbose":false,"user":"v","pass":"q"}',
    '{"verbose":false,"user":"u","pass":"p","name":"only \\"quoted\\""}',
    '{"verbose":false,"user":"u","pass":"p","lang":"go"}',
    '{"verbose":false,"user":"u","pass":"p","version":"1.0","name":"n"}',
    # refused: the error names the CONNECT's nkey, else its user, else that it had a token
    '{"verbose":false,"user":"u","pass":"wrong","name":"x"}',
    '{"verbose":false,"nkey":"UABC","user":"u","pass":"wrong","name":"x"}',
    '{"verbose":false,"auth_token":"t","lang":"go"}',
    '{"verbose":false,"name":"x"}',
]
# Without authorization what the CONNECT says still names the client: nkey first, then
# user, then token.
OPEN_CONNECTS = [
    '{"verbose":false}',
    '{"verbose":false,"name":"n","nkey":"UABC","user":"u"}',
    '{"verbose":false,"user":"u","auth_token":"t","lang":"go","version":"1.0"}',
    '{"verbose":false,"auth_token":"t"}',
    '{"verbose":false,"jwt":"x"}',
]
CID_RE = re.compile(r"\[(TRC|DBG|ERR)\] 127\.0\.0\.1:\d+ - cid:(\d+) - (.*)$")


def client_lines(oracle: bool, conf: Path | None, connects: list[str]) -> list[list[str]]:
    """Each client's [TRC]/[DBG]/[ERR] lines (without address and cid) with -DV: its CONNECT,
    SUB, UNSUB (a DELSUB), a refused SUB (-ERR), PING, and its close (DELSUB of the rest)."""
    srv = start_server(["-DV"] + (["-c", str(conf)] if conf else []), oracle=oracle)
    accepted = 0
    try:
        for i, arg in enumerate(connects, 1):
            c = RawClient(srv.port)
            c.send(
                b"CONNECT " + arg.encode() + b"\r\nSUB a 1\r\nUNSUB 1\r\nSUB b 2\r\n"
                b"SUB a..b 3\r\nPING\r\n"
            )
            try:
                c.read_until(b"PONG\r\n")
                accepted += 1
            except EOFError:
                pass  # refused: the server closed it
            c.sock.close()
            wait_for_lines(srv, r"Client connection closed", i)
            wait_for_lines(srv, r"<-> \[DELSUB 2\]", accepted)
    finally:
        srv.stop()
    by_cid: dict[str, list[str]] = {}
    for line in srv.log_lines:
        if m := CID_RE.search(line):
            by_cid.setdefault(m.group(2), []).append(f"[{m.group(1)}] {m.group(3)}")
    return [by_cid[cid] for cid in sorted(by_cid, key=int)]


def test_a_clients_label_after_connect_is_nats_servers(tmp_path: Path) -> None:
    conf = tmp_path / "label.conf"
    conf.write_text(LABEL_CONF)
    go = client_lines(True, conf, LABEL_CONNECTS)
    assert '[TRC] "v2.1:python3:cli" - "A/user:u" - <<- [SUB a 1]' in go[0]
    assert client_lines(False, conf, LABEL_CONNECTS) == go


def test_without_authorization_the_connect_still_names_the_client() -> None:
    go = client_lines(True, None, OPEN_CONNECTS)
    assert '[TRC] "n" - "$G/nkey:UABC" - <<- [SUB a 1]' in go[1]
    assert client_lines(False, None, OPEN_CONNECTS) == go
