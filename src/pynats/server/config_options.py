"""The configuration file -> Options, with nats-server's checks and error texts.

`apply_config_file(opts)` reads `opts.config_file`, fills a fresh Options from it, and then
puts back every field the command line set (flags win over the file). Errors are collected and
reported together as `file:line:col: message`, as nats-server does; keys that pynats does not
support yet are warned about by name, never silently ignored.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pynats.gotime import NS_PER_S, DurationError, format_duration, parse_duration

from .accounts import AccountConfig, ExportConfig, ImportConfig
from .auth import NkeyUser, Permissions, ResponsePermission, SubjectPermission, User
from .conf import ConfigError, ConfigMap, load_config_file
from .conf.tree import Position
from .conf.units import duration_from_config, go_quote, go_type_name, parse_size
from .options import (
    ROUTE_MAX_PING_INTERVAL_S,
    ClusterOptions,
    Options,
    TLSSettings,
    parse_go_url,
    split_host_port,
)
from .subjects import is_valid_subject
from .tls import check_tls_files


class ConfigLoadError(Exception):
    """The configuration cannot be used; the message says where and why."""


class _Reader:
    """Walks a parsed file, collecting errors and warnings with their positions."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[str] = []
        self.warnings: list[str] = []  # nats-server's own warnings (`-t` fails on them)
        self.notes: list[str] = []  # keys pynats does not support yet

    def where(self, m: ConfigMap | None, key: str | None) -> str:
        pos = m.position(key) if (m is not None and key is not None) else None
        if pos is None:
            return f"{self.path}:0:0"
        return f"{pos.file or self.path}:{pos.line}:{pos.column}"

    def error(self, m: ConfigMap | None, key: str | None, text: str) -> None:
        self.errors.append(f"{self.where(m, key)}: {text}")

    def warn(self, m: ConfigMap | None, key: str | None, text: str) -> None:
        self.warnings.append(f"{self.where(m, key)}: {text}")

    def error_at(self, position: Position | None, text: str) -> None:
        """An error at a list element's place; without a place, the bare text (as nats-server
        prints errors about values it had already unwrapped)."""
        self.errors.append(f"{self._place(position)}{text}")

    def warn_at(self, position: Position | None, text: str) -> None:
        self.warnings.append(f"{self._place(position)}{text}")

    def _place(self, position: Position | None) -> str:
        if position is None:
            return ""
        return f"{position.file or self.path}:{position.line}:{position.column}: "

    def unsupported(self, m: ConfigMap, key: str, what: str = "") -> None:
        detail = f" ({what})" if what else ""
        self.notes.append(
            f'{self.where(m, key)}: "{key}" is not supported by pynats yet and is ignored{detail}'
        )

    # -- typed getters ------------------------------------------------------------------

    def integer(self, m: ConfigMap, key: str) -> int | None:
        v = m[key]
        if isinstance(v, bool) or not isinstance(v, int):
            self.error(
                m, key, f"interface conversion: interface {{}} is {go_type_name(v)}, not int64"
            )
            return None
        return v

    def boolean(self, m: ConfigMap, key: str) -> bool | None:
        v = m[key]
        if not isinstance(v, bool):
            self.error(
                m, key, f"interface conversion: interface {{}} is {go_type_name(v)}, not bool"
            )
            return None
        return v

    def string(self, m: ConfigMap, key: str) -> str | None:
        v = m[key]
        if not isinstance(v, str):
            self.error(
                m, key, f"interface conversion: interface {{}} is {go_type_name(v)}, not string"
            )
            return None
        return v

    def duration(self, m: ConfigMap, key: str, field_name: str | None = None) -> float | None:
        try:
            seconds, warning = duration_from_config(field_name or key, m[key])
        except ValueError as e:
            self.error(m, key, str(e))
            return None
        if warning:
            self.warn(m, key, f'invalid use of field "{key}": {warning}')
        return seconds

    def seconds(self, m: ConfigMap, key: str) -> float | None:
        """Timeouts given as (float) seconds or a duration string."""
        v = m[key]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        return self.duration(m, key)

    def mapping(self, m: ConfigMap, key: str) -> ConfigMap | None:
        v = m[key]
        if not isinstance(v, ConfigMap):
            self.error(
                m,
                key,
                f"interface conversion: interface {{}} is {go_type_name(v)}, not map[string]interface {{}}",
            )
            return None
        return v

    def str_list(self, m: ConfigMap, key: str) -> list[str] | None:
        v = m[key]
        if isinstance(v, str):
            return [v]
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.error(
                m,
                key,
                f"interface conversion: interface {{}} is {go_type_name(v)}, not []interface {{}}",
            )
            return None
        return list(v)


_ENABLED_WORDS = ("enabled", "enable", "true", "yes", "on")
_DISABLED_WORDS = ("disabled", "disable", "false", "no", "off")


def _enabled_word(r: _Reader, m: ConfigMap, key: str, value: str) -> bool | None:
    """`jetstream: enabled` and its spellings (a top-level or an account block's switch)."""
    if value.lower() in _ENABLED_WORDS:
        return True
    if value.lower() in _DISABLED_WORDS:
        return False
    r.error(m, key, f"Expected 'enabled' or 'disabled' for string value, got '{value}'")
    return None


def _apply_default_permissions(users: list[User], permissions: Permissions | None) -> None:
    """Users without permissions of their own take the block's default permissions."""
    if permissions is None:
        return
    for user in users:
        if user.permissions is None:
            user.permissions = permissions


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

Handler = Callable[[_Reader, Options, ConfigMap, str], None]


def _set(field_name: str, kind: str) -> Handler:
    def handle(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
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


def _listen(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
    hp = _host_port(m[key], o.host)
    if isinstance(hp, str):
        r.error(m, key, hp)
    else:
        o.host, o.port = hp


def _http(field_name: str) -> Handler:
    def handle(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
        hp = _host_port(m[key], o.http_host or "")
        if isinstance(hp, str):
            r.error(m, key, hp)
            return
        host, port = hp
        if host:
            o.http_host = host
        setattr(o, field_name, port)

    return handle


def _server_name(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
    name = r.string(m, key)
    if name is None:
        return
    if " " in name:
        r.error(m, key, "server name cannot contain spaces")
    o.server_name = name


def _max_connections(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
    value = r.integer(m, key)
    if value is not None:
        o.max_connections = -1 if value == 0 else value  # 0 in a file means: reject all


def _lame_duck_duration(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
    value = r.duration(m, key)
    if value is None:
        return
    if value < 30:
        r.error(m, key, f"invalid lame_duck_duration of {m[key]}, minimum is 30 seconds")
        return
    o.lame_duck_duration = value


def _log_option(field_name: str) -> Handler:
    return _set(field_name, "bool")


def _system_account(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
    value = r.string(m, key)
    if value is not None:
        o.system_account = value


def _store_dir(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
    value = r.string(m, key)
    if value is None:
        return
    if o.store_dir:
        r.error(m, key, 'duplicate "store_dir" definition')
    o.store_dir = value


def _unsupported(what: str = "") -> Handler:
    def handle(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
        r.unsupported(m, key, what)

    return handle


def _accepted(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
    """Keys that change nothing observable in pynats (syslog on Linux, profiling...)."""


def _server_tags(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
    tags = r.str_list(m, key)
    if tags is not None:
        o.server_tags = tags


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
    "lame_duck_duration": _lame_duck_duration,
    "lame_duck_grace_period": _set("lame_duck_grace_period", "duration"),
    "debug": _log_option("debug"),
    "trace": _log_option("trace"),
    "trace_verbose": _log_option("trace_verbose"),
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
    "prof_port": _accepted,
    "prof_block_rate": _accepted,
    "connect_error_reports": _accepted,
    "reconnect_error_reports": _accepted,
    "logfile_max_num": _accepted,
    "log_max_num": _accepted,
    "trace_headers": _accepted,
    "server_metadata": _accepted,
    "gateway": _unsupported("gateways"),
    "leafnodes": _unsupported("leaf nodes"),
    "leaf": _unsupported("leaf nodes"),
    "websocket": _unsupported("websockets"),
    "ws": _unsupported("websockets"),
    "mqtt": _unsupported("MQTT"),
    "mappings": _unsupported("subject mappings"),
    "maps": _unsupported("subject mappings"),
    "ocsp": _unsupported(),
    "ocsp_cache": _unsupported(),
    "proxies": _unsupported(),
    "proxy_protocol": _unsupported(),
    "default_js_domain": _unsupported(),
    "feature_flags": _unsupported(),
    "resolver_tls": _unsupported(),
    "resolver_pinned_accounts": _unsupported(),
    "default_sentinel": _unsupported(),
}


def _authorization(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
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
            timeout = _auth_timeout(r, block, k)
            if timeout is not None:
                o.auth_timeout = timeout
        elif lk == "users":
            has_users = True
            users, nkeys = _users(r, block, k)
            o.users.extend(users)
            o.nkeys.extend(nkeys)
        elif lk in ("permissions", "default_permission", "default_permissions"):
            o.default_permissions = _permissions(r, block, k)
        elif lk in ("auth_callout", "auth_hook"):
            r.unsupported(block, k, "auth callout")
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
    _apply_default_permissions(o.users, o.default_permissions)


def _auth_timeout(r: _Reader, m: ConfigMap, key: str) -> float | None:
    """An authorization `timeout`: seconds (int or float) or a duration string, with
    nats-server's warning above a minute (an unquoted `1m` is read as 1 million)."""
    value = m[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        r.error(m, key, "error parsing authorization config, 'timeout' wrong type")
        return None
    if isinstance(value, str):
        try:
            seconds = parse_duration(value) / NS_PER_S
        except DurationError as e:
            r.error(m, key, f"error parsing authorization config, 'timeout' {e}")
            return None
    else:
        seconds = float(value)
    if seconds > 60:
        r.warn(
            m,
            key,
            f'invalid use of field "{key}": timeout of {go_value(value)} ({seconds:.6f} seconds) '
            "is high, consider keeping it under 60 seconds. possibly caused by unquoted "
            "duration; use '1m' instead of 1m, for example",
        )
    return seconds


def _users(r: _Reader, m: ConfigMap, key: str) -> tuple[list[User], list[NkeyUser]]:
    value = m[key]
    users: list[User] = []
    nkeys: list[NkeyUser] = []
    if not isinstance(value, list):
        r.error(m, key, f"Expected users field to be an array, got {go_type_name(value)}")
        return users, nkeys
    for entry in value:
        if not isinstance(entry, ConfigMap):
            r.error(m, key, f"Expected user entry to be a map/struct, got {entry!r}")
            continue
        name = password = nkey = ""
        perms: Permissions | None = None
        conn_types: list[str] | None = None
        account = ""
        for k in entry:
            lk = k.lower()
            if lk in ("user", "username"):
                name = r.string(entry, k) or ""
            elif lk in ("pass", "password"):
                password = r.string(entry, k) or ""
            elif lk == "nkey":
                nkey = r.string(entry, k) or ""
            elif lk in ("permission", "permissions", "authorization"):
                perms = _permissions(r, entry, k)
            elif lk in ("allowed_connection_types", "connection_types", "clients"):
                conn_types = r.str_list(entry, k)
            elif lk == "account":
                account = r.string(entry, k) or ""
            elif lk == "proxy_required":
                pass
            elif not entry.is_used_variable(k):
                r.error(entry, k, f'Unknown field "{k}" parsing users')
        if nkey:
            if not nkey.startswith("U") or len(nkey) != 56:
                r.error(m, key, f'Not a valid public nkey for a user: "{nkey}"')
                continue
            nkeys.append(
                NkeyUser(
                    nkey=nkey,
                    permissions=perms,
                    account=account,
                    allowed_connection_types=conn_types,
                )
            )
        elif name:
            users.append(
                User(
                    username=name,
                    password=password,
                    permissions=perms,
                    account=account,
                    allowed_connection_types=conn_types,
                )
            )
        else:
            r.error(m, key, "User entry requires a user")
    return users, nkeys


def _permissions(
    r: _Reader, m: ConfigMap, key: str, *, positioned: bool = True
) -> Permissions | None:
    """A permissions map (publish/subscribe, or import/export for routes). `positioned` False
    reports a non-map without a place, as nats-server does for `cluster { permissions }`."""
    block = m[key]
    if not isinstance(block, ConfigMap):
        text = f"Expected permissions to be a map/struct, got {go_value(block)}"
        r.error_at(m.position(key) if positioned else None, text)
        return None
    perms = Permissions()
    for k in block:
        lk = k.lower()
        if lk in ("pub", "publish", "import"):
            perms.publish = _subject_permission(r, block, k)
        elif lk in ("sub", "subscribe", "export"):
            perms.subscribe = _subject_permission(r, block, k)
        elif lk in ("allow_responses", "publish_allow_responses"):
            perms.response = _response_permission(r, block, k)
        elif not block.is_used_variable(k):
            r.error(block, k, f'Unknown field "{k}" parsing permissions')
    if perms.response is not None and perms.publish is None:
        # Responses alone imply everything else is denied for publishing.
        perms.publish = SubjectPermission(allow=[], deny=[])
    return perms


def _subject_permission(r: _Reader, m: ConfigMap, key: str) -> SubjectPermission | None:
    """A subject, a list of subjects (allowed), or `{allow, deny}`; an empty map is none."""
    value = m[key]
    if not isinstance(value, ConfigMap):
        allow = _permission_subjects(r, value, None)
        return SubjectPermission(allow=allow) if allow is not None else None
    if not value:
        return None
    perm = SubjectPermission()
    for k in value:
        lk = k.lower()
        if lk == "allow":
            allow = _permission_subjects(r, value[k], value.position(k))
            if allow is not None:
                perm.allow = allow
        elif lk == "deny":
            deny = _permission_subjects(r, value[k], value.position(k))
            if deny is not None:
                perm.deny = deny
        elif not value.is_used_variable(k):
            r.error(
                value,
                k,
                f"Unknown field name \"{k}\" parsing subject permissions, only 'allow' or 'deny' are permitted",
            )
    return perm


def _permission_subjects(r: _Reader, value: Any, position: Position | None) -> list[str] | None:
    """nats-server's `parsePermSubjects`: a subject or a list of them, each valid or a
    queue-qualified `subject queue`. `position` is None where nats-server has no place."""
    if isinstance(value, str):
        subjects = [value]
    elif isinstance(value, list):
        subjects = []
        for i, item in enumerate(value):
            if not isinstance(item, str):
                r.error_at(
                    _element_position(value, i),
                    "Subject in permissions array cannot be cast to string",
                )
                return None
            subjects.append(item)
    else:
        r.error_at(
            position,
            "Expected subject permissions to be a subject, or array of subjects, "
            f"got {go_type_name(value)}",
        )
        return None
    for subject in subjects:
        if is_valid_subject(subject.encode()):
            continue
        parts = subject.split()
        bad = subject if len(parts) != 2 else parts[0]
        if len(parts) != 2 or not is_valid_subject(parts[0].encode()):
            r.error_at(position, f"subject {go_quote(bad)} is not a valid subject")
            return None
    return subjects


def _go_float(value: float) -> str:
    """Go's shortest `%v` of a float64: `300.5`, `1e+06`, `1e-05`."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if value < 0 or (value == 0 and str(value).startswith("-")) else ""
    if value == 0:
        return sign + "0"
    digits_tuple, exponent = Decimal(repr(abs(value))).normalize().as_tuple()[1:]
    digits = "".join(map(str, digits_tuple))
    point = len(digits) + int(exponent)  # the decimal point's place among the digits
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        e = point - 1
        return f"{sign}{mantissa}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _element_position(value: Any, index: int) -> Position | None:
    position = getattr(value, "position", None)
    return position(index) if callable(position) else None


def go_value(value: Any) -> str:
    """A config value as Go's `%v` prints it (maps as `map[k:v ...]`, lists as `[a b]`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_value(v) for v in value) + "]"
    return str(value)


def _response_permission(r: _Reader, m: ConfigMap, key: str) -> ResponsePermission | None:
    value = m[key]
    if isinstance(value, bool):
        return ResponsePermission() if value else None
    if not isinstance(value, ConfigMap):
        r.error(
            m,
            key,
            f"Expected response permissions to be a boolean or map, got {go_type_name(value)}",
        )
        return None
    perm = ResponsePermission()
    for k in value:
        lk = k.lower()
        if lk in ("max", "max_msgs", "max_messages", "max_responses"):
            n = r.integer(value, k)
            if n is not None:
                perm.max_msgs = n
        elif lk in ("expires", "expiration", "ttl"):
            d = r.duration(value, k)
            if d is not None:
                perm.expires = d
        else:
            r.error(value, k, f'Unknown field "{k}" parsing allow_responses')
    return perm


def _accounts(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
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
                users, nkeys = _users(r, body, k)
                acc.users, acc.nkey_users = users, nkeys
            elif lk in ("exports",):
                acc.exports = _exports(r, body, k)
            elif lk in ("imports",):
                acc.imports = _imports(r, body, k)
            elif lk == "jetstream":
                acc.jetstream = _account_jetstream(r, body, k)
            elif lk in ("default_permissions", "default_permission"):
                acc.default_permissions = _permissions(r, body, k)
            elif lk == "nkey":
                acc.nkey = r.string(body, k) or ""
            elif lk in ("mappings", "maps", "limits", "msg_trace", "trace_dest"):
                r.unsupported(body, k)
            elif not body.is_used_variable(k):
                r.error(body, k, f'Unknown field "{k}" parsing accounts')
        _apply_default_permissions(acc.users, acc.default_permissions)


def _exports(r: _Reader, m: ConfigMap, key: str) -> list[ExportConfig]:
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
            elif lk in ("latency", "allow_trace", "account_token_position", "advertise"):
                pass
            else:
                r.error(entry, k, f'Unknown field "{k}" parsing exports')
        if export is None:
            r.error(m, key, "Export entry requires a stream or service subject")
            continue
        export.accounts = accounts
        export.response_type = response
        export.response_threshold = threshold
        out.append(export)
    return out


def _imports(r: _Reader, m: ConfigMap, key: str) -> list[ImportConfig]:
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
            elif lk in ("share", "allow_trace"):
                pass
            else:
                r.error(entry, k, f'Unknown field "{k}" parsing imports')
        if imp is None:
            r.error(m, key, "Import entry requires a stream or service")
            continue
        imp.to, imp.prefix = to, prefix
        out.append(imp)
    return out


def _account_jetstream(r: _Reader, m: ConfigMap, key: str) -> dict[str, Any] | bool | None:
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
    limits: dict[str, Any] = {}
    names = {
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
        "disk_max_stream_bytes": "storage_max_stream_bytes",
        "store_max_stream_bytes": "storage_max_stream_bytes",
        "max_ack_pending": "max_ack_pending",
    }
    for k in value:
        target = names.get(k.lower())
        if target is None:
            if k.lower() == "cluster_traffic":
                continue
            r.error(value, k, f'Unknown field "{k}" parsing jetstream account limits')
            continue
        v = value[k]
        if target == "max_bytes_required":
            limits[target] = bool(v)
        elif target in (
            "max_memory",
            "max_storage",
            "memory_max_stream_bytes",
            "storage_max_stream_bytes",
        ):
            try:
                limits[target] = parse_size(v)
            except ValueError as e:
                r.error(value, k, f"{k} {e}")
        elif isinstance(v, int) and not isinstance(v, bool):
            limits[target] = v
        else:
            r.error(
                value, k, f"interface conversion: interface {{}} is {go_type_name(v)}, not int64"
            )
    return limits


def _jetstream(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
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
            r.unsupported(block, k, "encryption at rest")
        elif lk in (
            "limits",
            "unique_tag",
            "extension_hint",
            "max_outstanding_catchup",
            "max_buffered_size",
            "max_buffered_msgs",
            "request_queue_limit",
            "info_queue_limit",
            "meta_compact",
            "meta_compact_size",
            "meta_compact_sync",
            "max_concurrent_io",
            "tpm",
            "max_catchup",
        ):
            r.unsupported(block, k)
        else:
            r.error(block, k, f'unknown field "{k}"')


def _operator(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
    jwts = r.str_list(m, key)
    if jwts is None:
        return
    from .jwt_auth import read_operator_jwt

    for item in jwts:
        try:
            o.trusted_operators.append(read_operator_jwt(item))
        except ValueError as e:
            r.error(m, key, f"error parsing operator JWT: {e}")


def _trusted(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
    keys = r.str_list(m, key)
    if keys is not None:
        o.trusted_keys.extend(keys)


def _resolver(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
    value = m[key]
    if isinstance(value, str):
        if value.upper() == "MEMORY":
            o.resolver = "MEMORY"
        else:
            r.unsupported(m, key, f"resolver {value}: only MEMORY is supported")
    elif isinstance(value, ConfigMap):
        kind = str(value.get("type", "")).upper()
        if kind in ("MEMORY", "MEM"):
            o.resolver = "MEMORY"
        else:
            r.unsupported(m, key, f"resolver type {kind or '?'}: only MEMORY is supported")
    else:
        r.error(
            m, key, f"interface conversion: interface {{}} is {go_type_name(value)}, not string"
        )


def _resolver_preload(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
    block = r.mapping(m, key)
    if block is None:
        return
    for k in block:
        jwt = r.string(block, k)
        if jwt is not None:
            o.resolver_preload[k] = jwt


# -- tls {} blocks ---------------------------------------------------------------------------


@dataclasses.dataclass
class _TLSBlock:
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
# Keys pynats notes as not supported (nats-server acts on them); of nats-server's checks of
# their values only the empty cipher/curve lists are repeated.
_TLS_UNSUPPORTED = (
    "cipher_suites",
    "curve_preferences",
    "pinned_certs",
    "connection_rate_limit",
    "cert_store",
    "cert_match_by",
    "cert_match",
    "ca_certs_match",
    "cert_match_skip_invalid",
    "ocsp_peer",
    "certs",
    "certificates",
)


def _tls_block(r: _Reader, m: ConfigMap, key: str, *, client_facing: bool) -> _TLSBlock | None:
    """A `tls {}` block as nats-server's `parseTLS` + `GenTLSConfig` read it: the first
    problem stops the block (reported at the inner key, or at `tls` for the files), and the
    certificate files are loaded now, so `-t` refuses what the start would refuse.
    `client_facing` is the top-level block (where `verify_cert_and_check_known_urls` is
    refused)."""
    block = r.mapping(m, key)
    if block is None:
        return None
    parsed = _TLSBlock(TLSSettings())
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
            if not _tls_handshake_first(r, block, k, parsed):
                return None
        elif lk in _TLS_UNSUPPORTED:
            if lk in ("cipher_suites", "curve_preferences") and isinstance(v, list) and not v:
                r.error(block, k, f"error parsing tls config, '{lk}' cannot be empty")
                return None
            r.unsupported(block, k)
        else:
            r.error(block, k, f'error parsing tls config, unknown field "{k}"')
            return None
    problem = check_tls_files(tls)
    if problem:
        r.error(m, key, problem)
        return None
    return parsed


def _tls_handshake_first(r: _Reader, m: ConfigMap, key: str, parsed: _TLSBlock) -> bool:
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


def _tls(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
    parsed = _tls_block(r, m, key, client_facing=True)
    if parsed is None:
        return
    tls = parsed.settings
    o.tls = True
    o.tls_cert, o.tls_key, o.tls_ca_cert = tls.cert_file, tls.key_file, tls.ca_file
    o.tls_verify, o.tls_map = tls.verify, tls.verify_and_map
    o.tls_timeout, o.tls_min_version = tls.timeout, tls.min_version
    o.tls_handshake_first = parsed.handshake_first
    o.tls_handshake_first_fallback = parsed.handshake_first_fallback


# -- cluster {} --------------------------------------------------------------------------------

ClusterHandler = Callable[[_Reader, ClusterOptions, ConfigMap, str], None]


def _cluster(r: _Reader, o: Options, m: ConfigMap, key: str) -> None:
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
    def handle(r: _Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
        getter = {"int": r.integer, "bool": r.boolean, "str": r.string}[kind]
        value = getter(m, key)
        if value is not None:
            setattr(c, name, value)

    return handle


def _cluster_name(r: _Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
    name = r.string(m, key)
    if name is None:
        return
    if " " in name:
        r.error(m, key, "cluster name cannot contain spaces")
        return
    c.name = name


def _cluster_listen(r: _Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
    listen = go_listen(m[key])
    if isinstance(listen, str):
        r.error(m, key, listen)
    else:
        c.host, c.port = listen


def go_listen(value: Any) -> tuple[str, int] | str:
    """nats-server's `parseListen`: a port, or "host:port"; the error text otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return "", value
    if not isinstance(value, str):
        return f"expected port or host:port, got {go_type_name(value)}"
    try:
        host, port = split_host_port(value)
    except ValueError:
        return f"could not parse address string {go_quote(value)}"
    number = _go_atoi(port)
    if number is None:
        return f"could not parse port {go_quote(port)}"
    return host, number


def _go_atoi(text: str) -> int | None:
    """Go's `strconv.Atoi`: an optional sign and decimal digits, within int64."""
    body = text[1:] if text[:1] in "+-" and text else text
    if not body or not body.isascii() or not body.isdigit():
        return None
    number = int(text)
    return number if -(1 << 63) <= number < (1 << 63) else None


def _cluster_authorization(
    r: _Reader, c: ClusterOptions, m: ConfigMap, key: str
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
            seconds = _auth_timeout(r, block, k)
            if seconds is None:
                return None
            timeout = seconds
        elif lk == "users":
            if isinstance(block[k], list):
                has_users = True
            _users(r, block, k)
        elif lk in ("default_permission", "default_permissions", "permissions"):
            perms = _permissions(r, block, k)
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


def _cluster_routes(r: _Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
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
        where = _element_position(value, i)
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


def _cluster_tls(r: _Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
    parsed = _tls_block(r, m, key, client_facing=False)
    if parsed is not None:
        c.tls = parsed.settings


def _cluster_permissions(r: _Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
    """`import` limits what this server takes from its routes and `export` what it offers
    them; nats-server reads them as a route's publish and subscribe permissions."""
    perms = _permissions(r, m, key, positioned=False)
    if perms is None:
        return
    if perms.response is not None:
        r.error(m, key, "Cluster permissions do not support dynamic responses")
        return
    c.import_permissions, c.export_permissions = perms.publish, perms.subscribe


def _cluster_accounts(r: _Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
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
                _element_position(value, i),
                f"error parsing accounts: unsupported type in array {go_type_name(item)}",
            )
    c.pinned_accounts = names


def _cluster_compression(r: _Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
    """A mode name, a boolean (true = s2_fast), or `{mode, rtt_thresholds}`. Names are checked
    at start-up, not here (as nats-server does): an unknown one is kept as written."""
    value = m[key]
    mode: str | None = None
    thresholds: list[float] = []
    if isinstance(value, bool):
        mode = "s2_fast" if value else "off"
    elif isinstance(value, str):
        mode = value
    elif isinstance(value, ConfigMap):
        for k in value:
            lk = k.lower()
            if lk == "mode":
                mode = r.string(value, k)
                if mode is None:
                    return
            elif lk in ("rtt_thresholds", "thresholds", "rtts", "rtt"):
                items = value[k]
                if not isinstance(items, list):
                    r.error(
                        value,
                        k,
                        f"interface conversion: interface {{}} is "
                        f"{go_type_name(items)}, not []interface {{}}",
                    )
                    return
                for i, item in enumerate(items):
                    if not isinstance(item, str):
                        r.error_at(
                            _element_position(items, i),
                            f"interface conversion: interface {{}} is {go_type_name(item)}, "
                            "not string",
                        )
                        return
                    try:
                        thresholds.append(parse_duration(item) / NS_PER_S)
                    except DurationError as e:
                        r.error(value, k, str(e))
                        return
            elif not value.is_used_variable(k):
                r.error(value, k, f'unknown field "{k}"')
                return
    else:
        r.error(
            m, key, f'field "{key}" should be a boolean or a structure, got {go_type_name(value)}'
        )
        return
    if mode is not None:
        c.compression = normalize_compression(mode) or mode
        c.compression_text = mode
    c.compression_rtt_thresholds = thresholds


def normalize_compression(mode: str) -> str | None:
    """nats-server's name for a route compression mode as written, or None if unknown."""
    word = mode.lower()
    if word in ("on", "enabled", "true"):
        word = "s2_fast"
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
    def handle(r: _Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
        seconds = r.duration(m, key, name)
        if seconds is None:
            return
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


def _cluster_write_timeout(r: _Reader, c: ClusterOptions, m: ConfigMap, key: str) -> None:
    policy = r.string(m, key)
    if policy is None:
        return
    if policy not in ("default", "close", "retry"):
        r.error(m, key, "write_timeout must be 'default', 'close' or 'retry'")
        return
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
        problem = _rtt_thresholds_problem(written, c.compression_rtt_thresholds)
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


def _rtt_thresholds_problem(mode: str, thresholds: list[float]) -> str | None:
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


TOP_LEVEL.update(
    {
        "authorization": _authorization,
        "accounts": _accounts,
        "jetstream": _jetstream,
        "tls": _tls,
        "cluster": _cluster,
        "operator": _operator,
        "operators": _operator,
        "root": _operator,
        "roots": _operator,
        "root_operator": _operator,
        "root_operators": _operator,
        "trusted": _trusted,
        "trusted_keys": _trusted,
        "resolver": _resolver,
        "resolver_preload": _resolver_preload,
    }
)


@dataclasses.dataclass
class ConfigResult:
    options: Options
    errors: list[str]
    warnings: list[str]
    notes: list[str]


def options_from_config(data: ConfigMap, path: str, base: Options | None = None) -> ConfigResult:
    """Options from a parsed file (no flags applied), with what the reader had to say."""
    opts = Options()
    if base is not None:  # the nested cluster options are filled in place: copy them too
        opts = dataclasses.replace(base, cluster=copy.deepcopy(base.cluster))
    r = _Reader(path)
    for key in data:
        if data.is_used_variable(key):
            continue
        handler = TOP_LEVEL.get(key.lower())
        if handler is None:
            r.error(data, key, f'unknown field "{key}"')
            continue
        handler(r, opts, data, key)
    _check_accounts(r, opts, data)
    return ConfigResult(opts, r.errors, r.warnings, r.notes)


def _check_accounts(r: _Reader, o: Options, data: ConfigMap) -> None:
    """Cross-references that nats-server checks while reading (reported at `accounts`)."""
    key = next((k for k in data if k.lower() == "accounts"), None)
    for acc in o.accounts.values():
        for imp in acc.imports:
            if imp.account not in o.accounts:
                r.error(data, key, f'"{imp.account}" account not defined for {imp.kind} import')


def apply_config_file(opts: Options) -> Options:
    """Options from `opts.config_file`, with the fields set on the command line kept."""
    try:
        loaded = load_config_file(opts.config_file)
    except ConfigError as e:
        # nats-server's text, prefixed with file:line:col so the place is never a guess
        raise ConfigLoadError(e.with_location()) from None
    except OSError as e:
        raise ConfigLoadError(
            f"open {opts.config_file}: {(e.strerror or str(e)).lower()}"
        ) from None
    if not loaded.data:
        raise ConfigLoadError(f"{opts.config_file}: config has no values or is empty")
    result = options_from_config(loaded.data, opts.config_file)
    if result.errors:
        raise ConfigLoadError("\n".join(result.errors) + "\n")
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
