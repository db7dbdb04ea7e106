"""How natscli shows a received message, shared by sub, request, reply and the JetStream nouns.

Body rendering (natscli's outPutMSGBody):
* compact (`--raw`): the body, plus a newline when it has none; an empty body prints `nil body`;
* pretty: the compact form, then a blank line, and one more blank line when the body did not
  end with a newline.

Also here: the JetStream metadata carried by a `$JS.ACK...` reply subject, and the JSON shape
natscli's `sub --dump` writes (Go's encoding of a `nats.Msg`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynats.cli.ui.output import go_json

if TYPE_CHECKING:
    from nats.aio.msg import Msg

NIL_BODY = b"nil body"


def compact_body(data: bytes) -> bytes:
    """The `--raw` rendering of a body."""
    if not data:
        return NIL_BODY + b"\n"
    return data if data.endswith(b"\n") else data + b"\n"


def pretty_body(data: bytes) -> bytes:
    """The default rendering of a body: compact form plus one or two blank lines."""
    text = compact_body(data)
    return text + (b"\n" if data.endswith(b"\n") else b"\n\n")


def header_lines(headers: dict[str, str] | None) -> list[str]:
    """`Key: value` lines for a message's headers (status pseudo-headers excluded)."""
    if not headers:
        return []
    hidden = ("Status", "Description") if "Status" in headers else ()
    return [f"{key}: {value}" for key, value in headers.items() if key not in hidden]


def status_of(msg: Msg) -> str:
    """The NATS status code of a control message (`100`, `404`, `503`), '' for a normal one."""
    headers = getattr(msg, "headers", None) or {}
    return str(headers.get("Status", "")) if not msg.data else ""


@dataclass(frozen=True)
class JetStreamMeta:
    """What a `$JS.ACK.…` reply subject says about a message delivered by a consumer."""

    domain: str
    stream: str
    consumer: str
    delivered: int
    stream_seq: int
    consumer_seq: int
    timestamp_ns: int
    pending: int


def parse_js_ack(reply: str | None) -> JetStreamMeta | None:
    """Decode the v1 (9 tokens) or v2 (12+ tokens) `$JS.ACK` subject; None if it is not one."""
    if not reply or not reply.startswith("$JS.ACK."):
        return None
    tokens = reply.split(".")
    try:
        if len(tokens) == 9:
            _, _, stream, consumer, delivered, sseq, cseq, ts, pending = tokens
            domain = ""
        elif len(tokens) >= 12:
            domain = "" if tokens[2] == "_" else tokens[2]
            stream, consumer, delivered, sseq, cseq, ts, pending = tokens[4:11]
        else:
            return None
        return JetStreamMeta(
            domain, stream, consumer, int(delivered), int(sseq), int(cseq), int(ts), int(pending)
        )
    except ValueError:
        return None


def dump_json(subject: str, reply: str | None, headers: dict[str, str] | None, data: bytes) -> str:
    """A message as natscli's `sub --dump` writes it: Go's JSON encoding of nats.Msg."""
    return go_json(
        {
            "Subject": subject,
            "Reply": reply or "",
            "Header": {k: [v] for k, v in headers.items()} if headers else None,
            "Data": base64.b64encode(data).decode(),
            "Sub": None,
        }
    )


def go_quote(text: str) -> str:
    """Go's `%q` for a string: double quotes, backslash escapes for specials and controls."""
    escapes = {
        '"': '\\"',
        "\\": "\\\\",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\a": "\\a",
        "\b": "\\b",
        "\f": "\\f",
        "\v": "\\v",
    }
    parts = []
    for char in text:
        if char in escapes:
            parts.append(escapes[char])
        elif char.isprintable():
            parts.append(char)
        elif ord(char) < 0x100:
            parts.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            parts.append(f"\\u{ord(char):04x}")
        else:
            parts.append(f"\\U{ord(char):08x}")
    return '"' + "".join(parts) + '"'


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: `*` is one token, a final `>` is one or more tokens."""
    pattern_tokens = pattern.split(".")
    subject_tokens = subject.split(".")
    for index, token in enumerate(pattern_tokens):
        if token == ">":
            return len(subject_tokens) > index
        if index >= len(subject_tokens):
            return False
        if token != "*" and token != subject_tokens[index]:
            return False
    return len(subject_tokens) == len(pattern_tokens)


def translate_body(data: bytes, command: str, subject: str, stream: str = "") -> bytes:
    """Pipe a body through `--translate CMD`; `{{Subject}}`/`{{Stream}}` in CMD are expanded.

    The command is split shell-style (no shell runs) and its combined output is the new body.
    """
    import shlex
    import subprocess

    expanded = command.replace("{{Subject}}", subject).replace("{{ Subject }}", subject)
    expanded = expanded.replace("{{Stream}}", stream).replace("{{ Stream }}", stream)
    try:
        result = subprocess.run(
            shlex.split(expanded),
            input=data,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
    except (OSError, ValueError) as exc:
        raise TranslateError(str(exc)) from exc
    if result.returncode != 0:
        raise TranslateError(
            f"{command} exited with status {result.returncode}: {result.stdout.decode(errors='replace').strip()}"
        )
    return result.stdout


class TranslateError(Exception):
    """The --translate command could not run or failed."""
