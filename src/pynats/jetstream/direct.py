"""Direct get (`allow_direct`): `$JS.API.DIRECT.GET.<stream>[.<subject>]`.

Not an API request: the stream owns the subscription (queue group `_sys_`, so a mirror with
`mirror_direct` shares the load), and the answer is the stored message itself, with
`Nats-Stream`/`Nats-Subject`/`Nats-Sequence`/`Nats-Time-Stamp` appended to its headers, or an
empty message carrying a status (`404 Message Not Found`, `408 Bad Request`, `204 EOB`, ...).
A `batch` or `multi_last` request streams several messages (each with `Nats-Num-Pending`
and `Nats-Last-Sequence`) and ends with `204 EOB`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pynats.gotime import parse_rfc3339, rfc3339

from . import headers as h
from .store import MessageNotFound, StoredMessage

if TYPE_CHECKING:
    from pynats.server.delivery import Publisher
    from pynats.server.sublist import Subscription

    from .stream import Stream

DIRECT_GET_PREFIX = "$JS.API.DIRECT.GET."
QUEUE = "_sys_"
MAX_MULTI_SUBJECTS = 1024

_EMPTY = h.build(status="408", text="Empty Request")
_MALFORMED = h.build(status="408", text="Malformed Request")
_BAD = h.build(status="408", text="Bad Request")
_NOT_FOUND = h.build(status="404", text="Message Not Found")
_NO_RESULTS = h.build(status="404", text="No Results")
_TOO_MANY = h.build(status="413", text="Too Many Results")
_API_LEVEL = h.build(status="412", text="Required Api Level")

_SELECTORS = ("seq", "last_by_subj", "next_by_subj", "batch", "multi_last", "start_time")


def direct_subscriptions(stream: Stream) -> list[Subscription]:
    """The subscriptions `stream` should hold for direct gets under its current config."""
    cfg = stream.config
    names = []
    if cfg.allow_direct:
        names.append(cfg.name)
    if cfg.mirror is not None and cfg.mirror_direct and not cfg.mirror.api_prefix:
        names.append(cfg.mirror.name)
    subs = []
    for name in names:
        handler = DirectGet(stream)
        subs.append(stream.client.subscribe(DIRECT_GET_PREFIX + name, handler.on_request, QUEUE))
        subs.append(
            stream.client.subscribe(DIRECT_GET_PREFIX + name + ".>", handler.on_request, QUEUE)
        )
    return subs


class DirectGet:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream

    def on_request(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        if not reply or self.stream.closed:
            return
        if headers and h.level_unmet(headers, self.stream.jsa.js.api_level):
            self._status(reply, _API_LEVEL)
            return
        prefix_len = len(sub.subject) - (2 if sub.subject.endswith(b".>") else 0)
        key = subject[prefix_len + 1 :].decode() if len(subject) > prefix_len else ""
        if key and not payload:
            # the KV get: the last message on the subject named in the request subject
            try:
                msg = self.stream.store.load_last(key)
            except MessageNotFound:
                self._status(reply, _NOT_FOUND)
                return
            self._send(reply, msg, False, None)
            return
        req: dict[str, Any] = {}
        if payload.strip():
            try:
                req = json.loads(payload)
            except ValueError:
                self._status(reply, _MALFORMED)
                return
            if not isinstance(req, dict):
                self._status(reply, _MALFORMED)
                return
        if key:
            if any(req.get(k) for k in _SELECTORS):
                self._status(reply, _BAD)
                return
            req = {"last_by_subj": key, "no_hdr": req.get("no_hdr", False)}
        elif not payload.strip():
            self._status(reply, _EMPTY)
            return
        self.answer(reply, req)

    def answer(self, reply: bytes, req: dict[str, Any]) -> None:
        try:
            seq = int(req.get("seq") or 0)
            batch = int(req.get("batch") or 0)
            max_bytes = int(req.get("max_bytes") or 0)
            up_to_seq = int(req.get("up_to_seq") or 0)
            start_time = req.get("start_time")
            start_ns = parse_rfc3339(start_time) if start_time else None
            up_to_time = req.get("up_to_time")
            up_to_ns = parse_rfc3339(up_to_time) if up_to_time else None
        except (TypeError, ValueError):
            self._status(reply, _BAD)
            return
        last_by = req.get("last_by_subj") or ""
        next_by = req.get("next_by_subj") or ""
        multi = req.get("multi_last") or []
        no_hdr = bool(req.get("no_hdr"))
        if (
            (seq and last_by)
            or (last_by and next_by)
            or (batch and last_by)
            or (multi and (last_by or next_by or seq))
            or (start_ns is not None and (seq or last_by))
            or not isinstance(multi, list)
        ):
            self._status(reply, _BAD)
            return
        if multi:
            self._multi_last(reply, multi, batch, up_to_seq, up_to_ns, no_hdr)
            return
        if not (seq or last_by or next_by or start_ns is not None):
            self._status(reply, _EMPTY)
            return
        store = self.stream.store
        if start_ns is not None:
            seq = store.seq_for_time(start_ns)
            if not seq:
                self._status(reply, _NOT_FOUND)
                return
        try:
            if last_by:
                msg = store.load_last(last_by)
            elif next_by or batch:
                msg = store.load_next(next_by or ">", max(seq, 1))
            else:
                msg = store.load_msg(seq)
        except MessageNotFound:
            self._status(reply, _NOT_FOUND)
            return
        if not batch:
            self._send(reply, msg, no_hdr, None)
            return
        self._batch(reply, msg, next_by or ">", batch, max_bytes, no_hdr)

    def _batch(
        self,
        reply: bytes,
        first: StoredMessage,
        subject_filter: str,
        batch: int,
        max_bytes: int,
        no_hdr: bool,
    ) -> None:
        store = self.stream.store
        budget = max_bytes or self.stream.jsa.js.server.options.max_pending
        msg: StoredMessage | None = first
        prev = 0
        sent = 0
        pending = 0
        while msg is not None and sent < batch:
            size = len(msg.data) + len(msg.headers or b"")
            if sent and size > budget:
                break
            budget -= size
            pending = store.num_pending(msg.seq + 1, subject_filter)
            self._send(reply, msg, no_hdr, (pending, prev))
            prev = msg.seq
            sent += 1
            try:
                msg = store.load_next(subject_filter, msg.seq + 1)
            except MessageNotFound:
                msg = None
        self._eob(reply, pending, prev, None)

    def _multi_last(
        self,
        reply: bytes,
        filters: list[Any],
        batch: int,
        up_to_seq: int,
        up_to_ns: int | None,
        no_hdr: bool,
    ) -> None:
        store = self.stream.store
        if up_to_ns is not None:
            at = store.seq_for_time(up_to_ns + 1)
            up_to_seq = (at - 1) if at else store.last_seq
        if not up_to_seq or up_to_seq > store.last_seq:
            up_to_seq = store.last_seq
        subjects: set[str] = set()
        for f in filters:
            if not isinstance(f, str):
                self._status(reply, _BAD)
                return
            subjects.update(store.subjects_state(f))
            if len(subjects) > MAX_MULTI_SUBJECTS:
                self._status(reply, _TOO_MANY)
                return
        seqs = sorted(s for s in (self._last_upto(subj, up_to_seq) for subj in subjects) if s)
        if not seqs:
            self._status(reply, _NO_RESULTS)
            return
        if batch:
            seqs = seqs[:batch]
        prev = 0
        for i, seq in enumerate(seqs):
            try:
                msg = store.load_msg(seq)
            except MessageNotFound:
                continue
            self._send(reply, msg, no_hdr, (len(seqs) - i - 1, prev))
            prev = seq
        self._eob(reply, 0, prev, up_to_seq)

    def _last_upto(self, subject: str, up_to: int) -> int:
        store = self.stream.store
        first, last, _ = store.subject_state(subject)
        if not last:
            return 0
        if last <= up_to:
            return last
        found, seq = 0, first
        while seq and seq <= up_to:
            found = seq
            seq = store.next_seq(subject, seq + 1)
        return found

    def _send(
        self, reply: bytes, msg: StoredMessage, no_hdr: bool, batch: tuple[int, int] | None
    ) -> None:
        if no_hdr:
            self.stream.client.publish(reply, msg.data)
            return
        extra = (
            b"Nats-Stream: %b\r\nNats-Subject: %b\r\nNats-Sequence: %d\r\nNats-Time-Stamp: %b\r\n"
            % (
                self.stream.name.encode(),
                msg.subject.encode(),
                msg.seq,
                rfc3339(msg.ts_ns).encode(),
            )
        )
        if batch is not None:
            extra += b"Nats-Num-Pending: %d\r\nNats-Last-Sequence: %d\r\n" % batch
        headers = msg.headers
        if not headers:
            block = b"NATS/1.0\r\n" + extra + b"\r\n"
        elif headers.endswith(b"\r\n\r\n"):
            block = headers[:-2] + extra + b"\r\n"
        else:
            block = headers + b"\r\n" + extra + b"\r\n"
        self.stream.client.publish(reply, msg.data, headers=block)

    def _eob(self, reply: bytes, pending: int, last: int, up_to: int | None) -> None:
        extra = [(h.NUM_PENDING, str(pending)), (h.LAST_SEQUENCE, str(last))]
        if up_to is not None:
            extra.append((h.UPTO_SEQUENCE, str(up_to)))
        self._status(reply, h.build(extra, status="204", text="EOB"))

    def _status(self, reply: bytes, block: bytes) -> None:
        self.stream.client.publish(reply, b"", headers=block)
