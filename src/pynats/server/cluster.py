"""Cluster: this server's routes to the other servers of its cluster, and what they mean.

The cluster owns the route listener, dials the configured routes (and the ones learned by
gossip), runs the handshake's decisions (cluster name, auth, self-routes, duplicates, pool
slots), keeps one `RoutePeer` per remote server, and propagates this server's interest to
every peer. It follows nats-server's observable behaviour so that Go servers and ours make
one cluster:

- **Pooling.** Two servers keep `pool_size` connections (3 by default, the larger of both
  sides' sizes) and one per pinned account (`$SYS` always, when pooling is on). An account's
  traffic goes on connection `fnv1a(account) % pool_size` or on its pinned connection. With
  `pool_size: -1` here, or a peer that announces no pool, one connection carries everything.
  The side that dials fills the first free slot and names it in its INFO
  (`route_pool_idx`); the side that accepts places the connection where it is told.
- **Interest.** Only local interest crosses a route (clients, in-process subscribers), never
  interest learned from another route. Per account, a plain subject is announced once
  (RS+ on 0 -> 1 subscribers, RS- on 1 -> 0); a queue group is announced with its member
  count on every change. A peer's interest becomes subscriptions in our sublists whose
  client is the route connection: matching finds them like any other.
- **Gossip.** When a new server registers, its INFO (with the URL we reach it at) goes to
  every other peer; a server that learns of a peer it has no route to dials it, so the mesh
  completes itself from a single seed route.
- **Duplicates.** When both sides dial each other at once, the slot's first registration
  wins and the extra connection is closed with `Duplicate Route`; the connection that lost
  is not redialled while its peer is registered.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from . import const
from .auth import PermissionChecker, Permissions, secret_matches
from .connection import LEAF, REASON_TLS_FAILURE, link_tls_contexts, open_listener
from .routes import (
    REASON_AUTH_FAILURE,
    REASON_CLUSTER_NAME_CONFLICT,
    REASON_DUPLICATE_ROUTE,
    REASON_PROTOCOL_VIOLATION,
    REASON_WRONG_PORT,
    RouteConnection,
)
from .tls import PeerStapleRefused
from .trace import untraced_since

if TYPE_CHECKING:
    from .accounts import Account
    from .options import ClusterOptions
    from .server import Server
    from .sublist import Subscription

DEFAULT_ROUTE_POOL_SIZE = 3
ROUTE_CONNECT_DELAY_S = 1.0
ROUTE_MAX_CONNECT_DELAY_S = 30.0  # with connect_backoff
ROUTE_RECONNECT_DELAY_S = 1.0
ROUTE_DIAL_TIMEOUT_S = 1.0
ROUTE_FIRST_PING_S = 1.0
ROUTE_MAX_PING_INTERVAL_S = 30.0
REASON_DUPLICATE_SERVER_NAME = "Duplicate Server Name"
REASON_SERVER_SHUTDOWN = "Server Shutdown"
REASON_ROUTE_REMOVED = "Route Removed"
# A connection closed for one of these reasons is not dialled again.
NO_REDIAL_REASONS = frozenset(
    {REASON_DUPLICATE_ROUTE, REASON_SERVER_SHUTDOWN, REASON_ROUTE_REMOVED, REASON_WRONG_PORT}
)
ERR_CLIENT_ON_ROUTE_PORT = "attempted to connect to route port"


def pool_index(account: str, pool_size: int) -> int:
    """The pool connection that carries `account` (FNV-1a, as nats-server computes it)."""
    if pool_size <= 1:
        return 0
    h = 2166136261
    for byte in account.encode():
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h % pool_size


@dataclass(eq=False)
class RoutePeer:
    """Another server of the cluster, as its route connections show it."""

    server_id: str
    name: str
    pool_size: int  # connections in the pool (1 without pooling)
    no_pool: bool
    info: dict[str, Any]
    url: str  # where we reach it: what we dialled, or nats-route://<its ip>:<port>/
    conns: list[RouteConnection | None] = field(default_factory=list)
    pinned: dict[str, RouteConnection] = field(default_factory=dict)
    did_solicit: bool = False
    is_configured: bool = False
    # A pool connection / these pinned accounts' connections are being dialled.
    pool_dialing: bool = False
    pinned_dialing: set[str] = field(default_factory=set)

    def connection_for(self, account: str) -> RouteConnection | None:
        """The connection that carries `account`'s traffic to this peer (None while down)."""
        pinned = self.pinned.get(account)
        if pinned is not None:
            return pinned
        if self.no_pool:
            return self.conns[0]
        return self.conns[pool_index(account, self.pool_size)]

    def connections(self) -> Iterator[RouteConnection]:
        for conn in self.conns:
            if conn is not None:
                yield conn
        yield from self.pinned.values()

    def is_empty(self) -> bool:
        return not self.pinned and all(c is None for c in self.conns)

    @property
    def connect_urls(self) -> list[str]:
        urls = self.info.get("connect_urls")
        return [str(u) for u in urls] if isinstance(urls, list) else []


class Cluster:
    """The route side of one server (created by Server when a cluster port is configured)."""

    def __init__(self, server: Server, options: ClusterOptions) -> None:
        self.server = server
        self.options = options
        self.name = options.name
        self.pool_size = options.pool_size if options.pool_size != 0 else DEFAULT_ROUTE_POOL_SIZE
        self.pinned_accounts: list[str] = list(options.pinned_accounts)
        if self.pool_size > 0 and server.system_account is not None:
            sys_name = server.system_account.name
            if sys_name not in self.pinned_accounts:
                self.pinned_accounts.append(sys_name)
        if self.pool_size < 0:
            self.pinned_accounts = []
        self.auth_timeout = options.effective_auth_timeout()
        self.host = options.host
        self.port = 0
        self.peers: dict[str, RoutePeer] = {}
        self.connections: set[RouteConnection] = set()
        # Local interest, per account: (subject, queue) -> number of local subscriptions.
        self.interest: dict[str, dict[tuple[bytes, bytes | None], int]] = {}
        self.import_perms = _route_permissions(options.import_permissions, None)
        self.export_perms = _route_permissions(None, options.export_permissions)
        self.tls_context: ssl.SSLContext | None = None
        self.client_tls_context: ssl.SSLContext | None = None
        # `ocsp {}` stapling the cluster certificate: the dialling side's pyOpenSSL context
        # (tls_openssl.client_context), which checks the peer's staple
        self.stapling_client_context: Any = None
        self._listener: asyncio.base_events.Server | None = None
        self._dialers: set[asyncio.Task[None]] = set()
        self._self_urls: set[str] = set()
        self._stopping = False
        # told of every server whose last route connection closed (its name and INFO)
        self.peer_gone_hooks: list[Callable[[str, dict[str, Any]], None]] = []
        for account in server.accounts.values():
            self._watch_interest(account)
        server.add_account_hook(self._watch_interest)

    def _watch_interest(self, account: Account) -> None:
        """Count the account's local interest from now on (and what it has already)."""
        counts = self.interest.setdefault(account.name, {})
        for sub in account.sublist.all_subscriptions():
            if _is_local_interest(sub):
                key = (sub.subject, sub.queue)
                counts[key] = counts.get(key, 0) + 1

        def changed(sub: Subscription, delta: int) -> None:
            if _is_local_interest(sub):
                self.local_interest_changed(account, sub, delta)

        account.sublist.interest_listeners.append(changed)

    # -- start and stop --------------------------------------------------------------------

    async def bind(self) -> None:
        """Open the route listener (before the server says it is ready)."""
        server = self.server
        opts = self.options
        factory: Callable[[], asyncio.Protocol] = lambda: RouteConnection(server, self)  # noqa: E731
        listen_context: ssl.SSLContext | None = None
        if opts.tls is not None:
            self.tls_context, self.client_tls_context = link_tls_contexts(opts.tls)
            listen_context = self.tls_context
            from .connection import stapled_link

            stapled = stapled_link(server, "cluster", opts.tls, factory, opts.tls_timeout)
            if stapled is not None:
                factory, self.stapling_client_context = stapled
                listen_context = None
        self._listener, self.port = await open_listener(
            server, factory, opts.host, opts.port, listen_context, "router"
        )

    def begin(self) -> None:
        """Log as nats-server does once ready, and dial the configured routes."""
        from .server import join_host_port

        log = self.server.logger
        log.notice(f"Cluster name is {self.name}")
        host = self.options.host or "0.0.0.0"
        log.notice(f"Listening for route connections on {join_host_port(host, self.port)}")
        for url in self.options.routes:
            self.dial(url, configured=True)

    async def stop(self) -> None:
        self._stopping = True
        if self._listener is not None:
            self._listener.close()
        for task in list(self._dialers):
            task.cancel()
        for conn in list(self.connections):
            conn.close_connection(REASON_SERVER_SHUTDOWN)

    # -- INFO and CONNECT ------------------------------------------------------------------

    def info_fields(self) -> dict[str, Any]:
        """What this server says about itself on routes."""
        server = self.server
        opts = self.options
        base = server.info_fields()
        host, port = opts.host, self.port
        info: dict[str, Any] = {
            "server_id": server.server_id,
            "server_name": server.server_name,
            "version": base["version"],
            "proto": 3,  # MsgTraceProto: this server traces messages (msgtrace.py)
            "go": base["go"],
            "host": host,
            "port": port,
            "headers": base["headers"],
            "max_payload": server.options.max_payload,
        }
        if opts.username:
            info["auth_required"] = True
        if self.tls_context is not None:
            info["tls_required"] = True
            info["tls_verify"] = True
        info["cluster"] = self.name
        if not opts.no_advertise:
            urls = server.client_connect_urls()
            if urls:
                info["connect_urls"] = urls
            if server.websocket is not None:
                info["ws_connect_urls"] = server.websocket.connect_urls()
        if opts.advertise:
            adv_host, _, adv_port = opts.advertise.rpartition(":")
            if adv_host and adv_port.isdigit():
                info["host"], info["port"] = adv_host, int(adv_port)
            else:
                info["host"] = opts.advertise
            info["ip"] = f"nats-route://{info['host']}:{info['port']}/"
        if opts.import_permissions is not None:
            info["import"] = opts.import_permissions.as_json()
        if opts.export_permissions is not None:
            info["export"] = opts.export_permissions.as_json()
        info.update(server.route_info_extra)
        info["lnoc"] = True
        info["lnocu"] = True
        if self.pool_size > 0:
            info["route_pool_size"] = self.pool_size
        if server.is_lame_duck:
            info["ldm"] = True
        return info

    def info_line(self, conn: RouteConnection) -> bytes:
        """The initial INFO: the accepting side's at once, the dialling side's after the
        peer's (naming the pool slot or pinned account the connection fills)."""
        from .nkey import new_nonce

        info = self.info_fields()
        info["nonce"] = new_nonce()
        if conn.did_solicit:
            if conn.pinned_account is not None:
                info["route_account"] = conn.pinned_account
            elif conn.pool_idx:
                info["route_pool_idx"] = conn.pool_idx
        return _info(info)

    def connect_line(self, conn: RouteConnection) -> bytes:
        user, password = _url_credentials(conn.url)
        connect: dict[str, Any] = {
            "echo": True,
            "verbose": False,
            "pedantic": False,
        }
        if user:
            connect["user"] = user
        if password:
            connect["pass"] = password
        connect["tls_required"] = self.tls_context is not None
        connect["headers"] = not self.server.options.no_header_support
        connect["name"] = self.server.server_id
        connect["cluster"] = self.name
        connect["lnoc"] = True
        return b"CONNECT " + json.dumps(connect, separators=(",", ":")).encode() + b"\r\n"

    # -- the handshake ---------------------------------------------------------------------

    def connection_opened(self, conn: RouteConnection) -> None:
        conn.cid = self.server.next_connection_id()
        self.connections.add(conn)
        self.server.logger.notice(f"{conn.log_prefix} - Route connection created")
        opts = self.server.options
        interval = self.options.ping_interval or opts.ping_interval
        conn.start_pings(ROUTE_FIRST_PING_S, min(interval, ROUTE_MAX_PING_INTERVAL_S))

    def accept_connect(self, conn: RouteConnection, connect: dict[str, Any]) -> bool:
        """The accepting side's checks of a CONNECT; False when the connection is closed."""
        log = self.server.logger
        if self.options.username:
            user = str(connect.get("user") or "")
            password = str(connect.get("pass") or "")
            if user != self.options.username or not secret_matches(password, self.options.password):
                log.error(f"{conn.log_prefix} - authentication error")
                conn.close_with_error("Authorization Violation", REASON_AUTH_FAILURE)
                return False
        if connect.get("lang"):
            conn.close_with_error(ERR_CLIENT_ON_ROUTE_PORT, REASON_WRONG_PORT)
            return False
        gateway = connect.get("gateway")
        if gateway:
            text = f"Rejecting connection from gateway {_quote(str(gateway))} on the Route port"
            log.error(f"{conn.log_prefix} - {text}")
            conn.close_with_error(text, "Wrong Gateway")
            return False
        remote_cluster = str(connect.get("cluster") or "")
        if remote_cluster != self.name:
            text = (
                f"Rejecting connection, cluster name {_quote(remote_cluster)} does not match "
                f"{_quote(self.name)}"
            )
            log.error(f"{conn.log_prefix} - {text}")
            conn.close_with_error(text, REASON_CLUSTER_NAME_CONFLICT)
            return False
        conn.remote_id = str(connect.get("name") or "")
        conn.lnoc = bool(connect.get("lnoc"))
        conn.headers = bool(connect.get("headers")) and not self.server.options.no_header_support
        return True

    def handshake_info(self, conn: RouteConnection, info: dict[str, Any]) -> None:
        """The first INFO on a connection: checks, then registration (or a close)."""
        server = self.server
        log = server.logger
        remote_id = str(info.get("server_id") or "")
        if remote_id == server.server_id:
            if conn.url:
                self._self_urls.add(conn.url)
            conn.remote_id = remote_id
            log.debug(f"{conn.log_prefix} - Detected route to self, ignoring {_quote(conn.url)}")
            conn.close_connection(REASON_DUPLICATE_ROUTE)
            return
        remote_cluster = str(info.get("cluster") or "")
        if remote_cluster and remote_cluster != self.name:
            conn.close_connection(REASON_CLUSTER_NAME_CONFLICT)
            return
        remote_name = str(info.get("server_name") or "")
        if not conn.did_solicit and remote_name == server.server_name:
            log.error(
                f"{conn.log_prefix} - Remote server has a duplicate name: {_quote(remote_name)}"
            )
            conn.close_connection(REASON_DUPLICATE_SERVER_NAME)
            return
        conn.remote_id = remote_id
        conn.remote_name = remote_name
        conn.remote_info = info
        conn.headers = bool(info.get("headers")) and not server.options.no_header_support
        conn.lnoc = bool(info.get("lnoc"))
        if not conn.did_solicit and info.get("route_account"):
            conn.pin(str(info["route_account"]))
        if not self._register(conn, info):
            return
        if conn.did_solicit:
            conn.send(self.info_line(conn))
        if conn.pinned_account is not None:
            log.debug(
                f"{conn.log_prefix} - Registering remote route {_quote(remote_id)} for account "
                f"{_quote(conn.pinned_account)}"
            )
        else:
            log.debug(f"{conn.log_prefix} - Registering remote route {_quote(remote_id)}")
        self.send_all_interest(conn)

    def _register(self, conn: RouteConnection, info: dict[str, Any]) -> bool:
        """Put the connection in its peer's pool slot (or pinned slot); False if closed."""
        remote_pool = info.get("route_pool_size")
        remote_pool = remote_pool if isinstance(remote_pool, int) else 0
        no_pool = remote_pool <= 0 or self.pool_size < 0
        account = conn.pinned_account
        problem = ""
        if no_pool and account is not None:
            problem = (
                f"Not possible to have a dedicated route for account {_quote(account)} "
                "between those servers"
            )
        elif not no_pool and not conn.did_solicit:
            idx = info.get("route_pool_idx", 0)
            size = max(self.pool_size, remote_pool)
            if not isinstance(idx, int) or idx < 0 or idx >= size:
                problem = f"Invalid route pool index: {idx} - pool size is {remote_pool}"
        elif not no_pool and conn.did_solicit and info.get("route_pool_idx"):
            problem = f"Route pool index should not be set but is set to {info['route_pool_idx']}"
        if problem:
            self.server.logger.error(f"{conn.log_prefix} - {problem}")
            conn.close_with_error(problem, REASON_PROTOCOL_VIOLATION)
            return False
        peer = self.peers.get(conn.remote_id)
        is_new = peer is None
        if peer is None:
            size = 1 if no_pool else max(self.pool_size, remote_pool)
            peer = RoutePeer(
                server_id=conn.remote_id,
                name=conn.remote_name,
                pool_size=size,
                no_pool=no_pool,
                info=info,
                url=conn.url or self._peer_url(conn, info),
                conns=[None] * size,
            )
        if account is not None:
            if account in peer.pinned:
                self._duplicate(conn, peer.pinned[account])
                return False
            peer.pinned[account] = conn
        else:
            if peer.no_pool:
                idx = 0
            elif conn.did_solicit:
                idx = next((i for i, c in enumerate(peer.conns) if c is None), -1)
            else:
                idx = int(info.get("route_pool_idx", 0))
            if idx < 0:
                self.server.logger.debug(
                    f"{conn.log_prefix} - Route pool size reached, closing extra connection "
                    f"to {_quote(conn.remote_id)}"
                )
                conn.close_connection(REASON_DUPLICATE_ROUTE)
                return False
            existing = peer.conns[idx]
            if existing is not None:
                self._duplicate(conn, existing)
                return False
            peer.conns[idx] = conn
            conn.pool_idx = idx
        if conn.did_solicit:
            peer.did_solicit = True
            peer.url = conn.url
            peer.is_configured = peer.is_configured or conn.is_configured
        conn.peer = peer
        conn.registered = True
        if is_new:
            self.peers[peer.server_id] = peer
            self._peer_added(peer, conn)
        if conn.did_solicit:
            if account is None:
                peer.pool_dialing = False
            self._fill_pool(peer)
        return True

    def _duplicate(self, conn: RouteConnection, existing: RouteConnection) -> None:
        if conn.did_solicit and not existing.did_solicit:
            existing.did_solicit = True
            existing.url = conn.url
        self.server.logger.debug(
            f"{conn.log_prefix} - Detected duplicate remote route {_quote(conn.remote_id)}"
        )
        conn.close_connection(REASON_DUPLICATE_ROUTE)

    def _peer_url(self, conn: RouteConnection, info: dict[str, Any]) -> str:
        ip = info.get("ip")
        if isinstance(ip, str) and ip:
            return ip
        from .server import join_host_port

        return f"nats-route://{join_host_port(conn.host, int(info.get('port') or 0))}/"

    def _peer_added(self, peer: RoutePeer, conn: RouteConnection) -> None:
        """A new server joined: tell the others (gossip) and re-advertise client URLs."""
        info = dict(peer.info)
        info.pop("nonce", None)
        info.pop("route_pool_idx", None)
        info.pop("route_account", None)
        if not info.get("ip"):
            info["ip"] = self._peer_url(conn, peer.info)
        line = _info(info)
        for other in self.peers.values():
            if other is peer:
                continue
            target = other.connection_for(const.GLOBAL_ACCOUNT) or next(other.connections(), None)
            if target is not None:
                target.send(line)
        if not self.options.no_advertise and peer.connect_urls:
            self.server.client_urls_changed()
        for hook in list(self.server.peer_hooks):
            hook(peer.name, peer.info)
        if peer.info.get("jetstream"):
            self.server.reach_cluster_jetstream()

    def async_info(self, conn: RouteConnection, info: dict[str, Any]) -> None:
        """A later INFO: gossip about another server, lame duck, or updated fields."""
        if info.get("gateway"):
            # another cluster a peer of ours links to (nats-server's gateway gossip on
            # routes): gateways.py dials it too
            gateways = self.server.gateways
            if gateways is not None:
                gateways.route_gossip(info)
            return
        remote_id = str(info.get("server_id") or "")
        if remote_id and remote_id != conn.remote_id:
            self._implicit_route(info)
            return
        peer = conn.peer
        if peer is None:
            return
        was_ldm = bool(peer.info.get("ldm"))
        peer.info.update(info)
        if (info.get("ldm") and not was_ldm and not self.options.no_advertise) or (
            "connect_urls" in info and not self.options.no_advertise
        ):
            self.server.client_urls_changed()

    def _implicit_route(self, info: dict[str, Any]) -> None:
        remote_id = str(info.get("server_id") or "")
        if remote_id == self.server.server_id or remote_id in self.peers:
            return
        url = str(info.get("ip") or "")
        if not url or self._is_configured(info):
            return
        if info.get("auth_required") and self.options.username:
            parts = urlsplit(url)
            creds = f"{self.options.username}:{self.options.password}@"
            url = f"{parts.scheme}://{creds}{parts.netloc}{parts.path}"
        self.dial(url, configured=False)

    def _is_configured(self, info: dict[str, Any]) -> bool:
        port = info.get("port")
        hosts = {str(info.get("host") or "").lower()}
        ip = info.get("ip")
        if isinstance(ip, str) and ip:
            hosts.add((urlsplit(ip).hostname or "").lower())
        for route in self.options.routes:
            parts = urlsplit(route)
            if parts.port == port and (parts.hostname or "").lower() in hosts:
                return True
        return False

    def pong_received(self, conn: RouteConnection) -> None:
        """Nothing to do: pool connections are dialled as soon as one registers."""

    def connection_closed(self, conn: RouteConnection) -> None:
        server = self.server
        self.connections.discard(conn)
        label = f" - Remote: {conn.remote_name}" if conn.remote_name else ""
        server.logger.notice(f"{conn.log_prefix} - Router connection closed: {conn.reason}{label}")
        conn.drop_remote_interest()
        server.count_closed(conn)
        peer = conn.peer
        if peer is None or not conn.registered:
            return
        if conn.pinned_account is not None:
            if peer.pinned.get(conn.pinned_account) is conn:
                del peer.pinned[conn.pinned_account]
        elif 0 <= conn.pool_idx < len(peer.conns) and peer.conns[conn.pool_idx] is conn:
            peer.conns[conn.pool_idx] = None
        if peer.is_empty() and self.peers.get(peer.server_id) is peer:
            del self.peers[peer.server_id]
            if not self.options.no_advertise and peer.connect_urls:
                server.client_urls_changed()
            for hook in list(self.peer_gone_hooks):
                hook(peer.name, peer.info)
        elif peer.did_solicit and not self._stopping:
            server.loop.call_later(ROUTE_RECONNECT_DELAY_S, self._fill_pool, peer)

    # -- dialling --------------------------------------------------------------------------

    def dial(
        self,
        url: str,
        *,
        configured: bool,
        pinned_account: str | None = None,
        peer: RoutePeer | None = None,
    ) -> None:
        """Start a dialler task for one connection to `url`.

        Without `peer` it is a route's own dialler: it retries as nats-server does (forever
        for a configured route, `connect_retries` times for one learned by gossip) and dials
        again when its connection closes. With `peer` it fills one more pool or pinned slot
        of a peer that is already up: one attempt, no retry (the peer's registrations and
        closes decide on the next one).
        """
        if self._stopping:
            return
        task = self.server.loop.create_task(self._dialler(url, configured, pinned_account, peer))
        self._dialers.add(task)
        task.add_done_callback(self._dialers.discard)

    def _fill_pool(self, peer: RoutePeer) -> None:
        """Dial the peer's next free pool slot (one at a time) and, once a pool connection is
        up, its missing pinned accounts' connections."""
        if self._stopping or self.peers.get(peer.server_id) is not peer:
            return
        if peer.is_configured and peer.url not in self.options.routes:
            return  # a reload removed the route: what the peer dials is up to the peer
        if not peer.no_pool and not peer.pool_dialing and any(c is None for c in peer.conns):
            peer.pool_dialing = True
            self.dial(peer.url, configured=peer.is_configured, peer=peer)
        if peer.no_pool or all(c is None for c in peer.conns):
            return
        for account in self.pinned_accounts:
            if account not in peer.pinned and account not in peer.pinned_dialing:
                peer.pinned_dialing.add(account)
                self.dial(
                    peer.url, configured=peer.is_configured, pinned_account=account, peer=peer
                )

    async def _dialler(
        self, url: str, configured: bool, pinned_account: str | None, peer: RoutePeer | None
    ) -> None:
        try:
            await self._dial_loop(url, configured, pinned_account, peer)
        finally:
            if peer is not None:
                if pinned_account is None:
                    peer.pool_dialing = False
                else:
                    peer.pinned_dialing.discard(pinned_account)

    async def _dial_loop(
        self, url: str, configured: bool, pinned_account: str | None, peer: RoutePeer | None
    ) -> None:
        loop = self.server.loop
        log = self.server.logger
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 0
        attempts = 0
        connected_before = False
        while not self._stopping:
            if url in self._self_urls:
                return
            if peer is None and configured and url not in self.options.routes:
                return  # removed by a reload
            conn = RouteConnection(
                self.server, self, url=url, pinned_account=pinned_account, is_configured=configured
            )
            closed: asyncio.Future[str] = loop.create_future()
            conn.closed_future = closed
            try:
                log.debug(f"Trying to connect to route on {host}:{port}")
                await self._connect(conn, host, port)
            except PeerStapleRefused as e:
                # refused inside the handshake, as nats-server's dialling side refuses it
                conn.host, conn.port = host, port
                conn.cid = self.server.next_connection_id()
                log.error(f"{conn.log_prefix} - TLS route handshake error: {e}")
                log.notice(f"{conn.log_prefix} - Router connection closed: {REASON_TLS_FAILURE}")
                if peer is not None:
                    return
                await asyncio.sleep(ROUTE_RECONNECT_DELAY_S + random.random() * 0.1)
                continue
            except (TimeoutError, OSError, ssl.SSLError) as e:
                if peer is not None:
                    return
                attempts += 1
                text = _dial_error(host, port, e)
                if self.server.should_report_connect_error(connected_before, attempts):
                    log.error(f"Error trying to connect to route (attempt {attempts}): {text}")
                else:
                    log.debug(f"Error trying to connect to route (attempt {attempts}): {text}")
                if not configured and attempts > max(self.options.connect_retries, 0):
                    return
                await asyncio.sleep(self._connect_delay(attempts))
                continue
            attempts = 0
            connected_before = True
            if configured and url not in self.options.routes:
                # A reload removed the route while this connection was being made.
                conn.close_connection(REASON_ROUTE_REMOVED)
                return
            reason = await closed
            if peer is not None or self._stopping or reason in NO_REDIAL_REASONS:
                return
            if not configured:
                return
            # Both sides may have dialled each other: a little randomness avoids repeating
            # the same race on the next try.
            await asyncio.sleep(ROUTE_RECONNECT_DELAY_S + random.random() * 0.1)

    def _connect_delay(self, attempts: int) -> float:
        """1 s between attempts; with `connect_backoff`, doubling up to 30 s."""
        if not self.options.connect_backoff:
            return ROUTE_CONNECT_DELAY_S
        return min(ROUTE_CONNECT_DELAY_S * 2 ** (attempts - 1), ROUTE_MAX_CONNECT_DELAY_S)

    async def _connect(self, conn: RouteConnection, host: str, port: int) -> None:
        timeout = ROUTE_DIAL_TIMEOUT_S
        if self.client_tls_context is not None:
            timeout += self.options.tls_timeout
        if self.stapling_client_context is not None:
            from .connection import dial_stapled

            await asyncio.wait_for(
                dial_stapled(
                    self.server,
                    "cluster",
                    conn,
                    host,
                    port,
                    self.stapling_client_context,
                    server_hostname=host,
                    handshake_timeout=self.options.tls_timeout,
                ),
                timeout,
            )
            return
        await asyncio.wait_for(
            self.server.loop.create_connection(
                lambda: conn, host, port, ssl=self.client_tls_context
            ),
            timeout,
        )

    def _pool_url(self, url: str) -> bool:
        return any(peer.url == url for peer in self.peers.values())

    # -- interest --------------------------------------------------------------------------

    def local_interest_changed(self, account: Account, sub: Subscription, delta: int) -> None:
        """A local subscription came or went: tell peers when the account's interest in
        that subject (or the queue's member count) changed."""
        key = (sub.subject, sub.queue)
        counts = self.interest.setdefault(account.name, {})
        n = counts.get(key, 0) + delta
        if n <= 0:
            counts.pop(key, None)
            n = 0
        else:
            counts[key] = n
        if sub.queue is None and not (n == 0 or (n == 1 and delta > 0)):
            return
        if not self.may_export_interest(sub.subject):
            return
        for peer in self.peers.values():
            conn = self.interest_connection(peer, account.name)
            if conn is None:
                continue
            if n:
                conn.send_interest(account.name, sub.subject, sub.queue, n)
            else:
                conn.send_no_interest(account.name, sub.subject, sub.queue)

    def send_all_interest(self, conn: RouteConnection) -> None:
        """On registration: every local interest of the accounts this connection carries."""
        peer = conn.peer
        assert peer is not None
        start = len(conn.ob.parts)
        for account_name, counts in self.interest.items():
            if self.interest_connection(peer, account_name) is not conn:
                continue
            for (subject, queue), n in counts.items():
                if self.may_export_interest(subject):
                    conn.send_interest(account_name, subject, queue, n)
        if self.server.logger.trace_enabled:  # not traced, as nats-server does not
            untraced_since(conn, start)

    def interest_connection(self, peer: RoutePeer, account: str) -> RouteConnection | None:
        """Where `account`'s interest goes: a pinned account's only on its own connection,
        never on the pool while that one is still down (as nats-server does). Announced on
        both, the peer would send every message twice."""
        if account in self.pinned_accounts and not peer.no_pool:
            return peer.pinned.get(account)
        return peer.connection_for(account)

    def may_export_interest(self, subject: bytes) -> bool:
        """Cluster `import` permissions: interest we announce = messages we want."""
        return self.import_perms is None or self.import_perms.can_publish(subject)

    def may_import_interest(self, conn: RouteConnection, subject: bytes) -> bool:
        """Cluster `export` permissions: interest we accept = messages we will send."""
        return self.export_perms is None or self.export_perms.can_subscribe(subject, None)

    # -- reload ----------------------------------------------------------------------------

    def options_changed(self) -> None:
        """A reload replaced `options`: take the new auth, permissions and advertising, and
        tell the peers (an async INFO carries the new import/export permissions)."""
        opts = self.options
        self.auth_timeout = opts.effective_auth_timeout()
        self.import_perms = _route_permissions(opts.import_permissions, None)
        self.export_perms = _route_permissions(None, opts.export_permissions)
        line = _info(self.info_fields())
        for peer in self.peers.values():
            for conn in peer.connections():
                conn.send(line)
        self.server.client_urls_changed()

    def routes_changed(self, added: list[str], removed: list[str]) -> None:
        """A reload changed `routes`: dial the new ones, close what we dialled for the old."""
        self.options = self.server.options.cluster
        gone = set(removed)
        for conn in list(self.connections):
            if conn.did_solicit and conn.url in gone:
                self.server.logger.notice(f"Removed route {_redacted(conn.url)}")
                conn.close_connection(REASON_ROUTE_REMOVED)
        for url in added:
            self.dial(url, configured=True)

    # -- lame duck and monitoring ----------------------------------------------------------

    def send_lame_duck(self) -> None:
        line = _info(self.info_fields() | {"ldm": True})
        for peer in self.peers.values():
            conn = next(peer.connections(), None)
            if conn is not None:
                conn.send(line)

    def remote_connect_urls(self) -> list[str]:
        urls: list[str] = []
        for peer in self.peers.values():
            if peer.info.get("ldm"):
                continue
            for u in peer.connect_urls:
                if u not in urls:
                    urls.append(u)
        return urls

    def num_routes(self) -> int:
        return sum(1 for c in self.connections if c.registered)

    def registered_connections(self) -> list[RouteConnection]:
        return sorted((c for c in self.connections if c.registered), key=lambda c: c.cid)


def _is_local_interest(sub: Subscription) -> bool:
    """Interest this server announces to its routes: its own subscribers and those of the
    leafs it is hub of, not what it learned from other servers, and not a service import's
    own subscription (the import is served where the request is)."""
    if sub.local_only:
        return False
    client = sub.client
    if not client.is_link:
        return True
    return bool(client.kind == LEAF and client.is_hub_side)


def _route_permissions(
    import_perm: Any | None, export_perm: Any | None
) -> PermissionChecker | None:
    """Route permissions as a checker: import maps to publish, export to subscribe."""
    if import_perm is None and export_perm is None:
        return None
    return PermissionChecker(Permissions(publish=import_perm, subscribe=export_perm))


def _info(info: dict[str, Any]) -> bytes:
    return b"INFO " + json.dumps(info, separators=(",", ":")).encode() + b"\r\n"


def _quote(text: str) -> str:
    return json.dumps(text)


def _url_credentials(url: str) -> tuple[str, str]:
    if not url:
        return "", ""
    parts = urlsplit(url)
    return unquote(parts.username or ""), unquote(parts.password or "")


def _redacted(url: str) -> str:
    """A route URL as nats-server logs it: the password replaced by xxxxx."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:xxxxx@{parts.hostname}:{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def _dial_error(host: str, port: int, e: BaseException) -> str:
    """Go's wording for a failed dial: `dial tcp 127.0.0.1:6222: connect: connection refused`."""
    if isinstance(e, asyncio.TimeoutError):
        return f"dial tcp {host}:{port}: i/o timeout"
    reason = (getattr(e, "strerror", None) or str(e)).lower()
    return f"dial tcp {host}:{port}: connect: {reason}"
