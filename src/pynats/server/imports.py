"""Account imports: how a message crosses from one account's subject space into another's.

A stream import of `a.>` from account A into B gives each subscriber of B on the imported
subjects a shadow subscription in A (shadows.py), which hands it A's messages under B's
subjects (its prefix or mapped subject). A service import is an internal
subscription in B on the local subject: a request is re-routed into A with its reply subject
replaced by a fresh `_R_.<token>` subject of A, and A's internal `_R_.>` subscription sends
whatever answers arrive there back to the requester's reply subject in B (once for singleton
responses, until the threshold for streamed and chunked ones). A JetStream delivery on that
subject (a pull request's stored messages) keeps its stored subject on the way back.

Only messages on imported subjects pay for this; the core path is unchanged.

A server without JetStream in a cluster whose JetStream runs elsewhere (on Go servers) reaches
it the way nats-server does: every account imports `$JS.API.>` from the system account
(`wire_jetstream_api`), the request carries who asked (`Nats-Request-Info`), and crosses the
routes in the system account; subjects some server serves directly in the account (a
consumer's `MSG.NEXT`, a stream's `DIRECT.GET`) are left to ordinary routing.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from .accounts import (
    Account,
    ExportConfig,
    ImportConfig,
    ServiceResponse,
    find_export,
    map_subject,
)
from .connection import CLIENT, LEAF
from .delivery import route_as, route_message
from .internal import InternalClient
from .shadows import StreamImport, add_stream_import
from .sublist import Subscription

if TYPE_CHECKING:
    from .delivery import Publisher
    from .server import Server

RESPONSE_SWEEP_EVERY = 1024
JS_API_ALL = "$JS.API.>"
REQUEST_INFO = b"Nats-Request-Info"
FAST_BATCH_SUFFIX = b".$FI"  # a fast-ingest batch's reply subject (jetstream/fast_batches.py)


def wire_imports(server: Server) -> list[str]:
    """Set up every configured import; returns problems (missing or private exports)."""
    problems: list[str] = []
    for account in server.accounts.values():
        cfg = account.config
        if cfg is None:
            continue
        for imp in cfg.imports:
            exporter = server.accounts.get(imp.account)
            if exporter is None:
                problems.append(f'"{imp.account}" account not defined for {imp.kind} import')
                continue
            export = find_export(exporter, imp.kind, imp.subject, account.name)
            if export is None:
                problems.append(
                    f"{imp.kind} import from {imp.account} for {imp.subject!r} in account "
                    f"{account.name} has no matching export"
                )
                continue
            wire_import(server, exporter, account, imp, export)
    return problems


def wire_import(
    server: Server, exporter: Account, importer: Account, imp: ImportConfig, export: ExportConfig
) -> Subscription | StreamImport:
    """One import `export` allows; what carries it (`unwire_import` undoes it)."""
    if imp.kind == "stream":
        route = _wire_stream_import(server, exporter, importer, imp.subject, imp.to, imp.prefix)
        route.allow_trace = imp.allow_trace
        return route
    return _wire_service_import(
        server,
        exporter,
        importer,
        imp.subject,
        imp.to,
        export.response_type,
        export.response_threshold,
        allow_trace=export.allow_trace,
        share=imp.share,
    )


def unwire_import(wired: Subscription | StreamImport) -> None:
    """Undo what `wire_import` wired."""
    if isinstance(wired, StreamImport):
        wired.close()
    else:
        wired.client.unsubscribe(wired)


def _client_for(server: Server, account: Account) -> InternalClient:
    if account.imports_client is None:
        account.imports_client = InternalClient(server, account, f"imports:{account.name}")
    return account.imports_client


def _wire_stream_import(
    server: Server, exporter: Account, importer: Account, subject: str, to: str, prefix: str
) -> StreamImport:
    """Shadow subscriptions in the exporter for the importer's subscribers (shadows.py)."""
    pre = (prefix.rstrip(".") + ".").encode() if prefix else b""
    return add_stream_import(exporter, importer, subject.encode(), pre + (to or subject).encode())


def _wire_service_import(
    server: Server,
    exporter: Account,
    importer: Account,
    subject: str,
    to: str,
    response_type: str,
    threshold: float,
    *,
    request_info: bool = False,
    defer_to_direct: bool = False,
    allow_trace: bool = False,
    share: bool = False,
) -> Subscription:
    """`request_info`: add who asked (`Nats-Request-Info`) to each request; `defer_to_direct`:
    leave a request alone when another subscriber in the importing account takes it;
    `allow_trace`: a traced request is traced on among the exporter's subscribers."""
    remote = subject.encode()
    local = to.encode() if to else remote
    exporter_client = _client_for(server, exporter)
    _ensure_response_subscription(server, exporter)
    singleton = response_type == "Singleton"
    counter = [0]

    def request(
        sub: Subscription,
        publisher: Publisher,
        subj: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        if defer_to_direct and _served_directly(importer, subj):
            return
        target, mapped = crossing(subj, reply)
        if request_info:
            headers = with_request_info(headers, publisher, server)
        else:
            headers = _requester_info(headers, publisher, server, share, reply)
        delivered = route_message(
            exporter_client, exporter, target, mapped, len(headers), headers + payload
        )
        if not delivered and reply is not None:
            if mapped is not None:
                exporter.responses.pop(mapped, None)
            if getattr(publisher, "no_responders", False) and hasattr(
                publisher, "send_no_responders"
            ):
                publisher.send_no_responders(subj, reply)

    def crossing(subj: bytes, reply: bytes | None) -> tuple[bytes, bytes | None]:
        """The subject in the exporter, and the reply there mapped back to `reply`."""
        mapped: bytes | None = None
        if reply is not None:
            mapped = respond_via(server, exporter, importer, reply, singleton, threshold)
            counter[0] += 1
            if counter[0] % RESPONSE_SWEEP_EVERY == 0:
                _sweep_responses(exporter)
        return map_subject(subj, local, remote), mapped

    def traced(subj: bytes) -> tuple[str, str, str]:
        """What msgtrace.py reports for this import: a service import into the exporter."""
        return "si", exporter.name, map_subject(subj, local, remote).decode()

    request.msg_trace = traced  # type: ignore[attr-defined]
    if allow_trace:
        request.trace_into = (exporter_client, exporter, crossing)  # type: ignore[attr-defined]
    return _client_for(server, importer).subscribe(local, request, local_only=True)


def respond_via(
    server: Server,
    exporter: Account,
    importer: Account,
    reply: bytes,
    singleton: bool,
    threshold: float,
) -> bytes:
    """A fresh `_R_` subject of the exporter whose messages go to `reply` in the importer."""
    mapped = server.response_prefix + secrets.token_urlsafe(12).encode()
    exporter.responses[mapped] = ServiceResponse(
        importer, reply, singleton, time.monotonic() + threshold
    )
    return mapped


def _ensure_response_subscription(server: Server, exporter: Account) -> None:
    client = _client_for(server, exporter)
    wildcard = server.response_prefix + b">"
    if any(s.subject == wildcard for s in client.subs.values()):
        return

    def taken(subj: bytes) -> ServiceResponse | None:
        """Where a response on `subj` goes, if anywhere (a singleton's entry is used up)."""
        entry = exporter.responses.get(subj)
        if entry is None:
            return None
        if entry.singleton or entry.deadline < time.monotonic():
            del exporter.responses[subj]
            if entry.deadline < time.monotonic():
                return None
        return entry

    def respond(
        sub: Subscription,
        publisher: Publisher,
        subj: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        entry = taken(subj)
        if entry is None:
            return
        back = _client_for(server, entry.account)
        route_message(back, entry.account, entry.reply, reply, len(headers), headers + payload)

    def respond_as(
        sub: Subscription,
        publisher: Publisher,
        subject: bytes,
        routed_by: bytes,
        reply: bytes | None,
        hdr_len: int,
        msg: bytes,
    ) -> None:
        """A JetStream delivery to the `_R_` subject (a pull request's messages): it goes
        on to the requester's inbox still framed with the stored message's subject."""
        entry = taken(routed_by)
        if entry is None:
            return
        back = _client_for(server, entry.account)
        route_as(back, entry.account, entry.reply, subject, reply, msg[:hdr_len], msg[hdr_len:])

    def traced(subj: bytes) -> tuple[str, str, str] | None:
        """What msgtrace.py reports for a response: a service import back to the requester."""
        entry = exporter.responses.get(subj)
        if entry is None:
            return None
        return "si", entry.account.name, entry.reply.decode(errors="replace")

    respond.msg_trace = traced  # type: ignore[attr-defined]
    respond.deliver_as = respond_as  # type: ignore[attr-defined]
    client.subscribe(wildcard, respond)


def _sweep_responses(account: Account) -> None:
    now = time.monotonic()
    for key in [k for k, v in account.responses.items() if v.deadline < now]:
        del account.responses[key]


def wire_jetstream_api(server: Server, account: Account) -> None:
    """`account` reaches the cluster's JetStream through the system account (mixed mode)."""
    system = server.system_account
    if system is None or account is system or account.jetstream_imported:
        return
    account.jetstream_imported = True
    _wire_service_import(
        server,
        system,
        account,
        JS_API_ALL,
        "",
        "Singleton",
        JS_API_RESPONSE_THRESHOLD_S,
        request_info=True,
        defer_to_direct=True,
    )


JS_API_RESPONSE_THRESHOLD_S = 10.0


def _served_directly(account: Account, subject: bytes) -> bool:
    """Someone besides the import itself takes this subject in the account."""
    result = account.sublist.match(subject)
    return (
        bool(result.links)
        or any(not s.local_only for s in result.psubs)
        or any(not s.local_only for group in result.qsubs for s in group)
    )


def _full_info(publisher: Any, server: Server) -> dict[str, Any]:
    """nats-server's ClientInfo of a client, as a shared import or the JS API sees it."""
    info_fn = getattr(publisher, "client_info", None)
    info: dict[str, Any] = info_fn() if info_fn is not None else {"acc": publisher.account.name}
    rtt = getattr(publisher, "rtt", 0.0)
    info["rtt"] = round(rtt * 1e9)
    info["server"] = server.server_name
    if server.cluster is not None:
        info["cluster"] = server.cluster.name
    info["kind"] = "Client"
    info["client_type"] = "nats"
    return info


def with_request_info(
    headers: bytes, publisher: Any, server: Server, *, last: bool = False
) -> bytes:
    """The header block with `Nats-Request-Info` (nats-server's ClientInfo of the requester):
    first after the status line, or `last` (after the publisher's headers)."""
    info = _full_info(publisher, server)
    line = REQUEST_INFO + b": " + json.dumps(info, separators=(",", ":")).encode() + b"\r\n"
    if not headers:
        return b"NATS/1.0\r\n" + line + b"\r\n"
    if last:
        return headers[:-2] + line + b"\r\n"
    first_end = headers.find(b"\r\n") + 2
    return headers[:first_end] + line + headers[first_end:]


def _requester_info(
    headers: bytes, publisher: Any, server: Server, share: bool, reply: bytes | None
) -> bytes:
    """Every request crossing a service import tells the exporter who asked, as nats-server
    does (getClientInfo): the account and RTT, and with the import's `share` all of the
    client. Only clients' and leafs' requests carry it; a leaf's own header is kept, a
    client's is replaced (a requester cannot speak for another). A fast-ingest batch's
    message also names its own reply subject (`reply`): the stream reads the batch's
    tokens there, since the reply it sees is the import's `_R_` subject."""
    kind = getattr(publisher, "kind", None)
    fast_batch = reply is not None and reply.endswith(FAST_BATCH_SUFFIX)
    if kind == LEAF:
        if headers and headers.find(REQUEST_INFO + b":") >= 0:
            return headers
        info: dict[str, Any] = {"acc": publisher.account.name}
        info["rtt"] = round(getattr(publisher, "rtt", 0.0) * 1e9)
    elif kind == CLIENT:
        if share and not fast_batch:
            return with_request_info(_without_request_info(headers), publisher, server, last=True)
        if share:
            info = _full_info(publisher, server)
        else:
            info = {"acc": publisher.account.name}
            info["rtt"] = round(getattr(publisher, "rtt", 0.0) * 1e9)
    else:
        return headers
    if fast_batch:
        assert reply is not None
        info["reply"] = reply.decode()
    line = REQUEST_INFO + b": " + json.dumps(info, separators=(",", ":")).encode() + b"\r\n"
    headers = _without_request_info(headers)
    if not headers:
        return b"NATS/1.0\r\n" + line + b"\r\n"
    return headers[:-2] + line + b"\r\n"


def _without_request_info(headers: bytes) -> bytes:
    """The header block without a `Nats-Request-Info` of the publisher's own."""
    if not headers or headers.find(REQUEST_INFO + b":") < 0:
        return headers
    lines = headers.split(b"\r\n")
    return b"\r\n".join(line for line in lines if not line.startswith(REQUEST_INFO + b":"))
