"""`nats server report connections` (aliases `conn`, `connz`, `conns`): every connection of
every server, as natscli gathers and draws them.

How natscli asks (server_report_command.go, DoReqAsync): one `$SYS.REQ.SERVER.PING` to learn
how many servers the cluster has (the first answer's `active_servers`), then
`$SYS.REQ.SERVER.PING.CONNZ` with ConnzEventOptions, collected until that many servers
answered or the timeout passed; pages of 1024 connections are fetched again while a server
has more (natscli steps its offset by 1025). Output: a blank line, the table
`Top <n> Connections out of <total> by <sort>`, and `Connections per server`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from pynats.cli.ui import humanize
from pynats.cli.ui.command import json_flag
from pynats.cli.ui.connect import connection, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.gather import NoResponders, gather_replies
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import out, print_json
from pynats.cli.ui.table import Table

if TYPE_CHECKING:
    from nats.aio.client import Client

PING_SUBJECT = "$SYS.REQ.SERVER.PING"
CONNZ_SUBJECT = "$SYS.REQ.SERVER.PING.CONNZ"
NO_PERMISSION = (
    "server request failed, ensure the account used has system privileges and appropriate "
    "permissions"
)
NO_PRIVILEGES = (
    "no results received, ensure the account used has system privileges and appropriate permissions"
)
CONNZ_PAGE_SIZE = 1024
CONNZ_PAGE_STEP = 1025  # natscli's step (one more than the page)
CONNECTION_SORTS = ("in-bytes", "out-bytes", "in-msgs", "out-msgs", "uptime", "cid", "subs")
STATES = {"open": 0, "closed": 1, "all": 2}


F = TypeVar("F", bound=Callable[..., Any])


def servers_limit_argument(command: F) -> F:
    """The reports' optional LIMIT: how many servers' answers to wait for."""
    return click.argument(
        "limit",
        required=False,
        default=0,
        type=int,
        help="Limit the responses to a certain amount of servers",
    )(command)


def server_filter_options(command: F) -> F:
    """`--host`, `--cluster` and `--tags`: which servers answer (`event_filter`)."""
    for option in (
        click.option(
            "--tags", multiple=True, help="Limit the report to nodes matching certain tags"
        ),
        click.option("--cluster", default="", help="Limit the report to a specific Cluster"),
        click.option("--host", default="", help="Limit the report to a specific NATS server"),
    ):
        command = option(command)
    return command


def connection_sort_options(command: F) -> F:
    """`--sort`, `--top` and `--subject` of the connection reports (server's and account's)."""
    for option in (
        click.option(
            "--subject",
            default="",
            help="Limits responses only to those connections with matching subscription interest",
        ),
        click.option("--top", default=1000, type=int, help="Limit results to the top results"),
        click.option(
            "--sort",
            "sort_key",
            default="subs",
            type=click.Choice(CONNECTION_SORTS),
            help="Sort by a specific property (in-bytes,out-bytes,in-msgs,out-msgs,uptime,cid,subs)",
        ),
    ):
        command = option(command)
    return command


def register(server: click.Group) -> click.Group:
    """Hang `report` under `nats server`; returns it for the other reports' modules."""

    @server.group("report", aliases=["rep"], help="Report on various server metrics")
    def report() -> None:
        """Report on various server metrics."""

    @report.command("connections", aliases=["conn", "connz", "conns"], help="Report on connections")
    @servers_limit_argument
    @click.option("--account", default="", help="Limit report to a specific account")
    @connection_sort_options
    @click.option(
        "--username",
        default="",
        help="Limits responses only to those connections for a specific authentication username",
    )
    @click.option(
        "--state",
        default="open",
        metavar="STATE",
        type=click.Choice(tuple(STATES)),
        help="Limits responses only to those connections that are in a specific state (open, "
        "closed, all)",
    )
    @click.option(
        "--closed-reason",
        "closed_reason",
        default="",
        metavar="REASON",
        help="Filter results based on a closed reason",
    )
    @server_filter_options
    @click.option("-R", "--reverse", is_flag=True, help="Reverse sort connections")
    @json_flag()
    def connections(
        limit: int,
        account: str,
        sort_key: str,
        top: int,
        subject: str,
        username: str,
        state: str,
        closed_reason: str,
        host: str,
        cluster: str,
        tags: tuple[str, ...],
        reverse: bool,
        as_json: bool,
    ) -> None:
        request: dict[str, Any] = {
            "subscriptions": True,
            "subscriptions_detail": False,
            "auth": True,
            "user": username,
            "acc": account,
            "state": STATES[state],
            "filter_subject": subject,
            "limit": CONNZ_PAGE_SIZE,
            "offset": 0,
        }
        request.update(event_filter(host, cluster, tags))
        reason = re.compile(closed_reason, re.I) if closed_reason else None
        conns = run_async(gather_connections(request, limit, as_json, reason))
        if not conns:
            raise CliError("did not get results from any servers")
        if as_json:
            print_json(conns)
            return
        out(render_connections(conns, sort_key, reverse, top, state), end="")

    return report


def event_filter(host: str, cluster: str, tags: tuple[str, ...]) -> dict[str, Any]:
    """natscli's EventFilterOptions for the report commands (JSON omitempty)."""
    options: dict[str, Any] = {}
    if host:
        options["server_name"] = host
    if cluster:
        options["cluster"] = cluster
    if tags:
        options["tags"] = list(tags)
    domain = current_settings().js_domain
    if domain:
        options["domain"] = domain
    return options


async def collect_responses(
    nc: Client, subject: str, body: dict[str, Any] | None, wait_for: int
) -> list[bytes]:
    """natscli's DoReqAsync for the system account's requests (`gather_replies`): a 503 means
    this user may not ask."""
    payload = json.dumps(body, separators=(",", ":")).encode() if body is not None else b"{}"
    try:
        return await gather_replies(nc, subject, payload, wait_for)
    except NoResponders:
        raise CliError(NO_PERMISSION) from None


async def active_servers(nc: Client) -> int:
    """How many servers the connected one knows (its STATSZ `active_servers`)."""
    for data in await collect_responses(nc, PING_SUBJECT, None, 1):
        try:
            return int(json.loads(data)["statsz"]["active_servers"])
        except (ValueError, KeyError, TypeError):
            return 0
    return 0


def parse_connz(data: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(data)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if not isinstance(reply, dict):
        raise CliError(f"no data received in response: {data.decode(errors='replace')}")
    if reply.get("error"):
        raise CliError(f"invalid response received: {go_api_error(reply['error'])}")
    if not isinstance(reply.get("data"), dict):
        raise CliError(f"no data received in response: {data.decode(errors='replace')}")
    return reply


def go_api_error(error: Any) -> str:
    """How nats-server's ApiError prints (`&{Code:500 ErrCode:0 Description:...}`)."""
    if not isinstance(error, dict):
        return str(error)
    return (
        f"&{{Code:{error.get('code', 0)} ErrCode:{error.get('err_code', 0)} "
        f"Description:{error.get('description', '')}}}"
    )


async def gather_connections(
    request: dict[str, Any],
    wait_for: int,
    as_json: bool,
    reason: re.Pattern[str] | None,
    discover: bool = True,
) -> list[dict[str, Any]]:
    """Every server's CONNZ pages, flattened: each connection with its server's `server`.

    `discover=False` skips asking how many servers there are (a user outside the system
    account may not ask): with no `wait_for` the answers are then gathered adaptively."""
    async with connection() as nc:
        if wait_for == 0 and discover:
            wait_for = await active_servers(nc)
        replies = [
            parse_connz(d) for d in await collect_responses(nc, CONNZ_SUBJECT, request, wait_for)
        ]
        replies = [r for r in replies if _keep(r, reason)]
        more = any(_has_more(r) for r in replies)
        if more and not as_json:
            out("Gathering paged connection information", end="")
        offset = 0
        while more:
            if not as_json:
                out(".", end="")
            offset += CONNZ_PAGE_STEP
            page = dict(request, offset=offset)
            more = False
            for data in await collect_responses(nc, CONNZ_SUBJECT, page, wait_for):
                reply = parse_connz(data)
                if not reply["data"].get("connections"):
                    continue
                if _keep(reply, reason):
                    replies.append(reply)
                more = more or _has_more(reply)
    if not as_json:
        out()
    return [
        {**conn, "server": reply["server"]}
        for reply in replies
        for conn in reply["data"].get("connections") or []
    ]


def _keep(reply: dict[str, Any], reason: re.Pattern[str] | None) -> bool:
    """Drop connections whose close reason does not match; keep replies with connections."""
    data = reply["data"]
    conns = data.get("connections") or []
    if reason is not None:
        conns = [c for c in conns if reason.search(str(c.get("reason", "")).lower())]
        data["connections"] = conns
    return bool(conns)


def _has_more(reply: dict[str, Any]) -> bool:
    data = reply["data"]
    return int(data.get("offset", 0)) + int(data.get("limit", 0)) < int(data.get("total", 0))


def _start_seconds(conn: dict[str, Any]) -> float:
    start = humanize.parse_go_time(str(conn.get("start", "")))
    return start.timestamp() if start is not None else 0.0


def _sort_key(name: str) -> Callable[[dict[str, Any]], Any]:
    keys: dict[str, Callable[[dict[str, Any]], Any]] = {
        "in-bytes": lambda c: c.get("in_bytes", 0),
        "out-bytes": lambda c: c.get("out_bytes", 0),
        "in-msgs": lambda c: c.get("in_msgs", 0),
        "out-msgs": lambda c: c.get("out_msgs", 0),
        "cid": lambda c: c.get("cid", 0),
        "subs": lambda c: len(c.get("subscriptions_list") or []),
    }
    return keys.get(name, keys["subs"])  # natscli's default branch (`accounts --sort conns`)


def sort_connections(conns: list[dict[str, Any]], key: str, reverse: bool) -> list[dict[str, Any]]:
    """natscli's order: ascending by the key (uptime: newest first); -R flips it."""
    if key == "uptime":
        return sorted(conns, key=_start_seconds, reverse=not reverse)
    return sorted(conns, key=_sort_key(key), reverse=reverse)


def render_connections(
    conns: list[dict[str, Any]], sort_key: str, reverse: bool, top: int, state: str
) -> str:
    """The connections table and the per-server summary (a blank line comes first)."""
    report = sort_connections(conns, sort_key, reverse)
    total = len(report)
    limit = top if 0 < top <= total else total
    table = Table(f"Top {limit} Connections out of {humanize.comma(total)} by {sort_key}")
    show_reason = state in ("closed", "all")
    headers = [
        "CID",
        "Name",
        "Server",
        "Cluster",
        "IP",
        "Account",
        "Uptime",
        "In Msgs",
        "Out Msgs",
        "In Bytes",
        "Out Bytes",
        "Subs",
    ]
    if show_reason:
        headers.append("Reason")
    table.add_headers(*headers)
    in_msgs = out_msgs = in_bytes = out_bytes = subs = 0
    per_server: dict[str, list[Any]] = {}  # name -> [cluster, connections]
    for index, conn in enumerate(report):
        server = conn.get("server") or {}
        name = str(conn.get("name") or conn.get("mqtt_client") or "")
        if len(name) > 40:
            name = name[:40] + " .."
        in_msgs += conn.get("in_msgs", 0)
        out_msgs += conn.get("out_msgs", 0)
        in_bytes += conn.get("in_bytes", 0)
        out_bytes += conn.get("out_bytes", 0)
        subs += conn.get("subscriptions", 0)
        server_name = str(server.get("name", ""))
        cluster = str(server.get("cluster", ""))
        per_server.setdefault(server_name, [cluster, 0])[1] += 1
        account = str(conn.get("account", ""))
        if len(account) > 46:
            account = account[:12] + " .."
        kind = str(conn.get("kind", "Client"))
        cid = str(conn.get("cid", 0)) if kind == "Client" else f"{kind[:1]}{conn.get('cid', 0)}"
        if index < limit:
            row = [
                cid,
                name,
                server_name,
                cluster,
                f"{conn.get('ip', '')}:{conn.get('port', 0)}",
                account,
                str(conn.get("uptime", "")),
                humanize.comma(conn.get("in_msgs", 0)),
                humanize.comma(conn.get("out_msgs", 0)),
                humanize.ibytes(conn.get("in_bytes", 0)),
                humanize.ibytes(conn.get("out_bytes", 0)),
                humanize.comma(len(conn.get("subscriptions_list") or [])),
            ]
            if show_reason:
                row.append(str(conn.get("reason", "")))
            table.add_row(*row)
    if total > 1:
        footer = [
            "",
            f"Totals for {humanize.comma(total)} connections",
            "",
            "",
            "",
            "",
            "",
            humanize.comma(in_msgs),
            humanize.comma(out_msgs),
            humanize.ibytes(in_bytes),
            humanize.ibytes(out_bytes),
            humanize.comma(subs),
        ]
        if show_reason:
            footer.append("")
        table.add_footer(*footer)
    text = table.render()
    if per_server:
        summary = Table("Connections per server")
        summary.add_headers("Server", "Cluster", "Connections")
        for server_name, (cluster, count) in sorted(per_server.items(), key=lambda i: i[1][1]):
            summary.add_row(server_name, cluster, count)
        text += "\n" + summary.render()
    return text
