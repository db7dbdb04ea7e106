"""`nats server` (aliases `srv`, `sys`, `system`): look at servers through the system account.

    nats server ping            every server answering $SYS.REQ.SERVER.PING, with its rtt
    nats server list            the `Server Overview` table (`--json`: the raw stats messages)
    nats server info [SERVER]   one server's varz as an info screen
    nats server report connections   every connection of every server (report.py)
    nats server report accounts      connections and traffic per account (report_accounts.py)
    nats server report jetstream     every server's JetStream usage, the meta group
                                     (report_jetstream.py)
    nats server run [NAME]      a local development pynats server with contexts (run.py)
    nats server check ...       Nagios-style health checks (check.py, check_result.py)
    nats server request ...     one monitoring document per server through $SYS (request.py)
    nats server passwd          bcrypt a password for the server's users (passwd.py)
    nats server mappings        try a subject mapping locally (mapping.py)

These requests are answered only for users of the system account; anyone else gets a 503 or
nothing, which is reported as natscli does (cli.md §11).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from dataclasses import dataclass
from typing import Any

import click

from pynats.cli.server import (
    check,
    mapping,
    passwd,
    report_accounts,
    report_jetstream,
    request,
    run,
)
from pynats.cli.server.report import NO_PRIVILEGES
from pynats.cli.server.report import register as register_report
from pynats.cli.ui import humanize
from pynats.cli.ui.columns import Columns
from pynats.cli.ui.command import NatsGroup, json_flag
from pynats.cli.ui.connect import connection, run_async, traced_request
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.messages import status_of
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import log, out, print_json
from pynats.cli.ui.table import Table
from pynats.gotime import MILLISECOND, format_duration

PING_SUBJECT = "$SYS.REQ.SERVER.PING"
LIST_QUIET_PERIOD_S = 0.3
SORT_KEYS = (
    "name",
    "cluster",
    "conns",
    "conn",
    "subs",
    "sub",
    "routes",
    "route",
    "gws",
    "gw",
    "mem",
    "cpu",
    "slow",
    "uptime",
    "rtt",
)


@dataclass
class PingReply:
    """One server's answer to $SYS.REQ.SERVER.PING and how long it took to arrive."""

    stats: dict[str, Any]
    rtt: float

    @property
    def server(self) -> dict[str, Any]:
        return self.stats.get("server") or {}

    @property
    def statsz(self) -> dict[str, Any]:
        return self.stats.get("statsz") or {}


def register(root: NatsGroup) -> None:
    @root.group("server", aliases=["srv", "sys", "system"], help="Server information")
    def server() -> None:
        """Server information."""

    @server.command("ping", help="Ping all servers")
    @click.argument(
        "expect",
        required=False,
        default=0,
        type=click.IntRange(min=0),
        help="How many servers to expect",
    )
    @click.option("--id", "show_id", is_flag=True, help="Include the Server ID in the output")
    def ping(expect: int, show_id: bool) -> None:
        run_async(ping_servers(expect, show_id))

    @server.command("list", aliases=["ls"], help="List known servers")
    @click.argument(
        "expect",
        required=False,
        default=0,
        type=click.IntRange(min=0),
        help="How many servers to expect",
    )
    @json_flag()
    @click.option(
        "--sort",
        "sort_key",
        default="rtt",
        type=click.Choice(SORT_KEYS),
        help="Sort servers by a specific key",
    )
    @click.option("-R", "--reverse", is_flag=True, help="Reverse sort servers")
    @click.option("--compact/--no-compact", default=True, help="Compact server names")
    def list_servers(
        expect: int, as_json: bool, sort_key: str, reverse: bool, compact: bool
    ) -> None:
        replies = run_async(collect_pings(expect))
        if not replies:
            raise CliError(NO_PRIVILEGES)
        if as_json:
            print_json([r.stats for r in replies])
            return
        out(render_server_list(sort_replies(replies, sort_key, reverse), compact), end="")

    @server.command("info", aliases=["i"], help="Show information about a single server")
    @click.argument(
        "server_id",
        required=False,
        default="",
        metavar="SERVER",
        help="Server ID or Name to inspect",
    )
    def info(server_id: str) -> None:
        varz = run_async(fetch_varz(server_id))
        out(render_server_info(varz).render(), end="")

    report = register_report(server)
    report_accounts.register(report)
    report_jetstream.register(report)
    run.register(server)
    check.register(server)
    request.register(server)
    passwd.register(server)
    mapping.register(server)


# -- ping ---------------------------------------------------------------------------------------


async def ping_servers(expect: int, show_id: bool) -> None:
    """Print each reply as it arrives, then natscli's `---- ping statistics ----` summary."""
    times_ms: list[float] = []

    def show(reply: PingReply) -> None:
        times_ms.append(float(int(reply.rtt * 1000)))
        name = str(reply.server.get("name", ""))
        line = f"{name:<60} rtt={format_duration(humanize.seconds_to_ns(reply.rtt))}"
        out(f"{reply.server.get('id', '')} {line}" if show_id else line)

    try:
        replies = await collect_pings(expect, on_reply=show, adaptive=False)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        replies = []
    expected = expect or (_active_servers(replies[0]) if replies else 0)
    out()
    out("---- ping statistics ----")
    if times_ms:
        average = sum(times_ms) / len(times_ms)
        out(
            f"{len(times_ms)} replies max: {max(times_ms):.2f} min: {min(times_ms):.2f} avg: {average:.2f}"
        )
    else:
        out("no responses received")
    if expected and expected != len(replies):
        out()
        out(f"Missing {expected - len(replies)} server(s)")


def _active_servers(reply: PingReply) -> int:
    return int(reply.statsz.get("active_servers") or 0)


async def collect_pings(
    expect: int, on_reply: Any = None, adaptive: bool = True
) -> list[PingReply]:
    """Publish the ping and gather replies until `expect` arrived or the time is up.

    Without `expect`, the first reply's count of active servers is expected (ping), or, with
    `adaptive` (list), collection stops once LIST_QUIET_PERIOD_S passes without a new reply.
    """
    settings = current_settings()
    replies: list[PingReply] = []
    async with connection() as nc:
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        if settings.trace:
            log(f">>> {PING_SUBJECT}")
        started = time.monotonic()
        await nc.publish(PING_SUBJECT, b"", reply=inbox)
        deadline = started + settings.timeout_s
        wanted = expect
        while True:
            remaining = deadline - time.monotonic()
            if adaptive and not expect and replies:
                remaining = min(remaining, LIST_QUIET_PERIOD_S)
            if remaining <= 0:
                break
            try:
                msg = await sub.next_msg(timeout=remaining)
            except Exception:  # nats-py raises its own TimeoutError subclass here
                break
            status = status_of(msg)
            if status:
                # natscli prints this on stdout and exits 1, without the `nats: error:` prefix
                out(
                    f"{status} status from {PING_SUBJECT}, ensure a system account is used with appropriate permissions"
                )
                raise click.exceptions.Exit(1)
            try:
                stats = json.loads(msg.data)
            except ValueError as exc:
                raise CliError(f"Could not decode response: {exc}") from exc
            reply = PingReply(stats, time.monotonic() - started)
            replies.append(reply)
            if settings.trace:
                log(f"<<< {msg.data.decode(errors='replace')}")
            if on_reply is not None:
                on_reply(reply)
            if not wanted and not adaptive and len(replies) == 1:
                wanted = _active_servers(reply)
            if wanted and len(replies) >= wanted:
                break
    return replies


# -- list ---------------------------------------------------------------------------------------


def sort_replies(replies: list[PingReply], key: str, reverse: bool) -> list[PingReply]:
    """natscli's order: descending by the key (ascending for names and clusters), -R flips it."""
    extractors = {
        "name": lambda r: str(r.server.get("name", "")),
        "cluster": lambda r: (str(r.server.get("cluster", "")), str(r.server.get("name", ""))),
        "conns": lambda r: r.statsz.get("connections", 0),
        "subs": lambda r: r.statsz.get("subscriptions", 0),
        "routes": lambda r: len(r.statsz.get("routes") or []),
        "gws": lambda r: len(r.statsz.get("gateways") or []),
        "mem": lambda r: r.statsz.get("mem", 0),
        "cpu": lambda r: r.statsz.get("cpu", 0),
        "slow": lambda r: r.statsz.get("slow_consumers", 0),
        "uptime": lambda r: _uptime_ns(r),
        "rtt": lambda r: r.rtt,
    }
    aliases = {"conn": "conns", "sub": "subs", "route": "routes", "gw": "gws"}
    key = aliases.get(key, key)
    ascending = key in ("name", "cluster")
    return sorted(replies, key=extractors[key], reverse=not ascending ^ reverse)


def _uptime_ns(reply: PingReply) -> int:
    start = humanize.parse_go_time(str(reply.statsz.get("start", "")))
    now = humanize.parse_go_time(str(reply.server.get("time", ""))) or dt.datetime.now(dt.UTC)
    if start is None:
        return 0
    return humanize.ns_between(now, start)


def render_server_list(replies: list[PingReply], compact: bool) -> str:
    """The `Server Overview` table, then `Cluster Overview` when servers are clustered."""
    names = [str(r.server.get("name", "")) for r in replies]
    hosts = [str(r.server.get("host", "")) for r in replies]
    if compact:
        names, hosts = humanize.compact_names(names), humanize.compact_names(hosts)
    table = Table("Server Overview")
    table.add_headers(
        "Name",
        "Cluster",
        "Host",
        "Version",
        "JS",
        "Conns",
        "Subs",
        "Routes",
        "GWs",
        "Mem",
        "CPU %",
        "Cores",
        "Slow",
        "Uptime",
        "RTT",
    )
    clusters: dict[str, dict[str, Any]] = {}
    first = replies[0]
    versions_differ = gateways_differ = False
    for index, reply in enumerate(replies):
        server, stats = reply.server, reply.statsz
        versions_differ |= server.get("ver") != first.server.get("ver")
        gateways_differ |= len(stats.get("gateways") or []) != len(
            first.statsz.get("gateways") or []
        )
        cluster = server.get("cluster") or ""
        if cluster:
            entry = clusters.setdefault(
                cluster, {"nodes": 0, "gw_out": 0, "gw_in": 0, "conns": 0, "routes": set()}
            )
            entry["nodes"] += 1
            entry["conns"] += stats.get("connections", 0)
            entry["gw_out"] += len(stats.get("gateways") or [])
            entry["gw_in"] += sum(
                g.get("inbound_connections", 0) for g in stats.get("gateways") or []
            )
            entry["routes"].add(len(stats.get("routes") or []))
        js = "no"
        if server.get("jetstream"):
            js = server.get("domain") or "yes"
        table.add_row(
            names[index],
            cluster,
            hosts[index],
            server.get("ver", ""),
            js,
            humanize.comma(stats.get("connections", 0)),
            humanize.comma(stats.get("subscriptions", 0)),
            len(stats.get("routes") or []),
            len(stats.get("gateways") or []),
            humanize.ibytes(stats.get("mem", 0)),
            f"{stats.get('cpu', 0):.0f}",
            stats.get("cores", 0),
            _slow_text(stats),
            humanize.human_duration(_uptime_ns(reply)),
            humanize.human_duration(round(reply.rtt * 1000) * MILLISECOND),
        )
    routes_differ = any(len(c["routes"]) > 1 for c in clusters.values())
    table.add_footer(
        "",
        len(clusters),
        len(replies),
        "X" if versions_differ else "",
        sum(1 for r in replies if r.server.get("jetstream")),
        humanize.comma(sum(r.statsz.get("connections", 0) for r in replies)),
        humanize.comma(sum(r.statsz.get("subscriptions", 0) for r in replies)),
        "X" if routes_differ else "",
        "X" if gateways_differ else "",
        humanize.ibytes(sum(r.statsz.get("mem", 0) for r in replies)),
        "",
        "",
        humanize.comma(sum(r.statsz.get("slow_consumers", 0) for r in replies)),
        "",
        "",
    )
    text = table.render()
    if clusters:
        overview = Table("Cluster Overview")
        overview.add_headers(
            "Cluster", "Node Count", "Outgoing Gateways", "Incoming Gateways", "Connections"
        )
        for name, entry in sorted(clusters.items(), key=lambda item: item[1]["conns"]):
            overview.add_row(name, entry["nodes"], entry["gw_out"], entry["gw_in"], entry["conns"])
        overview.add_footer(
            "",
            sum(c["nodes"] for c in clusters.values()),
            sum(c["gw_out"] for c in clusters.values()),
            sum(c["gw_in"] for c in clusters.values()),
            sum(c["conns"] for c in clusters.values()),
        )
        text += "\n" + overview.render()
    return text


def _slow_text(stats: dict[str, Any]) -> str:
    total = humanize.comma(stats.get("slow_consumers", 0))
    detail = stats.get("slow_consumer_stats") or {}
    parts = [
        f"{label}: {humanize.comma(detail[key])}"
        for key, label in (("clients", "c"), ("routes", "r"), ("gateways", "g"), ("leafs", "l"))
        if detail.get(key)
    ]
    if len(parts) == 1 and detail.get("clients"):
        parts = []
    return f"{total} ({' '.join(parts)})" if parts else total


# -- info ---------------------------------------------------------------------------------------


async def fetch_varz(server: str) -> dict[str, Any]:
    """The varz of one server, chosen by its 56-character ID or by its name (default: any)."""
    if len(server) == 56 and server.upper() == server:
        subject, body = f"$SYS.REQ.SERVER.{server}.VARZ", {}
    else:
        subject, body = "$SYS.REQ.SERVER.PING.VARZ", ({"server_name": server} if server else {})
    async with connection() as nc:
        try:
            reply = await traced_request(nc, subject, body)
        except CliError as exc:
            raise CliError(NO_PRIVILEGES) from exc
    if "error" in reply:
        raise CliError(f"invalid response received: {reply['error']}")
    if "data" not in reply:
        raise CliError(f"no data received in response: {reply}")
    return reply["data"]


def render_server_info(varz: dict[str, Any]) -> Columns:
    """The `Server information for NAME (ID)` screen."""
    server_id, name = varz.get("server_id", ""), varz.get("server_name", "")
    heading = (
        f"Server information for {server_id}"
        if not name or name == server_id
        else f"Server information for {name} ({server_id})"
    )
    screen = Columns(heading)
    start = humanize.parse_go_time(str(varz.get("start", "")))
    now = humanize.parse_go_time(str(varz.get("now", ""))) or dt.datetime.now(dt.UTC)

    screen.add_section("Process Details")
    screen.add_row("Version", varz.get("version", ""))
    screen.add_row("Git Commit", varz.get("git_commit", ""))
    screen.add_row("Go Version", varz.get("go", ""))
    screen.add_row("Start Time", start or varz.get("start", ""))
    loaded = humanize.parse_go_time(str(varz.get("config_load_time", "")))
    screen.add_row_if("Configuration Load Time", loaded, loaded is not None)
    screen.add_row_if_not_empty("Configuration Digest", varz.get("config_digest", ""))
    screen.add_row(
        "Uptime",
        humanize.human_duration(humanize.ns_between(now, start))
        if start
        else varz.get("uptime", ""),
    )

    screen.add_section("Connection Details")
    screen.add_row("Auth Required", bool(varz.get("auth_required")))
    screen.add_row("TLS Required", bool(varz.get("tls_required")))
    host = f"{varz.get('host', '')}:{varz.get('port', '')}"
    screen.add_row("Host", f"{host} ({varz['ip']})" if varz.get("ip") else host)
    screen.add_rows("Client URLs", varz.get("connect_urls") or [])
    screen.add_rows("WebSocket URLs", (varz.get("websocket") or {}).get("connect_urls") or [])

    jetstream = varz.get("jetstream") or {}
    config = jetstream.get("config") or {}
    if config.get("store_dir"):
        stats = jetstream.get("stats") or {}
        api = stats.get("api") or {}
        screen.add_section("JetStream")
        screen.add_row("Domain", config.get("domain", ""))
        screen.add_row_if("API Support Level", api.get("level", 0), bool(api.get("level")))
        screen.add_row("Storage Directory", config.get("store_dir", ""))
        screen.add_row("Active Accounts", stats.get("accounts", 0))
        screen.add_row("Memory In Use", humanize.ibytes(stats.get("memory", 0)))
        screen.add_row("File In Use", humanize.ibytes(stats.get("storage", 0)))
        screen.add_row("API Requests", api.get("total", 0))
        screen.add_row("API Errors", api.get("errors", 0))
        if config.get("sync_always"):
            screen.add_row("Always sync writes to disk", True)
        elif config.get("sync_interval"):
            screen.add_row(
                "Write sync Frequency", humanize.human_duration(int(config["sync_interval"]))
            )
        screen.add_row("Maximum Memory Storage", humanize.ibytes(config.get("max_memory", 0)))
        screen.add_row("Maximum File Storage", humanize.ibytes(config.get("max_storage", 0)))
        screen.add_row_if_not_empty("Unique Tag", config.get("unique_tag", ""))
        screen.add_row("Cluster Message Compression", bool(config.get("compress_ok")))
        screen.add_row("Strict API Parsing", bool(config.get("strict")))

    screen.add_section("Limits")
    screen.add_row("Maximum Connections", varz.get("max_connections", 0))
    screen.add_row("Maximum Subscriptions", varz.get("max_subscriptions", 0))
    screen.add_row("Maximum Payload", humanize.ibytes(varz.get("max_payload", 0)))
    screen.add_row(
        "TLS Timeout",
        humanize.human_duration(humanize.seconds_to_ns(float(varz.get("tls_timeout", 0)))),
    )
    screen.add_row(
        "Write Deadline",
        humanize.human_duration(
            humanize.round_duration(int(varz.get("write_deadline", 0)), MILLISECOND)
        ),
    )

    screen.add_section("Statistics")
    screen.add_row("CPU Cores", f"{varz.get('cores', 0)} {float(varz.get('cpu', 0)):.2f}%")
    screen.add_row_if("GOMAXPROCS", varz.get("gomaxprocs", 0), bool(varz.get("gomaxprocs")))
    screen.add_row("Memory", humanize.ibytes(varz.get("mem", 0)))
    screen.add_row_if(
        "GOMEMLIMIT", humanize.ibytes(varz.get("gomemlimit", 0)), bool(varz.get("gomemlimit"))
    )
    screen.add_row("Connections", varz.get("connections", 0))
    screen.add_row("Subscriptions", varz.get("subscriptions", 0))
    screen.add_row(
        "Messages",
        f"{humanize.comma(varz.get('in_msgs', 0))} in {humanize.comma(varz.get('out_msgs', 0))} out",
    )
    screen.add_row(
        "Bytes",
        f"{humanize.ibytes(varz.get('in_bytes', 0))} in {humanize.ibytes(varz.get('out_bytes', 0))} out",
    )
    screen.add_row("Slow Consumers", varz.get("slow_consumers", 0))

    cluster = varz.get("cluster") or {}
    if cluster.get("urls"):
        screen.add_section("Cluster")
        screen.add_row("Name", cluster.get("name", ""))
        screen.add_row_if("Tags", ", ".join(varz.get("tags") or []), bool(varz.get("tags")))
        screen.add_row("Host", f"{cluster.get('addr', '')}:{cluster.get('cluster_port', '')}")
        screen.add_rows("URLs", cluster.get("urls") or [])
    gateway = varz.get("gateway") or {}
    if gateway.get("gateways"):
        screen.add_section("Super Cluster")
        screen.add_row("Name", gateway.get("name", ""))
        screen.add_row("Host", f"{gateway.get('host', '')}:{gateway.get('port', '')}")
        screen.add_rows("Clusters", sorted(g.get("name", "") for g in gateway["gateways"]))
    return screen
