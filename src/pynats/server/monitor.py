"""Monitoring endpoints: /varz /connz /subsz /routez /healthz (and those extensions register).

Each endpoint is a function of the server's state and the query (`MonitorHandler`), with no
I/O of its own: the HTTP server (`monitor_http`) and the `$SYS.REQ.SERVER.*` services
(`system`) answer with the same functions. The JSON has nats-server's field names and order;
bad query values raise `BadRequest` with nats-server's plain-text answers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pynats import gotime

from .. import __version__ as PYNATS_VERSION
from . import const, feature_flags, strconv

if TYPE_CHECKING:
    from .accounts import Account
    from .client import ClientConnection
    from .routes import RouteConnection
    from .server import Server
    from .sublist import Sublist, Subscription


class BadRequest(Exception):
    """An HTTP 400 with a plain-text body, as nats-server answers bad query values."""


class NotFound(Exception):
    pass


class JSONResponse:
    """A handler's answer with a status other than 200 (e.g. /healthz)."""

    def __init__(self, status: int, body: Any, *, compact: bool = False) -> None:
        self.status = status
        self.body = body
        self.compact = compact


Query = dict[str, str]
# An endpoint: the JSON-able answer, or a JSONResponse for another status.
MonitorHandler = Callable[["Server", Query], Any]
# A /healthz check an extension adds: None when healthy, else the answer to send.
HealthzCheck = Callable[["Server", Query], "JSONResponse | None"]
# Adds an extension's section to a /varz answer being built.
VarzExtension = Callable[[dict[str, Any]], None]

# -- formatting helpers ----------------------------------------------------------------------


def rfc3339_seconds(ts: float) -> str:
    """`gotime.rfc3339` (Go's RFC3339Nano, UTC) of a `time.time()` in seconds."""
    return gotime.rfc3339(round(ts * gotime.NS_PER_S))


def uptime_text(seconds: float) -> str:
    """nats-server's uptime format: `1y2d3h4m5s`, leading zero units dropped."""
    total = int(seconds)
    years, total = divmod(total, 365 * 86400)
    days, total = divmod(total, 86400)
    hours, total = divmod(total, 3600)
    minutes, secs = divmod(total, 60)
    if years:
        return f"{years}y{days}d{hours}h{minutes}m{secs}s"
    if days:
        return f"{days}d{hours}h{minutes}m{secs}s"
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def parse_bool(query: Query, name: str) -> bool:
    value = query.get(name)
    if value is None or value == "":
        return False
    try:
        return strconv.parse_bool(value)
    except ValueError:
        raise BadRequest(
            f"Error decoding boolean for '{name}': strconv.ParseBool: parsing \"{value}\": "
            "invalid syntax"
        ) from None


def parse_int(query: Query, name: str) -> int:
    value = query.get(name)
    if value is None or value == "":
        return 0
    try:
        return int(value)
    except ValueError:
        raise BadRequest(
            f"Error decoding int for '{name}': strconv.Atoi: parsing \"{value}\": invalid syntax"
        ) from None


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


# -- /varz -----------------------------------------------------------------------------------


def varz(server: Server, query: Query) -> dict[str, Any]:
    opts = server.options
    now = time.time()
    in_msgs, in_bytes, out_msgs, out_bytes = server.totals()
    info = server.info_fields()
    v: dict[str, Any] = {
        "server_id": server.server_id,
        "server_name": server.server_name,
        "version": const.NATS_FEATURE_VERSION,
        "pynats_version": PYNATS_VERSION,
        "proto": const.PROTO,
        "go": const.GO_VERSION_FIELD,
        "host": opts.host,
        "port": server.client_port,
    }
    if info.get("auth_required"):
        v["auth_required"] = True
    if info.get("tls_required"):
        v["tls_required"] = True
    if opts.tls_verify:
        v["tls_verify"] = True
    if opts.tls and opts.tls_ocsp_peer is not None and opts.tls_ocsp_peer.verify:
        v["tls_ocsp_peer_verify"] = True
    v.update(
        {
            "max_connections": opts.max_connections,
        }
    )
    if opts.max_subscriptions:
        v["max_subscriptions"] = opts.max_subscriptions
    v.update(
        {
            "ping_interval": int(opts.ping_interval * gotime.NS_PER_S),
            "ping_max": opts.ping_max,
            "http_host": opts.monitor_host(),
            "http_port": server.http_port,
            "http_base_path": opts.http_base_path,
            "https_port": opts.https_port,
            "auth_timeout": opts.effective_auth_timeout(),
            "max_control_line": opts.max_control_line,
            "max_payload": opts.max_payload,
            "max_pending": opts.max_pending,
            "cluster": cluster_varz(server),
            "gateway": gateway_varz(server),
            "leaf": leaf_varz(server),
            "mqtt": server.mqtt.varz() if server.mqtt is not None else {},
            "websocket": server.websocket.varz() if server.websocket is not None else {},
            "jetstream": {},
            "tls_timeout": opts.tls_timeout,
            "write_deadline": int(opts.write_deadline * gotime.NS_PER_S),
            "start": rfc3339_seconds(server.start_time),
            "now": rfc3339_seconds(now),
            "uptime": uptime_text(now - server.start_time),
            "mem": rss_bytes(),
            "cores": os.cpu_count() or 1,
            "gomaxprocs": 1,
            "cpu": cpu_percent(server),
            "connections": len(server.clients),
            "total_connections": server.total_connections,
            "routes": server.cluster.num_routes() if server.cluster else 0,
            "remotes": len(server.cluster.peers) if server.cluster else 0,
            "leafnodes": len(server.leafnodes.registered()) if server.leafnodes else 0,
            "in_msgs": in_msgs,
            "in_bytes": in_bytes,
            "in_client_msgs": in_msgs,
            "in_client_bytes": in_bytes,
            "out_msgs": out_msgs,
            "out_bytes": out_bytes,
            "out_client_msgs": out_msgs,
            "out_client_bytes": out_bytes,
            "slow_consumers": server.slow_consumers,
            "stale_connections": server.stale_connections,
            "stalled_clients": server.stalled_clients,
            "subscriptions": server.num_subscriptions(),
            "http_req_stats": server.http_request_counts(),
            "config_load_time": rfc3339_seconds(server.config_load_time),
            "config_digest": opts.config_digest,
        }
    )
    if opts.server_metadata:
        v["metadata"] = dict(opts.server_metadata)
    v["feature_flags"] = feature_flags.effective(opts.feature_flags)
    if server.cluster is not None and not opts.cluster.no_advertise:
        v["connect_urls"] = server.all_client_urls()
    if server.system_account is not None:
        v["system_account"] = server.system_account.name
    if pinned_fails := getattr(server.authenticator, "pinned_account_fails", 0):
        v["pinned_account_fails"] = pinned_fails  # users of accounts not pinned, refused
    if server.ocsp_peer is not None and (cache := server.ocsp_peer.cache.varz()) is not None:
        v["ocsp_peer_cache"] = cache
    v["slow_consumer_stats"] = dict(server.slow_consumer_stats)
    v["stale_connection_stats"] = dict(server.stale_connection_stats)
    if opts.trusted_proxies:
        v["proxies"] = {"trusted": [{"key": key} for key in opts.trusted_proxies]}
    if opts.tls and opts.tls_cert:
        from .tls import certificate_not_after

        if not_after := certificate_not_after(opts.tls_cert):
            v["tls_cert_not_after"] = not_after
    for extend in server.varz_extra:
        extend(v)
    return v


def cluster_varz(server: Server) -> dict[str, Any]:
    """The `cluster` section of /varz: name, listen address, routes as configured."""
    cluster = server.cluster
    if cluster is None:
        # nats-server names the cluster after its gateway when only the gateway is named
        return {"name": server.gateways.name} if server.gateways is not None else {}
    opts = cluster.options
    out: dict[str, Any] = {
        "name": cluster.name,
        "addr": opts.host or "0.0.0.0",
        "cluster_port": cluster.port,
        "auth_timeout": opts.effective_auth_timeout(),
    }
    urls = [_route_host_port(u) for u in opts.routes]
    if urls:
        out["urls"] = urls
    out["tls_timeout"] = opts.tls_timeout
    if opts.tls is not None:
        out["tls_required"] = True
        out["tls_verify"] = opts.tls.verify
    out["pool_size"] = cluster.pool_size
    if cluster.options.pinned_accounts:
        out["accounts"] = list(cluster.options.pinned_accounts)
    return out


def _route_host_port(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc.rpartition("@")[2]


_cpu_sample: dict[int, tuple[float, float]] = {}


def cpu_percent(server: Server) -> float:
    """CPU use of this process since the previous /varz (as a percentage of one core)."""
    now = time.monotonic()
    used = time.process_time()
    last = _cpu_sample.get(id(server))
    _cpu_sample[id(server)] = (now, used)
    if last is None or now <= last[0]:
        return 0.0
    return round(100.0 * (used - last[1]) / (now - last[0]), 2)


# -- /connz ----------------------------------------------------------------------------------

CONNZ_SORTS = {
    "cid": (lambda c: c["cid"], False),
    "start": (lambda c: c["_start"], False),
    "subs": (lambda c: c["subscriptions"], True),
    "pending": (lambda c: c["pending_bytes"], True),
    "msgs_to": (lambda c: c["out_msgs"], True),
    "msgs_from": (lambda c: c["in_msgs"], True),
    "bytes_to": (lambda c: c["out_bytes"], True),
    "bytes_from": (lambda c: c["in_bytes"], True),
    "last": (lambda c: c["_last"], True),
    "idle": (lambda c: c["_idle"], True),
    "uptime": (lambda c: c["_uptime"], True),
    "rtt": (lambda c: c["_rtt"], True),
    "stop": (lambda c: c["_stop"], True),
    "reason": (lambda c: c["reason"], True),
}


def conn_info(
    server: Server, c: ClientConnection, now: float, *, subs: str, auth: bool
) -> dict[str, Any]:
    """One /connz entry for a live connection (underscore keys are for sorting only)."""
    end = c.stop or now
    pending = c.transport.get_write_buffer_size() if c.transport and not c.closed else 0
    info: dict[str, Any] = {
        "cid": c.cid,
        "kind": "Client",
        "type": connection_type(c),
        "ip": c.host,
        "port": c.port,
        "start": rfc3339_seconds(c.start),
        "last_activity": rfc3339_seconds(c.last_activity),
    }
    if c.closed:
        info["stop"] = rfc3339_seconds(c.stop)
        info["reason"] = c.reason
    info.update(
        {
            "rtt": gotime.format_duration(round(c.rtt * gotime.NS_PER_S)),
            "uptime": uptime_text(end - c.start),
            "idle": uptime_text(end - c.last_activity),
            "pending_bytes": pending,
            "in_msgs": c.in_msgs,
            "out_msgs": c.out_msgs,
            "in_bytes": c.in_bytes,
            "out_bytes": c.out_bytes,
            "subscriptions": len(c.subs),
        }
    )
    if c.name:
        info["name"] = c.name
    if (
        c.transport is not None
        and not c.closed
        and (server.tls_context is not None or c.is_websocket or getattr(c, "is_mqtt", False))
    ):
        from .tls import connection_tls_info

        version, cipher = connection_tls_info(c.transport)
        if version:
            info["tls_version"] = version
            info["tls_cipher_suite"] = cipher
    if c.lang:
        info["lang"] = c.lang
    if c.version:
        info["version"] = c.version
    if auth:
        if c.user:
            info["authorized_user"] = c.user
        if c.account.name != const.GLOBAL_ACCOUNT:  # nats-server names other accounts only
            info["account"] = c.account.name
    if subs == "detail" and c.subs:
        info["subscriptions_list_detail"] = [sub_detail(s, None) for s in c.subs.values()]
    elif subs == "list" and c.subs:
        info["subscriptions_list"] = [s.subject.decode(errors="replace") for s in c.subs.values()]
    info["name_tag"] = c.account.name if auth else None
    if info["name_tag"] is None:
        del info["name_tag"]
    mqtt_client = getattr(c, "mqtt_client_id", "")
    if mqtt_client:
        info["mqtt_client"] = mqtt_client
    if c.proxy_key:
        info["proxy"] = {"key": c.proxy_key}  # the trusted proxy it came through (ADR-55)
    info["_start"] = c.start
    info["_last"] = c.last_activity
    info["_idle"] = end - c.last_activity
    info["_uptime"] = end - c.start
    info["_rtt"] = c.rtt
    info["_stop"] = c.stop
    info["_user"] = c.user
    info["_account"] = c.account.name
    return info


def connection_type(c: ClientConnection) -> str:
    """/connz `type`: how the client reached the server."""
    if getattr(c, "is_mqtt", False):
        return "mqtt"
    return "websocket" if c.is_websocket else "nats"


def closed_conn_info(server: Server, c: ClientConnection) -> dict[str, Any]:
    """The record kept in the closed-connections ring, taken when the connection closes."""
    return conn_info(server, c, c.stop or time.time(), subs="", auth=True)


def sub_detail(sub: Subscription, account: str | None) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if account is not None:
        d["account"] = account
        d["account_tag"] = account
    d["subject"] = sub.subject.decode(errors="replace")
    if sub.queue:
        d["qgroup"] = sub.queue.decode(errors="replace")
    d["sid"] = sub.sid.decode(errors="replace")
    d["msgs"] = sub.delivered
    if sub.max_msgs:
        d["max"] = sub.max_msgs
    d["cid"] = getattr(sub.client, "cid", 0)
    return d


def _subs_mode(query: Query) -> str:
    value = query.get("subs", "")
    if value == "detail":
        return "detail"
    return "list" if parse_bool(query, "subs") else ""


def connz(server: Server, query: Query) -> dict[str, Any]:
    now = time.time()
    sort = query.get("sort", "") or "cid"
    if sort not in CONNZ_SORTS:
        raise BadRequest(f"invalid sorting option: {sort}")
    state = query.get("state", "") or "open"
    if state not in ("open", "closed", "any", "all"):
        raise BadRequest(f"Error decoding state for {state}")
    if sort in ("stop", "reason") and state == "open":
        raise BadRequest(f"sort by {sort} only valid on closed connections")
    subs = _subs_mode(query)
    auth = parse_bool(query, "auth")
    offset = max(parse_int(query, "offset"), 0)
    limit = parse_int(query, "limit")
    if limit <= 0:
        limit = const.DEFAULT_CONN_LIST_SIZE
    cid_filter = parse_int(query, "cid")
    user_filter = query.get("user", "")
    acc_filter = query.get("acc", "")
    if acc_filter and acc_filter not in server.accounts:
        # nats-server answers an account it does not know before it fills in its own id
        return {
            "server_id": "",
            "now": rfc3339_seconds(now),
            "num_connections": 0,
            "total": 0,
            "offset": offset,
            "limit": limit,
            "connections": None,
        }

    entries: list[dict[str, Any]] = []
    if state in ("open", "any", "all"):
        entries += [
            conn_info(server, c, now, subs=subs, auth=auth) for c in server.clients.values()
        ]
    if state in ("closed", "any", "all"):
        for record in server.closed_clients:
            entry = dict(record)
            if not auth:
                entry.pop("authorized_user", None)
                entry.pop("account", None)
                entry.pop("name_tag", None)
            entries.append(entry)
    if cid_filter:
        entries = [e for e in entries if e["cid"] == cid_filter]
    if user_filter:
        entries = [e for e in entries if e["_user"] == user_filter]
    if acc_filter:
        entries = [e for e in entries if e["_account"] == acc_filter]
    mqtt_filter = query.get("mqtt_client", "")
    if mqtt_filter:
        entries = [e for e in entries if e.get("mqtt_client") == mqtt_filter]
    key, descending = CONNZ_SORTS[sort]
    entries.sort(key=key, reverse=descending)
    total = len(entries)
    page = entries[offset : offset + limit]
    for e in page:
        for k in [k for k in e if k.startswith("_")]:
            del e[k]
    return {
        "server_id": server.server_id,
        "now": rfc3339_seconds(now),
        "num_connections": len(page),
        "total": total,
        "offset": offset,
        "limit": limit,
        "connections": page,
    }


# -- /subsz, /routez, /healthz ---------------------------------------------------------------


def subsz(server: Server, query: Query) -> dict[str, Any]:
    from .subjects import is_valid_literal_subject, subject_matches

    include = parse_bool(query, "subs")
    offset = max(parse_int(query, "offset"), 0)
    limit = parse_int(query, "limit")
    if limit <= 0:
        limit = const.DEFAULT_CONN_LIST_SIZE
    test = query.get("test", "")
    if test and not is_valid_literal_subject(test.encode()):
        raise BadRequest(f"invalid publish subject: {test}")
    acc_filter = query.get("acc", "")
    accounts = [a for a in server.accounts.values() if not acc_filter or a.name == acc_filter]

    num_subs = num_cache = inserts = removes = misses = 0
    max_fanout = 0
    fanout_total = 0.0
    for acc in accounts:
        sl = acc.sublist
        num_subs += acc.subscription_count()
        num_cache += len(sl.cache)
        inserts += sl.inserts
        removes += sl.removes
        misses += sl.cache_misses
        max_fanout = max(max_fanout, sl.max_fanout)
        fanout_total += sl.avg_fanout() * sl.cache_misses
    in_msgs = server.totals()[0]
    matches = max(in_msgs, misses) if accounts else 0  # an unknown `acc`: all zero
    details: list[dict[str, Any]] = []
    for acc in accounts:
        for sub in acc.sublist.all_subscriptions():
            if test and not subject_matches(sub.subject, test.encode()):
                continue
            if acc.gateway_replies is not None:
                from .gateways import is_gateway_entry

                if is_gateway_entry(sub):
                    continue
            details.append(sub_detail(sub, acc.name))
    total = len(details)
    result: dict[str, Any] = {
        "server_id": server.server_id,
        "now": rfc3339_seconds(time.time()),
        "num_subscriptions": num_subs,
        "num_cache": num_cache,
        "num_inserts": inserts,
        "num_removes": removes,
        "num_matches": matches,
        "cache_hit_rate": (matches - misses) / matches if matches else 0,
        "max_fanout": max_fanout,
        "avg_fanout": fanout_total / misses if misses else 0,
        "total": total,
        "offset": offset,
        "limit": limit,
    }
    if include and details:
        result["subscriptions_list"] = details[offset : offset + limit]
    return result


def routez(server: Server, query: Query) -> dict[str, Any]:
    mode = _subs_mode(query)
    now = time.time()
    cluster = server.cluster
    conns = cluster.registered_connections() if cluster is not None else []
    routes = [route_info(conn, now, mode) for conn in conns]
    return {
        "server_id": server.server_id,
        "server_name": server.server_name,
        "now": rfc3339_seconds(now),
        "num_routes": len(routes),
        "routes": routes,
    }


def route_info(conn: RouteConnection, now: float, subs_mode: str) -> dict[str, Any]:
    """One /routez entry, in nats-server's field order."""
    transport = conn.transport
    pending = transport.get_write_buffer_size() if transport is not None else 0
    r: dict[str, Any] = {
        "rid": conn.cid,
        "remote_id": conn.remote_id,
        "remote_name": conn.remote_name,
        "did_solicit": conn.did_solicit,
        "is_configured": conn.is_configured,
        "ip": conn.host,
        "port": conn.port,
        "start": rfc3339_seconds(conn.start),
        "last_activity": rfc3339_seconds(conn.last_activity),
        "rtt": gotime.format_duration(round(conn.rtt * gotime.NS_PER_S)),
        "uptime": uptime_text(now - conn.start),
        "idle": uptime_text(now - conn.last_activity),
    }
    perms = conn.cluster.options
    if perms.import_permissions is not None or perms.export_permissions is not None:
        if perms.import_permissions is not None:
            r["import"] = perms.import_permissions.as_json()
        if perms.export_permissions is not None:
            r["export"] = perms.export_permissions.as_json()
    r.update(
        {
            "pending_size": pending,
            "in_msgs": conn.in_msgs,
            "out_msgs": conn.out_msgs,
            "in_bytes": conn.in_bytes,
            "out_bytes": conn.out_bytes,
            "subscriptions": len(conn.remote_subs),
        }
    )
    if subs_mode == "detail":
        r["subscriptions_list_detail"] = [
            sub_detail(sub, None) for sub in conn.remote_subs.values()
        ]
    elif subs_mode:
        r["subscriptions_list"] = [
            sub.subject.decode(errors="replace") for sub in conn.remote_subs.values()
        ]
    if conn.pinned_account is not None and not conn.pinned_is_system:
        r["account"] = conn.pinned_account
    r["compression"] = "not supported"
    return r


def gateway_varz(server: Server) -> dict[str, Any]:
    if server.gateways is None:
        return {}
    from .gateways import gateway_varz as varz

    return varz(server.gateways)


def gatewayz(server: Server, query: Query) -> dict[str, Any]:
    if server.gateways is not None:
        from .gateways import gatewayz_report

        return gatewayz_report(server.gateways, query)
    return {
        "server_id": server.server_id,
        "now": rfc3339_seconds(time.time()),
        "outbound_gateways": {},
        "inbound_gateways": {},
    }


def leafz(server: Server, query: Query) -> dict[str, Any]:
    subs = strconv.parse_bool(query.get("subs", "")) if query.get("subs") else False
    conns = server.leafnodes.registered() if server.leafnodes is not None else []
    leafs = []
    for conn in conns:
        entry: dict[str, Any] = {
            "id": conn.cid,
            "name": conn.remote_name,
            "is_spoke": not conn.is_hub_side,
            "account": conn.account.name,
            "ip": conn.host,
            "port": conn.port,
            "rtt": gotime.format_duration(round(conn.rtt * gotime.NS_PER_S)),
            "in_msgs": conn.in_msgs,
            "out_msgs": conn.out_msgs,
            "in_bytes": conn.in_bytes,
            "out_bytes": conn.out_bytes,
            "subscriptions": len(conn.remote_subs),
        }
        if subs:
            entry["subscriptions_list"] = [
                s.subject.decode(errors="replace") for s in conn.remote_subs.values()
            ]
        entry["compression"] = "not supported"
        if conn.proxy_key:
            entry["proxy"] = {"key": conn.proxy_key}
        leafs.append(entry)
    return {
        "server_id": server.server_id,
        "now": rfc3339_seconds(time.time()),
        "leafnodes": len(leafs),
        "leafs": leafs,
    }


def leaf_varz(server: Server) -> dict[str, Any]:
    """The `leaf` section of /varz: the listener (as a hub) and the remotes (as a leaf)."""
    leafnodes = server.leafnodes
    if leafnodes is None:
        return {}
    opts = leafnodes.options
    out: dict[str, Any] = {}
    if opts.is_enabled():
        out["host"] = opts.host or "0.0.0.0"
        out["port"] = leafnodes.port
        out["auth_timeout"] = leafnodes.auth_timeout
        out["tls_timeout"] = opts.tls.timeout if opts.tls is not None else const.TLS_TIMEOUT_S
    if opts.remotes:
        out["remotes"] = [
            {
                "local_account": remote.account or const.GLOBAL_ACCOUNT,
                "urls": [_route_host_port(u) for u in remote.urls],
            }
            for remote in opts.remotes
        ]
    return out


def healthz(server: Server, query: Query) -> JSONResponse:
    for name in ("js-enabled-only", "js-server-only", "js-meta-only", "details", "js-enabled"):
        parse_bool(query, name)
    if query.get("consumer") and not query.get("stream"):
        return JSONResponse(
            400,
            {
                "status": "error",
                "error": '"stream" must not be empty when checking consumer health',
            },
            compact=True,
        )
    if query.get("stream") and not query.get("account"):
        return JSONResponse(
            400,
            {"status": "error", "error": '"account" must not be empty when checking stream health'},
            compact=True,
        )
    if server.is_shutting_down:
        return JSONResponse(
            500, {"status": "error", "error": "server is shutting down"}, compact=True
        )
    if not parse_bool(query, "js-server-only"):
        for check in server.healthz_checks:
            answer = check(server, query)
            if answer is not None:
                return answer
    return JSONResponse(200, {"status": "ok"}, compact=True)


# -- /accountz, /accstatz ---------------------------------------------------------------------


def sublist_stats(sl: Sublist) -> dict[str, Any]:
    return {
        "num_subscriptions": sl.count,
        "num_cache": len(sl.cache),
        "num_inserts": sl.inserts,
        "num_removes": sl.removes,
        "num_matches": sl.cache_misses,
        "cache_hit_rate": 0,
        "max_fanout": sl.max_fanout,
        "avg_fanout": sl.avg_fanout(),
    }


def account_detail(server: Server, account: Account) -> dict[str, Any]:
    cfg = account.config
    detail: dict[str, Any] = {
        "account_name": account.name,
        "update_time": rfc3339_seconds(server.config_load_time),
        "is_system": account.is_system,
        "expired": False,
        "complete": True,
        "jetstream_enabled": account.jetstream is not None,
        "leafnode_connections": 0,
        "client_connections": len(account.clients),
        "subscriptions": account.subscription_count(),
    }
    if not detail["is_system"]:
        del detail["is_system"]
    if account.exports:
        detail["exports"] = [
            {
                "subject": e.subject,
                "type": e.kind,
                **({"approved_accounts": e.accounts} if e.accounts else {}),
                **({"response_type": e.response_type} if e.kind == "service" else {}),
            }
            for e in account.exports
        ]
    if cfg is not None and cfg.imports:
        detail["imports"] = [
            {
                "subject": i.subject,
                "account": i.account,
                "to": i.to or i.prefix,
                "type": i.kind,
                "invalid": False,
                "share": False,
                "tracking": False,
            }
            for i in cfg.imports
        ]
    detail["name_tag"] = account.name
    detail["sublist_stats"] = sublist_stats(account.sublist)
    return detail


def accountz(server: Server, query: Query) -> dict[str, Any]:
    result: dict[str, Any] = {"server_id": server.server_id, "now": rfc3339_seconds(time.time())}
    if server.system_account is not None:
        result["system_account"] = server.system_account.name
    name = query.get("acc", "")
    if name:
        account = server.accounts.get(name)
        if account is None:
            raise BadRequest(f"Account {name} does not exist")
        result["account_detail"] = account_detail(server, account)
    else:
        result["accounts"] = list(server.accounts)
    return result


def account_stat(account: Account) -> dict[str, Any]:
    """One account's entry in /accstatz (and in `$SYS` account events): traffic since start,
    of the clients connected now and of those gone."""
    in_msgs, in_bytes, out_msgs, out_bytes = account.closed_traffic
    for c in account.clients:
        in_msgs += c.in_msgs
        in_bytes += c.in_bytes
        out_msgs += c.out_msgs
        out_bytes += c.out_bytes
    return {
        "acc": account.name,
        "name": account.name,
        "conns": len(account.clients),
        "leafnodes": 0,
        "total_conns": len(account.clients),
        "num_subscriptions": account.subscription_count(),
        "sent": _traffic(out_msgs, out_bytes),
        "received": _traffic(in_msgs, in_bytes),
        "slow_consumers": 0,
    }


def _traffic(msgs: int, nbytes: int) -> dict[str, Any]:
    """nats-server's DataStats: the total, then the part of it by other servers' links
    (none counted apart yet: clients' traffic is all of it)."""
    nothing = {"msgs": 0, "bytes": 0}
    return {
        "msgs": msgs,
        "bytes": nbytes,
        "gateways": dict(nothing),
        "routes": dict(nothing),
        "leafs": dict(nothing),
    }


def accstatz(server: Server, query: Query) -> dict[str, Any]:
    include_unused = parse_bool(query, "unused")
    stats = [account_stat(acc) for acc in server.accounts.values() if include_unused or acc.clients]
    return {
        "server_id": server.server_id,
        "now": rfc3339_seconds(time.time()),
        "account_statz": stats,
    }


INDEX_LINKS = [
    ("varz", "General"),
    ("jsz", "JetStream"),
    ("connz", "Connections"),
    ("accountz", "Accounts"),
    ("accstatz", "Account Stats"),
    ("subsz", "Subscriptions"),
    ("routez", "Routes"),
    ("leafz", "LeafNodes"),
    ("gatewayz", "Gateways"),
    ("healthz", "Health Probe"),
]


def index_page(server: Server) -> str:
    links = "\n".join(
        f'    <a href=./{path}>{title}<span class="endpoint"> /{path}</span></a>'
        for path, title in INDEX_LINKS
        if path in server.monitor_routes or path in BUILTIN_ROUTES
    )
    dashboard = '    <a href=./dashboard>Dashboard<span class="endpoint"> /dashboard</span></a>'
    return f"""<html lang="en">
  <head>
    <title>pynats monitoring</title>
    <style type="text/css">
      body {{ font-family: ui-sans-serif, system-ui, sans-serif; margin-left: 32px }}
      a {{ display: block; padding-bottom: 6px; color: rgb(72 72 92); text-decoration: none }}
      a:hover {{ font-weight: 600; color: rgb(59 50 202) }}
      .endpoint {{ font-size: 12px; color: #999; font-family: monospace; display: none }}
      a:hover .endpoint {{ display: inline }}
    </style>
  </head>
  <body>
    <h1>NATS server (pynats v{PYNATS_VERSION})</h1>
    <p>nats-server feature level v{const.NATS_FEATURE_VERSION}</p>
{links}
{dashboard}
    <a href=https://docs.nats.io/running-a-nats-service/nats_admin/monitoring>Help</a>
  </body>
</html>
"""


def jsz_disabled(server: Server, query: Query) -> dict[str, Any]:
    """/jsz when JetStream is off (JetStream registers the real one when it is on)."""
    return {
        "memory": 0,
        "storage": 0,
        "reserved_memory": 0,
        "reserved_storage": 0,
        "accounts": 0,
        "ha_assets": 0,
        "api": {"level": 0, "total": 0, "errors": 0},
        "server_id": server.server_id,
        "now": rfc3339_seconds(time.time()),
        "disabled": True,
        "config": {"max_memory": 0, "max_storage": 0},
        "streams": 0,
        "consumers": 0,
        "messages": 0,
        "bytes": 0,
        "total": 0,
    }


BUILTIN_ROUTES: dict[str, MonitorHandler] = {
    "jsz": jsz_disabled,
    "varz": varz,
    "connz": connz,
    "subsz": subsz,
    "subscriptionsz": subsz,
    "routez": routez,
    "gatewayz": gatewayz,
    "leafz": leafz,
    "healthz": healthz,
    "accountz": accountz,
    "accstatz": accstatz,
}
