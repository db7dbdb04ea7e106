"""Configuration reload (SIGHUP / `--signal reload`).

The file is read and checked completely before anything changes; a bad file is refused with
the error logged and the running configuration kept. Then the new options are swapped in:
logging, limits and auth take effect at once; every connected client is checked again against
the new authentication and permissions — it stays connected if it is still allowed, its
subscriptions that are no longer allowed are removed (with nats-server's `-ERR`), and a
client that is no longer allowed at all is disconnected.

The cluster follows nats-server's rules: its listen host and port cannot change (a random
port, -1, stays the one bound), every other `cluster {}` setting can (logged once as
`Reloaded: cluster`), and the route list is diffed (`Reloaded: cluster routes`): the running
`Cluster` dials the added routes and closes the removed ones (`routes_changed`) and is told
when its other settings changed (`options_changed`).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol, cast

from .auth import Authenticator
from .config_options import ConfigLoadError, apply_config_file, cluster_problem
from .log import Logger
from .options import split_host_port

if TYPE_CHECKING:
    from .options import ClusterOptions, Options
    from .server import Server

# Options that cannot change without a restart (nats-server refuses them too), in the order
# nats-server checks them (its Options struct order); the cluster's listener comes in between.
NOT_RELOADABLE = {
    "server_name": "ServerName",
    "host": "Host",
    "port": "Port",
    "http_port": "HTTPPort",
    "https_port": "HTTPSPort",
}
NOT_RELOADABLE_AFTER_CLUSTER = {
    "jetstream": "JetStream",
    "store_dir": "StoreDir",
}

LOGGED_VALUES = (
    "debug",
    "trace",
    "trace_verbose",
    "logtime",
    "logtime_utc",
    "log_file",
    "max_payload",
    "max_control_line",
    "max_pending",
    "max_connections",
    "max_subscriptions",
    "ping_interval",
    "ping_max",
    "write_deadline",
    "lame_duck_duration",
    "lame_duck_grace_period",
    "no_auth_user",
    "system_account",
)
AUTH_FIELDS = (
    "username",
    "password",
    "authorization",
    "users",
    "nkeys",
    "accounts",
    "default_permissions",
    "no_auth_user",
    "auth_timeout",
    "tls_map",
)


class ReloadError(Exception):
    pass


class ReloadableCluster(Protocol):
    """What reload needs from the running cluster (`server.cluster`)."""

    options: ClusterOptions

    def options_changed(self) -> None:
        """`options` was replaced: apply what changed (name, auth, permissions, pool size,
        pinned accounts, compression, advertise...)."""

    def routes_changed(self, added: list[str], removed: list[str]) -> None:
        """Dial the added route URLs, close the connections of the removed ones."""


def reload_config(server: Server) -> list[str]:
    """Reload `server.options.config_file`; returns the `Reloaded: ...` lines."""
    old = server.options
    if not old.config_file:
        raise ReloadError("config reload not supported without a configuration file")
    flags_only = dataclasses.replace(old)
    try:
        new = apply_config_file(flags_only)
    except ConfigLoadError as e:
        raise ReloadError(str(e)) from None
    problem = cluster_problem(new)
    if problem:
        raise ReloadError(problem)
    _check_not_reloadable(old, new, NOT_RELOADABLE)
    _check_cluster_listener(server, old.cluster, new.cluster)
    _check_not_reloadable(old, new, NOT_RELOADABLE_AFTER_CLUSTER)
    # Keep what was resolved at start-up (random ports, identity).
    new.port = old.port
    if new.cluster.port == -1:
        new.cluster.port = old.cluster.port
    changes = _describe_changes(old, new)
    cluster_changed, added, removed = _cluster_changes(old.cluster, new.cluster)
    if cluster_changed:
        changes.append("Reloaded: cluster")
    if added or removed:
        changes.append("Reloaded: cluster routes")
    server.options = new
    _apply_logging(server, old, new)
    auth_changed = any(getattr(old, f) != getattr(new, f) for f in AUTH_FIELDS)
    if auth_changed:
        _apply_accounts(server, new)
        server.authenticator = Authenticator(new)
        server.refresh_info()
        _recheck_clients(server)
    for client in list(server.clients.values()):
        client.parser.max_payload = new.max_payload
        client.parser.max_control_line = new.max_control_line
    if server.cluster is not None:
        cluster = cast(ReloadableCluster, server.cluster)
        if cluster_changed:
            cluster.options = new.cluster
            cluster.options_changed()
        if added or removed:
            cluster.routes_changed(added, removed)
    return changes


def _check_not_reloadable(old: Options, new: Options, fields: dict[str, str]) -> None:
    for name, label in fields.items():
        before, after = getattr(old, name), getattr(new, name)
        if name == "port" and (before == -1 or after == -1):
            continue
        if before != after:
            raise ReloadError(f"config reload not supported for {label}: old={before}, new={after}")


def _check_cluster_listener(server: Server, old: ClusterOptions, new: ClusterOptions) -> None:
    """nats-server's `validateClusterOpts`: the listen host and port stay; the port compared
    is the one bound (a random port), and asking for a random port again is no change."""

    def listen_host(c: ClusterOptions) -> str:
        return c.host or ("0.0.0.0" if c.port != 0 else "")

    if listen_host(old) != listen_host(new):
        raise ReloadError(
            "config reload not supported for cluster host: "
            f"old={listen_host(old)}, new={listen_host(new)}"
        )
    bound = old.port
    if server.cluster is not None and old.port == -1:
        bound = server.cluster.port
    if new.port != -1 and new.port != bound:
        raise ReloadError(
            f"config reload not supported for cluster port: old={bound}, new={new.port}"
        )
    if new.advertise:
        problem = _host_port_problem(new.advertise)
        if problem:
            raise ReloadError(f"invalid Cluster.Advertise value of {new.advertise}, err={problem}")


def _host_port_problem(text: str) -> str | None:
    """What nats-server's `parseHostPort` says about an advertise address (a missing port is
    fine: the default is added)."""
    try:
        _, port = split_host_port(text)
    except ValueError as e:
        if "missing port" not in str(e):
            return str(e)
        try:
            _, port = split_host_port(f"{text}:0")
        except ValueError as e2:
            return str(e2)
    port = port.strip()
    body = port[1:] if port[:1] in ("+", "-") else port
    if not body.isdigit():
        return f'strconv.Atoi: parsing "{port}": invalid syntax'
    return None


def _cluster_changes(old: ClusterOptions, new: ClusterOptions) -> tuple[bool, list[str], list[str]]:
    """(any setting but the routes changed, routes added, routes removed). Routes compare as
    a set (their order is no change); with TLS the settings always count as changed, as
    nats-server compares its freshly loaded certificates."""
    changed = new.tls is not None or dataclasses.replace(old, routes=[]) != dataclasses.replace(
        new, routes=[]
    )
    added = [r for r in new.routes if r not in old.routes]
    removed = [r for r in old.routes if r not in new.routes]
    return changed, added, removed


def _describe_changes(old: Options, new: Options) -> list[str]:
    lines: list[str] = []
    for name in LOGGED_VALUES:
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            value = str(after).lower() if isinstance(after, bool) else after
            lines.append(f"Reloaded: {name} = {value}")
    if old.users != new.users or old.nkeys != new.nkeys:
        lines.append("Reloaded: authorization users")
    if (old.username, old.password, old.authorization) != (
        new.username,
        new.password,
        new.authorization,
    ):
        lines.append("Reloaded: authorization")
    if old.accounts != new.accounts or old.users != new.users:
        lines.append("Reloaded: accounts")
    return lines


def _apply_logging(server: Server, old: Options, new: Options) -> None:
    if (old.debug, old.trace, old.trace_verbose, old.logtime, old.logtime_utc, old.log_file) == (
        new.debug,
        new.trace,
        new.trace_verbose,
        new.logtime,
        new.logtime_utc,
        new.log_file,
    ):
        return
    logger = server.logger
    if old.log_file != new.log_file:
        logger.close()
        server.logger = Logger.from_options(new)
        return
    logger.debug_enabled = new.debug
    logger.trace_enabled = new.trace or new.trace_verbose
    logger.trace_verbose = new.trace_verbose
    logger.logtime = new.logtime
    logger.utc = new.logtime_utc


def _apply_accounts(server: Server, new: Options) -> None:
    """New accounts appear, existing ones take their new exports and imports."""
    from .imports import wire_imports

    for name, cfg in new.accounts.items():
        account = server.ensure_account(name)
        account.config = cfg
        account.exports = list(cfg.exports)
        if account.imports_client is not None:
            account.imports_client.close()
            account.imports_client = None
        if server.system is not None:
            server.system.add_account(account)
    for problem in wire_imports(server):
        server.logger.warn(problem)


def _recheck_clients(server: Server) -> None:
    for client in list(server.clients.values()):
        if not client.connected or client.closed:
            continue
        connect: dict[str, Any] = client.connect_opts or {}
        identities: list[str] = []
        if server.options.tls_map and client.transport is not None:
            from .tls import certificate_identities

            identities = certificate_identities(client.transport.get_extra_info("peercert"))
        result, _ = server.authenticator.authenticate(connect, client.nonce, identities)
        account = (result.account if result else "") or "$G"
        if result is None or account != client.account.name:
            client.close_with_error("Authorization Violation", "Authentication Failure")
            continue
        client.user = result.user
        client.apply_permissions(result.permissions)
        client.drop_disallowed_subscriptions()
    server.flush_pending()
