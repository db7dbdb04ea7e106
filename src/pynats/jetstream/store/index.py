"""The in-memory index of a stream's messages: sequence -> facts, subject -> state.

Sequences are dense, so the facts live in parallel `array`s indexed by `seq - base` (about 36
bytes a message, 48 with file locations) instead of a dict of objects. A slot whose size is 0
is a deleted sequence. Messages of one subject form a doubly linked list through `nxt`/`prv`,
so removing any message, finding a subject's first/last, and enforcing per-subject limits
are O(1).

Invariants:
- `base <= first_seq`; slots below `first_seq` are dead and trimmed lazily (amortised O(1)).
- `msgs == 0` iff `first_seq == last_seq + 1`.
- for each subject, `subjects[name] == [first, last, count, sid]` over its live messages, and
  `names[sid] == name`.
- `ts` never decreases with the sequence (the store assigns max(now, last_ts)).
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from typing import Final

FIRST: Final = 0
LAST: Final = 1
COUNT: Final = 2
SID: Final = 3
_TRIM_MIN: Final = 4096
# the snapshot's fixed head: base, first, last, msgs, bytes, last_ts, slots, names, names' size
_HEAD: Final = struct.Struct("<QQQQQqQQQ")


class MessageIndex:
    def __init__(self, first_seq: int = 1, with_locations: bool = False) -> None:
        self.with_locations = with_locations
        self.subjects: dict[str, list[int]] = {}
        self.names: list[str | None] = []
        self.free_sids: list[int] = []
        self.last_ts = 0
        self.reset(first_seq)

    def reset(self, first_seq: int) -> None:
        """Forget every message; the next sequence will be `first_seq`."""
        self.base = self.first_seq = first_seq
        self.last_seq = first_seq - 1
        self.msgs = 0
        self.bytes = 0
        self.ts = array("q")
        self.size = array("I")
        self.sid = array("I")
        self.nxt = array("Q")
        self.prv = array("Q")
        self.loc = array("q")
        self.rlen = array("I")
        self.subjects.clear()
        self.names.clear()
        self.free_sids.clear()

    # --- writes -----------------------------------------------------------------------------

    def append(
        self, seq: int, subject: str, ts: int, size: int, loc: int = 0, rlen: int = 0
    ) -> None:
        """Add a live message at `seq` (> last_seq); skipped sequences become deleted slots."""
        if seq != self.last_seq + 1:
            self.pad_to(seq - 1)
        if self.msgs == 0:
            self.first_seq = seq
        state = self.subjects.get(subject)
        if state is None:
            sid = self._new_sid(subject)
            self.subjects[subject] = [seq, seq, 1, sid]
            prv = 0
        else:
            prv = state[LAST]
            self.nxt[prv - self.base] = seq
            state[LAST] = seq
            state[COUNT] += 1
            sid = state[SID]
        self.ts.append(ts)
        self.size.append(size)
        self.sid.append(sid)
        self.nxt.append(0)
        self.prv.append(prv)
        if self.with_locations:
            self.loc.append(loc)
            self.rlen.append(rlen)
        self.last_seq = seq
        self.last_ts = ts
        self.msgs += 1
        self.bytes += size

    def pad_to(self, seq: int) -> None:
        """Use up sequences through `seq` without messages (deleted slots)."""
        gap = seq - self.last_seq
        if gap <= 0:
            return
        if self.msgs == 0:
            self.base = self.first_seq = seq + 1
            self.last_seq = seq
            self._clear_arrays()
            return
        self.ts.extend(array("q", [self.last_ts]) * gap)
        zeros = bytes(8 * gap)
        self.size.frombytes(zeros[: 4 * gap])
        self.sid.frombytes(zeros[: 4 * gap])
        self.nxt.frombytes(zeros)
        self.prv.frombytes(zeros)
        if self.with_locations:
            self.loc.frombytes(zeros)
            self.rlen.frombytes(zeros[: 4 * gap])
        self.last_seq = seq

    def remove(self, seq: int) -> tuple[str, int, bool] | None:
        """Remove a live message: (subject, size, was_last_on_subject), or None if not live."""
        if seq < self.first_seq or seq > self.last_seq:
            return None
        base = self.base
        i = seq - base
        size = self.size[i]
        if size == 0:
            return None
        self.size[i] = 0
        name = self.names[self.sid[i]]
        assert name is not None
        state = self.subjects[name]
        prv, nxt = self.prv[i], self.nxt[i]
        if prv:
            self.nxt[prv - base] = nxt
        if nxt:
            self.prv[nxt - base] = prv
        was_last = state[LAST] == seq
        state[COUNT] -= 1
        if state[COUNT] == 0:
            del self.subjects[name]
            self.names[state[SID]] = None
            self.free_sids.append(state[SID])
        else:
            if state[FIRST] == seq:
                state[FIRST] = nxt
            if was_last:
                state[LAST] = prv
        self.msgs -= 1
        self.bytes -= size
        if seq == self.first_seq:
            self._advance_first()
        return name, size, was_last

    def _advance_first(self) -> None:
        if self.msgs == 0:
            self.base = self.first_seq = self.last_seq + 1
            self._clear_arrays()
            return
        size = self.size
        i = self.first_seq - self.base
        while size[i] == 0:
            i += 1
        self.first_seq = self.base + i
        if i > _TRIM_MIN and i > len(size) // 2:
            self._trim(i)

    def _trim(self, count: int) -> None:
        for arr in self._arrays():
            del arr[:count]
        self.base += count

    def _clear_arrays(self) -> None:
        for arr in self._arrays():
            del arr[:]

    def _arrays(self) -> tuple[array, ...]:
        arrays = (self.ts, self.size, self.sid, self.nxt, self.prv)
        return (*arrays, self.loc, self.rlen) if self.with_locations else arrays

    def _new_sid(self, subject: str) -> int:
        if self.free_sids:
            sid = self.free_sids.pop()
            self.names[sid] = subject
            return sid
        self.names.append(subject)
        return len(self.names) - 1

    # --- reads ------------------------------------------------------------------------------

    def is_live(self, seq: int) -> bool:
        return self.first_seq <= seq <= self.last_seq and self.size[seq - self.base] != 0

    def subject_of(self, seq: int) -> str:
        name = self.names[self.sid[seq - self.base]]
        assert name is not None
        return name

    def ts_of(self, seq: int) -> int:
        return self.ts[seq - self.base]

    def size_of(self, seq: int) -> int:
        return self.size[seq - self.base]

    def next_live(self, seq: int) -> int:
        """The first live sequence >= seq, or 0."""
        if seq < self.first_seq:
            seq = self.first_seq
        size, base, last = self.size, self.base, self.last_seq
        while seq <= last:
            if size[seq - base]:
                return seq
            seq += 1
        return 0

    def next_of_subject(self, subject: str, seq: int) -> int:
        """The first live sequence >= seq on `subject`, or 0."""
        state = self.subjects.get(subject)
        if state is None or state[LAST] < seq:
            return 0
        if seq <= state[FIRST]:
            return state[FIRST]
        sids, size, base, sid = self.sid, self.size, self.base, state[SID]
        i = seq - base
        stop = state[LAST] - base + 1
        while True:
            i = sids.index(sid, i, stop)
            if size[i]:
                return base + i
            i += 1

    def live_seqs(self, start: int = 0, stop: int = 0) -> Iterator[int]:
        """Live sequences in [start, stop] (whole range by default), ascending."""
        size, base = self.size, self.base
        seq = max(start, self.first_seq)
        end = min(stop, self.last_seq) if stop else self.last_seq
        while seq <= end:
            if size[seq - base]:
                yield seq
            seq += 1

    def subject_seqs(self, subject: str) -> list[int]:
        """Live sequences of one subject, ascending (walks its linked list)."""
        state = self.subjects.get(subject)
        if state is None:
            return []
        out, seq, nxt, base = [], state[FIRST], self.nxt, self.base
        while seq:
            out.append(seq)
            seq = nxt[seq - base]
        return out

    def deleted_seqs(self) -> list[int]:
        size, base = self.size, self.base
        return [s for s in range(self.first_seq, self.last_seq + 1) if not size[s - base]]

    def seq_for_time(self, ts_ns: int) -> int:
        """First live sequence stored at or after `ts_ns`, or 0."""
        if self.msgs == 0:
            return 0
        lo = self.first_seq - self.base
        i = bisect_left(self.ts, ts_ns, lo, len(self.ts))
        return self.next_live(self.base + i) if i < len(self.ts) else 0

    # --- snapshot ---------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        names = "\n".join(n if n is not None else "" for n in self.names).encode()
        states = array("Q")
        for state in self.subjects.values():
            states.extend(state)
        head = _HEAD.pack(
            self.base,
            self.first_seq,
            self.last_seq,
            self.msgs,
            self.bytes,
            self.last_ts,
            len(self.ts),
            len(self.names),
            len(names),
        )
        parts = [head, names, states.tobytes()]
        parts.extend(arr.tobytes() for arr in self._arrays())
        return b"".join((struct.pack("<Q", len(states)), *parts))

    @classmethod
    def from_bytes(cls, blob: bytes, with_locations: bool) -> MessageIndex:
        index = cls(1, with_locations)
        (n_states,) = struct.unpack_from("<Q", blob)
        pos = 8
        base, first, last, msgs, nbytes, last_ts, slots, n_names, names_len = _HEAD.unpack_from(
            blob, pos
        )
        pos += _HEAD.size
        names = blob[pos : pos + names_len].decode().split("\n") if n_names else []
        pos += names_len
        states = array("Q")
        states.frombytes(blob[pos : pos + 8 * n_states])
        pos += 8 * n_states
        index.base, index.first_seq, index.last_seq = base, first, last
        index.msgs, index.bytes, index.last_ts = msgs, nbytes, last_ts
        for arr in index._arrays():
            width = arr.itemsize * slots
            arr.frombytes(blob[pos : pos + width])
            pos += width
        if pos != len(blob):
            raise ValueError("index snapshot size mismatch")
        index.names = [n if n else None for n in names]
        index.free_sids = [i for i, n in enumerate(index.names) if n is None]
        for k in range(0, len(states), 4):
            state = list(states[k : k + 4])
            name = index.names[state[SID]]
            assert name is not None
            index.subjects[name] = state
        return index
