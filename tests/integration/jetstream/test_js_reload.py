"""JetStream switched on and off by a reload (SIGHUP), and what a reload may change of
`jetstream {}`, differential: nats-server 2.15.1 and pynats run the same files and reloads, and
must log the same lines and answer the same.

What nats-server does (reload.go's diffOptions and applyOptions, established on the wire):
- `Reloaded: JetStream` comes after the leaf node lines; once every `Reloaded:` line is
  logged JetStream starts (`Restarting JetStream`, the banner, the streams restored) or stops
  (`Initiating JetStream Shutdown...`, `JetStream Shutdown`), then `Reloaded server
  configuration`.
- Switched off, its `$JS.API` requests are not answered at all (its service imports stay),
  stream subjects have no responders, /jsz is a server's without JetStream, /healthz is ok;
  switched on again, file streams and their consumers come back, memory streams do not.
- /varz over HTTP is built on the first request and updated afterwards: `jetstream.config`
  shows only if JetStream ran at the first request, and switched off the section stays as
  the last request saw it.
- Other `jetstream {}` settings are refused with the name of nats-server's Options field, in
  its order; larger `max_mem`/`max_file` (`Reloaded: JetStream max_mem_store = ...`) and
  `limits {}` (`Reloaded: JetStream limits`) are taken; an account's `jetstream` switched on
  restores its streams, switched off answers 10039.
"""

from __future__ import annotations

import json
import re
import signal
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from tests.conftest import connect
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

DONE = re.compile(r"Reloaded server configuration|Failed to reload")
PREFIX = re.compile(r"^\[\d+\] \S+ \S+ ")
# what differs between the two servers and is not the reload's: times, sizes of the dynamic
# configuration (free memory and disk), the API level, the file's digest
VARIABLE = (
    (re.compile(r"Took \S+ to start JetStream"), "Took <t> to start JetStream"),
    (re.compile(r"(messages for stream '[^']*' in) \S+"), r"\1 <t>"),
    (re.compile(r"(Max (Memory|Storage): +)\S+ \S+$"), r"\1<size>"),
    (re.compile(r"(API Level: +)\d+"), r"\1<n>"),
    (re.compile(r"\(sha256:[0-9a-f]+\)"), "(<digest>)"),
)
# nats-server's OCSP response cache goes to the store directory; it warns about it on a reload
# whose store directory is not usable (pynats has no such cache there). A leaf remote's dial
# errors come when they come.
NOT_COMPARED = ("Can't restart OCSP features", "Error trying to connect as leafnode")
GB = 1000**3


def line_text(line: str, root: Path) -> str:
    text = PREFIX.sub("", line).replace(str(root), "<dir>").rstrip()
    for pattern, replacement in VARIABLE:
        text = pattern.sub(replacement, text)
    return text


class Side:
    """One server of a differential pair, its configuration file and its reloads."""

    def __init__(self, oracle: bool, root: Path, text: str) -> None:
        self.oracle = oracle
        self.dir = root / ("go" if oracle else "ours")
        self.dir.mkdir()
        self.conf = self.dir / "server.conf"
        self.write(text)
        self.srv: RunningServer = start_server(["-c", str(self.conf)], oracle=oracle, http_port=-1)

    def write(self, text: str) -> None:
        self.conf.write_text(text.replace("<dir>", str(self.dir)))

    async def reload(self, text: str) -> list[str]:
        """The log lines of a reload of `text`, from the signal to its outcome."""
        start = len(self.srv.log_lines)
        self.write(text)
        self.srv.signal(signal.SIGHUP)
        await wait_until(
            lambda: any(DONE.search(line) for line in self.srv.log_lines[start:]),
            timeout=10,
            what="the reload's outcome",
            explain=self.srv.log_text,
        )
        lines = [line_text(line, self.dir) for line in self.srv.log_lines[start:]]
        return [
            line
            for line in lines
            if "Trapped" not in line and not any(skip in line for skip in NOT_COMPARED)
        ]

    def http(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.srv.monitor_url + path, timeout=5) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def stop(self) -> None:
        self.srv.stop()
        assert not any("Traceback" in line for line in self.srv.log_lines), self.srv.log_text()


Scenario = Callable[[Side], Awaitable[dict[str, Any]]]


async def both(tmp_path: Path, text: str, scenario: Scenario) -> tuple[dict[str, Any], ...]:
    """Run `scenario` on nats-server, then on pynats, each started with `text`."""
    results = []
    for oracle in (True, False):
        side = Side(oracle, tmp_path, text)
        try:
            results.append(await scenario(side))
        finally:
            side.stop()
    return tuple(results)


async def request(nc: nats.NATS, subject: str, body: Any = None) -> Any:
    """A `$JS.API` answer (parsed), or what came instead: `timeout`, `no responders`."""
    payload = b"" if body is None else json.dumps(body).encode()
    try:
        msg = await nc.request(subject, payload, timeout=0.5)
    except nats.errors.NoRespondersError:
        return "no responders"
    except nats.errors.TimeoutError:
        return "timeout"
    return json.loads(msg.data)


def error_of(answer: Any) -> Any:
    return answer.get("error") if isinstance(answer, dict) else answer


NO_JS = "server_name: s1\n"
FILE_JS = 'server_name: s1\njetstream { store_dir: "<dir>/js" }\n'


async def test_switched_on_off_and_on_again_keeps_every_acknowledged_message(
    tmp_path: Path,
) -> None:
    async def scenario(side: Side) -> dict[str, Any]:
        out: dict[str, Any] = {"varz_before": side.http("/varz")[1]["jetstream"]}
        out["on"] = await side.reload(FILE_JS)
        nc = await connect(side.srv.url)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s.>"])
        await js.add_stream(name="M", subjects=["m.>"], storage="memory")
        acked = [(await js.publish(f"s.{i}", b"x" * i)).seq for i in range(20)]
        await js.publish("m.1", b"in memory")
        psub = await js.pull_subscribe("s.>", durable="C", stream="S")
        for msg in await psub.fetch(5, timeout=2):
            await msg.ack_sync()
        out["varz_on"] = sorted(side.http("/varz")[1]["jetstream"])
        out["off"] = await side.reload(NO_JS)
        out["api_off"] = await request(nc, "$JS.API.INFO")
        out["stream_info_off"] = await request(nc, "$JS.API.STREAM.INFO.S")
        out["publish_off"] = await request(nc, "s.1", "x")
        out["healthz_off"] = side.http("/healthz")
        jsz = side.http("/jsz")[1]
        out["jsz_off"] = {k: v for k, v in jsz.items() if k not in ("server_id", "now")}
        out["varz_off"] = sorted(side.http("/varz")[1]["jetstream"])
        out["again"] = await side.reload(FILE_JS)
        info = await js.stream_info("S")
        out["messages"] = (info.state.messages, info.state.first_seq, info.state.last_seq)
        out["acked"] = (len(acked), acked[0], acked[-1])
        consumer = await js.consumer_info("S", "C")
        out["consumer"] = (consumer.ack_floor.stream_seq, consumer.num_pending)
        out["memory_stream"] = error_of(await request(nc, "$JS.API.STREAM.INFO.M"))
        out["publish_again"] = (await js.publish("s.x", b"after")).seq
        out["varz_again"] = sorted(side.http("/varz")[1]["jetstream"])
        await nc.close()
        return out

    go, ours = await both(tmp_path, NO_JS, scenario)
    for key in go:
        assert ours[key] == go[key], key
    assert go["on"][2:5] == [
        "[INF] Reloaded: JetStream",
        "[INF] Restarting JetStream",
        "[INF] Starting JetStream",
    ]
    assert go["off"] == [
        "[INF] Reloaded: authorization users",
        "[INF] Reloaded: accounts",
        "[INF] Reloaded: JetStream",
        "[INF] Initiating JetStream Shutdown...",
        "[INF] JetStream Shutdown",
        "[INF] Reloaded server configuration (<digest>)",
    ]
    assert "[INF]   Restored 20 messages for stream '$G > S' in <t>" in go["again"]
    assert "[INF]   Recovering 1 consumers for stream - '$G > S'" in go["again"]
    assert go["api_off"] == "timeout" and go["publish_off"] == "no responders"
    assert go["messages"] == (20, 1, 20) and go["consumer"] == (5, 15)
    assert go["memory_stream"]["err_code"] == 10059
    assert go["jsz_off"]["disabled"] is True and go["healthz_off"][0] == 200
    # /varz was first asked without JetStream: its `config` never shows
    assert go["varz_on"] == go["varz_off"] == ["limits", "stats"]


async def test_varz_of_a_jetstream_switched_off_before_any_request(tmp_path: Path) -> None:
    async def scenario(side: Side) -> dict[str, Any]:
        out: dict[str, Any] = {"off": await side.reload(NO_JS)}
        out["varz_off"] = side.http("/varz")[1]["jetstream"]
        out["on"] = await side.reload(FILE_JS)
        out["varz_on"] = sorted(side.http("/varz")[1]["jetstream"])
        out["off_again"] = await side.reload(NO_JS)
        varz = side.http("/varz")[1]["jetstream"]
        out["varz_off_again"] = sorted(varz)
        out["varz_stats_accounts"] = varz["stats"]["accounts"]
        return out

    go, ours = await both(tmp_path, FILE_JS, scenario)
    assert ours == go
    assert go["varz_off"] == {} and go["varz_on"] == go["varz_off_again"] == ["limits", "stats"]


async def test_a_store_directory_that_cannot_be_used_leaves_jetstream_off(tmp_path: Path) -> None:
    bad = 'server_name: s1\njetstream { store_dir: "<dir>/afile" }\n'

    async def scenario(side: Side) -> dict[str, Any]:
        (side.dir / "afile").write_text("not a directory")
        out: dict[str, Any] = {"failed": await side.reload(bad)}
        nc = await connect(side.srv.url)
        out["api_failed"] = await request(nc, "$JS.API.INFO")
        out["again"] = await side.reload(bad)  # still wanted, not running: tried again
        out["fixed"] = await side.reload(FILE_JS)
        out["api_fixed"] = sorted(await request(nc, "$JS.API.INFO"))
        await nc.close()
        return out

    go, ours = await both(tmp_path, NO_JS, scenario)
    assert ours == go
    assert go["failed"][-4:] == [
        "[WRN] Can't start JetStream: storage directory is not a directory",
        "[INF] Initiating JetStream Shutdown...",
        "[INF] JetStream Shutdown",
        "[INF] Reloaded server configuration (<digest>)",
    ]
    assert go["api_failed"] == "no responders"


SIZES = 'server_name: s1\njetstream {{ store_dir: "<dir>/js", max_mem: {}, max_file: {}{} }}\n'
BASE = SIZES.format("1G", "2G", "")
NAMED = "server_name: s1\n"
LEAF = 'leafnodes { remotes: [ { url: "nats://127.0.0.1:1" } ] }\n'


async def test_larger_sizes_and_limits_are_taken(tmp_path: Path) -> None:
    limits = ", limits { max_ack_pending: 100, max_request_batch: 10 }"

    async def scenario(side: Side) -> dict[str, Any]:
        out: dict[str, Any] = {}
        grown = SIZES.format("3G", "4G", limits)
        out["grown"] = await side.reload(f"{grown}{LEAF}debug: true\nmax_payload: 2000\n")
        varz = side.http("/varz")[1]["jetstream"]
        out["varz"] = (varz["config"]["max_memory"], varz["config"]["max_storage"], varz["limits"])
        out["smaller"] = await side.reload(BASE)
        out["off_grown"] = await side.reload(SIZES.format("5G", "5G", ", enabled: false"))
        out["on"] = [line for line in await side.reload(BASE) if "Max " in line]
        return out

    go, ours = await both(tmp_path, f"{BASE}{LEAF}", scenario)
    assert ours == go
    assert go["grown"][:8] == [
        "[INF] Reloaded: debug = true",
        "[INF] Reloaded: authorization users",
        "[INF] Reloaded: accounts",
        "[INF] Reloaded: max_payload = 2000",
        "[INF] Reloaded: cluster",
        "[INF] Reloaded: JetStream max_mem_store = 2.79 GB",
        "[INF] Reloaded: JetStream max_file_store = 3.73 GB",
        "[INF] Reloaded: JetStream limits",
    ]
    assert go["varz"][:2] == (3 * GB, 4 * GB)
    assert go["smaller"][-1].endswith("for decreasing jetstream max memory and store")


# Refused while JetStream runs with explicit sizes (each leaves the server as it was).
REFUSED = {
    "store_dir": (
        f'{NAMED}jetstream {{ store_dir: "<dir>/js2", max_mem: 1G, max_file: 2G }}',
        "storage directory",
    ),
    "store_dir_dropped": (f"{NAMED}jetstream {{ max_mem: 1G, max_file: 2G }}", "storage dir"),
    "smaller": (SIZES.format("512M", "2G", ""), "decreasing jetstream max memory and store"),
    "size_dropped": (
        f'{NAMED}jetstream {{ store_dir: "<dir>/js", max_file: 2G }}',
        "max memory and max store",
    ),
    "strict": (
        SIZES.format("1G", "2G", ", strict: false"),
        "NoJetStreamStrict: old=false, new=true",
    ),
    "domain": (SIZES.format("1G", "2G", ", domain: d"), "JetStreamDomain: old=, new=d"),
    "key": (SIZES.format("1G", "2G", ', key: "s3cr3t"'), "JetStreamKey: old=, new=s3cr3t"),
    "unique_tag": (SIZES.format("1G", "2G", ", unique_tag: az"), "JetStreamUniqueTag"),
    "catchup": (SIZES.format("1G", "2G", ", max_outstanding_catchup: 1M"), "JetStreamMaxCatchup"),
    "request_queue": (SIZES.format("1G", "2G", ", request_queue_limit: 10"), "old=10000, new=10"),
    "info_queue": (SIZES.format("1G", "2G", ", info_queue_limit: 10"), "JetStreamInfoQueueLimit"),
    "buffered_msgs": (SIZES.format("1G", "2G", ", max_buffered_msgs: 10"), "StreamMaxBufferedMsgs"),
    "buffered_size": (SIZES.format("1G", "2G", ", max_buffered_size: 1M"), "StreamMaxBufferedSize"),
    "sync_interval": (SIZES.format("1G", "2G", ', sync_interval: "10s"'), "old=2m0s, new=10s"),
    "sync_always": (SIZES.format("1G", "2G", ", sync_interval: always"), "SyncAlways"),
    "domain_switched_off": (SIZES.format("1G", "2G", ", domain: d, enabled: false"), "Domain"),
    "first_of_several": (
        SIZES.format("1G", "2G", ', sync_interval: "1s", domain: d, strict: false'),
        "NoJetStreamStrict",
    ),
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("js_reload_refused")
    go = Side(True, root, BASE)
    try:
        ours = Side(False, root, BASE)
    except Exception:
        go.stop()
        raise
    yield go, ours
    go.stop()
    ours.stop()


@pytest.mark.parametrize("change, text", REFUSED.values(), ids=REFUSED.keys())
async def test_refused_changes_are_refused_with_nats_servers_text(
    pair: tuple[Side, Side], change: str, text: str
) -> None:
    go, ours = pair
    go_lines = await go.reload(change)
    assert await ours.reload(change) == go_lines
    assert go_lines[-1].startswith("[ERR] Failed to reload server configuration: config reload")
    assert text in go_lines[-1]


async def test_sizes_where_there_were_none_are_refused(tmp_path: Path) -> None:
    async def scenario(side: Side) -> dict[str, Any]:
        return {
            "mem": await side.reload(SIZES.format("1G", "-1", "")),
            "file": await side.reload(SIZES.format("-1", "1G", "")),
        }

    go, ours = await both(tmp_path, FILE_JS, scenario)
    assert ours == go
    assert go["mem"][-1].endswith("for jetstream dynamic max memory and store")


ACCOUNTS = """server_name: s1
jetstream {{ store_dir: "<dir>/js" }}
accounts {{
  A {{ users: [{{user: a, password: a}}], {a} }}
  B {{ users: [{{user: b, password: b}}], {b} }}
}}
"""


async def test_accounts_jetstream_follows_the_file(tmp_path: Path) -> None:
    a_only = ACCOUNTS.format(a="jetstream: enabled", b="")
    b_only = ACCOUNTS.format(a="", b="jetstream: { max_mem: 1M, max_file: 10M }")

    async def scenario(side: Side) -> dict[str, Any]:
        out: dict[str, Any] = {}
        a = await connect(side.srv.url, user="a", password="a")
        b = await connect(side.srv.url, user="b", password="b")
        await a.jetstream().add_stream(name="S", subjects=["s.>"])
        for _ in range(3):
            await a.jetstream().publish("s.x", b"x")
        out["b_before"] = error_of(await request(b, "$JS.API.INFO"))
        out["switched"] = await side.reload(b_only)
        out["a_off"] = error_of(await request(a, "$JS.API.INFO"))
        out["a_stream_off"] = error_of(await request(a, "$JS.API.STREAM.INFO.S"))
        out["a_publish_off"] = await request(a, "s.x", "x")
        out["b_on"] = (await request(b, "$JS.API.INFO"))["limits"]
        out["back"] = await side.reload(a_only)
        out["a_back"] = (await a.jetstream().stream_info("S")).state.messages
        out["b_back"] = error_of(await request(b, "$JS.API.INFO"))
        await a.close()
        await b.close()
        return out

    go, ours = await both(tmp_path, a_only, scenario)
    assert ours == go
    assert go["a_off"]["err_code"] == 10039 and go["a_publish_off"] == "no responders"
    assert go["b_on"]["max_memory"] == 1_000_000
    assert "[INF]   Restored 3 messages for stream 'A > S' in <t>" in go["back"]
    assert go["a_back"] == 3


B_ONLY = """server_name: s1
jetstream { store_dir: "<dir>/js" }
accounts { B { users: [{user: b, password: b}], jetstream: enabled } }
"""


async def test_an_account_added_by_a_reload_recovers_its_streams(tmp_path: Path) -> None:
    """An account that is not in the file at start-up, added by a reload with `jetstream:
    enabled`, gets the streams it left in the store directory in an earlier run."""
    with_a = ACCOUNTS.format(a="jetstream: enabled", b="jetstream: enabled")

    async def scenario(side: Side) -> dict[str, Any]:
        out: dict[str, Any] = {}
        side.srv.stop()  # the earlier run: A's stream on disk
        side.write(with_a)
        side.srv = start_server(["-c", str(side.conf)], oracle=side.oracle)
        a = await connect(side.srv.url, user="a", password="a")
        await a.jetstream().add_stream(name="S", subjects=["s.>"])
        for _ in range(3):
            await a.jetstream().publish("s.x", b"x")
        await a.close()
        side.srv.stop()
        side.write(B_ONLY)  # this run starts without A
        side.srv = start_server(["-c", str(side.conf)], oracle=side.oracle)
        out["added"] = await side.reload(with_a)
        a = await connect(side.srv.url, user="a", password="a")
        out["a_messages"] = (await a.jetstream().stream_info("S")).state.messages
        out["a_names"] = (await request(a, "$JS.API.STREAM.NAMES"))["streams"]
        await a.close()
        return out

    go, ours = await both(tmp_path, B_ONLY, scenario)
    assert go["a_messages"] == 3 and go["a_names"] == ["S"]
    assert ours == go
