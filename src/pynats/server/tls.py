"""TLS with the standard library's ssl: for clients, and for routes between servers.

NATS upgrades a plain TCP connection: the server sends INFO (`tls_required: true`) in the
clear and the client starts the TLS handshake; with `handshake_first` the handshake comes
before INFO. With `allow_non_tls` INFO says `tls_available` and the client chooses: its first
byte after INFO is a TLS record's (0x16, a ClientHello) or the start of CONNECT
(`client_starts_tls` looks without reading it). Client certificates are verified against `ca_file` with `verify`, and with
`verify_and_map` the certificate's identities name the user.

Routes (a `tls {}` block in `cluster {}`, read into `TLSSettings`) always verify both ways,
as nats-server does: the accepting side requires the dialling server's certificate, and the
dialling side presents its certificate and checks the peer's against `ca_file` (unless
`insecure`). nats-server loads the files while it reads the configuration, so
`check_tls_files` gives its first complaint with its text (`-t` fails on it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import re
import select
import socket
import ssl
from collections.abc import Callable
from typing import Any

from .options import Options, TLSSettings
from .proxy_protocol import NO_HEADER, ProxyHeader, parse_header
from .tls_options import (
    apply_ciphers_and_curves,
    certificate_dns_names,
    go_cipher_name,
    sni_selector,
)

MIN_VERSIONS = {
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


# The first byte of a TLS record carrying a handshake message (the client's ClientHello).
TLS_HANDSHAKE_RECORD = 0x16


class TLSConfigError(Exception):
    pass


class TLSHandshakeError(OSError):
    """A handshake of the pyOpenSSL layer (tls_openssl.py) refused or not done in time (an
    OSError, as the stdlib's SSLError is)."""


class PeerStapleRefused(TLSHandshakeError):
    """The dialling side of a stapled route or gateway refused the peer's OCSP staple
    (nats-server's text: `Router peer missing OCSP Staple`, ...)."""


def client_tls_settings(opts: Options) -> TLSSettings:
    """The client port's `tls {}` as the settings of a listener (`verify` set by `verify` or
    `verify_and_map`)."""
    return TLSSettings(
        cert_file=opts.tls_cert,
        key_file=opts.tls_key,
        ca_file=opts.tls_ca_cert,
        verify=opts.tls_verify or opts.tls_map,
        min_version=opts.tls_min_version,
        cipher_suites=opts.tls_cipher_suites,
        curve_preferences=opts.tls_curve_preferences,
        certs=opts.tls_certs,
    )


def build_server_context(opts: Options) -> ssl.SSLContext:
    """The server's SSLContext for client connections; TLSConfigError with nats-server-like
    text."""
    settings = client_tls_settings(opts)
    return _server_context(settings, require_peer_cert=settings.verify)


def build_route_server_context(settings: TLSSettings) -> ssl.SSLContext:
    """For accepting routes: our certificate, and the dialling server must present one that
    `ca_file` (or the system roots) vouches for, whatever `verify` says (nats-server forces
    it for routes)."""
    return _server_context(settings, require_peer_cert=True)


def build_leaf_server_context(settings: TLSSettings) -> ssl.SSLContext:
    """For accepting leaf nodes: a certificate from the leaf only when `verify` asks for
    one (unlike routes, nats-server does not force it on the leafnode port)."""
    return _server_context(settings, require_peer_cert=settings.verify or settings.verify_and_map)


def build_route_client_context(settings: TLSSettings) -> ssl.SSLContext:
    """For dialling routes: our certificate as the client certificate, and the peer checked
    against `ca_file` (or the system roots) and the dialled host name, unless `insecure`.
    Pass the dialled host as `server_hostname` when wrapping."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = MIN_VERSIONS.get(settings.min_version, ssl.TLSVersion.TLSv1_2)
    apply_ciphers_and_curves(ctx, settings.cipher_suites, settings.curve_preferences)
    if settings.certs and not settings.cert_file:  # a client presents the first one
        settings = dataclasses.replace(
            settings, cert_file=settings.certs[0][0], key_file=settings.certs[0][1]
        )
    if settings.cert_file or settings.key_file:
        _load_cert_chain(ctx, settings)
    if settings.insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif settings.ca_file:
        _load_ca(ctx, settings.ca_file)
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    return ctx


def _server_context(settings: TLSSettings, *, require_peer_cert: bool) -> ssl.SSLContext:
    """The context of a listener; with `certs`, one context a certificate, the first one the
    default, and an SNI callback choosing among them (tls_options.sni_selector)."""
    if not settings.certs:
        return _one_server_context(settings, require_peer_cert=require_peer_cert)
    choices = []
    for cert_file, key_file in settings.certs:
        single = dataclasses.replace(settings, cert_file=cert_file, key_file=key_file, certs=[])
        ctx = _one_server_context(single, require_peer_cert=require_peer_cert)
        choices.append((ctx, certificate_dns_names(cert_file)))
    first = choices[0][0]
    first.sni_callback = sni_selector(choices)
    return first


def _one_server_context(settings: TLSSettings, *, require_peer_cert: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MIN_VERSIONS.get(settings.min_version, ssl.TLSVersion.TLSv1_2)
    apply_ciphers_and_curves(ctx, settings.cipher_suites, settings.curve_preferences)
    _load_cert_chain(ctx, settings)
    if require_peer_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        if not settings.ca_file:
            ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    if settings.ca_file:
        _load_ca(ctx, settings.ca_file)
    return ctx


def _load_cert_chain(ctx: ssl.SSLContext, settings: TLSSettings) -> None:
    try:
        ctx.load_cert_chain(settings.cert_file, settings.key_file)
    except FileNotFoundError as e:
        raise TLSConfigError(
            f"error parsing X509 certificate/key pair: open {e.filename}: no such file or directory"
        ) from None
    except (ssl.SSLError, OSError) as e:
        raise TLSConfigError(f"error parsing X509 certificate/key pair: {e}") from None


def _load_ca(ctx: ssl.SSLContext, ca_file: str) -> None:
    try:
        ctx.load_verify_locations(cafile=ca_file)
    except FileNotFoundError:
        raise TLSConfigError(
            f"failed to parse root ca certificate: open {ca_file}: no such file or directory"
        ) from None
    except ssl.SSLError as e:
        raise TLSConfigError(f"failed to parse root ca certificate: {e}") from None


# -- what nats-server says about certificate files while reading the configuration ----------

_PEM_BLOCK = re.compile(rb"-----BEGIN ([^\n-]*)-----\r?\n(.*?)-----END \1-----", re.S)


def check_tls_files(settings: TLSSettings) -> str | None:
    """The first problem nats-server finds loading `settings`' files (its `GenTLSConfig`),
    in its words, or None when they load."""
    if settings.cert_file and settings.certs:
        return "error parsing tls config, cannot combine 'cert_file' option with 'certs' option"
    if settings.cert_file and not settings.key_file:
        return "missing 'key_file' in TLS configuration"
    if settings.key_file and not settings.cert_file:
        return "missing 'cert_file' in TLS configuration"
    if settings.cert_file:
        problem = _key_pair_problem(settings.cert_file, settings.key_file)
        if problem:
            return f"error parsing X509 certificate/key pair: {problem}"
    for i, (cert_file, key_file) in enumerate(settings.certs, 1):
        problem = _key_pair_problem(cert_file, key_file)
        if problem:
            return f"error parsing X509 certificate/key pair {i}/{len(settings.certs)}: {problem}"
    if settings.ca_file:
        try:
            ca_pem = _read(settings.ca_file)
        except _GoFileError as e:
            return str(e)
        if not _loads_as_ca(ca_pem):
            return "failed to parse root ca certificate"
    return None


class _GoFileError(Exception):
    """A file that cannot be read, worded as Go's os.ReadFile error."""


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except IsADirectoryError:
        raise _GoFileError(f"read {path}: is a directory") from None
    except OSError as e:
        reason = {
            errno.ENOENT: "no such file or directory",
            errno.EACCES: "permission denied",
            errno.ENOTDIR: "not a directory",
        }.get(e.errno or 0, (e.strerror or str(e)).lower())
        raise _GoFileError(f"open {path}: {reason}") from None


def _block_types(pem: bytes) -> list[str]:
    return [m.group(1).decode("latin-1") for m in _PEM_BLOCK.finditer(pem)]


def _key_pair_problem(cert_file: str, key_file: str) -> str | None:
    """Go's `tls.LoadX509KeyPair` complaints, the PEM-level ones word for word."""
    try:
        cert_pem = _read(cert_file)
        key_pem = _read(key_file)
    except _GoFileError as e:
        return str(e)
    cert_types = _block_types(cert_pem)
    if "CERTIFICATE" not in cert_types:
        if not cert_types:
            return "tls: failed to find any PEM data in certificate input"
        if len(cert_types) == 1 and cert_types[0].endswith("PRIVATE KEY"):
            return (
                "tls: failed to find certificate PEM data in certificate input, but did find "
                "a private key; PEM inputs may have been switched"
            )
        return (
            'tls: failed to find "CERTIFICATE" PEM block in certificate input after skipping '
            f"PEM blocks of the following types: [{' '.join(cert_types)}]"
        )
    skipped: list[str] = []
    for kind in _block_types(key_pem):
        if kind == "PRIVATE KEY" or kind.endswith(" PRIVATE KEY"):
            break
        skipped.append(kind)
    else:
        if not skipped:
            return "tls: failed to find any PEM data in key input"
        if skipped == ["CERTIFICATE"]:
            return "tls: found a certificate rather than a key in the PEM for the private key"
        return (
            'tls: failed to find PEM block with type ending in "PRIVATE KEY" in key input '
            f"after skipping PEM blocks of the following types: [{' '.join(skipped)}]"
        )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError):
        return "tls: private key does not match public key"
    return None


def _loads_as_ca(pem: bytes) -> bool:
    """Go's `AppendCertsFromPEM`: true when at least one CERTIFICATE block parses."""
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(pem) if m.group(1) == b"CERTIFICATE"]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for block in blocks:
        try:
            ctx.load_verify_locations(cadata=block.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError, ValueError):
            continue
        return True
    return False


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


def certificate_not_after(cert_file: str) -> str:
    """The certificate's expiry as RFC 3339 (UTC), "" when it cannot be read."""
    import datetime

    try:
        decoded = ssl._ssl._test_decode_cert(cert_file)  # type: ignore[attr-defined]
        seconds = ssl.cert_time_to_seconds(decoded["notAfter"])
    except Exception:  # an unreadable certificate only loses this field
        return ""
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def connection_tls_info(transport: asyncio.BaseTransport | None) -> tuple[str, str]:
    """(version, cipher suite) for /connz, with nats-server's spelling (`1.3`)."""
    ssl_obj = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_obj is None:
        return "", ""
    version = (ssl_obj.version() or "").replace("TLSv", "")
    cipher = ssl_obj.cipher()
    return version, go_cipher_name(cipher[0]) if cipher else ""


def follow_reloaded_context(listener_context: Any, current: Callable[[], Any]) -> None:
    """A listener doing TLS before anything else keeps the context it was opened with: each
    handshake on it switches to `current()` (what the last reload built) when that is
    another context. An `ssl.SSLContext` then goes on to that context's own SNI selection
    (several `certs`); a pyOpenSSL `SSL.Context` (a stapling listener, tls_openssl.py) hands
    the handshake to the other one, its certificate, verification and OCSP staple."""
    if not isinstance(listener_context, ssl.SSLContext):
        _follow_reloaded_openssl_context(listener_context, current)
        return
    own_callback = listener_context.sni_callback

    def select(ssl_object: Any, server_name: Any, _ctx: Any) -> None:
        context = current()
        if context is None or context is listener_context:
            callback = own_callback
        else:
            ssl_object.context = context
            callback = context.sni_callback
        if callback is not None:
            callback(ssl_object, server_name, context or listener_context)

    listener_context.sni_callback = select


def _follow_reloaded_openssl_context(listener_context: Any, current: Callable[[], Any]) -> None:
    """pyOpenSSL's side of follow_reloaded_context: OpenSSL asks the server name callback
    for every ClientHello (with or without SNI), before the certificate and the status
    request are answered, so the connection can still take the other context."""

    def select(conn: Any) -> None:
        context = current()
        if context is None or context is conn.get_context():
            return
        conn.set_context(context)
        # the verification mode is the connection's own, taken from the first context
        conn.set_verify(context.get_verify_mode())

    listener_context.set_tlsext_servername_callback(select)


async def peek_first_bytes(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, n: int, timeout: float
) -> bytes | None:
    """Up to `n` first bytes the client sent, peeked (never read, so they stay for the TLS
    layer or the parser): b"" at end of stream or on an error, None when nothing came within
    `timeout`. `sock` must be non-blocking and not read by anyone else meanwhile."""
    first: asyncio.Future[bytes] = loop.create_future()

    def readable() -> None:
        if first.done():
            return
        try:
            first.set_result(sock.recv(n, socket.MSG_PEEK))
        except BlockingIOError:
            return
        except OSError:
            first.set_result(b"")

    loop.add_reader(sock.fileno(), readable)
    try:
        return await asyncio.wait_for(first, timeout)
    except TimeoutError:
        return None
    finally:
        loop.remove_reader(sock.fileno())


async def client_starts_tls(
    loop: asyncio.AbstractEventLoop, transport: asyncio.BaseTransport, timeout: float
) -> bool:
    """Whether the client's first byte opens a TLS handshake (`allow_non_tls`). The byte is
    peeked on a duplicate of the socket, so it stays for the TLS layer or the parser (and
    the transport's reading must be paused meanwhile). Nothing within `timeout`, end of
    stream or an error all mean plain, as nats-server decides."""
    raw = transport.get_extra_info("socket")
    if raw is None:
        return False
    peek = socket.socket(fileno=os.dup(raw.fileno()))
    peek.setblocking(False)
    try:
        data = await peek_first_bytes(loop, peek, 1, timeout)
    finally:
        peek.close()
    return data is not None and data[:1] == bytes((TLS_HANDSHAKE_RECORD,))


async def read_proxy_header(
    loop: asyncio.AbstractEventLoop, transport: asyncio.BaseTransport, timeout: float
) -> ProxyHeader:
    """The PROXY protocol header in front of a TLS handshake (`proxy_protocol: true`).

    Read on a duplicate of the socket while the transport's reading is paused: the bytes are
    peeked until `parse_header` decides, and only the header's own are then taken, so the
    ClientHello (or plain NATS) right behind it stays for the TLS layer or the parser. Once
    some bytes are there the socket stays readable, so more are waited for by looking again
    every few milliseconds, for `timeout` at most; a peer that hung up ends the wait.
    Raises ProxyHeaderError as `parse_header` does."""
    raw = transport.get_extra_info("socket")
    if raw is None:
        return NO_HEADER
    sock = socket.socket(fileno=os.dup(raw.fileno()))
    sock.setblocking(False)
    deadline = loop.time() + timeout
    seen = b""
    try:
        while True:
            left = deadline - loop.time()
            if left <= 0:
                header = parse_header(seen, at_eof=True)
                return header if header is not None else NO_HEADER
            if seen:
                await asyncio.sleep(min(_PEEK_AGAIN_S, left))
            else:
                await _readable(loop, sock, left)
            try:
                seen = sock.recv(_PEEK_MAX_BYTES, socket.MSG_PEEK)
                at_eof = not seen or _peer_hung_up(sock)
            except BlockingIOError:
                continue
            except OSError:
                at_eof = True
            header = parse_header(seen, at_eof=at_eof)
            if header is not None:
                taken = 0
                while taken < header.length:
                    chunk = sock.recv(header.length - taken)
                    if not chunk:
                        break
                    taken += len(chunk)
                return header
    finally:
        sock.close()


_PEEK_AGAIN_S = 0.005
_PEEK_MAX_BYTES = 16 + 0xFFFF  # the longest v2 header


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket, timeout: float) -> None:
    ready: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), readable)
    try:
        await asyncio.wait_for(ready, timeout)
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(sock.fileno())


def _peer_hung_up(sock: socket.socket) -> bool:
    """Whether the peer closed its side (Linux says so with POLLRDHUP even while bytes are
    still unread; elsewhere the wait runs to its timeout)."""
    flag = getattr(select, "POLLRDHUP", 0)
    if not flag:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), flag)
    return bool(poller.poll(0))
