"""Delivering a stored message to a consumer's deliver subject (or a pull request's inbox).

A consumer routes to the deliver subject but the message keeps its stored subject in the
MSG/HMSG line, and the reply is the `$JS.ACK...` subject. `route_message` writes the routed
subject into the frame, so deliveries go through this small twin of it: the same sublist
lookup (cached per literal subject), one random member per queue group, socket receivers
framed by the core's `deliver_to_client`, internal subscribers called with the stored subject.
Nothing here allocates per message beyond the frame itself.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from pynats.server.client import deliver_to_client
from pynats.server.sublist import EMPTY_RESULT

if TYPE_CHECKING:
    from pynats.server.accounts import Account
    from pynats.server.sublist import Subscription


def has_interest(account: Account, subject: bytes) -> bool:
    sublist = account.sublist
    result = sublist.cache.get(subject)
    if result is None:
        result = sublist.match(subject)
    return result is not EMPTY_RESULT


def deliver(
    publisher: Any,
    account: Account,
    to: bytes,
    subject: bytes,
    reply: bytes | None,
    headers: bytes,
    payload: bytes,
) -> int:
    """Send one message to everyone interested in `to`, framed with `subject`; returns how
    many received it (queue groups count once)."""
    sublist = account.sublist
    result = sublist.cache.get(to)
    if result is None:
        result = sublist.match(to)
    if result is EMPTY_RESULT:
        return 0
    plain, groups, _ = result
    delivered = 0
    for sub in plain:
        _deliver_one(sub, publisher, subject, reply, headers, payload)
        delivered += 1
    for group in groups:
        sub = group[int(random.random() * len(group))] if len(group) > 1 else group[0]
        _deliver_one(sub, publisher, subject, reply, headers, payload)
        delivered += 1
    return delivered


def _deliver_one(
    sub: Subscription,
    publisher: Any,
    subject: bytes,
    reply: bytes | None,
    headers: bytes,
    payload: bytes,
) -> None:
    if sub.callback is not None:
        sub.callback(sub, publisher, subject, reply, headers, payload)
    else:
        deliver_to_client(sub.client, sub, subject, reply, headers, payload)
    sub.delivered += 1
    if sub.max_msgs and sub.delivered >= sub.max_msgs:
        sub.client.remove_subscription(sub)
