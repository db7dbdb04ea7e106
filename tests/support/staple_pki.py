"""A test PKI for OCSP stapling and the OCSP responder it names, both real.

`StaplePKI` makes a CA and server certificates whose AIA extension names the responder
(one with the OCSP Must-Staple extension, one the responder says is revoked), written as PEM
files. `StapleResponder` is a small OCSP responder on 127.0.0.1 (http.server in a thread)
that answers GET (`/<base64 request>`, as nats-server asks) and POST requests with a response
signed by the CA key, counting the requests it served."""

from __future__ import annotations

import base64
import datetime
import select
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID
from OpenSSL import SSL


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class IssuedCert:
    cert: x509.Certificate
    cert_file: str
    key_file: str


@dataclass
class StapleResponder:
    """The OCSP responder: `statuses` maps a serial number to "good", "revoked" or
    "unknown" (serials not there are unknown); `validity` is how long a response lasts
    (its nextUpdate), `validity_by_serial` for some certificates."""

    ca_cert: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    validity: datetime.timedelta = datetime.timedelta(hours=1)
    statuses: dict[int, str] = field(default_factory=dict)
    validity_by_serial: dict[int, datetime.timedelta] = field(default_factory=dict)
    requests: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        responder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                encoded = urllib.parse.unquote(self.path.lstrip("/"))
                try:
                    der = base64.b64decode(encoded)
                except ValueError:
                    self.send_error(400)
                    return
                self._answer(der)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length))

            def _answer(self, der: bytes) -> None:
                try:
                    body = responder.respond(der)
                except ValueError:
                    self.send_error(400)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def respond(self, request_der: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(request_der)
        self.requests += 1
        status = self.statuses.get(request.serial_number, "unknown")
        now = _now()
        builder = ocsp.OCSPResponseBuilder()
        revoked = status == "revoked"
        builder = builder.add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status={
                "good": ocsp.OCSPCertStatus.GOOD,
                "revoked": ocsp.OCSPCertStatus.REVOKED,
            }.get(status, ocsp.OCSPCertStatus.UNKNOWN),
            this_update=now - datetime.timedelta(seconds=30),
            next_update=now + self.validity_by_serial.get(request.serial_number, self.validity),
            revocation_time=now - datetime.timedelta(hours=1) if revoked else None,
            revocation_reason=x509.ReasonFlags.key_compromise if revoked else None,
        )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.ca_cert)
        response = builder.sign(self.ca_key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)


class StaplePKI:
    """A CA and its server certificates for 127.0.0.1, files under `base`."""

    def __init__(self, base: Path, responder_url: str) -> None:
        self.base = base
        self.responder_url = responder_url
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pynats staple test CA")])
        now = _now()
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        self.ca_file = str(base / "ca.pem")
        Path(self.ca_file).write_bytes(self.ca_cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self, name: str, *, must_staple: bool = False, ocsp_url: str | None = ""
    ) -> IssuedCert:
        """A server certificate for 127.0.0.1 and localhost; `ocsp_url` None leaves the AIA
        extension out, "" names the responder."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=10))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [x509.ExtendedKeyUsageOID.SERVER_AUTH, x509.ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if ocsp_url is not None:
            builder = builder.add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier(ocsp_url or self.responder_url),
                        )
                    ]
                ),
                critical=False,
            )
        if must_staple:
            builder = builder.add_extension(
                x509.TLSFeature([x509.TLSFeatureType.status_request]), critical=False
            )
        cert = builder.sign(self.ca_key, hashes.SHA256())
        cert_file = self.base / f"{name}.pem"
        key_file = self.base / f"{name}-key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return IssuedCert(cert, str(cert_file), str(key_file))


def running_pki(base: Path) -> Iterator[tuple[StaplePKI, StapleResponder]]:
    """A PKI under `base` and its responder, running until the generator is closed (the body
    of the tests' module-scoped `pki` fixtures)."""
    authority = StaplePKI(base, "")
    responder = StapleResponder(authority.ca_cert, authority.ca_key)
    responder.start()
    authority.responder_url = responder.url
    try:
        yield authority, responder
    finally:
        responder.stop()


@dataclass
class Handshake:
    """What a TLS client that asked for the certificate status saw."""

    serial: int  # the serial number of the certificate the server presented
    staple: bytes  # the stapled OCSP response (b"": none)


def staple_handshake(
    port: int, *, info_first: bool = False, client: IssuedCert | None = None
) -> Handshake:
    """A handshake with 127.0.0.1:`port` asking for the OCSP status (pyOpenSSL's
    `request_ocsp`; the stdlib's ssl cannot). `info_first`: the port sends INFO in the clear
    first; `client`: a certificate to present (routes and gateways require one). A handshake
    the server ends after it has sent its certificate and status still tells both."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        if info_first:
            seen = b""
            while not seen.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                assert chunk, "the server closed before INFO"
                seen += chunk
            assert seen.startswith(b"INFO ")
        ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
        if client is not None:
            ctx.use_certificate_chain_file(client.cert_file)
            ctx.use_privatekey_file(client.key_file)
        got: list[bytes] = []

        def on_status(conn: SSL.Connection, data: bytes, _: object) -> bool:
            got.append(data)
            return True

        ctx.set_ocsp_client_callback(on_status)
        conn = SSL.Connection(ctx, sock)
        conn.request_ocsp()
        conn.set_connect_state()
        deadline = time.monotonic() + 5
        while True:  # the socket has a timeout, so OpenSSL sees it as non-blocking
            try:
                conn.do_handshake()
                break
            except SSL.WantReadError:
                left = deadline - time.monotonic()
                assert left > 0, "no handshake within 5 s"
                select.select([sock], [], [], left)
            except SSL.Error:
                if not got:
                    raise
                break
        peer = conn.get_peer_certificate()
        serial = peer.to_cryptography().serial_number if peer is not None else 0
        return Handshake(serial, got[0] if got else b"")
    finally:
        sock.close()


def good_for(raw: bytes, cert: IssuedCert) -> bool:
    """`raw` is a good OCSP status of `cert`."""
    resp = ocsp.load_der_ocsp_response(raw)
    return (
        resp.certificate_status == ocsp.OCSPCertStatus.GOOD
        and resp.serial_number == cert.cert.serial_number
    )
