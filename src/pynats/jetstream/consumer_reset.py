"""`$JS.API.CONSUMER.RESET.<stream>.<consumer>` (ADR-60, API level 4): move a consumer back
(or forward) to a stream sequence, forgetting what it has pending.

The consumer answers on its own subscription, as nats-server does, so a request for a
consumer that does not exist gets no answer at all. An empty body (or `"seq": 0`) goes back
to just after the ack floor. A sequence is allowed for deliver policies that name a start -
`all` (anything), `by_start_sequence` and `by_start_time` (not before that start) - and
refused for the rest with 10204.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from . import decode as d
from .errors import ApiError, api_error

if TYPE_CHECKING:
    from .consumer import Consumer

RESPONSE_TYPE = "io.nats.jetstream.api.v1.consumer_reset_response"
_OFFSET = re.compile(r" at offset \d+$")
RESET_REQ = d.Struct("JSApiConsumerResetRequest", {"seq": d.UINT64})


def target_seq(consumer: Consumer, payload: bytes) -> int:
    """The stream sequence the consumer's next new message is taken from. Raises ApiError."""
    try:
        body = d.decode(payload, RESET_REQ, strict=False)
    except ApiError as e:
        # nats-server reads this body with json.Unmarshal: its syntax errors name no offset
        e.description = _OFFSET.sub("", e.description)
        raise
    seq = int(body.get("seq") or 0)
    state = consumer.store.state
    if not seq:
        return state.ack_floor.stream_seq + 1
    cfg = consumer.config
    policy = cfg.deliver_policy
    if policy == "by_start_sequence" and seq < cfg.opt_start_seq:
        raise api_error("JSConsumerInvalidResetErr", err="below start seq")
    if policy == "by_start_time":
        first = consumer.stream.store.seq_for_time(cfg.start_time_ns)
        if first and seq < first:
            raise api_error("JSConsumerInvalidResetErr", err="below start time")
    elif policy not in ("all", "by_start_sequence"):
        raise api_error("JSConsumerInvalidResetErr", err="not allowed")
    return seq


def response(consumer: Consumer, seq: int) -> bytes:
    """The ConsumerInfo after the reset, and where it went."""
    body: dict[str, Any] = {"type": RESPONSE_TYPE, **consumer.info_json(), "reset_seq": seq}
    return json.dumps(body, separators=(",", ":")).encode()


def error_response(err: ApiError) -> bytes:
    body = {"type": RESPONSE_TYPE, "error": err.to_json(), "reset_seq": 0}
    return json.dumps(body, separators=(",", ":")).encode()
