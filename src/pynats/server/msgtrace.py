"""Message tracing (ADR-41): a message with a `Nats-Trace-Dest` header is routed here instead
of by `delivery.route_message`, and what happened to it is published as one JSON event to
the subject the header names, in the publisher's account.

The event is nats-server's `MsgTraceEvent`: `server` (the $SYS `server` block), `request`
(the message's headers and size), `hops` (how many copies went to other servers) and
`events`, in the order they happened: `in` (ingress: who published, in which account, on
which subject), `sm` (the account's mappings changed the subject), `se` (a stream export
carried it into an importing account), `si` (a service import carried it into the exporting
account), `js` (a stream took it) and `eg` (egress: one per subscription or link it went
to, with nats-server's error texts for those that did not take it). With `Nats-Trace-Only: true` (or `1`, `on`) nobody receives the message: the event
says who would have. Imports are traced up to the account boundary, as nats-server does for
imports and exports without `allow_trace`: a service request crosses with its
`Nats-Trace-Dest` value replaced by `trace disabled`. `Accept-Encoding: gzip` or `snappy`
compresses the event (`Content-Encoding` says which; snappy as the framing format with
uncompressed chunks).

Across a route or leaf connection the copy carries `Nats-Trace-Hop` (the egress's `hop`, the
event's `hops` counts them) and the server at the other end reports its own event; pynats
announces route protocol 3 (nats-server's MsgTraceProto) so that Go servers do the same.

The cost for everyone else is one header search, made only for messages that have headers
(see `ClientConnection.process_pub` and `delivery.route_from_link`). A message with a W3C
`traceparent` whose sampled flag is set is traced too when its account has `msg_trace`
(`parse_account_msg_trace`): to that destination, for the configured share of messages.
"""

from __future__ import annotations

import gzip
import json
import random
import secrets
import time
from typing import TYPE_CHECKING, Any

from . import delivery
from .connection import CLIENT, GATEWAY, JETSTREAM, LEAF, ROUTER
from .sublist import EMPTY_RESULT, Subscription

if TYPE_CHECKING:
    from .accounts import Account
    from .conf import ConfigMap
    from .config_reader import Reader
    from .server import Server

TRACE_DEST = b"Nats-Trace-Dest"
TRACE_PARENT = b"raceparent"  # `traceparent` or `Traceparent`: found without lowering
TRACE_ONLY = "Nats-Trace-Only"
TRACE_HOP = "Nats-Trace-Hop"
ACCEPT_ENCODING = "Accept-Encoding"
TRACE_DISABLED = b"trace disabled"
TRACE_RESPONSES_S = 10.0  # how long the trace events of other servers may come back

ERR_NO_ECHO = "Not delivered because of no echo"
ERR_CLIENT_CLOSED = "Not delivered because client is closed"
ERR_SUB_DENY = "Not delivered because subscription denies this subject"


def parse_headers(block: bytes) -> dict[str, list[str]]:
    """The header block as nats-server reports it: keys as sent, each with its values."""
    headers: dict[str, list[str]] = {}
    for line in block.split(b"\r\n")[1:]:
        key, sep, value = line.partition(b":")
        if not sep or not key:
            continue
        name = key.decode(errors="replace").strip()
        headers.setdefault(name, []).append(value.decode(errors="replace").strip())
    return headers


class MsgTrace:
    """One traced message: the event being built and where it goes."""

    def __init__(
        self,
        server: Server,
        account: Account,
        dest: str,
        headers: dict[str, list[str]],
        size: int,
    ) -> None:
        self.server = server
        self.account = account
        self.dest = dest
        self.headers = headers
        self.size = size
        only = (headers.get(TRACE_ONLY) or [""])[0].lower()
        self.trace_only = only in ("1", "true", "on")
        self.encoding = _encoding((headers.get(ACCEPT_ENCODING) or [""])[0])
        self.hops = 0
        self.events: list[dict[str, Any]] = []
        self.is_held = False  # JetStream kept the message back: no event (jetstream_held)

    def add(self, type_: str, /, **fields: Any) -> dict[str, Any]:
        event: dict[str, Any] = {"type": type_, "ts": _now()}
        event.update(fields)
        self.events.append(event)
        return event

    def ingress(self, publisher: Any, account: Account, subject: bytes) -> None:
        event = self.add("in", kind=publisher.kind, cid=publisher.cid)
        name = _conn_name(publisher)
        if name:
            event["name"] = name
        event["acc"] = account.name
        event["subj"] = subject.decode(errors="replace")

    def egress(
        self,
        c: Any,
        sub: Subscription | None,
        error: str = "",
        hop: str = "",
        sub_subject: bytes | None = None,
    ) -> None:
        event = self.add("eg", kind=c.kind, cid=c.cid)
        name = _conn_name(c)
        if name:
            event["name"] = name
        if hop:
            event["hop"] = hop
        if c.kind in (CLIENT, LEAF) and c.account is not self.account:
            event["acc"] = c.account.name
        if sub is not None and c.kind == CLIENT:
            event["sub"] = (sub_subject or sub.subject).decode(errors="replace")
            if sub.queue:
                event["queue"] = sub.queue.decode(errors="replace")
        if error:
            event["error"] = error

    def body(self) -> dict[str, Any]:
        system = self.server.system
        server_block = system.server_info() if system is not None else {}
        request: dict[str, Any] = {}
        if self.headers:
            request["header"] = dict(sorted(self.headers.items()))
        if self.size:
            request["msgsize"] = self.size
        event: dict[str, Any] = {"server": server_block, "request": request}
        if self.hops:
            event["hops"] = self.hops
        event["events"] = self.events
        return event

    def send(self) -> None:
        if self.is_held:
            return
        data = json.dumps(self.body(), separators=(",", ":")).encode()
        headers = b""
        if self.encoding == "gzip":
            data = gzip.compress(data)
            headers = b"NATS/1.0\r\nContent-Encoding: gzip\r\n\r\n"
        elif self.encoding == "snappy":
            data = snappy_frame(data)
            headers = b"NATS/1.0\r\nContent-Encoding: snappy\r\n\r\n"
        from .imports import _client_for

        _client_for(self.server, self.account).publish(self.dest, data, headers=headers)


def route_traced(
    publisher: Any,
    account: Account,
    subject: bytes,
    reply: bytes | None,
    hdr_len: int,
    msg: bytes,
    published: bytes | None = None,
) -> int | None:
    """Route a message whose headers mention `Nats-Trace-Dest` (or `traceparent`) and publish
    its trace event; None when it is not traced after all (route it as usual). `published`
    is the subject as published when the account's mappings changed it to `subject`."""
    headers = parse_headers(msg[:hdr_len])
    dest = (headers.get(TRACE_DEST.decode()) or [""])[0]
    external = False
    if not dest:
        dest = _sampled_dest(publisher, account, headers)
        if not dest:
            return None
        external = True
    elif dest == TRACE_DISABLED.decode():
        return None
    trace = MsgTrace(publisher.server, account, dest, headers, len(msg))
    if external:
        trace.trace_only = False  # only Nats-Trace-Dest can ask for that
    trace.ingress(publisher, account, published or subject)
    if published is not None and published != subject:
        trace.add("sm", to=subject.decode(errors="replace"))
    delivered = _route(trace, publisher, account, subject, reply, hdr_len, msg)
    trace.send()
    return delivered


def trace_dest_permitted(publisher: Any, hdr_len: int, msg: bytes) -> bool:
    """A client with publish permissions must be allowed to publish to the trace destination
    too; when it is not, nats-server refuses the whole message with the destination's -ERR
    (checked before the message's own subject)."""
    dest = (parse_headers(msg[:hdr_len]).get(TRACE_DEST.decode()) or [""])[0]
    if not dest or dest == TRACE_DISABLED.decode():
        return True
    perms = publisher.perms
    if perms is None or perms.can_publish(dest.encode()):
        return True
    publisher.send_err(f'Permissions Violation for Publish to "{dest}"')
    return False


def trace_denied(publisher: Any, subject: bytes, hdr_len: int, msg: bytes) -> None:
    """A traced message its publisher may not publish (the -ERR is sent): the event has only
    the ingress, with the -ERR text as its error."""
    headers = parse_headers(msg[:hdr_len])
    dest = (headers.get(TRACE_DEST.decode()) or [""])[0]
    if not dest or dest == TRACE_DISABLED.decode():
        return
    account = publisher.account
    trace = MsgTrace(publisher.server, account, dest, headers, len(msg))
    trace.ingress(publisher, account, subject)
    trace.events[0]["error"] = f'Permissions Violation for Publish to "{subject.decode()}"'
    trace.send()


def _sampled_dest(publisher: Any, account: Account, headers: dict[str, list[str]]) -> str:
    """The account's `msg_trace` destination for a client's message whose W3C `traceparent`
    has the sampled flag (and that the sampling percentage picks), else ""."""
    if not account.trace_dest or publisher.kind != CLIENT:
        return ""
    parent = next((v[0] for k, v in headers.items() if k.lower() == "traceparent" and v), "")
    parts = parent.split("-")
    if len(parts) != 4:
        return ""
    try:
        flags = int(parts[3], 16)
    except ValueError:
        return ""
    if not flags & 1:
        return ""
    sampling = account.trace_sampling
    if sampling < 100 and random.random() * 100 >= sampling:
        return ""
    return account.trace_dest.decode()


def _route(
    trace: MsgTrace,
    publisher: Any,
    account: Account,
    subject: bytes,
    reply: bytes | None,
    hdr_len: int,
    msg: bytes,
) -> int:
    result = account.sublist.match(subject)
    if result is EMPTY_RESULT:
        return 0
    delivered = 0
    for sub in result.psubs:
        if _to_sub(trace, sub, publisher, subject, reply, hdr_len, msg):
            delivered += 1
    forward: dict[Any, list[bytes]] = {}
    if publisher.is_link:
        # From another server: the local member of each queue group its copy names (else,
        # when this link passes messages on, one further along), as route_message does.
        queues = publisher.queues or ()
        relay = publisher.may_relay
        onward: dict[Any, list[bytes]] = {}
        for group in result.qsubs:
            if group[0].queue not in queues:
                continue
            member = delivery._pick_local_member(group)
            if member is not None:
                if _to_sub(trace, member, publisher, subject, reply, hdr_len, msg):
                    delivered += 1
            elif relay:
                member = delivery._pick_relayed_member(group, publisher)
                if member is not None:
                    onward.setdefault(member.client, []).append(delivery.group_name(member))
        if relay:  # a leaf's hub passes its messages on (untraced from here)
            targets = tuple(link for link in result.links if publisher.relays_to(link))
            if targets or onward:
                delivered += delivery._forward(
                    account, targets, onward or None, subject, reply, hdr_len, msg
                )
        return delivered
    for group in result.qsubs:
        member = delivery._pick_member(group, publisher)
        if member is None:
            continue
        if member.link:
            forward.setdefault(member.client, []).append(delivery.group_name(member))
        elif not _to_sub(trace, member, publisher, subject, reply, hdr_len, msg):
            continue
        delivered += 1
    links = list(result.links)
    links += [link for link in forward if link not in links]
    for link in links:
        if link.closed:
            continue
        deny = getattr(link, "deny_exports", None)
        if deny is not None and not deny.can_publish(subject):
            continue
        trace.hops += 1
        hop = str(trace.hops)
        trace.egress(link, None, hop=hop)
        hdrs = _set_header(msg[:hdr_len], TRACE_HOP, hop.encode())
        link.send_msg(
            account.name_bytes,
            subject,
            reply,
            forward.get(link),
            len(hdrs),
            hdrs + msg[hdr_len:],
        )
        if link not in forward:
            delivered += 1
    return delivered


def _to_sub(
    trace: MsgTrace,
    sub: Subscription,
    publisher: Any,
    subject: bytes,
    reply: bytes | None,
    hdr_len: int,
    msg: bytes,
    shown: bytes | None = None,
) -> bool:
    """One subscription: its trace event, and the delivery unless tracing only. `shown`: the
    subject the event names (a stream import's shadow subscription in the exporter)."""
    callback = sub.callback
    c = sub.client
    if callback is None or callback is delivery.filtered_delivery:
        if c is publisher and not c.echo:
            trace.egress(c, sub, ERR_NO_ECHO, sub_subject=shown)
            return False
        if c.closed:
            trace.egress(c, sub, ERR_CLIENT_CLOSED, sub_subject=shown)
            return False
        if callback is not None and c.perms is not None and c.perms.delivery_denied(subject):
            trace.egress(c, sub, ERR_SUB_DENY, sub_subject=shown)
            return False
        trace.egress(c, sub, sub_subject=shown)
        if trace.trace_only:
            return True
        return delivery.deliver(sub, publisher, subject, subject, reply, hdr_len, msg)
    target = getattr(callback, "msg_trace", None)
    crossing = target(subject) if target is not None else None
    if crossing is not None:
        kind, acc, to = crossing
        into = getattr(callback, "trace_into", None)  # a service export allows tracing
        if kind == "se":
            trace.add("se", acc=acc, to=to)
            owner = getattr(callback, "owner", None)  # a shadow subscription (shadows.py)
            if owner is not None and getattr(
                getattr(callback, "route", None), "allow_trace", False
            ):
                # traced on into the importer: its subscriber, named by the shadow's subject
                return _to_sub(
                    trace, owner, publisher, to.encode(), reply, hdr_len, msg, sub.subject
                )
        else:
            trace.add("si", acc=acc, **{"from": subject.decode(errors="replace")}, to=to)
            if into is not None:
                return _into_service(trace, into, subject, reply, hdr_len, msg)
            hdrs = _set_header(msg[:hdr_len], TRACE_DEST.decode(), TRACE_DISABLED)
            msg = hdrs + msg[hdr_len:]
            hdr_len = len(hdrs)
        if trace.trace_only:
            return True
        return delivery.deliver(sub, publisher, subject, subject, reply, hdr_len, msg)
    stream = getattr(callback, "__self__", None)
    if getattr(callback, "__name__", "") == "on_publish" and hasattr(stream, "config"):
        event = trace.add("js", stream=_stream_name(stream))
        event["subject"] = subject.decode(errors="replace")
        if _no_interest(stream, event["subject"]):
            event["nointerest"] = True
        if trace.trace_only:
            return True
        global _jetstream
        _jetstream = (trace, event)
        try:
            return delivery.deliver(sub, publisher, subject, subject, reply, hdr_len, msg)
        finally:
            _jetstream = None
    if trace.trace_only:
        return True
    return delivery.deliver(sub, publisher, subject, subject, reply, hdr_len, msg)


def _into_service(
    trace: MsgTrace, into: Any, subject: bytes, reply: bytes | None, hdr_len: int, msg: bytes
) -> bool:
    """A request through a service import whose export has `allow_trace`: traced on among
    the exporter's subscribers. Its `Nats-Trace-Dest` becomes a `_R_` subject of the exporter
    (as nats-server does): the events of the servers it goes on to come back through it."""
    client, exporter, crossing = into
    target, mapped = crossing(subject, None if trace.trace_only else reply)
    server = trace.server
    back = server.response_prefix + secrets.token_urlsafe(12).encode()
    hdrs = _set_header(msg[:hdr_len], TRACE_DEST.decode(), back)
    hops = trace.hops
    delivered = _route(trace, client, exporter, target, mapped, len(hdrs), hdrs + msg[hdr_len:])
    if trace.hops > hops:  # other servers will report to `back` until the response deadline
        from .accounts import ServiceResponse

        deadline = time.monotonic() + TRACE_RESPONSES_S
        exporter.responses[back] = ServiceResponse(
            trace.account, trace.dest.encode(), False, deadline
        )
    return delivered > 0


# The traced message a stream is taking right now, with its `js` event (see jetstream_error).
_jetstream: tuple[MsgTrace, dict[str, Any]] | None = None


def jetstream_error(text: str, subject: str | None = None) -> None:
    """For JetStream: the traced message it is ingesting was refused, `text` in nats-server's
    words (e.g. "msgid is duplicate"). The `js` event then names no subject, unless the stream
    refused it after taking its `subject` (a store limit). Does nothing for messages that are
    not traced."""
    if _jetstream is None:
        return
    event = _jetstream[1]
    if subject is None:
        event.pop("subject", None)
        event.pop("nointerest", None)
    else:
        event["subject"] = subject
    event["error"] = text


def jetstream_subject(subject: str) -> None:
    """For JetStream: the traced message is stored under `subject` (a stream's subject
    transform, the last message of the atomic batch a commit stores)."""
    if _jetstream is not None:
        _jetstream[1]["subject"] = subject


def jetstream_held() -> None:
    """For JetStream: the traced message is kept back (a message of an atomic batch before
    its commit, one that ends a fast batch at a gap): nats-server sends no trace event."""
    if _jetstream is not None:
        _jetstream[0].is_held = True


def _no_interest(stream: Any, subject: str) -> bool:
    """An interest-retention stream none of whose consumers wants the subject (it will not
    keep the message): nats-server's `nointerest`."""
    try:
        return bool(stream._interest and not stream._someone_wants(subject))
    except AttributeError:
        return False


def _stream_name(stream: Any) -> str:
    name = getattr(stream, "name", None)
    if isinstance(name, str):
        return name
    return str(getattr(stream.config, "name", ""))


def _set_header(block: bytes, key: str, value: bytes) -> bytes:
    """The header block with `key` set to `value` (replaced where present, else added)."""
    lines = block.split(b"\r\n") if block else [b"NATS/1.0", b"", b""]
    kb = key.encode().lower()
    out: list[bytes] = [lines[0]]
    done = False
    for line in lines[1:]:
        if not line:
            continue
        name, sep, _ = line.partition(b":")
        if sep and name.strip().lower() == kb:
            if not done:
                out.append(key.encode() + b": " + value)
                done = True
            continue
        out.append(line)
    if not done:
        out.append(key.encode() + b": " + value)
    return b"\r\n".join(out) + b"\r\n\r\n"


def _conn_name(c: Any) -> str:
    """nats-server's getConnName: the remote server's name for a link, else the client's."""
    if c.kind == ROUTER:
        return str(getattr(c, "remote_name", "") or "")
    if c.kind == LEAF:
        return str(getattr(c, "remote_name", "") or "")
    if c.kind == GATEWAY:  # the server at the other end (its cluster is `remote_name`)
        return str(getattr(c, "remote_server_name", "") or "")
    if c.kind == JETSTREAM:
        return ""
    return str(getattr(c, "name", "") or "")


def _encoding(accept: str) -> str:
    accept = accept.lower()
    if "snappy" in accept or "s2" in accept:
        return "snappy"
    if "gzip" in accept:
        return "gzip"
    return ""


def _now() -> str:
    from ..gotime import rfc3339

    return rfc3339(time.time_ns())


# -- snappy framing (uncompressed chunks) ----------------------------------------------------

_CRC32C_TABLE: list[int] = []


def _crc32c(data: bytes) -> int:
    if not _CRC32C_TABLE:
        for i in range(256):
            crc = i
            for _ in range(8):
                crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
            _CRC32C_TABLE.append(crc)
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> bytes:
    crc = _crc32c(data)
    masked = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    return masked.to_bytes(4, "little")


def snappy_frame(data: bytes) -> bytes:
    """The snappy framing format with uncompressed chunks (what any snappy/s2 reader reads)."""
    out = [b"\xff\x06\x00\x00sNaPpY"]
    for i in range(0, len(data), 65536):
        chunk = data[i : i + 65536]
        size = len(chunk) + 4
        out.append(b"\x01" + size.to_bytes(3, "little") + _masked_crc(chunk) + chunk)
    return b"".join(out)


# -- the account's `msg_trace` (traceparent) -------------------------------------------------


def parse_account_msg_trace(r: Reader, m: ConfigMap, key: str) -> tuple[str, int]:
    """An account's `msg_trace: "dest"` or `msg_trace { dest, sampling }` (`trace_dest` is the
    string form), with nats-server's checks and texts: (destination, sampling percent)."""
    from .conf import ConfigMap
    from .conf.units import go_type_name
    from .subjects import is_valid_literal_subject

    value = m[key]
    dest, sampling = "", 0
    if isinstance(value, str):
        dest = value
        if not is_valid_literal_subject(dest.encode()):
            r.error(m, key, f'Trace destination "{dest}" is not valid')
            return "", 0
        return dest, 100
    if not isinstance(value, ConfigMap):
        r.error(
            m,
            key,
            f'Expected account message trace "{key}" to be a string or a map/struct, '
            f"got {go_type_name(value)}",
        )
        return "", 0
    sampling_set = False
    for k in value:
        v = value[k]
        lk = k.lower()
        if lk == "dest":
            if not isinstance(v, str):
                r.error(value, k, f'Field "{k}" should be a string, got {go_type_name(v)}')
                return "", 0
            if not is_valid_literal_subject(v.encode()):
                r.error(value, k, f'Trace destination "{v}" is not valid')
                return "", 0
            dest = v
        elif lk == "sampling":
            if isinstance(v, str):
                try:
                    sampling = int(v.strip().removesuffix("%").strip())
                except ValueError:
                    r.error(value, k, f'Invalid trace destination sampling value "{v}"')
                    return "", 0
            elif isinstance(v, int) and not isinstance(v, bool):
                sampling = v
            else:
                r.error(
                    value,
                    k,
                    f'Trace destination sampling field "{k}" should be an integer or a '
                    f"percentage, got {go_type_name(v)}",
                )
                return "", 0
            if not 1 <= sampling <= 100:
                # nats-server's text, its typo included.
                r.error(
                    value,
                    k,
                    f"Ttrace destination sampling value {sampling} is invalid, "
                    "needs to be [1..100]",
                )
                return "", 0
            sampling_set = True
        elif not value.is_used_variable(k):
            r.error(
                value, k, f'Unknown field "{k}" parsing account message trace map/struct "{key}"'
            )
            return "", 0
    if sampling_set and not dest:
        r.error(m, key, "Trace destination sampling ignored since no destination was set")
        return "", 0
    return dest, sampling or 100
