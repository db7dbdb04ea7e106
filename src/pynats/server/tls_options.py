"""The `tls {}` keys that tune a TLS block beyond its certificate and verification:
`cipher_suites`, `curve_preferences`, `pinned_certs`, `connection_rate_limit` and `certs`.

nats-server takes Go's names for cipher suites and curves (crypto/tls spells them, e.g.
`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, `CurveP256`); here each is mapped to the name
OpenSSL knows. What nats-server refuses while reading (an unknown name, an insecure suite
without `allow_insecure_cipher_suites`, a pinned key that is not a SHA-256 in hex) is
refused in its words by `config_tls.py`; this module holds the tables and the mechanisms:

- `apply_ciphers_and_curves`: the TLS 1.2 suites go to `SSLContext.set_ciphers`. As in Go,
  the TLS 1.3 suites cannot be chosen (Go accepts their names and ignores them). The
  curves: Python's ssl sets one group only (`set_ecdh_curve`), so the first curve of the
  list OpenSSL knows is the only one offered; Go offers them all, in that order.
- `spki_sha256`: a pinned certificate is named by the SHA-256 of its DER
  SubjectPublicKeyInfo, in lower-case hex (nats-server's `matchesPinnedCert`).
- `RateCounter`: `connection_rate_limit`, TLS handshakes a second on the client port, as
  nats-server counts them (a window of one second opened by the first connection after the
  last window; blocked connections count too).
- `sni_selector`: with `certs`, the certificate is chosen by the server name the client
  sends (SNI), the first whose DNS names match; without a match or without SNI, the first
  one (Go's `tls.Config.Certificates` choice).
"""

from __future__ import annotations

import hashlib
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any

# Go's cipher suite names (crypto/tls `CipherSuites()` and `InsecureCipherSuites()`) and
# OpenSSL's names for them; None for the TLS 1.3 suites, which cannot be configured.
CIPHER_SUITES: dict[str, str | None] = {
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    # insecure: refused unless `allow_insecure_cipher_suites`
    "TLS_RSA_WITH_RC4_128_SHA": "RC4-SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA": "DES-CBC3-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256": "AES128-SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA": "ECDHE-ECDSA-RC4-SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA": "ECDHE-RSA-RC4-SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA": "ECDHE-RSA-DES-CBC3-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256": "ECDHE-ECDSA-AES128-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256": "ECDHE-RSA-AES128-SHA256",
}
INSECURE_CIPHER_SUITES = frozenset(
    {
        "TLS_RSA_WITH_RC4_128_SHA",
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA256",
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    }
)

# Go's curve names and OpenSSL's; None for the post-quantum hybrids nats-server accepts,
# which this OpenSSL (through Python's ssl) cannot offer.
CURVES: dict[str, str | None] = {
    "X25519": "X25519",
    "CurveP256": "prime256v1",
    "CurveP384": "secp384r1",
    "CurveP521": "secp521r1",
    "X25519MLKEM768": None,
    "SecP256r1MLKEM768": None,
    "SecP384r1MLKEM1024": None,
}

_GO_NAMES = {openssl: go for go, openssl in CIPHER_SUITES.items() if openssl}

_HEX = frozenset("0123456789abcdef")


def go_cipher_name(openssl_name: str) -> str:
    """The suite as Go names it (/connz `tls_cipher_suite`); the TLS 1.3 suites are spelled
    alike, an unknown one stays OpenSSL's."""
    return _GO_NAMES.get(openssl_name, openssl_name)


def pinned_key_ok(key: str) -> bool:
    """nats-server's check of a `pinned_certs` entry: 64 hex digits (either case)."""
    return len(key) == 64 and set(key.lower()) <= _HEX


def apply_ciphers_and_curves(
    ctx: ssl.SSLContext, cipher_suites: Sequence[str], curves: Sequence[str]
) -> None:
    """Restrict `ctx` to the configured TLS 1.2 suites and the first usable curve."""
    openssl = [name for go in cipher_suites if (name := CIPHER_SUITES.get(go))]
    if openssl:
        try:
            ctx.set_ciphers(":".join(openssl))
        except ssl.SSLError:
            pass  # none of them built into this OpenSSL: its defaults stay
    for go in curves:
        name = CURVES.get(go)
        if name is None:
            continue
        try:
            ctx.set_ecdh_curve(name)
        except (ValueError, ssl.SSLError):
            continue
        break


def openssl_cipher_list(cipher_suites: Sequence[str]) -> str:
    """The OpenSSL cipher string for the pyOpenSSL layer ("" = its defaults)."""
    return ":".join(name for go in cipher_suites if (name := CIPHER_SUITES.get(go)))


def first_curve(curves: Sequence[str]) -> str:
    """The OpenSSL name of the first configured curve it knows ("" for none)."""
    for go in curves:
        name = CURVES.get(go)
        if name:
            return name
    return ""


# -- pinned certificates ---------------------------------------------------------------------


def _der_item(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, end) of the DER element at `at`."""
    tag = data[at]
    length = data[at + 1]
    start = at + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    return tag, start, start + length


def spki_sha256(cert_der: bytes) -> str:
    """The lower-case hex SHA-256 of the certificate's DER SubjectPublicKeyInfo, as written
    in the certificate (its seventh field of tbsCertificate, counting the optional version)."""
    _, cert_start, _ = _der_item(cert_der, 0)
    _, at, _ = _der_item(cert_der, cert_start)  # tbsCertificate's content
    tag, _, end = _der_item(cert_der, at)
    if tag == 0xA0:  # [0] version
        at = end
    for _ in range(5):  # serialNumber, signature, issuer, validity, subject
        _, _, at = _der_item(cert_der, at)
    _, _, end = _der_item(cert_der, at)
    return hashlib.sha256(cert_der[at:end]).hexdigest()


def peer_key_id(ssl_object: Any) -> str:
    """The pinning id of the peer's certificate, "" when it sent none."""
    if ssl_object is None:
        return ""
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return ""
    try:
        return spki_sha256(der)
    except (IndexError, ValueError):
        return ""


def unpinned(ssl_object: Any, pinned: frozenset[str] | None) -> str | None:
    """None when `pinned_certs` lets the peer in (or there is no pinning); else nats-server's
    debug line about the refused peer (the connection then fails as a handshake would, with
    `NOT_PINNED`)."""
    if pinned is None:
        return None
    key_id = peer_key_id(ssl_object)
    if key_id and key_id in pinned:
        return None
    if not key_id:
        return "Failed pinned cert test as client did not provide a certificate"
    return f"Failed pinned cert test for key id: {key_id}"


NOT_PINNED = "certificate not pinned"


# -- connection_rate_limit ---------------------------------------------------------------------


class RateCounter:
    """At most `limit` allowed a second; the window opens with the first call after the
    previous one ended, and every call inside it counts (blocked ones too)."""

    def __init__(self, limit: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.count = 0
        self.blocked = 0
        self.end = 0.0
        self._clock = clock

    def allow(self) -> bool:
        now = self._clock()
        if now > self.end:
            self.count = 0
            self.end = now + 1.0
        else:
            self.count += 1
        allowed = self.count < self.limit
        if not allowed:
            self.blocked += 1
        return allowed

    def take_blocked(self) -> int:
        blocked, self.blocked = self.blocked, 0
        return blocked


# -- certs: several certificates chosen by SNI ----------------------------------------------------


def certificate_dns_names(cert_file: str) -> list[str]:
    """The DNS names of the certificate file's subjectAltName (its CN without one)."""
    try:
        decoded = ssl._ssl._test_decode_cert(cert_file)  # type: ignore[attr-defined]
    except Exception:  # unreadable: it matches no name (the files were checked at reading)
        return []
    names = [v for kind, v in decoded.get("subjectAltName", ()) if kind == "DNS"]
    return [n.lower() for n in names]


def name_matches(pattern: str, host: str) -> bool:
    """Go's host name match: case-insensitive, a leading `*.` stands for one label."""
    host = host.lower().rstrip(".")
    pattern = pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def sni_selector(
    contexts: Sequence[tuple[ssl.SSLContext, list[str]]],
) -> Callable[[ssl.SSLObject, str | None, ssl.SSLContext], None]:
    """An `sni_callback` switching to the first context whose certificate names the server
    name; the first context (the one the callback is set on) otherwise."""

    def pick(ssl_object: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        if not server_name:
            return
        for index, (ctx, names) in enumerate(contexts):
            if any(name_matches(n, server_name) for n in names):
                if index:
                    ssl_object.context = ctx
                return

    return pick
