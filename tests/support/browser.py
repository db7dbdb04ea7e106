"""Headless Chromium driven over the DevTools protocol, for tests that look at a page while it
lives: what the page shows now (`Page.evaluate`), and again after something changed.

The protocol runs over `--remote-debugging-pipe` (Chromium reads commands on fd 3 and writes
answers on fd 4, each a JSON object ended by NUL): no port to find, no websocket client, and
the browser goes when its pipe closes. `CHROMIUM` is None where no chromium is installed;
tests skip then.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MESSAGE_LIMIT_BYTES = 64 * 1024 * 1024  # a screenshot arrives as one base64 message
START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 15.0
# Puts our pipe ends on fds 3 and 4, where Chromium looks for them, then becomes Chromium
# (`sh` cannot: dash redirects only fds 0-9, and a test process has more open).
ON_FDS_3_AND_4 = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


class BrowserError(Exception):
    """The browser answered a command with an error, or an evaluated script threw."""


class Page:
    """One tab, attached as a flat session."""

    def __init__(self, browser: Browser, session_id: str) -> None:
        self.browser = browser
        self.session_id = session_id

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        answer = await self.browser.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session_id=self.session_id,
        )
        if "exceptionDetails" in answer:
            raise BrowserError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    async def screenshot(self, path: Path) -> None:
        answer = await self.browser.call(
            "Page.captureScreenshot", {"format": "png"}, session_id=self.session_id
        )
        path.write_bytes(base64.b64decode(answer["data"]))


class Browser:
    """`async with Browser(profile_dir) as browser: page = await browser.open(url)`."""

    def __init__(self, profile_dir: Path, width: int = 1280, height: int = 900) -> None:
        self.profile_dir = profile_dir
        self.size = (width, height)
        self.proc: subprocess.Popen[bytes] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.WriteTransport | None = None
        self._next_id = 0
        self._answers: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pump: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Browser:
        assert CHROMIUM is not None, "no chromium installed"
        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()
        width, height = self.size
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                ON_FDS_3_AND_4,
                str(to_browser_r),
                str(from_browser_w),
                CHROMIUM,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
                f"--window-size={width},{height}",
                f"--user-data-dir={self.profile_dir}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(to_browser_r, from_browser_w),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        loop = asyncio.get_running_loop()
        self._reader = asyncio.StreamReader(limit=MESSAGE_LIMIT_BYTES)
        reader = self._reader
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(from_browser_r, "rb", 0)
        )
        self._writer, _ = await loop.connect_write_pipe(
            asyncio.Protocol, os.fdopen(to_browser_w, "wb", 0)
        )
        self._pump = asyncio.create_task(self._read_answers())
        await self.call("Browser.getVersion", timeout=START_TIMEOUT_S)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(Exception):
            await self.call("Browser.close", timeout=5)
        if self._writer is not None:
            self._writer.close()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        if self.proc is not None:
            try:
                await asyncio.to_thread(self.proc.wait, 10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    async def open(self, url: str) -> Page:
        """A new tab at `url`, once its document has loaded (its scripts may still be
        fetching)."""
        target = await self.call("Target.createTarget", {"url": url})
        attached = await self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        loaded = "location.href !== 'about:blank' && document.readyState === 'complete'"
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
        while not await page.evaluate(loaded):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{url} did not load in {START_TIMEOUT_S} s")
            await asyncio.sleep(0.02)
        return page

    async def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        *,
        session_id: str | None = None,
        timeout: float = CALL_TIMEOUT_S,
    ) -> dict[str, Any]:
        assert self._writer is not None
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        answer = asyncio.get_running_loop().create_future()
        self._answers[self._next_id] = answer
        self._writer.write(json.dumps(message).encode() + b"\0")
        reply = await asyncio.wait_for(answer, timeout)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def _read_answers(self) -> None:
        """Answers to their callers; events (messages without an id) are not needed here."""
        assert self._reader is not None
        try:
            while True:
                message = json.loads((await self._reader.readuntil(b"\0"))[:-1])
                answer = self._answers.pop(message.get("id", -1), None)
                if answer is not None and not answer.done():
                    answer.set_result(message)
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            for answer in self._answers.values():
                if not answer.done():
                    answer.set_exception(BrowserError(f"the browser went away: {e!r}"))
