"""Run a real pynats server inside your own tests.

    from pynats.testing import InProcessServer

    async with InProcessServer() as server:          # on the running event loop
        nc = await nats.connect(server.url)

    server = InProcessServer(jetstream=True).start_in_thread()   # any test, sync or async
    ...
    server.stop_in_thread()

The server listens on 127.0.0.1 on a random port and is the same code as `nats-server`. For
pytest fixtures (`nats_server`, `nats_client`, `nats_server_factory`), add
`pytest_plugins = ["pynats.testing.pytest_plugin"]` to your conftest.py; `ServerFactory` is the
type of `nats_server_factory`, for annotating your own fixtures. The package is typed (py.typed).
"""

from .inprocess import InProcessServer, ServerFactory

__all__ = ["InProcessServer", "ServerFactory"]
