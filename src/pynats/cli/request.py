"""`nats request` (alias `req`): send a request and print the reply (or several replies).

    nats req svc.time "now?"
    14:10:02 Sending request on "svc.time"
    14:10:02 Received with rtt 1.183ms
    2025-03-02T14:10:02Z

The timing and headers go to stderr, the reply body to stdout (`--raw`: the body only). The
first reply is awaited for the global `--timeout`; with `--replies N` the next ones for the
average round trip plus `--reply-timeout`. No responders is reported, not an error (exit 0).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from pynats.cli.pub import QUIET_ABOVE_COUNT, TEMPLATE_HELP
from pynats.cli.ui.command import NatsGroup, negatable
from pynats.cli.ui.connect import connection, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.humanize import seconds_to_ns
from pynats.cli.ui.messages import (
    TranslateError,
    compact_body,
    go_quote,
    header_lines,
    pretty_body,
    status_of,
    translate_body,
)
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import log, out_raw
from pynats.cli.ui.parse import DURATION
from pynats.cli.ui.payload import BodySource, MessageTemplate
from pynats.cli.ui.progress import ProgressBar
from pynats.gotime import NS_PER_S, format_duration

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

UNBOUNDED_COUNT = 32767


class NoResponders(Exception):
    """A 503 status reply: nobody listens on the subject."""


def register(root: NatsGroup) -> None:
    @root.command(
        "request",
        aliases=["req"],
        help="Generic request-reply request utility\n\n"
        + TEMPLATE_HELP.replace("nats pub", "nats request"),
    )
    @click.argument("subject", help="Subject to send the request to")
    @click.argument("body", required=False, default=None, help="Message body")
    @click.option("-r", "--raw", is_flag=True, help="Show just the output received")
    @click.option(
        "-H",
        "--header",
        "headers",
        multiple=True,
        help="Adds headers to the message using K:V format",
    )
    @click.option("--count", default=1, type=int, help="Publish multiple messages")
    @click.option(
        "--replies",
        default=1,
        type=click.IntRange(min=0),
        help="Wait for multiple replies from services. 0 waits until timeout",
    )
    @click.option(
        "--reply-timeout",
        "reply_timeout_ns",
        default="300ms",
        type=DURATION,
        help="Maximum timeout between incoming replies.",
    )
    @click.option(
        "--wait-for-empty",
        is_flag=True,
        help="Wait for replies until a message with an empty body is received",
    )
    @click.option(
        "--translate",
        default="",
        help="Translate the message data by running it through the given command before output",
    )
    @click.option("--force-stdin", is_flag=True, help="Force reading from stdin")
    @click.option(
        "--send-on",
        type=click.Choice(["eof", "newline"]),
        default="eof",
        help="When to send data from stdin: 'eof' (default) or 'newline'",
    )
    @negatable(
        "templates",
        True,
        "Enables template functions in the body and subject (does not affect headers)",
    )
    def request(
        subject: str,
        body: str | None,
        raw: bool,
        headers: tuple[str, ...],
        count: int,
        replies: int,
        reply_timeout_ns: int,
        wait_for_empty: bool,
        translate: str,
        force_stdin: bool,
        send_on: str,
        templates: bool,
    ) -> None:
        job = RequestJob(
            template=MessageTemplate.checked(subject, headers, templates),
            source=BodySource(body, force_stdin, send_on),
            raw=raw,
            count=count if count >= 1 else UNBOUNDED_COUNT,
            replies=replies,
            reply_timeout_s=reply_timeout_ns / NS_PER_S,
            wait_for_empty=wait_for_empty,
            translate=translate,
        )
        run_async(job.run())


class RequestJob:
    """One `nats request` run."""

    def __init__(
        self,
        template: MessageTemplate,
        source: BodySource,
        raw: bool,
        count: int,
        replies: int,
        reply_timeout_s: float,
        wait_for_empty: bool,
        translate: str,
    ) -> None:
        self.template = template
        self.source = source
        self.raw = raw
        self.count = count
        self.replies = replies
        self.reply_timeout_s = reply_timeout_s
        self.wait_for_empty = wait_for_empty
        self.translate = translate
        self.progress = ProgressBar(count) if count > QUIET_ABOVE_COUNT and not raw else None

    @property
    def chatty(self) -> bool:
        return not self.raw and self.progress is None

    async def run(self) -> None:
        async with connection() as nc:
            if self.source.uses_stdin and not self.raw:
                log("Reading payload from STDIN")
            try:
                async for body in self.source.bodies():
                    for number in range(1, self.count + 1):
                        await self.request_once(nc, body, number)
            except NoResponders:
                log("No responders are available")
            if self.progress is not None:
                self.progress.finish()

    async def request_once(self, nc: Client, body: bytes, number: int) -> None:
        import nats.errors

        if self.chatty:
            log(f"Sending request on {go_quote(self.template.subject)}")
        subject = self.template.subject_for(number)
        data = self.template.body_for(body, number)
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        try:
            await nc.publish(subject, data, reply=inbox, headers=self.template.headers_for(number))
            if self.progress is not None:
                self.progress.advance()
            started = time.monotonic()
            total_timeout = current_settings().timeout_s
            timeout = total_timeout
            received = 0
            rtt_sum = 0.0
            while timeout > 0:
                try:
                    msg = await sub.next_msg(timeout=timeout)
                except (nats.errors.TimeoutError, TimeoutError):
                    break
                if status_of(msg) == "503":
                    raise NoResponders()
                rtt = time.monotonic() - started
                self.show(msg, rtt)
                received += 1
                if self.wait_for_empty and not msg.data:
                    break
                if self.replies > 0 and received == self.replies and not self.wait_for_empty:
                    break
                if self.replies == 0 or self.wait_for_empty:
                    timeout = total_timeout - (time.monotonic() - started)
                else:
                    rtt_sum += rtt
                    timeout = rtt_sum / received + self.reply_timeout_s
        finally:
            try:
                await sub.unsubscribe()
            except nats.errors.Error:
                pass

    def show(self, msg: Msg, rtt: float) -> None:
        if self.progress is not None and not self.raw:
            return
        data = msg.data
        if self.translate and data:
            try:
                data = translate_body(data, self.translate, msg.subject)
            except TranslateError as exc:
                raise CliError(f"Error while translating msg body: {exc}") from exc
        if self.raw:
            out_raw(compact_body(data))
            return
        log(f"Received with rtt {format_duration(seconds_to_ns(rtt))}")
        lines = header_lines(msg.headers)
        for line in lines:
            log(line)
        if lines:
            log()
        out_raw(pretty_body(data))
