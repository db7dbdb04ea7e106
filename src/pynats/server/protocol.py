"""The client-protocol parser: bytes in, operations out, no I/O.

`ProtocolParser.feed(chunk)` parses every complete operation in the chunk, in order, and hands
each to its sink (the connection) through one method call per operation; an incomplete trailing
operation is kept for the next chunk. The parser never touches a socket or a clock, so tests can
feed it any bytes split at any offset.

A violation raises `ProtocolError`: `err` is the `-ERR` text to send (None for a silent close,
as nats-server does for malformed arguments) and `reason` is the closed-connection reason shown
by /connz. Operations parsed before the violation in the same chunk have already been handed on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Protocol

from .const import MAX_CONTROL_LINE_SIZE, MAX_PAYLOAD_SIZE
from .sublist import Outbound

MAX_SIZE_DIGITS: Final = 9


def _probe() -> None:
    """Only looked at: a compiled module's functions are not Python functions."""


# Compiled by mypyc, a loop over `data[i]` runs as C, while each call of a bytes method
# (find, split, isdigit) stays a generic Python call: the PUB fast path scans bytes itself
# when compiled (3x faster there) and uses the methods as Python source (where a loop in
# Python would be 2-5x slower). tests/unit/test_compiled.py holds both to the same results.
NATIVE: Final = type(_probe).__name__ != "function"

ERR_UNKNOWN_OP: Final = "Unknown Protocol Operation"
ERR_MAX_CONTROL_LINE: Final = "maximum control line exceeded"
ERR_MAX_PAYLOAD: Final = "Maximum Payload Violation"
ERR_AUTH_VIOLATION: Final = "Authorization Violation"

REASON_PROTOCOL_VIOLATION: Final = "Protocol Violation"
REASON_PARSE_ERROR: Final = "Parse Error"
REASON_MAX_PAYLOAD: Final = "Maximum Message Payload Exceeded"
REASON_MAX_CONTROL_LINE: Final = "Maximum Control Line Exceeded"
REASON_AUTH: Final = "Authentication Failure"


class ProtocolError(Exception):
    """The connection must be closed; `err` (if any) is sent as `-ERR '<err>'` first."""

    def __init__(
        self, err: str | None, reason: str = REASON_PROTOCOL_VIOLATION, log: str = ""
    ) -> None:
        super().__init__(err or reason)
        self.err = err
        self.reason = reason
        self.log = log  # what the server logs about it (as an error), if anything


def max_payload_error(size: int, limit: int) -> ProtocolError:
    """A message over max_payload: `-ERR 'Maximum Payload Violation'`, logged with sizes."""
    return ProtocolError(
        ERR_MAX_PAYLOAD, REASON_MAX_PAYLOAD, f"maximum payload exceeded: {size} vs {limit}"
    )


class ParserSink(Protocol):
    """What the parser calls; implemented by ClientConnection (and by test recorders)."""

    def process_connect(self, arg: bytes) -> None: ...
    def process_pub(
        self, subject: bytes, reply: bytes | None, hdr_len: int, payload: bytes
    ) -> None:
        """PUB (hdr_len 0) and HPUB: `payload` is the header block followed by the body."""

    def process_sub(self, subject: bytes, queue: bytes | None, sid: bytes) -> None: ...
    def process_unsub(self, sid: bytes, max_msgs: int) -> None: ...
    def process_ping(self) -> None: ...
    def process_pong(self) -> None: ...


# `delivery.publish_plain`: (publisher, subject, reply, payload) -> taken
PlainPublish = Callable[[Any, bytes, "bytes | None", bytes], bool]


def _parse_size(raw: bytes) -> int:
    """A payload size: decimal ASCII digits only, at most 9 of them (nats-server's rule)."""
    if not raw.isdigit() or len(raw) > MAX_SIZE_DIGITS:
        raise ProtocolError(None)
    return int(raw)


def _first_blank(line: bytes) -> int:
    """Index of the first space or tab (the end of the op name), or len(line)."""
    sp = line.find(b" ")
    tab = line.find(b"\t")
    if sp < 0:
        return tab if tab >= 0 else len(line)
    return sp if tab < 0 or sp < tab else tab


def _newline(data: bytes, pos: int, n: int) -> int:
    """Index of the first `\n` at or after `pos`, or -1 (bytes.find, as a loop for mypyc)."""
    while pos < n:
        if data[pos] == 10:
            return pos
        pos += 1
    return -1


def _is_blank(c: int) -> bool:
    """The bytes `bytes.split()` splits at (there is no `\n` inside a line)."""
    return c == 32 or c == 9 or c == 13 or c == 11 or c == 12


def _pub_args(data: bytes, start: int, end: int) -> tuple[int, int, int, int, int]:
    """The arguments of a PUB line in data[start:end], found as `split()` would find them:
    (subject start, subject end, reply start, reply end, size), the reply's -1 when there
    is none; size -1 when there are not two or three arguments or the size is not digits
    (at most MAX_SIZE_DIGITS). A fixed tuple of ints costs no allocation compiled."""
    s0 = e0 = s1 = e1 = s2 = e2 = 0
    count = 0
    i = start
    while i < end:
        if _is_blank(data[i]):
            i += 1
            continue
        first = i
        i += 1
        while i < end:
            c = data[i]
            # `_is_blank` written out: a call per byte of a subject costs more than the test
            if c <= 32 and (c == 32 or c == 9 or c == 13 or c == 11 or c == 12):
                break
            i += 1
        if count == 0:
            s0, e0 = first, i
        elif count == 1:
            s1, e1 = first, i
        elif count == 2:
            s2, e2 = first, i
        else:
            return 0, 0, -1, -1, -1
        count += 1
    if count == 2:
        s_size, e_size, s1, e1 = s1, e1, -1, -1
    elif count == 3:
        s_size, e_size = s2, e2
    else:
        return 0, 0, -1, -1, -1
    if e_size - s_size > MAX_SIZE_DIGITS:
        return 0, 0, -1, -1, -1
    size = 0
    while s_size < e_size:
        c = data[s_size]
        if c < 48 or c > 57:
            return 0, 0, -1, -1, -1
        size = size * 10 + c - 48
        s_size += 1
    return s0, e0, s1, e1, size


def _check_json(arg: bytes) -> None:
    """A client INFO is ignored, but it must be JSON: otherwise the connection is closed."""
    import json

    try:
        json.loads(arg)
    except ValueError:
        raise ProtocolError(None) from None


class ChunkedInput:
    """What every incremental NATS parser does with chunks: an operation cut by the end of a
    chunk is kept (as a list of pieces, joined once enough bytes arrived), and a control line
    may not grow past `max_control_line` while its newline is awaited."""

    __slots__ = ("_pending", "_pending_len", "_pending_need", "max_control_line")

    def __init__(self, max_control_line: int) -> None:
        self.max_control_line = max_control_line
        self._pending: list[bytes] = []
        self._pending_len = 0
        self._pending_need = 0  # total bytes needed before the buffered op can complete

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete operation."""
        return self._pending_len

    def _resume(self, data: bytes) -> bytes | None:
        """`data` appended to what was kept: the bytes to parse now, or None while the kept
        operation is still incomplete."""
        self._pending.append(data)
        self._pending_len += len(data)
        if self._pending_len < self._pending_need:
            return None
        if self._pending_need == 0 and b"\n" not in data:
            self._check_partial_control_line(self._pending_len)
            return None
        data = b"".join(self._pending)
        self._pending = []
        self._pending_len = 0
        self._pending_need = 0
        return data

    def _keep(self, data: bytes, pos: int, need: int) -> None:
        """Hold the incomplete operation starting at `pos` until `need` bytes are available."""
        rest = data[pos:] if pos else data
        self._pending = [rest]
        self._pending_len = len(rest)
        self._pending_need = need

    def _check_partial_control_line(self, length: int) -> None:
        # A control line may not grow past the limit while we wait for its newline
        # (the op name and a separator are not counted, as in nats-server).
        if length > self.max_control_line + 8:
            self._pending = []
            self._pending_len = 0
            raise ProtocolError(ERR_MAX_CONTROL_LINE, REASON_MAX_CONTROL_LINE)


class ProtocolParser(ChunkedInput):
    """Incremental parser of the client side of the NATS protocol.

    `awaiting_connect`: when true, the first operation must be CONNECT (auth required).
    `headers_enabled`: HPUB is only accepted once CONNECT negotiated headers.
    `hold()` (called by the sink during an operation) stops the parsing after it: what
    follows, and every later chunk, is kept as it came until `release()` hands it back.
    """

    __slots__ = (
        "_held",
        "_on_connect",
        "_on_ping",
        "_on_pong",
        "_on_pub",
        "_on_sub",
        "_on_unsub",
        "_plain_publish",
        "_plain_publisher",
        "awaiting_connect",
        "headers_enabled",
        "max_payload",
        "traffic",
    )

    def __init__(
        self,
        sink: ParserSink,
        *,
        max_payload: int = MAX_PAYLOAD_SIZE,
        max_control_line: int = MAX_CONTROL_LINE_SIZE,
    ) -> None:
        super().__init__(max_control_line)
        self._on_connect = sink.process_connect
        self._on_pub = sink.process_pub
        self._on_sub = sink.process_sub
        self._on_unsub = sink.process_unsub
        self._on_ping = sink.process_ping
        self._on_pong = sink.process_pong
        self._plain_publisher: object = None
        self._plain_publish: PlainPublish | None = None
        self.max_payload = max_payload
        self.awaiting_connect = False
        self.headers_enabled = False
        self._held: list[bytes] | None = None
        # the connection's counters (its in_msgs/in_bytes): every PUB and HPUB is counted
        # here, natively, before it is handed over
        self.traffic = Outbound()

    def route_plain_pubs(self, publisher: object, publish: PlainPublish) -> None:
        """Offer every PUB without headers to `publish(publisher, subject, reply, payload)`
        before `process_pub`: it routes the common case (see `delivery.publish_plain`)
        without a call into the connection's Python code per message."""
        self._plain_publisher = publisher
        self._plain_publish = publish

    def hold(self) -> None:
        """Parse nothing after the current operation until `release()`."""
        self._held = []

    def release(self) -> bytes:
        """Resume: the bytes that arrived after the held operation, to be fed again."""
        held, self._held = self._held, None
        return b"".join(held or ())

    def feed(self, data: bytes) -> None:
        """Parse every complete operation in `data` (plus what earlier chunks left over)."""
        held = self._held  # a local: narrowing self._held here would outlive the sink calls
        if held is not None:
            held.append(data)
            return
        if self._pending:
            joined = self._resume(data)
            if joined is None:
                return
            data = joined

        pos = 0
        n = len(data)
        on_pub = self._on_pub
        plain_publish = self._plain_publish
        plain_publisher = self._plain_publisher
        traffic = self.traffic
        find = data.find
        max_control_line = self.max_control_line
        max_payload = self.max_payload
        fast = not self.awaiting_connect
        native = NATIVE
        while pos < n:
            nl = _newline(data, pos, n) if native else find(b"\n", pos)
            if nl < 0:
                self._keep(data, pos, 0)
                self._check_partial_control_line(n - pos)
                return
            end = nl - 1 if nl > pos and data[nl - 1] == 13 else nl  # drop a preceding \r
            if end - pos > max_control_line:
                raise ProtocolError(ERR_MAX_CONTROL_LINE, REASON_MAX_CONTROL_LINE)

            if (
                fast
                and end - pos >= 4
                and data[pos] == 80  # P
                and data[pos + 1] == 85  # U
                and data[pos + 2] == 66  # B
                and data[pos + 3] == 32
            ):
                # The hot path: PUB <subject> [reply] <size>
                if native:
                    s0, e0, s1, e1, size = _pub_args(data, pos + 4, end)
                    if size < 0:
                        raise ProtocolError(None)
                    subject = data[s0:e0]
                    reply = data[s1:e1] if s1 >= 0 else None
                else:
                    args = data[pos + 4 : end].split()
                    nargs = len(args)
                    if nargs == 2:
                        subject, size_text = args
                        reply = None
                    elif nargs == 3:
                        subject, reply, size_text = args
                    else:
                        raise ProtocolError(None)
                    if not size_text.isdigit() or len(size_text) > MAX_SIZE_DIGITS:
                        raise ProtocolError(None)
                    size = int(size_text)
                stop = nl + 1 + size
                if stop - nl - 1 > max_payload:
                    raise max_payload_error(stop - nl - 1, max_payload)
                if stop + 2 > n:
                    self._keep(data, pos, stop + 2 - pos)
                    return
                if data[stop] != 13 or data[stop + 1] != 10:
                    raise ProtocolError(ERR_UNKNOWN_OP, REASON_PARSE_ERROR)
                traffic.in_msgs += 1
                traffic.in_bytes += size
                payload = data[nl + 1 : stop]
                if plain_publish is None or not plain_publish(
                    plain_publisher, subject, reply, payload
                ):
                    on_pub(subject, reply, 0, payload)
                pos = stop + 2
                continue

            pos = self._parse_other(data, pos, nl, end, n)
            if pos < 0:
                return
            if self._held is not None:
                self._held.append(data[pos:])
                return
            # CONNECT may have changed what the fast path may assume.
            fast = not self.awaiting_connect
            max_payload = self.max_payload

    def _parse_other(self, data: bytes, pos: int, nl: int, end: int, n: int) -> int:
        """Every operation but a plain upper-case PUB. Returns the next position, -1 to stop.

        As in nats-server's state machine, PING, PONG and +OK ignore whatever follows the op
        name, CONNECT and INFO take the rest of the line as JSON, and PUB, HPUB, SUB and UNSUB
        must be followed by a blank and arguments.
        """
        line = data[pos:end]
        split_at = _first_blank(line)
        op = line[:split_at].upper()
        if self.awaiting_connect and not op.startswith(b"CONNECT"):
            raise ProtocolError(ERR_AUTH_VIOLATION, REASON_AUTH)

        if op == b"PUB" or op == b"HPUB":
            if split_at == len(line):
                raise ProtocolError(ERR_UNKNOWN_OP, REASON_PROTOCOL_VIOLATION)
            args = line[split_at:].split()
            is_hpub = op == b"HPUB"
            if is_hpub:
                if not self.headers_enabled:
                    raise ProtocolError(None)
                if len(args) == 3:
                    reply = None
                elif len(args) == 4:
                    reply = args[1]
                else:
                    raise ProtocolError(None)
                hdr_len = _parse_size(args[-2])
            else:
                if len(args) == 2:
                    reply = None
                elif len(args) == 3:
                    reply = args[1]
                else:
                    raise ProtocolError(None)
                hdr_len = 0
            size = _parse_size(args[-1])
            if hdr_len > size:
                raise ProtocolError(None)
            if size > self.max_payload:
                raise max_payload_error(size, self.max_payload)
            start = nl + 1
            stop = start + size
            if stop + 2 > n:
                self._keep(data, pos, stop + 2 - pos)
                return -1
            if data[stop : stop + 2] != b"\r\n":
                raise ProtocolError(ERR_UNKNOWN_OP, REASON_PARSE_ERROR)
            traffic = self.traffic
            traffic.in_msgs += 1
            traffic.in_bytes += size
            self._on_pub(args[0], reply, hdr_len, data[start:stop])
            return stop + 2

        if op.startswith(b"PING"):
            self._on_ping()
        elif op.startswith(b"PONG"):
            self._on_pong()
        elif op == b"SUB" or op == b"UNSUB":
            if split_at == len(line):
                raise ProtocolError(ERR_UNKNOWN_OP, REASON_PROTOCOL_VIOLATION)
            args = line[split_at:].split()
            if op == b"SUB":
                if len(args) == 2:
                    self._on_sub(args[0], None, args[1])
                elif len(args) == 3:
                    self._on_sub(args[0], args[1], args[2])
                else:
                    raise ProtocolError(None)
            elif len(args) == 1:
                self._on_unsub(args[0], 0)
            elif len(args) == 2:
                raw = args[1]
                self._on_unsub(
                    args[0], int(raw) if raw.isdigit() and len(raw) <= MAX_SIZE_DIGITS else -1
                )
            else:
                raise ProtocolError(None)
        elif op.startswith(b"CONNECT"):
            self._on_connect(line[7:].strip())
        elif op.startswith(b"INFO"):
            _check_json(line[4:])
        elif op.startswith(b"+OK"):
            pass
        elif op.startswith(b"-ERR"):
            raise ProtocolError(None, REASON_PARSE_ERROR)
        else:
            raise ProtocolError(ERR_UNKNOWN_OP, REASON_PROTOCOL_VIOLATION)
        return nl + 1
