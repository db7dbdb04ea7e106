"""`tls { verify: true, ocsp_peer }`: client certificates checked with the OCSP responder
their AIA extension names, on pynats and on the Go server with the same files.

The PKI and the responder are real (tests/support/ocsp_responder.py): a CA, a server
certificate, client certificates the responder calls good, revoked or unknown (and one that
names no responder), and an HTTP OCSP responder on 127.0.0.1 signing with the CA's key.

What a refused client sees differs in one way: nats-server fails the handshake with a TLS
alert (`bad certificate`), pynats, which can only decide once Python's ssl has finished the
handshake, closes the connection before reading anything from it. Either way nothing the
client sent is answered; `attempt` counts both as refused.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nats.errors
import pytest
from cryptography.x509 import ocsp
from tests.conftest import connect
from tests.support.ocsp_responder import Issued, OcspPKI, OCSPResponder
from tests.support.ports import free_port
from tests.support.servers import (
    RunningServer,
    oracle_server_path,
    pynats_server_command,
    start_server,
)
from tests.support.waiting import wait_until


class Setup:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.responder = OCSPResponder()
        self.pki = OcspPKI(base, self.responder.url)
        self.responder.pki = self.pki
        self.server = self.pki.issue("server", server=True, ocsp_url="")
        self.good = self.pki.issue("good")
        self.revoked = self.pki.issue("revoked")
        self.unknown = self.pki.issue("unknown")
        self.plain = self.pki.issue("plain", ocsp_url="")  # names no responder
        self.responder.statuses[self.good.cert.serial_number] = ocsp.OCSPCertStatus.GOOD
        self.responder.statuses[self.revoked.cert.serial_number] = ocsp.OCSPCertStatus.REVOKED

    def conf(self, name: str, ocsp_peer: str, extra: str = "", verify: bool = True) -> str:
        path = self.base / f"{name}.conf"
        path.write_text(f"""
tls {{
  cert_file: "{self.server.cert_file}"
  key_file: "{self.server.key_file}"
  ca_file: "{self.pki.ca_file}"
  verify: {str(verify).lower()}
  ocsp_peer: {ocsp_peer}
}}
{extra}
""")
        return str(path)

    def context(self, who: Issued) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.pki.ca_file)
        ctx.load_cert_chain(who.cert_file, who.key_file)
        return ctx


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    s = Setup(Path(tmp_path_factory.mktemp("ocsp")))
    yield s
    s.responder.close()


@pytest.fixture(params=["pynats", "go"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def start(kind: str, conf: str, cwd: Path) -> RunningServer:
    # cwd: the default local cache lives in ./_rc_
    return start_server(["-c", conf], oracle=kind == "go", cwd=str(cwd))


async def attempt(srv: RunningServer, ctx: ssl.SSLContext) -> bool:
    """Whether a client with this certificate gets through: INFO, the TLS upgrade, then
    CONNECT and PING answered by PONG. A TLS alert, a reset or an end of stream is a
    refusal."""
    reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
    try:
        info = await asyncio.wait_for(reader.readline(), 5)
        assert info.startswith(b"INFO ")
        try:
            await asyncio.wait_for(writer.start_tls(ctx, server_hostname="127.0.0.1"), 5)
            writer.write(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
            await writer.drain()
            line = await asyncio.wait_for(reader.readline(), 5)
        except (ssl.SSLError, ConnectionError):
            return False
        return line.startswith(b"PONG")
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ssl.SSLError, ConnectionError):
            pass


async def test_good_is_admitted_revoked_and_unknown_are_refused(
    setup: Setup, kind: str, tmp_path: Path
) -> None:
    srv = start(kind, setup.conf("short", "true", "ocsp_cache: {type: none}"), tmp_path)
    try:
        nc = await connect(f"tls://127.0.0.1:{srv.port}", tls=setup.context(setup.good))
        sub = await nc.subscribe("checked")
        await nc.publish("checked", b"ok")
        assert (await sub.next_msg(2)).data == b"ok"
        await nc.close()
        assert await attempt(srv, setup.context(setup.plain))  # no responder named: valid
        assert not await attempt(srv, setup.context(setup.revoked))
        srv.wait_for_log(
            r"\[WRN\] OCSP verify fail for \[CN=revoked,O=pynats tests\] "
            r"with CA status \[revoked\]"
        )
        srv.wait_for_log(
            r"\[ERR\] 127\.0\.0\.1:\d+ - cid:\d+ - TLS handshake error: "
            r"client not OCSP valid"
        )
        assert not await attempt(srv, setup.context(setup.unknown))
        srv.wait_for_log(
            r"OCSP verify fail for \[CN=unknown,O=pynats tests\] "
            r"with CA status \[unknown\]"
        )
    finally:
        srv.stop()


async def test_unknown_is_good_and_warn_only(setup: Setup, kind: str, tmp_path: Path) -> None:
    conf = setup.conf("unknown", "{verify: true, unknown_is_good: true}", "ocsp_cache: false")
    srv = start(kind, conf, tmp_path)
    try:
        assert await attempt(srv, setup.context(setup.unknown))
        assert not await attempt(srv, setup.context(setup.revoked))
    finally:
        srv.stop()
    srv = start(kind, setup.conf("warn", "{verify: true, warn_only: true}"), tmp_path)
    try:
        assert await attempt(srv, setup.context(setup.revoked))
        srv.wait_for_log(
            r"\[WRN\] OCSP verify fail for \[CN=revoked,O=pynats tests\] "
            r"but WarnOnly is true so allowing"
        )
        assert "client not OCSP valid" not in srv.log_text()
    finally:
        srv.stop()


async def test_responder_that_does_not_answer(setup: Setup, kind: str, tmp_path: Path) -> None:
    """ca_timeout bounds the wait; without an answer the client is refused, unless
    allow_when_ca_unreachable."""
    setup.responder.mode = "hang"
    try:
        conf = setup.conf("down", "{verify: true, ca_timeout: 0.3}", "ocsp_cache: {type: none}")
        srv = start(kind, conf, tmp_path)
        try:
            assert not await attempt(srv, setup.context(setup.good))
            srv.wait_for_log(
                r"\[WRN\] Attempt to obtain OCSP response from CA responder for "
                r"\[CN=good,O=pynats tests\] failed: exhausted OCSP responders: Get \"http://"
                r"127\.0\.0\.1:\d+/.*\": context deadline exceeded"
            )
        finally:
            srv.stop()
        conf = setup.conf(
            "allow",
            "{verify: true, ca_timeout: 0.3, allow_when_ca_unreachable: true}",
            "ocsp_cache: {type: none}",
        )
        srv = start(kind, conf, tmp_path)
        try:
            assert await attempt(srv, setup.context(setup.good))
            srv.wait_for_log(
                r"Failed to obtain OCSP CA response for \[CN=good,O=pynats tests\] but "
                r"AllowWhenCAUnreachable set; no cached revocation so allowing"
            )
        finally:
            srv.stop()
    finally:
        setup.responder.mode = "ok"


async def test_local_cache_answers_when_the_responder_fails(setup: Setup, tmp_path: Path) -> None:
    """The local cache file, written by the Go server at shutdown, is read by pynats (and
    the other way round): a cached `good` admits the client while the responder answers
    HTTP 500, a cached `revoked` refuses it."""
    for writer, reader in (("go", "pynats"), ("pynats", "go")):
        store = tmp_path / f"{writer}-store"
        conf = setup.conf(f"cache-{writer}", "true", f'ocsp_cache: {{local_store: "{store}"}}')
        srv = start(writer, conf, tmp_path)
        try:
            assert await attempt(srv, setup.context(setup.good))
            assert not await attempt(srv, setup.context(setup.revoked))
        finally:
            srv.stop()
        cached = json.loads((store / "cache.json").read_text())
        statuses = {item["subject"]: item["resp_status"] for item in cached.values()}
        assert statuses == {
            "CN=good,O=pynats tests": "good",
            "CN=revoked,O=pynats tests": "revoked",
        }
        asked = setup.responder.requests
        setup.responder.mode = "error"
        try:
            srv = start(reader, conf, tmp_path)
            try:
                srv.wait_for_log(r"OCSP peer cache online, type \[local\]")
                assert await attempt(srv, setup.context(setup.good))
                assert not await attempt(srv, setup.context(setup.revoked))
            finally:
                srv.stop()
        finally:
            setup.responder.mode = "ok"
        assert setup.responder.requests == asked  # both answers came from the file


def _run(kind: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [oracle_server_path()] if kind == "go" else pynats_server_command()
    return subprocess.run(
        [*cmd, "-a", "127.0.0.1", "-p", "-1", *args],
        capture_output=True,
        text=True,
        timeout=15,
        cwd=cwd,
    )


def test_ocsp_peer_needs_verify(setup: Setup, tmp_path: Path) -> None:
    conf = setup.conf("noverify", "true", verify=False)
    outcomes = {kind: _run(kind, ["-c", conf], tmp_path) for kind in ("pynats", "go")}
    for result in outcomes.values():
        assert result.returncode == 1
        assert (
            "nats-server: OCSP peer verification for client connections requires TLS verify "
            "(mTLS) to be enabled"
        ) in result.stderr


@pytest.mark.parametrize(
    "ocsp_peer, extra",
    [
        ('"yes"', ""),
        ("{foo: 1}", ""),
        ("{verify: 1}", ""),
        ('{ca_timeout: "x"}', ""),
        ("{ca_timeout: true}", ""),
        ('{allowed_clockskew: "x"}', ""),
        ("{ca_timeout: -1, verify: false, cache_ttl_when_next_update_unset: 10}", ""),
        ("true", 'ocsp_cache: "x"'),
        ("true", "ocsp_cache: {type: foo}"),
        ("true", "ocsp_cache: {type: 1}"),
        ("true", "ocsp_cache: {foo: 1}"),
        ("true", 'ocsp_cache: {save_interval: "x"}'),
        ("true", "ocsp_cache: {save_interval: true}"),
        ("true", "ocsp_cache: {local_store: 1}"),
        ("true", "ocsp_cache: {preserve_revoked: true, save_interval: 0.5, type: NONE}"),
    ],
)
def test_configuration_checks_match(
    setup: Setup, tmp_path: Path, ocsp_peer: str, extra: str
) -> None:
    conf = setup.conf("check", ocsp_peer, extra)
    ours, theirs = (_run(kind, ["-t", "-c", conf], tmp_path) for kind in ("pynats", "go"))
    assert ours.returncode == theirs.returncode
    if theirs.returncode:
        assert _said(ours.stderr) == _said(theirs.stderr)


def _said(stderr: str) -> list[str]:
    """The server's own lines (not a Python warning about how it runs)."""
    return [line for line in stderr.strip().splitlines() if "Warning:" not in line]


async def test_handshake_first_is_checked(setup: Setup, tmp_path: Path) -> None:
    """With handshake_first the check comes before INFO (pynats only: nats-py sends its
    ClientHello first when told to)."""
    conf = setup.conf("first", "true", "ocsp_cache: false")
    text = (
        Path(conf)
        .read_text()
        .replace("ocsp_peer: true", "ocsp_peer: true\n  handshake_first: true")
    )
    Path(conf).write_text(text)
    srv = start("pynats", conf, tmp_path)
    try:
        nc = await connect(
            f"tls://127.0.0.1:{srv.port}", tls=setup.context(setup.good), tls_handshake_first=True
        )
        await nc.flush(2)
        await nc.close()
        # Refused right after the handshake: connect fails, or the connection does not work
        try:
            bad = await connect(
                f"tls://127.0.0.1:{srv.port}",
                tls=setup.context(setup.revoked),
                tls_handshake_first=True,
            )
        except (OSError, nats.errors.Error):
            pass
        else:
            with pytest.raises((OSError, nats.errors.Error)):
                await bad.flush(timeout=1)
            await bad.close()
        await wait_until(lambda: "client not OCSP valid" in srv.log_text(), 5, "the refusal")
    finally:
        srv.stop()


def _leaf_hub_conf(setup: Setup, name: str, port: int) -> str:
    path = setup.base / f"{name}.conf"
    path.write_text(f"""
leafnodes {{
  listen: "127.0.0.1:{port}"
  tls {{
    cert_file: "{setup.server.cert_file}"
    key_file: "{setup.server.key_file}"
    ca_file: "{setup.pki.ca_file}"
    verify: true
    ocsp_peer: true
  }}
}}
ocsp_cache: false
""")
    return str(path)


def _leaf_conf(setup: Setup, name: str, port: int, who: Issued) -> str:
    path = setup.base / f"{name}.conf"
    path.write_text(f"""
leafnodes {{
  reconnect: "30s"
  remotes: [ {{
    url: "tls://127.0.0.1:{port}"
    tls {{ cert_file: "{who.cert_file}", key_file: "{who.key_file}", ca_file: "{setup.pki.ca_file}" }}
  }} ]
}}
""")
    return str(path)


async def test_leaf_node_certificates_are_checked(setup: Setup, kind: str, tmp_path: Path) -> None:
    """A leaf node listener with `ocsp_peer`: a leaf with a good certificate connects, one
    with a revoked certificate is refused at the handshake."""
    port = free_port()
    hub = start(kind, _leaf_hub_conf(setup, "hub", port), tmp_path)
    leaves: list[RunningServer] = []
    try:
        leaves.append(start(kind, _leaf_conf(setup, "leaf-good", port, setup.good), tmp_path))
        hub.wait_for_log(r"Leafnode connection created", timeout=15)
        leaves.append(start(kind, _leaf_conf(setup, "leaf-bad", port, setup.revoked), tmp_path))
        hub.wait_for_log(
            r"OCSP verify fail for \[CN=revoked,O=pynats tests\] with CA status", timeout=15
        )
        hub.wait_for_log(
            r"\[ERR\] 127\.0\.0\.1:\d+ - lid:\d+ - TLS leafnode handshake error: "
            r"client not OCSP valid"
        )
        # the good leaf stays: the only leaf connection closed is the refused one
        closed = [line for line in hub.log_lines if "Leafnode connection closed" in line]
        assert all("TLS Handshake Failure" in line for line in closed), closed
    except TimeoutError as e:
        logs = "\n".join(f"leaf {i}:\n{leaf.log_text()}" for i, leaf in enumerate(leaves))
        raise TimeoutError(f"{e}\n{logs}") from None
    finally:
        for leaf in leaves:
            leaf.stop()
        hub.stop()


async def test_websocket_certificates_are_checked(setup: Setup, kind: str, tmp_path: Path) -> None:
    port = free_port()
    conf = setup.base / "ws.conf"
    conf.write_text(f"""
websocket {{
  listen: "127.0.0.1:{port}"
  tls {{
    cert_file: "{setup.server.cert_file}"
    key_file: "{setup.server.key_file}"
    ca_file: "{setup.pki.ca_file}"
    verify: true
    ocsp_peer: true
  }}
}}
ocsp_cache: false
""")
    srv = start(kind, str(conf), tmp_path)
    try:
        nc = await connect(f"wss://127.0.0.1:{port}", tls=setup.context(setup.good))
        await nc.flush(2)
        await nc.close()
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=setup.context(setup.revoked), server_hostname="127.0.0.1"
        )
        writer.write(
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        try:
            answer = await asyncio.wait_for(reader.read(100), 5)
        except (ssl.SSLError, ConnectionError):
            answer = b""
        assert answer == b""
        writer.close()
        srv.wait_for_log(
            r"\[ERR\] websocket: TLS handshake error from 127\.0\.0\.1:\d+: "
            r"client not OCSP valid"
        )
    finally:
        srv.stop()


async def test_leaf_remote_checks_the_hub(setup: Setup, kind: str, tmp_path: Path) -> None:
    """`ocsp_peer` in a remote's `tls {}`: the leaf checks the hub's certificate (mTLS not
    needed) and refuses a hub whose certificate is revoked."""
    hub_cert = setup.pki.issue(f"revoked-hub-{kind}", server=True)
    setup.responder.statuses[hub_cert.cert.serial_number] = ocsp.OCSPCertStatus.REVOKED
    port = free_port()
    hub_conf = setup.base / f"hub-{kind}.conf"
    hub_conf.write_text(f"""
leafnodes {{
  listen: "127.0.0.1:{port}"
  tls {{ cert_file: "{hub_cert.cert_file}", key_file: "{hub_cert.key_file}" }}
}}
""")
    leaf_conf = setup.base / f"spoke-{kind}.conf"
    leaf_conf.write_text(f"""
leafnodes {{
  reconnect: "30s"
  remotes: [ {{
    url: "tls://127.0.0.1:{port}"
    tls {{ ca_file: "{setup.pki.ca_file}", ocsp_peer: true }}
  }} ]
}}
ocsp_cache: false
""")
    hub = start(kind, str(hub_conf), tmp_path)
    try:
        leaf = start(kind, str(leaf_conf), tmp_path)
        try:
            leaf.wait_for_log(
                r"OCSP verify fail for \[CN=revoked-hub-\w+,O=pynats tests\]", timeout=15
            )
            leaf.wait_for_log(
                r"\[ERR\] 127\.0\.0\.1:\d+ - lid:\d+ - TLS leafnode handshake "
                r"error: server not OCSP valid"
            )
        finally:
            leaf.stop()
    finally:
        hub.stop()


async def test_who_signed_and_when(setup: Setup, kind: str, tmp_path: Path) -> None:
    """A delegated responder (its certificate issued by the CA with the OCSP-signing usage)
    is believed; one without that usage, or a key the CA never certified, is not; an answer
    whose next update has passed is not current."""
    delegate = setup.pki.issue("delegate", ocsp_signing=True, ocsp_url="")
    not_delegate = setup.pki.issue("not-delegate", ocsp_url="")
    (setup.base / "stranger").mkdir(exist_ok=True)
    stranger = OcspPKI(setup.base / "stranger", setup.responder.url).ca  # another CA's key
    conf = setup.conf("signers", "true", "ocsp_cache: {type: none}")
    srv = start(kind, conf, tmp_path)
    try:
        setup.responder.signer = delegate
        assert await attempt(srv, setup.context(setup.good))
        setup.responder.signer = not_delegate
        assert not await attempt(srv, setup.context(setup.good))
        srv.wait_for_log(r"\[WRN\] Invalid OCSP response delegation: CN=good,O=pynats tests")
        setup.responder.signer = stranger
        assert not await attempt(srv, setup.context(setup.good))
        srv.wait_for_log(r"\[ERR\] Could not parse OCSP CA response for \[CN=good,O=pynats tests\]")
        setup.responder.signer = None
        setup.responder.stale = True
        assert not await attempt(srv, setup.context(setup.good))
        srv.wait_for_log(
            r"\[WRN\] New OCSP CA response obtained for \[CN=good,O=pynats tests\] but not current"
        )
    finally:
        setup.responder.signer = None
        setup.responder.stale = False
        srv.stop()


async def test_with_stapling(setup: Setup, kind: str, tmp_path: Path) -> None:
    """`ocsp {}` (the server's own status stapled; pynats then runs client TLS on
    pyOpenSSL) and `ocsp_peer` together: the client's certificate is still checked."""
    stapled = setup.pki.issue(f"stapled-{kind}", server=True)
    setup.responder.statuses[stapled.cert.serial_number] = ocsp.OCSPCertStatus.GOOD
    conf = setup.base / f"stapled-{kind}.conf"
    conf.write_text(f"""
tls {{
  cert_file: "{stapled.cert_file}"
  key_file: "{stapled.key_file}"
  ca_file: "{setup.pki.ca_file}"
  verify: true
  ocsp_peer: true
}}
ocsp {{ mode: always }}
ocsp_cache: false
store_dir: "{tmp_path / "store"}"
""")
    srv = start(kind, str(conf), tmp_path)
    try:
        srv.wait_for_log(r"OCSP Stapling enabled for Client connections")
        assert await attempt(srv, setup.context(setup.good))
        assert not await attempt(srv, setup.context(setup.revoked))
        srv.wait_for_log(r"TLS handshake error: client not OCSP valid")
    finally:
        srv.stop()


async def test_varz_shows_the_check_and_the_cache(setup: Setup, kind: str, tmp_path: Path) -> None:
    """/varz: `tls_ocsp_peer_verify`, and the local cache's counts (`ocsp_peer_cache`)."""
    store = tmp_path / "varz-store"
    conf = setup.conf("varz", "true", f'ocsp_cache: {{local_store: "{store}"}}')
    srv = start_server(["-c", conf], oracle=kind == "go", http_port=-1, cwd=str(tmp_path))
    try:
        for who, admitted in (
            (setup.good, True),
            (setup.revoked, False),
            (setup.unknown, False),
            (setup.good, True),  # from the cache
            (setup.plain, True),  # names no responder: not looked up
        ):
            assert await attempt(srv, setup.context(who)) is admitted
        varz = srv.http_json("/varz")
        assert varz["tls_ocsp_peer_verify"] is True
        assert varz["ocsp_peer_cache"] == {
            "cache_type": "local",
            "cache_hits": 1,
            "cache_misses": 3,
            "cached_responses": 3,
            "cached_revoked_responses": 1,
            "cached_good_responses": 1,
            "cached_unknown_responses": 1,
        }
    finally:
        srv.stop()
