"""The contract every message store keeps: configuration, values, errors and the protocol.

Sequences start at 1 (or `StoreConfig.first_seq`) and are never reused. Everything here is
called from the event-loop thread; a store never blocks it on fsync (see `durability.py`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

UNLIMITED = -1

# nats-server's per-message accounting overheads, used for `bytes` and `max_bytes`.
MEMORY_MSG_OVERHEAD = 16
FILE_MSG_OVERHEAD = 30
FILE_MSG_HEADERS_OVERHEAD = 4  # extra when the message has headers (the header length field)

TTL_NEVER = -1  # per-message TTL meaning "never expire, not even by max_age"


class StorageType(enum.StrEnum):
    FILE = "file"
    MEMORY = "memory"


class DiscardPolicy(enum.StrEnum):
    OLD = "old"
    NEW = "new"


@dataclass
class StoreConfig:
    """The part of a stream's configuration that the store enforces.

    Limits use `UNLIMITED` (-1) for "no limit"; `max_age` is in nanoseconds, 0 = unlimited.
    """

    name: str
    storage: StorageType = StorageType.FILE
    subjects: list[str] = field(default_factory=list)
    max_msgs: int = UNLIMITED
    max_bytes: int = UNLIMITED
    max_age: int = 0
    max_msg_size: int = UNLIMITED
    max_msgs_per_subject: int = UNLIMITED
    discard: DiscardPolicy = DiscardPolicy.OLD
    discard_new_per_subject: bool = False
    first_seq: int = 1
    allow_msg_ttl: bool = False
    subject_delete_marker_ttl: int = 0


class StoredMessage(NamedTuple):
    """One message as stored. `headers` is the full `NATS/1.0` block or None."""

    subject: str
    seq: int
    ts_ns: int
    headers: bytes | None
    data: bytes


@dataclass
class StreamState:
    """What `$JS.API.STREAM.INFO` reports about the stored messages.

    Invariant: `msgs == 0` implies `first_seq == last_seq + 1`; `num_deleted` counts the
    interior gaps between `first_seq` and `last_seq` (damaged records included).
    """

    msgs: int = 0
    bytes: int = 0
    first_seq: int = 0
    first_ts: int = 0
    last_seq: int = 0
    last_ts: int = 0
    num_deleted: int = 0
    deleted: list[int] | None = None
    num_subjects: int = 0
    lost: list[int] = field(default_factory=list)
    lost_bytes: int = 0


class RemovalReason(enum.StrEnum):
    MAX_MSGS = "max_msgs"
    MAX_BYTES = "max_bytes"
    MAX_AGE = "max_age"
    MAX_MSGS_PER_SUBJECT = "max_msgs_per_subject"
    TTL = "ttl"
    DAMAGED = "damaged"  # its record failed its checksum when read: listed in `lost`


class Removal(NamedTuple):
    """A message the store removed on its own (a limit, or its record found damaged on read),
    so consumers can forget it.

    `was_last_on_subject` lets the stream decide on a subject delete marker.
    """

    seq: int
    subject: str
    reason: RemovalReason
    was_last_on_subject: bool


RemovalListener = Callable[[Sequence[Removal]], None]


@dataclass(frozen=True)
class Damage:
    """A stretch of a store file that failed its checksum or is missing.

    `seqs` are the sequences known or presumed lost there (may be empty when unknown). The
    damaged bytes are never served and never deleted: an operator can inspect them.
    """

    file: str
    offset: int
    length: int
    reason: str
    seqs: tuple[int, ...] = ()
    found_at: str = "startup"  # or "read"

    def to_json(self) -> dict:
        return {
            "file": self.file,
            "offset": self.offset,
            "length": self.length,
            "reason": self.reason,
            "seqs": list(self.seqs),
            "found_at": self.found_at,
        }


DamageListener = Callable[[Damage], None]
"""Told once of each record found damaged on read (the owner logs it); what the start-up scan
finds is only in `damage()`, which the owner reads once the store is open."""


class StoreError(Exception):
    """Base of the store's errors."""


class MessageNotFound(StoreError, LookupError):
    """No (intact) message at that sequence / for that filter."""


class DamagedMessage(MessageNotFound):
    """The record exists but failed its checksum: it is reported and never served."""


class StoreLimitError(StoreError):
    """`discard: new` refused a message. The text is nats-server's (10077 description)."""


class MaxMsgsExceeded(StoreLimitError):
    def __init__(self) -> None:
        super().__init__("maximum messages exceeded")


class MaxBytesExceeded(StoreLimitError):
    def __init__(self) -> None:
        super().__init__("maximum bytes exceeded")


class MaxMsgsPerSubjectExceeded(StoreLimitError):
    def __init__(self) -> None:
        super().__init__("maximum messages per subject exceeded")


class MsgTooLarge(StoreLimitError):
    def __init__(self) -> None:
        super().__init__("message size exceeds maximum allowed")


class StoreClosed(StoreError):
    """The store was stopped or deleted."""


def memory_msg_size(subject: str, headers: bytes | None, data: bytes) -> int:
    """Accounting size of a message in a memory store (nats-server's formula)."""
    return len(subject) + (len(headers) if headers else 0) + len(data) + MEMORY_MSG_OVERHEAD


def file_msg_size(subject_len: int, headers_len: int, data_len: int) -> int:
    """Accounting size of a message in a file store (nats-server's formula)."""
    if headers_len:
        return subject_len + headers_len + data_len + FILE_MSG_OVERHEAD + FILE_MSG_HEADERS_OVERHEAD
    return subject_len + data_len + FILE_MSG_OVERHEAD


DurableCallback = Callable[[BaseException | None], None]
"""Told `None` once everything stored before it is durable, or the error that made it unsafe."""


class MessageStore(Protocol):
    """What a stream asks of its store. See the package docstring for the usage rules."""

    config: StoreConfig
    on_removed: RemovalListener | None
    on_damage: DamageListener | None

    def store_msg(
        self, subject: str, headers: bytes | None, data: bytes, ttl: int = 0
    ) -> tuple[int, int]: ...
    def store_batch(
        self, msgs: list[tuple[str, bytes | None, bytes, int]]
    ) -> list[tuple[int, int]]: ...
    def store_at(
        self, seq: int, ts: int, subject: str, headers: bytes | None, data: bytes, ttl: int = 0
    ) -> None: ...
    def skip_msg(self) -> int: ...
    def skip_to(self, seq: int) -> None: ...
    def when_durable(self, callback: DurableCallback) -> None: ...
    def load_msg(self, seq: int) -> StoredMessage: ...
    def load_last(self, subject_filter: str) -> StoredMessage: ...
    def load_next(self, subject_filter: str, start_seq: int) -> StoredMessage: ...
    def next_seq(self, subject_filter: str, start_seq: int) -> int: ...
    def seq_for_time(self, ts_ns: int) -> int: ...
    def subject_of(self, seq: int) -> str | None: ...
    def subject_state(self, subject: str) -> tuple[int, int, int]: ...
    def remove_msg(self, seq: int, erase: bool = False) -> bool: ...
    def purge(
        self, subject: str | None = None, seq: int | None = None, keep: int | None = None
    ) -> int: ...
    def compact(self, seq: int) -> int: ...
    def state(self, deleted_details: bool = False) -> StreamState: ...
    def subjects_state(self, subject_filter: str = ">") -> dict[str, int]: ...
    def last_seqs_per_subject(self, subject_filter: str = ">") -> list[int]: ...
    def num_pending(
        self, start_seq: int, subject_filter: str = ">", last_per_subject: bool = False
    ) -> int: ...
    def next_expiry(self) -> int | None: ...
    def expire(self, now_ns: int) -> list[Removal]: ...
    def update_config(self, config: StoreConfig) -> None: ...
    def damage(self) -> list[Damage]: ...
    def stop(self) -> None: ...
    def delete(self) -> None: ...

    # Last: below this point `bytes` names the property, not the builtin.
    @property
    def msgs(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def first_seq(self) -> int: ...
    @property
    def last_seq(self) -> int: ...
