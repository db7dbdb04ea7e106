"""Shared fixtures: real servers (ours, and the Go oracle where a test compares)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from tests.support.servers import RunningServer, start_server

pytest_plugins = ["pynats.testing.pytest_plugin"]

# nats-py's flush() writes its PING straight to the socket, ahead of commands still in the
# client's pending buffer: a SUB made just before waits there for the flusher task, so on a
# busy machine the server answers PONG before it has read the SUB, and a test that
# subscribes, flushes and publishes from another connection loses the message (seen on both
# servers: a Go trace showed the PING, the PONG, then the SUB). Every test relies on flush()
# meaning "the server has what I sent", so flush() here makes two round trips: during the
# first the flusher writes the buffer, and the second PING follows it. (The CLI does the
# same: pynats.cli.ui.connect.flush_ordered.)
_nats_py_flush = Client.flush


async def _ordered_flush(self: Client, timeout: int = 10) -> None:
    await _nats_py_flush(self, timeout)
    await _nats_py_flush(self, timeout)


Client.flush = _ordered_flush  # type: ignore[method-assign]


async def connect(url: str, **kwargs: Any) -> nats.NATS:
    """A nats-py client with bounded connect/reconnect (nats-py retries a first connect forever
    when max_reconnect_attempts=0, so tests always bound it)."""
    opts: dict[str, Any] = {
        "connect_timeout": 2,
        "allow_reconnect": False,
        "max_reconnect_attempts": 1,
    }
    opts.update(kwargs)
    return await nats.connect(url, **opts)


@pytest.fixture(scope="module")
def server() -> Iterator[RunningServer]:
    """One pynats subprocess shared by the tests of a module (with monitoring)."""
    srv = start_server(http_port=-1)
    yield srv
    srv.stop()


@pytest.fixture
def server_factory() -> Iterator[Callable[..., RunningServer]]:
    """Start extra servers (ours by default, `oracle=True` for Go); all stopped afterwards."""
    started: list[RunningServer] = []

    def make(args: list[str] | None = None, **kwargs: Any) -> RunningServer:
        srv = start_server(args, **kwargs)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()
