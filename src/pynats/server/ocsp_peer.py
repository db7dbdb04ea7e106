"""OCSP peer verification (`tls { ocsp_peer }`) and its response cache (`ocsp_cache`), as
nats-server 2.10+ checks a verified peer certificate chain.

After the TLS handshake the verified chain is known (the peer's certificate first, the trust
anchor last). A chain of one certificate (self-signed) is valid. Every other link but the
root whose certificate names an http(s) OCSP responder in its AIA extension is *eligible*;
a chain without eligible links is valid, and one with them is valid when every eligible link
gets a current `good` answer (`unknown` too with `unknown_is_good`). The peer is valid when
one of its chains is.

A link's answer comes from the cache (keyed by the base64 SHA-256 of the certificate) while
it is current, else from the responders the certificate names: an HTTP GET of
`<url>/<base64 request, query-escaped>`, as nats-server asks, with `ca_timeout` for each
try, run on the event loop. The response must be signed by the issuer, or by a certificate
the issuer signed that carries the OCSP-signing extended key usage (a delegated responder);
it is current when `next_update` (or `this_update + cache_ttl_when_next_update_unset` without
one) is not before now minus `allowed_clockskew`, and `this_update` not after now plus it.
`warn_only` logs a failure and lets the peer in; `allow_when_ca_unreachable` lets it in when
no responder answered and no revoked answer is cached.

The `local` cache keeps the answers in memory and in `<local_store>/cache.json` (read at
start, written every `save_interval` and at shutdown when something changed), in
nats-server's format: the DER response S2-compressed, base64 in JSON, so either server can
read the other's file. `none` keeps nothing. Log lines are nats-server's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import json
import os
import ssl
import tempfile
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

if TYPE_CHECKING:
    from .log import Logger
    from .options import Options

DEFAULT_CA_TIMEOUT_S = 2.0
DEFAULT_CLOCK_SKEW_S = 30.0
DEFAULT_TTL_UNSET_NEXT_UPDATE_S = 3600.0
DEFAULT_CACHE_DIR = "_rc_"
CACHE_FILE = "cache.json"
DEFAULT_SAVE_INTERVAL_S = 300.0
MIN_SAVE_INTERVAL_S = 1.0

CLIENT_REJECT = "client not OCSP valid"
SERVER_REJECT = "server not OCSP valid"
MTLS_REQUIRED = (
    "OCSP peer verification for client connections requires TLS verify (mTLS) to be enabled"
)

_STATUS_WORD = {
    ocsp.OCSPCertStatus.GOOD: "good",
    ocsp.OCSPCertStatus.REVOKED: "revoked",
    ocsp.OCSPCertStatus.UNKNOWN: "unknown",
}
_RESPONSE_STATUS_WORD = {
    ocsp.OCSPResponseStatus.MALFORMED_REQUEST: "malformed",
    ocsp.OCSPResponseStatus.INTERNAL_ERROR: "internal error",
    ocsp.OCSPResponseStatus.TRY_LATER: "try later",
    ocsp.OCSPResponseStatus.SIG_REQUIRED: "signature required",
    ocsp.OCSPResponseStatus.UNAUTHORIZED: "unauthorized",
}


@dataclass
class OCSPPeerConfig:
    """One `ocsp_peer` (a boolean, or the block); durations in seconds."""

    verify: bool = False
    ca_timeout: float = DEFAULT_CA_TIMEOUT_S
    clock_skew: float = DEFAULT_CLOCK_SKEW_S
    warn_only: bool = False
    unknown_is_good: bool = False
    allow_when_ca_unreachable: bool = False
    ttl_unset_next_update: float = DEFAULT_TTL_UNSET_NEXT_UPDATE_S


@dataclass
class OCSPCacheConfig:
    """The top-level `ocsp_cache` (a boolean, or the block)."""

    type: str = "local"  # "local" or "none"
    local_store: str = DEFAULT_CACHE_DIR
    preserve_revoked: bool = False
    save_interval: float = DEFAULT_SAVE_INTERVAL_S


# -- the peer's chain ------------------------------------------------------------------------


# `_ssl.Certificate.public_bytes` format for DER (`_ssl.ENCODING_DER`)
_ENCODING_DER = 2


def verified_chain(ssl_object: Any) -> list[x509.Certificate]:
    """The chain OpenSSL verified for the peer (its certificate first, the trust anchor
    last); [] when there is none. The stdlib's `SSLObject` names it `get_verified_chain` from
    Python 3.13 (DER bytes), 3.10-3.12 have it on the underlying `_sslobj` (`_ssl`
    certificates); a pyOpenSSL `Connection` (the stapling transport's) has its own, of
    `X509` objects."""
    getter = getattr(ssl_object, "get_verified_chain", None)
    if getter is None:
        inner = getattr(ssl_object, "_sslobj", None)
        getter = getattr(inner, "get_verified_chain", None)
    if getter is None:
        return []
    chain = []
    for cert in getter() or ():
        if isinstance(cert, bytes):
            chain.append(x509.load_der_x509_certificate(cert))
        elif hasattr(cert, "to_cryptography"):
            chain.append(cert.to_cryptography())
        else:
            chain.append(x509.load_der_x509_certificate(cert.public_bytes(_ENCODING_DER)))
    return chain


def _ocsp_urls(cert: x509.Certificate) -> list[str]:
    """The http(s) OCSP responders the certificate's AIA names, in order."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    urls = []
    for desc in aia:
        if desc.access_method != AuthorityInformationAccessOID.OCSP:
            continue
        loc = desc.access_location
        if not isinstance(loc, x509.UniformResourceIdentifier):
            continue
        parsed = urllib.parse.urlsplit(loc.value)
        if parsed.scheme in ("http", "https") and parsed.netloc:
            urls.append(loc.value)
    return urls


def subject_dn(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


def fingerprint(cert: x509.Certificate) -> str:
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    return base64.b64encode(digest).decode("ascii")


def _go_time(moment: datetime.datetime) -> str:
    """RFC 3339 with nanoseconds, as Go's time.RFC3339Nano prints a UTC time."""
    text = moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0")
    return text.rstrip(".") + "Z"


def _go_seconds(seconds: float) -> str:
    """A duration as Go prints it (30s, 1.5s, 2m0s)."""
    if seconds >= 60 and seconds == int(seconds):
        minutes, secs = divmod(int(seconds), 60)
        hours, minutes = divmod(minutes, 60)
        return (f"{hours}h" if hours else "") + f"{minutes}m{secs}s"
    return f"{seconds:g}s"


# -- responses --------------------------------------------------------------------------------


class OCSPResponseError(Exception):
    """A response that cannot be used: unparsable, an error status, or a bad signature."""


def _verify_signature(key: Any, signature: bytes, data: bytes, algorithm: Any) -> None:
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(algorithm))
    elif isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        key.verify(signature, data)
    else:
        raise OCSPResponseError("ocsp: unsupported responder key type")


def parse_response(
    raw: bytes, cert: x509.Certificate, issuer: x509.Certificate
) -> tuple[ocsp.OCSPResponse, bool]:
    """The response, checked: parsed, successful, about `cert`, signed by the issuer or by a
    certificate the issuer signed; and whether that signer is a valid delegate (the issuer
    itself, or a certificate with the OCSP-signing extended key usage)."""
    try:
        resp = ocsp.load_der_ocsp_response(raw)
    except ValueError as e:
        raise OCSPResponseError(f"ocsp: {e}") from None
    if resp.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        word = _RESPONSE_STATUS_WORD.get(resp.response_status, "unknown OCSP status")
        raise OCSPResponseError(f"ocsp: error from server: {word}")
    if resp.serial_number != cert.serial_number:
        raise OCSPResponseError("ocsp: no response matching the supplied certificate")
    signer = issuer
    embedded = resp.certificates
    if embedded:
        signer = embedded[0]
        if signer != issuer:
            try:
                signer.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature) as e:
                raise OCSPResponseError(
                    f"bad signature on embedded certificate: {e or 'invalid signature'}"
                ) from None
    algorithm = resp.signature_hash_algorithm
    try:
        _verify_signature(signer.public_key(), resp.signature, resp.tbs_response_bytes, algorithm)
    except InvalidSignature:
        raise OCSPResponseError("ocsp: bad signature on response") from None
    except (ValueError, TypeError) as e:
        raise OCSPResponseError(f"ocsp: {e}") from None
    return resp, _valid_delegate(signer, issuer)


def _valid_delegate(signer: x509.Certificate, issuer: x509.Certificate) -> bool:
    if signer == issuer:
        return True
    try:
        usage = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.OCSP_SIGNING in usage


def response_current(resp: ocsp.OCSPResponse, cfg: OCSPPeerConfig, log: Logger) -> bool:
    """Within its effectivity window, give or take the allowed clock skew."""
    skew = cfg.clock_skew if cfg.clock_skew >= 0 else DEFAULT_CLOCK_SKEW_S
    now = datetime.datetime.now(datetime.UTC)
    skew_td = datetime.timedelta(seconds=skew)
    next_update = resp.next_update_utc
    this_update = resp.this_update_utc
    if next_update is not None and next_update < now - skew_td:
        log.debug(
            f"OCSP response NextUpdate [{_go_time(next_update)}] is before now "
            f"[{_go_time(now)}] with clockskew [{_go_seconds(skew)}]"
        )
        return False
    if next_update is None:
        ttl = cfg.ttl_unset_next_update
        if ttl < 0:
            ttl = DEFAULT_TTL_UNSET_NEXT_UPDATE_S
        expiry = this_update + datetime.timedelta(seconds=ttl)
        if expiry < now - skew_td:
            log.debug(
                f"OCSP response cache expiry [{_go_time(expiry)}] is before now "
                f"[{_go_time(now)}] with clockskew [{_go_seconds(skew)}]"
            )
            return False
    if this_update > now + skew_td:
        log.debug(
            f"OCSP response ThisUpdate [{_go_time(this_update)}] is before now "
            f"[{_go_time(now)}] with clockskew [{_go_seconds(skew)}]"
        )
        return False
    return True


# -- asking the responder ------------------------------------------------------------------


class FetchError(Exception):
    pass


def request_der(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())
    return builder.build().public_bytes(serialization.Encoding.DER)


async def fetch_response(urls: list[str], der: bytes, timeout: float, log: Logger) -> bytes:
    """The first responder's answer to `der` (GET, the request in the path)."""
    if timeout <= 0:
        timeout = DEFAULT_CA_TIMEOUT_S
    if not urls:
        raise FetchError("no available OCSP servers")
    encoded = urllib.parse.quote_plus(base64.b64encode(der).decode("ascii"), safe="")
    last = ""
    for url in urls:
        log.debug(f"Trying OCSP responder url [{url}]")
        full = f"{url.rstrip('/')}/{encoded}"
        try:
            return await asyncio.wait_for(_http_get(full), timeout)
        except TimeoutError:
            last = (
                f'Get "{full}": context deadline exceeded '
                "(Client.Timeout exceeded while awaiting headers)"
            )
        except FetchError as e:
            last = str(e)
        except OSError as e:
            last = f'Get "{full}": {_dial_error(url, e)}'
    raise FetchError(f"exhausted OCSP responders: {last}")


def _dial_error(url: str, e: OSError) -> str:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    where = f"{parts.hostname}:{port}"
    if isinstance(e, ConnectionRefusedError):
        return f"dial tcp {where}: connect: connection refused"
    return f"dial tcp {where}: {(e.strerror or str(e)).lower()}"


async def _http_get(url: str) -> bytes:
    """A small HTTP/1.1 GET: the body of a 200 answer, FetchError for any other status."""
    parts = urllib.parse.urlsplit(url)
    https = parts.scheme == "https"
    host = parts.hostname or ""
    port = parts.port or (443 if https else 80)
    context = ssl.create_default_context() if https else None
    reader, writer = await asyncio.open_connection(
        host, port, ssl=context, server_hostname=host if https else None
    )
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: pynats\r\n"
            "Accept-Encoding: identity\r\nConnection: close\r\n\r\n".encode("latin-1")
        )
        await writer.drain()
        status_line = await reader.readline()
        fields = status_line.split(None, 2)
        if len(fields) < 2 or not fields[1].isdigit():
            raise FetchError(f'Get "{url}": malformed HTTP response {status_line!r}')
        status = int(fields[1])
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if status != 200:
            raise FetchError(f"bad OCSP responder http status: [{status}]")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await _read_chunked(reader)
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        return await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readline()


# -- the cache ------------------------------------------------------------------------------


@dataclass
class CacheItem:
    subject: str
    cached_at: str
    status: str
    expires: str
    raw: bytes  # the DER response


@dataclass
class ResponseCache:
    """`ocsp_cache`: responses by certificate fingerprint (`type: none` keeps nothing)."""

    config: OCSPCacheConfig
    log: Logger
    items: dict[str, CacheItem] = field(default_factory=dict)
    dirty: bool = False
    online: bool = False
    hits: int = 0
    misses: int = 0
    _timer: asyncio.TimerHandle | None = None

    @property
    def keeps(self) -> bool:
        return self.config.type == "local" and self.online

    def path(self) -> str:
        return os.path.abspath(
            os.path.join(self.config.local_store or DEFAULT_CACHE_DIR, CACHE_FILE)
        )

    def start(self, loop: asyncio.AbstractEventLoop | None) -> None:
        if self.config.type == "local":
            self.log.debug("Starting OCSP peer cache")
            self._load()
            if loop is not None:
                self._timer = loop.call_later(self._interval(), self._on_timer, loop)
        self.online = True
        self.log.notice(f"OCSP peer cache online, type [{self.config.type}]")

    def stop(self) -> None:
        if self.config.type != "local":
            self.online = False
            return
        self.log.debug("Stopping OCSP peer cache")
        self.online = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.save()

    def _interval(self) -> float:
        return max(float(int(self.config.save_interval)), MIN_SAVE_INTERVAL_S)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self.log.debug("OCSP peer cache save timer expired")
        self.save()
        if self.online:
            self._timer = loop.call_later(self._interval(), self._on_timer, loop)

    def get(self, key: str) -> bytes | None:
        if not self.keeps:
            return None
        item = self.items.get(key)
        if item is None:
            self.misses += 1
            self.log.debug(f"OCSP peer cache miss for key [{key}]")
            return None
        self.hits += 1
        self.log.debug(f"OCSP peer cache hit for key [{key}]")
        return item.raw

    def put(self, key: str, resp: ocsp.OCSPResponse, raw: bytes, subject: str) -> None:
        if not self.keeps:
            return
        self.log.debug(f"Caching OCSP response for [{subject}], key [{key}]")
        compressed = _compress(raw)
        self.log.debug(f"OCSP response compression ratio: [{len(compressed) / len(raw):f}]")
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        next_update = resp.next_update_utc
        self.items[key] = CacheItem(
            subject=subject,
            cached_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            status=_STATUS_WORD.get(resp.certificate_status, "unknown"),
            expires=_go_time(next_update) if next_update else "0001-01-01T00:00:00Z",
            raw=raw,
        )
        self.dirty = True

    def delete(self, key: str) -> None:
        if not self.keeps:
            return
        item = self.items.get(key)
        if item is None:
            return
        # the hit that found this answer counts as a miss after all
        self.hits -= 1
        self.misses += 1
        if item.status == "revoked" and self.config.preserve_revoked:
            self.log.debug(f"Revoked OCSP response for key [{key}] preserved by cache policy")
            return
        self.log.debug(f"Deleting OCSP peer cached response for key [{key}]")
        del self.items[key]
        self.dirty = True

    def varz(self) -> dict[str, Any] | None:
        """`/varz ocsp_peer_cache`: the local cache's counts (None for `type: none`)."""
        if self.config.type != "local":
            return None
        statuses = [item.status for item in self.items.values()]
        return {
            "cache_type": "local",
            "cache_hits": self.hits,
            "cache_misses": self.misses,
            "cached_responses": len(statuses),
            "cached_revoked_responses": statuses.count("revoked"),
            "cached_good_responses": statuses.count("good"),
            "cached_unknown_responses": statuses.count("unknown"),
        }

    def _load(self) -> None:
        from pynats.jetstream.s2 import S2Decoder, S2Error

        store = self.path()
        self.log.debug(f"Loading OCSP peer cache [{store}]")
        self.items = {}
        try:
            with open(store, "rb") as f:
                data = json.loads(f.read())
        except FileNotFoundError:
            self.log.debug("No OCSP peer cache found, starting with empty cache")
            return
        except (OSError, ValueError) as e:
            self.log.warn(f"Unable to load OCSP peer cache: {e}")
            self.dirty = True
            return
        if not isinstance(data, dict):
            self.log.warn("Unable to load OCSP peer cache: not a JSON object")
            self.dirty = True
            return
        for key, entry in data.items():
            try:
                raw = S2Decoder().feed(base64.b64decode(entry["resp"]))
                self.items[key] = CacheItem(
                    subject=str(entry.get("subject", "")),
                    cached_at=str(entry.get("cached_at", "")),
                    status=str(entry.get("resp_status", "unknown")),
                    expires=str(entry.get("resp_expires", "")),
                    raw=raw,
                )
            except (KeyError, TypeError, ValueError, S2Error) as e:
                self.log.error(f"Unable to decompress OCSP response for key [{key}]: {e}")
        self.dirty = False

    def save(self) -> None:
        if not self.dirty:
            return
        self.log.debug("OCSP peer cache is dirty, saving")
        directory = self.config.local_store or DEFAULT_CACHE_DIR
        store = self.path()
        self.log.debug(f"Saving OCSP peer cache [{store}]")
        out = {}
        for key, item in self.items.items():
            compressed = _compress(item.raw)
            entry = {"cached_at": item.cached_at, "resp_status": item.status}
            if item.subject:
                entry = {"subject": item.subject, **entry}
            entry["resp_expires"] = item.expires
            entry["resp"] = base64.b64encode(compressed).decode("ascii")
            out[key] = entry
        text = json.dumps(out, indent=1).encode()
        try:
            os.makedirs(directory, mode=0o750, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix="ocsprc-", dir=directory)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, store)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        except OSError as e:
            self.log.error(f"Unable to save OCSP peer cache: {e}")
            return
        self.dirty = False
        self.log.debug(f"Saved OCSP peer cache successfully ({len(text)} bytes)")


def _compress(raw: bytes) -> bytes:
    """An S2 stream, as nats-server keeps a response in its cache file."""
    from pynats.jetstream.s2 import S2Encoder

    enc = S2Encoder()
    return enc.write(raw) + enc.flush()


# -- the decision ---------------------------------------------------------------------------


class OCSPPeerVerifier:
    """The server's OCSP peer checks: one cache, shared by every listener."""

    def __init__(self, log: Logger, cache_config: OCSPCacheConfig | None) -> None:
        self.log = log
        self.cache = ResponseCache(cache_config or OCSPCacheConfig(), log)

    def start(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.cache.start(loop)

    def stop(self) -> None:
        self.cache.stop()

    async def client_valid(self, ssl_object: Any, cfg: OCSPPeerConfig) -> bool:
        chains = [verified_chain(ssl_object)]
        self.log.debug(f"Peer OCSP enabled: {len(chains)} TLS client chain(s) will be evaluated")
        return await self.peer_valid(chains, cfg)

    async def server_valid(self, ssl_object: Any, cfg: OCSPPeerConfig) -> bool:
        chains = [verified_chain(ssl_object)]
        self.log.debug(f"Peer OCSP enabled: {len(chains)} TLS server chain(s) will be evaluated")
        return await self.peer_valid(chains, cfg)

    async def peer_valid(self, chains: list[list[x509.Certificate]], cfg: OCSPPeerConfig) -> bool:
        if not chains or not chains[0]:
            self.log.error("Peer certificate is nil, rejecting OCSP peer")
            return False
        for index, chain in enumerate(chains):
            self.log.debug(f"Chain [{index}]: {len(chain)} total link(s)")
            if len(chain) == 1:
                self.log.debug(f"Chain [{index}] is self-signed, thus peer is valid")
                return True
            links = []
            for pos, cert in enumerate(chain[:-1]):
                urls = _ocsp_urls(cert)
                if urls:
                    links.append((cert, chain[pos + 1], urls))
            if not links:
                self.log.debug(f"Chain [{index}] has no OCSP eligible links, thus peer is valid")
                return True
            self.log.debug(f"Chain [{index}] has {len(links)} OCSP eligible link(s)")
            valid = True
            for cert, issuer, urls in links:
                bad = await self.link_good(cert, issuer, urls, cfg)
                if bad:
                    self.log.debug(bad)
                    valid = False
                    break
            if valid:
                self.log.debug(
                    f"Chain [{index}] is OCSP valid for all eligible links, thus peer is valid"
                )
                return True
        self.log.debug("No OCSP valid chains, thus peer is invalid")
        return False

    async def link_good(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        urls: list[str],
        cfg: OCSPPeerConfig,
    ) -> str:
        """ "" when the link passes, else the reason it does not."""
        log = self.log
        key = fingerprint(cert)
        subject = subject_dn(cert)
        resp: ocsp.OCSPResponse | None = None
        cached_revocation = False
        log.debug(f"Checking OCSP peer cache for [{subject}], key [{key}]")
        raw = self.cache.get(key)
        if raw:
            try:
                cached, delegate_ok = parse_response(raw, cert, issuer)
            except OCSPResponseError:
                log.debug(f"Invalid cached OCSP response for [{subject}] with fingerprint [{key}]")
                self.cache.delete(key)
            else:
                if not delegate_ok:
                    # nats-server leaves out the fingerprint here; Go prints the hole so
                    log.debug(
                        f"Invalid cached OCSP response for [{subject}] "
                        "with fingerprint [%!s(MISSING)]"
                    )
                    self.cache.delete(key)
                else:
                    word = _STATUS_WORD.get(cached.certificate_status, "unknown")
                    if response_current(cached, cfg, log):
                        log.debug(f"Cached OCSP response is current, status [{word}]")
                        resp = cached
                    else:
                        log.debug(f"Cached OCSP response is expired, status [{word}]")
                        self.cache.delete(key)
                    cached_revocation = cached.certificate_status == ocsp.OCSPCertStatus.REVOKED
        if resp is None:
            try:
                raw = await fetch_response(urls, request_der(cert, issuer), cfg.ca_timeout, log)
            except FetchError as e:
                log.warn(
                    f"Attempt to obtain OCSP response from CA responder for [{subject}] failed: {e}"
                )
                if cfg.warn_only:
                    log.warn(f"OCSP verify fail for [{subject}] but WarnOnly is true so allowing")
                    return ""
                if cfg.allow_when_ca_unreachable and not cached_revocation:
                    log.warn(
                        f"Failed to obtain OCSP CA response for [{subject}] but "
                        "AllowWhenCAUnreachable set; no cached revocation so allowing"
                    )
                    return ""
                if cfg.allow_when_ca_unreachable:
                    log.warn(
                        f"Failed to obtain OCSP CA response for [{subject}] but "
                        "AllowWhenCAUnreachable set; cached revocation exists so rejecting"
                    )
                return "Failed OCSP response fetch"
            try:
                fresh, delegate_ok = parse_response(raw, cert, issuer)
            except OCSPResponseError as e:
                log.error(f"Could not parse OCSP CA response for [{subject}]: {e}")
                if cfg.warn_only:
                    log.warn(f"OCSP verify fail for [{subject}] but WarnOnly is true so allowing")
                    return ""
                return "Failed OCSP response parse"
            if not delegate_ok:
                log.warn(f"Invalid OCSP response delegation: {subject}")
                if cfg.warn_only:
                    log.warn(f"OCSP verify fail for [{subject}] but WarnOnly is true so allowing")
                    return ""
                return f"Invalid OCSP response delegation: {subject}"
            if not response_current(fresh, cfg, log):
                log.warn(f"New OCSP CA response obtained for [{subject}] but not current")
                if cfg.warn_only:
                    log.warn(f"OCSP verify fail for [{subject}] but WarnOnly is true so allowing")
                    return ""
                return "OCSP response not in effectivity window"
            self.cache.put(key, fresh, raw, subject)
            resp = fresh
        status = resp.certificate_status
        if status == ocsp.OCSPCertStatus.REVOKED or (
            status == ocsp.OCSPCertStatus.UNKNOWN and not cfg.unknown_is_good
        ):
            word = _STATUS_WORD[status]
            log.warn(f"OCSP verify fail for [{subject}] with CA status [{word}]")
            if cfg.warn_only:
                log.warn(f"OCSP verify fail for [{subject}] but WarnOnly is true so allowing")
                return ""
            return f"Invalid OCSP response status: {word}"
        log.debug(f"OCSP verify pass for [{subject}]")
        return ""


def ocsp_peer_configs(opts: Options) -> list[OCSPPeerConfig]:
    """The `ocsp_peer` settings that check peers: the client listener's, the websocket
    listener's, the leaf node listener's and the leaf remotes' (nats-server does not check
    routes' peers with it: they are the `ocsp` option's)."""
    found = []
    if opts.tls and opts.tls_ocsp_peer is not None:
        found.append(opts.tls_ocsp_peer)
    ws = opts.websocket.tls
    if ws is not None and ws.ocsp_peer is not None:
        found.append(ws.ocsp_peer)
    leaf = opts.leafnodes
    if leaf.tls is not None and leaf.tls.ocsp_peer is not None:
        found.append(leaf.tls.ocsp_peer)
    for remote in leaf.remotes:
        if remote.tls is not None and remote.tls.ocsp_peer is not None:
            found.append(remote.tls.ocsp_peer)
    return [cfg for cfg in found if cfg.verify]
