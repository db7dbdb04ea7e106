"""The tests' one way of waiting: a false async predicate must not pass for a true one."""

from __future__ import annotations

import pytest
from tests.support.waiting import wait_until


async def test_an_async_predicate_is_awaited_not_taken_as_true() -> None:
    async def never() -> bool:
        return False

    with pytest.raises(TimeoutError, match="the impossible"):
        await wait_until(never, timeout=0.05, what="the impossible")


async def test_the_first_truthy_answer_is_returned() -> None:
    answers = iter([0, None, "", "ready"])

    async def next_answer() -> str | int | None:
        return next(answers)

    assert await wait_until(next_answer, timeout=1) == "ready"
    assert await wait_until(lambda: 42, timeout=1) == 42
