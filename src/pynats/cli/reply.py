"""`nats reply`: a small service answering requests on a subject, in a queue group.

    nats reply 'weather.>' --command "echo forecast for {{1}}: {{.Request}}"
    nats reply svc.echo --echo --sleep 100ms
    nats reply svc.time 'it is {{TimeStamp}}'

Each request is logged on stderr (`[#0] Received on subject "weather.paris":`) and its body
printed on stdout. The reply is, by precedence, the request itself (`--echo`, plus a
`NATS-Reply-Counter` header), the output of `--command`, or the BODY template. Like natscli the
service always ends with `Draining...` / `Exiting` and exit status 1, whether it was stopped
by `--count` or by Ctrl-C.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import re
import shlex
import subprocess
from typing import TYPE_CHECKING

import click

from pynats.cli.ui.command import NatsGroup
from pynats.cli.ui.connect import connection, flush_ordered, run_async
from pynats.cli.ui.errors import CliError, Fatal
from pynats.cli.ui.messages import go_quote, header_lines
from pynats.cli.ui.output import log, out, out_raw
from pynats.cli.ui.parse import DURATION, parse_header
from pynats.cli.ui.templates import TemplateError, TemplateValues, expand, expand_or_raw
from pynats.gotime import NS_PER_S

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

DEFAULT_QUEUE = "NATS-RPLY-22"
_SUBJECT_TOKEN = re.compile(r"{{\s*(\d+)\s*}}")


def register(root: NatsGroup) -> None:
    @root.command(
        "reply",
        help="Generic service reply utility\n\nThe BODY and --command may use the templates of 'nats pub --help', plus {{Request}} (the request body) and, in --command, {{0}}, {{1}}, ... for the tokens of the received subject.",
    )
    @click.argument("subject", help="Subject to subscribe to")
    @click.argument("body", required=False, default=None, help="Reply body")
    @click.option("--echo", is_flag=True, help="Echo back what is received")
    @click.option(
        "--command",
        default="",
        help="Runs a command and responds with the output if exit code was 0",
    )
    @click.option("-q", "--queue", default=DEFAULT_QUEUE, help="Queue group name")
    @click.option(
        "--sleep",
        "sleep_ns",
        default=0,
        type=DURATION,
        help="Inject a random sleep delay between replies up to this duration max",
    )
    @click.option(
        "-H",
        "--header",
        "headers",
        multiple=True,
        help="Adds headers to the message using K:V format",
    )
    @click.option(
        "--count",
        default=0,
        type=click.IntRange(min=0),
        help="Quit after receiving this many messages",
    )
    def reply(
        subject: str,
        body: str | None,
        echo: bool,
        command: str,
        queue: str,
        sleep_ns: int,
        headers: tuple[str, ...],
        count: int,
    ) -> None:
        try:
            parsed_headers = [parse_header(h) for h in headers]
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        if body is None and not command and not echo:
            log("No body or command supplied, enabling echo mode")
            echo = True
        service = ReplyService(
            subject, body or "", echo, command, queue, sleep_ns / NS_PER_S, parsed_headers, count
        )
        run_async(service.run())


class ReplyService:
    """Answers requests until `count` were handled or the user interrupts."""

    def __init__(
        self,
        subject: str,
        body: str,
        echo: bool,
        command: str,
        queue: str,
        sleep_s: float,
        headers: list[tuple[str, str]],
        count: int,
    ) -> None:
        self.subject = subject
        self.body = body
        self.echo = echo
        self.command = command
        self.queue = queue
        self.sleep_s = sleep_s
        self.headers = headers
        self.count = count
        self.handled = 0
        self.done = asyncio.Event()

    async def run(self) -> None:
        async with connection() as nc:
            sub = await nc.subscribe(
                self.subject, queue=self.queue, cb=functools.partial(self.answer, nc)
            )
            await flush_ordered(nc)
            log(f"Listening on {go_quote(self.subject)} in group {go_quote(self.queue)}")
            try:
                await self.done.wait()
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
            log("Draining...")
            try:
                await sub.drain()
                await nc.flush(timeout=2)
            except Exception:  # draining is best effort on the way out
                pass
        raise Fatal("Exiting")

    async def answer(self, nc: Client, msg: Msg) -> None:
        if self.done.is_set():
            return
        number = self.handled
        self.handled += 1
        log(f"[#{number}] Received on subject {go_quote(msg.subject)}:")
        for line in header_lines(msg.headers):
            log(line)
        out()
        out_raw(msg.data + b"\n")
        if self.sleep_s > 0:
            await asyncio.sleep(random.uniform(0, self.sleep_s))
        try:
            data, headers = await self.response(msg, number)
        except CliError as exc:
            log(str(exc))
            return
        if msg.reply:
            await nc.publish(msg.reply, data, headers=headers or None)
        if self.count and self.handled >= self.count:
            self.done.set()

    async def response(self, msg: Msg, number: int) -> tuple[bytes, dict[str, str]]:
        """The reply body and headers for request `number` (0-based)."""
        request = msg.data.decode(errors="replace")
        values = TemplateValues(number, request)
        headers: dict[str, str] = {}
        if self.echo:
            headers.update(msg.headers or {})
            headers["NATS-Reply-Counter"] = str(number)
            data = msg.data
        elif self.command:
            data = await asyncio.get_running_loop().run_in_executor(
                None, self.run_command, msg.subject, request, values
            )
        else:
            data = expand_or_raw(self.body, values, "body").encode()
        for key, value in self.headers:
            try:
                headers[key] = expand(value, values, key)
            except TemplateError as exc:
                raise CliError(f"failed to parse Header template for {key}: {exc}") from exc
        return data, headers

    def run_command(self, subject: str, request: str, values: TemplateValues) -> bytes:
        """Run --command for one request; its combined output is the reply even if it failed."""
        tokens = subject.split(".")

        def token(match: re.Match[str]) -> str:
            index = int(match.group(1))
            return tokens[index] if index < len(tokens) else ""

        command = expand_or_raw(_SUBJECT_TOKEN.sub(token, self.command), values, "command")
        env = {**os.environ, "NATS_REQUEST_SUBJECT": subject, "NATS_REQUEST_BODY": request}
        try:
            result = subprocess.run(
                shlex.split(command),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                check=False,
            )
        except (OSError, ValueError) as exc:
            log(f"Command {go_quote(command)} failed to run: {exc}")
            return b""
        if result.returncode != 0:
            log(f"Command {go_quote(command)} failed to run: exit status {result.returncode}")
        return result.stdout
