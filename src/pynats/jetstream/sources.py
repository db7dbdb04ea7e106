"""Mirrors and sources: a stream that copies the messages of other streams.

On one server every origin stream is in this process, so a link reads the origin's store
directly instead of running an internal consumer: it listens to the origin (a
`StreamListener`) and, whenever the origin stored something, copies what it has not copied
yet, a bounded batch per loop iteration. The same pump does the catch-up after a restart or
after the origin was missing (created later, deleted and re-created): the position is the
mirror's own last sequence, or for a source the last `Nats-Stream-Source` header stored.

- A mirror keeps the origin's sequence numbers (gaps become skipped sequences) and stores
  messages unchanged; `filter_subject`/`subject_transforms` select and rename.
- A source stores through the normal publish path (dedupe, limits) and adds
  `Nats-Stream-Source: <origin> <seq> <filter> <dest> <original subject> <origin id>`.
- `external.api` names the origin's JetStream API: our own domain's prefix means this
  account; another prefix is resolved by asking `<api>.STREAM.INFO.<name>` through the
  account's imports and noting which account's JetStream answered. When no JetStream of this
  process answers, the origin is elsewhere (another domain, across a leaf node) and a
  `remote_sources.RemoteFeed` runs a consumer on it over the wire, as nats-server does.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pynats.server.subject_transform import SubjectTransform, compile_transform

from . import headers as h
from .config import StreamSource
from .errors import ApiError
from .store import MessageNotFound, MessageStore, StoredMessage, StoreError

if TYPE_CHECKING:
    from .remote_sources import RemoteFeed
    from .service import JetStreamAccount
    from .stream import PurgeEvent, Stream

BATCH = 1000  # messages copied per loop iteration and link
RECOVERY_SCAN_MAX = 100_000  # newest messages searched for a source's last position
_EXPECTED_HEADERS = (
    h.EXPECTED_STREAM,
    h.EXPECTED_LAST_SEQ,
    h.EXPECTED_LAST_SUBJ_SEQ,
    h.EXPECTED_LAST_SUBJ_SEQ_SUBJ,
    h.EXPECTED_LAST_MSG_ID,
)
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def name_hash(text: str) -> str:
    """Eight base-62 characters of the SHA-256 of `text` (nats-server's short name hash)."""
    return "".join(_B62[b % 62] for b in hashlib.sha256(text.encode()).digest()[:8])


def origin_id(account: str, stream: str) -> str:
    return name_hash(f"{account}\x00{stream}")


class SourceLinks:
    """All links of one stream (its mirror, or its sources)."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        cfg = stream.config
        self.is_mirror = cfg.mirror is not None
        configs = [cfg.mirror] if cfg.mirror is not None else list(cfg.sources)
        self.links = [SourceLink(self, c) for c in configs if c is not None]

    def start(self) -> None:
        positions = {} if self.is_mirror else self._recover_positions()
        for link in self.links:
            link.start(positions.get(link.header_prefix, 0))

    def stop(self) -> None:
        for link in self.links:
            link.stop()

    def origin_created(self, origin: Stream) -> None:
        for link in self.links:
            if link.origin is None and link.feed is None:
                link.attach()

    def origin_deleted(self, origin: Stream) -> None:
        for link in self.links:
            if link.origin is origin:
                link.detach()
                link.error = "stream not found"

    def info_json(self) -> dict[str, Any]:
        if self.is_mirror:
            return {"mirror": self.links[0].info_json()} if self.links else {}
        return {"sources": [link.info_json() for link in self.links]}

    def _recover_positions(self) -> dict[str, int]:
        """Last origin sequence per source, from the newest Nats-Stream-Source headers."""
        store = self.stream.store
        wanted = {link.header_prefix for link in self.links}
        # Before external sources were named `<name>:<hash of api>`, they were `<name>`.
        legacy = {link.legacy_prefix: link.header_prefix for link in self.links}
        wanted.update(legacy)
        found: dict[str, int] = {}
        seq = store.last_seq
        first = max(store.first_seq, seq - RECOVERY_SCAN_MAX)
        while seq >= first and len(found) < len(wanted):
            try:
                msg = store.load_msg(seq)
            except MessageNotFound:
                seq -= 1
                continue
            value = h.get(msg.headers or b"", h.STREAM_SOURCE)
            if value:
                parts = value.decode(errors="replace").split(" ")
                if len(parts) >= 4:
                    key = " ".join((parts[0], parts[2], parts[3]))
                    key = legacy.get(key, key)
                    if key in wanted and key not in found:
                        try:
                            found[key] = int(parts[1])
                        except ValueError:
                            pass
            seq -= 1
        return found


class SourceLink:
    """One origin stream feeding this stream."""

    def __init__(self, links: SourceLinks, cfg: StreamSource) -> None:
        self.links = links
        self.stream = links.stream
        self.cfg = cfg
        self.is_mirror = links.is_mirror
        self.origin: Stream | None = None
        self.feed: RemoteFeed | None = None  # when the origin is in another JetStream
        self.next_seq = 0  # next origin sequence to look at
        self.last_active_ns = 0
        self.error = ""
        self._scheduled = False
        self._stopped = False
        self.filters: list[tuple[str, SubjectTransform | None]] = []
        if cfg.subject_transforms:
            for t in cfg.subject_transforms:
                self.filters.append(
                    (t.src or ">", compile_transform(t.src, t.dest) if t.dest else None)
                )
        else:
            self.filters.append((cfg.filter_subject or ">", None))
        if cfg.subject_transforms:
            first = cfg.subject_transforms[0]
            selection = f"{first.src or '>'} {first.dest or '>'}"
        else:
            selection = f"{cfg.filter_subject or '>'} >"
        # nats-server names an external origin by its API too: one name, two domains.
        self.iname = cfg.name
        if cfg.external is not None:
            self.iname = f"{cfg.name}:{name_hash(cfg.api_prefix)}"
        self.header_prefix = f"{self.iname} {selection}"
        self.legacy_prefix = f"{cfg.name} {selection}"

    # -- lifecycle --

    def start(self, recovered_seq: int) -> None:
        store = self.stream.store
        if self.is_mirror:
            self.next_seq = store.last_seq + 1 if store.last_seq else 0
        elif recovered_seq:
            self.next_seq = recovered_seq + 1
        self.attach()

    def attach(self) -> None:
        if self._stopped:
            return
        if self.cfg.consumer is not None:  # fed by a durable consumer on the origin
            from .remote_sources import DurableFeed

            self.feed = DurableFeed(self)
            self.feed.start()
            return
        origin = self._resolve()
        if origin is None:
            if self._is_remote():
                from .remote_sources import RemoteFeed

                self.feed = RemoteFeed(self, self.cfg.api_prefix)
                self.feed.start()
                return
            self.error = "stream not found"
            return
        self.origin = origin
        self.error = ""
        if not self.next_seq:
            self.next_seq = self._start_seq(origin)
        origin.add_listener(self)
        self.schedule()

    def detach(self) -> None:
        if self.origin is not None:
            self.origin.remove_listener(self)
        self.origin = None
        if self.feed is not None:
            self.feed.stop()
            self.feed = None

    def stop(self) -> None:
        self._stopped = True
        self.detach()

    def _start_seq(self, origin: Stream) -> int:
        if self.cfg.opt_start_seq:
            return self.cfg.opt_start_seq
        if self.cfg.opt_start_time:
            seq = origin.store.seq_for_time(self.cfg.start_time_ns)
            return seq or origin.store.last_seq + 1
        return 1

    def _is_remote(self) -> bool:
        """The origin is named by another JetStream's API (another domain, or an account's
        JetStream reached through its imports)."""
        api = self.cfg.api_prefix
        domain = self.stream.jsa.js.domain
        return not (not api or api == "$JS.API" or (domain and api == f"$JS.{domain}.API"))

    def _resolve(self) -> Stream | None:
        jsa = self.stream.jsa
        if not self._is_remote():
            return jsa.streams.get(self.cfg.name)
        target = lookup_account(jsa, self.cfg.api_prefix, self.cfg.name)
        return target.streams.get(self.cfg.name) if target is not None else None

    # -- the pump --

    def schedule(self) -> None:
        if not self._scheduled and self.origin is not None:
            self._scheduled = True
            self.stream.loop.call_soon(self._pump)

    def _pump(self) -> None:
        self._scheduled = False
        origin = self.origin
        if origin is None or origin.closed or self.stream.closed:
            return
        store = origin.store
        copied = 0
        while copied < BATCH:
            msg = self._next_matching(store)
            if msg is None:
                break
            self._copy(msg)
            self.next_seq = msg.seq + 1
            copied += 1
            if origin.config.retention != "limits":
                origin.acked(self, msg.seq)
        if copied:
            self.last_active_ns = time.time_ns()
        if copied >= BATCH:
            self.schedule()

    def _next_matching(self, store: MessageStore) -> StoredMessage | None:
        best: StoredMessage | None = None
        for subject_filter, _ in self.filters:
            try:
                msg = store.load_next(subject_filter, max(self.next_seq, 1))
            except MessageNotFound:
                continue
            if best is None or msg.seq < best.seq:
                best = msg
        return best

    def _transformed(self, subject: str) -> str:
        for subject_filter, transform in self.filters:
            if transform is not None:
                out = transform.apply(subject)
                if out is not None:
                    return out
            elif subject_filter == ">" or subject_filter == subject:
                return subject
        return subject

    def take(self, msg: StoredMessage) -> None:
        """A message from a remote origin (`RemoteFeed`), not yet stored here."""
        self._copy(msg)
        self.next_seq = msg.seq + 1

    def mirror_reached(self, origin_last: int) -> None:
        """The remote origin delivered everything up to `origin_last`: a mirror whose own
        last sequence is behind (the origin's tail was deleted or filtered out) skips to it."""
        store = self.stream.store
        if origin_last > store.last_seq and not self.stream.closed:
            if store.msgs == 0:
                store.compact(origin_last + 1)
            else:
                for _ in range(origin_last - store.last_seq):
                    store.skip_msg()
            self.next_seq = origin_last + 1

    def _identity(self) -> str:
        """The last token of the Nats-Stream-Source header: which origin stream this was."""
        if self.origin is not None:
            return origin_id(self.origin.jsa.name, self.origin.name)
        return self.feed.identity if self.feed is not None else ""

    def _copy(self, msg: StoredMessage) -> None:
        subject = self._transformed(msg.subject)
        try:
            if self.is_mirror:
                self.stream.store_mirrored(msg.seq, subject, msg.headers, msg.data, msg.ts_ns)
            else:
                headers = msg.headers or b""
                if headers and b"Nats-Expected-" in headers:
                    headers = h.remove(headers, _EXPECTED_HEADERS)
                value = (
                    f"{self.iname} {msg.seq} {self.header_prefix.split(' ', 1)[1]} "
                    f"{msg.subject} {self._identity()}"
                ).rstrip()
                headers = h.append(
                    h.remove(headers, (h.STREAM_SOURCE,)) if headers else None,
                    [("Nats-Stream-Source", value)],
                )
                self.stream.ingest(subject, headers, msg.data, source_header=True)
            self.error = ""
        except (ApiError, StoreError) as e:
            self.error = str(e)

    # -- StreamListener (on the origin) --

    def on_stored(self, seq: int, subject: str) -> None:
        self.schedule()

    def on_removed(self, removed: Sequence[tuple[int, str]]) -> None:
        pass

    def on_purged(self, event: PurgeEvent) -> None:
        pass

    def wants(self, subject: str) -> bool:
        return True

    def needs_ack(self, seq: int, subject: str) -> bool:
        return seq >= self.next_seq

    # -- info --

    def info_json(self) -> dict[str, Any]:
        cfg = self.cfg
        out: dict[str, Any] = {"name": cfg.name}
        if cfg.external is not None:
            out["external"] = dict(cfg.external)
        out["lag"] = self.lag()
        if not self.is_mirror and self.next_seq > 1:
            out["seq"] = self.next_seq - 1  # the last origin sequence looked at
        out["active"] = (time.time_ns() - self.last_active_ns) if self.last_active_ns else -1
        if self.feed is not None and self.feed.error:
            out["error"] = self.feed.error
        if cfg.filter_subject and not self.is_mirror:
            out["filter_subject"] = cfg.filter_subject
        if cfg.subject_transforms:
            out["subject_transforms"] = [t.to_json() for t in cfg.subject_transforms]
        return out

    def lag(self) -> int:
        if self.feed is not None:
            return self.feed.pending
        origin = self.origin
        if origin is None:
            return 0
        return sum(origin.store.num_pending(max(self.next_seq, 1), f) for f, _ in self.filters)


def lookup_account(jsa: JetStreamAccount, api: str, name: str) -> JetStreamAccount | None:
    """Which account's JetStream answers `<api>.STREAM.INFO.<name>` from `jsa`'s account."""
    js = jsa.js
    token = f"{id(jsa)}-{time.monotonic_ns()}"
    js.source_lookups[token] = None
    jsa.client.publish(
        f"{api}.STREAM.INFO.{name}", b"", None, h.build([(h.SOURCE_LOOKUP.decode(), token)])
    )
    return js.source_lookups.pop(token, None)
