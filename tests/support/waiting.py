"""Wait on a condition with a timeout, instead of sleeping for luck."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_until(
    predicate: Callable[[], Any | Awaitable[Any]],
    timeout: float = 5.0,
    what: str = "",
    step: float = 0.005,
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll `predicate` (plain or async) until it returns something truthy, and return that.

    An async predicate is awaited on every poll: its coroutine object is never mistaken for
    a truthy answer. TimeoutError names `what` when the condition is not met in time, followed
    by what `explain` returns then (servers' logs, say: what a failure in CI needs to be read).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            details = f"\n{explain()}" if explain is not None else ""
            raise TimeoutError(f"timed out waiting for {what or 'condition'}{details}")
        await asyncio.sleep(step)


def wait_until_sync(
    predicate: Callable[[], Any],
    timeout: float = 5.0,
    what: str = "",
    step: float = 0.01,
) -> Any:
    """`wait_until` for tests without an event loop: poll `predicate` until it returns
    something truthy, and return that; TimeoutError names `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what or 'condition'}")
        time.sleep(step)
