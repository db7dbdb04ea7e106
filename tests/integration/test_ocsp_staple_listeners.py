"""OCSP stapling (`ocsp {}`) on the listeners other than the client port: websocket and MQTT
(nats-server's "Client" certificates), routes ("Router") and gateways ("Gateway"), and the
dialling side of routes and gateways, which checks the peer's staple; leaf nodes are not
stapled. The same configurations run on pynats and on nats-server 2.15.1.

The PKI and the OCSP responder are real (tests/support/staple_pki.py). Staples are read with
pyOpenSSL's client (`request_ocsp`); routes and gateways are formed, or refused, between
real servers, pynats and Go mixed."""

from __future__ import annotations

import re
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.ports import free_port
from tests.support.servers import RunningServer, oracle_server_path, pynats_server_command
from tests.support.servers import start_server as _start_server
from tests.support.staple_pki import (
    IssuedCert,
    StaplePKI,
    StapleResponder,
    good_for,
    running_pki,
    staple_handshake,
)
from tests.support.waiting import wait_until_sync


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StaplePKI, StapleResponder]]:
    yield from running_pki(Path(tmp_path_factory.mktemp("staple-listeners")))


@pytest.fixture(scope="module")
def certs(pki: tuple[StaplePKI, StapleResponder]) -> dict[str, IssuedCert]:
    authority, responder = pki
    issued = {
        "good": authority.issue("good"),
        "ws": authority.issue("ws-must", must_staple=True),
        "mqtt": authority.issue("mqtt"),
        "route": authority.issue("route"),
        "revoked-must": authority.issue("revoked-must", must_staple=True),
        "client": authority.issue("client"),
    }
    for name, cert in issued.items():
        responder.statuses[cert.cert.serial_number] = "revoked" if "revoked" in name else "good"
    return issued


@pytest.fixture(params=["pynats", "go"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def tls_block(cert: IssuedCert, ca_file: str, extra: str = "") -> str:
    return (
        f'tls {{ cert_file: "{cert.cert_file}", key_file: "{cert.key_file}", '
        f'ca_file: "{ca_file}", timeout: 3 {extra}}}'
    )


def launch(kind: str, tmp_path: Path, name: str, text: str) -> RunningServer:
    conf = tmp_path / f"{name}.conf"
    conf.write_text(text)
    return _start_server(["-c", str(conf)], oracle=kind == "go", http_port=-1)


def refused_start(kind: str, tmp_path: Path, text: str) -> tuple[int, str]:
    conf = tmp_path / "refused.conf"
    conf.write_text(text)
    cmd = [oracle_server_path()] if kind == "go" else pynats_server_command()
    done = subprocess.run(
        [*cmd, "-a", "127.0.0.1", "-p", "-1", "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stderr.strip()


def staple_of(port: int, *, info_first: bool = False, client: IssuedCert | None = None) -> bytes:
    """The OCSP response a listener staples when asked for one (b"": none)."""
    return staple_handshake(port, info_first=info_first, client=client).staple


def enabled_kinds(srv: RunningServer) -> list[str]:
    return re.findall(r"OCSP Stapling enabled for (\w+) connections", srv.log_text())


def line_index(srv: RunningServer, text: str) -> int:
    return next(i for i, line in enumerate(srv.log_lines) if text in line)


def tls_socket(port: int, ca_file: str) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=ca_file)
    return ctx.wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="127.0.0.1"
    )


def read_until(sock: ssl.SSLSocket, marker: bytes) -> bytes:
    seen = b""
    while marker not in seen:
        chunk = sock.recv(65536)
        assert chunk, f"closed before {marker!r}: {seen!r}"
        seen += chunk
    return seen


# -- websocket and MQTT ------------------------------------------------------------------------


def test_websocket_and_mqtt_staple_as_client_certificates(
    kind: str, pki: tuple[StaplePKI, StapleResponder], certs: dict[str, IssuedCert], tmp_path: Path
) -> None:
    """Three "Client" staplers (client port, websocket, MQTT), each stapling its own
    certificate while its lines name the client port's file; the leaf node port staples
    nothing; websocket and MQTT traffic goes through the stapling layer."""
    authority, _ = pki
    ca = authority.ca_file
    ws_port, mqtt_port, leaf_port = free_port(), free_port(), free_port()
    srv = launch(
        kind,
        tmp_path,
        "clients",
        f"server_name: S\nocsp {{ mode: always }}\n{tls_block(certs['good'], ca)}\n"
        f'jetstream {{ store_dir: "{tmp_path / "js"}" }}\n'
        f"websocket {{ port: {ws_port}, {tls_block(certs['ws'], ca)} }}\n"
        f"mqtt {{ port: {mqtt_port}, {tls_block(certs['mqtt'], ca)} }}\n"
        f"leafnodes {{ port: {leaf_port}, {tls_block(certs['good'], ca)} }}\n",
    )
    try:
        assert enabled_kinds(srv) == ["Client", "Client", "Client"]
        first_listener = min(
            line_index(srv, f"Listening for {what}")
            for what in ("websocket", "MQTT", "leafnode", "client")
        )
        assert line_index(srv, "OCSP Stapling enabled") < first_listener
        wait_until_sync(
            lambda: srv.log_text().count("Found OCSP status for Client certificate") == 3,
            what="three Found lines",
        )
        found = [line for line in srv.log_lines if "Found OCSP status" in line]
        assert all(f"certificate at '{certs['good'].cert_file}': good" in f for f in found)

        assert good_for(staple_of(srv.port, info_first=True), certs["good"])
        assert good_for(staple_of(ws_port), certs["ws"])
        assert good_for(staple_of(mqtt_port), certs["mqtt"])
        assert staple_of(leaf_port, info_first=True) == b""

        # a websocket upgrade and the INFO frame through the layer
        with tls_socket(ws_port, ca) as ws:
            ws.sendall(
                b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            answer = read_until(ws, b"INFO")
            assert answer.startswith(b"HTTP/1.1 101")
        # an MQTT CONNECT answered by CONNACK (accepted)
        with tls_socket(mqtt_port, ca) as mq:
            mq.sendall(b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01c")
            assert read_until(mq, b"\x20\x02")[:4] == b"\x20\x02\x00\x00"
    finally:
        srv.stop()


def test_websocket_stapling_needs_the_client_port_issuer(
    kind: str, pki: tuple[StaplePKI, StapleResponder], certs: dict[str, IssuedCert], tmp_path: Path
) -> None:
    """nats-server looks for a websocket (or MQTT) certificate's issuer in the client port's
    `ca_file`, not the block's own: without client TLS the server does not start."""
    authority, _ = pki
    text = (
        "ocsp { mode: always }\n"
        f"websocket {{ port: {free_port()}, {tls_block(certs['ws'], authority.ca_file)} }}\n"
    )
    assert refused_start(kind, tmp_path, text) == (1, "nats-server: no issuers found")


# -- routes ------------------------------------------------------------------------------------


def route_conf(name: str, port: int, tls: str, ocsp: str, routes: list[int]) -> str:
    urls = ", ".join(f'"nats://127.0.0.1:{p}"' for p in routes)
    return (
        f"server_name: {name}\n{ocsp}\n"
        f"cluster {{ name: C, port: {port}, {tls}, routes: [{urls}] }}\n"
    )


def routes_of(srv: RunningServer) -> int:
    return int(srv.http_json("/routez")["num_routes"])


def test_route_listener_staples_the_cluster_certificate(
    kind: str, pki: tuple[StaplePKI, StapleResponder], certs: dict[str, IssuedCert], tmp_path: Path
) -> None:
    authority, _ = pki
    port = free_port()
    tls = tls_block(certs["route"], authority.ca_file)
    srv = launch(kind, tmp_path, "r", route_conf("R", port, tls, "ocsp { mode: always }", []))
    try:
        assert enabled_kinds(srv) == ["Router"]
        found = srv.wait_for_log("Found OCSP status for Router certificate")
        assert f"at '{certs['route'].cert_file}': good" in found
        # Go opens the route listener on its own, after it reports ready for clients
        srv.wait_for_log("Listening for route connections")
        assert good_for(staple_of(port, client=certs["client"]), certs["route"])
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("peer_ocsp", "peer_cert", "refusal"),
    [
        ("ocsp: false", "route", "Router peer missing OCSP Staple"),
        (
            "ocsp { mode: auto }",
            "revoked-must",
            "bad status for OCSP Staple from Router peer: revoked",
        ),
    ],
    ids=["missing", "revoked"],
)
def test_route_dialler_refuses_a_peer_without_a_good_staple(
    kind: str,
    peer_ocsp: str,
    peer_cert: str,
    refusal: str,
    pki: tuple[StaplePKI, StapleResponder],
    certs: dict[str, IssuedCert],
    tmp_path: Path,
) -> None:
    """A stapling server dialling a route checks the peer's staple inside the handshake:
    none (the peer does not staple) or a revoked one (a Must-Staple certificate in `auto`,
    which is stapled whatever its status) fails the handshake, logged as nats-server logs
    it, and the route is dialled again. The peer is the other implementation."""
    authority, _ = pki
    ca = authority.ca_file
    peer_kind = "go" if kind == "pynats" else "pynats"
    peer_port, port = free_port(), free_port()
    peer = launch(
        peer_kind,
        tmp_path,
        "peer",
        route_conf("P", peer_port, tls_block(certs[peer_cert], ca), peer_ocsp, []),
    )
    try:
        dialler = launch(
            kind,
            tmp_path,
            "dialler",
            route_conf(
                "D", port, tls_block(certs["route"], ca), "ocsp { mode: always }", [peer_port]
            ),
        )
        try:
            line = dialler.wait_for_log("TLS route handshake error", timeout=10)
            assert re.search(
                rf"\[ERR\] 127\.0\.0\.1:{peer_port} - rid:\d+ - TLS route handshake error: "
                f"{re.escape(refusal)}$",
                line,
            ), line
            dialler.wait_for_log(
                rf"127\.0\.0\.1:{peer_port} - rid:\d+ - Router connection closed: "
                "TLS Handshake Failure"
            )
            # and again: the dialler keeps trying
            wait_until_sync(
                lambda: dialler.log_text().count("TLS route handshake error") >= 2,
                timeout=10,
                what="a second attempt",
            )
            assert routes_of(dialler) == 0
            assert routes_of(peer) == 0
        finally:
            dialler.stop()
    finally:
        peer.stop()


@pytest.mark.parametrize(
    ("dialler_kind", "listener_kind"),
    [("go", "pynats"), ("pynats", "pynats"), ("go", "go")],
)
def test_stapled_routes_form(
    dialler_kind: str,
    listener_kind: str,
    pki: tuple[StaplePKI, StapleResponder],
    certs: dict[str, IssuedCert],
    tmp_path: Path,
) -> None:
    """Both servers staple their cluster certificate: the dialler finds the listener's
    staple good and the route forms (Go dialling pynats checks pynats' staple)."""
    authority, _ = pki
    tls = tls_block(certs["route"], authority.ca_file)
    listen_port, dial_port = free_port(), free_port()
    listener = launch(
        listener_kind, tmp_path, "l", route_conf("L", listen_port, tls, "ocsp { mode: always }", [])
    )
    try:
        dialler = launch(
            dialler_kind,
            tmp_path,
            "d",
            route_conf("D", dial_port, tls, "ocsp { mode: always }", [listen_port]),
        )
        try:
            wait_until_sync(
                lambda: routes_of(dialler) >= 1 and routes_of(listener) >= 1,
                timeout=10,
                what="the route",
            )
            assert "handshake error" not in dialler.log_text()
            assert "handshake error" not in listener.log_text()
        finally:
            dialler.stop()
    finally:
        listener.stop()


def test_go_refuses_a_pynats_route_without_its_client_staple(
    pki: tuple[StaplePKI, StapleResponder], certs: dict[str, IssuedCert], tmp_path: Path
) -> None:
    """A difference that cannot be helped: nats-server's route listener wants the dialling
    server's staple too (TLS 1.3 lets a client staple its certificate), which OpenSSL
    cannot send, so a stapling pynats dialling a stapling nats-server is refused there."""
    authority, _ = pki
    tls = tls_block(certs["route"], authority.ca_file)
    listen_port, dial_port = free_port(), free_port()
    listener = launch(
        "go", tmp_path, "l", route_conf("L", listen_port, tls, "ocsp { mode: always }", [])
    )
    try:
        dialler = launch(
            "pynats",
            tmp_path,
            "d",
            route_conf("D", dial_port, tls, "ocsp { mode: always }", [listen_port]),
        )
        try:
            listener.wait_for_log(
                "TLS route handshake error: Router peer missing OCSP Staple", timeout=10
            )
            assert routes_of(listener) == 0
        finally:
            dialler.stop()
    finally:
        listener.stop()


# -- gateways ----------------------------------------------------------------------------------


def gateway_conf(name: str, port: int, tls: str, ocsp: str, remote: tuple[str, int] | None) -> str:
    gateways = ""
    if remote is not None:
        gateways = f', gateways: [{{ name: {remote[0]}, url: "nats://127.0.0.1:{remote[1]}" }}]'
    return (
        f"server_name: {name}\n{ocsp}\ngateway {{ name: {name}, port: {port}, {tls}{gateways} }}\n"
    )


def test_gateway_listener_staples_and_dialler_refuses_a_missing_staple(
    kind: str, pki: tuple[StaplePKI, StapleResponder], certs: dict[str, IssuedCert], tmp_path: Path
) -> None:
    """The gateway listener staples its certificate ("Gateway"); dialling a gateway that
    staples nothing (the other implementation) fails the handshake as nats-server's
    dialling side fails it."""
    authority, _ = pki
    tls = tls_block(certs["route"], authority.ca_file)
    peer_kind = "go" if kind == "pynats" else "pynats"
    peer_port, port = free_port(), free_port()
    peer = launch(peer_kind, tmp_path, "b", gateway_conf("B", peer_port, tls, "ocsp: false", None))
    try:
        srv = launch(
            kind,
            tmp_path,
            "a",
            gateway_conf("A", port, tls, "ocsp { mode: always }", ("B", peer_port)),
        )
        try:
            assert enabled_kinds(srv) == ["Gateway"]
            assert good_for(staple_of(port, client=certs["client"]), certs["route"])
            # (nats-server also refuses the staple reader above: it sent no staple of its own)
            line = srv.wait_for_log(
                rf"127\.0\.0\.1:{peer_port} - gid:\d+ - TLS gateway handshake error", timeout=10
            )
            assert line.endswith("TLS gateway handshake error: Gateway peer missing OCSP Staple")
            m = re.search(rf"\[ERR\] (127\.0\.0\.1:{peer_port} - gid:\d+) - TLS gateway", line)
            assert m is not None, line
            prefix = m.group(1)
            lines = srv.log_text()
            assert f'{prefix} - Creating outbound gateway connection to "B"' in lines
            srv.wait_for_log(
                re.escape(f"{prefix} - Gateway connection closed: TLS Handshake Failure")
            )
        finally:
            srv.stop()
    finally:
        peer.stop()


def gateways_of(srv: RunningServer) -> tuple[set[str], set[str]]:
    gatewayz = srv.http_json("/gatewayz")
    return set(gatewayz.get("outbound_gateways") or {}), set(gatewayz.get("inbound_gateways") or {})


@pytest.mark.parametrize("other", ["pynats", "go"])
def test_stapled_gateways_between_pynats_and_another_server(
    other: str,
    pki: tuple[StaplePKI, StapleResponder],
    certs: dict[str, IssuedCert],
    tmp_path: Path,
) -> None:
    """Two stapling gateways dialling each other. Between pynats servers both directions
    form (each dialler finds the other's staple good). With nats-server only its outbound
    connection forms: it checks pynats' staple and finds it good, while it refuses the
    connection pynats dials, which carries no client staple (OpenSSL cannot send one)."""
    authority, _ = pki
    tls = tls_block(certs["route"], authority.ca_file)
    port_a, port_b = free_port(), free_port()
    always = "ocsp { mode: always }"
    a = launch("pynats", tmp_path, "a", gateway_conf("A", port_a, tls, always, ("B", port_b)))
    try:
        b = launch(other, tmp_path, "b", gateway_conf("B", port_b, tls, always, ("A", port_a)))
        try:
            if other == "pynats":
                wait_until_sync(
                    lambda: gateways_of(a) == ({"B"}, {"B"}) and gateways_of(b) == ({"A"}, {"A"}),
                    timeout=10,
                    what="both gateway directions",
                )
            else:
                wait_until_sync(
                    lambda: "B" in gateways_of(a)[1] and "A" in gateways_of(b)[0],
                    timeout=10,
                    what="nats-server's outbound gateway",
                )
                b.wait_for_log("TLS gateway handshake error: Gateway peer missing OCSP Staple")
                assert gateways_of(a)[0] == set()
            assert "TLS gateway handshake error" not in a.log_text()
        finally:
            b.stop()
    finally:
        a.stop()
