"""`tls { ocsp_peer }` and the top-level `ocsp_cache`, read with nats-server's checks and
texts (its `parseOCSPPeer` and `parseOCSPResponseCache`). What they do is `ocsp_peer.py`.

Both take a boolean (short form: on with the defaults, or off) or a block. Durations are
seconds (integer or float) or Go duration strings; a negative one keeps the default.
"""

from __future__ import annotations

from typing import Any

from pynats.gotime import NS_PER_S, DurationError, parse_duration

from .conf import ConfigMap
from .conf.units import go_type_name
from .config_reader import Reader
from .ocsp_peer import MIN_SAVE_INTERVAL_S, OCSPCacheConfig, OCSPPeerConfig

_PEER_BOOLEANS = {
    "verify": "verify",
    "warn_only": "warn_only",
    "unknown_is_good": "unknown_is_good",
    "allow_when_ca_unreachable": "allow_when_ca_unreachable",
}
_PEER_DURATIONS = {
    "ca_timeout": "ca_timeout",
    "allowed_clockskew": "clock_skew",
    "cache_ttl_when_next_update_unset": "ttl_unset_next_update",
}


class _Refused(Exception):
    pass


def _seconds(value: Any, *, duration_error_text: bool) -> float:
    """A number of seconds or a Go duration; _Refused with the conversion complaint."""
    if isinstance(value, bool):
        raise _Refused("unexpected type")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_duration(value) / NS_PER_S
        except DurationError as e:
            # nats-server words allowed_clockskew's failure as a type error
            raise _Refused(str(e) if duration_error_text else "unexpected type") from None
    raise _Refused("unexpected type")


def ocsp_peer(r: Reader, block: ConfigMap, key: str) -> OCSPPeerConfig | None:
    """The `ocsp_peer` of a `tls {}` block; None after an error (reported)."""
    value = block[key]
    if isinstance(value, bool):
        return OCSPPeerConfig(verify=value)
    if not isinstance(value, ConfigMap):
        # nats-server names the type of the enclosing block here, not of the value
        r.error(
            block, key, "error parsing ocsp peer config: unsupported type map[string]interface {}"
        )
        return None
    cfg = OCSPPeerConfig()
    outer = r.where(block, key)
    for k in value:
        lk = k.lower()
        v = value[k]
        if lk in _PEER_BOOLEANS:
            if not isinstance(v, bool):
                r.error(value, k, f'error parsing tls peer config, unknown field ["{k}"]')
                _prefix_last(r, outer)
                return None
            setattr(cfg, _PEER_BOOLEANS[lk], v)
        elif lk in _PEER_DURATIONS:
            try:
                seconds = _seconds(v, duration_error_text=lk != "allowed_clockskew")
            except _Refused as e:
                r.error(value, k, f"error parsing tls peer config, conversion error: {e}")
                _prefix_last(r, outer)
                return None
            if seconds >= 0:
                setattr(cfg, _PEER_DURATIONS[lk], seconds)
        else:
            r.error(value, k, f'error parsing tls peer config, unknown field ["{k}"]')
            _prefix_last(r, outer)
            return None
    return cfg


def _prefix_last(r: Reader, outer: str) -> None:
    """nats-server reports an error inside the block at the block's key too."""
    r.errors[-1] = f"{outer}: {r.errors[-1]}"


def ocsp_cache(r: Reader, m: ConfigMap, key: str) -> OCSPCacheConfig | None:
    """The top-level `ocsp_cache`; None after an error (reported)."""
    value = m[key]
    if isinstance(value, bool):
        return OCSPCacheConfig(type="local" if value else "none")
    if not isinstance(value, ConfigMap):
        r.error(m, key, f"error parsing tags: unsupported type {go_type_name(value)}")
        return None
    cfg = OCSPCacheConfig()
    for k in value:
        lk = k.lower()
        v = value[k]
        generic = f'error parsing OCSP peer cache config, unknown field ["{k}"]'
        if lk == "type":
            if not isinstance(v, str):
                r.error(value, k, generic)
                return None
            if v.lower() not in ("none", "local"):
                r.error(value, k, f"error parsing OCSP peer cache config, unknown type [{v}]")
                return None
            cfg.type = v.lower()
        elif lk == "local_store":
            if not isinstance(v, str):
                r.error(value, k, generic)
                return None
            cfg.local_store = v
        elif lk == "preserve_revoked":
            if not isinstance(v, bool):
                r.error(value, k, generic)
                return None
            cfg.preserve_revoked = v
        elif lk == "save_interval":
            if isinstance(v, str):
                try:
                    seconds = parse_duration(v) / NS_PER_S
                except DurationError as e:
                    r.error(value, k, f"error parsing tls peer config, conversion error: {e}")
                    return None
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                seconds = float(v)
            else:
                r.error(
                    value,
                    k,
                    "error parsing OCSP peer cache config, conversion error: unexpected type",
                )
                return None
            # whole seconds, as nats-server keeps it, and at least the minimum
            cfg.save_interval = max(float(int(seconds)), MIN_SAVE_INTERVAL_S)
        else:
            r.error(value, k, generic)
            return None
    return cfg
