"""The `jetstream_*` families of `/metrics`, as prometheus-nats-exporter's JetStream collector
makes them from `/jsz?consumers=true&config=true` (its `-jsz=all`) and the server name in
`/varz`: the server's totals, then per account, stream, source, mirror and consumer, each
level labelled with its own names after those of the levels above.

Read from the /jsz answer (not from JetStream's objects), so `server/` needs no JetStream: with
JetStream off the answer says `disabled` and only the server-level series appear.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pynats import gotime

if TYPE_CHECKING:
    from .metrics import Families
    from .monitor import Query

NAMESPACE = "jetstream"
JSZ_QUERY: Query = {"consumers": "true", "config": "true", "raft": "true"}

# (series, help, value from the answer) at each level, in the exporter's words.
_SERVER_SERIES = (
    (
        "server_jetstream_disabled",
        "JetStream disabled or not",
        lambda a: 1 if a.get("disabled") else 0,
    ),
    ("server_max_memory", "JetStream Max Memory", lambda a: _get(a, "config", "max_memory")),
    ("server_max_storage", "JetStream Max Storage", lambda a: _get(a, "config", "max_storage")),
    ("server_total_streams", "Total number of streams in JetStream", lambda a: a.get("streams", 0)),
    (
        "server_total_consumers",
        "Total number of consumers in JetStream",
        lambda a: a.get("consumers", 0),
    ),
    (
        "server_total_messages",
        "Total number of stored messages in JetStream",
        lambda a: a.get("messages", 0),
    ),
    (
        "server_total_message_bytes",
        "Total number of bytes stored in JetStream",
        lambda a: a.get("bytes", 0),
    ),
)
_ACCOUNT_SERIES = (
    (
        "account_max_storage",
        "JetStream Account Max Storage in bytes",
        lambda a: a.get("reserved_storage", 0),
    ),
    (
        "account_max_memory",
        "JetStream Account Max Memory in bytes",
        lambda a: a.get("reserved_memory", 0),
    ),
    (
        "account_storage_used",
        "Total number of bytes used by JetStream storage",
        lambda a: a.get("storage", 0),
    ),
    (
        "account_memory_used",
        "Total number of bytes used by JetStream memory",
        lambda a: a.get("memory", 0),
    ),
)
_STREAM_SERIES = (
    ("stream_total_messages", "Total number of messages from a stream", "messages"),
    ("stream_total_bytes", "Total stored bytes from a stream", "bytes"),
    ("stream_first_seq", "First sequence from a stream", "first_seq"),
    ("stream_last_seq", "Last sequence from a stream", "last_seq"),
    ("stream_consumer_count", "Total number of consumers from a stream", "consumer_count"),
    ("stream_subject_count", "Total number of subjects in a stream", "num_subjects"),
)
_STREAM_LIMITS = (
    (
        "stream_limit_bytes",
        "The maximum configured storage limit (in bytes) for a JetStream stream. "
        "A value of -1 indicates no limit.",
        "max_bytes",
    ),
    (
        "stream_limit_messages",
        "The maximum number of messages allowed in a JetStream stream as per its "
        "configuration. A value of -1 indicates no limit.",
        "max_msgs",
    ),
)
_CONSUMER_SERIES = (
    (
        "consumer_delivered_consumer_seq",
        "Latest sequence number of a stream consumer",
        ("delivered", "consumer_seq"),
    ),
    (
        "consumer_delivered_stream_seq",
        "Latest sequence number of a stream",
        ("delivered", "stream_seq"),
    ),
    ("consumer_num_ack_pending", "Number of pending acks from a consumer", ("num_ack_pending",)),
    (
        "consumer_num_redelivered",
        "Number of redelivered messages from a consumer",
        ("num_redelivered",),
    ),
    (
        "consumer_num_waiting",
        "Number of inflight fetch requests from a pull consumer",
        ("num_waiting",),
    ),
    ("consumer_num_pending", "Number of pending messages from a consumer", ("num_pending",)),
    (
        "consumer_ack_floor_stream_seq",
        "Number of ack floor stream seq from a consumer",
        ("ack_floor", "stream_seq"),
    ),
    (
        "consumer_ack_floor_consumer_seq",
        "Number of ack floor consumer seq from a consumer",
        ("ack_floor", "consumer_seq"),
    ),
)


def add_jetstream(
    families: Families, jsz: Mapping[str, Any], varz: Mapping[str, Any], server_id: str
) -> None:
    server_name = varz.get("server_name", "")
    meta = jsz.get("meta_cluster")
    if isinstance(meta, dict):
        cluster, meta_leader = meta.get("name", ""), meta.get("leader", "")
        is_meta_leader = _truth(meta_leader == server_name)
    else:
        cluster, meta_leader, is_meta_leader = "", "", "true"
    server_labels = {
        "server_id": server_id,
        "server_name": server_name,
        "cluster": cluster,
        "domain": _get(jsz, "config", "domain", default=""),
        "meta_leader": meta_leader,
        "is_meta_leader": is_meta_leader,
    }
    for series, help_text, value in _SERVER_SERIES:
        families.add(f"{NAMESPACE}_{series}", help_text, server_labels, value(jsz))
    for account in jsz.get("account_details") or []:
        name = account.get("name", "")
        account_labels = {
            **server_labels,
            "account": name,
            "account_name": name,
            "account_id": account.get("id", ""),
        }
        for series, help_text, value in _ACCOUNT_SERIES:
            families.add(f"{NAMESPACE}_{series}", help_text, account_labels, value(account))
        for stream in account.get("stream_detail") or []:
            _add_stream(families, stream, account_labels, server_name)


def _add_stream(
    families: Families, stream: Mapping[str, Any], account_labels: dict[str, str], server_name: str
) -> None:
    leader, is_leader = _leader(stream, server_name)
    labels = {
        **account_labels,
        "stream_name": stream.get("name", ""),
        "stream_leader": leader,
        "is_stream_leader": is_leader,
        "stream_raft_group": stream.get("stream_raft_group", ""),
    }
    state = stream.get("state") or {}
    for series, help_text, field in _STREAM_SERIES:
        families.add(f"{NAMESPACE}_{series}", help_text, labels, state.get(field, 0))
    config = stream.get("config")
    if isinstance(config, dict):
        for series, help_text, field in _STREAM_LIMITS:
            families.add(f"{NAMESPACE}_{series}", help_text, labels, config.get(field, 0))
    for source in stream.get("sources") or []:
        _add_origin(families, "source", source, labels)
    if isinstance(stream.get("mirror"), dict):
        _add_origin(families, "mirror", stream["mirror"], labels)
    for consumer in stream.get("consumer_detail") or []:
        _add_consumer(families, consumer, labels, server_name)


def _add_origin(
    families: Families, kind: str, origin: Mapping[str, Any], stream_labels: dict[str, str]
) -> None:
    external = origin.get("external") or {}
    labels = {
        **stream_labels,
        f"{kind}_name": origin.get("name", ""),
        f"{kind}_api": external.get("api", ""),
        f"{kind}_deliver": external.get("deliver", ""),
    }
    families.add(
        f"{NAMESPACE}_stream_{kind}_lag",
        f"Number of messages a stream {kind} is behind",
        labels,
        origin.get("lag", 0),
    )
    families.add(
        f"{NAMESPACE}_stream_{kind}_active_duration_ns",
        f"Stream {kind} active duration in nanoseconds (-1 indicates inactive)",
        labels,
        origin.get("active", 0),
    )


def _add_consumer(
    families: Families, consumer: Mapping[str, Any], stream_labels: dict[str, str], server_name: str
) -> None:
    leader, is_leader = _leader(consumer, server_name)
    labels = {
        **stream_labels,
        "consumer_name": consumer.get("name", ""),
        "consumer_leader": leader,
        "is_consumer_leader": is_leader,
        "consumer_desc": _get(consumer, "config", "description", default=""),
    }
    now_ns = _time_ns(consumer.get("ts"))
    for series, help_text, field in (
        (
            "consumer_last_delivery_seconds",
            "Seconds since last message delivery to consumer",
            "delivered",
        ),
        ("consumer_last_ack_seconds", "Seconds since last ack from consumer", "ack_floor"),
    ):
        last_ns = _time_ns(_get(consumer, field, "last_active", default=None))
        if last_ns is not None and now_ns is not None:
            families.add(f"{NAMESPACE}_{series}", help_text, labels, (now_ns - last_ns) / 1e9)
    for series, help_text, path in _CONSUMER_SERIES:
        families.add(f"{NAMESPACE}_{series}", help_text, labels, _get(consumer, *path))


def _leader(entry: Mapping[str, Any], server_name: str) -> tuple[str, str]:
    """The `*_leader` and `is_*_leader` labels: a stream or consumer without cluster info
    counts as led here."""
    cluster = entry.get("cluster")
    if not isinstance(cluster, dict):
        return "", "true"
    leader = cluster.get("leader", "")
    return leader, _truth(leader == server_name)


def _get(answer: Mapping[str, Any], *path: str, default: Any = 0) -> Any:
    value: Any = answer
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return default
        value = value[key]
    return value


def _time_ns(text: Any) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        return gotime.parse_rfc3339(text)
    except ValueError:
        return None


def _truth(value: bool) -> str:
    return "true" if value else "false"
