"""How `nats consumer` shows consumers: the info screen, `ls` and `report` tables, `next` lines.

Pure functions of the JSON the server sent (ConsumerInfo), laid out as natscli does
(cli.md §8.2, §8.3, §8.4 and §8.7).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from pynats.cli.stream.api import user_metadata
from pynats.cli.stream.render import (
    API_LEVEL_KEY,
    go_time_text,
    moment,
    render_api_metadata,
    render_cluster,
    since,
)
from pynats.cli.ui import humanize
from pynats.cli.ui.columns import Columns
from pynats.cli.ui.humanize import MAX_DURATION_NS
from pynats.cli.ui.table import Table
from pynats.gotime import MICROSECOND, NS_PER_S, format_duration

ACK_NAMES = {"none": "None", "all": "All", "explicit": "Explicit", "flow_control": "Flow Control"}
REPLAY_NAMES = {"instant": "Instant", "original": "Original"}
DELIVER_NAMES = {"all": "All", "last": "Last", "new": "New", "last_per_subject": "Last Per Subject"}
MIRROR_KEYS = ("_nats.mirror.stream", "_nats.mirror.account", "_nats.mirror.domain")
SOURCE_KEYS = ("_nats.source.stream", "_nats.source.account", "_nats.source.domain")
MAX_BACKOFF_SHOWN = 15


def render_backoff(periods: list[int]) -> str:
    """Backoff periods in Go's duration style; long lists keep the first and last five."""
    if not periods:
        return "unset"
    texts = [format_duration(p) for p in periods]
    if len(texts) > MAX_BACKOFF_SHOWN:
        shown = [*texts[:5], "...", *texts[-5:]]
        return f"{', '.join(shown)} ({len(texts)} total)"
    return ", ".join(texts)


def consumer_info_screen(info: dict[str, Any], *, state_only: bool = False) -> Columns:
    """The `consumer info` screen (`consumer state` with `state_only`)."""
    config = info.get("config") or {}
    created = moment(info.get("created"))
    created_text = humanize.local_time(created) if created else ""
    title = "State" if state_only else "Information"
    screen = Columns(
        f"{title} for Consumer {info.get('stream_name', '')} > {info.get('name', '')} "
        f"created {created_text}"
    )
    if not state_only:
        _add_configuration(screen, info, config)
    _add_cluster(screen, info)
    _add_state(screen, info, config)
    return screen


def _add_configuration(screen: Columns, info: dict[str, Any], config: dict[str, Any]) -> None:
    screen.add_section("Configuration")
    screen.add_row_if_not_empty("Name", config.get("name"))
    durable = config.get("durable_name", "")
    screen.add_row_if("Durable Name", durable, bool(durable) and durable != config.get("name"))
    screen.add_row_if_not_empty("Description", config.get("description"))
    push = bool(config.get("deliver_subject"))
    if push:
        screen.add_row("Delivery Subject", config["deliver_subject"])
    else:
        screen.add_row("Pull Mode", True)
    if config.get("filter_subject"):
        screen.add_row("Filter Subject", config["filter_subject"])
    elif config.get("filter_subjects"):
        screen.add_row("Filter Subjects", config["filter_subjects"])
    policy = config.get("deliver_policy", "all")
    if policy in DELIVER_NAMES:
        screen.add_row("Deliver Policy", DELIVER_NAMES[policy])
    elif policy == "by_start_time":
        screen.add_row("Deliver Policy", f"Since {go_time_text(config.get('opt_start_time', ''))}")
    elif policy == "by_start_sequence":
        screen.add_row("Deliver Policy", f"From Sequence {config.get('opt_start_seq', 0)}")
    group = config.get("deliver_group", "")
    screen.add_row_if("Deliver Queue Group", group, bool(group) and push)
    ack = config.get("ack_policy", "none")
    screen.add_row("Ack Policy", ACK_NAMES.get(ack, ack))
    screen.add_row_if(
        "Ack Wait", humanize.human_duration(int(config.get("ack_wait", 0) or 0)), ack != "none"
    )
    replay = config.get("replay_policy", "instant")
    screen.add_row("Replay Policy", REPLAY_NAMES.get(replay, replay))
    max_deliver = int(config.get("max_deliver", -1))
    screen.add_row_if("Maximum Deliveries", max_deliver, max_deliver != -1)
    screen.add_row_if_not_empty("Sampling Rate", config.get("sample_freq"))
    rate = int(config.get("rate_limit_bps", 0) or 0)
    screen.add_row_if("Rate Limit", f"{humanize.ibytes(rate // 8)} / second", rate > 0)
    pending = int(config.get("max_ack_pending", 0) or 0)
    screen.add_row_if("Max Ack Pending", pending, pending > 0)
    waiting = int(config.get("max_waiting", 0) or 0)
    screen.add_row_if("Max Waiting Pulls", waiting, waiting > 0)
    heartbeat = int(config.get("idle_heartbeat", 0) or 0)
    screen.add_row_if("Idle Heartbeat", humanize.human_duration(heartbeat), heartbeat > 0)
    screen.add_row_if("Flow Control", bool(config.get("flow_control")), push)
    screen.add_row_if("Headers Only", True, bool(config.get("headers_only")))
    inactive = int(config.get("inactive_threshold", 0) or 0)
    screen.add_row_if(
        "Inactive Threshold", humanize.human_duration(inactive), inactive > 0 and not push
    )
    expires = int(config.get("max_expires", 0) or 0)
    screen.add_row_if("Max Pull Expire", humanize.human_duration(expires), expires > 0)
    batch = int(config.get("max_batch", 0) or 0)
    screen.add_row_if("Max Pull Batch", batch, batch > 0)
    max_bytes = int(config.get("max_bytes", 0) or 0)
    screen.add_row_if("Max Pull MaxBytes", max_bytes, max_bytes > 0)
    backoff = config.get("backoff") or []
    screen.add_row_if("Backoff", render_backoff(backoff), bool(backoff))
    replicas = int(config.get("num_replicas", 0) or 0)
    screen.add_row_if("Replicas", replicas, replicas > 0)
    screen.add_row_if("Memory Storage", True, bool(config.get("mem_storage")))
    paused_until = moment(config.get("pause_until"))
    if info.get("paused") and paused_until:
        remaining = humanize.round_duration(int(info.get("pause_remaining", 0) or 0), NS_PER_S)
        screen.add_row(
            "Paused Until Deadline",
            f"{humanize.local_time(paused_until)} ({format_duration(remaining)} remaining)",
        )
    elif paused_until:
        screen.add_row("Paused Until Deadline", f"{humanize.local_time(paused_until)} (passed)")
    priority = config.get("priority_policy") or "none"
    if priority != "none":
        screen.add_row("Priority Policy", priority)
        screen.add_row("Priority Groups", config.get("priority_groups") or [])
        if priority == "pinned_client":
            screen.add_row(
                "Pinned TTL", humanize.human_duration(int(config.get("priority_timeout", 0) or 0))
            )
    metadata = config.get("metadata") or {}
    for title, (stream_key, account_key, domain_key) in (
        ("Mirror Target", MIRROR_KEYS),
        ("Source Target", SOURCE_KEYS),
    ):
        if metadata.get(stream_key):
            screen.add_section(title)
            screen.add_row("Stream", metadata[stream_key])
            screen.add_row_if_not_empty("Account", metadata.get(account_key))
            screen.add_row_if_not_empty("Domain", metadata.get(domain_key))
    user = user_metadata(metadata)
    if user:
        screen.add_section("Metadata")
        for key in sorted(user):
            screen.add_row(key, user[key])


def _add_cluster(screen: Columns, info: dict[str, Any]) -> None:
    cluster = info.get("cluster") or {}
    if not cluster.get("name"):
        return
    screen.add_section("Cluster Information")
    screen.add_row("Name", cluster["name"])
    screen.add_row_if_not_empty("Raft Group", cluster.get("raft_group"))
    if cluster.get("leader_since"):
        screen.add_row(
            "Leader",
            f"{cluster.get('leader', '')} ({humanize.human_duration(since(info, cluster['leader_since']))})",
        )
    else:
        screen.add_row("Leader", cluster.get("leader", ""))
    for replica in cluster.get("replicas") or []:
        active = int(replica.get("active", 0) or 0)
        seen = (
            "not seen"
            if active in (0, MAX_DURATION_NS)
            else f"seen {humanize.human_duration(active)} ago"
        )
        state = "current" if replica.get("current") else "outdated"
        screen.add_row("Replica", f"{replica.get('name', '')}, {state}, {seen}")


def _sequences(position: dict[str, Any], info: dict[str, Any], last_label: str) -> str:
    text = (
        f"Consumer sequence: {humanize.comma(int(position.get('consumer_seq', 0)))} "
        f"Stream sequence: {humanize.comma(int(position.get('stream_seq', 0)))}"
    )
    if position.get("last_active"):
        text += (
            f" {last_label}: {humanize.human_duration(since(info, position['last_active']))} ago"
        )
    return text


def _add_state(screen: Columns, info: dict[str, Any], config: dict[str, Any]) -> None:
    screen.add_section("State")
    render_api_metadata(screen, config.get("metadata"))
    screen.add_row(
        "Last Delivered Message", _sequences(info.get("delivered") or {}, info, "Last delivery")
    )
    if config.get("ack_policy", "none") != "none":
        screen.add_row(
            "Acknowledgment Floor", _sequences(info.get("ack_floor") or {}, info, "Last Ack")
        )
        pending = int(info.get("num_ack_pending", 0))
        maximum = int(config.get("max_ack_pending", 0) or 0)
        if maximum > 0:
            screen.add_row(
                "Outstanding Acks",
                f"{humanize.comma(pending)} out of maximum {humanize.comma(maximum)}",
            )
        else:
            screen.add_row("Outstanding Acks", pending)
        screen.add_row("Redelivered Messages", int(info.get("num_redelivered", 0)))
    screen.add_row("Unprocessed Messages", int(info.get("num_pending", 0)))
    waiting = int(info.get("num_waiting", 0))
    if not config.get("deliver_subject"):
        maximum = int(config.get("max_waiting", 0) or 0)
        if maximum > 0:
            screen.add_row(
                "Waiting Pulls", f"{humanize.comma(waiting)} of maximum {humanize.comma(maximum)}"
            )
        else:
            screen.add_row("Waiting Pulls", f"{humanize.comma(waiting)} of unlimited")
    elif info.get("push_bound"):
        group = config.get("deliver_group")
        screen.add_row(
            "Active Interest", f"Active using Queue Group {group}" if group else "Active"
        )
    else:
        screen.add_row("Active Interest", "No interest")
    if info.get("paused"):
        remaining = int(info.get("pause_remaining", 0) or 0)
        reference = moment(info.get("ts"))
        if reference is not None:
            until = reference + dt.timedelta(microseconds=remaining // MICROSECOND)
            rounded = humanize.round_duration(remaining, NS_PER_S)
            screen.add_row(
                "Paused Until",
                f"{humanize.local_time(until)} ({format_duration(rounded)} remaining)",
            )
    groups = info.get("priority_groups") or []
    if groups and config.get("priority_policy") == "pinned_client":
        states = {}
        for group in groups:
            pinned = group.get("pinned_client_id")
            stamp = moment(group.get("pinned_ts"))
            states[group.get("group", "")] = (
                f"pinned {pinned} at {humanize.local_time(stamp) if stamp else ''}"
                if pinned
                else "No client"
            )
        screen.add_map_as_value("Priority Groups", states)


def consumers_table(infos: list[dict[str, Any]]) -> Table:
    """`consumer ls`: one row per consumer."""
    table = Table(
        "Consumers",
        ["Name", "Description", "Created", "Ack Pending", "Unprocessed", "Last Delivery"],
    )
    for info in infos:
        created = moment(info.get("created"))
        last = (info.get("delivered") or {}).get("last_active")
        table.add_row(
            info.get("name", ""),
            (info.get("config") or {}).get("description", ""),
            humanize.local_time(created) if created else "",
            int(info.get("num_ack_pending", 0)),
            int(info.get("num_pending", 0)),
            humanize.human_duration(since(info, last)),
        )
    return table


def consumer_report_table(
    stream: str,
    stream_messages: int,
    consumer_count: int,
    infos: list[dict[str, Any]],
    *,
    raw: bool,
) -> Table:
    """`consumer report STREAM`: the state of every consumer of a stream."""
    table = Table(
        f"Consumer report for {stream} with {humanize.comma(consumer_count)} consumers",
        [
            "Consumer",
            "Mode",
            "Ack Policy",
            "Ack Wait",
            "Ack Pending",
            "Redelivered",
            "Unprocessed",
            "Ack Floor",
            "API Level",
            "Cluster",
        ],
    )
    for info in infos:
        config = info.get("config") or {}
        mode = "Push" if config.get("deliver_subject") else "Pull"
        ack = ACK_NAMES.get(config.get("ack_policy", "none"), config.get("ack_policy", ""))
        ack_wait = int(config.get("ack_wait", 0) or 0)
        pending = int(info.get("num_ack_pending", 0))
        redelivered = int(info.get("num_redelivered", 0))
        unprocessed = int(info.get("num_pending", 0))
        floor = int((info.get("ack_floor") or {}).get("stream_seq", 0))
        level = (config.get("metadata") or {}).get(API_LEVEL_KEY) or "0"
        cluster = render_cluster(info.get("cluster"))
        if raw:
            table.add_row(
                info.get("name", ""), mode, ack, ack_wait, pending, redelivered, unprocessed,
                floor, level, cluster,
            )  # fmt: skip
            continue
        shown = "0"
        if unprocessed > 0:
            percent = math.floor(unprocessed / stream_messages * 100) if stream_messages else 100
            shown = f"{humanize.comma(unprocessed)} / {min(percent, 100)}%"
        table.add_row(
            info.get("name", ""),
            mode,
            ack,
            humanize.human_duration(ack_wait),
            humanize.comma(pending),
            humanize.comma(redelivered),
            shown,
            humanize.comma(floor),
            level,
            cluster,
        )
    return table
