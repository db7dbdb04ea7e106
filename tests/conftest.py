"""Shared fixtures: real servers (ours, and the Go oracle where a test compares)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import nats
import pytest

from tests.support.servers import RunningServer, start_server

pytest_plugins = ["pynats.testing.pytest_plugin"]


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
