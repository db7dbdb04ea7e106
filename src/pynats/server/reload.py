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

Leaf nodes follow nats-server's `getLeafNodeOptionsChanges`: of the listener only the
compression and the TLS files and handshake-first may change; remotes are matched by their
name (URLs, account, credentials): one that is gone is removed (`Reloaded: LeafNode Remote
... removed`), a new one added, and of one that stays only the compression, `disabled`, TLS
files and handshake-first may change. The running `LeafNodes` hears of it through
`remotes_changed` and `options_changed`. The websocket block cannot change at all, but for
its TLS files.

JetStream may be switched on or off, and some of `jetstream {}` may change
(`reload_jetstream.py`); what that does runs once the `Reloaded:` lines are logged (the
`actions` `reload_config` hands back).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from pynats.gotime import NS_PER_S, format_duration

from . import const
from .auth import Authenticator
from .conf.units import go_quote
from .config_leafnodes import DEFAULT_S2_AUTO_RTT_THRESHOLDS_S, remote_name
from .config_options import ConfigLoadError, apply_config_file, startup_problem
from .config_reader import go_float
from .config_websocket import no_auth_user_problem
from .log import Logger
from .mqtt_reload import mqtt_reload
from .options import split_host_port
from .protocol import ERR_AUTH_VIOLATION
from .reload_jetstream import (
    JetStreamReload,
    JetStreamReloadError,
    ReloadableJetStream,
    jetstream_changes,
)
from .syslog import SyslogError

if TYPE_CHECKING:
    from .options import (
        ClusterOptions,
        LeafNodeOptions,
        LeafRemote,
        Options,
        WebsocketOptions,
    )
    from .server import Server

# Options that cannot change without a restart (nats-server refuses them too), in the order
# nats-server checks them (its Options struct order): the first one changed is named. The
# cluster's listener, the leaf nodes and JetStream (reload_jetstream.py) come between the two
# lists.
NOT_RELOADABLE = {
    "server_name": "ServerName",
    "host": "Host",
    "port": "Port",
    "client_advertise": "ClientAdvertise",  # only checked: it may change if it parses
    "disable_sublist_cache": "NoSublistCache",
    "no_header_support": "NoHeaderSupport",
    "max_subscriptions": "MaxSubs",
    "max_sub_tokens": "MaxSubTokens",
    "no_auth_user": "NoAuthUser",
    "system_account": "SystemAccount",
    "no_system_account": "NoSystemAccount",
    "http_host": "HTTPHost",
    "http_port": "HTTPPort",
    "https_port": "HTTPSPort",
    "max_pending": "MaxPending",
}
NOT_RELOADABLE_AFTER_CLUSTER = {
    "log_size_limit": "LogSizeLimit",
    "log_max_num": "LogMaxFiles",
    "write_timeout": "WriteTimeout",
    "max_closed_clients": "MaxClosedClients",
    "lame_duck_duration": "LameDuckDuration",
    "lame_duck_grace_period": "LameDuckGracePeriod",
}
# Durations nats-server prints as Go durations (`1m0s`, `1.5s`) in its lines.
DURATIONS = {"ping_interval", "write_deadline", "lame_duck_duration", "lame_duck_grace_period"}

# What nats-server logs as `Reloaded: <name> = <value>` when it changed, in its order; each
# section ends where other lines come in between (see `_describe_changes`).
LOGGED_VALUES = ("debug", "trace_verbose", "trace_headers", "logtime", "logtime_utc")
LOGGED_LIMITS = ("max_connections",)
LOGGED_PINGS = ("ping_interval", "ping_max")
LOGGED_SIZES = ("max_control_line", "max_payload")
LOGGED_LATE = (
    "write_deadline",
    "max_traced_msg_len",
    "connect_error_reports",
    "reconnect_error_reports",
)
# A value of 0 in the file is nats-server's default for these (its baseline options).
BASELINE = {
    "max_payload": const.MAX_PAYLOAD_SIZE,
    "max_control_line": const.MAX_CONTROL_LINE_SIZE,
    "max_pending": const.MAX_PENDING_SIZE,
    "ping_interval": const.PING_INTERVAL_S,
    "ping_max": const.PING_MAX_OUTSTANDING,
    "write_deadline": const.WRITE_DEADLINE_S,
}
# set on the server once a reload went through
_RELOADED = "_pynats_reloaded"
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
    "trusted_proxies",
)


class ReloadError(Exception):
    pass


class ReloadableLeafNodes(Protocol):
    """What reload needs from the running leaf nodes (`server.leafnodes`)."""

    options: LeafNodeOptions

    def options_changed(self) -> None:
        """`options` was replaced and settings that may change on a reload did: the
        listener's compression or TLS handshake-first, or a remote's compression, TLS files or
        handshake-first (`remote_name` in config_leafnodes names a remote the way reload
        matches old and new ones)."""

    def remotes_changed(self, added: list[LeafRemote], removed: list[LeafRemote]) -> None:
        """Dial `added` (new remotes, and remotes no longer `disabled`); close and stop
        dialling `removed` (remotes gone from the file, and remotes now `disabled`); the
        removed ones are the old options' objects."""


class ReloadableCluster(Protocol):
    """What reload needs from the running cluster (`server.cluster`)."""

    options: ClusterOptions

    def options_changed(self) -> None:
        """`options` was replaced: apply what changed (name, auth, permissions, pool size,
        pinned accounts, compression, advertise...)."""

    def routes_changed(self, added: list[str], removed: list[str]) -> None:
        """Dial the added route URLs, close the connections of the removed ones."""


def reload_config(server: Server, actions: list[Callable[[], None]] | None = None) -> list[str]:
    """Reload `server.options.config_file`; returns the `Reloaded: ...` lines. What is to
    be done once they are logged (JetStream switched on or off) is added to `actions`."""
    old = server.options
    if not old.config_file:
        raise ReloadError("config reload not supported without a configuration file")
    flags_only = dataclasses.replace(old)
    try:
        new = apply_config_file(flags_only)
    except ConfigLoadError as e:
        raise ReloadError(str(e)) from None
    for name, default in BASELINE.items():
        if not getattr(new, name):
            setattr(new, name, default)
    problem = _options_problem(new) or startup_problem(new)
    if problem:
        raise ReloadError(problem)
    # what the server runs with, zeros read as nats-server's defaults, as the new options are
    compared = dataclasses.replace(old)
    for name, default in BASELINE.items():
        setattr(compared, name, getattr(old, name) or default)
    _check_not_reloadable(compared, new, NOT_RELOADABLE)
    _check_cluster_listener(server, old.cluster, new.cluster)
    leaf = leafnode_changes(old.leafnodes, new.leafnodes)
    jetstream: ReloadableJetStream | None = getattr(server, "jetstream", None)
    try:
        js_change = jetstream_changes(jetstream is not None and jetstream.running, old, new)
    except JetStreamReloadError as e:
        raise ReloadError(str(e)) from None
    _check_not_reloadable(compared, new, NOT_RELOADABLE_AFTER_CLUSTER)
    _check_websocket(server, old.websocket, new.websocket)
    _check_gateway(server, old, new)
    gateway_tls = _gateway_tls(server, new)
    client_tls = _client_tls(server, new)
    refused, mqtt_lines = mqtt_reload(server, old.mqtt, new.mqtt)
    if refused:
        raise ReloadError(refused)
    if js_change.refused_later:
        raise ReloadError(js_change.refused_later)
    # Keep what was resolved at start-up (random ports, identity).
    new.port = old.port
    if new.cluster.port == -1:
        new.cluster.port = old.cluster.port
    cluster_changed, added, removed = _cluster_changes(old.cluster, new.cluster)
    # nats-server names the cluster of a JetStream server with leaf node remotes and no
    # cluster itself at start-up, so the file's (nameless) cluster differs on the first
    # reload that goes through
    named = old.jetstream and old.leafnodes.remotes and not old.cluster.port
    if named and not old.cluster.name and not getattr(server, _RELOADED, False):
        cluster_changed = True
    blocks = (["Reloaded: cluster"] if cluster_changed else []) + leaf.lines
    blocks += js_change.lines + mqtt_lines
    tls_lines = _reload_pinned_certs(server, old, new)
    changes = _describe_changes(
        compared, new, client_tls is not None, blocks, bool(added or removed), tls_lines
    )
    server.options = new
    setattr(server, _RELOADED, True)
    _apply_files(server, old, new)
    _apply_logging(server, old, new)
    system = getattr(server, "system", None)  # (a test's stand-in server may have none)
    if old.trace_verbose != new.trace_verbose and system is not None:
        system.set_tracing(new.trace_verbose)
    auth_changed = any(getattr(old, f) != getattr(new, f) for f in AUTH_FIELDS)
    if auth_changed:
        _apply_accounts(server, new)
        server.authenticator = Authenticator(new)
        server.refresh_info()
        _recheck_clients(server)
    if client_tls is not None:
        # clients that connect from now on get the new TLS (nats-server keeps the TLS of
        # those connected); INFO says whether TLS is required
        server.client_tls_state, server.tls_context = client_tls
        server.refresh_info()
    changes += _reload_proxies(server, old, new)
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
    if gateway_tls is not None and server.gateways is not None:
        server.gateways.reload_tls(new.gateway, gateway_tls)
    mqtt_listener = getattr(server, "mqtt", None)  # (a test's stand-in server may have none)
    if mqtt_listener is not None:
        mqtt_listener.options = new.mqtt  # new consumers follow the reloaded settings
    if server.leafnodes is None and leaf.added:
        server.start_leafnodes()  # the first remotes arrive with this reload
    elif server.leafnodes is not None and old.leafnodes != new.leafnodes:
        leafnodes = cast(ReloadableLeafNodes, server.leafnodes)
        leafnodes.options = new.leafnodes
        if leaf.settings_changed:
            leafnodes.options_changed()
        if leaf.added or leaf.removed:
            leafnodes.remotes_changed(leaf.added, leaf.removed)
    if actions is not None:
        _jetstream_actions(server, jetstream, js_change, actions)
    return changes


def _jetstream_actions(
    server: Server,
    jetstream: ReloadableJetStream | None,
    change: JetStreamReload,
    actions: list[Callable[[], None]],
) -> None:
    """After the `Reloaded:` lines, as nats-server: a running JetStream that stays on takes
    the new limits and accounts, then JetStream is switched off or (again) on."""
    if jetstream is not None and jetstream.running and change.switch is None:
        actions.append(jetstream.reload_options)
    elif change.switch == "off" and jetstream is not None:
        actions.append(jetstream.reload_disable)
    elif change.switch == "on":

        def switch_on() -> None:
            if server.jetstream is None and server.jetstream_factory is not None:
                server.jetstream_factory()  # a server started without JetStream
            if server.jetstream is not None:
                server.jetstream.reload_enable()

        actions.append(switch_on)


def _options_problem(new: Options) -> str | None:
    """What nats-server's option checks refuse in a reloaded file before comparing it (the
    rest is `startup_problem`)."""
    if new.max_payload > new.max_pending:
        return (
            f"max_payload ({new.max_payload}) cannot be higher than max_pending ({new.max_pending})"
        )
    if new.no_auth_user:
        return no_auth_user_problem(new, new.no_auth_user)
    return None


def _check_not_reloadable(old: Options, new: Options, fields: dict[str, str]) -> None:
    for name, label in fields.items():
        before, after = getattr(old, name), getattr(new, name)
        if name == "http_host":
            before, after = old.monitor_host(), new.monitor_host()
        if name == "port" and (before == -1 or after == -1):
            continue
        if name == "client_advertise":
            problem = _host_port_problem(after) if after else None
            if problem:
                raise ReloadError(f"invalid ClientAdvertise value of {after}, err={problem}")
            continue
        if before == after:
            continue
        gone = name == "no_auth_user" and before and not after
        if gone and all(user.username != before for user in new.users):
            continue  # dropping it is fine when its user went too
        if name == "system_account" and before == "$SYS" and not after:
            continue
        raise ReloadError(
            f"config reload not supported for {label}: "
            f"old={_go_value(name, before)}, new={_go_value(name, after)}"
        )


def _go_value(name: str, value: Any) -> str:
    """An option's value as nats-server prints it in its reload lines."""
    if isinstance(value, bool):
        return _go_bool(value)
    if name in DURATIONS:
        return _go_duration(value)
    return str(value)


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


def _describe_changes(
    old: Options,
    new: Options,
    tls_changed: bool = False,
    blocks: list[str] | None = None,
    routes_changed: bool = False,
    tls_lines: list[str] | None = None,
) -> list[str]:
    """nats-server's `Reloaded: ...` lines for the top-level options, in its order (that of
    its Options struct): the lines of the cluster, leaf node and MQTT blocks (`blocks`) come
    after `no_fast_producer_stall`, the routes' after the log file, the client TLS ones
    (`tls_lines`: pinned certificates) after `tls`."""
    lines: list[str] = []

    def values(names: tuple[str, ...]) -> None:
        for name in names:
            before, after = getattr(old, name), getattr(new, name)
            if before != after:
                lines.append(f"Reloaded: {name} = {_go_value(name, after)}")

    # nats-server turns tracing on with trace_verbose and trace_headers
    traced = [o.trace or o.trace_verbose or o.trace_headers for o in (old, new)]
    if traced[0] != traced[1]:
        lines.append(f"Reloaded: trace = {_go_bool(traced[1])}")
    values(LOGGED_VALUES)
    values(LOGGED_LIMITS)
    if old.nkeys != new.nkeys:
        lines.append("Reloaded: authorization nkey users")
    # nats-server reloads (and logs) its users and accounts on every reload
    lines += ["Reloaded: authorization users", "Reloaded: accounts"]
    for name, label in (("username", "username"), ("password", "password")):
        if getattr(old, name) != getattr(new, name):
            lines.append(f"Reloaded: authorization {label}")
    if old.authorization != new.authorization:
        lines.append("Reloaded: authorization token")
    values(LOGGED_PINGS)
    if old.effective_auth_timeout() != new.effective_auth_timeout():
        lines.append(f"Reloaded: authorization timeout = {go_float(new.effective_auth_timeout())}")
    values(LOGGED_SIZES)
    if old.no_fast_producer_stall != new.no_fast_producer_stall:
        will = "will not" if new.no_fast_producer_stall else "will"
        lines.append(f"Reloaded: fast producers {will} be stalled")
    lines += blocks or []
    if new.pid_file and old.pid_file != new.pid_file:
        lines.append(f"Reloaded: pid_file = {new.pid_file}")
    values(("ports_file_dir", "log_file", "syslog", "remote_syslog"))
    if routes_changed:
        lines.append("Reloaded: cluster routes")
    if old.tls_timeout != new.tls_timeout:
        lines.append(f"Reloaded: tls timeout = {go_float(new.tls_timeout)}")
    if tls_changed or (old.tls and new.tls):
        # nats-server logs it on every reload while the client port has TLS
        lines.append(f"Reloaded: tls = {'enabled' if new.tls else 'disabled'}")
    lines += tls_lines or []
    values(LOGGED_LATE)
    if old.server_tags != new.server_tags:
        lines.append("Reloaded: tags")
    if old.server_metadata != new.server_metadata:
        lines.append("Reloaded: metadata")
    if getattr(old, "ocsp", None) != getattr(new, "ocsp", None):
        lines.append("Reloaded: OCSP")  # (the stapling is rebuilt on every reload)
    return lines


def client_tls_state(opts: Options) -> tuple[Any, ...] | None:
    """What the client port's TLS is made of, the files' bytes included (a certificate
    renewed in place, same path, is a change, as nats-server compares the loaded
    certificates); None without TLS."""
    if not opts.tls:
        return None
    files = [opts.tls_cert, opts.tls_key, opts.tls_ca_cert]
    files += [path for pair in opts.tls_certs for path in pair]
    contents: list[bytes | None] = []
    for path in files:
        try:
            with open(path, "rb") as f:
                contents.append(f.read())
        except OSError:
            contents.append(None)
    return (
        tuple(files),
        tuple(contents),
        opts.tls_verify,
        opts.tls_map,
        opts.tls_min_version,
        tuple(opts.tls_cipher_suites),
        tuple(opts.tls_curve_preferences),
    )


def _client_tls(server: Server, new: Options) -> tuple[tuple[Any, ...] | None, Any] | None:
    """None when the client port's TLS is what the running context was built from
    (`server.client_tls_state`); else (its new state, the new SSLContext or None without
    TLS), built before anything of the reload is applied, so a certificate that does not
    load refuses the reload. The caller records the state once the reload is applied."""
    state = client_tls_state(new)
    # (a test's stand-in server may have none)
    if state == getattr(server, "client_tls_state", None):
        return None
    context = None
    if new.tls:
        from .tls import TLSConfigError, build_server_context

        try:
            context = build_server_context(new)
        except TLSConfigError as e:
            raise ReloadError(str(e)) from None
    return state, context


def _reload_proxies(server: Server, old: Options, new: Options) -> list[str]:
    """Trusted proxies added and removed (ADR-55): a client that came through a proxy no
    longer trusted is disconnected, as nats-server does (`Proxy Not Trusted`)."""
    added = [key for key in new.trusted_proxies if key not in old.trusted_proxies]
    removed = [key for key in old.trusted_proxies if key not in new.trusted_proxies]
    lines: list[str] = []
    if removed:
        gone = set(removed)
        for client in list(server.clients.values()):
            if client.proxy_key in gone and not client.closed:
                client.close_with_error(ERR_AUTH_VIOLATION, "Proxy Not Trusted")
        server.flush_pending()
        lines.append(f"Reloaded: proxies trusted keys {_go_quoted_list(removed)} were removed")
    if added:  # (nats-server logs the removed ones first)
        lines.append(f"Reloaded: proxies trusted keys {_go_quoted_list(added)} were added")
    return lines


def _reload_pinned_certs(server: Server, old: Options, new: Options) -> list[str]:
    """The client port's `tls { pinned_certs }` changed: once the reload is done (after its
    `Reloaded server configuration`, as nats-server logs it), the clients whose certificate
    is not pinned any more (a plain client has none) are disconnected as a failed
    handshake."""
    if old.tls_pinned_certs == new.tls_pinned_certs:
        return []
    pinned = new.tls_pinned_certs

    def recheck() -> None:
        if pinned is None:
            return
        from .connection import REASON_TLS_FAILURE
        from .tls_options import peer_key_id

        gone = []
        for client in list(server.clients.values()):
            transport = client.transport
            if client.closed or client.is_websocket or transport is None:
                continue
            if peer_key_id(transport.get_extra_info("ssl_object")) not in pinned:
                gone.append(client)
        if gone:
            server.logger.notice(f"Disconnect {len(gone)} clients due to pinned certs reload")
            for client in gone:
                client.close_connection(REASON_TLS_FAILURE)

    server.loop.call_soon(recheck)
    return [f"Reloaded: {len(pinned or ())} pinned_certs"]


def _go_quoted_list(items: list[str]) -> str:
    """A list as Go's %q prints a []string: `["a" "b"]`."""
    return "[" + " ".join(go_quote(item) for item in items) + "]"


def _apply_logging(server: Server, old: Options, new: Options) -> None:
    if (old.debug, old.trace, old.trace_verbose, old.logtime, old.logtime_utc, old.log_file) == (
        new.debug,
        new.trace,
        new.trace_verbose,
        new.logtime,
        new.logtime_utc,
        new.log_file,
    ) and (old.syslog, old.remote_syslog) == (new.syslog, new.remote_syslog):
        return
    logger = server.logger
    if (old.log_file, old.syslog, old.remote_syslog) != (
        new.log_file,
        new.syslog,
        new.remote_syslog,
    ):
        try:
            replacement = Logger.from_options(new)
        except SyslogError as e:
            logger.error(f"Keeping the current log: {e}")
            return
        logger.close()
        server.logger = replacement
        return
    logger.debug_enabled = new.debug
    logger.trace_enabled = new.trace or new.trace_verbose
    logger.trace_verbose = new.trace_verbose
    logger.logtime = new.logtime
    logger.utc = new.logtime_utc


def _apply_files(server: Server, old: Options, new: Options) -> None:
    """A new pid file or ports file directory is written at once, as nats-server does (the
    old ports file is removed)."""
    if new.pid_file and new.pid_file != old.pid_file and hasattr(server, "_write_pid_file"):
        try:
            server._write_pid_file()
        except Exception as e:
            server.logger.error(str(e))
    if new.ports_file_dir != old.ports_file_dir and hasattr(server, "_write_ports_file"):
        previous = getattr(server, "_ports_file", "")
        if previous:
            try:
                os.remove(previous)
            except OSError:
                pass
            server._ports_file = ""
        if new.ports_file_dir:
            server._write_ports_file()


def _apply_accounts(server: Server, new: Options) -> None:
    """New accounts appear, existing ones take their new exports and imports."""
    from .accounts import apply_config_limits
    from .imports import wire_imports
    from .shadows import remove_stream_imports

    for account in server.accounts.values():
        remove_stream_imports(account, keep=account.claim_imports)
    for name, cfg in new.accounts.items():
        account = server.ensure_account(name)
        account.config = cfg
        account.trace_dest = cfg.msg_trace[0].encode()
        account.trace_sampling = cfg.msg_trace[1] or 100
        account.exports = list(cfg.exports)
        apply_config_limits(account, cfg)
        if account.imports_client is not None:
            account.imports_client.close()
            account.imports_client = None
        if server.system is not None:
            server.system.add_account(account)
    server.apply_mappings(new)
    if server.leafnodes is not None:
        for account in list(server.accounts.values()):
            server.leafnodes.mappings_changed(account)
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
        result, _ = client.authenticator.authenticate(connect, client.nonce, identities)
        account = (result.account if result else "") or "$G"
        if result is None or account != client.account.name:
            client.close_with_error("Authorization Violation", "Authentication Failure")
            continue
        client.user = result.user
        client.apply_permissions(result.permissions)
        client.drop_disallowed_subscriptions()
    server.flush_pending()


# -- leaf nodes ------------------------------------------------------------------------------


@dataclasses.dataclass
class LeafNodeChanges:
    """What a reload changes in the leaf nodes: nats-server's log lines, the remotes to dial
    and to stop, and whether other reloadable settings changed."""

    lines: list[str] = dataclasses.field(default_factory=list)
    added: list[LeafRemote] = dataclasses.field(default_factory=list)
    removed: list[LeafRemote] = dataclasses.field(default_factory=list)
    settings_changed: bool = False


# The fields nats-server compares (`checkConfigsEqual`) in its struct order, with how each is
# read from ours; the ones it lets change (compression, TLS, handshake-first, users, the
# remotes, a remote's `disabled`) are not listed.
_LEAF_FIELDS: tuple[tuple[str, Callable[[LeafNodeOptions], str]], ...] = (
    ("Host", lambda o: o.host),
    ("Port", lambda o: str(o.port)),
    ("Username", lambda o: o.username),
    ("Password", lambda o: o.password),
    ("ProxyRequired", lambda o: _go_bool(o.proxy_required)),
    ("Nkey", lambda o: o.nkey),
    ("Account", lambda o: o.account),
    ("AuthTimeout", lambda o: go_float(_leaf_auth_timeout(o))),
    ("TLSTimeout", lambda o: go_float(o.tls.timeout if o.tls is not None else 0.0)),
    ("TLSMap", lambda o: _go_bool(o.tls is not None and o.tls.verify_and_map)),
    ("Advertise", lambda o: o.advertise),
    ("NoAdvertise", lambda o: _go_bool(o.no_advertise)),
    ("ReconnectInterval", lambda o: _go_duration(o.reconnect_delay)),
    ("WriteDeadline", lambda o: _go_duration(o.write_deadline)),
    ("WriteTimeout", lambda o: o.write_timeout),
    ("MinVersion", lambda o: o.min_version),
    ("IsolateLeafnodeInterest", lambda o: _go_bool(o.isolate_leafnode_interest)),
    ("DialTimeout", lambda o: _go_duration(o.dial_timeout)),
)
_REMOTE_FIELDS: tuple[tuple[str, Callable[[LeafRemote], str]], ...] = (
    ("NoRandomize", lambda r: _go_bool(r.no_randomize)),
    ("TLSTimeout", lambda r: go_float(r.tls.timeout if r.tls is not None else 0.0)),
    ("Hub", lambda r: _go_bool(r.hub)),
    ("DenyImports", lambda r: "[" + " ".join(r.deny_imports) + "]"),
    ("DenyExports", lambda r: "[" + " ".join(r.deny_exports) + "]"),
    ("FirstInfoTimeout", lambda r: _go_duration(r.first_info_timeout)),
    ("DialTimeout", lambda r: _go_duration(r.dial_timeout)),
    ("Websocket", lambda r: f"{{{_go_bool(r.ws_compression)} {_go_bool(r.ws_no_masking)}}}"),
    ("Proxy", lambda r: f"{r.proxy_url} {r.proxy_username} {r.proxy_password} {r.proxy_timeout}"),
    ("JetStreamClusterMigrate", lambda r: _go_bool(r.jetstream_cluster_migrate)),
    ("JetStreamClusterMigrateDelay", lambda r: _go_duration(r.jetstream_cluster_migrate_delay)),
    ("LocalIsolation", lambda r: _go_bool(r.isolate)),
    ("RequestIsolation", lambda r: _go_bool(r.request_isolation)),
    ("IgnoreDiscoveredServers", lambda r: _go_bool(r.ignore_discovered_servers)),
)


def leafnode_changes(old: LeafNodeOptions, new: LeafNodeOptions) -> LeafNodeChanges:
    """nats-server's `getLeafNodeOptionsChanges` and the lines its `Apply` logs; a change
    it does not support raises ReloadError with its text."""

    def refuse(text: str) -> ReloadError:
        return ReloadError(f"config reload not supported for LeafNode: {text}")

    if _leaf_users_changed(old, new):
        raise refuse(f'field "Users": old={_go_pointers(old.users)}, new={_go_pointers(new.users)}')
    for name, describe in _LEAF_FIELDS:
        before, after = describe(old), describe(new)
        if before != after:
            raise refuse(f"field {go_quote(name)}: old={before}, new={after}")
    changes = LeafNodeChanges()
    if (old.tls_handshake_first, old.tls_handshake_first_fallback) != (
        new.tls_handshake_first,
        new.tls_handshake_first_fallback,
    ):
        changes.lines.append(
            f"Reloaded: LeafNode TLS HandshakeFirst value is: {_go_bool(new.tls_handshake_first)}"
        )
        changes.lines.append(
            "Reloaded: LeafNode TLS HandshakeFirstFallback value is: "
            f"{_go_duration(new.tls_handshake_first_fallback)}"
        )
    new_compression = _compression(new.compression, new.compression_rtt_thresholds)
    if _compression(old.compression, old.compression_rtt_thresholds) != new_compression:
        changes.lines.append(
            f"Reloaded: LeafNode Compression value is: {_go_compression(new_compression)}"
        )
    changes.settings_changed = bool(changes.lines) or old.tls != new.tls
    fresh = {remote_name(r): r for r in new.remotes}
    for remote in old.remotes:
        name = remote_name(remote, redacted=True)
        successor = fresh.pop(remote_name(remote), None)
        if successor is None:
            changes.lines.append(f"Reloaded: LeafNode Remote {name} removed")
            changes.removed.append(remote)
            continue
        for field, describe_remote in _REMOTE_FIELDS:
            before, after = describe_remote(remote), describe_remote(successor)
            if before == after:
                continue
            if field == "Proxy":
                raise refuse(
                    f'remote {name}: field "Proxy": only the proxy TLS configuration can be changed'
                )
            raise refuse(f"remote {name}: field {go_quote(field)}: old={before}, new={after}")
        changes.lines += _remote_lines(remote, successor, changes)
    changes.added += [r for r in fresh.values() if not r.disabled]
    return changes


def _remote_lines(old: LeafRemote, new: LeafRemote, changes: LeafNodeChanges) -> list[str]:
    name = remote_name(new, redacted=True)
    lines: list[str] = []
    if old.tls_handshake_first != new.tls_handshake_first:
        value = _go_bool(new.tls_handshake_first)
        lines.append(f"Reloaded: LeafNode Remote {name} TLS HandshakeFirst value is: {value}")
    compression = _compression(new.compression, new.compression_rtt_thresholds)
    if _compression(old.compression, old.compression_rtt_thresholds) != compression:
        value = _go_compression(compression)
        lines.append(f"Reloaded: LeafNode Remote {name} Compression value is: {value}")
    if old.disabled != new.disabled:
        lines.append(
            f"Reloaded: LeafNode Remote {name} Disabled value is: {_go_bool(new.disabled)}"
        )
        (changes.removed if new.disabled else changes.added).append(old if new.disabled else new)
    if lines or old.tls != new.tls:
        changes.settings_changed = True
    return lines


def _leaf_users_changed(old: LeafNodeOptions, new: LeafNodeOptions) -> bool:
    """nats-server's `usersHaveChanged`: by name, then password and account."""
    if len(old.users) != len(new.users):
        return True
    fresh = {u.username: u for u in new.users}
    for user in {u.username: u for u in old.users}.values():
        match = fresh.get(user.username)
        if match is None or (match.password, match.account) != (user.password, user.account):
            return True
    return False


def _leaf_auth_timeout(leaf: LeafNodeOptions) -> float:
    """The leaf listener's authorization timeout as nats-server keeps it (its default is set
    when there is a listener: the TLS timeout + 1 s with TLS, else 2 s)."""
    if leaf.auth_timeout or leaf.port == 0:
        return leaf.auth_timeout
    return leaf.tls.timeout + 1.0 if leaf.tls is not None else 2.0


def _compression(mode: str, thresholds: list[float]) -> tuple[str, tuple[float, ...]]:
    """A leaf compression setting as nats-server compares it: unset is s2_auto, and s2_auto
    has its thresholds normalised (negative as 0, trailing zeros dropped, default if none)."""
    mode = mode or "s2_auto"
    if mode != "s2_auto":
        return mode, tuple(thresholds)
    kept = [max(t, 0.0) for t in thresholds]
    while kept and kept[-1] == 0:
        kept.pop()
    return mode, tuple(kept) if thresholds else DEFAULT_S2_AUTO_RTT_THRESHOLDS_S


def _go_compression(setting: tuple[str, tuple[float, ...]]) -> str:
    """Go's `%v` of a CompressionOpts: `{s2_auto [10ms 50ms 100ms]}`."""
    mode, thresholds = setting
    return f"{{{mode} [{' '.join(_go_duration(t) for t in thresholds)}]}}"


def _go_bool(value: bool) -> str:
    return "true" if value else "false"


def _go_duration(seconds: float) -> str:
    return format_duration(round(seconds * NS_PER_S))


def _go_pointers(items: list[Any]) -> str:
    """Go's `%v` of a slice of pointers: addresses (which differ from run to run)."""
    return "[" + " ".join(f"0x{id(item) & 0xFFFFFFFFFFFF:x}" for item in items) + "]"


# -- gateway -----------------------------------------------------------------------------------


def _check_gateway(server: Server, old: Options, new: Options) -> None:
    """nats-server refuses any change of the gateway block but its TLS settings (its text
    then prints its Go structs; pynats prints the block's dataclasses). Asking for a random
    port again is no change."""

    def compared(o: Options) -> Any:
        g = o.gateway
        gateways = getattr(server, "gateways", None)
        port = gateways.port if gateways is not None and g.port == -1 else g.port
        remotes = [dataclasses.replace(r, tls=None) for r in g.gateways]
        password = "[REDACTED]" if g.password else ""
        return dataclasses.replace(g, port=port, password=password, tls=None, gateways=remotes)

    before, after = compared(old), compared(new)
    if before != after:
        raise ReloadError(f"config reload not supported for Gateway: old={before}, new={after}")


def _gateway_tls(server: Server, new: Options) -> tuple[Any, Any] | None:
    """The gateway block's TLS contexts, built again from its files on every reload (as
    nats-server does: a rotated certificate counts from the next connection); a bad block
    refuses the reload. None without gateways."""
    if getattr(server, "gateways", None) is None:
        return None
    if new.gateway.tls is None:
        return None, None
    from .connection import link_tls_contexts
    from .server import ServerStartError

    try:
        return link_tls_contexts(new.gateway.tls)
    except ServerStartError as e:
        raise ReloadError(str(e)) from None


# -- websocket ---------------------------------------------------------------------------------


def _check_websocket(server: Server, old: WebsocketOptions, new: WebsocketOptions) -> None:
    """nats-server refuses any change of the websocket block but its TLS files. It compares
    (and prints) the listener as bound: a random port as the one chosen, no host as
    0.0.0.0; asking for a random port again is no change."""
    bound = server.websocket.port if server.websocket is not None else old.port
    before, after = _websocket_as_bound(old, bound), _websocket_as_bound(new, bound)
    if _websocket_compared(before) == _websocket_compared(after):
        return
    raise ReloadError(
        f"config reload not supported for Websocket: old={_go_websocket(before)}, "
        f"new={_go_websocket(after)}"
    )


def _websocket_as_bound(ws: WebsocketOptions, bound: int) -> WebsocketOptions:
    if ws.port == 0:
        return ws
    port = bound if ws.port == -1 else ws.port
    return dataclasses.replace(ws, host=ws.host or "0.0.0.0", port=port)


def _websocket_compared(ws: WebsocketOptions) -> tuple[WebsocketOptions, bool]:
    """The block without its TLS files, and its `verify_and_map` (nats-server compares its
    `TLSMap` but not the TLS config); origins sorted, as nats-server sorts them first."""
    tls_map = ws.tls is not None and ws.tls.verify_and_map
    return dataclasses.replace(ws, tls=None, allowed_origins=sorted(ws.allowed_origins)), tls_map


def _go_websocket(ws: WebsocketOptions) -> str:
    """Go's `%v` of nats-server's WebsocketOpts (its fields in order; pointers as addresses)."""
    handshake = ws.handshake_timeout
    tls = "<nil>" if ws.tls is None else f"0x{id(ws.tls) & 0xFFFFFFFFFFFF:x}"
    headers = " ".join(f"{k}:{v}" for k, v in sorted(ws.headers.items()))
    fields = [
        ws.host,
        str(ws.port),
        ws.advertise,
        ws.no_auth_user,
        ws.jwt_cookie,
        ws.username_cookie,
        ws.password_cookie,
        ws.token_cookie,
        ws.username,
        ws.password,
        ws.token,
        go_float(ws.auth_timeout),
        _go_bool(ws.no_tls),
        tls,
        _go_bool(ws.tls is not None and ws.tls.verify_and_map),
        "map[]",
        _go_bool(ws.same_origin),
        "[" + " ".join(sorted(ws.allowed_origins)) + "]",
        _go_bool(ws.compression),
        _go_duration(handshake),
        _go_duration(ws.ping_interval),
        f"map[{headers}]",
        tls,
    ]
    return "{" + " ".join(fields) + "}"
