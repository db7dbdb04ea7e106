"""Gateways: this cluster's links to the other clusters of a supercluster (`gateway {}`).

Each server keeps one *outbound* connection to every other cluster (to any one server of it)
and accepts *inbound* ones. As in nats-server (checked on the wire against Go 2.15.1):

    accepting side (inbound)                     dialling side (outbound)
    INFO (unprompted: gateway, gateway_nrp,      reads the INFO, then sends
          gateway_iom, gateway_urls)             CONNECT {..."gateway":"<its name>"} and INFO
    on the INFO: registers, then per account
    INFO gateway_cmd 2, every RS+, INFO cmd 3

Messages go one way only: on the outbound connection. Interest goes the other way: a server
tells the clusters that dial it, on their inbound connections, what its cluster wants. Every
account is in *interest-only* mode (what nats-server 2.9+ switches every account to at once):
a message crosses only when the remote cluster announced a matching RS+. The interest sent
is the whole account's (local clients, leafs, and what routes told us), never what another
gateway told us; queue groups are announced once per group (weight 1). A remote cluster's
interest becomes subscriptions in our sublists whose client is the outbound connection, so
`delivery.route_message` finds it like a route's; a message that came from a gateway goes on
to local receivers and to the routes and leafs of this cluster, never to another gateway.

Replies (nats-server's scheme, the same bytes on the wire). A message sent to a gateway has
its reply rewritten to `_GR_.<cluster hash>.<server hash>.<reply>` (6-character base62
hashes of the gateway name and the server id), so the answer comes back whatever the
interest: every account holds a subscription on `_GR_.<remote cluster hash>.>` for each
outbound connection (an answer for that cluster goes to it), and one internal subscription
on `_GR_.<this cluster's hash>.>` (kept to this server) that delivers an answer here without
the prefix, or, when it came in on a gateway for another server of this cluster, sends it on
over the route to the server whose id hashes to `<server hash>` (a Go route peer too). The
other way round, a request from another cluster reaches its receivers with the reply its
requester gave (`GatewayReplies` strips the prefix, also from a request a Go route peer
passes on), and an answer published to that reply within 5 s while nothing here wants it
goes back under the prefix.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import random
import socket
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from . import const
from .auth import secret_matches
from .connection import (
    GATEWAY,
    LEAF,
    REASON_TLS_FAILURE,
    ROUTER,
    Connection,
    link_tls_contexts,
    open_listener,
)
from .delivery import JS_ACK_PREFIX, route_as, route_message
from .link_protocol import LinkParser
from .name_hash import name_hash
from .protocol import ProtocolError
from .routes import REASON_AUTH_FAILURE, REASON_AUTH_TIMEOUT, REASON_PARSE_ERROR
from .sublist import Subscription
from .tls import PeerStapleRefused, follow_reloaded_context
from .trace import untraced_since

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .accounts import Account
    from .options import GatewayOptions, RemoteGateway
    from .server import Server

GATEWAY_SOLICIT_DELAY_S = 1.0  # nats-server waits this long for its cluster to form
GATEWAY_CONNECT_DELAY_S = 1.0
GATEWAY_MAX_CONNECT_DELAY_S = 30.0  # with connect_backoff
GATEWAY_RECONNECT_DELAY_S = 1.0
GATEWAY_DIAL_TIMEOUT_S = 1.0
GATEWAY_FIRST_PING_S = 1.0
GATEWAY_MAX_PING_INTERVAL_S = 15.0
GATEWAY_REPLY_TTL_S = 5.0  # how long a reply keeps its way back (nats-server's recSubExp)
CMD_GOSSIP = 1
CMD_ALL_SUBS_START = 2
CMD_ALL_SUBS_COMPLETE = 3
REPLY_PREFIX = b"_GR_."
OLD_REPLY_PREFIX = b"$GR."
INTEREST_ONLY = "Interest-Only"
INTEREST_ONLY_THRESHOLD = 1000  # nats-server's switch point (unused: always interest-only)
REASON_WRONG_GATEWAY = "Wrong Gateway"
REASON_SERVER_SHUTDOWN = "Server Shutdown"
REASON_DUPLICATE = "Duplicate Gateway"
# `_GR_.<cluster hash>.<server hash>.<reply>`
_SERVER_OFFSET = len(REPLY_PREFIX) + 7
_SUBJECT_OFFSET = _SERVER_OFFSET + 7


@functools.lru_cache(maxsize=1024)
def gw_hash(name: str) -> bytes:
    """nats-server's 6-character name hash, as the `_GR_` prefix carries it."""
    return name_hash(name, 6).encode()


@dataclass(eq=False)
class Remote:
    """Another cluster: configured (`gateways: [...]`) or learned (implicit)."""

    name: str
    urls: list[str]  # nats://[user:pass@]host:port, configured ones first
    tls: Any = None
    implicit: bool = False
    dialing: bool = False
    hash: bytes = field(default=b"")
    configured: list[str] = field(default_factory=list)  # the block's own URLs

    def __post_init__(self) -> None:
        self.hash = gw_hash(self.name)
        if not self.implicit and not self.configured:
            self.configured = list(self.urls)

    def update_urls(self, info_urls: list[str]) -> None:
        """The URLs a server of that cluster listed (its INFO's `gateway_urls`, on our
        outbound connection) replace those learned before; the configured ones stay (as
        nats-server: a server that left that cluster is no longer dialled)."""
        urls = list(self.configured)
        for u in info_urls:
            url = f"nats://{u}"
            if all(_host_port(url) != _host_port(known) for known in urls):
                urls.append(url)
        self.urls = urls


class GatewayReplies:
    """One account's replies of requests from other clusters (nats-server's gateway reply
    mapping): a message from a gateway with the reply `_GR_.<cluster>.<server>.<reply>` is
    delivered here with `<reply>`; whatever is published to `<reply>` within 5 s, while
    nothing here is interested in it, goes back under the prefix (to the cluster, then the
    server, that asked). Interest in the reply itself, when the other cluster announced it,
    routes answers as usual."""

    __slots__ = ("_account", "_mapping", "_server", "_timer", "entries")

    def __init__(self, server: Server, account: Account) -> None:
        # this module's subscriptions in the account's sublist (the other clusters'
        # interest, reply routes, the reply subscription): monitoring leaves them out, as
        # nats-server keeps gateway interest apart
        self.entries = 0
        self._server = server
        self._account = account
        self._mapping: dict[bytes, tuple[bytes, float]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def strip(self, routed: bytes) -> bytes:
        """`_GR_.<cluster>.<server>.<reply>` -> `<reply>`, remembered for the way back (a
        JetStream ack reply without the stored subject riding after its `@`)."""
        if len(routed) <= _SUBJECT_OFFSET:
            return routed
        reply = routed[_SUBJECT_OFFSET:]
        at = reply.rfind(b"@") if reply.startswith(JS_ACK_PREFIX) else -1
        if at > 0:
            self.track(reply[:at], routed[: _SUBJECT_OFFSET + at])
        else:
            self.track(reply, routed)
        return reply

    def track(self, reply: bytes, routed: bytes) -> None:
        self._mapping[reply] = (routed, time.monotonic() + GATEWAY_REPLY_TTL_S)
        if self._timer is None:
            self._timer = self._server.loop.call_later(GATEWAY_REPLY_TTL_S, self._expire)

    def _expire(self) -> None:
        self._timer = None
        now = time.monotonic()
        mapping = self._mapping
        for reply in [r for r, (_, expiry) in mapping.items() if expiry <= now]:
            del mapping[reply]
        if mapping:
            self._timer = self._server.loop.call_later(GATEWAY_REPLY_TTL_S, self._expire)

    def unmatched(
        self, publisher: Any, subject: bytes, reply: bytes | None, hdr_len: int, msg: bytes
    ) -> int:
        """A message nothing here wanted: if its subject is a tracked reply, it goes back to
        the cluster that asked; returns the deliveries (0 or 1)."""
        entry = self._mapping.get(subject)
        if entry is None or entry[1] < time.monotonic():
            return 0
        return route_message(publisher, self._account, entry[0], reply, hdr_len, msg)


class GatewayConnection(Connection):
    """One gateway connection: outbound (we dialled; messages go out, interest comes in) or
    inbound (accepted; messages come in, our interest goes out)."""

    kind = GATEWAY
    is_link = True
    id_label = "gid"
    kind_name = "gateway"

    __slots__ = (
        "_accounts",
        "_auth_timer",
        "_no_interest",
        "accounts_mode",
        "closed_future",
        "deny_exports",
        "gateways",
        "headers",
        "may_relay",
        "outbound",
        "queues",
        "registered",
        "remote",
        "remote_id",
        "remote_info",
        "remote_name",
        "remote_server_name",
        "remote_subs",
        "rmsg_prefix",
        "url",
    )

    def __init__(self, server: Server, gateways: Gateways, remote: Remote | None = None) -> None:
        super().__init__(server)
        self.gateways = gateways
        self.remote = remote
        self.outbound = remote is not None
        self.url = ""
        self.parser: LinkParser = LinkParser(self)
        self.rmsg_prefix: bytes | None = None
        self.deny_exports: Any = None
        self.remote_name = remote.name if remote is not None else ""  # the remote cluster
        self.remote_id = ""
        self.remote_server_name = ""
        self.remote_info: dict[str, Any] = {}
        self.registered = False
        self.headers = True
        self.queues: list[bytes] | None = None
        # A message from another cluster goes on to this cluster's routes and leafs.
        self.may_relay = True
        # (account, subject, queue) -> our subscription standing for the remote's interest
        self.remote_subs: dict[tuple[str, bytes, bytes | None], Subscription] = {}
        self._accounts: dict[bytes | None, Account] = {}
        self._no_interest: set[bytes] = set()  # accounts an A- was sent for
        self._auth_timer: asyncio.TimerHandle | None = None
        self.closed_future: asyncio.Future[str] | None = None
        # account -> interest mode, as /gatewayz shows it (every account is interest-only)
        self.accounts_mode: dict[str, str] = {}

    @property
    def echo(self) -> bool:
        return True

    def relays_to(self, target: Any) -> bool:
        return bool(target.kind == ROUTER or target.kind == LEAF)

    # -- life cycle ------------------------------------------------------------------------

    def connection_made(self, base_transport: Any) -> None:
        self.attach(base_transport)
        self.gateways.connection_opened(self)
        self.server.flush_pending()

    def on_closed(self) -> None:
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        self.gateways.connection_closed(self)
        if self.closed_future is not None and not self.closed_future.done():
            self.closed_future.set_result(self.reason)

    def expect_connect(self, timeout: float) -> None:
        self.parser.awaiting_connect = True
        self._auth_timer = self.server.loop.call_later(timeout, self._on_auth_timeout)

    def _on_auth_timeout(self) -> None:
        self._auth_timer = None
        if not self.closed and self.parser.awaiting_connect:
            self.close_with_error("Authentication Timeout", REASON_AUTH_TIMEOUT)

    def drop_remote_interest(self) -> None:
        for (account_name, _, _), sub in self.remote_subs.items():
            account = self.server.accounts.get(account_name)
            if account is not None and account.sublist.remove(sub):
                account.gateway_replies.entries -= 1
        self.remote_subs.clear()

    # -- inbound operations (called by the parser) ------------------------------------------

    def process_connect(self, arg: bytes) -> None:
        # (traced as it was read, with the rest of the link's traffic: trace.LinkTrace)
        if self.outbound:
            return
        connect = json.loads(arg)
        if not isinstance(connect, dict):
            raise ProtocolError(None, REASON_PARSE_ERROR)
        if not self.gateways.accept_connect(self, connect):
            return
        self.parser.awaiting_connect = False
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None

    def process_info(self, arg: bytes) -> None:
        info = json.loads(arg)
        if not isinstance(info, dict):
            raise ProtocolError(None, REASON_PARSE_ERROR)
        self.gateways.info_received(self, info)

    def process_err(self, text: bytes) -> None:
        self.server.logger.error(
            f"{self.log_prefix} - Gateway Error {text.decode(errors='replace')}"
        )
        self.close_connection(REASON_PARSE_ERROR)

    def process_remote_sub(
        self,
        origin: bytes | None,
        account: bytes | None,
        subject: bytes,
        queue: bytes | None,
        weight: int,
    ) -> None:
        if not self.outbound:
            self._interest_on_inbound("RS+")
            return
        acc = self._account(account)
        if acc is None:
            return
        key = (acc.name, subject, queue)
        if key in self.remote_subs:
            return
        sid = b"G %b %b" % (acc.name_bytes, subject)
        if queue is not None:
            sid += b" " + queue
        sub = Subscription(self, subject, queue, sid)
        self.remote_subs[key] = sub
        acc.gateway_replies.entries += 1
        acc.sublist.insert(sub)

    def process_remote_unsub(
        self, origin: bytes | None, account: bytes | None, subject: bytes, queue: bytes | None
    ) -> None:
        if not self.outbound:
            self._interest_on_inbound("RS-")
            return
        acc = self._account(account)
        if acc is None:
            return
        sub = self.remote_subs.pop((acc.name, subject, queue), None)
        if sub is not None and acc.sublist.remove(sub):
            acc.gateway_replies.entries -= 1

    def _interest_on_inbound(self, op: str) -> None:
        """Interest travels on the other direction's connection only (as nats-server)."""
        text = f"Received {op} from gateway on inbound connection"
        self.server.logger.error(f"{self.log_prefix} - {text}")
        raise ProtocolError(None, "Protocol Violation")

    def process_routed_msg(
        self,
        origin: bytes | None,
        account: bytes | None,
        subject: bytes,
        reply: bytes | None,
        queues: list[bytes] | None,
        hdr_len: int,
        msg: bytes,
    ) -> None:
        ob = self.ob  # the counts live in the compiled Outbound, as for routes
        ob.in_msgs += 1
        ob.in_bytes += len(msg)
        acc = self._accounts.get(account) or self._account(account)
        if acc is None:
            if account is not None and account not in self._no_interest:
                # an account this server does not have: the other cluster may stop sending
                # its messages (nats-server's A-, for a sender still optimistic about it)
                self._no_interest.add(account)
                self.send(b"A- " + account + b"\r\n")
            return
        self.account = acc
        self.queues = queues
        if reply is not None and reply.startswith(REPLY_PREFIX):
            # As nats-server: receivers here see the reply the requester gave, and what is
            # published to it soon after goes back under the `_GR_` prefix (GatewayReplies);
            # the other servers of this cluster get it with the prefix.
            self.relay_reply = reply
            reply = acc.gateway_replies.strip(reply)
        else:
            self.relay_reply = None
        if reply is not None and b"@" in reply:
            # a JetStream delivery: routed by the consumer's inbox, framed with the stored
            # subject that rides after the last `@` of its (possibly `_GR_`-mapped) ack reply
            at = reply.rfind(b"@")
            ack = reply[:at]
            if ack.startswith(JS_ACK_PREFIX):
                stored = reply[at + 1 :]
                route_as(self, acc, subject, stored, ack, msg[:hdr_len], msg[hdr_len:])
                return
        if hdr_len and msg.find(b"Nats-Trace-Dest", 0, hdr_len) >= 0:
            # a traced message: this server reports its part too (msgtrace.py)
            from .msgtrace import route_traced

            if route_traced(self, acc, subject, reply, hdr_len, msg) is not None:
                return
        route_message(self, acc, subject, reply, hdr_len, msg)

    def process_rmsg(
        self, account: bytes | None, subject: bytes, reply: bytes | None, msg: bytes
    ) -> None:
        self.process_routed_msg(None, account, subject, reply, None, 0, msg)

    def _account(self, name: bytes | None) -> Account | None:
        account = self._accounts.get(name)
        if account is not None:
            return account
        text = "" if name is None else name.decode(errors="replace")
        account = self.server.resolve_account(text)
        if account is not None:
            self._accounts[name] = account
            self.gateways.account_seen(account)
        return account

    # -- outbound --------------------------------------------------------------------------

    def send_msg(
        self,
        account: bytes,
        subject: bytes,
        reply: bytes | None,
        queues: list[bytes] | None,
        hdr_len: int,
        msg: bytes,
    ) -> None:
        """One RMSG/HMSG to the remote cluster; the reply rewritten to come back here."""
        if self.closed:
            return
        if reply is not None and not (
            reply.startswith(REPLY_PREFIX) or reply.startswith(OLD_REPLY_PREFIX)
        ):
            reply = self.gateways.reply_prefix + reply
        self.queue_link_msg(b"RMSG ", account + b" " + subject, reply, queues, hdr_len, msg)

    def __repr__(self) -> str:
        way = "out" if self.outbound else "in"
        return f"<GatewayConnection gid={self.cid} {way} {self.remote_name}>"


class Gateways:
    """The gateway side of one server (created by Server when `gateway {}` is configured)."""

    def __init__(self, server: Server, options: GatewayOptions) -> None:
        self.server = server
        self.options = options
        self.name = options.name
        self.port = 0
        self.url = ""  # host:port as the other clusters reach us
        # the gateway URLs of the other servers of this cluster (their route INFO's
        # `gateway_url`): our INFO lists them, so another cluster can dial any of us
        self.cluster_urls: set[str] = set()
        self.cluster_hash = gw_hash(self.name)
        self.server_hash = gw_hash(server.server_id)
        self.reply_prefix = REPLY_PREFIX + self.cluster_hash + b"." + self.server_hash + b"."
        # as nats-server: the configured timeout, else the TLS timeout + 1 s with TLS, else 2 s
        if options.auth_timeout > 0:
            self.auth_timeout = options.auth_timeout
        elif options.tls is not None:
            self.auth_timeout = options.tls.timeout + 1.0
        else:
            self.auth_timeout = const.AUTH_TIMEOUT_S
        self.remotes: dict[str, Remote] = {}
        for rg in options.gateways:
            if rg.name != self.name:
                self.remotes[rg.name] = self._remote(rg)
        self.outbound: dict[str, GatewayConnection] = {}
        self.inbound: dict[int, GatewayConnection] = {}
        self.connections: set[GatewayConnection] = set()
        # Interest of each account that crosses gateways: (subject, queue) -> count.
        self.interest: dict[str, dict[tuple[bytes, bytes | None], int]] = {}
        self.tls_context: ssl.SSLContext | None = None
        self.client_tls_context: ssl.SSLContext | None = None
        # `ocsp {}` stapling a gateway certificate: the dialling side's pyOpenSSL contexts
        # (tls_openssl.client_context) by stapler key, which check the peer's staple
        self._stapling_dialers: dict[str, Any] = {}
        self._listener: asyncio.base_events.Server | None = None
        # the context the listener was opened with, and its own SNI callback (see reload)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._watched: set[str] = set()
        for account in list(server.accounts.values()):
            self.account_seen(account)
        server.add_account_hook(self.account_seen)
        server.peer_hooks.append(self._route_peer)
        if server.cluster is not None:
            server.cluster.peer_gone_hooks.append(self._route_peer_gone)

    @staticmethod
    def _remote(rg: RemoteGateway) -> Remote:
        return Remote(rg.name, list(rg.urls), tls=rg.tls)

    # -- accounts --------------------------------------------------------------------------

    def account_seen(self, account: Account) -> None:
        """Watch an account's interest, give it the reply subscriptions, and (for an account
        created after inbound connections registered) announce it to them."""
        if account.name in self._watched:
            return
        self._watched.add(account.name)
        replies = account.gateway_replies = GatewayReplies(self.server, account)
        counts = self.interest.setdefault(account.name, {})
        for sub in account.sublist.all_subscriptions():
            if _crosses_gateways(sub):
                key = (sub.subject, sub.queue)
                counts[key] = counts.get(key, 0) + 1

        def changed(sub: Subscription, delta: int) -> None:
            if _crosses_gateways(sub):
                self.interest_changed(account, sub, delta)

        account.sublist.interest_listeners.append(changed)
        from .internal import InternalClient

        client = InternalClient(self.server, account, "gateway replies")
        client.subscribe(
            REPLY_PREFIX + self.cluster_hash + b".>", self._gateway_reply, local_only=True
        )
        replies.entries += 1
        for conn in self.outbound.values():
            if conn.registered:
                self._reply_route(conn, account)
        for conn in self.inbound.values():
            if conn.registered:
                self._send_account_interest(conn, account.name)
        self.server.flush_soon()

    def _gateway_reply(
        self,
        sub: Subscription,
        publisher: Any,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        """An answer for this cluster (`_GR_.<our cluster>.<server>.<reply>`): delivered
        here with the prefix stripped when this server asked; else, when it came in on a
        gateway, sent on to the server that asked over its route, prefix kept (as
        nats-server does, a Go route peer included)."""
        if len(subject) <= _SUBJECT_OFFSET:
            return
        account = sub.client.account
        server_hash = subject[_SERVER_OFFSET : _SERVER_OFFSET + len(self.server_hash)]
        msg = headers + payload if headers else payload
        if server_hash != self.server_hash and publisher.kind == GATEWAY:
            route = self._route_by_hash(server_hash, account.name)
            if route is not None:
                route.send_msg(account.name_bytes, subject, reply, None, len(headers), msg)
                return
        route_message(publisher, account, subject[_SUBJECT_OFFSET:], reply, len(headers), msg)

    def _route_by_hash(self, server_hash: bytes, account: str) -> Any:
        """The route connection carrying `account` to the server whose id hashes to
        `server_hash`, or None."""
        cluster = self.server.cluster
        if cluster is None:
            return None
        for peer in cluster.peers.values():
            if gw_hash(peer.server_id) == server_hash:
                return peer.connection_for(account)
        return None

    def _reply_route(self, conn: GatewayConnection, account: Account) -> None:
        """Answers for the cluster behind `conn` go to it whatever its interest."""
        assert conn.remote is not None
        self.account_seen(account)  # (every account is, unless created behind our back)
        subject = REPLY_PREFIX + conn.remote.hash + b".>"
        key = (account.name, subject, None)
        if key not in conn.remote_subs:
            sub = Subscription(conn, subject, None, b"G " + account.name_bytes + b" " + subject)
            conn.remote_subs[key] = sub
            account.gateway_replies.entries += 1
            account.sublist.insert(sub)

    # -- start and stop --------------------------------------------------------------------

    async def bind(self) -> None:
        server = self.server
        opts = self.options
        if opts.tls is not None:
            self.tls_context, self.client_tls_context = link_tls_contexts(opts.tls)
        await self._listen(opts.port)
        from .server import join_host_port

        log = server.logger
        host = opts.host or "0.0.0.0"
        log.notice(f"Gateway name is {self.name}")
        log.notice(f"Listening for gateways connections on {join_host_port(host, self.port)}")
        if opts.advertise:
            self.url = opts.advertise
            log.notice(f"Advertise address for gateway {_quote(self.name)} is set to {self.url}")
        else:
            from .server import advertised_hosts

            # a wildcard listen address: the first non-local address (nats-server's choice)
            hosts = advertised_hosts(opts.host)
            self.url = join_host_port(hosts[1] if len(hosts) > 1 else hosts[0], self.port)
            log.notice(f"Address for gateway {_quote(self.name)} is {self.url}")
        # the route INFO carries it: the other servers of the cluster advertise it too
        server.route_info_extra["gateway_url"] = self.url

    async def _listen(self, port: int) -> None:
        server = self.server
        context = self.tls_context
        factory: Callable[[], asyncio.Protocol] = lambda: GatewayConnection(server, self)  # noqa: E731
        tls = self.options.tls
        if context is not None and tls is not None and server.ocsp_staplers:
            from .connection import stapled_link

            # `ocsp {}`: the certificate stapled (pyOpenSSL), with the start-up TLS settings
            stapled = stapled_link(server, "gateway", tls, factory, tls.timeout)
            if stapled is not None:
                factory, self._stapling_dialers["gateway"] = stapled
                context = None
        self._listener, self.port = await open_listener(
            server, factory, self.options.host, port, context, "gateway"
        )
        if context is not None:
            # each handshake takes the TLS settings of the last reload
            follow_reloaded_context(context, lambda: self.tls_context)

    def reload_tls(
        self, options: GatewayOptions, contexts: tuple[ssl.SSLContext | None, ssl.SSLContext | None]
    ) -> None:
        """A reload: the block's TLS (files read again) for the connections accepted and
        dialled from now on, as nats-server applies it; those up stay as they are. The
        configured gateways' own `tls {}` blocks are taken again too."""
        self.options = options
        had_tls = self.tls_context is not None
        self.tls_context, self.client_tls_context = contexts
        for rg in options.gateways:
            remote = self.remotes.get(rg.name)
            if remote is not None and not remote.implicit:
                remote.tls = rg.tls
        if had_tls != (self.tls_context is not None) and self._listener is not None:
            # TLS switched on or off: a listener with (or without) it, on the same port
            self._listener.close()
            self._listener = None
            task = self.server.loop.create_task(self._relisten())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _relisten(self) -> None:
        from .server import ServerStartError

        if self._stopping:
            return
        try:
            await self._listen(self.port)
        except ServerStartError as e:
            self.server.logger.error(str(e))

    def _route_peer(self, name: str, info: Any) -> None:
        """A server joined this cluster: its gateway URL is the cluster's too; the clusters
        that dial us hear of it at once (an INFO with the new `gateway_urls`)."""
        self._gateways_to_peer(info)
        url = info.get("gateway_url")
        if not isinstance(url, str) or not url or url == self.url or url in self.cluster_urls:
            return
        self.cluster_urls.add(url)
        self._send_urls()

    def _gateways_to_peer(self, info: Any) -> None:
        """A new route peer hears of every cluster we have an outbound connection to
        (nats-server's sendGatewayConfigsToRoute)."""
        cluster = self.server.cluster
        peer = cluster.peers.get(str(info.get("server_id") or "")) if cluster else None
        conn = next(peer.connections(), None) if peer is not None else None
        if conn is None:
            return
        for name, out in list(self.outbound.items()):
            if out.registered and out.remote is not None and out.remote.urls:
                conn.send(self._route_gossip_line(name, [_host_port(u) for u in out.remote.urls]))

    def _route_peer_gone(self, name: str, info: Any) -> None:
        """A server left this cluster (its last route closed): its gateway URL is no longer
        the cluster's, and the clusters that dial us hear of it at once (nats-server's)."""
        url = info.get("gateway_url")
        if not isinstance(url, str) or url not in self.cluster_urls:
            return
        cluster = self.server.cluster
        peers = cluster.peers.values() if cluster is not None else ()
        if any(peer.info.get("gateway_url") == url for peer in peers):
            return
        self.cluster_urls.discard(url)
        self._send_urls()

    def _tell_routes(self, name: str, info: dict[str, Any]) -> None:
        """The cluster we dialled (its INFO on our outbound connection) told to the servers
        of our cluster, so each of them links to it too (nats-server's gateway gossip on
        routes; `server_id` is ours prefixed with `GW`, so that no route takes it for a
        server to dial)."""
        urls = [str(u) for u in info.get("gateway_urls") or [] if u]
        if not urls or self.server.cluster is None:
            return
        line = self._route_gossip_line(name, urls)
        for peer in self.server.cluster.peers.values():
            conn = next(peer.connections(), None)
            if conn is not None:
                conn.send(line)

    def _route_gossip_line(self, name: str, urls: list[str]) -> bytes:
        server = self.server
        gossip = {
            "server_id": "GW" + server.server_id,
            "server_name": server.server_name,
            "gateway": name,
            "gateway_urls": urls,
            "gateway_cmd": CMD_GOSSIP,
        }
        return _info(gossip)

    def route_gossip(self, info: dict[str, Any]) -> None:
        """A server of our cluster links to another cluster: we know of it (or of more of
        its URLs) and dial it when we do not yet (an implicit gateway)."""
        if info.get("gateway_cmd") == CMD_GOSSIP:
            self._learn_urls(str(info.get("gateway") or ""), info)

    def _send_urls(self) -> None:
        line = _info(self.info_fields())
        for conn in self.inbound.values():
            if conn.registered:
                conn.send(line)
        self.server.flush_soon()

    def begin(self) -> None:
        """Dial the configured gateways after nats-server's delay (the cluster forms first)."""
        self.server.loop.call_later(GATEWAY_SOLICIT_DELAY_S, self._solicit_all)

    def _solicit_all(self) -> None:
        for remote in list(self.remotes.values()):
            if not remote.implicit:
                self._dial(remote)

    async def stop(self) -> None:
        self._stopping = True
        if self._listener is not None:
            self._listener.close()
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self.connections):
            conn.close_connection(REASON_SERVER_SHUTDOWN)

    # -- INFO and CONNECT ------------------------------------------------------------------

    def info_fields(self) -> dict[str, Any]:
        server = self.server
        base = server.info_fields()
        host, _, port = self.url.rpartition(":")
        info: dict[str, Any] = {
            "server_id": server.server_id,
            "server_name": server.server_name,
            "version": base["version"],
            "proto": 3,
            "go": "",
            "host": host,
            "port": int(port) if port.isdigit() else self.port,
            "headers": base["headers"],
            "max_payload": server.options.max_payload,
        }
        if self.options.username:
            info["auth_required"] = True
        if self.tls_context is not None:
            info["tls_required"] = True
            info["tls_verify"] = True
        info["gateway"] = self.name
        info["gateway_urls"] = [self.url, *sorted(self.cluster_urls)]
        info["gateway_url"] = self.url
        info["gateway_nrp"] = True
        info["gateway_iom"] = True
        return info

    def _connect_line(self, conn: GatewayConnection) -> bytes:
        user, password = _url_credentials(conn.url)
        if not user:
            user, password = self.options.username, self.options.password
        connect: dict[str, Any] = {
            "echo": False,
            "verbose": False,
            "pedantic": False,
        }
        if user:
            connect["user"] = user
        if password:
            connect["pass"] = password
        connect["tls_required"] = (
            conn.remote is not None and self._client_tls(conn.remote) is not None
        )
        connect["headers"] = not self.server.options.no_header_support
        connect["name"] = self.server.server_id
        connect["cluster"] = ""
        connect["gateway"] = self.name
        return b"CONNECT " + json.dumps(connect, separators=(",", ":")).encode() + b"\r\n"

    # -- the handshake ---------------------------------------------------------------------

    def connection_opened(self, conn: GatewayConnection) -> None:
        server = self.server
        conn.cid = server.next_connection_id()
        self.connections.add(conn)
        log = server.logger
        if conn.outbound:
            log.notice(
                f"{conn.log_prefix} - Creating outbound gateway connection to "
                f"{_quote(conn.remote_name)}"
            )
        else:
            log.notice(f"{conn.log_prefix} - Processing inbound gateway connection")
            conn.send(_info(self.info_fields()))
            conn.expect_connect(self.auth_timeout)
        interval = min(server.options.ping_interval, GATEWAY_MAX_PING_INTERVAL_S)
        conn.start_pings(GATEWAY_FIRST_PING_S, interval)

    def accept_connect(self, conn: GatewayConnection, connect: dict[str, Any]) -> bool:
        log = self.server.logger
        opts = self.options
        if opts.username:
            user = str(connect.get("user") or "")
            password = str(connect.get("pass") or "")
            if user != opts.username or not secret_matches(password, opts.password):
                log.error(f"{conn.log_prefix} - authentication error - User {_quote(user)}")
                conn.close_with_error("Authorization Violation", REASON_AUTH_FAILURE)
                return False
        name = str(connect.get("gateway") or "")
        if not name:
            log.error(f"{conn.log_prefix} - Gateway CONNECT protocol without gateway name")
            conn.close_with_error("Gateway CONNECT protocol without gateway name", "Parse Error")
            return False
        if name == self.name:
            # a server of our own cluster dialled us (a configured URL of our own cluster)
            conn.close_connection(REASON_WRONG_GATEWAY)
            return False
        if opts.reject_unknown and name not in self.remotes:
            log.error(f"{conn.log_prefix} - Rejecting connection from gateway {_quote(name)}")
            conn.close_with_error(
                f"Connection to gateway {_quote(self.name)} rejected", REASON_WRONG_GATEWAY
            )
            return False
        conn.remote_name = name
        conn.remote_id = str(connect.get("name") or "")
        return True

    def info_received(self, conn: GatewayConnection, info: dict[str, Any]) -> None:
        cmd = info.get("gateway_cmd")
        if conn.registered or cmd:
            self._async_info(conn, info, cmd)
            return
        log = self.server.logger
        name = str(info.get("gateway") or "")
        remote_id = str(info.get("server_id") or "")
        if conn.outbound:
            if name != conn.remote_name:
                text = (
                    f"Connecting to gateway {_quote(conn.remote_name)} but gateway "
                    f"{_quote(name)} responded"
                )
                log.error(f"{conn.log_prefix} - {text}")
                conn.close_with_error(text, REASON_WRONG_GATEWAY)
                return
            if remote_id == self.server.server_id:
                conn.close_connection(REASON_WRONG_GATEWAY)
                return
            conn.remote_id = remote_id
            conn.remote_server_name = str(info.get("server_name") or "")
            conn.remote_info = info
            conn.headers = bool(info.get("headers")) and not self.server.options.no_header_support
            conn.send(self._connect_line(conn))
            conn.send(_info(self.info_fields()))
            log.debug(
                f"{conn.log_prefix} - Gateway connect protocol sent to {_quote(conn.remote_name)}"
            )
            existing = self.outbound.get(conn.remote_name)
            if existing is not None and existing is not conn and not existing.closed:
                conn.close_connection(REASON_DUPLICATE)
                return
            self.outbound[conn.remote_name] = conn
            conn.registered = True
            log.notice(
                f"{conn.log_prefix} - Outbound gateway connection to {_quote(conn.remote_name)} "
                f"({remote_id}) registered"
            )
            self._outbound_urls(conn, info)
            for account in list(self.server.accounts.values()):
                self._reply_route(conn, account)
            self._tell_routes(conn.remote_name, info)
            return
        # inbound: the INFO that follows the CONNECT
        conn.remote_server_name = str(info.get("server_name") or "")
        conn.remote_info = info
        conn.remote_id = remote_id or conn.remote_id
        conn.headers = bool(info.get("headers")) and not self.server.options.no_header_support
        conn.registered = True
        self.inbound[conn.cid] = conn
        log.notice(
            f"{conn.log_prefix} - Inbound gateway connection from {_quote(conn.remote_name)} "
            f"({conn.remote_id}) registered"
        )
        self._gossip_to(conn)
        for account_name in list(self.interest):
            self._send_account_interest(conn, account_name)
        self._learn_urls(conn.remote_name, info)
        if conn.remote_name not in self.outbound and conn.remote_name in self.remotes:
            self._dial(self.remotes[conn.remote_name])

    def _async_info(self, conn: GatewayConnection, info: dict[str, Any], cmd: Any) -> None:
        log = self.server.logger
        if cmd == CMD_GOSSIP:
            self._learn_urls(str(info.get("gateway") or ""), info)
        elif cmd in (CMD_ALL_SUBS_START, CMD_ALL_SUBS_COMPLETE):
            account = _account_of(info)
            conn.accounts_mode[account] = INTEREST_ONLY
            state = "" if cmd == CMD_ALL_SUBS_START else " complete"
            log.debug(
                f"{conn.log_prefix} - Gateway {_quote(conn.remote_name)}: switching account "
                f"{_quote(account)} to Interest-Only mode{state}"
            )
        elif conn.registered:
            conn.remote_info.update(info)
            if conn.outbound:
                self._outbound_urls(conn, info)
                self._tell_routes(conn.remote_name, info)
            else:
                self._learn_urls(conn.remote_name, info)

    def _outbound_urls(self, conn: GatewayConnection, info: dict[str, Any]) -> None:
        """An INFO of the cluster we dialled lists its servers' gateway URLs: they replace
        what we knew of it (nats-server's updateURLs)."""
        urls = [str(u) for u in info.get("gateway_urls") or [] if u]
        if urls and conn.remote is not None:
            conn.remote.update_urls(urls)

    def _learn_urls(self, name: str, info: dict[str, Any]) -> None:
        """Gateway URLs gossiped by a cluster: where to (re)dial it; a cluster we did not
        know of becomes an implicit remote, dialled at once."""
        if not name or name == self.name:
            return
        urls = [str(u) for u in info.get("gateway_urls") or [] if u]
        if not urls and info.get("gateway_url"):
            urls = [str(info["gateway_url"])]
        remote = self.remotes.get(name)
        if remote is None:
            if not urls:
                return
            remote = Remote(name, [f"nats://{u}" for u in urls], implicit=True)
            self.remotes[name] = remote
            self._dial(remote)
            return
        for u in urls:
            url = f"nats://{u}"
            if all(_host_port(url) != _host_port(known) for known in remote.urls):
                remote.urls.append(url)

    def _gossip_to(self, conn: GatewayConnection) -> None:
        """Tell a cluster that dialled us about the other clusters we know of."""
        for remote in self.remotes.values():
            if remote.name == conn.remote_name:
                continue
            urls = [_host_port(u) for u in remote.urls]
            info = {
                "server_id": self.server.server_id,
                "gateway": remote.name,
                "gateway_urls": urls,
                "gateway_cmd": CMD_GOSSIP,
            }
            conn.send(_info(info))

    def _send_account_interest(self, conn: GatewayConnection, account_name: str) -> None:
        """Interest-only mode for one account: INFO cmd 2, every RS+, INFO cmd 3."""
        log = self.server.logger
        payload = base64.b64encode(account_name.encode()).decode()
        log.debug(
            f"{conn.log_prefix} - Gateway {_quote(conn.remote_name)}: switching account "
            f"{_quote(account_name)} to Interest-Only mode"
        )
        conn.accounts_mode[account_name] = INTEREST_ONLY
        cmd = {"gateway": self.name, "gateway_cmd_payload": payload}
        conn.send(_info({**cmd, "gateway_cmd": CMD_ALL_SUBS_START}))
        acc = account_name.encode()
        start = len(conn.ob.parts)
        for (subject, queue), _ in self.interest.get(account_name, {}).items():
            if queue is None:
                conn.send(b"RS+ %b %b\r\n" % (acc, subject))
            else:
                conn.send(b"RS+ %b %b %b 1\r\n" % (acc, subject, queue))
        if log.trace_enabled:  # not traced, as nats-server does not
            untraced_since(conn, start)
        conn.send(_info({**cmd, "gateway_cmd": CMD_ALL_SUBS_COMPLETE}))
        log.debug(
            f"{conn.log_prefix} - Gateway {_quote(conn.remote_name)}: switching account "
            f"{_quote(account_name)} to Interest-Only mode complete"
        )

    def connection_closed(self, conn: GatewayConnection) -> None:
        server = self.server
        self.connections.discard(conn)
        label = f" - Remote: {conn.remote_server_name}" if conn.remote_server_name else ""
        server.logger.notice(f"{conn.log_prefix} - Gateway connection closed: {conn.reason}{label}")
        conn.drop_remote_interest()
        server.count_closed(conn)
        if conn.outbound:
            if self.outbound.get(conn.remote_name) is conn:
                del self.outbound[conn.remote_name]
        else:
            self.inbound.pop(conn.cid, None)

    # -- dialling --------------------------------------------------------------------------

    def _dial(self, remote: Remote) -> None:
        if self._stopping or remote.dialing:
            return
        remote.dialing = True
        task = self.server.loop.create_task(self._dial_loop(remote))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _stapling_dialer(self, remote: Remote) -> tuple[str, Any] | None:
        """`ocsp {}` stapling the certificate this gateway is dialled with (its own `tls {}`
        block's, else the gateway's): the stapler key and the pyOpenSSL context checking
        the peer's staple; None when it is not stapled."""
        server = self.server
        if not server.ocsp_staplers:
            return None
        from .ocsp_staple import remote_gateway_key

        key = remote_gateway_key(remote.name) if remote.tls is not None else "gateway"
        if key not in server.ocsp_staplers:
            return None
        context = self._stapling_dialers.get(key)
        if context is None:
            from .tls_openssl import client_context

            settings = remote.tls if remote.tls is not None else self.options.tls
            assert settings is not None
            context = self._stapling_dialers[key] = client_context(settings)
        return key, context

    def _client_tls(self, remote: Remote) -> ssl.SSLContext | None:
        if remote.tls is not None:
            from .tls import build_route_client_context

            return build_route_client_context(remote.tls)
        return self.client_tls_context

    async def _dial_loop(self, remote: Remote) -> None:
        """Dial one of the cluster's URLs until a connection registers, and again when it
        closes: forever for a configured gateway, `connect_retries` times for an implicit one."""
        log = self.server.logger
        kind = "implicit" if remote.implicit else "explicit"
        attempts = 0
        try:
            while not self._stopping:
                attempts += 1
                report = self.server.should_report_connect_error(False, attempts)
                conn: GatewayConnection | None = None
                urls = list(remote.urls)
                random.shuffle(urls)
                for url in urls:
                    host, port = _host_port_pair(url)
                    given = f"{host}:{port}"
                    try:  # nats-server logs (and dials) one of the name's addresses
                        found = await self.server.loop.getaddrinfo(
                            host, port, type=socket.SOCK_STREAM
                        )
                    except OSError:
                        log.error(
                            f"Error getting IP for {kind} gateway {_quote(remote.name)} "
                            f'({given}): lookup for host "{host}": {_lookup_error(host)}'
                        )
                        continue
                    ip = str(random.choice(found)[4][0])
                    from .server import join_host_port

                    address = join_host_port(ip, port)
                    text = (
                        f"Connecting to {kind} gateway {_quote(remote.name)} ({given}) at "
                        f"{address} (attempt {attempts})"
                    )
                    if report:
                        log.notice(text)
                    else:
                        log.debug(text)
                    candidate = GatewayConnection(self.server, self, remote)
                    candidate.url = url
                    candidate.closed_future = self.server.loop.create_future()
                    context = self._client_tls(remote)
                    stapled = self._stapling_dialer(remote) if context is not None else None
                    dialling: Awaitable[Any]
                    try:
                        if stapled is not None:
                            from .connection import dial_stapled

                            tls = remote.tls or self.options.tls
                            timeout = tls.timeout if tls is not None else const.TLS_TIMEOUT_S
                            dialling = dial_stapled(
                                self.server,
                                stapled[0],
                                candidate,
                                ip,
                                port,
                                stapled[1],
                                server_hostname=host,
                                handshake_timeout=timeout,
                            )
                        else:
                            dialling = self.server.loop.create_connection(
                                lambda c=candidate: c,
                                ip,
                                port,
                                ssl=context,
                                server_hostname=host if context is not None else None,
                            )
                        await asyncio.wait_for(dialling, GATEWAY_DIAL_TIMEOUT_S)
                    except PeerStapleRefused as e:
                        # refused inside the handshake, as nats-server's dialling side does
                        candidate.host, candidate.port = ip, port
                        candidate.cid = self.server.next_connection_id()
                        prefix = candidate.log_prefix
                        log.notice(
                            f"{prefix} - Creating outbound gateway connection to "
                            f"{_quote(remote.name)}"
                        )
                        log.error(f"{prefix} - TLS gateway handshake error: {e}")
                        log.notice(f"{prefix} - Gateway connection closed: {REASON_TLS_FAILURE}")
                        continue
                    except (TimeoutError, OSError, ssl.SSLError) as e:
                        err = (
                            f"Error connecting to {kind} gateway {_quote(remote.name)} "
                            f"({given}) at {address} (attempt {attempts}): "
                            f"{_dial_error(ip, port, e)}"
                        )
                        if report:
                            log.error(err)
                        else:
                            log.debug(err)
                        continue
                    conn = candidate
                    break
                if conn is None:
                    if (
                        remote.implicit
                        and attempts > max(self.options.connect_retries, 0)
                        and not any(c.remote_name == remote.name for c in self.inbound.values())
                    ):
                        self.remotes.pop(remote.name, None)
                        return
                    delay = GATEWAY_CONNECT_DELAY_S
                    if self.options.connect_backoff:  # doubling, up to 30 s
                        delay = min(delay * 2 ** (attempts - 1), GATEWAY_MAX_CONNECT_DELAY_S)
                    await asyncio.sleep(delay)
                    continue
                attempts = 0
                assert conn.closed_future is not None
                reason = await conn.closed_future
                if self._stopping or reason == REASON_DUPLICATE:
                    return
                delay = random.random() * 0.1
                if not remote.implicit:
                    delay += GATEWAY_RECONNECT_DELAY_S
                await asyncio.sleep(delay)
        finally:
            remote.dialing = False

    # -- interest --------------------------------------------------------------------------

    def interest_changed(self, account: Account, sub: Subscription, delta: int) -> None:
        """A subscription that crosses gateways came or went: tell the inbound connections
        when the account's interest in the subject (or the queue group) appeared or ended."""
        key = (sub.subject, sub.queue)
        counts = self.interest.setdefault(account.name, {})
        n = counts.get(key, 0) + delta
        if n <= 0:
            counts.pop(key, None)
            n = 0
        else:
            counts[key] = n
        if not (n == 0 or (n == 1 and delta > 0)):
            return
        if not self.inbound:
            return
        acc = account.name_bytes
        if n:
            if sub.queue is None:
                line = b"RS+ %b %b\r\n" % (acc, sub.subject)
            else:
                line = b"RS+ %b %b %b 1\r\n" % (acc, sub.subject, sub.queue)
        elif sub.queue is None:
            line = b"RS- %b %b\r\n" % (acc, sub.subject)
        else:
            line = b"RS- %b %b %b\r\n" % (acc, sub.subject, sub.queue)
        for conn in self.inbound.values():
            if conn.registered:
                conn.send(line)

    # -- monitoring ------------------------------------------------------------------------

    def registered_inbound(self) -> list[GatewayConnection]:
        return sorted((c for c in self.inbound.values() if c.registered), key=lambda c: c.cid)

    def is_configured(self, name: str) -> bool:
        remote = self.remotes.get(name)
        return remote is not None and not remote.implicit


# -- /gatewayz and /varz ---------------------------------------------------------------------


def gatewayz_report(gateways: Gateways, query: dict[str, str]) -> dict[str, Any]:
    """/gatewayz in nats-server's shape: `accs` (or `acc_name`) adds the accounts' interest
    modes, `subs` (`1` or `detail`) their subscriptions, `gw_name` keeps one gateway."""
    from .monitor import parse_bool, rfc3339_seconds

    now = time.time()
    acc_name = query.get("acc_name", "")
    accounts = bool(acc_name) or parse_bool(query, "accs")
    subs = query.get("subs", "")
    subs_mode = "detail" if subs == "detail" else ("list" if parse_bool(query, "subs") else "")
    only = query.get("gw_name", "")
    host, _, port = gateways.url.rpartition(":")
    outbound: dict[str, Any] = {}
    for name, conn in sorted(gateways.outbound.items()):
        if not conn.registered or (only and name != only):
            continue
        outbound[name] = _remote_gateway(gateways, conn, now, accounts, acc_name, subs_mode)
    inbound: dict[str, list[dict[str, Any]]] = {}
    for conn in gateways.registered_inbound():
        if only and conn.remote_name != only:
            continue
        entry = _remote_gateway(gateways, conn, now, accounts, acc_name, subs_mode)
        inbound.setdefault(conn.remote_name, []).append(entry)
    return {
        "server_id": gateways.server.server_id,
        "now": rfc3339_seconds(now),
        "name": gateways.name,
        "host": host,
        "port": int(port) if port.isdigit() else gateways.port,
        "outbound_gateways": outbound,
        "inbound_gateways": inbound,
    }


def _remote_gateway(
    gateways: Gateways,
    conn: GatewayConnection,
    now: float,
    accounts: bool,
    acc_name: str,
    subs_mode: str,
) -> dict[str, Any]:
    from pynats import gotime

    from .monitor import rfc3339_seconds, sub_detail, uptime_text

    transport = conn.transport
    entry: dict[str, Any] = {
        "configured": conn.outbound and gateways.is_configured(conn.remote_name),
        "connection": {
            "cid": conn.cid,
            "kind": "Gateway",
            "ip": conn.host,
            "port": conn.port,
            "start": rfc3339_seconds(conn.start),
            "last_activity": rfc3339_seconds(conn.last_activity),
            "rtt": gotime.format_duration(round(conn.rtt * gotime.NS_PER_S)),
            "uptime": uptime_text(now - conn.start),
            "idle": uptime_text(now - conn.last_activity),
            "pending_bytes": transport.get_write_buffer_size() if transport is not None else 0,
            "in_msgs": conn.in_msgs,
            "out_msgs": conn.out_msgs,
            "in_bytes": conn.in_bytes,
            "out_bytes": conn.out_bytes,
            "subscriptions": sum(
                1 for (_, subject, _) in conn.remote_subs if not subject.startswith(REPLY_PREFIX)
            ),
            "name": conn.remote_id,
        },
    }
    if accounts:
        listed = []
        for account, mode in conn.accounts_mode.items():
            if acc_name and account != acc_name:
                continue
            a: dict[str, Any] = {
                "name": account,
                "interest_mode": mode,
                "interest_only_threshold": INTEREST_ONLY_THRESHOLD,
            }
            subs = [
                sub
                for (name, _, _), sub in conn.remote_subs.items()
                if name == account and not sub.subject.startswith(REPLY_PREFIX)
            ]
            if subs:
                a["num_subs"] = len(subs)
                queues = sum(1 for sub in subs if sub.queue is not None)
                if queues:
                    a["num_queue_subs"] = queues
                if subs_mode == "detail":
                    a["subscriptions_list_detail"] = [sub_detail(sub, None) for sub in subs]
                elif subs_mode:
                    a["subscriptions_list"] = [sub.subject.decode(errors="replace") for sub in subs]
            listed.append(a)
        entry["accounts"] = listed
    return entry


def gateway_varz(gateways: Gateways) -> dict[str, Any]:
    """The `gateway` section of /varz: the block as configured (URLs without credentials)."""
    opts = gateways.options
    out: dict[str, Any] = {
        "name": gateways.name,
        "host": opts.host or "0.0.0.0",
        "port": gateways.port,
        "auth_timeout": gateways.auth_timeout,
        "tls_timeout": opts.tls.timeout if opts.tls is not None else const.TLS_TIMEOUT_S,
    }
    if opts.tls is not None:
        out["tls_required"] = True
        out["tls_verify"] = True  # gateways verify each other whatever `verify` says
    if opts.advertise:
        out["advertise"] = opts.advertise
    if opts.connect_retries:
        out["connect_retries"] = opts.connect_retries
    if opts.gateways:
        remotes = []
        for rg in opts.gateways:
            remote: dict[str, Any] = {"name": rg.name}
            if rg.tls is not None:
                remote["tls_timeout"] = rg.tls.timeout
            # what the cluster's INFOs taught us too, as nats-server shows it
            known = gateways.remotes.get(rg.name)
            remote["urls"] = [_host_port(u) for u in (known.urls if known else rg.urls)]
            remotes.append(remote)
        out["gateways"] = remotes
    if opts.reject_unknown:
        out["reject_unknown"] = True
    if opts.tls is not None and opts.tls.cert_file:
        from .tls import certificate_not_after

        if not_after := certificate_not_after(opts.tls.cert_file):
            out["tls_cert_not_after"] = not_after
    return out


def gateway_stats(gateways: Gateways) -> list[dict[str, Any]]:
    """STATSZ `gateways` (nats-server's GatewayStat): one entry per cluster we have an
    outbound connection to, its messages sent on it, those received on the inbound
    connections from that cluster and how many there are."""
    stats = []
    for name, conn in sorted(gateways.outbound.items()):
        if not conn.registered:
            continue
        inbound = [c for c in gateways.inbound.values() if c.remote_name == name]
        stats.append(
            {
                "gwid": conn.cid,
                "name": name,
                "sent": {"msgs": conn.out_msgs, "bytes": conn.out_bytes},
                "received": {
                    "msgs": sum(c.in_msgs for c in inbound),
                    "bytes": sum(c.in_bytes for c in inbound),
                },
                "inbound_connections": len(inbound),
            }
        )
    return stats


def is_gateway_entry(sub: Subscription) -> bool:
    """A subscription this module put in a sublist (another cluster's interest, a reply
    route, the reply subscription), which monitoring does not list."""
    if getattr(sub.client, "kind", None) == GATEWAY:
        return True
    return getattr(sub.callback, "__func__", None) is Gateways._gateway_reply


def _crosses_gateways(sub: Subscription) -> bool:
    """Interest announced to other clusters: everything this cluster wants (clients, leafs,
    routes), not what another cluster told us, not a service import's own subscription and
    not the reply subscriptions of this module."""
    if sub.local_only or sub.client.kind == GATEWAY:
        return False
    return not sub.subject.startswith(REPLY_PREFIX)


def _account_of(info: dict[str, Any]) -> str:
    payload = info.get("gateway_cmd_payload")
    if not isinstance(payload, str):
        return ""
    try:
        return base64.b64decode(payload).decode(errors="replace")
    except ValueError:
        return ""


def _info(info: dict[str, Any]) -> bytes:
    return b"INFO " + json.dumps(info, separators=(",", ":")).encode() + b"\r\n"


def _quote(text: str) -> str:
    return json.dumps(text)


def _url_credentials(url: str) -> tuple[str, str]:
    if not url:
        return "", ""
    parts = urlsplit(url)
    return unquote(parts.username or ""), unquote(parts.password or "")


def _host_port_pair(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    return parts.hostname or "", parts.port or 0


def _host_port(url: str) -> str:
    host, port = _host_port_pair(url)
    return f"{host}:{port}"


@functools.lru_cache(maxsize=1)
def _nameserver(resolv_conf: str = "/etc/resolv.conf") -> str:
    """The first `nameserver` of resolv.conf as `host:53` (the one nats-server's Go
    resolver asks first, and names in a failed lookup), or "" without one."""
    try:
        with open(resolv_conf, encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 2 and fields[0] == "nameserver":
                    from .server import join_host_port

                    return join_host_port(fields[1].split("%")[0], 53)
    except OSError:
        pass
    return ""


def _lookup_error(host: str) -> str:
    """Go's error for a name that does not resolve (`lookup <host> on <ns>:53: no such
    host`)."""
    server = _nameserver()
    where = f" on {server}" if server else ""
    return f"lookup {host}{where}: no such host"


def _dial_error(host: str, port: int, e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return f"dial tcp {host}:{port}: i/o timeout"
    reason = (getattr(e, "strerror", None) or str(e)).lower()
    return f"dial tcp {host}:{port}: connect: {reason}"
