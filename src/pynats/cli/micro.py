"""`nats micro` (alias `service`): discover services built with the clients' service frameworks.

Services written with nats.go's `micro`, nats-py's `nats.micro` and the other clients' ports
answer the control subjects of ADR-32: `$SRV.<VERB>`, `$SRV.<VERB>.<name>` and
`$SRV.<VERB>.<name>.<id>` for the verbs PING, INFO and STATS, each with a JSON document whose
`type` names it (`io.nats.micro.v1.info_response`, ...).

    nats micro ls [NAME]          every instance answering INFO (the `All Micro Services` table)
    nats micro info NAME [ID]     one instance's endpoints and their statistics
    nats micro stats NAME [ID]    every instance's endpoint statistics, with totals
    nats micro ping [NAME]        each PING answer with its rtt, until --timeout

Documents are re-emitted for `--json` in the field order of nats.go's structs (the order
natscli prints), whatever order the service used.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import Any

import click

from pynats.cli.ui import humanize
from pynats.cli.ui.columns import Columns
from pynats.cli.ui.command import NatsGroup, json_flag
from pynats.cli.ui.connect import connection, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.gather import NoResponders, gather_replies
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import log, out, print_json
from pynats.cli.ui.table import Table

API_PREFIX = "$SRV"
INFO_TYPE = "io.nats.micro.v1.info_response"
PING_TYPE = "io.nats.micro.v1.ping_response"
STATS_TYPE = "io.nats.micro.v1.stats_response"
NO_INSTANCES = "no micro instances found"

IDENTITY_FIELDS = ("name", "id", "version", "metadata")
INFO_FIELDS = (*IDENTITY_FIELDS, "type", "description", "endpoints")
ENDPOINT_INFO_FIELDS = ("name", "subject", "queue_group", "metadata")
STATS_FIELDS = (*IDENTITY_FIELDS, "type", "started", "endpoints")
ENDPOINT_STATS_FIELDS = (
    "name",
    "subject",
    "queue_group",
    "num_requests",
    "num_errors",
    "last_error",
    "processing_time",
    "average_processing_time",
)


def register(root: NatsGroup) -> None:
    @root.group(
        "micro",
        aliases=["service"],
        help="Micro Services discovery and management\n\nWARNING: This command is experimental",
    )
    def micro() -> None:
        """Micro Services discovery and management."""

    @micro.command("list", aliases=["ls", "l"], help="List known Micro services")
    @click.argument(
        "service",
        required=False,
        default="",
        metavar="NAME",
        help="List instances of a specific service",
    )
    @json_flag("Show JSON output")
    def list_services(service: str, as_json: bool) -> None:
        infos = run_async(_fetch_infos(service, "", wait_for=0))
        if as_json:
            print_json(infos)
            return
        if not infos:
            out("No results received")
            return
        out(render_service_list(service, infos))

    @micro.command("info", aliases=["i"], help="Show Micro service information")
    @click.argument("service", help="Service to show")
    @click.argument("id", required=False, default="", help="Show info for a specific ID")
    @json_flag("Show JSON output")
    def info(service: str, id: str, as_json: bool) -> None:
        found = run_async(_fetch_info_and_stats(service, id))
        if found is None:
            out("{}" if as_json else "No results received")
            return
        info_doc, stats_doc = found
        if as_json:
            print_json({"info": info_doc, "stats": stats_doc})
            return
        out(render_service_info(info_doc, stats_doc).render(), end="")

    @micro.command("stats", help="Report Micro service statistics")
    @click.argument("service", help="Service to show")
    @click.argument("id", required=False, default="", help="Show info for a specific ID")
    @json_flag("Show JSON output")
    def stats(service: str, id: str, as_json: bool) -> None:
        docs = run_async(_fetch_stats(service, id))
        if not docs:
            out("No responses received")
            return
        if as_json:
            print_json(docs)
            return
        out(render_stats_table(service, docs))

    @micro.command("ping", help="Sends a ping to all services")
    @click.argument("service", required=False, default="", help="Service to show")
    def ping(service: str) -> None:
        run_async(_ping(service))


def control_subject(verb: str, name: str = "", instance: str = "") -> str:
    """`$SRV.INFO`, `$SRV.INFO.<name>` or `$SRV.INFO.<name>.<id>`."""
    return ".".join(part for part in (API_PREFIX, verb, name, instance if name else "") if part)


# -- fetching -----------------------------------------------------------------------------------


async def _request(subject: str, wait_for: int) -> list[bytes]:
    async with connection() as nc:
        try:
            return await gather_replies(nc, subject, wait_for=wait_for)
        except NoResponders:
            raise CliError(NO_INSTANCES) from None


async def _fetch_infos(name: str, instance: str, wait_for: int) -> list[dict[str, Any]]:
    answers = await _request(control_subject("INFO", name, instance), wait_for)
    return sort_instances([parse_document(data, INFO_TYPE) for data in answers])


async def _fetch_info_and_stats(
    name: str, instance: str
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    infos = await _fetch_infos(name, instance, wait_for=1)
    if not infos:
        return None
    info = infos[0]
    subject = control_subject("STATS", str(info.get("name", "")), str(info.get("id", "")))
    answers = await _request(subject, wait_for=1)
    if not answers:
        raise CliError(f"no statistics received for {info.get('name')} > {info.get('id')}")
    return info, parse_document(answers[0], STATS_TYPE)


async def _fetch_stats(name: str, instance: str) -> list[dict[str, Any]]:
    answers = await _request(control_subject("STATS", name, instance), wait_for=0)
    return sort_instances([parse_document(data, STATS_TYPE) for data in answers])


async def _ping(name: str) -> None:
    """Print every PING answer as it arrives; natscli listens for the whole --timeout."""
    settings = current_settings()
    async with connection() as nc:
        inbox = nc.new_inbox()
        started = time.monotonic()

        async def show(msg: Any) -> None:
            if settings.trace:
                log(f"<<< {msg.data.decode(errors='replace')}")
            try:
                doc = parse_document(msg.data, PING_TYPE)
            except CliError:
                return
            rtt = humanize.human_duration(humanize.seconds_to_ns(time.monotonic() - started))
            out(f"{doc.get('name', '')} {doc.get('id', '')}".ljust(50) + f" rtt={rtt}")

        await nc.subscribe(inbox, cb=show)
        subject = control_subject("PING", name)
        await nc.publish(subject, b"", reply=inbox)
        if settings.trace:
            log(f">>> {subject}")
        await asyncio.sleep(settings.timeout_s)


# -- documents ----------------------------------------------------------------------------------


def parse_document(data: bytes, expected_type: str) -> dict[str, Any]:
    """A control answer as nats.go reads it: JSON whose `type` is the one asked for."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise CliError(f"invalid JSON response: {exc}") from exc
    if not isinstance(doc, dict):
        raise CliError("invalid JSON response: not an object")
    kind = doc.get("type", "")
    if kind != expected_type:
        raise CliError(f"invalid response type {kind}")
    if expected_type == INFO_TYPE:
        return _ordered_info(doc)
    if expected_type == STATS_TYPE:
        return _ordered_stats(doc)
    return _ordered(doc, (*IDENTITY_FIELDS, "type"))


def _ordered(doc: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """The fields of a Go struct in declaration order, with the zero value for missing ones."""
    result: dict[str, Any] = {}
    for name in fields:
        value = doc.get(name)
        if name == "metadata":
            value = dict(sorted(value.items())) if isinstance(value, dict) else None
        elif value is None:
            value = "" if name not in ("endpoints",) else None
        result[name] = value
    return result


def _ordered_info(doc: dict[str, Any]) -> dict[str, Any]:
    info = _ordered(doc, INFO_FIELDS)
    endpoints = doc.get("endpoints")
    if isinstance(endpoints, list):
        info["endpoints"] = [_ordered(e, ENDPOINT_INFO_FIELDS) for e in endpoints]
    return info


def _ordered_stats(doc: dict[str, Any]) -> dict[str, Any]:
    stats = _ordered(doc, STATS_FIELDS)
    endpoints = doc.get("endpoints")
    if isinstance(endpoints, list):
        stats["endpoints"] = [_ordered_endpoint_stats(e) for e in endpoints]
    return stats


def _ordered_endpoint_stats(doc: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name in ENDPOINT_STATS_FIELDS:
        value = doc.get(name)
        if name.startswith("num_") or name.endswith("processing_time"):
            value = int(value or 0)
        elif value is None:
            value = ""
        result[name] = value
    if "data" in doc and doc["data"] not in ("", {}, []):
        result["data"] = doc["data"]
    return result


def sort_instances(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(docs, key=lambda d: (str(d.get("name", "")), str(d.get("id", ""))))


# -- rendering ----------------------------------------------------------------------------------


def render_service_list(name: str, infos: list[dict[str, Any]]) -> str:
    """One row per instance; a name, version or description equal to the row above is blank."""
    table = Table(f"{name} Micro Service" if name else "All Micro Services")
    table.add_headers("Name", "Version", "ID", "Description")
    previous: dict[str, Any] = {}
    for info in infos:
        row = [
            "" if previous and info[key] == previous[key] else info[key]
            for key in ("name", "version")
        ]
        description = info["description"]
        if previous and description == previous["description"]:
            description = ""
        table.add_row(*row, info["id"], description)
        previous = info
    return table.render()


def render_stats_table(name: str, docs: list[dict[str, Any]]) -> str:
    table = Table(f"{name} Service Statistics")
    table.add_headers("ID", "Endpoint", "Requests", "Errors", "Processing Time", "Average Time")
    requests = errors = run_time = 0
    for doc in docs:
        for index, endpoint in enumerate(doc.get("endpoints") or []):
            table.add_row(
                doc["id"] if index == 0 else "",
                endpoint["name"],
                humanize.comma(endpoint["num_requests"]),
                humanize.comma(endpoint["num_errors"]),
                humanize.human_duration(endpoint["processing_time"]),
                humanize.human_duration(endpoint["average_processing_time"]),
            )
            requests += endpoint["num_requests"]
            errors += endpoint["num_errors"]
            run_time += endpoint["processing_time"]
    average = run_time // (requests + errors) if run_time > 0 and requests + errors else 0
    table.add_footer(
        "",
        "",
        humanize.comma(requests),
        humanize.comma(errors),
        humanize.human_duration(run_time),
        humanize.human_duration(average),
    )
    return table.render()


def render_service_info(info: dict[str, Any], stats: dict[str, Any]) -> Columns:
    screen = Columns("Service Information")
    screen.add_row("Service", f"{info['name']} ({info['id']})")
    screen.add_row("Description", info["description"])
    screen.add_row("Version", info["version"])
    if info.get("metadata"):
        screen.add_map_as_value("Metadata", info["metadata"])
    screen.add_section("Endpoints:")
    screen.indent(2)
    for endpoint in info.get("endpoints") or []:
        screen.add_line()
        screen.add_row("Name", endpoint["name"])
        screen.add_row("Subject", endpoint["subject"])
        if endpoint.get("metadata"):
            screen.add_map_as_value("Metadata", endpoint["metadata"])
    screen.indent(0)
    endpoints = stats.get("endpoints") or []
    screen.add_section(f"Statistics for {len(endpoints)} Endpoint(s)")
    started = humanize.parse_go_time(str(stats.get("started", "")))
    for endpoint in endpoints:
        screen.indent(2)
        screen.add_section(f"{endpoint['name'] or 'default'} Endpoint Statistics")
        screen.add_row("Requests", endpoint["num_requests"])
        screen.add_row(
            "Processing Time",
            f"{humanize.human_duration(endpoint['processing_time'])} "
            f"(average {humanize.human_duration(endpoint['average_processing_time'])})",
        )
        if started is not None:
            age = humanize.ns_between(dt.datetime.now(dt.UTC), started)
            screen.add_row(
                "Started:", f"{humanize.local_time(started)} ({humanize.human_duration(age)} ago)"
            )
        screen.add_row("Errors", endpoint["num_errors"])
        screen.add_row_if_not_empty("Last Error", endpoint["last_error"])
        if endpoint.get("data") is not None:
            screen.add_section("Endpoint Specific Statistics")
            text = json.dumps(endpoint["data"], indent=4).replace("\n", "\n    ")
            screen.add_line("    " + text)
        screen.indent(0)
    return screen
