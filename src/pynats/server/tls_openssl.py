"""A TLS layer on pyOpenSSL, for what Python's ssl module cannot do: stapling an OCSP
response in the handshake, and reading the peer's (`ocsp {}`, ocsp_staple.py).

asyncio's TLS (`loop.start_tls`, `create_server(ssl=...)`) runs the stdlib `ssl` module, which
has no status-request callback. `TLSLayer` is the same construction on `OpenSSL.SSL.Connection`
with memory BIOs: it is the protocol of the TCP transport (bytes in -> `bio_write`, handshake,
`recv` -> the application protocol) and gives the application protocol a `TLSTransport`
(`write` -> `send` -> `bio_read` -> the TCP transport). Flow control is the TCP transport's
(write-buffer limits and sizes, pause/resume of reading and writing); `get_extra_info` answers
`ssl_object` (a `SSLObjectView` with what the server reads of the stdlib's SSLObject:
version, cipher, peer certificate as dict or DER, verified chain), `peercert` and `cipher`,
and passes the rest to the TCP transport (peername, socket). A refused handshake sends
OpenSSL's alert before the socket is closed.

Listeners take it through `listener_factory` (TLS from the first byte: websocket, routes,
gateways, the client port with `handshake_first`), `start_tls` (the client port after INFO)
or `accept` (the MQTT port, which peeks first); the dialling side of routes and gateways
through `connect`, which checks the peer's staple inside the handshake. Used only for a
listener whose certificate is stapled; every other TLS connection keeps the stdlib path.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from OpenSSL import SSL

from .options import Options, TLSSettings
from .tls import PeerStapleRefused, TLSHandshakeError

# One recv/bio_read at a time (a TLS record carries 16 KiB at most).
_READ_BYTES = 256 * 1024


def _base_context(method: int, settings: TLSSettings) -> SSL.Context:
    """Minimum version, `cipher_suites` and `curve_preferences` as tls_options applies them
    to the stdlib's contexts."""
    from .tls_options import first_curve, openssl_cipher_list

    ctx = SSL.Context(method)
    ctx.set_min_proto_version(
        SSL.TLS1_3_VERSION if settings.min_version == "1.3" else SSL.TLS1_2_VERSION
    )
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE)
    if ciphers := openssl_cipher_list(settings.cipher_suites):
        with contextlib.suppress(SSL.Error):
            ctx.set_cipher_list(ciphers.encode())
    if curve := first_curve(settings.curve_preferences):
        from OpenSSL import crypto

        with contextlib.suppress(Exception):
            ctx.set_tmp_ecdh(crypto.get_elliptic_curve(curve))
    return ctx


def _use_certificate(ctx: SSL.Context, settings: TLSSettings) -> None:
    """The block's certificate (with `certs`, the first one: the only one stapled)."""
    cert_file, key_file = settings.cert_file, settings.key_file
    if not cert_file and settings.certs:
        cert_file, key_file = settings.certs[0]
    if cert_file:
        ctx.use_certificate_chain_file(cert_file)
        ctx.use_privatekey_file(key_file)
        ctx.check_privatekey()


def server_context(
    settings: TLSSettings, *, require_peer_cert: bool, staple: Callable[[], bytes]
) -> SSL.Context:
    """A stapling listener's context: the same certificate, verification and minimum
    version as `tls._server_context` builds for the block, plus the OCSP status callback."""
    ctx = _base_context(SSL.TLS_SERVER_METHOD, settings)
    _use_certificate(ctx, settings)
    if settings.ca_file:
        ctx.load_verify_locations(settings.ca_file)
    if require_peer_cert:
        if not settings.ca_file:
            ctx.set_default_verify_paths()
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT)

    def status_callback(conn: SSL.Connection, data: Any) -> bytes:
        return staple()

    ctx.set_ocsp_server_callback(status_callback)
    return ctx


def build_context(opts: Options, staple: Callable[[], bytes]) -> SSL.Context:
    """The stapling context of the client port."""
    from .tls import client_tls_settings

    settings = client_tls_settings(opts)
    return server_context(settings, require_peer_cert=settings.verify, staple=staple)


def client_context(settings: TLSSettings) -> SSL.Context:
    """The dialling side of a stapled route or gateway: our certificate as the client
    certificate, the peer's checked against `ca_file` (or the system roots) and the dialled
    host name unless `insecure`, and its OCSP staple asked for and handed to the layer's
    `peer_check` (a refusal fails the handshake with OpenSSL's alert, as nats-server's
    VerifyConnection does with Go's)."""
    ctx = _base_context(SSL.TLS_CLIENT_METHOD, settings)
    _use_certificate(ctx, settings)
    if settings.insecure:
        ctx.set_verify(SSL.VERIFY_NONE)
    else:
        if settings.ca_file:
            ctx.load_verify_locations(settings.ca_file)
        else:
            ctx.set_default_verify_paths()
        ctx.set_verify(SSL.VERIFY_PEER, _verify_host)
    ctx.set_ocsp_client_callback(_peer_status)
    return ctx


def _verify_host(conn: SSL.Connection, cert: Any, errno: int, depth: int, ok: int) -> bool:
    if not ok:
        return False
    layer = conn.get_app_data()
    if depth != 0 or not isinstance(layer, TLSLayer) or not layer.server_hostname:
        return True
    return host_matches(cert.to_cryptography(), layer.server_hostname)


def _peer_status(conn: SSL.Connection, data: bytes, _: Any) -> bool:
    layer = conn.get_app_data()
    return not isinstance(layer, TLSLayer) or layer.peer_status(data or b"")


def host_matches(cert: x509.Certificate, host: str) -> bool:
    """The certificate names `host`: an IP address among its IP SANs, a DNS name among its
    DNS SANs (`*.` standing for one left-most label), as Go's VerifyHostname."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return address in san.get_values_for_type(x509.IPAddress)
    wanted = host.rstrip(".").lower()
    for name in san.get_values_for_type(x509.DNSName):
        name = name.rstrip(".").lower()
        if name == wanted:
            return True
        if name.startswith("*.") and "." in wanted and wanted.split(".", 1)[1] == name[2:]:
            return True
    return False


# OpenSSL's long names, as the stdlib's getpeercert() spells a subject's attributes.
_ATTRIBUTE_NAMES = {
    NameOID.COMMON_NAME: "commonName",
    NameOID.COUNTRY_NAME: "countryName",
    NameOID.LOCALITY_NAME: "localityName",
    NameOID.STATE_OR_PROVINCE_NAME: "stateOrProvinceName",
    NameOID.STREET_ADDRESS: "streetAddress",
    NameOID.ORGANIZATION_NAME: "organizationName",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "organizationalUnitName",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.SURNAME: "surname",
    NameOID.GIVEN_NAME: "givenName",
    NameOID.TITLE: "title",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.DOMAIN_COMPONENT: "domainComponent",
    NameOID.USER_ID: "userId",
}


def _name_tuple(name: x509.Name) -> tuple[Any, ...]:
    return tuple(
        tuple((_ATTRIBUTE_NAMES.get(a.oid, a.oid.dotted_string), str(a.value)) for a in rdn)
        for rdn in name.rdns
    )


def _cert_time(moment: Any) -> str:
    return str(moment.strftime("%b %d %H:%M:%S %Y GMT"))


def certificate_dict(cert: x509.Certificate) -> dict[str, Any]:
    """The stdlib `getpeercert()` form of a certificate."""
    out: dict[str, Any] = {
        "subject": _name_tuple(cert.subject),
        "issuer": _name_tuple(cert.issuer),
        "version": cert.version.value + 1,
        "serialNumber": f"{cert.serial_number:X}",
        "notBefore": _cert_time(cert.not_valid_before_utc),
        "notAfter": _cert_time(cert.not_valid_after_utc),
    }
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return out
    names: list[tuple[str, str]] = []
    for general in san:
        if isinstance(general, x509.DNSName):
            names.append(("DNS", general.value))
        elif isinstance(general, x509.RFC822Name):
            names.append(("email", general.value))
        elif isinstance(general, x509.UniformResourceIdentifier):
            names.append(("URI", general.value))
        elif isinstance(general, x509.IPAddress):
            names.append(("IP Address", str(general.value)))
    if names:
        out["subjectAltName"] = tuple(names)
    return out


class SSLObjectView:
    """What the server reads of a stdlib SSLObject, from an OpenSSL.SSL.Connection."""

    __slots__ = ("_conn",)

    def __init__(self, conn: SSL.Connection) -> None:
        self._conn = conn

    def version(self) -> str | None:
        return self._conn.get_protocol_version_name() or None

    def cipher(self) -> tuple[str, str, int] | None:
        name = self._conn.get_cipher_name()
        if name is None:
            return None
        return name, self._conn.get_cipher_version() or "", self._conn.get_cipher_bits() or 0

    def _peer(self) -> x509.Certificate | None:
        return self._conn.get_peer_certificate(as_cryptography=True)

    def getpeercert(self, binary_form: bool = False) -> Any:
        cert = self._peer()
        if cert is None:
            return None
        if binary_form:
            return cert.public_bytes(serialization.Encoding.DER)
        return certificate_dict(cert)

    def get_verified_chain(self) -> list[bytes]:
        chain = self._conn.get_verified_chain(as_cryptography=True) or []
        return [c.public_bytes(serialization.Encoding.DER) for c in chain]


class TLSTransport(asyncio.Transport):
    """The application protocol's side of a TLSLayer."""

    def __init__(self, layer: TLSLayer) -> None:
        super().__init__()
        self._layer = layer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._layer.extra_info(name, default)

    def is_closing(self) -> bool:
        return self._layer.closing

    def close(self) -> None:
        self._layer.close()

    def abort(self) -> None:
        self._layer.abort()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._layer.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self._layer.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self._layer.pause_reading()

    def resume_reading(self) -> None:
        self._layer.resume_reading()

    def is_reading(self) -> bool:
        return not self._layer.reading_paused

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        raw = self._layer.raw
        if raw is not None:
            raw.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        raw = self._layer.raw
        return raw.get_write_buffer_size() if raw is not None else 0

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._layer.app = protocol
        self._layer._buffered = isinstance(protocol, asyncio.BufferedProtocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._layer.app


class TLSLayer(asyncio.Protocol):
    """The TCP transport's protocol: TLS between it and the application protocol.

    `waiter` (start_tls) gets the TLSTransport when the handshake is done, or
    TLSHandshakeError; with `call_connection_made` (a listener) the application protocol's
    connection_made gets it instead and a failed handshake only closes the socket.

    The server side unless `server_side` is false: then it is the dialling side (a
    `client_context`), which starts the handshake, names `server_hostname` (SNI, and the
    name the peer's certificate must carry) and hands the peer's OCSP staple and verified
    chain to `peer_check`, whose refusal (a text) fails the handshake."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        context: SSL.Context,
        app: asyncio.BaseProtocol,
        *,
        handshake_timeout: float,
        waiter: asyncio.Future[TLSTransport] | None = None,
        call_connection_made: bool = False,
        server_side: bool = True,
        server_hostname: str = "",
        peer_check: Callable[[bytes, list[x509.Certificate]], str | None] | None = None,
    ) -> None:
        self.loop = loop
        self.app: Any = app
        # a BufferedProtocol (the websocket's) is fed through its own buffer
        self._buffered = isinstance(app, asyncio.BufferedProtocol)
        self.raw: asyncio.Transport | None = None
        self.closing = False
        self.reading_paused = False
        self.server_side = server_side
        self.server_hostname = server_hostname
        self._peer_check = peer_check
        self._refusal = ""
        self._conn = SSL.Connection(context, None)
        if server_side:
            self._conn.set_accept_state()
        else:
            self._conn.set_app_data(self)  # for the verify and status callbacks
            self._conn.set_connect_state()
            if server_hostname and not _is_ip(server_hostname):
                self._conn.set_tlsext_host_name(server_hostname.encode("idna"))
            self._conn.request_ocsp()
        self._view = SSLObjectView(self._conn)
        self._transport = TLSTransport(self)
        self._waiter = waiter
        self._call_connection_made = call_connection_made
        self._handshake_timeout = handshake_timeout
        self._timer: asyncio.TimerHandle | None = None
        self._handshaken = False
        self._app_connected = False
        self._eof = False

    # -- the TCP side --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.raw = transport  # type: ignore[assignment]
        if self._handshake_timeout > 0:
            self._timer = self.loop.call_later(self._handshake_timeout, self._handshake_timed_out)
        if not self.server_side:
            self._handshake()  # the ClientHello

    def data_received(self, data: bytes) -> None:
        if self.closing and not self._handshaken:
            return
        try:
            self._conn.bio_write(data)
        except SSL.Error as e:
            self._fatal(e)
            return
        if not self._handshaken and not self._handshake():
            return
        self._deliver()

    def eof_received(self) -> bool | None:
        self._eof = True
        if not self._handshaken:
            self._fail_handshake("EOF occurred in violation of protocol")
            return None
        if self._app_connected:
            self.app.eof_received()
        return None  # the TCP transport closes; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        self.closing = True
        if not self._handshaken:
            self._fail_handshake(str(exc) if exc else "connection lost during the handshake")
        if self._app_connected:
            self._app_connected = False
            self.app.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._app_connected:
            self.app.pause_writing()

    def resume_writing(self) -> None:
        if self._app_connected:
            self.app.resume_writing()

    # -- the handshake -------------------------------------------------------------------------

    def _handshake(self) -> bool:
        try:
            self._conn.do_handshake()
        except SSL.WantReadError:
            self._flush()
            return False
        except SSL.Error as e:
            self._flush()  # the alert
            self._fail_handshake(self._refusal or _error_text(e))
            return False
        self._flush()
        self._handshaken = True
        self._cancel_timer()
        self._app_connected = True
        if self._call_connection_made:
            self.app.connection_made(self._transport)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(self._transport)
        return True

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if not self._handshaken:
            self._fail_handshake(
                f"SSL handshake is taking longer than {self._handshake_timeout} seconds: "
                "aborting the connection"
            )

    def peer_status(self, staple: bytes) -> bool:
        """The dialling side's OCSP status callback: whether the peer's staple is accepted."""
        if self._peer_check is None:
            return True
        chain = self._conn.get_verified_chain(as_cryptography=True) or []
        refusal = self._peer_check(staple, list(chain))
        if refusal is None:
            return True
        self._refusal = refusal
        return False

    def _fail_handshake(self, why: str) -> None:
        self._cancel_timer()
        if self._waiter is not None and not self._waiter.done():
            error = PeerStapleRefused(why) if self._refusal else TLSHandshakeError(why)
            self._waiter.set_exception(error)
        if not self.closing:
            self.closing = True
            if self.raw is not None:
                self.raw.close()  # after what is buffered (the alert)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- application data ----------------------------------------------------------------------

    def _deliver(self) -> None:
        """Decrypt what has arrived and hand it to the application protocol, unless reading
        is paused (then it waits in OpenSSL until resume_reading)."""
        while self._app_connected and not self.reading_paused and not self.closing:
            try:
                chunk = self._conn.recv(_READ_BYTES)
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:  # close_notify
                self._flush()
                if self._app_connected:
                    self.app.eof_received()
                self.close()
                return
            except SSL.Error as e:
                self._fatal(e)
                return
            if not chunk:
                break
            if self._buffered:
                self._feed_buffered(chunk)
            else:
                self.app.data_received(chunk)
        self._flush()

    def _feed_buffered(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self._app_connected:
            buf = memoryview(self.app.get_buffer(len(view)))
            n = min(len(buf), len(view))
            if n == 0:
                raise RuntimeError("get_buffer() returned an empty buffer")
            buf[:n] = view[:n]
            self.app.buffer_updated(n)
            view = view[n:]

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.closing or not self._handshaken:
            return
        view = memoryview(data)
        sent = 0
        try:
            while sent < len(view):
                sent += self._conn.send(view[sent:])
        except SSL.Error as e:
            self._fatal(e)
            return
        self._flush()

    def _flush(self) -> None:
        raw = self.raw
        while True:
            try:
                out = self._conn.bio_read(_READ_BYTES)
            except SSL.WantReadError:
                return
            if not out:
                return
            if raw is not None and not raw.is_closing():
                raw.write(out)

    def pause_reading(self) -> None:
        self.reading_paused = True
        if self.raw is not None and not self.raw.is_closing():
            self.raw.pause_reading()

    def resume_reading(self) -> None:
        if not self.reading_paused:
            return
        self.reading_paused = False
        if self.raw is not None and not self.raw.is_closing():
            self.raw.resume_reading()
        # What OpenSSL decrypted (or still holds) while paused.
        self.loop.call_soon(self._deliver)

    # -- closing -------------------------------------------------------------------------------

    def close(self) -> None:
        if self.closing:
            return
        self.closing = True
        if self._handshaken:
            with contextlib.suppress(SSL.Error):
                self._conn.shutdown()  # close_notify
            self._flush_raw_anyway()
        if self.raw is not None:
            self.raw.close()

    def _flush_raw_anyway(self) -> None:
        raw = self.raw
        while raw is not None:
            try:
                out = self._conn.bio_read(_READ_BYTES)
            except SSL.WantReadError:
                return
            if not out:
                return
            raw.write(out)

    def abort(self) -> None:
        self.closing = True
        if self.raw is not None:
            self.raw.abort()

    def _fatal(self, e: Exception) -> None:
        self._flush()
        self.closing = True
        if self.raw is not None:
            self.raw.abort()

    def extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object":
            return self._view
        if name == "peercert":
            return self._view.getpeercert()
        if name == "cipher":
            return self._view.cipher()
        if name == "sslcontext":
            return self._conn.get_context()
        if self.raw is None:
            return default
        return self.raw.get_extra_info(name, default)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _error_text(e: SSL.Error) -> str:
    """OpenSSL's reason, as the stdlib's SSLError would put it."""
    parts = []
    for entry in e.args[0] if e.args and isinstance(e.args[0], list) else []:
        if isinstance(entry, tuple) and len(entry) == 3:
            parts.append(str(entry[2]))
    return "[SSL] " + ", ".join(parts) if parts else str(e) or "TLS handshake failed"


async def start_tls(
    loop: asyncio.AbstractEventLoop,
    transport: asyncio.Transport,
    app: asyncio.BaseProtocol,
    context: SSL.Context,
    *,
    handshake_timeout: float,
) -> TLSTransport:
    """`loop.start_tls(..., server_side=True)` on pyOpenSSL: the TCP transport (reading
    paused or not) is taken over, and the TLSTransport returned once the handshake is done
    (data that follows it at once goes to `app.data_received`, as with asyncio's).
    TLSHandshakeError when the handshake fails or times out."""
    waiter: asyncio.Future[TLSTransport] = loop.create_future()
    layer = TLSLayer(loop, context, app, handshake_timeout=handshake_timeout, waiter=waiter)
    transport.set_protocol(layer)
    layer.connection_made(transport)
    transport.resume_reading()
    return await waiter


def listener_factory(
    loop: asyncio.AbstractEventLoop,
    context: SSL.Context,
    app_factory: Callable[[], asyncio.BaseProtocol],
    *,
    handshake_timeout: float,
) -> Callable[[], asyncio.Protocol]:
    """A protocol factory for `loop.create_server` whose connections are TLS from the first
    byte (`handshake_first`): the application protocol's connection_made comes with the
    TLSTransport once the handshake is done."""

    def make() -> asyncio.Protocol:
        return TLSLayer(
            loop,
            context,
            app_factory(),
            handshake_timeout=handshake_timeout,
            call_connection_made=True,
        )

    return make


async def connect(
    loop: asyncio.AbstractEventLoop,
    app: asyncio.BaseProtocol,
    host: str,
    port: int,
    context: SSL.Context,
    *,
    server_hostname: str,
    handshake_timeout: float,
    peer_check: Callable[[bytes, list[x509.Certificate]], str | None] | None = None,
) -> TLSTransport:
    """`loop.create_connection(..., ssl=...)` on pyOpenSSL (a `client_context`): `app`'s
    connection_made gets the TLSTransport once the handshake is done, which is also returned.
    TLSHandshakeError (PeerStapleRefused when `peer_check` refused the peer's staple) when
    it fails or times out."""
    waiter: asyncio.Future[TLSTransport] = loop.create_future()
    layer = TLSLayer(
        loop,
        context,
        app,
        handshake_timeout=handshake_timeout,
        waiter=waiter,
        call_connection_made=True,
        server_side=False,
        server_hostname=server_hostname,
        peer_check=peer_check,
    )
    try:
        await loop.create_connection(lambda: layer, host, port)
        return await waiter
    except BaseException:
        layer.abort()
        raise


async def accept(
    loop: asyncio.AbstractEventLoop,
    sock: Any,
    app: asyncio.BaseProtocol,
    context: SSL.Context,
    *,
    handshake_timeout: float,
) -> TLSTransport:
    """`loop.connect_accepted_socket(..., ssl=...)` on pyOpenSSL: the handshake of an
    accepted socket, `app`'s connection_made getting the TLSTransport once it is done (also
    returned); TLSHandshakeError when it fails or times out."""
    waiter: asyncio.Future[TLSTransport] = loop.create_future()
    layer = TLSLayer(
        loop,
        context,
        app,
        handshake_timeout=handshake_timeout,
        waiter=waiter,
        call_connection_made=True,
    )
    await loop.connect_accepted_socket(lambda: layer, sock)
    return await waiter
