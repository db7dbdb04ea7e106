"""`nats consumer` (aliases `con`, `obs`, `c`): JetStream consumer management (cli.md §8).

    nats consumer add ORDERS PROC --pull --defaults       a pull consumer, no questions asked
    nats consumer add ORDERS PUSH --target out.orders ...  a push consumer
    nats consumer ls ORDERS / info ORDERS PROC / report ORDERS
    nats consumer next ORDERS PROC --count 10 [--no-ack]  fetch from a pull consumer
    nats consumer edit ORDERS PROC --max-deliver 5 [--dry-run]
    nats consumer rm ORDERS PROC -f

Missing stream or consumer names are picked from lists on a terminal (and are errors
otherwise), as for streams. Configurations come from config.py, screens and tables
from render.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from typing import TYPE_CHECKING, Any

import click
import nats.errors

from pynats.cli.consumer.config import (
    CONSUMER_CONFIG_ORDER,
    ConsumerFlags,
    apply_flags,
    config_from_file,
    consumer_config_options,
    prepare_new_config,
    validation_errors,
)
from pynats.cli.consumer.render import (
    consumer_info_screen,
    consumer_report_table,
    consumers_table,
)
from pynats.cli.stream.api import (
    consumer_info,
    consumer_list,
    consumer_names,
    select_consumer,
    select_stream,
    stream_info,
    user_metadata,
    without_envelope,
)
from pynats.cli.stream.commands import all_option, show_all_streams
from pynats.cli.stream.diff import config_diff
from pynats.cli.stream.render import leaders_table, missing_tables
from pynats.cli.ui import prompt
from pynats.cli.ui.command import NatsGroup, config_file_options, force_flag, json_flag
from pynats.cli.ui.connect import connection, js_api_prefix, js_request, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.jsconfig import edit_in_editor, load_config_file, write_validated
from pynats.cli.ui.messages import parse_js_ack, status_of
from pynats.cli.ui.options import ExistingFile, current_settings
from pynats.cli.ui.output import log, out, out_raw, print_json
from pynats.cli.ui.parse import DURATION
from pynats.gotime import NS_PER_S, format_duration

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg


def register(root: NatsGroup) -> None:
    @root.group("consumer", aliases=["con", "obs", "c"], help="JetStream Consumer management")
    @all_option
    def consumer(show_all: bool) -> None:
        """JetStream Consumer management."""

    @consumer.command("add", aliases=["create", "new"], help="Creates a new Consumer")
    @click.argument("stream", metavar="STREAM", required=False, default="")
    @click.argument("name", metavar="CONSUMER", required=False, default="")
    @config_file_options()
    @consumer_config_options(edit=False)
    @click.option("--defaults", is_flag=True, help="Accept default values for all prompts")
    @all_option
    def add(
        stream: str,
        name: str,
        config_file: str,
        validate: bool,
        output_file: str,
        defaults: bool,
        show_all: bool,
        **options: Any,
    ) -> None:
        flags = ConsumerFlags.take(options)
        run_async(
            add_consumer(
                stream,
                name,
                flags,
                config_file,
                validate,
                output_file,
                defaults,
                show_all_streams(show_all),
            )
        )

    @consumer.command("edit", aliases=["update"], help="Edits the configuration of a consumer")
    @click.argument("stream", metavar="STREAM", required=False, default="")
    @click.argument("name", metavar="CONSUMER", required=False, default="")
    @click.option(
        "--config",
        "config_file",
        type=ExistingFile(),
        default="",
        help="JSON file to read configuration from",
    )
    @force_flag("Force removal without prompting")
    @click.option(
        "-i", "--interactive", is_flag=True, help="Edit the configuring using your editor"
    )
    @click.option("--dry-run", is_flag=True, help="Only shows differences, do not edit the stream")
    @consumer_config_options(edit=True)
    @all_option
    def edit(
        stream: str,
        name: str,
        config_file: str,
        force: bool,
        interactive: bool,
        dry_run: bool,
        show_all: bool,
        **options: Any,
    ) -> None:
        flags = ConsumerFlags.take(options)
        run_async(
            edit_consumer(
                stream,
                name,
                flags,
                config_file,
                force,
                interactive,
                dry_run,
                show_all_streams(show_all),
            )
        )

    @consumer.command("ls", aliases=["list"], help="List known Consumers")
    @click.argument("stream", metavar="STREAM", required=False, default="")
    @json_flag()
    @click.option("-n", "--names", is_flag=True, help="Show just the consumer names")
    @click.option("--no-select", is_flag=True, help="Do not select consumers from a list")
    @all_option
    def ls(stream: str, as_json: bool, names: bool, no_select: bool, show_all: bool) -> None:
        run_async(list_consumers(stream, as_json, names, no_select, show_all_streams(show_all)))

    def info_command(command_name: str, state_only: bool, **kwargs: Any) -> None:
        @consumer.command(command_name, **kwargs)
        @click.argument("stream", metavar="STREAM", required=False, default="")
        @click.argument("name", metavar="CONSUMER", required=False, default="")
        @json_flag()
        @click.option("--no-select", is_flag=True, help="Do not select consumers from a list")
        @all_option
        def info(stream: str, name: str, as_json: bool, no_select: bool, show_all: bool) -> None:
            run_async(
                show_consumer(
                    stream, name, as_json, state_only, no_select, show_all_streams(show_all)
                )
            )

    info_command("info", False, aliases=["nfo"], help="Consumer information")
    info_command("state", True, help="Consumer state")

    @consumer.command("rm", aliases=["delete", "del"], help="Removes a Consumer")
    @click.argument("stream", metavar="STREAM", required=False, default="")
    @click.argument("name", metavar="CONSUMER", required=False, default="")
    @force_flag("Force removal without prompting")
    @all_option
    def rm(stream: str, name: str, force: bool, show_all: bool) -> None:
        run_async(remove_consumer(stream, name, force, show_all_streams(show_all)))

    @consumer.command(
        "next", help="Retrieves messages from Pull Consumers without interactive prompts"
    )
    @click.argument("stream")
    @click.argument("consumer")
    @click.option("--ack/--no-ack", default=None, help="Acknowledge received message")
    @click.option("--nak", is_flag=True, help="Perform a Negative Acknowledgement on the message")
    @click.option("--term", is_flag=True, help="Terms the message")
    @click.option("-r", "--raw", is_flag=True, help="Show only the message")
    @click.option(
        "--wait",
        type=DURATION,
        default=0,
        metavar="DURATION",
        help="Wait up to this period to acknowledge messages",
    )
    @click.option(
        "--count",
        type=int,
        default=1,
        help="Number of messages to try to fetch from the pull consumer",
    )
    @all_option
    def next_message(
        stream: str,
        consumer: str,
        ack: bool | None,
        nak: bool,
        term: bool,
        raw: bool,
        wait: int,
        count: int,
        show_all: bool,
    ) -> None:
        acknowledge = True if ack is None else ack
        if term:
            if ack is None:
                acknowledge = False
            if acknowledge or nak:
                raise CliError("can not both Acknowledge and Terminate message")
        run_async(next_messages(stream, consumer, count, acknowledge, nak, term, raw, wait))

    @consumer.command("report", help="Reports on Consumer statistics")
    @click.argument("stream", metavar="STREAM", required=False, default="")
    @click.option("-r", "--raw", is_flag=True, help="Show un-formatted numbers")
    @click.option("-l", "--leaders", is_flag=True, help="Show details about the leaders")
    @all_option
    def report(stream: str, raw: bool, leaders: bool, show_all: bool) -> None:
        run_async(report_consumers(stream, raw, leaders, show_all_streams(show_all)))


# -- shared steps -----------------------------------------------------------------------------


async def setup(
    nc: Client,
    stream: str,
    name: str,
    *,
    ask_consumer: bool,
    show_all: bool,
    no_select: bool = False,
) -> tuple[str, str, dict[str, Any] | None]:
    """natscli's connectAndSetup: the stream (and consumer), picked from lists when needed."""
    if stream and name:
        try:
            return stream, name, await consumer_info(nc, stream, name)
        except CliError:
            pass
    try:
        stream, _ = await select_stream(nc, stream, show_all=show_all, no_select=no_select)
    except CliError as exc:
        raise CliError(f"could not select Stream: {exc}") from None
    if not ask_consumer:
        return stream, name, None
    try:
        name, info = await select_consumer(nc, stream, name, no_select=no_select)
    except CliError as exc:
        raise CliError(f"could not select Consumer: {exc}") from None
    return stream, name, info


def show_info(info: dict[str, Any], *, as_json: bool, state_only: bool = False) -> None:
    if as_json:
        print_json(info)
    else:
        out(consumer_info_screen(info, state_only=state_only).render(), end="")


async def create(nc: Client, stream: str, config: dict[str, Any], action: str) -> dict[str, Any]:
    """CONSUMER.CREATE with natscli's subjects: named for durables and named ephemerals."""
    name = config.get("durable_name") or config.get("name") or ""
    subject = f"CONSUMER.CREATE.{stream}.{name}" if name else f"CONSUMER.CREATE.{stream}"
    request: dict[str, Any] = {"stream_name": stream, "config": config}
    if action:
        request["action"] = action
    return without_envelope(await js_request(nc, subject, request))


# -- add / edit -----------------------------------------------------------------------------------


async def add_consumer(
    stream: str,
    name: str,
    flags: ConsumerFlags,
    config_file: str,
    validate: bool,
    output_file: str,
    defaults: bool,
    show_all: bool,
) -> None:
    async with connection() as nc:
        stream, _, _ = await setup(nc, stream, "", ask_consumer=False, show_all=show_all)
        if config_file:
            config = config_from_file(config_file, name, flags.target)
        else:
            config = prepare_new_config(flags, name, defaults=defaults)
        if validate or output_file:
            write_validated(
                config,
                validate=validate,
                output_file=output_file,
                order=CONSUMER_CONFIG_ORDER,
                checks=validation_errors,
                valid_text="Configuration is a valid Consumer",
            )
            return
        try:
            created = await create(nc, stream, config, "create")
        except CliError as exc:
            raise CliError(f"Consumer creation failed: {exc}") from None
    show_info(created, as_json=False)


async def edit_consumer(
    stream: str,
    name: str,
    flags: ConsumerFlags,
    config_file: str,
    force: bool,
    interactive: bool,
    dry_run: bool,
    show_all: bool,
) -> None:
    async with connection() as nc:
        stream, name, info = await setup(nc, stream, name, ask_consumer=True, show_all=show_all)
        if info is None:
            try:
                info = await consumer_info(nc, stream, name)
            except CliError as exc:
                raise CliError(f"could not load Consumer: {exc}") from None
        current = dict(info.get("config") or {})
        if not current.get("durable_name"):
            raise CliError("only durable consumers can be edited")
        current["metadata"] = user_metadata(current.get("metadata"))
        if not current["metadata"]:
            current.pop("metadata")
        try:
            if interactive:
                wanted = edit_in_editor(current)
            elif config_file:
                wanted = load_config_file(config_file, "consumer")
            else:
                wanted = apply_flags(current, flags)
        except CliError as exc:
            raise CliError(
                f"could not create new configuration for Consumer {name}: {exc}"
            ) from None
        if wanted.get("backoff") and wanted.get("ack_wait") != current.get("ack_wait"):
            raise CliError("consumers with backoff policies do not support editing Ack Wait")
        if "metadata" in wanted:
            wanted["metadata"] = user_metadata(wanted["metadata"])
        difference = config_diff(current, wanted, "api.ConsumerConfig")
        if not difference:
            if not dry_run:
                out("No difference in configuration")
            return
        out(f"Differences (-old +new):\n{difference}", end="")
        if dry_run:
            raise click.exceptions.Exit(1)
        if not force and not prompt.ask_confirmation(f"Really edit Consumer {stream} > {name}"):
            return
        updated = await create(nc, stream, wanted, "")
    show_info(updated, as_json=False)


# -- looking ---------------------------------------------------------------------------------------


async def show_consumer(
    stream: str, name: str, as_json: bool, state_only: bool, no_select: bool, show_all: bool
) -> None:
    async with connection() as nc:
        stream, name, info = await setup(
            nc, stream, name, ask_consumer=True, show_all=show_all, no_select=no_select
        )
        if info is None:
            try:
                info = await consumer_info(nc, stream, name)
            except CliError as exc:
                raise CliError(f"could not load Consumer {stream} > {name}: {exc}") from None
    show_info(info, as_json=as_json, state_only=state_only)


async def list_consumers(
    stream: str, as_json: bool, names_only: bool, no_select: bool, show_all: bool
) -> None:
    async with connection() as nc:
        stream, _, _ = await setup(
            nc, stream, "", ask_consumer=False, show_all=show_all, no_select=no_select
        )
        try:
            await stream_info(nc, stream)
            names = await consumer_names(nc, stream)
        except CliError as exc:
            raise CliError(f"could not load Consumers: {exc}") from None
        if as_json:
            print_json(names)
            return
        if names_only:
            for consumer_name in names:
                out(consumer_name)
            return
        if not names:
            out("No Consumers defined")
            return
        infos, missing = await consumer_list(nc, stream)
    out(consumers_table(infos).render() + missing_tables(missing, {}, "Consumers"))


async def report_consumers(stream: str, raw: bool, show_leaders: bool, show_all: bool) -> None:
    async with connection() as nc:
        stream, _, _ = await setup(nc, stream, "", ask_consumer=False, show_all=show_all)
        info = await stream_info(nc, stream)
        infos, missing = await consumer_list(nc, stream)
    state = info.get("state") or {}
    infos.sort(key=lambda i: i.get("name", ""))
    table = consumer_report_table(
        stream,
        int(state.get("messages", 0)),
        int(state.get("consumer_count", 0)),
        infos,
        raw=raw,
    )
    out(table.render(), end="")
    leaders: dict[str, tuple[str, int]] = {}
    for consumer_state in infos:
        group = consumer_state.get("cluster") or {}
        if group.get("leader"):
            cluster_name, count = leaders.get(group["leader"], (group.get("name", ""), 0))
            leaders[group["leader"]] = (cluster_name, count + 1)
    if show_leaders and leaders:
        out(leaders_table(leaders, "Consumers").render(), end="")
    extra = missing_tables(missing, {}, "Consumers")
    if extra:
        out(extra)


# -- removing ----------------------------------------------------------------------------------------


async def remove_consumer(stream: str, name: str, force: bool, show_all: bool) -> None:
    if force:
        if not stream or not name:
            raise CliError("--force requires a stream and consumer name")
        async with connection() as nc:
            try:
                await js_request(nc, f"CONSUMER.DELETE.{stream}.{name}")
            except CliError as exc:
                if str(exc) == "nats: timeout":
                    out(
                        "Delete failed due to timeout, the stream or consumer might not exist "
                        "or be in an unmanageable state"
                    )
                raise
        return
    async with connection() as nc:
        stream, name, _ = await setup(nc, stream, name, ask_consumer=True, show_all=show_all)
        if not prompt.ask_confirmation(f"Really delete Consumer {stream} > {name}"):
            return
        await js_request(nc, f"CONSUMER.DELETE.{stream}.{name}")


# -- next ------------------------------------------------------------------------------------------


async def next_messages(
    stream: str,
    name: str,
    count: int,
    ack: bool,
    nak: bool,
    term: bool,
    raw: bool,
    wait_ns: int,
) -> None:
    async with connection() as nc:
        try:
            known: dict[str, Any] | None = await consumer_info(nc, stream, name)
        except CliError:
            known = None
        for _ in range(count):
            await fetch_one(nc, stream, name, known, ack, nak, term, raw, wait_ns)


async def fetch_one(
    nc: Client,
    stream: str,
    name: str,
    known: dict[str, Any] | None,
    ack: bool,
    nak: bool,
    term: bool,
    raw: bool,
    wait_ns: int,
) -> None:
    """One pull request for one message, printed and then acknowledged as the flags say."""
    import nats.errors

    settings = current_settings()
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, max_msgs=1)
    subject = f"{js_api_prefix()}.CONSUMER.MSG.NEXT.{stream}.{name}"
    request = json.dumps({"batch": 1, "expires": int(settings.timeout_s * NS_PER_S)})
    if settings.trace:
        log(f">>> {subject}: {request}")
    await nc.publish(subject, request.encode(), reply=inbox)

    async def refuse_unless_pull() -> None:
        info = known
        if info is None:
            try:
                info = await consumer_info(nc, stream, name)
            except CliError as exc:
                raise CliError(f'could not load consumer "{name}": {exc}') from None
        if (info.get("config") or {}).get("deliver_subject"):
            raise CliError(f'consumer "{name}" is not a Pull consumer')

    try:
        msg = await sub.next_msg(timeout=settings.timeout_s)
    except (TimeoutError, nats.errors.TimeoutError):
        await refuse_unless_pull()
        raise CliError("no message received: nats: timeout") from None
    status = status_of(msg)
    if status:
        await refuse_unless_pull()
        if status in ("404", "408"):
            raise CliError("no message received: nats: timeout")
        if status == "503":
            raise CliError("no message received: nats: no responders available for request")
        description = (msg.headers or {}).get("Description", "")
        raise CliError(f"no message received: {status} {description}".rstrip())
    show_message(msg, raw)
    await settle(nc, msg, ack, nak, term, raw, wait_ns, settings.trace)


def show_message(msg: Msg, raw: bool) -> None:
    if raw:
        out_raw(msg.data + b"\n")
        return
    meta = parse_js_ack(msg.reply)
    if meta is None:
        out(f"--- subject: {msg.subject}" + (f" reply: {msg.reply}" if msg.reply else ""))
    else:
        now = dt.datetime.now().strftime("%H:%M:%S")
        out(
            f"[{now}] subj: {msg.subject} / tries: {meta.delivered} / cons seq: "
            f"{meta.consumer_seq} / str seq: {meta.stream_seq} / pending: {meta.pending:,}"
        )
    if msg.headers:
        out("\nHeaders:\n")
        for key, value in msg.headers.items():
            out(f"  {key}: {value}")
        out("\nData:\n")
    out()
    out_raw(msg.data + b"\n")


async def settle(
    nc: Client, msg: Msg, ack: bool, nak: bool, term: bool, raw: bool, wait_ns: int, trace: bool
) -> None:
    """Terminate, or (after the optional random --wait) acknowledge or NAK the message."""
    if term:
        await nc.publish(msg.reply, b"+TERM")
        await nc.flush()
        out("\nTerminated message")
    if not (ack or nak):
        return
    delay = random.randrange(wait_ns) if wait_ns > 0 else 0
    if delay:
        await asyncio.sleep(delay / NS_PER_S)
    response = b"-NAK" if nak else b"+ACK"
    if trace:
        log(f">>> {msg.reply}: {response.decode()}")
    # As a request (the server answers once the ack is processed), so that the next fetch
    # of `--count` sees a NAKed message again: nats-server handles acks asynchronously.
    try:
        await nc.request(msg.reply, response, timeout=2)
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        pass
    if raw:
        return
    negative = "Negative " if nak else ""
    if delay:
        out(f"\n{negative}Acknowledged message after {format_duration(delay)} delay\n")
    else:
        out(f"\n{negative}Acknowledged message\n")
