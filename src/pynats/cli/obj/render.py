"""How `nats obj` shows buckets, objects and changes: natscli's screens, tables and lines.

    Information for Object Store Bucket FILES created 2025-03-02 10:14:07   obj info / add
    Object information for FILES > image.jpg                              obj info B NAME / put
    [2025-03-02 10:14:07] PUT FILES > image.jpg: 1.2 MiB bytes in 10 chunks  obj watch
    Object Store Buckets / Bucket Contents                                tables

The digest is stored as `SHA-256=<base64url>` and shown as `SHA-256 <hex>`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from typing import TYPE_CHECKING, Any

from pynats.cli.kv.render import (
    add_cluster_rows,
    size_limit,
    storage_name,
    timestamp,
)
from pynats.cli.stream.api import user_metadata
from pynats.cli.ui import humanize
from pynats.cli.ui.columns import Columns
from pynats.cli.ui.output import paint
from pynats.cli.ui.table import Table

if TYPE_CHECKING:
    from nats.js.api import ObjectInfo, StreamInfo


def digest_text(digest: str | None) -> str:
    """`SHA-256=<base64url>` as natscli shows it: `SHA-256 <hex>`."""
    algorithm, _, encoded = (digest or "").partition("=")
    try:
        raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    return f"{algorithm} {raw.hex()}"


def header_lines(headers: dict[str, Any] | None) -> list[str]:
    """Object headers as sorted `Key: value` lines (values may be lists, as nats.go stores them)."""
    lines = []
    for key, values in (headers or {}).items():
        for value in values if isinstance(values, list) else [values]:
            lines.append(f"{key}: {value}")
    return sorted(lines)


def object_info_screen(info: ObjectInfo, modified: dt.datetime | None) -> Columns:
    screen = Columns(f"Object information for {info.bucket} > {info.name}")
    screen.add_row_if_not_empty("Description", info.description)
    screen.add_row("Size", humanize.ibytes(info.size or 0))
    screen.add_row("Modification Time", timestamp(modified))
    screen.add_row("Chunks", info.chunks or 0)
    screen.add_row("Digest", digest_text(info.digest))
    screen.add_row_if("Deleted", True, bool(info.deleted))
    screen.add_rows("Headers", header_lines(info.headers))
    return screen


def bucket_info_screen(bucket: str, info: StreamInfo) -> Columns:
    """`obj info BUCKET` (and the screen after add, seal and del) from the stream info."""
    config, state = info.config, info.state
    heading = f"Information for Object Store Bucket {bucket}"
    if info.created is not None:
        heading += f" created {timestamp(info.created)}"
    screen = Columns(heading)
    screen.add_section("Configuration")
    screen.add_row("Bucket Name", bucket)
    screen.add_row_if_not_empty("Description", config.description)
    screen.add_row("Replicas", config.num_replicas or 1)
    ttl = config.max_age or 0
    screen.add_row(
        "TTL", "unlimited" if ttl == 0 else humanize.human_duration(humanize.seconds_to_ns(ttl))
    )
    screen.add_row("Sealed", bool(config.sealed))
    screen.add_row("Size", humanize.ibytes(state.bytes))
    screen.add_row("Maximum Bucket Size", size_limit(config.max_bytes))
    screen.add_row("Storage", storage_name(config.storage))
    screen.add_row("Backing Store Kind", "JetStream")
    screen.add_row("JetStream Stream", config.name)
    metadata = user_metadata(config.metadata)
    if metadata:
        screen.add_map_as_value("Metadata", metadata)
    if info.cluster is not None:
        screen.add_section("Cluster Information")
        add_cluster_rows(screen, info.cluster)
    return screen


def contents_table(objects: list[tuple[Any, dt.datetime | None]]) -> Table:
    table = Table("Bucket Contents")
    table.add_headers("Name", "Size", "Time")
    for info, modified in objects:
        table.add_row(info.name, humanize.ibytes(info.size or 0), timestamp(modified))
    return table


def watch_line(info: ObjectInfo, modified: dt.datetime | None) -> str:
    when = timestamp(modified)
    if info.deleted:
        return f"[{when}] {paint('DEL', 'red')} {info.bucket} > {info.name}"
    size = humanize.ibytes(info.size or 0)
    chunks = humanize.comma(info.chunks or 0)
    return f"[{when}] {paint('PUT', 'green')} {info.bucket} > {info.name}: {size} bytes in {chunks} chunks"
