"""Atomic batch publish (ADR-50, `allow_atomic`): messages that share a `Nats-Batch-Id`
are stored all together when the one with `Nats-Batch-Commit` arrives, or not at all.

A batch is held in memory while it arrives: `Nats-Batch-Sequence` counts from 1 without
gaps, each message is answered with an empty reply (when it asks for one), and the commit
(`1`: with this message, `eob`: without it) checks every message against the stream as it
would be after the ones before it - the checks of a single publish, plus the batch rules
(expected last sequence only on the first message, a subject's expected sequence not after
the batch wrote it, no duplicate message ids, no `Nats-Expected-Last-Msg-Id`, no roll-up of
everything) - then hands the whole batch to the store, which writes it so that a crash part
way leaves none of it. A batch idle for 10 s, broken by a gap or refused, is abandoned (the
`BATCH_ABANDONED` advisory says why on a timeout or when it grew too large).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from pynats.server.msgtrace import jetstream_error, jetstream_held

from . import advisories
from . import headers as h
from .errors import ApiError, api_error

if TYPE_CHECKING:
    from .stream import Stream

MAX_BATCH_MSGS = 1000
MAX_INFLIGHT_PER_STREAM = 50
MAX_INFLIGHT_TOTAL = 1000  # on the whole server
BATCH_TIMEOUT_S = 10.0
MAX_ID_LEN = 64

StagedMsg = tuple[str, bytes, bytes]  # subject, headers, payload


class Batch:
    __slots__ = ("id", "msgs", "timer")

    def __init__(self, batch_id: str) -> None:
        self.id = batch_id
        self.msgs: list[StagedMsg] = []
        self.timer: asyncio.TimerHandle | None = None


class AtomicBatches:
    """The batches of one stream that are still arriving."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.open: dict[str, Batch] = {}

    def receive(self, subject: str, reply: bytes | None, headers: bytes, payload: bytes) -> None:
        """One message carrying a non-empty `Nats-Batch-Id`."""
        try:
            answer = self._receive(subject, headers, payload)
        except ApiError as e:
            jetstream_error(e.trace_error())
            answer = self.stream.error_ack(e)
        else:
            if answer == b"":  # staged: a traced message's event waits for nothing
                jetstream_held()
        if reply is not None and answer is not None:
            self.stream.reply(reply, answer)

    def _receive(self, subject: str, headers: bytes, payload: bytes) -> bytes | None:
        stream = self.stream
        if not stream.config.allow_atomic:
            raise api_error("JSAtomicPublishDisabledErr")
        hdrs = h.parse(headers)
        batch_id = hdrs[h.BATCH_ID].decode()
        if len(batch_id) > MAX_ID_LEN:
            raise api_error("JSAtomicPublishInvalidBatchIDErr")
        raw_seq = hdrs.get(h.BATCH_SEQ, b"")
        if not raw_seq.isdigit():
            raise api_error("JSAtomicPublishMissingSeqErr")
        seq = int(raw_seq)
        batch = self.open.get(batch_id)
        if seq == 1 and batch is None:
            js = stream.jsa.js
            if (
                len(self.open) >= MAX_INFLIGHT_PER_STREAM
                or js.atomic_batches_open >= MAX_INFLIGHT_TOTAL
            ):
                raise api_error("JSAtomicPublishTooManyInflight")
            batch = self.open[batch_id] = Batch(batch_id)
            js.atomic_batches_open += 1
        elif batch is None or seq != len(batch.msgs) + 1:
            if batch is not None:
                self._abandon(batch, "incomplete")
            raise api_error("JSAtomicPublishIncompleteBatchErr")
        if seq > MAX_BATCH_MSGS:
            self._abandon(batch, "large")
            raise api_error("JSAtomicPublishTooLargeBatchErrF", size=MAX_BATCH_MSGS)
        try:
            stream.check_size(headers, payload)
        except ApiError:
            self._abandon(batch, "")
            raise
        if h.REQUIRED_API_LEVEL in hdrs:
            if h.level_unmet(headers, stream.jsa.js.api_level):
                self._abandon(batch, "unsupported")
                raise api_error("JSRequiredApiLevelErr")
            headers = h.remove(headers, (h.REQUIRED_API_LEVEL,))  # satisfied: not stored
        commit = hdrs.get(h.BATCH_COMMIT)
        if commit is None:
            batch.msgs.append((subject, headers, payload))
            self._arm(batch)
            return b""
        self._abandon(batch, "")  # committed or refused: it is no longer open
        if commit == b"1":
            batch.msgs.append((subject, headers, payload))
        elif commit != b"eob":
            raise api_error("JSAtomicPublishInvalidBatchCommitErr")
        elif not batch.msgs:
            raise api_error("JSAtomicPublishIncompleteBatchErr")
        else:  # the last stored message says it committed, as with `1`
            subj, last_headers, data = batch.msgs[-1]
            batch.msgs[-1] = (subj, h.append(last_headers, [("Nats-Batch-Commit", "1")]), data)
        last = stream.store_atomic(batch.msgs)
        return ack_json(stream.ack_prefix, last, batch_id, len(batch.msgs))

    def _arm(self, batch: Batch) -> None:
        if batch.timer is not None:
            batch.timer.cancel()
        batch.timer = self.stream.loop.call_later(BATCH_TIMEOUT_S, self._expire, batch)

    def _expire(self, batch: Batch) -> None:
        batch.timer = None
        if self.open.get(batch.id) is batch:
            self._abandon(batch, "timeout")

    def _abandon(self, batch: Batch, reason: str) -> None:
        """Forget an open batch; `reason` (timeout, large, unsupported) goes in an advisory."""
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None
        if self.open.get(batch.id) is batch:
            del self.open[batch.id]
            self.stream.jsa.js.atomic_batches_open -= 1
            if reason in ("timeout", "large", "unsupported"):
                stream = self.stream
                advisories.batch_abandoned(stream.jsa, stream.name, batch.id, reason)

    def stop(self) -> None:
        for batch in list(self.open.values()):
            self._abandon(batch, "")


class BatchRules:
    """The rules that depend on the messages before in the batch, checked message by
    message as the commit goes through the batch (with the checks of a single publish)."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.seen_ids: set[str] = set()
        self.written: set[str] = set()

    def check(self, position: int, subject: str, headers: bytes) -> None:
        if headers and b"Nats-" in headers:
            hdrs = h.parse(headers)
            if h.EXPECTED_LAST_MSG_ID in hdrs:
                raise api_error(
                    "JSAtomicPublishUnsupportedHeaderBatchErr",
                    header=h.EXPECTED_LAST_MSG_ID.decode(),
                )
            msg_id = (hdrs.get(h.MSG_ID) or b"").decode()
            if msg_id:
                if msg_id in self.seen_ids or self.stream.recent_msg_id(msg_id):
                    raise api_error("JSAtomicPublishContainsDuplicateMessageErr").traced_as(
                        "msgid is duplicate"
                    )
                self.seen_ids.add(msg_id)
            expected = hdrs.get(h.EXPECTED_LAST_SEQ)
            if expected is not None and position:
                # checked against the batch so far; right or wrong, only the first may ask
                before = self.stream.store.last_seq + position
                if not expected.isdigit() or int(expected) != before:
                    raise api_error("JSStreamWrongLastSequenceErrF", seq=before)
                raise api_error("JSStreamWrongLastSequenceConstantErr")
            if h.EXPECTED_LAST_SUBJ_SEQ in hdrs:
                override = hdrs.get(h.EXPECTED_LAST_SUBJ_SEQ_SUBJ)
                if (override.decode() if override else subject) in self.written:
                    raise api_error("JSStreamWrongLastSequenceConstantErr")
            if hdrs.get(h.ROLLUP) == h.ROLLUP_ALL and self.stream.config.allow_rollup_hdrs:
                raise api_error("JSStreamRollupFailedF", err="batch rollup all invalid")
        self.written.add(subject)


def ack_json(prefix: bytes, seq: int, batch_id: str, count: int) -> bytes:
    return prefix + b'%d,"batch":%s,"count":%d}' % (seq, json.dumps(batch_id).encode(), count)
