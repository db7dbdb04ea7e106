#!/usr/bin/env python3
"""Fast-ingest batch publish (ADR-50, `allow_batched`): pynats and the Go nats-server side
by side, in one run, with the same load generator.

One publisher on a raw socket sends one fast batch (`--size` bytes a message, 128 by
default) on the stream's subject, as a client does: the reply subject
`_fi.<id>.<flow>.fail.<seq>.<op>.$FI` carries the batch, the first message waits for the
server's first flow ack, and afterwards at most `--outstanding` ack intervals (the `msgs`
the server last sent) are in flight. The batch ends with an EOB commit, whose PubAck must
count every message. The number is the batch sequence acknowledged per second over the
measured window (messages stored, as the server confirms them).

The stream pairs are those of benchmarks/jetstream.py (`memory`, `lazy`, `sync`).

    .venv/bin/python benchmarks/js_fast_ingest.py [--go PATH] [--pairs memory,lazy,sync]
        [--duration 3] [--warmup 1] [--size 128] [--flow 500] [--outstanding 2]
        [--repeat 1] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import selectors
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jetstream import PAIRS, STREAM, JsServer, Run, connect, create
from servers import ServerSpec, default_go_path, go_spec, pynats_spec

SUBJECT = b"bench.fi"
BATCH_ID = b"fastbench"
ACK = re.compile(rb'\{"type":"ack","seq":(\d+),"msgs":(\d+)\}')
FINAL = re.compile(rb'"batch":"fastbench","count":(\d+)\}')


def fast_ingest(
    port: int, size: int, flow: int, outstanding: int, warmup: float, duration: float
) -> Run:
    sock = connect(port)
    sock.sendall(b"SUB _fi.%b.> 1\r\nPING\r\n" % BATCH_ID)
    payload = b"x" * size
    prefix = b"_fi.%b.%d.fail." % (BATCH_ID, flow)
    head = b"PUB %b %b" % (SUBJECT, prefix)
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
            for m in ACK.finditer(data):
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
    while not FINAL.search(buf) and time.monotonic() < deadline:
        buf += sock.recv(1 << 20)
    final = FINAL.search(buf)
    if final is None or int(final[1]) != sent:
        raise RuntimeError(f"commit of {sent} gave {buf[-300:]!r}")
    sock.close()
    return Run("", "", (acked - max(acked_at_start, 0)) / (duration or 1), errors)


def run_one(spec: ServerSpec, pair: str, args: argparse.Namespace) -> Run:
    storage = "memory" if pair == "memory" else "file"
    with JsServer(spec, pair) as srv:
        cfg = {
            "name": STREAM,
            "subjects": [SUBJECT.decode()],
            "storage": storage,
            "allow_batched": True,
        }
        create(srv.port, f"$JS.API.STREAM.CREATE.{STREAM}", cfg)
        run = fast_ingest(
            srv.port, args.size, args.flow, args.outstanding, args.warmup, args.duration
        )
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
    parser.add_argument("--flow", type=int, default=500)
    parser.add_argument("--outstanding", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    pairs = [p for p in args.pairs.split(",") if p]
    specs = [go_spec(args.go), pynats_spec()]
    results: dict[tuple[str, str], list[Run]] = {}
    for pair in pairs:
        for i in range(args.repeat):
            for spec in specs if i % 2 == 0 else specs[::-1]:
                run = run_one(spec, pair, args)
                results.setdefault((pair, spec.name), []).append(run)
                errors = f"  ({run.errors} errors)" if run.errors else ""
                print(
                    f"  {pair:7s} {spec.name:7s} {run.rate:12,.0f} msgs/s{errors}", file=sys.stderr
                )
    print(
        f"\nJetStream fast ingest, {args.size} B, flow {args.flow}, "
        f"{args.outstanding} acks outstanding (median of {args.repeat})"
    )
    print(f"{'pair':7s} {'go':>16s} {'pynats':>16s} {'pynats/go':>10s}")
    table = []
    for pair in pairs:
        go = statistics.median(r.rate for r in results[(pair, "go")])
        py = statistics.median(r.rate for r in results[(pair, "pynats")])
        ratio = py / go if go else 0.0
        table.append({"pair": pair, "go": go, "pynats": py, "ratio": ratio})
        print(f"{pair:7s} {go:10,.0f} msgs/s{py:10,.0f} msgs/s{ratio:9.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
