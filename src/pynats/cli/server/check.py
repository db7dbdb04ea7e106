"""`nats server check`: Nagios-style health checks, the checks of natscli's monitor package.

    connection (conn)   connect time, server RTT and a full round trip through an inbox
    server              one server's varz (through the system account): uptime, cpu, memory,
                        connections, subscriptions, auth/TLS/JetStream required
    jetstream (js)      the account's JetStream usage against its limits, replica health
    stream              messages, subjects, sources/mirror lag, cluster peers of one stream
    consumer            ack pending, waiting pulls, unprocessed, redeliveries, last delivery/ack
    kv                  a bucket exists, its value count, one key holds a value
    message             the last message on a subject of a stream: age and content
    credential          a credentials file's JWT expiry

Every check ends with the result (check_result.py) and its Nagios exit code; connection and
API failures are CRITICAL results, never `nats: error:` lines. Stream and consumer thresholds
may come from their metadata (`io.nats.monitor.<flag>`), flags taking precedence.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import click

from pynats.cli.server.check_core import check_connection, check_credential, check_server
from pynats.cli.server.check_jetstream import (
    check_consumer,
    check_jetstream,
    check_kv,
    check_message,
    check_stream,
)
from pynats.cli.server.check_result import (
    DEFAULT_NAMESPACE,
    FORMATS,
    CheckResult,
)
from pynats.cli.ui.connect import run_async
from pynats.cli.ui.parse import DURATION

if TYPE_CHECKING:
    pass

NO_MESSAGE = 10037
META = "io.nats.monitor."


def register(server: click.Group) -> None:
    """Hang `check` and its checks under `nats server`."""

    @server.group("check", help="Health check for NATS servers")
    @click.option(
        "--format",
        "render_format",
        default="nagios",
        type=click.Choice(FORMATS),
        help="Render the check in a specific format (nagios, json, prometheus, text)",
    )
    @click.option(
        "--namespace", default=DEFAULT_NAMESPACE, help="The prometheus namespace to use in output"
    )
    @click.option("--outfile", default="", help="Save output to a file rather than STDOUT")
    @click.pass_context
    def check(ctx: click.Context, render_format: str, namespace: str, outfile: str) -> None:
        """Health check for NATS servers."""
        ctx.obj = {"format": render_format, "namespace": namespace, "outfile": outfile}

    def result(name: str, suite: str) -> CheckResult:
        obj = click.get_current_context().obj
        options: dict[str, Any] = obj if isinstance(obj, dict) else {}
        return CheckResult(
            name,
            suite,
            render_format=options.get("format", "nagios"),
            namespace=options.get("namespace", DEFAULT_NAMESPACE),
            outfile=options.get("outfile", ""),
        )

    @check.command("connection", aliases=["conn"], help="Checks basic server connection")
    @click.option("--connect-warn", default="500ms", type=DURATION, metavar="DURATION")
    @click.option("--connect-critical", default="1s", type=DURATION, metavar="DURATION")
    @click.option("--rtt-warn", default="500ms", type=DURATION, metavar="DURATION")
    @click.option("--rtt-critical", default="1s", type=DURATION, metavar="DURATION")
    @click.option("--req-warn", default="500ms", type=DURATION, metavar="DURATION")
    @click.option("--req-critical", default="1s", type=DURATION, metavar="DURATION")
    def connection(**thresholds: int) -> None:
        finish(result("Connection", "connections"), check_connection, thresholds)

    @check.command("server", help="Checks a NATS Server health")
    @click.option("--name", required=True, help="Server name to require in the result")
    @click.option("--cpu-warn", default=0, type=int)
    @click.option("--cpu-critical", default=0, type=int)
    @click.option("--mem-warn", default=0, type=int)
    @click.option("--mem-critical", default=0, type=int)
    @click.option("--conn-warn", default=0, type=int)
    @click.option("--conn-critical", default=0, type=int)
    @click.option("--subs-warn", default=0, type=int)
    @click.option("--subs-critical", default=0, type=int)
    @click.option("--uptime-warn", default="0s", type=DURATION, metavar="DURATION")
    @click.option("--uptime-critical", default="0s", type=DURATION, metavar="DURATION")
    @click.option("--auth-required", is_flag=True, help="Checks that authentication is enabled")
    @click.option("--tls-required", is_flag=True, help="Checks that TLS is required")
    @click.option("--js-required", is_flag=True, help="Checks that JetStream is enabled")
    def server_check(name: str, **options: Any) -> None:
        finish(result(name, "server"), check_server, dict(options, name=name))

    @check.command("jetstream", aliases=["js"], help="Check JetStream account state")
    @click.option("--mem-warn", default=75, type=int)
    @click.option("--mem-critical", default=90, type=int)
    @click.option("--store-warn", default=75, type=int)
    @click.option("--store-critical", default=90, type=int)
    @click.option("--streams-warn", default=-1, type=int)
    @click.option("--streams-critical", default=-1, type=int)
    @click.option("--consumers-warn", default=-1, type=int)
    @click.option("--consumers-critical", default=-1, type=int)
    @click.option("--replicas/--no-replicas", default=True)
    @click.option("--replica-seen-critical", default="5s", type=DURATION, metavar="DURATION")
    @click.option("--replica-lag-critical", default=200, type=int)
    def jetstream_check(**options: Any) -> None:
        finish(result("JetStream", "jetstream"), check_jetstream, options)

    @check.command(
        "stream",
        help="Checks the health of mirrored streams, streams with sources or clustered streams",
    )
    @click.option("--stream", "stream_name", required=True, help="The streams to check")
    @click.option("--lag-critical", type=int, metavar="MSGS")
    @click.option("--seen-critical", type=DURATION, metavar="DURATION")
    @click.option("--min-sources", type=int, metavar="SOURCES")
    @click.option("--max-sources", type=int, metavar="SOURCES")
    @click.option("--peer-expect", type=int, metavar="SERVERS")
    @click.option("--peer-lag-critical", type=int, metavar="OPS")
    @click.option("--peer-seen-critical", type=DURATION, metavar="DURATION")
    @click.option("--msgs-warn", type=int, metavar="MSGS")
    @click.option("--msgs-critical", type=int, metavar="MSGS")
    @click.option("--subjects-warn", type=int, metavar="SUBJECTS")
    @click.option("--subjects-critical", type=int, metavar="SUBJECTS")
    def stream_check(stream_name: str, **flags: Any) -> None:
        set_flags = {k: v for k, v in flags.items() if v is not None}
        finish(result(stream_name, "stream"), check_stream, dict(set_flags, stream=stream_name))

    @check.command("consumer", help="Checks the health of a consumer")
    @click.option("--stream", "stream_name", required=True, help="The streams to check")
    @click.option("--consumer", "consumer_name", required=True, help="The consumer to check")
    @click.option("--outstanding-ack-critical", type=int)
    @click.option("--waiting-critical", type=int)
    @click.option("--unprocessed-critical", type=int)
    @click.option("--last-delivery-critical", type=DURATION, metavar="DURATION")
    @click.option("--last-ack-critical", type=DURATION, metavar="DURATION")
    @click.option("--redelivery-critical", type=int)
    @click.option("--pinned", is_flag=True, default=None)
    def consumer_check(stream_name: str, consumer_name: str, **flags: Any) -> None:
        set_flags = {k: v for k, v in flags.items() if v is not None}
        set_flags.update(stream=stream_name, consumer=consumer_name)
        finish(result(f"{stream_name}_{consumer_name}", "consumer"), check_consumer, set_flags)

    @check.command("kv", help="Checks a NATS KV Bucket")
    @click.option("--bucket", required=True, help="Checks a specific bucket")
    @click.option("--values-critical", default=-1, type=int)
    @click.option("--values-warn", default=-1, type=int)
    @click.option("--key", default="", help="Requires a key to have any non-delete value set")
    def kv_check(bucket: str, **options: Any) -> None:
        finish(result(bucket, "kv"), check_kv, dict(options, bucket=bucket))

    @check.command("message", help="Checks properties of a message stored in a stream")
    @click.option("--stream", "stream_name", required=True, help="The streams to check")
    @click.option("--subject", default=">", help="The subject to fetch a message from")
    @click.option("--age-warn", default="0s", type=DURATION, metavar="DURATION")
    @click.option("--age-critical", default="0s", type=DURATION, metavar="DURATION")
    @click.option("--content", default=".", metavar="REGEX")
    @click.option("--body-timestamp", is_flag=True)
    def message_check(stream_name: str, **options: Any) -> None:
        finish(
            result("Stream Message", "message"), check_message, dict(options, stream=stream_name)
        )

    @check.command("credential", help="Checks the validity of a NATS credential file")
    @click.option("--credential", required=True, help="The file holding the NATS credential")
    @click.option("--validity-warn", default="0s", type=DURATION, metavar="DURATION")
    @click.option("--validity-critical", default="0s", type=DURATION, metavar="DURATION")
    @click.option("--require-expiry/--no-require-expiry", default=True)
    def credential_check(**options: Any) -> None:
        check_result = result("Credential", "credential")
        check_credential(check_result, options)
        raise click.exceptions.Exit(check_result.finish())


CheckBody = Callable[[CheckResult, dict[str, Any]], Coroutine[Any, Any, None]]


def finish(check: CheckResult, body: CheckBody, options: dict[str, Any]) -> None:
    """Run one check, print its result and exit with its code."""
    run_async(body(check, options))
    raise click.exceptions.Exit(check.finish())
