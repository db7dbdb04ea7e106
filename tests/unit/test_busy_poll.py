"""BusyPoll: when the event loop polls instead of sleeping, and that it stops (busy_poll.py)."""

from __future__ import annotations

import asyncio

from tests.support.waiting import wait_until

from pynats.server.busy_poll import BusyPoll


async def test_close_reads_keep_the_loop_polling_until_the_window_passes() -> None:
    loop = asyncio.get_running_loop()
    poll = BusyPoll(0.3)
    poll.after_read()  # nothing came before it: no reason to expect another soon
    assert not poll.polling
    poll.after_read()
    assert poll.polling
    rounds = 0

    def count() -> None:
        nonlocal rounds
        rounds += 1
        if poll.polling:
            loop.call_soon(count)

    loop.call_soon(count)
    # the loop keeps turning (other callbacks run) and stops polling once no read came
    # for the window
    await wait_until(lambda: not poll.polling, timeout=5, what="polling to stop")
    assert rounds > 1


async def test_reads_farther_apart_than_the_window_never_poll() -> None:
    poll = BusyPoll(0.01)
    for _ in range(3):
        poll.after_read()
        assert not poll.polling
        await asyncio.sleep(0.03)


async def test_a_window_of_zero_never_polls() -> None:
    poll = BusyPoll(0.0)
    for _ in range(100):
        poll.after_read()
    assert not poll.polling
