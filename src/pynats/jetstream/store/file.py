"""The file store: a segmented append-only log with checksummed records and an in-memory index.

Layout of the store directory (owned entirely by the store):

    seg-0000000001.log ...   segments (segment.py): header + records (records.py)
    index.snap               index snapshot, written on clean shutdown (snapshot.py)

Writing. `store_msg` encodes the record into a user-space buffer and returns; the buffer goes
to the OS (one `pwrite`) when a sync round starts, when it passes `FLUSH_BYTES`, at the end of
the loop iteration, or before a read that needs it. `GroupCommit` decides when fsync runs and
when `when_durable` callbacks fire. Removals append tombstones (one DELETE record per flush
for all of them); purges from the front append one FIRST record.

Reading. Recent messages come from a bounded cache (`cache_bytes`); others from one `pread`
of `READ_AHEAD_BYTES` that also holds the records after it (a backlog reader asks for those
next), each decoded and verified when it is asked for: a record that fails its checksum is
reported (`damage()`, `lost`, `on_removed`, `on_damage`), dropped from the index and never
served.

Atomic batches. `store_batch` writes its messages as BATCH_MSG records followed by one
BATCH_END record, all in one segment (a new one first if the batch would not fit). Recovery
indexes BATCH_MSG records only once their END record is read: a crash part way through a
batch leaves none of it.

Recovery. A valid snapshot is loaded as is. Otherwise every segment is scanned: valid records
rebuild the index, tombstones and FIRST markers are applied at the end, damaged stretches are
reported with the sequences they presumably held. A torn tail is left in place (nothing is
deleted because of damage) and writing continues in a fresh segment.

Compaction. A segment without live messages is removed once the tombstones that emptied it
are durable (after the next fsync). If older segments still exist, the tombstones it holds
for them are first copied forward into the active segment.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import zlib
from bisect import bisect_right
from collections.abc import Callable
from typing import Final

from . import records, snapshot
from .base import (
    Damage,
    DurableCallback,
    StoreConfig,
    StoredMessage,
    file_msg_size,
)
from .durability import GroupCommit, SyncPolicy
from .fileio import DEFAULT_FILEIO, FileIO
from .index import MessageIndex
from .indexed import IndexedStore
from .metadata import ensure_dir_durable, remove_tree_durable, write_durable
from .records import CRC, HEAD_NO_CRC, HEADER_SIZE, KIND_MSG, MAGIC
from .segment import (
    SEG_HEADER_SIZE,
    Segment,
    decode_header,
    encode_header,
    parse_segment_name,
    segment_name,
)

DEFAULT_SEGMENT_BYTES: Final = 8 * 1024 * 1024
DEFAULT_CACHE_BYTES: Final = 8 * 1024 * 1024
READ_AHEAD_BYTES: Final = 64 * 1024  # one read when a message is not cached: its successors too
FLUSH_BYTES: Final = 256 * 1024
_MAX_LOST_REPORTED: Final = 100_000
_LOC_SHIFT: Final = 32
_LOC_MASK: Final = (1 << _LOC_SHIFT) - 1

_crc32: Final = zlib.crc32
_pack_head: Final = HEAD_NO_CRC.pack
# `_new_tuple(StoredMessage, fields)` without the NamedTuple constructor's Python frame
_new_tuple: Final = tuple.__new__
_pack_crc: Final = CRC.pack


class FileStore(IndexedStore):
    def __init__(
        self,
        directory: str,
        config: StoreConfig,
        sync: SyncPolicy | None = None,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        fileio: FileIO = DEFAULT_FILEIO,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        super().__init__(config, with_locations=True)
        self.directory = os.path.abspath(directory)
        self.sync_policy = sync or SyncPolicy()
        self._fileio = fileio
        self._segment_bytes = segment_bytes
        self._cache_limit = cache_bytes
        self._cache: dict[int, StoredMessage] = {}
        self._cache_bytes = 0
        # The bytes of the last read from disk (see `_fetch`), from segment `_ahead_seg` at
        # `_ahead_loc` (a location as the index keeps them: segment id and offset), kept
        # apart from the cache of recent writes, which a backlog reader would otherwise churn.
        self._ahead = b""
        self._ahead_seg: Segment | None = None
        self._ahead_loc = 0
        self._segments: dict[int, Segment] = {}
        self._segment_ids: list[int] = []  # ascending, parallel to _segment_bases
        self._segment_bases: list[int] = []
        self._wbuf = bytearray()
        self._msg_kind = KIND_MSG  # KIND_BATCH_MSG while an atomic batch is written
        self._pending_deletes: list[int] = []
        self._subject_bytes: dict[str, bytes] = {}
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        self._commit = GroupCommit(self.sync_policy, fileio, self._flush, loop)
        ensure_dir_durable(self.directory, fileio)
        self._recover()

    # --- durability -------------------------------------------------------------------------

    def when_durable(self, callback: DurableCallback) -> None:
        """Call `callback(error_or_None)` once everything stored so far is durable (see
        durability.py for what durable means under each sync policy)."""
        self._commit.when_durable(callback)

    def flush(self) -> None:
        """Hand buffered records to the OS now (no fsync)."""
        self._flush()

    def sync(self) -> None:
        """Flush and fsync now, blocking (tools and tests; the stream uses `when_durable`)."""
        self._commit.sync_now()

    @property
    def sync_rounds(self) -> int:
        return self._commit.syncs

    # --- hooks: writing ---------------------------------------------------------------------

    def _msg_size(self, subject: str, headers: bytes | None, data: bytes) -> int:
        subject_len = len(subject) if subject.isascii() else len(subject.encode())
        return file_msg_size(subject_len, len(headers) if headers else 0, len(data))

    def _persist_msg(
        self, seq: int, subject: str, headers: bytes | None, data: bytes, ts: int, ttl: int
    ) -> tuple[int, int]:
        subj = self._subject_bytes.get(subject)
        if subj is None:
            subj = subject.encode()
            if len(self._subject_bytes) < 100_000:
                self._subject_bytes[subject] = subj
        hdrs = headers or b""
        slen, hlen = len(subj), len(hdrs)
        length = HEADER_SIZE + slen + hlen + len(data)
        seg = self._active
        wbuf = self._wbuf
        if (
            seg.size + len(wbuf) + length > self._segment_bytes
            and seg.size + len(wbuf) > SEG_HEADER_SIZE
            and self._msg_kind == KIND_MSG  # a batch stays in the segment it started in
        ):
            self._roll()
            seg, wbuf = self._active, self._wbuf
        offset = seg.size + len(wbuf)
        head = _pack_head(MAGIC, self._msg_kind, 0, length, seq, ts, ttl, slen, hlen)
        wbuf += _pack_crc(_crc32(data, _crc32(hdrs, _crc32(subj, _crc32(head)))))
        wbuf += head
        wbuf += subj
        if hlen:
            wbuf += hdrs
        wbuf += data
        seg.live += 1
        self._cache[seq] = _new_tuple(StoredMessage, (subject, seq, ts, headers or None, data))
        self._cache_bytes += HEADER_SIZE + len(subject) + hlen + len(data)  # _cached_size
        if self._cache_bytes > self._cache_limit:
            self._evict()
        if len(wbuf) >= FLUSH_BYTES:
            self._flush()
        self._commit.appended()
        return (seg.id << _LOC_SHIFT) | offset, length

    def _persist_removals(self, seqs: list[int], erase: bool) -> None:
        cache = self._cache
        touched = set()
        for seq in seqs:
            msg = cache.pop(seq, None)
            if msg is not None:
                self._cache_bytes -= _cached_size(msg)
            seg = self._segment_for(seq)
            if seg is not None:
                seg.live -= 1
                touched.add(seg.id)
        self._pending_deletes.extend(seqs)
        self._commit.appended()
        self._drop_empty_segments(touched)

    def _persist_first(self, first_seq: int) -> None:
        self._wbuf += records.encode(records.KIND_FIRST, first_seq)
        for seq in [s for s in self._cache if s < first_seq]:
            del self._cache[seq]
        self._forget_read_ahead()
        self._recount_live()
        self._commit.appended()
        self._drop_empty_segments(set(self._segments))

    def _persist_skip(self, seq: int) -> None:
        self._wbuf += records.encode(records.KIND_SKIP, seq)
        self._commit.appended()

    def _begin_batch(self, msgs: list[tuple[str, bytes | None, bytes, int]]) -> None:
        """A batch is written into one segment: a new one first when it would not fit."""
        size = sum(HEADER_SIZE + len(s.encode()) + len(h or b"") + len(d) for s, h, d, _ in msgs)
        used = self._active.size + len(self._wbuf)
        if used + size > self._segment_bytes and used > SEG_HEADER_SIZE:
            self._roll()
        self._msg_kind = records.KIND_BATCH_MSG

    def _end_batch(self, first_seq: int, last_seq: int) -> None:
        """BATCH_MSG records count on recovery only when this END record follows them."""
        self._msg_kind = KIND_MSG
        self._wbuf += records.encode(records.KIND_BATCH_END, last_seq, first_seq)
        self._commit.appended()

    def _flush(self) -> None:
        if self._closed_files:
            return
        if self._pending_deletes:
            deletes, self._pending_deletes = self._pending_deletes, []
            for start in range(0, len(deletes), 65536):
                self._wbuf += records.encode_seqs(
                    records.KIND_DELETE, deletes[start : start + 65536]
                )
        if not self._wbuf:
            return
        seg = self._active
        buf, self._wbuf = self._wbuf, bytearray()
        self._fileio.pwrite(seg.fd, buf, seg.size)
        seg.size += len(buf)
        self._commit.dirty(seg.fd)

    # --- hooks: reading ---------------------------------------------------------------------

    def _fetch(self, seq: int) -> StoredMessage:
        """A live message: from the cache of recent writes, from the bytes of the last read,
        or read from its segment.

        A consumer reading an old backlog asks for the next messages next, and they sit
        right after this one in the segment: one read of `READ_AHEAD_BYTES` serves them all,
        each decoded (and its checksum verified) when it is asked for."""
        msg = self._cache.get(seq)
        if msg is not None:
            return msg
        index = self._index
        i = seq - index.base
        loc, rlen = index.loc[i], index.rlen[i]
        offset = loc & _LOC_MASK
        # a location in another segment is 2**32 (less two offsets in segments) away: outside
        pos = loc - self._ahead_loc
        ahead_seg = self._ahead_seg
        if pos >= 0 and pos + rlen <= len(self._ahead) and ahead_seg is not None:
            return self._decode_at(ahead_seg, seq, self._ahead, pos, rlen, offset)
        seg = self._segments.get(loc >> _LOC_SHIFT)
        if seg is None:
            raise self._fail_damaged(
                seq,
                Damage(
                    segment_name(loc >> _LOC_SHIFT), offset, rlen, "segment missing", (seq,), "read"
                ),
            )
        if seg is self._active and offset + rlen > seg.size:
            self._flush()
        length = max(rlen, READ_AHEAD_BYTES)
        buf = self._fileio.pread(seg.fd, min(length, max(seg.size - offset, rlen)), offset)
        self._ahead, self._ahead_seg, self._ahead_loc = buf, seg, loc
        return self._decode_at(seg, seq, buf, 0, rlen, offset)

    def _decode_at(
        self, seg: Segment, seq: int, buf: bytes, pos: int, rlen: int, offset: int
    ) -> StoredMessage:
        try:
            kind, rseq, ts, _ttl, hdrs, data = records.decode_at(buf, pos, rlen)
            if (kind != KIND_MSG and kind != records.KIND_BATCH_MSG) or rseq != seq:
                raise ValueError("record does not hold this message")
        except ValueError as exc:
            seg.has_damage = True
            seg.live -= 1
            raise self._fail_damaged(
                seq, Damage(seg.name, offset, rlen, str(exc), (seq,), "read")
            ) from None
        # the index's str of the subject (the record's checks out, and holds the same)
        return _new_tuple(StoredMessage, (self._index.subject_of(seq), seq, ts, hdrs or None, data))

    def _forget_read_ahead(self) -> None:
        self._ahead, self._ahead_seg, self._ahead_loc = b"", None, 0

    def _evict(self) -> None:
        """Keep the newest half of the cache. Rebuilding the dict (instead of popping its
        oldest keys one by one, which leaves dummies that later scans must skip) keeps
        eviction amortised O(1) per message."""
        kept: list[StoredMessage] = []
        budget = self._cache_limit // 2
        for msg in reversed(self._cache.values()):
            budget -= _cached_size(msg)
            if budget < 0:
                break
            kept.append(msg)
        self._cache = {m.seq: m for m in reversed(kept)}
        self._cache_bytes = (
            self._cache_limit // 2 - budget if budget >= 0 else sum(_cached_size(m) for m in kept)
        )

    # --- segments ---------------------------------------------------------------------------

    def _segment_for(self, seq: int) -> Segment | None:
        i = bisect_right(self._segment_bases, seq) - 1
        return self._segments[self._segment_ids[i]] if i >= 0 else None

    def _open_segment(self, segment_id: int, base_seq: int, create: bool) -> Segment:
        path = os.path.join(self.directory, segment_name(segment_id))
        fd = self._fileio.open(path, create=create)
        seg = Segment(segment_id, path, fd, base_seq)
        self._segments[segment_id] = seg
        self._segment_ids.append(segment_id)
        self._segment_bases.append(base_seq)
        return seg

    def _new_active(self, prev_len: int) -> None:
        """Start a new active segment (the previous one, if any, was flushed)."""
        segment_id = self._segment_ids[-1] + 1 if self._segment_ids else 1
        base_seq = self._index.last_seq + 1
        seg = self._open_segment(segment_id, base_seq, create=True)
        self._active = seg
        self._wbuf += encode_header(segment_id, base_seq, prev_len)
        self._commit.dirty_dir(self.directory)
        self._commit.appended()

    def _roll(self) -> None:
        self._flush()
        self._new_active(self._active.size)

    def _recount_live(self) -> None:
        index = self._index
        for seg in self._segments.values():
            seg.live = 0
        for seq in index.live_seqs():
            seg_id = index.loc[seq - index.base] >> _LOC_SHIFT
            self._segments[seg_id].live += 1

    def _drop_empty_segments(self, candidates: set[int]) -> None:
        for seg_id in sorted(candidates):
            seg = self._segments.get(seg_id)
            if seg is None or seg is self._active or seg.live > 0 or seg.has_damage:
                continue
            self._flush()
            if seg_id != self._segment_ids[0]:
                self._carry_tombstones_forward(seg)
            self._forget_segment(seg)

    def _carry_tombstones_forward(self, seg: Segment) -> None:
        """Copy the tombstones `seg` holds for older, still existing segments."""
        oldest_base = self._segment_bases[0]
        kept: list[int] = []
        first_marker = 0
        data = self._fileio.pread(seg.fd, seg.size, 0)
        for offset, length, kind, seq, *_ in records.scan(data, SEG_HEADER_SIZE):
            if kind == records.KIND_DELETE:
                body = data[offset + HEADER_SIZE : offset + length]
                kept.extend(
                    s for s in records.decode_seqs(body, seq) if oldest_base <= s < seg.base_seq
                )
            elif kind == records.KIND_ERASED and oldest_base <= seq < seg.base_seq:
                kept.append(seq)
            elif kind == records.KIND_FIRST:
                first_marker = max(first_marker, seq)
        if first_marker > oldest_base:
            self._wbuf += records.encode(records.KIND_FIRST, first_marker)
        self._pending_deletes.extend(kept)

    def _forget_segment(self, seg: Segment) -> None:
        if seg is self._ahead_seg:
            self._forget_read_ahead()
        i = self._segment_ids.index(seg.id)
        del self._segment_ids[i]
        del self._segment_bases[i]
        del self._segments[seg.id]
        self._commit.retire_fd(seg.fd)
        fileio, path, directory = self._fileio, seg.path, self.directory

        def unlink() -> None:
            fileio.unlink(path)
            fileio.fsync_dir(directory)

        self._commit.after_sync(unlink)

    def _before_erase(self, seq: int) -> None:
        """Overwrite a message's record with an ERASED record of the same length.

        Called while the message is still indexed; its tombstone follows. Either one alone
        already marks the sequence deleted on recovery.
        """
        index = self._index
        i = seq - index.base
        loc, rlen = index.loc[i], index.rlen[i]
        seg = self._segments.get(loc >> _LOC_SHIFT)
        if seg is None or rlen < HEADER_SIZE:
            return
        offset = loc & _LOC_MASK
        erased = records.encode(records.KIND_ERASED, seq, data=bytes(rlen - HEADER_SIZE))
        if seg is self._active and offset >= seg.size:
            start = offset - seg.size
            self._wbuf[start : start + rlen] = erased
            return
        self._fileio.pwrite(seg.fd, erased, offset)
        self._commit.dirty(seg.fd)

    # --- lifecycle --------------------------------------------------------------------------

    def stop(self) -> None:
        """Make everything durable, fire pending callbacks, write the index snapshot, close."""
        if self._closed_files:
            return
        self._closed = True
        self._commit.close()
        self._write_snapshot()
        self._close_files()

    def delete(self) -> None:
        """Remove the store and its directory (durably: a crash leaves no half-store)."""
        if not self._closed_files:
            self._closed = True
            self._commit.close()
            self._close_files()
        remove_tree_durable(self.directory, self._fileio)

    def _close_files(self) -> None:
        for seg in self._segments.values():
            self._fileio.close(seg.fd)
        self._closed_files = True

    def _write_snapshot(self) -> None:
        saved = [
            snapshot.SnapshotSegment(s.id, s.base_seq, s.size, s.live)
            for s in self._segments.values()
        ]
        extra = {
            "damage": [d.to_json() for d in self._damage],
            "lost": {str(seq): size for seq, size in self._lost.items()},
        }
        snap = snapshot.Snapshot(saved, self._index, self._ttl_heap, self._age_exempt, extra)
        path = os.path.join(self.directory, snapshot.SNAPSHOT_NAME)
        write_durable(path, snapshot.encode(snap), self._fileio)

    # --- recovery ---------------------------------------------------------------------------

    def _recover(self) -> None:
        self._closed_files = False
        fileio = self._fileio
        ids = sorted(
            i
            for i in (parse_segment_name(n) for n in fileio.listdir(self.directory))
            if i is not None
        )
        if not (ids and self._load_snapshot(ids)):
            self._scan_segments(ids)
        if not self._segment_ids:
            self._new_active(0)
        elif self._segments[self._segment_ids[-1]].has_damage:
            self._new_active(self._segments[self._segment_ids[-1]].size)
        else:
            self._active = self._segments[self._segment_ids[-1]]
        self._drop_empty_segments(set(self._segment_ids[:-1]))

    def _load_snapshot(self, ids: list[int]) -> bool:
        path = os.path.join(self.directory, snapshot.SNAPSHOT_NAME)
        if not self._fileio.exists(path):
            return False
        try:
            snap = snapshot.decode(self._fileio.read_file(path))
        except ValueError:
            return False
        if [s.id for s in snap.segments] != ids:
            return False
        opened: list[Segment] = []
        for saved in snap.segments:
            seg = self._open_segment(saved.id, saved.base_seq, create=False)
            opened.append(seg)
            seg.size, seg.live = self._fileio.size(seg.fd), saved.live
            if seg.size != saved.size:
                for s in opened:
                    self._fileio.close(s.fd)
                self._segments.clear()
                self._segment_ids.clear()
                self._segment_bases.clear()
                return False
        self._index = snap.index
        self._ttl_heap = snap.ttl_heap
        self._age_exempt = snap.age_exempt
        self._damage = [Damage(**{**d, "seqs": tuple(d["seqs"])}) for d in snap.extra["damage"]]
        self._lost = {int(seq): size for seq, size in snap.extra["lost"].items()}
        damaged_files = {d.file for d in self._damage}
        for seg in self._segments.values():
            seg.has_damage = seg.name in damaged_files
        return True

    def _scan_segments(self, ids: list[int]) -> None:
        scan = _Scan(self._index, self._segment_for)
        prev: Segment | None = None
        for segment_id in ids:
            seg = self._open_segment(segment_id, 0, create=False)
            data = self._fileio.read_file(seg.path)
            seg.size = len(data)
            header = decode_header(data)
            if segment_id == ids[-1] and len(data) < SEG_HEADER_SIZE:
                # killed between creating the newest segment and writing its header: it holds
                # nothing; write the header again and use it as the active segment
                seg.base_seq = scan.last_seq + 1
                self._segment_bases[-1] = seg.base_seq
                seg.size = 0
                self._wbuf += encode_header(segment_id, seg.base_seq, prev.size if prev else 0)
                self._commit.dirty_dir(self.directory)
                break
            if header is None or header[0] != segment_id:
                seg.has_damage = True
                scan.damage(seg, 0, min(SEG_HEADER_SIZE, len(data)), "segment header damaged")
                seg.base_seq = scan.last_seq + 1
            else:
                _, seg.base_seq, prev_len = header
                if prev is not None and prev_len > prev.size:
                    prev.has_damage = True
                    scan.damage(prev, prev.size, prev_len - prev.size, "segment truncated")
                scan.pad_to(seg.base_seq - 1)
            self._segment_bases[-1] = seg.base_seq
            scan.segment(seg, data)
            prev = seg
        scan.finish()
        self._ttl_heap, self._age_exempt = scan.ttl_heap, scan.age_exempt
        self._damage, self._lost = scan.found_damage, scan.lost


class _Scan:
    """Rebuilds a FileStore's index from its segments (the no-snapshot start-up path).

    It fills `index` and collects what the store adopts afterwards: the TTL heap, the
    sequences exempt from max_age, the damage found and the sequences lost to it.
    """

    def __init__(self, index: MessageIndex, segment_for: Callable[[int], Segment | None]) -> None:
        self.index = index
        self.segment_for = segment_for
        self.segments: list[Segment] = []
        self.ttl_heap: list[tuple[int, int]] = []
        self.age_exempt: set[int] = set()
        self.found_damage: list[Damage] = []
        self.lost: dict[int, int] = {}
        self.tombstones: set[int] = set()
        self.first_marker = 0
        self.skip_max = 0
        self.pending_damage: list[tuple[Segment, int, int, str, int]] = []  # awaiting next seq
        # an atomic batch's messages, until its END record says it was written whole
        self.batch: list[tuple[Segment, int, int, int, int, int, str, int]] = []
        self.damages: list[tuple[Segment, int, int, str, int, int]] = []

    @property
    def last_seq(self) -> int:
        return self.index.last_seq

    def pad_to(self, seq: int) -> None:
        self.index.pad_to(seq)

    def damage(self, seg: Segment, offset: int, length: int, reason: str) -> None:
        self.pending_damage.append((seg, offset, length, reason, self.index.last_seq))

    def _settle_damage(self, next_seq: int) -> None:
        for seg, offset, length, reason, before in self.pending_damage:
            self.damages.append((seg, offset, length, reason, before, next_seq))
        self.pending_damage.clear()

    def segment(self, seg: Segment, data: bytes) -> None:
        index = self.index
        self.segments.append(seg)
        view = memoryview(data)
        for offset, length, kind, seq, ts, ttl, slen, hlen in records.scan(data, SEG_HEADER_SIZE):
            if kind == records.KIND_BATCH_MSG:
                batch = self.batch
                if batch and seq <= batch[-1][3]:
                    batch.clear()  # the batch before was cut short by a crash: none of it
                start = offset + HEADER_SIZE
                subject = str(view[start : start + slen], "utf-8")
                size = file_msg_size(slen, hlen, length - HEADER_SIZE - slen - hlen)
                batch.append((seg, offset, length, seq, ts, ttl, subject, size))
                continue
            if kind == records.KIND_BATCH_END:  # `seq` its last sequence, `ts` its first
                for entry in self.batch:
                    if ts <= entry[3] <= seq:
                        self._add(*entry)
                self.batch = []
                continue
            if kind == KIND_MSG:
                self.batch.clear()
                if seq <= index.last_seq:
                    seg.has_damage = True
                    self.damage(seg, offset, length, f"out-of-order record for sequence {seq}")
                    continue
                start = offset + HEADER_SIZE
                subject = str(view[start : start + slen], "utf-8")
                size = file_msg_size(slen, hlen, length - HEADER_SIZE - slen - hlen)
                self._add(seg, offset, length, seq, ts, ttl, subject, size)
            elif kind == records.KIND_DELETE:
                start = offset + HEADER_SIZE
                self.tombstones.update(records.decode_seqs(view[start : offset + length], seq))
            elif kind == records.KIND_ERASED:
                self.tombstones.add(seq)
                self.skip_max = max(self.skip_max, seq)
            elif kind == records.KIND_FIRST:
                self.first_marker = max(self.first_marker, seq)
            elif kind == records.KIND_SKIP:
                self.skip_max = max(self.skip_max, seq)
            elif kind == -1:
                seg.has_damage = True
                reason = (
                    "checksum mismatch" if seq == records.DAMAGE_CHECKSUM else "truncated record"
                )
                self.damage(seg, offset, length, reason)

    def _add(
        self,
        seg: Segment,
        offset: int,
        length: int,
        seq: int,
        ts: int,
        ttl: int,
        subject: str,
        size: int,
    ) -> None:
        """Index one recovered message."""
        if seq <= self.index.last_seq:
            seg.has_damage = True
            self.damage(seg, offset, length, f"out-of-order record for sequence {seq}")
            return
        if self.pending_damage:
            self._settle_damage(seq)
        self.index.append(seq, subject, ts, size, (seg.id << _LOC_SHIFT) | offset, length)
        seg.live += 1
        if ttl:
            self.age_exempt.add(seq)
            if ttl > 0:
                self.ttl_heap.append((ts + ttl, seq))

    def finish(self) -> None:
        index = self.index
        end = max(self.skip_max, self.first_marker - 1, index.last_seq)
        if self.pending_damage:
            self._settle_damage(end + 1)
        index.pad_to(end)
        for seq in self.tombstones:
            if index.remove(seq) is not None:
                seg = self.segment_for(seq)
                if seg is not None:
                    seg.live -= 1
        if self.first_marker > index.first_seq:
            if self.first_marker > index.last_seq:
                last_ts = index.last_ts
                index.reset(self.first_marker)
                index.last_ts = last_ts
                for seg in self.segments:
                    seg.live = 0
            else:
                for seq in list(index.live_seqs(index.first_seq, self.first_marker - 1)):
                    index.remove(seq)
                    seg = self.segment_for(seq)
                    if seg is not None:
                        seg.live -= 1
        heapq.heapify(self.ttl_heap)
        for seg, offset, length, reason, before, after in self.damages:
            lost = [
                s
                for s in range(before + 1, min(after, before + 1 + _MAX_LOST_REPORTED))
                if s not in self.tombstones and s >= self.first_marker and not index.is_live(s)
            ]
            for s in lost:
                self.lost[s] = 0
            self.found_damage.append(
                Damage(seg.name, offset, length, reason, tuple(lost), "startup")
            )


def _cached_size(msg: StoredMessage) -> int:
    return HEADER_SIZE + len(msg.subject) + len(msg.headers or b"") + len(msg.data)
