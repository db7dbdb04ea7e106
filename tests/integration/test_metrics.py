"""`/metrics`: Prometheus text with prometheus-nats-exporter's names, scraped over HTTP and
read with prometheus_client's parser, as Prometheus and the exporter's dashboards read it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from tests.conftest import connect
from tests.support.servers import RunningServer, start_server

from pynats.server import metrics, metrics_jsz

# The series the exporter's NATS dashboards chart (a server, its clients, JetStream).
DASHBOARD_VARZ = (
    "connections",
    "total_connections",
    "in_msgs",
    "out_msgs",
    "in_bytes",
    "out_bytes",
    "slow_consumers",
    "subscriptions",
    "mem",
    "cpu",
    "start",
    "max_connections",
    "max_payload",
    "jetstream_stats_storage",
    "jetstream_stats_memory",
    "jetstream_stats_api_total",
    "jetstream_stats_api_errors",
    "jetstream_config_max_storage",
    "jetstream_config_max_memory",
)


class Scrape:
    """One scrape, parsed: families by name."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def samples(self, name: str) -> list[Sample]:
        return self.families[name].samples

    def value(self, name: str, **labels: str) -> float:
        found = [
            s.value
            for s in self.samples(name)
            if all(s.labels.get(k) == v for k, v in labels.items())
        ]
        assert len(found) == 1, (name, labels, self.samples(name))
        return found[0]


def http_get(server: RunningServer, path: str) -> tuple[str, str]:
    with urllib.request.urlopen(server.monitor_url + path, timeout=5) as resp:
        assert resp.status == 200
        return resp.headers["Content-Type"], resp.read().decode()


def scrape(server: RunningServer) -> Scrape:
    ctype, body = http_get(server, "/metrics")
    assert ctype.startswith("text/plain; version=0.0.4")
    return Scrape(body)


def get_json(server: RunningServer, path: str) -> dict[str, Any]:
    return json.loads(http_get(server, path)[1])


@pytest.fixture
def js_server(tmp_path: Path) -> Iterator[RunningServer]:
    srv = start_server(["-js", "-sd", str(tmp_path / "js")], http_port=-1)
    yield srv
    srv.stop()


async def add_traffic(server: RunningServer) -> None:
    """A stream `ORDERS` with 5 messages and a pull consumer `worker` holding 2 unacked."""
    nc = await connect(server.url)
    js = nc.jetstream()
    await js.add_stream(name="ORDERS", subjects=["orders.>"])
    for i in range(5):
        await js.publish(f"orders.{i % 2}", b"order")
    sub = await js.pull_subscribe("orders.>", durable="worker")
    assert len(await sub.fetch(2, timeout=2)) == 2
    await nc.close()


async def test_connections_and_messages_move_the_server_series(server: RunningServer) -> None:
    before = scrape(server)
    server_id = get_json(server, "/varz")["server_id"]
    publisher = await connect(server.url)
    receiver = await connect(server.url)
    sub = await receiver.subscribe("metrics.test")
    await receiver.flush()
    for _ in range(10):
        await publisher.publish("metrics.test", b"12345")
    for _ in range(10):
        await sub.next_msg(2)
    during = scrape(server)

    def grew(name: str) -> float:
        return during.value(name, server_id=server_id) - before.value(name, server_id=server_id)

    assert grew("gnatsd_varz_connections") == 2
    assert grew("gnatsd_varz_total_connections") == 2
    assert grew("gnatsd_varz_in_msgs") == 10
    assert grew("gnatsd_varz_in_bytes") == 50
    assert grew("gnatsd_varz_out_msgs") == 10
    assert grew("gnatsd_connz_num_connections") == 2
    assert grew("gnatsd_connz_in_msgs") == 10
    assert during.value("gnatsd_connz_subscriptions") >= 1
    in_msgs = during.families["gnatsd_varz_in_msgs"]
    assert (in_msgs.type, in_msgs.documentation) == ("gauge", "in_msgs")
    assert during.samples("gnatsd_varz_server_name")[0].labels["value"]
    assert during.value("gnatsd_varz_http_req_stats_metrics") >= 2
    assert during.value("gnatsd_healthz_status") == 0
    assert during.value("gnatsd_healthz_status_value", value="ok") == 1
    assert during.value("gnatsd_leafz_conn_nodes_total") == 0
    assert during.value("gnatsd_routez_num_routes") == 0
    assert during.value("gnatsd_subsz_num_subscriptions") >= 1
    assert during.value("jetstream_server_jetstream_disabled") == 1
    await publisher.close()
    await receiver.close()
    after = scrape(server)
    assert after.value("gnatsd_varz_connections") == before.value("gnatsd_varz_connections")


async def test_stream_messages_and_consumer_pending(js_server: RunningServer) -> None:
    await add_traffic(js_server)
    m = scrape(js_server)
    stream = {"account": "$G", "stream_name": "ORDERS", "is_stream_leader": "true"}
    consumer = {**stream, "consumer_name": "worker"}
    assert m.value("jetstream_server_jetstream_disabled") == 0
    assert m.value("jetstream_server_total_streams") == 1
    assert m.value("jetstream_server_total_consumers") == 1
    assert m.value("jetstream_server_total_messages") == 5
    assert m.value("jetstream_stream_total_messages", **stream) == 5
    assert m.value("jetstream_stream_first_seq", **stream) == 1
    assert m.value("jetstream_stream_last_seq", **stream) == 5
    assert m.value("jetstream_stream_subject_count", **stream) == 2
    assert m.value("jetstream_stream_consumer_count", **stream) == 1
    assert m.value("jetstream_stream_limit_messages", **stream) == -1
    assert m.value("jetstream_consumer_num_pending", **consumer) == 3
    assert m.value("jetstream_consumer_num_ack_pending", **consumer) == 2
    assert m.value("jetstream_consumer_delivered_stream_seq", **consumer) == 2
    assert m.value("jetstream_consumer_ack_floor_stream_seq", **consumer) == 0
    assert m.value("jetstream_consumer_last_delivery_seconds", **consumer) >= 0
    assert m.value("jetstream_account_storage_used", account="$G") > 0
    pending = m.families["jetstream_consumer_num_pending"]
    assert pending.documentation == "Number of pending messages from a consumer"


async def test_the_numbers_are_those_of_varz_and_jsz(js_server: RunningServer) -> None:
    await add_traffic(js_server)
    m = scrape(js_server)
    varz = get_json(js_server, "/varz")
    jsz = get_json(js_server, "/jsz?consumers=true&config=true")
    changing = {"mem", "cpu", "now"}
    for key, value in varz.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in changing:
            assert m.value(f"gnatsd_varz_{key}") == value, key
    for section in ("config", "stats"):
        for key, value in varz["jetstream"][section].items():
            if isinstance(value, int) and not isinstance(value, bool):
                assert m.value(f"gnatsd_varz_jetstream_{section}_{key}") == value, key
    for series, field in (
        ("total_streams", "streams"),
        ("total_consumers", "consumers"),
        ("total_messages", "messages"),
        ("total_message_bytes", "bytes"),
    ):
        assert m.value(f"jetstream_server_{series}") == jsz[field]
    stream = jsz["account_details"][0]["stream_detail"][0]
    assert m.value("jetstream_stream_total_bytes") == stream["state"]["bytes"]
    consumer = stream["consumer_detail"][0]
    assert m.value("jetstream_consumer_num_pending") == consumer["num_pending"]
    assert (
        m.value("jetstream_consumer_delivered_consumer_seq")
        == (consumer["delivered"]["consumer_seq"])
    )


def exporter_view(server: RunningServer) -> metrics.Families:
    """What prometheus-nats-exporter makes of `server`'s JSON endpoints (fetched over HTTP)."""
    families = metrics.Families()
    varz = get_json(server, "/varz")
    sid = varz["server_id"]
    metrics.add_generic(families, "varz", varz, sid)
    metrics.add_connz(families, get_json(server, "/connz"), sid)
    metrics.add_leafz(families, get_json(server, "/leafz"), sid)
    jsz = get_json(server, "/jsz?consumers=true&config=true&raft=true")
    metrics_jsz.add_jetstream(families, jsz, varz, sid)
    return families


def label_sets(families: list[Any]) -> dict[str, set[tuple[str, ...]]]:
    return {f.name: {tuple(sorted(s.labels)) for s in f.samples} for f in families}


def stored_state(families: list[Any]) -> dict[tuple[str, str, str], float]:
    """The stream and consumer series that only the traffic decides, by stream and consumer."""
    return {
        (f.name, s.labels["stream_name"], s.labels.get("consumer_name", "")): s.value
        for f in families
        if f.name.startswith(("jetstream_stream_", "jetstream_consumer_"))
        and not f.name.endswith("_seconds")
        for s in f.samples
    }


async def test_same_series_as_the_exporter_in_front_of_nats_server(
    js_server: RunningServer, tmp_path: Path
) -> None:
    go = start_server(["-js", "-sd", str(tmp_path / "go")], oracle=True, http_port=-1)
    try:
        await add_traffic(go)
        await add_traffic(js_server)
        their_families = exporter_view(go).sorted()
    finally:
        go.stop()
    our_families = list(scrape(js_server).families.values())
    state = stored_state(our_families)
    assert state[("jetstream_consumer_num_pending", "ORDERS", "worker")] == 3
    assert state == stored_state(their_families)
    theirs, ours = label_sets(their_families), label_sets(our_families)
    compared = ("jetstream_", "gnatsd_connz_", "gnatsd_leafz_")
    assert {n: v for n, v in theirs.items() if n.startswith(compared)} == {
        n: v for n, v in ours.items() if n.startswith(compared)
    }
    for field in DASHBOARD_VARZ:
        name = f"gnatsd_varz_{field}"
        assert name in theirs and name in ours, name
