"""The streams behind Key-Value buckets (`KV_<b>`) and object stores (`OBJ_<b>`).

Reading and writing buckets goes through nats-py's KeyValue and ObjectStore APIs. Three jobs
they do not cover are done here, on the stream level:

* listing buckets with their creation and last-update times (nats-py's StreamState drops
  `last_ts`, so STREAM.LIST pages are read as raw JSON with `js_request`);
* natscli's `Select a Bucket` picker, for `kv info` / `obj info` without a bucket;
* creating a bucket with settings nats-py's KeyValueConfig / ObjectStoreConfig cannot carry
  (compression, metadata, placement, mirror, sources). Buckets without them are created with
  `js.create_key_value` / `js.create_object_store`; with them, the stream config is written
  with the same conventions those functions use (kv-objectstore.md §1.2, §2.2, ADR-57 for
  mirrors and sources) plus the extra fields, and created with the manager's `add_stream`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynats.cli.kv.render import buckets_table
from pynats.cli.stream.api import KV_STREAM_PREFIX, OBJ_STREAM_PREFIX
from pynats.cli.ui import prompt
from pynats.cli.ui.connect import connection, js_request
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.output import out

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import api

DEFAULT_DUPLICATE_WINDOW_S = 120.0


async def bucket_streams(nc: Client, prefix: str) -> list[dict[str, Any]]:
    """Every stream whose name starts with `prefix`, as STREAM.LIST returns them (all pages)."""
    found: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = await js_request(nc, "STREAM.LIST", {"offset": offset})
        streams = page.get("streams") or []
        for stream in streams:
            if str((stream.get("config") or {}).get("name", "")).startswith(prefix):
                found.append(stream)
        offset += len(streams)
        if not streams or offset >= int(page.get("total") or 0):
            return found


async def list_buckets(prefix: str, names_only: bool, title: str, none_found: str) -> None:
    """`nats kv ls` / `nats obj ls` without a bucket: names, or natscli's bucket table."""
    async with connection() as nc:
        streams = await bucket_streams(nc, prefix)
    if names_only:
        for stream in streams:
            out(str(stream["config"]["name"]).removeprefix(prefix))
        return
    if not streams:
        out(none_found)
        return
    out(buckets_table(streams, prefix, title, values=prefix == KV_STREAM_PREFIX).render())


async def pick_bucket(nc: Client, prefix: str, none_found: str) -> str:
    """Ask which bucket to use (natscli asks only for `info` without a bucket name)."""
    names = sorted(
        str(s["config"]["name"]).removeprefix(prefix) for s in await bucket_streams(nc, prefix)
    )
    if not names:
        raise CliError(none_found)
    return prompt.select("Select a Bucket", names)


def _placement(cluster: str, tags: list[str]) -> api.Placement | None:
    from nats.js import api

    if not cluster and not tags:
        return None
    return api.Placement(cluster=cluster or None, tags=list(tags) or None)


def _storage(storage: str) -> api.StorageType:
    from nats.js import api

    return api.StorageType.MEMORY if storage.startswith("m") else api.StorageType.FILE


@dataclass
class KvBucketSettings:
    """The flags of `nats kv add`, in natscli's units (seconds, bytes; -1 = unlimited)."""

    bucket: str
    description: str = ""
    history: int = 1
    ttl_s: float = 0.0
    marker_ttl_s: float = 0.0
    replicas: int = 1
    max_value_size: int = -1
    max_bucket_size: int = -1
    storage: str = "file"
    compress: bool = False
    tags: list[str] = field(default_factory=list)
    cluster: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    republish_source: str = ""
    republish_destination: str = ""
    republish_headers: bool = False
    mirror: str = ""
    mirror_domain: str = ""
    sources: list[str] = field(default_factory=list)

    @property
    def needs_stream_config(self) -> bool:
        """True when nats-py's KeyValueConfig cannot express these settings."""
        return bool(
            self.compress
            or self.metadata
            or self.tags
            or self.cluster
            or self.mirror
            or self.sources
        )

    def republish(self) -> api.RePublish | None:
        from nats.js import api

        if not self.republish_destination:
            return None
        return api.RePublish(
            src=self.republish_source or None,
            dest=self.republish_destination,
            headers_only=self.republish_headers or None,
        )

    def key_value_config(self) -> api.KeyValueConfig:
        """What `js.create_key_value` takes."""
        from nats.js import api

        return api.KeyValueConfig(
            bucket=self.bucket,
            description=self.description or None,
            max_value_size=self.max_value_size,
            history=self.history,
            ttl=self.ttl_s or None,
            max_bytes=self.max_bucket_size,
            storage=_storage(self.storage),
            replicas=self.replicas,
            republish=self.republish(),
            direct=True,
            limit_marker_ttl=self.marker_ttl_s or None,
        )

    def stream_config(self) -> api.StreamConfig:
        """The `KV_<bucket>` stream for settings beyond KeyValueConfig (see module docstring)."""
        from nats.js import api

        duplicate_window = DEFAULT_DUPLICATE_WINDOW_S
        if 0 < self.ttl_s < duplicate_window:
            duplicate_window = self.ttl_s
        config = api.StreamConfig(
            name=f"{KV_STREAM_PREFIX}{self.bucket}",
            description=self.description or None,
            subjects=[f"$KV.{self.bucket}.>"],
            allow_direct=True,
            allow_rollup_hdrs=True,
            allow_msg_ttl=True,
            deny_delete=True,
            discard=api.DiscardPolicy.NEW,
            duplicate_window=duplicate_window,
            max_age=self.ttl_s,
            max_bytes=self.max_bucket_size,
            max_consumers=-1,
            max_msg_size=self.max_value_size,
            max_msgs=-1,
            max_msgs_per_subject=self.history,
            num_replicas=self.replicas,
            storage=_storage(self.storage),
            republish=self.republish(),
            subject_delete_marker_ttl=self.marker_ttl_s or None,
            compression=api.StoreCompression.S2 if self.compress else api.StoreCompression.NONE,
            metadata=dict(self.metadata) or None,
            placement=_placement(self.cluster, self.tags),
        )
        if self.mirror:
            origin = self.mirror.removeprefix(KV_STREAM_PREFIX)
            external = None
            if self.mirror_domain:
                external = api.ExternalStream(api=f"$JS.{self.mirror_domain}.API")
            config.mirror = api.StreamSource(name=f"{KV_STREAM_PREFIX}{origin}", external=external)
            config.mirror_direct = True
            config.subjects = None
        elif self.sources:
            config.sources = [
                api.StreamSource(
                    name=f"{KV_STREAM_PREFIX}{source.removeprefix(KV_STREAM_PREFIX)}",
                    subject_transforms=[
                        api.SubjectTransform(
                            src=f"$KV.{source.removeprefix(KV_STREAM_PREFIX)}.>",
                            dest=f"$KV.{self.bucket}.>",
                        )
                    ],
                )
                for source in self.sources
            ]
        return config


@dataclass
class ObjBucketSettings:
    """The flags of `nats obj add`."""

    bucket: str
    description: str = ""
    ttl_s: float = 0.0
    replicas: int = 1
    max_bucket_size: int = -1
    storage: str = "file"
    compress: bool = False
    tags: list[str] = field(default_factory=list)
    cluster: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def needs_stream_config(self) -> bool:
        """True when nats-py's ObjectStoreConfig cannot express these settings."""
        return bool(self.compress or self.metadata)

    def object_store_config(self) -> api.ObjectStoreConfig:
        """What `js.create_object_store` takes."""
        from nats.js import api

        return api.ObjectStoreConfig(
            bucket=self.bucket,
            description=self.description or None,
            ttl=self.ttl_s or None,
            max_bytes=self.max_bucket_size,
            storage=_storage(self.storage),
            replicas=self.replicas,
            placement=_placement(self.cluster, self.tags),
        )

    def stream_config(self) -> api.StreamConfig:
        """The `OBJ_<bucket>` stream for settings beyond ObjectStoreConfig."""
        from nats.js import api

        return api.StreamConfig(
            name=f"{OBJ_STREAM_PREFIX}{self.bucket}",
            description=self.description or None,
            subjects=[f"$O.{self.bucket}.C.>", f"$O.{self.bucket}.M.>"],
            max_age=self.ttl_s,
            max_bytes=self.max_bucket_size if self.max_bucket_size != 0 else -1,
            storage=_storage(self.storage),
            num_replicas=self.replicas,
            placement=_placement(self.cluster, self.tags),
            discard=api.DiscardPolicy.NEW,
            allow_rollup_hdrs=True,
            allow_direct=True,
            compression=api.StoreCompression.S2 if self.compress else api.StoreCompression.NONE,
            metadata=dict(self.metadata) or None,
        )
