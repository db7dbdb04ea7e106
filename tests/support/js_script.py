"""Run one scripted session of requests against the Go nats-server and against pynats and
compare the answers, ignoring what legitimately differs (times, ids, server names, versions).

A script is a list of steps `(subject, body, headers)`; a body that is not bytes is sent as
JSON. `pause` steps (subject None, body a number of seconds) let something happen in between
(a source catching up)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import nats.errors

from tests.conftest import connect
from tests.support.servers import start_server

# Values that legitimately differ between two servers (times, ids, names, versions).
IGNORED_KEYS = frozenset(
    {
        "created",
        "ts",
        "first_ts",
        "last_ts",
        "time",
        "timestamp",
        "id",
        "leader",
        "_nats.ver",
        "_nats.level",
        "Nats-Time-Stamp",
        "level",
    }
)

Step = tuple[str | None, Any, dict[str, str] | None]


# The last token of Nats-Stream-Source names the origin stream by a random id.
_ORIGIN_ID = re.compile(rb"(Nats-Stream-Source: [^\r]*) \S+\r\n")


def normalise(value: Any, ignored: Iterable[str] = IGNORED_KEYS) -> Any:
    ignored = frozenset(ignored)
    if isinstance(value, dict):
        return {
            k: (_headers(v) if k == "hdrs" else normalise(v, ignored))
            for k, v in value.items()
            if k not in ignored and v is not None
        }
    if isinstance(value, list):
        return [normalise(v, ignored) for v in value]
    return value


def _headers(encoded: str) -> bytes:
    """A stored message's header block (`hdrs`), decoded, without the origin ids."""
    return _ORIGIN_ID.sub(rb"\1 *\r\n", base64.b64decode(encoded))


async def run_script(
    steps: list[Step], oracle: bool, store: str, ignored: Iterable[str] = IGNORED_KEYS
) -> list[Any]:
    """Every answer of one server to `steps`, normalised."""
    srv = start_server(["-js", "-sd", store], oracle=oracle)
    answers: list[Any] = []
    try:
        nc = await connect(srv.url)
        for subject, body, headers in steps:
            if subject is None:
                await asyncio.sleep(float(body))
                continue
            payload = (
                body
                if isinstance(body, bytes)
                else (json.dumps(body).encode() if body is not None else b"")
            )
            try:
                msg = await nc.request(subject, payload, timeout=1.5, headers=headers)
            except nats.errors.NoRespondersError:
                answers.append((subject, "no responders"))
                continue
            except nats.errors.TimeoutError:
                answers.append((subject, "timeout"))
                continue
            entry: dict[str, Any] = {"headers": normalise(dict(msg.headers or {}), ignored)}
            try:
                entry["json"] = normalise(json.loads(msg.data), ignored)
            except ValueError:
                entry["data"] = msg.data
            answers.append((subject, entry))
        await nc.close()
    finally:
        srv.stop()
    return answers


async def differences(
    steps: list[Step] | Callable[[], list[Step]], tmp: str, ignored: Iterable[str] = IGNORED_KEYS
) -> str:
    """The steps whose answers differ, Go's next to ours (empty: none). A callable makes the
    steps afresh for each server (a script with times in it)."""
    make = steps if callable(steps) else (lambda: steps)
    go = await run_script(make(), True, f"{tmp}/go", ignored)
    ours = await run_script(make(), False, f"{tmp}/ours", ignored)
    assert len(go) == len(ours)
    return "\n".join(
        f"step {i} {g[0]}:\n  go:   {g[1]}\n  ours: {o[1]}"
        for i, (g, o) in enumerate(zip(go, ours, strict=True))
        if g != o
    )
