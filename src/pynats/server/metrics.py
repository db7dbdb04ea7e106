"""`/metrics`: the monitoring endpoints in the Prometheus text format, named as
prometheus-nats-exporter names them, so dashboards built on the exporter in front of
nats-server work against pynats with no exporter at all.

Every scrape reads the same answers the JSON endpoints give (`/varz`, `/connz`, `/routez`,
`/subsz`, `/leafz`, `/healthz`, `/jsz?consumers=true&config=true`) and turns them into
families the way the exporter's collectors do, so a number in /metrics is the number in the
JSON beside it:

- the generic collector (`varz`, `routez`, `subsz`): every number of the answer, nested objects
  flattened with `_` (`/` becomes `_`, no doubled `_`), is a gauge `gnatsd_<endpoint>_<path>`
  whose help text is its own path; of the strings only `server_id`, `server_name`, `version`,
  `domain`, `leader`, `name`, `start` and `config_load_time` are exported: an RFC 3339 time as
  epoch milliseconds, any other as a gauge of 1 carrying it in a `value` label. Booleans and
  lists are left out, and so are the exporter's skipped paths (`leaf`, the cluster's and
  gateway's ports and timeouts).
- `gnatsd_connz_*`: the connection summary (sums over /connz's default page), the exporter's
  `-connz`; `gnatsd_healthz*_status` (0 when healthy) and `..._status_value`; `gnatsd_leafz_*`
  per leaf connection; `jetstream_*` for the server, each account, stream, source, mirror and
  consumer (the exporter's `-jsz=all`), in `metrics_jsz.py`.

`server_id` is the server's own id (the exporter's `-use_internal_server_id`; without it the
exporter labels series with the URL it polls). The exporter types the four connz in/out sums
as counters; here they are untyped, because prometheus_client writes a counter's samples with
a `_total` suffix, which would rename the series the dashboards query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry

from pynats import gotime

from . import metrics_jsz
from .monitor import BUILTIN_ROUTES, JSONResponse, Query

if TYPE_CHECKING:
    from .server import Server

CORE_NAMESPACE = "gnatsd"
# The classic text format, the one the exporter serves and every Prometheus reads; our names
# need none of the newer format's UTF-8 escaping.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The exporter's generic collector: paths it drops, and the only strings it exports.
_SKIPPED_PATHS = frozenset(
    {
        "leaf",
        "trusted_operators_claim",
        "cluster_tls_timeout",
        "cluster_cluster_port",
        "cluster_auth_timeout",
        "gateway_port",
        "gateway_auth_timeout",
        "gateway_tls_timeout",
        "gateway_connect_retries",
    }
)
_LABEL_KEYS = frozenset(
    {"server_id", "server_name", "version", "domain", "leader", "name", "start", "config_load_time"}
)
_VALID_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_GENERIC_ENDPOINTS = ("varz", "routez", "subsz")
# The exporter's three health collectors and the query each sends.
_HEALTHZ_VARIANTS: tuple[tuple[str, Query], ...] = (
    ("healthz", {}),
    ("healthz_js_enabled_only", {"js-enabled-only": "true"}),
    ("healthz_js_server_only", {"js-server-only": "true"}),
)


class Families:
    """The families of one scrape, by name; samples are added as the answers are read."""

    def __init__(self) -> None:
        self._by_name: dict[str, Metric] = {}

    def add(
        self,
        name: str,
        help_text: str,
        labels: Mapping[str, str],
        value: float,
        kind: str = "gauge",
    ) -> None:
        family = self._by_name.get(name)
        if family is None:
            family = self._by_name[name] = Metric(name, help_text, kind)
        family.add_sample(name, dict(labels), float(value))

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def sorted(self) -> list[Metric]:
        """By name, as the Go client's registry writes them."""
        return [self._by_name[name] for name in sorted(self._by_name)]


def endpoint_answer(server: Server, name: str, query: Query) -> dict[str, Any]:
    """What the JSON endpoint `name` answers to `query` (its body for non-200 answers)."""
    handler = server.monitor_routes.get(name) or BUILTIN_ROUTES[name]
    answer = handler(server, dict(query))
    if isinstance(answer, JSONResponse):
        answer = answer.body
    return answer if isinstance(answer, dict) else {}


class ServerCollector(Collector):
    """prometheus_client's view of one server: the families of every scrape, built anew."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def collect(self) -> Iterable[Metric]:
        return collect(self.server).sorted()


def collect(server: Server) -> Families:
    families = Families()
    server_id = server.server_id
    varz_answer: dict[str, Any] = {}
    for endpoint in _GENERIC_ENDPOINTS:
        answer = endpoint_answer(server, endpoint, {})
        if endpoint == "varz":
            varz_answer = answer
        add_generic(families, endpoint, answer, server_id)
    add_connz(families, endpoint_answer(server, "connz", {}), server_id)
    for endpoint, query in _HEALTHZ_VARIANTS:
        add_healthz(families, endpoint, endpoint_answer(server, "healthz", query), server_id)
    add_leafz(families, endpoint_answer(server, "leafz", {}), server_id)
    jsz = endpoint_answer(server, "jsz", metrics_jsz.JSZ_QUERY)
    metrics_jsz.add_jetstream(families, jsz, varz_answer, server_id)
    return families


def add_generic(
    families: Families, endpoint: str, answer: Mapping[str, Any], server_id: str
) -> None:
    """The exporter's generic collector: every number (and a few strings) of `answer`."""
    for path, key, value in _flattened(answer, ()):
        fq_name = _fq_name(path)
        name = f"{CORE_NAMESPACE}_{endpoint}_{fq_name}"
        if fq_name in _SKIPPED_PATHS or name in families or not _VALID_NAME.match(name):
            continue
        labels = {"server_id": server_id}
        if isinstance(value, str):
            if key not in _LABEL_KEYS:
                continue
            epoch_ms = _epoch_ms(value)
            if epoch_ms is None:
                families.add(name, fq_name, {**labels, "value": value}, 1)
                continue
            value = epoch_ms
        families.add(name, fq_name, labels, value)


def _flattened(
    answer: Mapping[str, Any], prefix: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], str, Any]]:
    for key, value in answer.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            if _fq_name(path) not in _SKIPPED_PATHS:
                yield from _flattened(value, path)
        elif isinstance(value, (int, float, str)) and not isinstance(value, bool):
            yield path, key, value


def _fq_name(path: tuple[str, ...]) -> str:
    name = "_".join(path).replace("/", "_").strip("_")
    while "__" in name:
        name = name.replace("__", "_")
    return name


def _epoch_ms(text: str) -> int | None:
    try:
        return gotime.parse_rfc3339(text) // 1_000_000
    except ValueError:
        return None


def add_connz(families: Families, answer: Mapping[str, Any], server_id: str) -> None:
    """The exporter's `-connz`: the page's counts and the sums over its connections."""
    labels = {"server_id": server_id}
    for field in ("num_connections", "total", "offset", "limit"):
        families.add(f"{CORE_NAMESPACE}_connz_{field}", field, labels, answer.get(field, 0))
    conns = answer.get("connections") or []
    for field in ("pending_bytes", "subscriptions"):
        total = sum(c.get(field, 0) for c in conns)
        families.add(f"{CORE_NAMESPACE}_connz_{field}", field, labels, total)
    for field in ("in_bytes", "out_bytes", "in_msgs", "out_msgs"):
        total = sum(c.get(field, 0) for c in conns)
        families.add(f"{CORE_NAMESPACE}_connz_{field}", field, labels, total, "unknown")


def add_healthz(
    families: Families, endpoint: str, answer: Mapping[str, Any], server_id: str
) -> None:
    """`status` is 0 when healthy (the exporter kept it so); `status_value` 1 when healthy."""
    status = answer.get("status", "")
    is_ok = status == "ok"
    name = f"{CORE_NAMESPACE}_{endpoint}"
    families.add(f"{name}_status", "status", {"server_id": server_id}, 0 if is_ok else 1)
    families.add(
        f"{name}_status_value",
        "status",
        {"server_id": server_id, "value": status},
        1 if is_ok else 0,
    )


_LEAF_SERIES = (
    ("conn_in_msgs", "in_msgs"),
    ("conn_out_msgs", "out_msgs"),
    ("conn_in_bytes", "in_bytes"),
    ("conn_out_bytes", "out_bytes"),
)


def add_leafz(families: Families, answer: Mapping[str, Any], server_id: str) -> None:
    """One set of series per leaf connection, and the count (also when there is none)."""
    name = f"{CORE_NAMESPACE}_leafz"
    for leaf in answer.get("leafs") or []:
        account = leaf.get("account", "")
        labels = {
            "server_id": server_id,
            "account": account,
            "account_id": account,
            "ip": leaf.get("ip", ""),
            "port": str(leaf.get("port", 0)),
            "name": leaf.get("name", ""),
        }
        families.add(f"{name}_info", "info", labels, 1)
        try:
            rtt_s = gotime.parse_duration(leaf.get("rtt", "")) / gotime.NS_PER_S
        except ValueError:
            rtt_s = 0.0
        families.add(f"{name}_conn_rtt", "rtt", labels, rtt_s)
        for series, field in _LEAF_SERIES:
            families.add(f"{name}_{series}", field, labels, leaf.get(field, 0))
        families.add(
            f"{name}_conn_subscriptions_total",
            "subscriptions_total",
            labels,
            leaf.get("subscriptions", 0),
        )
    families.add(
        f"{name}_conn_nodes_total",
        "nodes_total",
        {"server_id": server_id},
        answer.get("leafnodes", 0),
    )


class MetricsEndpoint:
    """The registry behind one server's `/metrics`: its families and this process's."""

    def __init__(self, server: Server) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(ServerCollector(server))
        self.registry.register(ProcessCollector(registry=None))

    def render(self) -> bytes:
        return generate_latest(self.registry)
