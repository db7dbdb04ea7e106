"""What a user JWT limits beyond permissions, checked as nats-server checks it at CONNECT.

`src`: the networks (CIDRs) a user may connect from; `times` (with `times_location`, an IANA
zone, else the server's local time): the time-of-day windows it may be connected in. A user
connected inside a window is disconnected when it ends, as when its JWT expires. `subs` and
`payload` cap the client's subscriptions and message size together with the account's limits
(the lower of the two; -1 or absent: no limit). `data` (a number of bytes) is carried but not
enforced on a connection, by nats-server either.
"""

from __future__ import annotations

import datetime
import ipaddress
from typing import Any


def source_allowed(limits: dict[str, Any], host: str) -> bool:
    """nats-server's validateSrc: no `src`, or `host` inside one of its networks."""
    src = limits.get("src")
    if isinstance(src, str):  # the older JWTs list them comma-separated
        src = [part.strip() for part in src.split(",") if part.strip()]
    if not src:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    for cidr in src:
        try:
            network = ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            return False
        if ip.version == network.version and ip in network:
            return True
    return False


def _zone(limits: dict[str, Any]) -> datetime.tzinfo | None:
    name = limits.get("times_location")  # the jwt library's Locale; a "locale" key is no claim
    if not name:
        return datetime.datetime.now().astimezone().tzinfo
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _clock(text: Any) -> datetime.time | None:
    try:
        return datetime.time.fromisoformat(str(text))
    except ValueError:
        return None


def connect_window(
    limits: dict[str, Any], now: datetime.datetime | None = None
) -> tuple[bool, float]:
    """nats-server's validateTimes: (may connect now, seconds until the window closes; 0
    without `times`). A window whose start is after its end ends the next day."""
    times = limits.get("times")
    if not times:
        return True, 0.0
    zone = _zone(limits)
    if zone is None:
        return False, 0.0
    now = (now or datetime.datetime.now(datetime.UTC)).astimezone(zone)
    for window in times:
        if not isinstance(window, dict):
            return False, 0.0
        start_clock, end_clock = _clock(window.get("start")), _clock(window.get("end"))
        if start_clock is None or end_clock is None:
            return False, 0.0
        today = now.date()
        start = datetime.datetime.combine(today, start_clock, zone)
        end_day = today + datetime.timedelta(days=1) if start_clock > end_clock else today
        end = datetime.datetime.combine(end_day, end_clock, zone)
        if start < now < end:
            return True, (end - now).total_seconds()
    return False, 0.0


def min_limit(user: int, account: int) -> int:
    """The lower of two limits where -1 is none (nats-server's minLimit)."""
    if user >= 0 and account >= 0:
        return min(user, account)
    return account if account >= 0 else user


def int_limit(limits: dict[str, Any], name: str) -> int:
    value = limits.get(name, -1)
    return value if isinstance(value, int) and not isinstance(value, bool) else -1
