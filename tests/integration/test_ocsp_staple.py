"""OCSP stapling of the server's certificate (`ocsp {}`): the same configuration on pynats
and the Go server, and what a client that asks for the certificate status sees.

The PKI and the OCSP responder are real (tests/support/staple_pki.py): the responder runs
on 127.0.0.1 and signs with the CA key. The status is asked for with pyOpenSSL's client
(`request_ocsp`), which the stdlib's ssl cannot do; nats-py checks that real traffic, large
messages included, goes through pynats' stapling TLS layer (tls_openssl.py)."""

from __future__ import annotations

import datetime
import hashlib
import json
import socket
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nats.errors
import pytest
from cryptography.hazmat.primitives import serialization
from nats.aio.msg import Msg
from tests.conftest import connect
from tests.support.servers import (
    RunningServer,
    oracle_server_path,
    pynats_server_command,
    start_server,
)
from tests.support.staple_pki import (
    IssuedCert,
    StaplePKI,
    StapleResponder,
    good_for,
    running_pki,
    staple_handshake,
)
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StaplePKI, StapleResponder]]:
    yield from running_pki(Path(tmp_path_factory.mktemp("staple")))


@pytest.fixture(scope="module")
def certs(pki: tuple[StaplePKI, StapleResponder]) -> dict[str, IssuedCert]:
    authority, responder = pki
    issued = {
        "good": authority.issue("good"),
        "must": authority.issue("must-staple", must_staple=True),
        "revoked": authority.issue("revoked"),
        "client": authority.issue("client"),
    }
    for name, cert in issued.items():
        responder.statuses[cert.cert.serial_number] = "revoked" if name == "revoked" else "good"
    return issued


@pytest.fixture(params=["pynats", "go"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def write_conf(
    tmp_path: Path, cert: IssuedCert, ca_file: str, extra: str = "", name: str = "staple"
) -> str:
    conf = tmp_path / f"{name}.conf"
    conf.write_text(
        f'tls {{\n  cert_file: "{cert.cert_file}"\n  key_file: "{cert.key_file}"\n'
        f'  ca_file: "{ca_file}"\n}}\n{extra}\n'
    )
    return str(conf)


def stapled_status(port: int, *, handshake_first: bool = False) -> bytes:
    """The OCSP response the server staples when a client asks for one (b"": none)."""
    return staple_handshake(port, info_first=not handshake_first).staple


def launch(kind: str, conf: str, http: bool = False) -> RunningServer:
    return start_server(["-c", conf], oracle=kind == "go", http_port=-1 if http else None)


async def test_always_staples_a_good_status_and_keeps_it(
    kind: str, pki: tuple[StaplePKI, StapleResponder], certs: dict[str, IssuedCert], tmp_path: Path
) -> None:
    authority, responder = pki
    store = tmp_path / "store"
    cert = certs["good"]
    conf = write_conf(
        tmp_path, cert, authority.ca_file, f'ocsp {{ mode: always }}\nstore_dir: "{store}"'
    )
    asked = responder.requests
    srv = launch(kind, conf)
    try:
        found = srv.wait_for_log(r"Found OCSP status")
        assert f"Found OCSP status for Client certificate at '{cert.cert_file}': good, next " in (
            found
        )
        assert "checking again in 29m" in found or "checking again in 30m" in found
        lines = srv.log_text()
        enabled = lines.index("OCSP Stapling enabled for Client connections")
        assert enabled < lines.index("Listening for client connections")
        assert good_for(stapled_status(srv.port), cert)
        assert good_for(stapled_status(srv.port), cert)
        assert responder.requests == asked + 1  # asked once, then served from memory
        der = cert.cert.public_bytes(serialization.Encoding.DER)
        kept = store / "ocsp" / hashlib.sha256(der).hexdigest()
        assert good_for(kept.read_bytes(), cert)
    finally:
        srv.stop()
    # Started again: the status comes from the store directory, the responder is not asked.
    srv = launch(kind, conf)
    try:
        assert good_for(stapled_status(srv.port), cert)
        assert responder.requests == asked + 1
    finally:
        srv.stop()


async def test_auto_staples_only_must_staple_certificates(
    kind: str, pki: tuple[StaplePKI, StapleResponder], certs: dict[str, IssuedCert], tmp_path: Path
) -> None:
    authority, _ = pki
    srv = launch(kind, write_conf(tmp_path, certs["must"], authority.ca_file))
    try:
        assert good_for(stapled_status(srv.port), certs["must"])
        assert "OCSP Stapling enabled for Client connections" in srv.log_text()
    finally:
        srv.stop()
    srv = launch(kind, write_conf(tmp_path, certs["good"], authority.ca_file, "ocsp: true"))
    try:
        assert stapled_status(srv.port) == b""
        assert "OCSP Stapling enabled for Client connections" not in srv.log_text()
    finally:
        srv.stop()


async def test_never_staples_nothing(
    kind: str, pki: tuple[StaplePKI, StapleResponder], certs: dict[str, IssuedCert], tmp_path: Path
) -> None:
    authority, _ = pki
    conf = write_conf(tmp_path, certs["must"], authority.ca_file, "ocsp { mode: never }")
    srv = launch(kind, conf)
    try:
        assert stapled_status(srv.port) == b""
        assert not any("OCSP" in line for line in srv.log_lines)
    finally:
        srv.stop()


def refused_start(kind: str, conf: str) -> tuple[int, str]:
    cmd = [oracle_server_path()] if kind == "go" else pynats_server_command()
    done = subprocess.run(
        [*cmd, "-a", "127.0.0.1", "-p", "-1", "-c", conf],
        capture_output=True,
        text=True,
        timeout=20,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stderr.strip()


async def test_refuses_to_start_when_it_cannot_staple_a_good_status(
    pki: tuple[StaplePKI, StapleResponder], certs: dict[str, IssuedCert], tmp_path: Path
) -> None:
    authority, _ = pki
    revoked = certs["revoked"]
    no_issuer = tmp_path / "no-issuer.conf"
    no_issuer.write_text(
        f'tls {{ cert_file: "{certs["good"].cert_file}", key_file: "{certs["good"].key_file}" }}'
        "\nocsp { mode: always }\n"
    )
    cases = {
        write_conf(tmp_path, revoked, authority.ca_file, "ocsp { mode: always }"): (
            f"nats-server: found existing OCSP status for certificate at '{revoked.cert_file}': "
            "revoked"
        ),
        str(no_issuer): "nats-server: no issuers found",
    }
    for conf, text in cases.items():
        for kind in ("pynats", "go"):
            status, stderr = refused_start(kind, conf)
            assert (status, stderr) == (1, text), kind


async def test_refreshes_the_staple_and_stops_on_a_revoked_certificate(
    kind: str, pki: tuple[StaplePKI, StapleResponder], tmp_path: Path
) -> None:
    authority, responder = pki
    cert = authority.issue(f"short-lived-{kind}")
    serial = cert.cert.serial_number
    responder.statuses[serial] = "good"
    # responses that last 4 s: fetched again after 2 s
    responder.validity_by_serial[serial] = datetime.timedelta(seconds=4)
    srv = launch(kind, write_conf(tmp_path, cert, authority.ca_file, "ocsp { mode: always }"))
    try:
        found = srv.wait_for_log("Found OCSP status")
        assert "checking again in 1." in found or "checking again in 2s" in found, found
        received = srv.wait_for_log("Received OCSP status", timeout=6)
        assert f"Received OCSP status for Client certificate '{cert.cert_file}': good" in received
        assert good_for(stapled_status(srv.port), cert)
        responder.statuses[serial] = "revoked"
        revoked = srv.wait_for_log(r"\[ERR\] Received OCSP status", timeout=6)
        assert revoked.endswith(
            f"[ERR] Received OCSP status for Client certificate '{cert.cert_file}': revoked"
        )
        assert srv.proc.wait(5) == 0
        srv.wait_for_log("Server Exiting")
    finally:
        srv.stop()


@pytest.mark.parametrize("handshake_first", [False, True])
async def test_clients_use_the_stapling_tls_layer(
    kind: str,
    handshake_first: bool,
    pki: tuple[StaplePKI, StapleResponder],
    certs: dict[str, IssuedCert],
    tmp_path: Path,
) -> None:
    authority, _ = pki
    extra = "ocsp { mode: always }"
    conf = write_conf(tmp_path, certs["good"], authority.ca_file, extra)
    if handshake_first:
        text = Path(conf).read_text().replace("  ca_file:", "  handshake_first: true\n  ca_file:")
        Path(conf).write_text(text)
    srv = launch(kind, conf, http=True)
    try:
        assert good_for(stapled_status(srv.port, handshake_first=handshake_first), certs["good"])
        tls = ssl.create_default_context(cafile=authority.ca_file)
        url = f"tls://127.0.0.1:{srv.port}"
        sender = await connect(url, tls=tls, tls_handshake_first=handshake_first)
        receiver = await connect(url, tls=tls, tls_handshake_first=handshake_first)
        sub = await receiver.subscribe("staple.>")
        await receiver.flush()
        payloads = [b"small", bytes(range(256)) * 1024, b"x" * (900 * 1024)]
        for i, payload in enumerate(payloads):
            await sender.publish(f"staple.{i}", payload)
        for i, payload in enumerate(payloads):
            msg = await sub.next_msg(5)
            assert (msg.subject, msg.data) == (f"staple.{i}", payload)

        # many small messages both ways: requests answered over the same layer
        async def echo(msg: Msg) -> None:
            await msg.respond(msg.data)

        await receiver.subscribe("echo", cb=echo)
        await receiver.flush()

        async def answered() -> bool:
            # the Go server has been seen answering "no responders" right after the flush
            try:
                return (await sender.request("echo", b"ready", timeout=2)).data == b"ready"
            except nats.errors.NoRespondersError:
                return False

        await wait_until(answered, timeout=5, what="the echo responder")
        for i in range(200):
            assert (await sender.request("echo", b"%d" % i, timeout=2)).data == b"%d" % i
        for _ in range(3000):
            await sender.publish("staple.burst", b"b" * 1024)
        for _ in range(3000):
            assert (await sub.next_msg(5)).data == b"b" * 1024
        cid = receiver._server_info["client_id"]
        with urllib.request.urlopen(f"{srv.monitor_url}/connz?cid={cid}") as resp:
            entry = json.loads(resp.read())["connections"][0]
        assert entry["tls_version"] in ("1.2", "1.3")
        assert entry["tls_cipher_suite"]
        await sender.close()
        await receiver.close()
    finally:
        srv.stop()


async def test_client_certificates_through_the_stapling_layer(
    kind: str, pki: tuple[StaplePKI, StapleResponder], certs: dict[str, IssuedCert], tmp_path: Path
) -> None:
    """`verify_and_map` reads the client certificate from the layer; a client without one
    is refused with OpenSSL's alert (asyncio's stdlib path would just close the socket)."""
    authority, _ = pki
    conf = write_conf(tmp_path, certs["good"], authority.ca_file, "ocsp { mode: always }")
    text = Path(conf).read_text().replace("  ca_file:", "  verify_and_map: true\n  ca_file:")
    Path(conf).write_text(
        text + 'authorization { users: [ {user: "CN=client", permissions: {publish: "ok.>"}} ] }\n'
    )
    srv = launch(kind, conf)
    try:
        tls = ssl.create_default_context(cafile=authority.ca_file)
        tls.load_cert_chain(certs["client"].cert_file, certs["client"].key_file)
        nc = await connect(f"tls://127.0.0.1:{srv.port}", tls=tls)
        sub = await nc.subscribe("ok.1")
        await nc.publish("ok.1", b"mapped")
        assert (await sub.next_msg(2)).data == b"mapped"
        await nc.close()
        # Without a certificate: the server's alert names the reason.
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        sock.recv(4096)  # INFO
        bare = ssl.create_default_context(cafile=authority.ca_file)
        bare.maximum_version = ssl.TLSVersion.TLSv1_2  # the refusal comes inside the handshake
        with pytest.raises(ssl.SSLError) as refused:
            bare.wrap_socket(sock, server_hostname="127.0.0.1")
        sock.close()
        assert "ALERT" in str(refused.value).upper() or "alert" in str(refused.value), str(
            refused.value
        )
    finally:
        srv.stop()
