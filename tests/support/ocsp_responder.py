"""A test PKI whose certificates name an OCSP responder, and that responder: a small HTTP
server (http.server in a thread, on 127.0.0.1) answering RFC 6960 requests, by GET (the
base64 request in the path, as nats-server asks) or POST, signed with the CA's key.

Each client certificate's status is set by its serial number (`statuses`); a serial not
there is answered `unknown`. `mode` makes the responder misbehave: "hang" holds the request
without an answer (a responder that times out), "error" answers HTTP 500.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import threading
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pynats tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: str = ""
    key_file: str = ""


@dataclass
class OcspPKI:
    """A CA, a server certificate for 127.0.0.1 and client certificates, written to `base`."""

    base: Path
    ocsp_url: str
    ca: Issued = field(init=False)

    def __post_init__(self) -> None:
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("pynats test CA"))
            .issuer_name(_name("pynats test CA"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
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
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        self.ca = self._write("ca", Issued(cert, key))

    @property
    def ca_file(self) -> str:
        return self.ca.cert_file

    def issue(
        self,
        name: str,
        *,
        server: bool = False,
        ocsp_url: str | None = None,
        ocsp_signing: bool = False,
    ) -> Issued:
        """A certificate issued by the CA, its AIA naming the responder (or `ocsp_url`;
        "" for none); `ocsp_signing` adds the OCSP-signing extended key usage (a delegated
        responder's)."""
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        url = self.ocsp_url if ocsp_url is None else ocsp_url
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.ca.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                    + ([ExtendedKeyUsageOID.OCSP_SIGNING] if ocsp_signing else [])
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca.key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(_ip("127.0.0.1"))]
                ),
                critical=False,
            )
        if url:
            builder = builder.add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            x509.oid.AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier(url),
                        )
                    ]
                ),
                critical=False,
            )
        return self._write(name, Issued(builder.sign(self.ca.key, hashes.SHA256()), key))

    def _write(self, name: str, issued: Issued) -> Issued:
        cert_file = self.base / f"{name}.pem"
        key_file = self.base / f"{name}-key.pem"
        cert_file.write_bytes(issued.cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            issued.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        issued.cert_file, issued.key_file = str(cert_file), str(key_file)
        return issued


def _ip(text: str) -> object:
    import ipaddress

    return ipaddress.ip_address(text)


class OCSPResponder:
    """The responder, on 127.0.0.1 at a port of its own; `url` is what certificates name."""

    def __init__(self) -> None:
        self.statuses: dict[int, ocsp.OCSPCertStatus] = {}
        self.mode = "ok"
        # Who signs: the CA (None) or a delegated responder certificate, sent along
        self.signer: Issued | None = None
        # Answers whose next update has passed (an hour ago)
        self.stale = False
        self.requests = 0
        self.pki: OcspPKI | None = None
        self._release = threading.Event()
        responder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                encoded = urllib.parse.unquote(self.path.rsplit("/", 1)[-1])
                self._answer(base64.b64decode(encoded))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(self.rfile.read(length))

            def _answer(self, der: bytes) -> None:
                responder.requests += 1
                if responder.mode == "hang":
                    responder._release.wait(10)
                    return
                if responder.mode == "error":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = responder.respond(der)
                self.send_response(200)
                self.send_header("Content-Type", "application/ocsp-response")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def respond(self, der: bytes) -> bytes:
        assert self.pki is not None
        request = ocsp.load_der_ocsp_request(der)
        ca = self.pki.ca
        status = self.statuses.get(request.serial_number, ocsp.OCSPCertStatus.UNKNOWN)
        now = datetime.datetime.now(datetime.UTC)
        if self.stale:
            now -= datetime.timedelta(hours=2)
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=status,
            this_update=now - datetime.timedelta(minutes=1),
            next_update=now + datetime.timedelta(hours=1),
            revocation_time=now - datetime.timedelta(minutes=5)
            if status == ocsp.OCSPCertStatus.REVOKED
            else None,
            revocation_reason=None,
        )
        signer = self.signer or ca
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer.cert)
        if self.signer is not None:
            builder = builder.certificates([signer.cert])
        response = builder.sign(signer.key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    def close(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
