"""Configuration reload (SIGHUP / `--signal reload`).

The file is read and checked completely before anything changes; a bad file is refused with
the error logged and the running configuration kept. Then the new options are swapped in:
logging, limits and auth take effect at once; every connected client is checked again against
the new authentication and permissions — it stays connected if it is still allowed, its
subscriptions that are no longer allowed are removed (with nats-server's `-ERR`), and a
client that is no longer allowed at all is disconnected.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from .auth import Authenticator
from .config_options import ConfigLoadError, apply_config_file
from .log import Logger

if TYPE_CHECKING:
    from .options import Options
    from .server import Server

# Options that cannot change without a restart (nats-server refuses them too).
NOT_RELOADABLE = {
    "host": "Host",
    "port": "Port",
    "server_name": "ServerName",
    "http_port": "HTTPPort",
    "https_port": "HTTPSPort",
    "store_dir": "StoreDir",
    "jetstream": "JetStream",
    "cluster_listen": "Cluster",
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
    for name, label in NOT_RELOADABLE.items():
        before, after = getattr(old, name), getattr(new, name)
        if name == "port" and before == -1:
            continue
        if before != after:
            raise ReloadError(f"config reload not supported for {label}: old={before}, new={after}")
    # Keep what was resolved at start-up (random ports, identity).
    new.port = old.port
    changes = _describe_changes(old, new)
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
    return changes


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
