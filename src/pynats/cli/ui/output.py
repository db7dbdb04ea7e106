"""Where the `nats` tool writes: results to stdout, chatter to stderr.

natscli sends results (tables, info screens, message bodies, JSON) to stdout and its status
lines through Go's `log` package to stderr, each prefixed with the local time `HH:MM:SS `.
Every helper here flushes after writing: `nats sub x --raw | jq` must see each message as it
arrives, and Python block-buffers a piped stdout unless PYTHONUNBUFFERED happens to be set.

Bytes are written as bytes: a message body is shown exactly as received, never re-encoded.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

_GO_HTML_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def out(text: str | bytes = "", end: str = "\n") -> None:
    """Write a result to stdout (text or raw bytes) followed by `end`, and flush."""
    data = text if isinstance(text, bytes) else text.encode()
    stream = sys.stdout.buffer
    stream.write(data + end.encode())
    stream.flush()


def out_raw(data: bytes) -> None:
    """Write bytes to stdout exactly as given, and flush."""
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def err(text: str = "") -> None:
    """Write a line to stderr without the time prefix (usage errors, progress)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def log(message: str = "") -> None:
    """A natscli status line: `HH:MM:SS message` on stderr."""
    sys.stderr.write(f"{time.strftime('%H:%M:%S')} {message}\n")
    sys.stderr.flush()


def go_json(data: Any, indent: int | None = None) -> str:
    """JSON the way Go's encoding/json writes it: UTF-8 kept, HTML characters escaped.

    With `indent`, the layout of `json.MarshalIndent(v, "", "  ")`; without, compact.
    """
    if indent is None:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(data, ensure_ascii=False, indent=indent)
    for char, escaped in _GO_HTML_ESCAPES.items():
        text = text.replace(char, escaped)
    return text


def print_json(data: Any) -> None:
    """`--json` output: the data indented by two spaces, as natscli's printJSON does."""
    out(go_json(data, indent=2))


def is_tty(stream: Any) -> bool:
    """True when `stream` is an interactive terminal (closed or odd streams count as no)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def paint(text: str, color: str, stream: Any = None) -> str:
    """`text` in `color` (a rich colour name) when `stream` (default stdout) is a terminal."""
    if not is_tty(stream if stream is not None else sys.stdout):
        return text
    from rich.color import ColorSystem
    from rich.style import Style

    return Style(color=color).render(text, color_system=ColorSystem.STANDARD)
