"""The system account: `$SYS.REQ.*` services and `$SYS` events, as nats-server has them.

This is what `nats server ping|info|list|report` and `nats account info` talk to, and what
the servers of a cluster tell each other. Everything travels in the system account, so
requests and events cross routes like any message; each server answers for itself.

- Requests (`$SYS.REQ.SERVER.PING[.<X>]`, `$SYS.REQ.SERVER.<id>.<X>`,
  `$SYS.REQ.ACCOUNT.<acc>.<X>`) are answered with the monitoring endpoints' JSON in
  nats-server's envelope `{"server": {...}, "data": {...}}` (`"statsz"` for the stats).
  A request body may filter which servers answer (`server_name`, `cluster`, `host`, `tags`
  and `domain`, matched as nats-server does: names, hosts and clusters by substring).
- Every other account can ask for its own connections and stats
  (`$SYS.REQ.SERVER.PING.CONNZ`, `$SYS.REQ.ACCOUNT.PING.CONNZ|STATZ`): as nats-server's
  system imports do, the request goes on as `$SYS.REQ.ACCOUNT.<acc>.<X>` in the system
  account, so every server answers, and the answers come back to the asker.
- Events: client CONNECT/DISCONNECT per account, account connection counts (see
  account_conns.py), STATSZ (see statsz.py), and SHUTDOWN or LAMEDUCK once at the end.
- Tracking: servers heard from (a STATSZ or account count) are the cluster's active
  servers; each is dropped on its SHUTDOWN/LAMEDUCK event, or after 150 s of silence.

Every message that carries a `server` block takes the next sequence number; nats-server
checks that a peer's numbers only go up. After the LAMEDUCK (or SHUTDOWN) event nothing more
is sent, as nats-server's send loop ends there: peers drop the server from their tracking.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import const, monitor
from .account_conns import (
    ACCOUNT_CONNS_EVENT_TYPE,
    ERR_TOO_MANY_ACCOUNT_CONNECTIONS,
    REASON_MAX_ACCOUNT_CONNECTIONS,
    AccountConnections,
    account_stat,
    conns_reply_subject,
    conns_request_subject,
    conns_subjects,
)
from .client import REASON_AUTH_EXPIRED
from .internal import InternalClient
from .jwt_auth import (
    AccountClaims,
    JwtAuthenticator,
    JwtError,
    decode_account_jwt,
    decode_jwt,
    user_revoked,
)
from .jwt_exports import AccountLinks
from .monitor import Query
from .protocol import ERR_AUTH_VIOLATION, REASON_AUTH, ProtocolError
from .resolvers import (
    ACCOUNT_UPDATE_SUBJECTS,
    DELETE_SUBJECT,
    LIST_SUBJECT,
    LOOKUP_SUBJECT,
    PACK_SUBJECT,
    UPDATE_SUBJECT,
    ClaimsReply,
    DirResolver,
    StoreError,
    delete_claims,
    update_claims,
    update_loaded_account,
)
from .statsz import StatszSchedule, Traffic, server_stats
from .sublist import Subscription

if TYPE_CHECKING:
    import asyncio

    from .accounts import Account
    from .client import ClientConnection
    from .delivery import DeliveryCallback, Publisher
    from .server import Server

# nats-server's eventsHBInterval and what it derives from it.
REMOTE_SERVER_ORPHAN_S = 150.0
REMOTE_SERVER_SWEEP_S = 90.0

# What every account imports from the system account (nats-server's registerSystemImports):
# its own connections and stats, from every server, as streamed responses.
ACCOUNT_IMPORTS = (
    ("$SYS.REQ.ACCOUNT.PING.CONNZ", "CONNZ"),
    ("$SYS.REQ.ACCOUNT.PING.STATZ", "STATZ"),
    ("$SYS.REQ.SERVER.PING.CONNZ", "CONNZ"),
)
# nats-server's default response threshold of a streamed service export.
IMPORT_RESPONSES_S = 120.0

CONNECT_EVENT_TYPE = "io.nats.server.advisory.v1.client_connect"
DISCONNECT_EVENT_TYPE = "io.nats.server.advisory.v1.client_disconnect"
# ServerInfo.flags: the JetStream capability.
FLAG_JETSTREAM = 1

# The monitoring endpoint behind each `$SYS.REQ.SERVER.<...>.<NAME>`.
ENDPOINTS = {
    "VARZ": "varz",
    "CONNZ": "connz",
    "SUBSZ": "subsz",
    "ROUTEZ": "routez",
    "GATEWAYZ": "gatewayz",
    "LEAFZ": "leafz",
    "JSZ": "jsz",
    "HEALTHZ": "healthz",
    "ACCOUNTZ": "accountz",
}

# Request option names (JSON) -> the monitoring query parameter they stand for.
OPTION_QUERY_NAMES = {
    "subscriptions": "subs",
    "subscriptions_detail": "subs",
    "subs": "subs",
    "test": "test",
    "accounts": "accounts",
    "streams": "streams",
    "consumers": "consumers",
    "config": "config",
    "account": "acc",
    "acc": "acc",
    "sort": "sort",
    "auth": "auth",
    "offset": "offset",
    "limit": "limit",
    "cid": "cid",
    "state": "state",
    "user": "user",
    "unused": "unused",
    "include_unused": "unused",
    "js-enabled-only": "js-enabled-only",
    "js-server-only": "js-server-only",
    "details": "details",
}
# ConnzOptions.state as nats-server encodes it (ConnOpen, ConnClosed, ConnAll).
CONN_STATES = {0: "open", 1: "closed", 2: "all"}

_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _new_event_id() -> str:
    """A 22-character event id (nats-server uses a NUID)."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(22))


@dataclass
class RemoteServer:
    """Another server heard from on `$SYS`: its last sequence number, and when."""

    seq: int
    last_seen: float  # loop time


@dataclass
class ImportedRequest:
    """An account's request sent on into the system account: where its answers go."""

    client: InternalClient  # publishes in the requester's account
    reply: bytes
    deadline: float  # loop time


class SystemServices:
    """The internal clients, subscriptions and timers behind the system account."""

    def __init__(self, server: Server, account: Account) -> None:
        self.server = server
        self.account = account
        self.client = InternalClient(server, account, "$SYS")
        self.seq = 1
        # False after the LAMEDUCK or SHUTDOWN event: nothing else is sent.
        self.is_sending = True
        self.remote_servers: dict[str, RemoteServer] = {}
        self.account_conns: AccountConnections | None = None
        self._statsz: StatszSchedule | None = None
        self._statsz_sub: Subscription | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._account_clients: dict[str, InternalClient] = {}
        # Clients refused for the account connection limit: no events for them.
        self._refused: set[int] = set()
        # Requests imported from other accounts, by the token of their reply subject (in the
        # order they were made, which is the order they expire in).
        self._imported: dict[str, ImportedRequest] = {}
        self._inbox_prefix = ""
        # What the clients that are gone received and sent (STATSZ's `..._clients` totals).
        self._closed_clients: Traffic = (0, 0, 0, 0)
        self.claims: AccountClaimsService | None = None
        self._traced = False  # `trace_verbose`: the clients' traffic traced (trace.py)

    # -- set-up ---------------------------------------------------------------------------

    def set_tracing(self, on: bool) -> None:
        """`trace_verbose` (start-up, reload): trace what the system services subscribe to and
        publish, as nats-server traces its SYSTEM client (trace.TracedInternalClient)."""
        from .trace import trace_system_clients

        self._traced = on
        trace_system_clients(self.client, self._account_clients.values(), on)

    def start(self) -> None:
        server = self.server
        server_id = server.server_id
        loop = server.loop
        if server.options.trace_verbose:
            self.set_tracing(True)
        subscribe = self.client.subscribe
        statsz_request: DeliveryCallback = self._on_statsz_request
        subscribe("$SYS.REQ.SERVER.PING", statsz_request)
        for name in ("STATSZ", *ENDPOINTS, "IDZ"):
            callback: DeliveryCallback
            if name == "STATSZ":
                callback = statsz_request
            elif name == "IDZ":
                callback = self._on_idz
            else:
                callback = self._on_request(self._endpoint(ENDPOINTS[name]))
            subscribe(f"$SYS.REQ.SERVER.PING.{name}", callback)
            subscribe(f"$SYS.REQ.SERVER.{server_id}.{name}", callback)
        subscribe("$SYS.REQ.ACCOUNT.*.*", self._on_account_request)
        self._statsz_sub = subscribe("$SYS.SERVER.*.STATSZ", self._on_remote_statsz)
        subscribe("$SYS.SERVER.*.SHUTDOWN", self._on_remote_shutdown)
        subscribe("$SYS.SERVER.*.LAMEDUCK", self._on_remote_shutdown)
        subscribe(conns_subjects("*")[0], self._on_remote_conns)
        subscribe(conns_reply_subject(server_id), self._on_remote_conns)
        from .server import node_name

        self._inbox_prefix = f"$SYS._INBOX.{node_name(server.server_name)}."
        subscribe(self._inbox_prefix + "*", self._on_imported_answer)

        self.account_conns = AccountConnections(loop, self._send_account_conns)
        for account in server.accounts.values():
            self.add_account(account)
        server.on_client_connect.append(self._client_connected)
        server.on_client_disconnect.append(self._client_disconnected)
        server.on_client_refused.append(self._client_refused)
        if isinstance(server.authenticator, JwtAuthenticator):
            self.claims = AccountClaimsService(self, server.authenticator)
            self.claims.start()
        self._statsz = StatszSchedule(loop, self._broadcast_statsz)
        self._statsz.start()
        self._sweeper = loop.call_later(REMOTE_SERVER_SWEEP_S, self._sweep_remote_servers)

    def add_account(self, account: Account) -> None:
        """Every account can ask `$SYS.REQ.USER.INFO` and ping its own CONNZ/STATZ; an
        account seen for the first time after start-up asks the cluster for its counts."""
        if account.name in self._account_clients:
            return
        client = (
            self.client
            if account is self.account
            else InternalClient(self.server, account, f"$SYS:{account.name}")
        )
        self._account_clients[account.name] = client
        if self._traced:
            self.set_tracing(True)
        # Served where the requester is (nats-server imports them): never announced.
        client.subscribe("$SYS.REQ.USER.INFO", self._on_user_info, local_only=True)
        if account is not self.account:
            for subject, what in ACCOUNT_IMPORTS:
                client.subscribe(subject, self._import(what, account, client), local_only=True)
        if self.account_conns is not None and account is not self.server.global_account:
            self._publish(
                conns_request_subject(account.name),
                {"server": self.server_info(), "acc": account.name},
                reply=conns_reply_subject(self.server.server_id).encode(),
            )

    def enter_lame_duck(self) -> None:
        """LAMEDUCK, then silence (nats-server's send loop ends with that event)."""
        self._send_last(f"$SYS.SERVER.{self.server.server_id}.LAMEDUCK")
        self._stop_timers()

    def stop(self) -> None:
        """SHUTDOWN (unless lame duck mode said goodbye already), then close everything."""
        self._send_last(f"$SYS.SERVER.{self.server.server_id}.SHUTDOWN")
        self._stop_timers()
        for client in {id(c): c for c in [self.client, *self._account_clients.values()]}.values():
            client.close()

    def _send_last(self, subject: str) -> None:
        if self.is_sending:
            info = self.server_info()
            self._publish(subject, info)
            self.is_sending = False

    def _stop_timers(self) -> None:
        if self.claims is not None:
            self.claims.stop()
        if self._statsz is not None:
            self._statsz.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self.account_conns is not None:
            self.account_conns.stop()

    def _endpoint(self, name: str) -> Callable[[Query], Any]:
        server = self.server

        def handler(query: Query) -> Any:
            fn = server.monitor_routes.get(name) or monitor.BUILTIN_ROUTES.get(name)
            if fn is None:
                raise monitor.NotFound(f"{name} not available")
            result = fn(server, query)
            if isinstance(result, monitor.JSONResponse):
                body = dict(result.body)
                body["status_code"] = result.status
                return body
            return result

        return handler

    # -- sending --------------------------------------------------------------------------

    def server_info(self) -> dict[str, Any]:
        """The `server` block of every message: who sends it, and its sequence number."""
        server = self.server
        opts = server.options
        self.seq += 1
        info: dict[str, Any] = {
            "name": server.server_name,
            "host": opts.host,
            "id": server.server_id,
        }
        cluster = self.cluster_name()
        if cluster:
            info["cluster"] = cluster
        if opts.jetstream_domain:
            info["domain"] = opts.jetstream_domain
        info["ver"] = const.NATS_FEATURE_VERSION
        if opts.server_tags:
            info["tags"] = list(opts.server_tags)
        jetstream = bool(opts.jetstream)
        info["jetstream"] = jetstream
        info["flags"] = FLAG_JETSTREAM if jetstream else 0
        info["seq"] = self.seq
        info["time"] = monitor.rfc3339_seconds(time.time())
        return info

    def cluster_name(self) -> str:
        server = self.server
        if server.cluster is not None:
            return server.cluster.name
        if server.gateways is not None:
            return server.gateways.name  # the gateway names the cluster, as in nats-server
        return server.options.cluster.name

    @property
    def active_servers(self) -> int:
        """This server and every server it tracks."""
        return len(self.remote_servers) + 1

    def _publish(
        self,
        subject: str | bytes,
        body: Any,
        client: InternalClient | None = None,
        reply: bytes | None = None,
    ) -> None:
        """Publish `body` as compact JSON (from the system client unless another is given:
        answers to other accounts go out in that account)."""
        if self.is_sending:
            data = json.dumps(body, separators=(",", ":")).encode()
            (client or self.client).publish(subject, data, reply=reply)

    def publish_event(self, subject: str, body: Any) -> None:
        """An event or advisory of the server's own, in the system account (when it has one
        and is sending)."""
        self._publish(subject, body)

    def _answer(
        self,
        reply: bytes | None,
        data: Any,
        key: str = "data",
        client: InternalClient | None = None,
    ) -> None:
        """nats-server's envelope: `{"server": {...}, key: data}`."""
        if reply:
            self._publish(reply, {"server": self.server_info(), key: data}, client)

    def _answer_error(self, reply: bytes | None, text: str) -> None:
        self._answer(reply, {"code": 400, "description": text}, key="error")

    # -- requests -------------------------------------------------------------------------

    def _on_request(self, handler: Callable[[Query], Any], key: str = "data") -> DeliveryCallback:
        def callback(
            sub: Subscription,
            publisher: Publisher,
            subject: bytes,
            reply: bytes | None,
            headers: bytes,
            payload: bytes,
        ) -> None:
            if not reply:
                return
            options = parse_options(payload)
            if options is None:
                self._answer_error(reply, "bad request")
                return
            if not self._filter_matches(options):
                return
            try:
                data = handler(query_from_options(options))
            except (monitor.BadRequest, monitor.NotFound) as e:
                self._answer_error(reply, str(e))
                return
            self._answer(reply, data, key)

        return callback

    def _on_statsz_request(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        """`$SYS.REQ.SERVER.PING[.STATSZ]`: the stats to the reply subject, or without one,
        a broadcast on our STATSZ subject right away."""
        options = parse_options(payload)
        if options is None:
            self._answer_error(reply or self._statsz_subject().encode(), "bad request")
            return
        if not self._filter_matches(options):
            return
        if reply:
            self._answer(reply, self._stats(), key="statsz")
        elif self._statsz is not None:
            self._statsz.reset_limit()
            self._statsz.send_now()

    def _filter_matches(self, options: dict[str, Any]) -> bool:
        """nats-server's EventFilterOptions (names, hosts and clusters match as substrings)."""
        server = self.server
        name = options.get("server_name")
        if name and str(name) not in server.server_name:
            return False
        host = options.get("host")
        if host and str(host) not in server.options.host:
            return False
        cluster = options.get("cluster")
        if cluster and str(cluster) not in self.cluster_name():
            return False
        tags = options.get("tags")
        if tags and not all(str(t) in server.options.server_tags for t in tags):
            return False
        domain = options.get("domain")
        return not (domain and domain != server.options.jetstream_domain)

    def _on_idz(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        if reply:
            server = self.server
            ids = {"name": server.server_name, "host": server.options.host, "id": server.server_id}
            self._publish(reply, ids)

    def _on_user_info(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        if not reply:
            return
        data: dict[str, Any] = {
            "user": getattr(publisher, "user", "") or "",
            "account": publisher.account.name,
            "account_name": publisher.account.name,
        }
        perms = getattr(publisher, "perms", None)
        if perms is not None:
            data["permissions"] = perms.as_json()
        self._answer(reply, data, client=self._account_clients.get(publisher.account.name))

    def _import(self, what: str, account: Account, client: InternalClient) -> DeliveryCallback:
        """An account's ping of its own CONNZ/STATZ becomes `$SYS.REQ.ACCOUNT.<acc>.<what>` in
        the system account, which every server answers; the answers go back to the asker."""
        subject = f"$SYS.REQ.ACCOUNT.{account.name}.{what}"

        def callback(
            sub: Subscription,
            publisher: Publisher,
            subj: bytes,
            reply: bytes | None,
            headers: bytes,
            payload: bytes,
        ) -> None:
            if not reply or not self.is_sending:
                return
            now = self.server.loop.time()
            self._expire_imported(now)
            token = _new_event_id()
            self._imported[token] = ImportedRequest(client, reply, now + IMPORT_RESPONSES_S)
            self.client.publish(subject, payload, reply=self._inbox_prefix + token, headers=headers)

        return callback

    def _expire_imported(self, now: float) -> None:
        while self._imported:
            token, first = next(iter(self._imported.items()))
            if first.deadline > now:
                return
            del self._imported[token]

    def _on_imported_answer(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        token = subject.decode(errors="replace").rsplit(".", 1)[-1]
        request = self._imported.get(token)
        if request is not None and request.deadline > self.server.loop.time():
            request.client.publish(request.reply, payload, reply=reply, headers=headers)

    def _on_account_request(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        """`$SYS.REQ.ACCOUNT.<acc>.<X>` (and `$SYS.REQ.ACCOUNT.PING.STATZ`)."""
        parts = subject.decode().split(".")
        if not reply or len(parts) != 5:
            return
        name, what = parts[3], parts[4]
        options = parse_options(payload)
        if what == "CONNS":
            self._on_conns_request(name, reply, options)
            return
        if options is None:
            self._answer_error(reply, "bad request")
            return
        if not self._filter_matches(options):
            return
        if name == "PING" and what == "STATZ":
            data = self._account_statz(list(self.server.accounts.values()), options)
            if data is not None:
                self._answer(reply, data)
            return
        # `PING` is an account name for everything else (nats-server's system account
        # user pinging CONNZ gets an account "PING" that does not exist: empty pages)
        account = self.server.accounts.get(name)
        if account is None:
            self._answer_unknown_account(what, name, reply, options)
            return
        data = self._account_data(what, account, options)
        if data is not None:
            self._answer(reply, data)

    def _answer_unknown_account(
        self, what: str, name: str, reply: bytes, options: dict[str, Any]
    ) -> None:
        """What nats-server answers about an account it does not have: the monitoring
        pages filtered by it (empty), an error for its details, nothing for its stats."""
        query = query_from_options(options)
        query["acc"] = name
        if what == "CONNZ":
            self._answer(reply, monitor.connz(self.server, query))
        elif what == "SUBSZ":
            query["subs"] = query.get("subs") or "true"
            self._answer(reply, monitor.subsz(self.server, query))
        elif what == "LEAFZ":
            self._answer(reply, monitor.leafz(self.server, query))
        elif what == "INFO":
            self._answer_failure(reply, f"Account {name} does not exist")
        elif what == "JSZ":
            if self.server.monitor_routes.get("jsz") is None:
                self._answer_failure(reply, "jetstream not enabled")
            else:
                self._answer_failure(reply, f'account "{name}" not found')

    def _answer_failure(self, reply: bytes, text: str) -> None:
        """nats-server's envelope of a request it could not serve: `data` null, error 500."""
        error = {"code": 500, "description": text}
        self._publish(reply, {"server": self.server_info(), "data": None, "error": error})

    def _account_data(self, what: str, account: Account, options: dict[str, Any]) -> Any:
        query = query_from_options(options)
        if what == "CONNZ":
            query["acc"] = account.name
            return monitor.connz(self.server, query)
        if what == "STATZ":
            return self._account_statz([account], options)
        if what == "SUBSZ":
            query["acc"] = account.name
            query["subs"] = query.get("subs") or "true"
            return monitor.subsz(self.server, query)
        if what == "INFO":
            return monitor.account_detail(self.server, account)
        if what == "LEAFZ":
            query["acc"] = account.name
            return monitor.leafz(self.server, query)
        if what == "JSZ":
            fn = self.server.monitor_routes.get("jsz")
            if fn is None:
                return None
            query["acc"] = account.name
            return fn(self.server, query)
        return None

    def _account_statz(self, accounts: list[Account], options: dict[str, Any]) -> Any:
        """AccountStatz; nothing (no answer) when no account has clients here, unless unused
        accounts are asked for."""
        unused = bool(options.get("include_unused") or options.get("unused"))
        stats = [monitor.account_stat(a) for a in accounts if unused or a.clients]
        if not stats:
            return None
        return {
            "server_id": self.server.server_id,
            "now": monitor.rfc3339_seconds(time.time()),
            "account_statz": stats,
        }

    # -- STATSZ ---------------------------------------------------------------------------

    def _statsz_subject(self) -> str:
        return f"$SYS.SERVER.{self.server.server_id}.STATSZ"

    def _stats(self) -> dict[str, Any]:
        return server_stats(self.server, self.active_servers, self._closed_clients)

    def _broadcast_statsz(self) -> None:
        """Our STATSZ: always in a cluster, else only when someone listens."""
        subject = self._statsz_subject()
        if self.server.cluster is None and not self._has_listeners(subject.encode()):
            return
        self._publish(subject, {"server": self.server_info(), "statsz": self._stats()})

    def _has_listeners(self, subject: bytes) -> bool:
        result = self.account.sublist.match(subject)
        if result.qsubs or result.links:
            return True
        return any(sub is not self._statsz_sub for sub in result.psubs)

    # -- other servers --------------------------------------------------------------------

    def _track(self, info: Any) -> None:
        """A message from another server: note it, and answer a newcomer with our STATSZ."""
        if not isinstance(info, dict):
            return
        server_id = str(info.get("id") or "")
        if not server_id or server_id == self.server.server_id:
            return
        seq = info.get("seq")
        seq = seq if isinstance(seq, int) else 0
        now = self.server.loop.time()
        known = self.remote_servers.get(server_id)
        if known is None:
            self.remote_servers[server_id] = RemoteServer(seq, now)
            if self._statsz is not None:
                self.server.loop.call_soon(self._statsz.send_now)
            return
        if seq <= known.seq:
            self.server.logger.error(
                f"Received out of order remote server update from: {json.dumps(server_id)}"
            )
            return
        known.seq = seq
        known.last_seen = now

    def _forget(self, server_id: str) -> None:
        self.remote_servers.pop(server_id, None)
        if self.account_conns is not None:
            self.account_conns.forget_server(server_id)

    def _sweep_remote_servers(self) -> None:
        """Drop servers silent for too long (gone without a goodbye)."""
        now = self.server.loop.time()
        for server_id, known in list(self.remote_servers.items()):
            if now - known.last_seen > REMOTE_SERVER_ORPHAN_S:
                self.server.logger.debug(f"Detected orphan remote server: {json.dumps(server_id)}")
                self._forget(server_id)
        self._sweeper = self.server.loop.call_later(
            REMOTE_SERVER_SWEEP_S, self._sweep_remote_servers
        )

    def _on_remote_statsz(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        message = _json_object(payload)
        if message is not None:
            self._track(message.get("server"))

    def _on_remote_shutdown(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        """`$SYS.SERVER.<id>.SHUTDOWN|LAMEDUCK`: that server is gone (or going)."""
        if not payload:
            self.server.logger.error(
                "Remote server sent invalid (empty) shutdown message to "
                f"{json.dumps(subject.decode(errors='replace'))}"
            )
            return
        parts = subject.decode(errors="replace").split(".")
        if len(parts) == 4 and parts[2] in self.remote_servers:
            self._forget(parts[2])

    # -- account connections --------------------------------------------------------------

    def _send_account_conns(self, account: Account) -> None:
        """The account's count on both subjects: one event (one id), two sequence numbers."""
        event_id = _new_event_id()
        for subject in conns_subjects(account.name):
            self._publish(subject, self._account_conns_event(account, event_id))

    def _account_conns_event(self, account: Account, event_id: str) -> dict[str, Any]:
        return {
            "type": ACCOUNT_CONNS_EVENT_TYPE,
            "id": event_id,
            "timestamp": monitor.rfc3339_seconds(time.time()),
            "server": self.server_info(),
            **account_stat(account, account_name_tag(self.server, account)),
        }

    def _on_conns_request(self, name: str, reply: bytes, options: dict[str, Any] | None) -> None:
        """Another server started tracking an account: our count, if we have clients of it."""
        if options is not None and options.get("acc", name) != name:
            self.server.logger.error("Error unmarshalled account does not match subject")
            return
        account = self.server.accounts.get(name)
        if account is None or not account.clients:
            return
        self._publish(reply, self._account_conns_event(account, _new_event_id()))

    def _on_remote_conns(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        """Another server's count of an account's clients (an event or an answer)."""
        event = _json_object(payload)
        if event is None or self.account_conns is None:
            return
        info = event.get("server")
        if not isinstance(info, dict) or info.get("id") == self.server.server_id:
            return
        account = self.server.accounts.get(str(event.get("acc") or ""))
        if account is None:
            return  # an account nobody uses here: not tracked
        conns = event.get("conns")
        self.account_conns.record(
            account.name, str(info.get("id") or ""), conns if isinstance(conns, int) else 0
        )
        self._track(info)
        # Decided on this count, as nats-server does (a later one may already say otherwise:
        # every server closing its newest, they may close too many; clients reconnect).
        over = self.account_conns.clients_over_limit(account)
        if over:
            self.server.loop.call_soon(self._close_over_limit, account, over)

    def _close_over_limit(self, account: Account, clients: list[ClientConnection]) -> None:
        """Close our newest clients of an account that was over its limit cluster-wide."""
        for client in clients:
            if client.closed:
                continue
            self.server.logger.error(
                f"{client.trace_label} - {ERR_TOO_MANY_ACCOUNT_CONNECTIONS} - "
                f"Account:{account.name}"
            )
            client.close_with_error(
                ERR_TOO_MANY_ACCOUNT_CONNECTIONS, REASON_MAX_ACCOUNT_CONNECTIONS
            )

    # -- client events --------------------------------------------------------------------

    def _client_connected(self, client: ClientConnection) -> None:
        """A client is in: first the cluster-wide connection limit of its account, then the
        account's new count and the CONNECT event."""
        account = client.account
        if self.account_conns is not None and self.account_conns.would_exceed(account):
            self._refused.add(client.cid)
            self.server.logger.error(
                f"{client.trace_label} - {ERR_TOO_MANY_ACCOUNT_CONNECTIONS} - "
                f"Account:{account.name}"
            )
            raise ProtocolError(ERR_TOO_MANY_ACCOUNT_CONNECTIONS, REASON_MAX_ACCOUNT_CONNECTIONS)
        if not self.is_sending:
            return
        # Every account's clients are events (nats-server 2.12 added $G's), but $G's count
        # is never sent around.
        if self.account_conns is not None and account is not self.server.global_account:
            self.account_conns.local_changed(account)
        self._publish(
            f"$SYS.ACCOUNT.{account.name}.CONNECT",
            {
                "type": CONNECT_EVENT_TYPE,
                "id": _new_event_id(),
                "timestamp": monitor.rfc3339_seconds(time.time()),
                "server": self.server_info(),
                "client": client_event_info(self.server, client),
            },
        )

    def _client_disconnected(self, client: ClientConnection) -> None:
        in_msgs, in_bytes, out_msgs, out_bytes = self._closed_clients
        self._closed_clients = (
            in_msgs + client.in_msgs,
            in_bytes + client.in_bytes,
            out_msgs + client.out_msgs,
            out_bytes + client.out_bytes,
        )
        if client.cid in self._refused:
            self._refused.discard(client.cid)
            return
        account = client.account
        if not self.is_sending:
            return
        if self.account_conns is not None and account is not self.server.global_account:
            self.account_conns.local_changed(account)
        self._publish(f"$SYS.ACCOUNT.{account.name}.DISCONNECT", self._disconnect_event(client))

    def _client_refused(self, client: ClientConnection) -> None:
        """nats-server's sendAuthErrorEvent: a client refused at CONNECT for its credentials,
        as a disconnect event on `$SYS.SERVER.<id>.CLIENT.AUTH.ERR` (`nats events` shows it)."""
        if client.reason != REASON_AUTH:
            return
        event = self._disconnect_event(client)
        user = (client.connect_opts or {}).get("user")
        if user and "user" not in event["client"]:  # the user it claimed to be
            event["client"]["user"] = str(user)
        self._publish(f"$SYS.SERVER.{self.server.server_id}.CLIENT.AUTH.ERR", event)
        # ... and, as nats-server, the disconnect of the account it was in when refused
        self._publish(f"$SYS.ACCOUNT.{client.account.name}.DISCONNECT", event)

    def _disconnect_event(self, client: ClientConnection) -> dict[str, Any]:
        return {
            "type": DISCONNECT_EVENT_TYPE,
            "id": _new_event_id(),
            "timestamp": monitor.rfc3339_seconds(client.stop or time.time()),
            "server": self.server_info(),
            "client": client_event_info(self.server, client, closed=True),
            "sent": {"msgs": client.in_msgs, "bytes": client.in_bytes},
            "received": {"msgs": client.out_msgs, "bytes": client.out_bytes},
            "reason": client.reason,
        }


class AccountClaimsService:
    """Operator mode on `$SYS`: account JWTs pushed, looked up, listed, deleted and synced.

    With FULL and CACHE resolvers these are nats-server's DirAccResolver subjects (see
    resolvers.py for what each request decides); with MEMORY and URL only a push that updates
    an account in use. Whatever the resolver learns, an account in use follows at once: its
    limits change, the clients over a lowered connection limit are closed (newest first), and
    the clients of a deleted account are disconnected."""

    def __init__(self, services: SystemServices, auth: JwtAuthenticator) -> None:
        self.services = services
        self.server = services.server
        self.auth = auth
        self.resolver = auth.resolver
        if auth.links is None:
            AccountLinks(self.server, auth)  # the accounts' JWT exports and imports
        self._timers: list[asyncio.TimerHandle] = []
        self._looking_up: set[str] = set()
        self._inbox = ""

    def start(self) -> None:
        subscribe = self.services.client.subscribe
        for pattern in ACCOUNT_UPDATE_SUBJECTS:
            subscribe(pattern.format("*"), self._on_account_update)
        resolver = self.resolver
        if not isinstance(resolver, DirResolver):
            return
        store = resolver.dir_store
        store.on_change = self._changed
        store.on_delete = self._deleted
        subscribe(UPDATE_SUBJECT, self._on_update)
        subscribe(LIST_SUBJECT, self._on_list)
        subscribe(DELETE_SUBJECT, self._on_delete)
        self._inbox = f"{self.services._inbox_prefix}claims"
        subscribe(self._inbox, self._on_answer)
        if resolver.kind == "FULL":
            subscribe(LOOKUP_SUBJECT.format("*"), self._on_lookup)
            subscribe(PACK_SUBJECT, self._on_pack, queue="responder")
            self._every(resolver.interval, self._send_pack_request)
        self.auth.on_missing_account = self._look_up
        self._every(resolver.expire_check, self._expire)
        self.server.logger.notice(resolver.log_line)

    def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self.auth.on_missing_account = None

    def _every(self, seconds: float, action: Callable[[], None]) -> None:
        loop = self.server.loop

        def tick() -> None:
            self._timers.remove(handle[0])
            action()
            handle[0] = loop.call_later(seconds, tick)
            self._timers.append(handle[0])

        handle = [loop.call_later(seconds, tick)]
        self._timers.append(handle[0])

    # -- answers ----------------------------------------------------------------------------

    def _respond(self, reply: bytes | None, outcome: ClaimsReply) -> None:
        logger = self.server.logger
        if outcome.error:
            logger.error(outcome.log_text)
        else:
            logger.debug(outcome.log_text)
        if reply:
            self.services._publish(reply, {"server": self.services.server_info(), **outcome.body()})

    def _send(self, reply: bytes, data: bytes) -> None:
        if self.services.is_sending:
            self.services.client.publish(reply, data)

    def _is_loaded(self, key: str) -> bool:
        return key in self.server.accounts

    # -- requests ---------------------------------------------------------------------------

    def _on_account_update(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        """`$SYS.REQ.ACCOUNT.<key>.CLAIMS.UPDATE` (and the older `$SYS.ACCOUNT.<key>...`)."""
        tokens = subject.decode(errors="replace").split(".")
        if len(tokens) not in (5, 6):
            return
        key = tokens[3] if len(tokens) == 6 else tokens[2]
        token = payload.decode(errors="replace")
        if isinstance(self.resolver, DirResolver):
            outcome = update_claims(
                self.resolver, self.auth.operator_keys(), token, key, self._is_loaded
            )
        else:
            outcome = update_loaded_account(token, key, self._is_loaded, self._take_jwt)
        self._respond(reply, outcome)

    def _take_jwt(self, key: str, token: str) -> str:
        """MEMORY and URL: a pushed JWT for an account in use; an error text, or ""."""
        claims = self.auth.account_changed(key, token)
        if claims is None:
            return "account JWT not issued by a trusted operator"
        if self.resolver.is_writable:
            self.resolver.store(key, token)
        account = self.server.accounts.get(key)
        if account is not None:
            apply_account_claims(self.server, account, claims)
        return ""

    def _on_update(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        assert isinstance(self.resolver, DirResolver)
        token = payload.decode(errors="replace")
        keys = self.auth.operator_keys()
        self._respond(reply, update_claims(self.resolver, keys, token, None, self._is_loaded))

    def _on_delete(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        assert isinstance(self.resolver, DirResolver)
        system = self.server.system_account
        outcome = delete_claims(
            self.resolver,
            self.auth.operator_keys(),
            payload.decode(errors="replace"),
            system.name if system is not None else "",
        )
        self._respond(reply, outcome)

    def _on_list(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        assert isinstance(self.resolver, DirResolver)
        if not reply:
            return
        keys = [key for key, _ in self.resolver.dir_store.walk()]
        self.server.logger.debug(f"list request responded with {len(keys)} account ids")
        # nats-server marshals a map here: its keys come out sorted
        self.services._publish(reply, {"data": keys, "server": self.services.server_info()})

    def _on_lookup(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        """FULL: our JWT of the account, or an empty answer when we have none."""
        tokens = subject.decode(errors="replace").split(".")
        if not reply or len(tokens) != 6:
            return
        assert isinstance(self.resolver, DirResolver)
        token = self.resolver.dir_store.load(tokens[3])
        if token is None:
            self.server.logger.debug(f'DirResolver - Could not find account "{tokens[3]}"')
        self._send(reply, (token or "").encode())

    def _on_pack(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        """FULL: every JWT we hold, one `<key>|<jwt>` per message and an empty one at the
        end; only the empty one when the asker's hash is ours (nothing to sync)."""
        if not reply:
            return
        assert isinstance(self.resolver, DirResolver)
        store = self.resolver.dir_store
        if payload != store.hash:
            for key, token in store.walk():
                self._send(reply, f"{key}|{token}".encode())
        self._send(reply, b"")

    def _send_pack_request(self) -> None:
        assert isinstance(self.resolver, DirResolver)
        if self.services.is_sending:
            hash_now = self.resolver.dir_store.hash
            self.services.client.publish(PACK_SUBJECT, hash_now, reply=self._inbox.encode())

    def _on_answer(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        """Packs from the other servers, and answers to our lookups: kept where newer."""
        if not payload:
            return
        assert isinstance(self.resolver, DirResolver)
        text = payload.decode(errors="replace")
        try:
            if "|" in text:
                self.resolver.dir_store.merge(text)
            else:
                key = str(decode_account_jwt(text).get("sub") or "")
                self._looking_up.discard(key)
                self.resolver.store(key, text)
        except (StoreError, OSError, JwtError) as e:
            self.server.logger.error(f"Merging resulted in error: {e}")

    def _look_up(self, key: str) -> None:
        """An account we have no JWT of: ask the other servers (their answer is stored for
        the next attempt; this one is refused at once)."""
        if self.server.cluster is None or key in self._looking_up:
            return
        self._looking_up.add(key)
        assert isinstance(self.resolver, DirResolver)
        self.server.loop.call_later(self.resolver.timeout, self._looking_up.discard, key)
        if self.services.is_sending:
            self.services.client.publish(
                LOOKUP_SUBJECT.format(key), b"", reply=self._inbox.encode()
            )

    def _expire(self) -> None:
        assert isinstance(self.resolver, DirResolver)
        for key in self.resolver.dir_store.expire():
            self.server.logger.debug(f"Account {key} expired from the resolver")

    # -- the store changed ------------------------------------------------------------------

    def _changed(self, key: str) -> None:
        account = self.server.accounts.get(key)
        if account is None:
            self.auth.account_deleted(key)
            return
        claims = self.auth.account_changed(key)
        if claims is None:
            self.server.logger.error(f"update resulted in error for account {key}")
            return
        apply_account_claims(self.server, account, claims)

    def _deleted(self, key: str) -> None:
        self.auth.account_deleted(key)
        account = self.server.accounts.get(key)
        if account is None:
            return
        self.server.logger.debug(f"Disable account {key} due to remove")
        account.max_connections = account.max_subscriptions = account.max_payload = 0
        for client in list(account.clients):
            if not client.closed:
                client.close_with_error("Account Authentication Expired", REASON_AUTH_EXPIRED)


def apply_account_claims(server: Server, account: Account, claims: AccountClaims) -> None:
    """An account in use takes new claims: its limits, exports and imports (and those of the
    accounts importing from it); its newest clients over a lowered connection limit are
    closed, and so are the clients whose user JWT it now revokes or whose signing key it no
    longer has (as nats-server does)."""
    links = getattr(server.authenticator, "links", None)
    limits = claims.limits
    account.max_connections = int(limits.get("conn", -1))
    account.max_subscriptions = int(limits.get("subs", -1))
    account.max_payload = int(limits.get("payload", -1))
    clients = sorted(
        (c for c in account.clients if not c.closed), key=lambda c: c.start, reverse=True
    )
    if account.max_connections >= 0 and len(clients) > account.max_connections:
        for client in clients[: len(clients) - account.max_connections]:
            server.logger.error(
                f"{client.trace_label} - {ERR_TOO_MANY_ACCOUNT_CONNECTIONS} - "
                f"Account:{account.name}"
            )
            client.close_with_error(
                ERR_TOO_MANY_ACCOUNT_CONNECTIONS, REASON_MAX_ACCOUNT_CONNECTIONS
            )
    if links is not None:
        links.claims_changed(account)
    for client in clients:
        if not client.closed:
            _recheck_user(server, client, claims)


REASON_REVOKED = "Credentials Revoked"


def _recheck_user(server: Server, client: ClientConnection, claims: AccountClaims) -> None:
    """A connected user against its account's new claims: revoked, bearer no longer
    allowed, signing key gone."""
    token = (client.connect_opts or {}).get("jwt")
    if not isinstance(token, str) or not token:
        return
    try:
        user = decode_jwt(token)
    except JwtError:
        client.close_with_error(ERR_AUTH_VIOLATION, REASON_AUTH)
        return
    nats_claims = user.get("nats") or {}
    if nats_claims.get("bearer_token") and claims.disallow_bearer:
        client.close_with_error(ERR_AUTH_VIOLATION, REASON_AUTH)
        return
    if user_revoked(claims, user):
        server.logger.debug(f"{client.log_prefix} - User Authentication Revoked")
        client.close_with_error("User Authentication Revoked", REASON_REVOKED)
        return
    issuer = user.get("iss", "")
    if issuer != claims.public_key and issuer not in claims.signing_keys:
        client.close_connection(REASON_AUTH)


def parse_options(payload: bytes) -> dict[str, Any] | None:
    if not payload.strip():
        return {}
    return _json_object(payload)


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(payload)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def query_from_options(options: dict[str, Any]) -> Query:
    query: Query = {}
    for key, value in options.items():
        name = OPTION_QUERY_NAMES.get(key)
        if name is None or value in (None, "", False, 0):
            continue
        if key == "subscriptions_detail" and value:
            query["subs"] = "detail"
        elif key == "state" and isinstance(value, int) and not isinstance(value, bool):
            query["state"] = CONN_STATES.get(value, str(value))
        elif isinstance(value, bool):
            query.setdefault(name, "true")
        else:
            query[name] = str(value)
    return query


def account_name_tag(server: Server, account: Account) -> str:
    """The account's name as people know it: its JWT's `name`, else the account name."""
    accounts = getattr(server.authenticator, "accounts", None)
    claims = accounts.get(account.name) if isinstance(accounts, dict) else None
    name = getattr(claims, "name", "")
    return name if isinstance(name, str) and name else account.name


def client_event_info(
    server: Server, client: ClientConnection, *, closed: bool = False
) -> dict[str, Any]:
    """nats-server's ClientInfo in CONNECT/DISCONNECT events (its field order)."""
    info = client.client_info()
    if closed:
        rtt_ns = round(client.rtt * 1_000_000_000)
        if rtt_ns:
            info["rtt"] = rtt_ns
        info["stop"] = monitor.rfc3339_seconds(client.stop or time.time())
    user_jwt = (client.connect_opts or {}).get("jwt")
    if isinstance(user_jwt, str) and user_jwt:
        info["jwt"] = user_jwt
        issuer = _jwt_issuer(user_jwt)
        if issuer:
            info["issuer_key"] = issuer
    info["name_tag"] = account_name_tag(server, client.account)
    info["kind"] = "Client"
    info["client_type"] = "nats"
    return info


def _jwt_issuer(token: str) -> str:
    """The `iss` of a JWT the server already verified (its claims, undecoded)."""
    parts = token.split(".")
    if len(parts) != 3:
        return ""
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return ""
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else ""
