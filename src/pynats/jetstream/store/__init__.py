"""JetStream message storage: one interface, a memory store and a file store.

How the stream and consumer code use it
---------------------------------------

Open a store per stream (the stream owns its config file; the store owns `directory`)::

    from pynats.jetstream.store import FileStore, MemoryStore, StoreConfig, SyncPolicy

    cfg = StoreConfig(name="ORDERS", subjects=["orders.>"], max_msgs_per_subject=5)
    store = FileStore(stream_dir + "/msgs", cfg, SyncPolicy.parse(options.sync_interval))
    store.on_removed = stream.forget_removed     # limits removed these (consumers must know)
    store.on_damage = log_damage                 # a record found damaged on read (log it)

Publish with group commit (all on the event-loop thread; nothing blocks on fsync)::

    seq, ts = store.store_msg(subject, headers, payload, ttl=ttl_ns)   # appended, not yet safe
    store.when_durable(lambda err: reply_ack(seq) if err is None else reply_error(err))

`store_msg` returns at once. `when_durable` fires once every record appended before the call
is durable: after the covering fsync in the default `group` mode (one fsync in a worker
thread covers every record that arrived while the previous one ran), after the OS has the
bytes in `interval` (lazy) mode, immediately after the inline fsync in `always` mode. Call it
once per batch of acks (e.g. per inbound chunk) rather than per message when you can; the
callbacks fire in order, on the loop thread. The memory store fires it at once.

Reads: `load_msg(seq)`, `load_last(filter)`, `load_next(filter, start_seq)` (filters are NATS
subjects with `*`/`>`), `seq_for_time(ts_ns)`. They raise `MessageNotFound`; a record that
fails its checksum raises `DamagedMessage` (a subclass) and is then treated as a start-up scan
treats damage: reported in `damage()`, listed in `state().lost`, out of the counts and the
subject index, told to `on_removed` (reason `DAMAGED`) and, once, to `on_damage` (the owner
logs it; what the scan found at start-up is only in `damage()`). Good records pay nothing.

Deletes and purges: `remove_msg(seq, erase=False)`, `purge(subject=None, seq=None,
keep=None)` (the JS purge request), `compact(seq)`, `skip_msg()`. Their durability is also
signalled through `when_durable` (call it before answering MSG.DELETE / PURGE).

State: `state(deleted_details)` -> `StreamState`, `subjects_state(filter)`,
`subject_state(subject)` -> (first, last, count) in O(1), `num_pending(start_seq, filter,
last_per_subject)`, and the cheap properties `msgs`, `bytes`, `first_seq`, `last_seq`.

Limits: `max_msgs`, `max_bytes`, `max_msgs_per_subject` are applied inside `store_msg`
(discard old removes and reports through `on_removed`; discard new raises a
`StoreLimitError` whose text is nats-server's). `max_age` and per-message TTLs are driven by
the stream: arm a timer for `next_expiry()` and call `expire(now_ns)`, which returns the
`Removal`s (seq, subject, reason, was_last_on_subject: for subject delete markers). A message
with a TTL is governed by its TTL, not by max_age; `TTL_NEVER` exempts it from both.

Lifecycle: `update_config(cfg)`, `stop()` (fsyncs, writes the index snapshot), `delete()`.

Consumers: `ConsumerStore` keeps delivered/ack-floor/pending/redelivered state with the same
durability rules (`when_durable` before confirming an AckSync). Configs and other metadata:
`write_durable(path, bytes)` (temp file, fsync, rename, fsync directory).

Byte accounting follows nats-server: memory `subject+headers+data+16`; file `subject+data+30`
or `subject+headers+data+34` with headers.

Modules: base (contract), subjects (filters), index (sequence/subject index), indexed (logic
shared by both stores), memory, file, segment, records (on-disk record), snapshot (index
snapshot), durability (sync policy, group commit), fileio (the only door to the disk),
metadata (durable config files and directories), consumer (consumer state), crypt
(encryption at rest: `EncryptedFileIO` wraps a FileIO; pass it as `fileio=`). The power-loss
harness that records a `FileIO` and rebuilds the disk a cut leaves is test code:
`tests/support/powerloss.py`.
"""

from .base import (
    TTL_NEVER,
    UNLIMITED,
    Damage,
    DamagedMessage,
    DiscardPolicy,
    MaxBytesExceeded,
    MaxMsgsExceeded,
    MaxMsgsPerSubjectExceeded,
    MessageNotFound,
    MessageStore,
    MsgTooLarge,
    Removal,
    RemovalReason,
    StorageType,
    StoreClosed,
    StoreConfig,
    StoredMessage,
    StoreError,
    StoreLimitError,
    StreamState,
)
from .consumer import ConsumerState, ConsumerStore, Pending, SequencePair
from .durability import SyncMode, SyncPolicy
from .file import FileStore
from .fileio import DEFAULT_FILEIO, FileIO
from .memory import MemoryStore
from .metadata import (
    cleanup_deleting,
    read_file,
    remove_durable,
    remove_tree_durable,
    write_durable,
)

__all__ = [
    "DEFAULT_FILEIO",
    "TTL_NEVER",
    "UNLIMITED",
    "ConsumerState",
    "ConsumerStore",
    "Damage",
    "DamagedMessage",
    "DiscardPolicy",
    "FileIO",
    "FileStore",
    "MaxBytesExceeded",
    "MaxMsgsExceeded",
    "MaxMsgsPerSubjectExceeded",
    "MemoryStore",
    "MessageNotFound",
    "MessageStore",
    "MsgTooLarge",
    "Pending",
    "Removal",
    "RemovalReason",
    "SequencePair",
    "StorageType",
    "StoreClosed",
    "StoreConfig",
    "StoreError",
    "StoreLimitError",
    "StoredMessage",
    "StreamState",
    "SyncMode",
    "SyncPolicy",
    "cleanup_deleting",
    "read_file",
    "remove_durable",
    "remove_tree_durable",
    "write_durable",
]
