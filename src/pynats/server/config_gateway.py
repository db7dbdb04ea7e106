"""The `gateway {}` block as nats-server's `parseGateway` reads it, and its start-up checks.

A gateway joins this server's cluster to other clusters (a supercluster). The block names
this cluster (`name`), opens the gateway listener (`listen` or `host`/`port`), and lists the
other clusters to dial (`gateways: [{name, url | urls, tls}]`). Keys, texts and places are
nats-server's; `gateway_problem` is what its `validateGatewayOptions` (and the cluster-name
check of `validateOptions`) refuse at start-up.
"""

from __future__ import annotations

from collections.abc import Callable

from .conf import ConfigMap
from .conf.units import go_quote, go_type_name
from .config_reader import (
    Reader,
    auth_timeout,
    conversion_text,
    element_position,
    go_listen,
    write_timeout_policy,
)
from .config_tls import tls_block
from .options import GatewayOptions, Options, RemoteGateway, parse_go_url

GatewayHandler = Callable[[Reader, GatewayOptions, ConfigMap, str], None]

_NIL_DEREF = "runtime error: invalid memory address or nil pointer dereference"


def parse_gateway(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    """nats-server's `parseGateway`: each key checked with its texts."""
    block = m[key]
    if not isinstance(block, ConfigMap):
        r.error(m, key, f"Expected gateway to be a map, got {go_type_name(block)}")
        return
    g = o.gateway
    for k in block:
        handler = GATEWAY.get(k.lower())
        if handler is not None:
            handler(r, g, block, k)
        elif not block.is_used_variable(k):
            r.error(block, k, f'unknown field "{k}"')


def _set(name: str, kind: str) -> GatewayHandler:
    def handle(r: Reader, g: GatewayOptions, m: ConfigMap, key: str) -> None:
        getter = {"int": r.integer, "bool": r.boolean, "str": r.string}[kind]
        value = getter(m, key)
        if value is not None:
            setattr(g, name, value)

    return handle


def _name(r: Reader, g: GatewayOptions, m: ConfigMap, key: str) -> None:
    name = r.string(m, key)
    if name is None:
        return
    if " " in name:
        r.error(m, key, "gateway name cannot contain spaces")
        return
    g.name = name


def _listen(r: Reader, g: GatewayOptions, m: ConfigMap, key: str) -> None:
    listen = go_listen(m[key])
    if isinstance(listen, str):
        r.error(m, key, listen)
    else:
        g.host, g.port = listen


def _authorization(r: Reader, g: GatewayOptions, m: ConfigMap, key: str) -> None:
    """Gateways authenticate with one user/password: user lists and tokens are refused. A
    type error inside fails twice in nats-server (its parser returns nothing and the caller
    dereferences it): both lines are reproduced, as for `cluster {}`."""
    block = m[key]
    if not isinstance(block, ConfigMap):
        r.error(m, key, conversion_text(block, "map[string]interface {}"))
        r.error(m, key, _NIL_DEREF)
        return
    user = password = token = ""
    timeout = 0.0
    has_users = False
    for k in block:
        lk = k.lower()
        if lk in ("user", "username", "pass", "password", "token"):
            text = r.string(block, k)
            if text is None:
                r.error(m, key, _NIL_DEREF)
                return
            if lk in ("user", "username"):
                user = text
            elif lk == "token":
                token = text
            else:
                password = text
        elif lk == "timeout":
            seconds = auth_timeout(r, block, k)
            if seconds is None:
                return
            timeout = seconds
        elif lk == "users":
            has_users = True
        elif lk in ("default_permission", "default_permissions", "permissions"):
            pass  # read by nats-server's authorization parser, unused by gateways
        elif not block.is_used_variable(k):
            r.error(block, k, f'unknown field "{k}"')
    if has_users:
        r.error(m, key, "Gateway authorization does not allow multiple users")
    elif token:
        r.error(m, key, "Gateway authorization does not support tokens")
    else:
        g.username, g.password, g.auth_timeout = user, password, timeout


def _tls(r: Reader, g: GatewayOptions, m: ConfigMap, key: str) -> None:
    parsed = tls_block(r, m, key, client_facing=False)
    if parsed is not None:
        g.tls = parsed.settings


def _gateways(r: Reader, g: GatewayOptions, m: ConfigMap, key: str) -> None:
    """The remote clusters: each a map of `name`, `url` or `urls`, and `tls`."""
    value = m[key]
    if not isinstance(value, list):
        r.error_at(None, f"Expected gateways field to be an array, got {go_type_name(value)}")
        return
    remotes: list[RemoteGateway] = []
    for i, item in enumerate(value):
        if not isinstance(item, ConfigMap):
            r.error_at(
                element_position(value, i),
                f"Expected gateway entry to be a map/struct, got {go_type_name(item)}",
            )
            return
        remote = _remote(r, item)
        if remote is None:
            return
        remotes.append(remote)
    g.gateways = remotes


def _remote(r: Reader, m: ConfigMap) -> RemoteGateway | None:
    remote = RemoteGateway()
    for k in m:
        lk = k.lower()
        if lk == "name":
            name = r.string(m, k)
            if name is None:
                return None
            remote.name = name
        elif lk == "tls":
            parsed = tls_block(r, m, k, client_facing=False)
            if parsed is None:
                return None
            remote.tls = parsed.settings
        elif lk == "url":
            url = m[k]
            if not isinstance(url, str):
                r.error(m, k, conversion_text(url, "string"))
                return None
            if not _add_url(r, m, k, remote, url):
                return None
        elif lk == "urls":
            urls = m[k]
            if not isinstance(urls, list):
                r.error(m, k, conversion_text(urls, "[]interface {}"))
                return None
            for i, url in enumerate(urls):
                if not isinstance(url, str):
                    r.error_at(element_position(urls, i), conversion_text(url, "string"))
                    return None
                if not _add_url(r, m, k, remote, url):
                    return None
        elif not m.is_used_variable(k):
            r.error(m, k, f'unknown field "{k}"')
            return None
    return remote


def _add_url(r: Reader, m: ConfigMap, key: str, remote: RemoteGateway, url: str) -> bool:
    try:
        parsed = parse_go_url(url)
    except ValueError:
        parsed = None
    if parsed is None or not parsed.host:
        r.error(m, key, f"error parsing gateway url [{go_quote(url)}]")
        return False
    remote.urls.append(url)
    return True


def _duration(name: str) -> GatewayHandler:
    def handle(r: Reader, g: GatewayOptions, m: ConfigMap, key: str) -> None:
        with r.recovering():
            setattr(g, name, r.go_duration(m, key, name))

    return handle


def _write_timeout(r: Reader, g: GatewayOptions, m: ConfigMap, key: str) -> None:
    policy = write_timeout_policy(r, m, key)
    if policy is not None:
        g.write_timeout = policy


GATEWAY: dict[str, GatewayHandler] = {
    "name": _name,
    "listen": _listen,
    "port": _set("port", "int"),
    "host": _set("host", "str"),
    "net": _set("host", "str"),
    "authorization": _authorization,
    "tls": _tls,
    "advertise": _set("advertise", "str"),
    "gateway_advertise": _set("advertise", "str"),
    "connect_retries": _set("connect_retries", "int"),
    "connect_backoff": _set("connect_backoff", "bool"),
    "gateways": _gateways,
    "reject_unknown": _set("reject_unknown", "bool"),
    "reject_unknown_cluster": _set("reject_unknown", "bool"),
    "write_deadline": _duration("write_deadline"),
    "write_timeout": _write_timeout,
}


def gateway_problem(opts: Options) -> str | None:
    """What nats-server refuses at start-up: a gateway beside a leaf node listener without a
    configured system account, a gateway without a name or a port, a remote without a name
    or a URL, and a cluster named differently from its gateway."""
    g = opts.gateway
    if g.name and opts.leafnodes.port != 0 and not opts.system_account:
        return "leaf nodes and gateways (both being defined) require a system account to also be configured"
    if g.name and opts.cluster.name and g.name != opts.cluster.name:
        return "cluster name conflicts between cluster and gateway definitions"
    if not g.name and g.port == 0:
        return None
    if not g.name:
        return "gateway has no name"
    if g.port == 0:
        return f"gateway {go_quote(g.name)} has no port specified (select -1 for random port)"
    for i, remote in enumerate(g.gateways):
        if not remote.name:
            return f"gateway in the list {i} has no name"
        if not remote.urls:
            return f"gateway {go_quote(remote.name)} has no URL"
    return None
