"""Message bodies and headers for `nats pub` and `nats request` (cli.md §2 "Body source").

The body is the BODY argument when given. Otherwise it comes from stdin when stdin is piped,
when stdin and stdout are both terminals (the user types and ends with Ctrl-D), or with
`--force-stdin`: all of stdin as one body (`--send-on eof`) or one body per line
(`--send-on newline`, an empty last line at EOF is not sent).

Each message is then prepared with the templates of templates.py: the subject and the body (when
`--templates` is on) and the header values (always) are expanded with the message number.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from pynats.cli.ui.errors import CliError
from pynats.cli.ui.output import is_tty
from pynats.cli.ui.parse import parse_header
from pynats.cli.ui.templates import TemplateError, TemplateValues, expand, expand_or_raw


@dataclass
class BodySource:
    """Where the bodies of a pub/request run come from."""

    body: str | None
    force_stdin: bool = False
    send_on: str = "eof"

    @property
    def uses_stdin(self) -> bool:
        if self.body is not None:
            return False
        if self.force_stdin:
            return True
        stdin_tty = is_tty(sys.stdin)
        return not stdin_tty or is_tty(sys.stdout)

    async def bodies(self) -> AsyncIterator[bytes]:
        """Each body to send: the argument once, all of stdin once, or stdin line by line."""
        if not self.uses_stdin:
            yield (self.body or "").encode()
            return
        stdin = StdinReader()
        if self.send_on == "eof":
            yield await stdin.read_all()
            return
        while True:
            line, at_eof = await stdin.read_line()
            if at_eof and not line:
                return
            yield line
            if at_eof:
                return


class StdinReader:
    """Reads stdin's file descriptor in a daemon thread, so Ctrl-C never waits for input.

    The raw descriptor, not `sys.stdin.buffer`: a daemon thread blocked inside the buffered
    object holds its lock, and Python aborts at exit when it cannot take that lock back.
    """

    CHUNK = 65536

    def __init__(self) -> None:
        self.fd = sys.stdin.fileno()
        self.buffer = b""
        self.at_eof = False

    async def _fill(self) -> None:
        chunk = await read_in_thread(lambda: os.read(self.fd, self.CHUNK))
        if chunk:
            self.buffer += chunk
        else:
            self.at_eof = True

    async def read_all(self) -> bytes:
        while not self.at_eof:
            await self._fill()
        data, self.buffer = self.buffer, b""
        return data

    async def read_line(self) -> tuple[bytes, bool]:
        """The next line without its newline, and whether stdin ended after it."""
        while b"\n" not in self.buffer and not self.at_eof:
            await self._fill()
        line, newline, rest = self.buffer.partition(b"\n")
        self.buffer = rest
        at_eof = not newline and self.at_eof
        return line.removesuffix(b"\r"), at_eof


async def read_in_thread(read: Callable[[], bytes]) -> bytes:
    """Run a blocking read in a daemon thread (not the loop's executor, which Ctrl-C waits for)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bytes] = loop.create_future()

    def deliver(setter: Callable[[Any], None], value: Any) -> None:
        if not future.done():
            setter(value)

    def work() -> None:
        try:
            outcome: tuple[Callable[[Any], None], Any] = (future.set_result, read())
        except BaseException as exc:  # handed to the awaiting coroutine
            outcome = (future.set_exception, exc)
        try:
            loop.call_soon_threadsafe(deliver, *outcome)
        except RuntimeError:
            pass  # the command already ended (Ctrl-C) and its loop is closed

    threading.Thread(target=work, daemon=True, name="stdin-reader").start()
    return await future


@dataclass
class MessageTemplate:
    """Subject, body and headers of the messages to send, before per-message expansion."""

    subject: str
    headers: tuple[str, ...] = ()
    templates: bool = True

    def __post_init__(self) -> None:
        self.parsed_headers = [parse_header(h) for h in self.headers] if self.headers else []

    @classmethod
    def checked(cls, subject: str, headers: tuple[str, ...], templates: bool) -> MessageTemplate:
        try:
            return cls(subject, headers, templates)
        except ValueError as exc:
            raise CliError(str(exc)) from exc

    def subject_for(self, number: int) -> str:
        if not self.templates:
            return self.subject
        return expand_or_raw(self.subject, TemplateValues(number), "subject")

    def body_for(self, body: bytes, number: int) -> bytes:
        if not self.templates or b"{{" not in body:
            return body
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return body
        return expand_or_raw(text, TemplateValues(number), "body").encode()

    def headers_for(self, number: int) -> dict[str, str] | None:
        """Header values are always expanded; a bad header template is fatal (natscli)."""
        if not self.parsed_headers:
            return None
        headers = {}
        for key, value in self.parsed_headers:
            try:
                headers[key] = expand(value, TemplateValues(number), key)
            except TemplateError as exc:
                raise CliError(f"failed to parse Header template for {key}: {exc}") from exc
        return headers
