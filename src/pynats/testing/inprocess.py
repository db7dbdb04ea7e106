"""InProcessServer: a pynats server on the caller's event loop or on a thread of its own."""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import threading
from typing import Any, Protocol, Self

from ..app import build_server
from ..server.log import Logger
from ..server.options import Options
from ..server.server import Server

START_TIMEOUT_S = 10.0


class ServerFactory(Protocol):
    """Starts one more InProcessServer; keyword arguments are Options fields, as for
    `InProcessServer(...)` (the `nats_server_factory` fixture is one)."""

    def __call__(self, **fields: Any) -> InProcessServer: ...


class InProcessServer:
    """A real server (real sockets) living in this process.

    Keyword arguments are Options fields (`jetstream=True`, `username="u"`, ...). The defaults
    differ from `nats-server` only where tests need them to: 127.0.0.1, a random port, no
    log output (pass `log=True` to see it) and, with JetStream, a temporary store directory.
    """

    def __init__(self, options: Options | None = None, *, log: bool = False, **fields: Any) -> None:
        base = options or Options(host="127.0.0.1", port=-1)
        self.options = dataclasses.replace(base, **fields)
        self._log = log
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if self.options.jetstream and not self.options.store_dir:
            self._tmp = tempfile.TemporaryDirectory(prefix="pynats-js-")
            self.options.store_dir = self._tmp.name
        self.server: Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- on the caller's loop -------------------------------------------------------------

    async def start(self) -> Self:
        logger = Logger(
            debug=self.options.debug,
            trace=self.options.trace,
            silent=not self._log,
        )
        self.server = build_server(self.options, logger)
        await self.server.start()
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
        self._cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- on a thread of its own -----------------------------------------------------------

    def start_in_thread(self) -> Self:
        """Start on a private event loop in a daemon thread; returns once it is ready."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as e:  # reported to the starting thread
                errors.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="pynats-server", daemon=True)
        self._thread.start()
        if not ready.wait(START_TIMEOUT_S):
            raise TimeoutError("pynats server did not start")
        if errors:
            raise errors[0]
        return self

    def stop_in_thread(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def stop_and_halt() -> None:
            await self.stop()
            loop.stop()

        asyncio.run_coroutine_threadsafe(stop_and_halt(), loop)
        thread.join(START_TIMEOUT_S)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start_in_thread()

    def __exit__(self, *exc: object) -> None:
        self.stop_in_thread()

    # -- what tests need ------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self.server is not None, "server not started"
        return self.server.client_port

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def monitor_url(self) -> str:
        assert self.server is not None, "server not started"
        return f"http://127.0.0.1:{self.server.http_port}"

    def _cleanup(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
