"""Feature flags (`feature_flags {}`): nats-server's switches for behaviour that is being
introduced or retired, each with a default. The server reports them at start-up and in
/varz; names it does not know are reported as unsupported and change nothing.

pynats knows the same names and reports them as nats-server does. The behaviours behind them
are JetStream's: `js_ack_fc_v2` makes consumers send the v2 ack and flow-control subjects
(jetstream/acks.py); the others concern replicated (Raft) streams or API replies within a
JetStream cluster, which a single pynats server does not have.
"""

from __future__ import annotations

from collections.abc import Mapping

# nats-server 2.15's flags and their defaults, by name (names are case-sensitive).
DEFAULTS: dict[str, bool] = {
    "js_ack_fc_v2": False,
    "js_api_reply_v2": False,
    "js_raft_delete_range": True,
    "js_snapshot_sources": False,
}

# Flags whose "on" pynats does not act on yet, with what is missing.
NOT_BUILT: dict[str, str] = {}


def enabled(configured: Mapping[str, bool], name: str) -> bool:
    """Whether a known flag is on: as configured, else its default."""
    return configured.get(name, DEFAULTS[name])


def effective(configured: Mapping[str, bool]) -> dict[str, bool]:
    """Every known flag with its value: configured, else the default (/varz `feature_flags`)."""
    return {name: configured.get(name, default) for name, default in DEFAULTS.items()}


def _state(name: str, value: bool) -> str:
    if value == DEFAULTS[name]:
        return "enabled" if value else "disabled"
    return "opt-in" if value else "opt-out"


def startup_lines(configured: Mapping[str, bool]) -> list[str]:
    """The `Feature flags:` block nats-server logs after the server's ID (none when unset)."""
    if not configured:
        return []
    known = sorted(n for n in configured if n in DEFAULTS)
    unknown = sorted(n for n in configured if n not in DEFAULTS)
    lines = ["  Feature flags:"]
    if known:
        states = ", ".join(f"{n} ({_state(n, configured[n])})" for n in known)
        lines.append(f"    Configured:    {states}")
    if unknown:
        lines.append(f"    Unsupported:   {', '.join(unknown)}")
    return lines


def not_built(configured: Mapping[str, bool]) -> list[str]:
    """Warnings for flags turned on whose behaviour pynats does not have."""
    return [
        f"Feature flag {name!r} is not supported by pynats yet: {why}"
        for name, why in NOT_BUILT.items()
        if configured.get(name, DEFAULTS[name]) and not DEFAULTS[name]
    ]
