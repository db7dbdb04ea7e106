"""TLS for client connections, with the standard library's ssl.

NATS upgrades a plain TCP connection: the server sends INFO (`tls_required: true`) in the
clear and the client starts the TLS handshake; with `handshake_first` the handshake comes
before INFO. Client certificates are verified against `ca_file` with `verify`, and with
`verify_and_map` the certificate's identities name the user.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from .options import Options

MIN_VERSIONS = {
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


class TLSConfigError(Exception):
    pass


def build_server_context(opts: Options) -> ssl.SSLContext:
    """The server's SSLContext for `opts`; TLSConfigError with nats-server-like text."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MIN_VERSIONS.get(opts.tls_min_version, ssl.TLSVersion.TLSv1_2)
    try:
        ctx.load_cert_chain(opts.tls_cert, opts.tls_key)
    except FileNotFoundError as e:
        raise TLSConfigError(
            f"error parsing X509 certificate/key pair: open {e.filename}: no such file or directory"
        ) from None
    except (ssl.SSLError, OSError) as e:
        raise TLSConfigError(f"error parsing X509 certificate/key pair: {e}") from None
    if opts.tls_verify or opts.tls_map:
        ctx.verify_mode = ssl.CERT_REQUIRED
        if not opts.tls_ca_cert:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    if opts.tls_ca_cert:
        try:
            ctx.load_verify_locations(cafile=opts.tls_ca_cert)
        except FileNotFoundError:
            raise TLSConfigError(
                f"failed to parse root ca certificate: open {opts.tls_ca_cert}: no such file or directory"
            ) from None
        except ssl.SSLError as e:
            raise TLSConfigError(f"failed to parse root ca certificate: {e}") from None
    return ctx


def certificate_identities(cert: dict[str, Any] | None) -> list[str]:
    """The names a client certificate can map to a user by, in nats-server's order: email
    addresses, DNS names, then the RFC 2253 subject."""
    if not cert:
        return []
    names: list[str] = []
    subject = cert.get("subject", ())
    for rdn in subject:
        for key, value in rdn:
            if key == "emailAddress":
                names.append(value)
    for kind, value in cert.get("subjectAltName", ()):
        if kind == "email":
            names.append(value)
    for kind, value in cert.get("subjectAltName", ()):
        if kind == "DNS":
            names.append(value)
    if subject:
        names.append(rfc2253(subject))
    cn = [value for rdn in subject for key, value in rdn if key == "commonName"]
    names.extend(cn)
    return names


_SHORT = {
    "commonName": "CN",
    "organizationName": "O",
    "organizationalUnitName": "OU",
    "countryName": "C",
    "localityName": "L",
    "stateOrProvinceName": "ST",
    "streetAddress": "STREET",
    "domainComponent": "DC",
    "userId": "UID",
    "emailAddress": "emailAddress",
}


def rfc2253(subject: tuple[Any, ...]) -> str:
    """The subject DN, most specific first, as Go's pkix.Name.String() prints it."""
    parts: list[str] = []
    for rdn in reversed(subject):
        parts.append("+".join(f"{_SHORT.get(k, k)}={_escape(v)}" for k, v in rdn))
    return ",".join(parts)


def _escape(value: str) -> str:
    out = []
    for i, ch in enumerate(value):
        if ch in ',+"\\<>;' or (ch == "#" and i == 0) or (ch == " " and i in (0, len(value) - 1)):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def connection_tls_info(transport: asyncio.BaseTransport | None) -> tuple[str, str]:
    """(version, cipher suite) for /connz, with nats-server's spelling (`1.3`)."""
    ssl_obj = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_obj is None:
        return "", ""
    version = (ssl_obj.version() or "").replace("TLSv", "")
    cipher = ssl_obj.cipher()
    return version, cipher[0] if cipher else ""
