"""The `tls {}` keys beyond certificates and verification: `cipher_suites`,
`curve_preferences`, `pinned_certs`, `connection_rate_limit` and `certs` (SNI). Each test
runs the same configuration on pynats and on the Go server (the `-t` texts of bad values are
compared in test_options_oracle.py, from tests/data/options)."""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from tests.support.ports import free_port
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

from pynats.server.tls_options import RateCounter, spki_sha256


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A CA (trustme's keys are ECDSA P-256); server certificates for 127.0.0.1/localhost and for other.example; client
    certificates for alice and bob."""
    base = Path(tmp_path_factory.mktemp("pki"))
    ca = trustme.CA()
    paths = {"ca": base / "ca.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    issued = {
        "server": ca.issue_cert("127.0.0.1", "localhost"),
        "other": ca.issue_cert("other.example"),
        "alice": ca.issue_cert("alice@example.com", common_name="alice"),
        "bob": ca.issue_cert("bob@example.com", common_name="bob"),
    }
    for name, cert in issued.items():
        paths[name] = base / f"{name}.pem"
        paths[f"{name}_key"] = base / f"{name}-key.pem"
        cert.cert_chain_pems[0].write_to_path(str(paths[name]))
        cert.private_key_pem.write_to_path(str(paths[f"{name}_key"]))
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture(scope="module", params=["pynats", "go"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def serve(kind: str, tmp_path: Path, tls_block: str) -> RunningServer:
    conf = tmp_path / "tls.conf"
    conf.write_text(f"tls {{\n{tls_block}\n}}\n")
    return start_server(["-c", str(conf)], oracle=kind == "go", http_port=-1)


# A refused handshake: Go sends an alert; pynats (asyncio's TLS) may only close the socket.
REFUSED = (ssl.SSLError, ConnectionError)


def client_context(
    pki: dict[str, str], *, cert: str = "", ciphers: str = "", curve: str = ""
) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=pki["ca"])
    if cert:
        ctx.load_cert_chain(pki[cert], pki[f"{cert}_key"])
    if ciphers:  # TLS 1.2, where the suites can be chosen
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(ciphers)
    if curve:
        ctx.set_ecdh_curve(curve)
    return ctx


class Conn:
    """A raw NATS connection: INFO in the clear, then the TLS upgrade."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server: RunningServer) -> tuple[Conn, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        info = await asyncio.wait_for(reader.readline(), 5)
        return cls(reader, writer), info

    async def upgrade(self, ctx: ssl.SSLContext, server_name: str = "127.0.0.1") -> None:
        await asyncio.wait_for(self.writer.start_tls(ctx, server_hostname=server_name), 5)

    async def ping(self) -> bytes:
        """CONNECT and PING; the first line the server answers ("" if it hung up)."""
        self.writer.write(b'CONNECT {"verbose":false}\r\nPING\r\n')
        try:
            await self.writer.drain()
            return await asyncio.wait_for(self.reader.readline(), 5)
        except (ConnectionError, ssl.SSLError):
            return b""

    def close(self) -> None:
        self.writer.close()


async def tls_client(
    server: RunningServer, ctx: ssl.SSLContext, server_name: str = "127.0.0.1"
) -> Conn:
    conn, _ = await Conn.open(server)
    await conn.upgrade(ctx, server_name)
    return conn


def connz_cipher(server: RunningServer) -> str:
    conns = server.http_json("/connz")["connections"]
    assert len(conns) == 1
    return str(conns[0]["tls_cipher_suite"])


@pytest.fixture
def cipher_server(kind: str, pki: dict[str, str], tmp_path: Path) -> Iterator[RunningServer]:
    srv = serve(
        kind,
        tmp_path,
        f"""cert_file: "{pki["server"]}"
        key_file: "{pki["server_key"]}"
        cipher_suites: ["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"]
        curve_preferences: ["CurveP384"]""",
    )
    yield srv
    srv.stop()


async def test_cipher_suites(cipher_server: RunningServer, pki: dict[str, str]) -> None:
    refused = client_context(pki, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
    with pytest.raises(REFUSED):
        await tls_client(cipher_server, refused)
    allowed = client_context(
        pki, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"
    )
    conn = await tls_client(cipher_server, allowed)
    assert (await conn.ping()).startswith(b"PONG")
    assert connz_cipher(cipher_server) == "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
    conn.close()


async def test_curve_preferences(cipher_server: RunningServer, pki: dict[str, str]) -> None:
    # TLS 1.3 (in TLS 1.2 the group also limits the ECDSA certificate's curve)
    with pytest.raises(REFUSED):
        await tls_client(cipher_server, client_context(pki, curve="prime256v1"))
    conn = await tls_client(cipher_server, client_context(pki, curve="secp384r1"))
    assert (await conn.ping()).startswith(b"PONG")
    conn.close()


def test_spki_sha256_is_the_public_key_info(pki: dict[str, str]) -> None:
    cert = x509.load_pem_x509_certificate(Path(pki["alice"]).read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    assert spki_sha256(cert.public_bytes(serialization.Encoding.DER)) == digest.finalize().hex()


def key_id(pki: dict[str, str], name: str) -> str:
    cert = x509.load_pem_x509_certificate(Path(pki[name]).read_bytes())
    return spki_sha256(cert.public_bytes(serialization.Encoding.DER))


async def test_pinned_certs(kind: str, pki: dict[str, str], tmp_path: Path) -> None:
    srv = serve(
        kind,
        tmp_path,
        f"""cert_file: "{pki["server"]}"
        key_file: "{pki["server_key"]}"
        ca_file: "{pki["ca"]}"
        verify: true
        pinned_certs: ["{key_id(pki, "alice").upper()}"]""",
    )
    try:
        conn = await tls_client(srv, client_context(pki, cert="alice"))
        assert (await conn.ping()).startswith(b"PONG")
        conn.close()
        # bob's certificate is valid but not pinned: the handshake ends, then the connection
        try:
            unpinned = await tls_client(srv, client_context(pki, cert="bob"))
        except (ssl.SSLError, ConnectionError):
            pass
        else:
            assert await unpinned.ping() == b""
            unpinned.close()
        srv.wait_for_log(r"\[ERR\] .* - cid:\d+ - TLS handshake error: certificate not pinned")
    finally:
        srv.stop()


async def test_connection_rate_limit(kind: str, pki: dict[str, str], tmp_path: Path) -> None:
    srv = serve(
        kind,
        tmp_path,
        f"""cert_file: "{pki["server"]}"
        key_file: "{pki["server_key"]}"
        connection_rate_limit: 1
        timeout: 10""",
    )
    try:
        # Two connections a moment apart, within one second: one is over the limit, told so
        # in the clear after INFO and closed, the other's handshake goes on. Which one is
        # Go's scheduling (each connection is counted after its INFO has gone out), so the
        # refused one is the one that hears back; the other waits for its handshake (hence
        # the long handshake timeout, for a busy machine).
        conns = [await Conn.open(srv), await Conn.open(srv)]
        assert all(info.startswith(b"INFO ") for _, info in conns)
        reads = [asyncio.ensure_future(conn.reader.readline()) for conn, _ in conns]
        done, pending = await asyncio.wait(reads, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1, "no connection was refused"
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        refused_index = reads.index(next(iter(done)))
        refused, allowed = conns[refused_index][0], conns[1 - refused_index][0]
        line = reads[refused_index].result()
        assert line == b"-ERR 'Connection throttling is active. Please try again later.'\r\n"
        assert await asyncio.wait_for(refused.reader.read(), 5) == b""
        refused.close()
        await allowed.upgrade(client_context(pki))
        assert (await allowed.ping()).startswith(b"PONG")
        allowed.close()
        srv.wait_for_log(r"\[WRN\] Rejected 1 connections due to TLS rate limiting")
    finally:
        srv.stop()


def test_rate_counter_window() -> None:
    now = [100.0]
    counter = RateCounter(2, clock=lambda: now[0])
    assert [counter.allow() for _ in range(4)] == [True, True, False, False]
    assert counter.take_blocked() == 2 and counter.take_blocked() == 0
    now[0] += 1.5
    assert counter.allow()


async def test_certs_chosen_by_sni(kind: str, pki: dict[str, str], tmp_path: Path) -> None:
    srv = serve(
        kind,
        tmp_path,
        f"""certs: [
          {{ cert_file: "{pki["server"]}", key_file: "{pki["server_key"]}" }}
          {{ cert_file: "{pki["other"]}", key_file: "{pki["other_key"]}" }}
        ]""",
    )
    try:
        # an IP address sends no SNI: the first certificate; verified against the name
        for name, san in (("127.0.0.1", "localhost"), ("other.example", "other.example")):
            conn = await tls_client(srv, client_context(pki), server_name=name)
            peer = conn.writer.get_extra_info("peercert")
            assert ("DNS", san) in peer["subjectAltName"]
            assert (await conn.ping()).startswith(b"PONG")
            conn.close()
        # a name neither certificate has: the first one
        unchecked = client_context(pki)
        unchecked.check_hostname = False
        conn = await tls_client(srv, unchecked, server_name="third.example")
        assert ("DNS", "localhost") in conn.writer.get_extra_info("peercert")["subjectAltName"]
        conn.close()
    finally:
        srv.stop()


async def test_pinned_certs_reload_disconnects(
    kind: str, pki: dict[str, str], tmp_path: Path
) -> None:
    block = f"""cert_file: "{pki["server"]}"
        key_file: "{pki["server_key"]}"
        ca_file: "{pki["ca"]}"
        verify: true
        pinned_certs: ["%s"]"""
    srv = serve(kind, tmp_path, block % key_id(pki, "alice"))
    try:
        conn = await tls_client(srv, client_context(pki, cert="alice"))
        assert (await conn.ping()).startswith(b"PONG")
        (tmp_path / "tls.conf").write_text(f"tls {{\n{block % key_id(pki, 'bob')}\n}}\n")
        srv.signal(signal.SIGHUP)
        srv.wait_for_log(r"\[INF\] Reloaded: 1 pinned_certs")
        srv.wait_for_log(r"\[INF\] Disconnect 1 clients due to pinned certs reload")
        assert await asyncio.wait_for(conn.reader.read(), 5) == b""
        conn.close()
    finally:
        srv.stop()


async def test_route_pinned_certs(kind: str, pki: dict[str, str], tmp_path: Path) -> None:
    """A route from a server whose certificate is not pinned fails as a TLS handshake does;
    one whose certificate is pinned forms."""

    def cluster_tls(cert: str) -> str:
        return f"""tls {{
            cert_file: "{pki[cert]}"
            key_file: "{pki[f"{cert}_key"]}"
            ca_file: "{pki["ca"]}"
            pinned_certs: ["{key_id(pki, "server")}"]
        }}"""

    route_port = free_port()
    seed_conf = tmp_path / "seed.conf"
    seed_conf.write_text(
        f"cluster {{ name: c, listen: 127.0.0.1:{route_port}\n{cluster_tls('server')} }}\n"
    )
    seed = start_server(["-c", str(seed_conf)], oracle=kind == "go", http_port=-1)
    started = [seed]
    try:
        for cert, name in (("other", "unpinned"), ("server", "pinned")):
            conf = tmp_path / f"{name}.conf"
            conf.write_text(
                f"server_name: {name}\ncluster {{ name: c, listen: 127.0.0.1:-1\n"
                f'routes: ["nats://127.0.0.1:{route_port}"]\n{cluster_tls(cert)} }}\n'
            )
            started.append(start_server(["-c", str(conf)], oracle=kind == "go", http_port=-1))
            if name == "unpinned":
                seed.wait_for_log(
                    r"\[ERR\] .* - rid:\d+ - TLS route handshake error: certificate not pinned"
                )
        await wait_until(
            lambda: seed.http_json("/routez")["num_routes"],
            what="route",
            explain=lambda: str(seed.http_json("/routez")) + seed.log_text(),
        )
    finally:
        for srv in started:
            srv.stop()


async def test_leafnode_pinned_certs(kind: str, pki: dict[str, str], tmp_path: Path) -> None:
    """The hub refuses a leaf whose certificate is not pinned, accepts a pinned one."""
    leaf_port = free_port()
    hub_conf = tmp_path / "hub.conf"
    hub_conf.write_text(
        f"""leafnodes {{
          listen: "127.0.0.1:{leaf_port}"
          tls {{
            cert_file: "{pki["server"]}"
            key_file: "{pki["server_key"]}"
            ca_file: "{pki["ca"]}"
            verify: true
            pinned_certs: ["{key_id(pki, "alice")}"]
          }}
        }}
        """
    )
    hub = start_server(["-c", str(hub_conf)], oracle=kind == "go", http_port=-1)
    started = [hub]
    try:
        for cert in ("bob", "alice"):
            conf = tmp_path / f"{cert}.conf"
            conf.write_text(
                f"""leafnodes {{ remotes: [ {{
                  url: "tls://127.0.0.1:{leaf_port}"
                  tls {{
                    cert_file: "{pki[cert]}"
                    key_file: "{pki[f"{cert}_key"]}"
                    ca_file: "{pki["ca"]}"
                  }}
                }} ] }}
                """
            )
            started.append(start_server(["-c", str(conf)], oracle=kind == "go"))
            if cert == "bob":
                hub.wait_for_log(
                    r"\[ERR\] .* - lid:\d+ - TLS leafnode handshake error: certificate not pinned"
                )
        await wait_until(lambda: hub.http_json("/leafz")["leafnodes"] == 1, what="leaf")
    finally:
        for srv in started:
            srv.stop()
