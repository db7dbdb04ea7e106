"""NATS header blocks: parse, look up, build and edit `NATS/1.0\\r\\n...\\r\\n\\r\\n`.

Blocks stay `bytes`. Names are matched case-sensitively, as nats-server matches the JetStream
headers it acts on (`Nats-Msg-Id`, `Nats-Expected-*`, `Nats-Rollup`, `Nats-TTL`, ...), and
the values with a format of their own (`Nats-TTL`, `Nats-Required-Api-Level`) are read here.
"""

from __future__ import annotations

from pynats.gotime import NS_PER_S, parse_duration

from .errors import api_error
from .store import TTL_NEVER

HDR_LINE = b"NATS/1.0"
CRLF = b"\r\n"
EMPTY_BLOCK = b"NATS/1.0\r\n\r\n"

# Headers the stream acts on at publish time.
MSG_ID = b"Nats-Msg-Id"
EXPECTED_STREAM = b"Nats-Expected-Stream"
EXPECTED_LAST_SEQ = b"Nats-Expected-Last-Sequence"
EXPECTED_LAST_SUBJ_SEQ = b"Nats-Expected-Last-Subject-Sequence"
EXPECTED_LAST_SUBJ_SEQ_SUBJ = b"Nats-Expected-Last-Subject-Sequence-Subject"
EXPECTED_LAST_MSG_ID = b"Nats-Expected-Last-Msg-Id"
ROLLUP = b"Nats-Rollup"
TTL = b"Nats-TTL"
MARKER_REASON = b"Nats-Marker-Reason"
STREAM_SOURCE = b"Nats-Stream-Source"
REQUEST_INFO = b"Nats-Request-Info"
REQUIRED_API_LEVEL = b"Nats-Required-Api-Level"
INCR = b"Nats-Incr"
BATCH_ID = b"Nats-Batch-Id"
BATCH_SEQ = b"Nats-Batch-Sequence"
BATCH_COMMIT = b"Nats-Batch-Commit"
COUNTER_SOURCES = b"Nats-Counter-Sources"
SOURCE_LOOKUP = b"Nats-Internal-Source-Lookup"  # a mirror/source finding its origin's account

# Headers the server adds (direct get, republish).
STREAM = "Nats-Stream"
SUBJECT = "Nats-Subject"
SEQUENCE = "Nats-Sequence"
TIME_STAMP = "Nats-Time-Stamp"
LAST_SEQUENCE = "Nats-Last-Sequence"
NUM_PENDING = "Nats-Num-Pending"
UPTO_SEQUENCE = "Nats-UpTo-Sequence"
MSG_SIZE = "Nats-Msg-Size"

ROLLUP_SUBJECT = b"sub"
ROLLUP_ALL = b"all"


def parse(block: bytes) -> dict[bytes, bytes]:
    """The headers of a block as a dict (the first value wins for repeated names)."""
    out: dict[bytes, bytes] = {}
    if not block:
        return out
    for line in block.split(CRLF)[1:]:
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.strip()
        if name not in out:
            out[name] = value.strip()
    return out


def parse_all(block: bytes) -> list[tuple[bytes, bytes]]:
    """Every header line in order, repeated names kept."""
    out: list[tuple[bytes, bytes]] = []
    for line in block.split(CRLF)[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            out.append((name.strip(), value.strip()))
    return out


def status_of(block: bytes) -> tuple[str, str]:
    """(status code, description) from the first line, e.g. ("404", "Message Not Found")."""
    first = block.split(CRLF, 1)[0]
    rest = first[len(HDR_LINE) :].strip()
    if not rest:
        return "", ""
    code, _, text = rest.partition(b" ")
    return code.decode(), text.decode().strip()


def get(block: bytes, name: bytes) -> bytes | None:
    """One header's value without parsing the whole block (None when absent)."""
    key = CRLF + name + b":"
    i = block.find(key)
    if i < 0:
        return None
    start = i + len(key)
    end = block.find(CRLF, start)
    return block[start : end if end >= 0 else len(block)].strip()


def build(headers: list[tuple[str, str]] | None = None, status: str = "", text: str = "") -> bytes:
    """A header block with an optional status line (`NATS/1.0 404 Message Not Found`)."""
    first = "NATS/1.0"
    if status:
        first += " " + status
        if text:
            first += " " + text
    lines = [first]
    for name, value in headers or ():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def append(block: bytes | None, headers: list[tuple[str, str]]) -> bytes:
    """`block` (or a fresh one) with `headers` added at its end."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers).encode()
    if not block:
        return HDR_LINE + CRLF + extra + CRLF
    if block.endswith(b"\r\n\r\n"):
        return block[:-2] + extra + CRLF
    return block + CRLF + extra + CRLF


def remove(block: bytes, names: tuple[bytes, ...]) -> bytes:
    """`block` without the named headers; b"" when nothing but the status line remains."""
    lines = block.split(CRLF)
    kept = [lines[0]]
    for line in lines[1:]:
        if not line:
            continue
        name = line.partition(b":")[0].strip()
        if name not in names:
            kept.append(line)
    if len(kept) == 1:
        return b""
    return CRLF.join(kept) + CRLF + CRLF


def level_unmet(block: bytes, level: int) -> bool:
    """`Nats-Required-Api-Level` asks for more than `level` (or is not a number)."""
    value = get(block, REQUIRED_API_LEVEL)
    return value is not None and (not value.isdigit() or int(value) > level)


def parse_ttl(value: bytes) -> int:
    """`Nats-TTL`: seconds, a Go duration, or `never`. Raises ApiError 10165."""
    text = value.decode(errors="replace").strip()
    if text.lower() == "never":
        return TTL_NEVER
    try:
        ttl = int(text) * NS_PER_S if text.isdigit() else parse_duration(text)
    except ValueError:
        raise api_error("JSMessageTTLInvalidErr") from None
    if ttl < NS_PER_S:
        raise api_error("JSMessageTTLInvalidErr")
    return ttl


def replace(block: bytes, name: bytes, value: bytes) -> bytes:
    """`block` with the first `name` header's value set to `value`, in its place."""
    lines = block.split(CRLF)
    for i, line in enumerate(lines[1:], 1):
        if line.partition(b":")[0].strip() == name:
            lines[i] = name + b": " + value
            return CRLF.join(lines)
    return block


def strip_status(block: bytes) -> bytes:
    """Drop a status code from the first line: a stored message never carries one."""
    end = block.find(CRLF)
    if end <= len(HDR_LINE):
        return block
    return HDR_LINE + block[end:]
