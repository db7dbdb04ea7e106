"""The configuration file -> Options, with nats-server's checks and error texts.

`apply_config_file(opts)` reads `opts.config_file`, fills a fresh Options from it, and then
puts back every field the command line set (flags win over the file). Errors are collected and
reported together as `file:line:col: message`, as nats-server does (its warnings first); keys
that pynats does not support yet are warned about by name, never silently ignored.

This module holds the top-level table (`TOP_LEVEL`) and what only the top level has
(authorization, accounts, JetStream, operators); the blocks with their own parsers are in
`config_tls`, `config_cluster`, `config_leafnodes` and `config_websocket`, on the shared
`config_reader`. `startup_problem` is what nats-server refuses when it starts or reloads
(its `validateOptions` checks of those blocks).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from collections.abc import Callable
from typing import Any

from pynats.gotime import NS_PER_S, DurationError, parse_duration

from .accounts import AccountConfig, AccountLimits, ExportConfig, ImportConfig
from .auth_callout import auth_callout_problem, parse_auth_callout
from .conf import ConfigError, ConfigMap, load_config_file
from .conf.tree import ConfigList, Position
from .conf.units import go_quote, go_type_name, parse_size
from .config_cluster import cluster_problem, normalize_compression, parse_cluster
from .config_gateway import gateway_problem, parse_gateway
from .config_leafnodes import leafnode_problem, parse_leafnodes
from .config_mappings import parse_mappings
from .config_reader import (
    GoPanic,
    Reader,
    apply_default_permissions,
    auth_timeout,
    conversion_text,
    element_position,
    go_value,
    parse_permissions,
    parse_users,
    write_timeout_policy,
)
from .config_tls import parse_tls, tls_block
from .config_websocket import parse_websocket, websocket_problem
from .import_checks import import_errors
from .mqtt_config import mqtt_problem, parse_mqtt
from .msgtrace import parse_account_msg_trace
from .options import Options, ResolverOptions

__all__ = [
    "TOP_LEVEL",
    "ConfigLoadError",
    "ConfigResult",
    "apply_config_file",
    "cluster_problem",
    "normalize_compression",
    "options_from_config",
    "startup_problem",
]


class ConfigLoadError(Exception):
    """The configuration cannot be used; the message says where and why."""


_ENABLED_WORDS = ("enabled", "enable", "true", "yes", "on")
_DISABLED_WORDS = ("disabled", "disable", "false", "no", "off")


def _enabled_word(r: Reader, m: ConfigMap, key: str, value: str) -> bool | None:
    """`jetstream: enabled` and its spellings (a top-level or an account block's switch)."""
    if value.lower() in _ENABLED_WORDS:
        return True
    if value.lower() in _DISABLED_WORDS:
        return False
    r.error(m, key, f"Expected 'enabled' or 'disabled' for string value, got '{value}'")
    return None


def _host_port(text: Any, default_host: str) -> tuple[str, int] | str:
    """`"host:port"` or a bare port; returns an error text on failure."""
    if isinstance(text, int) and not isinstance(text, bool):
        return default_host, text
    if not isinstance(text, str):
        return f"interface conversion: interface {{}} is {go_type_name(text)}, not string"
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = default_host, text
    try:
        return host.strip("[]") or default_host, int(port)
    except ValueError:
        return f'could not parse port "{port}"'


# -- top level ---------------------------------------------------------------------------------

Handler = Callable[[Reader, Options, ConfigMap, str], None]


def _set(field_name: str, kind: str) -> Handler:
    def handle(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
        value: Any
        if kind == "int":
            value = r.integer(m, key)
        elif kind == "bool":
            value = r.boolean(m, key)
        elif kind == "str":
            value = r.string(m, key)
        elif kind == "duration":
            value = r.duration(m, key)
        elif kind == "size":
            value = r.integer(m, key)
        else:  # pragma: no cover - table error
            raise AssertionError(kind)
        if value is not None:
            setattr(o, field_name, value)

    return handle


def _listen(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    hp = _host_port(m[key], o.host)
    if isinstance(hp, str):
        r.error(m, key, hp)
    else:
        o.host, o.port = hp


def _http(field_name: str) -> Handler:
    def handle(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
        hp = _host_port(m[key], o.http_host or "")
        if isinstance(hp, str):
            r.error(m, key, hp)
            return
        host, port = hp
        if host:
            o.http_host = host
        setattr(o, field_name, port)

    return handle


def _server_name(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    name = r.string(m, key)
    if name is None:
        return
    if " " in name:
        r.error(m, key, "server name cannot contain spaces")
    o.server_name = name


def _max_connections(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    value = r.integer(m, key)
    if value is not None:
        o.max_connections = -1 if value == 0 else value  # 0 in a file means: reject all


def _lame_duck_duration(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    value = r.duration(m, key)
    if value is None:
        return
    if value < 30:
        r.error(m, key, f"invalid lame_duck_duration of {m[key]}, minimum is 30 seconds")
        return
    o.lame_duck_duration = value


def _log_option(field_name: str) -> Handler:
    return _set(field_name, "bool")


def _trace_detail(field_name: str) -> Handler:
    """`trace_verbose` and `trace_headers`: set, they turn tracing on as well (nats-server's
    parser sets `Trace` with them)."""

    def handle(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
        value = r.boolean(m, key)
        if value is not None:
            setattr(o, field_name, value)
            if value:
                o.trace = True

    return handle


def _system_account(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    value = r.string(m, key)
    if value is not None:
        o.system_account = value


def _store_dir(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    value = r.string(m, key)
    if value is None:
        return
    if o.store_dir:
        r.error(m, key, 'duplicate "store_dir" definition')
    o.store_dir = value


def _mappings(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    o.mappings = parse_mappings(r, m, key)


def _unsupported(what: str = "") -> Handler:
    def handle(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
        r.unsupported(m, key, what)

    return handle


def _noted(field_name: str | None, kind: str, what: str = "") -> Handler:
    """Keys read with nats-server's type checks whose behaviour pynats does not have (see
    docs/options.md): a value that would change something is noted at start-up."""
    read = _set(field_name, kind) if field_name else None

    def handle(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
        if read is not None:
            read(r, o, m, key)
        elif kind == "int":
            r.integer(m, key)
        elif kind == "bool":
            r.boolean(m, key)
        if m[key] not in (False, 0, ""):
            r.unsupported(m, key, what)

    return handle


def _server_metadata(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    """`server_metadata { key: "value" }`: strings only, shown in /varz."""
    value = m[key]
    if not isinstance(value, ConfigMap):
        where = m.position(key)
        start = Position(where.file, where.line, 0) if where is not None else None
        r.error_at(start, f"error parsing metadata: unsupported type {go_type_name(value)}")
        return
    metadata: dict[str, str] = {}
    with r.recovering():
        for name in value:
            entry = value[name]
            if not isinstance(entry, str):
                raise r.panic(value, name, conversion_text(entry, "string"))
            metadata[name] = entry
        o.server_metadata = metadata


def _write_timeout(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    policy = write_timeout_policy(r, m, key)
    if policy is not None:
        o.write_timeout = policy


def _error_reports(field_name: str) -> Handler:
    """`connect_error_reports` / `reconnect_error_reports`: 0 keeps the default."""

    def handle(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
        value = r.integer(m, key)
        if value:
            setattr(o, field_name, value)

    return handle


def _feature_flags(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    """`feature_flags { name: bool }`: any name (unknown ones are reported at start-up)."""
    block = m[key]
    if not isinstance(block, ConfigMap):
        r.error(m, key, f"error parsing feature flags: unsupported type {go_type_name(block)}")
        return
    flags: dict[str, bool] = {}
    for name in block:
        value = block[name]
        if not isinstance(value, bool):
            r.error(
                block,
                name,
                f'error parsing feature flag "{name}": expected bool, got {go_type_name(value)}',
            )
            return
        flags[name] = value
    o.feature_flags = flags


def _default_js_domain(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    """`default_js_domain { account: domain }` (checked against the accounts at start-up)."""
    block = m[key]
    if not isinstance(block, ConfigMap):
        r.error(m, key, f"error default_js_domain config: unsupported type {go_type_name(block)}")
        return
    domains: dict[str, str] = {}
    for account in block:
        domain = block[account]
        if not isinstance(domain, str):
            r.error(m, key, conversion_text(domain, "string"))
            return
        domains[account] = domain
    o.default_js_domain = domains


def _is_proxy_key(text: str) -> bool:
    """A well-formed public nkey of any kind (nats-server's `nkeys.IsValidPublicKey`)."""
    from .nkey import InvalidNkey, decode_public_key

    try:
        decode_public_key(text)
    except InvalidNkey:
        return False
    return True


def _proxies(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    """`proxies { trusted: [ {key: <nkey>} ] }`, checked as nats-server does: the proxies
    whose signature of the INFO nonce (`proxy_sig` in CONNECT) a client may bring."""
    block = m[key]
    if not isinstance(block, ConfigMap):
        r.error(m, key, f"expected proxies to be a map/struct, got {go_type_name(block)}")
        return
    trusted: list[str] = []
    for name in block:
        if name.lower() != "trusted":
            r.error(block, name, f'unknown field "{name}"')
            return
        entries = block[name]
        if not isinstance(entries, ConfigList):
            r.error(
                block,
                name,
                f"expected proxies' trusted field to be an array, got {go_type_name(entries)}",
            )
            return
        for i, entry in enumerate(entries):
            if not isinstance(entry, ConfigMap):
                r.error_at(
                    entries.position(i),
                    f"expected proxies' trusted entry to be a map/struct, got "
                    f"{go_type_name(entry)}",
                )
                return
            for field_name in entry:
                if field_name.lower() != "key":
                    r.error(entry, field_name, f'unknown field "{field_name}"')
                    return
                nkey = entry[field_name]
                if not isinstance(nkey, str) or not _is_proxy_key(nkey):
                    r.error(entry, field_name, f"invalid proxy key {go_quote(str(nkey))}")
                    return
                trusted.append(nkey)
    o.trusted_proxies = trusted


def _server_tags(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    tags = r.str_list(m, key)
    if tags is not None:
        o.server_tags = tags


def _ocsp(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    from .ocsp_staple import parse_ocsp

    cfg = parse_ocsp(r, m, key)
    if cfg is not None:
        o.ocsp = cfg


def _ocsp_cache(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    from .config_ocsp import ocsp_cache

    cfg = ocsp_cache(r, m, key)
    if cfg is not None:
        o.ocsp_cache = cfg


TOP_LEVEL: dict[str, Handler] = {
    "listen": _listen,
    "host": _set("host", "str"),
    "net": _set("host", "str"),
    "port": _set("port", "int"),
    "server_name": _server_name,
    "client_advertise": _set("client_advertise", "str"),
    "http": _http("http_port"),
    "monitor": _http("http_port"),
    "https": _http("https_port"),
    "http_port": _set("http_port", "int"),
    "monitor_port": _set("http_port", "int"),
    "https_port": _set("https_port", "int"),
    "http_base_path": _set("http_base_path", "str"),
    "max_payload": _set("max_payload", "size"),
    "max_control_line": _set("max_control_line", "size"),
    "max_pending": _set("max_pending", "size"),
    "max_connections": _max_connections,
    "max_conn": _max_connections,
    "max_subscriptions": _set("max_subscriptions", "int"),
    "max_subs": _set("max_subscriptions", "int"),
    "max_sub_tokens": _set("max_sub_tokens", "int"),
    "max_subscription_tokens": _set("max_sub_tokens", "int"),
    "max_closed_clients": _set("max_closed_clients", "int"),
    "ping_interval": _set("ping_interval", "duration"),
    "ping_max": _set("ping_max", "int"),
    "write_deadline": _set("write_deadline", "duration"),
    "write_timeout": _write_timeout,
    "lame_duck_duration": _lame_duck_duration,
    "lame_duck_grace_period": _set("lame_duck_grace_period", "duration"),
    "debug": _log_option("debug"),
    "trace": _log_option("trace"),
    "trace_verbose": _trace_detail("trace_verbose"),
    "logtime": _log_option("logtime"),
    "logtime_utc": _log_option("logtime_utc"),
    "log_file": _set("log_file", "str"),
    "logfile": _set("log_file", "str"),
    "log_size_limit": _set("log_size_limit", "int"),
    "logfile_size_limit": _set("log_size_limit", "int"),
    "pid_file": _set("pid_file", "str"),
    "pidfile": _set("pid_file", "str"),
    "ports_file_dir": _set("ports_file_dir", "str"),
    "syslog": _set("syslog", "bool"),
    "remote_syslog": _set("remote_syslog", "str"),
    "no_header_support": _set("no_header_support", "bool"),
    "disable_sublist_cache": _set("disable_sublist_cache", "bool"),
    "no_sublist_cache": _set("disable_sublist_cache", "bool"),
    "no_fast_producer_stall": _set("no_fast_producer_stall", "bool"),
    "disable_short_first_ping": _set("disable_short_first_ping", "bool"),
    "system_account": _system_account,
    "system": _system_account,
    "no_system_account": _set("no_system_account", "bool"),
    "no_system": _set("no_system_account", "bool"),
    "no_sys_acc": _set("no_system_account", "bool"),
    "no_auth_user": _set("no_auth_user", "str"),
    "allow_non_tls": _set("allow_non_tls", "bool"),
    "store_dir": _store_dir,
    "storedir": _store_dir,
    "server_tags": _server_tags,
    "max_traced_msg_len": _set("max_traced_msg_len", "int"),
    "prof_port": _noted(None, "int", "Go's pprof profiler, which a Python server does not have"),
    "prof_block_rate": _noted(None, "int", "Go's pprof profiler"),
    "connect_error_reports": _error_reports("connect_error_reports"),
    "reconnect_error_reports": _error_reports("reconnect_error_reports"),
    "logfile_max_num": _set("log_max_num", "int"),
    "log_max_num": _set("log_max_num", "int"),
    "trace_headers": _trace_detail("trace_headers"),
    "server_metadata": _server_metadata,
    "gateway": parse_gateway,
    "mqtt": parse_mqtt,
    "mappings": _mappings,
    "maps": _mappings,
    "ocsp": _ocsp,
    "ocsp_cache": _ocsp_cache,
    "proxies": _proxies,
    "proxy_protocol": _set("proxy_protocol", "bool"),
    "default_js_domain": _default_js_domain,
    "feature_flags": _feature_flags,
    "default_sentinel": _set("default_sentinel", "str"),
}


def _authorization(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    block = r.mapping(m, key)
    if block is None:
        return
    has_users = False
    for k in block:
        lk = k.lower()
        if block.is_used_variable(k):
            continue
        if lk in ("user", "username"):
            o.username = r.string(block, k) or ""
        elif lk in ("pass", "password"):
            o.password = r.string(block, k) or ""
        elif lk == "token":
            o.authorization = r.string(block, k) or ""
        elif lk == "timeout":
            timeout = auth_timeout(r, block, k)
            if timeout is not None:
                o.auth_timeout = timeout
        elif lk == "users":
            has_users = True
            users, nkeys = parse_users(r, block, k)
            o.users.extend(users)
            o.nkeys.extend(nkeys)
        elif lk in ("permissions", "default_permission", "default_permissions"):
            o.default_permissions = parse_permissions(r, block, k)
        elif lk in ("auth_callout", "auth_hook"):
            o.auth_callout = parse_auth_callout(r, block, k)
        elif lk == "proxy_required":
            pass
        else:
            r.error(block, k, f'unknown field "{k}"')
    if (o.username or o.password) and o.authorization:
        r.error(m, key, "Cannot have a user/pass and token")
    if has_users and o.authorization:
        r.error(m, key, "Can not have a token and a users array")
    if has_users and o.username:
        r.error(m, key, "Can not have a single user/pass and a users array")
    apply_default_permissions(o.users, o.default_permissions)


def _accounts(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    value = m[key]
    if isinstance(value, list):  # `accounts: [A, B]`: names only
        for name in value:
            if isinstance(name, str):
                o.accounts.setdefault(name, AccountConfig(name=name))
        return
    block = r.mapping(m, key)
    if block is None:
        return
    for name in block:
        if block.is_used_variable(name):
            continue
        acc = AccountConfig(name=name)
        o.accounts[name] = acc
        body = block[name]
        if not isinstance(body, ConfigMap):
            r.error(block, name, f"Expected map entries for accounts, got {go_type_name(body)}")
            continue
        for k in body:
            lk = k.lower()
            if lk == "users":
                users, nkeys = parse_users(r, body, k)
                acc.users, acc.nkey_users = users, nkeys
            elif lk in ("exports",):
                acc.exports = _exports(r, body, k)
            elif lk in ("imports",):
                acc.imports = _imports(r, body, k)
            elif lk == "jetstream":
                acc.jetstream = _account_jetstream(r, body, k)
            elif lk in ("default_permissions", "default_permission"):
                acc.default_permissions = parse_permissions(r, body, k)
            elif lk == "nkey":
                acc.nkey = r.string(body, k) or ""
            elif lk in ("msg_trace", "trace_dest"):
                acc.msg_trace = parse_account_msg_trace(r, body, k)
            elif lk in ("mappings", "maps"):
                acc.mappings = parse_mappings(r, body, k)
            elif lk == "limits":
                acc.limits = _account_limits(r, body, k)
            elif not body.is_used_variable(k):
                r.error(body, k, f'Unknown field "{k}" parsing accounts')
        apply_default_permissions(acc.users, acc.default_permissions)


# An account's `limits {}` keys (lower case) -> AccountLimits' fields (nats-server's
# parseAccountLimits).
_ACCOUNT_LIMITS = {
    "max_connections": "max_connections",
    "max_conn": "max_connections",
    "max_subscriptions": "max_subscriptions",
    "max_subs": "max_subscriptions",
    "max_payload": "max_payload",
    "max_pay": "max_payload",
    "max_leafnodes": "max_leafnodes",
    "max_leafs": "max_leafnodes",
}


def _account_limits(r: Reader, m: ConfigMap, key: str) -> AccountLimits | None:
    """`limits { max_connections, max_subscriptions, max_payload, max_leafnodes }`: integers
    (nats-server keeps them as int32); a value of another type ends the block where it is,
    keeping the limits read before it, as nats-server's failed type assertion does."""
    value = m[key]
    if not isinstance(value, ConfigMap):
        r.error(m, key, f"Expected account limits to be a map/struct, got {go_value(value)}")
        return None
    limits = AccountLimits()
    with r.recovering():
        for k in value:
            target = _ACCOUNT_LIMITS.get(k.lower())
            if target is None:
                if not value.is_used_variable(k):
                    r.error(value, k, f'Unknown field "{k}" parsing account limits')
                continue
            number = r.expect_int(value, k)
            setattr(limits, target, (number + 2**31) % 2**32 - 2**31)  # Go's int32()
    return limits


def _exports(r: Reader, m: ConfigMap, key: str) -> list[ExportConfig]:
    value = m[key]
    out: list[ExportConfig] = []
    if not isinstance(value, list):
        r.error(m, key, f"Exports should be an array, got {go_type_name(value)}")
        return out
    for entry in value:
        if not isinstance(entry, ConfigMap):
            r.error(m, key, "Export entry should be a map")
            continue
        export: ExportConfig | None = None
        accounts: list[str] | None = None
        response = "Singleton"
        threshold = 120.0
        allow_trace: tuple[ConfigMap, str, bool] | None = None
        for k in entry:
            lk = k.lower()
            if lk in ("stream", "service"):
                subject = r.string(entry, k)
                if subject is not None:
                    export = ExportConfig(kind=lk, subject=subject)
            elif lk == "accounts":
                accounts = r.str_list(entry, k)
            elif lk in ("response", "response_type"):
                text = (r.string(entry, k) or "").lower()
                mapping = {
                    "single": "Singleton",
                    "singleton": "Singleton",
                    "stream": "Stream",
                    "chunked": "Chunked",
                }
                if text not in mapping:
                    r.error(entry, k, f'Unknown response type: "{entry[k]}"')
                else:
                    response = mapping[text]
            elif lk in ("threshold", "response_threshold", "response_max_time", "response_time"):
                d = r.duration(entry, k)
                if d is not None:
                    threshold = d
            elif lk == "allow_trace":
                allow_trace = (entry, k, entry[k] is True)
            elif lk in ("latency", "account_token_position", "advertise"):
                pass
            else:
                r.error(entry, k, f'Unknown field "{k}" parsing exports')
        if export is None:
            r.error(m, key, "Export entry requires a stream or service subject")
            continue
        if allow_trace is not None:
            if export.kind != "service":
                r.error(
                    allow_trace[0], allow_trace[1], "Detected allow_trace directive on non-service"
                )
            export.allow_trace = allow_trace[2]
        export.accounts = accounts
        export.response_type = response
        export.response_threshold = threshold
        out.append(export)
    return out


def _imports(r: Reader, m: ConfigMap, key: str) -> list[ImportConfig]:
    value = m[key]
    out: list[ImportConfig] = []
    if not isinstance(value, list):
        r.error(m, key, f"Imports should be an array, got {go_type_name(value)}")
        return out
    for entry in value:
        if not isinstance(entry, ConfigMap):
            r.error(m, key, "Import entry should be a map")
            continue
        imp: ImportConfig | None = None
        to = prefix = ""
        share = False
        allow_trace: tuple[ConfigMap, str, bool] | None = None
        for k in entry:
            lk = k.lower()
            if lk in ("stream", "service"):
                src = entry[k]
                if not isinstance(src, ConfigMap):
                    r.error(entry, k, f"Import {lk} should be a map with account and subject")
                    continue
                account = src.get("account")
                subject = src.get("subject")
                if not isinstance(account, str) or not isinstance(subject, str):
                    r.error(entry, k, f"Expect an account name and a subject for {lk} import")
                    continue
                imp = ImportConfig(kind=lk, account=account, subject=subject)
            elif lk == "to":
                to = r.string(entry, k) or ""
            elif lk == "prefix":
                prefix = r.string(entry, k) or ""
            elif lk == "allow_trace":
                allow_trace = (entry, k, entry[k] is True)
            elif lk == "share":
                share = entry[k] is True
            else:
                r.error(entry, k, f'Unknown field "{k}" parsing imports')
        if imp is None:
            r.error(m, key, "Import entry requires a stream or service")
            continue
        if allow_trace is not None:
            if imp.kind != "stream":
                r.error(
                    allow_trace[0], allow_trace[1], "Detected allow_trace directive on a non-stream"
                )
            imp.allow_trace = allow_trace[2]
        imp.to, imp.prefix, imp.share = to, prefix, share
        out.append(imp)
    return out


def _account_jetstream(r: Reader, m: ConfigMap, key: str) -> dict[str, Any] | bool | None:
    value = m[key]
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _enabled_word(r, m, key, value)
    if not isinstance(value, ConfigMap):
        r.error(
            m, key, f"Expected map, bool or string to define JetStream, got {go_type_name(value)}"
        )
        return None
    # nats-server's parseJetStreamForAccount: keys case-insensitive, sizes and counts must be
    # integers (`1G` unquoted is one, "1G" quoted is not), the first wrong value ends the block
    # (the account then has no JetStream limits from it), unknown keys are collected.
    limits: dict[str, Any] = {}
    for k in value:
        v = value[k]
        target = _ACCOUNT_JS_LIMITS.get(k.lower())
        if target == "max_bytes_required":
            if not isinstance(v, bool):
                r.error(value, k, f'Expected a parseable bool for "{k}", got {go_value(v)}')
                return None
            limits[target] = v
        elif target is not None:
            if isinstance(v, bool) or not isinstance(v, int):
                r.error(value, k, f'Expected a parseable size for "{k}", got {go_value(v)}')
                return None
            limits[target] = v
        elif k.lower() == "cluster_traffic":
            # Where a clustered account's replication traffic goes; nothing to do standalone.
            if not isinstance(v, str):
                r.error(
                    value,
                    k,
                    f"Expected either 'system' or 'owner' string value for \"{k}\", "
                    f"got {go_value(v)}",
                )
                return None
            if v not in ("", "system", "owner"):
                r.error(value, k, f"Expected 'system' or 'owner' string value for \"{k}\", got {v}")
                return None
        elif not value.is_used_variable(k):
            r.error(value, k, f'unknown field "{k}"')
    return limits


# An account's `jetstream {}` keys (lower case) -> AccountLimits' fields.
_ACCOUNT_JS_LIMITS = {
    "max_memory": "max_memory",
    "max_mem": "max_memory",
    "mem": "max_memory",
    "memory": "max_memory",
    "max_store": "max_storage",
    "max_file": "max_storage",
    "max_disk": "max_storage",
    "store": "max_storage",
    "disk": "max_storage",
    "max_streams": "max_streams",
    "streams": "max_streams",
    "max_consumers": "max_consumers",
    "consumers": "max_consumers",
    "max_bytes_required": "max_bytes_required",
    "max_stream_bytes": "max_bytes_required",
    "max_bytes": "max_bytes_required",
    "mem_max_stream_bytes": "memory_max_stream_bytes",
    "memory_max_stream_bytes": "memory_max_stream_bytes",
    "disk_max_stream_bytes": "storage_max_stream_bytes",
    "store_max_stream_bytes": "storage_max_stream_bytes",
    "max_ack_pending": "max_ack_pending",
}


def _jetstream(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    value = m[key]
    if isinstance(value, bool):
        o.jetstream = value
        return
    if isinstance(value, str):
        enabled = _enabled_word(r, m, key, value)
        if enabled is not None:
            o.jetstream = enabled
        return
    block = r.mapping(m, key)
    if block is None:
        return
    o.jetstream = True
    for k in block:
        lk = k.lower()
        if block.is_used_variable(k):
            continue
        if lk in ("enabled", "enable"):
            enabled = r.boolean(block, k)
            if enabled is not None:
                o.jetstream = enabled
        elif lk in ("store_dir", "store", "storedir"):
            path = r.string(block, k)
            if path is not None:
                if o.store_dir:
                    r.error(block, k, 'Duplicate "store_dir" definition')
                o.store_dir = path
        elif lk in ("max_memory_store", "max_mem_store", "max_mem"):
            try:
                o.jetstream_max_memory = parse_size(block[k])
            except ValueError as e:
                r.error(block, k, f"max_mem_store {e}")
        elif lk in ("max_file_store", "max_file"):
            try:
                o.jetstream_max_store = parse_size(block[k])
            except ValueError as e:
                r.error(block, k, f"max_file_store {e}")
        elif lk == "domain":
            o.jetstream_domain = r.string(block, k) or ""
        elif lk in ("sync_interval", "sync"):
            v = block[k]
            if isinstance(v, str) and v.lower() == "always":
                o.jetstream_sync_always = True
                o.jetstream_sync_interval = None
            else:
                d = r.duration(block, k, "sync_interval")
                if d is not None:
                    o.jetstream_sync_interval = d
        elif lk == "strict":
            strict = r.boolean(block, k)
            if strict is not None:
                o.jetstream_strict = strict
        elif lk in ("key", "ek", "encryption_key", "prev_key", "prev_ek", "cipher"):
            # encryption at rest (jetstream/store/crypt.py); nats-server's type assertions
            # panic on a value that is not a string, recovered at the `jetstream` block
            try:
                text = r.expect_str(block, k)
            except GoPanic as p:
                r.error(m, key, p.text)
                return
            if lk == "cipher":
                if text.lower() not in ("chacha", "chachapoly", "aes"):
                    r.error(block, k, f"Unknown cipher type: {go_quote(text)}")
                else:
                    o.jetstream_cipher = text.lower()
            elif lk.startswith("prev"):
                o.jetstream_prev_key = text
            else:
                o.jetstream_key = text
        elif lk == "limits":
            try:
                limits = _jetstream_limits(r, block, k)
            except GoPanic as p:
                # nats-server's parser recovers from it at the `jetstream` block
                r.error(m, key, p.text)
                return
            if limits is not None:
                o.jetstream_limits = limits
        elif lk == "unique_tag":
            try:
                o.jetstream_unique_tag = r.expect_str(block, k).strip().lower()
            except GoPanic as p:
                r.error(m, key, p.text)
                return
        elif lk == "max_outstanding_catchup":
            try:
                o.jetstream_max_outstanding_catchup = parse_size(block[k])
            except ValueError as e:
                r.error(block, k, f"max_outstanding_catchup {e}")
        elif lk in _JETSTREAM_QUEUE_COUNTS:
            v = block[k]
            if isinstance(v, bool) or not isinstance(v, int):
                r.error(block, k, f'Expected a parseable size for "{k}", got {go_value(v)}')
            else:
                setattr(o, _JETSTREAM_QUEUE_COUNTS[lk], v)
        elif lk == "max_buffered_size":
            try:
                o.jetstream_max_buffered_size = parse_size(block[k])
            except ValueError as e:
                r.error(block, k, f"max_buffered_size {e}")
        elif lk in _JETSTREAM_REPLICATION_KEYS:
            r.unsupported(block, k, "it tunes replicated JetStream, which pynats does not run")
        elif lk == "max_concurrent_io":
            r.unsupported(block, k, "pynats' stores have no pool of blocking disk writers")
        elif lk == "tpm":
            r.unsupported(block, k)
        else:
            r.error(block, k, f'unknown field "{k}"')


# `jetstream {}` keys of replicated JetStream (Raft meta snapshots, replica catch-up, a leaf's
# domain extension): accepted and noted (docs/options.md)
_JETSTREAM_REPLICATION_KEYS = frozenset(
    {"meta_compact", "meta_compact_size", "meta_compact_sync", "max_catchup", "extension_hint"}
)

# `jetstream {}` counts that must be integers (a quoted "10K" is refused, as nats-server does)
_JETSTREAM_QUEUE_COUNTS = {
    "max_buffered_msgs": "jetstream_max_buffered_msgs",
    "request_queue_limit": "jetstream_request_queue_limit",
    "info_queue_limit": "jetstream_info_queue_limit",
}

# `jetstream { limits {} }` keys (lower case) -> their names in /varz and /jsz `limits`
_JETSTREAM_LIMITS = {
    "max_ack_pending": "max_ack_pending",
    "max_ha_assets": "max_ha_assets",
    "max_request_batch": "max_request_batch",
}


def _jetstream_limits(r: Reader, m: ConfigMap, key: str) -> dict[str, int] | None:
    """nats-server's parseJetStreamLimits: counts as integers, `duplicate_window` a duration
    string (its error unplaced); a value of the wrong type raises GoPanic (nats-server
    recovers from it only at the `jetstream` block, which it ends)."""
    value = m[key]
    if not isinstance(value, ConfigMap):
        r.error(m, key, f"Expected a map to define JetStreamLimits, got {go_type_name(value)}")
        return None
    limits: dict[str, int] = {}
    for k in value:
        lk = k.lower()
        target = _JETSTREAM_LIMITS.get(lk)
        if target is not None:
            limits[target] = r.expect_int(value, k)
        elif lk == "duplicate_window":
            text = r.expect_str(value, k)
            try:
                limits["max_duplicate_window"] = parse_duration(text)
            except DurationError as e:
                r.error_at(None, str(e))
                limits["max_duplicate_window"] = 0
        elif not value.is_used_variable(k):
            r.error(value, k, f'unknown field "{k}"')
    return limits


def _operator(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    jwts = r.str_list(m, key)
    if jwts is None:
        return
    from .jwt_auth import read_operator_jwt

    for item in jwts:
        try:
            o.trusted_operators.append(read_operator_jwt(item))
        except ValueError as e:
            r.error(m, key, f"error parsing operator JWT: {e}")


def _trusted(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    keys = r.str_list(m, key)
    if keys is not None:
        o.trusted_keys.extend(keys)


_RESOLVER_HELP = (
    'error parsing account resolver, should be MEM or  URL("url") or a map containing dir '
    "and type state=[FULL|CACHE])"
)
_MEM_RESOLVER = re.compile(r"(?i)(MEM|MEMORY)\s*")
_URL_RESOLVER = re.compile(r'(?i)(?:URL)(?:\(\s*"?([^\s"]*)"?\s*\))?\s*')


def _resolver(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    """`resolver`: MEM[ORY], URL(<url>), or {type: full|cache|mem, dir, ...} (nats-server's
    checks, texts and regular expressions: any string mentioning MEM is the memory one)."""
    value = m[key]
    o.resolver = ""
    o.resolver_options = ResolverOptions()
    if isinstance(value, str):
        if _MEM_RESOLVER.search(value):
            o.resolver = "MEMORY"
        elif found := _URL_RESOLVER.search(value):
            o.resolver = "URL"
            url = found.group(1) or ""
            o.resolver_options.url = url if url.endswith("/") else url + "/"
    elif isinstance(value, ConfigMap):
        _resolver_map(r, o, m, key, value)
        if o.resolver == "-":
            o.resolver = ""
            return
    else:
        r.error(m, key, f"error parsing operator resolver, wrong type {go_type_name(value)}")
        return
    if not o.resolver:
        r.error(m, key, _RESOLVER_HELP)


def _resolver_map(r: Reader, o: Options, m: ConfigMap, key: str, block: ConfigMap) -> None:
    """The map form; `o.resolver` is left "-" when an error was already reported."""
    ro = o.resolver_options
    with r.recovering():
        kind = r.expect_str(block, "type") if "type" in block else ""
        ro.dir = r.expect_str(block, "dir") if "dir" in block else ""
        ro.allow_delete = r.expect_bool(block, "allow_delete") if "allow_delete" in block else False
        ro.hard_delete = r.expect_bool(block, "hard_delete") if "hard_delete" in block else False
        ro.limit = r.expect_int(block, "limit") if "limit" in block else 0
        try:
            for name in ("ttl", "interval", "timeout"):
                if name in block:
                    seconds = parse_duration(r.expect_str(block, name)) / NS_PER_S
                    setattr(ro, name, seconds)
        except DurationError as e:
            r.error(m, key, str(e))
            o.resolver = "-"
            return
        if "timeout" in block and ro.timeout <= 0:
            r.error(m, key, f"Fetch timeout {block['timeout']} is too smal")
            o.resolver = "-"
            return
        upper = kind.upper()
        if upper in ("MEM", "MEMORY"):
            o.resolver = "MEMORY"
            return
        if not ro.dir:
            r.error(m, key, "dir has no value and needs to point to a directory")
        elif os.path.exists(ro.dir) and not os.path.isdir(ro.dir):
            r.error(m, key, "dir needs to point to an accessible directory")
            r.error(m, key, f"mkdir {ro.dir}: not a directory")
            o.resolver = "-"
            return
        if upper == "CACHE":
            if ro.interval:
                r.error(m, key, "CACHE does not accept sync")
            if ro.allow_delete:
                r.error(m, key, "CACHE does not accept allow_delete")
        elif upper == "FULL":
            if ro.ttl:
                r.error(m, key, "FULL does not accept ttl")
        else:
            return
        try:
            os.makedirs(ro.dir or "", exist_ok=True)
        except OSError as e:
            r.error(m, key, f"mkdir {ro.dir}: {(e.strerror or str(e)).lower()}")
            o.resolver = "-"
            return
        o.resolver = upper
        return
    o.resolver = "-"


def _resolver_preload(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    block = r.mapping(m, key)
    if block is None:
        return
    for k in block:
        jwt = r.string(block, k)
        if jwt is not None:
            o.resolver_preload[k] = jwt


def _resolver_tls(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    """`resolver_tls {}`: a `tls {}` block (nats-server reads it as a client-facing one) whose
    certificate, CA and `insecure` the URL resolver uses to fetch account JWTs."""
    parsed = tls_block(r, m, key, client_facing=True)
    if parsed is not None:
        o.resolver_tls = parsed.settings


def _resolver_pinned_accounts(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    """`resolver_pinned_accounts`: an account key or a list of them (checked at start-up)."""
    value = m[key]
    if isinstance(value, str):
        o.resolver_pinned_accounts = [value]
        return
    if not isinstance(value, list):
        r.error(
            m,
            key,
            f"error parsing resolver_pinned_accounts: unsupported type {go_type_name(value)}",
        )
        return
    o.resolver_pinned_accounts = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            o.resolver_pinned_accounts.append(item)
        else:
            r.error_at(
                element_position(value, i),
                "error parsing resolver_pinned_accounts: unsupported type in array "
                f"{go_type_name(item)}",
            )


TOP_LEVEL.update(
    {
        "authorization": _authorization,
        "accounts": _accounts,
        "jetstream": _jetstream,
        "tls": parse_tls,
        "cluster": parse_cluster,
        "leafnodes": parse_leafnodes,
        "leaf": parse_leafnodes,
        "websocket": parse_websocket,
        "ws": parse_websocket,
        "operator": _operator,
        "operators": _operator,
        "root": _operator,
        "roots": _operator,
        "root_operator": _operator,
        "root_operators": _operator,
        "trusted": _trusted,
        "trusted_keys": _trusted,
        "resolver": _resolver,
        "account_resolver": _resolver,
        "accounts_resolver": _resolver,
        "resolver_preload": _resolver_preload,
        "resolver_tls": _resolver_tls,
        "resolver_pinned_accounts": _resolver_pinned_accounts,
    }
)


def startup_problem(opts: Options) -> str | None:
    """What nats-server's `validateOptions` refuses in the leafnodes, cluster, websocket and
    mqtt blocks and `default_js_domain` when the server starts or reloads (their order is
    nats-server's)."""
    return (
        leafnode_problem(opts)
        or cluster_problem(opts)
        or gateway_problem(opts)
        or websocket_problem(opts)
        or mqtt_problem(opts)
        or default_js_domain_problem(opts)
    )


def default_js_domain_problem(opts: Options) -> str | None:
    """Outside operator mode, `default_js_domain` names configured accounts without
    JetStream of their own (an account with JetStream has its own API)."""
    if opts.trusted_operators or opts.trusted_keys:
        return None
    known = {"$G", opts.system_account or "$SYS"}
    for account in opts.default_js_domain:
        config = opts.accounts.get(account)
        if config is None and account not in known:
            return (
                "in non operator mode, `default_js_domain` references non existing account "
                f'"{account}"'
            )
        if config is not None and config.jetstream not in (None, False):
            return f'default_js_domain contains account name "{account}" with enabled JetStream'
    return None


@dataclasses.dataclass
class ConfigResult:
    options: Options
    errors: list[str]
    warnings: list[str]
    notes: list[str]


def options_from_config(data: ConfigMap, path: str, base: Options | None = None) -> ConfigResult:
    """Options from a parsed file (no flags applied), with what the reader had to say."""
    opts = Options()
    if base is not None:  # the nested blocks are filled in place: copy them too
        opts = dataclasses.replace(
            base,
            cluster=copy.deepcopy(base.cluster),
            leafnodes=copy.deepcopy(base.leafnodes),
            websocket=copy.deepcopy(base.websocket),
            gateway=copy.deepcopy(base.gateway),
            mqtt=copy.deepcopy(base.mqtt),
        )
    r = Reader(path)
    for key in data:
        if data.is_used_variable(key):
            continue
        handler = TOP_LEVEL.get(key.lower())
        if handler is None:
            r.error(data, key, f'unknown field "{key}"')
            continue
        handler(r, opts, data, key)
    _check_accounts(r, opts, data)
    if problem := auth_callout_problem(opts):
        r.error_at(None, problem)
    return ConfigResult(opts, r.errors, r.warnings, r.notes)


def _check_accounts(r: Reader, o: Options, data: ConfigMap) -> None:
    """Cross-references that nats-server checks while reading (reported at `accounts`)."""
    key = next((k for k in data if k.lower() == "accounts"), None)
    for problem in import_errors(o.accounts):
        r.error(data, key, problem)


def apply_config_file(opts: Options) -> Options:
    """Options from `opts.config_file`, with the fields set on the command line kept."""
    try:
        loaded = load_config_file(opts.config_file)
    except ConfigError as e:
        # nats-server's text as it prints it: a syntax error names its line, not the file
        raise ConfigLoadError(str(e)) from None
    except OSError as e:
        raise ConfigLoadError(
            f"open {opts.config_file}: {(e.strerror or str(e)).lower()}"
        ) from None
    if not loaded.data:
        raise ConfigLoadError(f"{opts.config_file}: config has no values or is empty")
    result = options_from_config(loaded.data, opts.config_file)
    if result.errors:  # nats-server prints its warnings first, then the errors
        raise ConfigLoadError("\n".join(result.warnings + result.errors) + "\n")
    fresh = result.options
    for name in opts.set_by_flags:
        _copy_field(fresh, opts, name)
    fresh.set_by_flags = set(opts.set_by_flags)
    fresh.config_file = opts.config_file
    fresh.config_digest = loaded.digest
    fresh.config_warnings = result.warnings
    fresh.config_notes = result.notes
    return fresh


def _copy_field(target: Any, source: Any, dotted: str) -> None:
    """`target.a.b = source.a.b` for a set-by-flags name ("cluster.name")."""
    *parents, leaf = dotted.split(".")
    for name in parents:
        target, source = getattr(target, name), getattr(source, name)
    setattr(target, leaf, getattr(source, leaf))
