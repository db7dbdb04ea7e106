"""`nats server request` (alias `req`): ask every server (or some) for a monitoring document
through `$SYS.REQ.SERVER.PING.<KIND>` and print each answer as it came, one per line.

    accounts (accountz, acct)       ACCOUNTZ    --account
    connections (conn, connz)       CONNZ       --sort --subscriptions --filter-* (state, cid...)
    gateways (gateway, gwy, gatewayz)  GATEWAYZ --filter-account --accounts
    jetstream-health (healthz)      HEALTHZ     -J/--js-enabled -S/--server-only --account ...
    jetstream (jsz, js)             JSZ         --account --accounts --streams --consumer ...
    kick ID SERVER_ID               $SYS.REQ.SERVER.<id>.KICK, the answer indented
    leafnodes (leaf, leafz)         LEAFZ       --subscriptions
    routes (route, routez)          ROUTEZ      --subscriptions
    subscriptions (sub, subsz)      SUBSZ       --detail --filter-account --filter-subject
    variables (var, varz)           VARZ

The group's --limit/--offset/--name/--host/--cluster/--tags go before the subcommand; each
subcommand's optional WAIT argument is how many answers to wait for (0: until answers stop
arriving, natscli's adaptive wait). The request bodies are nats-server's *EventOptions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from pynats.cli.server.report import collect_responses
from pynats.cli.ui.connect import connection, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import go_json, out

CONNZ_SORTS = (
    "cid",
    "start",
    "subs",
    "pending",
    "msgs_to",
    "msgs_from",
    "bytes_to",
    "bytes_from",
    "last",
    "idle",
    "uptime",
    "stop",
    "reason",
    "rtt",
)
CONN_STATES = {"open": 0, "closed": 1, "all": 2}


def _wait_argument(function: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument(
        "wait",
        required=False,
        default=0,
        type=click.IntRange(min=0),
        help="Wait for a certain number of responses",
    )(function)


def register(server: click.Group) -> None:
    @server.group("request", aliases=["req"], help="Request monitoring data from a specific server")
    @click.option(
        "--limit", default=2048, type=int, help="Limit the responses to a certain amount of records"
    )
    @click.option("--offset", default=0, type=int, help="Start at a certain record")
    @click.option("--name", default="", help="Limit to servers matching a server name")
    @click.option("--host", default="", help="Limit to servers matching a server host name")
    @click.option("--cluster", default="", help="Limit to servers matching a cluster name")
    @click.option("--tags", multiple=True, help="Limit to servers with these configured tags")
    @click.pass_context
    def request(
        ctx: click.Context,
        limit: int,
        offset: int,
        name: str,
        host: str,
        cluster: str,
        tags: tuple[str, ...],
    ) -> None:
        """Request monitoring data from a specific server."""
        ctx.obj = {
            "limit": limit,
            "offset": offset,
            "filter": {"name": name, "host": host, "cluster": cluster, "tags": list(tags)},
        }

    def group_options() -> dict[str, Any]:
        obj = click.get_current_context().obj
        return obj if isinstance(obj, dict) else {"limit": 2048, "offset": 0, "filter": {}}

    def send(
        kind: str,
        body: dict[str, Any],
        wait: int,
        skip: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        payload = dict(body)
        payload.update(event_filter(group_options()["filter"]))
        for answer in run_async(gather(f"$SYS.REQ.SERVER.PING.{kind}", payload, wait)):
            if skip is not None:
                try:
                    if skip(json.loads(answer)):
                        continue
                except ValueError:
                    pass
            out(answer)

    @request.command("accounts", aliases=["accountz", "acct"], help="Show account details")
    @_wait_argument
    @click.option("--account", default="", help="Retrieve information for a specific account")
    def accounts(wait: int, account: str) -> None:
        send("ACCOUNTZ", omit_empty({"account": account}), wait)

    @request.command("connections", aliases=["conn", "connz"], help="Show connection details")
    @_wait_argument
    @click.option(
        "--sort",
        "sort_key",
        default="cid",
        type=click.Choice(CONNZ_SORTS),
        help="Sort by a specific property",
    )
    @click.option("--subscriptions", is_flag=True, help="Show subscriptions")
    @click.option(
        "--filter-cid", default=0, type=int, metavar="CID", help="Filter on a specific CID"
    )
    @click.option(
        "--filter-state",
        default="open",
        type=click.Choice(tuple(CONN_STATES)),
        metavar="STATE",
        help="Filter on a specific account state (open, closed, all)",
    )
    @click.option("--filter-user", default="", metavar="USER", help="Filter on a specific username")
    @click.option(
        "--filter-account", default="", metavar="ACCOUNT", help="Filter on a specific account"
    )
    @click.option(
        "--filter-subject",
        default="",
        metavar="SUBJECT",
        help="Limits responses only to those connections with matching subscription interest",
    )
    @click.option("--filter-empty", is_flag=True, help="Only shows responses that have connections")
    def connections(
        wait: int,
        sort_key: str,
        subscriptions: bool,
        filter_cid: int,
        filter_state: str,
        filter_user: str,
        filter_account: str,
        filter_subject: str,
        filter_empty: bool,
    ) -> None:
        options = group_options()
        body = omit_empty(
            {
                "sort": sort_key,
                "auth": True,
                "subscriptions": subscriptions,
                "subscriptions_detail": subscriptions,
                "offset": options["offset"],
                "limit": options["limit"],
                "cid": filter_cid,
                "user": filter_user,
                "acc": filter_account,
                "filter_subject": filter_subject,
                "state": CONN_STATES[filter_state],
            }
        )

        def empty(answer: dict[str, Any]) -> bool:
            return filter_empty and not (answer.get("data") or {}).get("num_connections")

        send("CONNZ", body, wait, empty)

    @request.command(
        "gateways", aliases=["gateway", "gwy", "gatewayz"], help="Show gateway details"
    )
    @_wait_argument
    @click.argument(
        "filter_name",
        required=False,
        default="",
        metavar="NAME",
        help="Filter results on gateway name",
    )
    @click.option(
        "--filter-account",
        default="",
        metavar="ACCOUNT",
        help="Show only a certain account in account detail",
    )
    @click.option("--accounts", "detail", is_flag=True, help="Show account detail")
    @click.option(
        "--subscriptions/--no-subscriptions", default=True, help="Show subscription details"
    )
    def gateways(
        wait: int, filter_name: str, filter_account: str, detail: bool, subscriptions: bool
    ) -> None:
        detail = detail or bool(filter_account)
        body = omit_empty({"name": filter_name, "accounts": detail, "account_name": filter_account})
        if filter_account and detail and subscriptions:
            body.update(subscriptions=True, subscriptions_detail=True)
        send("GATEWAYZ", body, wait)

    @request.command(
        "jetstream-health", aliases=["healthz"], help="Request JetStream health status"
    )
    @_wait_argument
    @click.option(
        "-J",
        "--js-enabled",
        is_flag=True,
        help="Checks that JetStream should be enabled on all servers",
    )
    @click.option(
        "-S",
        "--server-only",
        is_flag=True,
        help="Restricts the health check to the JetStream server only, do not check streams and consumers",
    )
    @click.option("--account", default="", help="Check only a specific Account")
    @click.option("--stream", default="", help="Check only a specific Stream")
    @click.option("--consumer", default="", help="Check only a specific Consumer")
    @click.option(
        "--details/--no-details", default=True, help="Include extended details about all failures"
    )
    def healthz(
        wait: int,
        js_enabled: bool,
        server_only: bool,
        account: str,
        stream: str,
        consumer: str,
        details: bool,
    ) -> None:
        body = omit_empty(
            {
                "js-enabled-only": js_enabled,
                "js-server-only": server_only,
                "account": account,
                "stream": stream,
                "consumer": consumer,
                "details": details,
            }
        )
        send("HEALTHZ", body, wait)

    @request.command("jetstream", aliases=["jsz", "js"], help="Show JetStream details")
    @_wait_argument
    @click.option("--account", default="", help="Show statistics scoped to a specific account")
    @click.option("--accounts", is_flag=True, help="Include details about accounts")
    @click.option("--streams", is_flag=True, help="Include details about Streams")
    @click.option("--consumer", is_flag=True, help="Include details about Consumers")
    @click.option("--config", is_flag=True, help="Include details about configuration")
    @click.option("--raft", is_flag=True, help="Include details about raft groups")
    @click.option(
        "--leader", is_flag=True, help="Request a response from the Meta-group leader only"
    )
    @click.option(
        "--all",
        "include_all",
        is_flag=True,
        help="Include accounts, streams, consumers and configuration",
    )
    def jsz(
        wait: int,
        account: str,
        accounts: bool,
        streams: bool,
        consumer: bool,
        config: bool,
        raft: bool,
        leader: bool,
        include_all: bool,
    ) -> None:
        options = group_options()
        body = omit_empty(
            {
                "account": account,
                "accounts": accounts or include_all,
                "streams": streams or include_all,
                "consumer": consumer or include_all,
                "config": config or include_all,
                "leader_only": leader,
                "offset": options["offset"],
                "limit": options["limit"],
                "raft": raft or include_all,
            }
        )
        send("JSZ", body, wait)

    @request.command("kick", help="Disconnects a client immediately")
    @click.argument("client", type=int, metavar="ID", help="The Client ID to disconnect")
    @click.argument(
        "server_id", metavar="SERVER_ID", help="The Server ID to disconnect the client from"
    )
    def kick(client: int, server_id: str) -> None:
        answers = run_async(gather(f"$SYS.REQ.SERVER.{server_id}.KICK", {"cid": client}, 1))
        if not answers:
            raise CliError("no responses received")
        for answer in answers:
            out(go_json(json.loads(answer), indent=2))

    @request.command("leafnodes", aliases=["leaf", "leafz"], help="Show leafnode details")
    @_wait_argument
    @click.option("--subscriptions", is_flag=True, help="Show subscription detail")
    def leafz(wait: int, subscriptions: bool) -> None:
        send("LEAFZ", omit_empty({"subscriptions": subscriptions}), wait)

    @request.command("routes", aliases=["route", "routez"], help="Show route details")
    @_wait_argument
    @click.option("--subscriptions", is_flag=True, help="Show subscription detail")
    def routez(wait: int, subscriptions: bool) -> None:
        body = omit_empty({"subscriptions": subscriptions, "subscriptions_detail": subscriptions})
        send("ROUTEZ", body, wait)

    @request.command(
        "subscriptions", aliases=["sub", "subsz"], help="Show subscription information"
    )
    @_wait_argument
    @click.option("--detail", is_flag=True, help="Include detail about all subscriptions")
    @click.option(
        "--filter-account", default="", metavar="ACCOUNT", help="Filter on a specific account"
    )
    @click.option(
        "--filter-subject",
        default="",
        metavar="SUBJECT",
        help="Filter based on subscriptions matching this subject",
    )
    def subsz(wait: int, detail: bool, filter_account: str, filter_subject: str) -> None:
        options = group_options()
        body = omit_empty(
            {
                "offset": options["offset"],
                "limit": options["limit"],
                "subscriptions": detail,
                "account": filter_account,
                "test": filter_subject,
            }
        )
        send("SUBSZ", body, wait)

    @request.command("variables", aliases=["var", "varz"], help="Show runtime variables")
    @_wait_argument
    def varz(wait: int) -> None:
        send("VARZ", {}, wait)


def omit_empty(body: dict[str, Any]) -> dict[str, Any]:
    """Go's `omitempty`: zero values are left out of the request."""
    return {key: value for key, value in body.items() if value not in ("", 0, False, None, [])}


def event_filter(options: dict[str, Any]) -> dict[str, Any]:
    """nats-server's EventFilterOptions (server_name, host, cluster, tags, domain)."""
    fields = {
        "server_name": options.get("name", ""),
        "host": options.get("host", ""),
        "cluster": options.get("cluster", ""),
        "tags": options.get("tags") or [],
        "domain": current_settings().js_domain,
    }
    return omit_empty(fields)


async def gather(subject: str, body: dict[str, Any], wait: int) -> list[str]:
    async with connection() as nc:
        answers = await collect_responses(nc, subject, body, wait)
    return [answer.decode(errors="replace") for answer in answers]
