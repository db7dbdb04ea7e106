"""Stream backup and restore: `$JS.API.STREAM.SNAPSHOT.<stream>` and `RESTORE.<stream>`.

The format is nats-server 2.15's (its ADR "Stream Backup and Restore V2"): a NATSARC1 archive
(`archive.py`) of the stream state, each consumer's config and state, every message in order
and an end sentinel, compressed as one S2 stream (`s2.py`). It does not depend on how the
stream is stored, so memory and file streams back up and restore alike, into either kind.

A snapshot is produced while it is sent, never staged: the entries are encoded and cut into
chunks for the requester's deliver subject. Each full chunk carries an ack subject
(`$JS.SNAPSHOT.ACK.<stream>.<id>.<size>.<index>`); at most `window_size / chunk_size` of them
wait for their ack at a time, and five seconds without one ends the transfer ("408 No Flow
Response"). The last, short chunk has no ack subject; an empty message ends the transfer.

A restore is the reverse. The client sends chunks to `$JS.SNAPSHOT.RESTORE.<stream>.<id>`, each
answered with an empty message; the entries are applied as they are decoded, the messages
straight into the new stream's store with their own sequences and times. The empty chunk
that ends the upload is answered with the stream's info. The stream's metadata file is
written last, so a crash in the middle of a restore never brings back a partial stream.
Backups made by nats-server 2.14 and older (a tar of Go's file store, not an archive) are
decoded by `legacy_backup.py` and applied the same way.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynats.gotime import format_duration, rfc3339
from pynats.server.subjects import is_valid_subject

from . import advisories
from . import decode as d
from . import headers as h
from .api_router import ApiRequest, ApiRouter
from .archive import END_ENTRY, MAGIC, ArchiveError, ArchiveReader, Entry, NotAnArchive
from .archive import encode_entry as entry_bytes
from .config import STREAM_CONFIG_FIELDS, StreamConfig, check_stream_config, parse_stream_request
from .consumer_config import ConsumerConfig
from .errors import ApiError, api_error, bad_request
from .s2 import S2Decoder, S2Encoder, S2Error
from .store import ConsumerState, MessageNotFound, Pending, SequencePair

if TYPE_CHECKING:
    from pynats.server.delivery import Publisher
    from pynats.server.sublist import Subscription

    from .service import JetStreamAccount
    from .store import MessageStore
    from .stream import Stream

KIB = 1024
MIB = 1024 * KIB
DEFAULT_CHUNK = 128 * KIB
DEFAULT_WINDOW = 8 * MIB
FLOW_TIMEOUT_S = 5.0  # no ack for this long ends a snapshot
INTEREST_WAIT_S = 2.0  # how long a snapshot waits for its deliver subject to have a listener
RESTORE_IDLE_S = 5.0  # a restore that receives nothing for this long is abandoned
LEGACY_MAX_BYTES = 1 << 30  # a legacy (tar) backup is read whole: its decompressed cap

SNAPSHOT_REQ = d.Struct(
    "JSApiStreamSnapshotRequest",
    {
        "deliver_subject": d.STRING,
        "no_consumers": d.BOOL,
        "chunk_size": d.INT,
        "window_size": d.INT,
        "jsck": d.BOOL,
    },
)
_UINT64S = d.list_of("[]uint64", d.UINT64)
STREAM_STATE = d.Struct(
    "StreamState",
    {
        "messages": d.UINT64,
        "bytes": d.UINT64,
        "first_seq": d.UINT64,
        "first_ts": d.TIME,
        "last_seq": d.UINT64,
        "last_ts": d.TIME,
        "num_subjects": d.INT,
        "subjects": d.Kind("map[string]uint64", lambda value, path, kind: value),
        "num_deleted": d.INT,
        "deleted": _UINT64S,
        "lost": d.struct(
            "*server.LostStreamData",
            d.Struct("LostStreamData", {"msgs": _UINT64S, "bytes": d.UINT64}),
        ),
        "consumer_count": d.INT,
    },
)
RESTORE_REQ = d.Struct(
    "JSApiStreamRestoreRequest",
    {
        "config": d.struct("server.StreamConfig", d.Struct("StreamConfig", STREAM_CONFIG_FIELDS)),
        "state": d.struct("server.StreamState", STREAM_STATE),
    },
)


def register_backup_routes(router: ApiRouter) -> None:
    router.add("STREAM.SNAPSHOT.*", "stream_snapshot_response", stream_snapshot)
    router.add("STREAM.RESTORE.*", "stream_restore_response", stream_restore)


def _is_empty_request(payload: bytes) -> bool:
    """nats-server's isEmptyRequest: no body, or a JSON object with nothing in it."""
    text = payload.strip()
    if not text:
        return True
    try:
        return json.loads(text) == {}
    except ValueError:
        return False


def _clamp(value: int, default: int, low: int, high: int) -> int:
    return min(max(value or default, low), high)


# -- snapshot --------------------------------------------------------------------------------


def stream_snapshot(req: ApiRequest) -> dict[str, Any]:
    if _is_empty_request(req.payload):
        raise bad_request()
    stream = req.stream()
    body = req.decode(SNAPSHOT_REQ)
    deliver = body.get("deliver_subject", "")
    if not deliver or not is_valid_subject(deliver.encode()) or "*" in deliver or ">" in deliver:
        raise api_error("JSSnapshotDeliverSubjectInvalidErr")
    chunk = _clamp(body.get("chunk_size", 0), DEFAULT_CHUNK, KIB, MIB)
    window = max(_clamp(body.get("window_size", 0), DEFAULT_WINDOW, KIB, 32 * MIB), chunk)
    state = _state_json(stream, with_consumers=not body.get("no_consumers"))
    sender = SnapshotSender(req.jsa, stream, deliver, chunk, window, state, req.publisher)
    asyncio.get_running_loop().create_task(sender.run())
    return {"config": stream.config.to_json(None), "state": state}


def _state_json(stream: Stream, *, with_consumers: bool) -> dict[str, Any]:
    """The stream's state as the archive's `state.json` and the response carry it."""
    out = stream.state_json()
    out["consumer_count"] = len(stream.consumers) if with_consumers else 0
    return out


class SnapshotSender:
    """One snapshot transfer: encodes the archive as it goes and paces it by the acks."""

    def __init__(
        self,
        jsa: JetStreamAccount,
        stream: Stream,
        deliver: str,
        chunk_size: int,
        window: int,
        state: dict[str, Any],
        publisher: Publisher,
    ) -> None:
        self.jsa = jsa
        self.stream = stream
        self.deliver = deliver
        self.chunk_size = chunk_size
        self.max_unacked = max(1, window // chunk_size)
        self.state = state
        self.client = advisories.client_info(jsa, publisher)
        self.ack_prefix = f"$JS.SNAPSHOT.ACK.{stream.name}.{advisories.new_id()}"
        self.unacked = 0
        self.acked = asyncio.Event()

    def _on_ack(self, *_args: Any) -> None:
        self.unacked = max(0, self.unacked - 1)
        self.acked.set()

    async def run(self) -> None:
        jsa, name = self.jsa, self.stream.name
        log = jsa.js.server.logger
        began = time.time_ns()
        log.notice(f"Starting snapshot for stream '{jsa.name} > {name}'")
        advisories.publish(
            jsa,
            f"$JS.EVENT.ADVISORY.STREAM.SNAPSHOT_CREATE.{name}",
            "snapshot_create",
            {"stream": name, "state": self.state, "client": self.client},
        )
        sub = jsa.client.subscribe(self.ack_prefix + ".>", self._on_ack)
        try:
            error = await self._send()
        except Exception as e:  # a store that cannot be read: the transfer ends with a 500
            error = str(e)
            self._end("500", error)
        finally:
            jsa.client.unsubscribe(sub)
        ended = time.time_ns()
        body: dict[str, Any] = {
            "stream": name,
            "start": rfc3339(began),
            "end": rfc3339(ended),
            "client": self.client,
        }
        if error:
            body["error"] = error
        advisories.publish(
            jsa, f"$JS.EVENT.ADVISORY.STREAM.SNAPSHOT_COMPLETE.{name}", "snapshot_complete", body
        )
        size = _friendly_bytes(int(self.state.get("bytes", 0)))
        took = format_duration(ended - began)
        if error and error != "no interest":
            log.warn(f"Snapshot of stream '{jsa.name} > {name}' failed: {error}")
        else:
            log.notice(f"Completed snapshot of {size} for stream '{jsa.name} > {name}' in {took}")

    async def _send(self) -> str:
        """Send the archive; returns "" or why the transfer ended early."""
        if not await self._wait_for_interest():
            return "no interest"
        encoder = S2Encoder()
        out = bytearray()
        index = 0
        for piece in self._archive():
            out += encoder.write(piece)
            while len(out) >= self.chunk_size:
                chunk = bytes(out[: self.chunk_size])
                del out[: self.chunk_size]
                index += 1
                error = await self._send_full(chunk, index)
                if error:
                    self._end("408", error.title())
                    return error
        out += encoder.flush()
        while len(out) >= self.chunk_size:  # the flush may complete more than one chunk
            index += 1
            error = await self._send_full(bytes(out[: self.chunk_size]), index)
            del out[: self.chunk_size]
            if error:
                self._end("408", error.title())
                return error
        if out:
            self.jsa.client.publish(self.deliver, bytes(out))
        self._end("204" if index else "")
        return ""

    async def _send_full(self, chunk: bytes, index: int) -> str:
        """One full chunk with its ack subject, after waiting for room in the window."""
        while self.unacked >= self.max_unacked:
            self.acked.clear()
            try:
                await asyncio.wait_for(self.acked.wait(), FLOW_TIMEOUT_S)
            except TimeoutError:
                return "no flow response"
        reply = f"{self.ack_prefix}.{len(chunk)}.{index}"
        self.unacked += 1
        if not self.jsa.client.publish(self.deliver, chunk, reply=reply):
            return "no interest"
        await asyncio.sleep(0)  # let the acks and everything else in
        return ""

    def _end(self, status: str, text: str = "") -> None:
        """The empty message that ends the transfer (a status only after a full chunk)."""
        self.jsa.client.publish(self.deliver, b"", headers=h.build(status=status, text=text))

    async def _wait_for_interest(self) -> bool:
        deadline = time.monotonic() + INTEREST_WAIT_S
        while not advisories.has_listeners(self.jsa, self.deliver):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def _archive(self) -> Iterator[bytes]:
        """The archive's bytes, entry by entry: state, consumers, messages, sentinel."""
        now = time.time_ns()
        last = int(self.state["last_seq"])
        yield MAGIC + entry_bytes("state.json", now, 0, b"", _compact(self.state))
        if self.state["consumer_count"]:
            for consumer in list(self.stream.consumers.values()):
                body = {
                    "config": consumer.config.to_json(None),
                    "state": consumer_state_json(consumer.store.state, last),
                }
                yield entry_bytes(f"consumers/{consumer.name}", now, 0, b"", _compact(body))
        store = self.stream.store
        seq = int(self.state["first_seq"]) or 1
        while seq <= last:
            try:
                msg = store.load_next(">", seq)
            except MessageNotFound as e:
                if type(e) is not MessageNotFound:  # damaged: the backup must not skip it
                    raise
                break
            if msg.seq > last:
                break
            yield entry_bytes(msg.subject, msg.ts_ns, msg.seq, msg.headers or b"", msg.data)
            seq = msg.seq + 1
        yield END_ENTRY


def consumer_state_json(state: ConsumerState, last_seq: int) -> dict[str, Any]:
    """nats-server's ConsumerState JSON, bounded by the snapshot's last sequence."""
    out: dict[str, Any] = {
        "delivered": {
            "consumer_seq": state.delivered.consumer_seq,
            "stream_seq": min(state.delivered.stream_seq, last_seq),
        },
        "ack_floor": {
            "consumer_seq": state.ack_floor.consumer_seq,
            "stream_seq": min(state.ack_floor.stream_seq, last_seq),
        },
    }
    pending = {
        str(s): {"Sequence": p.consumer_seq, "Timestamp": p.ts_ns}
        for s, p in sorted(state.pending.items())
        if s <= last_seq
    }
    if pending:
        out["pending"] = pending
    redelivered = {str(s): n for s, n in sorted(state.redelivered.items()) if s <= last_seq}
    if redelivered:
        out["redelivered"] = redelivered
    return out


def consumer_state_from_json(obj: dict[str, Any]) -> ConsumerState:
    def pair(key: str) -> SequencePair:
        p = obj.get(key) or {}
        return SequencePair(int(p.get("consumer_seq", 0)), int(p.get("stream_seq", 0)))

    pending = {
        int(s): Pending(int(p.get("Sequence", 0)), int(p.get("Timestamp", 0)))
        for s, p in (obj.get("pending") or {}).items()
    }
    redelivered = {int(s): int(n) for s, n in (obj.get("redelivered") or {}).items()}
    return ConsumerState(pair("delivered"), pair("ack_floor"), pending, redelivered)


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _friendly_bytes(n: int) -> str:
    from pynats.server.strconv import friendly_bytes

    return friendly_bytes(n)


# -- restore ---------------------------------------------------------------------------------


def stream_restore(req: ApiRequest) -> dict[str, Any]:
    if not req.payload.strip():
        raise bad_request()
    body = req.decode(RESTORE_REQ)
    raw_config = body.get("config") or {}
    cfg, pedantic = parse_stream_request(_compact(raw_config), strict=req.jsa.js.strict)
    name = req.args[0]
    if cfg.name != name:
        raise api_error("JSStreamMismatchErr")
    jsa = req.jsa
    if name in jsa.streams or name in jsa.offline or name in jsa.restoring:
        raise api_error("JSStreamNameExistRestoreFailedErr")
    cfg = check_stream_config(cfg, pedantic=pedantic)
    jsa.check_limits(cfg)
    session = RestoreSession(jsa, cfg, req.publisher)
    session.begin()
    return {"deliver_subject": session.deliver}


@dataclass
class _Progress:
    """Where a restore is: what the archive said so far and what is stored of it."""

    state: dict[str, Any] | None = None
    consumers_left: int = 0
    consumers: list[tuple[str, ConsumerConfig, ConsumerState]] = field(default_factory=list)
    last_seq: int = 0  # of the last message applied
    ended: bool = False


class RestoreSession:
    """One restore upload: chunks in, entries applied, the stream created at the end."""

    def __init__(self, jsa: JetStreamAccount, cfg: StreamConfig, publisher: Publisher) -> None:
        self.jsa = jsa
        self.cfg = cfg
        self.name = cfg.name
        self.client = advisories.client_info(jsa, publisher)
        self.deliver = f"$JS.SNAPSHOT.RESTORE.{cfg.name}.{advisories.new_id()}"
        self.decoder = S2Decoder()
        self.reader = ArchiveReader()
        self.legacy: bytearray | None = None  # decompressed tar of a pre-2.15 backup
        self.progress = _Progress()
        self.store: MessageStore | None = None
        self.directory: str | None = None
        self.received = 0
        self.began = 0
        self.error = ""
        self.sub: Subscription | None = None
        self.idle: asyncio.TimerHandle | None = None
        self.finished = False
        self.max_payload = jsa.js.server.options.max_payload

    @property
    def log_name(self) -> str:
        return f"'{self.jsa.name} > {self.name}'"

    def begin(self) -> None:
        self.began = time.time_ns()
        self.jsa.restoring[self.name] = self
        self.sub = self.jsa.client.subscribe(self.deliver, self._on_chunk)
        self._arm_idle()
        self.jsa.js.server.logger.notice(f"Starting restore for stream {self.log_name}")
        advisories.publish(
            self.jsa,
            f"$JS.EVENT.ADVISORY.STREAM.RESTORE_CREATE.{self.name}",
            "restore_create",
            {"stream": self.name, "client": self.client},
        )

    def _arm_idle(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        loop = self.jsa.js.server.loop
        self.idle = loop.call_later(RESTORE_IDLE_S, self._on_idle)

    def _on_idle(self) -> None:
        self.error = self.error or "restore timed out"
        self._fail(None)

    # -- chunks --

    def _on_chunk(
        self,
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        if self.finished:
            return
        if not reply:
            self.jsa.js.server.logger.warn(
                f"restore for stream {self.log_name} requires reply subject for each chunk"
            )
            self.error = "restore requires reply subject for each chunk"
            self._fail(None)
            return
        self._arm_idle()
        if not payload:
            self._stop_listening()
            task = self.jsa.js.server.loop.create_task(self._finish(reply))
            task.add_done_callback(lambda t: t.exception())
            return
        self.received += len(payload)
        if not self.error:
            try:
                self._apply(self.decoder.feed(payload))
            except S2Error:
                self.error = "s2: corrupt input"
            except (ArchiveError, RestoreError) as e:
                self.error = str(e)
            except ApiError as e:
                self.error = e.description
        self.jsa.client.publish(reply, b"")

    def _apply(self, data: bytes) -> None:
        if not data:
            return
        if self.legacy is not None:
            self._buffer_legacy(data)
            return
        try:
            entries = self.reader.feed(data)
        except NotAnArchive:
            self.legacy = bytearray()
            self._buffer_legacy(data)
            return
        for entry in entries:
            self._apply_entry(entry)

    def _buffer_legacy(self, data: bytes) -> None:
        assert self.legacy is not None
        if len(self.legacy) + len(data) > LEGACY_MAX_BYTES:
            raise RestoreError("legacy backup is too large")
        self.legacy += data

    def _apply_entry(self, entry: Entry) -> None:
        p = self.progress
        if p.ended:
            raise RestoreError("data after the end of backup")
        if p.state is None:
            if entry.name != "state.json":
                raise RestoreError("expected state.json first")
            self._start_state(_json_entry(entry, "state.json"))
            return
        if p.consumers_left:
            name = entry.name.removeprefix("consumers/")
            if name == entry.name:
                raise RestoreError(f'expected consumer, found "{entry.name}"')
            self._add_consumer(name, _json_entry(entry, f"consumer {name!r} state"))
            p.consumers_left -= 1
            return
        if entry.is_end:
            p.ended = True
            return
        self._store_message(entry)

    def _start_state(self, state: dict[str, Any]) -> None:
        first, last = int(state.get("first_seq", 0)), int(state.get("last_seq", 0))
        consumers = int(state.get("consumer_count", 0))
        if consumers < 0 or (first and last and first > last + 1) or (not first and last):
            raise RestoreError("invalid stream state")
        self.progress.state = state
        self.progress.consumers_left = consumers
        self.progress.last_seq = max(first - 1, 0)
        self.store, self.directory = self.jsa.open_restore_store(self.cfg)
        if first > 1:
            self.store.compact(first)

    def _add_consumer(self, name: str, obj: dict[str, Any]) -> None:
        config, state = obj.get("config"), obj.get("state")
        if not isinstance(config, dict):
            raise RestoreError(f"consumer {name!r} is missing config")
        if not isinstance(state, dict):
            raise RestoreError(f"consumer {name!r} is missing state")
        cfg = ConsumerConfig.from_json(config)
        self.progress.consumers.append((name, cfg, consumer_state_from_json(state)))

    def _store_message(self, entry: Entry) -> None:
        p, store = self.progress, self.store
        assert store is not None
        seq = entry.sequence
        if seq == 0:
            raise RestoreError("expected message sequence")
        if seq <= p.last_seq:
            raise RestoreError(f"message sequence {seq} out of order")
        size = len(entry.header) + len(entry.payload)
        if size > self.max_payload:
            raise RestoreError(f"message sequence {seq} exceeds maximum payload size")
        if 0 <= self.cfg.max_msg_size < size:
            raise RestoreError(f"message sequence {seq} exceeds maximum message size")
        p.last_seq = seq
        ttl = 0
        raw_ttl = h.get(entry.header, h.TTL) if entry.header else None
        if raw_ttl is not None:
            try:
                ttl = h.parse_ttl(raw_ttl)
            except ApiError:
                raise RestoreError("failed to parse message TTL") from None
            if ttl > 0 and entry.timestamp + ttl <= time.time_ns():
                return  # expired while it was away: its sequence stays used
        store.store_at(seq, entry.timestamp, entry.name, entry.header or None, entry.payload, ttl)

    # -- the end --

    async def _finish(self, reply: bytes) -> None:
        jsa = self.jsa
        try:
            if self.error:
                raise RestoreError(self.error)
            if not self.decoder.at_boundary:
                raise RestoreError("s2: corrupt input")
            if self.legacy is not None:
                await self._apply_legacy()
            elif self.progress.state is None:
                raise RestoreError("EOF")
            elif not self.progress.ended:
                raise RestoreError("backup was truncated")
            async with jsa.js.api_lock:
                stream = await self._create()
        except (RestoreError, ApiError) as e:
            text = e.description if isinstance(e, ApiError) else str(e)
            error = e if isinstance(e, ApiError) and e.err_code != 10052 else None
            self.error = text
            self._fail(reply, error or api_error("JSStreamRestoreErrF", err=text))
            return
        self._done()
        out: dict[str, Any] = {"type": "io.nats.jetstream.api.v1.stream_create_response"}
        out.update(stream.info_json())
        jsa.client.publish(reply, json.dumps(out, separators=(",", ":")).encode())

    async def _apply_legacy(self) -> None:
        """A pre-2.15 backup, read whole (in a worker thread: it walks every record once),
        then applied like an archive's entries, letting the loop in between messages."""
        from .legacy_backup import LegacyBackupError, read_legacy_backup

        assert self.legacy is not None
        data, self.legacy = bytes(self.legacy), None
        loop = asyncio.get_running_loop()
        try:
            backup = await loop.run_in_executor(None, read_legacy_backup, data)
            state = dict(backup.state)
            state["consumer_count"] = len(backup.consumers)
            self._start_state(state)
            for obj in backup.consumers:
                config = obj.get("config") or {}
                name = str(config.get("name") or config.get("durable_name") or "")
                self._add_consumer(name, obj)
                self.progress.consumers_left -= 1
            for n, entry in enumerate(backup.messages, 1):
                self._store_message(entry)
                if n % 1000 == 0:
                    await asyncio.sleep(0)
        except LegacyBackupError as e:
            raise RestoreError(str(e)) from None
        self.progress.ended = True

    async def _create(self) -> Stream:
        jsa, p = self.jsa, self.progress
        if self.name in jsa.streams:
            raise api_error("JSStreamNameExistRestoreFailedErr")
        jsa.check_overlap(self.cfg)
        assert self.store is not None and p.state is not None
        self.store.skip_to(int(p.state.get("last_seq", 0)))
        stream = await jsa.adopt_restored(self.cfg, self.store, self.directory, p.consumers)
        self.store = None
        return stream

    def _done(self) -> None:
        self.finished = True
        self._stop_listening()
        self.jsa.restoring.pop(self.name, None)
        took = time.time_ns() - self.began
        self.jsa.js.server.logger.notice(
            f"Completed restore of {_friendly_bytes(self.received)} for stream "
            f"{self.log_name} in {format_duration(round(took / 1e6) * 1_000_000)}"
        )
        self._complete_advisory(took)

    def _fail(self, reply: bytes | None, error: ApiError | None = None) -> None:
        if self.finished:
            return
        self.finished = True
        self._stop_listening()
        if self.jsa.restoring.get(self.name) is self:
            del self.jsa.restoring[self.name]
        if self.store is not None:
            self.jsa.discard_restore_store(self.store, self.directory)
            self.store = None
        took = time.time_ns() - self.began
        self.jsa.js.server.logger.warn(
            f"Restore failed for {_friendly_bytes(self.received)} for stream "
            f"{self.log_name} in {format_duration(took)}"
        )
        self._complete_advisory(took)
        if reply and error is not None:
            out: dict[str, Any] = {"type": "io.nats.jetstream.api.v1.stream_create_response"}
            out["error"] = error.to_json()
            self.jsa.client.publish(reply, json.dumps(out, separators=(",", ":")).encode())

    def _stop_listening(self) -> None:
        if self.sub is not None:
            self.jsa.client.unsubscribe(self.sub)
            self.sub = None
        if self.idle is not None:
            self.idle.cancel()
            self.idle = None

    def _complete_advisory(self, took: int) -> None:
        advisories.publish(
            self.jsa,
            f"$JS.EVENT.ADVISORY.STREAM.RESTORE_COMPLETE.{self.name}",
            "restore_complete",
            {
                "stream": self.name,
                "start": rfc3339(self.began),
                "end": rfc3339(self.began + took),
                "bytes": self.received,
                "client": self.client,
            },
        )


class RestoreError(Exception):
    """Why a restore failed (the text of `restore failed: ...`)."""


def _json_entry(entry: Entry, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(entry.header + entry.payload)
    except ValueError as e:
        raise RestoreError(f"error in {what}: {e}") from None
    if not isinstance(obj, dict):
        raise RestoreError(f"error in {what}: not a JSON object")
    return obj
