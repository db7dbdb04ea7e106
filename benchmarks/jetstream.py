#!/usr/bin/env python3
"""JetStream publish with acks: pynats and the Go nats-server side by side, in one run.

One publisher on a raw socket sends PUBs (128 B by default) on the stream's subject, each
with the same reply subject, keeping at most `--window` messages unacknowledged
(pipelined, as `nats bench js pub` does with async publishing). The number is acks received
per second over the measured window. Three like-for-like pairs:

| pair     | Go                                         | pynats                                      |
|----------|--------------------------------------------|---------------------------------------------|
| memory   | `storage: memory`                          | `storage: memory`                           |
| lazy     | file, `jetstream {sync_interval: "2m"}`    | file, `jetstream {sync_interval: "2m"}`     |
| sync     | file, `jetstream {sync_interval: always}`  | file, default (fsync before ack, grouped)   |

Both servers get the same `-c` configuration file except in the last pair, where pynats runs
its default. Stores live in a fresh temporary directory per run.

    .venv/bin/python benchmarks/jetstream.py [--go PATH] [--pairs memory,lazy,sync]
        [--duration 3] [--warmup 1] [--size 128] [--window 4096] [--repeat 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
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
PAIRS = ("memory", "lazy", "sync")


@dataclass
class Run:
    server: str
    pair: str
    rate: float  # acked messages per second
    errors: int


class JsServer(_Running):
    """A server with JetStream on, its store in a temporary directory."""

    def __init__(self, spec: ServerSpec, pair: str) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="js-bench-")
        store = os.path.join(self.tmp.name, "store")
        conf = os.path.join(self.tmp.name, "js.conf")
        block = f'store_dir: "{store}"'
        if pair == "lazy":
            block += ', sync_interval: "2m"'
        elif pair == "sync" and spec.name == "go":
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
    sock.sendall(CONNECT + b"PING\r\n")
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


def publish_with_acks(port: int, size: int, window: int, warmup: float, duration: float) -> Run:
    sock = connect(port)
    sock.sendall(b"SUB %b 1\r\n" % ACK_SUBJECT)
    payload = b"x" * size
    frame = b"PUB %b %b %d\r\n%b\r\n" % (SUBJECT, ACK_SUBJECT, size, payload)
    chunk_msgs = max(1, min(window // 4, 512))
    chunk = frame * chunk_msgs
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
        if now >= end:
            break
        if not out and sent - acked + chunk_msgs <= window:
            out = chunk
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
    return Run("", "", (acked - max(acked_at_start, 0)) / duration, errors)


def run_one(spec: ServerSpec, pair: str, args: argparse.Namespace) -> Run:
    with JsServer(spec, pair) as srv:
        sock = connect(srv.port)
        cfg = {
            "name": STREAM,
            "subjects": [SUBJECT.decode()],
            "storage": "memory" if pair == "memory" else "file",
        }
        reply = request(sock, f"$JS.API.STREAM.CREATE.{STREAM}", json.dumps(cfg).encode())
        if b'"error"' in reply:
            raise RuntimeError(f"{spec.name}: stream create failed: {reply!r}")
        sock.close()
        run = publish_with_acks(srv.port, args.size, args.window, args.warmup, args.duration)
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
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    pairs = [p for p in args.pairs.split(",") if p]
    specs = [go_spec(args.go), pynats_spec()]
    results: dict[tuple[str, str], list[Run]] = {}
    for pair in pairs:
        for i in range(args.repeat):
            order = specs if i % 2 == 0 else specs[::-1]
            for spec in order:
                run = run_one(spec, pair, args)
                results.setdefault((pair, spec.name), []).append(run)
                print(
                    f"  {pair:7s} {spec.name:7s} {run.rate:12,.0f} msgs/s"
                    + (f"  ({run.errors} errors)" if run.errors else ""),
                    file=sys.stderr,
                )
    print(
        f"\nJetStream publish with acks, {args.size} B, window {args.window} "
        f"(median of {args.repeat})"
    )
    print(f"{'pair':8s} {'go msgs/s':>14s} {'pynats msgs/s':>14s} {'pynats/go':>10s}")
    table = []
    for pair in pairs:
        go = statistics.median(r.rate for r in results[(pair, "go")])
        py = statistics.median(r.rate for r in results[(pair, "pynats")])
        ratio = py / go if go else 0.0
        table.append({"pair": pair, "go": go, "pynats": py, "ratio": ratio})
        print(f"{pair:8s} {go:14,.0f} {py:14,.0f} {ratio:9.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
