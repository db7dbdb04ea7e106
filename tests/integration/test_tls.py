"""TLS for clients: upgrade after INFO, handshake first, client certificates, mapping a
certificate to a user. Each test runs against pynats and the Go server with the same files."""

from __future__ import annotations

import json
import re
import signal
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats.errors
import pytest
import trustme
from tests.conftest import connect
from tests.support.raw import RawClient
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


# -- allow_non_tls: TLS offered, plain connections still allowed ------------------------------


@pytest.fixture(scope="module")
def mixed_server(
    kind: str, pki: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    conf = Path(tmp_path_factory.mktemp("mixed")) / "mixed.conf"
    conf.write_text(f"""
tls {{
  cert_file: "{pki["cert"]}"
  key_file: "{pki["key"]}"
}}
allow_non_tls: true
""")
    srv = start_server(["-c", str(conf)], oracle=kind == "go", http_port=-1)
    yield srv
    srv.stop()


def upgraded(raw: RawClient, pki: dict[str, str]) -> RawClient:
    """The raw client's socket after the TLS handshake a client starts right after INFO."""
    assert raw.buf == b""
    raw.sock = client_context(pki).wrap_socket(raw.sock, server_hostname="127.0.0.1")
    return raw


def monitor(server: RunningServer, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.monitor_url}{path}") as resp:
        result: dict[str, Any] = json.loads(resp.read())
    return result


def test_allow_non_tls_offers_tls_without_requiring_it(mixed_server: RunningServer) -> None:
    with RawClient(mixed_server.port) as raw:
        assert raw.info.get("tls_available") is True
        assert "tls_required" not in raw.info
    assert any("TLS available for client connections" in line for line in mixed_server.log_lines)
    assert not any("TLS required" in line for line in mixed_server.log_lines)
    varz = monitor(mixed_server, "/varz")
    assert "tls_required" not in varz
    assert varz["tls_cert_not_after"].endswith("Z")


async def test_plain_and_tls_clients_share_the_server(
    mixed_server: RunningServer, pki: dict[str, str]
) -> None:
    plain = await connect(f"nats://127.0.0.1:{mixed_server.port}")
    sub = await plain.subscribe("mixed.>")
    await plain.flush()
    with upgraded(RawClient(mixed_server.port), pki) as secure:
        secure.handshake(verbose=False)
        secure.send(b"SUB mixed.back 1\r\nPUB mixed.in 6\r\nsealed\r\nPING\r\n")
        assert secure.read_line() == b"PONG"
        assert (await sub.next_msg(2)).data == b"sealed"
        await plain.publish("mixed.back", b"clear")
        await plain.flush()
        assert secure.read_line() == b"MSG mixed.back 1 5"
        assert secure.read_line() == b"clear"
        tls_cids = [
            c["cid"]
            for c in monitor(mixed_server, "/connz")["connections"]
            if c.get("tls_version") in ("1.2", "1.3")
        ]
        assert len(tls_cids) == 1
    assert plain._server_info.get("tls_available") is True
    await plain.close()


def test_a_broken_handshake_closes_only_that_client(mixed_server: RunningServer) -> None:
    with RawClient(mixed_server.port) as bad:
        cid = bad.info["client_id"]
        bad.send(b"\x16\x03\x01garbage\r\n")
        assert bad.is_closed()
    closed = monitor(mixed_server, f"/connz?state=closed&cid={cid}")["connections"]
    assert closed[0]["reason"] == "TLS Handshake Failure"
    with RawClient(mixed_server.port) as still_fine:
        still_fine.handshake(verbose=False)
        assert still_fine.ping_pong() == b""


def test_plain_garbage_is_a_protocol_error(mixed_server: RunningServer) -> None:
    with RawClient(mixed_server.port) as raw:
        raw.send(b"xyzzy garbage\r\n")
        assert raw.read_line() == b"-ERR 'Unknown Protocol Operation'"
        assert raw.is_closed()


def test_a_plain_client_may_send_its_connect_in_pieces(mixed_server: RunningServer) -> None:
    with RawClient(mixed_server.port) as raw:
        raw.send(b"CON")
        raw.send(b'NECT {"verbose":false}\r\nPI')
        raw.send(b"NG\r\n")
        assert raw.read_line() == b"PONG"


async def tls_handshake_ok(server: RunningServer, cafile: str, first: bool = False) -> bool:
    """Whether a client trusting `cafile` gets through the TLS handshake."""
    try:
        nc = await connect(
            tls_url(server),
            tls=ssl.create_default_context(cafile=cafile),
            tls_handshake_first=first,
        )
    except (ssl.SSLError, nats.errors.NoServersError, OSError):
        return False
    await nc.close()
    return True


async def reload_and_wait(server: RunningServer, conf: Path, text: str) -> list[str]:
    """Write `text`, SIGHUP, and return the reload's log lines (without times)."""
    done = len([line for line in server.log_lines if "Reloaded server configuration" in line])
    conf.write_text(text)
    server.signal(signal.SIGHUP)
    await wait_until(
        lambda: (
            len([line for line in server.log_lines if "Reloaded server configuration" in line])
            > done
        ),
        timeout=5,
        explain=lambda: "\n".join(server.log_lines[-5:]),
    )
    lines = [re.sub(r"^\[\d+\] \S+ \S+ \[\w+\] ", "", line) for line in server.log_lines]
    return [re.sub(r"\(sha256:[0-9a-f]+\)", "", line) for line in lines if "Reloaded" in line]


@pytest.mark.parametrize("handshake_first", [False, True])
async def test_a_reload_applies_new_certificates_and_tls_on_or_off(
    tmp_path: Path, handshake_first: bool
) -> None:
    """Certificates renewed in place (same files, new content) and TLS switched off and on:
    a SIGHUP applies them to the clients that connect afterwards, logged as nats-server
    logs it."""
    cas = [trustme.CA(), trustme.CA()]
    files = []
    for i, ca in enumerate(cas):
        ca.cert_pem.write_to_path(str(tmp_path / f"ca{i}.pem"))
        issued = ca.issue_cert("127.0.0.1")
        files.append((issued.cert_chain_pems[0].bytes(), issued.private_key_pem.bytes()))
    cert, key = tmp_path / "server.pem", tmp_path / "server-key.pem"
    first = ", handshake_first: true" if handshake_first else ""
    with_tls = f'tls {{ cert_file: "{cert}", key_file: "{key}"{first} }}\n'
    seen = {}
    for kind in ("pynats", "go"):
        cert.write_bytes(files[0][0])
        key.write_bytes(files[0][1])
        conf = tmp_path / f"{kind}.conf"
        conf.write_text(with_tls)
        srv = start_server(["-c", str(conf)], oracle=kind == "go")
        try:
            reached = [await tls_handshake_ok(srv, str(tmp_path / "ca0.pem"), handshake_first)]
            cert.write_bytes(files[1][0])  # renewed by another CA, same paths
            key.write_bytes(files[1][1])
            lines = await reload_and_wait(srv, conf, with_tls)
            reached.append(await tls_handshake_ok(srv, str(tmp_path / "ca1.pem"), handshake_first))
            reached.append(await tls_handshake_ok(srv, str(tmp_path / "ca0.pem"), handshake_first))
            if not handshake_first:
                lines = await reload_and_wait(srv, conf, "ping_max: 2\n")  # TLS off: plain again
                nc = await connect(f"nats://127.0.0.1:{srv.port}")
                await nc.close()
                lines = await reload_and_wait(srv, conf, with_tls)
                reached.append(await tls_handshake_ok(srv, str(tmp_path / "ca1.pem")))
        finally:
            srv.stop()
        seen[kind] = (reached, lines)
    assert seen["pynats"] == seen["go"]
    reached, lines = seen["go"]
    assert reached[:3] == [True, True, False]
    assert "Reloaded: tls = enabled" in lines
