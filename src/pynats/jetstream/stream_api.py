"""The account and stream requests: `$JS.API.INFO` and `$JS.API.STREAM.*`.

Create, update, delete, purge and message delete change what is stored: they answer once the
change is durable (the responder runs them one at a time, see `api.py`). Info, names, lists
and message gets answer at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from pynats.gotime import parse_rfc3339
from pynats.server.subjects import is_valid_subject

from . import decode as d
from .api_router import (
    LIST_LIMIT,
    NAMES_LIMIT,
    ApiRequest,
    ApiRouter,
    offline_part,
    page_start,
)
from .config import (
    StreamConfig,
    check_create,
    check_stream_config,
    check_update,
    name_error,
    parse_stream_request,
    subjects_overlap,
)
from .errors import ApiError, api_error, bad_request
from .stream import Stream, stored_message_json

if TYPE_CHECKING:
    from .service import JetStreamAccount

SUBJECTS_LIMIT = 100_000  # subjects per page of STREAM.INFO with a subjects_filter


# -- request shapes --------------------------------------------------------------------------

STREAM_INFO_REQ = d.Struct(
    "JSApiStreamInfoRequest",
    {"deleted_details": d.BOOL, "subjects_filter": d.STRING, "offset": d.INT},
)
STREAM_NAMES_REQ = d.Struct("JSApiStreamNamesRequest", {"offset": d.INT, "subject": d.STRING})
STREAM_LIST_REQ = d.Struct("JSApiStreamListRequest", {"offset": d.INT, "subject": d.STRING})
PURGE_REQ = d.Struct(
    "JSApiStreamPurgeRequest", {"filter": d.STRING, "seq": d.UINT64, "keep": d.UINT64}
)
MSG_GET_REQ = d.Struct(
    "JSApiMsgGetRequest",
    {
        "seq": d.UINT64,
        "last_by_subj": d.STRING,
        "next_by_subj": d.STRING,
        "batch": d.INT,
        "max_bytes": d.INT,
        "start_time": d.TIME,
        "multi_last": d.STRINGS,
        "up_to_seq": d.UINT64,
        "up_to_time": d.TIME,
        "no_hdr": d.BOOL,
    },
)
MSG_DELETE_REQ = d.Struct("JSApiMsgDeleteRequest", {"seq": d.UINT64, "no_erase": d.BOOL})


async def _durable(stream: Stream) -> None:
    """Wait until everything the store did so far is durable (purge, delete)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[BaseException | None] = loop.create_future()

    def fire(err: BaseException | None) -> None:
        if not done.done():
            done.set_result(err)

    stream.store.when_durable(fire)
    err = await done
    if err is not None:
        raise api_error("JSStreamStoreFailedF", err=str(err))


# -- account ---------------------------------------------------------------------------------


def account_info(req: ApiRequest) -> dict[str, Any]:
    return req.jsa.info_json()


# -- streams ---------------------------------------------------------------------------------


def stream_create(req: ApiRequest) -> Awaitable[dict[str, Any]]:
    name = req.args[0]
    cfg, pedantic = parse_stream_request(req.payload, strict=req.jsa.js.strict)
    if cfg.name != name:
        raise api_error("JSStreamMismatchErr")
    err = name_error(name)
    if err is not None:
        raise err
    if cfg.mirror is not None and not cfg.mirror_direct and not cfg.mirror.api_prefix:
        origin = req.jsa.streams.get(cfg.mirror.name)
        if origin is not None and origin.config.allow_direct:
            cfg.mirror_direct = True
    if cfg.sealed:
        check_create(cfg)  # nats-server refuses a sealed create first, before any limit
    return _create(req, cfg, pedantic)


async def _create(req: ApiRequest, cfg: StreamConfig, pedantic: bool) -> dict[str, Any]:
    # nats-server's order: the account's stream count and reservations (on the request as
    # sent), then the config rules with the max bytes limits among them, then the name.
    jsa = req.jsa
    existing = jsa.streams.get(cfg.name)
    jsa.check_limits(cfg, existing=existing)
    cfg = _check_config(jsa, cfg, pedantic)
    check_create(cfg)
    if existing is not None:
        if not existing.config.same_as(cfg):
            raise api_error("JSStreamNameExistErr")
        stream = existing
    else:
        offline = jsa.offline.get(cfg.name)
        if offline:  # its files stay as they are until a server that knows it comes
            raise api_error("JSStreamOfflineReasonErrF", err=offline)
        jsa.check_overlap(cfg)
        stream = await jsa.create_stream(cfg)
    out = stream.info_json()
    out["did_create"] = True
    return out


def _check_config(jsa: JetStreamAccount, cfg: StreamConfig, pedantic: bool) -> StreamConfig:
    """`check_stream_config`, with the account's max bytes limits (10113, 10122) where
    nats-server's checkStreamCfg has them: after every other rule but the subject transform
    and republish ones."""
    lim = jsa.limits
    window = jsa.js.server_limits.get("max_duplicate_window", 0)
    if (
        lim.max_bytes_required
        or lim.memory_max_stream_bytes > 0
        or lim.storage_max_stream_bytes > 0
    ):
        early = dataclasses.replace(cfg, subject_transform=None, republish=None)
        jsa.check_max_bytes(
            check_stream_config(early, pedantic=pedantic, max_duplicate_window=window)
        )
    return check_stream_config(cfg, pedantic=pedantic, max_duplicate_window=window)


def stream_update(req: ApiRequest) -> Awaitable[dict[str, Any]]:
    cfg, pedantic = parse_stream_request(req.payload, strict=req.jsa.js.strict)
    cfg = _check_config(req.jsa, cfg, pedantic)
    if cfg.name != req.args[0]:
        raise api_error("JSStreamMismatchErr")
    return _update(req, cfg)


async def _update(req: ApiRequest, cfg: StreamConfig) -> dict[str, Any]:
    stream = req.stream()
    cfg = check_update(stream.config, cfg)
    jsa = req.jsa
    jsa.check_overlap(cfg, exclude=stream.name)
    jsa.check_limits(cfg, existing=stream)
    await jsa.update_stream(stream, cfg)
    return stream.info_json()


def stream_info(req: ApiRequest) -> dict[str, Any]:
    body = req.decode(STREAM_INFO_REQ)
    stream = req.stream()
    subjects_filter = body.get("subjects_filter", "")
    total = offset = limit = 0
    page: dict[str, int] | None = None
    if subjects_filter:
        subjects = stream.store.subjects_state(subjects_filter)
        total = len(subjects)
        limit = SUBJECTS_LIMIT
        offset = page_start(total, body.get("offset", 0))
        page = {n: subjects[n] for n in sorted(subjects)[offset : offset + limit]}
    info = stream.info_json(
        cluster=True, deleted_details=bool(body.get("deleted_details")), subjects=page
    )
    return {"total": total, "offset": offset, "limit": limit, **info}


def stream_delete(req: ApiRequest) -> Awaitable[dict[str, Any]]:
    if req.payload.strip():
        raise api_error("JSNotEmptyRequestErr")
    return _delete(req)


async def _delete(req: ApiRequest) -> dict[str, Any]:
    stream = req.stream()
    await req.jsa.delete_stream(stream)
    return {"success": True}


def stream_purge(req: ApiRequest) -> Awaitable[dict[str, Any]]:
    body = req.decode(PURGE_REQ)
    req.stream()
    seq, keep = body.get("seq", 0), body.get("keep", 0)
    subject = body.get("filter", "")
    if seq and keep:
        raise bad_request()
    if subject and not is_valid_subject(subject.encode()):
        raise bad_request()
    return _purge(req, subject, seq, keep)


async def _purge(req: ApiRequest, subject: str, seq: int, keep: int) -> dict[str, Any]:
    stream = req.stream()
    purged = stream.purge(subject, seq, keep)
    await _durable(stream)
    return {"success": True, "purged": purged}


def stream_names(req: ApiRequest) -> dict[str, Any]:
    body = req.decode(STREAM_NAMES_REQ)
    streams = _filtered_streams(req.jsa, body.get("subject", ""))
    total = len(streams)
    offset = page_start(total, body.get("offset", 0))
    page = [s.name for s in streams[offset : offset + NAMES_LIMIT]]
    return {"total": total, "offset": offset, "limit": NAMES_LIMIT, "streams": page or None}


def stream_list(req: ApiRequest) -> dict[str, Any]:
    body = req.decode(STREAM_LIST_REQ)
    streams = _filtered_streams(req.jsa, body.get("subject", ""))
    total = len(streams)
    offset = page_start(total, body.get("offset", 0))
    page = [s.info_json(server_meta=False) for s in streams[offset : offset + LIST_LIMIT]]
    out = {"total": total, "offset": offset, "limit": LIST_LIMIT, "streams": page}
    return out | offline_part(req.jsa.offline)


def _filtered_streams(jsa: JetStreamAccount, subject: str) -> list[Stream]:
    streams = [jsa.streams[n] for n in sorted(jsa.streams)]
    if subject:
        streams = [s for s in streams if subjects_overlap([subject], s.config.subjects)]
    return streams


def stream_msg_get(req: ApiRequest) -> dict[str, Any]:
    if not req.payload.strip():
        raise bad_request()
    body = req.decode(MSG_GET_REQ)
    stream = req.stream()
    seq = body.get("seq", 0)
    last_by = body.get("last_by_subj", "")
    next_by = body.get("next_by_subj", "")
    start_time = body.get("start_time", "")
    if body.get("batch") or body.get("max_bytes") or body.get("multi_last"):
        raise bad_request()
    if (seq and last_by) or (last_by and next_by) or (start_time and (seq or last_by)):
        raise bad_request()
    if not (seq or last_by or next_by or start_time):
        raise bad_request()
    query: dict[str, Any] = {"seq": seq, "last_by_subj": last_by, "next_by_subj": next_by}
    if start_time:
        try:
            query["start_time_ns"] = parse_rfc3339(start_time)
        except ValueError:
            raise bad_request() from None
    msg = stream.get_msg(query)
    return {"message": stored_message_json(msg, no_hdr=bool(body.get("no_hdr")))}


def stream_msg_delete(req: ApiRequest) -> Awaitable[dict[str, Any]]:
    body = req.decode(MSG_DELETE_REQ)
    req.stream()
    if not body.get("seq"):
        raise bad_request()
    return _msg_delete(req, body["seq"], not body.get("no_erase", False))


async def _msg_delete(req: ApiRequest, seq: int, erase: bool) -> dict[str, Any]:
    stream = req.stream()
    try:
        stream.delete_msg(seq, erase)
    except ApiError as e:
        if e.err_code == 10043:
            e.counted = False  # nats-server answers it without counting an API error
        raise
    await _durable(stream)
    return {"success": True}


def stream_leader_stepdown(req: ApiRequest) -> dict[str, Any]:
    req.stream()
    raise api_error("JSClusterRequiredErr")


def stream_peer_remove(req: ApiRequest) -> dict[str, Any]:
    req.stream()
    raise api_error("JSClusterRequiredErr")


# -- the routes ------------------------------------------------------------------------------


def register_stream_routes(router: ApiRouter) -> None:
    """The account and stream routes: `INFO` and `STREAM.*`."""
    router.add("INFO", "account_info_response", account_info, counting="after")
    router.add("STREAM.CREATE.*", "stream_create_response", stream_create)
    router.add("STREAM.UPDATE.*", "stream_update_response", stream_update)
    router.add("STREAM.INFO.*", "stream_info_response", stream_info)
    router.add("STREAM.DELETE.*", "stream_delete_response", stream_delete)
    router.add("STREAM.PURGE.*", "stream_purge_response", stream_purge)
    router.add("STREAM.NAMES", "stream_names_response", stream_names)
    router.add("STREAM.LIST", "stream_list_response", stream_list)
    router.add("STREAM.MSG.GET.*", "stream_msg_get_response", stream_msg_get, counting="errors")
    router.add("STREAM.MSG.DELETE.*", "stream_msg_delete_response", stream_msg_delete)
    router.add(
        "STREAM.LEADER.STEPDOWN.*", "stream_leader_stepdown_response", stream_leader_stepdown
    )
    router.add("STREAM.PEER.REMOVE.*", "stream_remove_peer_response", stream_peer_remove)
