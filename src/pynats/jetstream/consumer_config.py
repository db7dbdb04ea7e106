"""ConsumerConfig: create-request decoding, defaults, validation and JSON, as nats-server does.

`parse_create_request(payload)` decodes a `$JS.API.CONSUMER.CREATE` body (strict JSON, Go's
error texts); `apply_defaults(cfg, stream_cfg, limits, pedantic)` fills in what nats-server
fills in; `check_consumer_config(cfg, stream_cfg, limits)` applies its validation rules in
its order; `check_update(old, new)` adds the rules for changing an existing consumer.
`to_json()` writes the config with nats-server's field names and omissions. Durations are ns.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynats.gotime import NS_PER_S, parse_rfc3339
from pynats.server.subjects import is_valid_subject, subjects_collide

from . import decode as d
from .config import MAX_DESCRIPTION_LEN, MAX_METADATA_BYTES, META_REQUIRED_LEVEL, SERVER_META_KEYS
from .errors import ApiError, api_error, invalid_config

if TYPE_CHECKING:
    from .config import StreamConfig
    from .limits import AccountLimits

# Defaults and limits, units in the names.
DEFAULT_ACK_WAIT_NS = 30 * NS_PER_S
DEFAULT_MAX_ACK_PENDING = 1000
DEFAULT_MAX_WAITING = 512
DEFAULT_EPHEMERAL_INACTIVE_NS = 5 * NS_PER_S
DEFAULT_PINNED_TTL_NS = 2 * 60 * NS_PER_S
MIN_HEARTBEAT_NS = 100_000_000
MIN_MAX_EXPIRES_NS = 1_000_000
MAX_NAME_LEN = 255

DELIVER_POLICIES = ("all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject")
ACK_POLICIES = ("none", "all", "explicit", "flow_control")
FLOW_CONTROL_ACK_HEARTBEAT_NS = 1_000_000_000
REPLAY_POLICIES = ("instant", "original")
PRIORITY_POLICIES = ("none", "overflow", "pinned_client", "prioritized")
ACTIONS = ("", "create", "update")

_GROUP_NAME = re.compile(r"^[a-zA-Z0-9/_=-]{1,16}$")
_INVALID_NAME_CHARS = frozenset(".*> \t\r\n\f\v/\\")


def _check_priority_policy(value: Any, path: str, kind: d.Kind) -> str:
    if isinstance(value, str) and not isinstance(value, d.RawNumber) and value in PRIORITY_POLICIES:
        return value
    raise d.invalid_json(f'unknown priority policy: "{value}"')


def _check_action(value: Any, path: str, kind: d.Kind) -> str:
    if isinstance(value, str) and not isinstance(value, d.RawNumber) and value in ACTIONS:
        return value
    raise d.invalid_json(f'unknown consumer action: "{value}"')


def _check_time(value: Any, path: str, kind: d.Kind) -> str:
    text = d.STRING.check(value, path, d.TIME)
    try:
        parse_rfc3339(text)
    except ValueError:
        raise d.invalid_json(
            f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": cannot parse "{text}" as "2006"'
        ) from None
    return text


TIME = d.Kind("time.Time", _check_time)

CONSUMER_CONFIG_FIELDS: dict[str, d.Kind] = {
    "durable_name": d.STRING,
    "name": d.STRING,
    "description": d.STRING,
    "deliver_policy": d.enum("server.DeliverPolicy", *DELIVER_POLICIES),
    "opt_start_seq": d.UINT64,
    "opt_start_time": TIME,
    "ack_policy": d.enum("server.AckPolicy", *ACK_POLICIES),
    "ack_wait": d.DURATION,
    "max_deliver": d.INT,
    "backoff": d.list_of("[]time.Duration", d.DURATION),
    "filter_subject": d.STRING,
    "filter_subjects": d.STRINGS,
    "replay_policy": d.enum("server.ReplayPolicy", *REPLAY_POLICIES),
    "rate_limit_bps": d.UINT64,
    "sample_freq": d.STRING,
    "max_waiting": d.INT,
    "max_ack_pending": d.INT,
    "flow_control": d.BOOL,
    "headers_only": d.BOOL,
    "max_batch": d.INT,
    "max_expires": d.DURATION,
    "max_bytes": d.INT,
    "deliver_subject": d.STRING,
    "deliver_group": d.STRING,
    "idle_heartbeat": d.DURATION,
    "inactive_threshold": d.DURATION,
    "num_replicas": d.INT,
    "mem_storage": d.BOOL,
    "direct": d.BOOL,
    "sourcing": d.BOOL,
    "metadata": d.STRING_MAP,
    "pause_until": TIME,
    "priority_groups": d.STRINGS,
    "priority_policy": d.Kind("server.PriorityPolicy", _check_priority_policy),
    "priority_timeout": d.DURATION,
}
CONSUMER_CONFIG = d.Struct("ConsumerConfig", CONSUMER_CONFIG_FIELDS)
CREATE_REQUEST = d.Struct(
    "CreateConsumerRequest",
    {
        "stream_name": d.STRING,
        "config": d.struct("config", CONSUMER_CONFIG),
        "action": d.Kind("server.ConsumerAction", _check_action),
        "pedantic": d.BOOL,
    },
)


def is_valid_name(name: str) -> bool:
    return bool(name) and not any(c in _INVALID_NAME_CHARS for c in name)


@dataclass
class ConsumerConfig:
    durable_name: str = ""
    name: str = ""
    description: str = ""
    deliver_policy: str = "all"
    opt_start_seq: int = 0
    opt_start_time: str = ""
    ack_policy: str = "none"
    ack_wait: int = 0
    max_deliver: int = 0
    backoff: list[int] = field(default_factory=list)
    filter_subject: str = ""
    filter_subjects: list[str] = field(default_factory=list)
    replay_policy: str = "instant"
    rate_limit_bps: int = 0
    sample_freq: str = ""
    max_waiting: int = 0
    max_ack_pending: int = 0
    flow_control: bool = False
    headers_only: bool = False
    max_batch: int = 0
    max_expires: int = 0
    max_bytes: int = 0
    deliver_subject: str = ""
    deliver_group: str = ""
    idle_heartbeat: int = 0
    inactive_threshold: int = 0
    num_replicas: int = 0
    mem_storage: bool = False
    direct: bool = False
    sourcing: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    pause_until: str = ""
    priority_groups: list[str] = field(default_factory=list)
    priority_policy: str = "none"
    priority_timeout: int = 0

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ConsumerConfig:
        cfg = cls()
        for key, value in obj.items():
            if key in _FIELDS and value is not None:
                setattr(cfg, key, copy.deepcopy(value))
        if not cfg.deliver_policy:
            cfg.deliver_policy = "all"
        if not cfg.ack_policy:
            cfg.ack_policy = "none"
        if not cfg.replay_policy:
            cfg.replay_policy = "instant"
        if not cfg.priority_policy:
            cfg.priority_policy = "none"
        return cfg

    def to_json(self, server_meta: dict[str, str] | None = None) -> dict[str, Any]:
        """nats-server's JSON; `server_meta` adds `_nats.level`/`_nats.ver` (responses)."""
        out: dict[str, Any] = {}
        if self.durable_name:
            out["durable_name"] = self.durable_name
        if self.name:
            out["name"] = self.name
        if self.description:
            out["description"] = self.description
        out["deliver_policy"] = self.deliver_policy
        if self.opt_start_seq:
            out["opt_start_seq"] = self.opt_start_seq
        if self.opt_start_time:
            out["opt_start_time"] = self.opt_start_time
        out["ack_policy"] = self.ack_policy
        if self.ack_wait:
            out["ack_wait"] = self.ack_wait
        if self.max_deliver:
            out["max_deliver"] = self.max_deliver
        if self.backoff:
            out["backoff"] = list(self.backoff)
        if self.filter_subject:
            out["filter_subject"] = self.filter_subject
        if self.filter_subjects:
            out["filter_subjects"] = list(self.filter_subjects)
        out["replay_policy"] = self.replay_policy
        if self.rate_limit_bps:
            out["rate_limit_bps"] = self.rate_limit_bps
        if self.sample_freq:
            out["sample_freq"] = self.sample_freq
        if self.max_waiting:
            out["max_waiting"] = self.max_waiting
        if self.max_ack_pending:
            out["max_ack_pending"] = self.max_ack_pending
        if self.flow_control:
            out["flow_control"] = True
        if self.headers_only:
            out["headers_only"] = True
        if self.max_batch:
            out["max_batch"] = self.max_batch
        if self.max_expires:
            out["max_expires"] = self.max_expires
        if self.max_bytes:
            out["max_bytes"] = self.max_bytes
        if self.deliver_subject:
            out["deliver_subject"] = self.deliver_subject
        if self.deliver_group:
            out["deliver_group"] = self.deliver_group
        if self.idle_heartbeat:
            out["idle_heartbeat"] = self.idle_heartbeat
        if self.inactive_threshold:
            out["inactive_threshold"] = self.inactive_threshold
        out["num_replicas"] = self.num_replicas
        if self.mem_storage:
            out["mem_storage"] = True
        if self.direct:
            out["direct"] = True
        if self.sourcing:
            out["sourcing"] = True
        meta = dict(self.metadata)
        if server_meta:
            meta.update(server_meta)
        if meta:
            out["metadata"] = {k: meta[k] for k in sorted(meta)}
        if self.pause_until:
            out["pause_until"] = self.pause_until
        if self.priority_groups:
            out["priority_groups"] = list(self.priority_groups)
        if self.priority_policy != "none":
            out["priority_policy"] = self.priority_policy
        if self.priority_timeout:
            out["priority_timeout"] = self.priority_timeout
        return out

    def comparable(self, keys: tuple[str, ...] = SERVER_META_KEYS) -> dict[str, Any]:
        """The config for equality checks: without (some of) the server's metadata."""
        out = self.to_json()
        meta = out.get("metadata")
        if meta is not None:
            for key in keys:
                meta.pop(key, None)
            if not meta:
                del out["metadata"]
        return out

    # -- derived --

    @property
    def is_pull(self) -> bool:
        return not self.deliver_subject

    @property
    def is_durable(self) -> bool:
        return bool(self.durable_name)

    @property
    def filters(self) -> list[str]:
        if self.filter_subjects:
            return list(self.filter_subjects)
        return [self.filter_subject] if self.filter_subject else []

    @property
    def start_time_ns(self) -> int:
        return parse_rfc3339(self.opt_start_time) if self.opt_start_time else 0

    @property
    def pause_until_ns(self) -> int:
        return parse_rfc3339(self.pause_until) if self.pause_until else 0

    def required_api_level(self) -> int:
        """The API level this config needs (ADR-44): pause and priority groups are level 1."""
        if self.ack_policy == "flow_control":
            return 4
        if self.pause_until or self.priority_policy != "none" or self.priority_groups:
            return 1
        return 0

    def ack_wait_for(self, deliveries: int) -> int:
        """How long to wait for the ack of delivery number `deliveries` (1 = first)."""
        backoff = self.backoff
        if backoff:
            return backoff[min(deliveries - 1, len(backoff) - 1)]
        return self.ack_wait


_FIELDS = set(CONSUMER_CONFIG_FIELDS)


@dataclass
class CreateRequest:
    stream_name: str
    config: ConsumerConfig
    action: str
    pedantic: bool


def parse_create_request(payload: bytes, *, strict: bool = True) -> CreateRequest:
    obj = d.decode(payload, CREATE_REQUEST, strict=strict)
    return CreateRequest(
        stream_name=obj.get("stream_name", ""),
        config=ConsumerConfig.from_json(obj.get("config") or {}),
        action=obj.get("action", ""),
        pedantic=bool(obj.get("pedantic")),
    )


# -- defaults --------------------------------------------------------------------------------


def _pedantic(pedantic: bool, text: str) -> None:
    if pedantic:
        raise api_error("JSPedanticErrF", err=text)


def apply_defaults(
    cfg: ConsumerConfig,
    stream_cfg: StreamConfig,
    limits: AccountLimits,
    pedantic: bool,
    server_limits: dict[str, int] | None = None,
) -> None:
    """What nats-server fills in for a consumer config (pedantic: refuse instead);
    `server_limits` are `jetstream { limits {} }` (JetStream.server_limits)."""
    server_limits = server_limits or {}
    if cfg.max_deliver == 0 or cfg.max_deliver < -1:
        if cfg.max_deliver < -1:
            _pedantic(pedantic, "max_deliver must be set to -1")
        cfg.max_deliver = -1
    if cfg.max_waiting < 0:
        _pedantic(pedantic, "max_waiting must not be negative")
        cfg.max_waiting = 0
    if cfg.max_ack_pending < -1:
        _pedantic(pedantic, "max_ack_pending must be set to -1")
        cfg.max_ack_pending = -1
    for name, text in (
        ("max_batch", "max_batch must not be negative"),
        ("max_expires", "max_expires must not be negative"),
        ("max_bytes", "max_bytes must not be negative"),
        ("idle_heartbeat", "idle_heartbeat must not be negative"),
        ("inactive_threshold", "inactive_threshold must not be negative"),
        ("priority_timeout", "priority_timeout must not be negative"),
    ):
        if getattr(cfg, name) < 0:
            _pedantic(pedantic, text)
            setattr(cfg, name, 0)
    if not cfg.deliver_subject and cfg.max_waiting == 0:
        cfg.max_waiting = DEFAULT_MAX_WAITING
    if cfg.ack_policy == "flow_control" and cfg.deliver_subject and not pedantic:
        cfg.flow_control = True  # what the policy needs, set as nats-server sets it
        if not cfg.idle_heartbeat:
            cfg.idle_heartbeat = FLOW_CONTROL_ACK_HEARTBEAT_NS
    if cfg.ack_wait == 0 and cfg.ack_policy in ("explicit", "all"):
        cfg.ack_wait = DEFAULT_ACK_WAIT_NS
    if cfg.backoff:
        if pedantic and cfg.ack_wait != cfg.backoff[0]:
            _pedantic(pedantic, "first backoff value has to equal batch AckWait")
        cfg.ack_wait = cfg.backoff[0]
    limits_cfg = stream_cfg.consumer_limits or {}
    stream_max_ack = int(limits_cfg.get("max_ack_pending", 0) or 0)
    stream_inactive = int(limits_cfg.get("inactive_threshold", 0) or 0)
    if cfg.max_ack_pending == 0:
        if stream_max_ack > 0:
            _pedantic(pedantic, "max_ack_pending must be set if it's configured in stream limits")
        cfg.max_ack_pending = stream_max_ack
    if cfg.inactive_threshold == 0:
        if stream_inactive > 0:
            _pedantic(
                pedantic, "inactive_threshold must be set if it's configured in stream limits"
            )
        cfg.inactive_threshold = stream_inactive
    if cfg.max_ack_pending == 0 and cfg.ack_policy != "none":
        pending = DEFAULT_MAX_ACK_PENDING
        server_max_ack = server_limits.get("max_ack_pending", 0)
        if 0 < server_max_ack < pending:
            pending = server_max_ack
        if 0 < limits.max_ack_pending < pending:
            pending = limits.max_ack_pending
        cfg.max_ack_pending = pending
    server_max_batch = server_limits.get("max_request_batch", 0)
    if not cfg.deliver_subject and cfg.max_batch == 0 and server_max_batch > 0:
        _pedantic(pedantic, "max_request_batch must be set if it's JetStream limits are set")
        cfg.max_batch = server_max_batch
    if cfg.priority_policy == "pinned_client" and cfg.priority_timeout == 0:
        cfg.priority_timeout = DEFAULT_PINNED_TTL_NS
    if not cfg.is_durable and cfg.inactive_threshold <= 0:
        cfg.inactive_threshold = DEFAULT_EPHEMERAL_INACTIVE_NS


# -- validation ------------------------------------------------------------------------------


def check_consumer_config(
    cfg: ConsumerConfig,
    stream_cfg: StreamConfig,
    limits: AccountLimits,
    server_limits: dict[str, int] | None = None,
) -> None:
    """nats-server's consumer config rules, in its order (after `apply_defaults`)."""
    server_limits = server_limits or {}
    if cfg.name and not is_valid_name(cfg.name):
        raise invalid_config("consumer name can not contain '.', '*', '>', '\\', '/'")
    if cfg.durable_name and not is_valid_name(cfg.durable_name):
        raise invalid_config("consumer durable name can not contain '.', '*', '>', '\\', '/'")
    if cfg.num_replicas > 0 and cfg.num_replicas > stream_cfg.num_replicas:
        raise api_error("JSConsumerReplicasExceedsStream")
    if cfg.num_replicas < 0:
        raise api_error("JSReplicasCountCannotBeNegative")
    if (
        stream_cfg.retention in ("interest", "workqueue")
        and cfg.num_replicas
        and cfg.num_replicas != stream_cfg.num_replicas
    ):
        raise api_error("JSConsumerReplicasShouldMatchStream")
    if any(b < 0 for b in cfg.backoff):
        raise api_error("JSConsumerBackOffNegativeErr")
    if cfg.ack_wait < 0:
        raise api_error("JSConsumerAckWaitNegativeErr")
    if cfg.ack_policy == "flow_control":
        # acks ride on the answers to flow control requests (durable sourcing, ADR-60)
        if not cfg.deliver_subject:
            raise api_error("JSConsumerAckFCRequiresPushErr")
        if not cfg.flow_control:
            raise api_error("JSConsumerAckFCRequiresFCErr")
        if cfg.max_ack_pending <= 0:
            raise api_error("JSConsumerAckFCRequiresMaxAckPendingErr")
        if cfg.ack_wait:
            raise api_error("JSConsumerAckFCRequiresNoAckWaitErr")
        if cfg.max_deliver not in (0, -1):
            raise api_error("JSConsumerAckFCRequiresNoMaxDeliverErr")
    if cfg.backoff and cfg.max_deliver != -1 and len(cfg.backoff) > cfg.max_deliver:
        raise api_error("JSConsumerMaxDeliverBackoffErr")
    if len(cfg.description) > MAX_DESCRIPTION_LEN:
        raise api_error("JSConsumerDescriptionTooLongErrF", max=MAX_DESCRIPTION_LEN)
    if cfg.deliver_subject:
        subject = cfg.deliver_subject.encode()
        if b"*" in subject or b">" in subject:
            raise api_error("JSConsumerDeliverToWildcardsErr")
        if not is_valid_subject(subject):
            raise api_error("JSConsumerInvalidDeliverSubject")
        if any(subjects_collide(subject, s.encode()) for s in stream_cfg.subjects):
            raise api_error("JSConsumerDeliverCycleErr")
        if cfg.max_waiting != 0:
            raise api_error("JSConsumerPushMaxWaitingErr")
        if cfg.max_ack_pending > 0 and cfg.ack_policy == "none":
            raise api_error("JSConsumerMaxPendingAckPolicyRequiredErr")
        if 0 < cfg.idle_heartbeat < MIN_HEARTBEAT_NS:
            raise api_error("JSConsumerSmallHeartbeatErr")
    else:
        if cfg.ack_policy == "none" and stream_cfg.retention == "workqueue":
            raise api_error("JSConsumerPullRequiresAckErr")
        if cfg.rate_limit_bps > 0:
            raise api_error("JSConsumerPullWithRateLimitErr")
        if cfg.max_waiting < 0:
            raise api_error("JSConsumerMaxWaitingNegativeErr")
        if cfg.idle_heartbeat > 0:
            raise api_error("JSConsumerHBRequiresPushErr")
        if cfg.flow_control:
            raise api_error("JSConsumerFCRequiresPushErr")
        if cfg.max_batch < 0:
            raise api_error("JSConsumerMaxRequestBatchNegativeErr")
        if cfg.max_expires and cfg.max_expires < MIN_MAX_EXPIRES_NS:
            raise api_error("JSConsumerMaxRequestExpiresTooSmall")
        server_max_batch = server_limits.get("max_request_batch", 0)
        if server_max_batch > 0 and cfg.max_batch > server_max_batch:
            raise api_error("JSConsumerMaxRequestBatchExceededF", limit=server_max_batch)
    server_max_ack = server_limits.get("max_ack_pending", 0)
    if server_max_ack > 0 and cfg.max_ack_pending > server_max_ack:
        raise api_error("JSConsumerMaxPendingAckExcessErrF", limit=server_max_ack)
    if limits.max_ack_pending > 0 and cfg.max_ack_pending > limits.max_ack_pending:
        raise api_error("JSConsumerMaxPendingAckExcessErrF", limit=limits.max_ack_pending)
    limits_cfg = stream_cfg.consumer_limits or {}
    stream_max_ack = int(limits_cfg.get("max_ack_pending", 0) or 0)
    stream_inactive = int(limits_cfg.get("inactive_threshold", 0) or 0)
    if stream_max_ack > 0 and cfg.max_ack_pending > stream_max_ack:
        raise api_error("JSConsumerMaxPendingAckExcessErrF", limit=stream_max_ack)
    if stream_inactive > 0 and cfg.inactive_threshold > stream_inactive:
        raise api_error("JSConsumerInactiveThresholdExcess", limit=stream_inactive)
    if cfg.direct:
        if not cfg.deliver_subject:
            raise api_error("JSConsumerDirectRequiresPushErr")
        if cfg.is_durable:
            raise api_error("JSConsumerDirectRequiresEphemeralErr")
    if cfg.filter_subject and cfg.filter_subjects:
        raise api_error("JSConsumerDuplicateFilterSubjects")
    if cfg.filter_subject and not is_valid_subject(cfg.filter_subject.encode()):
        raise invalid_config("invalid subject")
    if any(not f for f in cfg.filter_subjects):
        raise api_error("JSConsumerEmptyFilter")
    filters = [f.encode() for f in cfg.filters]
    for i, subject in enumerate(filters):
        if not is_valid_subject(subject):
            raise invalid_config("invalid subject")
        for other in filters[i + 1 :]:
            if subjects_collide(subject, other):
                raise api_error("JSConsumerOverlappingSubjectFilters")
    _check_start(cfg)
    if cfg.sample_freq:
        _parse_sample_freq(cfg.sample_freq)
    if cfg.flow_control and cfg.idle_heartbeat == 0:
        raise api_error("JSConsumerWithFlowControlNeedsHeartbeats")
    if cfg.durable_name and cfg.name and cfg.name != cfg.durable_name:
        raise api_error("JSConsumerCreateDurableAndNameMismatch")
    if sum(len(k) + len(v) for k, v in cfg.metadata.items()) > MAX_METADATA_BYTES:
        raise api_error("JSConsumerMetadataLengthErrF", limit=f"{MAX_METADATA_BYTES // 1024}KB")
    if cfg.priority_policy != "none":
        if cfg.deliver_subject:
            raise api_error("JSConsumerPushWithPriorityGroupErr")
        if not cfg.priority_groups:
            raise api_error("JSConsumerPriorityPolicyWithoutGroup")
        for group in cfg.priority_groups:
            if not group:
                raise api_error("JSConsumerEmptyGroupName")
            if not _GROUP_NAME.match(group):
                raise api_error("JSConsumerInvalidGroupNameErr")
    else:
        if cfg.priority_groups:
            raise api_error("JSConsumerPriorityGroupWithPolicyNone")
        if cfg.priority_timeout > 0:
            raise api_error("JSConsumerPinnedTTLWithoutPriorityPolicyNone")


def _check_start(cfg: ConsumerConfig) -> None:
    def bad_start(policy: str, start: str) -> ApiError:
        return api_error(
            "JSConsumerInvalidPolicyErrF",
            err=f"consumer delivery policy is deliver {policy}, but optional start {start} "
            "is also set",
        )

    def not_set(policy: str, what: str) -> ApiError:
        return api_error(
            "JSConsumerInvalidPolicyErrF",
            err=f"consumer delivery policy is deliver {policy}, but optional {what} is not set",
        )

    policy = cfg.deliver_policy
    seq, start_time = cfg.opt_start_seq, cfg.opt_start_time
    if policy in ("all", "last", "new", "last_per_subject"):
        label = "last per subject" if policy == "last_per_subject" else policy
        if seq > 0:
            raise bad_start(label, "sequence")
        if start_time:
            raise bad_start(label, "time")
        if policy == "last_per_subject" and not cfg.filters:
            raise not_set(label, "filter subject")
    elif policy == "by_start_sequence":
        if seq == 0:
            raise not_set("by start sequence", "start sequence")
        if start_time:
            raise bad_start("by start sequence", "time")
    elif policy == "by_start_time":
        if not start_time:
            raise not_set("by start time", "start time")
        if seq:
            raise bad_start("by start time", "start sequence")


def _parse_sample_freq(text: str) -> int:
    digits = text[:-1] if text.endswith("%") else text
    if digits.isdigit() or (digits[:1] in "+-" and digits[1:].isdigit() and digits[1:]):
        value = int(digits)
        if value < 0:
            raise api_error("JSConsumerInvalidSamplingErrF", err="<nil>")
        return value
    raise api_error(
        "JSConsumerInvalidSamplingErrF",
        err=f'strconv.Atoi: parsing "{digits}": invalid syntax',
    )


def sample_percent(cfg: ConsumerConfig) -> int:
    """`sample_freq` as a percentage (0 = no ack metrics)."""
    if not cfg.sample_freq:
        return 0
    try:
        return min(_parse_sample_freq(cfg.sample_freq), 100)
    except ApiError:
        return 0


def check_update(old: ConsumerConfig, new: ConsumerConfig) -> None:
    """What an existing consumer may not change (raises 10012 with nats-server's text)."""
    if old.comparable() == new.comparable():
        return

    def refuse(text: str) -> ApiError:
        return api_error("JSConsumerCreateErrF", err=text)

    if old.deliver_policy != new.deliver_policy:
        raise refuse("deliver policy can not be updated")
    if old.mem_storage != new.mem_storage:
        raise refuse("storage type can not be updated")
    if old.direct != new.direct:
        raise refuse("direct can not be updated")
    if old.sourcing != new.sourcing:
        raise refuse("sourcing can not be updated")
    if old.opt_start_seq != new.opt_start_seq:
        raise refuse("start sequence can not be updated")
    if (old.start_time_ns if old.opt_start_time else None) != (
        new.start_time_ns if new.opt_start_time else None
    ):
        raise refuse("start time can not be updated")
    if old.ack_policy != new.ack_policy:
        raise refuse("ack policy can not be updated")
    if old.replay_policy != new.replay_policy:
        raise refuse("replay policy can not be updated")
    if old.idle_heartbeat != new.idle_heartbeat:
        raise refuse("heart beats can not be updated")
    if old.flow_control != new.flow_control:
        raise refuse("flow control can not be updated")
    if old.deliver_subject != new.deliver_subject:
        if not old.deliver_subject:
            raise refuse("can not update pull consumer to push based")
        if not new.deliver_subject:
            raise refuse("can not update push consumer to pull based")
    if old.max_waiting != new.max_waiting:
        raise refuse("max waiting can not be updated")
    if new.backoff and new.max_deliver != -1 and len(new.backoff) > new.max_deliver:
        raise api_error("JSConsumerMaxDeliverBackoffErr")


RESPONSE_META_KEYS = tuple(k for k in SERVER_META_KEYS if k != META_REQUIRED_LEVEL)


def with_required_level(cfg: ConsumerConfig) -> ConsumerConfig:
    cfg.metadata[META_REQUIRED_LEVEL] = str(cfg.required_api_level())
    return cfg
