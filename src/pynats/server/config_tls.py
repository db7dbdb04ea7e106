"""`tls {}` blocks as nats-server's `parseTLS` and `GenTLSConfig` read them.

One reader for every place a TLS block appears (the client listener, routes, leaf nodes,
websocket): keys and their checks, then the certificate files, loaded while reading so that
`-t` refuses what the start would refuse. The result is a `TLSSettings` (`options.py`) plus
the handshake-first choice, which only listeners use.
"""

from __future__ import annotations

import dataclasses

from pynats.gotime import NS_PER_S, DurationError, parse_duration

from .conf import ConfigMap
from .conf.units import go_quote, go_type_name
from .config_reader import Reader, conversion_text, element_position, go_value
from .options import Options, TLSSettings
from .tls import check_tls_files
from .tls_options import CIPHER_SUITES, CURVES, INSECURE_CIPHER_SUITES, pinned_key_ok


@dataclasses.dataclass
class TLSBlock:
    settings: TLSSettings
    handshake_first: bool = False
    handshake_first_fallback: float = 0.0


_TLS_BOOLEANS = (
    "insecure",
    "verify",
    "verify_and_map",
    "verify_cert_and_check_known_urls",
    "allow_insecure_cipher_suites",
)
_TLS_VERSIONS = {"1.0": "TLS 1.0", "1.1": "TLS 1.1", "1.2": "", "1.3": ""}
# The Windows certificate store's keys: accepted and noted (see docs/options.md).
_TLS_UNSUPPORTED = (
    "cert_match_by",
    "cert_match",
    "ca_certs_match",
    "cert_match_skip_invalid",
)
_SPKI_TEXT = "hex-encoded sha256 of DER encoded SubjectPublicKeyInfo"


# The Windows certificate stores nats-server can take its certificate from (Windows only).
_WINDOWS_CERT_STORES = ("windowscurrentuser", "windowslocalmachine")


def _cert_store_refusal(value: object) -> str:
    """nats-server on a system other than Windows: every `cert_store` is refused."""
    if not isinstance(value, str) or not value:
        return "expected 'cert_store' to be a valid non-empty string"
    if value.lower() not in _WINDOWS_CERT_STORES:
        return "cert store type not implemented"
    return "cert_store not compatible with current operating system"


def tls_block(r: Reader, m: ConfigMap, key: str, *, client_facing: bool) -> TLSBlock | None:
    """A `tls {}` block as nats-server's `parseTLS` + `GenTLSConfig` read it: the first
    problem stops the block (reported at the inner key, or at `tls` for the files), and the
    certificate files are loaded now, so `-t` refuses what the start would refuse.
    `client_facing` is nats-server's `isClientCtx`: the top-level, leaf node and websocket
    blocks, where `verify_cert_and_check_known_urls` is refused (routes accept it)."""
    block = r.mapping(m, key)
    if block is None:
        return None
    parsed = TLSBlock(TLSSettings())
    tls = parsed.settings
    for k in block:
        lk = k.lower()
        v = block[k]
        if lk in ("cert_file", "key_file", "ca_file"):
            if not isinstance(v, str):
                r.error(block, k, f"error parsing tls config, expected '{lk}' to be filename")
                return None
            setattr(tls, lk, v)
        elif lk in _TLS_BOOLEANS:
            if not isinstance(v, bool):
                r.error(block, k, f"error parsing tls config, expected '{lk}' to be a boolean")
                return None
            if lk == "verify_cert_and_check_known_urls" and v and client_facing:
                r.error(block, k, "verify_cert_and_check_known_urls not supported in this context")
                return None
            if lk == "insecure":
                tls.insecure = v
            elif lk == "allow_insecure_cipher_suites":
                tls.allow_insecure_cipher_suites = v
            elif lk == "verify":
                tls.verify = v
            elif lk == "verify_and_map":
                tls.verify = tls.verify or v
                tls.verify_and_map = v
            elif lk == "verify_cert_and_check_known_urls":
                tls.verify = tls.verify or v
                tls.verify_cert_and_check_known_urls = v
        elif lk == "timeout":
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                r.error(block, k, "error parsing tls config, 'timeout' wrong type")
                return None
            if isinstance(v, str):
                try:
                    tls.timeout = parse_duration(v) / NS_PER_S
                except DurationError as e:
                    r.error(block, k, f"error parsing tls config, 'timeout' {e}")
                    return None
            else:
                tls.timeout = float(v)
        elif lk == "min_version":
            if not isinstance(v, str):
                r.error(
                    block, k, f"error parsing tls config: 'min_version' wrong type: {go_value(v)}"
                )
                return None
            if v not in _TLS_VERSIONS:
                r.error(block, k, f"error parsing tls config: unknown version: {v}")
                return None
            if _TLS_VERSIONS[v]:
                r.error(
                    block,
                    k,
                    f"error parsing tls config: unsupported TLS version: {_TLS_VERSIONS[v]}",
                )
                return None
            tls.min_version = v
        elif lk in ("handshake_first", "first", "immediate"):
            if not tls_handshake_first(r, block, k, parsed):
                return None
        elif lk == "cert_store":
            r.error(block, k, _cert_store_refusal(v))
            return None
        elif lk == "ocsp_peer":
            from .config_ocsp import ocsp_peer

            peer = ocsp_peer(r, block, k)
            if peer is None:
                return None
            tls.ocsp_peer = peer
        elif lk in ("cipher_suites", "curve_preferences"):
            names = _names(r, block, k, CIPHER_SUITES if lk == "cipher_suites" else CURVES)
            if names is None:
                return None
            if lk == "cipher_suites":
                tls.cipher_suites = names
            else:
                tls.curve_preferences = names
        elif lk == "pinned_certs":
            pinned = _pinned_certs(r, block, k)
            if pinned is None:
                return None
            tls.pinned_certs = pinned
        elif lk == "connection_rate_limit":
            if isinstance(v, bool) or not isinstance(v, int):
                r.error(block, k, "error parsing tls config, 'connection_rate_limit' wrong type")
                return None
            tls.rate_limit = v
        elif lk in ("certs", "certificates"):
            certs = _certs(r, block, k)
            if certs is None:
                return None
            tls.certs = certs
        elif lk in _TLS_UNSUPPORTED:
            r.unsupported(block, k)
        else:
            r.error(block, k, f'error parsing tls config, unknown field "{k}"')
            return None
    insecure = [name for name in tls.cipher_suites if name in INSECURE_CIPHER_SUITES]
    if insecure and not tls.allow_insecure_cipher_suites:
        r.error(
            m,
            key,
            "insecure cipher suites configured without 'allow_insecure_cipher_suites' option "
            f"set: {', '.join(insecure)}",
        )
        return None
    problem = check_tls_files(tls)
    if problem:
        r.error(m, key, problem)
        return None
    return parsed


def _names(r: Reader, m: ConfigMap, key: str, known: dict[str, str | None]) -> list[str] | None:
    """`cipher_suites` / `curve_preferences`: a non-empty list of Go's names."""
    v = m[key]
    if not isinstance(v, list):
        r.error(
            m,
            key,
            f"interface conversion: interface {{}} is {go_type_name(v)}, not []interface {{}}",
        )
        return None
    if not v:
        r.error(m, key, f"error parsing tls config, '{key.lower()}' cannot be empty")
        return None
    what = "cipher" if known is CIPHER_SUITES else "curve preference"
    names: list[str] = []
    for i, name in enumerate(v):
        if not isinstance(name, str):
            r.error_at(element_position(v, i), conversion_text(name, "string"))
            return None
        if name not in known:
            r.error_at(element_position(v, i), f"unrecognized {what} {name}")
            return None
        names.append(name)
    return names


def _pinned_certs(r: Reader, m: ConfigMap, key: str) -> frozenset[str] | None:
    v = m[key]
    if not isinstance(v, list):
        r.error(
            m,
            key,
            f"error parsing tls config, expected 'pinned_certs' to be a list of {_SPKI_TEXT}",
        )
        return None
    keys: set[str] = set()
    for i, entry in enumerate(v):
        if not isinstance(entry, str):
            r.error_at(element_position(v, i), conversion_text(entry, "string"))
            return None
        if not pinned_key_ok(entry):
            r.error_at(
                element_position(v, i),
                f"error parsing tls config, 'pinned_certs' key {entry} does not look like "
                + _SPKI_TEXT,
            )
            return None
        keys.add(entry.lower())
    return frozenset(keys)


def _certs(r: Reader, m: ConfigMap, key: str) -> list[tuple[str, str]] | None:
    """`certs: [{cert_file, key_file}, ...]` (also spelled `certificates`)."""
    v = m[key]
    if not isinstance(v, list):
        r.error(m, key, f"error parsing certificates config: unsupported type {go_type_name(v)}")
        return None
    pairs: list[tuple[str, str]] = []
    for i, entry in enumerate(v):
        if not isinstance(entry, ConfigMap):
            r.error_at(
                element_position(v, i),
                f"error parsing certificates config: unsupported type {go_type_name(entry)}",
            )
            return None
        files = {"cert_file": "", "key_file": ""}
        for field in entry:
            value = entry[field]
            if not isinstance(value, str):
                r.error(
                    entry,
                    field,
                    f"error parsing certificates config: unsupported type {go_type_name(value)}",
                )
                return None
            if field not in files:
                r.error(entry, field, f'error parsing tls certs config, unknown field "{field}"')
                return None
            files[field] = value
        if not files["cert_file"] or not files["key_file"]:
            # at the last value nats-server read (with one key, that key's)
            last = list(entry)[-1] if entry else None
            r.error_at(
                entry.position(last) if last is not None else element_position(v, i),
                "error parsing certificates config: both 'cert_file' and 'cert_key' options "
                "are required",
            )
            return None
        pairs.append((files["cert_file"], files["key_file"]))
    return pairs


def tls_handshake_first(r: Reader, m: ConfigMap, key: str, parsed: TLSBlock) -> bool:
    v = m[key]
    if isinstance(v, bool):
        parsed.handshake_first = v
        return True
    if not isinstance(v, str):
        r.error(m, key, f'field "{key}" should be a boolean or a string, got {go_type_name(v)}')
        return False
    word = v.lower()
    if word in ("true", "on", "false", "off"):
        parsed.handshake_first = word in ("true", "on")
    elif word in ("auto", "auto_fallback"):
        parsed.handshake_first, parsed.handshake_first_fallback = True, 0.05
    else:
        try:
            parsed.handshake_first_fallback = parse_duration(v) / NS_PER_S
        except DurationError:
            r.error(m, key, f'field "{key}"\'s value {go_quote(v)} is invalid')
            return False
        parsed.handshake_first = True
    return True


def parse_tls(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    """The top-level `tls {}`: the client listener's TLS."""
    parsed = tls_block(r, m, key, client_facing=True)
    if parsed is None:
        return
    tls = parsed.settings
    o.tls = True
    o.tls_cert, o.tls_key, o.tls_ca_cert = tls.cert_file, tls.key_file, tls.ca_file
    o.tls_verify, o.tls_map = tls.verify, tls.verify_and_map
    o.tls_timeout, o.tls_min_version = tls.timeout, tls.min_version
    o.tls_ocsp_peer = tls.ocsp_peer
    o.tls_cipher_suites = tls.cipher_suites
    o.tls_curve_preferences = tls.curve_preferences
    o.tls_pinned_certs = tls.pinned_certs
    o.tls_rate_limit = tls.rate_limit
    o.tls_certs = tls.certs
    if tls.certs:  # the first certificate is the default one (no SNI, or none matches)
        o.tls_cert, o.tls_key = tls.certs[0]
    o.tls_handshake_first = parsed.handshake_first
    o.tls_handshake_first_fallback = parsed.handshake_first_fallback
