"""JetStream advisories: `$JS.EVENT.ADVISORY.*`, published in the account, only when someone
listens (the JSON is not even built otherwise).

    $JS.EVENT.ADVISORY.STREAM.CREATED|UPDATED|DELETED.<stream>   stream_action
    $JS.EVENT.ADVISORY.API                                       api_audit
    $JS.EVENT.ADVISORY.CONSUMER.CREATED|DELETED.<s>.<c>          consumer_action
    $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<s>.<c>           max_deliver
    $JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.<s>.<c>                nak
    $JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.<s>.<c>           terminated
    $JS.EVENT.ADVISORY.CONSUMER.PAUSE.<s>.<c>                    consumer_pause
    $JS.EVENT.ADVISORY.CONSUMER.PINNED|UNPINNED.<s>.<c>          consumer_group_(un)pinned
    $JS.EVENT.METRIC.CONSUMER.ACK.<s>.<c>                        consumer_ack (sample_freq)
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from pynats.gotime import rfc3339
from pynats.server.sublist import EMPTY_RESULT

if TYPE_CHECKING:
    from pynats.server.delivery import Publisher

    from .service import JetStreamAccount

PREFIX = "io.nats.jetstream.advisory.v1."
STREAM_ACTION_SUBJECTS = {
    "create": "$JS.EVENT.ADVISORY.STREAM.CREATED.",
    "modify": "$JS.EVENT.ADVISORY.STREAM.UPDATED.",
    "delete": "$JS.EVENT.ADVISORY.STREAM.DELETED.",
}
API_AUDIT_SUBJECT = "$JS.EVENT.ADVISORY.API"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def new_id() -> str:
    """A 22-character base62 id, like a NUID."""
    return "".join(secrets.choice(_B62) for _ in range(22))


def has_listeners(jsa: JetStreamAccount, subject: str) -> bool:
    sublist = jsa.account.sublist
    key = subject.encode()
    result = sublist.cache.get(key)
    if result is None:
        result = sublist.match(key)
    return result is not EMPTY_RESULT


def publish(
    jsa: JetStreamAccount, subject: str, kind: str, body: dict[str, Any], prefix: str = PREFIX
) -> None:
    if not has_listeners(jsa, subject):
        return
    event: dict[str, Any] = {
        "type": prefix + kind,
        "id": new_id(),
        "timestamp": rfc3339(time.time_ns()),
    }
    event.update(body)
    if jsa.js.domain:
        event["domain"] = jsa.js.domain
    jsa.client.publish(subject, json.dumps(event, separators=(",", ":")).encode())


def stream_action(jsa: JetStreamAccount, stream: str, action: str) -> None:
    publish(
        jsa,
        STREAM_ACTION_SUBJECTS[action] + stream,
        "stream_action",
        {"stream": stream, "action": action},
    )


def client_info(jsa: JetStreamAccount, publisher: Publisher) -> dict[str, Any]:
    server = jsa.js.server
    info: dict[str, Any] = {}
    start = getattr(publisher, "start", None)
    if start:
        info["start"] = rfc3339(int(start * 1e9))
    host = getattr(publisher, "host", "")
    if host:
        info["host"] = host
    info["id"] = getattr(publisher, "cid", 0)
    info["acc"] = publisher.account.name if getattr(publisher, "account", None) else jsa.name
    for key, attr in (("user", "user"), ("name", "name"), ("lang", "lang"), ("ver", "version")):
        value = getattr(publisher, attr, "")
        if value:
            info[key] = value
    rtt = getattr(publisher, "rtt", 0)
    if rtt:
        info["rtt"] = int(rtt * 1e9)
    info["server"] = server.server_name
    kind = getattr(publisher, "kind", "Client")
    info["kind"] = "JetStream" if kind == "Internal" else "Client"
    if kind != "Internal":
        info["client_type"] = "nats"
    return info


def api_audit(
    jsa: JetStreamAccount, publisher: Publisher, subject: str, request: bytes, response: bytes
) -> None:
    if not has_listeners(jsa, API_AUDIT_SUBJECT):
        return
    body: dict[str, Any] = {
        "server": jsa.js.server.server_name,
        "client": client_info(jsa, publisher),
        "subject": subject,
    }
    if request:
        body["request"] = request.decode(errors="replace")
    body["response"] = response.decode(errors="replace")
    publish(jsa, API_AUDIT_SUBJECT, "api_audit", body)


# -- consumers -------------------------------------------------------------------------------

CONSUMER_ACTION_SUBJECTS = {
    "create": "$JS.EVENT.ADVISORY.CONSUMER.CREATED.",
    "delete": "$JS.EVENT.ADVISORY.CONSUMER.DELETED.",
}
METRIC_PREFIX = "io.nats.jetstream.metric.v1."


def consumer_action(jsa: JetStreamAccount, stream: str, consumer: str, action: str) -> None:
    publish(
        jsa,
        f"{CONSUMER_ACTION_SUBJECTS[action]}{stream}.{consumer}",
        "consumer_action",
        {"stream": stream, "consumer": consumer, "action": action},
    )


def max_deliveries(
    jsa: JetStreamAccount, stream: str, consumer: str, stream_seq: int, deliveries: int
) -> None:
    publish(
        jsa,
        f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}",
        "max_deliver",
        {
            "stream": stream,
            "consumer": consumer,
            "stream_seq": stream_seq,
            "deliveries": deliveries,
        },
    )


def nak(
    jsa: JetStreamAccount,
    stream: str,
    consumer: str,
    consumer_seq: int,
    stream_seq: int,
    deliveries: int,
) -> None:
    publish(
        jsa,
        f"$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED.{stream}.{consumer}",
        "nak",
        {
            "stream": stream,
            "consumer": consumer,
            "consumer_seq": consumer_seq,
            "stream_seq": stream_seq,
            "deliveries": deliveries,
        },
    )


def terminated(
    jsa: JetStreamAccount,
    stream: str,
    consumer: str,
    consumer_seq: int,
    stream_seq: int,
    deliveries: int,
    reason: str,
) -> None:
    body: dict[str, Any] = {
        "stream": stream,
        "consumer": consumer,
        "consumer_seq": consumer_seq,
        "stream_seq": stream_seq,
        "deliveries": deliveries,
    }
    if reason:
        body["reason"] = reason
    publish(
        jsa, f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{stream}.{consumer}", "terminated", body
    )


def ack_metric(
    jsa: JetStreamAccount,
    stream: str,
    consumer: str,
    consumer_seq: int,
    stream_seq: int,
    ack_time_ns: int,
    deliveries: int,
) -> None:
    publish(
        jsa,
        f"$JS.EVENT.METRIC.CONSUMER.ACK.{stream}.{consumer}",
        "consumer_ack",
        {
            "stream": stream,
            "consumer": consumer,
            "consumer_seq": consumer_seq,
            "stream_seq": stream_seq,
            "ack_time": ack_time_ns,
            "deliveries": deliveries,
        },
        prefix=METRIC_PREFIX,
    )


def batch_abandoned(jsa: JetStreamAccount, stream: str, batch: str, reason: str) -> None:
    publish(
        jsa,
        f"$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED.{stream}",
        "stream_batch_abandoned",
        {"stream": stream, "batch": batch, "reason": reason},
    )


def consumer_pause(
    jsa: JetStreamAccount, stream: str, consumer: str, paused: bool, until: str
) -> None:
    body: dict[str, Any] = {"stream": stream, "consumer": consumer, "paused": paused}
    if paused:
        body["pause_until"] = until
    publish(jsa, f"$JS.EVENT.ADVISORY.CONSUMER.PAUSE.{stream}.{consumer}", "consumer_pause", body)


def consumer_pinned(
    jsa: JetStreamAccount, stream: str, consumer: str, group: str, pin_id: str
) -> None:
    publish(
        jsa,
        f"$JS.EVENT.ADVISORY.CONSUMER.PINNED.{stream}.{consumer}",
        "consumer_group_pinned",
        {"stream": stream, "consumer": consumer, "group": group, "pinned_id": pin_id},
    )


def consumer_unpinned(
    jsa: JetStreamAccount, stream: str, consumer: str, group: str, reason: str
) -> None:
    publish(
        jsa,
        f"$JS.EVENT.ADVISORY.CONSUMER.UNPINNED.{stream}.{consumer}",
        "consumer_group_unpinned",
        {"stream": stream, "consumer": consumer, "group": group, "reason": reason},
    )
