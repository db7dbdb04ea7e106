"""The subject index: which subscriptions does a published subject reach?

A trie over tokens holds every subscription (literal tokens, `*` and `>` branches). Matching a
literal subject walks the trie once; the answer is cached per literal subject, because the same
few subjects are published over and over. A subscribe or unsubscribe drops exactly the cached
answers it changes: the entry for a literal subject, or every entry its wildcard matches.

A match result is a `SublistResult`: `psubs` holds every plain subscription of this server
(clients and in-process subscribers), `framed` the same subscriptions each paired with the
`b"<subject> <sid> "` part of its frame (built once per cached subject instead of once per
message; empty for an in-process subscriber, which is called, not framed), `links` the
connections to other servers (routes) with plain interest, each once however many of their
subscriptions match, and `qsubs` one tuple of members per queue name (members of the same
queue name on different subjects form one group, as in nats-server). A remote queue member
stands for `weight` members of that server and appears `weight` times, so that picking a
member at random honours every server's share.

Subscriptions whose client has `is_link` set are remote interest; `interest_listeners` hear
about every insert (+1) and removal (-1), which is how a cluster and leaf connections announce
interest to other servers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from .subjects import FWC, PWC, ack_numbers_at, subject_matches

if TYPE_CHECKING:
    from .delivery import DeliveryCallback

CACHE_MAX_ENTRIES: Final = 4096
# JetStream ack subjects are unique per delivery: caching them by subject would only evict
# useful entries. They are cached by their consumer's part instead (`Sublist.match`).
UNCACHED_PREFIX: Final = b"$JS.ACK."
CACHE_SWEEP: Final = 1024


class SublistResult(NamedTuple):
    """Who receives a message published on one literal subject."""

    psubs: tuple[Subscription, ...]
    qsubs: tuple[tuple[Subscription, ...], ...]
    framed: tuple[tuple[Subscription, bytes], ...]
    links: tuple[Any, ...]


EMPTY_RESULT: Final = SublistResult((), (), (), ())


class Outbound:
    """A connection's frames waiting to be written, and its traffic counts. Compiled, so the
    delivery loop (delivery.py) appends and counts, and the client parser (protocol.py)
    counts what it received, without Python attribute lookups; the connection
    (connection.py) shows the same fields as `out`, `out_msgs`, `out_bytes`,
    `flush_queued`, `in_msgs` and `in_bytes`."""

    __slots__ = ("in_bytes", "in_msgs", "msgs", "parts", "pending", "queued", "size")

    def __init__(self, pending: list[Any] | None = None) -> None:
        self.parts: list[bytes] = []
        self.msgs = 0
        self.size = 0  # payload bytes, as nats-server counts out_bytes
        self.queued = False  # in the server's pending_flush
        self.in_msgs = 0
        self.in_bytes = 0  # header block and payload, as nats-server counts in_bytes
        # the server's pending_flush, which the connection joins when `queued` turns True
        self.pending: list[Any] = pending if pending is not None else []


class Subscription:
    """One subscription: a socket client's `SUB`, or an internal callback.

    `callback` is None for socket clients; an in-process subscriber is called instead of
    framing (`delivery.DeliveryCallback`).
    """

    __slots__ = (
        "callback",
        "client",
        "delivered",
        "kind",
        "link",
        "local_only",
        "max_msgs",
        "outbound",
        "queue",
        "sid",
        "subject",
        "weight",
    )

    def __init__(
        self,
        client: Any,
        subject: bytes,
        queue: bytes | None,
        sid: bytes,
        callback: DeliveryCallback | None = None,
    ) -> None:
        self.client = client
        self.subject = subject
        self.queue = queue
        self.sid = sid
        self.callback = callback
        # the socket connection's outbound frames (None for in-process subscribers)
        self.outbound: Outbound | None = getattr(client, "ob", None)
        # the client's connection kind (connection.CLIENT, LEAF, ...), read per message when
        # a queue group picks a member; a connection keeps its kind for life
        kind = getattr(client, "kind", 0)
        self.kind: int = kind if isinstance(kind, int) else 0
        # remote interest (a route, gateway or leaf connection's), read per message when a
        # subject is matched and a queue group picks a member; `is_link` is a class
        # attribute of the connection, fixed for life
        self.link: bool = bool(getattr(client, "is_link", False))
        self.max_msgs = 0
        self.delivered = 0
        # A remote queue subscription stands for this many members on its server.
        self.weight = 1
        # Interest never announced to other servers (a service import's own subscription:
        # the import is served where the requester is).
        self.local_only = False

    def __repr__(self) -> str:
        q = f" queue={self.queue!r}" if self.queue else ""
        return f"<Subscription {self.subject!r}{q} sid={self.sid!r}>"


class _Node:
    __slots__ = ("fwc", "literal", "psubs", "pwc", "qsubs")

    def __init__(self) -> None:
        self.literal: dict[bytes, _Node] = {}
        self.pwc: _Node | None = None
        self.fwc: _Node | None = None
        # dicts used as insertion-ordered sets: O(1) removal
        self.psubs: dict[Subscription, None] = {}
        self.qsubs: dict[bytes, dict[Subscription, None]] = {}

    def is_empty(self) -> bool:
        return not (self.literal or self.pwc or self.fwc or self.psubs or self.qsubs)


class Sublist:
    """Subscriptions of one account, indexed for matching by published subject."""

    def __init__(self, cache_enabled: bool = True) -> None:
        self._root = _Node()
        self.cache: dict[bytes, SublistResult] = {}
        # ack subjects' answers by `$JS.ACK.<stream>.<consumer>.` (see `match`)
        self._ack_cache: dict[bytes, SublistResult] = {}
        self._cache_enabled = cache_enabled
        self.count = 0
        self.inserts = 0
        self.removes = 0
        self.cache_misses = 0
        self.max_fanout = 0
        self._fanout_total = 0
        self.change_listeners: list[Callable[[bytes], None]] = []
        self.interest_listeners: list[Callable[[Subscription, int], None]] = []

    def add_change_listener(self, fn: Callable[[bytes], None]) -> None:
        """`fn(subject)` after every insert and successful remove (JetStream push consumers
        use it to notice interest at once)."""
        self.change_listeners.append(fn)

    # -- changes -------------------------------------------------------------------------

    def insert(self, sub: Subscription) -> None:
        node = self._root
        for token in sub.subject.split(b"."):
            if token == PWC:
                if node.pwc is None:
                    node.pwc = _Node()
                node = node.pwc
            elif token == FWC:
                if node.fwc is None:
                    node.fwc = _Node()
                node = node.fwc
            else:
                nxt = node.literal.get(token)
                if nxt is None:
                    nxt = node.literal[token] = _Node()
                node = nxt
        if sub.queue is None:
            node.psubs[sub] = None
        else:
            node.qsubs.setdefault(sub.queue, {})[sub] = None
        self.count += 1
        self.inserts += 1
        self._invalidate(sub.subject)
        for listener in self.interest_listeners:
            listener(sub, 1)
        for fn in self.change_listeners:
            fn(sub.subject)

    def remove(self, sub: Subscription) -> bool:
        """Remove `sub`; False when it was not in the list."""
        path: list[tuple[_Node, bytes]] = []
        node = self._root
        for token in sub.subject.split(b"."):
            if token == PWC:
                nxt = node.pwc
            elif token == FWC:
                nxt = node.fwc
            else:
                nxt = node.literal.get(token)
            if nxt is None:
                return False
            path.append((node, token))
            node = nxt
        if sub.queue is None:
            if node.psubs.pop(sub, 0) == 0:
                return False
        else:
            members = node.qsubs.get(sub.queue)
            if members is None or members.pop(sub, 0) == 0:
                return False
            if not members:
                del node.qsubs[sub.queue]
        self._prune(path, node)
        self.count -= 1
        self.removes += 1
        self._invalidate(sub.subject)
        for listener in self.interest_listeners:
            listener(sub, -1)
        for fn in self.change_listeners:
            fn(sub.subject)
        return True

    def _prune(self, path: list[tuple[_Node, bytes]], node: _Node) -> None:
        """Drop trie nodes left empty, from the leaf up."""
        for parent, token in reversed(path):
            if not node.is_empty():
                return
            if token == PWC:
                parent.pwc = None
            elif token == FWC:
                parent.fwc = None
            else:
                del parent.literal[token]
            node = parent

    def _invalidate(self, subject: bytes) -> None:
        if self._ack_cache:
            self._ack_cache.clear()
        cache = self.cache
        if not cache:
            return
        if b"*" not in subject and b">" not in subject:
            cache.pop(subject, None)
            return
        # Only cached subjects that start with the wildcard subject's literal tokens can match
        # it: a cheap filter first, since every consumer adds wildcard subscriptions and the
        # cache holds thousands of subjects.
        prefix = _literal_prefix(subject)
        if prefix.startswith(UNCACHED_PREFIX):
            return  # a consumer's ack subjects: none of them is ever cached
        stale = [s for s in cache if s.startswith(prefix) and subject_matches(subject, s)]
        for s in stale:
            del cache[s]

    # -- matching ------------------------------------------------------------------------

    def match(self, subject: bytes) -> SublistResult:
        """All subscriptions matching the literal `subject` (cached).

        An ack subject (`$JS.ACK.<stream>.<consumer>.<numbers>`) is new with every delivery,
        so it is cached by its consumer's part instead, when the trie shows that nothing
        past that part can change the answer: every node the part leads to has only a `>`
        below it (the consumer's own `$JS.ACK.<stream>.<consumer>.>`), and every match is
        called rather than framed (a frame head holds the whole subject)."""
        cached = self.cache.get(subject)
        if cached is not None:
            return cached
        self.cache_misses += 1
        depth = end = 0
        if subject.startswith(UNCACHED_PREFIX) and self._cache_enabled:
            depth, end = ack_numbers_at(subject)
            if depth:
                cached = self._ack_cache.get(subject[:end])
                if cached is not None:
                    self._fanout_total += len(cached.psubs) + len(cached.qsubs)
                    return cached
        plain: list[Subscription] = []
        groups: dict[bytes, list[Subscription]] = {}
        tokens = subject.split(b".")
        if b"" not in tokens:
            _collect(self._root, tokens, 0, plain, groups)
        else:
            depth = 0
        result = _result(subject, plain, groups) if plain or groups else EMPTY_RESULT
        fanout = len(plain) + len(groups)
        self._fanout_total += fanout
        if fanout > self.max_fanout:
            self.max_fanout = fanout
        if not self._cache_enabled:
            return result
        if depth:
            if _tail_free(self._root, tokens, 0, depth) and all(not h for _, h in result.framed):
                ack_cache = self._ack_cache
                if len(ack_cache) >= CACHE_MAX_ENTRIES:
                    ack_cache.clear()
                ack_cache[subject[:end]] = result
            return result
        if not subject.startswith(UNCACHED_PREFIX):
            cache = self.cache
            if len(cache) >= CACHE_MAX_ENTRIES:
                for key in list(islice(cache, CACHE_SWEEP)):
                    del cache[key]
            cache[subject] = result
        return result

    def has_interest(self, subject: bytes) -> bool:
        return self.match(subject) is not EMPTY_RESULT

    # -- inspection ----------------------------------------------------------------------

    def all_subscriptions(self) -> Iterator[Subscription]:
        stack = [self._root]
        while stack:
            node = stack.pop()
            yield from node.psubs
            for members in node.qsubs.values():
                yield from members
            stack.extend(node.literal.values())
            if node.pwc is not None:
                stack.append(node.pwc)
            if node.fwc is not None:
                stack.append(node.fwc)

    def avg_fanout(self) -> float:
        return self._fanout_total / self.cache_misses if self.cache_misses else 0.0


def _literal_prefix(subject: bytes) -> bytes:
    """The tokens of `subject` before its first wildcard, with their dots (`a.b.` of
    `a.b.*.c`); empty when it starts with one."""
    end = 0
    for token in subject.split(b"."):
        if token in (PWC, FWC):
            break
        end += len(token) + 1
    return subject[:end]


def _collect(
    node: _Node | None,
    tokens: list[bytes],
    start: int,
    plain: list[Subscription],
    groups: dict[bytes, list[Subscription]],
) -> None:
    """Collect matches for tokens[start:] below `node`, in nats-server's order: at each level
    `>` first, then what lies under `*`, then the literal path; at the last level the literal
    node before the `*` node."""
    literal: _Node | None = None
    pwc: _Node | None = None
    for i in range(start, len(tokens)):
        if node is None:
            return
        if node.fwc is not None:
            _add(node.fwc, plain, groups)
        pwc = node.pwc
        if pwc is not None:
            _collect(pwc, tokens, i + 1, plain, groups)
        literal = node.literal.get(tokens[i])
        node = literal
    if literal is not None:
        _add(literal, plain, groups)
    if pwc is not None:
        _add(pwc, plain, groups)


def _tail_free(node: _Node | None, tokens: list[bytes], start: int, depth: int) -> bool:
    """No node that tokens[start:depth] lead to (by literal or `*`) has a literal or `*`
    below it: a subject with more tokens than `depth` matches only by `>`s on the way."""
    if node is None:
        return True
    if start == depth:
        return not node.literal and node.pwc is None
    return _tail_free(node.pwc, tokens, start + 1, depth) and _tail_free(
        node.literal.get(tokens[start]), tokens, start + 1, depth
    )


def _result(
    subject: bytes, plain: list[Subscription], groups: dict[bytes, list[Subscription]]
) -> SublistResult:
    """The answer for `subject` from what the trie walk collected. Uncached subjects (every
    JetStream ack) come through here, so it builds no more than it must: a frame head only
    for subscriptions that are framed, and the tuple by `tuple.__new__` (a NamedTuple's own
    constructor is a Python function)."""
    local: list[Subscription] = []
    framed: list[tuple[Subscription, bytes]] = []
    links: dict[Any, None] | None = None
    for sub in plain:
        if sub.link:
            if links is None:
                links = {}
            links[sub.client] = None
        else:
            local.append(sub)
            head = b"" if sub.callback is not None else subject + b" " + sub.sid + b" "
            framed.append((sub, head))
    qsubs = tuple([_weighted(members) for members in groups.values()]) if groups else ()
    return tuple.__new__(
        SublistResult,
        (tuple(local), qsubs, tuple(framed), tuple(links) if links is not None else ()),
    )


def _add(node: _Node, plain: list[Subscription], groups: dict[bytes, list[Subscription]]) -> None:
    if node.psubs:
        plain.extend(node.psubs)
    if not node.qsubs:
        return
    for queue, members in node.qsubs.items():
        group = groups.get(queue)
        if group is None:
            groups[queue] = list(members)
        else:
            group.extend(members)


def _weighted(members: list[Subscription]) -> tuple[Subscription, ...]:
    """A queue group as picked from: a remote member once per member it stands for."""
    if all(s.weight == 1 for s in members):
        return tuple(members)
    out: list[Subscription] = []
    for s in members:
        out.extend([s] * s.weight)
    return tuple(out)
