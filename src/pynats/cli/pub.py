"""`nats publish` (alias `pub`): publish messages to Core NATS or, with `-J`, to JetStream.

    nats pub demo.greet "hi {{Count}}" --count 2 -H trace:{{ID}}
    cat data.json | nats pub orders.new
    nats pub -J ORDERS.new '{"id":7}'
    printf 'a\nb\n' | nats pub -J --atomic --send-on newline ORDERS.new
    nats pub --schedule-every 5m --schedule-dest ORDERS.tick ORDERS.schedule.tick "ping"

Status lines go to stderr (`HH:MM:SS Published 11 bytes to "demo"`); stdout stays empty, so pub
composes in pipelines. More than 20 messages replace the per-message lines with a progress bar
(drawn only on a terminal).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import click

from pynats.cli.ui.command import NatsGroup, negatable
from pynats.cli.ui.connect import connection, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.humanize import comma
from pynats.cli.ui.messages import go_quote
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import log
from pynats.cli.ui.parse import DURATION
from pynats.cli.ui.payload import BodySource, MessageTemplate
from pynats.cli.ui.progress import ProgressBar
from pynats.gotime import NS_PER_S

if TYPE_CHECKING:
    from nats.aio.client import Client

QUIET_ABOVE_COUNT = 20

TEMPLATE_HELP = """Body and Header values of the messages may use Go templates to
create unique messages.

\b
   nats pub test --count 10 "Message {{Count}} @ {{Time}}"

Multiple messages with random strings between 10 and 100 long:

\b
   nats pub test --count 10 "Message {{Count}}: {{ Random 10 100 }}"

Available template functions are:

\b
   Count            the message number
   TimeStamp        RFC3339 format current time
   Unix             seconds since 1970 in UTC
   UnixNano         nano seconds since 1970 in UTC
   Time             the current time
   ID               an unique ID
   UUID             a random UUID
   Random(min, max) random string at least min long, at most max
"""


def register(root: NatsGroup) -> None:
    @root.command(
        "publish", aliases=["pub"], help="Generic data publish utility\n\n" + TEMPLATE_HELP
    )
    @click.argument("subject")
    @click.argument("body", required=False, default=None)
    @click.option("--reply", default="", help="Sets a custom reply to subject")
    @click.option(
        "-H",
        "--header",
        "headers",
        multiple=True,
        help="Adds headers to the message using K:V format",
    )
    @click.option("--count", default=1, type=int, help="Publish multiple messages")
    @click.option(
        "--sleep",
        "sleep_ns",
        default=0,
        type=DURATION,
        help="When publishing multiple messages, sleep between publishes",
    )
    @click.option("--force-stdin", is_flag=True, help="Force reading from stdin")
    @click.option("-J", "--jetstream", is_flag=True, help="Publish messages to jetstream")
    @click.option(
        "--send-on",
        type=click.Choice(["eof", "newline"]),
        default="eof",
        help="When to send data from stdin: 'eof' (default) or 'newline'",
    )
    @click.option("-q", "--quiet", is_flag=True, help="Show just the output received")
    @click.option("--atomic", is_flag=True, help="Publish STDIN lines as one atomic batch")
    @click.option("--schedule-at", default="", help="Publish at this RFC3339 time")
    @click.option(
        "--schedule-after",
        "schedule_after_ns",
        default=0,
        type=DURATION,
        help="Publish after this long",
    )
    @click.option("--schedule-every", default="", help="Publish every interval (a duration)")
    @click.option("--schedule-cron", default="", help="Publish on a 6-field cron schedule")
    @click.option("--schedule-dest", default="", help="The subject the schedule publishes to")
    @click.option("--schedule-source", default="", help="Publish the last message of this subject")
    @click.option(
        "--schedule-ttl", default="", help="A TTL for the messages the schedule publishes"
    )
    @negatable(
        "templates",
        True,
        "Enables template functions in the body and subject (does not affect headers)",
    )
    def publish(
        subject: str,
        body: str | None,
        reply: str,
        headers: tuple[str, ...],
        count: int,
        sleep_ns: int,
        force_stdin: bool,
        jetstream: bool,
        send_on: str,
        quiet: bool,
        atomic: bool,
        schedule_at: str,
        schedule_after_ns: int,
        schedule_every: str,
        schedule_cron: str,
        schedule_dest: str,
        schedule_source: str,
        schedule_ttl: str,
        templates: bool,
    ) -> None:
        schedule = schedule_headers(
            schedule_at,
            schedule_after_ns,
            schedule_every,
            schedule_cron,
            schedule_dest,
            schedule_source,
            schedule_ttl,
        )
        if schedule:
            headers = (*headers, *(f"{k}:{v}" for k, v in schedule.items()))
            jetstream = True
        source = BodySource(body, force_stdin, send_on)
        if atomic:
            if not jetstream or send_on != "newline":
                raise CliError(
                    "atomic batch publishing requires JetStream and STDIN with --send-on=newline"
                )
            batch = AtomicBatchJob(
                MessageTemplate.checked(subject, headers, templates), source, quiet
            )
            run_async(batch.run())
            return
        job = PublishJob(
            template=MessageTemplate.checked(subject, headers, templates),
            source=source,
            reply=reply,
            count=max(count, 1),
            sleep_s=sleep_ns / NS_PER_S,
            jetstream=jetstream,
            quiet=quiet,
        )
        run_async(job.run())


class PublishJob:
    """One `nats pub` run: every body from the source, each published `count` times."""

    def __init__(
        self,
        template: MessageTemplate,
        source: BodySource,
        reply: str,
        count: int,
        sleep_s: float,
        jetstream: bool,
        quiet: bool,
    ) -> None:
        self.template = template
        self.source = source
        self.reply = reply
        self.count = count
        self.sleep_s = sleep_s
        self.jetstream = jetstream
        self.quiet = quiet
        self.progress = ProgressBar(count) if count > QUIET_ABOVE_COUNT else None

    def status(self, message: str) -> None:
        if not self.quiet and self.progress is None:
            log(message)

    async def run(self) -> None:
        async with connection() as nc:
            if self.source.uses_stdin and not self.quiet:
                log("Reading payload from STDIN")
            async for body in self.source.bodies():
                try:
                    await self.publish_body(nc, body)
                except CliError as exc:
                    if self.source.send_on != "newline" or not self.jetstream:
                        raise
                    log(f"Could not publish message: {exc}")
            if self.progress is not None:
                self.progress.finish()

    async def publish_body(self, nc: Client, body: bytes) -> None:
        for number in range(1, self.count + 1):
            started = time.monotonic()
            subject = self.template.subject_for(number)
            data = self.template.body_for(body, number)
            headers = self.template.headers_for(number)
            if self.jetstream:
                self.status(f"Published {len(data)} bytes to {go_quote(self.template.subject)}")
                await self.publish_jetstream(nc, subject, data, headers)
            else:
                await nc.publish(subject, data, reply=self.reply, headers=headers)
                if self.progress is None or number % 1000 == 0 or number == self.count:
                    # nats-py annotates flush's seconds as int; it waits for any float.
                    timeout_s = max(current_settings().timeout_s, 1)
                    await nc.flush(timeout=timeout_s)  # type: ignore[arg-type]
                self.status(f"Published {len(data)} bytes to {go_quote(self.template.subject)}")
            if self.progress is not None:
                self.progress.advance()
            if self.count > 1 and self.sleep_s > 0:
                spent = time.monotonic() - started if self.jetstream else 0.0
                await asyncio.sleep(max(self.sleep_s - spent, 0))

    async def publish_jetstream(
        self, nc: Client, subject: str, data: bytes, headers: dict[str, str] | None
    ) -> None:
        import nats.errors

        settings = current_settings()
        try:
            reply = await nc.request(subject, data, timeout=settings.timeout_s, headers=headers)
        except nats.errors.NoRespondersError as exc:
            raise CliError("nats: no responders available for request") from exc
        except nats.errors.TimeoutError as exc:
            raise CliError("nats: timeout") from exc
        if settings.trace:
            log(f"<<< {reply.data.decode(errors='replace')}")
        self.status(describe_ack(parse_ack(reply.data)))


def parse_ack(data: bytes) -> dict[str, Any]:
    """A JetStream PubAck, or CliError with the API error natscli would show."""
    try:
        ack = json.loads(data)
    except ValueError as exc:
        raise CliError(f"invalid publish acknowledgement: {exc}") from exc
    if not isinstance(ack, dict):
        raise CliError("invalid publish acknowledgement")
    error = ack.get("error")
    if isinstance(error, dict):
        code = error.get("err_code")
        description = error.get("description", "unknown error")
        raise CliError(f"{description} ({code})" if code else description)
    if "stream" not in ack:
        raise CliError("invalid publish acknowledgement: no stream")
    return ack


def describe_ack(ack: dict[str, Any]) -> str:
    """`Stored in Stream: ORDERS Sequence: 1,205` plus domain/duplicate/counter when present."""
    text = f"Stored in Stream: {ack['stream']} Sequence: {comma(ack.get('seq', 0))}"
    if ack.get("domain"):
        text += f' Domain: "{ack["domain"]}"'
    if ack.get("duplicate"):
        text += " Duplicate: true"
    if ack.get("val"):
        text += f" Counter Value: {ack['val']}"
    return text


def schedule_headers(
    at: str, after_ns: int, every: str, cron: str, dest: str, source: str, ttl: str
) -> dict[str, str]:
    """The `Nats-Schedule*` headers the `--schedule-*` flags ask for (none: no schedule)."""
    chosen = [p for p in (at, every, cron) if p] + ([after_ns] if after_ns else [])
    if not chosen and not (dest or source or ttl):
        return {}
    if len(chosen) != 1:
        raise CliError(
            "exactly one of --schedule-at, --schedule-after, --schedule-every or "
            "--schedule-cron is required"
        )
    if not dest:
        raise CliError("--schedule-dest is required when scheduling messages")
    if at:
        pattern = f"@at {at}"
    elif after_ns:
        due = time.time() + after_ns / NS_PER_S
        pattern = "@at " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due))
    elif every:
        pattern = f"@every {every}"
    else:
        pattern = cron
    headers = {"Nats-Schedule": pattern, "Nats-Schedule-Target": dest}
    if source:
        headers["Nats-Schedule-Source"] = source
    if ttl:
        headers["Nats-Schedule-TTL"] = ttl
    return headers


class AtomicBatchJob:
    """`nats pub --atomic`: every STDIN line one message of a single atomic batch, the last
    one committing it (a line is sent once the next one is read)."""

    def __init__(self, template: MessageTemplate, source: BodySource, quiet: bool) -> None:
        self.template = template
        self.source = source
        self.quiet = quiet

    async def run(self) -> None:
        import secrets
        import string

        import nats.errors

        alphabet = string.ascii_letters + string.digits
        batch_id = "".join(secrets.choice(alphabet) for _ in range(22))
        settings = current_settings()
        async with connection() as nc:
            if not self.quiet:
                log("Reading payload from STDIN")
            held: bytes | None = None
            number = 0
            async for line in self.source.bodies():
                if held is not None:
                    number += 1
                    await self._send(nc, held, batch_id, number, commit=False)
                held = line
            if held is None:
                raise CliError("no messages to publish in the batch")
            number += 1
            try:
                reply = await self._send(nc, held, batch_id, number, commit=True)
            except nats.errors.NoRespondersError as exc:
                raise CliError("nats: no responders available for request") from exc
            except nats.errors.TimeoutError as exc:
                raise CliError("nats: timeout") from exc
            if settings.trace and reply is not None:
                log(f"<<< {reply.decode(errors='replace')}")
            ack = parse_ack(reply or b"")
            if not self.quiet:
                log(
                    f"Wrote batch ID: {batch_id} Messages: {number} Sequence: {comma(ack.get('seq', 0))}"
                )

    async def _send(
        self, nc: Client, data: bytes, batch_id: str, number: int, commit: bool
    ) -> bytes | None:
        subject = self.template.subject_for(number)
        body = self.template.body_for(data, number)
        headers = dict(self.template.headers_for(number) or {})
        headers["Nats-Batch-Id"] = batch_id
        headers["Nats-Batch-Sequence"] = str(number)
        if not self.quiet:
            log(f"Adding {len(body)} bytes to batch on subject {go_quote(subject)}")
        if not commit:
            await nc.publish(subject, body, headers=headers)
            return None
        headers["Nats-Batch-Commit"] = "1"
        timeout = current_settings().timeout_s
        reply = await nc.request(subject, body, timeout=timeout, headers=headers)
        return bytes(reply.data)
