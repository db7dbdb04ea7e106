"""Connections and traffic per account, as natscli reports them.

    nats server report accounts [ACCOUNT] [LIMIT]   (alias `acct`) through the system account
    nats account report connections                  this account's connections, any user
    nats account report statistics                   this account's stats on every server

`server report accounts` gathers CONNZ from every server exactly as `server report
connections` does (report.py) and sums it per account: connections, messages and bytes in
and out, subscriptions. Without an account it draws `<n> Accounts Overview`, sorted ascending
by --sort (natscli keeps the last --top rows, or the first with -R); with one it draws that
account's connections table.

The `account report` verbs are what a user outside the system account may ask, through the
imports every account has from the system account: `$SYS.REQ.SERVER.PING.CONNZ` (answered
with this account's connections only, gathered adaptively since the number of servers is not
for this user to learn) and `$SYS.REQ.ACCOUNT.PING.STATZ` (the `Server Statistics` table).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from pynats.cli.server.report import (
    collect_responses,
    connection_sort_options,
    event_filter,
    gather_connections,
    render_connections,
    server_filter_options,
    servers_limit_argument,
)
from pynats.cli.ui import humanize
from pynats.cli.ui.command import json_flag
from pynats.cli.ui.connect import connection, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.output import out, print_json
from pynats.cli.ui.table import Table

ACCOUNT_SORTS = ("in-bytes", "out-bytes", "in-msgs", "out-msgs", "conns", "subs")
ACCOUNT_STATZ_SUBJECT = "$SYS.REQ.ACCOUNT.PING.STATZ"
NO_RESULTS = "did not get results from any servers"


def register(report: click.Group) -> None:
    """Hang `accounts` under `nats server report`."""

    @report.command("accounts", aliases=["acct"], help="Report on account activity")
    @click.argument("account", required=False, default="", help="Account to produce a report for")
    @servers_limit_argument
    @click.option(
        "--sort",
        "sort_key",
        default="subs",
        type=click.Choice(ACCOUNT_SORTS),
        help="Sort by a specific property (in-bytes,out-bytes,in-msgs,out-msgs,conns,subs)",
    )
    @click.option("--top", default=1000, type=int, help="Limit results to the top results")
    @server_filter_options
    @click.option("-R", "--reverse", is_flag=True, help="Reverse sort connections")
    @json_flag()
    def accounts(
        account: str,
        limit: int,
        sort_key: str,
        top: int,
        host: str,
        cluster: str,
        tags: tuple[str, ...],
        reverse: bool,
        as_json: bool,
    ) -> None:
        request = connz_request(account=account)
        request.update(event_filter(host, cluster, tags))
        conns = run_async(gather_connections(request, limit, as_json, None))
        if not conns:
            raise CliError(NO_RESULTS)
        summary = account_summaries(conns)
        if account:
            if len(summary) != 1:
                raise CliError(f"received results for multiple accounts, expected {account}")
            if account not in summary:
                raise CliError(f"did not receive any results for account {account}")
            if as_json:
                print_json(summary[account])
                return
            out(render_connections(conns, sort_key, reverse, top, "open"), end="")
            return
        rows = top_accounts(list(summary.values()), sort_key, reverse, top)
        if as_json:
            print_json(rows)
            return
        out(render_accounts(rows), end="")


def register_account_report(account: click.Group) -> None:
    """Hang `report connections|statistics` under `nats account`."""

    @account.group("report", aliases=["rep"], help="Report on account metrics")
    def report() -> None:
        """Report on account metrics."""

    @report.command("connections", aliases=["conn", "connz", "conns"], help="Report on connections")
    @connection_sort_options
    @click.option("-R", "--reverse", is_flag=True, help="Reverse sort connections")
    def connections(sort_key: str, top: int, subject: str, reverse: bool) -> None:
        request = connz_request(subject=subject)
        request.update(event_filter("", "", ()))
        conns = run_async(gather_connections(request, 0, False, None, discover=False))
        if not conns:
            raise CliError(NO_RESULTS)
        out(render_connections(conns, sort_key, reverse, top, "open"), end="")

    @report.command("statistics", aliases=["stats", "statsz"], help="Report on server statistics")
    def statistics() -> None:
        replies = run_async(gather_account_statz())
        if not replies:
            raise CliError(NO_RESULTS)
        out(render_statistics(replies))


def connz_request(account: str = "", subject: str = "") -> dict[str, Any]:
    """natscli's ConnzEventOptions for its reports (first page; report.py pages on)."""
    return {
        "subscriptions": True,
        "subscriptions_detail": False,
        "auth": True,
        "user": "",
        "acc": account,
        "state": 0,
        "filter_subject": subject,
        "limit": 1024,
        "offset": 0,
    }


def account_summaries(conns: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per account: its connections (each with its `server`), their sums, and the servers."""
    result: dict[str, dict[str, Any]] = {}
    for conn in conns:
        name = str(conn.get("account", ""))
        entry = result.get(name)
        if entry is None:
            entry = result[name] = {
                "account": name,
                "connections": 0,
                "connection_info": [],
                "in_msgs": 0,
                "out_msgs": 0,
                "in_bytes": 0,
                "out_bytes": 0,
                "subscriptions": 0,
                "server": [],
            }
        entry["connection_info"].append(conn)
        entry["connections"] += 1
        for key in ("in_msgs", "out_msgs", "in_bytes", "out_bytes"):
            entry[key] += int(conn.get(key, 0))
        entry["subscriptions"] += len(conn.get("subscriptions_list") or [])
        server = conn.get("server") or {}
        if all(s.get("id") != server.get("id") for s in entry["server"]):
            entry["server"].append(server)
    return result


def _account_sort_key(name: str) -> Callable[[dict[str, Any]], Any]:
    field = {"in-bytes": "in_bytes", "out-bytes": "out_bytes", "in-msgs": "in_msgs"}.get(name)
    field = field or {"out-msgs": "out_msgs", "conns": "connections"}.get(name, "subscriptions")
    return lambda a: (a[field], a["account"])


def top_accounts(
    accounts: list[dict[str, Any]], sort_key: str, reverse: bool, top: int
) -> list[dict[str, Any]]:
    """Ascending by the key (descending with -R); --top keeps the largest (first with -R)."""
    rows = sorted(accounts, key=_account_sort_key(sort_key), reverse=reverse)
    if 0 < top < len(rows):
        rows = rows[:top] if reverse else rows[len(rows) - top :]
    return rows


def render_accounts(rows: list[dict[str, Any]]) -> str:
    table = Table(f"{len(rows)} Accounts Overview")
    table.add_headers(
        "Account", "Connections", "In Msgs", "Out Msgs", "In Bytes", "Out Bytes", "Subs"
    )
    for row in rows:
        table.add_row(
            row["account"],
            humanize.comma(row["connections"]),
            humanize.comma(row["in_msgs"]),
            humanize.comma(row["out_msgs"]),
            humanize.ibytes(row["in_bytes"]),
            humanize.ibytes(row["out_bytes"]),
            humanize.comma(row["subscriptions"]),
        )
    return table.render()


# -- account report statistics ------------------------------------------------------------------


async def gather_account_statz() -> list[dict[str, Any]]:
    """Every server's answer to `$SYS.REQ.ACCOUNT.PING.STATZ`, checked."""
    async with connection() as nc:
        answers = await collect_responses(nc, ACCOUNT_STATZ_SUBJECT, None, 0)
    return [parse_account_statz(data) for data in answers]


def parse_account_statz(data: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(data)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if not isinstance(reply, dict):
        raise CliError(f"no data received in response: {data.decode(errors='replace')}")
    error = reply.get("error")
    if error is not None:
        description = error.get("description") if isinstance(error, dict) else None
        if description is None:
            raw = json.dumps(error, separators=(",", ":"))
            raise CliError(f"invalid response received: {json.dumps(raw)}")
        raise CliError(f"invalid response received: {description}")
    if "data" not in reply:
        raise CliError(f"no data received in response: {data.decode(errors='replace')}")
    if "server" not in reply:
        raise CliError(f"no server data received in response: {data.decode(errors='replace')}")
    return reply


def render_statistics(replies: list[dict[str, Any]]) -> str:
    """natscli's `Server Statistics`: the first account's stats on each server, and totals."""
    table = Table("Server Statistics")
    table.add_headers(
        "Server",
        "Cluster",
        "Version",
        "Tags",
        "Connections",
        "Subscriptions",
        "Leafnodes",
        "Sent Bytes",
        "Sent Messages",
        "Received Bytes",
        "Received Messages",
        "Slow Consumers",
    )
    totals = dict.fromkeys(("conns", "subs", "leafs", "sb", "sm", "rb", "rm", "slow"), 0)
    for reply in replies:
        stats = (reply.get("data") or {}).get("account_statz") or []
        if not stats:
            continue
        server = reply.get("server") or {}
        stat = stats[0]
        sent = stat.get("sent") or {}
        received = stat.get("received") or {}
        values = {
            "conns": int(stat.get("conns", 0)),
            "subs": int(stat.get("num_subscriptions", 0)),
            "leafs": int(stat.get("leafnodes", 0)),
            "sb": int(sent.get("bytes", 0)),
            "sm": int(sent.get("msgs", 0)),
            "rb": int(received.get("bytes", 0)),
            "rm": int(received.get("msgs", 0)),
            "slow": int(stat.get("slow_consumers", 0)),
        }
        for key, number in values.items():
            totals[key] += number
        table.add_row(
            str(server.get("host", "")),
            str(server.get("cluster", "")),
            str(server.get("ver", "")),
            humanize.value(server.get("tags") or []),
            humanize.comma(values["conns"]),
            humanize.comma(values["subs"]),
            humanize.comma(values["leafs"]),
            humanize.ibytes(values["sb"]),
            humanize.comma(values["sm"]),
            humanize.ibytes(values["rb"]),
            humanize.comma(values["rm"]),
            humanize.comma(values["slow"]),
        )
    table.add_footer(
        len(replies),
        "",
        "",
        "",
        humanize.comma(totals["conns"]),
        humanize.comma(totals["subs"]),
        humanize.comma(totals["leafs"]),
        humanize.ibytes(totals["sb"]),
        humanize.comma(totals["sm"]),
        humanize.ibytes(totals["rb"]),
        humanize.comma(totals["rm"]),
        humanize.comma(totals["slow"]),
    )
    return table.render()
