"""The JetStream checks of `nats server check`: jetstream, stream, consumer, kv, message.

Stream and consumer thresholds may come from their metadata (`io.nats.monitor.<flag>`),
flags taking precedence.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pynats.cli.server.check_core import connect_or_critical, go_time, seconds
from pynats.cli.server.check_result import CheckResult, PerfDataItem
from pynats.cli.ui import humanize
from pynats.cli.ui.connect import js_request
from pynats.cli.ui.errors import ApiError, CliError
from pynats.cli.ui.parse import parse_duration_ns
from pynats.gotime import MILLISECOND, format_duration

if TYPE_CHECKING:
    from nats.aio.client import Client

NO_MESSAGE = 10037
META = "io.nats.monitor."


# -- jetstream ----------------------------------------------------------------------------------


async def check_jetstream(check: CheckResult, options: dict[str, Any]) -> None:
    nc = await connect_or_critical(check, "connection failed")
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
    seen_s = seconds(seen_ns)
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
    nc = await connect_or_critical(check, "could not load info")
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
            seconds(active),
            crit=seconds(seen_ns),
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
                crit=seconds(delivery_ns),
                unit="s",
                help="Seconds since the last message was delivered",
            )
        )
    if last_ack is not None:
        check.pd(
            PerfDataItem(
                "last_ack",
                (now - last_ack).total_seconds(),
                crit=seconds(ack_ns),
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


# -- kv -----------------------------------------------------------------------------------------


async def check_kv(check: CheckResult, options: dict[str, Any]) -> None:
    nc = await connect_or_critical(check, "connection failed")
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
    nc = await connect_or_critical(check, "could not load info")
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
            "age", seconds(age_ms), seconds(warn), seconds(crit), "s", "The age of the message"
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
