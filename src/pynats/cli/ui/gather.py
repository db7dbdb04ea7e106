"""Requests with many answers, as natscli's doReqAsync gathers them.

One request goes out on a fresh inbox; answers are collected until `wait_for` of them arrived,
or (with `wait_for == 0`, the adaptive mode) until ADAPTIVE_QUIET_S passes after the last one,
or until the --timeout passed since the request. A `503` status among the answers means nobody
listens on the subject and raises NoResponders, which each command words in its own way.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nats.aio.client import Client

from pynats.cli.ui.messages import status_of
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import log

ADAPTIVE_QUIET_S = 0.3


class NoResponders(Exception):
    """The request was answered by the server's 503: no subscriber on its subject."""


async def gather_replies(
    nc: Client,
    subject: str,
    payload: bytes = b"{}",
    wait_for: int = 0,
    on_reply: Callable[[bytes], None] | None = None,
) -> list[bytes]:
    """Publish `payload` to `subject` and return the answers' bodies in arrival order."""
    settings = current_settings()
    if settings.trace:
        log(f">>> {subject}: {payload.decode(errors='replace')}")
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    answers: list[bytes] = []
    try:
        await nc.publish(subject, payload, reply=inbox)
        deadline = time.monotonic() + settings.timeout_s
        while wait_for <= 0 or len(answers) < wait_for:
            remaining = deadline - time.monotonic()
            if wait_for == 0 and answers:
                remaining = min(remaining, ADAPTIVE_QUIET_S)
            if remaining <= 0:
                break
            try:
                msg = await sub.next_msg(timeout=remaining)
            except Exception:  # nats-py raises its own TimeoutError subclass here
                break
            if status_of(msg) == "503":
                raise NoResponders(subject)
            if settings.trace:
                log(f"<<< ({len(msg.data)}B) {msg.data.decode(errors='replace')}")
            answers.append(msg.data)
            if on_reply is not None:
                on_reply(msg.data)
    finally:
        await sub.unsubscribe()
    if settings.trace:
        log(f"=== Received {len(answers)} responses")
    return answers
