"""Counter streams (ADR-49, `allow_msg_counter`): every subject is a big-integer counter.

A publish carries `Nats-Incr: [+-]<digits>` and no body; the stream stores the message with
the new total as its body, `{"val":"<total>"}`, keeping the publisher's headers (so a stream
can be recounted), and the PubAck says `"val"`. The total is the last message on the subject
plus the increment; a purged subject starts again from zero.

A message that arrives through a source (it has `Nats-Stream-Source`) is not added verbatim:
its body is the source counter's total, and `Nats-Counter-Sources` on the aggregate's last
message remembers, per source stream and original subject, the total seen last. The sourced
`Nats-Incr` is rewritten to the difference, so an aggregate stays right when source messages
are lost or a source is removed and added again. Every later message on the subject carries
that map forward.
"""

from __future__ import annotations

import json
import re

from . import headers as h
from .errors import api_error
from .store.base import MessageNotFound, MessageStore

# Headers a counter publish may not carry (their checks cannot hold for a counter).
_FORBIDDEN = (
    h.ROLLUP,
    h.EXPECTED_STREAM,
    h.EXPECTED_LAST_SEQ,
    h.EXPECTED_LAST_SUBJ_SEQ,
    h.EXPECTED_LAST_MSG_ID,
)
_INCREMENT = re.compile(rb"[+-]?[0-9]+")


def check_publish(hdrs: dict[bytes, bytes], payload: bytes) -> None:
    """The rules for a message published to a counter stream, in nats-server's order."""
    value = hdrs.get(h.INCR)
    if not value:
        raise api_error("JSMessageIncrMissingErr")
    if any(name in hdrs for name in _FORBIDDEN) or not _INCREMENT.fullmatch(value):
        raise api_error("JSMessageIncrInvalidErr")
    if payload:
        raise api_error("JSMessageIncrPayloadErr")


def total_of(body: bytes) -> int:
    """The total a counter message holds; 10172 when it is not a counter's body."""
    try:
        value = json.loads(body)["val"]
        if not isinstance(value, str) or not _INCREMENT.fullmatch(value.encode()):
            raise ValueError(value)
        return int(value)
    except (ValueError, KeyError, TypeError):
        raise api_error("JSMessageCounterBrokenErr") from None


def apply(
    store: MessageStore, subject: str, headers: bytes, payload: bytes, *, sourced: bool
) -> tuple[bytes, bytes, int]:
    """(headers, body, total) of the message to store on `subject`."""
    try:
        last = store.load_last(subject)
        previous = total_of(last.data)
        carried = h.get(last.headers or b"", h.COUNTER_SOURCES)
    except MessageNotFound:
        previous, carried = 0, None
    origin = h.get(headers, h.STREAM_SOURCE) if sourced else None
    if origin is None:
        delta = int(h.get(headers, h.INCR) or b"0")
    else:
        delta, carried = _source_delta(origin, total_of(payload), carried)
        headers = h.replace(headers, h.INCR, str(delta).encode())
    if carried is not None:
        headers = h.append(
            h.remove(headers, (h.COUNTER_SOURCES,)), [("Nats-Counter-Sources", carried.decode())]
        )
    total = previous + delta
    return headers, b'{"val":"%d"}' % total, total


def _source_delta(origin: bytes, seen: int, carried: bytes | None) -> tuple[int, bytes]:
    """How far the source counter moved since the aggregate last heard of it, and the
    updated `Nats-Counter-Sources` map (keyed by source stream, then original subject)."""
    tokens = origin.decode().split(" ")
    stream = tokens[0]
    subject = tokens[4] if len(tokens) > 4 else ""
    try:
        known = json.loads(carried) if carried else {}
        if not isinstance(known, dict):
            raise ValueError(known)
        before = int(known.get(stream, {}).get(subject, "0"))
    except (ValueError, TypeError, AttributeError):
        raise api_error("JSMessageCounterBrokenErr") from None
    known.setdefault(stream, {})[subject] = str(seen)
    text = json.dumps(known, sort_keys=True, separators=(",", ":"))
    return seen - before, text.encode()
