"""The `websocket {}` block (alias `ws`) as nats-server's `parseWebsocket` reads it, and the
start-up checks of its `validateWebsocketOptions`.

Quirks kept from nats-server: its `authorization` block takes user, password, token and
timeout only (`users` is an unknown field), a timeout that is not a number silently means
one second, and a type error inside the block is reported a second time as the nil
dereference nats-server's caller then hits; `handshake_timeout` counts bare integers as
seconds without a warning; the cookie keys are `user_cookie` and `pass_cookie`. TLS is
required unless `no_tls`, but only when the server starts (`-t` accepts the block).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pynats.gotime import NS_PER_S, DurationError, parse_duration

from .conf import ConfigMap
from .conf.units import go_quote, go_type_name
from .config_reader import GoPanic, Reader, element_position, go_listen, parse_url
from .config_tls import tls_block
from .options import Options, WebsocketOptions, split_host_port

NIL_DEREFERENCE = "runtime error: invalid memory address or nil pointer dereference"
# Headers nats-server writes itself, which the `headers` block may not set.
RESERVED_HEADERS = ("host", "content-length", "connection", "upgrade", "nats-no-masking")

Handler = Callable[[Reader, WebsocketOptions, ConfigMap, str], None]


def parse_websocket(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    block = m[key]
    if not isinstance(block, ConfigMap):
        r.error(m, key, f"Expected websocket to be a map, got {go_type_name(block)}")
        return
    ws = o.websocket
    with r.recovering():
        for k in block:
            handler = WEBSOCKET.get(k.lower())
            if handler is None:
                r.unknown_field(block, k)
            else:
                handler(r, ws, block, k)


def _set(name: str, kind: str) -> Handler:
    def handle(r: Reader, ws: WebsocketOptions, m: ConfigMap, key: str) -> None:
        getter: dict[str, Callable[[ConfigMap, str], Any]] = {
            "int": r.expect_int,
            "bool": r.expect_bool,
            "str": r.expect_str,
        }
        setattr(ws, name, getter[kind](m, key))

    return handle


def _listen(r: Reader, ws: WebsocketOptions, m: ConfigMap, key: str) -> None:
    listen = go_listen(m[key])
    if isinstance(listen, str):
        r.error(m, key, listen)
    else:
        ws.host, ws.port = listen


def _tls(r: Reader, ws: WebsocketOptions, m: ConfigMap, key: str) -> None:
    parsed = tls_block(r, m, key, client_facing=True)
    if parsed is not None:
        ws.tls = parsed.settings


def _allowed_origins(r: Reader, ws: WebsocketOptions, m: ConfigMap, key: str) -> None:
    """nats-server's `parseStringArray("allowed origins", ...)`: a string or a list of them
    (other elements are reported and skipped); any other value leaves no list."""
    value = m[key]
    if isinstance(value, str):
        ws.allowed_origins = [value]
        return
    if not isinstance(value, list):
        r.error(m, key, f"error parsing allowed origins: unsupported type {go_type_name(value)}")
        ws.allowed_origins = []
        return
    origins: list[str] = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            origins.append(item)
        else:
            r.error_at(
                element_position(value, i),
                f"error parsing allowed origins: unsupported type in array {go_type_name(item)}",
            )
    ws.allowed_origins = origins


def _handshake_timeout(r: Reader, ws: WebsocketOptions, m: ConfigMap, key: str) -> None:
    value = m[key]
    if isinstance(value, int) and not isinstance(value, bool):
        ws.handshake_timeout = float(value)
    elif isinstance(value, str):
        try:
            ws.handshake_timeout = parse_duration(value) / NS_PER_S
        except DurationError as e:
            r.error(m, key, str(e))
    else:
        r.error(m, key, f"error parsing handshake timeout: unsupported type {go_type_name(value)}")
        ws.handshake_timeout = 0.0


def _authorization(r: Reader, ws: WebsocketOptions, m: ConfigMap, key: str) -> None:
    """nats-server's `parseSimpleAuth`: user, password, token, timeout."""
    try:
        block = r.expect_map(m, key)
        username = password = token = ""
        timeout = 0.0
        for k in block:
            lk = k.lower()
            if lk in ("user", "username"):
                username = r.expect_str(block, k)
            elif lk in ("pass", "password"):
                password = r.expect_str(block, k)
            elif lk == "token":
                token = r.expect_str(block, k)
            elif lk == "timeout":
                value = block[k]
                number = isinstance(value, (int, float)) and not isinstance(value, bool)
                timeout = float(value) if number else 1.0
            else:
                r.unknown_field(block, k)
    except GoPanic as p:
        r.error_at(p.position, p.text)
        raise r.panic(m, key, NIL_DEREFERENCE) from None
    ws.username, ws.password, ws.token, ws.auth_timeout = username, password, token, timeout


def _headers(r: Reader, ws: WebsocketOptions, m: ConfigMap, key: str) -> None:
    value = m[key]
    if not isinstance(value, ConfigMap):
        r.error(m, key, f"error parsing headers: unsupported type {go_type_name(value)}")
        return
    ws.headers = {}
    for name in value:
        header = value[name]
        if isinstance(header, str):
            ws.headers[name] = header
        else:
            r.error(
                value,
                name,
                f"error parsing header key {name}: unsupported type {go_type_name(header)}",
            )


def _ping_interval(r: Reader, ws: WebsocketOptions, m: ConfigMap, key: str) -> None:
    ws.ping_interval = r.go_duration(m, key, "ping_interval")


_ORIGINS = ("allowed_origins", "allowed_origin", "allow_origins", "allow_origin", "origins")

WEBSOCKET: dict[str, Handler] = {
    "listen": _listen,
    "port": _set("port", "int"),
    "host": _set("host", "str"),
    "net": _set("host", "str"),
    "advertise": _set("advertise", "str"),
    "no_tls": _set("no_tls", "bool"),
    "tls": _tls,
    "same_origin": _set("same_origin", "bool"),
    **{name: _allowed_origins for name in (*_ORIGINS, "origin")},
    "handshake_timeout": _handshake_timeout,
    "compress": _set("compression", "bool"),
    "compression": _set("compression", "bool"),
    "authorization": _authorization,
    "authentication": _authorization,
    "jwt_cookie": _set("jwt_cookie", "str"),
    "user_cookie": _set("username_cookie", "str"),
    "pass_cookie": _set("password_cookie", "str"),
    "token_cookie": _set("token_cookie", "str"),
    "no_auth_user": _set("no_auth_user", "str"),
    "headers": _headers,
    "ping_interval": _ping_interval,
}


# -- start-up checks ---------------------------------------------------------------------------


def websocket_problem(opts: Options) -> str | None:
    """What nats-server's `validateWebsocketOptions` refuses when the server starts (or
    reloads); nothing is checked without a websocket port."""
    ws = opts.websocket
    if ws.port == 0:
        return None
    if ws.tls is None and not ws.no_tls:
        return "websocket requires TLS configuration"
    for origin in ws.allowed_origins:
        problem = _origin_problem(origin)
        if problem:
            return problem
    users, nkeys = _all_users(opts)
    if ws.no_auth_user:
        problem = no_auth_user_problem(opts, ws.no_auth_user)
        if problem:
            return problem
    if users or nkeys:
        if ws.username:
            return "websocket authentication username not compatible with presence of users/nkeys"
        if ws.token:
            return "websocket authentication token not compatible with presence of users/nkeys"
    if ws.jwt_cookie and not opts.trusted_operators and not opts.trusted_keys:
        return (
            "trusted operators or trusted keys configuration is required for JWT "
            f"authentication via cookie {go_quote(ws.jwt_cookie)}"
        )
    for name in ws.headers:
        lowered = name.lower()
        if lowered in RESERVED_HEADERS:
            return f"websocket: invalid header {go_quote(name)} not allowed"
        if lowered.startswith("sec-websocket-"):
            return (
                f'websocket: invalid header {go_quote(name)}, "Sec-WebSocket-" prefix not allowed'
            )
    return None


def _origin_problem(origin: str) -> str | None:
    """An allowed origin must be an absolute http(s) URL with a host (Go's
    `url.ParseRequestURI`, then nats-server's host:port split)."""
    try:
        if not origin:
            raise ValueError('parse "": empty url')
        url = parse_url(origin)
        if not url.scheme and not origin.startswith("/"):
            raise ValueError(f"parse {go_quote(origin)}: invalid URI for request")
    except ValueError as e:
        return f"unable to parse allowed origin: {e}"
    if url.scheme not in ("http", "https"):
        return (
            f"unable to parse allowed origin {go_quote(origin)}: allowed origins must be "
            "absolute URLs with http or https scheme"
        )
    if not url.host:
        return f"unable to parse allowed origin {go_quote(origin)}: host is required"
    try:
        split_host_port(url.host)
    except ValueError as e:
        if "missing port" not in str(e):
            return f"unable to parse allowed origin: {e}"
    return None


def _all_users(opts: Options) -> tuple[list[str], list[str]]:
    """User names and nkeys of the whole configuration (nats-server's `Options.Users` and
    `Nkeys` hold the accounts' users too)."""
    users = [u.username for u in opts.users]
    nkeys = [n.nkey for n in opts.nkeys]
    for account in opts.accounts.values():
        users += [u.username for u in account.users]
        nkeys += [n.nkey for n in account.nkey_users]
    return users, nkeys


def no_auth_user_problem(opts: Options, name: str) -> str | None:
    """nats-server's `validateNoAuthUser`."""
    if opts.trusted_operators:
        return "no_auth_user not compatible with Trusted Operator"
    users, nkeys = _all_users(opts)
    if not users and not nkeys:
        return f"no_auth_user: {go_quote(name)} present, but users/nkeys are not defined"
    if name in users or name in nkeys:
        return None
    return (
        f"no_auth_user: {go_quote(name)} not present as user or nkey in authorization block or "
        "account configuration"
    )
