"""Protocol tracing (`-V`, `-DV`): every operation in and out, in nats-server's words.

    [TRC] 127.0.0.1:36858 - cid:5 - "name" - <<- [PUB foo r 5]
    [TRC] 127.0.0.1:36858 - cid:5 - "name" - <<- MSG_PAYLOAD: ["hello"]
    [TRC] 127.0.0.1:36858 - cid:5 - "name" - ->> [MSG foo 1 r 5]

With `trace_headers: true` a message's MSG_PAYLOAD line shows its headers instead, without
the blank line that ends them (`["NATS/1.0\r\nA: b"]`), and a message without headers has no
MSG_PAYLOAD line at all, as in nats-server.

Tracing costs nothing when it is off: a traced connection gets a `TracingSink` between its
parser and itself, and its subscriptions a delivery callback that logs, so the untraced path
has no check for it.

With `trace_verbose` (`-VV`) the system account's internal traffic is traced too, as
nats-server traces its SYSTEM client: its subscriptions and every event, answer and request
it publishes (`trace_system_clients`), the same way: the internal clients of the system
services become `TracedInternalClient`s while it is on, so other internal clients (and the
system's when it is off) have no check for it.

    [TRC] SYSTEM - <<- [SUB $SYS.SERVER.*.STATSZ  6]
    [TRC] SYSTEM - <<- [PUB $SYS.SERVER.ACCOUNT.A.CONNS  792]
    [TRC] SYSTEM - <<- MSG_PAYLOAD: ["{\"type\":\"io.nats.server.advisory.v1.account_connections\",...}"]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .internal import InternalClient

if TYPE_CHECKING:
    from .client import ClientConnection
    from .connection import Connection
    from .delivery import DeliveryCallback, Publisher
    from .options import Options
    from .sublist import Subscription


# What a traced CONNECT hides, as nats-server 2.15.1 hides it (checked against its trace of
# hand-made CONNECT lines, the odd ones included): the value after a `pass...` or
# `auth_token...` key (the key may go on, `password`, `xauth_token`, and even run into the
# next key: `"a":"pass","b":"q"` hides q), in one left-to-right scan of both; then the value
# after `sig`, then after `nkey` (whole words only: not `signature`, `xnkey`), each on the text
# the scan before it left. A value is whatever follows `:` or `=`, an optional quote and
# blanks, up to a quote, comma, `}` or line end, replaced by `[REDACTED]`. `jwt` (public) and
# `user` are shown. Case matters (`PASS` is shown).
REDACTED = "[REDACTED]"
_BLANK = r"[\t\n\f\r ]"  # Go's \s (Python's would take \v and Unicode blanks too)
_VALUE = rf'"?{_BLANK}*[:=]{_BLANK}*"?([^",\r\n}}]*)'
_SECRET_PATTERNS = (
    re.compile(r"(?:pass|auth_token)[^\t\n\f\r ]*?" + _VALUE),
    re.compile(r"\bsig\b" + _VALUE, re.ASCII),
    re.compile(r"\bnkey\b" + _VALUE, re.ASCII),
)


def redact_connect(arg: str) -> str:
    """A CONNECT's JSON as trace lines show it: its secrets `[REDACTED]` (see above)."""
    for pattern in _SECRET_PATTERNS:
        arg = pattern.sub(lambda m: m.group(0)[: m.start(1) - m.start(0)] + REDACTED, arg)
    return arg


def trace_connect_in(c: Connection, arg: bytes) -> None:
    """`<<- [CONNECT {...}]` of a connection, its secrets redacted."""
    text = redact_connect(arg.decode(errors="replace"))
    c.server.logger.trace(f"{connection_label(c)} - <<- [CONNECT {text}]")


def connection_label(c: Connection) -> str:
    """`host:port - cid:N - "name"`, as nats-server prefixes a connection's log lines."""
    return c.trace_label


def traced_body(options: Options, hdr_len: int, body: bytes) -> bytes | None:
    """What a MSG_PAYLOAD line shows of a message (headers then payload in `body`): all of
    it, or with `trace_headers` the headers without their closing CRLFs (None: no line)."""
    if not options.trace_headers:
        return body
    if not hdr_len:
        return None
    return body[: max(0, hdr_len - 4)]


def quote_payload(data: bytes, limit: int) -> str:
    """The quoted payload; past `max_traced_msg_len` cut, with `...` inside the quotes."""
    text = data[:limit] if limit > 0 else data
    more = "..." if limit > 0 and len(data) > limit else ""
    return json.dumps(text.decode("utf-8", errors="replace") + more)


class TracingSink:
    """Sits between the parser and the connection, logging each operation first."""

    def __init__(self, client: ClientConnection) -> None:
        self.client = client
        self.logger = client.server.logger
        self.options = client.server.options
        self.limit = client.server.options.max_traced_msg_len

    def _in(self, text: str) -> None:
        self.logger.trace(f"{connection_label(self.client)} - <<- [{text}]")

    def _payload(self, hdr_len: int, payload: bytes) -> None:
        data = traced_body(self.options, hdr_len, payload)
        if data is None:
            return
        self.logger.trace(
            f"{connection_label(self.client)} - <<- MSG_PAYLOAD: [{quote_payload(data, self.limit)}]"
        )

    def process_connect(self, arg: bytes) -> None:
        trace_connect_in(self.client, arg)
        self.client.process_connect(arg)

    def process_pub(
        self, subject: bytes, reply: bytes | None, hdr_len: int, payload: bytes
    ) -> None:
        size = b"%d" % len(payload)
        parts: tuple[bytes | None, ...]
        if hdr_len:
            op, parts = "HPUB ", (subject, reply, b"%d" % hdr_len, size)
        else:
            op, parts = "PUB ", (subject, reply, size)
        self._in(op + b" ".join(p for p in parts if p is not None).decode(errors="replace"))
        self._payload(hdr_len, payload)
        self.client.process_pub(subject, reply, hdr_len, payload)

    def process_sub(self, subject: bytes, queue: bytes | None, sid: bytes) -> None:
        args = b" ".join(p for p in (subject, queue, sid) if p is not None)
        self._in("SUB " + args.decode(errors="replace"))
        self.client.process_sub(subject, queue, sid)

    def process_unsub(self, sid: bytes, max_msgs: int) -> None:
        self._in(f"UNSUB {sid.decode(errors='replace')}" + (f" {max_msgs}" if max_msgs else ""))
        self.client.process_unsub(sid, max_msgs)

    def process_ping(self) -> None:
        self._in("PING")
        self.client.process_ping()

    def process_pong(self) -> None:
        self._in("PONG")
        self.client.process_pong()


def trace_out(c: Connection, data: bytes) -> None:
    """Log a control line the server sends (PONG, +OK, -ERR, PING). INFO is not traced, nor
    the CONNECT a route, leaf or gateway sends (with its credentials), as in nats-server."""
    if data.startswith(b"INFO") or data.startswith(b"CONNECT"):
        return
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    if line.startswith("-ERR '") and line.endswith("'"):
        line = "-ERR " + line[6:-1]  # nats-server traces the error's text, not its quotes
    c.server.logger.trace(f"{connection_label(c)} - ->> [{line}]")


def traced_delivery(
    sub: Subscription,
    publisher: Publisher,
    subject: bytes,
    reply: bytes | None,
    headers: bytes,
    payload: bytes,
) -> None:
    """Delivery callback of a traced connection's subscriptions."""
    from .delivery import filtered_delivery, frame_to_client

    c: ClientConnection = sub.client
    if c is publisher and not c.echo:
        return
    perms = c.perms
    if perms is not None and perms.delivery_denied(subject):
        return
    if c.responses is not None or (perms is not None and perms.needs_delivery_filter(sub.subject)):
        filtered_delivery(sub, publisher, subject, reply, headers, payload)
    else:
        if c.closed:
            return
        frame_to_client(c, sub.sid, subject, reply, len(headers), headers + payload)
    label = connection_label(c)
    body = headers + payload
    hdr_len = len(headers)
    args = [subject, sub.sid] + ([reply] if reply else [])
    if headers and c.headers:
        line = (
            "HMSG "
            + " ".join(a.decode(errors="replace") for a in args)
            + f" {len(headers)} {len(body)}"
        )
    else:
        line = "MSG " + " ".join(a.decode(errors="replace") for a in args) + f" {len(payload)}"
        body, hdr_len = payload, 0
    options = c.server.options
    c.server.logger.trace(f"{label} - ->> [{line}]")
    shown = traced_body(options, hdr_len, body)
    if shown is not None:
        limit = options.max_traced_msg_len
        c.server.logger.trace(f"{label} - ->> MSG_PAYLOAD: [{quote_payload(shown, limit)}]")


SYSTEM_LABEL = "SYSTEM"  # nats-server's name of its system client in trace lines


class TracedInternalClient(InternalClient):
    """A system service's internal client while `trace_verbose` is on: what it publishes is
    traced (`SYSTEM - <<- [PUB subject reply size]` and its MSG_PAYLOAD), and, for the system
    account's own client, what it subscribes to (`SYSTEM - <<- [SUB subject queue sid]`).
    The system's clients in other accounts answer requests nats-server serves through service
    imports, which it does not trace as subscriptions."""

    traces_subs = True

    def subscribe(
        self,
        subject: str | bytes,
        callback: DeliveryCallback,
        queue: str | bytes | None = None,
        *,
        local_only: bool = False,
    ) -> Subscription:
        sub = super().subscribe(subject, callback, queue, local_only=local_only)
        if self.traces_subs:
            queue_text = sub.queue.decode(errors="replace") if sub.queue else ""
            self.server.logger.trace(
                f"{SYSTEM_LABEL} - <<- [SUB {sub.subject.decode(errors='replace')} {queue_text} "
                f"{sub.sid.decode()}]"
            )
        return sub

    def publish(
        self,
        subject: str | bytes,
        payload: bytes = b"",
        reply: str | bytes | None = None,
        headers: bytes = b"",
    ) -> int:
        subj = subject if isinstance(subject, str) else subject.decode(errors="replace")
        rep = (reply if isinstance(reply, str) else reply.decode(errors="replace")) if reply else ""
        logger = self.server.logger
        options = self.server.options
        body = headers + payload
        if headers:
            logger.trace(f"{SYSTEM_LABEL} - <<- [HPUB {subj} {rep} {len(headers)} {len(body)}]")
        else:
            logger.trace(f"{SYSTEM_LABEL} - <<- [PUB {subj} {rep} {len(body)}]")
        data = traced_body(options, len(headers), body)
        if data is not None:
            quoted = quote_payload(data, options.max_traced_msg_len)
            logger.trace(f"{SYSTEM_LABEL} - <<- MSG_PAYLOAD: [{quoted}]")
        return super().publish(subject, payload, reply, headers)


class TracedInternalPublisher(TracedInternalClient):
    """A system service's client in another account (see TracedInternalClient)."""

    traces_subs = False


def trace_system_clients(
    system_client: InternalClient, others: Iterable[InternalClient], on: bool
) -> None:
    """Switch the tracing of the system services' clients on or off (start-up, reload)."""
    clients = [(system_client, TracedInternalClient)]
    clients += [(c, TracedInternalPublisher) for c in others if c is not system_client]
    for client, traced in clients:
        client.__class__ = traced if on else InternalClient
