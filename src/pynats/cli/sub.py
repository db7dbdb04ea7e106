"""`nats subscribe` (alias `sub`): print messages from subjects, or from a JetStream stream.

    nats sub 'orders.>'                       every message, with headers and a counter
    nats sub orders.new --raw | jq .          bodies only, flushed one by one
    nats sub --stream ORDERS --since 1h       an ephemeral JetStream consumer, no acks
    nats sub x --count 10 --dump ./msgs       stop after 10, one JSON file per message

Messages are printed on stdout exactly as natscli prints them (messages.py); the start line
and flow-control chatter go to stderr. Ctrl-C ends the subscription with exit status 0.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pynats.cli.ui import humanize
from pynats.cli.ui.command import NatsGroup, negatable
from pynats.cli.ui.connect import connection, flush_ordered, js_request, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.messages import (
    JetStreamMeta,
    TranslateError,
    compact_body,
    dump_json,
    go_quote,
    header_lines,
    parse_js_ack,
    pretty_body,
    status_of,
    subject_matches,
    translate_body,
)
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import log, out, out_raw
from pynats.cli.ui.parse import parse_duration_ns
from pynats.gotime import NS_PER_S, format_duration, rfc3339

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

HEARTBEAT_NS = 5 * NS_PER_S


@dataclass
class SubOptions:
    """The flags of one `nats sub` run."""

    subjects: tuple[str, ...]
    queue: str = ""
    raw: bool = False
    headers_only: bool = False
    subjects_only: bool = False
    count: int = 0
    wait: float = 0.0
    dump: str = ""
    inbox: bool = False
    translate: str = ""
    ack: bool = False
    match_replies: bool = False
    timestamp: bool = False
    delta_time: bool = False
    ignore_subjects: tuple[str, ...] = ()
    stream: str = ""
    deliver_all: bool = False
    deliver_new: bool = False
    deliver_last: bool = False
    since: str = ""
    last_per_subject: bool = False
    start_sequence: int = 0
    terminate_at_end: bool = False

    @property
    def jetstream(self) -> bool:
        return bool(
            self.stream
            or self.deliver_all
            or self.deliver_new
            or self.deliver_last
            or self.since
            or self.last_per_subject
            or self.start_sequence
        )

    @property
    def quiet_start(self) -> bool:
        return (self.raw or bool(self.dump)) and not self.inbox

    def validate(self) -> None:
        if self.timestamp and self.delta_time:
            raise CliError("timestamp and delta-time flags are mutually exclusive")
        if self.terminate_at_end and not self.jetstream:
            raise CliError("--terminate-at-end is only supported for JetStream subscriptions")
        if self.jetstream:
            if self.inbox:
                raise CliError("generating inboxes is not compatible with JetStream subscriptions")
            if self.queue:
                raise CliError("queue group subscriptions are not supported with JetStream")
            if len(self.subjects) > 1:
                raise CliError("streams subscribe support only 1 subject")
        if self.dump == "-" and self.inbox:
            raise CliError(
                "generating inboxes is not compatible with dumping to stdout using null terminated strings"
            )


def register(root: NatsGroup) -> None:
    @root.command("subscribe", aliases=["sub"], help="Generic subscription client")
    @click.argument("subjects", nargs=-1, help="Subjects to subscribe to")
    @click.option("--queue", default="", help="Subscribe to a named queue group")
    @click.option("-r", "--raw", is_flag=True, help="Show the raw data received")
    @click.option("--headers-only", is_flag=True, help="Do not render any data, shows only headers")
    @click.option("--subjects-only", is_flag=True, help="Prints only the messages' subjects")
    @click.option(
        "--count",
        default=0,
        type=click.IntRange(min=0),
        help="Quit after receiving this many messages",
    )
    @click.option("--wait", default="0s", help="Stop after DURATION with no traffic")
    @click.option(
        "--dump",
        default="",
        metavar="DIRECTORY",
        help="Dump received messages to files, 1 file per message. Specify - for null terminated STDOUT for use with xargs -0",
    )
    @click.option("-i", "--inbox", is_flag=True, help="Subscribes to a generated inbox")
    @click.option(
        "--translate",
        default="",
        help="Translate the message data by running it through the given command before output",
    )
    @negatable("ack", False, "Acknowledge JetStream message that have the correct metadata")
    @click.option("--match-replies", is_flag=True, help="Match replies to requests")
    @click.option("-t", "--timestamp", is_flag=True, help="Show timestamp of received messages")
    @click.option(
        "-d", "--delta-time", is_flag=True, help="Show time since start of received messages"
    )
    @click.option(
        "-I",
        "--ignore-subject",
        "ignore_subjects",
        multiple=True,
        help="Subjects for which corresponding messages will be ignored and therefore not shown in the output",
    )
    @click.option(
        "--stream", default="", help="Subscribe to a specific stream (required JetStream)"
    )
    @click.option(
        "--all",
        "deliver_all",
        is_flag=True,
        help="Delivers all messages found in the Stream (requires JetStream)",
    )
    @click.option(
        "--new",
        "deliver_new",
        is_flag=True,
        help="Delivers only future messages (requires JetStream)",
    )
    @click.option(
        "--last",
        "deliver_last",
        is_flag=True,
        help="Delivers the most recent and all future messages (requires JetStream)",
    )
    @click.option(
        "--since",
        default="",
        metavar="DURATION",
        help="Delivers messages received since a duration (requires JetStream)",
    )
    @click.option(
        "--last-per-subject",
        is_flag=True,
        help="Deliver the most recent messages for each subject in the Stream (requires JetStream)",
    )
    @click.option(
        "--start-sequence",
        default=0,
        type=click.IntRange(min=0),
        metavar="SEQUENCE",
        help="Starts at a specific Stream sequence (requires JetStream)",
    )
    @click.option(
        "-T",
        "--terminate-at-end",
        is_flag=True,
        help="Stops the subscription after receiving the last message in the stream (requires JetStream)",
    )
    def subscribe(
        subjects: tuple[str, ...], wait: str, ignore_subjects: tuple[str, ...], **flags: Any
    ) -> None:
        try:
            wait_s = parse_duration_ns(wait) / NS_PER_S
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        ignored = tuple(s.strip() for item in ignore_subjects for s in item.split(",") if s.strip())
        options = SubOptions(subjects=subjects, wait=wait_s, ignore_subjects=ignored, **flags)
        if not options.subjects and not options.inbox and not options.stream:
            out("No subjects or --stream flag provided.")
            raise click.UsageError("subject is required")
        options.validate()
        run_async(Subscriber(options).run())


class Subscriber:
    """One subscription run: subscribe, print each message, stop on count/wait/end/Ctrl-C."""

    def __init__(self, options: SubOptions) -> None:
        self.options = options
        self.counter = 0
        self.started_ns = time.monotonic_ns()
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.pending_requests: dict[str, Any] = {}
        self.consumer: tuple[str, str] | None = None  # (stream, name) of our ephemeral consumer
        self.stream_name = ""
        self.initial_pending: int | None = None

    async def enqueue(self, msg: Msg) -> None:
        await self.queue.put(("msg", msg))

    async def enqueue_reply(self, msg: Msg) -> None:
        await self.queue.put(("reply", msg))

    async def run(self) -> None:
        async with connection() as nc:
            try:
                if self.options.jetstream:
                    await self.subscribe_jetstream(nc)
                else:
                    await self.subscribe_core(nc)
                await self.receive(nc)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()  # Ctrl-C: natscli ends a subscription quietly, status 0
            finally:
                await self.delete_consumer(nc)

    # -- subscribing ------------------------------------------------------------------------

    async def subscribe_core(self, nc: Client) -> None:
        options = self.options
        subjects = list(options.subjects) or [nc.new_inbox()]
        for subject in subjects:
            await nc.subscribe(subject, queue=options.queue, cb=self.enqueue)
        if options.match_replies:
            prefix = current_settings().inbox_prefix or "_INBOX"
            await nc.subscribe(f"{prefix}.>", cb=self.enqueue_reply)
        await flush_ordered(nc)
        if options.match_replies:
            log(f"Matching replies with inbox prefix {prefix}.>")
        if not options.quiet_start:
            if options.ack:
                log(
                    f"Subscribing on {', '.join(subjects)} with acknowledgement of JetStream messages"
                )
            else:
                log(f"Subscribing on {', '.join(subjects)}")

    async def subscribe_jetstream(self, nc: Client) -> None:
        options = self.options
        subject = options.subjects[0] if options.subjects else ""
        self.stream_name = options.stream or await self.stream_for_subject(nc, subject)
        if not subject:
            info = await js_request(nc, f"STREAM.INFO.{self.stream_name}")
            shown = ", ".join(info.get("config", {}).get("subjects") or [])
        else:
            shown = subject
        config, description = self.consumer_config(nc.new_inbox(), subject)
        await nc.subscribe(config["deliver_subject"], cb=self.enqueue)
        await flush_ordered(nc)
        created = await js_request(
            nc,
            f"CONSUMER.CREATE.{self.stream_name}",
            {"stream_name": self.stream_name, "config": config},
        )
        self.consumer = (self.stream_name, created.get("name", ""))
        self.initial_pending = int(created.get("num_pending", 0) or 0)
        if not options.quiet_start:
            log(f"Subscribing to subject {shown} {description}")

    async def stream_for_subject(self, nc: Client, subject: str) -> str:
        reply = await js_request(nc, "STREAM.NAMES", {"subject": subject})
        names = reply.get("streams") or []
        if len(names) != 1:
            raise CliError(f"no stream found with subject: {subject}")
        return str(names[0])

    def consumer_config(self, deliver_subject: str, subject: str) -> tuple[dict[str, Any], str]:
        """An ephemeral push consumer without acks, and the words of the start line."""
        options = self.options
        config: dict[str, Any] = {
            "deliver_subject": deliver_subject,
            "ack_policy": "none",
            "replay_policy": "instant",
            "flow_control": True,
            "idle_heartbeat": HEARTBEAT_NS,
            "headers_only": options.headers_only,
        }
        if subject:
            config["filter_subject"] = subject
        if options.start_sequence:
            config.update(deliver_policy="by_start_sequence", opt_start_seq=options.start_sequence)
            return config, f"starting at sequence {options.start_sequence}"
        if options.deliver_last:
            config["deliver_policy"] = "last"
            return config, "from last received message"
        if options.deliver_all:
            config["deliver_policy"] = "all"
            return config, "from first received message"
        if options.deliver_new:
            config["deliver_policy"] = "new"
            return config, "for new messages"
        if options.since:
            try:
                since_ns = parse_duration_ns(options.since)
            except ValueError as exc:
                raise CliError(str(exc)) from exc
            config.update(
                deliver_policy="by_start_time", opt_start_time=rfc3339(time.time_ns() - since_ns)
            )
            return config, f"since {format_duration(since_ns)}"
        if options.last_per_subject:
            config["deliver_policy"] = "last_per_subject"
            config.setdefault("filter_subject", ">")
            return config, "for last message per subject"
        config["deliver_policy"] = "all"
        return config, "from first received message"

    async def delete_consumer(self, nc: Client) -> None:
        if self.consumer is None or not self.consumer[1] or nc.is_closed:
            return
        stream, name = self.consumer
        try:
            await asyncio.wait_for(js_request(nc, f"CONSUMER.DELETE.{stream}.{name}"), timeout=1)
        except (TimeoutError, CliError):
            pass  # the server removes an idle ephemeral consumer by itself

    # -- receiving ---------------------------------------------------------------------------

    async def receive(self, nc: Client) -> None:
        options = self.options
        if options.terminate_at_end and self.initial_pending == 0:
            return
        while True:
            try:
                if options.wait > 0:
                    kind, msg = await asyncio.wait_for(self.queue.get(), options.wait)
                else:
                    kind, msg = await self.queue.get()
            except TimeoutError:
                return
            if kind == "reply":
                if self.handle_reply(msg):
                    return
                continue
            status = status_of(msg)
            if status:
                await self.handle_status(nc, msg, status)
                continue
            if any(subject_matches(s, msg.subject) for s in options.ignore_subjects):
                continue
            self.counter += 1
            meta = parse_js_ack(msg.reply)
            if options.match_replies and msg.reply and meta is None:
                self.pending_requests[msg.reply] = (self.counter, msg)
                continue
            self.show(msg, meta, self.counter)
            if options.ack and meta is not None and not options.jetstream:
                await msg.respond(b"")
            if options.count and self.counter >= options.count:
                return
            if options.terminate_at_end and meta is not None and meta.pending == 0:
                return

    def handle_reply(self, reply: Any) -> bool:
        """Print a matched request/reply pair; True when --count is satisfied."""
        entry = self.pending_requests.pop(reply.subject, None)
        if entry is None:
            return False
        number, request = entry
        self.show(request, None, number)
        if not self.options.raw and not self.options.dump:
            out(f"[#{number}] Matched reply on {go_quote(reply.subject)}")
        self.show_body(reply)
        return (
            bool(self.options.count) and number >= self.options.count and not self.pending_requests
        )

    async def handle_status(self, nc: Client, msg: Msg, status: str) -> None:
        """Answer flow control and stalled-consumer heartbeats; nothing is printed on stdout."""
        if status != "100":
            return
        if msg.reply:
            await msg.respond(b"")
            log("Responding to Flow Control message")
            return
        stalled = (msg.headers or {}).get("Nats-Consumer-Stalled")
        if stalled:
            await nc.publish(stalled, b"")
            log("Resuming stalled consumer")

    # -- printing ----------------------------------------------------------------------------

    def show(self, msg: Msg, meta: JetStreamMeta | None, number: int) -> None:
        options = self.options
        if options.dump:
            self.dump(msg, meta, number)
            return
        if options.raw:
            self.show_body(msg)
            return
        out(self.header_line(msg, meta, number))
        if options.subjects_only:
            return
        self.show_body(msg)

    def header_line(self, msg: Msg, meta: JetStreamMeta | None, number: int) -> str:
        stamp = self.stamp()
        if meta is not None and self.options.jetstream:
            moment = humanize.utc_time(meta.timestamp_ns)
            return (
                f"[#{number}]{stamp} Received JetStream message: stream: {meta.stream} seq: "
                f"{humanize.comma(meta.stream_seq)} / pending: {humanize.comma(meta.pending)} / "
                f"subject: {msg.subject} / time: {humanize.local_time(moment)}"
            )
        line = f"[#{number}]{stamp} Received on {go_quote(msg.subject)}"
        if msg.reply:
            line += f" with reply {go_quote(msg.reply)}"
        return line

    def stamp(self) -> str:
        if self.options.timestamp:
            now = dt.datetime.now()
            return f" @ {now:%b} {now.day:>2} {now:%H:%M:%S}.{now.microsecond:06d}"
        if self.options.delta_time:
            return f" @ {format_duration(time.monotonic_ns() - self.started_ns)}"
        return ""

    def show_body(self, msg: Msg) -> None:
        options = self.options
        data = msg.data
        if options.translate and data:
            try:
                data = translate_body(data, options.translate, msg.subject, self.stream_name)
            except TranslateError as exc:
                out(
                    f"{go_quote(msg.data.decode(errors='replace'))}\nError while translating msg body: {exc}\n"
                )
                return
        if options.raw:
            out_raw(compact_body(data))
            return
        lines = header_lines(msg.headers)
        if lines:
            out("\n".join(lines) + "\n")
        if not options.headers_only:
            out_raw(pretty_body(data))

    def dump(self, msg: Msg, meta: JetStreamMeta | None, number: int) -> None:
        document = dump_json(msg.subject, msg.reply, msg.headers, msg.data)
        if self.options.dump == "-":
            out_raw(document.encode() + b"\0")
            return
        directory = Path(self.options.dump)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        name = meta.stream_seq if meta is not None else number
        target = directory / f"{name}.json"
        handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(handle, "w") as stream:
            stream.write(document)
        if number % 100 == 0:
            out_raw(b".")
