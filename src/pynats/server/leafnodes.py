"""Leaf nodes: this server as a hub for leaf servers, and as a leaf of remote hubs.

A leaf connection binds one local account to one account of the other server. The leaf (the
spoke) dials its hub (`leafnodes { remotes: [...] }`); the hub listens (`leafnodes { listen }`).
As nats-server does (verified on the wire against Go 2.15):

    hub                                      leaf (spoke)
    INFO (client_id, nonce, leafnode_urls,   <- dials; checks the INFO is a hub's
          info_on_connect)
                                             CONNECT (name, cluster, remote_account, creds)
    INFO connect_info (the bound account)
    LS+ for the account's interest, $LDS     LS+ for its local interest, $LDS
    PING ...

Interest and messages use the route verbs without the account (`LS+ subj [queue weight]`,
`LS- subj [queue]`, `LMSG subj [reply-part] size`, `HMSG ...`). Who hears of what:

- a hub tells a leaf about all of the account's interest (clients, routes, other leafs), except
  the leaf's own; a leaf tells its hub only about its own clients' interest and that of its own
  leafs (never what it learned from its hub);
- a leaf's interest reaches the hub's cluster over routes, so a leaf connected to any server of
  a cluster reaches all of it;
- a message from a leaf (we are its hub) may go on to routes and other leafs; a message from our
  hub (we are the leaf) only to our clients and our own leafs; a message from a route only to
  the leafs we are hub of.

Loops are caught with `$LDS.<random>`: every server announces its own subject per account on
each leaf connection; hearing one's own subject back means the leaf connections form a cycle,
and the connection is closed with nats-server's error (the leaf waits 30 s before redialling).
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import secrets
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import unquote, urlsplit

from . import const
from .auth import (
    PermissionChecker,
    Permissions,
    SubjectPermission,
    secret_matches,
    verify_nonce_signature,
)
from .auth_callout import CalloutTarget
from .conf.units import go_quote
from .connection import LEAF, REASON_READ_ERROR, REASON_TLS_FAILURE, Connection, open_listener
from .delivery import route_from_link
from .link_protocol import LinkParser
from .nkey import new_nonce
from .protocol import ERR_AUTH_VIOLATION, ProtocolError
from .sublist import Subscription
from .trace import untraced_since

if TYPE_CHECKING:
    from .accounts import Account
    from .auth import AuthResult
    from .auth_callout import PendingCallout
    from .ocsp_peer import OCSPPeerConfig
    from .options import LeafNodeOptions, LeafRemote
    from .server import Server

CRLF = b"\r\n"
LEAF_FIRST_PING_S = 1.0
LEAF_MAX_PING_INTERVAL_S = 30.0
LOOP_RECONNECT_DELAY_S = 30.0
ERR_WRONG_PORT = "attempted to connect to wrong port"
REASON_WRONG_PORT = "Incorrect Port"
REASON_LOOP = "Loop Detected"
REASON_AUTH = "Authentication Failure"
REASON_AUTH_TIMEOUT = "Authentication Timeout"
REASON_SERVER_SHUTDOWN = "Server Shutdown"
REASON_SAME_CLUSTER = "Leafnode Has Same Cluster Name"
REASON_MAX_ACCOUNT = "Maximum Account Connections Exceeded"
# Subjects a leaf never sends to its hub nor takes from it (nats-server's denyAllClientJs).
JS_LOCAL_SUBJECTS = ("$JS.API.>", "$KV.>", "$OBJ.>")


def loop_subject(account: Account) -> bytes:
    """This server's `$LDS.<token>` for the account (made once per account)."""
    subject: bytes | None = getattr(account, "leaf_loop_subject", None)
    if subject is None:
        subject = b"$LDS." + secrets.token_urlsafe(16).replace("-", "A").replace("_", "B").encode()
        account.leaf_loop_subject = subject
    return subject


class LeafConnection(Connection):
    """One leaf connection: hub side (accepted, the peer is our leaf) or leaf side (we dialled
    our hub)."""

    kind = LEAF
    is_link = True
    id_label = "lid"
    kind_name = "leafnode"

    may_relay = True
    # How an auth callout request names it (auth_callout.CalloutParty): no `type`.
    callout_kind: ClassVar[str] = "Leafnode"
    callout_type: ClassVar[str] = ""

    __slots__ = (
        "_auth_timer",
        "_callout",
        "accepted",
        "closed_future",
        "connect_opts",
        "connected",
        "deny_exports",
        "deny_imports",
        "headers",
        "interest",
        "is_hub_side",
        "isolated",
        "proxy_key",
        "queues",
        "remote",
        "remote_cluster",
        "remote_id",
        "remote_info",
        "remote_name",
        "remote_subs",
        "rmsg_prefix",
        "tls_context",
        "tls_host",
        "url",
    )

    def __init__(
        self,
        server: Server,
        manager: LeafNodes,
        *,
        remote: LeafRemote | None = None,
        url: str = "",
    ) -> None:
        super().__init__(server)
        self.parser: LinkParser = LinkParser(self, account_in_line=False, leaf=True)
        self.remote = remote
        self.url = url
        # `accepted`: who dialled (the handshake's roles). `is_hub_side`: whether this server
        # is the hub of the link (interest and relaying): the acceptor, unless the dialler's
        # remote says `hub: true` (its CONNECT then carries is_hub).
        self.accepted = remote is None
        # The leaf side's TLS, done after the hub's INFO (None: plain, or already TLS)
        self.tls_context: ssl.SSLContext | None = None
        self.tls_host = ""
        self.is_hub_side = remote is None or remote.hub
        self.connected = False
        self.remote_id = ""
        self.remote_name = ""
        self.proxy_key = ""  # the trusted proxy that signed the hub's nonce (ADR-55)
        self.remote_cluster = ""
        self.remote_info: dict[str, Any] = {}
        # Hub side: no other leaf's interest goes to this leaf (isolate_leafnode_interest, or
        # the leaf asked for it).
        self.isolated = False
        self.headers = True
        self.rmsg_prefix: bytes | None = b"LMSG "
        self.queues: list[bytes] | None = None
        # Interest the peer told us about: (subject, queue) -> our subscription
        self.remote_subs: dict[tuple[bytes, bytes | None], Subscription] = {}
        # Interest we told the peer about: (subject, queue) -> number of our subscriptions
        self.interest: dict[tuple[bytes, bytes | None], int] = {}
        self.deny_imports: PermissionChecker | None = None
        self.deny_exports: PermissionChecker | None = None
        self._auth_timer: asyncio.TimerHandle | None = None
        self.closed_future: asyncio.Future[str] | None = None
        # Hub side: the leaf's CONNECT, and the auth callout request deciding it
        self.connect_opts: dict[str, Any] | None = None
        self._callout: PendingCallout | None = None

    def bind(self, account: Account) -> None:
        """The leaf side binds its local account: with it come the subjects that never cross
        (the remote's deny lists, and - for any account but the system one - the JetStream
        API and KV/object store subjects, which each side's JetStream answers for itself:
        a leaf's clients reach the hub's JetStream through its domain, `$JS.<domain>.API`)."""
        self.account = account
        assert self.remote is not None
        local_js = [] if account.is_system else list(JS_LOCAL_SUBJECTS)
        self.deny_imports = _deny_checker(self.remote.deny_imports + local_js)
        self.deny_exports = _deny_checker(self.remote.deny_exports + local_js)

    @property
    def manager(self) -> LeafNodes:
        leafnodes = self.server.leafnodes
        assert leafnodes is not None
        return leafnodes

    @property
    def echo(self) -> bool:
        return True

    # -- life cycle ------------------------------------------------------------------------

    def connection_made(self, base_transport: Any) -> None:
        self.attach(base_transport)
        manager = self.manager
        manager.connection_opened(self)
        if self.accepted:
            self.server.logger.notice(f"{self.log_prefix} - Leafnode connection created ")
            self.parser.awaiting_connect = True
            self._auth_timer = self.server.loop.call_later(
                manager.auth_timeout, self._on_auth_timeout
            )
            if manager.tls_context is not None and not manager.options.tls_handshake_first:
                # INFO in the clear, then the handshake (the leaf's ClientHello must not
                # reach the parser: reading waits until TLS is up). Paused from a task:
                # uvloop starts reading a new socket once connection_made has returned,
                # whatever it was told inside it.
                self.server.loop.create_task(self._hub_start_tls(manager.tls_context))
                return
            self.send(manager.hub_info_line(self))
        else:
            assert self.remote is not None
            self._auth_timer = self.server.loop.call_later(
                self.remote.first_info_timeout or 1.0, self._on_first_info_timeout
            )
        self.server.flush_pending()

    async def _hub_start_tls(self, context: ssl.SSLContext) -> None:
        """The hub's side of a TLS leaf port: INFO with reading paused, then the handshake."""
        transport = self.transport
        if self.closed or transport is None:
            return
        transport.pause_reading()
        self.send(self.manager.hub_info_line(self))
        self.server.flush_pending()
        await self._start_tls(context, None)

    async def _start_tls(self, context: ssl.SSLContext, info: dict[str, Any] | None) -> None:
        """Upgrade to TLS after the hub's INFO: as the hub (`info` None) or as the leaf,
        which then answers the INFO it read."""
        transport = self.transport
        if self.closed or transport is None:
            return
        server = self.server
        # With `ocsp_peer`, what arrives with the end of the handshake (a leaf's CONNECT) is
        # held by the parser until the peer's certificate is found valid.
        checking = self._ocsp_peer_config(hub=info is None) is not None
        if checking:
            self.parser.hold()
        try:
            new_transport = await server.loop.start_tls(
                transport,
                self,
                context,
                server_side=info is None,
                server_hostname=None if info is None else self.tls_host,
                ssl_handshake_timeout=self._tls_timeout(),
            )
        except Exception as e:  # a failed handshake closes this connection only
            if checking:
                self.parser.release()
            if not self.closed:
                text = str(e) or type(e).__name__
                server.logger.error(f"{self.log_prefix} - TLS leafnode handshake error: {text}")
                self.close_connection(REASON_TLS_FAILURE, abort=True)
            return
        valid = False
        if not self.closed and new_transport is not None:
            self.transport = new_transport
            valid = self._pinned_cert_valid(hub=info is None)
            valid = valid and await self._ocsp_peer_valid(hub=info is None)
        held = self.parser.release() if checking else b""
        if self.closed or new_transport is None or not valid:
            return
        if info is not None:
            self._answer_info(info)
        if held and not self.closed:
            self.data_received(held)

    def _pinned_cert_valid(self, *, hub: bool) -> bool:
        """`leafnodes { tls { pinned_certs } }`, as the hub: the leaf's certificate must be
        pinned, else the link fails as a TLS handshake does."""
        settings = self.manager.options.tls if hub else None
        transport = self.transport
        if settings is None or settings.pinned_certs is None or transport is None:
            return True
        from .tls_options import NOT_PINNED, unpinned

        refusal = unpinned(transport.get_extra_info("ssl_object"), settings.pinned_certs)
        if refusal is None:
            return True
        self.server.logger.debug(f"{self.log_prefix} - {refusal}")
        self.server.logger.error(f"{self.log_prefix} - TLS leafnode handshake error: {NOT_PINNED}")
        self.close_connection(REASON_TLS_FAILURE, abort=True)
        return False

    def _ocsp_peer_config(self, *, hub: bool) -> OCSPPeerConfig | None:
        """The `ocsp_peer` that checks this link's peer, if one does."""
        settings = self.manager.options.tls if hub else (self.remote.tls if self.remote else None)
        cfg = settings.ocsp_peer if settings is not None else None
        return cfg if cfg is not None and cfg.verify else None

    async def _ocsp_peer_valid(self, *, hub: bool) -> bool:
        """`tls { ocsp_peer }` of the leaf node listener (the leaf's certificate, as the
        hub) or of the remote (the hub's certificate, as the leaf): checked right after the
        handshake with reading paused; invalid is a failed handshake, as in nats-server."""
        cfg = self._ocsp_peer_config(hub=hub)
        verifier = self.server.start_ocsp_peer()
        transport = self.transport
        if cfg is None or verifier is None or transport is None:
            return True
        # None only without TLS: the check then finds no chain and refuses
        ssl_object = transport.get_extra_info("ssl_object")
        from .ocsp_peer import CLIENT_REJECT, SERVER_REJECT

        transport.pause_reading()
        try:
            if hub:
                valid = await verifier.client_valid(ssl_object, cfg)
            else:
                valid = await verifier.server_valid(ssl_object, cfg)
        except Exception as e:  # a bug in the check must not leave the link hanging
            self.server.logger.error(f"{self.log_prefix} - OCSP peer check failed: {e}")
            valid = False
        if self.closed:
            return False
        if not valid:
            reason = CLIENT_REJECT if hub else SERVER_REJECT
            self.server.logger.error(f"{self.log_prefix} - TLS leafnode handshake error: {reason}")
            self.close_connection(REASON_TLS_FAILURE, abort=True)
            return False
        transport.resume_reading()
        return True

    def _tls_timeout(self) -> float:
        settings = self.remote.tls if self.remote is not None else self.manager.options.tls
        return settings.timeout if settings is not None else const.TLS_TIMEOUT_S

    def _on_auth_timeout(self) -> None:
        self._auth_timer = None
        if not self.closed and not self.connected:
            self.close_with_error("Authentication Timeout", REASON_AUTH_TIMEOUT)

    def _on_first_info_timeout(self) -> None:
        """The hub said nothing within first_info_timeout: hang up without a word (as
        nats-server's read deadline does) and let the dial loop try again."""
        self._auth_timer = None
        if not self.closed and not self.remote_info:
            self.close_connection(REASON_READ_ERROR, abort=True)

    def _stop_auth_timer(self) -> None:
        if self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None

    def on_closed(self) -> None:
        self._stop_auth_timer()
        if self._callout is not None:
            self._callout.cancel()
            self._callout = None
        self.manager.connection_closed(self)
        if self.closed_future is not None and not self.closed_future.done():
            self.closed_future.set_result(self.reason)

    def drop_remote_interest(self) -> None:
        sublist = self.account.sublist
        for sub in self.remote_subs.values():
            sublist.remove(sub)
        self.remote_subs.clear()

    # -- inbound ---------------------------------------------------------------------------

    def process_info(self, arg: bytes) -> None:
        info = json.loads(arg)
        if not isinstance(info, dict) or self.accepted:
            return  # a leaf's INFO (compression negotiation) means nothing to us
        manager = self.manager
        if not self.remote_info:
            self._stop_auth_timer()
            # A leaf port's INFO names our connection and either the hub's leaf URLs or (with
            # no_advertise) that a second INFO follows; a client or route port's does not.
            hub_like = "leafnode_urls" in info or info.get("info_on_connect")
            if not info.get("client_id") or not hub_like:
                self.server.logger.error(
                    f"{self.log_prefix} - Leafnode connection closed: {ERR_WRONG_PORT}"
                )
                self.close_connection(REASON_WRONG_PORT)
                return
            self.remote_info = info
            self.remote_id = str(info.get("server_id") or "")
            self.remote_name = str(info.get("server_name") or "")
            self.headers = bool(info.get("headers")) and not self.server.options.no_header_support
            context = self.tls_context
            if context is None and info.get("tls_required"):
                from .options import TLSSettings
                from .tls import build_route_client_context

                context = build_route_client_context(TLSSettings())
            if context is not None and self.transport is not None:
                self.tls_context = None
                self.transport.pause_reading()
                self.server.loop.create_task(self._start_tls(context, info))
                return
            self._answer_info(info)
            return
        if info.get("connect_info") and not self.connected:
            self.remote_info.update(info)
            manager.register(self)

    def _answer_info(self, info: dict[str, Any]) -> None:
        """The leaf's CONNECT for the hub's first INFO (over TLS when there is TLS)."""
        manager = self.manager
        self.send(manager.leaf_connect_line(self, str(info.get("nonce") or "")))
        if not info.get("info_on_connect"):
            manager.register(self)
        self.server.flush_pending()

    def process_connect(self, arg: bytes) -> None:
        # (traced as it was read, with the rest of the link's traffic: trace.LinkTrace)
        if not self.accepted:
            return
        try:
            connect = json.loads(arg)
        except ValueError:
            raise ProtocolError(None) from None
        if not isinstance(connect, dict):
            raise ProtocolError(None)
        self.parser.awaiting_connect = False
        self._stop_auth_timer()
        self.connect_opts = connect
        self.manager.accept_leaf(self, connect)

    # -- decided by an auth callout (hub side) ---------------------------------------------

    @property
    def nonce(self) -> str:
        """The nonce of the INFO we sent the leaf."""
        return str(self.remote_info.get("nonce") or "") if self.accepted else ""

    @property
    def verifies_peer(self) -> bool:
        tls = self.manager.options.tls
        return tls is not None and tls.verify

    def await_callout(self, connect: dict[str, Any], target: CalloutTarget) -> None:
        """The auth callout service decides which account this leaf binds (if any): nothing
        it sent after its CONNECT is parsed until then."""
        callout = self.server.auth_callout
        assert callout is not None
        self.parser.hold()
        if self.transport is not None:
            self.transport.pause_reading()
        self._callout = callout.start(self, connect, target)

    def finish_callout(self, result: AuthResult) -> None:
        """The service admitted this leaf into `result.account`: the handshake goes on, then
        what the leaf sent meanwhile."""
        self._callout = None
        if self.closed:
            return
        self.manager.admit_leaf(
            self, self.connect_opts or {}, result.account or const.GLOBAL_ACCOUNT
        )
        rest = self.parser.release()
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()
        if rest and not self.closed:
            self.data_received(rest)
        else:
            self.server.flush_pending()

    def process_err(self, text: bytes) -> None:
        message = text.decode(errors="replace").strip("'")
        self.server.logger.error(f"{self.log_prefix} - Leafnode Error '{message}'")
        if message.startswith("Loop detected"):
            self.close_connection(REASON_LOOP)
        else:
            self.close_connection("Parse Error")

    def process_remote_sub(
        self,
        origin: bytes | None,
        account: bytes | None,
        subject: bytes,
        queue: bytes | None,
        weight: int,
    ) -> None:
        if not self.connected:
            return
        if subject == loop_subject(self.account):
            self.manager.loop_detected(self)
            return
        if self.deny_exports is not None and not self.deny_exports.can_subscribe(subject, None):
            return
        key = (subject, queue)
        sub = self.remote_subs.get(key)
        sublist = self.account.sublist
        if sub is not None:
            if queue is None or sub.weight == max(weight, 1):
                return
            sublist.remove(sub)
        else:
            sid = b"LS %b" % subject if queue is None else b"LS %b %b" % (subject, queue)
            sub = Subscription(self, subject, queue, sid)
            self.remote_subs[key] = sub
        sub.weight = max(weight, 1) if queue is not None else 1
        sublist.insert(sub)

    def process_remote_unsub(
        self, origin: bytes | None, account: bytes | None, subject: bytes, queue: bytes | None
    ) -> None:
        sub = self.remote_subs.pop((subject, queue), None)
        if sub is not None:
            self.account.sublist.remove(sub)

    def process_rmsg(
        self, account: bytes | None, subject: bytes, reply: bytes | None, msg: bytes
    ) -> None:
        self.process_routed_msg(None, None, subject, reply, None, 0, msg)

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
        if not self.connected:
            return
        if self.deny_imports is not None and not self.deny_imports.can_publish(subject):
            return
        mappings = self.account.mappings
        if mappings is not None:  # as for a client: permissions were for the subject sent
            subject = mappings.apply(subject)
        route_from_link(self, self.account, subject, reply, queues, hdr_len, msg)

    # -- where messages from this leaf may go ----------------------------------------------

    def relays_to(self, target: Any) -> bool:
        """A message from our leaf (hub side) goes on to routes and other leafs; one from our
        hub (leaf side) only to the leafs we are hub of."""
        if target is self:
            return False
        if self.is_hub_side:
            # ... but never back into the leaf cluster it came from
            return not (target.kind == LEAF and target.remote_cluster == self.remote_cluster)
        return bool(target.kind == LEAF and target.is_hub_side)

    # -- outbound --------------------------------------------------------------------------

    def may_announce(self, sub: Subscription) -> bool:
        """Interest we tell this peer about (see the module docstring). A service import's
        own subscription counts here (unlike on routes): the leaf may use our imports."""
        client = sub.client
        if client is self:
            return False
        if self.deny_imports is not None and not self.deny_imports.can_publish(sub.subject):
            return False
        if not client.is_link:
            return True
        if self.is_hub_side:
            # Another leaf's interest: not for an isolated leaf, nor back to its own cluster.
            return not (
                client.kind == LEAF
                and (self.isolated or client.remote_cluster == self.remote_cluster)
            )
        if self.remote is not None and self.remote.isolate:
            return False
        return bool(client.kind == LEAF and client.is_hub_side)

    def interest_changed(self, sub: Subscription, delta: int) -> None:
        if not self.connected or not self.may_announce(sub):
            return
        key = (sub.subject, sub.queue)
        n = self.interest.get(key, 0) + delta
        if n <= 0:
            self.interest.pop(key, None)
            n = 0
        else:
            self.interest[key] = n
        if sub.queue is None and not (n == 0 or (n == 1 and delta > 0)):
            return
        if n:
            self.send_interest(sub.subject, sub.queue, n)
        else:
            self.send_no_interest(sub.subject, sub.queue)

    def send_all_interest(self) -> None:
        counts: dict[tuple[bytes, bytes | None], int] = {}
        for sub in self.account.sublist.all_subscriptions():
            if self.may_announce(sub):
                key = (sub.subject, sub.queue)
                counts[key] = counts.get(key, 0) + 1
        self.interest = counts
        start = len(self.ob.parts)
        for (subject, queue), n in counts.items():
            self.send_interest(subject, queue, n)
        self.announce_mappings()
        if self.server.logger.trace_enabled:  # not traced, as nats-server does not
            untraced_since(self, start)
        self.send_interest(loop_subject(self.account), None, 1)

    def announce_mappings(self) -> None:
        """The sources of the account's mappings are interest too (as nats-server adds them
        to a leaf's smap): a message on one must reach this server to be mapped here. Never
        withdrawn while the connection lasts, as in nats-server."""
        mappings = self.account.mappings
        if mappings is None:
            return
        for source in mappings.sources:
            key = (source, None)
            if key in self.interest:
                continue
            if self.deny_imports is not None and not self.deny_imports.can_publish(source):
                continue
            self.interest[key] = 1
            self.send_interest(source, None, 1)

    def send_interest(self, subject: bytes, queue: bytes | None, weight: int) -> None:
        if queue is None:
            self.send(b"LS+ %b\r\n" % subject)
        else:
            self.send(b"LS+ %b %b %d\r\n" % (subject, queue, weight))

    def send_no_interest(self, subject: bytes, queue: bytes | None) -> None:
        if queue is None:
            self.send(b"LS- %b\r\n" % subject)
        else:
            self.send(b"LS- %b %b\r\n" % (subject, queue))

    def send_msg(
        self,
        account: bytes,
        subject: bytes,
        reply: bytes | None,
        queues: list[bytes] | None,
        hdr_len: int,
        msg: bytes,
    ) -> None:
        """One LMSG (HMSG with headers) for the peer, naming the queue groups it is for.
        A subject the remote's deny_exports names stays here, even when a wildcard interest
        of the hub's covers it."""
        if self.closed or not self.connected:
            return
        if self.deny_exports is not None and not self.deny_exports.can_publish(subject):
            return
        self.queue_link_msg(b"LMSG ", subject, reply, queues, hdr_len, msg)

    def __repr__(self) -> str:
        side = "hub side" if self.is_hub_side else "leaf side"
        return f"<LeafConnection lid={self.cid} {side} {self.remote_name or self.url}>"


class LeafNodes:
    """The leaf-node side of one server: its listener, its remotes, its leaf connections."""

    def __init__(self, server: Server, options: LeafNodeOptions) -> None:
        self.server = server
        self.options = options
        self.connections: set[LeafConnection] = set()
        self.port = 0
        self.auth_timeout = options.auth_timeout or const.AUTH_TIMEOUT_S
        self.tls_context: ssl.SSLContext | None = None
        self._listener: asyncio.base_events.Server | None = None
        self._dialers: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._watched: set[str] = set()
        for account in server.accounts.values():
            self._watch(account)
        server.add_account_hook(self._watch)

    def _watch(self, account: Account) -> None:
        if account.name in self._watched:
            return
        self._watched.add(account.name)

        def changed(sub: Subscription, delta: int) -> None:
            for conn in self.connections:
                if conn.account is account:
                    conn.interest_changed(sub, delta)

        account.sublist.interest_listeners.append(changed)

    # -- start and stop --------------------------------------------------------------------

    async def bind(self) -> None:
        """Open the leaf listener (nats-server does this before the client listener)."""
        opts = self.options
        if not opts.is_enabled():
            return
        from .server import ServerStartError, join_host_port

        if opts.tls is not None:
            from .tls import TLSConfigError, build_leaf_server_context

            try:
                self.tls_context = build_leaf_server_context(opts.tls)
            except TLSConfigError as e:
                raise ServerStartError(str(e)) from None
        self._listener, self.port = await open_listener(
            self.server,
            lambda: LeafConnection(self.server, self),
            opts.host,
            opts.port,
            self.tls_context if opts.tls_handshake_first else None,
            "leafnode",
        )
        host = opts.host or "0.0.0.0"
        self.server.logger.notice(
            f"Listening for leafnode connections on {join_host_port(host, self.port)}"
        )

    def begin(self) -> None:
        """Dial every remote hub (after the server is ready)."""
        for remote in self.options.remotes:
            if not remote.disabled:
                self.dial(remote)

    async def stop(self) -> None:
        self._stopping = True
        if self._listener is not None:
            self._listener.close()
        for task in list(self._dialers):
            task.cancel()
        for conn in list(self.connections):
            conn.close_connection(REASON_SERVER_SHUTDOWN)

    # -- hub side --------------------------------------------------------------------------

    def hub_urls(self) -> list[str]:
        from .server import join_host_port

        if self.options.advertise:
            return [self.options.advertise]
        host = self.options.host or "0.0.0.0"
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        return [join_host_port(host, self.port)]

    def hub_info(self, conn: LeafConnection) -> dict[str, Any]:
        server = self.server
        base = server.info_fields()
        info: dict[str, Any] = {
            "server_id": server.server_id,
            "server_name": server.server_name,
            "version": base["version"],
            "proto": 3,  # MsgTraceProto, as nats-server (msgtrace.py)
            "go": base["go"],
            "host": self.options.host or "0.0.0.0",
            "port": self.port,
            "headers": base["headers"],
            "auth_required": True,
            **({"tls_required": True} if self.tls_context is not None else {}),
            "max_payload": server.options.max_payload,
            "client_id": conn.cid,
        }
        if server.cluster is not None:
            info["cluster"] = server.cluster.name
        info["info_on_connect"] = True
        if not self.options.no_advertise:  # omitted otherwise, as nats-server does
            info["leafnode_urls"] = self.hub_urls()
        return info

    def hub_info_line(self, conn: LeafConnection) -> bytes:
        info = self.hub_info(conn)
        info["nonce"] = new_nonce()
        conn.remote_info = {"nonce": info["nonce"]}
        return _info(info)

    def accept_leaf(self, conn: LeafConnection, connect: dict[str, Any]) -> None:
        """The hub's side of a leaf's CONNECT: who it is, which account it binds, register."""
        server = self.server
        log = server.logger
        if connect.get("lang"):
            conn.close_with_error(ERR_WRONG_PORT, REASON_WRONG_PORT)
            return
        remote_cluster = str(connect.get("cluster") or "")
        if server.cluster is not None and remote_cluster == server.cluster.name:
            text = "leafnode has same cluster name as the hub cluster"
            log.error(f"{conn.log_prefix} - {text}")
            conn.close_with_error(text, REASON_SAME_CLUSTER)
            return
        if not self._proxy_trusted(conn, connect):
            self._refuse(conn, connect, "proxy is not trusted", "Proxy Not Trusted")
            return
        decided = self._authorize(conn, connect)
        if isinstance(decided, CalloutTarget):
            conn.await_callout(connect, decided)
            return
        if decided is None:
            self._refuse(conn, connect, "", REASON_AUTH)
            return
        if self.options.proxy_required and not conn.proxy_key:
            self._refuse(conn, connect, "proxy connection required", "Proxy Required")
            return
        self.admit_leaf(conn, connect, decided)

    def _proxy_trusted(self, conn: LeafConnection, connect: dict[str, Any]) -> bool:
        """A `proxy_sig` must be a trusted proxy's signature of our nonce when `proxies {}`
        lists any (then `conn.proxy_key` names it); without that list it is not looked at."""
        trusted = self.server.options.trusted_proxies
        signature = connect.get("proxy_sig")
        if not trusted or signature is None:
            return True
        nonce = str(conn.remote_info.get("nonce") or "")
        for key in trusted:
            if isinstance(signature, str) and verify_nonce_signature(key, nonce, signature):
                conn.proxy_key = key
                return True
        return False

    def _refuse(
        self, conn: LeafConnection, connect: dict[str, Any], debug: str, reason: str
    ) -> None:
        """A leaf that may not connect, told and logged as nats-server does."""
        log = self.server.logger
        if debug:
            log.debug(f"{conn.log_prefix} - {debug}")
        user = str(connect.get("user") or connect.get("nkey") or "")
        log.error(f"{conn.log_prefix} - authentication error - User {go_quote(user)}")
        conn.close_with_error(ERR_AUTH_VIOLATION, reason)

    def admit_leaf(self, conn: LeafConnection, connect: dict[str, Any], account_name: str) -> None:
        """The leaf may connect, bound to `account_name`: the INFO that says so, register."""
        server = self.server
        account = server.ensure_account(account_name)
        limit = account.max_leafnodes
        if limit >= 0 and self.account_leaf_count(account) >= limit:
            # the account's `limits { max_leafnodes }`: refused as nats-server does it
            text = "maximum account active connections exceeded"
            server.error_once(conn.log_prefix, text)  # logged as for clients (client.py)
            conn.close_with_error(text, REASON_MAX_ACCOUNT)
            server.logger.error(f"{conn.log_prefix} - {text}")
            return
        remote_cluster = str(connect.get("cluster") or "")
        conn.remote_id = str(connect.get("server_id") or "")
        conn.remote_name = str(connect.get("name") or "")
        conn.remote_cluster = remote_cluster
        conn.isolated = self.options.isolate_leafnode_interest or bool(connect.get("isolate"))
        if connect.get("is_hub"):  # the dialler is the hub of this link: we are its spoke
            conn.is_hub_side = False
        conn.headers = bool(connect.get("headers")) and not server.options.no_header_support
        if server.system is not None:
            server.system.add_account(account)
        conn.account = account
        info = self.hub_info(conn)
        info["connect_info"] = True
        info["remote_account"] = account.name
        if account.is_system:
            info["acc_is_sys"] = True
        conn.send(_info(info))
        self.register(conn)

    def account_leaf_count(self, account: Account) -> int:
        """The leaf connections bound to `account` (both directions, as nats-server counts
        them against `max_leafnodes`)."""
        return sum(1 for c in self.connections if c.connected and c.account is account)

    def _authorize(
        self, conn: LeafConnection, connect: dict[str, Any]
    ) -> str | CalloutTarget | None:
        """The local account the leaf binds to, None when it may not connect, or the auth
        callout that decides (the leafnode port's own authorization comes first; without
        one a leaf logs in as a client would, callout included)."""
        opts = self.options
        user = str(connect.get("user") or "")
        password = str(connect.get("pass") or "")
        nonce = str(conn.remote_info.get("nonce") or "")
        if opts.username:
            if user == opts.username and secret_matches(password, opts.password):
                return opts.account or const.GLOBAL_ACCOUNT
            return None
        if opts.nkey:
            return (
                (opts.account or const.GLOBAL_ACCOUNT)
                if _signed(connect, opts.nkey, nonce)
                else None
            )
        if opts.users:
            for entry in opts.users:
                if entry.username and entry.username == user:
                    if secret_matches(password, entry.password):
                        return entry.account or opts.account or const.GLOBAL_ACCOUNT
                    return None
            return None
        server = self.server
        if not server.authenticator.required:
            return opts.account or const.GLOBAL_ACCOUNT
        callout = server.auth_callout
        if callout is not None:
            target = callout.config_target(connect)
            if target is not None:
                return target
        result, _ = server.authenticator.authenticate(connect, nonce, [])
        if result is None:
            return None
        if callout is not None:
            target = callout.account_target(result)
            if target is not None:
                return target
        return result.account or opts.account or const.GLOBAL_ACCOUNT

    def new_websocket_connection(self, upgrade: object) -> LeafConnection:
        """A leaf that dialled the websocket port (`/leafnode`): a hub-side connection."""
        return LeafConnection(self.server, self)

    # -- leaf side -------------------------------------------------------------------------

    def leaf_connect_line(self, conn: LeafConnection, nonce: str) -> bytes:
        server = self.server
        remote = conn.remote
        assert remote is not None
        connect: dict[str, Any] = {
            "version": const.NATS_FEATURE_VERSION,
            "server_id": server.server_id,
            "name": server.server_name,
            "cluster": server.cluster.name if server.cluster is not None else server.server_name,
            "headers": not server.options.no_header_support,
            "remote_account": conn.account.name,
            "protocol": 3,  # MsgTraceProto: traced messages are understood (msgtrace.py)
        }
        user, password = _url_credentials(conn.url)
        if user:
            connect["user"] = user
            if password:
                connect["pass"] = password
            else:
                connect["auth_token"] = user
        if remote.credentials:
            jwt, seed = _read_creds(remote.credentials)
            connect["jwt"] = jwt
            connect["sig"] = _sign(seed, nonce)
        elif remote.nkey:
            seed = _read_seed(remote.nkey)
            connect["nkey"] = _public_key(seed)
            connect["sig"] = _sign(seed, nonce)
        if remote.hub:
            connect["is_hub"] = True
        if remote.request_isolation:
            connect["isolate"] = True
        return b"CONNECT " + json.dumps(connect, separators=(",", ":")).encode() + CRLF

    def dial(self, remote: LeafRemote) -> None:
        if self._stopping:
            return
        task = self.server.loop.create_task(self._dial_loop(remote))
        self._dialers.add(task)
        task.add_done_callback(self._dialers.discard)

    async def _dial_loop(self, remote: LeafRemote) -> None:
        log = self.server.logger
        urls = list(remote.urls)
        attempts = 0
        connected_before = False
        while not self._stopping and self._still_configured(remote):
            if not remote.no_randomize:
                random.shuffle(urls)
            url = urls[attempts % len(urls)] if urls else ""
            parts = urlsplit(url)
            default_port = {"ws": 80, "wss": 443}.get(parts.scheme, 7422)
            host, port = parts.hostname or "", parts.port or default_port
            conn = LeafConnection(self.server, self, remote=remote, url=url)
            conn.bind(self.server.ensure_account(remote.account or const.GLOBAL_ACCOUNT))
            closed: asyncio.Future[str] = self.server.loop.create_future()
            conn.closed_future = closed
            try:
                await self._connect(conn, host, port, remote)
            except (TimeoutError, OSError, ssl.SSLError) as e:
                attempts += 1
                reason = (getattr(e, "strerror", None) or str(e)).lower()
                text = f"dial tcp {host}:{port}: connect: {reason}"
                line = (
                    f"Error trying to connect as leafnode to remote server {host}:"
                    f"{port} (attempt {attempts}): {text}"
                )
                if self.server.should_report_connect_error(connected_before, attempts):
                    log.error(line)
                else:
                    log.debug(line)
                await asyncio.sleep(self.options.reconnect_delay or 1.0)
                continue
            attempts = 0
            connected_before = True
            reason = await closed
            if self._stopping:
                return
            delay = (
                LOOP_RECONNECT_DELAY_S
                if reason == REASON_LOOP
                else (self.options.reconnect_delay or 1.0)
            )
            await asyncio.sleep(delay)

    def _still_configured(self, remote: LeafRemote) -> bool:
        """The remote is still in the options (a reload may have replaced its object: remotes
        are named as nats-server names them)."""
        from .config_leafnodes import remote_name

        name = remote_name(remote)
        return any(remote_name(r) == name and not r.disabled for r in self.options.remotes)

    async def _connect(
        self, conn: LeafConnection, host: str, port: int, remote: LeafRemote
    ) -> None:
        """TCP (TLS for tls:// or a tls block), or a WebSocket for ws:// and wss://."""
        parts = urlsplit(conn.url)
        context: ssl.SSLContext | None = None
        if remote.tls is not None or parts.scheme in ("tls", "wss"):
            from .options import TLSSettings
            from .tls import build_route_client_context

            context = build_route_client_context(remote.tls or TLSSettings())
        timeout = remote.dial_timeout or 2.0
        loop = self.server.loop
        if parts.scheme not in ("ws", "wss"):
            # TLS after the hub's INFO, as nats-server does, unless handshake_first.
            first = context if remote.tls_handshake_first else None
            if first is None:
                conn.tls_context, conn.tls_host = context, host
            await asyncio.wait_for(
                loop.create_connection(lambda: conn, host, port, ssl=first), timeout
            )
            return
        from .websocket import WebSocketDialer

        dialer = WebSocketDialer(
            self.server,
            conn,
            host=f"{host}:{port}",
            path=parts.path,
            compression=remote.ws_compression,
            no_masking=remote.ws_no_masking,
        )
        await asyncio.wait_for(
            loop.create_connection(lambda: dialer, host, port, ssl=context), timeout
        )
        await asyncio.wait_for(dialer.upgraded, timeout)

    # -- both sides ------------------------------------------------------------------------

    def connection_opened(self, conn: LeafConnection) -> None:
        conn.cid = self.server.next_connection_id()
        self.connections.add(conn)
        opts = self.server.options
        conn.start_pings(LEAF_FIRST_PING_S, min(opts.ping_interval, LEAF_MAX_PING_INTERVAL_S))

    def register(self, conn: LeafConnection) -> None:
        """The handshake is done: exchange interest; log as nats-server does."""
        conn._stop_auth_timer()
        conn.connected = True
        if not conn.accepted:  # an accepted one said so when it came in (connection_made)
            self.server.logger.notice(
                f"{conn.log_prefix} - Leafnode connection created for account: {conn.account.name} "
            )
        conn.send_all_interest()
        conn.send(b"PING\r\n")
        self.server.flush_pending()

    def loop_detected(self, conn: LeafConnection) -> None:
        account = conn.account.name
        text = (
            f'Loop detected for leafnode account="{account}". Delaying attempt to reconnect '
            f"for {int(LOOP_RECONNECT_DELAY_S)}s"
        )
        self.server.logger.error(f"{conn.log_prefix} - {text}")
        conn.close_with_error(text, REASON_LOOP)

    def connection_closed(self, conn: LeafConnection) -> None:
        self.connections.discard(conn)
        label = f" - Remote: {conn.remote_name}" if conn.remote_name else ""
        self.server.logger.notice(
            f"{conn.log_prefix} - Leafnode connection closed: {conn.reason}{label}"
        )
        conn.drop_remote_interest()
        self.server.count_closed(conn)

    # -- reload and monitoring -------------------------------------------------------------

    def remotes_changed(self, added: list[LeafRemote], removed: list[LeafRemote]) -> None:
        self.options = self.server.options.leafnodes
        from .config_leafnodes import remote_name

        gone = {remote_name(r) for r in removed}
        for conn in list(self.connections):
            if conn.remote is not None and remote_name(conn.remote) in gone:
                conn.close_connection("Remote Removed")
        for remote in added:
            if not remote.disabled:
                self.dial(remote)

    def options_changed(self) -> None:
        self.options = self.server.options.leafnodes

    def mappings_changed(self, account: Account) -> None:
        """`account` has new mappings: its leaf connections announce their sources."""
        for conn in self.registered():
            if conn.account is account and conn.connected and not conn.closed:
                conn.announce_mappings()

    def registered(self) -> list[LeafConnection]:
        return sorted((c for c in self.connections if c.connected), key=lambda c: c.cid)


def _deny_checker(subjects: list[str]) -> PermissionChecker | None:
    """deny_imports/deny_exports as a checker: deny lists for publish and subscribe."""
    if not subjects:
        return None
    deny = SubjectPermission(deny=list(subjects))
    return PermissionChecker(
        Permissions(publish=deny, subscribe=SubjectPermission(deny=list(subjects)))
    )


def _info(info: dict[str, Any]) -> bytes:
    return b"INFO " + json.dumps(info, separators=(",", ":")).encode() + b" \r\n"


def _url_credentials(url: str) -> tuple[str, str]:
    if not url:
        return "", ""
    parts = urlsplit(url)
    return unquote(parts.username or ""), unquote(parts.password or "")


def _read_creds(path: str) -> tuple[str, bytes]:
    """The user JWT and the nkey seed of a .creds file."""
    text = Path(path).read_text()
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("-----BEGIN"):
            current = []
        elif line.startswith("------END") or line.startswith("-----END"):
            if current is not None:
                blocks.append("".join(current).strip())
            current = None
        elif current is not None:
            current.append(line.strip())
    if len(blocks) < 2:
        raise ValueError(f"no JWT and seed in {path}")
    return blocks[0], blocks[1].encode()


def _read_seed(value: str) -> bytes:
    if value.startswith("S"):
        return value.encode()
    return Path(value).read_text().strip().encode()


def _signed(connect: dict[str, Any], nkey: str, nonce: str) -> bool:
    """The CONNECT names `nkey` and carries its signature of our nonce."""
    sig = connect.get("sig")
    return (
        connect.get("nkey") == nkey
        and isinstance(sig, str)
        and bool(nonce)
        and verify_nonce_signature(nkey, nonce, sig)
    )


def _sign(seed: bytes, nonce: str) -> str:
    import nkeys

    signature = nkeys.from_seed(seed).sign(nonce.encode())
    return base64.urlsafe_b64encode(signature).decode().rstrip("=")


def _public_key(seed: bytes) -> str:
    import nkeys

    return str(nkeys.from_seed(seed).public_key.decode())
