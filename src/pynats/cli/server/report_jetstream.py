"""`nats server report jetstream` (aliases `jsz`, `js`): every server's JetStream usage.

How natscli asks: `$SYS.REQ.SERVER.PING.JSZ` with JszEventOptions (with --account: that
account, its streams and consumers, up to 10000), collected from as many servers as the
connected one knows (or the LIMIT argument). Output: the `JetStream Summary` table (one row per
server, the meta leader's name marked `*`, a Domain column when any server has a domain, a
Pending column when the connected server is 2.10.21 or newer, totals in the footer), a blank
line, then, when the servers form a JetStream cluster and no --host/--cluster/--tags filter was
given, the `RAFT Meta Group Information` table, or a warning when no meta leader answered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from pynats.cli.server.report import (
    NO_PRIVILEGES,
    active_servers,
    collect_responses,
    event_filter,
    server_filter_options,
    servers_limit_argument,
)
from pynats.cli.ui import humanize
from pynats.cli.ui.connect import connection, run_async, server_info
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.output import out
from pynats.cli.ui.table import Table

if TYPE_CHECKING:
    from nats.aio.client import Client

JSZ_SUBJECT = "$SYS.REQ.SERVER.PING.JSZ"
JSZ_SORTS = (
    "name",
    "cluster",
    "streams",
    "consumers",
    "msgs",
    "mbytes",
    "bytes",
    "mem",
    "file",
    "store",
    "api",
    "err",
)
PENDING_SINCE = (2, 10, 21)


def register(report: click.Group) -> None:
    """Hang `jetstream` under `nats server report`."""

    @report.command("jetstream", aliases=["jsz", "js"], help="Report on JetStream activity")
    @servers_limit_argument
    @click.option("--account", default="", help="Produce the report for a specific account")
    @click.option(
        "--sort",
        "sort_key",
        default="cluster",
        type=click.Choice(JSZ_SORTS),
        help="Sort by a specific property (name,cluster,streams,consumers,msgs,mbytes,mem,file,"
        "api,err",
    )
    @click.option("--compact/--no-compact", default=True, help="Compact server names")
    @server_filter_options
    @click.option("-R", "--reverse", is_flag=True, help="Reverse sort connections")
    def jetstream(
        limit: int,
        account: str,
        sort_key: str,
        compact: bool,
        host: str,
        cluster: str,
        tags: tuple[str, ...],
        reverse: bool,
    ) -> None:
        request: dict[str, Any] = {}
        if account:
            request.update(account=account, streams=True, consumer=True, limit=10000)
        request.update(event_filter(host, cluster, tags))
        replies, version = run_async(gather_jsz(request, limit))
        if not replies:
            raise CliError(NO_PRIVILEGES)
        filtered = bool(host or cluster or tags)
        text = render_jetstream(
            sort_replies(replies, sort_key, reverse),
            account,
            compact,
            show_pending=version_at_least(version, PENDING_SINCE),
            filtered=filtered,
        )
        out(text, end="")


async def gather_jsz(request: dict[str, Any], wait_for: int) -> tuple[list[dict[str, Any]], str]:
    """Every server's JSZ answer, and the connected server's version."""
    async with connection() as nc:
        if wait_for == 0:
            wait_for = await active_servers(nc)
        answers = await collect_responses(nc, JSZ_SUBJECT, request, wait_for)
        version = _server_version(nc)
    replies = []
    for data in answers:
        try:
            reply = json.loads(data)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        if isinstance(reply, dict):
            replies.append(reply)
    return replies, version


def _server_version(nc: Client) -> str:
    return str(server_info(nc).get("version", ""))


def version_at_least(version: str, wanted: tuple[int, int, int]) -> bool:
    """natscli's ServerMinVersion: the connected server's major.minor.patch."""
    numbers = [int(n) for n in re.findall(r"\d+", version)[:3]]
    numbers += [0] * (3 - len(numbers))
    return tuple(numbers) >= wanted


def _server(reply: dict[str, Any]) -> dict[str, Any]:
    return reply.get("server") or {}


def _data(reply: dict[str, Any]) -> dict[str, Any]:
    return reply.get("data") or {}


def _sort_key(name: str) -> Callable[[dict[str, Any]], Any]:
    def server_name(r: dict[str, Any]) -> str:
        return str(_server(r).get("name", ""))

    def api(r: dict[str, Any], field: str) -> int:
        return int((_data(r).get("api") or {}).get(field, 0))

    keys: dict[str, Callable[[dict[str, Any]], Any]] = {
        "name": lambda r: server_name(r),
        "streams": lambda r: (int(_data(r).get("streams", 0)), server_name(r)),
        "consumers": lambda r: (int(_data(r).get("consumers", 0)), server_name(r)),
        "msgs": lambda r: int(_data(r).get("messages", 0)),
        "mbytes": lambda r: int(_data(r).get("bytes", 0)),
        "bytes": lambda r: int(_data(r).get("bytes", 0)),
        "mem": lambda r: int(_data(r).get("memory", 0)),
        "file": lambda r: int(_data(r).get("storage", 0)),
        "store": lambda r: int(_data(r).get("storage", 0)),
        "api": lambda r: api(r, "total"),
        "err": lambda r: api(r, "errors"),
    }
    return keys.get(name, lambda r: (str(_server(r).get("cluster", "")), server_name(r)))


def sort_replies(replies: list[dict[str, Any]], key: str, reverse: bool) -> list[dict[str, Any]]:
    """Ascending by the key (cluster then name by default); -R flips it."""
    return sorted(replies, key=_sort_key(key), reverse=reverse)


def _error_column(errors: int, total: int) -> str:
    text = humanize.comma(errors)
    if total > 0 and errors > 0:
        text += " / " + humanize.float_comma(errors * 100 / total) + "%"
    return text


def render_jetstream(
    replies: list[dict[str, Any]],
    account: str,
    compact: bool,
    show_pending: bool,
    filtered: bool,
) -> str:
    """The summary table, a blank line, and the meta group table or warning when clustered."""
    names = [str(_server(r).get("name", "")) for r in replies]
    shown = humanize.compact_names(names) if compact else names
    show_domain = any((_data(r).get("config") or {}).get("domain") for r in replies)
    title = f"JetStream Summary for Account {account}" if account else "JetStream Summary"
    table = Table(title)
    headers = ["Server", "Cluster"]
    if show_domain:
        headers.append("Domain")
    headers += ["Streams", "Consumers", "Messages", "Bytes", "Memory", "File", "API Req", "API Err"]
    if show_pending:
        headers.append("Pending")
    table.add_headers(*headers)

    totals = dict.fromkeys(("streams", "consumers", "msgs", "bytes", "mem", "file", "api"), 0)
    totals.update(errors=0, pending=0)
    meta: dict[str, Any] | None = None
    expected_size = 0
    for index, reply in enumerate(replies):
        data = _data(reply)
        server = _server(reply)
        stats: dict[str, Any] = data
        details = data.get("account_details") or []
        per_account = bool(account) and len(details) == 1
        if per_account:
            stats = details[0]
            streams = details[0].get("stream_detail") or []
            row_streams = len(streams)
            row_consumers = sum(
                int((s.get("state") or {}).get("consumer_count", 0)) for s in streams
            )
            row_msgs = sum(int((s.get("state") or {}).get("messages", 0)) for s in streams)
            row_bytes = int(stats.get("memory", 0)) + int(stats.get("storage", 0))
        else:
            row_streams = int(data.get("streams", 0))
            row_consumers = int(data.get("consumers", 0))
            row_msgs = int(data.get("messages", 0))
            row_bytes = int(data.get("bytes", 0))
        api = stats.get("api") or {}
        api_total, api_errors = int(api.get("total", 0)), int(api.get("errors", 0))
        memory, storage = int(stats.get("memory", 0)), int(stats.get("storage", 0))

        leader = ""
        pending = 0
        cluster_meta = data.get("meta_cluster")
        if isinstance(cluster_meta, dict):
            if cluster_meta.get("leader") == server.get("name"):
                leader = "*"
                meta = cluster_meta
            expected_size = max(expected_size, int(cluster_meta.get("cluster_size", 0)))
            pending = int(cluster_meta.get("pending", 0))

        for key, number in (
            ("streams", row_streams),
            ("consumers", row_consumers),
            ("msgs", row_msgs),
            ("bytes", row_bytes),
            ("mem", memory),
            ("file", storage),
            ("api", api_total),
            ("errors", api_errors),
            ("pending", pending),
        ):
            totals[key] += number

        row: list[Any] = [shown[index] + leader, str(server.get("cluster", ""))]
        if show_domain:
            row.append(str((data.get("config") or {}).get("domain", "")))
        row += [
            humanize.comma(row_streams),
            humanize.comma(row_consumers),
            humanize.comma(row_msgs),
            humanize.ibytes(row_bytes),
            humanize.ibytes(memory),
            humanize.ibytes(storage),
            humanize.comma(api_total),
            _error_column(api_errors, api_total),
        ]
        if show_pending:
            row.append(pending)
        table.add_row(*row)

    footer: list[Any] = ["", ""]
    if show_domain:
        footer.append("")
    footer += [
        humanize.comma(totals["streams"]),
        humanize.comma(totals["consumers"]),
        humanize.comma(totals["msgs"]),
        humanize.ibytes(totals["bytes"]),
        humanize.ibytes(totals["mem"]),
        humanize.ibytes(totals["file"]),
        humanize.comma(totals["api"]),
        humanize.comma(totals["errors"]),
    ]
    if show_pending:
        footer.append(totals["pending"])
    table.add_footer(*footer)
    text = table.render() + "\n"

    if filtered or expected_size == 0:
        return text
    if meta is None:
        return text + (
            f"\nWARNING: No cluster meta leader found. The cluster expects {expected_size} "
            f"nodes but only {len(replies)} responded. JetStream operation requires at least "
            f"{expected_size // 2 + 1} up nodes.\n"
        )
    return text + render_meta_group(meta, compact)


def render_meta_group(meta: dict[str, Any], compact: bool) -> str:
    """`RAFT Meta Group Information`: the replicas and the leader, by name."""
    leader_name = str(meta.get("leader", ""))
    peers = [p for p in meta.get("replicas") or [] if isinstance(p, dict)]
    peers.append({"name": leader_name, "current": True, "offline": False, "active": 0, "lag": 0})
    peers.sort(key=lambda p: str(p.get("name", "")))
    names = [str(p.get("name", "")) for p in peers]
    shown = humanize.compact_names(names) if compact else names
    table = Table("RAFT Meta Group Information")
    table.add_headers("Connection Name", "ID", "Leader", "Current", "Online", "Active", "Lag")
    for index, peer in enumerate(peers):
        is_leader = peer.get("name") == leader_name
        table.add_row(
            shown[index],
            str(meta.get("peer", "") if is_leader else peer.get("peer", "")),
            "yes" if is_leader else "",
            "true" if peer.get("current") else "false",
            "false" if peer.get("offline") else "true",
            humanize.human_duration(int(peer.get("active", 0))),
            humanize.comma(int(peer.get("lag", 0))),
        )
    return table.render()
