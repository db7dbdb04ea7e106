"""TLS for clients: upgrade after INFO, handshake first, client certificates, mapping a
certificate to a user. Each test runs against pynats and the Go server with the same files."""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nats.errors
import pytest
import trustme
from tests.conftest import connect
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate for alice."""
    base = Path(tmp_path_factory.mktemp("pki"))
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    client_cert = ca.issue_cert("alice@example.com", common_name="alice")
    paths = {
        "ca": base / "ca.pem",
        "cert": base / "server.pem",
        "key": base / "server-key.pem",
        "client_cert": base / "client.pem",
        "client_key": base / "client-key.pem",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    server_cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    server_cert.private_key_pem.write_to_path(str(paths["key"]))
    client_cert.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    client_cert.private_key_pem.write_to_path(str(paths["client_key"]))
    return {k: str(v) for k, v in paths.items()}


def client_context(pki: dict[str, str], *, with_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki["ca"])
    if with_cert:
        ctx.load_cert_chain(pki["client_cert"], pki["client_key"])
    return ctx


def tls_url(server: RunningServer) -> str:
    return f"tls://127.0.0.1:{server.port}"


@pytest.fixture(scope="module", params=["pynats", "go"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def tls_server(kind: str, pki: dict[str, str]) -> Iterator[RunningServer]:
    srv = start_server(
        ["--tls", "--tlscert", pki["cert"], "--tlskey", pki["key"]],
        oracle=kind == "go",
        http_port=-1,
    )
    yield srv
    srv.stop()


async def test_tls_upgrade_after_info(tls_server: RunningServer, pki: dict[str, str]) -> None:
    nc = await connect(tls_url(tls_server), tls=client_context(pki))
    assert nc._server_info["tls_required"] is True
    sub = await nc.subscribe("secure")
    await nc.publish("secure", b"sealed")
    assert (await sub.next_msg(2)).data == b"sealed"
    cid = nc._server_info["client_id"]
    with urllib.request.urlopen(f"{tls_server.monitor_url}/connz?cid={cid}") as resp:
        conn = json.loads(resp.read())["connections"][0]
    assert conn["tls_version"] in ("1.2", "1.3")
    assert conn["tls_cipher_suite"]
    await nc.close()
    assert any("TLS required for client connections" in line for line in tls_server.log_lines)


async def test_plaintext_client_cannot_use_tls_server(tls_server: RunningServer) -> None:
    # nats-py upgrades on tls_required, and without our CA it cannot verify the server
    with pytest.raises(ssl.SSLError):
        await connect(f"nats://127.0.0.1:{tls_server.port}")


async def test_client_certificate_required_with_verify(kind: str, pki: dict[str, str]) -> None:
    srv = start_server(
        ["--tlsverify", "--tlscert", pki["cert"], "--tlskey", pki["key"], "--tlscacert", pki["ca"]],
        oracle=kind == "go",
    )
    try:
        nc = await connect(tls_url(srv), tls=client_context(pki, with_cert=True))
        assert nc._server_info["tls_verify"] is True
        await nc.flush()
        await nc.close()
        # Refused during the handshake (TLS 1.2) or right after it (TLS 1.3). With TLS 1.3
        # nats-py may return from connect() before it notices the server ended the
        # connection, so "refused" means: connect fails, or the connection does not work.
        try:
            anonymous = await connect(tls_url(srv), tls=client_context(pki, with_cert=False))
        except (OSError, nats.errors.Error):
            pass
        else:
            with pytest.raises((OSError, nats.errors.Error)):
                await anonymous.flush(timeout=1)
            await anonymous.close()
    finally:
        srv.stop()


async def test_verify_and_map_names_the_user(
    kind: str, pki: dict[str, str], tmp_path: Path
) -> None:
    conf = tmp_path / "map.conf"
    conf.write_text(f"""
tls {{
  cert_file: "{pki["cert"]}"
  key_file: "{pki["key"]}"
  ca_file: "{pki["ca"]}"
  verify_and_map: true
}}
authorization {{
  users: [ {{user: "alice@example.com", permissions: {{publish: "allowed.>"}}}} ]
}}
""")
    srv = start_server(["-c", str(conf)], oracle=kind == "go")
    try:
        errors: list[Exception] = []

        async def on_error(e: Exception) -> None:
            errors.append(e)

        nc = await connect(tls_url(srv), tls=client_context(pki, with_cert=True), error_cb=on_error)
        await nc.publish("not.allowed", b"x")
        await nc.flush()
        await wait_until(lambda: any("permissions violation" in str(e).lower() for e in errors))
        await nc.close()
    finally:
        srv.stop()


async def test_handshake_first(kind: str, pki: dict[str, str], tmp_path: Path) -> None:
    conf = tmp_path / "first.conf"
    conf.write_text(f"""
tls {{
  cert_file: "{pki["cert"]}"
  key_file: "{pki["key"]}"
  handshake_first: true
}}
""")
    srv = start_server(["-c", str(conf)], oracle=kind == "go")
    try:
        nc = await connect(tls_url(srv), tls=client_context(pki), tls_handshake_first=True)
        sub = await nc.subscribe("first")
        await nc.publish("first", b"tls first")
        assert (await sub.next_msg(2)).data == b"tls first"
        await nc.close()
    finally:
        srv.stop()
