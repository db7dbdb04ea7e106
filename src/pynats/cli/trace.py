"""`nats trace`: send one message with `Nats-Trace-Dest` and draw what the servers report.

    nats trace orders.new
    Tracing message route to subject orders.new

    Client "NATS CLI Version 0.1" cid:5 server:"n1" version:"2.11.0"
    --C Client "app" cid:7 subject:"orders.>"

    Legend: Client: --C Router: --> Gateway: ==> Leafnode: ~~> JetStream: --J Error: --X

    Egress Count:

      Client: 1

The message goes with `Nats-Trace-Only: true` unless `--deliver`, and asks for a snappy
compressed trace (`Accept-Encoding`, as natscli does; gzip is understood too). The events of each server (ADR-41, server/msgtrace.py)
are collected on an inbox until every server a copy went to (`hop`) has reported or the global
`--timeout` passes; a server's events are drawn under the egress that led to it, indented.
`-T` puts the time since the first event before each line; the global `--trace` prints each
event document as it arrives (`>>> {...}`).
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import TYPE_CHECKING, Any

import click

from pynats.cli.ui.columns import Columns
from pynats.cli.ui.command import NatsGroup
from pynats.cli.ui.connect import connection, flush_ordered, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.messages import go_quote
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import out
from pynats.cli.ui.parse import parse_header
from pynats.gotime import format_duration, parse_rfc3339

if TYPE_CHECKING:
    from nats.aio.client import Client

CLIENT, ROUTER, GATEWAY, SYSTEM, LEAF, JETSTREAM, ACCOUNT = range(7)
KIND_NAMES = {
    CLIENT: "Client",
    ROUTER: "Router",
    GATEWAY: "Gateway",
    SYSTEM: "System",
    LEAF: "Leafnode",
    JETSTREAM: "JetStream",
    ACCOUNT: "Account",
}
ARROWS = {CLIENT: "--C", JETSTREAM: "--J", ROUTER: "-->", GATEWAY: "==>", LEAF: "~~>"}
CID_FORMATS = {CLIENT: "cid:%d", ROUTER: "rid:%d", GATEWAY: "gid:%d", LEAF: "lid:%d"}
PROPAGATION_WAIT_S = 0.25  # natscli's pause for the subscription to reach every server


def register(root: NatsGroup) -> None:
    @root.command("trace", help="Trace message delivery within an NATS network")
    @click.argument("subject", help="The subject to publish to")
    @click.argument("payload", required=False, default="", help="The message body to send")
    @click.option("--deliver", is_flag=True, help="Deliver the message to the final destination")
    @click.option("-T", "--timestamp", "show_ts", is_flag=True, help="Show event timestamps")
    @click.option(
        "-H",
        "--header",
        "headers",
        multiple=True,
        help="Adds headers to the trace message using K:V format",
    )
    def trace(
        subject: str, payload: str, deliver: bool, show_ts: bool, headers: tuple[str, ...]
    ) -> None:
        parsed: dict[str, str] = {}
        for item in headers:
            try:
                key, value = parse_header(item)
            except ValueError as exc:
                raise CliError(str(exc)) from None
            parsed[key] = value
        run_async(TraceJob(subject, payload, deliver, show_ts, parsed).run())


class TraceJob:
    """One `nats trace` run."""

    def __init__(
        self, subject: str, payload: str, deliver: bool, show_ts: bool, headers: dict[str, str]
    ) -> None:
        self.subject = subject
        self.payload = payload
        self.deliver = deliver
        self.show_ts = show_ts
        self.headers = headers
        self.egress: dict[str, int] = {}

    async def run(self) -> None:
        settings = current_settings()
        async with connection() as nc:
            if not _at_least(nc, (2, 11, 0)):
                raise CliError("tracing messages require NATS Server 2.11")
            deliver = "with delivery to the final destination" if self.deliver else ""
            out(f"Tracing message route to subject {self.subject} {deliver}")
            out()
            origin, timed_out = await self._collect(nc, settings.timeout_s, settings.trace)
        if origin is None:
            raise CliError("nats: timeout" if timed_out else "no trace received")
        ingress = _first(origin, "in")
        start = (ingress or {}).get("ts") or origin.get("server", {}).get("time", "")
        self._render(origin, start, 0)
        out()
        legend = " ".join(
            f"{KIND_NAMES[kind]}: {ARROWS[kind]}" for kind in (CLIENT, ROUTER, GATEWAY, LEAF)
        )
        out(f"Legend: {legend} JetStream: {ARROWS[JETSTREAM]} Error: --X")
        out()
        if self.egress:
            screen = Columns("Egress Count:")
            for name, count in sorted(self.egress.items(), key=lambda kv: (-kv[1], kv[0])):
                screen.add_row(name, count)
            out(screen.render(), end="")
        streams = self.egress.get(KIND_NAMES[JETSTREAM], 0)
        if streams > 1:
            out(f"WARNING: The message was received by {streams} streams")

    async def _collect(
        self, nc: Client, timeout_s: float, show_raw: bool
    ) -> tuple[dict[str, Any] | None, bool]:
        import nats.errors

        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await flush_ordered(nc)
        await asyncio.sleep(PROPAGATION_WAIT_S)
        headers = dict(self.headers)
        headers["Accept-Encoding"] = "snappy"
        headers["Nats-Trace-Dest"] = inbox
        if not self.deliver:
            headers["Nats-Trace-Only"] = "true"
        await nc.publish(self.subject, self.payload.encode(), headers=headers)
        origin: dict[str, Any] | None = None
        by_hop: dict[str, dict[str, Any]] = {}
        timed_out = False
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=timeout_s)
                except nats.errors.TimeoutError:
                    timed_out = True
                    break
                data = msg.data
                encoding = (msg.headers or {}).get("Content-Encoding")
                try:
                    if encoding == "gzip":
                        data = gzip.decompress(data)
                    elif encoding == "snappy":
                        data = snappy_unframe(data)
                except (OSError, ValueError, IndexError):
                    continue
                if show_raw:
                    out(f">>> {data.decode(errors='replace')}")
                try:
                    event = json.loads(data)
                except ValueError:
                    continue
                ingress = _first(event, "in")
                if ingress is None:
                    continue
                if ingress.get("kind") == CLIENT:
                    origin = event
                else:
                    hop = (
                        event.get("request", {}).get("header", {}).get("Nats-Trace-Hop") or [""]
                    )[0]
                    if hop:
                        by_hop[hop] = event
                if origin is not None and _complete(origin, by_hop):
                    break
        finally:
            await sub.unsubscribe()
        if origin is not None:
            _link(origin, by_hop)
        return origin, timed_out

    # -- drawing ------------------------------------------------------------------------

    def _render(self, event: dict[str, Any], start: str, depth: int) -> None:
        prefix = " " * (depth * 4)
        lines: list[str] = []
        events = event.get("events") or []
        ingress = _first(event, "in")
        if ingress is not None:
            lines += self._ingress(event, ingress, start)
        for item in events:
            if item.get("type") == "sm":
                lines.append(
                    self._ts(f"    Mapping subject:{go_quote(item.get('to', ''))}", start, item)
                )
        for item in events:
            if item.get("type") == "si":
                text = "    Service Import from:{} to:{} account:{}".format(
                    go_quote(item.get("from", "")),
                    go_quote(item.get("to", "")),
                    go_quote(item.get("acc", "")),
                )
                lines.append(self._ts(text, start, item))
        for item in events:
            if item.get("type") == "se":
                text = "    Stream Export subject:{} account:{}".format(
                    go_quote(item.get("to", "")), go_quote(item.get("acc", ""))
                )
                lines.append(self._ts(text, start, item))
        js = _first(event, "js")
        if js is not None:
            lines += self._jetstream(js, start)
        for line in lines:
            out(prefix + line)
        egresses = [item for item in events if item.get("type") == "eg"]
        if (
            not egresses
            and ingress is not None
            and ingress.get("kind") == CLIENT
            and not ingress.get("error")
        ):
            out(prefix + "--X No active interest")
        for egress in egresses:
            for line in self._egress(egress, start):
                out(prefix + line)
            link = egress.get("_link")
            if link is not None:
                self._render(link, egress.get("ts", ""), depth + 1)

    def _ingress(self, event: dict[str, Any], ingress: dict[str, Any], start: str) -> list[str]:
        server = event.get("server") or {}
        if ingress.get("error") and not server.get("id"):
            return [f"  !!! Ingress Error: {ingress['error']}"]
        kind = int(ingress.get("kind", 0))
        parts = [_who(kind, ingress)]
        if server.get("cluster") and kind in (GATEWAY, CLIENT):
            parts.append(f"cluster:{go_quote(server['cluster'])}")
        parts.append(f"server:{go_quote(server.get('name', ''))}")
        parts.append(f"version:{go_quote(server.get('ver', ''))}")
        lines = [" ".join(parts)]
        if ingress.get("error"):
            lines.append(f"--X Error: {ingress['error']}")
        return [self._ts(line, start, ingress) for line in lines]

    def _egress(self, egress: dict[str, Any], start: str) -> list[str]:
        kind = int(egress.get("kind", 0))
        parts = [ARROWS.get(kind, ""), _who(kind, egress)]
        if egress.get("acc"):
            parts.append(f"account:{go_quote(egress['acc'])}")
        if egress.get("sub"):
            parts.append(f"subject:{go_quote(egress['sub'])}")
        if egress.get("queue"):
            parts.append(f"queue:{go_quote(egress['queue'])}")
        lines = [" ".join(parts)]
        if egress.get("error"):
            lines.append(f"  --X Error: {egress['error']}")
        self._count(kind)
        return [self._ts(line, start, egress) for line in lines]

    def _jetstream(self, js: dict[str, Any], start: str) -> list[str]:
        if js.get("error") and not js.get("stream"):
            return [f"!!! Expected JetStream event: {js['error']}"]
        action = "no interest" if js.get("nointerest") else "stored"
        lines = [
            "{} JetStream action:{} stream:{} subject:{}".format(
                ARROWS[JETSTREAM],
                go_quote(action),
                go_quote(js.get("stream", "")),
                go_quote(js.get("subject", "")),
            )
        ]
        if js.get("error"):
            lines.append(f"--X Error: {js['error']}")
        self._count(JETSTREAM)
        return [self._ts(line, start, js) for line in lines]

    def _count(self, kind: int) -> None:
        name = KIND_NAMES.get(kind, "Unknown Kind")
        self.egress[name] = self.egress.get(name, 0) + 1

    def _ts(self, line: str, start: str, item: dict[str, Any]) -> str:
        if not self.show_ts:
            return line
        since = _since_ns(start, str(item.get("ts", "")))
        text = "Skew" if since < 0 else format_duration(since)
        return f"[{text}] {line}"


def _who(kind: int, item: dict[str, Any]) -> str:
    cid = CID_FORMATS.get(kind, "id:%d") % int(item.get("cid", 0))
    name = item.get("name", "")
    kind_name = KIND_NAMES.get(kind, "Unknown Kind")
    if name:
        return f"{kind_name} {go_quote(name)} {cid}"
    return f"{kind_name} {cid}"


def _first(event: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for item in event.get("events") or []:
        if item.get("type") == kind:
            return item
    return None


def _complete(event: dict[str, Any], by_hop: dict[str, dict[str, Any]]) -> bool:
    """Has every server a copy went to reported (recursively)?"""
    if not event.get("hops"):
        return True
    for item in event.get("events") or []:
        hop = item.get("hop") if item.get("type") == "eg" else None
        if not hop:
            continue
        child = by_hop.get(hop)
        if child is None or not _complete(child, by_hop):
            return False
    return True


def _link(event: dict[str, Any], by_hop: dict[str, dict[str, Any]]) -> None:
    for item in event.get("events") or []:
        if item.get("type") != "eg" or item.get("kind") == CLIENT:
            continue
        child = by_hop.pop(item.get("hop", ""), None)
        if child is not None:
            item["_link"] = child
            _link(child, by_hop)


def _since_ns(start: str, ts: str) -> int:
    """Go's `ets.Sub(ots).Round(time.Microsecond)`; 0 when either is missing."""
    try:
        a, b = parse_rfc3339(start), parse_rfc3339(ts)
    except ValueError:
        return 0
    diff = b - a
    whole, rest = divmod(abs(diff), 1000)
    rounded = (whole + (1 if rest >= 500 else 0)) * 1000
    return rounded if diff >= 0 else -rounded


def _at_least(nc: Client, version: tuple[int, int, int]) -> bool:
    text = str(getattr(nc, "connected_server_version", "") or "")
    numbers: list[int] = []
    for part in text.split("-")[0].split(".")[:3]:
        try:
            numbers.append(int(part))
        except ValueError:
            return True
    while len(numbers) < 3:
        numbers.append(0)
    return tuple(numbers) >= version


# -- snappy (what natscli asks the servers for) ----------------------------------------------


class SnappyError(ValueError):
    """A snappy stream that does not decode."""


def snappy_unframe(data: bytes) -> bytes:
    """The snappy framing format (stream identifier, compressed and uncompressed chunks,
    skippable chunks) decoded; CRCs are not checked."""
    out: list[bytes] = []
    pos = 0
    while pos + 4 <= len(data):
        kind = data[pos]
        size = int.from_bytes(data[pos + 1 : pos + 4], "little")
        body = data[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if kind == 0x00:
            out.append(snappy_block(body[4:]))
        elif kind == 0x01:
            out.append(body[4:])
        elif kind < 0x80 and kind != 0xFF:
            raise SnappyError(f"unskippable snappy chunk type {kind:#x}")
    return b"".join(out)


def snappy_block(data: bytes) -> bytes:
    """One raw snappy block: a varint length, then literals and back-references."""
    length = shift = pos = 0
    while True:
        byte = data[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    out = bytearray()
    end = len(data)
    while pos < end:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            size = tag >> 2
            if size >= 60:
                extra = size - 59
                size = int.from_bytes(data[pos : pos + extra], "little")
                pos += extra
            size += 1
            out += data[pos : pos + size]
            pos += size
            continue
        if kind == 1:
            size = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        elif kind == 2:
            size = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + 2], "little")
            pos += 2
        else:
            size = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        if not 0 < offset <= len(out):
            raise SnappyError("snappy back-reference out of range")
        start = len(out) - offset
        for i in range(size):  # may overlap what it writes
            out.append(out[start + i])
    if len(out) != length:
        raise SnappyError("snappy block length mismatch")
    return bytes(out)
