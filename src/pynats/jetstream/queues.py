"""What JetStream does when work arrives faster than it is done: nats-server's queue limits.

nats-server hands every `$JS.API` request to a queue (info requests to a second one) and
every message published into a stream to that stream's ingest queue. When one fills, it
sheds load instead of growing: the API drops every queued request without an answer (the
clients time out), logs `JetStream API queue limit reached, dropping N requests` and sends
the `$JS.EVENT.ADVISORY.API.LIMIT_REACHED` advisory in the system account; a stream refuses
the message (429 10167 "too many requests" to a publisher that asked for an ack) and logs
`Dropping messages due to excessive stream ingest rate on ...`.

pynats has the same limits with the same keys and defaults, on the queues it has:

- API: requests wait in `ApiResponder`'s queue while a request that changes metadata is
  waiting for its write to be durable (their handlers have not run yet, so dropping them
  changes nothing). Info requests (`INFO`, stream and consumer info, names and lists) are
  answered the moment they arrive, so their queue never holds more than the one request;
  with `info_queue_limit: 1` that one is reported and still answered (nats-server, whose
  worker usually took it already, reports it as `dropped: 0` the same way).
- Ingest: a message stored in a file stream waits for its fsync before its PubAck goes out
  (group commit). Those messages are what a stream has taken but not finished; when they
  reach `max_buffered_msgs` or `max_buffered_size` the stream refuses more until the fsync
  completes. Memory streams and `persist_mode: async` answer at once and never fill it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pynats.gotime import rfc3339

from . import advisories

if TYPE_CHECKING:
    from pynats.server.server import Server

DEFAULT_REQUEST_QUEUE_LIMIT = 10_000  # `request_queue_limit`; `info_queue_limit` follows it
DEFAULT_MAX_BUFFERED_MSGS = 100_000  # `max_buffered_msgs`, per stream
DEFAULT_MAX_BUFFERED_SIZE = 128 * 1024 * 1024  # `max_buffered_size`, per stream

API_LIMIT_SUBJECT = "$JS.EVENT.ADVISORY.API.LIMIT_REACHED"

# The API routes that use nats-server's info queue (by their response type).
INFO_KINDS = frozenset(
    {
        "account_info_response",
        "stream_info_response",
        "stream_names_response",
        "stream_list_response",
        "consumer_info_response",
        "consumer_names_response",
        "consumer_list_response",
    }
)


def positive_or(value: int, default: int) -> int:
    """A configured limit, or nats-server's default when it is not set (0 or less)."""
    return value if value > 0 else default


def api_limit_reached(server: Server, domain: str, queue: str, pending: int, dropped: int) -> None:
    """Log (rate limited) and advise that an API queue was full and was emptied."""
    server.logger.warn_rate_limited(
        "js-api-queue-limit", f"{queue} limit reached, dropping {pending} requests"
    )
    system = server.system
    if system is None:
        return
    body: dict[str, Any] = {
        "type": advisories.PREFIX + "api_limit_reached",
        "id": advisories.new_id(),
        "timestamp": rfc3339(time.time_ns()),
        "server": server.server_name,
    }
    if domain:
        body["domain"] = domain
    body["dropped"] = dropped
    system.publish_event(API_LIMIT_SUBJECT, body)


def ingest_limit_reached(server: Server, account: str, stream: str, what: str) -> None:
    """Log (rate limited) that a stream refused a message because its queue was full."""
    server.logger.warn_rate_limited(
        "js-ingest-limit",
        f"Dropping messages due to excessive stream ingest rate on '{account}' > "
        f"'{stream}': IPQ {what} limit reached",
    )
