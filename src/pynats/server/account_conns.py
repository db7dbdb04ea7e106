"""Account connections across a cluster: an account's connection limit counts every server.

An account JWT's `conn` limit (`Account.max_connections`) is for the whole cluster. Each
server counts its own clients of the account and tells the others, as nats-server 2.15 does
(shapes verified on the wire):

- Whenever an account's local client count changes, and every 30 s while it is not zero, an
  `io.nats.server.advisory.v1.account_connections` event goes out on
  `$SYS.SERVER.ACCOUNT.<acc>.CONNS` (the subject servers listen to) and on
  `$SYS.ACCOUNT.<acc>.SERVER.CONNS` (for everyone else). Never for the global account.
- A server that starts tracking an account (its first client of it) asks the others with
  `$SYS.REQ.ACCOUNT.<acc>.CONNS` (`{"server": {...}, "acc": "<acc>"}`, reply
  `$SYS._INBOX_.<its server id>`); every server with local clients of the account answers
  with its event.
- Each event replaces its server's count for the account; a server's SHUTDOWN or LAMEDUCK
  event (or its silence, see system.py) drops its counts.
- A client that would take the account over its limit is refused (`maximum account active
  connections exceeded`). When a remote count arrives that puts the account over, each
  server closes its newest clients of the account until it is not over: every server does,
  so together they may close too many (clients reconnect), as nats-server does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import monitor

if TYPE_CHECKING:
    import asyncio

    from .accounts import Account
    from .client import ClientConnection

ACCOUNT_CONNS_HEARTBEAT_S = 30.0
ACCOUNT_CONNS_EVENT_TYPE = "io.nats.server.advisory.v1.account_connections"
ERR_TOO_MANY_ACCOUNT_CONNECTIONS = "maximum account active connections exceeded"
REASON_MAX_ACCOUNT_CONNECTIONS = "Maximum Account Connections Exceeded"


def conns_subjects(account: str) -> tuple[str, str]:
    """Where an account's count goes: the subject servers listen to, then the newer one."""
    return f"$SYS.SERVER.ACCOUNT.{account}.CONNS", f"$SYS.ACCOUNT.{account}.SERVER.CONNS"


def conns_request_subject(account: str) -> str:
    return f"$SYS.REQ.ACCOUNT.{account}.CONNS"


def conns_reply_subject(server_id: str) -> str:
    return f"$SYS._INBOX_.{server_id}"


def account_stat(account: Account, name_tag: str) -> dict[str, Any]:
    """nats-server's AccountStat as account events carry it: named by the name tag."""
    stat = monitor.account_stat(account)
    stat["name"] = name_tag
    return stat


class AccountConnections:
    """Other servers' client counts per account, and the heartbeat of our own."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, send_update: Callable[[Account], None]
    ) -> None:
        self._loop = loop
        self._send_update = send_update
        # account name -> server id -> that server's client count
        self._remote: dict[str, dict[str, int]] = {}
        self._heartbeats: dict[str, asyncio.TimerHandle] = {}

    def remote_count(self, account: str) -> int:
        return sum(self._remote.get(account, {}).values())

    def record(self, account: str, server_id: str, conns: int) -> None:
        """A server's latest count for an account (it replaces the previous one)."""
        counts = self._remote.setdefault(account, {})
        if conns > 0:
            counts[server_id] = conns
        else:
            counts.pop(server_id, None)
            if not counts:
                del self._remote[account]

    def forget_server(self, server_id: str) -> None:
        for account in list(self._remote):
            self.record(account, server_id, 0)

    def would_exceed(self, account: Account) -> bool:
        """The account's clients here and elsewhere pass its limit."""
        limit = account.max_connections
        return 0 <= limit < len(account.clients) + self.remote_count(account.name)

    def clients_over_limit(self, account: Account) -> list[ClientConnection]:
        """The newest local clients to close so that the account is within its limit."""
        limit = account.max_connections
        if limit < 0:
            return []
        over = len(account.clients) + self.remote_count(account.name) - limit
        if over <= 0:
            return []
        newest = sorted(account.clients, key=lambda c: c.start, reverse=True)
        return newest[:over]

    def local_changed(self, account: Account) -> None:
        """Announce the account's count now, and every heartbeat while it has clients."""
        timer = self._heartbeats.pop(account.name, None)
        if timer is not None:
            timer.cancel()
        self._send_update(account)
        if account.clients:
            self._heartbeats[account.name] = self._loop.call_later(
                ACCOUNT_CONNS_HEARTBEAT_S, self.local_changed, account
            )

    def stop(self) -> None:
        for timer in self._heartbeats.values():
            timer.cancel()
        self._heartbeats.clear()
