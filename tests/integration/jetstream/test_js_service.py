"""JetStream on the server: start-up banner, INFO, account info, /jsz, /varz, /healthz, and
per-account JetStream from the `accounts {}` block."""

from __future__ import annotations

import re

import pytest
from tests.conftest import connect
from tests.integration.jetstream.conftest import api, error_of, http_json
from tests.support.servers import RunningServer, start_server

BANNER_ORDER = [
    r"\[INF\] Starting JetStream$",
    r"\[INF\]     _ ___ _____ ___ _____ ___ ___   _   __  __$",
    r"\[INF\]  _ \| \| __\|_   _/ __\|_   _\| _ \\ __\| /_\\ \|  \\/  \|$",
    r"\[INF\] \| \|\| \| _\|  \| \| \\__ \\ \| \| \|   / _\| / _ \\\| \|\\/\| \|$",
    r"\[INF\]  \\__/\|___\| \|_\| \|___/ \|_\| \|_\|_\\___/_/ \\_\\_\|  \|_\|$",
    r"\[INF\] $",
    r"\[INF\]          https://docs.nats.io/jetstream$",
    r"\[INF\] $",
    r"\[INF\] ---------------- JETSTREAM ----------------$",
    r"\[INF\]   Strict:          true$",
    r"\[INF\]   Max Memory:      \d+\.\d\d [KMGT]B$",
    r"\[INF\]   Max Storage:     \d+\.\d\d [KMGT]B$",
    r'\[INF\]   Store Directory: ".*/jetstream"$',
    r"\[INF\]   API Level:       4$",
    r"\[INF\] -------------------------------------------$",
    r"\[INF\] Took \S+ to start JetStream$",
    r"\[INF\] Listening for client connections on ",
    r"\[INF\] Server is ready$",
]


def _assert_in_order(lines: list[str], patterns: list[str]) -> None:
    i = 0
    for pattern in patterns:
        rx = re.compile(pattern)
        while i < len(lines) and not rx.search(lines[i]):
            i += 1
        assert i < len(lines), f"missing (in order) {pattern!r} in:\n" + "\n".join(lines)
        i += 1


def test_startup_log_shows_the_jetstream_banner_as_nats_server_does(tmp_path) -> None:
    srv = start_server(["-js", "-sd", str(tmp_path)])
    try:
        _assert_in_order(srv.log_lines, BANNER_ORDER)
        assert f'Store Directory: "{tmp_path}/jetstream"' in srv.log_text()
        assert "Temporary storage directory" not in srv.log_text()
    finally:
        srv.stop()
    assert "Initiating JetStream Shutdown..." in srv.log_text()
    assert "JetStream Shutdown" in srv.log_text()


def test_without_store_dir_the_temp_dir_is_used_with_a_warning(tmp_path) -> None:
    srv = start_server(["-js"], env={"TMPDIR": str(tmp_path)})
    try:
        assert (
            "[WRN] Temporary storage directory used, data could be lost on system reboot"
            in srv.log_text()
        )
        assert f'Store Directory: "{tmp_path}/nats/jetstream"' in srv.log_text()
    finally:
        srv.stop()


def test_config_block_sets_store_dir_limits_domain_and_lazy_sync(tmp_path) -> None:
    conf = tmp_path / "js.conf"
    conf.write_text(
        f'jetstream {{ store_dir: "{tmp_path}/data", max_mem: "1G", max_file: "2G", '
        'domain: "hub", sync_interval: "2m" }\n'
    )
    srv = start_server(["-c", str(conf)], http_port=-1)
    try:
        text = srv.log_text()
        assert "Max Memory:      1.00 GB" in text
        assert "Max Storage:     2.00 GB" in text
        assert f'Store Directory: "{tmp_path}/data/jetstream"' in text
        assert "Domain:          hub" in text
        assert "Sync Interval:   2m0s (lazy)" in text
        assert re.search(r"\[WRN\] JetStream file storage syncs to disk every 2m0s", text)
        cfg = http_json(srv, "/jsz")["config"]
        assert cfg["max_memory"] == 1024**3
        assert cfg["max_storage"] == 2 * 1024**3
        assert cfg["domain"] == "hub"
        assert cfg["sync_interval"] == 120 * 10**9
    finally:
        srv.stop()


@pytest.mark.parametrize("setting", ["sync_interval: always", "sync: always"])
def test_sync_always_shows_in_jsz_and_banner_as_nats_server_does(tmp_path, setting) -> None:
    """A Go config with `sync_interval: always` reports the same on both servers (the banner
    has no sync line; /jsz has `sync_always` and Go's unused 2m interval)."""
    seen = {}
    for kind in ("go", "py"):
        conf = tmp_path / f"{kind}.conf"
        conf.write_text(f'jetstream {{ store_dir: "{tmp_path}/{kind}", {setting} }}\n')
        srv = start_server(["-c", str(conf)], oracle=kind == "go", http_port=-1)
        try:
            cfg = http_json(srv, "/jsz?config=true")["config"]
            lines = srv.log_lines
            start = next(i for i, x in enumerate(lines) if "---- JETSTREAM ----" in x)
            end = next(i for i, x in enumerate(lines) if "Took " in x and "JetStream" in x)
            banner = [x.split("] ", 1)[1].split(":")[0] for x in lines[start:end]]
        finally:
            srv.stop()
        seen[kind] = (cfg.get("sync_interval"), cfg.get("sync_always"), banner)
    assert seen["py"] == seen["go"]
    assert seen["py"][:2] == (120 * 10**9, True)


async def test_info_advertises_jetstream_and_api_level(nc) -> None:
    info = nc._server_info
    assert info["jetstream"] is True
    assert info["api_lvl"] == 4


async def test_account_info_reports_limits_usage_and_api_stats(nc, sname) -> None:
    before = await api(nc, "$JS.API.INFO")
    assert before["type"] == "io.nats.jetstream.api.v1.account_info_response"
    assert before["limits"] == {
        "max_memory": -1,
        "max_storage": -1,
        "max_streams": -1,
        "max_consumers": -1,
        "max_ack_pending": -1,
        "memory_max_stream_bytes": -1,
        "storage_max_stream_bytes": -1,
        "max_bytes_required": False,
    }
    assert before["api"]["level"] == 4
    await api(nc, f"$JS.API.STREAM.CREATE.{sname}", {"name": sname, "max_bytes": 10_000})
    await api(nc, f"$JS.API.STREAM.INFO.{sname}NOPE")
    ack = await nc.request(sname, b"hello", timeout=2)
    assert b'"seq":1' in ack.data
    after = await api(nc, "$JS.API.INFO")
    assert after["streams"] == before["streams"] + 1
    assert after["storage"] == before["storage"] + len(sname) + 5 + 30
    assert after["reserved_storage"] == before["reserved_storage"] + 10_000
    # INFO counts too, once answered (its own answer shows the total before it)
    assert after["api"]["total"] == before["api"]["total"] + 3
    assert after["api"]["errors"] == before["api"]["errors"] + 1


async def test_jsz_shows_accounts_streams_and_config_on_request(js_server, nc, sname) -> None:
    await api(nc, f"$JS.API.STREAM.CREATE.{sname}", {"name": sname, "storage": "memory"})
    await nc.request(sname, b"x", timeout=2)
    plain = http_json(js_server, "/jsz")
    assert plain["streams"] >= 1 and plain["messages"] >= 1
    assert "account_details" not in plain
    assert plain["config"]["store_dir"].endswith("/jetstream")
    accounts = http_json(js_server, "/jsz?accounts=true")
    detail = next(a for a in accounts["account_details"] if a["name"] == "$G")
    assert "stream_detail" not in detail
    streams = http_json(js_server, "/jsz?streams=1")
    detail = next(a for a in streams["account_details"] if a["name"] == "$G")
    mine = next(s for s in detail["stream_detail"] if s["name"] == sname)
    assert mine["state"]["messages"] == 1
    assert "config" not in mine
    with_config = http_json(js_server, "/jsz?streams=1&config=1&consumers=1")
    detail = next(a for a in with_config["account_details"] if a["name"] == "$G")
    mine = next(s for s in detail["stream_detail"] if s["name"] == sname)
    assert mine["config"]["storage"] == "memory"
    one = http_json(js_server, "/jsz?acc=$G")
    assert [a["name"] for a in one["account_details"]] == ["$G"]
    assert "stream_detail" in one["account_details"][0]


def test_jsz_rejects_bad_booleans_as_nats_server_does(js_server) -> None:
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as err:
        http_json(js_server, "/jsz?streams=maybe")
    assert err.value.code == 400
    assert b"Error decoding boolean for 'streams'" in err.value.read()


def test_varz_and_healthz_include_jetstream(js_server) -> None:
    varz = http_json(js_server, "/varz")
    assert varz["jetstream"]["config"]["store_dir"].endswith("/jetstream")
    assert varz["jetstream"]["stats"]["api"]["level"] == 4
    assert http_json(js_server, "/healthz") == {"status": "ok"}
    assert http_json(js_server, "/healthz?js-enabled-only=true") == {"status": "ok"}


def test_healthz_reports_a_missing_stream(js_server) -> None:
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as err:
        http_json(js_server, "/healthz?account=$G&stream=NOPE")
    assert err.value.code == 503
    body = err.value.read()
    assert b'"status":"unavailable"' in body


async def test_accounts_block_enables_jetstream_per_account_with_limits(tmp_path) -> None:
    conf = tmp_path / "acc.conf"
    conf.write_text(
        f'jetstream {{ store_dir: "{tmp_path}" }}\n'
        "accounts {\n"
        "  A: { jetstream: enabled, users: [{user: a, password: a}] }\n"
        "  B: { users: [{user: b, password: b}] }\n"
        "  C: { jetstream: { max_mem: 1M, max_file: 2M, max_streams: 2, max_consumers: 4,\n"
        "       max_bytes_required: true, mem_max_stream_bytes: 500, disk_max_stream_bytes: 600 },\n"
        "       users: [{user: c, password: c}] }\n"
        "}\n"
    )
    srv = start_server(["-c", str(conf)])
    try:
        a = await connect(srv.url, user="a", password="a")
        b = await connect(srv.url, user="b", password="b")
        c = await connect(srv.url, user="c", password="c")
        info_a = await api(a, "$JS.API.INFO")
        assert info_a["limits"]["max_streams"] == -1
        info_b = await api(b, "$JS.API.INFO")
        assert error_of(info_b) == (503, 10039, "JetStream not enabled for account")
        info_c = await api(c, "$JS.API.INFO")
        assert info_c["limits"] == {
            "max_memory": 1_000_000,
            "max_storage": 2_000_000,
            "max_streams": 2,
            "max_consumers": 4,
            "max_ack_pending": -1,
            "memory_max_stream_bytes": 500,
            "storage_max_stream_bytes": 600,
            "max_bytes_required": True,
        }
        r = await api(c, "$JS.API.STREAM.CREATE.X", {"name": "X"})
        assert error_of(r) == (400, 10113, "account requires a stream config to have max bytes set")
        r = await api(c, "$JS.API.STREAM.CREATE.X", {"name": "X", "max_bytes": 700})
        assert error_of(r) == (
            400,
            10122,
            "stream max bytes exceeds account limit max stream bytes",
        )
        for name in ("X", "Y"):
            r = await api(c, f"$JS.API.STREAM.CREATE.{name}", {"name": name, "max_bytes": 600})
            assert "error" not in r
        r = await api(c, "$JS.API.STREAM.CREATE.Z", {"name": "Z", "max_bytes": 600})
        assert error_of(r) == (400, 10027, "maximum number of streams reached")
        # accounts are isolated: A does not see C's streams
        names = await api(a, "$JS.API.STREAM.NAMES")
        assert names["streams"] is None
        for client in (a, b, c):
            await client.close()
    finally:
        srv.stop()


async def test_no_jetstream_means_no_responders(server: RunningServer) -> None:
    import nats.errors

    client = await connect(server.url)
    with pytest.raises(nats.errors.NoRespondersError):
        await client.request("$JS.API.INFO", b"", timeout=2)
    await client.close()


async def test_account_memory_and_storage_limits_refuse_publishes(tmp_path) -> None:
    conf = tmp_path / "lim.conf"
    conf.write_text(
        f'jetstream {{ store_dir: "{tmp_path}" }}\n'
        "accounts { C: { jetstream: { max_mem: 1000, max_file: 1200 },"
        " users: [{user: c, password: c}] } }\n"
    )
    srv = start_server(["-c", str(conf)])
    try:
        c = await connect(srv.url, user="c", password="c")
        for name, storage in (("M", "memory"), ("F", "file")):
            r = await api(c, f"$JS.API.STREAM.CREATE.{name}", {"name": name, "storage": storage})
            assert "error" not in r
            acks = [await c.request(name, b"x" * 400, timeout=2) for _ in range(3)]
            assert [b'"seq":%d' % i in a.data for i, a in enumerate(acks[:2], 1)] == [True, True]
            assert b'"err_code":10002' in acks[2].data
            assert b"resource limits exceeded for account" in acks[2].data
        r = await api(c, "$JS.API.STREAM.CREATE.G", {"name": "G", "max_bytes": 2000})
        assert error_of(r) == (500, 10047, "insufficient storage resources available")
        await c.close()
    finally:
        srv.stop()


async def test_strict_false_accepts_unknown_request_fields(tmp_path) -> None:
    conf = tmp_path / "lax.conf"
    conf.write_text(f'jetstream {{ store_dir: "{tmp_path}", strict: false }}\n')
    srv = start_server(["-c", str(conf)])
    try:
        assert "Strict:          false" in srv.log_text()
        nc = await connect(srv.url)
        r = await api(nc, "$JS.API.STREAM.CREATE.L", {"name": "L", "from_the_future": 1})
        assert "error" not in r
        r = await api(nc, "$JS.API.STREAM.INFO.L", {"also_new": True})
        assert r["config"]["name"] == "L"
        await nc.close()
    finally:
        srv.stop()
