#!/usr/bin/env python3
"""Core NATS benchmarks: pynats and the Go nats-server side by side, in one run.

Every scenario runs against a freshly started server of each kind, alternating which goes
first, so both see the same machine state and their ratio can be trusted even when absolute
numbers drift between runs. `--self-test` runs the generator against a trivial sink instead
of pynats, to show that the generator is not what limits the numbers.

    python benchmarks/core.py --go PATH [--quick] [--only go|pynats] [--json FILE]
"""

from __future__ import annotations

import argparse
import resource
import shlex
import sys
from pathlib import Path

from contenders import GeneratorContender, ServerContender
from loadgen import Latency, Memory, Throughput, Window
from report import Row, render_table, size_label, write_json
from scenarios import SCENARIOS, SIZES, Result, Scenario, Settings
from servers import custom_spec, default_go_path, go_spec, pynats_spec

Contender = ServerContender | GeneratorContender


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(
        window=Window(args.warmup, args.duration),
        fanout=args.fanout,
        queue_members=args.queue_members,
        idle_connections=args.idle_conns,
    )
    raise_fd_limit(settings.idle_connections + 256)
    contenders = choose_contenders(args)
    scenarios = [
        s for s in choose_scenarios(args.scenarios) if all(c.supports(s) for c in contenders)
    ]
    rows = run_all(contenders, scenarios, args.sizes, settings, args.repeat)
    names = [c.name for c in contenders]
    print(render_table(rows, names))
    if args.json:
        commands = {
            c.name: shlex.join(c.spec.argv("PORT"))
            for c in contenders
            if isinstance(c, ServerContender)
        }
        write_json(Path(args.json), rows, names, commands, settings, args.repeat)
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
        help="candidate command instead of pynats; {port} is substituted, else -a 127.0.0.1 -p PORT is appended",
    )
    parser.add_argument("--label", default="custom", help="column name for --server-cmd")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="generator against a trivial sink (its ceiling) next to Go",
    )
    parser.add_argument(
        "--scenarios", default=",".join(s.key for s in SCENARIOS), help="comma list of: %(default)s"
    )
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        type=_int_list,
        help="payload sizes in bytes (default %(default)s)",
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
    parser.add_argument("--fanout", type=int, default=8, help="subscribers in the fan-out scenario")
    parser.add_argument("--queue-members", type=int, default=4, help="members of the queue group")
    parser.add_argument(
        "--idle-conns", type=int, default=1000, help="connections in the memory scenario"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per scenario and server; the median is reported"
    )
    parser.add_argument("--json", help="save results to this file")
    parser.add_argument(
        "--permissions",
        action="store_true",
        help="both servers require a user with publish/subscribe allow lists (the cost of "
        "permission checks on the hot path)",
    )
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 1.0 if args.quick else 3.0
    if args.warmup is None:
        args.warmup = 0.3 if args.quick else 1.0
    return args


def _int_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


PERMISSIONS_CONFIG = """
authorization {
  users: [
    {user: bench, password: bench, permissions: {
      publish: {allow: ["bench.>", "_INBOX.>"], deny: ["bench.denied.>"]}
      subscribe: {allow: ["bench.>", "_INBOX.>"], deny: ["bench.denied.>"]}
    }}
  ]
}
"""


def use_permissions() -> list[str]:
    """Write the permissions config and make every generator connection log in with it;
    returns the extra server arguments."""
    import tempfile

    import loadgen

    path = Path(tempfile.mkdtemp(prefix="pynats-bench-")) / "permissions.conf"
    path.write_text(PERMISSIONS_CONFIG)
    loadgen.CONNECT = loadgen.CONNECT.replace(
        b'"verbose"', b'"user":"bench","pass":"bench","verbose"'
    )
    return ["-c", str(path)]


def choose_contenders(args: argparse.Namespace) -> list[Contender]:
    """Reference first (Go), then the candidate (pynats, --server-cmd, or the generator)."""
    extra = use_permissions() if args.permissions else []
    reference = ServerContender(go_spec(args.go, extra))
    if args.self_test:
        candidate: Contender = GeneratorContender()
    elif args.server_cmd:
        candidate = ServerContender(custom_spec(args.server_cmd, args.label))
    else:
        candidate = ServerContender(pynats_spec(extra))
    if args.only == "go":
        return [reference]
    if args.only == "pynats":
        return [candidate]
    return [reference, candidate]


def choose_scenarios(keys: str) -> list[Scenario]:
    by_key = {s.key: s for s in SCENARIOS}
    unknown = [k for k in keys.split(",") if k and k not in by_key]
    if unknown:
        raise SystemExit(
            f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(by_key)}"
        )
    wanted = set(keys.split(","))
    return [s for s in SCENARIOS if s.key in wanted]


def run_all(
    contenders: list[Contender],
    scenarios: list[Scenario],
    sizes: list[int],
    settings: Settings,
    repeat: int = 1,
) -> list[Row]:
    """Each scenario and size `repeat` times per contender, alternating who goes first (A/B,
    B/A, ...); with repeats, each contender's median run is the one reported."""
    jobs = [(s, size) for s in scenarios for size in (sizes if s.sized else [None])]
    rows = []
    turn = 0
    for i, (scenario, size) in enumerate(jobs, 1):
        title = scenario.describe(settings)
        runs: dict[str, list[Result | str]] = {c.name: [] for c in contenders}
        for _ in range(repeat):
            turn += 1
            for contender in contenders if turn % 2 else contenders[::-1]:
                result = contender.run(scenario, size or 0, settings)
                runs[contender.name].append(result)
                print(
                    f"[{i}/{len(jobs)}] {title} {size_label(size)} "
                    f"{contender.name}: {_brief(result)}",
                    file=sys.stderr,
                )
        rows.append(Row(scenario, title, size, {name: median(got) for name, got in runs.items()}))
    return rows


def median(results: list[Result | str]) -> Result | str:
    """The middle successful run by its headline number; a failure only if all runs failed."""
    ok = [r for r in results if not isinstance(r, str)]
    if not ok:
        return results[0]
    ok.sort(key=headline)
    return ok[(len(ok) - 1) // 2]


def headline(result: Result) -> float:
    if isinstance(result, Throughput):
        return result.rate
    if isinstance(result, Latency):
        return result.p50_us
    return result.per_connection_kb


def _brief(result: Result | str) -> str:
    """One progress line's worth of a result."""
    if isinstance(result, Throughput):
        return f"{result.rate:,.0f}/s"
    if isinstance(result, Latency):
        return (
            f"p50 {result.p50_us:,.0f} µs, p99 {result.p99_us:,.0f} µs ({result.count} round trips)"
        )
    if isinstance(result, Memory):
        return f"{result.per_connection_kb:.1f} KB/conn"
    return f"FAILED {result}"


def raise_fd_limit(wanted: int) -> None:
    """The memory scenario holds a thousand sockets; servers inherit the raised limit too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


if __name__ == "__main__":
    sys.exit(main())
