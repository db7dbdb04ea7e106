"""The `$JS.API.CONSUMER.*` requests: create (three subject forms), info, names, list, delete,
pause, unpin and leader stepdown, with nats-server's checks in its order.

    CONSUMER.CREATE.<stream>                    ephemeral (name from config or generated)
    CONSUMER.CREATE.<stream>.<name>[.<filter>]  named; tokens after the name are the filter
    CONSUMER.DURABLE.CREATE.<stream>.<durable>  the legacy durable form

Creating, updating, deleting and pausing change what is stored: those handlers answer once
the consumer's `meta.inf` is durable, one at a time with every other metadata change.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Iterable
from typing import Any

from pynats.gotime import ZERO_TIME, parse_rfc3339, rfc3339
from pynats.server.subjects import subjects_collide

from . import decode as d
from .api_router import (
    LIST_LIMIT,
    NAMES_LIMIT,
    ApiRequest,
    ApiRouter,
    Handler,
    offline_part,
    page_start,
)
from .consumer import Consumer
from .consumer_config import (
    MAX_NAME_LEN,
    RESPONSE_META_KEYS,
    ConsumerConfig,
    apply_defaults,
    check_consumer_config,
    check_update,
    parse_create_request,
    with_required_level,
)
from .errors import api_error
from .pull import B62

CONSUMERS_REQ = d.Struct("JSApiConsumersRequest", {"offset": d.INT})
UNPIN_REQ = d.Struct("JSApiConsumerUnpinRequest", {"group": d.STRING})
PAUSE_REQ = d.Struct("JSApiConsumerPauseRequest", {"pause_until": d.TIME})
EPHEMERAL_NAME_LEN = 8


def _consumer(req: ApiRequest, stream_arg: int = 0) -> Consumer:
    stream = req.stream()
    name = req.args[stream_arg + 1]
    consumer = stream.consumers.get(name)
    if consumer is None or consumer.closed:
        reason = stream.offline_consumers.get(name)
        if reason:
            raise api_error("JSConsumerOfflineReasonErrF", err=reason)
        raise api_error("JSConsumerNotFoundErr")
    return consumer


def _require_empty(req: ApiRequest) -> None:
    if req.payload.strip():
        raise api_error("JSNotEmptyRequestErr")


# -- create ----------------------------------------------------------------------------------


def _create_handler(mode: str) -> Handler:
    def handler(req: ApiRequest) -> Awaitable[dict[str, Any]]:
        stream_name = req.args[0]
        creq = parse_create_request(req.payload, strict=req.jsa.js.strict)
        cfg = creq.config
        if creq.stream_name != stream_name:
            raise api_error("JSStreamMismatchErr")
        if mode == "durable":
            name = req.args[1]
            if not cfg.durable_name:
                raise api_error("JSConsumerDurableNameNotSetErr")
            if cfg.durable_name != name:
                raise api_error("JSConsumerDurableNameNotMatchSubjectErr")
            cfg.name = name
        elif mode == "named":
            name, _, subject_filter = req.args[1].partition(".")
            if cfg.durable_name and cfg.durable_name != name:
                raise api_error("JSConsumerDurableNameNotMatchSubjectErr")
            if subject_filter:
                if cfg.filter_subjects:
                    raise api_error("JSConsumerMultipleFiltersNotAllowed")
                if cfg.filter_subject != subject_filter:
                    raise api_error("JSConsumerCreateFilterSubjectMismatchErr")
            cfg.name = name
        elif cfg.durable_name:
            raise api_error("JSConsumerEphemeralWithDurableNameErr")
        for name in (cfg.name, cfg.durable_name):
            if "/" in name or "\\" in name:
                raise api_error("JSConsumerNameContainsPathSeparatorsErr")
            if len(name) > MAX_NAME_LEN:
                raise api_error("JSConsumerNameTooLongErrF", max=MAX_NAME_LEN)
        if cfg.num_replicas > 1:
            raise api_error("JSStreamReplicasNotSupportedErr")
        return _create(req, cfg, creq.action, creq.pedantic)

    return handler


async def _create(
    req: ApiRequest, cfg: ConsumerConfig, action: str, pedantic: bool
) -> dict[str, Any]:
    jsa = req.jsa
    stream = req.stream()
    server_limits = jsa.js.server_limits
    apply_defaults(cfg, stream.config, jsa.limits, pedantic, server_limits)
    if cfg.pause_until:
        cfg.pause_until = rfc3339(parse_rfc3339(cfg.pause_until))
    check_consumer_config(cfg, stream.config, jsa.limits, server_limits)
    if not cfg.name and cfg.durable_name:
        cfg.name = cfg.durable_name
    # A legacy ephemeral without a name gets one; its config keeps the name empty.
    name = cfg.name or _ephemeral_name(stream.consumers)
    existing = stream.consumers.get(name)
    if existing is not None and not existing.closed:
        # "create" succeeds on an existing consumer only for the very same config (as it
        # reads back, with its `_nats.req.level`).
        requested = cfg.comparable(RESPONSE_META_KEYS)
        cfg.pause_until = existing.config.pause_until  # only PAUSE changes it
        with_required_level(cfg)
        if action == "create" and existing.config.comparable(RESPONSE_META_KEYS) != requested:
            raise api_error("JSConsumerAlreadyExists")
        check_update(existing.config, cfg)
        if existing.config.deliver_subject != cfg.deliver_subject and existing.bound:
            raise api_error("JSConsumerNameExistErr")
        if existing.config.comparable() != cfg.comparable():
            old = existing.config
            existing.update(cfg)
            try:
                await jsa.write_consumer_meta(existing)
            except OSError as e:
                existing.update(old)
                raise api_error("JSConsumerStoreFailedErrF", err=str(e)) from None
        return existing.info_json()
    if action == "update":
        raise api_error("JSConsumerDoesNotExist")
    with_required_level(cfg)
    scfg = stream.config
    if 0 < scfg.max_consumers <= len(stream.consumers):
        raise api_error("JSMaximumConsumersLimitErr")
    if 0 < jsa.limits.max_consumers <= jsa.consumer_count():
        raise api_error("JSMaximumConsumersLimitErr")
    if scfg.retention == "workqueue":
        _check_workqueue(stream.consumers.values(), cfg)
    try:
        consumer = await jsa.create_consumer(stream, name, cfg)
    except OSError as e:
        raise api_error("JSConsumerStoreFailedErrF", err=str(e)) from None
    return consumer.info_json()


def _check_workqueue(others: Iterable[Consumer], cfg: ConsumerConfig) -> None:
    """Work-queue streams: explicit acks, all from the start, no two consumers sharing a
    message."""
    if cfg.ack_policy not in ("explicit", "flow_control"):
        raise api_error("JSConsumerWQRequiresExplicitAckErr")
    if cfg.deliver_policy != "all":
        raise api_error("JSConsumerWQConsumerNotDeliverAllErr")
    mine = cfg.filters
    for other in others:
        if other.closed:
            continue
        theirs = other.config.filters
        if not mine:
            raise api_error("JSConsumerWQMultipleUnfilteredErr")
        if not theirs or any(
            subjects_collide(a.encode(), b.encode()) for a in mine for b in theirs
        ):
            raise api_error("JSConsumerWQConsumerNotUniqueErr")


def _ephemeral_name(existing: dict[str, Consumer]) -> str:
    while True:
        name = "".join(random.choice(B62) for _ in range(EPHEMERAL_NAME_LEN))
        if name not in existing:
            return name


# -- read ------------------------------------------------------------------------------------


def consumer_info(req: ApiRequest) -> dict[str, Any]:
    _require_empty(req)
    return _consumer(req).info_json()


def consumer_names(req: ApiRequest) -> dict[str, Any]:
    body = req.decode(CONSUMERS_REQ)
    stream = req.stream()
    names = sorted(n for n, c in stream.consumers.items() if not c.closed)
    total = len(names)
    offset = page_start(total, body.get("offset", 0))
    return {
        "total": total,
        "offset": offset,
        "limit": NAMES_LIMIT,
        "consumers": names[offset : offset + NAMES_LIMIT],
    }


def consumer_list(req: ApiRequest) -> dict[str, Any]:
    body = req.decode(CONSUMERS_REQ)
    stream = req.stream()
    consumers = [stream.consumers[n] for n in sorted(stream.consumers)]
    consumers = [c for c in consumers if not c.closed]
    total = len(consumers)
    offset = page_start(total, body.get("offset", 0))
    return {
        "total": total,
        "offset": offset,
        "limit": LIST_LIMIT,
        "consumers": [
            c.info_json(server_meta=False) for c in consumers[offset : offset + LIST_LIMIT]
        ],
        **offline_part(stream.offline_consumers),
    }


# -- delete, pause, unpin --------------------------------------------------------------------


def consumer_delete(req: ApiRequest) -> Awaitable[dict[str, Any]]:
    _require_empty(req)
    _consumer(req)
    return _delete(req)


async def _delete(req: ApiRequest) -> dict[str, Any]:
    consumer = _consumer(req)
    await req.jsa.delete_consumer(consumer)
    return {"success": True}


def consumer_pause(req: ApiRequest) -> Awaitable[dict[str, Any]]:
    until = 0
    try:
        body = d.decode(req.payload, PAUSE_REQ)
        if body.get("pause_until"):
            until = parse_rfc3339(body["pause_until"])
    except Exception:
        until = 0  # nats-server reads an unreadable body as "no pause"
    _consumer(req)
    return _pause(req, until)


async def _pause(req: ApiRequest, until: int) -> dict[str, Any]:
    consumer = _consumer(req)
    consumer.pause(until)
    await req.jsa.write_consumer_meta(consumer)
    if consumer.paused:
        return {
            "paused": True,
            "pause_until": consumer.config.pause_until,
            "pause_remaining": max(consumer.config.pause_until_ns - time.time_ns(), 0),
        }
    return {"paused": False, "pause_until": ZERO_TIME}


def consumer_unpin(req: ApiRequest) -> dict[str, Any]:
    if not req.payload.strip():
        raise api_error("JSInvalidJSONErr", err="unexpected end of JSON input")
    body = req.decode(UNPIN_REQ)
    group = body.get("group", "")
    if not group:
        raise api_error("JSInvalidJSONErr", err="consumer group not specified")
    consumer = _consumer(req)
    if group not in consumer.config.priority_groups:
        raise api_error("JSConsumerInvalidPriorityGroupErr")
    consumer.unpin(group)
    return {}


def consumer_stepdown(req: ApiRequest) -> dict[str, Any]:
    req.stream()
    raise api_error("JSClusterRequiredErr")


# -- the routes ------------------------------------------------------------------------------


def register_consumer_routes(router: ApiRouter) -> None:
    """The consumer routes: `CONSUMER.*` (three create forms, then the rest)."""
    create = "consumer_create_response"
    router.add("CONSUMER.CREATE.*", create, _create_handler("ephemeral"))
    router.add("CONSUMER.CREATE.*.>", create, _create_handler("named"))
    router.add("CONSUMER.DURABLE.CREATE.*.*", create, _create_handler("durable"))
    router.add("CONSUMER.INFO.*.*", "consumer_info_response", consumer_info)
    router.add("CONSUMER.NAMES.*", "consumer_names_response", consumer_names)
    router.add("CONSUMER.LIST.*", "consumer_list_response", consumer_list)
    router.add("CONSUMER.DELETE.*.*", "consumer_delete_response", consumer_delete)
    router.add("CONSUMER.PAUSE.*.*", "consumer_pause_response", consumer_pause)
    router.add("CONSUMER.UNPIN.*.*", "consumer_unpin_response", consumer_unpin)
    router.add(
        "CONSUMER.LEADER.STEPDOWN.*.*", "consumer_leader_stepdown_response", consumer_stepdown
    )
