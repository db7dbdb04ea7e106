"""`nats account` (alias `a`): `info` (alias `nfo`): who this connection is, and its JetStream
usage; `backup` (alias `snapshot`) and `restore`: every stream of the account into (and back from)
one subdirectory per stream, each a `nats stream backup` directory (stream/backup.py); `report
connections|statistics`: what this account sees of itself (server/report_accounts.py).

The screen combines what the server says about the user (`$SYS.REQ.USER.INFO`, skipped
silently when unavailable), what the connection knows (client id, RTT, server), and the
account's JetStream usage and limits (`$JS.API.INFO`). An account without JetStream is still a
success (cli.md §12).
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

import click

from pynats.cli.server.report_accounts import register_account_report
from pynats.cli.stream.api import stream_list, stream_names
from pynats.cli.stream.backup import (
    ACCOUNT_CHUNK_BYTES,
    META_FILE,
    ExistingDirectory,
    Placement,
    SnapshotOptions,
    backup_one,
    restore_one,
)
from pynats.cli.ui import humanize, prompt
from pynats.cli.ui.columns import Columns
from pynats.cli.ui.command import NatsGroup, force_flag, negatable
from pynats.cli.ui.connect import connection, js_api_prefix, run_async, server_info
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.messages import go_quote, status_of
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import log, out
from pynats.gotime import format_duration

if TYPE_CHECKING:
    from nats.aio.client import Client

USER_INFO_TIMEOUT_S = 1.0


def register(root: NatsGroup) -> None:
    @root.group("account", aliases=["a"], help="Account information and status")
    def account() -> None:
        """Account information and status."""

    @account.command("info", aliases=["nfo"], help="Account information")
    def info() -> None:
        screen = run_async(account_screen())
        out(screen.render(), end="")

    register_account_report(account)

    @account.command(
        "backup",
        aliases=["snapshot"],
        help="Creates a backup of all  JetStream Streams over the NATS network",
    )
    @click.argument("directory", metavar="TARGET")
    @click.option("--check", is_flag=True, help="Checks the Stream for health prior to backup")
    @negatable("consumers", True, "Enable or disable consumer backups")
    @force_flag("Perform backup without prompting")
    @click.option(
        "-w", "--critical-warnings", "fail_on_warn", is_flag=True, help="Treat warnings as failures"
    )
    def backup(
        directory: str, check: bool, consumers: bool, force: bool, fail_on_warn: bool
    ) -> None:
        options = SnapshotOptions(consumers=consumers, check=check, chunk_size=ACCOUNT_CHUNK_BYTES)
        run_async(backup_account(directory, options, force))

    @account.command("restore", help="Restore an account backup over the NATS network")
    @click.argument("directory", metavar="DIRECTORY", type=ExistingDirectory())
    @click.option("--cluster", default="", help="Place the stream in a specific cluster")
    @click.option(
        "--tag",
        "tags",
        multiple=True,
        help="Place the stream on servers that has specific tags (pass multiple times)",
    )
    def restore(directory: str, cluster: str, tags: tuple[str, ...]) -> None:
        run_async(restore_account(directory, Placement(cluster=cluster, tags=tags)))


async def backup_account(directory: str, options: SnapshotOptions, force: bool) -> None:
    """Every stream into `directory/<stream>`; the failures are listed, then fail the command."""
    async with connection() as nc:
        infos, missing, offline = await stream_list(nc)
        if missing:
            raise CliError(f"could not obtain stream information for {len(missing)} streams")
        if offline and not force:
            raise CliError(
                f"could not obtain stream information for {len(offline)} offline streams"
            )
        if not infos:
            raise CliError("no streams found")
        states = [info.get("state") or {} for info in infos]
        screen = Columns(f"Performing backup of all streams to {directory}")
        screen.add_row("Streams", len(infos))
        screen.add_row("Size", humanize.ibytes(sum(int(s.get("bytes", 0) or 0) for s in states)))
        screen.add_row("Consumers:", sum(int(s.get("consumer_count", 0) or 0) for s in states))
        screen.add_line()
        out(screen.render(), end="")
        if not force and not prompt.ask_confirmation("Perform backup"):
            return
        os.makedirs(directory, mode=0o700, exist_ok=True)
        failures = []
        for info in infos:
            name = info["config"]["name"]
            target = os.path.join(directory, name)
            try:
                await backup_one(nc, name, target, options, show_progress=False)
            except CliError as exc:
                out(f"Backup of {name} failed: {exc}")
                failures.append(f"{name}: {exc}")
            out()
    if failures:
        out("Backup failures: ")
        for failure in failures:
            out(f"  {failure}")
        out()
        raise CliError("backup failed")


async def restore_account(directory: str, placement: Placement) -> None:
    """Every `nats account backup` subdirectory back into a stream of its own."""
    async with connection() as nc:
        existing = set(await stream_names(nc))
        entries = sorted(os.listdir(directory))
        for entry in entries:
            path = os.path.join(directory, entry)
            if not os.path.isdir(path):
                raise CliError(f"expected a directory {go_quote(entry)}")
            if entry in existing:
                raise CliError(f"stream {go_quote(entry)} exists already")
            if not os.path.exists(os.path.join(path, META_FILE)):
                meta = os.path.join(path, META_FILE)
                raise CliError(f"expected backup.json: stat {meta}: no such file or directory")
        out(f"Restoring backup of all {len(entries)} streams in directory {go_quote(directory)}\n")
        for entry in entries:
            await restore_one(
                nc, os.path.join(directory, entry), "", placement, show_progress=False
            )


async def account_screen() -> Columns:
    """Gather the facts, then lay them out."""
    async with connection() as nc:
        user = await user_info(nc)
        started = time.perf_counter()
        await nc.flush()  # one PING/PONG; nc.rtt() is only as precise as the loop clock
        rtt = time.perf_counter() - started
        jetstream, problem = await jetstream_info(nc)
        return render_account(nc, user, rtt, jetstream, problem)


async def user_info(nc: Client) -> dict[str, Any] | None:
    """`$SYS.REQ.USER.INFO` for this connection, or None when the server does not answer it."""
    try:
        reply = await nc.request("$SYS.REQ.USER.INFO", b"", timeout=USER_INFO_TIMEOUT_S)
        data = json.loads(reply.data)
    except Exception:  # optional information: no answer, no permission or bad JSON all skip it
        return None
    if not isinstance(data, dict) or data.get("error"):
        return None
    return data.get("data") if isinstance(data.get("data"), dict) else None


async def jetstream_info(nc: Client) -> tuple[dict[str, Any] | None, str]:
    """The account's `$JS.API.INFO` reply, or None and the line natscli prints instead."""
    import nats.errors

    settings = current_settings()
    subject = f"{js_api_prefix(settings)}.INFO"
    if settings.trace:
        log(f">>> {subject}")
    try:
        reply = await nc.request(subject, b"", timeout=settings.timeout_s)
    except nats.errors.NoRespondersError:
        return None, "   JetStream is not supported in this account"
    except (TimeoutError, nats.errors.TimeoutError):
        return None, "   No response from JetStream server"
    if status_of(reply) == "503":
        return None, "   JetStream is not supported in this account"
    try:
        data = json.loads(reply.data)
    except ValueError as exc:
        return None, f"   Could not obtain account information: {exc}"
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        if error.get("code") == 503:
            return None, "   JetStream is not supported in this account"
        return None, f"   Could not obtain account information: {error.get('description', error)}"
    return data, ""


def render_account(
    nc: Client,
    user: dict[str, Any] | None,
    rtt: float,
    jetstream: dict[str, Any] | None,
    problem: str,
) -> Columns:
    info = server_info(nc)
    url = nc.connected_url
    screen = Columns("Account Information")
    if user is not None:
        screen.add_row("User", user.get("user", ""))
        account_id, account_name = user.get("account", ""), user.get("account_name", "")
        shown = (
            f"{account_name} ({account_id})"
            if account_name and account_name != account_id
            else account_id
        )
        screen.add_row("Account", shown)
        expires = int(user.get("expires", 0) or 0)
        screen.add_row("Expires", humanize.human_duration(expires) if expires else "never")
    screen.add_row("Client ID", info.get("client_id", nc.client_id or 0))
    screen.add_row("Client IP", info.get("client_ip", ""))
    screen.add_row("RTT", format_duration(humanize.seconds_to_ns(rtt)))
    screen.add_row("Headers Supported", bool(info.get("headers")))
    screen.add_row("Maximum Payload", humanize.ibytes(nc.max_payload))
    screen.add_row_if_not_empty("Connected Cluster", info.get("cluster", ""))
    if url is not None:
        screen.add_row("Connected URL", f"{url.scheme}://{url.hostname}:{url.port}")
        screen.add_row("Connected Address", f"{url.hostname}:{url.port}")
    screen.add_row("Connected Server ID", info.get("server_id", ""))
    screen.add_row("Connected Server Version", info.get("version", ""))
    if info.get("server_name") and info.get("server_name") != info.get("server_id"):
        screen.add_row("Connected Server Name", info["server_name"])
    screen.add_row(
        "TLS Connection",
        "yes" if info.get("tls_required") or (url and url.scheme == "tls") else "no",
    )
    _add_permissions(screen, (user or {}).get("permissions"))
    _add_jetstream(screen, jetstream, problem, nc.max_payload)
    return screen


def _add_permissions(screen: Columns, permissions: dict[str, Any] | None) -> None:
    if not permissions:
        return
    screen.add_section("Connection Permissions")
    for title, key in (("Publish", "publish"), ("Subscribe", "subscribe")):
        rules = permissions.get(key) or {}
        if not rules.get("allow") and not rules.get("deny"):
            continue
        screen.add_line(f"  {title}:")
        for kind in ("allow", "deny"):
            if rules.get(kind):
                screen.add_line(f"    {kind.capitalize()}:")
                for subject in sorted(rules[kind]):
                    screen.add_line(f"      {subject}")


def _add_jetstream(
    screen: Columns, jetstream: dict[str, Any] | None, problem: str, max_payload: int
) -> None:
    domain = (jetstream or {}).get("domain", "")
    screen.add_section(
        f"JetStream Account Information for domain {domain}"
        if domain
        else "JetStream Account Information"
    )
    if jetstream is None:
        screen.add_line(problem)
        return
    screen.add_section("Account Usage")
    screen.add_row_if_not_empty("Domain", domain)
    screen.add_row("Storage", humanize.ibytes(jetstream.get("storage", 0)))
    screen.add_row("Memory", humanize.ibytes(jetstream.get("memory", 0)))
    screen.add_row("Streams", jetstream.get("streams", 0))
    screen.add_row("Consumers", jetstream.get("consumers", 0))
    screen.add_section("Account Limits")
    screen.add_row("Max Message Payload", humanize.ibytes(max_payload))
    tiers = jetstream.get("tiers") or {"Default": jetstream}
    for name in sorted(tiers):
        _add_tier(screen, name, tiers[name])


def _add_tier(screen: Columns, name: str, tier: dict[str, Any]) -> None:
    limits = tier.get("limits") or {}
    screen.indent(2)
    screen.add_section(f"Tier: {name}")
    screen.indent(4)
    screen.add_section("Configuration Requirements")
    screen.add_row("Stream Requires Max Bytes Set", bool(limits.get("max_bytes_required")))
    ack = limits.get("max_ack_pending", -1)
    screen.add_row(
        "Consumer Maximum Ack Pending",
        "Unlimited" if ack is None or ack <= 0 else humanize.comma(ack),
    )
    screen.add_section("Stream Resource Usage Limits")
    screen.add_row(
        "Memory",
        _used_of(
            tier.get("memory", 0), limits.get("max_memory", -1), tier.get("reserved_memory", 0)
        ),
    )
    screen.add_row("Memory Per Stream", _per_stream(limits.get("memory_max_stream_bytes", -1)))
    screen.add_row(
        "Storage",
        _used_of(
            tier.get("storage", 0), limits.get("max_storage", -1), tier.get("reserved_storage", 0)
        ),
    )
    screen.add_row("Storage Per Stream", _per_stream(limits.get("storage_max_stream_bytes", -1)))
    streams = limits.get("max_streams", -1)
    screen.add_row(
        "Streams",
        "Unlimited"
        if streams == -1
        else f"{humanize.comma(tier.get('streams', 0))} of {humanize.comma(streams)}",
    )
    consumers = limits.get("max_consumers", -1)
    screen.add_row(
        "Consumers",
        "Unlimited" if consumers == -1 else f"Maximum {humanize.comma(consumers)} per stream",
    )
    screen.indent(0)


def _used_of(used: int, limit: int, reserved: int) -> str:
    shown = f"{humanize.ibytes(used)} of {'Unlimited' if limit == -1 else humanize.ibytes(limit)}"
    return f"{shown} ({humanize.ibytes(reserved)} reserved)" if reserved else shown


def _per_stream(limit: int | None) -> str:
    return "Unlimited" if limit is None or limit <= 0 else humanize.ibytes(limit)
