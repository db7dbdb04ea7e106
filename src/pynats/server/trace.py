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
    from .server import Server
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


def trace_payload(server: Server, prefix: str, hdr_len: int, body: bytes) -> None:
    """The MSG_PAYLOAD line of a traced message (`prefix`: its label and arrow), as the
    options say (`trace_headers`, `max_traced_msg_len`); none when they leave nothing."""
    options = server.options
    shown = traced_body(options, hdr_len, body)
    if shown is not None:
        quoted = quote_payload(shown, options.max_traced_msg_len)
        server.logger.trace(f"{prefix} MSG_PAYLOAD: [{quoted}]")


class TracingSink:
    """Sits between the parser and the connection, logging each operation first."""

    def __init__(self, client: ClientConnection) -> None:
        self.client = client
        self.logger = client.server.logger

    def _in(self, text: str) -> None:
        self.logger.trace(f"{connection_label(self.client)} - <<- [{text}]")

    def _payload(self, hdr_len: int, payload: bytes) -> None:
        trace_payload(
            self.client.server, f"{connection_label(self.client)} - <<-", hdr_len, payload
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
    """Log a control line the server sends a client (PONG, +OK, -ERR, PING). INFO is not
    traced, as in nats-server (a link's lines are traced at its flush: LinkTrace)."""
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
    c.server.logger.trace(f"{label} - ->> [{line}]")
    trace_payload(c.server, f"{label} - ->>", hdr_len, body)


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
        body = headers + payload
        if headers:
            logger.trace(f"{SYSTEM_LABEL} - <<- [HPUB {subj} {rep} {len(headers)} {len(body)}]")
        else:
            logger.trace(f"{SYSTEM_LABEL} - <<- [PUB {subj} {rep} {len(body)}]")
        trace_payload(self.server, f"{SYSTEM_LABEL} - <<-", len(headers), body)
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


# -- the traffic of routes, leaf nodes and gateways ----------------------------------------
#
# A link's parser is compiled and its operations go straight to the connection, so a traced
# link is traced from its bytes instead: what it reads (`Connection.data_received`) and what
# it writes (`Connection.flush`), each checking the trace flag once per read or flush:
#
#     [TRC] 127.0.0.1:6222 - rid:5 - <<- [RS+ $G foo]
#     [TRC] 127.0.0.1:6222 - rid:5 - <<- [RMSG $G foo r 5]
#     [TRC] 127.0.0.1:6222 - rid:5 - <<- MSG_PAYLOAD: ["hello"]
#     [TRC] 127.0.0.1:6222 - rid:5 - ->> [RS+ $G bar q 1]
#
# INFO is not traced either way, nor the CONNECT a server sends (it has the URL's password);
# an inbound CONNECT is traced redacted (`trace_connect_in`). As nats-server does, the burst
# of interest a link is sent when it comes up (every RS+/LS+ at once) is not traced: those
# parts are queued as `Untraced` (`untraced_since`).


class Untraced(bytes):
    """Bytes queued for a link that its outbound trace leaves out (see above)."""

    __slots__ = ()


def untraced_since(c: Connection, start: int) -> None:
    """Mark what was queued on `c` from its `start`th outbound part on as not traced (only
    called while tracing is on)."""
    parts = c.ob.parts
    for i in range(start, len(parts)):
        parts[i] = Untraced(parts[i])


_MSG_OPS = (b"RMSG", b"LMSG", b"HMSG")


class LinkTrace:
    """The protocol lines and payloads of one direction of a link's byte stream, logged as
    nats-server traces them (`<<-` in, `->>` out)."""

    __slots__ = ("buf", "conn", "inbound", "need")

    def __init__(self, conn: Connection, inbound: bool) -> None:
        self.conn = conn
        self.inbound = inbound
        self.buf = b""
        self.need: tuple[int, int] | None = None  # (header length, size) of a payload due

    def feed(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        pos = 0
        end_of = len(buf)
        while pos < end_of:
            need = self.need
            if need is not None:
                hdr_len, size = need
                if end_of - pos < size + 2:
                    break
                self._payload(hdr_len, buf[pos : pos + size])
                pos += size + 2
                self.need = None
                continue
            nl = buf.find(b"\n", pos)
            if nl < 0:
                break
            line = buf[pos:nl].rstrip(b"\r")
            pos = nl + 1
            if line:
                self.need = self._line(line)
        self.buf = buf[pos:]

    def _line(self, line: bytes) -> tuple[int, int] | None:
        """Log one protocol line; (header length, size) when a payload follows it."""
        c = self.conn
        op = line.split(b" ", 1)[0].upper()
        if op == b"INFO":
            return None
        if op == b"CONNECT":
            if self.inbound:
                trace_connect_in(c, line[8:].lstrip())
            return None
        text = line.decode(errors="replace")
        if not self.inbound and text.startswith("-ERR '") and text.endswith("'"):
            text = "-ERR " + text[6:-1]
        arrow = "<<-" if self.inbound else "->>"
        c.server.logger.trace(f"{connection_label(c)} - {arrow} [{text}]")
        if op not in _MSG_OPS:
            return None
        args = line.split()
        try:
            if op == b"HMSG":
                return int(args[-2]), int(args[-1])
            return 0, int(args[-1])
        except (ValueError, IndexError):
            return None

    def _payload(self, hdr_len: int, payload: bytes) -> None:
        arrow = "<<-" if self.inbound else "->>"
        trace_payload(
            self.conn.server, f"{connection_label(self.conn)} - {arrow}", hdr_len, payload
        )


def trace_link_in(c: Connection, data: bytes) -> None:
    """What a link read, traced (its stream state kept on the connection)."""
    tracer = c.link_trace
    if tracer is None:
        tracer = c.link_trace = LinkTrace(c, True)
    tracer.feed(data)


def trace_link_out(c: Connection, parts: list[bytes]) -> None:
    """What a link is about to write (whole operations), traced but for `Untraced` parts."""
    tracer = LinkTrace(c, False)
    run: list[bytes] = []
    for part in parts:
        if isinstance(part, Untraced):
            if run:
                tracer.feed(b"".join(run))
                run.clear()
            continue
        run.append(part)
    if run:
        tracer.feed(b"".join(run))
