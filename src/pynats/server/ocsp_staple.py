"""OCSP stapling of the server's own certificates (the top-level `ocsp {}`), as nats-server
does it on the listeners it staples: the client port, websocket and MQTT (its "Client"
certificates), the route listener ("Router") and the gateway listener and configured gateways
("Gateway"). Leaf nodes are not stapled (nats-server 2.15 leaves them to `ocsp_peer`).

`ocsp { mode: auto | always | must | never, url: "...", urls: [...] }` (or `ocsp: true`,
which is `auto`, and `ocsp: false`, which is `never`). In `auto` (the default) a certificate
carrying the OCSP Must-Staple extension (TLS feature `status_request`) is stapled; `always`
staples any certificate and refuses to start, or shuts the server down, when its status is
not good; `must` staples Must-Staple certificates and shuts down on a revoked one; `never`
staples nothing.

`staplers_for_options` decides, block by block in nats-server's order, which certificates are
stapled; `OCSPStapler` is the monitor of one certificate: it finds the issuer (the second certificate
of the cert file, or the one of `ca_file` that signed it), gets the status from memory, then
from `<store_dir>/ocsp/<sha256 of the certificate>`, then from the responders (the `urls`, or
the certificate's AIA OCSP URLs; a POST, then a GET of `<url>/<base64 request>`), checks the
response's signature and times and keeps it on disk (with `store_dir`). It is fetched again
half-way to its nextUpdate (24 h without one, 2 min when that is past). The handshake takes the
cached response (`staple()`); tls_openssl.py puts it in the TLS handshake, which Python's ssl
module cannot do. A route or gateway dialled while its certificate is stapled gets the peer's
staple checked (`peer_staple_problem`), as nats-server's dialling side does. Texts and log
lines are nats-server's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from pynats.gotime import NS_PER_S, format_duration, rfc3339

from .conf import ConfigMap
from .conf.units import go_type_name
from .config_reader import Reader, conversion_text

if TYPE_CHECKING:
    from .log import Logger
    from .options import Options, TLSSettings

MODE_AUTO = "auto"
MODE_ALWAYS = "always"
MODE_MUST = "must"
MODE_NEVER = "never"

STORE_SUBDIR = "ocsp"
DEFAULT_CHECK_INTERVAL_S = 24 * 3600.0
MIN_CHECK_INTERVAL_S = 120.0
HTTP_TIMEOUT_S = 30.0
# How nats-server names the connections of each stapled listener in its OCSP lines: the
# websocket and MQTT ports are "Client" too.
CLIENT_KIND = "Client"
ROUTER_KIND = "Router"
GATEWAY_KIND = "Gateway"

# Which listener (or dialling side) a stapler serves: the keys of `staplers_for_options`.
CLIENT_PORT = "client"
WEBSOCKET = "websocket"
MQTT = "mqtt"
ROUTES = "cluster"
GATEWAYS = "gateway"


def remote_gateway_key(name: str) -> str:
    """The stapler of a configured gateway with its own `tls {}` block (its dialling side)."""
    return f"gateway:{name}"


@dataclass
class OCSPStapleConfig:
    mode: str = MODE_AUTO
    urls: list[str] = field(default_factory=list)


# -- the configuration -----------------------------------------------------------------------


def parse_ocsp(r: Reader, m: ConfigMap, key: str) -> OCSPStapleConfig | None:
    """The top-level `ocsp`, with nats-server's checks and texts; None after an error."""
    value = m[key]
    if isinstance(value, bool):
        return OCSPStapleConfig(mode=MODE_AUTO if value else MODE_NEVER)
    if not isinstance(value, ConfigMap):
        r.error(m, key, f"error parsing ocsp config: unsupported type {go_type_name(value)}")
        return None
    cfg = OCSPStapleConfig()
    for name in value:
        v = value[name]
        if name == "mode":
            if not isinstance(v, str):
                r.error(m, key, conversion_text(v, "string"))
                return None
            mode = v.lower()
            if mode in (MODE_ALWAYS, MODE_MUST, MODE_NEVER, MODE_AUTO):
                cfg.mode = mode
            else:
                r.error(value, name, "error parsing ocsp config: unsupported ocsp mode string")
        elif name == "urls":
            # nats-server asserts a []string, which a configuration array never is
            r.error(m, key, conversion_text(v, "[]string"))
            return None
        elif name == "url":
            if not isinstance(v, str):
                r.error(m, key, conversion_text(v, "string"))
                return None
            cfg.urls = [v]
        else:
            r.error(value, name, "error parsing ocsp config: unsupported field string")
            return None
    return cfg


# -- the certificate ---------------------------------------------------------------------------


class OCSPStapleError(Exception):
    """The server cannot start: nats-server's text."""


def has_must_staple(cert: x509.Certificate) -> bool:
    """The TLS feature extension (RFC 7633) asks for `status_request`."""
    try:
        features = cert.extensions.get_extension_for_class(x509.TLSFeature).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return x509.TLSFeatureType.status_request in list(features)


def _pem_certs(path: str) -> list[x509.Certificate]:
    with open(path, "rb") as f:
        data = f.read()
    return x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data else []


def _signed(issuer: x509.Certificate, cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def find_issuer(cert_file: str, ca_file: str) -> tuple[x509.Certificate, x509.Certificate]:
    """(leaf, issuer): the issuer is the second certificate of the cert file when it signed
    the leaf, else the one of `ca_file` that did; nats-server's errors otherwise."""
    try:
        bundle = _pem_certs(cert_file)
        trusted = _pem_certs(ca_file) if ca_file else []
    except (OSError, ValueError) as e:
        raise OCSPStapleError(f"failed to parse ca_file: {e}") from None
    if not bundle:
        raise OCSPStapleError("no certificate found")
    leaf = bundle[0]
    issuer: x509.Certificate | None = None
    if len(bundle) > 1:
        issuer = bundle[1] if _signed(bundle[1], leaf) else None
    else:
        issuer = next((ca for ca in trusted if _signed(ca, leaf)), None)
    if issuer is None:
        raise OCSPStapleError("no issuers found")
    try:
        is_ca = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise OCSPStapleError(
            f"{issuer.subject.rfc4514_string()} invalid ca basic constraints: is not ca"
        )
    return leaf, issuer


def aia_ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        str(d.access_location.value)
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]


# -- responses -------------------------------------------------------------------------------


def _status_text(status: ocsp.OCSPCertStatus) -> str:
    if status == ocsp.OCSPCertStatus.GOOD:
        return "good"
    if status == ocsp.OCSPCertStatus.REVOKED:
        return "revoked"
    return "unknown"


def _time_ns(moment: datetime.datetime) -> int:
    return int(moment.timestamp()) * NS_PER_S + moment.microsecond * 1000


def _verify_signature(signer: x509.Certificate, resp: ocsp.OCSPResponse) -> None:
    key = signer.public_key()
    algorithm = resp.signature_hash_algorithm
    if isinstance(key, rsa.RSAPublicKey) and algorithm is not None:
        key.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(), algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey) and algorithm is not None:
        key.verify(resp.signature, resp.tbs_response_bytes, ec.ECDSA(algorithm))
    else:
        key.verify(resp.signature, resp.tbs_response_bytes)  # type: ignore[call-arg,union-attr]


def parse_response(raw: bytes, issuer: x509.Certificate) -> ocsp.OCSPResponse:
    """The response, its signature checked against the issuer (or a responder certificate the
    issuer signed); ValueError with the reason."""
    try:
        resp = ocsp.load_der_ocsp_response(raw)
    except ValueError as e:
        raise ValueError(f"ocsp: {e}") from None
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise ValueError(f"ocsp: error from server: {resp.response_status.name.lower()}")
    signer = issuer
    if resp.certificates:
        signer = resp.certificates[0]
        if not _signed(issuer, signer):
            raise ValueError("bad OCSP signature: responder certificate not signed by issuer")
    try:
        _verify_signature(signer, resp)
    except (InvalidSignature, TypeError, ValueError):
        raise ValueError("bad OCSP signature: crypto/rsa: verification error") from None
    return resp


def check_times(resp: ocsp.OCSPResponse, now: float | None = None) -> None:
    """nats-server's validOCSPResponse: ValueError when nextUpdate is past or thisUpdate is
    to come."""
    moment = now if now is not None else time.time()
    next_update = resp.next_update_utc
    if next_update is not None and next_update.timestamp() < moment:
        raise ValueError(f"invalid ocsp NextUpdate, is past time: {rfc3339(_time_ns(next_update))}")
    this_update = resp.this_update_utc
    if this_update.timestamp() > moment:
        raise ValueError(
            f"invalid ocsp ThisUpdate, is future time: {rfc3339(_time_ns(this_update))}"
        )


# -- the monitor -----------------------------------------------------------------------------


@dataclass
class StapleTarget:
    """One `tls {}` block whose certificate may be stapled: `key` names the listener (or
    dialling side) it serves, `kind` is nats-server's name for its connections, `settings`
    the block (its certificate is the one stapled), `cert_file` the file nats-server names in
    its lines and `ca_file` where it looks for the issuer. The websocket and MQTT blocks are
    of kind "Client" and nats-server takes those two from the client port's `tls {}` for
    them (the block's own certificate is still the one stapled)."""

    key: str
    kind: str
    settings: TLSSettings
    cert_file: str
    ca_file: str


def staple_targets(opts: Options) -> list[StapleTarget]:
    """The `tls {}` blocks nats-server considers for stapling, in its order: client port,
    websocket, MQTT, cluster, gateway, then each configured gateway with its own block (leaf
    nodes are left to `ocsp_peer`)."""
    from .tls import client_tls_settings

    targets: list[StapleTarget] = []
    client_cert = opts.tls_cert if opts.tls else ""
    client_ca = opts.tls_ca_cert if opts.tls else ""
    if opts.tls and opts.tls_cert:
        settings = client_tls_settings(opts)
        targets.append(StapleTarget(CLIENT_PORT, CLIENT_KIND, settings, client_cert, client_ca))
    if opts.websocket.is_enabled() and opts.websocket.tls is not None:
        targets.append(
            StapleTarget(WEBSOCKET, CLIENT_KIND, opts.websocket.tls, client_cert, client_ca)
        )
    if opts.mqtt.is_enabled() and opts.mqtt.tls is not None:
        targets.append(StapleTarget(MQTT, CLIENT_KIND, opts.mqtt.tls, client_cert, client_ca))
    if opts.cluster.is_enabled() and opts.cluster.tls is not None:
        tls = opts.cluster.tls
        targets.append(StapleTarget(ROUTES, ROUTER_KIND, tls, tls.cert_file, tls.ca_file))
    if opts.gateway.is_enabled():
        if opts.gateway.tls is not None:
            tls = opts.gateway.tls
            targets.append(StapleTarget(GATEWAYS, GATEWAY_KIND, tls, tls.cert_file, tls.ca_file))
        for remote in opts.gateway.gateways:
            if remote.tls is not None:
                tls = remote.tls
                key = remote_gateway_key(remote.name)
                targets.append(StapleTarget(key, GATEWAY_KIND, tls, tls.cert_file, tls.ca_file))
    return targets


def staplers_for_options(opts: Options) -> dict[str, OCSPStapler]:
    """The stapled certificates, by `StapleTarget.key`, in nats-server's order (the order of
    its `OCSP Stapling enabled for <kind> connections` lines); OCSPStapleError, with
    nats-server's text, when the server must not start. Blocking: each first status is got
    here."""
    cfg: OCSPStapleConfig | None = getattr(opts, "ocsp", None)
    staplers: dict[str, OCSPStapler] = {}
    for target in staple_targets(opts):
        stapler = OCSPStapler.for_target(target, cfg, opts.store_dir)
        if stapler is not None:
            staplers[target.key] = stapler
    return staplers


def _certificate_file(settings: TLSSettings) -> str:
    """The certificate a block serves first (with `certs`, the first of them: nats-server
    staples that one only)."""
    if settings.cert_file:
        return settings.cert_file
    return settings.certs[0][0] if settings.certs else ""


def _prepare_store_dir(store_dir: str) -> None:
    if not store_dir:
        return
    path = os.path.join(store_dir, STORE_SUBDIR)
    if not os.path.exists(path):
        try:
            os.makedirs(path, mode=0o750, exist_ok=True)
        except OSError as e:
            raise OCSPStapleError(f"could not create OCSP storage directory - {e}") from None
    elif not os.path.isdir(path):
        raise OCSPStapleError("OCSP storage directory is not a directory")


class OCSPStapler:
    """The staple of one listener's certificate: fetched, cached, refreshed."""

    def __init__(
        self,
        *,
        cert_file: str,
        leaf: x509.Certificate,
        issuer: x509.Certificate,
        urls: list[str],
        store_dir: str,
        shutdown_on_revoke: bool,
        logger: Logger | None = None,
        kind: str = CLIENT_KIND,
        target: StapleTarget | None = None,
    ) -> None:
        self.kind = kind
        self.target = target
        self.cert_file = cert_file
        self.leaf = leaf
        self.issuer = issuer
        self.urls = urls
        self.store_dir = store_dir
        self.shutdown_on_revoke = shutdown_on_revoke
        self.logger = logger
        self.raw = b""
        self.resp: ocsp.OCSPResponse | None = None
        self._task: asyncio.Task[None] | None = None
        leaf_der = leaf.public_bytes(serialization.Encoding.DER)
        self._cache_name = hashlib.sha256(leaf_der).hexdigest()

    @classmethod
    def for_target(
        cls, target: StapleTarget, cfg: OCSPStapleConfig | None, store_dir: str
    ) -> OCSPStapler | None:
        """Whether the block's certificate is stapled (None: not), as nats-server's
        NewOCSPMonitor decides; OCSPStapleError when the server must not start. The first
        status is got here (blocking: call it off the event loop)."""
        served = _certificate_file(target.settings)
        if not served:
            return None
        try:
            with open(served, "rb") as f:
                leaf = x509.load_pem_x509_certificate(f.read())
        except (OSError, ValueError) as e:
            if cfg is None:
                return None  # no `ocsp {}`: the block's own loading reports its problems
            raise OCSPStapleError(f"error parsing certificate: {e}") from None
        must_staple = has_must_staple(leaf)
        shutdown_on_revoke = False
        if cfg is not None:
            if cfg.mode == MODE_NEVER:
                return None
            if cfg.mode == MODE_ALWAYS:
                must_staple = shutdown_on_revoke = True
            elif cfg.mode == MODE_MUST and must_staple:
                shutdown_on_revoke = True
        if not must_staple:
            return None
        _prepare_store_dir(store_dir)
        leaf, issuer = find_issuer(served, target.ca_file)
        stapler = cls(
            cert_file=target.cert_file,
            leaf=leaf,
            issuer=issuer,
            urls=list(cfg.urls) if cfg is not None else [],
            store_dir=store_dir,
            shutdown_on_revoke=shutdown_on_revoke,
            kind=target.kind,
            target=target,
        )
        try:
            resp = stapler.get_status()
        except (OSError, ValueError) as e:
            raise OCSPStapleError(
                f"bad OCSP status update for certificate at '{target.cert_file}': {e}"
            ) from None
        if resp.certificate_status != ocsp.OCSPCertStatus.GOOD and shutdown_on_revoke:
            raise OCSPStapleError(
                f"found existing OCSP status for certificate at '{target.cert_file}': "
                f"{_status_text(resp.certificate_status)}"
            )
        return stapler

    # -- what the handshake staples ----------------------------------------------------------

    def staple(self) -> bytes:
        """The response to staple: the cached one while it is current, else none."""
        resp = self.resp
        if resp is None:
            return b""
        try:
            check_times(resp)
        except ValueError:
            return b""
        return self.raw

    # -- getting a status --------------------------------------------------------------------

    def get_status(self) -> ocsp.OCSPResponse:
        """From memory, then the store directory, then the responders (blocking)."""
        if self.resp is not None:
            try:
                check_times(self.resp)
                return self.resp
            except ValueError:
                pass
        try:
            return self._local_status()
        except (OSError, ValueError):
            pass
        return self.remote_status()

    def _cache_path(self) -> str:
        return os.path.join(self.store_dir, STORE_SUBDIR, self._cache_name)

    def _local_status(self) -> ocsp.OCSPResponse:
        if not self.store_dir:
            raise ValueError("store_dir not set")
        with open(self._cache_path(), "rb") as f:
            raw = f.read()
        try:
            resp = parse_response(raw, self.issuer)
        except ValueError as e:
            raise ValueError(f"failed to get local status: {e}") from None
        check_times(resp)
        self.raw, self.resp = raw, resp
        return resp

    def remote_status(self) -> ocsp.OCSPResponse:
        """Ask the responders (blocking): POST first, then GET, each URL in turn."""
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(self.leaf, self.issuer, hashes.SHA1())
            .build()
            .public_bytes(serialization.Encoding.DER)
        )
        responders = self.urls or aia_ocsp_urls(self.leaf)
        if not responders:
            raise ValueError("no available ocsp servers")
        raw = b""
        errors: list[str] = []
        for url in responders:
            url = url.rstrip("/")
            errors = []
            try:
                raw = _post(url, request)
                break
            except (OSError, ValueError) as e:
                errors.append(str(e))
            try:
                raw = _get(url, request)
                break
            except (OSError, ValueError) as e:
                errors.append(str(e))
        if errors:
            raise ValueError("exhausted ocsp servers: " + "\n".join(errors))
        try:
            resp = parse_response(raw, self.issuer)
        except ValueError as e:
            raise ValueError(f"failed to get remote status: {e}") from None
        check_times(resp)
        if self.store_dir:
            try:
                self._write_cache(raw)
            except OSError as e:
                raise ValueError(f"failed to write ocsp status: {e}") from None
        self.raw, self.resp = raw, resp
        return resp

    def _write_cache(self, raw: bytes) -> None:
        directory = os.path.join(self.store_dir, STORE_SUBDIR)
        fd, tmp = tempfile.mkstemp(prefix="tmp-cert-status", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
            os.replace(tmp, self._cache_path())
        except OSError:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise

    def next_run(self) -> float:
        """Seconds until the next fetch: half-way to nextUpdate."""
        resp = self.resp
        next_update = resp.next_update_utc if resp is not None else None
        if next_update is None:
            return DEFAULT_CHECK_INTERVAL_S
        left = (next_update.timestamp() - time.time()) / 2
        return MIN_CHECK_INTERVAL_S if left < 0 else left

    # -- the refresh loop ----------------------------------------------------------------------

    def start(
        self, loop: asyncio.AbstractEventLoop, logger: Logger, shutdown: Callable[[], object]
    ) -> None:
        """The refresh loop, logging to `logger`; `shutdown` when the status goes bad in
        `always` (or `must` for a Must-Staple certificate)."""
        self.logger = logger
        self._task = loop.create_task(self._run(shutdown))

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _good_line(self, verb: str, at: str, next_run: float) -> str:
        resp = self.resp
        next_update = resp.next_update_utc if resp is not None else None
        when = rfc3339(_time_ns(next_update)) if next_update is not None else rfc3339(0)
        return (
            f"{verb} OCSP status for {self.kind} certificate {at}: good, next update {when}, "
            f"checking again in {format_duration(round(next_run * NS_PER_S))}"
        )

    async def _run(self, shutdown: Callable[[], object]) -> None:
        log = self.logger
        assert log is not None
        resp = self.resp
        next_run = 0.0
        if resp is not None and resp.certificate_status == ocsp.OCSPCertStatus.GOOD:
            next_run = self.next_run()
            log.notice(self._good_line("Found", f"at '{self.cert_file}'", next_run))
        elif resp is not None and self.shutdown_on_revoke:
            status = _status_text(resp.certificate_status)
            log.error(
                f"Found OCSP status for {self.kind} certificate at '{self.cert_file}': {status}"
            )
            shutdown()
            return
        while True:
            await asyncio.sleep(next_run)
            try:
                resp = await asyncio.to_thread(self.remote_status)
            except (OSError, ValueError) as e:
                next_run = self.next_run()
                log.error(
                    f"Bad OCSP status update for certificate '{self.cert_file}': {e}, trying "
                    f"again in {format_duration(round(next_run * NS_PER_S))}"
                )
                continue
            if resp.certificate_status == ocsp.OCSPCertStatus.GOOD:
                next_run = self.next_run()
                log.notice(self._good_line("Received", f"'{self.cert_file}'", next_run))
                continue
            status = _status_text(resp.certificate_status)
            log.error(
                f"Received OCSP status for {self.kind} certificate '{self.cert_file}': {status}"
            )
            if self.shutdown_on_revoke:
                shutdown()
            return


# -- the dialling side: the peer's staple ------------------------------------------------------


def peer_staple_problem(
    kind: str, raw: bytes, chain: list[x509.Certificate], log: Logger
) -> str | None:
    """What a dialled route or gateway peer's staple lacks, in nats-server's words (None: it
    is good): there must be one, about the peer's verified certificate, signed by its issuer
    (or a delegate with the OCSP-signing key usage), current within the default clock skew,
    and `good`. `chain` is the verified chain, the peer's certificate first."""
    from .ocsp_peer import OCSPPeerConfig, OCSPResponseError, parse_response, response_current

    if not raw:
        return f"{kind} peer missing OCSP Staple"
    if not chain:
        return f"{kind} peer missing TLS verified chains"
    if len(chain) < 2:
        return f"failed to get issuer certificate for {kind} peer"
    try:
        resp, delegate_ok = parse_response(raw, chain[0], chain[1])
    except OCSPResponseError as e:
        return f"failed to parse OCSP response from {kind} peer: {e}"
    if not delegate_ok:
        return "OCSP staple's signer missing authorization by CA to act as OCSP signer"
    defaults = OCSPPeerConfig(clock_skew=-1, ttl_unset_next_update=-1)
    if not response_current(resp, defaults, log):
        return f"OCSP staple from {kind} peer not current"
    if resp.certificate_status != ocsp.OCSPCertStatus.GOOD:
        return (
            f"bad status for OCSP Staple from {kind} peer: {_status_text(resp.certificate_status)}"
        )
    return None


def _read_response(request: urllib.request.Request, method: str, length: int) -> bytes:
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as answer:
            return bytes(answer.read())
    except urllib.error.HTTPError as e:
        raise ValueError(
            f"non-ok http status on {method} request (reqlen={length}): {e.code}"
        ) from None


def _post(url: str, body: bytes) -> bytes:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/ocsp-request",
            "Accept": "application/ocsp-response",
        },
    )
    return _read_response(request, "POST", len(body))


def _get(url: str, body: bytes) -> bytes:
    encoded = base64.b64encode(body).decode("ascii")
    request = urllib.request.Request(f"{url}/{encoded}", method="GET")
    return _read_response(request, "GET", len(encoded))
