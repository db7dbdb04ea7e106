"""How `nats stream` shows streams: the info screen, the tables, a stored message.

Every function takes the JSON the server sent (StreamInfo, stored message) and returns text or
a `Columns`/`Table`; nothing here talks to the server. Layouts follow natscli (cli.md §7.2,
§7.3, §7.8 and §7.10): labels, section order, `unlimited`, and the value formatting of §0.5.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Any

from pynats.cli.stream.api import user_metadata
from pynats.cli.ui import humanize
from pynats.cli.ui.columns import Columns
from pynats.cli.ui.humanize import MAX_DURATION_NS
from pynats.cli.ui.table import Table

API_LEVEL_KEY = "_nats.req.level"
SERVER_VERSION_KEY = "_nats.ver"
SERVER_LEVEL_KEY = "_nats.level"
CREATED_VERSION_KEY = "_nats.created.server.version"

STORAGE_NAMES = {"file": "File", "memory": "Memory"}
RETENTION_NAMES = {"limits": "Limits", "interest": "Interest", "workqueue": "WorkQueue"}
DISCARD_NAMES = {"old": "Old", "new": "New"}
COMPRESSION_NAMES = {"none": "None", "s2": "S2 Compression"}
PERSIST_NAMES = {"default": "Default", "async": "Async"}
# Headers direct get adds on its own: not part of the stored message, so not shown.
BOOKKEEPING_HEADERS = (
    "Nats-Subject",
    "Nats-Stream",
    "Nats-Sequence",
    "Nats-Time-Stamp",
    "Nats-Num-Pending",
    "Nats-Last-Sequence",
    "Nats-UpTo-Sequence",
)


# -- value helpers ------------------------------------------------------------------------------


def moment(text: str | None) -> dt.datetime | None:
    """A server timestamp, or None for Go's zero time (or a missing one)."""
    if not text:
        return None
    parsed = humanize.parse_go_time(text)
    if parsed is None or parsed.year <= 1970:
        return None
    return parsed


def since(info: dict[str, Any], text: str | None) -> int:
    """natscli's sinceRefOrNow: age of `text` relative to the info's `ts` (or now), in ns;
    Go's saturated maximum (`never`) when `text` is not a time."""
    reference = moment(info.get("ts")) or dt.datetime.now(dt.UTC)
    earlier = moment(text)
    return MAX_DURATION_NS if earlier is None else humanize.ns_between(reference, earlier)


_STAMP = re.compile(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)")


def go_time_text(text: str) -> str:
    """A server timestamp in Go's default format: `2025-03-02 14:03:10.412 +0000 UTC`."""
    match = _STAMP.fullmatch(text.strip())
    if match is None:
        return text
    date, clock, fraction, zone = match.groups()
    fraction = (fraction or "").rstrip("0").rstrip(".")
    offset = "+0000 UTC" if zone == "Z" else f"{zone.replace(':', '')} {zone.replace(':', '')}"
    return f"{date} {clock}{fraction} {offset}"


def render_api_metadata(screen: Columns, metadata: dict[str, str] | None) -> None:
    """The Host Version / Required API Level rows drawn from the server's `_nats.*` metadata."""
    metadata = metadata or {}
    version = metadata.get(SERVER_VERSION_KEY, "")
    level = metadata.get(SERVER_LEVEL_KEY, "")
    required = metadata.get(API_LEVEL_KEY, "")
    created = metadata.get(CREATED_VERSION_KEY, "")
    if version:
        if created and created != version:
            screen.add_row("Host Version", f"{version} created on {created}")
        else:
            screen.add_row("Host Version", version)
    if level or required:
        screen.add_row("Required API Level", f"{required or '0'} hosted at level {level}")


def render_cluster(cluster: dict[str, Any] | None) -> str:
    """The peers of a RAFT group for report tables: leader marked `*`, lagging ones `!`."""
    if not cluster:
        return ""
    peers: list[str] = []
    warn: list[int] = []
    has_leader = bool(cluster.get("leader"))
    if has_leader:
        peers.append(cluster["leader"])
    for replica in cluster.get("replicas") or []:
        if replica.get("offline") or not replica.get("current"):
            warn.append(len(peers))
        peers.append(replica.get("name", ""))
    compact = humanize.compact_names(peers)
    if has_leader:
        compact[0] += "*"
    for index in warn:
        compact[index] += "!"
    return ", ".join(sorted(compact))


# -- stream info ---------------------------------------------------------------------------------


def stream_info_screen(info: dict[str, Any], name: str, *, state_only: bool = False) -> Columns:
    """The `stream info` screen (or `stream state` with `state_only`)."""
    created = moment(info.get("created"))
    created_text = humanize.local_time(created) if created else ""
    title = "State" if state_only else "Information"
    screen = Columns(f"{title} for Stream {name} created {created_text}")
    config = info.get("config") or {}
    if not state_only:
        _add_config(screen, config)
    _add_cluster(screen, info)
    if info.get("mirror"):
        screen.add_section("Mirror Information")
        _add_source(screen, info["mirror"])
    if info.get("sources"):
        screen.add_section("Source Information")
        for source in info["sources"]:
            _add_source(screen, source)
            screen.add_line()
    _add_state(screen, info)
    return screen


def _add_config(screen: Columns, config: dict[str, Any]) -> None:
    screen.add_row_if_not_empty("Description", config.get("description"))
    subjects = config.get("subjects") or []
    screen.add_row_if("Subjects", subjects, bool(subjects))
    screen.add_row("Replicas", int(config.get("num_replicas", 0) or 0))
    screen.add_row_if("Sealed", True, bool(config.get("sealed")))
    storage = config.get("storage", "file")
    screen.add_row("Storage", STORAGE_NAMES.get(storage, storage))
    compression = config.get("compression") or "none"
    screen.add_row_if(
        "Compression", COMPRESSION_NAMES.get(compression, compression), compression != "none"
    )
    persist = config.get("persist_mode") or "default"
    screen.add_row_if("Persistence Mode", PERSIST_NAMES.get(persist, persist), persist != "default")
    if config.get("first_seq"):
        screen.add_row("First Sequence", int(config["first_seq"]))
    placement = config.get("placement") or {}
    screen.add_row_if_not_empty("Placement Cluster", placement.get("cluster"))
    tags = placement.get("tags") or []
    screen.add_row_if("Placement Tags", tags, bool(tags))

    screen.add_section("Options")
    transform = config.get("subject_transform") or {}
    if transform.get("dest"):
        screen.add_row("Subject Transform", f"{transform.get('src') or '>'} to {transform['dest']}")
    republish = config.get("republish")
    if republish:
        label = "Republishing Headers" if republish.get("headers_only") else "Republishing"
        screen.add_row(label, f"{republish.get('src', '')} to {republish.get('dest', '')}")
    retention = config.get("retention", "limits")
    screen.add_row("Retention", RETENTION_NAMES.get(retention, retention))
    screen.add_row("Acknowledgments", not config.get("no_ack", False))
    discard = DISCARD_NAMES.get(config.get("discard", "old"), config.get("discard", ""))
    if config.get("discard_new_per_subject"):
        discard = "New Per Subject"
    screen.add_row("Discard Policy", discard)
    screen.add_row(
        "Duplicate Window", humanize.human_duration(int(config.get("duplicate_window", 0) or 0))
    )
    screen.add_row_if("Direct Get", True, bool(config.get("allow_direct")))
    screen.add_row_if("Mirror Direct Get", True, bool(config.get("mirror_direct")))
    screen.add_row("Allows Atomic Batch Publish", bool(config.get("allow_atomic")))
    screen.add_row("Allows Fast Batch Publish", bool(config.get("allow_batched")))
    screen.add_row("Allows Counters", bool(config.get("allow_msg_counter")))
    screen.add_row("Allows Msg Delete", not config.get("deny_delete", False))
    screen.add_row("Allows Per-Message TTL", bool(config.get("allow_msg_ttl")))
    screen.add_row("Allows Purge", not config.get("deny_purge", False))
    screen.add_row("Allows Schedules", bool(config.get("allow_msg_schedules")))
    marker_ttl = int(config.get("subject_delete_marker_ttl", 0) or 0)
    if config.get("allow_msg_ttl") and marker_ttl > 0:
        screen.add_row("Subject Delete Markers TTL", humanize.human_duration(marker_ttl))
    screen.add_row("Allows Rollups", bool(config.get("allow_rollup_hdrs")))

    screen.add_section("Limits")
    screen.add_row("Maximum Messages", _unlimited(config.get("max_msgs", -1)))
    per_subject = int(config.get("max_msgs_per_subject", -1) or 0)
    screen.add_row("Maximum Per Subject", "unlimited" if per_subject <= 0 else per_subject)
    max_bytes = int(config.get("max_bytes", -1))
    screen.add_row("Maximum Bytes", "unlimited" if max_bytes == -1 else humanize.ibytes(max_bytes))
    max_age = int(config.get("max_age", 0) or 0)
    screen.add_row("Maximum Age", "unlimited" if max_age <= 0 else humanize.human_duration(max_age))
    max_msg_size = int(config.get("max_msg_size", -1))
    screen.add_row(
        "Maximum Message Size",
        "unlimited" if max_msg_size == -1 else humanize.ibytes(max_msg_size),
    )
    screen.add_row("Maximum Consumers", _unlimited(config.get("max_consumers", -1)))
    limits = config.get("consumer_limits") or {}
    inactive = int(limits.get("inactive_threshold", 0) or 0)
    screen.add_row_if(
        "Consumer Inactive Threshold", humanize.human_duration(inactive), inactive > 0
    )
    pending = int(limits.get("max_ack_pending", 0) or 0)
    screen.add_row_if("Consumer Max Ack Pending", pending, pending > 0)

    metadata = user_metadata(config.get("metadata"))
    if metadata:
        screen.add_section("Metadata")
        for key in sorted(metadata):
            screen.add_row(key, metadata[key])

    sources = sorted(config.get("sources") or [], key=lambda s: s.get("name", ""))
    if config.get("mirror") or sources:
        screen.add_section("Replication")
    if config.get("mirror"):
        screen.add_row("Mirror", render_source(config["mirror"]))
    for index, source in enumerate(sources):
        screen.add_row("Sources" if index == 0 else "", render_source(source))
    screen.add_line()


def _unlimited(value: Any) -> Any:
    number = int(value if value is not None else -1)
    return "unlimited" if number == -1 else number


def render_source(source: dict[str, Any]) -> str:
    """A mirror/source configuration on one line: `name, Start Seq: 5, API Prefix: ...`."""
    parts = [source.get("name", "")]
    if source.get("opt_start_seq"):
        parts.append(f"Start Seq: {humanize.comma(source['opt_start_seq'])}")
    if source.get("opt_start_time"):
        parts.append(f"Start Time: {go_time_text(source['opt_start_time'])}")
    external = source.get("external") or {}
    if external.get("api"):
        parts.append(f"API Prefix: {external['api']}")
    if external.get("deliver"):
        parts.append(f"Delivery Prefix: {external['deliver']}")
    consumer = source.get("consumer") or {}
    if consumer.get("name"):
        parts.append(f"Consumer Name: {consumer['name']}")
    return ", ".join(parts)


def _add_cluster(screen: Columns, info: dict[str, Any]) -> None:
    cluster = info.get("cluster") or {}
    if not cluster.get("name"):
        return
    screen.add_section("Cluster Information")
    screen.add_row("Name", cluster["name"])
    screen.add_row_if_not_empty("Cluster Group", cluster.get("raft_group"))
    if cluster.get("leader_since"):
        screen.add_row(
            "Leader",
            f"{cluster.get('leader', '')} ({humanize.human_duration(since(info, cluster['leader_since']))})",
        )
    else:
        screen.add_row("Leader", cluster.get("leader", ""))
    for replica in cluster.get("replicas") or []:
        state = [replica.get("name", ""), "current" if replica.get("current") else "outdated"]
        if replica.get("offline"):
            state.append("OFFLINE")
        active = int(replica.get("active", 0) or 0)
        if 0 < active < MAX_DURATION_NS:
            state.append(f"seen {humanize.human_duration(active)} ago")
        else:
            state.append("not seen")
        lag = int(replica.get("lag", 0) or 0)
        if lag > 1:
            state.append(f"{humanize.comma(lag)} operations behind")
        elif lag == 1:
            state.append("1 operation behind")
        screen.add_row("Replica", state)
    screen.add_line()


def _add_source(screen: Columns, source: dict[str, Any]) -> None:
    screen.add_row("Stream Name", source.get("name", ""))
    transforms = source.get("subject_transforms") or []
    if source.get("filter_subject"):
        screen.add_row("Subject Filter", source["filter_subject"])
    elif transforms:
        label = (
            "Subject Filters and Transforms"
            if len(transforms) > 1
            else "Subject Filter and Transform"
        )
        for index, transform in enumerate(transforms):
            text = (
                f"{transform.get('src', '')} to {transform['dest']}"
                if transform.get("dest")
                else f"{transform.get('src', '')} untransformed"
            )
            screen.add_row(label if index == 0 else "", text)
    screen.add_row("Lag", int(source.get("lag", 0) or 0))
    active = int(source.get("active", 0) or 0)
    screen.add_row(
        "Last Seen", humanize.human_duration(active) if 0 < active < MAX_DURATION_NS else "never"
    )
    external = source.get("external")
    if external:
        screen.add_row("Ext. API Prefix", external.get("api", ""))
        screen.add_row_if_not_empty("Ext. Delivery Prefix", external.get("deliver"))
    if source.get("error"):
        screen.add_row("Error", (source["error"] or {}).get("description", ""))


def _add_state(screen: Columns, info: dict[str, Any]) -> None:
    state = info.get("state") or {}
    screen.add_section("State")
    render_api_metadata(screen, (info.get("config") or {}).get("metadata"))
    screen.add_row("Messages", int(state.get("messages", 0)))
    screen.add_row("Bytes", humanize.ibytes(int(state.get("bytes", 0))))
    lost = state.get("lost") or {}
    if lost.get("msgs"):
        screen.add_row(
            "Lost Messages",
            f"{humanize.comma(len(lost['msgs']))} ({humanize.ibytes(int(lost.get('bytes', 0)))})",
        )
    for label, seq_key, ts_key in (
        ("First Sequence", "first_seq", "first_ts"),
        ("Last Sequence", "last_seq", "last_ts"),
    ):
        seq = int(state.get(seq_key, 0))
        stamp = moment(state.get(ts_key))
        if stamp is None:
            screen.add_row(label, seq)
        else:
            screen.add_row(label, f"{humanize.comma(seq)} @ {humanize.local_time(stamp)}")
    deleted = len(state.get("deleted") or []) or int(state.get("num_deleted", 0) or 0)
    if deleted > 0:
        screen.add_row("Deleted Messages", deleted)
    screen.add_row("Active Consumers", int(state.get("consumer_count", 0)))
    subjects = int(state.get("num_subjects", 0) or 0)
    if subjects > 0:
        screen.add_row("Number of Subjects", subjects)
    alternates = info.get("alternates") or []
    if alternates:
        name_width = max(len(a.get("name", "")) for a in alternates)
        cluster_width = max(len(a.get("cluster", "")) for a in alternates)
        for index, alternate in enumerate(alternates):
            text = (
                f"{alternate.get('name', ''):>{name_width}}: Cluster: "
                f"{alternate.get('cluster', ''):>{cluster_width}}"
            )
            if alternate.get("domain"):
                text += f" Domain: {alternate['domain']}"
            screen.add_row("Alternates" if index == 0 else "", text)


# -- stream ls -------------------------------------------------------------------------------------


def streams_table(infos: list[dict[str, Any]], subject: str = "") -> Table:
    """`stream ls`: one row per stream, smallest first."""
    title = f"Streams matching {subject}" if subject else "Streams"
    table = Table(title, ["Name", "Description", "Created", "Messages", "Size", "Last Message"])
    for info in sorted(infos, key=lambda i: int((i.get("state") or {}).get("bytes", 0))):
        config = info.get("config") or {}
        state = info.get("state") or {}
        created = moment(info.get("created"))
        table.add_row(
            config.get("name", ""),
            config.get("description", ""),
            humanize.local_time(created) if created else "",
            humanize.comma(int(state.get("messages", 0))),
            humanize.ibytes(int(state.get("bytes", 0))),
            humanize.human_duration(since(info, state.get("last_ts"))),
        )
    return table


def missing_tables(missing: list[str], offline: dict[str, str], kind: str = "Streams") -> str:
    """The `Inaccessible ...` (4 names a row) and `Offline ...` tables, with a blank line each."""
    text = ""
    if missing:
        table = Table(f"Inaccessible {kind}")
        names = sorted(missing)
        for start in range(0, len(names), 4):
            table.add_row(*names[start : start + 4])
        text += "\n" + table.render()
    if offline:
        table = Table(f"Offline {kind}")
        for name in sorted(offline):
            table.add_row(name, offline[name])
        text += "\n" + table.render()
    return text


# -- stream report -----------------------------------------------------------------------------------


REPORT_SORTS = {
    "consumers": lambda i: int((i.get("state") or {}).get("consumer_count", 0)),
    "messages": lambda i: int((i.get("state") or {}).get("messages", 0)),
    "name": lambda i: (i.get("config") or {}).get("name", ""),
    "storage": lambda i: STORAGE_NAMES.get((i.get("config") or {}).get("storage", ""), ""),
    "bytes": lambda i: int((i.get("state") or {}).get("bytes", 0)),
}


def stream_report_table(infos: list[dict[str, Any]], *, raw: bool) -> Table:
    table = Table(
        "Stream Report",
        [
            "Stream",
            "Storage",
            "Placement",
            "Consumers",
            "Messages",
            "Bytes",
            "Lost",
            "Deleted",
            "API Level",
            "Replicas",
        ],
    )
    for info in infos:
        config = info.get("config") or {}
        state = info.get("state") or {}
        placement_config = config.get("placement") or {}
        placement = ""
        if placement_config.get("cluster"):
            placement = f"cluster: {placement_config['cluster']} "
        if placement_config.get("tags"):
            placement += f"tags: {', '.join(placement_config['tags'])}"
        lost_state = state.get("lost") or {}
        lost_msgs = len(lost_state.get("msgs") or [])
        lost_bytes = int(lost_state.get("bytes", 0) or 0)
        deleted = len(state.get("deleted") or []) or int(state.get("num_deleted", 0) or 0)
        level = (config.get("metadata") or {}).get(API_LEVEL_KEY) or "0"
        storage = STORAGE_NAMES.get(config.get("storage", ""), config.get("storage", ""))
        consumers = int(state.get("consumer_count", 0))
        messages = int(state.get("messages", 0))
        size = int(state.get("bytes", 0))
        if raw:
            lost = f"{lost_msgs} ({lost_bytes})" if lost_msgs else "0"
            table.add_row(
                config.get("name", ""),
                storage,
                placement,
                consumers,
                messages,
                size,
                lost,
                deleted,
                level,
                render_cluster(info.get("cluster")),
            )
        else:
            lost = (
                f"{humanize.comma(lost_msgs)} ({humanize.ibytes(lost_bytes)})" if lost_msgs else "0"
            )
            table.add_row(
                config.get("name", ""),
                storage,
                placement,
                humanize.comma(consumers),
                humanize.comma(messages),
                humanize.ibytes(size),
                lost,
                humanize.comma(deleted),
                level,
                render_cluster(info.get("cluster")),
            )
    return table


def replication_table(infos: list[dict[str, Any]], *, raw: bool) -> Table:
    table = Table(
        "Replication Report",
        [
            "Stream",
            "Kind",
            "API Prefix",
            "Source Stream",
            "Filters and Transforms",
            "Active",
            "Lag",
            "Error",
        ],
    )
    for info in infos:
        name = (info.get("config") or {}).get("name", "")
        links = []
        if info.get("mirror"):
            links.append(("Mirror", info["mirror"]))
        links += [("Source", s) for s in info.get("sources") or []]
        for kind, link in links:
            error = (link.get("error") or {}).get("description", "")
            prefix = (link.get("external") or {}).get("api", "")
            filters = ""
            if kind == "Source":
                parts = [
                    f"{t.get('src', '')} to {t.get('dest', '')}"
                    for t in link.get("subject_transforms") or []
                ]
                if not parts and link.get("filter_subject"):
                    parts = [f"{link['filter_subject']} untransformed"]
                filters = ", ".join(parts)
            active = int(link.get("active", 0) or 0)
            lag = int(link.get("lag", 0) or 0)
            if raw:
                table.add_row(name, kind, prefix, link.get("name", ""), filters, active, lag, error)
            else:
                table.add_row(
                    name,
                    kind,
                    prefix,
                    link.get("name", ""),
                    filters,
                    humanize.human_duration(active),
                    humanize.comma(lag),
                    error,
                )
    return table


def leaders_table(leaders: dict[str, tuple[str, int]], group_title: str) -> Table:
    """`-l/--leaders`: how many RAFT groups each server leads, per cluster."""
    table = Table("RAFT Leader Report", ["Server", "Cluster", group_title, "Distribution"])
    per_cluster: dict[str, int] = {}
    for cluster, groups in leaders.values():
        per_cluster[cluster] = per_cluster.get(cluster, 0) + groups
    ordered = sorted(leaders.items(), key=lambda item: (item[1][0], item[1][1]))
    previous = None
    for server, (cluster, groups) in ordered:
        if previous is not None and cluster != previous:
            table.add_separator()
        previous = cluster
        dots = round(groups / per_cluster[cluster] * 100 / 10) if per_cluster[cluster] else 0
        table.add_row(server, cluster, humanize.comma(groups), "*" * max(dots, 1))
    return table


def replication_dot(infos: list[dict[str, Any]]) -> str:
    """The `--dot FILE` GraphViz graph of mirrors and sources."""
    lines = ["digraph {", '  label="Stream Replication Structure";']
    for info in infos:
        name = (info.get("config") or {}).get("name", "")
        config = info.get("config") or {}
        for source in config.get("sources") or []:
            label = source.get("filter_subject", "")
            transforms = source.get("subject_transforms") or []
            if len(transforms) == 1:
                label = f"{transforms[0].get('src', '')} to {transforms[0].get('dest', '')}"
            attrs = 'color="green"' + (f', label="{label}"' if label else "")
            lines.append(f'  "{source.get("name", "")}" -> "{name}" [{attrs}];')
        if config.get("mirror"):
            mirror = config["mirror"].get("name", "")
            lines.append(f'  "{mirror}" -> "{name}" [color="blue", label="Mirror"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- stream get --------------------------------------------------------------------------------------


def decode_headers(encoded: str | None) -> list[tuple[str, str]]:
    """The `Key: value` pairs of a base64 `NATS/1.0` header block, in order."""
    if not encoded:
        return []
    block = base64.b64decode(encoded).decode(errors="replace")
    pairs = []
    for line in block.split("\r\n")[1:]:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if sep:
            pairs.append((key.strip(), value.strip()))
    return pairs


def stored_message_heading(stream: str, message: dict[str, Any]) -> str:
    """`Item: ORDERS#5 received 2025-... +0000 UTC (3m2s) on Subject orders.new`."""
    received = message.get("time", "")
    stamp = moment(received)
    age = humanize.ns_between(dt.datetime.now(dt.UTC), stamp) if stamp else MAX_DURATION_NS
    return (
        f"Item: {stream}#{message.get('seq', 0)} received {go_time_text(received)} "
        f"({humanize.human_duration(age)}) on Subject {message.get('subject', '')}"
    )
