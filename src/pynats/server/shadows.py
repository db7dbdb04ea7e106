"""Stream imports as shadow subscriptions: interest crosses accounts only while it exists.

A stream import of `a.>` from account A into B does not subscribe in A by itself. Each
subscription in B whose subject meets the import's subjects in B (its `to`, or `a.>` under its
prefix) gets a *shadow*: a subscription in A on the corresponding subject of A, owned by the B
subscription. A message published in A that matches the shadow goes to that B subscription
alone, with its subject mapped into B's space. So A has interest in `a.>` exactly while B has
a subscriber there (its sublist, its routes and leafs, JetStream's push-bound and interest
checks all see it), overlapping subscriptions in B get one copy each, and a queue group in B
stays one queue group (its shadows carry the queue name). As in nats-server
(addShadowSubscriptions): a route's or a gateway's subscription gets no shadow (the server
it came from shadows it), a service import's own subscription gets none, a shadow gets none
(imports do not chain), and a message that reached A through a service import does not go on
through a stream import.

The owner's delivered count and auto-unsubscribe apply to the owner; when it goes (UNSUB,
auto-unsubscribe, its client closing), its shadows go. An import wired while subscriptions
already exist (start, reload, a JWT update) shadows them at once; unwiring removes the
shadows. Subscriptions of an account without stream imports pay nothing: the account's
sublist listener is added with its first stream import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .accounts import map_subject
from .connection import GATEWAY, LEAF, ROUTER
from .delivery import deliver
from .subjects import FWC, PWC, is_subset_match
from .sublist import Subscription

if TYPE_CHECKING:
    from .accounts import Account
    from .delivery import Publisher


class StreamImport:
    """One stream import: `source` subjects of `exporter` seen as `dest` in `importer`."""

    def __init__(self, exporter: Account, importer: Account, source: bytes, dest: bytes) -> None:
        self.exporter = exporter
        self.importer = importer
        self.source = source
        self.dest = dest
        self._source_tokens = source.split(b".")
        self._dest_tokens = dest.split(b".")
        # the import's subjects in the importer, `$n` (an account JWT's form) as `*`
        self.pattern = b".".join(
            PWC if t[:1] == b"$" and t[1:].isdigit() else t for t in self._dest_tokens
        )
        self._pattern_tokens = self.pattern.split(b".")
        # nats-server's usePub: a wildcard import kept under the same subjects
        self.same_subjects = source == dest
        self.shadows: dict[Subscription, Subscription] = {}
        self.closed = False
        # `allow_trace` (set by who wires it): traced messages are traced on to the owners
        self.allow_trace = False

    # -- subjects --------------------------------------------------------------------------

    def to_importer(self, subject: bytes) -> bytes:
        """The importer's subject for a message of the exporter's."""
        return map_subject(subject, self.source, self.dest)

    def to_exporter(self, subject: bytes) -> bytes:
        """The exporter's subject for a subject of the import's in the importer (the
        transform reversed: each wildcard of `source` takes what its place in `dest` holds)."""
        toks = subject.split(b".")
        dest = self._dest_tokens
        by_wildcard: dict[int, bytes] = {}
        k = 0
        for i, t in enumerate(dest):
            if i >= len(toks):
                break
            if t in (PWC, FWC):
                k += 1
                by_wildcard[k] = b".".join(toks[i:]) if t == FWC else toks[i]
            elif t[:1] == b"$" and t[1:].isdigit():
                by_wildcard[int(t[1:])] = toks[i]
        out: list[bytes] = []
        k = 0
        for t in self._source_tokens:
            if t in (PWC, FWC):
                k += 1
                out.append(by_wildcard.get(k, t))
            else:
                out.append(t)
        return b".".join(out)

    def shadow_subject(self, subject: bytes) -> bytes | None:
        """Where in the exporter a subscription of the importer on `subject` listens, or
        None when it does not meet the import (nats-server's four cases: equal, inside,
        covering, overlapping)."""
        pattern = self.pattern
        if subject == pattern:
            return self.source
        if is_subset_match(subject, pattern):
            return subject if self.same_subjects else self._reverse(subject)
        if PWC not in subject.split(b".") and not subject.endswith(b">"):
            return None
        if is_subset_match(pattern, subject):
            return self.source
        overlap = self._overlap(subject)
        if overlap is None:
            return None
        return overlap if self.same_subjects else self._reverse(overlap)

    def _reverse(self, subject: bytes) -> bytes:
        if PWC not in self._source_tokens and FWC not in self._source_tokens:
            return self.source
        return self.to_exporter(subject)

    def _overlap(self, subject: bytes) -> bytes | None:
        """The part of a wildcard `subject` that lies inside `dest`, when there is one."""
        toks = subject.split(b".")
        dtoks = self._pattern_tokens
        for i, t in enumerate(toks[: len(dtoks)]):
            if t == PWC and dtoks[i] != FWC:
                toks[i] = dtoks[i]
        last = len(toks) - 1
        if toks[last] == FWC and len(dtoks) >= len(toks):
            toks[last] = dtoks[last]
            toks.extend(dtoks[len(toks) :])
        narrowed = b".".join(toks)
        if narrowed != subject and is_subset_match(narrowed, self.pattern):
            return narrowed
        return None

    # -- shadows ---------------------------------------------------------------------------

    def add_shadow(self, owner: Subscription) -> None:
        subject = self.shadow_subject(owner.subject)
        if subject is None or owner in self.shadows:
            return
        client = owner.client
        holder = _LinkOwner(client) if client.is_link else client
        shadow = Subscription(holder, subject, owner.queue, owner.sid, ShadowDelivery(self, owner))
        shadow.weight = owner.weight
        self.shadows[owner] = shadow
        self.exporter.internal_subs += 1
        self.exporter.sublist.insert(shadow)

    def remove_shadow(self, owner: Subscription) -> None:
        shadow = self.shadows.pop(owner, None)
        if shadow is not None:
            self.exporter.internal_subs -= 1
            self.exporter.sublist.remove(shadow)

    def close(self) -> None:
        """Unwire: the import and every shadow it made are gone."""
        if self.closed:
            return
        self.closed = True
        imports = self.importer.stream_imports
        if imports is not None and self in imports:
            imports.remove(self)
        for owner in list(self.shadows):
            self.remove_shadow(owner)


class ShadowDelivery:
    """The callback of a shadow subscription: the message goes to the owning subscription in
    the importer, under the importer's subject."""

    __slots__ = ("owner", "route")

    def __init__(self, route: StreamImport, owner: Subscription) -> None:
        self.route = route
        self.owner = owner

    def __call__(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        route = self.route
        if publisher is route.exporter.imports_client:
            return  # a service import's request (or its response): not exported on
        mapped = route.to_importer(subject)
        owner = self.owner
        client = owner.client
        if client.is_link:
            queues = [owner.queue] if owner.queue is not None else None
            client.send_msg(b"", mapped, reply, queues, len(headers), headers + payload)
            return
        deliver(owner, publisher, mapped, mapped, reply, len(headers), headers + payload)

    def deliver_as(
        self,
        sub: Subscription,
        publisher: Any,
        subject: bytes,
        routed_by: bytes,
        reply: bytes | None,
        hdr_len: int,
        msg: bytes,
    ) -> None:
        """A JetStream delivery (`delivery.route_as`): routed by `routed_by`, framed with the
        stored `subject`; the import maps the routing subject and leaves the framed one."""
        route = self.route
        mapped = route.to_importer(routed_by)
        owner = self.owner
        client = owner.client
        if client.is_link:
            queues = [owner.queue] if owner.queue is not None else None
            routed_reply = reply + b"@" + subject if reply is not None else None
            client.send_msg(b"", mapped, routed_reply, queues, hdr_len, msg)
            return
        deliver(owner, publisher, subject, mapped, reply, hdr_len, msg)

    def msg_trace(self, subject: bytes) -> tuple[str, str, str]:
        """What msgtrace.py reports for this delivery: a stream export into the importer."""
        route = self.route
        return "se", route.importer.name, route.to_importer(subject).decode()


class _LinkOwner:
    """Holds, in the exporter's sublist, the shadow of a subscription another server (a leaf)
    made in the importer: interest of this server's (delivered by the shadow's callback), not
    a link of the exporter's."""

    __slots__ = ("link",)
    is_link = False
    echo = True
    kind = LEAF

    def __init__(self, link: Any) -> None:
        self.link = link

    @property
    def closed(self) -> bool:
        return bool(self.link.closed)

    @property
    def cid(self) -> int:
        return int(self.link.cid)

    def remove_subscription(self, sub: Subscription) -> None:
        """Shadows end with their owner, not by their own count."""


def add_stream_import(
    exporter: Account, importer: Account, source: bytes, dest: bytes
) -> StreamImport:
    """Wire a stream import: shadows for the importer's subscriptions now and from now on."""
    route = StreamImport(exporter, importer, source, dest)
    if importer.stream_imports is None:
        importer.stream_imports = []
        importer.sublist.interest_listeners.append(
            lambda sub, delta: _owner_changed(importer, sub, delta)
        )
    importer.stream_imports.append(route)
    for sub in list(importer.sublist.all_subscriptions()):
        if _may_have_shadows(sub):
            route.add_shadow(sub)
    return route


def remove_stream_imports(importer: Account, keep: list[Any] | None = None) -> None:
    """Unwire the importer's stream imports (all but those in `keep`)."""
    for route in list(importer.stream_imports or ()):
        if keep is None or route not in keep:
            route.close()


def _owner_changed(importer: Account, sub: Subscription, delta: int) -> None:
    imports = importer.stream_imports
    if not imports or not _may_have_shadows(sub):
        return
    if delta > 0:
        for route in imports:
            route.add_shadow(sub)
    else:
        for route in imports:
            route.remove_shadow(sub)


def _may_have_shadows(sub: Subscription) -> bool:
    """A service import's own subscription, a route's, another cluster's interest (a
    gateway's: the server that receives the message there shadows its own subscriber) and
    another import's shadow have none."""
    if sub.local_only or type(sub.callback) is ShadowDelivery:
        return False
    client = sub.client
    return not (client.is_link and (client.kind == ROUTER or client.kind == GATEWAY))
