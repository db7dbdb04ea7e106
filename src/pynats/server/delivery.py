"""The one delivery path: from a matched subject to every receiver, whatever its kind.

Every message that leaves routing goes through here: to a client (a MSG/HMSG frame on its
outbound list), to an in-process subscriber (a call, `DeliveryCallback`), or to another
server (one RMSG per route connection, naming the queue groups it is for). The sublist's
`SublistResult` says who: local plain subscriptions (`psubs`; `framed` pairs each with its
pre-built frame head), queue groups (`qsubs`, remote members weighted by their member count)
and the links to other servers with plain interest (`links`).

Two ways in, one set of rules:

- `route_message`: a message published here (a client, an in-process publisher): plain
  subscribers all get it, each queue group one member (at random, remote members weighted),
  and every other server with interest one copy. Or a message from another server (the
  publisher is a link): local receivers only (every server is one hop from every other):
  plain subscribers, and a local member of each queue group the copy names
  (`publisher.queues`).
- `route_as`: JetStream's delivery to a consumer's inbox: routed by one subject, framed with
  another (the stored message's).

`publish_plain` is a client's PUB in the common case (no headers, no mapping, permission or
verbose check, no reply of the server's own): the parser hands every PUB to it first, so the
hottest publish costs no Python frame (`protocol.ProtocolParser.route_plain_pubs`).

`route_from_link` is how a route or leaf connection hands over what it received: it puts a
JetStream delivery back into `route_as` form and everything else into `route_message`.

A subscription's delivered count and its auto-unsubscribe (`UNSUB <sid> <max>`) are applied in
`_count` (the plain-subscriber loop of `route_message`, the hottest loop of the server, keeps
an inlined copy of those two lines).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Final, Protocol

from .const import GATEWAY, LEAF, ROUTER
from .sublist import EMPTY_RESULT, Outbound, Subscription

if TYPE_CHECKING:
    from .accounts import Account
    from .server import Server

CRLF: Final = b"\r\n"
# b"<size>\r\n" for the sizes most messages have, so the frame tail is a lookup, not a format.
SIZE_TAILS: Final = [b"%d\r\n" % i for i in range(4096)]
JS_ACK_PREFIX: Final = b"$JS.ACK."
# replies only the server hands out: a client's PUB naming one takes the checked path
RESERVED_REPLY_PREFIXES: Final = (b"_R_.", JS_ACK_PREFIX, b"$GNR.")
# a reply mapped to come back through a gateway (gateways.py)
GATEWAY_REPLY_PREFIX: Final = b"_GR_."


class Publisher(Protocol):
    """Whoever hands a message to routing: a socket connection or an internal client.

    `account` is the account the message was published in (for a route connection, which
    carries many accounts, the account of the message being delivered).
    """

    @property
    def server(self) -> Server: ...

    @property
    def account(self) -> Account: ...

    @property
    def cid(self) -> int: ...

    @property
    def echo(self) -> bool: ...


class DeliveryCallback(Protocol):
    """An in-process subscriber, called synchronously while the message is routed.

    `headers` is the raw header block (`NATS/1.0\\r\\n...\\r\\n\\r\\n`) or b"", `payload` the
    body. The callback must not block: anything slow is queued for later.
    """

    def __call__(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
        /,
    ) -> None: ...


# -- entries ---------------------------------------------------------------------------------


def publish_plain(client: Any, subject: bytes, reply: bytes | None, payload: bytes) -> bool:
    """A client's PUB without headers, routed when none of its checks can apply (no subject
    mapping in its account, no publish permissions, no verbose or pedantic checks, no reply
    of the server's own); False leaves it to the client's `process_pub`."""
    account = client.account
    if account.mappings is not None or client.pub_allowed is not None or client.checks:
        return False
    if reply is None:
        route_message(client, account, subject, None, 0, payload)
        return True
    if reply.startswith(RESERVED_REPLY_PREFIXES):
        return False
    if not route_message(client, account, subject, reply, 0, payload) and client.no_responders:
        client.send_no_responders(subject, reply)
    return True


def route_message(
    publisher: Any,
    account: Account,
    subject: bytes,
    reply: bytes | None,
    hdr_len: int,
    msg: bytes,
) -> int:
    """Deliver a message published on this server; returns how many receivers took it.

    `msg` is the header block (the first `hdr_len` bytes, if any) followed by the payload.
    A copy sent to another server counts as one delivery (so a request whose responders are
    all elsewhere in the cluster is not answered with 503).
    """
    sublist = account.sublist
    result = sublist.cache.get(subject)
    if result is None:
        result = sublist.match(subject)
    if result is EMPTY_RESULT:
        if account.gateway_replies is not None and not getattr(publisher, "is_link", False):
            # an answer to a request from another cluster, sent to the reply it was given
            # (without its `_GR_` prefix): gateways.py knows where it goes
            return int(account.gateway_replies.unmatched(publisher, subject, reply, hdr_len, msg))
        return 0
    psubs, qsubs, framed, links = result
    n = len(msg)
    if reply is None:
        tail = SIZE_TAILS[n] if n < 4096 else b"%d\r\n" % n
    else:
        tail = b"%b %d\r\n" % (reply, n)
    pending = publisher.server.pending_flush
    delivered = 0
    if hdr_len:
        for sub in psubs:
            if deliver(sub, publisher, subject, subject, reply, hdr_len, msg):
                delivered += 1
    elif psubs:
        # The hot loop: plain subscribers of a message without headers, framed inline.
        for sub, head in framed:
            c = sub.client
            if sub.callback is not None:
                sub.callback(sub, publisher, subject, reply, b"", msg)
            elif c is publisher and not c.echo:
                continue
            else:
                ob = sub.outbound
                assert ob is not None  # a subscription without a callback is a connection's
                ob.parts += (b"MSG ", head, tail, msg, CRLF)
                ob.msgs += 1
                ob.size += n
                if not ob.queued:
                    ob.queued = True
                    pending.append(c)
            delivered += 1
            sub.delivered += 1  # inlined _count
            if sub.max_msgs and sub.delivered >= sub.max_msgs:
                c.remove_subscription(sub)
    if not (qsubs or links):
        return delivered
    if publisher.is_link:
        # From another server: local receivers, the queue groups the copy names (a member
        # here, else - when this link may pass messages on - one further along), and the
        # links this one relays to (a leaf's hub passes its messages on to the cluster).
        queues = publisher.queues
        relay = publisher.may_relay
        onward: dict[Any, list[bytes]] | None = None
        if queues and qsubs:
            for group in qsubs:
                if group[0].queue not in queues:
                    continue
                member = _pick_local_member(group)
                if member is not None:
                    if deliver(member, publisher, subject, subject, reply, hdr_len, msg):
                        delivered += 1
                elif relay:
                    member = _pick_relayed_member(group, publisher)
                    if member is not None:
                        if onward is None:
                            onward = {}
                        onward.setdefault(member.client, []).append(group_name(member))
        if relay and (links or onward):
            targets = tuple(link for link in links if publisher.relays_to(link))
            if targets or onward:
                # a request from another cluster goes on with the `_GR_` reply it came with
                # (receivers here saw it stripped), so the server that answers sends the
                # answer straight back to that cluster, as nats-server's do
                route_reply = publisher.relay_reply or reply
                delivered += _forward(
                    account, targets, onward, subject, reply, hdr_len, msg, route_reply
                )
        return delivered
    forward: dict[Any, list[bytes]] | None = None
    for group in qsubs:
        member = _pick_member(group, publisher)
        if member is None:
            continue
        if member.link:
            if forward is None:
                forward = {}
            forward.setdefault(member.client, []).append(group_name(member))
        elif not deliver(member, publisher, subject, subject, reply, hdr_len, msg):
            continue
        delivered += 1
    if forward is None and not hdr_len and (reply is None or not account.gateway_replies):
        # The plain copy to each other server with interest, framed inline (a gateway
        # rewrites replies: with gateways, a message with a reply goes through send_msg).
        account_head = account.rmsg_head
        for link in links:
            if link.closed:
                continue
            deny = link.deny_exports  # a leaf remote's deny_exports (None elsewhere)
            if deny is not None and not deny.can_publish(subject):
                continue
            link.out += (link.rmsg_prefix or account_head, subject, b" ", tail, msg, CRLF)
            link.out_msgs += 1
            link.out_bytes += n
            if not link.flush_queued:
                link.flush_queued = True
                pending.append(link)
            delivered += 1
    elif links or forward:
        delivered += _forward(account, links, forward, subject, reply, hdr_len, msg)
    return delivered


def route_from_link(
    link: Any,
    account: Account,
    subject: bytes,
    reply: bytes | None,
    queues: list[bytes] | None,
    hdr_len: int,
    msg: bytes,
) -> int:
    """A message another server sent (a route or a leaf connection). A JetStream delivery
    comes routed by the consumer's inbox with the stored subject after the last `@` of its
    `$JS.ACK` reply: it is framed with that subject again. A reply mapped for a gateway
    (`_GR_.`) loses its prefix here when this server has gateways (gateways.py)."""
    link.account = account
    if reply is not None and reply.startswith(GATEWAY_REPLY_PREFIX):
        replies = account.gateway_replies
        if replies is not None:
            # a request from another cluster: receivers see the reply its requester gave
            reply = replies.strip(reply)
    if reply is not None and reply.startswith(JS_ACK_PREFIX):
        at = reply.rfind(b"@")
        if 0 < at < len(reply) - 1:
            return route_as(
                link, account, subject, reply[at + 1 :], reply[:at], msg[:hdr_len], msg[hdr_len:]
            )
    link.queues = queues
    if hdr_len and msg.find(b"Nats-Trace-Dest", 0, hdr_len) >= 0:
        from .msgtrace import route_traced

        delivered = route_traced(link, account, subject, reply, hdr_len, msg)
        if delivered is not None:
            return delivered
    return route_message(link, account, subject, reply, hdr_len, msg)


def route_as(
    publisher: Any,
    account: Account,
    to: bytes,
    subject: bytes,
    reply: bytes | None,
    headers: bytes,
    payload: bytes,
) -> int:
    """Deliver to everyone interested in `to`, with `subject` in the MSG/HMSG line.

    This is how JetStream delivers a stored message to a consumer's inbox or deliver
    subject. Another server receives it routed by `to`, the stored subject riding after an
    `@` at the end of the ack reply, as nats-server sends it. Returns deliveries (a queue
    group counts once). From a link, only local receivers get it.
    """
    result = account.sublist.match(to)
    if result is EMPTY_RESULT:
        return 0
    hdr_len = len(headers)
    msg = headers + payload if headers else payload
    from_link = bool(getattr(publisher, "is_link", False))
    delivered = 0
    for sub in result.psubs:
        if deliver(sub, publisher, subject, to, reply, hdr_len, msg):
            delivered += 1
    forward: dict[Any, list[bytes]] | None = None
    for group in result.qsubs:
        member = _pick_local_member(group) if from_link else _pick_member(group, publisher)
        if member is None:
            continue
        if member.link:
            if forward is None:
                forward = {}
            forward.setdefault(member.client, []).append(group_name(member))
        elif not deliver(member, publisher, subject, to, reply, hdr_len, msg):
            continue
        delivered += 1
    if not from_link and (result.links or forward):
        routed_reply = reply + b"@" + subject if reply is not None else None
        delivered += _forward(account, result.links, forward, to, routed_reply, hdr_len, msg)
    return delivered


# -- receivers -------------------------------------------------------------------------------


def deliver(
    sub: Subscription,
    publisher: Any,
    subject: bytes,
    routed_by: bytes,
    reply: bytes | None,
    hdr_len: int,
    msg: bytes,
) -> bool:
    """One message to one local subscription: a call for an in-process subscriber, a
    MSG/HMSG frame (`subject` in the line) for a client. False when it did not take it.

    `routed_by` is the subject the subscription matched (differs from `subject` only for
    JetStream deliveries); it is what a client's permission filter checks.
    """
    callback = sub.callback
    if callback is not None:
        if routed_by is not subject and hasattr(callback, "deliver_as"):
            # a stream import's shadow (shadows.py) maps the routing subject, not the framed
            callback.deliver_as(sub, publisher, subject, routed_by, reply, hdr_len, msg)
        elif hdr_len:
            callback(sub, publisher, subject, reply, msg[:hdr_len], msg[hdr_len:])
        else:
            callback(sub, publisher, subject, reply, b"", msg)
    else:
        c = sub.client
        if (c is publisher and not c.echo) or c.closed:
            return False
        ob = sub.outbound
        assert ob is not None  # a subscription without a callback is a connection's
        _frame(ob, c, sub.sid, subject, reply, hdr_len, msg)
    _count(sub)
    return True


def frame_to_client(
    c: Any, sid: bytes, subject: bytes, reply: bytes | None, hdr_len: int, msg: bytes
) -> None:
    """Append one MSG (HMSG with headers, for a client that negotiated them) to `c.out`."""
    _frame(c.ob, c, sid, subject, reply, hdr_len, msg)


def _frame(
    ob: Outbound,
    c: Any,
    sid: bytes,
    subject: bytes,
    reply: bytes | None,
    hdr_len: int,
    msg: bytes,
) -> None:
    """One MSG/HMSG into a connection's outbound (`c` says whether it negotiated headers,
    and joins the server's pending flushes)."""
    n = len(msg)
    if hdr_len and c.headers:
        if reply is not None:
            line = b"HMSG %b %b %b %d %d\r\n" % (subject, sid, reply, hdr_len, n)
        else:
            line = b"HMSG %b %b %d %d\r\n" % (subject, sid, hdr_len, n)
        ob.parts += (line, msg, CRLF)
    else:
        if hdr_len:
            msg = msg[hdr_len:]
            n = len(msg)
        if reply is not None:
            line = b"MSG %b %b %b %d\r\n" % (subject, sid, reply, n)
        else:
            line = b"MSG %b %b %d\r\n" % (subject, sid, n)
        ob.parts += (line, msg, CRLF)
    ob.msgs += 1
    ob.size += n
    if not ob.queued:
        ob.queued = True
        ob.pending.append(c)


def filtered_delivery(
    sub: Subscription,
    publisher: Publisher,
    subject: bytes,
    reply: bytes | None,
    headers: bytes,
    payload: bytes,
) -> None:
    """Delivery for subscriptions of clients with subscribe-deny filters or allow_responses:
    those subscriptions carry this callback so that nobody else pays for the checks."""
    c = sub.client
    if (c is publisher and not c.echo) or c.closed:
        return
    perms = c.perms
    if perms is not None and perms.delivery_denied(subject):
        return
    if reply is not None and c.responses is not None:
        c.responses.grant(reply)
    frame_to_client(c, sub.sid, subject, reply, len(headers), headers + payload)


def group_name(sub: Subscription) -> bytes:
    """The queue name of a member of a queue group."""
    assert sub.queue is not None
    return sub.queue


def _count(sub: Subscription) -> None:
    """A subscription took a message: count it, and end it at its auto-unsubscribe limit."""
    sub.delivered += 1
    if sub.max_msgs and sub.delivered >= sub.max_msgs:
        sub.client.remove_subscription(sub)


def _forward(
    account: Account,
    links: tuple[Any, ...],
    queued: dict[Any, list[bytes]] | None,
    subject: bytes,
    reply: bytes | None,
    hdr_len: int,
    msg: bytes,
    route_reply: bytes | None = None,
) -> int:
    """One copy to each other server that wants it, naming the queue groups it is for
    (`route_reply`, when given, is the reply the servers of this cluster get)."""
    name = account.name_bytes
    sent = 0
    for link in links:
        queues = queued.pop(link, None) if queued else None
        r = route_reply if route_reply is not None and link.kind == ROUTER else reply
        link.send_msg(name, subject, r, queues, hdr_len, msg)
        sent += 1
    if queued:
        for link, queues in queued.items():
            r = route_reply if route_reply is not None and link.kind == ROUTER else reply
            link.send_msg(name, subject, r, queues, hdr_len, msg)
    return sent


def _pick_member(group: tuple[Subscription, ...], publisher: Any) -> Subscription | None:
    """One member of a queue group, at random; skip members that cannot take the message.
    A member behind a leaf connection is taken only when no other member can, one in another
    cluster (a gateway) only when no member of this cluster can (nats-server keeps queue
    traffic inside the cluster when it can)."""
    count = len(group)
    start = int(random.random() * count)
    fallback: Subscription | None = None
    for i in range(count):
        sub = group[(start + i) % count]
        c = sub.client
        if c is publisher and sub.callback is None and not c.echo:
            continue
        kind = sub.kind
        if kind in (LEAF, GATEWAY):
            # another cluster's member only when this cluster has none
            if fallback is None or (kind == LEAF and fallback.kind == GATEWAY):
                fallback = sub
            continue
        return sub
    return fallback


def _pick_relayed_member(group: tuple[Subscription, ...], publisher: Any) -> Subscription | None:
    """For a message from a link that passes messages on: a member the link relays to."""
    count = len(group)
    start = int(random.random() * count)
    for i in range(count):
        sub = group[(start + i) % count]
        if sub.client is not publisher and publisher.relays_to(sub.client):
            return sub
    return None


def _pick_local_member(group: tuple[Subscription, ...]) -> Subscription | None:
    """For a message from another server: a member on this server (never another link)."""
    count = len(group)
    start = int(random.random() * count)
    for i in range(count):
        sub = group[(start + i) % count]
        if not sub.link:
            return sub
    return None


def write_pending(pending: list[Any]) -> None:
    """Write every connection in `pending` (the server's `pending_flush`) once, each in one
    call. Compiled, so the end of every read (`Connection.data_received`) costs no Python
    frame per receiver; a connection that joins while this runs (one closed as a slow
    consumer says why) is written in the next round."""
    while pending:
        batch = pending[:]
        pending.clear()
        for conn in batch:
            ob: Outbound = conn.ob
            ob.queued = False
            if ob.parts:
                write_queued(conn, ob)


def write_queued(conn: Any, ob: Outbound) -> None:
    """Hand the connection's queued frames to its transport in one write (`Connection.flush`);
    a socket that is over its high-water mark is the connection's business
    (`Connection.written_while_blocked`)."""
    parts = ob.parts
    transport = conn.transport
    if conn.closed or transport is None or transport.is_closing():
        parts.clear()
        return
    if conn.is_link and conn.server.logger.trace_enabled:
        conn.trace_frames_out(parts)
    data = parts[0] if len(parts) == 1 else b"".join(parts)
    parts.clear()
    conn.bytes_written += len(data)
    transport.write(data)
    if conn.is_write_blocked:
        conn.written_while_blocked()
