"""`nats server check`: Nagios-style health checks, the checks of natscli's monitor package.

    connection (conn)   connect time, server RTT and a full round trip through an inbox
    server              one server's varz (through the system account): uptime, cpu, memory,
                        connections, subscriptions, auth/TLS/JetStream required
    jetstream (js)      the account's JetStream usage against its limits, replica health
    stream              messages, subjects, sources/mirror lag, cluster peers of one stream
    consumer            ack pending, waiting pulls, unprocessed, redeliveries, last delivery/ack
    kv                  a bucket exists, its value count, one key holds a value
    message             the last message on a subject of a stream: age and content
    credential          a credentials file's JWT expiry

Every check ends with the result (check_result.py) and its Nagios exit code; connection and
API failures are CRITICAL results, never `nats: error:` lines. Stream and consumer thresholds
may come from their metadata (`io.nats.monitor.<flag>`), flags taking precedence.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import re
import secrets
import string
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import click

from pynats.cli.server.check_result import (
    DEFAULT_NAMESPACE,
    FORMATS,
    CheckResult,
    PerfDataItem,
    go_float,
)
from pynats.cli.ui import humanize
from pynats.cli.ui.connect import connect, js_request, run_async
from pynats.cli.ui.errors import ApiError, CliError
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.parse import DURATION, parse_duration_ns
from pynats.gotime import MILLISECOND, NS_PER_S, format_duration

if TYPE_CHECKING:
    from nats.aio.client import Client

NO_MESSAGE = 10037
META = "io.nats.monitor."


def register(server: click.Group) -> None:
    """Hang `check` and its checks under `nats server`."""

    @server.group("check", help="Health check for NATS servers")
    @click.option(
        "--format",
        "render_format",
        default="nagios",
        type=click.Choice(FORMATS),
        help="Render the check in a specific format (nagios, json, prometheus, text)",
    )
    @click.option(
        "--namespace", default=DEFAULT_NAMESPACE, help="The prometheus namespace to use in output"
    )
    @click.option("--outfile", default="", help="Save output to a file rather than STDOUT")
    @click.pass_context
    def check(ctx: click.Context, render_format: str, namespace: str, outfile: str) -> None:
        """Health check for NATS servers."""
        ctx.obj = {"format": render_format, "namespace": namespace, "outfile": outfile}

    def result(name: str, suite: str) -> CheckResult:
        obj = click.get_current_context().obj
        options: dict[str, Any] = obj if isinstance(obj, dict) else {}
        return CheckResult(
            name,
            suite,
            render_format=options.get("format", "nagios"),
            namespace=options.get("namespace", DEFAULT_NAMESPACE),
            outfile=options.get("outfile", ""),
        )

    @check.command("connection", aliases=["conn"], help="Checks basic server connection")
    @click.option("--connect-warn", default="500ms", type=DURATION, metavar="DURATION")
    @click.option("--connect-critical", default="1s", type=DURATION, metavar="DURATION")
    @click.option("--rtt-warn", default="500ms", type=DURATION, metavar="DURATION")
    @click.option("--rtt-critical", default="1s", type=DURATION, metavar="DURATION")
    @click.option("--req-warn", default="500ms", type=DURATION, metavar="DURATION")
    @click.option("--req-critical", default="1s", type=DURATION, metavar="DURATION")
    def connection(**thresholds: int) -> None:
        finish(result("Connection", "connections"), check_connection, thresholds)

    @check.command("server", help="Checks a NATS Server health")
    @click.option("--name", required=True, help="Server name to require in the result")
    @click.option("--cpu-warn", default=0, type=int)
    @click.option("--cpu-critical", default=0, type=int)
    @click.option("--mem-warn", default=0, type=int)
    @click.option("--mem-critical", default=0, type=int)
    @click.option("--conn-warn", default=0, type=int)
    @click.option("--conn-critical", default=0, type=int)
    @click.option("--subs-warn", default=0, type=int)
    @click.option("--subs-critical", default=0, type=int)
    @click.option("--uptime-warn", default="0s", type=DURATION, metavar="DURATION")
    @click.option("--uptime-critical", default="0s", type=DURATION, metavar="DURATION")
    @click.option("--auth-required", is_flag=True, help="Checks that authentication is enabled")
    @click.option("--tls-required", is_flag=True, help="Checks that TLS is required")
    @click.option("--js-required", is_flag=True, help="Checks that JetStream is enabled")
    def server_check(name: str, **options: Any) -> None:
        finish(result(name, "server"), check_server, dict(options, name=name))

    @check.command("jetstream", aliases=["js"], help="Check JetStream account state")
    @click.option("--mem-warn", default=75, type=int)
    @click.option("--mem-critical", default=90, type=int)
    @click.option("--store-warn", default=75, type=int)
    @click.option("--store-critical", default=90, type=int)
    @click.option("--streams-warn", default=-1, type=int)
    @click.option("--streams-critical", default=-1, type=int)
    @click.option("--consumers-warn", default=-1, type=int)
    @click.option("--consumers-critical", default=-1, type=int)
    @click.option("--replicas/--no-replicas", default=True)
    @click.option("--replica-seen-critical", default="5s", type=DURATION, metavar="DURATION")
    @click.option("--replica-lag-critical", default=200, type=int)
    def jetstream_check(**options: Any) -> None:
        finish(result("JetStream", "jetstream"), check_jetstream, options)

    @check.command(
        "stream",
        help="Checks the health of mirrored streams, streams with sources or clustered streams",
    )
    @click.option("--stream", "stream_name", required=True, help="The streams to check")
    @click.option("--lag-critical", type=int, metavar="MSGS")
    @click.option("--seen-critical", type=DURATION, metavar="DURATION")
    @click.option("--min-sources", type=int, metavar="SOURCES")
    @click.option("--max-sources", type=int, metavar="SOURCES")
    @click.option("--peer-expect", type=int, metavar="SERVERS")
    @click.option("--peer-lag-critical", type=int, metavar="OPS")
    @click.option("--peer-seen-critical", type=DURATION, metavar="DURATION")
    @click.option("--msgs-warn", type=int, metavar="MSGS")
    @click.option("--msgs-critical", type=int, metavar="MSGS")
    @click.option("--subjects-warn", type=int, metavar="SUBJECTS")
    @click.option("--subjects-critical", type=int, metavar="SUBJECTS")
    def stream_check(stream_name: str, **flags: Any) -> None:
        set_flags = {k: v for k, v in flags.items() if v is not None}
        finish(result(stream_name, "stream"), check_stream, dict(set_flags, stream=stream_name))

    @check.command("consumer", help="Checks the health of a consumer")
    @click.option("--stream", "stream_name", required=True, help="The streams to check")
    @click.option("--consumer", "consumer_name", required=True, help="The consumer to check")
    @click.option("--outstanding-ack-critical", type=int)
    @click.option("--waiting-critical", type=int)
    @click.option("--unprocessed-critical", type=int)
    @click.option("--last-delivery-critical", type=DURATION, metavar="DURATION")
    @click.option("--last-ack-critical", type=DURATION, metavar="DURATION")
    @click.option("--redelivery-critical", type=int)
    @click.option("--pinned", is_flag=True, default=None)
    def consumer_check(stream_name: str, consumer_name: str, **flags: Any) -> None:
        set_flags = {k: v for k, v in flags.items() if v is not None}
        set_flags.update(stream=stream_name, consumer=consumer_name)
        finish(result(f"{stream_name}_{consumer_name}", "consumer"), check_consumer, set_flags)

    @check.command("kv", help="Checks a NATS KV Bucket")
    @click.option("--bucket", required=True, help="Checks a specific bucket")
    @click.option("--values-critical", default=-1, type=int)
    @click.option("--values-warn", default=-1, type=int)
    @click.option("--key", default="", help="Requires a key to have any non-delete value set")
    def kv_check(bucket: str, **options: Any) -> None:
        finish(result(bucket, "kv"), check_kv, dict(options, bucket=bucket))

    @check.command("message", help="Checks properties of a message stored in a stream")
    @click.option("--stream", "stream_name", required=True, help="The streams to check")
    @click.option("--subject", default=">", help="The subject to fetch a message from")
    @click.option("--age-warn", default="0s", type=DURATION, metavar="DURATION")
    @click.option("--age-critical", default="0s", type=DURATION, metavar="DURATION")
    @click.option("--content", default=".", metavar="REGEX")
    @click.option("--body-timestamp", is_flag=True)
    def message_check(stream_name: str, **options: Any) -> None:
        finish(
            result("Stream Message", "message"), check_message, dict(options, stream=stream_name)
        )

    @check.command("credential", help="Checks the validity of a NATS credential file")
    @click.option("--credential", required=True, help="The file holding the NATS credential")
    @click.option("--validity-warn", default="0s", type=DURATION, metavar="DURATION")
    @click.option("--validity-critical", default="0s", type=DURATION, metavar="DURATION")
    @click.option("--require-expiry/--no-require-expiry", default=True)
    def credential_check(**options: Any) -> None:
        check_result = result("Credential", "credential")
        check_credential(check_result, options)
        raise click.exceptions.Exit(check_result.finish())


CheckBody = Callable[[CheckResult, dict[str, Any]], Coroutine[Any, Any, None]]


def finish(check: CheckResult, body: CheckBody, options: dict[str, Any]) -> None:
    """Run one check, print its result and exit with its code."""
    run_async(body(check, options))
    raise click.exceptions.Exit(check.finish())


async def _connect(check: CheckResult, failure: str) -> Client | None:
    try:
        return await connect()
    except CliError as exc:
        check.critical(f"{failure}: {exc}")
        return None


def _seconds(ns: int) -> float:
    return ns / NS_PER_S


def go_number(value: float) -> str:
    """Go's %v of a float64 (a threshold in seconds): `0.5`, `1`."""
    return go_float(value)


# -- connection ---------------------------------------------------------------------------------


async def check_connection(check: CheckResult, options: dict[str, Any]) -> None:
    started = time.monotonic()
    nc = await _connect(check, "connection failed")
    if nc is None:
        return
    try:
        connect_ns = int((time.monotonic() - started) * NS_PER_S)
        url = nc.connected_url
        url_text = f"{url.scheme}://{url.hostname}:{url.port}" if url else ""
        warn, crit = options["connect_warn"], options["connect_critical"]
        check.pd(
            PerfDataItem(
                "connect_time",
                _seconds(connect_ns),
                _seconds(warn),
                _seconds(crit),
                "s",
                "Time taken to connect to NATS",
            )
        )
        if connect_ns >= crit:
            check.critical(
                f"connected to {url_text}, connect time exceeded {go_number(_seconds(crit))}"
            )
        elif connect_ns >= warn:
            check.warn(
                f"connected to {url_text}, connect time exceeded {go_number(_seconds(warn))}"
            )
        else:
            check.ok(f"connected to {url_text} in {format_duration(connect_ns)}")

        rtt_started = time.monotonic()
        try:
            await nc.flush(timeout=max(1, int(current_settings().timeout_s)))
        except Exception as exc:  # nats-py raises its own timeout types
            check.critical(f"rtt failed: {exc}")
        rtt_ns = int((time.monotonic() - rtt_started) * NS_PER_S)
        warn, crit = options["rtt_warn"], options["rtt_critical"]
        check.pd(
            PerfDataItem(
                "rtt",
                _seconds(rtt_ns),
                _seconds(warn),
                _seconds(crit),
                "s",
                "The round-trip-time of the connection",
            )
        )
        if rtt_ns >= crit:
            check.critical(f"rtt time exceeded {go_number(_seconds(crit))}")
        elif rtt_ns >= warn:
            check.critical(f"rtt time exceeded {go_number(_seconds(warn))}")  # as natscli does
        else:
            check.ok(f"rtt time {format_duration(rtt_ns)}")

        body = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(100))
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox, max_msgs=1)
        request_started = time.monotonic()
        await nc.publish(inbox, body.encode())
        received = b""
        try:
            msg = await sub.next_msg(timeout=current_settings().timeout_s)
            received = msg.data
        except Exception:  # nats-py's TimeoutError
            check.critical(f"did not receive from {inbox}: nats: timeout")
        request_ns = int((time.monotonic() - request_started) * NS_PER_S)
        warn, crit = options["req_warn"], options["req_critical"]
        check.pd(
            PerfDataItem(
                "request_time",
                _seconds(request_ns),
                _seconds(warn),
                _seconds(crit),
                "s",
                "Time taken for a full Request-Reply operation",
            )
        )
        if received != body.encode():
            check.critical("did not receive expected message")
        if request_ns >= crit:
            check.critical(f"round trip request took {_seconds(request_ns):f}")
        elif request_ns >= warn:
            check.warn(f"round trip request took {_seconds(request_ns):f}")
        else:
            check.ok(f"round trip took {_seconds(request_ns):f}s")
    finally:
        await nc.close()


# -- server -------------------------------------------------------------------------------------


async def check_server(check: CheckResult, options: dict[str, Any]) -> None:
    import nats.errors

    nc = await _connect(check, "connection failed")
    if nc is None:
        return
    name = options["name"]
    try:
        body = json.dumps({"server_name": name}).encode()
        try:
            msg = await nc.request(
                "$SYS.REQ.SERVER.PING.VARZ", body, timeout=current_settings().timeout_s
            )
            reply = json.loads(msg.data)
        except nats.errors.NoRespondersError:
            check.critical("varz failed: nats: no responders available for request")
            return
        except nats.errors.TimeoutError:
            check.critical("varz failed: nats: timeout")
            return
        except ValueError as exc:
            check.critical(f"varz failed: {exc}")
            return
    finally:
        await nc.close()
    if reply.get("error"):
        error = reply["error"]
        text = error.get("description", error) if isinstance(error, dict) else error
        check.critical(f'varz failed: invalid response received: "{text}"')
        return
    varz = reply.get("data")
    if not varz:
        check.critical(f"varz failed: no data received for {name}")
        return
    evaluate_varz(check, options, varz)


def evaluate_varz(check: CheckResult, options: dict[str, Any], varz: dict[str, Any]) -> None:
    """natscli's CheckServerWithConnection on a varz document."""
    name = options["name"]
    if varz.get("server_name") != name:
        check.critical(f'result from wrong server "{varz.get("server_name", "")}"')
    if options["js_required"]:
        if (varz.get("jetstream") or {}).get("config"):
            check.ok("JetStream enabled")
        else:
            check.critical("JetStream not enabled")
    if options["tls_required"]:
        if varz.get("tls_required"):
            check.ok("TLS required")
        else:
            check.critical("TLS not required")
    if options["auth_required"]:
        if varz.get("auth_required"):
            check.ok("Authentication required")
        else:
            check.critical("Authentication not required")

    start = humanize.parse_go_time(str(varz.get("start", "")))
    now = humanize.parse_go_time(str(varz.get("now", "")))
    up_ns = humanize.ns_between(now, start) if start and now else 0
    up_warn, up_crit = _seconds(options["uptime_warn"]), _seconds(options["uptime_critical"])
    if up_warn > 0 or up_crit > 0:
        if up_crit > up_warn:
            check.critical("Up invalid thresholds")
            return
        up_text = f"Up {humanize.human_duration(up_ns)}"
        if up_ns <= options["uptime_critical"]:
            check.critical(up_text)
        elif up_ns <= options["uptime_warn"]:
            check.warn(up_text)
        else:
            check.ok(up_text)

    cpu = float(varz.get("cpu", 0))
    mem = float(varz.get("mem", 0))
    conns = float(varz.get("connections", 0))
    subs = float(varz.get("subscriptions", 0))
    check.pd(
        PerfDataItem(
            "uptime", _seconds(up_ns), up_warn, up_crit, "s", "NATS Server uptime in seconds"
        ),
        PerfDataItem(
            "cpu",
            cpu,
            options["cpu_warn"],
            options["cpu_critical"],
            "%",
            "NATS Server CPU usage in percentage",
        ),
        PerfDataItem(
            "mem",
            mem,
            options["mem_warn"],
            options["mem_critical"],
            "",
            "NATS Server memory usage in bytes",
        ),
        PerfDataItem(
            "connections",
            conns,
            options["conn_warn"],
            options["conn_critical"],
            "",
            "Active connections",
        ),
        PerfDataItem(
            "subscriptions",
            subs,
            options["subs_warn"],
            options["subs_critical"],
            "",
            "Active subscriptions",
        ),
    )

    def threshold(label: str, crit: float, warn: float, value: float, invertible: bool) -> None:
        if crit == 0 and warn == 0:
            return
        if not invertible and crit < warn:
            check.critical(f"{label} invalid thresholds")
            return
        text = f"{label} {value:.2f}"
        if invertible and crit < warn:
            if value <= crit:
                check.critical(text)
            elif value <= warn:
                check.warn(text)
            else:
                check.ok(text)
        elif value >= crit:
            check.critical(text)
        elif value >= warn:
            check.warn(text)
        else:
            check.ok(text)

    threshold("CPU", options["cpu_critical"], options["cpu_warn"], cpu, False)
    threshold("Memory", options["mem_critical"], options["mem_warn"], mem, False)
    threshold("Connections", options["conn_critical"], options["conn_warn"], conns, True)
    threshold("Subscriptions", options["subs_critical"], options["subs_warn"], subs, True)


# -- jetstream ----------------------------------------------------------------------------------


async def check_jetstream(check: CheckResult, options: dict[str, Any]) -> None:
    nc = await _connect(check, "connection failed")
    if nc is None:
        return
    try:
        try:
            info = await js_request(nc, "INFO")
        except CliError as exc:
            check.critical(f"JetStream not available: {exc}")
            return
        evaluate_account(check, options, info)
        if options["replicas"]:
            try:
                streams = await _all_streams(nc)
            except CliError as exc:
                check.critical(f"JetStream not available: {exc}")
                return
            evaluate_replicas(check, options, streams)
    finally:
        await nc.close()


async def _all_streams(nc: Client) -> list[dict[str, Any]]:
    streams: list[dict[str, Any]] = []
    while True:
        page = await js_request(nc, "STREAM.LIST", {"offset": len(streams)})
        batch = page.get("streams") or []
        streams += batch
        if not batch or len(streams) >= int(page.get("total", 0)):
            return streams


def evaluate_account(check: CheckResult, options: dict[str, Any], info: dict[str, Any]) -> None:
    limits = info.get("limits") or {}

    def usage(item: str, unit: str, warn: int, crit: int, limit: int, current: int) -> None:
        pct = int(current / limit * 100) if limit > 0 else 0
        check.pd(PerfDataItem(item, current, 0, 0, unit, f"JetStream {item} resource usage"))
        check.pd(
            PerfDataItem(
                f"{item}_pct", pct, warn, crit, "%", f"JetStream {item} resource usage in percent"
            )
        )
        if warn != -1 and crit != -1 and warn >= crit:
            check.critical(f"{item}: invalid thresholds")
            return
        if pct > 100:
            check.critical(f"{item}: exceed server limits")
            return
        if warn >= 0 and crit >= 0:
            if pct > crit:
                check.critical(f"{pct}% {item}")
            elif pct > warn:
                check.warn(f"{pct}% {item}")

    usage(
        "memory",
        "B",
        options["mem_warn"],
        options["mem_critical"],
        int(limits.get("max_memory", 0)),
        int(info.get("memory", 0)),
    )
    usage(
        "storage",
        "B",
        options["store_warn"],
        options["store_critical"],
        int(limits.get("max_storage", 0)),
        int(info.get("storage", 0)),
    )
    usage(
        "streams",
        "",
        options["streams_warn"],
        options["streams_critical"],
        int(limits.get("max_streams", 0)),
        int(info.get("streams", 0)),
    )
    usage(
        "consumers",
        "",
        options["consumers_warn"],
        options["consumers_critical"],
        int(limits.get("max_consumers", 0)),
        int(info.get("consumers", 0)),
    )


def evaluate_replicas(
    check: CheckResult, options: dict[str, Any], streams: list[dict[str, Any]]
) -> None:
    ok = no_leader = missing = failed = lagged = unseen = 0
    seen_ns, lag_limit = options["replica_seen_critical"], options["replica_lag_critical"]
    for stream in streams:
        replicas = int((stream.get("config") or {}).get("num_replicas") or 1)
        if replicas == 1:
            ok += 1
            continue
        cluster = stream.get("cluster")
        if not cluster:
            failed += 1
            continue
        if not cluster.get("leader"):
            no_leader += 1
            continue
        peers = cluster.get("replicas") or []
        if len(peers) != replicas - 1:
            missing += 1
            continue
        for peer in peers:
            if peer.get("offline"):
                failed += 1
            elif int(peer.get("active", 0)) > seen_ns:
                unseen += 1
            elif int(peer.get("lag", 0)) > lag_limit:
                lagged += 1
        ok += 1
    seen_s = _seconds(seen_ns)
    check.pd(
        PerfDataItem("replicas_ok", ok, help="Streams with healthy cluster state"),
        PerfDataItem("replicas_no_leader", no_leader, help="Streams with no leader elected"),
        PerfDataItem(
            "replicas_missing_replicas",
            missing,
            help="Streams where there are fewer known replicas than configured",
        ),
        PerfDataItem(
            "replicas_lagged",
            lagged,
            crit=lag_limit,
            help=f"Streams with > {lag_limit} lagged replicas",
        ),
        PerfDataItem(
            "replicas_not_seen",
            unseen,
            crit=seen_s,
            unit="s",
            help=f"Streams with replicas seen > {format_duration(seen_ns)} ago",
        ),
        PerfDataItem("replicas_fail", failed, help="Streams unhealthy cluster state"),
    )
    if failed or missing or no_leader or unseen or lagged:
        check.critical(f"{failed + missing + no_leader} unhealthy streams")


# -- stream -------------------------------------------------------------------------------------

STREAM_META: dict[str, tuple[str, Callable[[str], Any]]] = {
    "lag-critical": ("lag_critical", int),
    "seen-critical": ("peer_seen_critical", parse_duration_ns),  # as natscli reads it
    "min-sources": ("min_sources", int),
    "max-sources": ("max_sources", int),
    "peer-expect": ("peer_expect", int),
    "peer-lag-critical": ("peer_lag_critical", int),
    "peer-seen-critical": ("peer_seen_critical", parse_duration_ns),
    "msgs-warn": ("msgs_warn", int),
    "msgs-critical": ("msgs_critical", int),
    "subjects-warn": ("subjects_warn", int),
    "subjects-critical": ("subjects_critical", int),
}


def thresholds_from_metadata(
    metadata: dict[str, str], table: dict[str, tuple[str, Callable[[str], Any]]]
) -> dict[str, Any]:
    """`io.nats.monitor.<flag>` metadata as check options; ValueError when one is malformed."""
    found: dict[str, Any] = {}
    for key, (option, parse) in table.items():
        if META + key in metadata:
            found[option] = parse(metadata[META + key])
    return found


async def _load(check: CheckResult, api: str) -> dict[str, Any] | None:
    nc = await _connect(check, "could not load info")
    if nc is None:
        return None
    try:
        return await js_request(nc, api)
    except CliError as exc:
        check.critical(f"could not load info: {exc}")
        return None
    finally:
        await nc.close()


async def check_stream(check: CheckResult, flags: dict[str, Any]) -> None:
    info = await _load(check, f"STREAM.INFO.{flags['stream']}")
    if info is None:
        return
    try:
        options = thresholds_from_metadata(
            (info.get("config") or {}).get("metadata") or {}, STREAM_META
        )
    except ValueError as exc:
        check.critical(f"could not configure based on metadata: {exc}")
        return
    options.update(flags)
    evaluate_stream(check, options, info)


def evaluate_stream(check: CheckResult, options: dict[str, Any], info: dict[str, Any]) -> None:
    """natscli's CheckStreamInfoHealth: cluster, messages, subjects, sources, mirror."""
    config, state = info.get("config") or {}, info.get("state") or {}
    _stream_cluster(check, options, config, info.get("cluster"))
    _stream_messages(check, options, int(state.get("messages", 0)))
    _stream_subjects(check, options, int(state.get("num_subjects", 0)))
    _stream_sources(check, options, info.get("sources") or [])
    _stream_mirror(check, options, config, info)


def _stream_cluster(
    check: CheckResult, options: dict[str, Any], config: dict[str, Any], cluster: Any
) -> None:
    expected = int(options.get("peer_expect", 0))
    replicas = int(config.get("num_replicas") or 1)
    if (not cluster or replicas <= 1) and expected <= 0:
        return
    if not cluster or replicas <= 1:
        check.critical("Stream is not clustered")
        return
    if not cluster.get("leader"):
        check.critical("No leader")
        return
    peers = cluster.get("replicas") or []
    count = len(peers) + 1
    if count != expected:
        check.critical(f"Expected {expected} replicas got {count}")
        return
    check.ok(f"{count} peers")
    lag_limit = int(options.get("peer_lag_critical", 0))
    seen_ns = int(options.get("peer_seen_critical", 0))
    offline = sum(1 for p in peers if p.get("offline"))
    lagged = sum(1 for p in peers if lag_limit > 0 and int(p.get("lag", 0)) > lag_limit)
    inactive = sum(1 for p in peers if seen_ns > 0 and int(p.get("active", 0)) > seen_ns)
    if offline:
        check.critical(f"{offline} replicas offline")
    if lag_limit > 0:
        check.critical(f"{lagged} replicas lagged") if lagged else check.ok("replicas are current")
    if seen_ns > 0:
        if inactive:
            check.critical(f"{inactive} replicas inactive")
        else:
            check.ok("replicas are active")


def _stream_messages(check: CheckResult, options: dict[str, Any], messages: int) -> None:
    warn, crit = int(options.get("msgs_warn", 0)), int(options.get("msgs_critical", 0))
    if crit <= 0 and warn <= 0:
        return
    check.pd(PerfDataItem("messages", messages, warn, crit, "", "Messages stored in the stream"))
    if crit > 0 and messages <= crit:
        check.critical(f"{messages} messages")
    elif warn > 0 and messages <= warn:
        check.warn(f"{messages} messages")
    else:
        check.ok(f"{messages} messages")


def _stream_subjects(check: CheckResult, options: dict[str, Any], subjects: int) -> None:
    warn, crit = int(options.get("subjects_warn", 0)), int(options.get("subjects_critical", 0))
    if warn <= 0 and crit <= 0:
        return
    ascending = warn < crit
    check.pd(
        PerfDataItem(
            "subjects", subjects, warn, crit, "", "Number of subjects stored in the stream"
        )
    )
    text = f"{subjects} subjects"
    if (ascending and subjects >= crit) or (not ascending and subjects <= crit):
        check.critical(text)
    elif (ascending and subjects >= warn) or (not ascending and subjects <= warn):
        check.warn(text)
    else:
        check.ok(text)


def _stream_sources(check: CheckResult, options: dict[str, Any], sources: list[Any]) -> None:
    count = len(sources)
    minimum, maximum = int(options.get("min_sources", 0)), int(options.get("max_sources", 0))
    check.pd(
        PerfDataItem(
            "sources",
            count,
            minimum,
            maximum,
            "",
            "Number of sources being consumed by this stream",
        )
    )
    if (minimum > 0 and count < minimum) or (maximum > 0 and count > maximum):
        check.critical(f"{count} sources")
    else:
        check.ok(f"{count} sources")
    lag_limit, seen_ns = int(options.get("lag_critical", 0)), int(options.get("seen_critical", 0))
    if lag_limit <= 0 and seen_ns <= 0:
        return
    lagged = sum(1 for s in sources if lag_limit > 0 and int(s.get("lag", 0)) >= lag_limit)
    inactive = sum(1 for s in sources if seen_ns > 0 and int(s.get("active", 0)) >= seen_ns)
    check.pd(
        PerfDataItem(
            "sources_lagged",
            lagged,
            help="Number of sources that are behind more than the configured threshold",
        ),
        PerfDataItem("sources_inactive", inactive, help="Number of sources that are inactive"),
    )
    if lagged:
        check.critical(f"{lagged} sources are lagged")
    else:
        check.ok(f"{count} sources current")
    if inactive:
        check.critical(f"{inactive} sources are inactive")
    else:
        check.ok(f"{count} sources active")


def _stream_mirror(
    check: CheckResult, options: dict[str, Any], config: dict[str, Any], info: dict[str, Any]
) -> None:
    lag_limit, seen_ns = int(options.get("lag_critical", 0)), int(options.get("seen_critical", 0))
    if (lag_limit <= 0 and seen_ns <= 0) or not config.get("name") or info.get("sources"):
        return
    mirror, state = config.get("mirror"), info.get("mirror")
    if not mirror:
        check.critical("not mirrored")
        return
    if not state:
        check.critical("invalid state")
        return
    lag, active = int(state.get("lag", 0)), int(state.get("active", 0))
    check.pd(
        PerfDataItem(
            "lag", lag, crit=lag_limit, help="Number of operations this peer is behind its origin"
        ),
        PerfDataItem(
            "active",
            _seconds(active),
            crit=_seconds(seen_ns),
            unit="s",
            help="Indicates if this peer is active and catching up if lagged",
        ),
    )
    healthy = True
    if lag_limit > 0 and lag >= lag_limit:
        check.critical(f"Mirror Lag {lag}")
        healthy = False
    if seen_ns > 0 and active >= seen_ns:
        check.critical(f"Mirror Seen {format_duration(active)}")
        healthy = False
    if healthy:
        check.ok(f"Mirror {mirror.get('name', '')}")


# -- consumer -----------------------------------------------------------------------------------

CONSUMER_META: dict[str, tuple[str, Callable[[str], Any]]] = {
    "outstanding-ack-critical": ("outstanding_ack_critical", int),
    "waiting-critical": ("waiting_critical", int),
    "unprocessed-critical": ("unprocessed_critical", int),
    "last-delivery-critical": ("last_delivery_critical", parse_duration_ns),
    "last-ack-critical": ("last_ack_critical", parse_duration_ns),
    "redelivery-critical": ("redelivery_critical", int),
    "pinned": ("pinned", lambda v: v.lower() in ("1", "t", "true")),
}


async def check_consumer(check: CheckResult, flags: dict[str, Any]) -> None:
    info = await _load(check, f"CONSUMER.INFO.{flags['stream']}.{flags['consumer']}")
    if info is None:
        return
    try:
        options = thresholds_from_metadata(
            (info.get("config") or {}).get("metadata") or {}, CONSUMER_META
        )
    except ValueError as exc:
        check.critical(f"could not configure based on metadata: {exc}")
        return
    options.update(flags)
    evaluate_consumer(check, options, info, dt.datetime.now(dt.UTC))


def evaluate_consumer(
    check: CheckResult, options: dict[str, Any], info: dict[str, Any], now: dt.datetime
) -> None:
    ack_pending = int(info.get("num_ack_pending", 0))
    waiting = int(info.get("num_waiting", 0))
    pending = int(info.get("num_pending", 0))
    redelivered = int(info.get("num_redelivered", 0))
    ack_crit = int(options.get("outstanding_ack_critical", 0))
    waiting_crit = int(options.get("waiting_critical", 0))
    unprocessed_crit = int(options.get("unprocessed_critical", 0))
    redelivery_crit = int(options.get("redelivery_critical", 0))
    delivery_ns = int(options.get("last_delivery_critical", 0))
    ack_ns = int(options.get("last_ack_critical", 0))
    last_delivery = humanize.parse_go_time(
        str((info.get("delivered") or {}).get("last_active", ""))
    )
    last_ack = humanize.parse_go_time(str((info.get("ack_floor") or {}).get("last_active", "")))

    check.pd(
        PerfDataItem(
            "ack_pending",
            ack_pending,
            crit=ack_crit,
            help="The number of messages waiting to be Acknowledged",
        ),
        PerfDataItem(
            "pull_waiting", waiting, crit=waiting_crit, help="The number of waiting Pull requests"
        ),
        PerfDataItem(
            "pending",
            pending,
            crit=unprocessed_crit,
            help="The number of messages that have not yet been consumed",
        ),
        PerfDataItem(
            "redelivered",
            redelivered,
            crit=redelivery_crit,
            help="The number of messages currently being redelivered",
        ),
    )
    if last_delivery is not None:
        check.pd(
            PerfDataItem(
                "last_delivery",
                (now - last_delivery).total_seconds(),
                crit=_seconds(delivery_ns),
                unit="s",
                help="Seconds since the last message was delivered",
            )
        )
    if last_ack is not None:
        check.pd(
            PerfDataItem(
                "last_ack",
                (now - last_ack).total_seconds(),
                crit=_seconds(ack_ns),
                unit="s",
                help="Seconds since the last message was acknowledged",
            )
        )

    def at_most(limit: int, value: int, text: str) -> None:
        if limit <= 0:
            return
        check.critical(text) if value >= limit else check.ok(text)

    at_most(ack_crit, ack_pending, f"Ack Pending: {ack_pending}")
    at_most(waiting_crit, waiting, f"Waiting Pulls: {waiting}")
    # natscli compares the pending count but reports the ack pending one
    at_most(unprocessed_crit, pending, f"Unprocessed Messages: {ack_pending}")
    at_most(redelivery_crit, redelivered, f"Redelivered: {redelivered}")
    _since(check, delivery_ns, last_delivery, now, "No deliveries", "Last delivery")
    _since(check, ack_ns, last_ack, now, "No acks", "Last ack")
    _pinned(check, options, info)


def _since(
    check: CheckResult,
    limit_ns: int,
    moment: dt.datetime | None,
    now: dt.datetime,
    never: str,
    label: str,
) -> None:
    if limit_ns <= 0:
        return
    if moment is None:
        check.critical(never)
        return
    age_ns = humanize.ns_between(now, moment)
    if age_ns >= limit_ns:
        check.critical(f"{label} {format_duration(age_ns)} ago")
    else:
        check.ok(f"{label} {go_time(moment)}")


def _pinned(check: CheckResult, options: dict[str, Any], info: dict[str, Any]) -> None:
    config = info.get("config") or {}
    groups = info.get("priority_groups") or []
    pinned = sum(1 for g in groups if g.get("pinned_client_id"))
    configured = config.get("priority_groups") or []
    is_pinned_policy = config.get("priority_policy") == "pinned_client"
    if is_pinned_policy:
        check.pd(
            PerfDataItem(
                "pinned_groups", pinned, help="The number of consumers groups with pinned clients"
            ),
            PerfDataItem("groups", len(configured), help="The total number of consumers groups"),
        )
    if not options.get("pinned"):
        return
    if not groups or not configured or not is_pinned_policy:
        check.critical("Not pinned client priority mode")
    elif pinned != len(configured):
        check.critical(f"{pinned} / {len(configured)} pinned clients")
    else:
        check.ok(f"{pinned} pinned clients")


def go_time(moment: dt.datetime) -> str:
    """Go's Time.String() of a UTC time: `2025-01-02 03:04:05.123456789 +0000 UTC`."""
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + " +0000 UTC"


# -- kv -----------------------------------------------------------------------------------------


async def check_kv(check: CheckResult, options: dict[str, Any]) -> None:
    nc = await _connect(check, "connection failed")
    if nc is None:
        return
    bucket, key = options["bucket"], options["key"]
    try:
        try:
            info = await js_request(nc, f"STREAM.INFO.KV_{bucket}")
        except ApiError as exc:
            if exc.err_code == 10059:
                check.critical(f"bucket {bucket} not found")
            else:
                check.critical(f"could not load bucket: {exc}")
            return
        except CliError as exc:
            check.critical(f"could not load bucket: {exc}")
            return
        check.ok(f"bucket {bucket}")
        values = int((info.get("state") or {}).get("messages", 0))
        warn, crit = options["values_warn"], options["values_critical"]
        check.pd(
            PerfDataItem(
                "values", values, warn, crit, "", "How many values are stored in the bucket"
            )
        )
        if key:
            await _kv_key(check, nc, bucket, key)
    finally:
        await nc.close()
    if warn > -1 or crit > -1:
        text = f"{values} values"
        if crit < warn:
            if crit > -1 and values <= crit:
                check.critical(text)
            elif warn > -1 and values <= warn:
                check.warn(text)
            else:
                check.ok(text)
        elif crit > -1 and values >= crit:
            check.critical(text)
        elif warn > -1 and values >= warn:
            check.warn(text)
        else:
            check.ok(text)
    config = info.get("config") or {}
    check.pd(
        PerfDataItem(
            "bytes",
            int((info.get("state") or {}).get("bytes", 0)),
            unit="B",
            help="Bytes stored in the bucket",
        ),
        PerfDataItem("replicas", int(config.get("num_replicas") or 1)),
    )


async def _kv_key(check: CheckResult, nc: Client, bucket: str, key: str) -> None:
    try:
        reply = await js_request(
            nc, f"STREAM.MSG.GET.KV_{bucket}", {"last_by_subj": f"$KV.{bucket}.{key}"}
        )
    except ApiError as exc:
        if exc.err_code == NO_MESSAGE:
            check.critical(f"key {key} not found")
        else:
            check.critical(f"key {key} not loaded: {exc}")
        return
    except CliError as exc:
        check.critical(f"key {key} not loaded: {exc}")
        return
    headers = _headers(str((reply.get("message") or {}).get("hdrs") or ""))
    operation = headers.get("KV-Operation", "")
    if operation == "DEL":
        check.critical(f"key {key} is deleted")
    elif operation == "PURGE":
        check.critical(f"key {key} is purged")
    else:
        check.ok(f"key {key} found")


def _headers(encoded: str) -> dict[str, str]:
    if not encoded:
        return {}
    try:
        text = base64.b64decode(encoded).decode(errors="replace")
    except (binascii.Error, ValueError):
        return {}
    headers = {}
    for line in text.split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip()] = value.strip()
    return headers


# -- message ------------------------------------------------------------------------------------


async def check_message(check: CheckResult, options: dict[str, Any]) -> None:
    nc = await _connect(check, "could not load info")
    if nc is None:
        return
    stream, subject = options["stream"], options["subject"]
    try:
        reply = await js_request(nc, f"STREAM.MSG.GET.{stream}", {"last_by_subj": subject})
    except ApiError as exc:
        if exc.err_code == NO_MESSAGE:
            check.critical("no message found")
        else:
            check.critical(f"msg load failed: {exc}")
        return
    except CliError as exc:
        check.critical(f"msg load failed: {exc}")
        return
    finally:
        await nc.close()
    message = reply.get("message") or {}
    data = base64.b64decode(message.get("data") or "")
    stamp = humanize.parse_go_time(str(message.get("time", ""))) or dt.datetime.now(dt.UTC)
    if options["body_timestamp"]:
        try:
            stamp = dt.datetime.fromtimestamp(int(data.strip()), dt.UTC)
        except ValueError as exc:
            check.critical(f"invalid timestamp body: {exc}")
    age_ns = humanize.ns_between(dt.datetime.now(dt.UTC), stamp)
    age_ms = round(age_ns / MILLISECOND) * MILLISECOND
    warn, crit = options["age_warn"], options["age_critical"]
    check.pd(
        PerfDataItem(
            "age", _seconds(age_ms), _seconds(warn), _seconds(crit), "s", "The age of the message"
        ),
        PerfDataItem("size", len(data), unit="B", help="The size of the message"),
    )
    if crit > 0 and age_ns > crit:
        check.critical(f"{format_duration(age_ms)} old")
    elif warn > 0 and age_ns > warn:
        check.warn(f"{format_duration(age_ms)} old")
    if options["content"]:
        try:
            pattern = re.compile(options["content"].encode())
        except re.error as exc:
            check.critical(f"content regex compile failed: {exc}")
            return
        if not pattern.search(data):
            check.critical(f"does not match regex: {options['content']}")
    check.ok_if_clean(f"Valid message on {stream} > {subject}")


# -- credential ---------------------------------------------------------------------------------

_JWT_BLOCK = re.compile(r"-{3,}[^\n]*JWT[^\n]*-{3,}\s*\n\s*(\S+)\s*\n", re.I)


def check_credential(check: CheckResult, options: dict[str, Any]) -> None:
    path = options["credential"]
    try:
        if os.path.isdir(path):
            raise OSError(f"{path} is a directory")
        with open(path, "rb") as stream:
            content = stream.read().decode(errors="replace")
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        detail = f"stat {path}: {reason}" if exc.strerror else reason
        check.critical(f"credential not accessible: {detail}")
        return
    match = _JWT_BLOCK.search(content)
    token = match.group(1) if match else content.strip()
    try:
        claims = _jwt_claims(token)
    except ValueError as exc:
        check.critical(f"invalid credential: {exc}")
        return
    expires = int(claims.get("exp") or 0)
    until = expires - int(time.time())
    warn_ns, crit_ns = options["validity_warn"], options["validity_critical"]
    check.pd(PerfDataItem("expiry", until, warn_ns, crit_ns, "s", "Expiry time in seconds"))
    if expires == 0 and options["require_expiry"]:
        check.critical("never expires")
    elif crit_ns > 0 and until <= crit_ns:
        check.critical(f"expires sooner than {humanize.human_duration(crit_ns)}")
    elif warn_ns > 0 and until <= warn_ns:
        check.warn(f"expires sooner than {humanize.human_duration(warn_ns)}")
    elif expires == 0:
        check.ok("never expires")
    else:
        moment = dt.datetime.fromtimestamp(expires, dt.UTC)
        check.ok(f"expires in {go_time(moment)}")


def _jwt_claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("expected 3 chunks")
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(str(exc)) from exc
    if not isinstance(claims, dict):
        raise ValueError("invalid claims")
    return claims
