"""`/jsz` and the JetStream part of `/healthz`, in nats-server's shape.

/jsz?accounts=1        per-account details
/jsz?streams=1         ... with each stream (implies accounts)
/jsz?consumers=1       ... with each stream's consumers (implies streams)
/jsz?config=1          ... with stream configs
/jsz?acc=NAME          one account (implies streams)
offset / limit         paging over accounts

`service.enable_jetstream` registers both, bound to the server's `JetStream`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pynats.gotime import rfc3339
from pynats.server import const
from pynats.server.monitor import JSONResponse, Query, parse_bool, parse_int

if TYPE_CHECKING:
    from pynats.server.server import Server

    from .service import JetStream, JetStreamAccount
    from .stream import Stream


def jsz(js: JetStream, server: Server, query: Query) -> dict[str, Any]:
    acc = query.get("acc", "")
    with_consumers = parse_bool(query, "consumers")
    with_streams = parse_bool(query, "streams") or with_consumers or bool(acc)
    with_accounts = parse_bool(query, "accounts") or with_streams
    with_config = parse_bool(query, "config")
    for name in ("leader-only", "raft", "stream-leader-only", "direct-consumers"):
        parse_bool(query, name)
    offset = max(parse_int(query, "offset"), 0)
    limit = parse_int(query, "limit")
    if limit <= 0:
        limit = const.DEFAULT_CONN_LIST_SIZE

    accounts = [js.accounts[n] for n in sorted(js.accounts)]
    if acc:
        accounts = [a for a in accounts if a.name == acc]
    out: dict[str, Any] = dict(js.stats_json())
    out["server_id"] = server.server_id
    out["now"] = rfc3339(time.time_ns())
    out["config"] = js.config_json()
    out["limits"] = js.limits_json()
    out["streams"] = sum(len(a.streams) for a in js.accounts.values())
    out["consumers"] = sum(a.consumer_count() for a in js.accounts.values())
    out["messages"] = sum(s.store.msgs for a in js.accounts.values() for s in a.streams.values())
    out["bytes"] = sum(s.store.bytes for a in js.accounts.values() for s in a.streams.values())
    if with_accounts:
        page = accounts[offset : offset + limit]
        out["account_details"] = [
            _account_detail(js, a, with_streams, with_consumers, with_config) for a in page
        ]
    out["total"] = len(accounts)
    return out


def _account_detail(
    js: JetStream, jsa: JetStreamAccount, streams: bool, consumers: bool, config: bool
) -> dict[str, Any]:
    mem, store = jsa.reserved()
    out: dict[str, Any] = {
        "name": jsa.name,
        "id": jsa.name,
        "memory": jsa.memory_used(),
        "storage": jsa.storage_used(),
        "reserved_memory": mem,
        "reserved_storage": store,
        "accounts": 0,
        "ha_assets": 0,
        "api": {"level": js.api_level, "total": jsa.api_total, "errors": jsa.api_errors},
    }
    if streams and jsa.streams:
        out["stream_detail"] = [
            _stream_detail(js, stream, consumers, config) for stream in jsa.streams.values()
        ]
    return out


def _stream_detail(js: JetStream, stream: Stream, consumers: bool, config: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": stream.name,
        "created": rfc3339(stream.created_ns),
        "cluster": js.cluster_info(),
    }
    if config:
        out["config"] = stream.config.to_json()
    out["state"] = stream.state_json()
    if consumers and stream.consumers:
        out["consumer_detail"] = [c.info_json() for _, c in sorted(stream.consumers.items())]
    if stream.sources is not None:
        out.update(stream.sources.info_json())
    return out


def healthz_check(js: JetStream, server: Server, query: Query) -> JSONResponse | None:
    """None when JetStream is healthy for the query, else the 503 answer."""
    if js.disabled:
        return None  # switched off by a reload: nothing to wait for
    if not js.started:
        return _unavailable("JetStream has not started")
    if parse_bool(query, "js-enabled-only") or parse_bool(query, "js-meta-only"):
        return None
    account = query.get("account", "")
    stream = query.get("stream", "")
    if account:
        jsa = js.accounts.get(account)
        if jsa is None:
            return _unavailable(f"JetStream account '{account}' could not be resolved")
        if stream and stream not in jsa.streams:
            return _unavailable(f"JetStream stream '{account} > {stream}' could not be found")
        consumer = query.get("consumer", "")
        if stream and consumer and consumer not in jsa.streams[stream].consumers:
            return _unavailable(
                f"JetStream consumer '{account} > {stream} > {consumer}' could not be found"
            )
    if js.recovery_errors:
        return _unavailable(js.recovery_errors[0])
    return None


def _unavailable(text: str) -> JSONResponse:
    return JSONResponse(503, {"status": "unavailable", "error": text}, compact=True)
