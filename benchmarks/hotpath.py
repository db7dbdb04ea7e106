"""In-process micro-benchmark of the hot modules: the client-protocol parser, routing
(parser -> route_message -> MSG frames on the receivers' outbound lists) and the sublist.

No sockets and no event loop: what is measured is only the Python (or compiled) code of
protocol.py, delivery.py and sublist.py. Each mode runs in its own process (the modules are
chosen at import), the modes alternate, and the median of `--repeat` runs is reported:

    .venv/bin/python benchmarks/hotpath.py                  # pure vs compiled, 3 runs each
    .venv/bin/python benchmarks/hotpath.py --modes pure     # one mode only
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

CHUNK = 64 * 1024  # what a socket read typically hands data_received under load
SUBJECT = b"bench.s"


def pub_stream(size: int, total: int = 1 << 20) -> tuple[list[bytes], int]:
    """About `total` bytes of `PUB bench.s <size>` frames cut into CHUNK-sized reads (frames
    cross the cuts, as they do on a socket), and the number of frames."""
    frame = b"PUB %s %d\r\n%s\r\n" % (SUBJECT, size, b"x" * size)
    count = max(1, total // len(frame))
    data = frame * count
    return [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)], count


class NullSink:
    def process_connect(self, arg: bytes) -> None: ...
    def process_pub(self, subject: bytes, reply: bytes | None, hdr_len: int, p: bytes) -> None:
        pass

    def process_sub(self, subject: bytes, queue: bytes | None, sid: bytes) -> None: ...
    def process_unsub(self, sid: bytes, max_msgs: int) -> None: ...
    def process_ping(self) -> None: ...
    def process_pong(self) -> None: ...


class FakeServer:
    def __init__(self) -> None:
        self.pending_flush: list[Any] = []


class FakeClient:
    """The attributes delivery.py reads and writes on a receiving client connection: its
    compiled outbound (`ob`, sublist.Outbound) where pynats has one (older checkouts, which
    the benchmark may be run against, keep `out`/`out_msgs`/... on the connection)."""

    def __init__(self, server: FakeServer, kind: int) -> None:
        self.server = server
        try:
            from pynats.server.sublist import Outbound
        except ImportError:
            self.out: list[bytes] = []
            self.out_msgs = 0
            self.out_bytes = 0
            self.flush_queued = False
        else:
            try:
                self.ob = Outbound(server.pending_flush)
            except TypeError:  # before Outbound knew the server's pending list
                self.ob = Outbound()
            self.out = self.ob.parts
        self.echo = True
        self.closed = False
        self.is_link = False
        self.headers = True
        self.kind = kind
        self.cid = 1


class FakeAccount:
    def __init__(self, sublist: Any) -> None:
        self.sublist = sublist
        self.name_bytes = b"$G"
        self.rmsg_head = b"RMSG $G "


class RoutingSink(NullSink):
    """What ClientConnection.process_pub does on the fast path: route (and count, in
    checkouts whose parser does not count in_msgs itself)."""

    def __init__(self, publisher: FakeClient, account: FakeAccount, route: Callable) -> None:
        self.publisher = publisher
        self.account = account
        self.route = route
        self.in_msgs = 0

    def process_pub(self, subject: bytes, reply: bytes | None, hdr_len: int, p: bytes) -> None:
        self.route(self.publisher, self.account, subject, reply, hdr_len, p)


class CountingRoutingSink(RoutingSink):
    def process_pub(self, subject: bytes, reply: bytes | None, hdr_len: int, p: bytes) -> None:
        self.in_msgs += 1
        self.route(self.publisher, self.account, subject, reply, hdr_len, p)


def bench_parse(size: int, seconds: float) -> float:
    from pynats.server.protocol import ProtocolParser

    chunks, count = pub_stream(size)
    parser = ProtocolParser(NullSink())
    return _rate(lambda: [parser.feed(c) for c in chunks], count, seconds)


def bench_route(size: int, seconds: float, members: int, queue: bytes | None) -> float:
    from pynats.server.connection import CLIENT
    from pynats.server.delivery import route_message
    from pynats.server.protocol import ProtocolParser
    from pynats.server.sublist import Sublist, Subscription

    server = FakeServer()
    sublist = Sublist()
    receivers = [FakeClient(server, CLIENT) for _ in range(members)]
    for c in receivers:
        sublist.insert(Subscription(c, SUBJECT, queue, b"1"))
    publisher = FakeClient(server, CLIENT)
    parser_counts = hasattr(ProtocolParser(NullSink()), "traffic")
    sink_class = RoutingSink if parser_counts else CountingRoutingSink
    sink = sink_class(publisher, FakeAccount(sublist), route_message)
    parser = ProtocolParser(sink)
    chunks, count = pub_stream(size)

    def one_pass() -> None:
        for chunk in chunks:
            parser.feed(chunk)
            for c in server.pending_flush:  # what Server.flush_pending does, minus the write
                b"".join(c.out)
                c.out.clear()
                if hasattr(c, "ob"):
                    c.ob.queued = False
                else:
                    c.flush_queued = False
            server.pending_flush.clear()

    return _rate(one_pass, count, seconds)


def random_patterns(rng: random.Random, n: int) -> tuple[list[bytes], list[bytes]]:
    """`n` subscription subjects (a quarter with wildcards) and 4n literal subjects to match."""
    words = [b"w%d" % i for i in range(12)]
    subs = []
    for _ in range(n):
        tokens = [rng.choice(words) for _ in range(rng.randint(2, 5))]
        if rng.random() < 0.25:
            tokens[rng.randrange(len(tokens))] = b"*"
        if rng.random() < 0.1:
            tokens.append(b">")
        subs.append(b".".join(tokens))
    literals = [
        b".".join(rng.choice(words) for _ in range(rng.randint(2, 5))) for _ in range(4 * n)
    ]
    return subs, literals


def bench_match(seconds: float) -> float:
    """Trie walks (the cache off): literal subjects against 1000 subscriptions."""
    from pynats.server.sublist import Sublist, Subscription

    rng = random.Random(7)
    patterns, literals = random_patterns(rng, 1000)
    sublist = Sublist(cache_enabled=False)
    for i, p in enumerate(patterns):
        sublist.insert(Subscription(None, p, None, b"%d" % i))
    match = sublist.match
    return _rate(lambda: [match(s) for s in literals], len(literals), seconds)


def bench_insert_remove(seconds: float) -> float:
    """Subscribe and unsubscribe 1000 subscriptions with a warm match cache (invalidation)."""
    from pynats.server.sublist import Sublist, Subscription

    rng = random.Random(11)
    patterns, literals = random_patterns(rng, 1000)
    sublist = Sublist()
    subs = [Subscription(None, p, None, b"%d" % i) for i, p in enumerate(patterns)]
    for s in literals[:500]:
        sublist.match(s)

    def cycle() -> None:
        for s in subs:
            sublist.insert(s)
        for s in subs:
            sublist.remove(s)

    return _rate(cycle, 2 * len(subs), seconds)


def _rate(fn: Callable[[], object], per_call: int, seconds: float) -> float:
    fn()  # warm-up
    calls = 0
    start = time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * per_call / elapsed


WORKLOADS: dict[str, Callable[[float], float]] = {
    "parse PUB 16 B": lambda s: bench_parse(16, s),
    "parse PUB 1 KB": lambda s: bench_parse(1024, s),
    "parse+route 1:1 16 B": lambda s: bench_route(16, s, 1, None),
    "parse+route 1:1 1 KB": lambda s: bench_route(1024, s, 1, None),
    "parse+route 1:8 16 B": lambda s: bench_route(16, s, 8, None),
    "parse+route queue(4) 16 B": lambda s: bench_route(16, s, 4, b"q"),
    "sublist match, uncached": bench_match,
    "sublist insert+remove": bench_insert_remove,
}
UNITS = {"sublist match, uncached": "match/s", "sublist insert+remove": "ops/s"}


def run_here(seconds: float) -> dict[str, Any]:
    """Every workload in this process, in whatever mode its imports gave."""
    from pynats._compiled import status

    results = {name: fn(seconds) for name, fn in WORKLOADS.items()}
    return {"compiled": status(), "results": results}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default="pure,compiled", help="comma list of: pure,compiled")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=1.0, help="per workload and run")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--json", help="save the medians here")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_here(args.seconds)))
        return 0
    modes = [m for m in args.modes.split(",") if m]
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for r in range(args.repeat):
        for mode in modes if r % 2 == 0 else reversed(modes):
            env = dict(os.environ, PYNATS_PURE="1" if mode == "pure" else "0")
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--seconds", str(args.seconds)],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            record = json.loads(out)
            compiled = all(record["compiled"].values())
            if mode == "compiled" and not compiled:
                print(f"warning: not every hot module is compiled: {record['compiled']}")
            runs[mode].append(record["results"])
    medians = {m: {k: statistics.median(r[k] for r in runs[m]) for k in WORKLOADS} for m in modes}
    head = f"{'workload':28}" + "".join(f"{m:>19}" for m in modes)
    if len(modes) == 2:
        head += f"{modes[1] + '/' + modes[0]:>20}"
    print(head)
    for k in WORKLOADS:
        unit = UNITS.get(k, "msgs/s")
        line = f"{k:28}" + "".join(
            f"{medians[m][k]:>11,.0f} {unit:<7}"[:19].rjust(19) for m in modes
        )
        if len(modes) == 2:
            line += f"{medians[modes[1]][k] / medians[modes[0]][k]:>19.2f}x"
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"medians": medians, "runs": runs}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
