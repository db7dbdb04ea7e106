"""JetStream advisories: `$JS.EVENT.ADVISORY.*`, published in the account, only when someone
listens (the JSON is not even built otherwise).

    $JS.EVENT.ADVISORY.STREAM.CREATED|UPDATED|DELETED.<stream>   stream_action
    $JS.EVENT.ADVISORY.API                                       api_audit
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from pynats.server.sublist import EMPTY_RESULT

from .timefmt import rfc3339

if TYPE_CHECKING:
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


def publish(jsa: JetStreamAccount, subject: str, kind: str, body: dict[str, Any]) -> None:
    if not has_listeners(jsa, subject):
        return
    event: dict[str, Any] = {
        "type": PREFIX + kind,
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


def client_info(jsa: JetStreamAccount, publisher: Any) -> dict[str, Any]:
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
    jsa: JetStreamAccount, publisher: Any, subject: str, request: bytes, response: bytes
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
