"""RouteConnection: one TCP connection to another server of the cluster.

Two servers of a cluster hold a small pool of connections to each other (nats-server 2.10+:
`pool_size`, 3 by default, plus one per pinned account, `$SYS` included). Each connection
carries the traffic of the accounts assigned to it; a pinned connection carries one account
and leaves the account name out of every line.

The handshake, as nats-server does it (verified on the wire against Go 2.15):

    accepting side                          soliciting side
    INFO (unprompted, at accept)    <-->    CONNECT (at once)
    registers on the peer's INFO            INFO (after the peer's INFO: pool index,
    sends its interest (RS+)                pinned account), PING, its interest (RS+)

Everything after that is symmetric: interest as RS+/RS- (reference counted per account by the
sender, queue subscriptions with their member count as weight), messages as RMSG/HMSG with the
queue groups the copy is for, PING/PONG. A message that arrived over a route is never sent on
to another route: every server is one hop from every other (the mesh is full).

The connection parses and frames; the `Cluster` (cluster.py) decides what a handshake means
(registration, duplicates, gossip) and which accounts' interest to send.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from .connection import LEAF, REASON_TLS_FAILURE, ROUTER, Connection
from .delivery import GATEWAY_REPLY_PREFIX, JS_ACK_PREFIX, route_from_link, route_message
from .link_protocol import LinkParser
from .protocol import ProtocolError
from .sublist import Subscription

if TYPE_CHECKING:
    from .accounts import Account
    from .auth import PermissionChecker
    from .cluster import Cluster, RoutePeer
    from .server import Server

CRLF = b"\r\n"

# Closed-connection reasons of routes, as /routez and the logs give them.
REASON_DUPLICATE_ROUTE = "Duplicate Route"
REASON_CLUSTER_NAME_CONFLICT = "Cluster Name Conflict"
REASON_AUTH_TIMEOUT = "Authentication Timeout"
REASON_AUTH_FAILURE = "Authentication Failure"
REASON_PARSE_ERROR = "Parse Error"
REASON_PROTOCOL_VIOLATION = "Protocol Violation"
REASON_ROUTE_REMOVED = "Route Removed"
REASON_WRONG_PORT = "Incorrect Port"


class RouteConnection(Connection):
    """The server's side of one route connection (accepted or solicited)."""

    kind = ROUTER
    is_link = True
    id_label = "rid"
    kind_name = "route"

    __slots__ = (
        "_accounts",
        "_auth_timer",
        "closed_future",
        "deny_exports",
        "did_solicit",
        "headers",
        "is_configured",
        "lnoc",
        "may_relay",
        "peer",
        "pinned_account",
        "pool_idx",
        "queues",
        "registered",
        "remote_id",
        "remote_info",
        "remote_name",
        "remote_subs",
        "rmsg_prefix",
        "url",
    )

    def __init__(
        self,
        server: Server,
        cluster: Cluster,
        *,
        url: str = "",
        pool_idx: int = 0,
        pinned_account: str | None = None,
        is_configured: bool = False,
    ) -> None:
        super().__init__(server)
        self.did_solicit = bool(url)
        self.url = url
        self.is_configured = is_configured
        self.pool_idx = pool_idx
        self.parser: LinkParser = LinkParser(self)
        self.pinned_account: str | None = None
        # The RMSG head when the account is left out (a pinned route); None: the account's.
        self.rmsg_prefix: bytes | None = None
        self.deny_exports: PermissionChecker | None = None  # routes export everything
        if pinned_account is not None:
            self.pin(pinned_account)
        self.remote_id = ""
        self.remote_name = ""
        self.remote_info: dict[str, Any] = {}
        self.registered = False
        self.headers = True
        self.lnoc = False
        self.peer: RoutePeer | None = None
        # Interest the peer told us about: (leaf origin, account, subject, queue) -> our
        # subscription. RS+ and LS+ (interest of a leaf cluster behind the peer, `origin`)
        # are kept apart, as nats-server keys them.
        self.remote_subs: dict[tuple[bytes | None, str, bytes, bytes | None], Subscription] = {}
        # The queue groups named by the message being delivered (see delivery.route_message).
        self.queues: list[bytes] | None = None
        # Messages from a route go on only to the leafs this server is hub of.
        self.may_relay = server.options.leafnodes.is_enabled()
        self._auth_timer: Any = None
        self._accounts: dict[bytes | None, Account] = {}
        # Resolved with the close reason: the dialler waits on it to decide on redialling.
        self.closed_future: asyncio.Future[str] | None = None

    def pin(self, account: str) -> None:
        """This connection carries `account` only: no account name in its lines."""
        self.pinned_account = account
        self.parser.account_in_line = False
        self.rmsg_prefix = b"RMSG "

    @property
    def cluster(self) -> Cluster:
        cluster = self.server.cluster
        assert cluster is not None
        return cluster

    @property
    def echo(self) -> bool:
        return True

    def relays_to(self, target: Any) -> bool:
        return bool(target.kind == LEAF and target.is_hub_side)

    @property
    def pinned_is_system(self) -> bool:
        system = self.server.system_account
        return system is not None and self.pinned_account == system.name

    # -- life cycle ------------------------------------------------------------------------

    def connection_made(self, base_transport: Any) -> None:
        self.attach(base_transport)
        cluster = self.cluster
        cluster.connection_opened(self)
        if not self._pinned_cert_valid():
            return
        if self.did_solicit:
            self.send(cluster.connect_line(self))
        else:
            self.send(cluster.info_line(self))
            self.set_awaiting_connect()
        self.server.flush_pending()

    def _pinned_cert_valid(self) -> bool:
        """`cluster { tls { pinned_certs } }`: the peer server's certificate (either side of
        the route) must be pinned, else the route fails as a TLS handshake does."""
        settings = self.cluster.options.tls
        transport = self.transport
        if settings is None or settings.pinned_certs is None or transport is None:
            return True
        from .tls_options import NOT_PINNED, unpinned

        refusal = unpinned(transport.get_extra_info("ssl_object"), settings.pinned_certs)
        if refusal is None:
            return True
        self.server.logger.debug(f"{self.log_prefix} - {refusal}")
        self.server.logger.error(f"{self.log_prefix} - TLS route handshake error: {NOT_PINNED}")
        self.close_connection(REASON_TLS_FAILURE, abort=True)
        return False

    def set_awaiting_connect(self) -> None:
        """The accepting side requires CONNECT first, within the cluster auth timeout."""
        self.parser.awaiting_connect = True
        self._auth_timer = self.server.loop.call_later(
            self.cluster.auth_timeout, self._on_auth_timeout
        )

    def _on_auth_timeout(self) -> None:
        self._auth_timer = None
        if not self.closed and not self.remote_id:
            self.close_with_error("Authentication Timeout", REASON_AUTH_TIMEOUT)

    def on_closed(self) -> None:
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        self.cluster.connection_closed(self)
        if self.closed_future is not None and not self.closed_future.done():
            self.closed_future.set_result(self.reason)

    def drop_remote_interest(self) -> None:
        """Remove every subscription the peer registered through this connection."""
        server = self.server
        for (_, account_name, _, _), sub in self.remote_subs.items():
            account = server.accounts.get(account_name)
            if account is not None:
                account.sublist.remove(sub)
        self.remote_subs.clear()

    # -- inbound operations (called by the parser) ------------------------------------------

    def process_connect(self, arg: bytes) -> None:
        # (traced as it was read, with the rest of the link's traffic: trace.LinkTrace)
        if self.did_solicit:
            return
        try:
            connect = json.loads(arg)
        except ValueError:
            raise ProtocolError(None, REASON_PARSE_ERROR) from None
        if not isinstance(connect, dict):
            raise ProtocolError(None, REASON_PARSE_ERROR)
        if not self.cluster.accept_connect(self, connect):
            return
        self.parser.awaiting_connect = False
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None

    def process_info(self, arg: bytes) -> None:
        info = json.loads(arg)
        if not isinstance(info, dict):
            raise ProtocolError(None, REASON_PARSE_ERROR)
        if self.registered:
            self.cluster.async_info(self, info)
        else:
            self.cluster.handshake_info(self, info)

    def process_err(self, text: bytes) -> None:
        self.server.logger.error(f"{self.log_prefix} - Route Error {text.decode(errors='replace')}")
        self.close_connection(REASON_PARSE_ERROR)

    def process_pong(self) -> None:
        super().process_pong()
        self.cluster.pong_received(self)

    def process_remote_sub(
        self,
        origin: bytes | None,
        account: bytes | None,
        subject: bytes,
        queue: bytes | None,
        weight: int,
    ) -> None:
        acc = self._account(account)
        if acc is None:
            return
        if not self.cluster.may_import_interest(self, subject):
            return
        key = (origin, acc.name, subject, queue)
        sub = self.remote_subs.get(key)
        if sub is not None:
            if queue is None or sub.weight == max(weight, 1):
                return
            # A queue's member count changed: the sublist caches weighted groups, so the
            # subscription goes out and back in with its new weight.
            acc.sublist.remove(sub)
        else:
            kind = b"R" if origin is None else b"L " + origin
            sid = b"%b %b %b" % (kind, acc.name_bytes, subject)
            if queue is not None:
                sid += b" " + queue
            sub = Subscription(self, subject, queue, sid)
            self.remote_subs[key] = sub
        sub.weight = max(weight, 1) if queue is not None else 1
        acc.sublist.insert(sub)

    def process_remote_unsub(
        self, origin: bytes | None, account: bytes | None, subject: bytes, queue: bytes | None
    ) -> None:
        acc = self._account(account)
        if acc is None:
            return
        sub = self.remote_subs.pop((origin, acc.name, subject, queue), None)
        if sub is not None:
            acc.sublist.remove(sub)

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
        ob = self.ob
        ob.in_msgs += 1
        ob.in_bytes += len(msg)
        acc = self._accounts.get(account) or self._account(account)
        if acc is not None:
            route_from_link(self, acc, subject, reply, queues, hdr_len, msg)

    def process_rmsg(
        self, account: bytes | None, subject: bytes, reply: bytes | None, msg: bytes
    ) -> None:
        """The common RMSG (no headers, no queue groups), straight from the parser's fast path."""
        ob = self.ob
        ob.in_msgs += 1
        ob.in_bytes += len(msg)
        acc = self._accounts.get(account) or self._account(account)
        if acc is None:
            return
        if reply is not None and (
            reply.startswith(JS_ACK_PREFIX) or reply.startswith(GATEWAY_REPLY_PREFIX)
        ):
            route_from_link(self, acc, subject, reply, None, 0, msg)
            return
        self.account = acc
        self.queues = None
        route_message(self, acc, subject, reply, 0, msg)

    def _account(self, name: bytes | None) -> Account | None:
        """The account a line names (the pinned one when it names none), cached by name."""
        account = self._accounts.get(name)
        if account is not None:
            return account
        text = self.pinned_account or "" if name is None else name.decode(errors="replace")
        account = self.server.resolve_account(text)
        if account is None:
            self.server.logger.debug(
                f"{self.log_prefix} - Unknown account {json.dumps(text)} from route"
            )
        else:
            self._accounts[name] = account
        return account

    # -- outbound --------------------------------------------------------------------------

    def send_interest(self, account: str, subject: bytes, queue: bytes | None, weight: int) -> None:
        """RS+ for one (account, subject[, queue]); a queue's weight is its member count."""
        acc = b"" if self.pinned_account is not None else account.encode() + b" "
        if queue is None:
            self.send(b"RS+ %b%b\r\n" % (acc, subject))
        else:
            self.send(b"RS+ %b%b %b %d\r\n" % (acc, subject, queue, weight))

    def send_no_interest(self, account: str, subject: bytes, queue: bytes | None) -> None:
        acc = b"" if self.pinned_account is not None else account.encode() + b" "
        if queue is None:
            self.send(b"RS- %b%b\r\n" % (acc, subject))
        else:
            self.send(b"RS- %b%b %b\r\n" % (acc, subject, queue))

    def send_msg(
        self,
        account: bytes,
        subject: bytes,
        reply: bytes | None,
        queues: list[bytes] | None,
        hdr_len: int,
        msg: bytes,
    ) -> None:
        """One RMSG (HMSG with headers) for this peer, naming the queue groups it is for."""
        if self.closed:
            return
        target = subject if self.pinned_account is not None else account + b" " + subject
        self.queue_link_msg(b"RMSG ", target, reply, queues, hdr_len, msg)

    def __repr__(self) -> str:
        return (
            f"<RouteConnection rid={self.cid} {self.remote_name or self.url} idx={self.pool_idx}>"
        )
