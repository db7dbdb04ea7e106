"""Message tracing (ADR-41) against pynats and the Go nats-server side by side.

Each case publishes one message with `Nats-Trace-Dest` to both servers (same config file) and
compares the trace event documents with the volatile parts masked: timestamps, the server's
id/version/sequence/time, and connection ids (named after the test's connections). Egress
events are compared as a set (the order subscribers are visited in is not specified). The
`nats trace` command is run against both servers and its output compared the same way.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
import pytest_asyncio
from tests.support.servers import RunningServer, start_server

from pynats.server.msgtrace import snappy_frame

CONFIG = """
server_name: S1
jetstream {{ store_dir: "{store}" }}
accounts {{
  A {{ users [{{user: a, password: a}}]
      exports [{{stream: "exp.>"}}, {{service: "svc.>"}}]
      jetstream: enabled
      msg_trace: {{dest: "acc.trace", sampling: 100}}
      mappings {{ "map.in": "map.out" }}
  }}
  B {{ users [{{user: b, password: b}}]
      imports [
        {{stream: {{account: A, subject: "exp.>"}}, prefix: "imp"}}
        {{service: {{account: A, subject: "svc.>"}}, to: "bsvc.>"}}
      ]
  }}
}}
"""
KINDS = ("go", "pynats")
WAIT_S = 0.5


async def on_both(path: Path, session: Callable[[RunningServer], Awaitable[Any]]) -> dict[str, Any]:
    """`session` on each server started with the config file `path`: kind -> its result."""
    results = {}
    for kind in KINDS:
        srv = start_server(["-c", str(path)], oracle=kind == "go")
        try:
            results[kind] = await session(srv)
        finally:
            srv.stop()
    return results


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, RunningServer]]:
    started: dict[str, RunningServer] = {}
    try:
        for kind in KINDS:
            base = Path(tmp_path_factory.mktemp(f"trace-{kind}"))
            path = base / "server.conf"
            path.write_text(CONFIG.format(store=base / "js"))
            started[kind] = start_server(["-c", str(path)], oracle=kind == "go")
        yield started
    finally:
        for srv in started.values():
            srv.stop()


class Side:
    """The connections of one server: `a` and `b` (accounts A and B), `quiet` (A, no echo)."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.conns: dict[str, Any] = {}

    async def open(self) -> None:
        port = self.server.port
        self.conns["a"] = await nats.connect(f"nats://a:a@127.0.0.1:{port}")
        self.conns["b"] = await nats.connect(f"nats://b:b@127.0.0.1:{port}")
        self.conns["quiet"] = await nats.connect(f"nats://a:a@127.0.0.1:{port}", no_echo=True)
        js = self.conns["a"].jetstream()
        await js.add_stream(name="S", subjects=["js.>"])
        await js.add_stream(name="I", subjects=["int.>"], retention="interest")

    async def close(self) -> None:
        for nc in self.conns.values():
            await nc.close()

    def names(self) -> dict[int, str]:
        return {nc._client_id: name for name, nc in self.conns.items()}

    async def trace(
        self,
        publisher: str,
        subject: str,
        headers: dict[str, str] | None = None,
        subscribe: list[tuple[str, str, str | None]] | None = None,
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """Publish with a trace destination; the trace events (decoded) and what the
        subscribers `(conn, subject, queue)` received."""
        got: list[tuple[str, str]] = []
        subs = []
        for conn, subj, queue in subscribe or []:

            async def cb(msg: Any, conn: str = conn) -> None:
                if not msg.subject.startswith("_INBOX."):  # the trace event itself
                    got.append((conn, msg.subject))

            nc = self.conns[conn]
            subs.append(await nc.subscribe(subj, queue=queue or "", cb=cb))
            await nc.flush()
        pub = self.conns[publisher]
        hdrs = {"X-Test": "1"}
        if headers and "traceparent" in headers:
            dest = "acc.trace"  # account A's msg_trace destination
        else:
            dest = pub.new_inbox()
            hdrs["Nats-Trace-Dest"] = dest
        tsub = await pub.subscribe(dest)
        await pub.flush()
        hdrs.update(headers or {})
        await pub.publish(subject, b"hello", headers=hdrs)
        await pub.flush()
        events = []
        try:
            while True:
                msg = await tsub.next_msg(timeout=WAIT_S)
                data = msg.data
                encoding = (msg.headers or {}).get("Content-Encoding")
                if encoding == "gzip":
                    data = gzip.decompress(data)
                events.append(self.mask(json.loads(data), dest, encoding))
        except nats.errors.TimeoutError:
            pass
        for sub in subs:
            await sub.unsubscribe()
        await tsub.unsubscribe()
        return events, sorted(got)

    def mask(self, event: dict[str, Any], dest: str, encoding: str | None) -> dict[str, Any]:
        names = self.names()
        server = event["server"]
        event["server"] = {k: server[k] for k in ("name", "host", "jetstream")}
        event["encoding"] = encoding
        header = event["request"].get("header", {})
        if header.get("Nats-Trace-Dest") == [dest]:
            header["Nats-Trace-Dest"] = ["<inbox>"]
        for item in event["events"]:
            item["ts"] = "<ts>" if item.get("ts") else item.get("ts")
            if "cid" in item:
                item["cid"] = names.get(item["cid"], "<other>")
        egress = [e for e in event["events"] if e["type"] == "eg"]
        others = [e for e in event["events"] if e["type"] != "eg"]
        event["events"] = others + sorted(egress, key=lambda e: json.dumps(e, sort_keys=True))
        return event


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sides(servers: dict[str, RunningServer]) -> AsyncIterator[dict[str, Side]]:
    opened = {kind: Side(srv) for kind, srv in servers.items()}
    for side in opened.values():
        await side.open()
    yield opened
    for side in opened.values():
        await side.close()


SAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
NOT_SAMPLED = SAMPLED[:-2] + "00"
NO_EVENT = {
    "traceparent_not_sampled",
    "traceparent_invalid",
    "traceparent_in_account_without_msg_trace",
}

CASES: dict[str, tuple[str, str, dict[str, str], list[tuple[str, str, str | None]]]] = {
    "plain": ("a", "foo", {}, [("a", "foo", None)]),
    "trace_only": ("a", "foo", {"Nats-Trace-Only": "true"}, [("a", "foo", None)]),
    "trace_only_1": ("a", "foo", {"Nats-Trace-Only": "1"}, [("b", "foo", None)]),
    "two_subscribers": ("a", "foo", {}, [("a", "foo", None), ("b", "foo", None)]),
    "wildcard": ("a", "foo.bar", {}, [("a", "foo.*", None), ("quiet", ">", None)]),
    "queue": ("a", "qq", {}, [("a", "qq", "g")]),
    "queue_only": ("a", "qq", {"Nats-Trace-Only": "on"}, [("a", "qq", "g")]),
    "no_subscriber": ("a", "nobody", {}, []),
    "no_echo": ("quiet", "foo", {}, [("quiet", "foo", None), ("a", "foo", None)]),
    "jetstream": ("a", "js.x", {}, []),
    "jetstream_only": ("a", "js.y", {"Nats-Trace-Only": "true"}, []),
    "jetstream_no_interest": ("a", "int.x", {}, []),
    "jetstream_no_interest_only": ("a", "int.y", {"Nats-Trace-Only": "true"}, []),
    "stream_export": ("a", "exp.x", {}, [("b", "imp.exp.x", None)]),
    "stream_export_only": ("a", "exp.y", {"Nats-Trace-Only": "true"}, [("b", "imp.exp.>", None)]),
    "service_import": ("b", "bsvc.x", {}, [("a", "svc.x", None)]),
    "service_import_only": ("b", "bsvc.y", {"Nats-Trace-Only": "1"}, [("a", "svc.>", None)]),
    "mapping": ("a", "map.in", {}, [("a", "map.out", None)]),
    "mapping_only": ("a", "map.in", {"Nats-Trace-Only": "1"}, [("a", "map.out", None)]),
    "gzip": ("a", "foo", {"Accept-Encoding": "gzip"}, [("a", "foo", None)]),
    "traceparent_sampled": ("a", "foo", {"traceparent": SAMPLED}, [("a", "foo", None)]),
    "traceparent_not_sampled": ("a", "foo", {"traceparent": NOT_SAMPLED}, [("a", "foo", None)]),
    "traceparent_invalid": ("a", "foo", {"traceparent": "garbage"}, [("a", "foo", None)]),
    "traceparent_ignores_trace_only": (
        "a",
        "foo",
        {"traceparent": SAMPLED, "Nats-Trace-Only": "true"},
        [("b", "foo", None), ("a", "foo", None)],
    ),
    "traceparent_in_account_without_msg_trace": (
        "b",
        "foo",
        {"traceparent": SAMPLED},
        [("b", "foo", None)],
    ),
}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", sorted(CASES))
async def test_trace_events_match_nats_server(sides: dict[str, Side], case: str) -> None:
    publisher, subject, headers, subscribe = CASES[case]
    results = {}
    for kind, side in sides.items():
        results[kind] = await side.trace(publisher, subject, headers, subscribe)
    assert results["pynats"] == results["go"]
    events, _ = results["go"]
    assert len(events) == (0 if case in NO_EVENT else 1)


@pytest.mark.asyncio(loop_scope="module")
async def test_jetstream_trace_only_stores_nothing(sides: dict[str, Side]) -> None:
    for side in sides.values():
        js = side.conns["a"].jetstream()
        await js.purge_stream("S")
        await side.trace("a", "js.only", {"Nats-Trace-Only": "true"})
        await side.trace("a", "js.stored", {})
        info = await js.stream_info("S")
        assert info.state.messages == 1


@pytest.mark.asyncio(loop_scope="module")
async def test_service_import_request_crosses_with_trace_disabled(sides: dict[str, Side]) -> None:
    for side in sides.values():
        a, b = side.conns["a"], side.conns["b"]
        sub = await a.subscribe("svc.hdr")
        await a.flush()
        await b.flush()
        msg = None
        for _ in range(5):  # until the import's interest is in place
            await b.publish("bsvc.hdr", b"x", headers={"Nats-Trace-Dest": "nowhere"})
            await b.flush()
            try:
                msg = await sub.next_msg(timeout=1)
                break
            except nats.errors.TimeoutError:
                continue
        assert msg is not None, side.server
        assert msg.headers["Nats-Trace-Dest"] == "trace disabled"
        await sub.unsubscribe()


# -- the CLI ---------------------------------------------------------------------------------

CLI_MASKS = [
    (re.compile(r"cid:\d+"), "cid:N"),
    (re.compile(r'version:"[^"]*"'), 'version:"V"'),
    (re.compile(r"Client \"NATS CLI Version [^\"]*\""), 'Client "NATS CLI"'),
    (re.compile(r"\[[^\]]*\] "), "[T] "),
]


def run_cli(server: RunningServer, tmp: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
    env.update(HOME=str(tmp), XDG_CONFIG_HOME=str(tmp / ".config"))
    proc = subprocess.run(
        [sys.executable, "-m", "pynats.cli", "-s", f"nats://a:a@127.0.0.1:{server.port}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    for pattern, replacement in CLI_MASKS:
        text = pattern.sub(replacement, text)
    return text


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    "args",
    [
        ("trace", "foo"),
        ("trace", "js.cli", "--deliver", "-T"),
        ("trace", "exp.cli", "body", "-H", "X-A:1"),
        ("trace", "svc.cli"),
        ("trace", "map.in", "--deliver"),
    ],
    ids=["subscriber", "jetstream", "stream_export", "queue", "mapping"],
)
async def test_cli_trace_output_matches(
    sides: dict[str, Side], tmp_path: Path, args: tuple[str, ...]
) -> None:
    outputs = {}
    for kind, side in sides.items():
        a, b = side.conns["a"], side.conns["b"]
        subs = [
            await a.subscribe("foo"),
            await b.subscribe("imp.exp.cli"),
            await a.subscribe("svc.cli", queue="workers"),
            await a.subscribe("map.out"),
        ]
        await a.flush()
        await b.flush()
        outputs[kind] = await asyncio.to_thread(run_cli, side.server, tmp_path, *args)
        for sub in subs:
            await sub.unsubscribe()
    assert outputs["pynats"] == outputs["go"]
    assert outputs["go"].startswith(f"Tracing message route to subject {args[1]} ")
    assert (
        "Legend: Client: --C Router: --> Gateway: ==> Leafnode: ~~> JetStream: --J"
        in (outputs["go"])
    )


# -- the account's msg_trace block -----------------------------------------------------------

CONFIG_SNIPPETS = [
    'msg_trace: {dest: "acc.trace", sampling: 50}',
    'msg_trace: {Dest: "ok", SAMPLING: "25%"}',
    'msg_trace: "acc.trace"',
    'trace_dest: "x.y"',
    'trace_dest: "a.*"',
    'msg_trace: {dest: "a.*", sampling: 50}',
    'msg_trace: {dest: "ok", sampling: 101}',
    'msg_trace: {dest: "ok", sampling: 0}',
    'msg_trace: {dest: "ok", sampling: "abc"}',
    'msg_trace: {dest: "ok", sampling: 50.5}',
    'msg_trace: {dest: "ok", sampling: true}',
    "msg_trace: {sampling: 20}",
    "msg_trace: 5",
    "msg_trace: {dest: 5}",
    'msg_trace: {dest: "ok", bogus: 1}',
]


@pytest.mark.parametrize("snippet", CONFIG_SNIPPETS)
def test_msg_trace_config_checks_match_nats_server(tmp_path: Path, snippet: str) -> None:
    from tests.support.servers import oracle_server_path, pynats_server_command

    path = tmp_path / "t.conf"
    path.write_text(f"accounts {{ A {{ users [{{user: a, password: a}}]\n {snippet} }}}}\n")
    outputs = []
    for cmd in ([oracle_server_path()], pynats_server_command()):
        proc = subprocess.run(
            [*cmd, "-t", "-c", str(path)], capture_output=True, text=True, timeout=30
        )
        outputs.append((proc.returncode, (proc.stdout + proc.stderr).splitlines()[:1]))
    assert outputs[1] == outputs[0]


def test_snappy_framing_is_the_snappy_stream_format() -> None:
    """What `Accept-Encoding: snappy` gets (natscli asks for it): the stream identifier, then
    uncompressed chunks with their masked CRC-32C (checked against the spec's test vector)."""
    from pynats.server.msgtrace import _crc32c, _masked_crc

    assert _crc32c(b"123456789") == 0xE3069283
    data = b"x" * 70000
    framed = snappy_frame(data)
    assert framed[:10] == b"\xff\x06\x00\x00sNaPpY"
    pos, out = 10, b""
    while pos < len(framed):
        kind, size = framed[pos], int.from_bytes(framed[pos + 1 : pos + 4], "little")
        body = framed[pos + 4 : pos + 4 + size]
        assert kind == 0x01
        assert body[:4] == _masked_crc(body[4:])
        out += body[4:]
        pos += 4 + size
    assert out == data


# -- permissions -------------------------------------------------------------------------------

PERMISSIONS = """
authorization {{ users [
  {{user: p, password: p, permissions: {{
      publish: {{allow: [{allowed}]}}, subscribe: {{allow: ">", deny: ["secret.>"]}}}}}}
  {{user: s, password: s}}
] }}
"""


async def _permission_trace(server: RunningServer) -> tuple[list[Any], list[str]]:
    errors: list[str] = []

    async def on_error(exc: Exception) -> None:
        errors.append(str(exc))

    url = f"127.0.0.1:{server.port}"
    p = await nats.connect(f"nats://p:p@{url}", error_cb=on_error)
    s = await nats.connect(f"nats://s:s@{url}")
    try:
        tsub = await s.subscribe("t.out")
        received = await s.subscribe("ok.>")
        await p.subscribe(">")
        await s.flush()
        await p.flush()
        events = []
        for pub, subject in ((p, "nope.x"), (s, "secret.x"), (p, "ok.x")):
            await pub.publish(subject, b"x", headers={"Nats-Trace-Dest": "t.out"})
            await pub.flush()
            try:
                msg = await tsub.next_msg(timeout=WAIT_S)
            except nats.errors.TimeoutError:
                events.append(None)
                continue
            items = json.loads(msg.data)["events"]
            for item in items:
                item.pop("ts")
                item.pop("cid")
            events.append(items)
        await asyncio.sleep(0.2)
        delivered = received.pending_msgs
        return events, [*errors, f"delivered {delivered}"]
    finally:
        await p.close()
        await s.close()


@pytest.mark.parametrize("allowed", ['"ok.>", "t.out"', '"ok.>"'], ids=["dest_allowed", "denied"])
async def test_permission_errors_match_nats_server(tmp_path: Path, allowed: str) -> None:
    path = tmp_path / "perm.conf"
    path.write_text(PERMISSIONS.format(allowed=allowed))
    results = await on_both(path, _permission_trace)
    assert results["pynats"] == results["go"]
    events, errors = results["go"]
    assert (events[0] is None) == (allowed == '"ok.>"')
    assert errors[-1] == ("delivered 0" if allowed == '"ok.>"' else "delivered 1")


# -- JetStream refusals: the `js` event's error, in nats-server's words -----------------------

BIG = "h" * 70000
# case: (stream config, publishes (subject token, headers, reply suffix)); each case has its
# own stream, named after it, on subjects `<case>.>`; the reply `$FI` ones are fast batches.
JS_CASES: dict[str, tuple[dict[str, Any], list[tuple[str, dict[str, str], str]]]] = {
    "expected_stream": ({}, [("a", {"Nats-Expected-Stream": "X"}, "")]),
    "expected_last_seq": ({}, [("a", {"Nats-Expected-Last-Sequence": "99"}, "")]),
    "expected_last_seq_unreadable": ({}, [("a", {"Nats-Expected-Last-Sequence": "ab"}, "")]),
    "expected_last_subject_seq": ({}, [("a", {"Nats-Expected-Last-Subject-Sequence": "9"}, "")]),
    "expected_last_subject_seq_of": (
        {},
        [
            ("a", {}, ""),
            (
                "a",
                {
                    "Nats-Expected-Last-Subject-Sequence": "5",
                    "Nats-Expected-Last-Subject-Sequence-Subject": "*.*",
                },
                "",
            ),
            ("a", {"Nats-Expected-Last-Subject-Sequence-Subject": "*.*"}, ""),
        ],
    ),
    "expected_last_msg_id": ({}, [("a", {"Nats-Expected-Last-Msg-Id": "zz"}, "")]),
    "duplicate": ({}, [("a", {"Nats-Msg-Id": "m"}, ""), ("a", {"Nats-Msg-Id": "m"}, "")]),
    "rollup_not_permitted": ({}, [("a", {"Nats-Rollup": "sub"}, "")]),
    "rollup_invalid": ({"allow_rollup_hdrs": True}, [("a", {"Nats-Rollup": "bogus"}, "")]),
    "ttl_disabled": ({}, [("a", {"Nats-TTL": "1s"}, "")]),
    "ttl_invalid": ({"allow_msg_ttl": True}, [("a", {"Nats-TTL": "500ms"}, "")]),
    "ttl_invalid_and_disabled": ({}, [("a", {"Nats-TTL": "bogus"}, "")]),
    "counter_disabled": ({}, [("a", {"Nats-Incr": "1"}, "")]),
    "counter_errors": (
        {"allow_msg_counter": True},
        [("a", {}, ""), ("a", {"Nats-Incr": "x"}, ""), ("a", {"Nats-Incr": "1"}, "")],
    ),
    "atomic_disabled": ({}, [("a", {"Nats-Batch-Id": "b", "Nats-Batch-Sequence": "1"}, "")]),
    "atomic_batch": (  # one message each: which one nats-server names varies in longer ones
        {"allow_atomic": True},
        [
            ("a", {"Nats-Batch-Id": "b", "Nats-Batch-Sequence": "1"}, ""),
            (
                "b",
                {"Nats-Batch-Id": "b", "Nats-Batch-Sequence": "2", "Nats-Batch-Commit": "eob"},
                "",
            ),
            ("c", {"Nats-Batch-Id": "c", "Nats-Batch-Sequence": "1", "Nats-Batch-Commit": "1"}, ""),
            ("d", {"Nats-Batch-Id": "d", "Nats-Batch-Sequence": "1", "Nats-Msg-Id": "1"}, ""),
            (
                "e",
                {
                    "Nats-Batch-Id": "d",
                    "Nats-Batch-Sequence": "2",
                    "Nats-Batch-Commit": "1",
                    "Nats-Msg-Id": "1",
                },
                "",
            ),
        ],
    ),
    "atomic_refused": (
        {"allow_atomic": True},
        [
            ("a", {"Nats-Batch-Id": "b", "Nats-Batch-Sequence": "2"}, ""),
            ("a", {"Nats-Batch-Id": "b"}, ""),
            ("a", {"Nats-Batch-Id": "x" * 65, "Nats-Batch-Sequence": "1"}, ""),
            ("a", {"Nats-Batch-Id": "c", "Nats-Batch-Sequence": "1", "Nats-Batch-Commit": "x"}, ""),
            (
                "a",
                {"Nats-Batch-Id": "d", "Nats-Batch-Sequence": "1", "Nats-Expected-Stream": "Q"},
                "",
            ),
            ("a", {"Nats-Batch-Id": "d", "Nats-Batch-Sequence": "2", "Nats-Batch-Commit": "1"}, ""),
        ],
    ),
    "schedules_disabled": (
        {},
        [("a", {"Nats-Schedule": "@every 1s", "Nats-Schedule-Target": "x.y"}, "")],
    ),
    "schedule_refused": (
        {"allow_msg_schedules": True},
        [
            ("a", {"Nats-Schedule": "bogus", "Nats-Schedule-Target": "schedule_refused.b"}, ""),
            ("a", {"Nats-Schedule": "@every 1s"}, ""),
            ("a", {"Nats-Scheduler": "nope"}, ""),
        ],
    ),
    "discard_new_max_msgs": ({"max_msgs": 1, "discard": "new"}, [("a", {}, ""), ("b", {}, "")]),
    "discard_new_max_bytes": ({"max_bytes": 100, "discard": "new"}, [("a", {"X": "x" * 150}, "")]),
    "discard_new_per_subject": (
        {"max_msgs_per_subject": 1, "discard": "new", "discard_new_per_subject": True},
        [("a", {}, ""), ("a", {}, "")],
    ),
    "too_large": ({"max_msg_size": 10}, [("a", {}, "")]),
    "header_too_large": ({}, [("a", {"X-Big": BIG}, "")]),
    "sealed": ({"sealed": True}, [("a", {}, "")]),
    "source_header": ({}, [("a", {"Nats-Stream-Source": "x"}, "")]),
    "transform": (
        {"subject_transform": {"src": "transform.>", "dest": "moved.>"}},
        [("a", {}, "")],
    ),
    "fast_disabled": ({}, [("a", {}, "b.10.fail.1.0")]),
    "fast_batch": (
        {"allow_batched": True},
        [
            ("a", {}, "b.10.fail.1.0"),
            ("b", {"Nats-Expected-Stream": "Q"}, "b.10.fail.2.1"),
            ("c", {}, "b.10.fail.3.1"),
            ("a", {}, "c.10.ok.1.0"),
            ("b", {}, "c.10.ok.3.1"),
            ("b", {}, "c.10.ok.3.4"),
            ("b", {}, "c.10.ok.5.4"),
            ("b", {}, "c.10.ok.2.1"),
            ("a", {}, "d.10.fail.1.0"),
            ("b", {}, "d.10.fail.2.3"),
            ("a", {}, "e.10.fail.1.0"),
            ("b", {}, "e.10.fail.2.2"),
        ],
    ),
    "fast_too_large": ({"allow_batched": True, "max_msg_size": 10}, [("a", {}, "b.10.fail.1.0")]),
}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("case", sorted(JS_CASES))
async def test_jetstream_refusal_events_match_nats_server(
    sides: dict[str, Side], case: str
) -> None:
    config, publishes = JS_CASES[case]
    results: dict[str, list[Any]] = {}
    for kind, side in sides.items():
        nc = side.conns["a"]
        body = {"name": case, "subjects": [f"{case}.>"], **config}
        body.pop("sealed", None)
        reply = await nc.request(f"$JS.API.STREAM.CREATE.{case}", json.dumps(body).encode())
        assert b'"error"' not in reply.data, reply.data
        if config.get("sealed"):
            body["sealed"] = True
            await nc.request(f"$JS.API.STREAM.UPDATE.{case}", json.dumps(body).encode())
        tsub = await nc.subscribe("js.trace.out")
        inbox = nc.new_inbox()
        answers = await nc.subscribe(inbox + ".>")
        await nc.flush()
        events: list[Any] = []
        try:
            for token, headers, fast in publishes:
                to = f"{inbox}.{fast}.$FI" if fast else f"{inbox}.pub"
                hdrs = {"Nats-Trace-Dest": "js.trace.out", **headers}
                await nc.publish(f"{case}.{token}", b"hello", reply=to, headers=hdrs)
                await nc.flush()
                try:
                    msg = await tsub.next_msg(timeout=WAIT_S)
                except nats.errors.TimeoutError:
                    events.append(None)  # nats-server sends no event for it
                    continue
                event = side.mask(json.loads(msg.data), "js.trace.out", None)
                events.append(event["events"])
        finally:
            await tsub.unsubscribe()
            await answers.unsubscribe()
            await nc.request(f"$JS.API.STREAM.DELETE.{case}", b"")
        results[kind] = events
    assert results["pynats"] == results["go"]
    assert any(e is not None for e in results["go"])


# -- allow_trace: a traced request goes on being traced in the exporting account --------------

ALLOW_TRACE = """
accounts {{
  A {{ users [{{user: a, password: a}}]
      exports [{{service: "svc.>"{allow}}}] }}
  B {{ users [{{user: b, password: b}}]
      imports [{{service: {{account: A, subject: "svc.>"}}, to: "bsvc.>"}}] }}
}}
"""


async def _traced_request(server: RunningServer) -> dict[str, Any]:
    url = f"127.0.0.1:{server.port}"
    a = await nats.connect(f"nats://a:a@{url}", name="a")
    b = await nats.connect(f"nats://b:b@{url}", name="b")
    names = {a._client_id: "a", b._client_id: "b"}
    try:
        seen: list[dict[str, str]] = []

        async def respond(msg: Any) -> None:
            seen.append(dict(msg.headers or {}))
            await msg.respond(b"ok")  # nats-py sends the request's headers back

        await a.subscribe("svc.>", cb=respond)
        await a.flush()
        spy = await a.subscribe("_R_.>")  # where the response's own trace event goes
        await a.flush()
        tsub = await b.subscribe("trace.b")
        inbox = b.new_inbox()
        answers = await b.subscribe(inbox)
        await b.flush()
        await b.publish("bsvc.x", b"q", reply=inbox, headers={"Nats-Trace-Dest": "trace.b"})
        answer = await answers.next_msg(timeout=2)
        event = json.loads((await tsub.next_msg(timeout=2)).data)
        spied = []
        while True:  # the response, and its trace event when it is traced (to the _R_ dest)
            try:
                msg = await spy.next_msg(timeout=WAIT_S)
            except nats.errors.TimeoutError:
                break
            spied.append(json.loads(msg.data)["events"] if msg.data.startswith(b"{") else [])
        for item in [*event["events"], *(e for events in spied for e in events)]:
            item.pop("ts")
            item["cid"] = names.get(item.get("cid", 0), "<other>")
            for key in ("subj", "from", "to"):
                if key in item:
                    item[key] = re.sub(r"^(_R_|_INBOX)\..*", r"\1", item[key])
        with_dest = [{**h, "Nats-Trace-Dest": h["Nats-Trace-Dest"][:4]} for h in seen]
        for h in with_dest:
            h.pop("Nats-Request-Info", None)  # nats-server adds who asked: not traced here
        return {
            "events": event["events"],
            "service_saw": with_dest,
            "answer": answer.headers.get("Nats-Trace-Dest"),
            "response_trace": spied,
        }
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("allow", [False, True], ids=["export_without", "export_allows"])
async def test_allow_trace_service_export_matches_nats_server(tmp_path: Path, allow: bool) -> None:
    path = tmp_path / "allow.conf"
    path.write_text(ALLOW_TRACE.format(allow=", allow_trace: true" if allow else ""))
    results = await on_both(path, _traced_request)
    assert results["pynats"] == results["go"]
    assert results["go"]["service_saw"][0]["Nats-Trace-Dest"] == ("_R_." if allow else "trac")
    assert [e["type"] for e in results["go"]["events"]] == ["in", "si", "eg"][: 3 if allow else 2]


@pytest.mark.parametrize(
    ("exports", "imports"),
    [
        ('{stream: "s.>", allow_trace: true}', '{stream: {account: A, subject: "s.>"}}'),
        ('{service: "s.>"}', '{service: {account: A, subject: "s.>"}, allow_trace: true}'),
        ('{service: "s.>", allow_trace: true}', '{service: {account: A, subject: "s.>"}}'),
        ('{stream: "s.>"}', '{stream: {account: A, subject: "s.>"}, allow_trace: true}'),
    ],
    ids=["stream_export", "service_import", "service_export", "stream_import"],
)
def test_allow_trace_config_checks_match_nats_server(
    tmp_path: Path, exports: str, imports: str
) -> None:
    from tests.support.servers import oracle_server_path, pynats_server_command

    path = tmp_path / "t.conf"
    path.write_text(
        f"accounts {{\n A {{ users [{{user: a, password: a}}]\n exports [{exports}] }}\n"
        f" B {{ users [{{user: b, password: b}}]\n imports [{imports}] }}\n}}\n"
    )
    outputs = []
    for cmd in ([oracle_server_path()], pynats_server_command()):
        proc = subprocess.run(
            [*cmd, "-t", "-c", str(path)], capture_output=True, text=True, timeout=30
        )
        outputs.append((proc.returncode, (proc.stdout + proc.stderr).splitlines()[:1]))
    assert outputs[1] == outputs[0]


# -- allow_trace on a stream import: the importer's subscribers show in the trace ------------

STREAM_TRACE = """
accounts {{
  A {{ users [{{user: a, password: a}}]
      exports [{{stream: "exp.>"}}] }}
  B {{ users [{{user: b, password: b}}]
      imports [{{stream: {{account: A, subject: "exp.>"}}, prefix: "imp"{allow}}}] }}
}}
"""


async def _traced_publish(server: RunningServer) -> list[dict[str, Any]]:
    url = f"127.0.0.1:{server.port}"
    a = await nats.connect(f"nats://a:a@{url}", name="a")
    b = await nats.connect(f"nats://b:b@{url}", name="b")
    names = {a._client_id: "a", b._client_id: "b"}
    try:
        got = await b.subscribe("imp.exp.>")
        own = await a.subscribe("exp.>")
        tsub = await a.subscribe("trace.a")
        await b.flush()
        await a.flush()
        await a.publish("exp.x", b"hi", headers={"Nats-Trace-Dest": "trace.a"})
        assert (await got.next_msg(timeout=2)).subject == "imp.exp.x"
        assert (await own.next_msg(timeout=2)).subject == "exp.x"
        events = json.loads((await tsub.next_msg(timeout=2)).data)["events"]
        for item in events:
            item.pop("ts")
            item["cid"] = names.get(item.get("cid", 0), "<other>")
        return sorted(events, key=lambda e: (e["type"], json.dumps(e, sort_keys=True)))
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("allow", [False, True], ids=["import_without", "import_allows"])
async def test_allow_trace_stream_import_matches_nats_server(tmp_path: Path, allow: bool) -> None:
    path = tmp_path / "stream.conf"
    path.write_text(STREAM_TRACE.format(allow=", allow_trace: true" if allow else ""))
    results = await on_both(path, _traced_publish)
    assert results["pynats"] == results["go"]
    egress = [e for e in results["go"] if e["type"] == "eg"]
    assert len(egress) == (2 if allow else 1)  # the importer's subscriber only when allowed
