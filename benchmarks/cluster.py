#!/usr/bin/env python3
"""Cluster benchmarks: a 3-server pynats cluster and a 3-server Go cluster side by side.

Each run starts a fresh full-mesh cluster (servers A, B, C: one config file each with a
`cluster {}` block listing every member's route) and measures traffic that has to cross a
route:

- `pubsub`: one publisher on A, one subscriber on B: messages/s delivered at B;
- `fanout`: one publisher on A, `--per-server` subscribers on each of A, B and C:
  deliveries/s summed over all subscribers;
- `local` (not run by default): publisher and subscriber both on A, the 1:1 baseline inside
  the same cluster, to read the routes' cost off the table.

With `--gateways` every server is a cluster of its own and the servers are joined by
`gateway {}` blocks (a supercluster): the same scenarios then measure traffic that crosses a
gateway (interest read from /gatewayz instead of /routez).

The subscribers connect first; the publisher starts only once A's /routez shows the
subscription on its routes to the subscribers' servers (the RS+ crossed), so no message of the
warm-up is published into missing interest. The generator is core.py's (loadgen.py), and the
clusters alternate which goes first, with medians of `--repeat N`.

    python benchmarks/cluster.py --go PATH [--quick] [--repeat N] [--sizes 16,1024]
        [--per-server N] [--gateways] [--json FILE]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from contenders import ClusterContender
from core import raise_fd_limit, run_all
from loadgen import SUBJECT, ServerError, Throughput, Window
from report import render_table, write_json
from scenarios import Scenario, Settings, measure_deliveries
from servers import RunningCluster, custom_spec, default_go_path, go_spec, pynats_spec

SIZES = (16, 1024)
DEFAULT_SCENARIOS = ("pubsub", "fanout")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # `fanout` of the Settings is the number of subscribers per server in the fan-out.
    settings = Settings(window=Window(args.warmup, args.duration), fanout=args.per_server)
    raise_fd_limit(args.servers * args.per_server + 256)
    contenders = choose_contenders(args)
    scenarios = choose_scenarios(args.scenarios, args.servers, args.per_server)
    rows = run_all(list(contenders), scenarios, args.sizes, settings, args.repeat)
    names = [c.name for c in contenders]
    print(render_table(rows, names))
    if args.json:
        commands = {c.name: shlex.join(RunningCluster.member_argv(c.spec)) for c in contenders}
        extra: dict[str, object] = {
            "cluster_servers": args.servers,
            "subscribers_per_server": args.per_server,
        }
        write_json(Path(args.json), rows, names, commands, settings, args.repeat, extra)
        print(f"results saved to {args.json}", file=sys.stderr)
    failed = any(isinstance(r, str) for row in rows for r in row.results.values())
    return 1 if failed else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--go", default=default_go_path(), help="Go nats-server binary (reference)")
    parser.add_argument(
        "--only", choices=("go", "pynats"), help="run one side only (pynats = the candidate)"
    )
    parser.add_argument(
        "--server-cmd",
        help="candidate command instead of pynats (gets -c MEMBER.conf, then {port} is "
        "substituted, else -a 127.0.0.1 -p PORT is appended)",
    )
    parser.add_argument("--label", default="custom", help="column name for --server-cmd")
    parser.add_argument(
        "--scenarios",
        default=",".join(DEFAULT_SCENARIOS),
        help="comma list of pubsub, fanout, local (default %(default)s)",
    )
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        type=_int_list,
        help="payload sizes in bytes (default %(default)s)",
    )
    parser.add_argument("--servers", type=int, default=3, help="servers in each cluster (2-10)")
    parser.add_argument(
        "--per-server", type=int, default=1, help="fan-out subscribers on each server"
    )
    parser.add_argument(
        "--quick", action="store_true", help="short smoke run (0.3 s warm-up, 1 s window)"
    )
    parser.add_argument(
        "--duration", type=float, help="measured seconds per run (default 3, quick 1)"
    )
    parser.add_argument(
        "--warmup", type=float, help="warm-up seconds per run (default 1, quick 0.3)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per scenario and cluster; the median is reported",
    )
    parser.add_argument(
        "--gateways",
        action="store_true",
        help="one-server clusters joined by gateways instead of one cluster of routes",
    )
    parser.add_argument("--json", help="save results to this file")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 1.0 if args.quick else 3.0
    if args.warmup is None:
        args.warmup = 0.3 if args.quick else 1.0
    if not 2 <= args.servers <= len(RunningCluster.NAMES):
        parser.error(f"--servers must be 2..{len(RunningCluster.NAMES)}")
    if args.per_server < 1:
        parser.error("--per-server must be at least 1")
    return args


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def choose_contenders(args: argparse.Namespace) -> list[ClusterContender]:
    """Reference first (Go), then the candidate (pynats or --server-cmd)."""
    reference = ClusterContender(go_spec(args.go), args.servers, args.gateways)
    if args.server_cmd:
        spec = custom_spec(args.server_cmd, args.label)
        candidate = ClusterContender(spec, args.servers, args.gateways)
    else:
        candidate = ClusterContender(pynats_spec(), args.servers, args.gateways)
    if args.only == "go":
        return [reference]
    if args.only == "pynats":
        return [candidate]
    return [reference, candidate]


# --- scenarios: publisher on A (member 0), subscribers where each scenario puts them -----------


def across(
    subscriber_members: Callable[[int], list[int]], per_server: Callable[[Settings], int]
) -> Callable[[RunningCluster, int, Settings], Throughput]:
    """A scenario run: publisher on member 0, `per_server(settings)` subscribers on each of
    `subscriber_members(cluster size)`, publishing only once their interest reached member 0."""

    def run(cluster: RunningCluster, size: int, settings: Settings) -> Throughput:
        holders = subscriber_members(len(cluster.ports))
        result = measure_deliveries(
            cluster.ports[0],
            [cluster.ports[i] for i in holders],
            size,
            settings,
            per_server(settings),
            before_publish=lambda: cluster.wait_interest(SUBJECT, 0, holders),
        )
        check_no_slow_consumers(cluster, result)
        return result

    return run


def check_no_slow_consumers(cluster: RunningCluster, result: Throughput) -> None:
    """A server that cut a route (or a subscriber) as a slow consumer dropped messages: the
    count is not a throughput then, so the run fails, its number kept in the reason."""
    cut = {name: n for name, n in cluster.slow_consumers().items() if n}
    if cut:
        where = ", ".join(f"{name} {n}x" for name, n in cut.items())
        raise ServerError(
            f"slow consumer cut (messages dropped) at {where}; "
            f"{result.rate:,.0f}/s delivered regardless"
        )


def choose_scenarios(keys: str, servers: int, per_server: int) -> list[Scenario]:
    names = RunningCluster.NAMES[:servers]
    each = f"{per_server} sub" + ("s" if per_server > 1 else "")
    available = {
        "pubsub": Scenario(
            "pubsub",
            "1:1 pub/sub, pub A -> sub B",
            "msgs/s",
            True,
            across(lambda n: [1], lambda s: 1),
        ),
        "fanout": Scenario(
            "fanout",
            f"fan-out, pub A -> {each} on each of {','.join(names)}",
            "deliveries/s",
            True,
            across(lambda n: list(range(n)), lambda s: s.fanout),
        ),
        "local": Scenario(
            "local",
            "1:1 pub/sub, pub A -> sub A",
            "msgs/s",
            True,
            across(lambda n: [0], lambda s: 1),
        ),
    }
    wanted = [k for k in keys.split(",") if k]
    unknown = [k for k in wanted if k not in available]
    if unknown:
        raise SystemExit(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(available)}"
        )
    return [available[k] for k in wanted]


if __name__ == "__main__":
    sys.exit(main())
