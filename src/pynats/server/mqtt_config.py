"""The `mqtt {}` block as nats-server's `parseMQTT` reads it, and the start-up checks of its
`validateMQTTOptions`.

Quirks kept from nats-server: its `authorization` block takes user, password, token and
timeout only (`users` is an unknown field: MQTT users are the server's own users); the
durations (`ack_wait`, `js_api_timeout`, `consumer_inactive_threshold`) take a duration
string or, with a warning, whole seconds; `max_ack_pending` must fit in 16 bits;
`consumer_replicas` is read but only warned about and stays 0 (nats-server 2.15 ignores it). A negative
`ack_wait` is accepted by `-t` and refused when the server starts.
"""

from __future__ import annotations

from collections.abc import Callable

from .conf import ConfigMap
from .config_reader import GoPanic, Reader, go_listen
from .config_tls import tls_block
from .config_websocket import NIL_DEREFERENCE, no_auth_user_problem
from .options import MqttOptions, Options

MAX_ACK_PENDING_LIMIT = 0xFFFF  # a session's pending QoS 1 messages are 16-bit packet ids

Handler = Callable[[Reader, MqttOptions, ConfigMap, str], None]


def parse_mqtt(r: Reader, o: Options, m: ConfigMap, key: str) -> None:
    block = r.mapping(m, key)
    if block is None:
        return
    with r.recovering():
        for k in block:
            handler = MQTT.get(k.lower())
            if handler is None:
                r.unknown_field(block, k)
            else:
                handler(r, o.mqtt, block, k)


def _int(name: str) -> Handler:
    def handle(r: Reader, mo: MqttOptions, m: ConfigMap, key: str) -> None:
        value = r.integer(m, key)
        if value is not None:
            setattr(mo, name, value)

    return handle


def _bool(name: str) -> Handler:
    def handle(r: Reader, mo: MqttOptions, m: ConfigMap, key: str) -> None:
        value = r.boolean(m, key)
        if value is not None:
            setattr(mo, name, value)

    return handle


def _str(name: str) -> Handler:
    def handle(r: Reader, mo: MqttOptions, m: ConfigMap, key: str) -> None:
        value = r.string(m, key)
        if value is not None:
            setattr(mo, name, value)

    return handle


def _duration(name: str) -> Handler:
    def handle(r: Reader, mo: MqttOptions, m: ConfigMap, key: str) -> None:
        setattr(mo, name, r.go_duration(m, key, key.lower()))

    return handle


def _listen(r: Reader, mo: MqttOptions, m: ConfigMap, key: str) -> None:
    listen = go_listen(m[key])
    if isinstance(listen, str):
        r.error(m, key, listen)
    else:
        mo.host, mo.port = listen


def _tls(r: Reader, mo: MqttOptions, m: ConfigMap, key: str) -> None:
    parsed = tls_block(r, m, key, client_facing=True)
    if parsed is not None:
        mo.tls = parsed.settings


def _max_ack_pending(r: Reader, mo: MqttOptions, m: ConfigMap, key: str) -> None:
    value = r.integer(m, key)
    if value is None:
        return
    if not 0 <= value <= MAX_ACK_PENDING_LIMIT:
        r.error(m, key, f"invalid value {value}, should in [0..{MAX_ACK_PENDING_LIMIT}] range")
        return
    mo.max_ack_pending = value


def _consumer_replicas(r: Reader, mo: MqttOptions, m: ConfigMap, key: str) -> None:
    value = r.integer(m, key)
    if value is not None:  # read, warned about, and not kept (nats-server 2.15 ignores it)
        r.warn(
            m,
            key,
            f'invalid use of field "{key}": consumer replicas setting ignored in this '
            "server version",
        )


def _authorization(r: Reader, mo: MqttOptions, m: ConfigMap, key: str) -> None:
    """nats-server's `parseSimpleAuth`: user, password, token, timeout."""
    try:
        block = r.expect_map(m, key)
        for k in block:
            lk = k.lower()
            if lk in ("user", "username"):
                mo.username = r.expect_str(block, k)
            elif lk in ("pass", "password"):
                mo.password = r.expect_str(block, k)
            elif lk == "token":
                mo.token = r.expect_str(block, k)
            elif lk == "timeout":
                value = block[k]
                number = isinstance(value, (int, float)) and not isinstance(value, bool)
                mo.auth_timeout = float(value) if number else 1.0
            else:
                r.unknown_field(block, k)
    except GoPanic as p:
        r.error_at(p.position, p.text)
        raise r.panic(m, key, NIL_DEREFERENCE) from None


MQTT: dict[str, Handler] = {
    "listen": _listen,
    "port": _int("port"),
    "host": _str("host"),
    "net": _str("host"),
    "tls": _tls,
    "authorization": _authorization,
    "authentication": _authorization,
    "no_auth_user": _str("no_auth_user"),
    "ack_wait": _duration("ack_wait"),
    "ackwait": _duration("ack_wait"),
    "js_api_timeout": _duration("js_api_timeout"),
    "api_timeout": _duration("js_api_timeout"),
    "max_ack_pending": _max_ack_pending,
    "max_pending": _max_ack_pending,
    "max_inflight": _max_ack_pending,
    "js_domain": _str("js_domain"),
    "stream_replicas": _int("stream_replicas"),
    "consumer_replicas": _consumer_replicas,
    "consumer_memory_storage": _bool("consumer_memory_storage"),
    "consumer_inactive_threshold": _duration("consumer_inactive_threshold"),
    "consumer_auto_cleanup": _duration("consumer_inactive_threshold"),
    "reject_qos2_publish": _bool("reject_qos2_publish"),
    "downgrade_qos2_subscribe": _bool("downgrade_qos2_subscribe"),
}


# -- start-up checks ---------------------------------------------------------------------------


def mqtt_problem(opts: Options) -> str | None:
    """What nats-server's `validateMQTTOptions` refuses when the server starts (or reloads);
    nothing is checked without an MQTT port. (2.15 no longer insists on a server name.)"""
    mo = opts.mqtt
    if mo.port == 0:
        return None
    if mo.no_auth_user:
        problem = no_auth_user_problem(opts, mo.no_auth_user)
        if problem:
            return problem
    if opts.users or opts.nkeys:
        if mo.username:
            return "mqtt authentication username not compatible with presence of users/nkeys"
        if mo.token:
            return "mqtt authentication token not compatible with presence of users/nkeys"
    if mo.ack_wait < 0:
        return "ack wait must be a positive value"
    leafnodes = opts.leafnodes
    if (
        not opts.jetstream
        and opts.cluster.port == 0
        and leafnodes.port == 0
        and not leafnodes.remotes
    ):
        return "mqtt requires JetStream to be enabled if running in standalone mode"
    return None
