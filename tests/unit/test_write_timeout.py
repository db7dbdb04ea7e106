"""The write deadline and nats-server's `write_timeout` policy on a connection whose socket is
blocked: `close` cuts it at the first deadline, `retry` keeps it as long as something drained
since the previous deadline, and both count and log the slow consumer each time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.support.waiting import wait_until

from pynats.server.connection import CLIENT, LEAF, ROUTER, Connection
from pynats.server.log import Logger
from pynats.server.options import Options
from pynats.server.server import Server

DEADLINE_S = 0.05


class BlockedTransport:
    """A transport whose write buffer the test empties by hand."""

    def __init__(self) -> None:
        self.buffered = 0
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.buffered += len(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 4222) if name == "peername" else default

    def is_closing(self) -> bool:
        return self.aborted

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True


def peer_of(kind: int) -> type[Connection]:
    """A bare connection of `kind` (client, route, leaf)."""
    return type("Peer", (Connection,), {"__slots__": (), "kind": kind})


def blocked_connection(kind: int, **options: Any) -> tuple[Server, Connection, BlockedTransport]:
    server = Server(Options(write_deadline=DEADLINE_S, **options), Logger(silent=True))
    server.loop = asyncio.get_running_loop()
    conn = peer_of(kind)(server)
    transport = BlockedTransport()
    conn.attach(transport)  # type: ignore[arg-type]
    conn.send(b"x" * 1_000_000)
    conn.flush()
    conn.pause_writing()
    return server, conn, transport


async def test_close_cuts_a_client_at_the_first_deadline() -> None:
    server, conn, transport = blocked_connection(CLIENT)
    transport.buffered -= 500_000  # it drains, yet `close` (clients' default) cuts it
    await wait_until(lambda: conn.closed, timeout=2)
    assert conn.reason == "Slow Consumer (Write Deadline)"
    assert transport.aborted
    assert server.slow_consumers == 1


async def test_retry_keeps_a_draining_client_and_cuts_a_stuck_one() -> None:
    server, conn, transport = blocked_connection(CLIENT, write_timeout="retry")
    transport.buffered -= 100_000
    await wait_until(lambda: server.slow_consumers == 1, timeout=2)
    assert not conn.closed
    transport.buffered -= 100_000
    await wait_until(lambda: server.slow_consumers == 2, timeout=2)
    assert not conn.closed
    await wait_until(lambda: conn.closed, timeout=2)  # nothing drained for a whole deadline
    assert server.slow_consumers == 3
    assert conn.reason == "Slow Consumer (Write Deadline)"


async def test_new_writes_do_not_count_as_progress() -> None:
    server, conn, _ = blocked_connection(CLIENT, write_timeout="retry")
    conn.send(b"y" * 10_000)
    conn.flush()
    await wait_until(lambda: conn.closed, timeout=2)
    assert server.slow_consumers == 1


async def test_resuming_before_the_deadline_is_not_a_slow_consumer() -> None:
    server, conn, transport = blocked_connection(CLIENT)
    transport.buffered = 0
    conn.resume_writing()
    assert conn._write_deadline_timer is None  # nothing left to fire
    assert not conn.closed
    assert server.slow_consumers == 0


@pytest.mark.parametrize("kind", [ROUTER, LEAF])
async def test_links_retry_by_default(kind: int) -> None:
    server, conn, transport = blocked_connection(kind)
    transport.buffered -= 100_000
    await wait_until(lambda: server.slow_consumers == 1, timeout=2)
    assert not conn.closed


def test_the_blocks_deadline_and_policy_apply_to_their_links() -> None:
    opts = Options(write_deadline=10.0, write_timeout="retry")
    opts.cluster.write_deadline, opts.cluster.write_timeout = 2.0, "close"
    opts.leafnodes.write_timeout = "default"
    server = Server(opts, Logger(silent=True))
    policies = {}
    for kind in (CLIENT, ROUTER, LEAF):
        policies[kind] = peer_of(kind)(server).write_timeout_policy()
    assert policies == {CLIENT: (10.0, False), ROUTER: (2.0, True), LEAF: (10.0, False)}
