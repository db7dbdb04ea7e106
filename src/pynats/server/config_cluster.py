"""The `cluster {}` block as nats-server's `parseCluster` reads it, and its start-up checks.

Each key is checked with nats-server's texts and places; route URLs go through Go's URL
rules; the TLS block is loaded while reading (`config_tls`). `cluster_problem` is what
nats-server's `validateCluster` refuses when the server starts or reloads. The compression
value (`parse_compression`, `normalize_compression`, `rtt_thresholds_problem`) is shared
with the leaf node blocks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from pynats.gotime import NS_PER_S, DurationError, format_duration, parse_duration

from .auth import Permissions
from .conf import ConfigMap
from .conf.units import go_quote, go_type_name
from .config_reader import (
    Reader,
    auth_timeout,
    conversion_text,
    element_position,
    go_listen,
    parse_permissions,
    parse_users,
    write_timeout_policy,
)
from .config_tls import tls_block
from .options import ROUTE_MAX_PING_INTERVAL_S, ClusterOptions, Options, parse_go_url

ClusterHandler = Callable[[Reader, ClusterOptions, ConfigMap, str], None]


def parse_cluster(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    """nats-server's `parseCluster`: each key checked with its texts; permissions from the
    deprecated `authorization { permissions }` only when the block has none of its own."""
    block = m[key]
    if not isinstance(block, ConfigMap):
        r.error(m, key, f"Expected map to define cluster, got {go_type_name(block)}")
        return
    c = o.cluster
    auth_perms: Permissions | None = None
    for k in block:
        lk = k.lower()
        handler = CLUSTER.get(lk)
        if lk == "authorization":
            auth_perms = _cluster_authorization(r, c, block, k)
        elif handler is not None:
            handler(r, c, block, k)
        elif not block.is_used_variable(k):
            r.error(block, k, f'unknown field "{k}"')
    if auth_perms is not None and not any(k.lower() == "permissions" for k in block):
        c.import_permissions, c.export_permissions = auth_perms.publish, auth_perms.subscribe


def _cluster_set(name: str, kind: str) -> ClusterHandler:
    def handle(r: Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
        getter = {"int": r.integer, "bool": r.boolean, "str": r.string}[kind]
        value = getter(m, key)
        if value is not None:
            setattr(c, name, value)

    return handle


def _cluster_name(r: Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
    name = r.string(m, key)
    if name is None:
        return
    if " " in name:
        r.error(m, key, "cluster name cannot contain spaces")
        return
    c.name = name


def _cluster_listen(r: Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
    listen = go_listen(m[key])
    if isinstance(listen, str):
        r.error(m, key, listen)
    else:
        c.host, c.port = listen


def _cluster_authorization(
    r: Reader, c: ClusterOptions, m: ConfigMap, key: str
) -> Permissions | None:
    """Routes authenticate with one user/password; tokens, user lists and callouts are
    refused. Returns the deprecated `permissions` of the block (used when the cluster block
    has none). A type error inside makes nats-server fail twice (its parser returns nothing
    and the caller then dereferences it): both lines are reproduced."""
    block = m[key]
    nil_deref = "runtime error: invalid memory address or nil pointer dereference"
    if not isinstance(block, ConfigMap):
        r.error(
            m,
            key,
            f"interface conversion: interface {{}} is {go_type_name(block)}, "
            "not map[string]interface {}",
        )
        r.error(m, key, nil_deref)
        return None
    user = password = token = ""
    timeout = 0.0
    has_users = has_callout = False
    perms: Permissions | None = None
    for k in block:
        lk = k.lower()
        if lk in ("user", "username", "pass", "password", "token"):
            text = r.string(block, k)
            if text is None:
                r.error(m, key, nil_deref)
                return None
            if lk in ("user", "username"):
                user = text
            elif lk == "token":
                token = text
            else:
                password = text
        elif lk == "timeout":
            seconds = auth_timeout(r, block, k)
            if seconds is None:
                return None
            timeout = seconds
        elif lk == "users":
            if isinstance(block[k], list):
                has_users = True
            parse_users(r, block, k)
        elif lk in ("default_permission", "default_permissions", "permissions"):
            perms = parse_permissions(r, block, k)
        elif lk in ("auth_callout", "auth_hook"):
            has_callout = True
        elif lk == "proxy_required":
            if r.boolean(block, k) is None:
                r.error(m, key, nil_deref)
                return None
        elif not block.is_used_variable(k):
            r.error(block, k, f'unknown field "{k}"')
    if has_users:
        r.error(m, key, "Cluster authorization does not allow multiple users")
    elif token:
        r.error(m, key, "Cluster authorization does not support tokens")
    elif has_callout:
        r.error(m, key, "Cluster authorization does not support callouts")
    else:
        c.username, c.password, c.auth_timeout = user, password, timeout
        if perms is not None:
            r.warn(
                m,
                key,
                f'invalid use of field "{key}": setting "permissions" within cluster '
                "authorization block is deprecated",
            )
            return perms
    return None


def _cluster_routes(r: Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
    """Route URLs: each must parse as a URL; a repeated one is warned about and dropped."""
    value = m[key]
    if not isinstance(value, list):
        r.error(
            m,
            key,
            f"interface conversion: interface {{}} is {go_type_name(value)}, not []interface {{}}",
        )
        return
    routes: list[str] = []
    seen: set[str] = set()
    failed = False
    for i, item in enumerate(value):
        where = element_position(value, i)
        if not isinstance(item, str):
            r.error_at(
                where, f"interface conversion: interface {{}} is {go_type_name(item)}, not string"
            )
            return
        if item in seen:
            r.warn_at(where, f'invalid use of field "{item}": Duplicate route entry detected')
            continue
        seen.add(item)
        url = item.strip()
        try:
            parse_go_url(url)
        except ValueError:
            r.error_at(where, f"error parsing route url [{go_quote(url)}]")
            failed = True
            continue
        routes.append(url)
    if not failed:
        c.routes = routes


def _cluster_tls(r: Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
    parsed = tls_block(r, m, key, client_facing=False)
    if parsed is not None:
        c.tls = parsed.settings


def _cluster_permissions(r: Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
    """`import` limits what this server takes from its routes and `export` what it offers
    them; nats-server reads them as a route's publish and subscribe permissions."""
    perms = parse_permissions(r, m, key, positioned=False)
    if perms is None:
        return
    if perms.response is not None:
        r.error(m, key, "Cluster permissions do not support dynamic responses")
        return
    c.import_permissions, c.export_permissions = perms.publish, perms.subscribe


def _cluster_accounts(r: Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
    value = m[key]
    if isinstance(value, str):
        c.pinned_accounts = [value]
        return
    if not isinstance(value, list):
        r.error(m, key, f"error parsing accounts: unsupported type {go_type_name(value)}")
        return
    names: list[str] = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            names.append(item)
        else:
            r.error_at(
                element_position(value, i),
                f"error parsing accounts: unsupported type in array {go_type_name(item)}",
            )
    c.pinned_accounts = names


def _cluster_compression(r: Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
    setting = parse_compression(r, m, key, on="s2_fast")
    if setting is None:
        return
    if setting.text is not None:
        c.compression = normalize_compression(setting.text) or setting.text
        c.compression_text = setting.text
    c.compression_rtt_thresholds = setting.rtt_thresholds


@dataclasses.dataclass
class CompressionSetting:
    """A `compression` value as written: the mode's text (None when a map gave no mode) and
    the RTT thresholds in seconds."""

    text: str | None
    rtt_thresholds: list[float]


def parse_compression(r: Reader, m: ConfigMap, key: str, *, on: str) -> CompressionSetting | None:
    """nats-server's `parseCompression`: a mode name, a boolean (true = `on`, the mode the
    block uses for "on": s2_fast for routes, s2_auto for leaf nodes), or `{mode,
    rtt_thresholds}`. Names are checked at start-up, not here (as nats-server does)."""
    value = m[key]
    mode: str | None = None
    thresholds: list[float] = []
    if isinstance(value, bool):
        mode = on if value else "off"
    elif isinstance(value, str):
        mode = value
    elif isinstance(value, ConfigMap):
        for k in value:
            lk = k.lower()
            if lk == "mode":
                mode = r.string(value, k)
                if mode is None:
                    return None
            elif lk in ("rtt_thresholds", "thresholds", "rtts", "rtt"):
                items = value[k]
                if not isinstance(items, list):
                    r.error(value, k, conversion_text(items, "[]interface {}"))
                    return None
                for i, item in enumerate(items):
                    if not isinstance(item, str):
                        r.error_at(element_position(items, i), conversion_text(item, "string"))
                        return None
                    try:
                        thresholds.append(parse_duration(item) / NS_PER_S)
                    except DurationError as e:
                        r.error(value, k, str(e))
                        return None
            elif not value.is_used_variable(k):
                r.error(value, k, f'unknown field "{k}"')
                return None
    else:
        r.error(
            m, key, f'field "{key}" should be a boolean or a structure, got {go_type_name(value)}'
        )
        return None
    return CompressionSetting(mode, thresholds)


def normalize_compression(mode: str, on: str = "s2_fast") -> str | None:
    """nats-server's name for a compression mode as written, or None if unknown; `on` is
    what "on"/"enabled"/"true" mean (s2_fast for routes, s2_auto for leaf nodes)."""
    word = mode.lower()
    if word in ("on", "enabled", "true"):
        word = on
    return _COMPRESSION_MODES.get(word)


_COMPRESSION_MODES = {
    "": "accept",
    "not supported": "not supported",
    "not_supported": "not supported",
    "disabled": "off",
    "off": "off",
    "false": "off",
    "accept": "accept",
    "auto": "s2_auto",
    "s2_auto": "s2_auto",
    "fast": "s2_fast",
    "s2_fast": "s2_fast",
    "better": "s2_better",
    "s2_better": "s2_better",
    "best": "s2_best",
    "s2_best": "s2_best",
}


def _cluster_duration(name: str) -> ClusterHandler:
    def handle(r: Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
        with r.recovering():
            seconds = r.go_duration(m, key, name)
            setattr(c, name, seconds)
            if name == "ping_interval" and seconds > ROUTE_MAX_PING_INTERVAL_S:
                r.warn(
                    m,
                    key,
                    "Cluster 'ping_interval' will reset to "
                    f"{format_duration(int(ROUTE_MAX_PING_INTERVAL_S * NS_PER_S))} "
                    "which is the max for routes",
                )

    return handle


def _cluster_write_timeout(r: Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
    policy = write_timeout_policy(r, m, key)
    if policy is not None:
        c.write_timeout = policy


CLUSTER: dict[str, ClusterHandler] = {  # and "authorization" (see `_cluster`)
    "name": _cluster_name,
    "listen": _cluster_listen,
    "port": _cluster_set("port", "int"),
    "host": _cluster_set("host", "str"),
    "net": _cluster_set("host", "str"),
    "routes": _cluster_routes,
    "tls": _cluster_tls,
    "cluster_advertise": _cluster_set("advertise", "str"),
    "advertise": _cluster_set("advertise", "str"),
    "no_advertise": _cluster_set("no_advertise", "bool"),
    "connect_retries": _cluster_set("connect_retries", "int"),
    "connect_backoff": _cluster_set("connect_backoff", "bool"),
    "permissions": _cluster_permissions,
    "pool_size": _cluster_set("pool_size", "int"),
    "accounts": _cluster_accounts,
    "compression": _cluster_compression,
    "ping_interval": _cluster_duration("ping_interval"),
    "ping_max": _cluster_set("ping_max", "int"),
    "write_deadline": _cluster_duration("write_deadline"),
    "write_timeout": _cluster_write_timeout,
}


def cluster_problem(opts: Options) -> str | None:
    """What nats-server's `validateCluster` refuses at start-up (and on reload), in its
    words: a name with spaces, an unknown compression mode or bad RTT thresholds, pinned
    accounts without pooling or named twice (the system account counts, as nats-server adds
    it to the list when pooling is on)."""
    c = opts.cluster
    if " " in c.name:
        return "cluster name cannot contain spaces"
    mode = normalize_compression(c.compression)
    if mode is None:
        return f"unsupported compression mode {go_quote(c.compression)}"
    if mode == "s2_auto" and c.compression_rtt_thresholds:
        written = c.compression_text or c.compression
        problem = rtt_thresholds_problem(written, c.compression_rtt_thresholds)
        if problem:
            return problem
    pinned = list(c.pinned_accounts)
    if c.is_enabled() and c.pool_size >= 0:
        system = opts.system_account or ("" if opts.no_system_account else "$SYS")
        if system and system not in pinned:
            pinned.append(system)
    if pinned:
        if c.pool_size < 0:
            return "pool_size cannot be negative if pinned accounts are specified"
        seen: set[str] = set()
        for name in pinned:
            if name in seen:
                listing = " ".join(go_quote(n) for n in pinned)
                return f"found duplicate account name {go_quote(name)} in pinned accounts list [{listing}]"
            seen.add(name)
    return None


def rtt_thresholds_problem(mode: str, thresholds: list[float]) -> str | None:
    given = [round(t * NS_PER_S) for t in thresholds]
    shown = "[" + " ".join(format_duration(n) for n in given) + "]"
    kept: list[int] = []
    for n in given:
        n = max(n, 0)
        if kept and n != 0 and any(n < v for v in kept):
            return f"RTT threshold values {shown} should be in ascending order"
        kept.append(n)
    while kept and kept[-1] == 0:
        kept.pop()
    if len(kept) > 4:
        return (
            f"compression mode {go_quote(mode)} should have no more than 4 RTT thresholds: {shown}"
        )
    if not kept:
        return f"compression mode {go_quote(mode)} requires at least one RTT threshold"
    return None
