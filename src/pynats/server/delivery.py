"""The delivery contract: who publishes, and how an in-process subscriber is called.

Every message that routing hands to an in-process subscriber (JetStream, `$SYS`, imports,
permission filters) arrives through one call shape, `DeliveryCallback`, whatever kind of
connection published it. `Publisher` is what such a subscriber may rely on about the sender.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .accounts import Account
    from .server import Server
    from .sublist import Subscription


class Publisher(Protocol):
    """Whoever hands a message to routing: a socket connection or an internal client."""

    @property
    def server(self) -> Server: ...

    @property
    def account(self) -> Account: ...

    @property
    def cid(self) -> int: ...

    @property
    def echo(self) -> bool: ...


class DeliveryCallback(Protocol):
    """An in-process subscriber, called synchronously while the message is routed.

    `headers` is the raw header block (`NATS/1.0\\r\\n...\\r\\n\\r\\n`) or b"", `payload` the
    body. The callback must not block: anything slow is queued for later.
    """

    def __call__(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
        /,
    ) -> None: ...
