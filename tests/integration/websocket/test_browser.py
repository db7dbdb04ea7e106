"""A real browser: headless Chromium opens examples/websocket.html, which connects with the
official NATS JavaScript client (nats.ws from npm), to our server and to Go's. The test talks
to the page over NATS from a TCP client: the page announces itself, sends a payload far
larger than a frame, and answers requests.

Needs `chromium` and `examples/node_modules` (`make test` installs both when it can); skipped
without them. The test installs nothing itself.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import connect

from .support import KINDS, ws_server

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
BUNDLE = EXAMPLES / "node_modules" / "nats.ws" / "esm" / "nats.js"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or not BUNDLE.exists(),
    reason="needs chromium and examples/node_modules (installed by `make test`)",
)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def examples_url() -> Iterator[str]:
    """examples/ over HTTP (browsers load ES modules from http://, not file://)."""
    handler = functools.partial(QuietHandler, directory=str(EXAMPLES))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_browser_with_the_official_client(
    kind: str, examples_url: str, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    with ws_server(kind, {"no_tls": True}) as server:
        nc = await connect(server.url)
        hello = await nc.subscribe("browser.hello")
        big = await nc.subscribe("browser.big")
        await nc.flush()
        page = f"{examples_url}/websocket.html?server={server.ws_url}"
        browser = subprocess.Popen(
            [
                CHROMIUM,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                f"--user-data-dir={tmp_path}",
                page,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            announced = json.loads((await hello.next_msg(60)).data)
            assert "Chrome" in announced["userAgent"]
            assert announced["maxPayload"] == 1048576
            assert (await big.next_msg(10)).data == b"b" * 200000
            request = bytes(range(256)) * 400  # 100 KiB: many 4096-byte frames to a browser
            assert (await nc.request("browser.echo", request, timeout=10)).data == request
            [conn] = [
                c
                for c in server.monitor("/connz")["connections"]
                if c.get("name") == "pynats-example"
            ]
            assert (conn["type"], conn["lang"]) == ("websocket", "nats.ws")
        finally:
            browser.terminate()
            try:
                browser.wait(10)
            except subprocess.TimeoutExpired:
                browser.kill()
                browser.wait()
            await nc.close()
