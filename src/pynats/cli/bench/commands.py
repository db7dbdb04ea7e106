"""`nats bench`: throughput and latency benchmarks, as natscli's subcommand-based tool.

    nats bench pub demo --msgs 1000000 --size 16 --clients 2 --no-progress
    nats bench sub demo --msgs 1000000 --clients 4
    nats bench js pub async demo --create --storage memory --purge --msgs 200000
    nats bench kv put --msgs 10000 && nats bench kv get --msgs 10000 --randomize 10000

The command tree, the flags and turning them into a run are here; each mode's clients live in
the modules beside this one (core, js, consume, get, kv), run by runner.py.

Output follows natscli (cli.md §6): the banner and per-client lines on stderr, bars on stderr
while it runs (only on a terminal), then a blank line and the report on stdout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pynats.cli.bench.spec import (
    DEFAULT_BUCKET,
    DEFAULT_CONSUMER,
    DEFAULT_STREAM,
    BenchSpec,
    client_slots,
)
from pynats.cli.ui.command import NatsGroup, apply_options, negatable
from pynats.cli.ui.connect import run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.humanize import comma
from pynats.cli.ui.options import ExistingFile, current_settings
from pynats.cli.ui.output import log, out
from pynats.cli.ui.parse import DURATION, parse_byte_size, parse_header
from pynats.gotime import NS_PER_S

if TYPE_CHECKING:
    from pynats.cli.bench.report import Benchmark
    from pynats.cli.bench.runner import Mode

BENCH_HELP = """Benchmark utility

\b
Measures message rates and latencies against a server and reports them as
natscli does: per client, then aggregated (min/avg/max/stddev, msgs/s, MB/s).

\b
Clients and processes: --clients N opens N connections. They are spread over
worker processes (--workers, default one per CPU core, never more than the
clients) because one Python process runs one client at a time. `pub` and `sub`
speak the NATS protocol directly in large batched writes, so one worker can push
millions of small messages a second; to load a server to its limit, give them as
many clients as the cores you can spare:

\b
   nats bench pub test --size 16 --msgs 5000000 --clients 2 --no-progress

\b
The JetStream and KV modes use the nats-py client, whose per-message cost is
higher: raise --clients (and so the worker processes) to put more load on the
server. --plot FILE.png|FILE.html draws throughput over time and a latency
histogram (needs matplotlib: pip install 'pynats[plot]')."""

PUB_HELP = """Publish Core NATS messages

\b
The messages are split over --clients connections, which run in --workers
processes (default one per CPU core). Each client writes pre-built PUB frames in
large batches; its latency figures are the time to hand one message to the
socket, averaged over each batched write. For the highest rate, use one client
per core you can spare: --clients 2 on a 2-core machine running the server too."""

SUB_HELP = """Subscribe to Core NATS messages

\b
Every client subscribes and expects --msgs messages, timed from the first to the
last; clients run in --workers processes (default one per CPU core), counting
messages straight from the protocol stream."""

SLEEP_HELP = "Sleep for the specified interval between publications"


def common_flags() -> Callable[[Any], Any]:
    return apply_options(
        click.option("--clients", default=1, type=int, help="Number of concurrent clients"),
        click.option(
            "--msgs",
            default=100_000,
            type=int,
            help="Number of messages to publish or subscribe to",
        ),
        negatable("progress", True, "Enable or disable the progress bar"),
        click.option(
            "--csv", "csv_file", default="", metavar="FILE", help="Save benchmark data to CSV file"
        ),
        click.option("--size", default="128B", metavar="SIZE", help="Size of the test messages"),
        click.option(
            "--workers",
            default=0,
            type=int,
            help="Worker processes the clients are spread over (0: one per CPU core, at most "
            "one per client)",
        ),
        click.option(
            "--plot",
            "plot_file",
            default="",
            metavar="FILE",
            help="Draw throughput over time and a latency histogram into FILE.png or FILE.html",
        ),
    )


def publisher_flags() -> Callable[[Any], Any]:
    return apply_options(
        click.option(
            "--multisubject",
            is_flag=True,
            help="Multi-subject mode, each message is published on a subject that includes the "
            "publisher's message sequence number as a token",
        ),
        click.option(
            "--multisubjectmax",
            "multisubject_max",
            default=100_000,
            type=int,
            help="The maximum number of subjects to use in multi-subject mode (0 means no max)",
        ),
        click.option(
            "--multisubjectrandomize",
            "multisubject_randomize",
            is_flag=True,
            help="Randomize which subjects are being used when in multisubject mode",
        ),
        payload_flags(),
    )


def payload_flags() -> Callable[[Any], Any]:
    return apply_options(
        click.option(
            "--payload",
            "payload_file",
            type=ExistingFile(),
            default=None,
            help="File containing a message payload to send",
        ),
        click.option(
            "-H",
            "--header",
            "headers",
            multiple=True,
            help="Adds headers to the message using K:V format",
        ),
    )


def throughput_flags() -> Callable[[Any], Any]:
    return apply_options(
        click.option(
            "--throughput",
            default=0,
            type=int,
            metavar="THROUGHPUT",
            help="If set > 0, throttle aggregate message send throughput to approximately "
            "THROUGHPUT messages/second across all clients (0 disables). If --sleep is set, "
            "the achieved rate may be lower",
        ),
        click.option(
            "--duration",
            "duration_ns",
            default=0,
            type=DURATION,
            metavar="DURATION",
            help="Run for this long at --throughput (sets the number of messages)",
        ),
    )


def sleep_flag(help: str = SLEEP_HELP) -> Callable[[Any], Any]:
    return click.option(
        "--sleep", "sleep_ns", default=0, type=DURATION, metavar="DURATION", help=help
    )


def js_common_flags() -> Callable[[Any], Any]:
    return apply_options(
        click.option(
            "--stream", default=DEFAULT_STREAM, help="The name of the stream to create or use"
        ),
        sleep_flag(),
    )


def storage_flags(kind: str) -> Callable[[Any], Any]:
    return apply_options(
        click.option(
            "--storage",
            type=click.Choice(["memory", "file"]),
            default="file",
            help=f'JetStream storage (memory/file) for the "benchstream" {kind}',
        ),
        click.option(
            "--replicas",
            default=1,
            type=int,
            help=f'Number of replicas for the "benchstream" {kind}',
        ),
        click.option(
            "--maxbytes",
            "max_bytes",
            default="1GB",
            help="The maximum size of the stream or KV bucket in bytes",
        ),
        click.option("--purge", is_flag=True, help="Purge the stream before running"),
    )


def js_publish_flags() -> Callable[[Any], Any]:
    return apply_options(
        click.option("--create", is_flag=True, help="Create or update the stream first"),
        storage_flags("stream"),
        click.option(
            "--dedup",
            is_flag=True,
            help="Sets a message id in the header to use JS Publish de-duplication",
        ),
        click.option(
            "--dedupwindow",
            "dedup_window_ns",
            default="2m",
            type=DURATION,
            help="Sets the duration of the stream's deduplication functionality",
        ),
        click.option(
            "--persistasync",
            "persist_async",
            is_flag=True,
            help="Set the persistence mode for the steam to asynchronous (only for R1 streams)",
        ),
    )


def filter_flag() -> Callable[[Any], Any]:
    return click.option(
        "--filter", "filters", multiple=True, metavar="SUBJECTS", help="Filter Stream by subjects"
    )


def consumer_flags() -> Callable[[Any], Any]:
    return apply_options(
        click.option(
            "--consumer", default=DEFAULT_CONSUMER, help="Specify the durable consumer name to use"
        ),
        click.option(
            "--batch",
            default=500,
            type=int,
            help="Sets the max number of messages that can be buffered in the client",
        ),
        click.option(
            "--acks",
            type=click.Choice(["explicit", "none", "all"]),
            default="explicit",
            help="Acknowledgement mode for the consumer",
        ),
        negatable(
            "doubleack",
            False,
            "Synchronously acknowledge messages, waiting for a reply from the server",
        ),
        filter_flag(),
        click.option("--purge", is_flag=True, help="Purge the stream before running"),
    )


def kv_flags() -> Callable[[Any], Any]:
    return apply_options(
        click.option(
            "--bucket", default=DEFAULT_BUCKET, help="The bucket to use for the benchmark"
        ),
        sleep_flag("Sleep for the specified interval after putting each message"),
    )


# -- the command tree ----------------------------------------------------------------------------


def register(root: NatsGroup) -> None:
    @root.group("bench", help=BENCH_HELP)
    def bench() -> None:
        pass

    subject = click.argument("subject")

    @bench.command("pub", help=PUB_HELP)
    @subject
    @sleep_flag()
    @common_flags()
    @publisher_flags()
    @throughput_flags()
    def pub(**flags: Any) -> None:
        run_mode("core", "PUB", flags)

    @bench.command("sub", help=SUB_HELP)
    @subject
    @click.option(
        "--multisubject",
        is_flag=True,
        help="Multi-subject mode, each message is published on a subject that includes the "
        "publisher's message sequence number as a token",
    )
    @common_flags()
    def sub(**flags: Any) -> None:
        run_mode("core", "SUB", flags)

    @bench.group("service", help="Micro-service mode")
    def service() -> None:
        pass

    service_sleep = sleep_flag(
        "Sleep for the specified interval between requests or before replying to the request"
    )

    @service.command("request", help="Send a request and wait for a reply")
    @subject
    @service_sleep
    @common_flags()
    @payload_flags()
    @throughput_flags()
    def request(**flags: Any) -> None:
        run_mode("core", "SERVICE_REQUEST", flags)

    @service.command("serve", help="Service requests")
    @subject
    @service_sleep
    @common_flags()
    def serve(**flags: Any) -> None:
        run_mode("core", "SERVICE_SERVE", flags)

    @bench.group("js", help="JetStream benchmark commands")
    def js() -> None:
        pass

    @js.group("pub", help="Publish JetStream messages")
    def js_pub() -> None:
        pass

    @js_pub.command("sync", help="Use synchronous JetStream publish")
    @subject
    @common_flags()
    @js_common_flags()
    @publisher_flags()
    @js_publish_flags()
    @throughput_flags()
    def js_pub_sync(**flags: Any) -> None:
        run_mode("js", "JS_PUB_SYNC", flags)

    @js_pub.command("async", help="Use asynchronous JetStream publish")
    @subject
    @click.option(
        "--batch",
        default=500,
        type=int,
        help="Sets the number of asynchronous operations per batch",
    )
    @common_flags()
    @js_common_flags()
    @publisher_flags()
    @js_publish_flags()
    @throughput_flags()
    def js_pub_async(**flags: Any) -> None:
        run_mode("js", "JS_PUB_ASYNC", flags)

    @js_pub.command("atomic", aliases=["batch"], help="Use atomic batch JetStream publish")
    @subject
    @click.option("--batch", default=500, type=int, help="Sets the size of the batches")
    @common_flags()
    @js_common_flags()
    @publisher_flags()
    @js_publish_flags()
    @throughput_flags()
    def js_pub_atomic(**flags: Any) -> None:
        run_mode("js", "JS_PUB_ATOMIC", flags)

    @js.command(
        "ordered",
        help="Consume JetStream messages from a consumer using an ephemeral ordered consumer",
    )
    @click.option(
        "--batch",
        default=500,
        type=int,
        help="Sets the max number of messages that can be buffered in the client",
    )
    @click.option("--purge", is_flag=True, help="Purge the stream before running")
    @filter_flag()
    @common_flags()
    @js_common_flags()
    def js_ordered(**flags: Any) -> None:
        run_mode("consume", "JS_ORDERED", flags)

    @js.command(
        "consume", help="Consume JetStream messages from a durable consumer using a callback"
    )
    @consumer_flags()
    @common_flags()
    @js_common_flags()
    def js_consume(**flags: Any) -> None:
        run_mode("consume", "JS_CONSUME", flags)

    @js.command("fetch", help="Consume JetStream messages from a durable consumer using fetch")
    @consumer_flags()
    @common_flags()
    @js_common_flags()
    def js_fetch(**flags: Any) -> None:
        run_mode("consume", "JS_FETCH", flags)

    @js.group("get", help="Retrieve messages from JetStream using gets")
    def js_get() -> None:
        pass

    @js_get.command("sync", help="Use synchronous JetStream get")
    @common_flags()
    @js_common_flags()
    def js_get_sync(**flags: Any) -> None:
        run_mode("get", "JS_GET_SYNC", flags)

    @js_get.command("batch", help="Use batched JetStream direct get")
    @click.option(
        "--batch",
        default=500,
        type=int,
        help="Sets the max number of messages that can be buffered in the client",
    )
    @click.option("--filter", "get_filter", default=">", help="Filter for the messages")
    @common_flags()
    @js_common_flags()
    def js_get_batch(**flags: Any) -> None:
        run_mode("get", "JS_GET_BATCH", flags)

    @bench.group("kv", help="KV benchmark operations")
    def kv() -> None:
        pass

    @kv.command("put", help="Put messages in a KV bucket")
    @common_flags()
    @kv_flags()
    @storage_flags("bucket")
    @click.option(
        "--history",
        default=1,
        type=click.IntRange(0, 255),
        help="History depth for the bucket in KV mode",
    )
    @click.option(
        "--randomize",
        default=0,
        type=int,
        help="Randomly put messages using keys between 0 and this number (set to 0 for "
        "sequential access)",
    )
    @throughput_flags()
    def kv_put(**flags: Any) -> None:
        run_mode("kv", "KV_PUT", flags)

    @kv.command("get", help="Get messages from a KV bucket")
    @common_flags()
    @kv_flags()
    @click.option(
        "--randomize",
        default=0,
        type=int,
        help="Randomly get messages using keys between 0 and this number (set to 0 for "
        "sequential access)",
    )
    def kv_get(**flags: Any) -> None:
        run_mode("kv", "KV_GET", flags)


# -- turning flags into a run --------------------------------------------------------------------


def build_spec(mode: Mode, flags: dict[str, Any]) -> BenchSpec:
    """Check the flags as natscli does (same messages, same order) and build the spec."""
    flags = dict(flags)
    size_text = flags.pop("size", "128B")
    max_bytes_text = flags.pop("max_bytes", None)
    payload_file = flags.pop("payload_file", None)
    header_texts = flags.pop("headers", ())
    if "doubleack" in flags:
        flags["double_ack"] = flags.pop("doubleack")
    spec = BenchSpec(mode=mode.key, **flags)
    if spec.duration_ns > 0:
        if spec.throughput <= 0:
            raise CliError("--duration requires --throughput to be set")
        spec.msgs = round(spec.throughput * (spec.duration_ns / NS_PER_S))
    if spec.msgs <= 0:
        raise CliError("number of messages should be greater than 0")
    try:
        spec.size = parse_byte_size(size_text)
    except ValueError:
        spec.size = -1
    if spec.size <= 0 or spec.size > 2**31 - 1:
        raise CliError(
            f"can not parse or invalid the value specified for the message size: {size_text}"
        )
    if max_bytes_text is not None:
        try:
            spec.max_bytes = parse_byte_size(max_bytes_text)
        except ValueError:
            spec.max_bytes = -1
        if spec.max_bytes <= 0:
            raise CliError(
                "can not parse or invalid the value specified for the max stream/bucket size: "
                f"{max_bytes_text}"
            )
    if spec.batch <= 0:
        raise CliError("batch size should be greater than 0")
    if payload_file:
        try:
            spec.payload = Path(payload_file).read_bytes()
        except OSError as exc:
            raise CliError(f"reading the payload file: {exc.strerror}") from exc
    try:
        spec.headers = tuple(parse_header(text) for text in header_texts)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    if mode.caps_clients and spec.clients > spec.msgs:
        spec.clients = spec.msgs
    spec.run_token = format(int(time.time() * 1000), "x")
    return spec


def run_mode(module: str, name: str, flags: dict[str, Any]) -> None:
    """Run one mode (its module is imported only now: `nats` starts fast for other nouns)."""
    import importlib

    from pynats.cli.bench.report import Benchmark
    from pynats.cli.bench.runner import Supervisor

    mode: Mode = getattr(importlib.import_module(f"pynats.cli.bench.{module}"), name)
    spec = build_spec(mode, flags)
    if spec.plot_file:
        from pynats.cli.bench.plot import check_target

        check_target(spec.plot_file)
    current_settings()
    items = mode.banner(spec)
    log(f"Starting {mode.label} benchmark [{', '.join(f'{k}={items[k]}' for k in sorted(items))}]")
    if mode.prepare is not None:
        run_async(mode.prepare(spec))
    slots = client_slots(spec.msgs, spec.clients, mode.split)
    for slot in slots:
        if mode.runs_forever:
            log(f"[{slot.index + 1}] Starting {mode.label}, hit control-c to stop")
        else:
            log(
                f"[{slot.index + 1}] Starting {mode.label}, {mode.verb} {comma(slot.count)} messages"
            )
    outcome = Supervisor(mode, spec, slots).run()
    report(
        mode, spec, Benchmark(mode.label, mode.prefix, run_id(), outcome.samples), outcome.timeline
    )


def report(
    mode: Mode, spec: BenchSpec, benchmark: Benchmark, timeline: list[tuple[float, list[float]]]
) -> None:
    warnings = {warning for sample in benchmark.samples for warning in sample.warnings}
    if "fetch-timeout" in warnings:
        log(
            "WARNING: at least one of the pull consumer Fetch operation timed out. These "
            "results are not optimal!"
        )
    if "short-batch" in warnings:
        log(
            "WARNING: at least one of the clients got less than the requested number of "
            "messages in a batch get. These results may not be optimal!"
        )
    out()
    out(benchmark.report())
    if spec.csv_file:
        try:
            Path(spec.csv_file).write_text(benchmark.csv())
        except OSError as exc:
            raise CliError(f"writing file {spec.csv_file}: {exc.strerror}") from exc
        out(f"Saved metric data in csv file {spec.csv_file}")
    if spec.plot_file:
        from pynats.cli.bench.plot import write_plot

        write_plot(spec.plot_file, benchmark, timeline)
        out(f"Saved plot in file {spec.plot_file}")


def run_id() -> str:
    from nats.nuid import NUID

    return NUID().next().decode()
