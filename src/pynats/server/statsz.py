"""STATSZ: the stats every server publishes on `$SYS.SERVER.<id>.STATSZ`, and when it does.

The message is nats-server's `ServerStatsMsg` (`{"server": {...}, "statsz": {...}}`); it also
answers `$SYS.REQ.SERVER.PING` and `...PING.STATSZ`. Servers learn of each other from it: a
nats-server counts a peer in `active_servers` only once that peer's STATSZ arrived, and
answers a newcomer with its own at once.

When it is broadcast (nats-server 2.15.1, verified on the wire): the interval starts at
250 ms and doubles on every turn up to the 10 s heartbeat, and broadcasts are at least a
second apart (or the current interval, if shorter): a send that comes too soon moves the next
turn to the moment the limit allows it. So: 0.25, 1.25, 3.25, 7.25, 15.25, 25.25 s, ... after
start. A new server discovered, or a `$SYS.REQ.SERVER.PING` without a reply (which lifts the
limit), makes a server broadcast at once. In a cluster the message is always sent; a
standalone server sends it only to listeners.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import monitor

if TYPE_CHECKING:
    import asyncio

    from .routes import RouteConnection
    from .server import Server

STATSZ_FIRST_INTERVAL_S = 0.25
STATSZ_HEARTBEAT_S = 10.0
STATSZ_RATE_LIMIT_S = 1.0

# (in_msgs, in_bytes, out_msgs, out_bytes)
Traffic = tuple[int, int, int, int]


def server_stats(
    server: Server, active_servers: int, closed_clients: Traffic = (0, 0, 0, 0)
) -> dict[str, Any]:
    """The `statsz` body, in nats-server's field order. `sent`/`received` count every kind
    of connection; the `..._clients` ones only clients (`closed_clients`: those gone)."""
    in_msgs, in_bytes, out_msgs, out_bytes = server.totals()
    client_in_msgs, client_in_bytes, client_out_msgs, client_out_bytes = closed_clients
    for c in server.clients.values():
        client_in_msgs += c.in_msgs
        client_in_bytes += c.in_bytes
        client_out_msgs += c.out_msgs
        client_out_bytes += c.out_bytes
    routes = server.cluster.registered_connections() if server.cluster is not None else []
    stats: dict[str, Any] = {
        "start": monitor.rfc3339_seconds(server.start_time),
        "mem": monitor.rss_bytes(),
        "cores": os.cpu_count() or 1,
        "cpu": monitor.cpu_percent(server),
        "connections": len(server.clients),
        "total_connections": server.total_connections,
        "active_accounts": sum(1 for a in server.accounts.values() if a.clients),
        "subscriptions": server.num_subscriptions(),
        "sent": {"msgs": out_msgs, "bytes": out_bytes},
        "sent_to_clients": {"msgs": client_out_msgs, "bytes": client_out_bytes},
        "received": {"msgs": in_msgs, "bytes": in_bytes},
        "received_from_clients": {"msgs": client_in_msgs, "bytes": client_in_bytes},
        "slow_consumers": server.slow_consumers,
    }
    if server.slow_consumers:  # only when there is something to say, as nats-server
        stats["slow_consumer_stats"] = dict(server.slow_consumer_stats)
    if routes:
        stats["routes"] = [route_stat(r) for r in routes]
    if server.gateways is not None:
        from .gateways import gateway_stats

        if gateways := gateway_stats(server.gateways):
            stats["gateways"] = gateways
    stats["active_servers"] = active_servers
    jetstream = _jetstream_stats(server)
    if jetstream:
        stats["jetstream"] = jetstream
    stats["gomaxprocs"] = 1
    return stats


def route_stat(conn: RouteConnection) -> dict[str, Any]:
    """One entry of `statsz.routes` (nats-server's RouteStat)."""
    transport = conn.transport
    stat: dict[str, Any] = {"rid": conn.cid}
    if conn.remote_name:
        stat["name"] = conn.remote_name
    stat["sent"] = {"msgs": conn.out_msgs, "bytes": conn.out_bytes}
    stat["received"] = {"msgs": conn.in_msgs, "bytes": conn.in_bytes}
    stat["pending"] = transport.get_write_buffer_size() if transport is not None else 0
    return stat


def _jetstream_stats(server: Server) -> dict[str, Any]:
    """The /varz `jetstream` section without the store directory (nats-server leaves it out)."""
    varz: dict[str, Any] = {}
    for extend in server.varz_extra:
        extend(varz)
    jetstream = varz.get("jetstream")
    if not isinstance(jetstream, dict) or not jetstream:
        return {}
    config = jetstream.get("config")
    if isinstance(config, dict):
        jetstream["config"] = {k: v for k, v in config.items() if k != "store_dir"}
    return jetstream


class StatszSchedule:
    """When to broadcast STATSZ: the backing-off heartbeat and the one-per-second limit.

    `send` publishes; it is called from the timer and from `send_now`, never more often
    than the limit allows.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        send: Callable[[], None],
        *,
        heartbeat_s: float = STATSZ_HEARTBEAT_S,
    ) -> None:
        self._loop = loop
        self._send = send
        self.heartbeat_s = heartbeat_s
        self.interval_s = STATSZ_FIRST_INTERVAL_S
        self._last_sent = 0.0  # loop time; 0: never (or the limit was reset)
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = False

    def start(self) -> None:
        self._timer = self._loop.call_later(self.interval_s, self._heartbeat)

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _heartbeat(self) -> None:
        if self._stopped:
            return
        self.interval_s = min(self.interval_s * 2, self.heartbeat_s)
        self._timer = self._loop.call_later(self.interval_s, self._heartbeat)
        self.send_now()

    def send_now(self) -> bool:
        """Broadcast unless the last one was too recent (then the heartbeat is moved to the
        moment it is allowed). True when sent."""
        if self._stopped:
            return False
        now = self._loop.time()
        limit = min(STATSZ_RATE_LIMIT_S, self.interval_s)
        if self._last_sent and now - self._last_sent < limit:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(self._last_sent + limit, self._heartbeat)
            return False
        self._last_sent = now
        self._send()
        return True

    def reset_limit(self) -> None:
        """The next `send_now` goes out whatever the limit (a ping asked for it)."""
        self._last_sent = 0.0
