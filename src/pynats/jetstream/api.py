"""The `$JS.API.*` responder: one subscription per account, dispatch, JSON responses.

Each JetStream-enabled account gets one internal subscription on `$JS.API.>` (and on
`$JS.<domain>.API.>` with a domain, mapped onto `$JS.API.>`). A request is matched against
the route table (`api_router.py`, filled by `build_router`); the handler returns the
response fields or raises `ApiError`, and the responder wraps them:
`{"type": "io.nats.jetstream.api.v1.<x>_response", ...}`, counts them, and audits them.

Handlers that change metadata (create/update/delete, purge, message delete) return
awaitables: they answer only once the change is durable, and they run one at a time. While
one is written, the requests that follow wait in a queue, unhandled, and run in arrival
order after it, so that no request's checks see a half-made change. Info requests (and reads
when nothing is being written) answer at once. The queue has nats-server's limit
(`request_queue_limit`, queues.py): when it fills, every waiting request is dropped.

Unknown `$JS.API` subjects get no answer (as nats-server 2.15 does). Direct gets and pull
requests are not API requests: streams and consumers own those subscriptions; when nobody
does, the requester gets the no-responders status it would get without this catch-all.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections import deque
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from pynats.server.internal import InternalClient

from . import advisories, queues
from . import headers as h
from .api_router import ApiRequest, ApiRouter, Route
from .backup import register_backup_routes
from .consumer_api import register_consumer_routes
from .errors import ApiError, api_error, bad_request
from .stream_api import register_stream_routes

if TYPE_CHECKING:
    from pynats.server.accounts import Account
    from pynats.server.delivery import Publisher
    from pynats.server.sublist import Subscription

    from .service import JetStream, JetStreamAccount

API_PREFIX = "$JS.API."
TYPE_PREFIX = "io.nats.jetstream.api.v1."
# Requests a stream or consumer answers on its own subscription: the catch-all only says
# "no responders" when nothing else took one.
_SERVED_ELSEWHERE = (b"$JS.API.DIRECT.GET.", b"$JS.API.CONSUMER.MSG.NEXT.")

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
    "stream_restore_response": {"deliver_subject": ""},
}


def build_router() -> ApiRouter:
    """Every `$JS.API` route: the account and streams, then consumers."""
    router = ApiRouter()
    register_stream_routes(router)
    register_backup_routes(router)
    register_consumer_routes(router)
    return router


# -- the responder ---------------------------------------------------------------------------


class ApiResponder:
    def __init__(self, js: JetStream, router: ApiRouter) -> None:
        self.js = js
        self.router = router
        self.log = js.server.logger
        # Requests waiting while a change is written (their handlers have not run yet), and
        # nats-server's limits on its API queues (queues.py).
        self._queue: deque[tuple[ApiRequest, Route]] = deque()
        self._busy = False
        opts = js.server.options
        self._request_limit = queues.positive_or(
            opts.jetstream_request_queue_limit, queues.DEFAULT_REQUEST_QUEUE_LIMIT
        )
        self._info_limit = queues.positive_or(opts.jetstream_info_queue_limit, self._request_limit)

    def attach(self, jsa: JetStreamAccount) -> None:
        def on_request(
            sub: Subscription,
            publisher: Publisher,
            subject: bytes,
            reply: bytes | None,
            headers: bytes,
            payload: bytes,
        ) -> None:
            if subject.startswith(_SERVED_ELSEWHERE):
                # every KV get passes here too: settled before any decoding
                self._no_responders(jsa, subject, reply, publisher)
                return
            self.on_request(jsa, subject.decode(), reply, headers, payload, publisher)

        jsa.api_sub = jsa.client.subscribe("$JS.API.>", on_request)
        domain = self.js.domain
        if domain:
            prefix = f"$JS.{domain}.API."

            def on_domain_request(
                sub: Subscription,
                publisher: Publisher,
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

    def attach_disabled(self, account: Account) -> InternalClient:
        """Accounts without JetStream answer every API request with 10039."""
        client = InternalClient(self.js.server, account, "$JS")

        def on_request(
            sub: Subscription,
            publisher: Publisher,
            subject: bytes,
            reply: bytes | None,
            headers: bytes,
            payload: bytes,
        ) -> None:
            rest = subject.decode()[len(API_PREFIX) :]
            r, _ = self.router.match(rest)
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
        publisher: Publisher,
    ) -> None:
        rest = subject[len(API_PREFIX) :]
        if headers and reply is None and h.SOURCE_LOOKUP in headers:
            self._source_lookup(jsa, headers, publisher)
            return
        r, args = self.router.match(rest)
        if r is None or args is None:
            return
        req = ApiRequest(jsa, subject, args, reply, headers, payload, publisher)
        if r.kind in queues.INFO_KINDS:
            # answered now: the info queue holds this one request while it is looked at
            if self._info_limit <= 1:
                self._limit_reached("JetStream API info queue", 1, 0)
            self._run(req, r)
            return
        if self._busy:
            self._queue.append((req, r))
            pending = len(self._queue)
        else:
            pending = 1
        if pending >= self._request_limit:
            # nats-server empties the whole queue, this request included, answering none
            self._queue.clear()
            self._limit_reached("JetStream API queue", pending, pending)
            return
        if not self._busy:
            self._run(req, r)

    def _run(self, req: ApiRequest, r: Route) -> None:
        """Handle one request: a read is answered at once; a change holds the queue until
        its write is durable (`_serial`)."""
        if r.counting == "before":
            req.jsa.api_total += 1
        if req.headers and h.level_unmet(req.headers, self.js.api_level):
            self.respond(req, r, error=api_error("JSRequiredApiLevelErr"))
            return
        try:
            result = r.handler(req)
        except ApiError as e:
            self.respond(req, r, error=e)
            return
        except Exception as e:  # a bug: answer, log, keep serving
            self.log.error(f"JetStream API {req.subject}: {type(e).__name__}: {e}")
            self.respond(req, r, error=bad_request())
            return
        if inspect.isawaitable(result):
            self._busy = True
            asyncio.get_running_loop().create_task(self._serial(req, r, result))
        else:
            self.respond(req, r, body=result)

    async def _serial(self, req: ApiRequest, r: Route, work: Awaitable[dict[str, Any]]) -> None:
        try:
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
        finally:
            self._busy = False
            self._run_queued()

    def _run_queued(self) -> None:
        """Requests that arrived while a change was being written, in arrival order, until
        one of them is a change again."""
        queue = self._queue
        while queue and not self._busy:
            req, r = queue.popleft()
            self._run(req, r)

    def _limit_reached(self, queue: str, pending: int, dropped: int) -> None:
        queues.api_limit_reached(self.js.server, self.js.domain, queue, pending, dropped)

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

    def _source_lookup(self, jsa: JetStreamAccount, headers: bytes, publisher: Publisher) -> None:
        """A mirror/source resolving its external API prefix (see sources.lookup_account)."""
        token = h.get(headers, h.SOURCE_LOOKUP)
        lookups = self.js.source_lookups
        if token is not None and getattr(publisher, "kind", "") == "Internal":
            key = token.decode()
            if key in lookups:
                lookups[key] = jsa

    def _no_responders(
        self, jsa: JetStreamAccount, subject: bytes, reply: bytes | None, publisher: Publisher
    ) -> None:
        """Nobody but this catch-all took a direct get / pull request: say so (503)."""
        if not reply or not getattr(publisher, "no_responders", False):
            return
        plain, groups = jsa.account.sublist.match(subject)[:2]
        # a stream's direct get or a consumer's pull is a queue group: tested first
        if any(groups) or any(sub is not jsa.api_sub for sub in plain):
            return
        block = b"NATS/1.0 503\r\nNats-Subject: %b\r\n\r\n" % subject
        jsa.client.publish(reply, b"", headers=block)
