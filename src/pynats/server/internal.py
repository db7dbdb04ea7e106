"""InternalClient: in-process subscribers and publishers (JetStream, the system account).

They use the same routing as socket clients: an internal subscription sits in the account's
Sublist like any other, and an internal publish goes through `route_message`. The difference
is that an internal subscriber is a Python callback, called synchronously while the message is
routed, and an internal publisher has no socket of its own.

Callbacks follow `delivery.DeliveryCallback`; the `publisher` they get is the connection (or
internal client) that sent the message: JetStream uses it to know the account and to answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .delivery import route_message
from .sublist import Subscription

if TYPE_CHECKING:
    from .accounts import Account
    from .delivery import DeliveryCallback
    from .server import Server


class InternalClient:
    """A named in-process client bound to one account."""

    kind = "Internal"
    is_link = False

    def __init__(self, server: Server, account: Account, name: str) -> None:
        self.server = server
        self.account = account
        self.name = name
        self.echo = True
        self.no_responders = False
        self.headers = True
        self.closed = False
        self.cid = 0
        self.subs: dict[bytes, Subscription] = {}
        self._next_sid = 0
        self.in_msgs = 0
        self.in_bytes = 0
        self.out_msgs = 0
        self.out_bytes = 0
        self.out: list[bytes] = []
        self.flush_queued = False

    def subscribe(
        self,
        subject: str | bytes,
        callback: DeliveryCallback,
        queue: str | bytes | None = None,
        *,
        local_only: bool = False,
    ) -> Subscription:
        """`local_only`: interest this server keeps to itself (see Subscription.local_only)."""
        subj = subject.encode() if isinstance(subject, str) else subject
        q = queue.encode() if isinstance(queue, str) else queue
        self._next_sid += 1
        sid = str(self._next_sid).encode()
        sub = Subscription(self, subj, q, sid, callback=callback)
        sub.local_only = local_only
        self.subs[sid] = sub
        self.account.sublist.insert(sub)
        self.account.internal_subs += 1
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.remove_subscription(sub)

    def remove_subscription(self, sub: Subscription) -> None:
        if self.subs.get(sub.sid) is sub:
            del self.subs[sub.sid]
        if self.account.sublist.remove(sub):
            self.account.internal_subs -= 1

    def publish(
        self,
        subject: str | bytes,
        payload: bytes = b"",
        reply: str | bytes | None = None,
        headers: bytes = b"",
    ) -> int:
        """Route a message from inside the server; returns how many received it."""
        subj = subject.encode() if isinstance(subject, str) else subject
        rep = reply.encode() if isinstance(reply, str) else reply
        self.out_msgs += 1
        self.out_bytes += len(payload)
        delivered = route_message(
            self,
            self.account,
            subj,
            rep or None,
            len(headers),
            headers + payload if headers else payload,
        )
        self.server.flush_soon()
        return delivered

    def close(self) -> None:
        for sub in list(self.subs.values()):
            if self.account.sublist.remove(sub):
                self.account.internal_subs -= 1
        self.subs.clear()
        self.closed = True
