"""Per-account JetStream limits, and what the configuration says about them.

The lead's `accounts { A: { jetstream: ... } }` block only has to hand us the raw value:
`enabled`/`disabled`, a bool, or a map with nats-server's keys and aliases.
`limits_from_config(value)` turns it into `AccountLimits` (None = JetStream off for that
account). -1 means unlimited everywhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

UNLIMITED = -1


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
        return dataclasses.asdict(self)


def jwt_account_limits(claims: dict[str, Any]) -> AccountLimits | None:
    """An account JWT's `limits` -> its JetStream limits; None (JetStream off) unless it
    allows memory or disk storage, at the top or in a tier (`tiered_limits`, whose first
    tier is taken)."""
    tiers = claims.get("tiered_limits")
    if isinstance(tiers, dict) and tiers:
        tier = next(iter(tiers.values()))
        claims = tier if isinstance(tier, dict) else {}
    memory, disk = int(claims.get("mem_storage") or 0), int(claims.get("disk_storage") or 0)
    if not memory and not disk:
        return None

    def number(key: str) -> int:
        value = claims.get(key)
        return int(value) if isinstance(value, int) and value else UNLIMITED

    return AccountLimits(
        max_memory=memory,
        max_storage=disk,
        max_streams=number("streams"),
        max_consumers=number("consumer"),
        max_ack_pending=number("max_ack_pending"),
        memory_max_stream_bytes=number("mem_max_stream_bytes"),
        storage_max_stream_bytes=number("disk_max_stream_bytes"),
        max_bytes_required=bool(claims.get("max_bytes_required")),
    )


def limits_from_config(value: Any) -> AccountLimits | None:
    """An account's `jetstream` setting -> its limits, or None when JetStream is off.

    The config reader (`pynats.server.config_options`) has already checked the block and
    turned nats-server's aliases into AccountLimits' field names: True/False, or a dict.
    """
    if value is None or value is False:
        return None
    if value is True:
        return AccountLimits()
    if isinstance(value, AccountLimits):
        return value
    if not isinstance(value, dict):
        raise LimitsConfigError(f"unsupported jetstream value {value!r}")
    fields = {f.name for f in dataclasses.fields(AccountLimits)}
    limits = AccountLimits()
    for name, raw in value.items():
        if name not in fields:
            raise LimitsConfigError(f'unknown field "{name}"')
        setattr(limits, name, bool(raw) if name == "max_bytes_required" else int(raw))
    return limits
