"""What servers say about their websocket side, against Go's: a websocket client's INFO, the
websocket section of /varz, the cluster's websocket URLs (routes carry them as
`ws_connect_urls`; websocket clients get them as `connect_urls`), and TLS (wss://)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from tests.conftest import connect
from tests.support.ports import free_port

from .support import GO, KINDS, OURS, RawWebSocket, WsServer, upgrade_request, ws_server

# Fields one server has and the other has not, whatever the transport.
GO_ONLY = {"git_commit", "api_lvl", "xkey"}


def ws_info(server: WsServer, tls: ssl.SSLContext | None = None) -> dict[str, Any]:
    ws = RawWebSocket.connect(server.ws_port, upgrade_request(), tls=tls)
    frame = ws.next_frame()
    ws.close()
    assert frame is not None and frame.payload.startswith(b"INFO ")
    info: dict[str, Any] = json.loads(frame.payload[5:])
    return info


def comparable(info: dict[str, Any], server: WsServer) -> list[tuple[str, Any]]:
    """The INFO's fields in order, with what differs between any two servers blanked."""
    out = []
    for key, value in info.items():
        if key in GO_ONLY:
            continue
        if key in ("server_id", "server_name", "version", "go", "client_id", "client_ip"):
            value = type(value).__name__
        elif key == "port":
            value = "ws" if value == server.ws_port else value
        out.append((key, value))
    return out


@pytest.mark.parametrize(
    "block",
    [
        {"no_tls": True},
        {"no_tls": True, "authorization": {"token": "t"}},
        {"no_tls": True, "compression": True, "advertise": "ws.example.com:443"},
    ],
    ids=["plain", "auth-override", "advertise"],
)
def test_websocket_info_is_nats_servers(block: dict[str, Any]) -> None:
    infos = {}
    for kind in KINDS:
        with ws_server(kind, block) as server:
            infos[kind] = comparable(ws_info(server), server)
    assert infos[OURS] == infos[GO]


@pytest.mark.parametrize(
    "block",
    [
        {"no_tls": True, "handshake_timeout": "3s", "compression": True},
        {
            "no_tls": True,
            "handshake_timeout": "1s",
            "advertise": "ws.example.com:443",
            "same_origin": True,
            "allowed_origins": ["http://a.example.com", "https://b.example.com:8443"],
            "authorization": {"user": "u", "password": "p", "timeout": 3},
        },
    ],
    ids=["small", "everything"],
)
def test_varz_websocket_section_is_nats_servers(block: dict[str, Any]) -> None:
    sections = {}
    for kind in KINDS:
        with ws_server(kind, block) as server:
            section = server.monitor("/varz")["websocket"]
            assert section.pop("port") == server.ws_port
            sections[kind] = section
    assert sections[OURS] == sections[GO]


@pytest.fixture
def mixed_cluster() -> Iterator[dict[str, WsServer]]:
    """A Go server and ours in one cluster, each with a websocket listener (ours advertises
    another address, to tell the URLs apart)."""
    ports = {GO: free_port(), OURS: free_port()}
    routes = [f"nats://127.0.0.1:{p}" for p in ports.values()]
    blocks = {GO: {"no_tls": True}, OURS: {"no_tls": True, "advertise": "ours.example.com:8443"}}
    started = {}
    contexts = []
    try:
        for kind in (GO, OURS):
            cm = ws_server(
                kind,
                blocks[kind],
                cluster={"name": "mixed", "listen": f"127.0.0.1:{ports[kind]}", "routes": routes},
            )
            contexts.append(cm)
            started[kind] = cm.__enter__()
        yield started
    finally:
        for cm in reversed(contexts):
            cm.__exit__(None, None, None)


async def test_the_cluster_websocket_urls_reach_websocket_clients(
    mixed_cluster: dict[str, WsServer],
) -> None:
    go, ours = mixed_cluster[GO], mixed_cluster[OURS]
    go_url = f"127.0.0.1:{go.ws_port}"
    ours_url = "ours.example.com:8443"
    # Routes are up once each server's websocket client hears of the other's URL.
    for _ in range(500):
        if ws_info(go).get("connect_urls") == [go_url, ours_url]:
            break
        await asyncio.sleep(0.02)
    assert ws_info(go)["connect_urls"] == [go_url, ours_url]
    assert ws_info(ours)["connect_urls"] == [ours_url, go_url]
    # TCP clients keep the client URLs.
    tcp = socket.create_connection(("127.0.0.1", ours.port), timeout=5)
    tcp_info = json.loads(tcp.recv(65536).split(b" ", 1)[1])
    tcp.close()
    assert f"127.0.0.1:{go.port}" in tcp_info["connect_urls"]
    assert ours_url not in tcp_info["connect_urls"]
    # Our route INFO carries our websocket URLs, as Go's does.
    route = socket.create_connection(("127.0.0.1", int(ours_route_port(mixed_cluster))), timeout=5)
    info = json.loads(route.recv(65536).split(b" ", 1)[1])
    route.close()
    assert info["ws_connect_urls"] == [ours_url]


def ours_route_port(cluster: dict[str, WsServer]) -> int:
    varz = cluster[OURS].monitor("/varz")
    port: int = varz["cluster"]["cluster_port"]
    return port


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder: Path = tmp_path_factory.mktemp("ws-tls")
    cert.cert_chain_pems[0].write_to_path(folder / "cert.pem")
    cert.private_key_pem.write_to_path(folder / "key.pem")
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return {
        "tls": {"cert_file": str(folder / "cert.pem"), "key_file": str(folder / "key.pem")},
        "client": client,
    }


@pytest.mark.parametrize("kind", KINDS)
async def test_wss_with_nats_py(kind: str, certificates: dict[str, Any]) -> None:
    with ws_server(kind, {"tls": certificates["tls"], "compression": True}) as server:
        assert server.scheme == "wss"
        server.wait_for_log(
            rf"Listening for websocket clients on wss://127\.0\.0\.1:{server.ws_port}"
        )
        assert "DO NOT USE IN PRODUCTION" not in server.log()
        info = ws_info(server, certificates["client"])
        assert (info["tls_required"], info["tls_available"]) == (True, True)
        nc = await connect(f"wss://127.0.0.1:{server.ws_port}", tls=certificates["client"])
        sub = await nc.subscribe("secure")
        await nc.publish("secure", b"x" * 100_000)
        assert (await sub.next_msg(5)).data == b"x" * 100_000
        [conn] = server.monitor("/connz")["connections"]
        assert (conn["type"], conn["tls_version"]) == ("websocket", "1.3")
        await nc.close()
        section = server.monitor("/varz")["websocket"]
        assert section["tls_cert_not_after"].endswith("Z")


@pytest.mark.parametrize("kind", KINDS)
def test_a_websocket_listener_without_tls_needs_no_tls(kind: str) -> None:
    with pytest.raises(Exception, match="websocket requires TLS configuration"):  # noqa: SIM117
        with ws_server(kind, {"compression": True}):  # the server must not start
            pass
