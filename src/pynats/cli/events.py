"""`nats events` (`event`, `e`): server and JetStream advisories as they happen.

What is listened to, as natscli does:
* server advisories (on by default, `--no-srv-advisory` turns them off), from the system
  account: `$SYS.ACCOUNT.*.CONNECT`, `$SYS.ACCOUNT.*.DISCONNECT` and
  `$SYS.SERVER.*.CLIENT.AUTH.ERR` (an authentication failure is a client_disconnect event);
* `--js-advisory`: `$JS.EVENT.ADVISORY.>` of the connected account (the prefix `$JS.EVENT`
  is replaced by the context's JetStream event prefix when it has one);
* `--js-metric`: `$JS.EVENT.METRIC.>`;
* `--all` all of these; `--subjects S` (repeatable) any other subject carrying typed events.

Each event is printed by its `type` (jsm.go's schema types) in the chosen format:
* default: a block per event, after an empty line (`[12:01:02] [ID] Client Connection` ...);
* `--short`: one line (`12:01:02 [Connection] user: app cid: 7 in account APP`);
* `--json`: the event's JSON as the server sent it, one per line (no `Listening` lines);
* `--cloudevent`: the event wrapped in a CloudEvents v1 document.
`--filter RE` keeps the events whose JSON matches the regular expression (case-insensitive).
Times are the event's own (`timestamp`, UTC as servers send it).

The types drawn with natscli's layouts: client_connect, client_disconnect, api_audit,
stream_action and consumer_action. Other known types (`io.nats...`) get a generic line or
block naming the type and showing the JSON (natscli has a layout for several of them); a
message without a type is shown as natscli does, `Event error: unknown event schema` and the
body indented.
"""

from __future__ import annotations

import asyncio
import json
import re
import string
from collections.abc import Callable
from typing import Any

import click
from nats.aio.msg import Msg

from pynats.cli.ui import humanize
from pynats.cli.ui.command import NatsGroup, negatable
from pynats.cli.ui.connect import connection, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.options import current_settings, flag_value
from pynats.cli.ui.output import go_json, log, out
from pynats.gotime import format_duration

SCHEMAS_REPO = "https://raw.githubusercontent.com/nats-io/jsm.go/master/schemas"
UNKNOWN = "io.nats.unknown_message"
SERVER_SUBJECTS = (
    ("Client Connection", "$SYS.ACCOUNT.*.CONNECT"),
    ("Client Disconnection", "$SYS.ACCOUNT.*.DISCONNECT"),
    ("Authentication Errors", "$SYS.SERVER.*.CLIENT.AUTH.ERR"),
)


def register(root: NatsGroup) -> None:
    @root.command("events", aliases=["event", "e"], help="Show Advisories and Events")
    @click.option("-a", "--all", "show_all", is_flag=True, help="Show all events")
    @click.option("-j", "--json", "as_json", is_flag=True, help="Produce JSON output")
    @click.option("--cloudevent", is_flag=True, help="Produce CloudEvents v1 output")
    @click.option("--short", is_flag=True, help="Short event format")
    @click.option(
        "--filter",
        "body_filter",
        default=".",
        help="Filter across the entire event using regular expressions",
    )
    @negatable("js-metric", False, "Shows JetStream metric events (false)")
    @negatable("js-advisory", False, "Shows advisory events (false)")
    @negatable("srv-advisory", True, "Shows NATS Server advisories (true)")
    @click.option(
        "--subjects",
        multiple=True,
        metavar="SUBJECTS",
        help="Show Advisories and Metrics received on specific subjects",
    )
    def events(
        show_all: bool,
        as_json: bool,
        cloudevent: bool,
        short: bool,
        body_filter: str,
        js_metric: bool,
        js_advisory: bool,
        srv_advisory: bool,
        subjects: tuple[str, ...],
    ) -> None:
        try:
            pattern = re.compile(body_filter.upper())
        except re.error as exc:
            raise CliError(f"invalid body regular expression: {exc}") from exc
        if not (show_all or js_advisory or js_metric or srv_advisory or subjects):
            raise CliError("no events were chosen")
        listeners: list[tuple[str, str]] = []
        prefix = event_prefix()
        if js_advisory or show_all:
            listeners.append(("Advisories", f"{prefix}.ADVISORY.>"))
        if js_metric or show_all:
            listeners.append(("Metrics", f"{prefix}.METRIC.>"))
        if srv_advisory or show_all:
            listeners += [(f"{what} events", subject) for what, subject in SERVER_SUBJECTS]
        listeners += [("latency samples", subject) for subject in subjects]
        printer = EventPrinter(
            pattern, json=as_json or cloudevent, cloudevent=cloudevent, short=short
        )
        run_async(listen(listeners, printer))


def event_prefix() -> str:
    """`$JS.EVENT`, or the context's JetStream event prefix (jsm.go's EventSubject)."""
    settings = current_settings()
    prefix = flag_value("js_event_prefix") or (
        settings.context.get("jetstream_event_prefix") if settings.context is not None else ""
    )
    return str(prefix).rstrip(".") if prefix else "$JS.EVENT"


async def listen(listeners: list[tuple[str, str]], printer: EventPrinter) -> None:
    async with connection() as nc:
        listening = asyncio.Event()

        async def handle(msg: Msg) -> None:
            await listening.wait()  # events come after the Listening lines
            printer.handle(msg.subject, msg.data)

        for _, subject in listeners:
            await nc.subscribe(subject, cb=handle)
        await nc.flush()  # the server knows them all before we say we listen
        if not printer.json:
            for what, subject in listeners:
                out(f"Listening for {what} on {subject}")
        listening.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # Ctrl-C ends the listening quietly, status 0, as natscli


class EventPrinter:
    """Turns one received event into what natscli prints for it."""

    def __init__(self, pattern: re.Pattern[str], *, json: bool, cloudevent: bool, short: bool):
        self.pattern = pattern
        self.json = json
        self.cloudevent = cloudevent
        self.short = short

    def handle(self, subject: str, data: bytes) -> None:
        text = data.decode(errors="replace")
        if not self.pattern.search(text.upper()):
            return
        if self.json and not self.cloudevent:
            out(text)
            return
        try:
            out(self.render(subject, text))
        except EventError as exc:
            out(f"Event error: {exc}\n")
            out(left_pad(text, 10))

    def render(self, subject: str, text: str) -> str:
        try:
            event = json.loads(text)
        except ValueError as exc:
            raise EventError(f"parsing failed: {exc}") from exc
        if not isinstance(event, dict):
            raise EventError("parsing failed: not a JSON object")
        kind = str(event.get("type") or event.get("schema") or UNKNOWN)
        if current_settings().trace:
            log(f"Received {kind} event on subject {subject}")
        if kind == UNKNOWN:
            raise EventError("unknown event schema")
        if self.cloudevent:
            return go_json(cloud_event(kind, event), indent=2)
        layouts = COMPACT if self.short else EXTENDED
        layout = layouts.get(kind)
        if layout is None:
            return generic(kind, event, self.short)
        return layout(Event(event))


class EventError(Exception):
    """Why an event could not be shown (printed as `Event error: ...`)."""


def left_pad(text: str, indent: int) -> str:
    return "\n".join(" " * indent + line for line in text.split("\n"))


def cloud_event(kind: str, event: dict[str, Any]) -> dict[str, Any]:
    """jsm.go's ToCloudEventV1: the event as `data` of a CloudEvents v1 document."""
    parts = kind.split(".")
    document = {
        "type": kind,
        "time": event.get("timestamp", "0001-01-01T00:00:00Z"),
        "id": event.get("id", ""),
        "source": f"urn:nats:{parts[2] if len(parts) > 2 else ''}",
        "dataschema": "",
        "specversion": "1.0",
        "subject": parts[3] if len(parts) > 3 else "",
        "data": event,
    }
    if kind.startswith("io.nats."):
        path = kind.removeprefix("io.nats.").replace(".", "/")
        document["dataschema"] = f"{SCHEMAS_REPO}/{path}.json"
    return document


# -- layouts ----------------------------------------------------------------------------------


class Event:
    """Field access on an event's JSON, with Go's zero values for what is missing."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def get(self, *path: str) -> Any:
        value: Any = self.data
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def text(self, *path: str) -> str:
        value = self.get(*path)
        return "" if value is None else str(value)

    def number(self, *path: str) -> int:
        try:
            return int(self.get(*path) or 0)
        except (TypeError, ValueError):
            return 0

    @property
    def short_time(self) -> str:
        """The event's time of day as written in its timestamp (Go's 15:04:05)."""
        match = re.search(r"T(\d\d:\d\d:\d\d)", self.text("timestamp"))
        return match.group(1) if match else "00:00:00"


def title(text: str) -> str:
    return string.capwords(text, " ") if text else ""


def rtt_text(rtt: Any) -> str:
    """The client's RTT: servers send a Go duration in nanoseconds (missing = 0s)."""
    if isinstance(rtt, str):
        return rtt
    try:
        return format_duration(int(rtt or 0))
    except (TypeError, ValueError):
        return str(rtt)


def _user(e: Event) -> str:
    user = e.text("client", "user")
    return f"user: {user}" if user else ""


def connect_short(e: Event) -> str:
    return (
        f"{e.short_time} [Connection] {_user(e)} cid: {e.number('client', 'id')} "
        f"in account {e.text('client', 'acc')}"
    )


def disconnect_short(e: Event) -> str:
    return (
        f"{e.short_time} [Disconnection] {_user(e)} cid: {e.number('client', 'id')} "
        f"in account {e.text('client', 'acc')}: {e.text('reason')}"
    )


def _client_block(e: Event, width: int) -> list[str]:
    """The Client: lines of connect and disconnect blocks, labels right-aligned to `width`."""

    def line(label: str, value: str) -> str:
        return f"{label:>{width}}: {value}"

    lines = [line("ID", str(e.number("client", "id")))]
    if e.text("client", "user"):
        lines.append(line("User", e.text("client", "user")))
    if e.text("client", "name"):
        lines.append(line("Name", e.text("client", "name")))
    lines.append(line("Account", e.text("client", "acc")))
    return lines


def connect_extended(e: Event) -> str:
    lines = ["", f"[{e.short_time}] [{e.text('id')}] Client Connection", ""]
    lines.append(f"   Server: {e.text('server', 'name')}")
    if e.text("server", "cluster"):
        lines.append(f"  Cluster: {e.text('server', 'cluster')}")
    lines += ["", "   Client:", *_client_block(e, 14)]
    lang = e.text("client", "lang") or "Unknown"
    lines.append(f"       Library Version: {e.text('client', 'ver')}  Language: {lang}")
    if e.text("client", "host"):
        lines.append(f"          Host: {e.text('client', 'host')}")
    return "\n".join(lines)


def disconnect_extended(e: Event) -> str:
    lines = ["", f"[{e.short_time}] [{e.text('id')}] Client Disconnection", ""]
    if e.text("reason"):
        lines.append(f"    Reason: {e.text('reason')}")
    lines.append(f"    Server: {e.text('server', 'name')}")
    if e.text("server", "cluster"):
        lines.append(f"   Cluster: {e.text('server', 'cluster')}")
    lines += ["", "   Client:", *_client_block(e, 19)]
    lang = e.text("client", "lang") or "Unknown"
    lines.append(f"    Library Version: {e.text('client', 'ver')}  Language: {lang}")
    if e.text("client", "host"):
        lines.append(f"               Host: {e.text('client', 'host')}")
    if e.text("client", "jwt"):
        lines.append(f"         Issuer Key: {e.text('client', 'issuer_key')}")
        lines.append(f"           Name Tag: {e.text('client', 'name_tag')}")
        tags = e.get("client", "tags") or []
        if tags:
            lines.append(f"               Tags: {', '.join(str(t) for t in tags)}")
    if e.text("client", "kind"):
        lines.append(f"        Client Kind: {e.text('client', 'kind')}")
    if e.text("client", "client_type"):
        lines.append(f"        Client Type: {e.text('client', 'client_type')}")

    def traffic(key: str) -> str:
        return f"{e.number(key, 'msgs')} messages ({humanize.ibytes(e.number(key, 'bytes'))})"

    lines += [
        "",
        "   Stats:",
        f"                  RTT: {rtt_text(e.get('client', 'rtt'))}",
        f"      Client Received: {traffic('received')}",
        f"     Client Published: {traffic('sent')}",
    ]
    return "\n".join(lines)


def api_audit_short(e: Event) -> str:
    text = f"{e.short_time} [JS API] {e.text('subject')}"
    if e.text("client", "user"):
        text += f" {e.text('client', 'user')} @"
    if e.text("client", "acc"):
        text += f" {e.text('client', 'acc')}"
    return text


def api_audit_extended(e: Event) -> str:
    lines = [
        "",
        f"[{e.short_time}] [{e.text('id')}] JetStream API Access",
        "",
        f"      Server: {e.text('server')}",
        f"     Subject: {e.text('subject')}",
        "      Client:",
    ]
    if e.text("client", "user"):
        user, account = e.text("client", "user"), e.text("client", "acc")
        lines.append(f"                      User: {user} Account: {account}")
    lines.append(f"                      Host: {e.text('client', 'host')}")
    lines.append(f"                        ID: {e.number('client', 'id')}")
    if e.text("client", "name"):
        lines.append(f"                      Name: {e.text('client', 'name')}")
    lang = e.text("client", "lang") or "Unknown"
    lines.append(f"           Library Version: {e.text('client', 'ver')}  Language: {lang}")
    lines += ["", "    Request:", ""]
    request = e.text("request")
    lines.append(left_pad(request, 10) if request else "          Empty Request")
    lines += ["", "    Response:", "", left_pad(e.text("response"), 10)]
    return "\n".join(lines)


def stream_action_short(e: Event) -> str:
    return f"{e.short_time} [Stream {title(e.text('action'))}] {e.text('stream')}"


def stream_action_extended(e: Event) -> str:
    lines = [
        "",
        f"[{e.short_time}] [{e.text('id')}] Stream {title(e.text('action'))} Action",
        "",
        f"        Stream: {e.text('stream')}",
    ]
    if e.text("template"):
        lines.append(f"      Template: {e.text('template')}")
    return "\n".join(lines)


def consumer_action_short(e: Event) -> str:
    return (
        f"{e.short_time} [Consumer {title(e.text('action'))}] "
        f"{e.text('stream')} > {e.text('consumer')}"
    )


def consumer_action_extended(e: Event) -> str:
    return "\n".join(
        [
            "",
            f"[{e.short_time}] [{e.text('id')}] Consumer {title(e.text('action'))} Action",
            "",
            f"        Stream: {e.text('stream')}",
            f"      Consumer: {e.text('consumer')}",
        ]
    )


def generic(kind: str, event: dict[str, Any], short: bool) -> str:
    """A type without a layout here: its name, and in the long form its JSON."""
    e = Event(event)
    name = kind.rsplit(".", 1)[-1]
    if short:
        return f"{e.short_time} [{name}] {kind}"
    body = left_pad(go_json(event, indent=2), 4)
    return f"\n[{e.short_time}] [{e.text('id')}] {kind}\n\n{body}"


Layout = Callable[[Event], str]
COMPACT: dict[str, Layout] = {
    "io.nats.server.advisory.v1.client_connect": connect_short,
    "io.nats.server.advisory.v1.client_disconnect": disconnect_short,
    "io.nats.jetstream.advisory.v1.api_audit": api_audit_short,
    "io.nats.jetstream.advisory.v1.stream_action": stream_action_short,
    "io.nats.jetstream.advisory.v1.consumer_action": consumer_action_short,
}
EXTENDED: dict[str, Layout] = {
    "io.nats.server.advisory.v1.client_connect": connect_extended,
    "io.nats.server.advisory.v1.client_disconnect": disconnect_extended,
    "io.nats.jetstream.advisory.v1.api_audit": api_audit_extended,
    "io.nats.jetstream.advisory.v1.stream_action": stream_action_extended,
    "io.nats.jetstream.advisory.v1.consumer_action": consumer_action_extended,
}
