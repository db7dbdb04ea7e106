"""StreamConfig: request decoding, defaults, validation and JSON, as nats-server does them.

`parse_stream_request(payload)` decodes a `$JS.API.STREAM.CREATE/UPDATE` body (strict JSON,
Go's error texts); `check_stream_config(cfg, pedantic=...)` applies nats-server's defaults
and validation rules in its order and returns the normalised config (or raises `ApiError`);
`check_update(old, new)` adds the rules for changing an existing stream. `to_json()` writes
the config with nats-server's field names, order and omissions. Durations are ns.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from pynats.gotime import NS_PER_S, format_duration, parse_rfc3339
from pynats.server.subject_transform import TransformError, compile_transform
from pynats.server.subjects import is_valid_subject, subjects_collide

from . import decode as d
from .errors import ApiError, api_error, invalid_config
from .store import DiscardPolicy, StorageType, StoreConfig

# Limits and defaults, units in the names.
MAX_NAME_LEN = 255
MAX_DESCRIPTION_LEN = 4096
MAX_METADATA_BYTES = 128 * 1024
MAX_REPLICAS = 5
DEFAULT_DUPLICATE_WINDOW_NS = 2 * 60 * NS_PER_S
MIN_MAX_AGE_NS = 100_000_000
MIN_DUPLICATE_WINDOW_NS = 100_000_000
MIN_SUBJECT_DELETE_MARKER_TTL_NS = NS_PER_S

RETENTION_POLICIES = ("limits", "interest", "workqueue")
DISCARD_POLICIES = ("old", "new")
STORAGE_TYPES = ("file", "memory")
COMPRESSIONS = ("none", "s2")

# Server metadata keys (ADR-44): the stored minimum API level, and in responses the server's.
META_REQUIRED_LEVEL = "_nats.req.level"
META_SERVER_LEVEL = "_nats.level"
META_SERVER_VERSION = "_nats.ver"
SERVER_META_KEYS = (META_REQUIRED_LEVEL, META_SERVER_LEVEL, META_SERVER_VERSION)

# Features of API level 2 and above that this server does not implement.
UNSUPPORTED_FEATURES: tuple[str, ...] = ()

_INVALID_NAME_CHARS = frozenset(".*> \t\r\n\f\v")


def is_valid_name(name: str) -> bool:
    """Stream/consumer name rules: non-empty, no `.`, `*`, `>`, whitespace, path separators."""
    return (
        bool(name)
        and not any(c in _INVALID_NAME_CHARS for c in name)
        and not ("/" in name or "\\" in name)
    )


def has_path_separators(name: str) -> bool:
    return "/" in name or "\\" in name


# -- the JSON shape --------------------------------------------------------------------------

_TRANSFORM = d.Struct("SubjectTransformConfig", {"src": d.STRING, "dest": d.STRING})
_EXTERNAL = d.Struct("ExternalStream", {"api": d.STRING, "deliver": d.STRING})
_SOURCE_CONSUMER = d.Struct("StreamSourceConsumer", {"name": d.STRING, "deliver_subject": d.STRING})
_SOURCE = d.Struct(
    "StreamSource",
    {
        "name": d.STRING,
        "opt_start_seq": d.UINT64,
        "opt_start_time": d.TIME,
        "filter_subject": d.STRING,
        "subject_transforms": d.list_of(
            "[]server.SubjectTransformConfig", d.struct("server.SubjectTransformConfig", _TRANSFORM)
        ),
        "external": d.struct("*server.ExternalStream", _EXTERNAL),
        "consumer": d.struct("*server.StreamSourceConsumer", _SOURCE_CONSUMER),
    },
)
_PLACEMENT = d.Struct("Placement", {"cluster": d.STRING, "tags": d.STRINGS, "preferred": d.STRING})
_REPUBLISH = d.Struct("RePublish", {"src": d.STRING, "dest": d.STRING, "headers_only": d.BOOL})
_CONSUMER_LIMITS = d.Struct(
    "StreamConsumerLimits", {"inactive_threshold": d.DURATION, "max_ack_pending": d.INT}
)

STREAM_CONFIG_FIELDS: dict[str, d.Kind] = {
    "name": d.STRING,
    "description": d.STRING,
    "subjects": d.STRINGS,
    "retention": d.enum("server.RetentionPolicy", *RETENTION_POLICIES),
    "max_consumers": d.INT,
    "max_msgs": d.INT64,
    "max_bytes": d.INT64,
    "max_age": d.DURATION,
    "max_msgs_per_subject": d.INT64,
    "max_msg_size": d.INT32,
    "discard": d.enum("server.DiscardPolicy", *DISCARD_POLICIES, fold_case=True),
    "storage": d.enum("server.StorageType", *STORAGE_TYPES),
    "num_replicas": d.INT,
    "no_ack": d.BOOL,
    "template_owner": d.STRING,
    "duplicate_window": d.DURATION,
    "placement": d.struct("*server.Placement", _PLACEMENT),
    "mirror": d.struct("*server.StreamSource", _SOURCE),
    "sources": d.list_of("[]*server.StreamSource", d.struct("*server.StreamSource", _SOURCE)),
    "compression": d.Kind("server.StoreCompression", d.STRING.check),
    "first_seq": d.UINT64,
    "subject_transform": d.struct("*server.SubjectTransformConfig", _TRANSFORM),
    "republish": d.struct("*server.RePublish", _REPUBLISH),
    "allow_direct": d.BOOL,
    "mirror_direct": d.BOOL,
    "discard_new_per_subject": d.BOOL,
    "sealed": d.BOOL,
    "deny_delete": d.BOOL,
    "deny_purge": d.BOOL,
    "allow_rollup_hdrs": d.BOOL,
    "consumer_limits": d.struct("server.StreamConsumerLimits", _CONSUMER_LIMITS),
    "allow_msg_ttl": d.BOOL,
    "subject_delete_marker_ttl": d.DURATION,
    "allow_msg_counter": d.BOOL,
    "allow_atomic": d.BOOL,
    "allow_msg_schedules": d.BOOL,
    "persist_mode": d.STRING,
    "allow_batched": d.BOOL,
    "metadata": d.STRING_MAP,
}
STREAM_CONFIG_REQUEST = d.Struct(
    "StreamConfigRequest", {**STREAM_CONFIG_FIELDS, "pedantic": d.BOOL}
)


# -- the config ------------------------------------------------------------------------------


@dataclass
class SubjectTransformConfig:
    src: str = ""
    dest: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"src": self.src, "dest": self.dest}


@dataclass
class StreamSource:
    name: str = ""
    opt_start_seq: int = 0
    opt_start_time: str = ""  # as given (Go keeps the zone), "" = none
    filter_subject: str = ""
    subject_transforms: list[SubjectTransformConfig] = field(default_factory=list)
    external: dict[str, str] | None = None  # {"api", "deliver"}
    consumer: dict[str, str] | None = None

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> StreamSource:
        return cls(
            name=obj.get("name", ""),
            opt_start_seq=obj.get("opt_start_seq", 0),
            opt_start_time=obj.get("opt_start_time", ""),
            filter_subject=obj.get("filter_subject", ""),
            subject_transforms=[
                SubjectTransformConfig(t.get("src", ""), t.get("dest", ""))
                if t
                else SubjectTransformConfig()
                for t in obj.get("subject_transforms") or []
            ],
            external=(
                {
                    "api": obj["external"].get("api", ""),
                    "deliver": obj["external"].get("deliver", ""),
                }
                if obj.get("external") is not None
                else None
            ),
            consumer=obj.get("consumer"),
        )

    @property
    def start_time_ns(self) -> int:
        return parse_rfc3339(self.opt_start_time) if self.opt_start_time else 0

    @property
    def api_prefix(self) -> str:
        return (self.external or {}).get("api", "")

    def key(self) -> tuple[Any, ...]:
        """What makes two sources the same source (duplicates are rejected)."""
        return (
            self.name,
            self.filter_subject,
            tuple((t.src, t.dest) for t in self.subject_transforms),
            self.api_prefix,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.opt_start_seq:
            out["opt_start_seq"] = self.opt_start_seq
        if self.opt_start_time:
            out["opt_start_time"] = self.opt_start_time
        if self.filter_subject:
            out["filter_subject"] = self.filter_subject
        if self.subject_transforms:
            out["subject_transforms"] = [t.to_json() for t in self.subject_transforms]
        if self.external is not None:
            out["external"] = dict(self.external)
        if self.consumer:
            out["consumer"] = dict(self.consumer)
        return out


@dataclass
class RePublish:
    src: str = ""
    dest: str = ""
    headers_only: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"src": self.src, "dest": self.dest}
        if self.headers_only:
            out["headers_only"] = True
        return out


@dataclass
class StreamConfig:
    name: str = ""
    description: str = ""
    subjects: list[str] = field(default_factory=list)
    retention: str = "limits"
    max_consumers: int = -1
    max_msgs: int = -1
    max_bytes: int = -1
    max_age: int = 0
    max_msgs_per_subject: int = -1
    max_msg_size: int = -1
    discard: str = "old"
    storage: str = "file"
    num_replicas: int = 1
    no_ack: bool = False
    duplicate_window: int = 0
    placement: dict[str, Any] | None = None
    mirror: StreamSource | None = None
    sources: list[StreamSource] = field(default_factory=list)
    compression: str = "none"
    first_seq: int = 0
    subject_transform: SubjectTransformConfig | None = None
    republish: RePublish | None = None
    allow_direct: bool = False
    mirror_direct: bool = False
    discard_new_per_subject: bool = False
    sealed: bool = False
    deny_delete: bool = False
    deny_purge: bool = False
    allow_rollup_hdrs: bool = False
    consumer_limits: dict[str, int] = field(default_factory=dict)
    allow_msg_ttl: bool = False
    subject_delete_marker_ttl: int = 0
    allow_msg_counter: bool = False
    allow_atomic: bool = False
    allow_batched: bool = False  # fast-ingest batch publish (ADR-50, level 4)
    allow_msg_schedules: bool = False
    persist_mode: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    # Features this server rejects; kept so that a stored config round-trips.
    unsupported: dict[str, Any] = field(default_factory=dict)

    # -- from JSON --

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> StreamConfig:
        """From a decoded request or a stored config (Go zero values for absent fields)."""
        cfg = cls(
            name=obj.get("name", ""),
            description=obj.get("description", ""),
            subjects=list(obj.get("subjects") or []),
            retention=obj.get("retention") or "limits",
            max_consumers=obj.get("max_consumers", 0),
            max_msgs=obj.get("max_msgs", 0),
            max_bytes=obj.get("max_bytes", 0),
            max_age=obj.get("max_age", 0),
            max_msgs_per_subject=obj.get("max_msgs_per_subject", 0),
            max_msg_size=obj.get("max_msg_size", 0),
            discard=obj.get("discard") or "old",
            storage=obj.get("storage") or "file",
            num_replicas=obj.get("num_replicas", 0),
            no_ack=obj.get("no_ack", False),
            duplicate_window=obj.get("duplicate_window", 0),
            placement=copy.deepcopy(obj.get("placement")),
            mirror=StreamSource.from_json(obj["mirror"]) if obj.get("mirror") is not None else None,
            sources=[StreamSource.from_json(s or {}) for s in obj.get("sources") or []],
            compression=obj.get("compression") or "none",
            first_seq=obj.get("first_seq", 0),
            subject_transform=(
                SubjectTransformConfig(
                    obj["subject_transform"].get("src", ""),
                    obj["subject_transform"].get("dest", ""),
                )
                if obj.get("subject_transform") is not None
                else None
            ),
            republish=(
                RePublish(
                    obj["republish"].get("src", ""),
                    obj["republish"].get("dest", ""),
                    obj["republish"].get("headers_only", False),
                )
                if obj.get("republish") is not None
                else None
            ),
            allow_direct=obj.get("allow_direct", False),
            mirror_direct=obj.get("mirror_direct", False),
            discard_new_per_subject=obj.get("discard_new_per_subject", False),
            sealed=obj.get("sealed", False),
            deny_delete=obj.get("deny_delete", False),
            deny_purge=obj.get("deny_purge", False),
            allow_rollup_hdrs=obj.get("allow_rollup_hdrs", False),
            consumer_limits=dict(obj.get("consumer_limits") or {}),
            allow_msg_ttl=obj.get("allow_msg_ttl", False),
            subject_delete_marker_ttl=obj.get("subject_delete_marker_ttl", 0),
            allow_msg_counter=obj.get("allow_msg_counter", False),
            allow_atomic=obj.get("allow_atomic", False),
            allow_batched=obj.get("allow_batched", False),
            allow_msg_schedules=obj.get("allow_msg_schedules", False),
            persist_mode=obj.get("persist_mode", ""),
            metadata=dict(obj.get("metadata") or {}),
        )
        cfg.unsupported = {k: obj[k] for k in UNSUPPORTED_FEATURES if obj.get(k)}
        return cfg

    # -- to JSON --

    def to_json(self, server_meta: dict[str, str] | None = None) -> dict[str, Any]:
        """nats-server's JSON; `server_meta` adds `_nats.level`/`_nats.ver` (responses)."""
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        if self.subjects:
            out["subjects"] = list(self.subjects)
        out["retention"] = self.retention
        out["max_consumers"] = self.max_consumers
        out["max_msgs"] = self.max_msgs
        out["max_bytes"] = self.max_bytes
        out["max_age"] = self.max_age
        out["max_msgs_per_subject"] = self.max_msgs_per_subject
        out["max_msg_size"] = self.max_msg_size
        out["discard"] = self.discard
        out["storage"] = self.storage
        out["num_replicas"] = self.num_replicas
        if self.no_ack:
            out["no_ack"] = True
        if self.duplicate_window:
            out["duplicate_window"] = self.duplicate_window
        if self.placement is not None:
            out["placement"] = copy.deepcopy(self.placement)
        if self.mirror is not None:
            out["mirror"] = self.mirror.to_json()
        if self.sources:
            out["sources"] = [s.to_json() for s in self.sources]
        out["compression"] = self.compression
        if self.first_seq:
            out["first_seq"] = self.first_seq
        if self.subject_transform is not None:
            out["subject_transform"] = self.subject_transform.to_json()
        if self.republish is not None:
            out["republish"] = self.republish.to_json()
        out["allow_direct"] = self.allow_direct
        out["mirror_direct"] = self.mirror_direct
        if self.discard_new_per_subject:
            out["discard_new_per_subject"] = True
        out["sealed"] = self.sealed
        out["deny_delete"] = self.deny_delete
        out["deny_purge"] = self.deny_purge
        out["allow_rollup_hdrs"] = self.allow_rollup_hdrs
        out["consumer_limits"] = dict(self.consumer_limits)
        out["allow_msg_ttl"] = self.allow_msg_ttl
        if self.subject_delete_marker_ttl:
            out["subject_delete_marker_ttl"] = self.subject_delete_marker_ttl
        if self.allow_msg_counter:
            out["allow_msg_counter"] = True
        if self.allow_atomic:
            out["allow_atomic"] = True
        if self.allow_batched:
            out["allow_batched"] = True
        if self.allow_msg_schedules:
            out["allow_msg_schedules"] = True
        out.update(self.unsupported)
        if self.persist_mode == "async":  # the default is not echoed
            out["persist_mode"] = self.persist_mode
        meta = dict(self.metadata)
        if server_meta:
            meta.update(server_meta)
        if meta:
            out["metadata"] = {k: meta[k] for k in sorted(meta)}
        return out

    def same_as(self, other: StreamConfig) -> bool:
        """Equal configurations, ignoring the server's own metadata."""
        a, b = self.to_json(), other.to_json()
        for cfg in (a, b):
            meta = cfg.get("metadata")
            if meta is not None:
                for key in SERVER_META_KEYS:
                    meta.pop(key, None)
                if not meta:
                    del cfg["metadata"]
        return a == b

    # -- what the store enforces --

    def store_config(self) -> StoreConfig:
        return StoreConfig(
            name=self.name,
            storage=StorageType(self.storage),
            subjects=list(self.subjects),
            max_msgs=self.max_msgs,
            max_bytes=self.max_bytes,
            max_age=self.max_age,
            max_msg_size=self.max_msg_size,
            max_msgs_per_subject=self.max_msgs_per_subject,
            discard=DiscardPolicy(self.discard),
            discard_new_per_subject=self.discard_new_per_subject,
            first_seq=max(self.first_seq, 1),
            allow_msg_ttl=self.allow_msg_ttl,
            subject_delete_marker_ttl=self.subject_delete_marker_ttl,
        )

    @property
    def is_memory(self) -> bool:
        return self.storage == "memory"

    def required_api_level(self) -> int:
        """The API level a server needs to honour this config (ADR-44)."""
        if self.allow_batched:
            return 4
        if (
            self.allow_msg_counter
            or self.allow_atomic
            or self.allow_msg_schedules
            or self.persist_mode == "async"
        ):
            return 2
        return 1 if self.allow_msg_ttl or self.subject_delete_marker_ttl else 0


def parse_stream_request(payload: bytes, *, strict: bool = True) -> tuple[StreamConfig, bool]:
    """(config, pedantic) from a CREATE/UPDATE body. Raises ApiError 10025.

    `strict` (nats-server's default, `jetstream { strict }`) rejects unknown fields."""
    obj = d.decode(payload, STREAM_CONFIG_REQUEST, strict=strict)
    compression = obj.get("compression")
    if compression is not None and compression not in COMPRESSIONS and compression != "":
        raise d.invalid_json("unknown compression algorithm")
    persist = obj.get("persist_mode")
    if persist is not None and persist not in ("", "default", "async"):
        raise d.invalid_json(f"can not unmarshal {json.dumps(json.dumps(persist))}")
    return StreamConfig.from_json(obj), bool(obj.get("pedantic"))


def load_stored_config(obj: dict[str, Any]) -> StreamConfig:
    """A config read back from disk (already validated when it was written)."""
    return StreamConfig.from_json(obj)


# -- validation ------------------------------------------------------------------------------


def _pedantic(pedantic: bool, text: str) -> None:
    if pedantic:
        raise api_error("JSPedanticErrF", err=text)


def check_stream_config(
    cfg: StreamConfig, *, pedantic: bool = False, max_duplicate_window: int = 0
) -> StreamConfig:
    """Apply defaults and validate, in nats-server's order. Returns a normalised copy.
    `max_duplicate_window` (ns) is `jetstream { limits { duplicate_window } }`."""
    cfg = copy.deepcopy(cfg)
    if not is_valid_name(cfg.name):
        raise invalid_config("stream name is required and can not contain '.', '*', '>', '\\', '/'")
    if len(cfg.name) > MAX_NAME_LEN:
        raise invalid_config(f"stream name is too long, maximum allowed is {MAX_NAME_LEN}")
    if len(cfg.description) > MAX_DESCRIPTION_LEN:
        raise invalid_config(
            f"stream description is too long, maximum allowed is {MAX_DESCRIPTION_LEN}"
        )
    if sum(len(k) + len(v) for k, v in cfg.metadata.items()) > MAX_METADATA_BYTES:
        raise invalid_config(f"stream metadata exceeds maximum size of {MAX_METADATA_BYTES} bytes")
    for feature in cfg.unsupported:
        raise invalid_config(f"{feature} is not supported by this server")
    if cfg.persist_mode == "async":
        if cfg.storage != "file":
            raise invalid_config("async persist mode is only supported on file storage")
        if cfg.num_replicas > 1:
            raise invalid_config("async persist mode is not supported on replicated streams")
        if cfg.allow_atomic:
            raise invalid_config("async persist mode is not supported with atomic batch publish")
    if cfg.num_replicas == 0:
        cfg.num_replicas = 1
    if cfg.num_replicas > MAX_REPLICAS:
        raise invalid_config(f"maximum replicas is {MAX_REPLICAS}")
    if cfg.num_replicas < 0:
        raise api_error("JSReplicasCountCannotBeNegative")
    for name in ("max_msgs", "max_bytes", "max_msgs_per_subject", "max_consumers"):
        value = getattr(cfg, name)
        if value == 0 or value < -1:
            if value < -1:
                _pedantic(pedantic, f"{name} must be set to -1")
            setattr(cfg, name, -1)
    if cfg.max_msg_size == 0 or cfg.max_msg_size < -1:
        cfg.max_msg_size = -1
    if cfg.max_age < 0:
        raise invalid_config("max age can not be negative")
    if cfg.max_age and cfg.max_age < MIN_MAX_AGE_NS:
        raise invalid_config("max age needs to be >= 100ms")
    if cfg.duplicate_window < 0:
        raise invalid_config("duplicates window can not be negative")
    if cfg.duplicate_window == 0 and cfg.mirror is None and not cfg.sources:
        window = DEFAULT_DUPLICATE_WINDOW_NS
        if 0 < max_duplicate_window < window:
            window = max_duplicate_window
        cfg.duplicate_window = cfg.max_age if 0 < cfg.max_age < window else window
    if cfg.max_age > 0 and cfg.max_age < cfg.duplicate_window:
        raise invalid_config("duplicates window can not be larger then max age")
    if max_duplicate_window > 0 and cfg.duplicate_window > max_duplicate_window:
        raise invalid_config(
            "duplicates window can not be larger then server limit of "
            + format_duration(max_duplicate_window)
        )
    if cfg.duplicate_window and cfg.duplicate_window < MIN_DUPLICATE_WINDOW_NS:
        raise invalid_config("duplicates window needs to be >= 100ms")
    if cfg.deny_purge and cfg.allow_rollup_hdrs:
        raise invalid_config("roll-ups require the purge permission")
    if cfg.discard_new_per_subject:
        if cfg.discard != "new":
            raise invalid_config("discard new per subject requires discard new policy to be set")
        if cfg.max_msgs_per_subject <= 0:
            raise invalid_config("discard new per subject requires max msgs per subject > 0")
    _check_counter(cfg)
    _check_schedules(cfg, pedantic)
    _check_delete_markers(cfg, pedantic)
    if cfg.placement is not None:
        if cfg.placement.get("preferred"):
            raise invalid_config("preferred placement is not allowed for stream create/update")
        if not cfg.placement.get("cluster") and not cfg.placement.get("tags"):
            cfg.placement = None
    if cfg.mirror is not None:
        _check_mirror(cfg)
    elif cfg.mirror_direct:
        raise invalid_config("stream has no mirror but does have mirror direct")
    _check_sources(cfg)
    _check_subjects(cfg)
    _check_subject_transform(cfg)
    _check_republish(cfg)
    req_level = cfg.required_api_level()
    cfg.metadata[META_REQUIRED_LEVEL] = str(req_level)
    return cfg


def _check_delete_markers(cfg: StreamConfig, pedantic: bool) -> None:
    ttl = cfg.subject_delete_marker_ttl
    if ttl < 0:
        raise invalid_config("subject delete marker TTL must not be negative")
    if not ttl:
        return
    if cfg.mirror is not None:
        raise invalid_config("subject delete marker TTL cannot be set on a mirror")
    if ttl < MIN_SUBJECT_DELETE_MARKER_TTL_NS:
        raise invalid_config("subject delete marker TTL must be at least 1 second")
    if not cfg.allow_msg_ttl:
        if pedantic:
            raise invalid_config("subject delete marker cannot be set if message TTLs are disabled")
        cfg.allow_msg_ttl = True
    if not cfg.allow_rollup_hdrs:
        if pedantic:
            raise invalid_config("subject delete marker cannot be set if roll-ups are disabled")
        cfg.allow_rollup_hdrs = True
        cfg.deny_purge = False


def _check_counter(cfg: StreamConfig) -> None:
    """A counter stream keeps every total: limits retention, no discard new, no TTLs, no
    schedules, and never a mirror."""
    if not cfg.allow_msg_counter:
        return
    if cfg.discard == "new":
        raise invalid_config("counter stream cannot use discard new")
    if cfg.allow_msg_ttl:
        raise invalid_config("counter stream cannot use message TTLs")
    if cfg.allow_msg_schedules:
        raise invalid_config("counter stream cannot use message schedules")
    if cfg.retention != "limits":
        raise invalid_config("counter stream can only use limits retention")
    if cfg.mirror is not None:
        raise api_error("JSMirrorWithCountersErr")


def _check_schedules(cfg: StreamConfig, pedantic: bool) -> None:
    """Schedules need roll-ups (a newer schedule replaces the one on its subject) and keep
    what they publish: no discard new, no mirror, no sources."""
    if not cfg.allow_msg_schedules:
        return
    if cfg.mirror is not None:
        raise api_error("JSMirrorWithMsgSchedulesErr")
    if cfg.sources:
        raise api_error("JSSourceWithMsgSchedulesErr")
    if cfg.discard == "new":
        raise invalid_config("message scheduling cannot use discard new")
    if not cfg.allow_rollup_hdrs:
        if pedantic:
            raise invalid_config("message scheduling cannot be set if roll-ups are disabled")
        cfg.allow_rollup_hdrs = True


def _check_mirror(cfg: StreamConfig) -> None:
    mirror = cfg.mirror
    assert mirror is not None
    if cfg.allow_atomic:
        raise api_error("JSMirrorWithAtomicPublishErr")
    if cfg.allow_batched:
        raise api_error("JSMirrorWithBatchPublishErr")
    if cfg.subjects:
        raise api_error("JSMirrorWithSubjectsErr")
    if cfg.sources:
        raise api_error("JSMirrorWithSourcesErr")
    if cfg.first_seq:
        raise api_error("JSMirrorWithFirstSeqErr")
    if not is_valid_name(mirror.name):
        raise api_error("JSMirrorInvalidStreamName")
    if mirror.filter_subject and mirror.subject_transforms:
        raise api_error("JSMirrorMultipleFiltersNotAllowed")
    _check_start_time(mirror)
    _check_transforms(mirror.subject_transforms, "JSMirror")
    if mirror.consumer is not None and not _durable_consumer_ok(mirror):
        raise api_error("JSMirrorDurableConsumerCfgInvalid")
    if mirror.filter_subject and not is_valid_subject(mirror.filter_subject.encode()):
        raise api_error("JSMirrorInvalidSubjectFilter", err="invalid subject")


def _check_transforms(transforms: list[Any], errors: str) -> None:
    """The subject transforms of a mirror or source (`errors`: `JSMirror` / `JSSource`, the
    prefix of the catalogue entries): each must compile, and their filters not overlap."""
    filters: list[str] = []
    for t in transforms:
        try:
            compile_transform(t.src, t.dest)
        except TransformError as e:
            if e.is_source:
                raise api_error(f"{errors}InvalidSubjectFilter", err=str(e)) from None
            raise api_error(f"{errors}InvalidTransformDestination", err=str(e)) from None
        filters.append(t.src or ">")
    if _any_overlap(filters):
        raise api_error(f"{errors}OverlappingSubjectFilters")


def _check_sources(cfg: StreamConfig) -> None:
    seen: set[tuple[Any, ...]] = set()
    for source in cfg.sources:
        if not is_valid_name(source.name):
            raise api_error("JSSourceInvalidStreamName")
        key = source.key()
        if key in seen:
            raise api_error("JSSourceDuplicateDetected")
        seen.add(key)
        if source.filter_subject and source.subject_transforms:
            raise api_error("JSSourceMultipleFiltersNotAllowed")
        _check_start_time(source)
        if source.filter_subject and not is_valid_subject(source.filter_subject.encode()):
            raise api_error("JSSourceInvalidSubjectFilter", err="invalid subject")
        _check_transforms(source.subject_transforms, "JSSource")
        if source.consumer is not None and not _durable_consumer_ok(source):
            raise api_error("JSSourceDurableConsumerCfgInvalid")
    names = [s.consumer.get("name") for s in cfg.sources if s.consumer is not None]
    if len(names) != len(set(names)):
        raise api_error("JSSourceDurableConsumerDuplicateDetected")


def _durable_consumer_ok(source: StreamSource) -> bool:
    """A durable source consumer (ADR-60) is named, delivers to a literal subject, and is
    the whole selection: no filter, transform or start position of the source's own."""
    consumer = source.consumer or {}
    name = consumer.get("name")
    deliver = consumer.get("deliver_subject")
    return (
        isinstance(name, str)
        and is_valid_name(name)
        and isinstance(deliver, str)
        and is_valid_subject(deliver.encode())
        and "*" not in deliver
        and ">" not in deliver
        and not source.filter_subject
        and not source.subject_transforms
        and not source.opt_start_seq
        and not source.opt_start_time
    )


def _check_start_time(source: StreamSource) -> None:
    if source.opt_start_time:
        try:
            parse_rfc3339(source.opt_start_time)
        except ValueError as e:
            raise d.invalid_json(str(e)) from None


def _any_overlap(filters: list[str]) -> bool:
    for i, a in enumerate(filters):
        for b in filters[i + 1 :]:
            if subjects_collide(a.encode(), b.encode()):
                return True
    return False


_JS_API_SUBJECTS = (b"$JS.>", b"$JSC.>", b"$NRG.>")
_SYS_SUBJECTS = (b"$SYS.>",)


def _check_subjects(cfg: StreamConfig) -> None:
    if not cfg.subjects:
        if cfg.mirror is None and not cfg.sources:
            cfg.subjects = [cfg.name]
        return
    # Drop exact repeats? nats-server reports them as overlapping: keep them to report.
    encoded = [s.encode() for s in cfg.subjects]
    for subject in encoded:
        if not is_valid_subject(subject):
            raise invalid_config("invalid subject")
    for i, a in enumerate(encoded):
        for b in encoded[i + 1 :]:
            if subjects_collide(a, b):
                raise invalid_config(f'subject "{a.decode()}" overlaps with "{b.decode()}"')
    if cfg.no_ack:
        return
    for subject in encoded:
        if subject == b">":
            raise invalid_config("capturing all subjects requires no-ack to be true")
        if any(subjects_collide(subject, api) for api in _JS_API_SUBJECTS) and not (
            subject.startswith(b"$JS.EVENT.")
        ):
            raise invalid_config(
                "subjects that overlap with jetstream api require no-ack to be true"
            )
        if any(subjects_collide(subject, s) for s in _SYS_SUBJECTS) and not subject.startswith(
            b"$SYS.ACCOUNT."
        ):
            raise invalid_config("subjects that overlap with system api require no-ack to be true")


def _check_subject_transform(cfg: StreamConfig) -> None:
    st = cfg.subject_transform
    if st is None:
        return
    try:
        compile_transform(st.src, st.dest)
    except TransformError as e:
        if e.is_source:
            raise api_error("JSStreamTransformInvalidSource", err=str(e)) from None
        raise api_error("JSStreamTransformInvalidDestination", err=str(e)) from None


def _check_republish(cfg: StreamConfig) -> None:
    rp = cfg.republish
    if rp is None:
        return
    if not rp.src:
        rp.src = ">"
    if not is_valid_subject(rp.src.encode()):
        raise invalid_config("stream configuration for republish source is not a valid subject")
    if not rp.dest:
        return
    try:
        compile_transform(rp.src, rp.dest, strict=True)
    except TransformError:
        raise invalid_config(
            f"stream configuration for republish with transform from '{rp.src}' to "
            f"'{rp.dest}' not valid"
        ) from None
    for subject in cfg.subjects:
        if subjects_collide(subject.encode(), rp.dest.encode()):
            raise invalid_config("stream configuration for republish destination forms a cycle")


def check_update(old: StreamConfig, new: StreamConfig) -> StreamConfig:
    """The rules for changing an existing stream (after `check_stream_config` on `new`)."""
    if new.storage != old.storage:
        raise invalid_config("stream configuration update can not change storage type")
    if new.retention != old.retention and "workqueue" in (new.retention, old.retention):
        raise invalid_config(
            "stream configuration update can not change retention policy to/from workqueue"
        )
    if old.sealed and not new.sealed:
        raise invalid_config("stream configuration update can not unseal a sealed stream")
    if old.deny_delete and not new.deny_delete:
        raise invalid_config("stream configuration update can not cancel deny message deletes")
    if old.deny_purge and not new.deny_purge:
        raise invalid_config("stream configuration update can not cancel deny purge")
    if old.allow_msg_ttl and not new.allow_msg_ttl:
        raise invalid_config("stream configuration update can not disable message TTL")
    if (old.persist_mode or "default") != (new.persist_mode or "default"):
        raise invalid_config("stream configuration update can not change persist mode")
    if old.allow_msg_schedules and not new.allow_msg_schedules:
        raise invalid_config("message schedules can not be disabled")
    if old.allow_msg_counter != new.allow_msg_counter:
        raise invalid_config("stream configuration update can not change message counter setting")
    if (old.mirror is None) != (new.mirror is None) and new.mirror is not None:
        raise api_error("JSStreamMirrorNotUpdatableErr")
    if (
        old.mirror is not None
        and new.mirror is not None
        and (old.mirror.to_json() != new.mirror.to_json())
    ):
        raise api_error("JSStreamMirrorNotUpdatableErr")
    if new.num_replicas > 1:
        raise api_error("JSStreamReplicasNotSupportedErr")
    if new.first_seq != old.first_seq and new.first_seq:
        raise invalid_config("stream configuration update can not change first sequence")
    if new.sealed and not old.sealed:
        new.max_age = 0
        new.discard = "new"
        new.deny_delete = True
        new.deny_purge = True
        new.allow_rollup_hdrs = False
    return new


def check_create(cfg: StreamConfig) -> None:
    """Rules only for creating a stream (standalone server)."""
    if cfg.sealed:
        raise invalid_config("stream configuration for create can not be sealed")
    if cfg.num_replicas > 1:
        raise api_error("JSStreamReplicasNotSupportedErr")


def subjects_overlap(a: list[str], b: list[str]) -> bool:
    return any(subjects_collide(x.encode(), y.encode()) for x in a for y in b)


def name_error(name: str) -> ApiError | None:
    """10128 for path separators in a stream name (checked before the config rules)."""
    if has_path_separators(name):
        return api_error("JSStreamNameContainsPathSeparatorsErr")
    return None
