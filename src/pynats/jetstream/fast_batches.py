"""Fast-ingest batch publish (ADR-50 level 4, `allow_batched`): a stream of messages stored
as they arrive, paced by flow-control acks, ended by a commit.

There are no headers: everything is in the reply subject,
`<prefix>.<id>.<initial flow>.<ok|fail>.<batch seq>.<op>.$FI` (op 0 start, 1 append,
2 commit with this message, 3 commit without it, 4 ping), and every answer goes back to that
reply subject (the client listens on `<prefix>.<id>.>`). What nats-server 2.15 does, and so
what this module does:

- start: `{"type":"ack","seq":0,"msgs":M}` before the message is stored. M is the initial
  flow (default 10, at most 500) for the stream's only fast publisher, else 1, then doubled at
  each ack up to the initial flow. An ack `{"type":"ack","seq":N,"msgs":M}` follows each
  message N that completes an interval (after it is durable, like any PubAck).
- a message out of order gets `{"type":"gap","last_seq":<expected>,"seq":N}`. In `fail`
  mode the batch ends there (the message is not stored); in `ok` mode a jump forward goes
  on, a step back ends the batch. A ping carries the highest sequence sent: `seq` in its
  gap message is one more. A ping answers with the latest ack.
- a message too large for the stream gets the error PubAck and the batch does not move (it
  may be sent again under the same sequence). A start the stream refuses gets its ack, then
  the error PubAck, and opens no batch. Any other message the stream refuses gets
  `{"type":"err","seq":N,"error":{...}}`: in `fail` mode (and for a commit) the batch ends
  there; in `ok` mode it goes on past N.
- the end - a commit, or a gap that ends the batch - is a PubAck with `batch` and `count`
  (the messages of the batch received in order; the stream sequence is that of the last
  one stored). A commit at sequence 1 stores and acks without opening a batch.
- a batch idle for 10 s is forgotten without a word; then its id is unknown (10208).
- refused outright (error PubAck, 400 unless said): the stream without `allow_batched`
  (10205); a reply subject of fewer than 7 tokens, a gap mode other than `ok`/`fail`, an op
  or sequence that is not a number, op > 4, sequence 0, a start not at 1, an append at 1, an
  EOB at 1 (10206); an id over 64 characters (10207); the 1001st open batch of a stream or
  the 50 001st of the server (429, 10211). A flow that is not a positive number is 10.
"""

from __future__ import annotations

import json
import weakref
from typing import TYPE_CHECKING

from pynats.server.msgtrace import jetstream_error, jetstream_held

from . import headers as h
from .errors import ApiError, api_error
from .headers import REQUEST_INFO

if TYPE_CHECKING:
    import asyncio

    from .stream import Stream

SUFFIX = b".$FI"
MAX_ID_LEN = 64
MAX_PER_STREAM = 1000
MAX_PER_SERVER = 50_000
IDLE_S = 10.0
DEFAULT_FLOW = 10
MAX_FLOW = 500

OP_START, OP_APPEND, OP_COMMIT, OP_EOB, OP_PING = range(5)

# Open fast batches per JetStream (the server-wide limit).
_open_per_server: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()


class FastBatch:
    __slots__ = (
        "acked",
        "flow",
        "gap_ok",
        "id",
        "last_stored",
        "lseq",
        "msgs",
        "next_ack",
        "timer",
        "touched",
    )

    def __init__(self, batch_id: str, flow: int, gap_ok: bool, msgs: int) -> None:
        self.id = batch_id
        self.flow = flow
        self.gap_ok = gap_ok
        self.lseq = 0  # the last batch sequence taken
        self.last_stored = 0  # the stream sequence of the last message stored
        self.acked = 0  # the batch sequence of the last flow ack
        self.msgs = msgs  # the current ack interval
        self.next_ack = msgs
        self.touched = 0.0
        self.timer: asyncio.TimerHandle | None = None


def parse_flow(token: bytes) -> int:
    flow = int(token) if token.isdigit() else 0
    if flow <= 0:
        return DEFAULT_FLOW
    return min(flow, MAX_FLOW)


def ack_msg(seq: int, msgs: int) -> bytes:
    return b'{"type":"ack","seq":%d,"msgs":%d}' % (seq, msgs)


def gap_msg(last_seq: int, seq: int) -> bytes:
    return b'{"type":"gap","last_seq":%d,"seq":%d}' % (last_seq, seq)


def imported_pattern(headers: bytes) -> bytes:
    """The batch's own reply subject, when the message came through a service import: the
    reply the stream sees is the import's `_R_` subject (answers go there and cross back), and
    the publisher's, with the batch's tokens, is in `Nats-Request-Info` (b"" when none)."""
    raw = h.get(headers, REQUEST_INFO)
    if not raw or SUFFIX not in raw:
        return b""
    try:
        reply = json.loads(raw).get("reply", "")
    except ValueError:
        return b""
    pattern = reply.encode() if isinstance(reply, str) else b""
    return pattern if pattern.endswith(SUFFIX) else b""


def err_msg(seq: int, e: ApiError) -> bytes:
    err = json.dumps(e.to_json(), separators=(",", ":")).encode()
    return b'{"type":"err","seq":%d,"error":%s}' % (seq, err)


class FastBatches:
    """The fast batches of one stream that are still open."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.open: dict[bytes, FastBatch] = {}

    def receive(self, subject: str, reply: bytes, headers: bytes, payload: bytes) -> None:
        """One message whose reply subject ends with `.$FI`."""
        try:
            self._receive(subject, reply, headers, payload)
        except ApiError as e:
            jetstream_error(e.trace_error())  # a traced message's `js` event says why
            self.stream.reply(reply, self.stream.error_ack(e))

    def _receive(self, subject: str, reply: bytes, headers: bytes, payload: bytes) -> None:
        stream = self.stream
        if not stream.config.allow_batched:
            raise api_error("JSBatchPublishDisabledErr")
        pattern = reply if reply[-4:] == SUFFIX else imported_pattern(headers)
        tokens = pattern.rsplit(b".", 6)
        if len(tokens) < 7:
            raise api_error("JSBatchPublishInvalidPatternErr")
        _, batch_id, flow_token, gap, seq_token, op_token, _ = tokens
        if not (op_token.isdigit() and seq_token.isdigit()) or gap not in (b"ok", b"fail"):
            raise api_error("JSBatchPublishInvalidPatternErr")
        op, seq = int(op_token), int(seq_token)
        if (
            op > OP_PING
            or seq == 0
            or ((op == OP_START) != (seq == 1) and op in (OP_START, OP_APPEND))
        ):
            raise api_error("JSBatchPublishInvalidPatternErr")  # a start is 1, and 1 a start
        if op == OP_EOB and seq == 1:
            raise api_error("JSBatchPublishInvalidPatternErr")
        if len(batch_id) > MAX_ID_LEN:
            raise api_error("JSBatchPublishInvalidBatchIDErr")
        if op != OP_PING:  # refused before the batch is looked at: it does not move
            try:
                stream.check_size(headers, payload)
            except ApiError as e:
                where = f"{stream.jsa.account.name} > {stream.name}"
                raise e.traced_as(f"JetStream message size exceeds limits for '{where}'") from None
        batch = self.open.get(batch_id)
        if batch is None:
            if op == OP_START:
                self._start(batch_id, flow_token, gap, subject, reply, headers, payload)
            elif op == OP_COMMIT and seq == 1:
                stored = self._store(subject, headers, payload)
                stream.reply(reply, self._final(batch_id.decode(), stored, 1))
            else:
                raise api_error("JSBatchPublishUnknownBatchIDErr")
            return
        batch.touched = stream.loop.time()
        if op in (OP_PING, OP_EOB):
            jetstream_held()  # not a message to store: nats-server traces nothing of it
        if op == OP_PING:
            if seq != batch.lseq:
                stream.reply(reply, gap_msg(batch.lseq + 1, seq + 1))
                if not batch.gap_ok or seq < batch.lseq:
                    self._end(batch, reply)
                    return
                batch.lseq = seq
            stream.reply(reply, ack_msg(batch.acked, batch.msgs))
            return
        if seq != batch.lseq + 1:
            stream.reply(reply, gap_msg(batch.lseq + 1, seq))
            if not batch.gap_ok or seq <= batch.lseq:
                jetstream_held()  # a gap that ends the batch: nats-server traces nothing
                self._end(batch, reply)
                return
        if op == OP_EOB:
            batch.lseq = seq - 1
            self._end(batch, reply)
            return
        try:
            stored = self._store(subject, headers, payload)
        except ApiError as e:
            jetstream_error(e.trace_error(), stream.stored_subject(subject, e))
            stream.reply(reply, err_msg(seq, e))
            if not batch.gap_ok or op == OP_COMMIT:
                batch.lseq = seq - 1
                self._end(batch, reply)
            else:
                batch.lseq = seq
            return
        self._took(batch, seq, stored)
        if op == OP_COMMIT:
            self._close(batch)
            stream.reply(reply, self._final(batch.id, stored, seq, batch.last_stored))
        elif seq >= batch.next_ack:
            self._ack(batch, seq, reply)

    def _start(
        self,
        batch_id: bytes,
        flow_token: bytes,
        gap: bytes,
        subject: str,
        reply: bytes,
        headers: bytes,
        payload: bytes,
    ) -> None:
        stream = self.stream
        js = stream.jsa.js
        in_server = _open_per_server.get(js, 0)
        if len(self.open) >= MAX_PER_STREAM or in_server >= MAX_PER_SERVER:
            raise api_error("JSBatchPublishTooManyInflight")
        flow = parse_flow(flow_token)
        batch = FastBatch(batch_id.decode(), flow, gap == b"ok", 1 if self.open else flow)
        self.open[batch_id] = batch
        _open_per_server[js] = in_server + 1
        batch.touched = stream.loop.time()
        batch.timer = stream.loop.call_later(IDLE_S, self._idle, batch_id, batch)
        stream.reply(reply, ack_msg(0, batch.msgs))
        try:
            stored = self._store(subject, headers, payload)
        except ApiError:
            self._close(batch)
            raise
        self._took(batch, 1, stored)
        if batch.next_ack <= 1:
            self._ack(batch, 1, reply)

    def _store(self, subject: str, headers: bytes, payload: bytes) -> int:
        """Store one message; its stream sequence (negative: a duplicate of that one)."""
        return self.stream.ingest(subject, headers, payload)

    @staticmethod
    def _took(batch: FastBatch, seq: int, stored: int) -> None:
        batch.lseq = seq
        if stored > 0:
            batch.last_stored = stored

    def _ack(self, batch: FastBatch, seq: int, reply: bytes) -> None:
        batch.msgs = min(batch.msgs * 2, batch.flow)
        batch.acked = seq
        batch.next_ack = seq + batch.msgs
        self.stream.reply(reply, ack_msg(seq, batch.msgs))

    def _end(self, batch: FastBatch, reply: bytes) -> None:
        """The batch ends short of a commit: the PubAck says how far it got."""
        self._close(batch)
        self.stream.reply(reply, self._final(batch.id, batch.last_stored, batch.lseq))

    def _final(self, batch_id: str, stored: int, count: int, last: int = 0) -> bytes:
        prefix = self.stream.ack_prefix
        tail = b',"batch":%s,"count":%d}' % (json.dumps(batch_id).encode(), count)
        if stored < 0:
            return prefix + b'%d,"duplicate": true' % -stored + tail
        return prefix + b"%d" % (stored or last) + tail

    def _close(self, batch: FastBatch) -> None:
        key = batch.id.encode()
        if self.open.get(key) is batch:
            del self.open[key]
            js = self.stream.jsa.js
            _open_per_server[js] = max(0, _open_per_server.get(js, 1) - 1)
        if batch.timer is not None:
            batch.timer.cancel()
            batch.timer = None

    def _idle(self, key: bytes, batch: FastBatch) -> None:
        batch.timer = None
        if self.open.get(key) is not batch:
            return
        loop = self.stream.loop
        left = batch.touched + IDLE_S - loop.time()
        if left > 0 and not self.stream.closed:
            batch.timer = loop.call_later(left, self._idle, key, batch)
        else:
            self._close(batch)

    def stop(self) -> None:
        for batch in list(self.open.values()):
            self._close(batch)
