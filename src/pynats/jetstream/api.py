"""The `$JS.API.*` request router: JSON in, JSON out, errors from the catalogue.

Each JetStream-enabled account gets one internal subscription on `$JS.API.>` (and on
`$JS.<domain>.API.>` with a domain, mapped onto `$JS.API.>`). A request is matched against
the route table; the handler returns the response fields or raises `ApiError`, and the
router wraps them: `{"type": "io.nats.jetstream.api.v1.<x>_response", ...}`.

Handlers that change metadata (create/update/delete, purge, message delete) are coroutines:
they answer only once the change is durable, and they run one at a time (in arrival order)
so that two requests never interleave their checks and writes. Reads answer at once.

Unknown `$JS.API` subjects get no answer (as nats-server 2.15 does). Direct gets and pull
requests are not API requests: streams and consumers own those subscriptions; when nobody
does, the requester gets the no-responders status it would get without this catch-all.

Consumers add their routes with `register_route` (consumer_api.py).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pynats.gotime import parse_rfc3339
from pynats.server.subjects import is_valid_subject

from . import advisories
from . import decode as d
from . import headers as h
from .config import (
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
    from pynats.server.accounts import Account
    from pynats.server.sublist import Subscription

    from .service import JetStream, JetStreamAccount

API_PREFIX = "$JS.API."
TYPE_PREFIX = "io.nats.jetstream.api.v1."
NAMES_LIMIT = 1024
LIST_LIMIT = 256
SUBJECTS_LIMIT = 100_000


@dataclass
class ApiRequest:
    jsa: JetStreamAccount
    subject: str
    args: list[str]  # the wildcard tokens of the route, in order
    reply: bytes | None
    headers: bytes
    payload: bytes
    publisher: Any


Handler = Callable[[ApiRequest], "dict[str, Any] | Awaitable[dict[str, Any]]"]


@dataclass
class Route:
    pattern: tuple[str, ...]
    kind: str  # response type without prefix
    handler: Handler
    # When the request counts in the account's API total, as nats-server counts it:
    # "before" answering, "after" (INFO reports the total before itself), "errors" only.
    counting: str = "before"

    def match(self, tokens: list[str]) -> list[str] | None:
        pat = self.pattern
        if pat[-1] == ">":
            if len(tokens) < len(pat):
                return None
        elif len(tokens) != len(pat):
            return None
        args: list[str] = []
        for i, p in enumerate(pat):
            if p == ">":
                args.append(".".join(tokens[i:]))
                return args
            if p == "*":
                args.append(tokens[i])
            elif p != tokens[i]:
                return None
        return args


ROUTES: list[Route] = []

# Fields some responses carry even when they are errors (nats-server's zero values).
ERROR_EXTRAS: dict[str, dict[str, Any]] = {
    "stream_info_response": {"total": 0, "offset": 0, "limit": 0},
    "stream_purge_response": {"purged": 0},
    "stream_names_response": {"total": 0, "offset": 0, "limit": 0},
    "stream_list_response": {"total": 0, "offset": 0, "limit": 0},
    # nats-server adds the empty list to these errors (nats.py's schema does not expect it)
    "consumer_names_response": {"total": 0, "offset": 0, "limit": 0, "consumers": []},
    "consumer_list_response": {"total": 0, "offset": 0, "limit": 0, "consumers": []},
    "consumer_pause_response": {"paused": False, "pause_until": "0001-01-01T00:00:00Z"},
}


def route(pattern: str, kind: str, *, counting: str = "before") -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        register_route(pattern, kind, fn, counting=counting)
        return fn

    return register


def register_route(pattern: str, kind: str, handler: Handler, *, counting: str = "before") -> None:
    """Add (or replace) the handler of `$JS.API.<pattern>` (`*`/`>` tokens are arguments)."""
    tokens = tuple(pattern.split("."))
    for i, existing in enumerate(ROUTES):
        if existing.pattern == tokens:
            ROUTES[i] = Route(tokens, kind, handler, counting)
            return
    ROUTES.append(Route(tokens, kind, handler, counting))


def match_route(rest: str) -> tuple[Route, list[str]] | tuple[None, None]:
    tokens = rest.split(".")
    for r in ROUTES:
        args = r.match(tokens)
        if args is not None:
            return r, args
    return None, None


# -- the responder ---------------------------------------------------------------------------


class ApiResponder:
    def __init__(self, js: JetStream) -> None:
        self.js = js
        self.log = js.server.logger

    def attach(self, jsa: JetStreamAccount) -> None:
        def on_request(
            sub: Subscription,
            publisher: Any,
            subject: bytes,
            reply: bytes | None,
            headers: bytes,
            payload: bytes,
        ) -> None:
            self.on_request(jsa, subject.decode(), reply, headers, payload, publisher)

        jsa.api_sub = jsa.client.subscribe("$JS.API.>", on_request)
        domain = self.js.domain
        if domain:
            prefix = f"$JS.{domain}.API."

            def on_domain_request(
                sub: Subscription,
                publisher: Any,
                subject: bytes,
                reply: bytes | None,
                headers: bytes,
                payload: bytes,
            ) -> None:
                rest = subject.decode()[len(prefix) :]
                if rest.startswith("$KV.") or rest.startswith("$OBJ."):
                    target = rest
                else:
                    target = API_PREFIX + rest
                jsa.client.publish(target, payload, reply, headers)

            jsa.client.subscribe(prefix + ">", on_domain_request)

    def attach_disabled(self, account: Account) -> Any:
        """Accounts without JetStream answer every API request with 10039."""
        from pynats.server.internal import InternalClient

        client = InternalClient(self.js.server, account, "$JS")

        def on_request(
            sub: Subscription,
            publisher: Any,
            subject: bytes,
            reply: bytes | None,
            headers: bytes,
            payload: bytes,
        ) -> None:
            rest = subject.decode()[len(API_PREFIX) :]
            r, _ = match_route(rest)
            if r is None or not reply:
                return
            body = {
                "type": TYPE_PREFIX + r.kind,
                "error": api_error("JSNotEnabledForAccountErr").to_json(),
            }
            client.publish(reply, json.dumps(body, separators=(",", ":")).encode())

        client.subscribe("$JS.API.>", on_request)
        return client

    # -- dispatch --

    def on_request(
        self,
        jsa: JetStreamAccount,
        subject: str,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
        publisher: Any,
    ) -> None:
        rest = subject[len(API_PREFIX) :]
        if headers and reply is None and b"Nats-Internal-Source-Lookup" in headers:
            self._source_lookup(jsa, headers, publisher)
            return
        if rest.startswith("DIRECT.GET.") or rest.startswith("CONSUMER.MSG.NEXT."):
            self._no_responders(jsa, subject, reply, publisher)
            return
        r, args = match_route(rest)
        if r is None or args is None:
            return
        if r.counting == "before":
            jsa.api_total += 1
        req = ApiRequest(jsa, subject, args, reply, headers, payload, publisher)
        if headers:
            level = h.get(headers, h.REQUIRED_API_LEVEL)
            if level is not None and _int(level) > self.js.api_level:
                self.respond(req, r, error=api_error("JSRequiredApiLevelErr"))
                return
        try:
            result = r.handler(req)
        except ApiError as e:
            self.respond(req, r, error=e)
            return
        except Exception as e:  # a bug: answer, log, keep serving
            self.log.error(f"JetStream API {subject}: {type(e).__name__}: {e}")
            self.respond(req, r, error=bad_request())
            return
        if inspect.isawaitable(result):
            asyncio.get_running_loop().create_task(self._serial(req, r, result))
        else:
            self.respond(req, r, body=result)

    async def _serial(self, req: ApiRequest, r: Route, work: Awaitable[dict[str, Any]]) -> None:
        async with self.js.api_lock:
            try:
                body = await work
            except ApiError as e:
                self.respond(req, r, error=e)
                return
            except Exception as e:
                self.log.error(f"JetStream API {req.subject}: {type(e).__name__}: {e}")
                self.respond(req, r, error=bad_request())
                return
        self.respond(req, r, body=body)

    def respond(
        self,
        req: ApiRequest,
        r: Route,
        *,
        body: dict[str, Any] | None = None,
        error: ApiError | None = None,
    ) -> None:
        out: dict[str, Any] = {"type": TYPE_PREFIX + r.kind}
        if r.counting == "after" or (r.counting == "errors" and error is not None):
            req.jsa.api_total += 1
        if error is not None:
            if error.counted:
                req.jsa.api_errors += 1
            if error.err_code == 10025:
                self.log.warn(
                    f"Invalid JetStream request '{req.jsa.name} > {req.subject}': "
                    f"{error.description.removeprefix('invalid JSON: ')}"
                )
            out["error"] = error.to_json()
            out.update(ERROR_EXTRAS.get(r.kind, {}))
        elif body:
            out.update(body)
        data = json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode()
        if req.reply:
            req.jsa.client.publish(req.reply, data)
        advisories.api_audit(req.jsa, req.publisher, req.subject, req.payload, data)

    def _source_lookup(self, jsa: JetStreamAccount, headers: bytes, publisher: Any) -> None:
        """A mirror/source resolving its external API prefix (see sources.lookup_account)."""
        token = h.get(headers, b"Nats-Internal-Source-Lookup")
        lookups = self.js.source_lookups
        if token is not None and getattr(publisher, "kind", "") == "Internal":
            key = token.decode()
            if key in lookups:
                lookups[key] = jsa

    def _no_responders(
        self, jsa: JetStreamAccount, subject: str, reply: bytes | None, publisher: Any
    ) -> None:
        """Nobody but this catch-all took a direct get / pull request: say so (503)."""
        if not reply or not getattr(publisher, "no_responders", False):
            return
        plain, groups, _ = jsa.account.sublist.match(subject.encode())
        if any(sub is not jsa.api_sub for sub in plain) or any(groups):
            return
        block = b"NATS/1.0 503\r\nNats-Subject: %b\r\n\r\n" % subject.encode()
        jsa.client.publish(reply, b"", headers=block)


def _int(value: bytes) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


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


def _decode(req: ApiRequest, spec: d.Struct) -> dict[str, Any]:
    return d.decode(req.payload, spec, strict=req.jsa.js.strict)


def _stream(req: ApiRequest) -> Stream:
    stream = req.jsa.streams.get(req.args[0])
    if stream is None:
        raise api_error("JSStreamNotFoundErr")
    return stream


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


def _page(total: int, offset: int) -> int:
    return min(max(offset, 0), total)


# -- account ---------------------------------------------------------------------------------


@route("INFO", "account_info_response", counting="after")
def account_info(req: ApiRequest) -> dict[str, Any]:
    return req.jsa.info_json()


# -- streams ---------------------------------------------------------------------------------


@route("STREAM.CREATE.*", "stream_create_response")
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
    cfg = check_stream_config(cfg, pedantic=pedantic)
    check_create(cfg)
    return _create(req, cfg)


async def _create(req: ApiRequest, cfg: Any) -> dict[str, Any]:
    jsa = req.jsa
    existing = jsa.streams.get(cfg.name)
    if existing is not None:
        if not existing.config.same_as(cfg):
            raise api_error("JSStreamNameExistErr")
        stream = existing
    else:
        jsa.check_limits(cfg)
        jsa.check_overlap(cfg)
        stream = await jsa.create_stream(cfg)
    out = stream.info_json()
    out["did_create"] = True
    return out


@route("STREAM.UPDATE.*", "stream_update_response")
def stream_update(req: ApiRequest) -> Awaitable[dict[str, Any]]:
    cfg, pedantic = parse_stream_request(req.payload, strict=req.jsa.js.strict)
    cfg = check_stream_config(cfg, pedantic=pedantic)
    if cfg.name != req.args[0]:
        raise api_error("JSStreamMismatchErr")
    return _update(req, cfg)


async def _update(req: ApiRequest, cfg: Any) -> dict[str, Any]:
    stream = _stream(req)
    cfg = check_update(stream.config, cfg)
    jsa = req.jsa
    jsa.check_overlap(cfg, exclude=stream.name)
    jsa.check_limits(cfg, existing=stream)
    await jsa.update_stream(stream, cfg)
    return stream.info_json()


@route("STREAM.INFO.*", "stream_info_response")
def stream_info(req: ApiRequest) -> dict[str, Any]:
    body = _decode(req, STREAM_INFO_REQ)
    stream = _stream(req)
    subjects_filter = body.get("subjects_filter", "")
    total = offset = limit = 0
    page: dict[str, int] | None = None
    if subjects_filter:
        subjects = stream.store.subjects_state(subjects_filter)
        total = len(subjects)
        limit = SUBJECTS_LIMIT
        offset = _page(total, body.get("offset", 0))
        page = {n: subjects[n] for n in sorted(subjects)[offset : offset + limit]}
    info = stream.info_json(
        cluster=True, deleted_details=bool(body.get("deleted_details")), subjects=page
    )
    return {"total": total, "offset": offset, "limit": limit, **info}


@route("STREAM.DELETE.*", "stream_delete_response")
def stream_delete(req: ApiRequest) -> Awaitable[dict[str, Any]]:
    if req.payload.strip():
        raise api_error("JSNotEmptyRequestErr")
    return _delete(req)


async def _delete(req: ApiRequest) -> dict[str, Any]:
    stream = _stream(req)
    await req.jsa.delete_stream(stream)
    return {"success": True}


@route("STREAM.PURGE.*", "stream_purge_response")
def stream_purge(req: ApiRequest) -> Awaitable[dict[str, Any]]:
    body = _decode(req, PURGE_REQ)
    _stream(req)
    seq, keep = body.get("seq", 0), body.get("keep", 0)
    subject = body.get("filter", "")
    if seq and keep:
        raise bad_request()
    if subject and not is_valid_subject(subject.encode()):
        raise bad_request()
    return _purge(req, subject, seq, keep)


async def _purge(req: ApiRequest, subject: str, seq: int, keep: int) -> dict[str, Any]:
    stream = _stream(req)
    purged = stream.purge(subject, seq, keep)
    await _durable(stream)
    return {"success": True, "purged": purged}


@route("STREAM.NAMES", "stream_names_response")
def stream_names(req: ApiRequest) -> dict[str, Any]:
    body = _decode(req, STREAM_NAMES_REQ)
    streams = _filtered_streams(req.jsa, body.get("subject", ""))
    total = len(streams)
    offset = _page(total, body.get("offset", 0))
    page = [s.name for s in streams[offset : offset + NAMES_LIMIT]]
    return {"total": total, "offset": offset, "limit": NAMES_LIMIT, "streams": page or None}


@route("STREAM.LIST", "stream_list_response")
def stream_list(req: ApiRequest) -> dict[str, Any]:
    body = _decode(req, STREAM_LIST_REQ)
    streams = _filtered_streams(req.jsa, body.get("subject", ""))
    total = len(streams)
    offset = _page(total, body.get("offset", 0))
    page = [s.info_json(server_meta=False) for s in streams[offset : offset + LIST_LIMIT]]
    return {"total": total, "offset": offset, "limit": LIST_LIMIT, "streams": page}


def _filtered_streams(jsa: JetStreamAccount, subject: str) -> list[Stream]:
    streams = [jsa.streams[n] for n in sorted(jsa.streams)]
    if subject:
        streams = [s for s in streams if subjects_overlap([subject], s.config.subjects)]
    return streams


@route("STREAM.MSG.GET.*", "stream_msg_get_response", counting="errors")
def stream_msg_get(req: ApiRequest) -> dict[str, Any]:
    if not req.payload.strip():
        raise bad_request()
    body = _decode(req, MSG_GET_REQ)
    stream = _stream(req)
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


@route("STREAM.MSG.DELETE.*", "stream_msg_delete_response")
def stream_msg_delete(req: ApiRequest) -> Awaitable[dict[str, Any]]:
    body = _decode(req, MSG_DELETE_REQ)
    _stream(req)
    if not body.get("seq"):
        raise bad_request()
    return _msg_delete(req, body["seq"], not body.get("no_erase", False))


async def _msg_delete(req: ApiRequest, seq: int, erase: bool) -> dict[str, Any]:
    stream = _stream(req)
    try:
        stream.delete_msg(seq, erase)
    except ApiError as e:
        if e.err_code == 10043:
            e.counted = False  # nats-server answers it without counting an API error
        raise
    await _durable(stream)
    return {"success": True}


@route("STREAM.LEADER.STEPDOWN.*", "stream_leader_stepdown_response")
def stream_leader_stepdown(req: ApiRequest) -> dict[str, Any]:
    _stream(req)
    raise api_error("JSClusterRequiredErr")


@route("STREAM.PEER.REMOVE.*", "stream_remove_peer_response")
def stream_peer_remove(req: ApiRequest) -> dict[str, Any]:
    _stream(req)
    raise api_error("JSClusterRequiredErr")


# -- consumers ------------------------------------------------------------------------------

from . import consumer_api  # noqa: E402,F401  (registers the CONSUMER.* routes)
