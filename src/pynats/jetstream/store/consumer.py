"""Durable consumer state: delivered, ack floor, pending acks and redelivery counts.

The state lives in memory; every change is also appended to an operation log, with the
same group commit as the message store: confirm an AckSync (or anything else that must
survive) from `when_durable`. Operations are packed into a batch (33 bytes each, no
per-operation framing; a run of first deliveries or acks on consecutive sequences is one
operation) and each flush seals the batch as one checksummed record
(records.py): a torn batch is dropped whole, and nothing in it was confirmed yet. When the log
grows past `compact_bytes` the whole state is written durably to `state.dat` (generation
g+1) and a fresh log `ops-<g+1>.log` is started; recovery loads `state.dat` and replays the
log of its generation. The same `_apply_*` functions serve live updates and replay, so the
recovered state is the state that was confirmed.

With `directory=None` the store is memory-only (consumers with `mem_storage`).

Semantics (ack floor): `ack_floor.stream_seq` is one below the oldest pending stream
sequence, or `delivered.stream_seq` when nothing is pending.
"""

from __future__ import annotations

import asyncio
import os
import struct
from dataclasses import dataclass, field
from typing import Final, final

from . import records
from .base import Damage, DurableCallback, StoreClosed
from .durability import GroupCommit, SyncPolicy
from .fileio import DEFAULT_FILEIO, FileIO
from .metadata import ensure_dir_durable, remove_tree_durable, write_durable

STATE_NAME: Final = "state.dat"
DEFAULT_COMPACT_BYTES: Final = 1 << 20
_QQ: Final = struct.Struct("<QQ")
_Q: Final = struct.Struct("<Q")
_STATE_HEAD: Final = struct.Struct("<QQQQQQ")
# One operation of a KIND_OPS batch: (op, stream seq, consumer seq, deliveries, ts).
_OP: Final = struct.Struct("<BQQQq")
OP_DELIVERED: Final = 1
OP_ACK: Final = 2
OP_ACK_ALL: Final = 3
OP_DROP: Final = 4
# A run of operations of one kind on consecutive stream sequences, one op for them all:
# `deliveries` holds how many. First deliveries of one pass (consecutive consumer sequences,
# one timestamp) and in-order acks are most of a busy log; a run turns two packed operations
# per message into two per pass.
OP_DELIVERED_RUN: Final = 5
OP_ACK_RUN: Final = 6


@dataclass
class SequencePair:
    consumer_seq: int = 0
    stream_seq: int = 0


@final
class Pending:
    """A pending message's last delivery. A plain class (compiled, a native object with two
    unboxed fields): one is made per delivered message and dropped per ack."""

    __slots__ = ("consumer_seq", "ts_ns")

    def __init__(self, consumer_seq: int, ts_ns: int) -> None:
        self.consumer_seq = consumer_seq
        self.ts_ns = ts_ns

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pending):
            return NotImplemented
        return self.consumer_seq == other.consumer_seq and self.ts_ns == other.ts_ns

    def __repr__(self) -> str:
        return f"Pending(consumer_seq={self.consumer_seq}, ts_ns={self.ts_ns})"


@dataclass
class ConsumerState:
    delivered: SequencePair = field(default_factory=SequencePair)
    ack_floor: SequencePair = field(default_factory=SequencePair)
    pending: dict[int, Pending] = field(default_factory=dict)  # stream seq -> last delivery
    redelivered: dict[int, int] = field(default_factory=dict)  # stream seq -> deliveries - 1

    def copy(self) -> ConsumerState:
        return ConsumerState(
            SequencePair(self.delivered.consumer_seq, self.delivered.stream_seq),
            SequencePair(self.ack_floor.consumer_seq, self.ack_floor.stream_seq),
            dict(self.pending),
            dict(self.redelivered),
        )


def encode_state(state: ConsumerState) -> bytes:
    parts = [
        _STATE_HEAD.pack(
            state.delivered.consumer_seq,
            state.delivered.stream_seq,
            state.ack_floor.consumer_seq,
            state.ack_floor.stream_seq,
            len(state.pending),
            len(state.redelivered),
        )
    ]
    parts.extend(struct.pack("<QQq", s, p.consumer_seq, p.ts_ns) for s, p in state.pending.items())
    parts.extend(_QQ.pack(s, n) for s, n in state.redelivered.items())
    return b"".join(parts)


def decode_state(body: bytes) -> ConsumerState:
    dc, ds, fc, fs, n_pending, n_redelivered = _STATE_HEAD.unpack_from(body)
    pos = _STATE_HEAD.size
    pending = {}
    for _ in range(n_pending):
        s, c, ts = struct.unpack_from("<QQq", body, pos)
        pending[s] = Pending(c, ts)
        pos += 24
    redelivered = {}
    for _ in range(n_redelivered):
        s, n = _QQ.unpack_from(body, pos)
        redelivered[s] = n
        pos += 16
    return ConsumerState(SequencePair(dc, ds), SequencePair(fc, fs), pending, redelivered)


class ConsumerStore:
    def __init__(
        self,
        directory: str | None,
        sync: SyncPolicy | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        fileio: FileIO = DEFAULT_FILEIO,
        compact_bytes: int = DEFAULT_COMPACT_BYTES,
    ) -> None:
        self.directory = os.path.abspath(directory) if directory else None
        self._fileio = fileio
        self._compact_bytes = compact_bytes
        self._state = ConsumerState()
        # pending stream seqs, ascending from `_head`, lazily cleaned: a consumer delivers in
        # stream order, so a first delivery appends and an ack of the oldest moves `_head` on
        # (no heap to sift; a list and an index are native operations compiled)
        self._order: list[int] = []
        self._head = 0
        self._damage: list[Damage] = []
        self._wbuf = bytearray()  # sealed records not yet written
        self._ops = bytearray()  # the open batch of operations
        # the open run (OP_DELIVERED_RUN or OP_ACK_RUN) of `_run_n` operations, not packed yet
        self._run_op = 0
        self._run_n = 0
        self._run_sseq = 0
        self._run_cseq = 0
        self._run_ts = 0
        self._fd = -1
        self._log_size = 0
        self._generation = 0
        self._closed = False
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        self._commit = GroupCommit(
            sync or SyncPolicy(), fileio, self._flush, loop, sync_on_append=False
        )
        if self.directory is not None:
            ensure_dir_durable(self.directory, fileio)
            self._recover()

    # --- reading ----------------------------------------------------------------------------

    @property
    def state(self) -> ConsumerState:
        """The live state (read-only for callers; use `state.copy()` to keep one)."""
        return self._state

    def damage(self) -> list[Damage]:
        return list(self._damage)

    # --- updates ----------------------------------------------------------------------------

    def update_delivered(
        self, consumer_seq: int, stream_seq: int, deliveries: int, ts_ns: int
    ) -> None:
        """A message was (re)delivered; `deliveries` counts this delivery (1 = first).

        `deliveries == 0` records a delivery that needs no ack (AckNone): the ack floor
        follows the delivered position and nothing becomes pending."""
        if self._closed:
            raise StoreClosed("consumer store is closed")
        self._apply_delivered(consumer_seq, stream_seq, deliveries, ts_ns)
        self._op(OP_DELIVERED, stream_seq, consumer_seq, deliveries, ts_ns)

    def update_acks(self, consumer_seq: int, stream_seq: int) -> bool:
        """Ack one message; False when it was not pending (already acked, never delivered)."""
        if self._closed:
            raise StoreClosed("consumer store is closed")
        if stream_seq not in self._state.pending:
            return False
        self._apply_ack(stream_seq)
        self._op(OP_ACK, stream_seq, consumer_seq, 0, 0)
        return True

    def ack_all(self, consumer_seq: int, stream_seq: int) -> list[int]:
        """AckAll: ack every pending message up to `stream_seq`; returns their sequences."""
        self._check_open()
        acked = self._apply_ack_all(consumer_seq, stream_seq)
        self._op(OP_ACK_ALL, stream_seq, consumer_seq, 0, 0)
        return acked

    def drop_pending(self, stream_seq: int) -> bool:
        """Stop tracking `stream_seq` without acking it (max deliveries reached, message
        gone): it leaves the pending set, the ack floor stays where it is."""
        self._check_open()
        if self._state.pending.pop(stream_seq, None) is None:
            return False
        self._op(OP_DROP, stream_seq, 0, 0, 0)
        return True

    def update_state(self, state: ConsumerState) -> None:
        """Replace the whole state (start position, reset, restore)."""
        self._check_open()
        self._apply_state(state.copy())
        self._log(records.KIND_STATE, 0, 0, encode_state(state))

    def when_durable(self, callback: DurableCallback) -> None:
        self._commit.when_durable(callback)

    def sync(self) -> None:
        self._commit.sync_now()

    # --- applying (shared by live updates and replay) ---------------------------------------

    def _apply_delivered(self, cseq: int, sseq: int, deliveries: int, ts: int) -> None:
        st = self._state
        if cseq > st.delivered.consumer_seq:
            st.delivered.consumer_seq = cseq
        if sseq > st.delivered.stream_seq:
            st.delivered.stream_seq = sseq
        if deliveries == 0:
            st.ack_floor = SequencePair(st.delivered.consumer_seq, st.delivered.stream_seq)
            return
        pending = st.pending
        if sseq not in pending:
            order = self._order
            if len(order) > self._head and sseq < order[-1]:  # out of stream order
                self._order = sorted([*order[self._head :], sseq])
                self._head = 0
            else:
                order.append(sseq)
        pending[sseq] = Pending(cseq, ts)
        if deliveries > 1:
            st.redelivered[sseq] = deliveries - 1
        elif st.redelivered:
            st.redelivered.pop(sseq, None)

    def _apply_ack(self, sseq: int) -> None:
        st = self._state
        pending = st.pending
        if sseq not in pending:  # `in` and `del` are native compiled, `pop` a method call
            return
        del pending[sseq]
        if st.redelivered:
            st.redelivered.pop(sseq, None)
        self._advance_floor()

    def _apply_ack_all(self, cseq: int, sseq: int) -> list[int]:
        st = self._state
        acked = [s for s in st.pending if s <= sseq]
        for s in acked:
            del st.pending[s]
            st.redelivered.pop(s, None)
        if sseq > st.ack_floor.stream_seq:
            st.ack_floor = SequencePair(max(cseq, st.ack_floor.consumer_seq), sseq)
        self._advance_floor()
        return acked

    def _apply_state(self, state: ConsumerState) -> None:
        self._state = state
        self._order = sorted(state.pending)
        self._head = 0

    def _advance_floor(self) -> None:
        st, order = self._state, self._order
        pending = st.pending
        head, end = self._head, len(order)
        while head < end and order[head] not in pending:
            head += 1
        if head == end:
            order.clear()
            self._head = 0
            st.ack_floor = SequencePair(st.delivered.consumer_seq, st.delivered.stream_seq)
            return
        if head > 1024 and head * 2 > end:
            del order[:head]
            head = 0
        self._head = head
        oldest = order[head]
        floor_stream = oldest - 1
        floor = st.ack_floor
        if floor_stream > floor.stream_seq:  # moved in place: one per ack, no new object
            floor.consumer_seq = st.pending[oldest].consumer_seq - 1
            floor.stream_seq = floor_stream

    # --- the log ----------------------------------------------------------------------------

    def _op(self, op: int, sseq: int, cseq: int, deliveries: int, ts: int) -> None:
        if self.directory is None:
            return
        n = self._run_n
        if n:
            if self._extends_run(op, sseq, cseq, deliveries, ts, n):
                self._run_n = n + 1
                return
            self._close_run()
        was_empty = not self._ops
        if op == OP_DELIVERED and deliveries == 1:
            self._open_run(OP_DELIVERED_RUN, sseq, cseq, ts)
        elif op == OP_ACK:
            self._open_run(OP_ACK_RUN, sseq, cseq, 0)
        else:
            self._ops += _OP.pack(op, sseq, cseq, deliveries, ts)
        if was_empty:
            self._commit.appended()
        if self._log_size + len(self._wbuf) + len(self._ops) > self._compact_bytes:
            self._compact()

    def _extends_run(self, op: int, sseq: int, cseq: int, deliveries: int, ts: int, n: int) -> bool:
        if sseq != self._run_sseq + n:
            return False
        if op == OP_ACK:
            return self._run_op == OP_ACK_RUN
        return (
            self._run_op == OP_DELIVERED_RUN
            and op == OP_DELIVERED
            and deliveries == 1
            and cseq == self._run_cseq + n
            and ts == self._run_ts
        )

    def _open_run(self, op: int, sseq: int, cseq: int, ts: int) -> None:
        self._run_op = op
        self._run_n = 1
        self._run_sseq = sseq
        self._run_cseq = cseq
        self._run_ts = ts

    def _close_run(self) -> None:
        """Pack the open run (it goes before any later operation: the log keeps their order)."""
        if self._run_n:
            self._ops += _OP.pack(
                self._run_op, self._run_sseq, self._run_cseq, self._run_n, self._run_ts
            )
            self._run_n = 0

    def _seal_ops(self) -> None:
        self._close_run()
        if self._ops:
            ops, self._ops = self._ops, bytearray()
            self._wbuf += records.encode(records.KIND_OPS, len(ops) // _OP.size, data=bytes(ops))

    def _log(self, kind: int, seq: int, ts: int, data: bytes) -> None:
        if self.directory is None:
            return
        self._seal_ops()
        self._wbuf += records.encode(kind, seq, ts, data=data)
        self._commit.appended()
        if self._log_size + len(self._wbuf) > self._compact_bytes:
            self._compact()

    def _flush(self) -> None:
        self._seal_ops()
        if not self._wbuf or self._fd < 0:
            return
        buf, self._wbuf = self._wbuf, bytearray()
        self._fileio.pwrite(self._fd, buf, self._log_size)
        self._log_size += len(buf)
        self._commit.dirty(self._fd)

    def _log_path(self, generation: int) -> str:
        assert self.directory is not None
        return os.path.join(self.directory, f"ops-{generation:010d}.log")

    def _compact(self, keep_old_log: bool = False) -> None:
        """Write the whole state as generation g+1 and switch to an empty log."""
        assert self.directory is not None
        self._commit.sync_now()  # everything confirmed so far is in the old log: keep order
        generation = self._generation + 1
        blob = records.encode(records.KIND_STATE, generation, data=encode_state(self._state))
        write_durable(os.path.join(self.directory, STATE_NAME), blob, self._fileio)
        old_fd, old_path = self._fd, self._log_path(self._generation)
        self._generation = generation
        self._fd = self._fileio.open(self._log_path(generation))
        self._log_size = 0
        self._commit.dirty_dir(self.directory)
        if old_fd >= 0:
            self._commit.retire_fd(old_fd)
            if not keep_old_log and self._fileio.exists(old_path):
                self._fileio.unlink(old_path)

    def _recover(self) -> None:
        assert self.directory is not None
        fileio = self._fileio
        state_path = os.path.join(self.directory, STATE_NAME)
        if fileio.exists(state_path):
            blob = fileio.read_file(state_path)
            try:
                _kind, generation, _ts, _ttl, _h, body = records.decode(blob)
                self._apply_state(decode_state(body))
                self._generation = generation
            except (ValueError, struct.error):
                self._damage.append(Damage(STATE_NAME, 0, len(blob), "consumer state damaged"))
        log_path = self._log_path(self._generation)
        damaged = False
        if fileio.exists(log_path):
            damaged = self._replay(log_path)
        self._fd = fileio.open(log_path)
        self._log_size = fileio.size(self._fd)
        self._commit.dirty_dir(self.directory)
        if damaged:
            self._compact(keep_old_log=True)  # never append after damage; keep it for inspection

    def _replay(self, path: str) -> bool:
        data = self._fileio.read_file(path)
        damaged = False
        name = os.path.basename(path)
        for offset, length, kind, seq, ts, _ttl, _slen, _hlen in records.scan(data, 0):
            body = data[offset + records.HEADER_SIZE : offset + length]
            if kind == records.KIND_DELIVERED:
                cseq, deliveries = _QQ.unpack(body)
                self._apply_delivered(cseq, seq, deliveries, ts)
            elif kind == records.KIND_ACK:
                self._apply_ack(seq)
            elif kind == records.KIND_ACK_ALL:
                (cseq,) = _Q.unpack(body)
                self._apply_ack_all(cseq, seq)
            elif kind == records.KIND_STATE:
                self._apply_state(decode_state(body))
            elif kind == records.KIND_OPS:
                self._replay_ops(body)
            elif kind == records.KIND_DROP:
                self._state.pending.pop(seq, None)
            elif kind == -1:
                damaged = True
                reason = (
                    "truncated record" if seq == records.DAMAGE_TRUNCATED else "checksum mismatch"
                )
                self._damage.append(Damage(name, offset, length, reason))
        return damaged

    def _replay_ops(self, body: bytes) -> None:
        op: int  # typed: `struct` hands back untyped values (see records._header)
        sseq: int
        cseq: int
        deliveries: int
        ts: int
        for op, sseq, cseq, deliveries, ts in _OP.iter_unpack(body):
            if op == OP_DELIVERED:
                self._apply_delivered(cseq, sseq, deliveries, ts)
            elif op == OP_DELIVERED_RUN:
                for i in range(deliveries):
                    self._apply_delivered(cseq + i, sseq + i, 1, ts)
            elif op == OP_ACK:
                self._apply_ack(sseq)
            elif op == OP_ACK_RUN:
                for i in range(deliveries):
                    self._apply_ack(sseq + i)
            elif op == OP_ACK_ALL:
                self._apply_ack_all(cseq, sseq)
            elif op == OP_DROP:
                self._state.pending.pop(sseq, None)

    # --- lifecycle --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("consumer store is closed")

    def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._commit.close()
        if self._fd >= 0:
            self._fileio.close(self._fd)
            self._fd = -1

    def delete(self) -> None:
        self.stop()
        if self.directory is not None:
            remove_tree_durable(self.directory, self._fileio)
