"""What a reload (SIGHUP) may change in the `mqtt {}` block, as nats-server decides it.

nats-server reloads the TLS settings, `ack_wait`, `max_ack_pending`, the replicas and the
consumer settings (and logs all six of the latter whenever one changed); any other change
is refused with the whole block printed as Go prints its MQTTOpts struct (`%v`: the fields
in order, a random port as the one bound, pointers as addresses). New values apply to
consumers created from then on.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pynats.gotime import NS_PER_S, format_duration

from .config_reader import go_float

if TYPE_CHECKING:
    from .options import MqttOptions
    from .server import Server

RELOADABLE = (
    "ack_wait",
    "max_ack_pending",
    "stream_replicas",
    "consumer_replicas",
    "consumer_memory_storage",
    "consumer_inactive_threshold",
)


def mqtt_reload(server: Server, old: MqttOptions, new: MqttOptions) -> tuple[str, list[str]]:
    """(the refusal text or "", the `Reloaded: MQTT ...` lines)."""
    listener = getattr(server, "mqtt", None)  # (a test's stand-in server may have none)
    bound = listener.port if listener is not None else old.port
    before, after = _as_bound(old, bound), _as_bound(new, bound)
    unchanged = {name: getattr(before, name) for name in RELOADABLE}
    if dataclasses.replace(after, tls=before.tls, **unchanged) != before:
        return (
            f"config reload not supported for MQTT: old={_go_struct(before)}, "
            f"new={_go_struct(after)}",
            [],
        )
    if all(getattr(old, name) == getattr(new, name) for name in RELOADABLE):
        return "", []
    return "", [
        f"Reloaded: MQTT ack_wait = {_duration(new.ack_wait)}",
        f"Reloaded: MQTT max_ack_pending = {new.max_ack_pending}",
        f"Reloaded: MQTT stream_replicas = {new.stream_replicas}",
        f"Reloaded: MQTT consumer_replicas = {new.consumer_replicas}",
        f"Reloaded: MQTT consumer_memory_storage = {str(new.consumer_memory_storage).lower()}",
        f"Reloaded: MQTT consumer_inactive_threshold = "
        f"{_duration(new.consumer_inactive_threshold)}",
    ]


def _as_bound(mo: MqttOptions, bound: int) -> MqttOptions:
    if mo.port == -1:
        return dataclasses.replace(mo, port=bound)
    return mo


def _duration(seconds: float) -> str:
    return format_duration(round(seconds * NS_PER_S))


def _go_struct(mo: MqttOptions) -> str:
    """Go's `%v` of nats-server's MQTTOpts, in its field order."""
    tls = "<nil>" if mo.tls is None else f"0x{id(mo.tls) & 0xFFFFFFFFFFFF:x}"
    fields = [
        mo.host,
        str(mo.port),
        mo.no_auth_user,
        mo.username,
        mo.password,
        mo.token,
        mo.js_domain,
        str(mo.stream_replicas),
        str(mo.consumer_replicas),
        str(mo.consumer_memory_storage).lower(),
        _duration(mo.consumer_inactive_threshold),
        go_float(mo.auth_timeout),
        tls,
        str(mo.tls is not None and mo.tls.verify_and_map).lower(),
        go_float(mo.tls.timeout if mo.tls is not None else 2.0),
        "map[]",
        _duration(mo.ack_wait),
        _duration(mo.js_api_timeout),
        str(mo.max_ack_pending),
        "<nil>",
        str(mo.reject_qos2_publish).lower(),
        str(mo.downgrade_qos2_subscribe).lower(),
    ]
    return "{" + " ".join(fields) + "}"
