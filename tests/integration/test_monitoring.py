"""HTTP monitoring: the endpoints, field names and query parameters tools rely on."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from tests.conftest import connect
from tests.support.servers import RunningServer, start_server


def get(server: RunningServer, path: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(server.monitor_url + path, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def get_json(server: RunningServer, path: str) -> dict[str, Any]:
    status, ctype, body = get(server, path)
    assert status == 200, body
    assert ctype == "application/json"
    return json.loads(body)


def test_varz_identity_limits_and_counters(server: RunningServer) -> None:
    v = get_json(server, "/varz")
    assert v["server_id"].startswith("N")
    assert v["version"].startswith("2.") and v["pynats_version"]
    assert v["port"] == server.port and v["http_port"] == server.http_port
    for key, value in {
        "max_payload": 1048576,
        "max_control_line": 4096,
        "max_pending": 67108864,
        "max_connections": 65536,
        "ping_interval": 120_000_000_000,
        "ping_max": 2,
        "write_deadline": 10_000_000_000,
    }.items():
        assert v[key] == value, key
    for key in (
        "start",
        "now",
        "uptime",
        "mem",
        "cores",
        "cpu",
        "connections",
        "total_connections",
        "in_msgs",
        "out_msgs",
        "in_bytes",
        "out_bytes",
        "slow_consumers",
        "subscriptions",
        "http_req_stats",
        "config_load_time",
    ):
        assert key in v, key
    assert v["now"].endswith("Z") and "T" in v["now"]


async def test_varz_counts_messages_and_bytes(server: RunningServer) -> None:
    before = get_json(server, "/varz")
    nc = await connect(server.url)
    sub = await nc.subscribe("count.me")
    for _ in range(10):
        await nc.publish("count.me", b"12345")
    for _ in range(10):
        await sub.next_msg(1)
    after = get_json(server, "/varz")
    assert after["in_msgs"] - before["in_msgs"] == 10
    assert after["in_bytes"] - before["in_bytes"] == 50
    assert after["out_msgs"] - before["out_msgs"] == 10
    assert after["connections"] == before["connections"] + 1
    assert after["http_req_stats"]["/varz"] >= 2
    await nc.close()


async def test_connz_lists_connections_with_subscriptions(server: RunningServer) -> None:
    nc = await connect(server.url, name="monitored")
    await nc.subscribe("a.b")
    await nc.subscribe("q.>", queue="workers")
    await nc.flush()
    cid = nc._server_info["client_id"]
    c = get_json(server, f"/connz?cid={cid}&subs=detail")
    assert c["num_connections"] == 1 and c["total"] == 1
    conn = c["connections"][0]
    assert conn["cid"] == cid and conn["kind"] == "Client" and conn["type"] == "nats"
    assert conn["name"] == "monitored" and conn["lang"] == "python3"
    assert conn["subscriptions"] == 2
    detail = {d["subject"]: d for d in conn["subscriptions_list_detail"]}
    assert detail["q.>"]["qgroup"] == "workers"
    listed = get_json(server, f"/connz?cid={cid}&subs=1")["connections"][0]
    assert sorted(listed["subscriptions_list"]) == ["a.b", "q.>"]
    await nc.close()
    closed = get_json(server, f"/connz?state=closed&cid={cid}")["connections"][0]
    assert closed["reason"] == "Client Closed" and "stop" in closed


async def test_connz_paging_and_sorting(server: RunningServer) -> None:
    clients = [await connect(server.url) for _ in range(4)]
    for i, nc in enumerate(clients):
        for _ in range(i):
            await nc.subscribe(f"s.{i}.{_}")
        await nc.flush()
    page = get_json(server, "/connz?limit=2&offset=1")
    assert page["limit"] == 2 and page["offset"] == 1 and page["num_connections"] == 2
    assert page["total"] >= 4
    cids = [c["cid"] for c in get_json(server, "/connz")["connections"]]
    assert cids == sorted(cids)
    by_subs = [c["subscriptions"] for c in get_json(server, "/connz?sort=subs")["connections"]]
    assert by_subs == sorted(by_subs, reverse=True)
    for nc in clients:
        await nc.close()


@pytest.mark.parametrize(
    "path,text",
    [
        ("/connz?sort=foo", "invalid sorting option: foo"),
        (
            "/connz?subs=x",
            "Error decoding boolean for 'subs': strconv.ParseBool: parsing \"x\": invalid syntax",
        ),
        ("/connz?sort=stop", "sort by stop only valid on closed connections"),
        ("/connz?limit=abc", "Error decoding int for 'limit'"),
    ],
)
def test_bad_query_values_get_400(server: RunningServer, path: str, text: str) -> None:
    status, ctype, body = get(server, path)
    assert status == 400
    assert ctype.startswith("text/plain")
    assert text in body


async def test_subsz_counts_and_test_filter(server: RunningServer) -> None:
    nc = await connect(server.url)
    await nc.subscribe("orders.*")
    await nc.subscribe("orders.new")
    await nc.subscribe("other")
    await nc.flush()
    s = get_json(server, "/subsz?subs=1&test=orders.new")
    assert s["num_subscriptions"] >= 3
    subjects = sorted(d["subject"] for d in s["subscriptions_list"])
    assert subjects == ["orders.*", "orders.new"]
    for key in (
        "num_cache",
        "num_inserts",
        "num_removes",
        "num_matches",
        "cache_hit_rate",
        "max_fanout",
        "avg_fanout",
    ):
        assert key in s
    await nc.close()


def test_routez_empty_and_healthz_ok(server: RunningServer) -> None:
    r = get_json(server, "/routez")
    assert r["num_routes"] == 0 and r["routes"] == []
    status, _, body = get(server, "/healthz")
    assert status == 200 and body == '{"status":"ok"}'
    status, _, body = get(server, "/healthz?stream=x")
    assert status == 400 and "account" in body


def test_index_page_links_endpoints(server: RunningServer) -> None:
    status, ctype, body = get(server, "/")
    assert status == 200 and ctype.startswith("text/html")
    for path in ("varz", "connz", "subsz", "routez", "healthz"):
        assert f"./{path}" in body
    assert get(server, "/nope")[0] == 404


def test_jsz_reports_disabled_without_jetstream(server: RunningServer) -> None:
    j = get_json(server, "/jsz")
    assert j["disabled"] is True
    assert j["server_id"] and j["config"] == {"max_memory": 0, "max_storage": 0}


@pytest.mark.parametrize("oracle", [False, True], ids=["pynats", "go"])
def test_varz_shows_the_server_metadata(tmp_path, oracle: bool) -> None:
    conf = tmp_path / "server.conf"
    conf.write_text('server_metadata: { env: prod, region: "eu-1" }\n')
    srv = start_server(["-c", str(conf)], oracle=oracle, http_port=-1)
    try:
        with urllib.request.urlopen(srv.monitor_url + "/varz", timeout=5) as response:
            varz = json.loads(response.read())
        assert varz["metadata"] == {"env": "prod", "region": "eu-1"}
    finally:
        srv.stop()
