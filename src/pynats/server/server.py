"""Server: listeners, accounts, clients, lifecycle, signals, lame duck and the start-up log.

Extension points used by JetStream and the system account (which live above the core):
`add_startup_hook`, `add_shutdown_hook`, `add_account_hook`, `monitor_routes`,
`varz_extra`, `healthz_checks` and internal
subscriptions through `pynats.server.internal.InternalClient`. Monitoring and reload read and
refresh the server through its public methods (`info_fields`, `refresh_info`,
`ensure_account`, `http_request_counts`), never through its private state.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .. import __version__ as PYNATS_VERSION
from . import const, feature_flags
from .accounts import Account, apply_config_limits
from .auth import Authenticator, ConnectAuthenticator, has_plaintext_passwords
from .auth_callout import AuthCalloutService
from .busy_poll import BusyPoll
from .client import ClientConnection
from .connection import CLIENT, GATEWAY, LEAF, REASON_SERVER_SHUTDOWN, ROUTER, Connection
from .delivery import write_pending
from .log import Logger
from .mappings import MappingConfig, MappingDest
from .mappings import compiled as compiled_mappings
from .name_hash import name_hash
from .nkey import ServerKeys, new_nonce
from .options import Options, TLSSettings
from .sublist import Outbound

if TYPE_CHECKING:
    import ssl

    from OpenSSL import SSL

    from .cluster import Cluster
    from .gateways import Gateways
    from .leafnodes import LeafNodes
    from .monitor import HealthzCheck, MonitorHandler, VarzExtension
    from .monitor_http import MonitorServer
    from .mqtt import MqttListener
    from .ocsp_peer import OCSPPeerVerifier
    from .ocsp_staple import OCSPStapler
    from .reload_jetstream import ReloadableJetStream
    from .system import SystemServices
    from .tls_options import RateCounter
    from .websocket import WebsocketListener

Hook = Callable[[], Awaitable[None]]
# /varz splits slow consumers and stale connections by the kind of connection.
_KIND_STATS = {CLIENT: "clients", ROUTER: "routes", GATEWAY: "gateways", LEAF: "leafs"}


class PendingWriter(Protocol):
    """A connection with output queued for the next `Server.flush_pending`. It sets
    `ob.queued` when it joins `pending_flush`, so each one is written once per batch
    (`delivery.write_pending`, which also reads its transport and state)."""

    ob: Outbound

    def flush(self) -> None: ...


class ServerStartError(Exception):
    """The server cannot start (port in use, bad address, ...): logged as [FTL], exit 1."""


class Server:
    def __init__(self, options: Options, logger: Logger | None = None) -> None:
        self.options = options
        self.logger = logger or Logger.from_options(options)
        self.keys = ServerKeys()
        self.server_id = self.keys.id
        self.server_name = options.server_name or self.server_id
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by start()
        self._account_hooks: list[Callable[[Account], None]] = []
        # What nats-server logs once only (its rate-limited statements), by their text
        self.logged_once: set[str] = set()
        self.accounts: dict[str, Account] = {}
        self.global_account = self.ensure_account(const.GLOBAL_ACCOUNT)
        for name, cfg in options.accounts.items():
            account = self.ensure_account(name)
            account.config = cfg
            account.trace_dest = cfg.msg_trace[0].encode()
            account.trace_sampling = cfg.msg_trace[1] or 100
            account.exports = list(cfg.exports)
            apply_config_limits(account, cfg)
        self.apply_mappings(options)
        self.system_account: Account | None = None
        if not options.no_system_account:
            sys_name = options.system_account or const.SYSTEM_ACCOUNT
            self.system_account = self.ensure_account(sys_name)
            self.system_account.is_system = True
        self._startup_error = ""
        self.authenticator: ConnectAuthenticator = self._build_authenticator(options)
        # Config mode: the `auth_callout {}` block; operator mode: account JWTs may name one.
        self.auth_callout: AuthCalloutService | None = None
        if options.auth_callout is not None or options.trusted_operators or options.trusted_keys:
            self.auth_callout = AuthCalloutService(self, options.auth_callout)
        self.tls_context: ssl.SSLContext | None = None
        # what `tls_context` was built from (reload.client_tls_state): a reload compares
        self.client_tls_state: tuple[Any, ...] | None = None
        # `ocsp {}`: the stapled certificates by listener (ocsp_staple.py: "client",
        # "websocket", "mqtt", "cluster", "gateway", "gateway:<name>"), whose connections go
        # through pyOpenSSL (tls_openssl.py); the others keep the stdlib's TLS. None until
        # decided (the `nats-server` command decides before the log starts, app.py).
        self.ocsp_staplers: dict[str, OCSPStapler] | None = None
        # A server in its own process (`nats-server`, app.py) moves everything that exists
        # once it is ready (modules, configuration, recovered streams) out of the cyclic
        # garbage collector's reach, so full collections walk only what came later; an
        # in-process server (pynats.testing) leaves its host's collector alone.
        self.freeze_gc_when_ready = False
        # The same server polls its sockets for a moment after close reads instead of
        # sleeping (busy_poll.py, app.py); an in-process server never does.
        self.busy_poll = BusyPoll(0.0)
        self.stapling_context: SSL.Context | None = None
        # the pyOpenSSL contexts of the listeners opened on pyOpenSSL (stapled at start-up),
        # by stapler key: rebuilt by a reload (`reload_ocsp`), each handshake of those
        # listeners takes the current one (tls.follow_reloaded_context); a listener no
        # longer stapled gets one that staples nothing
        self.stapling_contexts: dict[str, SSL.Context] = {}
        self._reload_lock = asyncio.Lock()
        self._reload_tasks: set[asyncio.Task[bool]] = set()
        # `tls { connection_rate_limit }`: TLS handshakes a second on the client port
        self.tls_rate: RateCounter | None = None
        self._tls_rate_task: asyncio.TimerHandle | None = None

        self.clients: dict[int, ClientConnection] = {}
        self.closed_clients: deque[dict[str, Any]] = deque(
            maxlen=max(options.max_closed_clients, 0)
        )
        self._next_cid = 0
        self.pending_flush: list[PendingWriter] = []
        self.current_producer: Connection | None = None
        self._flush_scheduled = False

        self.start_time = time.time()
        self.config_load_time = self.start_time
        self.reloading = False  # while a reload applies its changes (`reload`)
        self.total_connections = 0
        self.slow_consumers = 0
        self.stale_connections = 0
        self.slow_consumer_stats = {"clients": 0, "routes": 0, "gateways": 0, "leafs": 0}
        self.stale_connection_stats = {"clients": 0, "routes": 0, "gateways": 0, "leafs": 0}
        self.stalled_clients = 0
        # Totals of connections that are gone; live ones are summed on demand.
        self.closed_in_msgs = 0
        self.closed_in_bytes = 0
        self.closed_out_msgs = 0
        self.closed_out_bytes = 0

        self.client_host = options.host
        self.client_port = options.port
        self.http_port = 0
        self.is_lame_duck = False
        self.is_shutting_down = False
        self.monitor_routes: dict[str, MonitorHandler] = {}
        self.varz_extra: list[VarzExtension] = []
        self.healthz_checks: list[HealthzCheck] = []
        # Called once a client has authenticated, and once it is gone (system events).
        self.on_client_connect: list[Callable[[ClientConnection], None]] = []
        self.on_client_disconnect: list[Callable[[ClientConnection], None]] = []
        # Called for a client closed before it was connected (refused at CONNECT, timed out).
        self.on_client_refused: list[Callable[[ClientConnection], None]] = []
        self.system: SystemServices | None = None
        self.cluster: Cluster | None = None
        self.websocket: WebsocketListener | None = None
        self.mqtt: MqttListener | None = None  # the `mqtt {}` port (mqtt.py)
        # `tls { ocsp_peer }` checks, with their response cache (ocsp_peer.py)
        self.ocsp_peer: OCSPPeerVerifier | None = None
        self.leafnodes: LeafNodes | None = None
        self.gateways: Gateways | None = None  # `gateway {}`: links to other clusters
        # Extensions' say in the cluster: fields added to this server's route INFO, and
        # hooks told of every server that joins (its name and INFO).
        self.route_info_extra: dict[str, Any] = {}
        self.peer_hooks: list[Callable[[str, Mapping[str, Any]], None]] = []
        # Replies of service imports: `_R_.<this server's tag>.<token>`, so that answers from
        # anywhere in the cluster come back to the server that asked.
        self.response_prefix = b"_R_." + new_nonce()[:6].encode() + b"."
        self._reaches_cluster_jetstream = False
        # JetStream as a reload switches it off and on (reload_jetstream.py): set when it is
        # attached; `jetstream_factory` attaches it to a server started without it (app.py)
        self.jetstream: ReloadableJetStream | None = None
        self.jetstream_factory: Callable[[], object] | None = None
        self._startup_hooks: list[Hook] = []
        self._shutdown_hooks: list[Hook] = []
        self._listener: asyncio.base_events.Server | None = None
        self._monitor: MonitorServer | None = None
        self._ports_file = ""
        self._done: asyncio.Event | None = None
        # Held so the running lame-duck task cannot be garbage-collected.
        self._lame_duck_task: asyncio.Task[None] | None = None
        self._info_base: dict[str, Any] = {}
        self._handle_signals = False

    # -- accounts ---------------------------------------------------------------------------

    def error_once(self, prefix: str, text: str) -> None:
        """An error nats-server rate-limits: logged the first time its text comes."""
        if text not in self.logged_once:
            self.logged_once.add(text)
            self.logger.error(f"{prefix} - {text}")

    def ensure_account(self, name: str) -> Account:
        """The account called `name`; a new one is announced to the account hooks."""
        account = self.accounts.get(name)
        if account is not None:
            return account
        account = Account(name, cache_enabled=not self.options.disable_sublist_cache)
        self.accounts[name] = account
        for hook in self._account_hooks:
            hook(account)
        return account

    def add_account_hook(self, hook: Callable[[Account], None]) -> None:
        """Called with every account created from now on (lazily, by auth, by reload)."""
        self._account_hooks.append(hook)

    def lookup_account(self, name: str) -> Account | None:
        return self.accounts.get(name)

    def resolve_account(self, name: str) -> Account | None:
        """The account `name` for traffic from another server: one we have, or one we may
        host and have had no client of yet (its JWT is known); None for anything else."""
        account = self.accounts.get(name)
        if account is None and self.authenticator.knows_account(name):
            account = self.ensure_account(name)
            if self.system is not None:
                self.system.add_account(account)
        return account

    def move_client(self, client: ClientConnection, account_name: str) -> None:
        """Bind a client to another account (after authentication); its old subs go."""
        account = self.ensure_account(account_name)
        if self.system is not None:
            self.system.add_account(account)
        old = client.account
        for sub in client.subs.values():
            old.sublist.remove(sub)
        client.subs.clear()
        old.clients.discard(client)
        client.account = account
        account.clients.add(client)

    def _build_authenticator(self, options: Options) -> ConnectAuthenticator:
        """Operator (JWT) mode when operators are trusted, else the configured users."""
        if options.trusted_operators or options.trusted_keys:
            from .jwt_auth import JwtAuthenticator, JwtError
            from .resolvers import StoreError, build_resolver

            try:
                return JwtAuthenticator(options, build_resolver(options))
            except (StoreError, OSError) as e:
                self._startup_error = str(e)
            except JwtError as e:
                self._startup_error = f"Error configuring operator mode: {e}"
        return Authenticator(options)

    # -- hooks ------------------------------------------------------------------------------

    def add_startup_hook(self, hook: Hook) -> None:
        """Run after the listeners are bound's prerequisites (JetStream recovery, $SYS)."""
        self._startup_hooks.append(hook)

    def add_shutdown_hook(self, hook: Hook) -> None:
        self._shutdown_hooks.append(hook)

    # -- INFO -------------------------------------------------------------------------------

    def refresh_info(self) -> None:
        """Rebuild the INFO fields every client is sent, after a change of options or of
        authentication (start-up, reload, lame duck)."""
        opts = self.options
        host, port = self.client_host, self.client_port
        if opts.client_advertise:
            adv_host, _, adv_port = opts.client_advertise.rpartition(":")
            if adv_host and adv_port.isdigit():
                host, port = adv_host, int(adv_port)
            else:
                host = opts.client_advertise
        info: dict[str, Any] = {
            "server_id": self.server_id,
            "server_name": self.server_name,
            "version": const.NATS_FEATURE_VERSION,
            "proto": const.PROTO,
            "go": const.GO_VERSION_FIELD,
            "host": host,
            "port": port,
            "headers": not opts.no_header_support,
        }
        if self.authenticator.required:
            info["auth_required"] = True
        if opts.tls and not opts.allow_non_tls:
            info["tls_required"] = True
        if opts.tls_verify:
            info["tls_verify"] = True
        if opts.tls and opts.allow_non_tls:
            info["tls_available"] = True
        info["max_payload"] = opts.max_payload
        if opts.jetstream:
            info["jetstream"] = True
        self._info_base = info

    def apply_mappings(self, options: Options) -> None:
        """Compile the `mappings {}` of the global and the configured accounts; an account
        named in `default_js_domain` also has its JetStream API mapped to that domain's."""
        names = {const.GLOBAL_ACCOUNT, *options.accounts, *options.default_js_domain}
        for name in names:
            self.compile_mappings(self.ensure_account(name), options)
        for account in self.accounts.values():
            if account.claim_mappings and account.name not in names:
                self.compile_mappings(account, options)

    def compile_mappings(self, account: Account, options: Options | None = None) -> None:
        """`account`'s mappings from the config, then those of its JWT (one of the same
        source replaces the config's), then its `default_js_domain` one."""
        opts = options or self.options
        by_source: dict[str, MappingConfig] = {}
        if account.name == const.GLOBAL_ACCOUNT:
            by_source.update((m.source, m) for m in opts.mappings)
        cfg = opts.accounts.get(account.name)
        if cfg is not None:
            by_source.update((m.source, m) for m in cfg.mappings)
        by_source.update((m.source, m) for m in account.claim_mappings)
        configs = list(by_source.values())
        domain = opts.default_js_domain.get(account.name)
        if domain:
            api = MappingDest(destination=f"$JS.{domain}.API.>", weight=100)
            configs.append(MappingConfig("$JS.API.>", [api]))
        account.mappings = compiled_mappings(configs, opts.cluster.name)

    def should_report_connect_error(self, connected_before: bool, attempts: int) -> bool:
        """Whether a failed dial of a route or leaf remote is logged as an error (else at
        debug level): the first, then every `connect_error_reports`th before the first
        connection and every `reconnect_error_reports`th once it was lost."""
        opts = self.options
        every = opts.reconnect_error_reports if connected_before else opts.connect_error_reports
        return attempts == 1 or attempts % every == 0

    def info_fields(self) -> Mapping[str, Any]:
        """The INFO fields common to every client, as `refresh_info` last built them."""
        return self._info_base

    def _client_info(self, client: ClientConnection) -> dict[str, Any]:
        info = dict(self._info_base)
        info["client_id"] = client.cid
        if client.host:
            info["client_ip"] = client.host
        if self.cluster is not None:
            info["cluster"] = self.cluster.name
            if not self.options.cluster.no_advertise:
                info["connect_urls"] = self.all_client_urls()
        elif self.gateways is not None:
            info["cluster"] = self.gateways.name  # the gateway names the cluster
        if client.is_websocket and self.websocket is not None:
            self.websocket.client_info(info)
        return info

    def client_connect_urls(self) -> list[str]:
        """This server's own client URLs (`host:port`), as it advertises them to the cluster:
        the client advertise address, else the listen address (for a wildcard listen, the
        machine's non-loopback addresses)."""
        opts = self.options
        if opts.client_advertise:
            return [opts.client_advertise]
        hosts = [h for h in advertised_hosts(opts.host) if not h.startswith("127.")]
        if opts.host not in ("", "0.0.0.0", "::") or not hosts:
            hosts = [opts.host or "0.0.0.0"]
        return [join_host_port(h, self.client_port) for h in hosts]

    def all_client_urls(self) -> list[str]:
        """Every client URL of the cluster (ours first), for clients to fail over to."""
        urls = self.client_connect_urls()
        if self.cluster is not None:
            urls += [u for u in self.cluster.remote_connect_urls() if u not in urls]
        return urls

    def start_leafnodes(self) -> None:
        """Leaf remotes configured by a reload on a server that had none: dial them (a leaf
        listener cannot be added by a reload)."""
        from .leafnodes import LeafNodes

        self.leafnodes = LeafNodes(self, self.options.leafnodes)
        self.leafnodes.begin()

    def reach_cluster_jetstream(self) -> None:
        """This server runs no JetStream but the cluster does (on Go servers): its clients'
        API requests go to it through the system account, as nats-server's do."""
        if self._reaches_cluster_jetstream or self.options.jetstream:
            return
        self._reaches_cluster_jetstream = True
        from .imports import wire_jetstream_api

        for account in list(self.accounts.values()):
            wire_jetstream_api(self, account)
        self.add_account_hook(lambda account: wire_jetstream_api(self, account))
        self.logger.debug("JetStream requests go to the cluster through the system account")

    def client_urls_changed(self) -> None:
        """The cluster's client URLs changed (a server joined, left or went lame duck): tell
        every client that understands async INFO."""
        if self.is_shutting_down:
            return
        for client in list(self.clients.values()):
            if client.connected and client.protocol >= 1 and not client.closed:
                client.send(info_protocol_line(self._client_info(client)))
        self.flush_pending()

    def info_line(self, client: ClientConnection) -> bytes:
        info = self._client_info(client)
        if self.authenticator.needs_nonce or self.options.trusted_proxies:
            client.nonce = info["nonce"] = new_nonce()
        if self.is_lame_duck:
            info["ldm"] = True
        # The JetStream API level is announced with or without JetStream, as nats-server does
        info["api_lvl"] = const.JS_API_LEVEL
        info["xkey"] = self.keys.xkey
        return info_protocol_line(info)

    def connect_info_line(self, client: ClientConnection) -> bytes:
        """The async INFO sent after the first PONG: which account the client is bound to."""
        info = self._client_info(client)
        info["max_payload"] = client.parser.max_payload  # an account JWT may lower it
        info["connect_info"] = True
        info["remote_account"] = client.account.name
        if client.account.is_system:
            info["acc_is_sys"] = True
        info["api_lvl"] = const.JS_API_LEVEL
        info["xkey"] = self.keys.xkey
        return info_protocol_line(info)

    # -- clients ----------------------------------------------------------------------------

    def next_connection_id(self) -> int:
        """A new connection id (`cid`), unique among every kind of connection."""
        self._next_cid += 1
        return self._next_cid

    def register_client(self, client: ClientConnection) -> None:
        client.cid = self.next_connection_id()
        self.clients[client.cid] = client
        self.total_connections += 1
        client.account.clients.add(client)
        self.logger.debug(f"{client.log_prefix} - Client connection created")

    def tls_handshake_allowed(self) -> bool:
        """`connection_rate_limit`: whether one more TLS handshake fits in this second."""
        return self.tls_rate is None or self.tls_rate.allow()

    def _log_rejected_tls(self) -> None:
        """Every second, as nats-server: how many handshakes the rate limit refused."""
        if self.tls_rate is None or self.is_shutting_down:
            return
        if blocked := self.tls_rate.take_blocked():
            self.logger.warn(f"Rejected {blocked} connections due to TLS rate limiting")
        self._tls_rate_task = self.loop.call_later(1.0, self._log_rejected_tls)

    def is_over_connection_limit(self) -> bool:
        limit = self.options.max_connections
        return limit >= 0 and len(self.clients) > limit

    def unregister_client(self, client: ClientConnection) -> None:
        if self.clients.pop(client.cid, None) is None:
            return
        client.account.clients.discard(client)
        totals = client.account.closed_traffic
        totals[0] += client.in_msgs
        totals[1] += client.in_bytes
        totals[2] += client.out_msgs
        totals[3] += client.out_bytes
        for hook in self.on_client_disconnect if client.connected else self.on_client_refused:
            hook(client)
        self.count_closed(client)
        if self.closed_clients.maxlen:
            from .monitor import closed_conn_info

            self.closed_clients.append(closed_conn_info(self, client))
        self.logger.debug(f"{client.trace_label} - Client connection closed: {client.reason}")

    def count_slow_consumer(self, kind: int = CLIENT) -> None:
        self.slow_consumers += 1
        self.slow_consumer_stats[_KIND_STATS.get(kind, "clients")] += 1

    def count_stale_connection(self, kind: int = CLIENT) -> None:
        self.stale_connections += 1
        self.stale_connection_stats[_KIND_STATS.get(kind, "clients")] += 1

    # -- outbound batching ------------------------------------------------------------------

    def flush_pending(self) -> None:
        """Write every connection that received something since the last flush, once each."""
        write_pending(self.pending_flush)

    def flush_soon(self) -> None:
        """For deliveries outside a client's read (timers, internal publishers). Inside one
        (an answer given while a request is read) there is nothing to schedule: the read
        writes every connection it fed when its data is done (`Connection.data_received`),
        which spares each KV get a loop callback and an extra turn of the loop."""
        if self.current_producer is None and not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self.flush_pending()

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind listeners, run start-up hooks and log the start-up lines."""
        self.loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        if self._startup_error:
            raise ServerStartError(self._startup_error)
        opts = self.options
        log = self.logger
        log.notice("Starting nats-server")
        log.notice(f"  Version:  {const.NATS_FEATURE_VERSION} (pynats {PYNATS_VERSION})")
        log.notice(f"  Git:      [{const.GIT_COMMIT or 'not set'}]")
        # nats-server names the cluster after its gateway when only the gateway is named
        cluster_name = opts.cluster.name or (opts.gateway.name if opts.gateway.port else "")
        if cluster_name:
            log.notice(f"  Cluster:  {cluster_name}")
        log.notice(f"  Name:     {self.server_name}")
        if opts.jetstream:
            log.notice(f"  Node:     {node_name(self.server_name)}")
        log.notice(f"  ID:       {self.server_id}")
        for line in feature_flags.startup_lines(opts.feature_flags):
            log.notice(line)
        if has_plaintext_passwords(opts):
            log.warn("Plaintext passwords detected, use nkeys or bcrypt")
        if opts.config_file:
            log.notice(f"Using configuration file: {opts.config_file} ({opts.config_digest})")
        for note in opts.config_notes:
            log.warn(note)
        for note in feature_flags.not_built(opts.feature_flags):
            log.warn(note)
        if opts.default_js_domain:
            log.warn(
                "The option `default_js_domain` is a temporary backwards compatibility measure "
                "and will be removed"
            )
        if opts.max_payload > const.MAX_PAYLOAD_WARN_SIZE:
            log.warn(
                f"Maximum payloads over {const.MAX_PAYLOAD_WARN_SIZE} are generally discouraged "
                "and could lead to poor performance"
            )

        if opts.tls:
            from .reload import client_tls_state
            from .tls import TLSConfigError, build_server_context

            try:
                self.client_tls_state = client_tls_state(opts)
                self.tls_context = build_server_context(opts)
            except TLSConfigError as e:
                raise ServerStartError(str(e)) from None
            if opts.tls_rate_limit > 0:
                from .tls_options import RateCounter

                self.tls_rate = RateCounter(opts.tls_rate_limit)
                self._tls_rate_task = self.loop.call_later(1.0, self._log_rejected_tls)

        await self._prepare_ocsp_stapling()

        if opts.http_port:
            from .monitor_http import MonitorServer

            self._monitor = MonitorServer(self)
            self.http_port = await self._monitor.start(opts.monitor_host(), opts.http_port)

        if opts.cluster.is_enabled():
            from .cluster import Cluster

            self.cluster = Cluster(self, opts.cluster)
            if not self.cluster.name and opts.gateway.is_enabled():
                self.cluster.name = opts.gateway.name  # as nats-server names it
        if opts.leafnodes.is_enabled() or opts.leafnodes.remotes:
            from .leafnodes import LeafNodes

            self.leafnodes = LeafNodes(self, opts.leafnodes)

        from .imports import wire_imports

        for problem in wire_imports(self):
            log.warn(problem)
        if self.system_account is not None:
            from .system import SystemServices

            self.system = SystemServices(self, self.system_account)
            self.system.start()
        for hook in self._startup_hooks:
            await hook()

        for stapler in (self.ocsp_staplers or {}).values():
            log.notice(f"OCSP Stapling enabled for {stapler.kind} connections")
        if opts.websocket.is_enabled():
            from .websocket import WebsocketListener

            self.websocket = WebsocketListener(self, opts.websocket)
            await self.websocket.start()
        if opts.mqtt.is_enabled():
            from .mqtt import MqttListener

            self.mqtt = MqttListener(self, opts.mqtt)
            await self.mqtt.start()
        if self.leafnodes is not None:
            await self.leafnodes.bind()
        if opts.gateway.is_enabled():
            from .gateways import Gateways

            self.gateways = Gateways(self, opts.gateway)
            await self.gateways.bind()
        await self._start_client_listener()
        if self.cluster is not None:
            await self.cluster.bind()
        self.refresh_info()
        if opts.pid_file:
            self._write_pid_file()
        if opts.ports_file_dir:
            self._write_ports_file()
        if self._handle_signals:
            self._install_signal_handlers()
        log.notice("Server is ready")
        if self.freeze_gc_when_ready:
            gc.freeze()
            # young collections every 10,000 new objects instead of 700: a stored or
            # pending message outlives several of them, and each pass has a fixed cost
            # (memory publish 208k -> 240k msgs/s)
            gc.set_threshold(10_000, 10, 10)
        for stapler in (self.ocsp_staplers or {}).values():
            stapler.start(self.loop, self.logger, lambda: self.loop.create_task(self.shutdown()))
        if self.cluster is not None:
            self.cluster.begin()
        if self.leafnodes is not None:
            self.leafnodes.begin()
        if self.gateways is not None:
            self.gateways.begin()

    async def _start_client_listener(self) -> None:
        opts = self.options
        port = 0 if opts.port == const.RANDOM_PORT else opts.port
        host = opts.host
        try:
            tls_first = self.tls_context if opts.tls_handshake_first else None
            factory: Callable[[], asyncio.Protocol] = lambda: ClientConnection(self)  # noqa: E731
            if tls_first is not None and self.stapling_context is not None:
                from .ocsp_staple import CLIENT_PORT
                from .tls import follow_reloaded_context
                from .tls_openssl import listener_factory

                listener_context = self.stapling_context
                follow_reloaded_context(
                    listener_context, lambda: self.stapling_contexts.get(CLIENT_PORT)
                )
                factory = listener_factory(
                    self.loop, listener_context, factory, handshake_timeout=opts.tls_timeout
                )
                tls_first = None
            if tls_first is not None:
                from .tls import follow_reloaded_context

                follow_reloaded_context(tls_first, lambda: self.tls_context)
            self._listener = await self.loop.create_server(
                factory,
                host=host or None,
                port=port,
                reuse_address=True,
                backlog=1024,
                ssl=tls_first,
                ssl_handshake_timeout=opts.tls_timeout if tls_first else None,
            )
        except (OSError, OverflowError) as e:
            where = join_host_port(host, opts.port)
            reason = (getattr(e, "strerror", None) or str(e)).lower()
            raise ServerStartError(
                f'Error listening on port: {where}, "listen tcp {where}: bind: {reason}"'
            ) from None
        sockets = self._listener.sockets
        bound = sockets[0].getsockname() if sockets else (host, port)
        self.client_port = int(bound[1])
        for s in sockets:
            with contextlib.suppress(OSError):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.logger.notice(
            f"Listening for client connections on {join_host_port(host, self.client_port)}"
        )
        if opts.proxy_protocol:
            self.logger.notice("PROXY protocol enabled for client connections")
        if opts.tls:
            offered = "available" if opts.allow_non_tls else "required"
            self.logger.notice(f"TLS {offered} for client connections")
        self.start_ocsp_peer()

    async def _prepare_ocsp_stapling(self) -> None:
        """`ocsp {}`: which listeners' certificates are stapled, and their first statuses
        (nats-server refuses to start without one, or with a revoked one in `always`). The
        `nats-server` command got them before the log started (app.py); else they are got
        here."""
        from .ocsp_staple import CLIENT_PORT, OCSPStapleError, staplers_for_options

        if self.ocsp_staplers is None:
            try:
                self.ocsp_staplers = await asyncio.to_thread(staplers_for_options, self.options)
            except OCSPStapleError as e:
                raise ServerStartError(str(e)) from None
        client = self.ocsp_staplers.get(CLIENT_PORT)
        if client is not None:
            from .tls_openssl import build_context

            self.stapling_context = build_context(self.options, client.staple)
            self.stapling_contexts[CLIENT_PORT] = self.stapling_context

    def stapling_listener_context(
        self, key: str, settings: TLSSettings | None, *, require_peer_cert: bool
    ) -> SSL.Context | None:
        """The pyOpenSSL context of a listener whose certificate is stapled (`key` as in
        ocsp_staple: "websocket", "mqtt", "cluster", "gateway"), None when it is not (the
        stdlib's TLS then)."""
        stapler = (self.ocsp_staplers or {}).get(key)
        if stapler is None or settings is None:
            return None
        from .tls_openssl import server_context

        context = server_context(
            settings, require_peer_cert=require_peer_cert, staple=stapler.staple
        )
        self.stapling_contexts[key] = context
        return context

    async def reload_ocsp(self) -> None:
        """A reload rebuilds the stapling, as nats-server's reloadOCSP does: the monitors
        are stopped, the stapled certificates decided again from the reloaded options (their
        first statuses from the store directory or the responders, off the event loop) and
        their monitors started (`OCSP Stapling enabled for ...`, then each `Found OCSP
        status ...` once the reload is done); new handshakes of the stapled listeners get
        the new certificate and its staple, connections already up keep theirs. When a
        certificate cannot be stapled: `Can't restart OCSP features: <error>` and nothing
        is stapled (the listeners serve their certificates without a staple)."""
        from .ocsp_staple import OCSPStapleError, staple_targets, staplers_for_options

        options = self.options
        if not (self.ocsp_staplers or self.stapling_contexts or staple_targets(options)):
            return  # no TLS block to consider
        for stapler in (self.ocsp_staplers or {}).values():
            stapler.stop()
        try:
            staplers = await asyncio.to_thread(staplers_for_options, options)
        except OCSPStapleError as e:
            self.logger.warn(f"Can't restart OCSP features: {e}")
            staplers = {}
        if self.is_shutting_down:
            return
        self.ocsp_staplers = staplers
        self._rebuild_stapling_contexts(staplers)
        for stapler in staplers.values():
            self.logger.notice(f"OCSP Stapling enabled for {stapler.kind} connections")
            stapler.start(self.loop, self.logger, lambda: self.loop.create_task(self.shutdown()))

    def _rebuild_stapling_contexts(self, staplers: dict[str, OCSPStapler]) -> None:
        """The pyOpenSSL contexts of the reloaded stapling: one per stapled block, and one
        without a staple for a listener opened on pyOpenSSL whose certificate is no longer
        stapled (a block gone from the file keeps its context)."""
        from OpenSSL import SSL

        from .ocsp_staple import CLIENT_PORT, MQTT, ROUTES, staple_targets
        from .tls_openssl import server_context

        def nothing() -> bytes:
            return b""

        targets = {target.key: target for target in staple_targets(self.options)}
        for key in [*self.stapling_contexts, *(k for k in staplers if ":" not in k)]:
            target = targets.get(key)
            if target is None:
                continue
            stapler = staplers.get(key)
            linked = key in (ROUTES, "gateway")  # routes and gateways verify their peers
            settings = target.settings
            require = linked or settings.verify or (key == MQTT and settings.verify_and_map)
            try:
                self.stapling_contexts[key] = server_context(
                    settings,
                    require_peer_cert=require,
                    staple=stapler.staple if stapler is not None else nothing,
                )
            except (SSL.Error, OSError):
                continue  # (the reload checked the client port's files)
        client = CLIENT_PORT in staplers
        self.stapling_context = self.stapling_contexts.get(CLIENT_PORT) if client else None
        if self.mqtt is not None:
            self.mqtt.stapling_context = (
                self.stapling_contexts.get(MQTT) if MQTT in staplers else None
            )

    def stapling_dialer(self, key: str) -> OCSPStapler | None:
        """The stapler whose certificate a dialled route or gateway presents (`key` as in
        ocsp_staple), when there is one: then the peer's staple is checked."""
        return (self.ocsp_staplers or {}).get(key)

    def start_ocsp_peer(self) -> OCSPPeerVerifier | None:
        """The OCSP peer checks and their cache, started on first need, when a `tls {}`
        block checks its peers (ocsp_peer.py)."""
        if self.ocsp_peer is not None or self.is_shutting_down:
            return self.ocsp_peer
        from .ocsp_peer import OCSPPeerVerifier, ocsp_peer_configs

        if ocsp_peer_configs(self.options):
            self.ocsp_peer = OCSPPeerVerifier(self.logger, self.options.ocsp_cache)
            self.ocsp_peer.start(self.loop)
        return self.ocsp_peer

    def _write_pid_file(self) -> None:
        try:
            with open(self.options.pid_file, "w") as f:
                f.write(str(os.getpid()))
        except OSError as e:
            raise ServerStartError(f"Could not write pidfile: {e}") from None

    def ports(self) -> dict[str, list[str]]:
        """The URLs we actually bound, for the ports file."""
        hosts = advertised_hosts(self.options.host)
        ports: dict[str, list[str]] = {
            "nats": [f"nats://{join_host_port(h, self.client_port)}" for h in hosts]
        }
        if self.http_port:
            mhosts = advertised_hosts(self.options.monitor_host())
            ports["monitoring"] = [f"http://{join_host_port(h, self.http_port)}" for h in mhosts]
        return ports

    def _write_ports_file(self) -> None:
        program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "nats-server"
        if program in ("__main__.py", "-c", "") or program.endswith(".py"):
            program = "nats-server"
        path = os.path.join(self.options.ports_file_dir, f"{program}_{os.getpid()}.ports")
        tmp = path + ".tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(self.ports(), f)
            os.replace(tmp, path)
        except OSError as e:
            self.logger.error(f"Error writing ports file ({path}): {e}")
            return
        self._ports_file = path

    async def run(self, *, handle_signals: bool = True) -> None:
        """Start, then serve until shutdown() is called (or a signal asks for it)."""
        self._handle_signals = handle_signals
        await self.start()
        assert self._done is not None
        await self._done.wait()

    async def shutdown(self) -> None:
        if self.is_shutting_down:
            return
        self.is_shutting_down = True
        self.logger.notice("Initiating Shutdown...")
        if self._tls_rate_task is not None:
            self._tls_rate_task.cancel()
        if self._listener is not None:
            self._listener.close()
        if self.websocket is not None:
            self.websocket.close()
        if self.mqtt is not None:
            self.mqtt.shutdown()
        if self.system is not None:
            self.system.stop()
        for hook in reversed(self._shutdown_hooks):
            try:
                await hook()
            except Exception as e:  # a failing extension must not stop the shutdown
                self.logger.error(f"Error during shutdown: {e}")
        self.flush_pending()
        for client in list(self.clients.values()):
            client.close_connection(REASON_SERVER_SHUTDOWN)
        if self.cluster is not None:
            await self.cluster.stop()
        if self.leafnodes is not None:
            await self.leafnodes.stop()
        if self.gateways is not None:
            await self.gateways.stop()
        if self._monitor is not None:
            await self._monitor.stop()
        if self.ocsp_peer is not None:
            self.ocsp_peer.stop()
        for stapler in (self.ocsp_staplers or {}).values():
            stapler.stop()
        if self._ports_file:
            with contextlib.suppress(OSError):
                os.unlink(self._ports_file)
        if self.options.pid_file:
            with contextlib.suppress(OSError):
                os.unlink(self.options.pid_file)
        # Let transports flush their final writes.
        await asyncio.sleep(0)
        self.logger.notice("Server Exiting..")
        if self._done is not None:
            self._done.set()

    # -- signals and lame duck --------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        handlers: dict[int, tuple[str, Callable[[], None]]] = {
            signal.SIGINT: ("interrupt", self._on_stop_signal),
            signal.SIGTERM: ("terminated", self._on_term_signal),
            signal.SIGHUP: ("hangup", self._on_reload_signal),
            signal.SIGUSR1: ("user defined signal 1", self.logger.reopen),
            signal.SIGUSR2: ("user defined signal 2", self.enter_lame_duck_mode),
        }
        for signum, (name, action) in handlers.items():
            self.loop.add_signal_handler(signum, self._trap, name, action)

    def _trap(self, name: str, action: Callable[[], None]) -> None:
        self.logger.notice(f'Trapped "{name}" signal')
        action()

    def _on_stop_signal(self) -> None:
        self.loop.create_task(self.shutdown())

    def _on_term_signal(self) -> None:
        if self.is_lame_duck:
            return  # SIGTERM is ignored while in lame duck mode, as nats-server does
        self.loop.create_task(self.shutdown())

    def _on_reload_signal(self) -> None:
        task = self.loop.create_task(self.reload())
        self._reload_tasks.add(task)  # (held until done: the loop keeps weak references)
        task.add_done_callback(self._reload_tasks.discard)

    async def reload(self) -> bool:
        """Re-read the configuration file; on any error keep running as before. One
        reload at a time (the stapling is rebuilt off the event loop)."""
        from .reload import ReloadError, reload_config

        async with self._reload_lock:
            if self.is_shutting_down:
                return False
            actions: list[Callable[[], None]] = []
            self.reloading = True
            try:
                try:
                    changes = reload_config(self, actions)
                except ReloadError as e:
                    self.logger.error(f"Failed to reload server configuration: {e}")
                    return False
                for line in changes:
                    self.logger.notice(line)
                for action in actions:  # JetStream switched off or on, after the lines
                    action()
            finally:
                self.reloading = False
            await self.reload_ocsp()  # (nats-server: last, on every reload)
        self.config_load_time = time.time()
        self.logger.notice(f"Reloaded server configuration ({self.options.config_digest})")
        return True

    def enter_lame_duck_mode(self) -> None:
        if self.is_lame_duck or self.is_shutting_down:
            return
        self._lame_duck_task = self.loop.create_task(self._lame_duck())

    async def _lame_duck(self) -> None:
        opts = self.options
        self.is_lame_duck = True
        if self.system is not None:
            self.system.enter_lame_duck()
        self.logger.notice("Entering lame duck mode, stop accepting new clients")
        if self._listener is not None:
            self._listener.close()
        if self.websocket is not None:
            self.websocket.close()
        if self.mqtt is not None:
            self.mqtt.close()
        self.refresh_info()
        ldm_info = dict(self._info_base)
        ldm_info["ldm"] = True
        line = info_protocol_line(ldm_info)
        for client in list(self.clients.values()):
            if client.protocol >= 1 and client.connected:
                client.send(line)
        if self.cluster is not None:
            self.cluster.send_lame_duck()
        self.flush_pending()
        if not self.clients:
            await self.shutdown()
            return
        grace = opts.lame_duck_grace_period
        duration = max(opts.lame_duck_duration - grace, 0.0)
        await asyncio.sleep(grace)
        clients = list(self.clients.values())
        if clients:
            self.logger.notice("Closing existing clients")
            pause = min(duration / len(clients), 1.0) if duration else 0.0
            for client in clients:
                client.close_connection(REASON_SERVER_SHUTDOWN)
                if pause:
                    await asyncio.sleep(pause)
        await self.shutdown()

    # -- statistics -------------------------------------------------------------------------

    def totals(self) -> tuple[int, int, int, int]:
        """(in_msgs, in_bytes, out_msgs, out_bytes) over all connections ever."""
        in_msgs, in_bytes = self.closed_in_msgs, self.closed_in_bytes
        out_msgs, out_bytes = self.closed_out_msgs, self.closed_out_bytes
        live: list[Connection] = list(self.clients.values())
        if self.cluster is not None:
            live += self.cluster.connections
        if self.leafnodes is not None:
            live += self.leafnodes.connections
        if self.gateways is not None:
            live += self.gateways.connections
        for c in live:
            in_msgs += c.in_msgs
            in_bytes += c.in_bytes
            out_msgs += c.out_msgs
            out_bytes += c.out_bytes
        return in_msgs, in_bytes, out_msgs, out_bytes

    def count_closed(self, c: Connection) -> None:
        """A connection is gone: its counters stay in the server's totals."""
        self.closed_in_msgs += c.in_msgs
        self.closed_in_bytes += c.in_bytes
        self.closed_out_msgs += c.out_msgs
        self.closed_out_bytes += c.out_bytes

    def num_subscriptions(self) -> int:
        return sum(acc.subscription_count() for acc in self.accounts.values())

    def http_request_counts(self) -> dict[str, int]:
        """Requests served per monitoring path (empty without monitoring)."""
        return dict(self._monitor.request_counts) if self._monitor is not None else {}


def info_protocol_line(info: Mapping[str, Any]) -> bytes:
    """`INFO {...}` as nats-server frames it: compact JSON, a space, CRLF."""
    return b"INFO " + json.dumps(info, separators=(",", ":")).encode() + b" \r\n"


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def advertised_hosts(host: str) -> list[str]:
    """For a wildcard listen address, the addresses clients can actually use."""
    if host not in ("", "0.0.0.0", "::"):
        return [host]
    found: list[str] = []
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            addr = str(info[4][0])
            if addr not in found and not addr.startswith("127."):
                found.append(addr)
    return ["127.0.0.1", *found]


def node_name(server_name: str) -> str:
    """The 8-character JetStream node name derived from the server name (as nats-server's)."""
    return name_hash(server_name)
