"""The monitoring HTTP server: a small asyncio one, serving the endpoints of `monitor` (and
`/metrics`, the Prometheus text of `metrics`, and `/dashboard`, the page of `dashboard`).

Monitoring is never on the message path; it must answer within milliseconds of start-up,
because harnesses poll /varz to know the server is ready. JSON is pretty-printed with two
spaces as nats-server does (compact for answers that ask for it, like /healthz).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from . import const, dashboard
from .monitor import BUILTIN_ROUTES, BadRequest, JSONResponse, NotFound, index_page

if TYPE_CHECKING:
    from .metrics import MetricsEndpoint
    from .server import Server

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
MAX_REQUEST_HEAD_BYTES = 16 * 1024


class MonitorServer:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.request_counts: dict[str, int] = {}
        self._listener: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._metrics: MetricsEndpoint | None = None
        # /varz `jetstream` as nats-server keeps it between requests (`_varz_jetstream`)
        self._varz_js_config: bool | None = None
        self._varz_js_last: dict[str, Any] = {}

    async def start(self, host: str, port: int) -> int:
        from .server import ServerStartError, join_host_port

        bind_port = 0 if port == const.RANDOM_PORT else port
        try:
            self._listener = await asyncio.start_server(
                self._handle, host=host or None, port=bind_port, reuse_address=True
            )
        except (OSError, OverflowError) as e:
            raise ServerStartError(
                f"Can't listen to the monitor port: listen tcp {join_host_port(host, port)}: "
                f"{getattr(e, 'strerror', None) or e}"
            ) from None
        actual = int(self._listener.sockets[0].getsockname()[1])
        self.server.logger.notice(f"Starting http monitor on {join_host_port(host, actual)}")
        return actual

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        for writer in list(self._conns):
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                if len(head) > MAX_REQUEST_HEAD_BYTES:
                    return
                lines = head.decode("latin-1").split("\r\n")
                parts = lines[0].split()
                if len(parts) < 2:
                    return
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0") or 0)
                if length:
                    await reader.readexactly(min(length, 1 << 20))
                status, ctype, body = self.respond(parts[1])
                keep_alive = (
                    headers.get("connection", "").lower() != "close" and parts[-1] == "HTTP/1.1"
                )
                head_out = (
                    f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\n"
                    f"Content-Type: {ctype}\r\n"
                    "Access-Control-Allow-Origin: *\r\n"
                    f"Content-Length: {len(body)}\r\n"
                    f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
                )
                writer.write(head_out.encode() + (b"" if parts[0] == "HEAD" else body))
                await writer.drain()
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._conns.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def _varz_jetstream(self, fresh: dict[str, Any]) -> dict[str, Any]:
        """/varz `jetstream` as nats-server serves it over HTTP: it builds its /varz on the
        first request and updates it on the next ones, so JetStream's `config` is there only
        if JetStream ran at the first request, and a JetStream a reload switched off leaves
        the section the last request saw (`fresh`: the section now, empty without
        JetStream)."""
        if self._varz_js_config is None:
            self._varz_js_config = "config" in fresh
        if not fresh:
            return self._varz_js_last
        section = dict(fresh)
        if not self._varz_js_config:
            section.pop("config", None)
        self._varz_js_last = section
        return section

    def respond(self, target: str) -> tuple[int, str, bytes]:
        url = urlsplit(target)
        path = url.path
        base = self.server.options.http_base_path.rstrip("/")
        if base and path.startswith(base):
            path = path[len(base) :] or "/"
        name = path.strip("/")
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        if name == "":
            self._count("/")
            return 200, "text/html; charset=utf-8", index_page(self.server).encode()
        if name == "dashboard":
            self._count("/dashboard")
            return 200, dashboard.CONTENT_TYPE, dashboard.page(base)
        if name == "metrics":
            self._count("/metrics")
            return 200, *self._scrape()
        handler = self.server.monitor_routes.get(name) or BUILTIN_ROUTES.get(name)
        if handler is None:
            return 404, "text/plain; charset=utf-8", b"404 page not found\n"
        self._count("/" + name)
        try:
            result = handler(self.server, query)
        except BadRequest as e:
            return 400, "text/plain; charset=utf-8", str(e).encode()
        except NotFound as e:
            return 404, "text/plain; charset=utf-8", str(e).encode()
        if name == "varz" and isinstance(result, dict):
            result["jetstream"] = self._varz_jetstream(result.get("jetstream") or {})
        status = 200
        compact = False
        if isinstance(result, JSONResponse):
            status, compact, result = result.status, result.compact, result.body
        if compact:
            body = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
        else:
            body = json.dumps(result, indent=2, ensure_ascii=False)
        return status, "application/json", body.encode()

    def _scrape(self) -> tuple[str, bytes]:
        """`/metrics`; prometheus_client is imported on the first scrape, not at start-up."""
        from .metrics import CONTENT_TYPE, MetricsEndpoint

        if self._metrics is None:
            self._metrics = MetricsEndpoint(self.server)
        return CONTENT_TYPE, self._metrics.render()

    def _count(self, path: str) -> None:
        self.request_counts[path] = self.request_counts.get(path, 0) + 1
