"""pytest fixtures for testing your code against a real pynats server.

Enable in your conftest.py:

    pytest_plugins = ["pynats.testing.pytest_plugin"]

Fixtures:
    nats_server  -- a fresh server on a random port (its own thread, so sync and async tests
                    alike can use it); `.url` is what to connect to.
    nats_client  -- an async fixture (needs pytest-asyncio): a nats-py client connected to
                    `nats_server`, closed after the test.
    nats_server_factory -- call with Options fields (`jetstream=True`, `username=...`) to get
                    more servers; all are stopped after the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .inprocess import InProcessServer, ServerFactory

if TYPE_CHECKING:
    from nats.aio.client import Client


@pytest.fixture
def nats_server_factory() -> Iterator[ServerFactory]:
    started: list[InProcessServer] = []

    def make(**fields: Any) -> InProcessServer:
        server = InProcessServer(**fields).start_in_thread()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop_in_thread()


@pytest.fixture
def nats_server(nats_server_factory: ServerFactory) -> InProcessServer:
    return nats_server_factory()


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the plugin works without it, minus nats_client
    pass
else:

    @pytest_asyncio.fixture
    async def nats_client(nats_server: InProcessServer) -> AsyncIterator[Client]:
        import nats

        nc = await nats.connect(
            nats_server.url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=1
        )
        yield nc
        await nc.close()
