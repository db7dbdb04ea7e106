"""How `nats kv` shows buckets, keys and changes: natscli's screens, tables and lines.

Pure functions of data already fetched (nats-py `StreamInfo` / `KeyValue.Entry`, or the raw
STREAM.LIST JSON), so the shapes can be read here in one place:

    CONFIG > db.host revision: 4 created @ 2025-03-02 09:12:44       kv get
    [2025-03-02 09:12:44] PUT CONFIG > db.host: db01.internal         kv watch
    Information for Key-Value Store Bucket CONFIG created ...         kv info / add
    Key-Value Buckets / History for B > K / Contents for bucket 'B'   tables

Values are shown as text when every byte is printable ASCII, otherwise base64 (natscli's
Base64IfNotPrintable); newlines and tabs count as unprintable there too.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import TYPE_CHECKING, Any

from pynats.cli.stream.api import KV_STREAM_PREFIX, user_metadata
from pynats.cli.ui import humanize
from pynats.cli.ui.columns import Columns
from pynats.cli.ui.output import paint
from pynats.cli.ui.table import Table

if TYPE_CHECKING:
    from nats.js.api import ClusterInfo, StreamInfo
    from nats.js.kv import KeyValue

GET_PREVIEW_CHARS = 120
TABLE_VALUE_CHARS = 40
TABLE_VALUE_EDGE_CHARS = 15
GO_ZERO_TIME = "0001-01-01 00:00:00"
OPERATION_NAMES = {None: "PUT", "DEL": "DELETE", "PURGE": "PURGE"}


def printable_or_base64(value: bytes | None) -> str:
    """The value as text if all of it is printable ASCII, else standard base64."""
    data = value or b""
    if all(0x20 <= byte < 0x7F for byte in data):
        return data.decode("ascii")
    return base64.b64encode(data).decode("ascii")


def abbreviated(text: str) -> str:
    """natscli's table cell for a long value: first 15 + `...` + last 15 characters."""
    if len(text) > TABLE_VALUE_CHARS:
        return f"{text[:TABLE_VALUE_EDGE_CHARS]}...{text[-TABLE_VALUE_EDGE_CHARS:]}"
    return text


def entry_time(entry: KeyValue.Entry) -> dt.datetime | None:
    """When the entry was stored: nats-py fills `created` with the message's datetime (though
    it annotates an int), and leaves it None where it never learnt it."""
    created: object = entry.created
    return created if isinstance(created, dt.datetime) else None


def operation_name(operation: str | None) -> str:
    return OPERATION_NAMES.get(operation, "UNKNOWN")


def timestamp(moment: dt.datetime | None) -> str:
    """A stored message's time as natscli prints it (local `YYYY-MM-DD HH:MM:SS`)."""
    if moment is None or moment.year <= 1:
        return GO_ZERO_TIME  # nats.go leaves times it never learnt at year 1
    return humanize.local_time(moment)


def since(moment: dt.datetime | None) -> str:
    """Time elapsed since `moment` in natscli's duration style; `never` for a zero time."""
    if moment is None or moment.year <= 1:
        return humanize.human_duration(humanize.MAX_DURATION_NS)
    return humanize.human_duration(humanize.ns_between(dt.datetime.now(dt.UTC), moment))


# -- kv get ---------------------------------------------------------------------------------


def render_entry(
    bucket: str, key: str, revision: int, created: dt.datetime | None, value: bytes
) -> str:
    """`kv get` without --raw: the header line, a blank line, the value (or its start), a blank."""
    shown = printable_or_base64(value)
    lines = [f"{bucket} > {key} revision: {revision} created @ {timestamp(created)}", ""]
    if len(shown) > GET_PREVIEW_CHARS:
        lines += [
            f"Showing first {GET_PREVIEW_CHARS} bytes of {humanize.comma(len(shown))}, "
            "use --raw for full data",
            "",
            shown[:GET_PREVIEW_CHARS],
        ]
    else:
        lines.append(shown)
    return "\n".join(lines) + "\n\n"


# -- kv watch -------------------------------------------------------------------------------


def watch_line(entry: KeyValue.Entry) -> bytes:
    """One change: `[time] PUT B > key: value`, or `[time] DELETE B > key` (op coloured on a TTY).

    Bytes, because natscli writes the value exactly as stored.
    """
    name = operation_name(entry.operation)
    when = timestamp(entry_time(entry))
    if entry.operation in ("DEL", "PURGE"):
        return f"[{when}] {paint(name, 'red')} {entry.bucket} > {entry.key}".encode()
    prefix = f"[{when}] {paint(name, 'green')} {entry.bucket} > {entry.key}: "
    return prefix.encode() + (entry.value or b"")


# -- tables ---------------------------------------------------------------------------------


def history_table(bucket: str, key: str, entries: list[KeyValue.Entry]) -> Table:
    table = Table(f"History for {bucket} > {key}")
    table.add_headers("Key", "Revision", "Op", "Created", "Length", "Value")
    for entry in entries:
        value = entry.value or b""
        table.add_row(
            entry.key,
            entry.revision,
            operation_name(entry.operation),
            timestamp(entry_time(entry)),
            humanize.comma(len(value)),
            abbreviated(printable_or_base64(value)),
        )
    return table


def keys_table(bucket: str, entries: list[KeyValue.Entry], show_values: bool) -> Table:
    """`kv ls -v BUCKET`: one row per key, as natscli reads each with Get (so Delta is 0)."""
    table = Table(f"Contents for bucket '{bucket}'")
    headers = ["Key", "Created", "Delta", "Revision"]
    if show_values:
        headers.append("Value")
    table.add_headers(*headers)
    for entry in entries:
        row = [entry.key, timestamp(entry_time(entry)), 0, entry.revision]
        if show_values:
            row.append((entry.value or b"").decode(errors="replace"))
        table.add_row(*row)
    return table


def buckets_table(streams: list[dict[str, Any]], prefix: str, title: str, values: bool) -> Table:
    """`kv ls` / `obj ls`: buckets from raw STREAM.LIST items, smallest first."""
    table = Table(title)
    headers = ["Bucket", "Description", "Created", "Size", "Last Update"]
    if values:
        headers.insert(4, "Values")
    table.add_headers(*headers)
    for stream in sorted(streams, key=lambda s: (s.get("state") or {}).get("bytes", 0)):
        config = stream.get("config") or {}
        state = stream.get("state") or {}
        row = [
            str(config.get("name", "")).removeprefix(prefix),
            config.get("description", "") or "",
            timestamp(humanize.parse_go_time(stream.get("created", "") or "")),
            humanize.ibytes(state.get("bytes", 0)),
        ]
        if values:
            row.append(humanize.comma(state.get("messages", 0)))
        row.append(since(humanize.parse_go_time(state.get("last_ts", "") or "")))
        table.add_row(*row)
    return table


# -- kv info --------------------------------------------------------------------------------


def storage_name(storage: Any) -> str:
    value = getattr(storage, "value", storage) or "file"
    return str(value).capitalize()


def size_limit(limit: int | None) -> str:
    return "unlimited" if limit is None or limit == -1 else humanize.ibytes(limit)


def bucket_info_screen(bucket: str, info: StreamInfo) -> Columns:
    """`kv info` (and the screen after `kv add`) from the bucket's nats-py StreamInfo."""
    config, state = info.config, info.state
    heading = f"Information for Key-Value Store Bucket {bucket}"
    if info.created is not None:
        heading += f" created {timestamp(info.created)}"
    screen = Columns(heading)
    screen.add_section("Configuration")
    marker_ttl = config.subject_delete_marker_ttl or 0
    screen.add_row("Bucket Name", bucket)
    screen.add_row("History Kept", config.max_msgs_per_subject)
    screen.add_row("Values Stored", state.messages)
    screen.add_row("Compressed", getattr(config.compression, "value", config.compression) == "s2")
    screen.add_row("Per-Key TTL Supported", marker_ttl > 0)
    screen.add_row_if(
        "Limit Marker TTL",
        humanize.human_duration(humanize.seconds_to_ns(marker_ttl)),
        marker_ttl > 0,
    )
    screen.add_row("Backing Store Kind", "JetStream")
    screen.add_row_if_not_empty("Description", config.description)
    screen.add_row("Bucket Size", humanize.ibytes(state.bytes))
    screen.add_row("Maximum Bucket Size", size_limit(config.max_bytes))
    screen.add_row("Maximum Value Size", size_limit(config.max_msg_size))
    max_age = config.max_age or 0
    screen.add_row(
        "Maximum Age",
        "unlimited" if max_age <= 0 else humanize.human_duration(humanize.seconds_to_ns(max_age)),
    )
    screen.add_row("JetStream Stream", config.name)
    screen.add_row("Storage", storage_name(config.storage))
    republish = config.republish
    if republish is not None:
        label = "Republishing Headers" if republish.headers_only else "Republishing"
        screen.add_row(label, f"{republish.src or ''} to {republish.dest or ''}")
    if info.mirror is not None and config.mirror is not None:
        screen.add_section("Mirror Information")
        screen.add_row("Origin Bucket", config.mirror.name.removeprefix(KV_STREAM_PREFIX))
        if config.mirror.external is not None:
            screen.add_row("External API", config.mirror.external.api)
        screen.add_row("Last Seen", last_seen(info.mirror.active))
        screen.add_row("Lag", info.mirror.lag or 0)
    if info.sources:
        screen.add_section("Sources Information")
        for source in info.sources:
            for configured in config.sources or []:
                if configured.name == source.name:
                    screen.add_row("Source Bucket", source.name.removeprefix(KV_STREAM_PREFIX))
                    if configured.external is not None:
                        screen.add_row("External API", configured.external.api)
            screen.add_row("Last Seen", last_seen(source.active))
            screen.add_row("Lag", source.lag or 0)
    metadata = user_metadata(config.metadata)
    if metadata:
        screen.add_section("Metadata")
        for key in sorted(metadata):
            screen.add_row(key, metadata[key])
    if info.cluster is not None:
        screen.add_section("Cluster Information")
        add_cluster_rows(screen, info.cluster)
    return screen


def last_seen(active_ns: int | None) -> str:
    if active_ns is None or active_ns <= 0 or active_ns >= humanize.MAX_DURATION_NS:
        return "never"
    return humanize.human_duration(active_ns)


def add_cluster_rows(screen: Columns, cluster: ClusterInfo) -> None:
    """Name, Leader and one Replica row per peer, as natscli shows a stream's cluster."""
    screen.add_row("Name", cluster.name or "")
    screen.add_row("Leader", cluster.leader or "")
    for peer in cluster.replicas or []:
        state = [peer.name or "", "current" if peer.current else "outdated"]
        if peer.offline:
            state.append("OFFLINE")
        if peer.active and 0 < peer.active < humanize.MAX_DURATION_NS:
            state.append(f"seen {humanize.human_duration(peer.active)} ago")
        else:
            state.append("not seen")
        lag = peer.lag or 0
        if lag > 1:
            state.append(f"{humanize.comma(lag)} operations behind")
        elif lag == 1:
            state.append("1 operation behind")
        screen.add_row("Replica", state)
