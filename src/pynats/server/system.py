"""The system account: `$SYS.REQ.*` services and `$SYS` events, answered as nats-server does.

This is what `nats server ping|info|list` and `nats account info` talk to. Requests are
answered with the same JSON as the HTTP monitoring endpoints, wrapped in nats-server's
envelope `{"server": {...}, "data": {...}}` (`"statsz"` for the ping). Events go out on
`$SYS.ACCOUNT.<acc>.CONNECT|DISCONNECT`, `$SYS.ACCOUNT.<acc>.SERVER.CONNS` and, periodically,
`$SYS.SERVER.<id>.STATSZ`.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import const, monitor
from .internal import InternalClient
from .monitor import Query
from .sublist import Subscription

if TYPE_CHECKING:
    from .accounts import Account
    from .client import ClientConnection
    from .delivery import DeliveryCallback, Publisher
    from .server import Server

STATSZ_INTERVAL_S = 10.0

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
    "js-enabled-only": "js-enabled-only",
    "js-server-only": "js-server-only",
    "details": "details",
}


def _new_id() -> str:
    return secrets.token_urlsafe(16)[:22]


class SystemServices:
    """The internal clients and timers behind the system account."""

    def __init__(self, server: Server, account: Account) -> None:
        self.server = server
        self.account = account
        self.client = InternalClient(server, account, "$SYS")
        self.seq = 0
        self._statsz_timer: asyncio.TimerHandle | None = None
        self._account_clients: dict[str, InternalClient] = {}

    # -- set-up ---------------------------------------------------------------------------

    def start(self) -> None:
        server_id = self.server.server_id
        for name, handler in self.endpoints().items():
            self.client.subscribe(f"$SYS.REQ.SERVER.PING.{name}", self._on_request(handler))
            self.client.subscribe(f"$SYS.REQ.SERVER.{server_id}.{name}", self._on_request(handler))
        self.client.subscribe("$SYS.REQ.SERVER.PING", self._on_request(self._statsz, key="statsz"))
        self.client.subscribe("$SYS.REQ.SERVER.PING.IDZ", self._on_idz)
        self.client.subscribe("$SYS.REQ.ACCOUNT.*.*", self._on_account_request)
        for account in self.server.accounts.values():
            self.add_account(account)
        self.server.on_client_connect.append(self._client_connected)
        self.server.on_client_disconnect.append(self._client_disconnected)
        self._statsz_timer = self.server.loop.call_later(STATSZ_INTERVAL_S, self._send_statsz)

    def add_account(self, account: Account) -> None:
        """Every account can ask `$SYS.REQ.USER.INFO` and ping its own CONNZ/STATZ."""
        if account.name in self._account_clients:
            return
        client = (
            self.client
            if account is self.account
            else InternalClient(self.server, account, f"$SYS:{account.name}")
        )
        self._account_clients[account.name] = client
        client.subscribe("$SYS.REQ.USER.INFO", self._on_user_info)
        if account is not self.account:
            client.subscribe("$SYS.REQ.ACCOUNT.PING.CONNZ", self._account_ping("CONNZ", account))
            client.subscribe("$SYS.REQ.ACCOUNT.PING.STATZ", self._account_ping("STATZ", account))
            client.subscribe("$SYS.REQ.SERVER.PING.CONNZ", self._account_ping("CONNZ", account))

    def stop(self) -> None:
        if self._statsz_timer is not None:
            self._statsz_timer.cancel()
        for client in {id(c): c for c in [self.client, *self._account_clients.values()]}.values():
            client.close()

    def endpoints(self) -> dict[str, Callable[[Query], Any]]:
        server = self.server

        def route(name: str) -> Callable[[Query], Any]:
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

        names = {
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
        endpoints = {upper: route(lower) for upper, lower in names.items()}
        endpoints["STATSZ"] = self._statsz
        return endpoints

    # -- replies --------------------------------------------------------------------------

    def server_info(self, *, short: bool = False) -> dict[str, Any]:
        server = self.server
        info: dict[str, Any] = {
            "name": server.server_name,
            "host": server.options.host,
            "id": server.server_id,
        }
        if short:
            return info
        self.seq += 1
        info.update(
            {
                "ver": const.NATS_FEATURE_VERSION,
                "jetstream": bool(server.options.jetstream),
                "flags": 0,
                "seq": self.seq,
                "time": monitor.rfc3339_seconds(time.time()),
            }
        )
        return info

    def _publish_json(
        self, reply: bytes | None, body: Any, client: InternalClient | None = None
    ) -> None:
        """Publish `body` as compact JSON (from the system client unless another is given:
        answers to non-system accounts go out in that account)."""
        if reply:
            (client or self.client).publish(reply, json.dumps(body, separators=(",", ":")).encode())

    def _answer(
        self,
        reply: bytes | None,
        data: Any,
        key: str = "data",
        client: InternalClient | None = None,
    ) -> None:
        """nats-server's envelope: `{"server": {...}, key: data}`."""
        self._publish_json(reply, {"server": self.server_info(), key: data}, client)

    def _answer_error(self, reply: bytes | None, text: str) -> None:
        self._answer(reply, {"code": 400, "description": text}, key="error")

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

    def _filter_matches(self, options: dict[str, Any]) -> bool:
        name = options.get("server_name")
        if name and name != self.server.server_name:
            return False
        host = options.get("host")
        if host and host != self.server.options.host:
            return False
        domain = options.get("domain")
        return not (domain and domain != self.server.options.jetstream_domain)

    def _on_idz(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        self._publish_json(reply, self.server_info(short=True))

    # -- user info and account requests ---------------------------------------------------

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

    def _account_ping(self, what: str, account: Account) -> DeliveryCallback:
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
            data = self._account_data(what, account, parse_options(payload) or {})
            self._answer(reply, data, client=self._account_clients.get(account.name))

        return callback

    def _on_account_request(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        parts = subject.decode().split(".")
        if not reply or len(parts) != 5 or parts[3] == "PING":
            return
        account = self.server.accounts.get(parts[3])
        if account is None:
            return
        data = self._account_data(parts[4], account, parse_options(payload) or {})
        if data is not None:
            self._answer(reply, data)

    def _account_data(self, what: str, account: Account, options: dict[str, Any]) -> Any:
        query = query_from_options(options)
        if what == "CONNZ":
            query["acc"] = account.name
            return monitor.connz(self.server, query)
        if what in ("STATZ", "CONNS"):
            return {
                "server_id": self.server.server_id,
                "now": monitor.rfc3339_seconds(time.time()),
                "account_statz": [monitor.account_stat(account)],
            }
        if what == "SUBSZ":
            query["acc"] = account.name
            return monitor.subsz(self.server, query)
        if what == "INFO":
            return monitor.account_detail(self.server, account)
        if what == "JSZ":
            fn = self.server.monitor_routes.get("jsz")
            if fn is None:
                return None
            query["acc"] = account.name
            return fn(self.server, query)
        return None

    def _statsz(self, query: Query) -> dict[str, Any]:
        return statsz(self.server)

    # -- events ---------------------------------------------------------------------------

    def _send_statsz(self) -> None:
        self._statsz_timer = self.server.loop.call_later(STATSZ_INTERVAL_S, self._send_statsz)
        subject = f"$SYS.SERVER.{self.server.server_id}.STATSZ".encode()
        if self.account.sublist.has_interest(subject):
            self._answer(subject, statsz(self.server), key="statsz")

    def _client_connected(self, client: ClientConnection) -> None:
        account = client.account.name
        subject = f"$SYS.ACCOUNT.{account}.CONNECT".encode()
        if self.account.sublist.has_interest(subject):
            event = {
                "type": "io.nats.server.advisory.v1.client_connect",
                "id": _new_id(),
                "timestamp": monitor.rfc3339_seconds(time.time()),
                "server": self.server_info(),
                "client": client_event_info(client),
            }
            self._publish_json(subject, event)
        self._send_account_conns(client.account)

    def _client_disconnected(self, client: ClientConnection) -> None:
        account = client.account.name
        subject = f"$SYS.ACCOUNT.{account}.DISCONNECT".encode()
        if self.account.sublist.has_interest(subject):
            event = {
                "type": "io.nats.server.advisory.v1.client_disconnect",
                "id": _new_id(),
                "timestamp": monitor.rfc3339_seconds(time.time()),
                "server": self.server_info(),
                "client": client_event_info(client, closed=True),
                "sent": {"msgs": client.out_msgs, "bytes": client.out_bytes},
                "received": {"msgs": client.in_msgs, "bytes": client.in_bytes},
                "reason": client.reason,
            }
            self._publish_json(subject, event)
        self._send_account_conns(client.account)

    def _send_account_conns(self, account: Account) -> None:
        subject = f"$SYS.ACCOUNT.{account.name}.SERVER.CONNS".encode()
        if not self.account.sublist.has_interest(subject):
            return
        event = {
            "type": "io.nats.server.advisory.v1.account_connections",
            "id": _new_id(),
            "timestamp": monitor.rfc3339_seconds(time.time()),
            "server": self.server_info(),
            **monitor.account_stat(account),
        }
        self._publish_json(subject, event)


def parse_options(payload: bytes) -> dict[str, Any] | None:
    if not payload.strip():
        return {}
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
        elif isinstance(value, bool):
            query.setdefault(name, "true")
        else:
            query[name] = str(value)
    return query


def statsz(server: Server) -> dict[str, Any]:
    in_msgs, in_bytes, out_msgs, out_bytes = server.totals()
    return {
        "start": monitor.rfc3339_seconds(server.start_time),
        "mem": monitor.rss_bytes(),
        "cores": os.cpu_count() or 1,
        "cpu": monitor.cpu_percent(server),
        "connections": len(server.clients),
        "total_connections": server.total_connections,
        "active_accounts": sum(1 for a in server.accounts.values() if a.clients),
        "subscriptions": server.num_subscriptions(),
        "sent": {"msgs": out_msgs, "bytes": out_bytes},
        "received": {"msgs": in_msgs, "bytes": in_bytes},
        "slow_consumers": server.slow_consumers,
        "active_servers": 1,
    }


def client_event_info(client: ClientConnection, *, closed: bool = False) -> dict[str, Any]:
    info: dict[str, Any] = {
        "start": monitor.rfc3339_seconds(client.start),
        "host": client.host,
        "id": client.cid,
        "acc": client.account.name,
    }
    if client.user:
        info["user"] = client.user
    if client.name:
        info["name"] = client.name
    if client.lang:
        info["lang"] = client.lang
    if client.version:
        info["ver"] = client.version
    if closed:
        info["stop"] = monitor.rfc3339_seconds(client.stop or time.time())
    info["kind"] = "Client"
    info["client_type"] = "nats"
    return info
