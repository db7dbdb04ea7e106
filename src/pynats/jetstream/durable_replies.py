"""Double-ack replies: an ack sent as a request is answered only once it is durable.

The answer is a promise: an ack the client saw confirmed survives a crash. So a reply waits
until both the consumer's ack record and the acked message (which may have been stored in
this very loop iteration) are through their stores' group commits. If either commit failed,
no reply goes out: the client's request times out, as for an ack that never arrived. A
consumer whose state is in memory has nothing to wait for. The replies of one loop
iteration share one wait.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pynats.server.internal import InternalClient

    from .store import ConsumerStore
    from .stream import Stream


class DurableReplies:
    """The double-ack replies of one consumer, held until what they confirm is durable."""

    def __init__(
        self,
        store: ConsumerStore,
        stream: Stream,
        client: InternalClient,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._store = store
        self._stream = stream
        self._client = client
        self._loop = loop
        self._held: list[bytes] = []
        self._scheduled = False

    def add(self, reply: bytes) -> None:
        """Answer `reply` (empty) once this loop iteration's acks are durable."""
        self._held.append(reply)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.release)

    def release(self) -> None:
        """Start the wait for what is held now (at the end of an iteration, or at stop)."""
        self._scheduled = False
        replies, self._held = self._held, []
        if not replies:
            return
        if self._store.directory is None:
            self._send(replies, None)
            return
        # The two group commits run side by side; answer when both are done.
        outcome: list[BaseException | None] = []

        def durable(err: BaseException | None) -> None:
            outcome.append(err)
            if len(outcome) == 2:
                self._send(replies, outcome[0] or outcome[1])

        self._store.when_durable(durable)
        self._stream.store.when_durable(durable)

    def _send(self, replies: list[bytes], err: BaseException | None) -> None:
        if err is not None:
            return
        publish = self._client.publish
        for reply in replies:
            publish(reply, b"")
