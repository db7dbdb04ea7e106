"""The protocol between servers (routes, later leaf nodes): bytes in, operations out, no I/O.

Servers exchange interest (`RS+`/`RS-`, `LS+`/`LS-`) and messages (`RMSG`, `HMSG`, `LMSG`)
instead of a client's SUB/PUB. Most lines name the account first; a connection dedicated to
one account (a pinned route, a leaf connection) leaves the account out, and the parser is told
so with `account_in_line=False` (the sink knows which account the connection carries).

    RS+ [acc] <subject> [<queue> <weight>]          RS- [acc] <subject> [<queue>]
    LS+ <origin> [acc] <subject> [<queue> <weight>] LS- <origin> [acc] <subject> [<queue>]
    RMSG [acc] <subject> <reply-part> <size>        HMSG [acc] <subject> <reply-part> <hdr> <size>
    LMSG <origin> [acc] <subject> <reply-part> <hdr> <size>

`<reply-part>` is empty, `<reply>`, `+ <reply> <queue>...` or `| <queue>...`: the queue groups
named are the ones this copy is for. On a leaf connection (`leaf=True`) LS+/LS- carry no
origin and LMSG is the plain message (`LMSG <subject> <reply-part> <size>`).

As in nats-server, a line that cannot be parsed closes the connection after
`-ERR 'Unknown Protocol Operation'` (`ProtocolError`); control lines may be 16 times the client
limit, and there is no payload limit between servers.
"""

from __future__ import annotations

import json
from typing import Final, Protocol

from .protocol import (
    ERR_MAX_CONTROL_LINE,
    ERR_UNKNOWN_OP,
    MAX_CONTROL_LINE_SIZE,
    REASON_MAX_CONTROL_LINE,
    REASON_PARSE_ERROR,
    REASON_PROTOCOL_VIOLATION,
    ChunkedInput,
    ProtocolError,
)

MAX_LINK_CONTROL_LINE_SIZE: Final = 16 * MAX_CONTROL_LINE_SIZE
MAX_SIZE_DIGITS: Final = 10


class LinkSink(Protocol):
    """What the parser calls; implemented by route (and leaf) connections and test recorders.

    `origin` is the leaf-origin cluster of LS+/LS-/LMSG (None otherwise); `account` is None
    when the line carried none (a connection bound to one account).
    """

    def process_info(self, arg: bytes) -> None: ...
    def process_connect(self, arg: bytes) -> None: ...
    def process_ping(self) -> None: ...
    def process_pong(self) -> None: ...
    def process_err(self, text: bytes) -> None: ...
    def process_remote_sub(
        self,
        origin: bytes | None,
        account: bytes | None,
        subject: bytes,
        queue: bytes | None,
        weight: int,
    ) -> None: ...
    def process_remote_unsub(
        self, origin: bytes | None, account: bytes | None, subject: bytes, queue: bytes | None
    ) -> None: ...
    def process_rmsg(
        self, account: bytes | None, subject: bytes, reply: bytes | None, msg: bytes
    ) -> None:
        """The common RMSG: no headers, no queue groups (the parser's fast path)."""

    def process_routed_msg(
        self,
        origin: bytes | None,
        account: bytes | None,
        subject: bytes,
        reply: bytes | None,
        queues: list[bytes] | None,
        hdr_len: int,
        msg: bytes,
    ) -> None:
        """`msg` is the header block (`hdr_len` bytes, 0 without headers) and the body."""


def _size(raw: bytes) -> int:
    if not raw.isdigit() or len(raw) > MAX_SIZE_DIGITS:
        raise ProtocolError(ERR_UNKNOWN_OP, REASON_PARSE_ERROR)
    return int(raw)


def _reply_and_queues(rest: list[bytes]) -> tuple[bytes | None, list[bytes] | None]:
    """The part between subject and sizes: nothing, a reply, or `+ reply q..` / `| q..`."""
    if not rest:
        return None, None
    if len(rest) == 1:
        return rest[0], None
    marker = rest[0]
    if marker == b"+" and len(rest) >= 3:
        return rest[1], rest[2:]
    if marker == b"|":
        return None, rest[1:]
    raise ProtocolError(ERR_UNKNOWN_OP, REASON_PARSE_ERROR)


class LinkParser(ChunkedInput):
    """Incremental parser of one server-to-server connection.

    `awaiting_connect`: the accepting side requires CONNECT before anything else.
    `hold()` (called by the sink during an operation: a leaf's CONNECT that an auth callout
    decides) stops the parsing after it until `release()` hands back what came meanwhile.
    """

    __slots__ = ("_held", "account_in_line", "awaiting_connect", "leaf", "sink")

    def __init__(
        self,
        sink: LinkSink,
        *,
        account_in_line: bool = True,
        leaf: bool = False,
        max_control_line: int = MAX_LINK_CONTROL_LINE_SIZE,
    ) -> None:
        super().__init__(max_control_line)
        self.sink = sink
        self.account_in_line = account_in_line
        self.leaf = leaf
        self.awaiting_connect = False
        self._held: list[bytes] | None = None

    def hold(self) -> None:
        """Parse nothing after the current operation until `release()`."""
        self._held = []

    def release(self) -> bytes:
        """Resume: the bytes that arrived after the held operation, to be fed again."""
        held, self._held = self._held, None
        return b"".join(held or ())

    def feed(self, data: bytes) -> None:
        """Parse every complete operation in `data` (plus what earlier chunks left over)."""
        held = self._held
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
        find = data.find
        startswith = data.startswith
        on_rmsg = self.sink.process_rmsg
        # The fast path reads `RMSG <acc> <subject> [reply] <size>` (the account left out on
        # a connection bound to one account); everything else goes through _operation.
        plain_args = 3 if self.account_in_line else 2
        fast = not self.awaiting_connect and not self.leaf
        while pos < n:
            nl = find(b"\n", pos)
            if nl < 0:
                self._keep(data, pos, 0)
                self._check_partial_control_line(n - pos)
                return
            end = nl - 1 if nl > pos and data[nl - 1] == 13 else nl
            if end - pos > self.max_control_line:
                raise ProtocolError(ERR_MAX_CONTROL_LINE, REASON_MAX_CONTROL_LINE)
            if fast and startswith(b"RMSG ", pos):
                args = data[pos + 5 : end].split()
                nargs = len(args) - plain_args
                if nargs == 0 or (nargs == 1 and len(args[-2]) > 1):
                    size_text = args[-1]
                    if not size_text.isdigit() or len(size_text) > MAX_SIZE_DIGITS:
                        raise ProtocolError(ERR_UNKNOWN_OP, REASON_PARSE_ERROR)
                    stop = nl + 1 + int(size_text)
                    if stop + 2 > n:
                        self._keep(data, pos, stop + 2 - pos)
                        return
                    if data[stop : stop + 2] != b"\r\n":
                        raise ProtocolError(ERR_UNKNOWN_OP, REASON_PARSE_ERROR)
                    if plain_args == 3:
                        on_rmsg(args[0], args[1], args[2] if nargs else None, data[nl + 1 : stop])
                    else:
                        on_rmsg(None, args[0], args[1] if nargs else None, data[nl + 1 : stop])
                    pos = stop + 2
                    continue
            pos = self._operation(data, pos, nl, end, n)
            if pos < 0:
                return
            if self._held is not None:
                self._held.append(data[pos:])
                return
            fast = not self.awaiting_connect and not self.leaf

    def _operation(self, data: bytes, pos: int, nl: int, end: int, n: int) -> int:
        """One operation starting at `pos`; the next position, or -1 when it is incomplete."""
        args = data[pos:end].split()
        if not args:
            raise ProtocolError(ERR_UNKNOWN_OP, REASON_PROTOCOL_VIOLATION)
        op = args[0].upper()
        if self.awaiting_connect and op != b"CONNECT":
            raise ProtocolError(ERR_UNKNOWN_OP, REASON_PROTOCOL_VIOLATION)
        sink = self.sink
        if op == b"RMSG" or op == b"HMSG" or op == b"LMSG":
            return self._message(op, args, data, pos, nl, n)
        if op == b"RS+" or op == b"LS+":
            origin, account, rest = self._prefix(op == b"LS+", args, 1)
            if len(rest) == 1:
                sink.process_remote_sub(origin, account, rest[0], None, 0)
            elif len(rest) == 3:
                weight = _size(rest[2])
                sink.process_remote_sub(origin, account, rest[0], rest[1], weight)
            else:
                raise ProtocolError(ERR_UNKNOWN_OP, REASON_PARSE_ERROR)
        elif op == b"RS-" or op == b"LS-":
            origin, account, rest = self._prefix(op == b"LS-", args, 1)
            if len(rest) == 1:
                sink.process_remote_unsub(origin, account, rest[0], None)
            elif len(rest) == 2:
                sink.process_remote_unsub(origin, account, rest[0], rest[1])
            else:
                raise ProtocolError(ERR_UNKNOWN_OP, REASON_PARSE_ERROR)
        elif op == b"PING":
            sink.process_ping()
        elif op == b"PONG":
            sink.process_pong()
        elif op == b"INFO":
            sink.process_info(_json_arg(data[pos:end], 4))
        elif op == b"CONNECT":
            sink.process_connect(_json_arg(data[pos:end], 7))
        elif op == b"-ERR":
            sink.process_err(data[pos + 4 : end].strip())
        elif op in (b"+OK", b"A+", b"A-"):
            pass  # A+/A- only mean something between gateways
        else:
            raise ProtocolError(ERR_UNKNOWN_OP, REASON_PROTOCOL_VIOLATION)
        return nl + 1

    def _prefix(
        self, has_origin: bool, args: list[bytes], start: int
    ) -> tuple[bytes | None, bytes | None, list[bytes]]:
        """Split off the origin (LS+/LS-/LMSG between routes) and the account, if present."""
        i = start
        origin = None
        if has_origin and not self.leaf:
            if len(args) <= i:
                raise ProtocolError(ERR_UNKNOWN_OP, REASON_PARSE_ERROR)
            origin = args[i]
            i += 1
        account = None
        if self.account_in_line:
            if len(args) <= i:
                raise ProtocolError(ERR_UNKNOWN_OP, REASON_PARSE_ERROR)
            account = args[i]
            i += 1
        return origin, account, args[i:]

    def _message(self, op: bytes, args: list[bytes], data: bytes, pos: int, nl: int, n: int) -> int:
        is_lmsg = op == b"LMSG"
        origin, account, rest = self._prefix(is_lmsg, args, 1)
        # Between routes LMSG always carries a header size; on a leaf it is a plain message.
        with_header = op == b"HMSG" or (is_lmsg and not self.leaf)
        sizes = 2 if with_header else 1
        if len(rest) < 1 + sizes:
            raise ProtocolError(ERR_UNKNOWN_OP, REASON_PARSE_ERROR)
        size = _size(rest[-1])
        hdr_len = _size(rest[-2]) if with_header else 0
        if hdr_len > size:
            raise ProtocolError(ERR_UNKNOWN_OP, REASON_PARSE_ERROR)
        reply, queues = _reply_and_queues(rest[1:-sizes])
        start = nl + 1
        stop = start + size
        if stop + 2 > n:
            self._keep(data, pos, stop + 2 - pos)
            return -1
        if data[stop : stop + 2] != b"\r\n":
            raise ProtocolError(ERR_UNKNOWN_OP, REASON_PARSE_ERROR)
        self.sink.process_routed_msg(
            origin, account, rest[0], reply, queues, hdr_len, data[start:stop]
        )
        return stop + 2


def _json_arg(line: bytes, op_len: int) -> bytes:
    """The JSON argument of INFO/CONNECT; a peer that sends anything else is closed."""
    arg = line[op_len:].strip()
    try:
        json.loads(arg)
    except ValueError:
        raise ProtocolError(None, REASON_PARSE_ERROR) from None
    return arg
