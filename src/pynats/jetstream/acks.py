"""Ack subjects and ack payloads: the wire side of acknowledging a delivered message.

Every delivered message carries the reply subject

    $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<timestamp>.<pending>

(the v1 form, 9 tokens, which we send), and we also accept the v2 form with a domain and
an account hash after `$JS.ACK` (11 tokens or more). Whatever the client publishes to it
says what happened to the message:

    empty, +ACK, +OK      ack
    -NAK [delay]          redeliver (after `{"delay": ns}` or a Go duration)
    +WPI                  still working on it: restart the ack timer
    +NXT [request]        ack, then treat the rest as a pull request
    +TERM [reason]        never redeliver
"""

from __future__ import annotations

import hashlib
import json
from typing import Final

from pynats.gotime import parse_duration
from pynats.server.subjects import ack_numbers_at

ACK: Final = 1
NAK: Final = 2
PROGRESS: Final = 3
NEXT: Final = 4
TERM: Final = 5

# (deliveries, stream sequence, consumer sequence) named by an ack subject: a plain tuple,
# which compiled code builds without a call into Python (a NamedTuple's constructor is one)
AckInfo = tuple[int, int, int]


def _probe() -> None:
    """Only looked at: a compiled module's functions are not Python functions."""


# Compiled by mypyc (the hot modules, pynats/_compiled.py), a loop over `subject[i]` runs as
# C while `split` and `int` stay generic calls: the ack subject is scanned by hand there, and
# with `split` as Python source. tests/unit/test_compiled.py holds both to the same results.
NATIVE: Final = type(_probe).__name__ != "function"
MAX_SEQ_DIGITS: Final = 18  # longer numbers go through int(), as the source does


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def ack_prefix(stream: str, consumer: str) -> bytes:
    return b"$JS.ACK.%b.%b." % (stream.encode(), consumer.encode())


def v2_ack_prefix(domain: str, account: str, stream: str, consumer: str) -> bytes:
    """What delivered messages' replies start with under `feature_flags { js_ack_fc_v2 }`."""
    return f"$JS.ACK.{domain or '_'}.{account_hash(account)}.{stream}.{consumer}.".encode()


def flow_control_prefix(v2: bool, domain: str, account: str, stream: str, consumer: str) -> str:
    """A push consumer's flow control subjects are this, a dot and a random token: v1
    `$JS.FC.<stream>.<consumer>`, v2 (`js_ack_fc_v2`) with the domain (or `_`) and the
    account hash after `$JS.FC`, as the ack subjects have them."""
    if v2:
        return f"$JS.FC.{domain or '_'}.{account_hash(account)}.{stream}.{consumer}"
    return f"$JS.FC.{stream}.{consumer}"


def account_hash(account: str) -> str:
    """The 8-character account token of v2 subjects: SHA-256 of the name, base62 digits."""
    digest = hashlib.sha256(account.encode()).digest()
    return "".join(_B62[b % 62] for b in digest[:8])


def v2_subscription(domain: str, account: str, stream: str, consumer: str) -> str:
    """What a consumer listens on for v2 acks: all literal up to the sequences, so that
    every (v1) ack routed in the account does not walk an extra wildcard branch."""
    return f"$JS.ACK.{domain or '_'}.{account_hash(account)}.{stream}.{consumer}.>"


def reply_subject(
    prefix: bytes, deliveries: int, stream_seq: int, consumer_seq: int, ts_ns: int, pending: int
) -> bytes:
    return b"%b%d.%d.%d.%d.%d" % (prefix, deliveries, stream_seq, consumer_seq, ts_ns, pending)


def parse_subject(subject: bytes) -> AckInfo | None:
    """The sequences named by an ack subject (v1 or v2), or None when it is not one."""
    if NATIVE:
        found = _scan_subject(subject)
        if found[0] >= 0:
            return found
        if found[0] == -1:
            return None
    tokens = subject.split(b".")
    n = len(tokens)
    if n == 9:
        i = 4
    elif n >= 11:
        i = 6
    else:
        return None
    try:
        return int(tokens[i]), int(tokens[i + 1]), int(tokens[i + 2])
    except ValueError:
        return None


def _scan_subject(subject: bytes) -> tuple[int, int, int]:
    """`parse_subject` by a pass over the bytes (`subjects.ack_numbers_at`) and one over the
    numbers: the three numbers when the subject has 9 or 11+ tokens and they are plain
    digits; (-1, 0, 0) when it has another token count; (-2, 0, 0) when `int()` must decide
    (signs, blanks, underscores, long numbers)."""
    first, pos = ack_numbers_at(subject)
    if not first:
        return -1, 0, 0
    n = len(subject)
    v0 = v1 = v2 = 0
    for k in range(3):
        start = pos
        value = 0
        while pos < n and subject[pos] != 46:
            c = subject[pos]
            if c < 48 or c > 57:
                return -2, 0, 0
            value = value * 10 + (c - 48)
            pos += 1
        if pos == start or pos - start > MAX_SEQ_DIGITS:
            return -2, 0, 0
        if k == 0:
            v0 = value
        elif k == 1:
            v1 = value
        else:
            v2 = value
        pos += 1
    return v0, v1, v2


def subject_names(subject: bytes) -> tuple[bytes, bytes] | None:
    """(stream, consumer) named by an ack subject of either form."""
    tokens = subject.split(b".")
    n = len(tokens)
    if n == 9:
        return tokens[2], tokens[3]
    if n >= 11:
        return tokens[4], tokens[5]
    return None


def parse_payload(payload: bytes) -> tuple[int, bytes]:
    """(kind, the rest after the verb). Unknown payloads are (0, b"")."""
    if not payload:
        return ACK, b""
    head = payload[:4]
    if head == b"+ACK" or payload == b"+OK":
        return ACK, b""
    if head == b"-NAK":
        return NAK, payload[4:].strip()
    if head == b"+WPI":
        return PROGRESS, b""
    if head == b"+NXT":
        return NEXT, payload[4:].strip()
    if payload[:5] == b"+TERM":
        return TERM, payload[5:].strip()
    if not payload.strip():
        return ACK, b""
    return 0, b""


def nak_delay(rest: bytes) -> int:
    """The delay of `-NAK {"delay": ns}` or `-NAK 5s` in ns; 0 when absent or invalid
    (an invalid delay is a plain NAK, as nats-server treats it)."""
    if not rest:
        return 0
    if rest[:1] == b"{":
        try:
            value = json.loads(rest).get("delay", 0)
        except (ValueError, AttributeError):
            return 0
        return value if isinstance(value, int) and not isinstance(value, bool) else 0
    try:
        return max(parse_duration(rest.decode()), 0)
    except (ValueError, UnicodeDecodeError):
        return 0
