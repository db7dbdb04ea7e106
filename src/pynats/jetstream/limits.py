"""Per-account JetStream limits, and what the configuration says about them.

The lead's `accounts { A: { jetstream: ... } }` block only has to hand us the raw value:
`enabled`/`disabled`, a bool, or a map with nats-server's keys and aliases.
`limits_from_config(value)` turns it into `AccountLimits` (None = JetStream off for that
account). -1 means unlimited everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

UNLIMITED = -1

# config key -> AccountLimits field (nats-server's aliases)
_ALIASES = {
    "max_memory": "max_memory",
    "max_mem": "max_memory",
    "mem": "max_memory",
    "memory": "max_memory",
    "max_store": "max_storage",
    "max_storage": "max_storage",
    "max_file": "max_storage",
    "max_disk": "max_storage",
    "store": "max_storage",
    "disk": "max_storage",
    "max_streams": "max_streams",
    "streams": "max_streams",
    "max_consumers": "max_consumers",
    "consumers": "max_consumers",
    "max_bytes_required": "max_bytes_required",
    "max_stream_bytes": "max_bytes_required",
    "max_bytes": "max_bytes_required",
    "mem_max_stream_bytes": "memory_max_stream_bytes",
    "memory_max_stream_bytes": "memory_max_stream_bytes",
    "disk_max_stream_bytes": "storage_max_stream_bytes",
    "store_max_stream_bytes": "storage_max_stream_bytes",
    "storage_max_stream_bytes": "storage_max_stream_bytes",
    "max_ack_pending": "max_ack_pending",
    "cluster_traffic": "",
}


class LimitsConfigError(ValueError):
    pass


@dataclass
class AccountLimits:
    max_memory: int = UNLIMITED
    max_storage: int = UNLIMITED
    max_streams: int = UNLIMITED
    max_consumers: int = UNLIMITED
    max_ack_pending: int = UNLIMITED
    memory_max_stream_bytes: int = UNLIMITED
    storage_max_stream_bytes: int = UNLIMITED
    max_bytes_required: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "max_memory": self.max_memory,
            "max_storage": self.max_storage,
            "max_streams": self.max_streams,
            "max_consumers": self.max_consumers,
            "max_ack_pending": self.max_ack_pending,
            "memory_max_stream_bytes": self.memory_max_stream_bytes,
            "storage_max_stream_bytes": self.storage_max_stream_bytes,
            "max_bytes_required": self.max_bytes_required,
        }


def limits_from_config(value: Any) -> AccountLimits | None:
    """An account's `jetstream` setting -> its limits, or None when JetStream is off."""
    if value is None:
        return None
    if isinstance(value, bool):
        return AccountLimits() if value else None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("enabled", "enable", "true", "yes", "on"):
            return AccountLimits()
        if text in ("disabled", "disable", "false", "no", "off"):
            return None
        raise LimitsConfigError(f"expected 'enabled' or 'disabled' for string value, got '{value}'")
    if isinstance(value, AccountLimits):
        return value
    if not isinstance(value, dict):
        raise LimitsConfigError(f"unsupported jetstream value {value!r}")
    limits = AccountLimits()
    for key, raw in value.items():
        name = _ALIASES.get(str(key).lower())
        if name is None:
            raise LimitsConfigError(f'unknown field "{key}"')
        if not name:
            continue
        if name == "max_bytes_required":
            setattr(limits, name, bool(raw))
        else:
            setattr(limits, name, int(raw))
    return limits
