"""Run raw protocol scenarios and normalise the replies, to compare two servers byte for byte."""

from __future__ import annotations

import json
import re

from tests.support.raw import RawClient


def normalize(data: bytes) -> bytes:
    def info(m: re.Match[bytes]) -> bytes:
        obj = json.loads(m.group(1))
        flags = [k for k in ("connect_info", "ldm") if obj.get(k)]
        return b"INFO<" + ",".join(flags).encode() + b">"

    return re.sub(rb"INFO (\{.*?\}) ", info, data)


def run_scenario(port: int, steps: list[bytes]) -> bytes:
    with RawClient(port) as raw:
        for step in steps:
            raw.send(step)
        try:
            raw.send(b"PING\r\n")
        except OSError:
            return normalize(raw.read_all_until_closed()) + b"<closed>"
        try:
            out = raw.read_until(b"PONG\r\n", timeout=3)
        except EOFError:
            return normalize(raw.buf + b"") + b"<closed>"
        return normalize(out + read_until_quiet(raw))


def read_until_quiet(raw: RawClient, quiet: float = 0.15) -> bytes:
    """Whatever else arrives until the connection has been silent for `quiet` seconds."""
    out, raw.buf = raw.buf, b""
    raw.sock.settimeout(quiet)
    while True:
        try:
            chunk = raw.sock.recv(65536)
        except OSError:
            return out
        if not chunk:
            return out + b"<closed>"
        out += chunk
