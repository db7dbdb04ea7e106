#!/usr/bin/env python3
"""JetStream: pynats and the Go nats-server side by side, in one run.

Scenarios (`--scenarios`, all by default):

- `publish`: one publisher on a raw socket sends PUBs (128 B by default) on the stream's
  subject, each with the same reply subject, keeping at most `--window` messages
  unacknowledged (pipelined, as `nats bench js pub` does with async publishing). The number
  is acks received per second over the measured window.
- `consume`: `--consume-msgs` messages are stored first; then one client pulls them through
  a durable pull consumer with explicit acks (two `MSG.NEXT` requests of `--pull-batch`
  outstanding, every message acked with a plain `+ACK` as it arrives). The number is
  messages received per second from the first to the last.
- `kv-put`: puts into a KV bucket (the stream nats-py creates for `create_key_value`),
  1000 keys in turn, pipelined like `publish`; acks per second.
- `kv-get`: 1000 keys stored, then one client asks for them one at a time with a direct get
  on the key subject (what `kv.get()` sends); the latency percentiles of the round trip.
- `fast-ingest`: one fast-ingest batch (`allow_batched`, ADR-50) as nats.js' fast publisher
  sends it: the first message waits for the first flow ack, then at most `--outstanding` ack
  intervals (of an initial `--flow`) are in flight; an EOB commit must count every message.
  Batch sequences acknowledged per second.

Four pairs (`memory,lazy,sync` by default):

| pair     | Go                                         | pynats                                      |
|----------|--------------------------------------------|---------------------------------------------|
| memory   | `storage: memory`                          | `storage: memory`                           |
| lazy     | file, `jetstream {sync_interval: "2m"}`    | file, `jetstream {sync_interval: "2m"}`     |
| sync     | file, `jetstream {sync_interval: always}`  | file, default (fsync before ack, grouped)   |
| always   | file, `jetstream {sync_interval: always}`  | file, `jetstream {sync_interval: always}`   |

Both servers get the same `-c` configuration file except in the `sync` pair, where pynats
runs its default. Stores live in a fresh temporary directory per run.

    .venv/bin/python benchmarks/jetstream.py [--go PATH] [--pairs memory,lazy,sync,always]
        [--scenarios publish,consume,kv-put,kv-get,fast-ingest] [--duration 3] [--warmup 1]
        [--size 128] [--window 4096] [--consume-msgs 200000] [--pull-batch 500]
        [--gets 3000] [--flow 500] [--outstanding 2] [--repeat 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import CONNECT, HOST
from servers import RunningServer as _Running
from servers import ServerSpec, default_go_path, go_spec, pynats_spec

STREAM = "BENCH"
SUBJECT = b"bench.js"
ACK_SUBJECT = b"bench.ack"
PAIRS = ("memory", "lazy", "sync")  # the default; "always" is the fourth
ALL_PAIRS = (*PAIRS, "always")
SCENARIOS = ("publish", "consume", "kv-put", "kv-get", "fast-ingest")
FI_SUBJECT = b"bench.fi"
FI_BATCH_ID = b"fastbench"
FI_ACK = re.compile(rb'\{"type":"ack","seq":(\d+),"msgs":(\d+)\}')
FI_FINAL = re.compile(rb'"batch":"fastbench","count":(\d+)\}')

CONSUMER = "C"
INBOX = b"_bench.inbox"
BUCKET = "B"
KV_KEYS = 1000


@dataclass
class Run:
    server: str
    pair: str
    rate: float  # messages per second; for kv-get the p50 latency in microseconds
    errors: int
    p99: float = 0.0  # kv-get only


class JsServer(_Running):
    """A server with JetStream on, its store in a temporary directory."""

    def __init__(self, spec: ServerSpec, pair: str) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="js-bench-")
        store = os.path.join(self.tmp.name, "store")
        conf = os.path.join(self.tmp.name, "js.conf")
        block = f'store_dir: "{store}"'
        if pair == "lazy":
            block += ', sync_interval: "2m"'
        elif pair == "always" or (pair == "sync" and spec.name == "go"):
            block += ", sync_interval: always"
        with open(conf, "w") as f:
            f.write(f"jetstream {{ {block} }}\n")
        super().__init__(ServerSpec(spec.name, (*spec.command, "-c", conf)))

    def stop(self) -> None:
        super().stop()
        self.tmp.cleanup()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection((HOST, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.recv(65536)  # INFO
    sock.sendall(CONNECT.replace(b'"headers":false', b'"headers":true') + b"PING\r\n")
    buf = b""
    while b"PONG" not in buf:
        buf += sock.recv(65536)
    return sock


def request(sock: socket.socket, subject: str, body: bytes) -> bytes:
    sock.sendall(
        b"SUB _bench.reply 99\r\nPUB %b _bench.reply %d\r\n%b\r\n"
        % (subject.encode(), len(body), body)
    )
    buf = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        buf += sock.recv(65536)
        i = buf.find(b"MSG _bench.reply")
        if i >= 0:
            head_end = buf.find(b"\r\n", i)
            if head_end < 0:
                continue
            size = int(buf[i:head_end].split()[-1])
            if len(buf) >= head_end + 2 + size:
                sock.sendall(b"UNSUB 99\r\n")
                return buf[head_end + 2 : head_end + 2 + size]
    raise RuntimeError(f"no reply to {subject}: {buf[-300:]!r}")


def publish_with_acks(
    port: int,
    size: int,
    window: int,
    warmup: float,
    duration: float,
    subjects: list[bytes] | None = None,
    total: int = 0,
) -> Run:
    """Pipelined publishes with acks for `duration` (or until `total` are acked)."""
    sock = connect(port)
    sock.sendall(b"SUB %b 1\r\n" % ACK_SUBJECT)
    payload = b"x" * size
    chunk_msgs = max(1, min(window // 4, 512))
    subjects = subjects or [SUBJECT]
    # chunks that walk through every subject in turn (KV: every key gets written)
    count = max(chunk_msgs, len(subjects))
    count += (-count) % chunk_msgs
    frames = [
        b"PUB %b %b %d\r\n%b\r\n" % (subjects[i % len(subjects)], ACK_SUBJECT, size, payload)
        for i in range(count)
    ]
    chunks = [b"".join(frames[i : i + chunk_msgs]) for i in range(0, len(frames), chunk_msgs)]
    next_chunk = 0
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sent = acked = errors = 0
    out = b""
    carry = b""
    marker = b"MSG " + ACK_SUBJECT
    start = time.monotonic()
    measure_from = start + warmup
    end = measure_from + duration
    acked_at_start = -1
    while True:
        now = time.monotonic()
        if acked_at_start < 0 and now >= measure_from:
            acked_at_start = acked
        if (now >= end and not total) or (total and acked >= total):
            break
        if not out and sent - acked + chunk_msgs <= window and (not total or sent < total):
            out = chunks[next_chunk]
            next_chunk = (next_chunk + 1) % len(chunks)
            sent += chunk_msgs
        if out:
            try:
                n = sock.send(out)
                out = out[n:]
            except BlockingIOError:
                pass
        events = sel.select(timeout=0 if out else 0.05)
        if events:
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError("server closed the connection")
            data = carry + data
            acked += data.count(marker)
            errors += data.count(b'"error"')
            if b"PING\r\n" in data:
                sock.setblocking(True)
                sock.sendall(b"PONG\r\n")
                sock.setblocking(False)
            carry = data[-len(marker) + 1 :]
    sock.close()
    return Run("", "", (acked - max(acked_at_start, 0)) / (duration or 1), errors)


def consume_with_acks(port: int, total: int, batch: int) -> Run:
    """Pull `total` messages through the durable consumer, acking each one (plain ack)."""
    sock = connect(port)
    sock.sendall(b"SUB %b 1\r\n" % INBOX)
    body = json.dumps({"batch": batch, "expires": 10_000_000_000}).encode()
    pull = b"PUB $JS.API.CONSUMER.MSG.NEXT.%b.%b %b %d\r\n%b\r\n" % (
        STREAM.encode(),
        CONSUMER.encode(),
        INBOX,
        len(body),
        body,
    )
    sock.sendall(pull * 2)
    requested = 2 * batch
    received = errors = 0
    buf = b""
    first = last = 0.0
    deadline = time.monotonic() + 120
    while received < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"consumed only {received} of {total}")
        data = sock.recv(1 << 20)
        if not data:
            raise RuntimeError("server closed the connection")
        buf += data
        out = []
        pos = 0
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            line = buf[pos:eol]
            if line.startswith(b"MSG "):
                parts = line.split(b" ")
                size = int(parts[-1])
                end = eol + 2 + size + 2
                if end > len(buf):
                    break
                if len(parts) == 5:
                    out.append(b"PUB %b 0\r\n\r\n" % parts[3])
                    received += 1
                pos = end
            elif line.startswith(b"HMSG "):
                parts = line.split(b" ")
                size = int(parts[-1])
                end = eol + 2 + size + 2
                if end > len(buf):
                    break
                if len(parts) == 6:
                    out.append(b"PUB %b 0\r\n\r\n" % parts[3])
                    received += 1
                else:
                    errors += 1  # a status (408): the request ended early
                    requested = received
                pos = end
            else:
                if line == b"PING":
                    out.append(b"PONG\r\n")
                elif line.startswith(b"-ERR"):
                    raise RuntimeError(line.decode(errors="replace"))
                pos = eol + 2
        buf = buf[pos:]
        if received and not first:
            first = time.monotonic()
        while requested - received < batch:
            out.append(pull)
            requested += batch
        if out:
            sock.sendall(b"".join(out))
    last = time.monotonic()
    sock.close()
    return Run("", "", total / max(last - first, 1e-9), errors)


def kv_get_latency(port: int, gets: int) -> Run:
    """Sequential direct gets of KV keys (what `kv.get(key)` sends): p50 and p99 in µs."""
    sock = connect(port)
    sock.sendall(b"SUB %b 1\r\n" % INBOX)
    frames = [
        b"PUB $JS.API.DIRECT.GET.KV_%b.$KV.%b.k%d %b 0\r\n\r\n"
        % (BUCKET.encode(), BUCKET.encode(), i % KV_KEYS, INBOX)
        for i in range(gets)
    ]
    samples = []
    buf = b""
    warm = max(gets // 10, 50)
    missing = 0
    for i, frame in enumerate(frames):
        began = time.perf_counter()
        sock.sendall(frame)
        while True:
            eol = buf.find(b"\r\n")
            if eol >= 0 and buf.startswith(b"HMSG "):
                size = int(buf[:eol].split(b" ")[-1])
                if len(buf) >= eol + 2 + size + 2:
                    missing += buf.startswith(b"NATS/1.0 404", eol + 2)
                    buf = buf[eol + 2 + size + 2 :]
                    break
            elif eol >= 0:
                if buf[:eol] == b"PING":
                    sock.sendall(b"PONG\r\n")
                buf = buf[eol + 2 :]
                continue
            buf += sock.recv(65536)
        if i >= warm:
            samples.append((time.perf_counter() - began) * 1e6)
    sock.close()
    samples.sort()
    return Run("", "", samples[len(samples) // 2], 0, p99=samples[int(len(samples) * 0.99) - 1])


def create(port: int, subject: str, cfg: dict) -> None:
    sock = connect(port)
    reply = request(sock, subject, json.dumps(cfg).encode())
    sock.close()
    if b'"error"' in reply:
        raise RuntimeError(f"{subject} failed: {reply!r}")


def kv_stream_config(storage: str) -> dict:
    """The stream nats-py's `create_key_value(bucket=B)` asks for."""
    return {
        "name": f"KV_{BUCKET}",
        "subjects": [f"$KV.{BUCKET}.>"],
        "max_msgs_per_subject": 1,
        "discard": "new",
        "allow_rollup_hdrs": True,
        "deny_delete": True,
        "allow_direct": True,
        "allow_msg_ttl": True,
        "storage": storage,
        "num_replicas": 1,
    }


def fast_ingest(
    port: int, size: int, flow: int, outstanding: int, warmup: float, duration: float
) -> Run:
    """One fast-ingest batch (`allow_batched`) on a raw socket, as a client sends it: the
    reply subject `_fi.<id>.<flow>.fail.<seq>.<op>.$FI` carries the batch, the first message
    waits for the first flow ack, then at most `outstanding` ack intervals are in flight; an
    EOB commit ends it and must count every message. Rate: batch sequences acknowledged per
    second over the measured window."""
    sock = connect(port)
    sock.sendall(b"SUB _fi.%b.> 1\r\nPING\r\n" % FI_BATCH_ID)
    payload = b"x" * size
    prefix = b"_fi.%b.%d.fail." % (FI_BATCH_ID, flow)
    head = b"PUB %b %b" % (FI_SUBJECT, prefix)
    tail = b".$FI %d\r\n%b\r\n" % (size, payload)

    def frames(first: int, last: int, op: int) -> bytes:
        return b"".join(head + b"%d.%d" % (seq, op) + tail for seq in range(first, last + 1))

    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sock.sendall(frames(1, 1, 0))
    sent, acked, msgs, errors = 1, -1, 1, 0
    carry = b""
    out = b""
    start = time.monotonic()
    measure_from, end = start + warmup, start + warmup + duration
    acked_at_start = -1
    sock.setblocking(False)
    while True:
        now = time.monotonic()
        if acked_at_start < 0 and now >= measure_from:
            acked_at_start = max(acked, 0)
        if now >= end:
            break
        if not out and acked >= 0 and sent < acked + msgs * outstanding:
            last = min(acked + msgs * outstanding, sent + 512)
            out = frames(sent + 1, last, 1)
            sent = last
        if out:
            try:
                n = sock.send(out)
                out = out[n:]
            except BlockingIOError:
                pass
        if sel.select(timeout=0 if out else 0.05):
            try:
                data = sock.recv(1 << 20)
            except BlockingIOError:
                continue
            if not data:
                raise RuntimeError("server closed the connection")
            data = carry + data
            for m in FI_ACK.finditer(data):
                acked, msgs = max(acked, int(m[1])), int(m[2])
            errors += data.count(b'"error"')
            if b"PING\r\n" in data:
                out += b"PONG\r\n"
            carry = data[-200:]
    # finish what is in flight, then commit by EOB and check the count
    sock.setblocking(True)
    sock.sendall(out + frames(sent + 1, sent + 1, 3))
    buf = b""
    deadline = time.monotonic() + 30
    while not FI_FINAL.search(buf) and time.monotonic() < deadline:
        buf += sock.recv(1 << 20)
    final = FI_FINAL.search(buf)
    if final is None or int(final[1]) != sent:
        raise RuntimeError(f"commit of {sent} gave {buf[-300:]!r}")
    sock.close()
    return Run("", "", (acked - max(acked_at_start, 0)) / (duration or 1), errors)


def run_one(spec: ServerSpec, pair: str, scenario: str, args: argparse.Namespace) -> Run:
    storage = "memory" if pair == "memory" else "file"
    with JsServer(spec, pair) as srv:
        if scenario in ("publish", "consume"):
            cfg = {"name": STREAM, "subjects": [SUBJECT.decode()], "storage": storage}
            create(srv.port, f"$JS.API.STREAM.CREATE.{STREAM}", cfg)
        if scenario == "fast-ingest":
            cfg = {
                "name": STREAM,
                "subjects": [FI_SUBJECT.decode()],
                "storage": storage,
                "allow_batched": True,
            }
            create(srv.port, f"$JS.API.STREAM.CREATE.{STREAM}", cfg)
            run = fast_ingest(
                srv.port, args.size, args.flow, args.outstanding, args.warmup, args.duration
            )
        elif scenario == "publish":
            run = publish_with_acks(srv.port, args.size, args.window, args.warmup, args.duration)
        elif scenario == "consume":
            publish_with_acks(srv.port, args.size, args.window, 0, 0, total=args.consume_msgs)
            consumer = {"durable_name": CONSUMER, "ack_policy": "explicit"}
            create(
                srv.port,
                f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.{CONSUMER}",
                {"stream_name": STREAM, "config": consumer},
            )
            run = consume_with_acks(srv.port, args.consume_msgs, args.pull_batch)
        else:
            create(srv.port, f"$JS.API.STREAM.CREATE.KV_{BUCKET}", kv_stream_config(storage))
            keys = [b"$KV.%b.k%d" % (BUCKET.encode(), i) for i in range(KV_KEYS)]
            if scenario == "kv-put":
                run = publish_with_acks(
                    srv.port, args.size, args.window, args.warmup, args.duration, keys
                )
            else:
                publish_with_acks(srv.port, args.size, 256, 0, 0, keys, total=KV_KEYS)
                run = kv_get_latency(srv.port, args.gets)
        run.server, run.pair = spec.name, pair
        return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--go", default=default_go_path())
    parser.add_argument("--pairs", default=",".join(PAIRS))
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--window", type=int, default=4096)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--consume-msgs", type=int, default=200_000)
    parser.add_argument("--pull-batch", type=int, default=500)
    parser.add_argument("--gets", type=int, default=3000)
    parser.add_argument("--flow", type=int, default=500, help="fast-ingest initial flow")
    parser.add_argument("--outstanding", type=int, default=2, help="fast-ingest ack intervals")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    pairs = [p for p in args.pairs.split(",") if p]
    unknown = [p for p in pairs if p not in ALL_PAIRS]
    if unknown:
        parser.error(f"unknown pair(s) {','.join(unknown)}: choose from {','.join(ALL_PAIRS)}")
    scenarios = [s for s in args.scenarios.split(",") if s]
    specs = [go_spec(args.go), pynats_spec()]
    results: dict[tuple[str, str, str], list[Run]] = {}
    for scenario in scenarios:
        for pair in pairs:
            for i in range(args.repeat):
                order = specs if i % 2 == 0 else specs[::-1]
                for spec in order:
                    run = run_one(spec, pair, scenario, args)
                    results.setdefault((scenario, pair, spec.name), []).append(run)
                    print(
                        f"  {scenario:8s} {pair:7s} {spec.name:7s} {_show(scenario, run)}",
                        file=sys.stderr,
                    )
    print(f"\nJetStream, {args.size} B, window {args.window} (median of {args.repeat})")
    print(f"{'scenario':9s} {'pair':7s} {'go':>16s} {'pynats':>16s} {'pynats/go':>10s}")
    table = []
    for scenario in scenarios:
        for pair in pairs:
            go = statistics.median(r.rate for r in results[(scenario, pair, "go")])
            py = statistics.median(r.rate for r in results[(scenario, pair, "pynats")])
            ratio = py / go if go else 0.0
            row = {"scenario": scenario, "pair": pair, "go": go, "pynats": py, "ratio": ratio}
            unit = "msgs/s"
            if scenario == "kv-get":
                unit = "µs p50"
                row["go_p99"] = statistics.median(r.p99 for r in results[(scenario, pair, "go")])
                row["pynats_p99"] = statistics.median(
                    r.p99 for r in results[(scenario, pair, "pynats")]
                )
            table.append(row)
            print(
                f"{scenario:9s} {pair:7s} {go:10,.0f} {unit:6s}{py:10,.0f} {unit:6s}{ratio:9.2f}x"
            )
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": table}, indent=2))
    return 0


def _show(scenario: str, run: Run) -> str:
    if scenario == "kv-get":
        return f"p50 {run.rate:8.0f} µs   p99 {run.p99:8.0f} µs"
    return f"{run.rate:12,.0f} msgs/s" + (f"  ({run.errors} errors)" if run.errors else "")


if __name__ == "__main__":
    sys.exit(main())
