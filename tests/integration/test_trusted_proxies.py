"""Trusted proxies (ADR-55) compared with the Go server: `proxies { trusted }` puts a nonce in
INFO, a `proxy_sig` in CONNECT must be a trusted proxy's signature of it, and a user with
`proxy_required: true` connects only through one (never when no proxy is trusted)."""

from __future__ import annotations

import base64
import json
import re
import signal
import socket
from pathlib import Path
from typing import Any

import nkeys
import pytest
from tests.support import jwts
from tests.support.servers import start_server
from tests.support.waiting import wait_until_sync

USERS = (
    "authorization { users: [ {user: a, password: b, proxy_required: true}, "
    "{user: c, password: d} ] }\n"
)


def attempt(port: int, user: str, password: str, signer: jwts.Identity | None) -> tuple:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        info = json.loads(s.recv(65536)[5:])
        connect = {"user": user, "pass": password, "verbose": False}
        if signer is not None:
            sig = signer.sign(str(info.get("nonce", "")).encode())
            connect["proxy_sig"] = base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
        s.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        answer = s.recv(65536).split(b"\r\n")[0]
    return "nonce" in info, answer.decode()


def outcomes(oracle: bool, conf: Path, trusted: jwts.Identity, other: jwts.Identity) -> list:
    srv = start_server(["-c", str(conf), "-D"], oracle=oracle)
    try:
        got = [
            attempt(srv.port, user, password, signer)
            for user, password, signer in (
                ("a", "b", None),
                ("a", "b", trusted),
                ("a", "b", other),
                ("c", "d", None),
                ("c", "d", other),
                ("c", "d", trusted),
            )
        ]
        closed = srv.wait_for_log(r"cid:\d+ - Client connection closed: Proxy", timeout=5)
        assert closed
    finally:
        srv.stop()
    reasons = [
        m.group(1)
        for line in srv.log_lines
        if (m := re.search(r"\[DBG\] .* - (proxy .*|Client connection closed: Proxy .*)$", line))
    ]
    return got + reasons


@pytest.mark.parametrize("with_proxies", [True, False], ids=["trusted", "no-proxies"])
def test_proxy_signatures_and_proxy_required_users(tmp_path: Path, with_proxies: bool) -> None:
    trusted = jwts.Identity.new(nkeys.PREFIX_BYTE_SERVER)
    other = jwts.Identity.new(nkeys.PREFIX_BYTE_SERVER)
    conf = tmp_path / "proxies.conf"
    text = USERS
    if with_proxies:
        text += f"proxies {{ trusted: [ {{key: {trusted.public_key}}} ] }}\n"
    conf.write_text(text)
    go = outcomes(True, conf, trusted, other)
    assert outcomes(False, conf, trusted, other) == go
    refused, admitted = "-ERR 'Authorization Violation'", "PONG"
    if with_proxies:
        assert go[:6] == [
            (True, refused),
            (True, admitted),
            (True, refused),
            (True, admitted),
            (True, refused),
            (True, admitted),
        ]
        assert "Client connection closed: Proxy Not Trusted" in go[6:]
    else:
        assert [answer for _nonce, answer in go[:6]] == [refused] * 3 + [admitted] * 3
    assert "proxy connection required" in go[6:]


def monitored(oracle: bool, conf: Path, trusted: jwts.Identity) -> tuple[Any, list[Any]]:
    """/varz's `proxies` and, for a client through the proxy and one without, /connz's
    `proxy`, `account` and `authorized_user`."""
    srv = start_server(["-c", str(conf)], oracle=oracle, http_port=-1)
    try:
        socks = [
            connected(srv.port, "a", "b", "through-proxy", trusted),
            connected(srv.port, "c", "d", "direct", None),
        ]
        varz = srv.http_json("/varz")
        connz = srv.http_json("/connz?auth=1&sort=cid")
        for s in socks:
            s.close()
    finally:
        srv.stop()
    keys = ("name", "authorized_user", "account", "proxy")
    return varz.get("proxies"), [{k: c[k] for k in keys if k in c} for c in connz["connections"]]


def connected(
    port: int, user: str, password: str, name: str, signer: jwts.Identity | None
) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    info = json.loads(s.recv(65536)[5:])
    connect = {"user": user, "pass": password, "verbose": False, "name": name}
    if signer is not None:
        sig = signer.sign(str(info["nonce"]).encode())
        connect["proxy_sig"] = base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
    s.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
    assert s.recv(65536).startswith(b"PONG")
    return s


def test_monitoring_names_the_trusted_proxies_and_the_proxy_of_each_connection(
    tmp_path: Path,
) -> None:
    trusted = jwts.Identity.new(nkeys.PREFIX_BYTE_SERVER)
    conf = tmp_path / "proxies.conf"
    conf.write_text(USERS + f"proxies {{ trusted: [ {{key: {trusted.public_key}}} ] }}\n")
    go = monitored(True, conf, trusted)
    assert monitored(False, conf, trusted) == go
    assert go == (
        {"trusted": [{"key": trusted.public_key}]},
        [
            {"name": "through-proxy", "authorized_user": "a", "proxy": {"key": trusted.public_key}},
            {"name": "direct", "authorized_user": "c"},
        ],
    )


def after_reload(oracle: bool, conf: Path, keep: jwts.Identity, drop: jwts.Identity) -> tuple:
    """Three clients (through the proxy that stays, the one removed, none), a reload that
    removes one proxy: what each client is told, the closed connections, the reload lines."""
    trust = f"proxies {{ trusted: [ {{key: {keep.public_key}}}, {{key: {drop.public_key}}} ] }}\n"
    conf.write_text(USERS + trust)
    srv = start_server(["-c", str(conf)], oracle=oracle, http_port=-1)
    try:
        socks = {
            "kept": connected(srv.port, "c", "d", "kept", keep),
            "dropped": connected(srv.port, "c", "d", "dropped", drop),
            "direct": connected(srv.port, "c", "d", "direct", None),
        }
        conf.write_text(USERS + f"proxies {{ trusted: [ {{key: {keep.public_key}}} ] }}\n")
        srv.signal(signal.SIGHUP)
        srv.wait_for_log(r"\[INF\] Reloaded server configuration")
        closed = wait_until_sync(
            lambda: [
                (c["name"], c["reason"])
                for c in srv.http_json("/connz?state=closed")["connections"]
            ],
            what="a closed connection",
        )
        for name in ("kept", "direct"):  # alive? (the dropped one was told already)
            socks[name].sendall(b"PING\r\n")
        told = {name: first_line(s) for name, s in socks.items()}
    finally:
        srv.stop()
    reloaded = [line.split("[INF] ", 1)[1] for line in srv.log_lines if "[INF] Reloaded" in line][
        :-1
    ]  # the last one names the config's digest
    return told, closed, reloaded


def first_line(s: socket.socket) -> str:
    s.settimeout(5)
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return "(closed)"
        data += chunk
    return data.split(b"\r\n")[0].decode()


def test_a_reload_that_removes_a_proxy_disconnects_its_clients(tmp_path: Path) -> None:
    keep = jwts.Identity.new(nkeys.PREFIX_BYTE_SERVER)
    drop = jwts.Identity.new(nkeys.PREFIX_BYTE_SERVER)
    go = after_reload(True, tmp_path / "go.conf", keep, drop)
    assert after_reload(False, tmp_path / "py.conf", keep, drop) == go
    told, closed, reloaded = go
    assert told == {"kept": "PONG", "dropped": "-ERR 'Authorization Violation'", "direct": "PONG"}
    assert closed == [("dropped", "Proxy Not Trusted")]
    assert reloaded[-1] == f'Reloaded: proxies trusted keys ["{drop.public_key}"] were removed'


LEAF_CONF = (
    "leafnodes {{ port: -1, authorization {{ user: l, password: p, proxy_required: true }} }}\n"
)


def leaf_attempt(port: int, signer: jwts.Identity | None, name: str) -> tuple[socket.socket, str]:
    """A leaf's CONNECT on the leafnode port (with a proxy's signature if `signer`): the
    socket and the first line of the answer (INFO when admitted)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    info = json.loads(s.recv(65536)[5:])
    connect: dict[str, Any] = {"user": "l", "pass": "p", "name": name, "verbose": False}
    if signer is not None:
        sig = signer.sign(str(info["nonce"]).encode())
        connect["proxy_sig"] = base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
    s.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
    return s, first_line(s).split(" ", 1)[0]


def leaf_outcomes(oracle: bool, conf: Path, trusted: jwts.Identity, other: jwts.Identity) -> tuple:
    srv = start_server(["-c", str(conf), "-D"], oracle=oracle, http_port=-1)
    try:
        port = int(
            srv.wait_for_log(r"Listening for leafnode connections on .*:(\d+)").rsplit(":", 1)[1]
        )
        attempts = [
            leaf_attempt(port, None, "direct"),
            leaf_attempt(port, other, "untrusted"),
            leaf_attempt(port, trusted, "through-proxy"),
        ]
        answers = [answer for _s, answer in attempts]
        leafz = srv.http_json("/leafz")["leafs"]
        for s, _answer in attempts:
            s.close()
    finally:
        srv.stop()
    logged = [
        re.sub(r"^.*\[(\w+)\] 127\.0\.0\.1:\d+ - lid:\d+ - ", r"[\1] ", line)
        for line in srv.log_lines
        if re.search(r" - lid:\d+ - (proxy|authentication|Leafnode connection closed)", line)
        and "Remote: through-proxy" not in line  # how the admitted one ends is another story
    ]
    return answers, [(leaf["name"], leaf.get("proxy")) for leaf in leafz], logged


def test_leafnode_authorization_may_require_a_trusted_proxy(tmp_path: Path) -> None:
    trusted = jwts.Identity.new(nkeys.PREFIX_BYTE_SERVER)
    other = jwts.Identity.new(nkeys.PREFIX_BYTE_SERVER)
    conf = tmp_path / "leaf.conf"
    conf.write_text(
        LEAF_CONF.format() + f"proxies {{ trusted: [ {{key: {trusted.public_key}}} ] }}\n"
    )
    go = leaf_outcomes(True, conf, trusted, other)
    assert leaf_outcomes(False, conf, trusted, other) == go
    answers, leafs, logged = go
    assert answers == ["-ERR", "-ERR", "INFO"]
    assert leafs == [("through-proxy", {"key": trusted.public_key})]
    assert logged[:3] == [
        "[DBG] proxy connection required",
        '[ERR] authentication error - User "l"',
        "[INF] Leafnode connection closed: Proxy Required",
    ]
