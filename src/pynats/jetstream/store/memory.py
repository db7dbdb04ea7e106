"""The memory store: messages in a dict, everything else shared with the file store.

Nothing here is durable across restarts; `when_durable` fires at once.

A message is kept as a plain tuple and becomes a `StoredMessage` when read: CPython's cyclic
garbage collector stops tracking an exact tuple of strings, ints and bytes after it has
seen it once, but never a tuple subclass (a NamedTuple), so a million stored
`StoredMessage`s were walked by every full collection (14% of a memory-stream publish).
"""

from __future__ import annotations

from typing import Final

from .base import DurableCallback, StoreConfig, StoredMessage, memory_msg_size
from .indexed import IndexedStore

_new_tuple: Final = tuple.__new__  # a StoredMessage from a plain tuple of its fields, unchecked


class MemoryStore(IndexedStore):
    def __init__(self, config: StoreConfig) -> None:
        super().__init__(config, with_locations=False)
        self._messages: dict[int, tuple[str, int, int, bytes | None, bytes]] = {}

    def _msg_size(self, subject: str, headers: bytes | None, data: bytes) -> int:
        return memory_msg_size(subject, headers, data)

    def _persist_msg(
        self, seq: int, subject: str, headers: bytes | None, data: bytes, ts: int, ttl: int
    ) -> tuple[int, int]:
        self._messages[seq] = (subject, seq, ts, headers or None, data)
        return 0, 0

    def _fetch(self, seq: int) -> StoredMessage:
        return _new_tuple(StoredMessage, self._messages[seq])

    def _persist_removals(self, seqs: list[int], erase: bool) -> None:
        messages = self._messages
        for seq in seqs:
            messages.pop(seq, None)

    def _persist_first(self, first_seq: int) -> None:
        messages = self._messages
        if not self._index.msgs:
            messages.clear()
            return
        for seq in [s for s in messages if s < first_seq]:
            del messages[seq]

    def _persist_skip(self, seq: int) -> None:
        pass

    def when_durable(self, callback: DurableCallback) -> None:
        callback(None)

    def flush(self) -> None:
        pass

    def stop(self) -> None:
        self._closed = True

    def delete(self) -> None:
        self._closed = True
        self._messages.clear()
        self._index.reset(self._index.last_seq + 1)
