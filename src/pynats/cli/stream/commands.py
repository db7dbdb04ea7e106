"""`nats stream` (aliases `str`, `st`, `ms`, `s`): JetStream stream management (cli.md §7).

    nats stream add ORDERS --subjects 'orders.>' --defaults     create, answering nothing
    nats stream add --config orders.json                         create from JSON (no prompts)
    nats stream ls / info ORDERS / state ORDERS / report         look
    nats stream edit ORDERS --max-msgs 1000 [--dry-run]          change what the flags say
    nats stream get ORDERS 5 / rmm ORDERS 5 / purge ORDERS       messages
    nats stream copy ORDERS ARCHIVE / rm ORDERS / view ORDERS    the rest
    nats stream backup ORDERS backups/orders / restore backups/orders   (backup.py)

Stream names are optional where natscli has them optional: missing or unknown ones are picked
from a list on a terminal, and are an error otherwise. Configurations are built in
config.py, screens and tables drawn in render.py, API calls made in api.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import TYPE_CHECKING, Any

import click

from pynats.cli.stream import backup as backup_commands
from pynats.cli.stream.api import (
    is_internal_stream,
    is_kv_stream,
    max_bytes_required,
    select_stream,
    stream_info,
    stream_list,
    stream_names,
    user_metadata,
    without_envelope,
)
from pynats.cli.stream.config import (
    STREAM_CONFIG_ORDER,
    STREAM_CONFIG_SCHEMA,
    StreamFlags,
    apply_flags,
    config_from_file,
    prepare_new_config,
    stream_config_options,
    validation_errors,
)
from pynats.cli.stream.diff import config_diff
from pynats.cli.stream.render import (
    BOOKKEEPING_HEADERS,
    REPORT_SORTS,
    decode_headers,
    leaders_table,
    missing_tables,
    replication_dot,
    replication_table,
    stored_message_heading,
    stream_info_screen,
    stream_report_table,
    streams_table,
)
from pynats.cli.ui import humanize, prompt
from pynats.cli.ui.command import NatsGroup, config_file_options, force_flag, json_flag
from pynats.cli.ui.connect import connection, js_api_prefix, js_request, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.jsconfig import edit_in_editor, load_config_file, write_validated
from pynats.cli.ui.messages import (
    JetStreamMeta,
    TranslateError,
    compact_body,
    go_quote,
    parse_js_ack,
    pretty_body,
    translate_body,
)
from pynats.cli.ui.options import ExistingFile
from pynats.cli.ui.output import log, out, out_raw, print_json
from pynats.cli.ui.parse import parse_duration_ns
from pynats.gotime import MINUTE, NS_PER_S, rfc3339

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

MAX_VIEW_PAGE = 25
KV_WARNING = """WARNING: Operating on the underlying stream of a Key-Value bucket is dangerous.

Key-Value stores are an abstraction above JetStream streams and as such require particular
configuration to be set. Interacting with KV buckets outside of the 'nats kv' subcommand can lead
unexpected outcomes, data loss and, technically, will mean your KV bucket is no longer a KV bucket.

Continuing this operation is an unsupported action.
"""


def all_option(function: Any) -> Any:
    """natscli's parent flag `-a/--all`, accepted after the verb too (`nats stream ls -a`)."""
    return click.option(
        "-a",
        "--all",
        "show_all",
        is_flag=True,
        help="When listing or selecting streams show all streams including system ones",
    )(function)


def show_all_streams(local: bool) -> bool:
    """`-a` given after the verb, or to the parent (`nats stream -a ls`)."""
    ctx = click.get_current_context()
    parent = ctx.parent.params.get("show_all") if ctx.parent is not None else False
    return bool(local or parent)


def register(root: NatsGroup) -> None:
    @root.group("stream", aliases=["str", "st", "ms", "s"], help="JetStream stream management")
    @all_option
    def stream(show_all: bool) -> None:
        """JetStream stream management."""

    @stream.command("add", aliases=["create", "new"], help="Create a new stream")
    @click.argument("name", metavar="STREAM", required=False, default="")
    @config_file_options()
    @stream_config_options(edit=False)
    @click.option("--defaults", is_flag=True, help="Accept default values for all prompts")
    @all_option
    def add(
        name: str,
        config_file: str,
        validate: bool,
        output_file: str,
        defaults: bool,
        as_json: bool,
        show_all: bool,
        **options: Any,
    ) -> None:
        flags = StreamFlags.take(options)
        run_async(add_stream(name, flags, config_file, validate, output_file, defaults, as_json))

    @stream.command("ls", aliases=["list", "l"], help="List all known streams")
    @click.option("--subject", default="", help="Limit the list to streams with matching subjects")
    @click.option("-n", "--names", is_flag=True, help="Show just the stream names")
    @json_flag()
    @all_option
    def ls(subject: str, names: bool, as_json: bool, show_all: bool) -> None:
        run_async(list_streams(subject, names, as_json, show_all_streams(show_all)))

    @stream.command("report", help="Reports on stream statistics")
    @click.option(
        "--subject", default="", help="Limit the report to streams with matching subjects"
    )
    @click.option("--cluster", default="", help="Limit report to streams within a specific cluster")
    @click.option(
        "-o", "--consumers", "by_consumers", is_flag=True, help="Sort by number of Consumers"
    )
    @click.option(
        "-m", "--messages", "by_messages", is_flag=True, help="Sort by number of Messages"
    )
    @click.option("-n", "--name", "by_name", is_flag=True, help="Sort by stream name")
    @click.option("-t", "--storage", "by_storage", is_flag=True, help="Sort by Storage type")
    @click.option("-r", "--raw", is_flag=True, help="Show un-formatted numbers")
    @click.option("--dot", default="", help="Produce a GraphViz graph of replication topology")
    @click.option("-l", "--leaders", is_flag=True, help="Show details about cluster leaders")
    @all_option
    def report(
        subject: str,
        cluster: str,
        by_consumers: bool,
        by_messages: bool,
        by_name: bool,
        by_storage: bool,
        raw: bool,
        dot: str,
        leaders: bool,
        show_all: bool,
    ) -> None:
        sort = (
            "consumers"
            if by_consumers
            else "messages"
            if by_messages
            else "name"
            if by_name
            else "storage"
            if by_storage
            else "bytes"
        )
        run_async(report_streams(subject, cluster, sort, raw, dot, leaders))

    def info_command(command_name: str, state_only: bool, **kwargs: Any) -> None:
        @stream.command(command_name, **kwargs)
        @click.argument("name", metavar="STREAM", required=False, default="")
        @json_flag()
        @click.option(
            "--state", is_flag=True, hidden=state_only, help="Shows only the stream state"
        )
        @click.option("--no-select", is_flag=True, help="Do not select streams from a list")
        @all_option
        def info(name: str, as_json: bool, state: bool, no_select: bool, show_all: bool) -> None:
            run_async(
                show_stream(
                    name, as_json, state_only or state, no_select, show_all_streams(show_all)
                )
            )

    info_command("info", False, aliases=["nfo", "i"], help="Stream information")
    info_command("state", True, help="Stream state")

    @stream.command("edit", aliases=["update"], help="Edits an existing stream")
    @click.argument("name", metavar="STREAM", required=False, default="")
    @click.option(
        "--config",
        "config_file",
        type=ExistingFile(),
        default="",
        help="JSON file to read configuration from",
    )
    @force_flag("Force edit without prompting")
    @click.option(
        "-i", "--interactive", is_flag=True, help="Edit the configuring using your editor"
    )
    @click.option("--dry-run", is_flag=True, help="Only shows differences, do not edit the stream")
    @stream_config_options(edit=True)
    @all_option
    def edit(
        name: str,
        config_file: str,
        force: bool,
        interactive: bool,
        dry_run: bool,
        as_json: bool,
        show_all: bool,
        **options: Any,
    ) -> None:
        flags = StreamFlags.take(options)
        run_async(
            edit_stream(
                name,
                flags,
                config_file,
                force,
                interactive,
                dry_run,
                as_json,
                show_all_streams(show_all),
            )
        )

    @stream.command("rm", aliases=["delete", "del"], help="Removes a stream")
    @click.argument("name", metavar="STREAM", required=False, default="")
    @force_flag("Force removal without prompting")
    @all_option
    def rm(name: str, force: bool, show_all: bool) -> None:
        run_async(remove_stream(name, force, show_all_streams(show_all)))

    @stream.command("purge", help="Bulk removes messages from a stream")
    @click.argument("name", metavar="STREAM", required=False, default="")
    @json_flag()
    @force_flag("Force removal without prompting")
    @click.option(
        "--subject", default="", metavar="SUBJECT", help="Limits the purge to a specific subject"
    )
    @click.option(
        "--seq",
        type=click.IntRange(min=0),
        default=0,
        metavar="SEQUENCE",
        help="Purge up to but not including a specific message sequence",
    )
    @click.option(
        "--keep",
        type=click.IntRange(min=0),
        default=0,
        metavar="MESSAGES",
        help="Keeps a certain number of messages after the purge",
    )
    @all_option
    def purge(
        name: str, as_json: bool, force: bool, subject: str, seq: int, keep: int, show_all: bool
    ) -> None:
        run_async(
            purge_stream(name, as_json, force, subject, seq, keep, show_all_streams(show_all))
        )

    @stream.command(
        "copy",
        aliases=["cp"],
        help="Creates a new stream based on the configuration of another, does not copy data",
    )
    @click.argument("source")
    @click.argument("destination")
    @stream_config_options(edit=False)
    @all_option
    def copy(source: str, destination: str, as_json: bool, show_all: bool, **options: Any) -> None:
        flags = StreamFlags.take(options)
        run_async(copy_stream(source, destination, flags, as_json, show_all_streams(show_all)))

    @stream.command("rmm", help="Securely removes an individual message from a stream")
    @click.argument("name", metavar="STREAM", required=False, default="")
    @click.argument("seq", required=False, default=-1, type=int)
    @force_flag("Force removal without prompting")
    @all_option
    def rmm(name: str, seq: int, force: bool, show_all: bool) -> None:
        run_async(remove_message(name, seq, force, show_all_streams(show_all)))

    @stream.command("view", help="View messages in a stream")
    @click.argument("name", metavar="STREAM", required=False, default="")
    @click.argument("size", required=False, default=10, type=int)
    @click.option(
        "--id", "start_id", type=int, default=0, help="Start at a specific message Sequence"
    )
    @click.option(
        "--since", default="", help="Delivers messages received since a duration like 1d3h5m2s"
    )
    @click.option("--raw", is_flag=True, help="Show the raw data received")
    @click.option(
        "--translate",
        default="",
        help="Translate the message data by running it through the given command before output",
    )
    @click.option("--subject", default="", help="Filter the stream using a subject")
    @all_option
    def view(
        name: str,
        size: int,
        start_id: int,
        since: str,
        raw: bool,
        translate: str,
        subject: str,
        show_all: bool,
    ) -> None:
        run_async(
            view_stream(
                name, size, start_id, since, raw, translate, subject, show_all_streams(show_all)
            )
        )

    @stream.command("get", help="Retrieves a specific message from a Stream")
    @click.argument("name", metavar="STREAM", required=False, default="")
    @click.argument("seq", required=False, default=-1, type=int)
    @click.option(
        "-S",
        "--last-for",
        default="",
        metavar="SUBJECT",
        help="Retrieves the message for a specific subject",
    )
    @json_flag()
    @click.option(
        "--translate",
        default="",
        help="Translate the message data by running it through the given command before output",
    )
    @all_option
    def get(
        name: str, seq: int, last_for: str, as_json: bool, translate: str, show_all: bool
    ) -> None:
        run_async(get_message(name, seq, last_for, as_json, translate, show_all_streams(show_all)))

    backup_commands.register(stream, all_option)


# -- shared steps ---------------------------------------------------------------------------------


async def pick_stream(
    nc: Client, name: str, *, show_all: bool, no_select: bool = False
) -> tuple[str, dict[str, Any] | None]:
    """natscli's connectAndAskStream: the named stream, or one picked from a list."""
    try:
        return await select_stream(nc, name, show_all=show_all, no_select=no_select)
    except CliError as exc:
        raise CliError(f"could not pick a Stream to operate on: {exc}") from None


async def load_info(
    nc: Client, name: str, info: dict[str, Any] | None, context: str
) -> dict[str, Any]:
    if info is not None:
        return info
    try:
        return await stream_info(nc, name)
    except CliError as exc:
        raise CliError(f"{context}: {exc}") from None


def warn_about_kv(name: str) -> None:
    """The warning natscli shows before changing the stream behind a KV bucket."""
    if not is_kv_stream(name):
        return
    out(KV_WARNING)
    if not prompt.ask_confirmation("Really operate on the KV stream?"):
        raise CliError("aborting Key-Value store operation")


def show_info(info: dict[str, Any], name: str, *, as_json: bool, state_only: bool = False) -> None:
    if as_json:
        print_json(info)
    else:
        out(stream_info_screen(info, name, state_only=state_only).render(), end="")


# -- add / copy / edit -------------------------------------------------------------------------------


async def add_stream(
    name: str,
    flags: StreamFlags,
    config_file: str,
    validate: bool,
    output_file: str,
    defaults: bool,
    as_json: bool,
) -> None:
    async with connection() as nc:
        require_size = await max_bytes_required(nc)
        if config_file:
            config = config_from_file(flags, config_file, name)
        else:
            config = prepare_new_config(flags, name, defaults=defaults, require_size=require_size)
        name = config.get("name", "")
        if validate or output_file:
            write_validated(
                config,
                validate=validate,
                output_file=output_file,
                order=STREAM_CONFIG_ORDER,
                checks=validation_errors,
                valid_text=f"Configuration is a valid Stream matching {STREAM_CONFIG_SCHEMA}",
            )
            return
        try:
            created = await js_request(nc, f"STREAM.CREATE.{name}", config)
        except CliError as exc:
            raise CliError(f"could not create Stream: {exc}") from None
        out(f"Stream {name} was created\n")
        show_info(without_envelope(created), name, as_json=as_json)


async def copy_stream(
    source: str, destination: str, flags: StreamFlags, as_json: bool, show_all: bool
) -> None:
    if source == destination:
        raise CliError("source and destination Stream names cannot be the same")
    async with connection() as nc:
        source, info = await pick_stream(nc, source, show_all=show_all)
        info = await load_info(nc, source, info, f"could not request Stream {source} configuration")
        try:
            config = apply_flags(info.get("config") or {}, flags)
        except CliError as exc:
            raise CliError(f"could not copy Stream {source}: {exc}") from None
        config["name"] = destination
        config["metadata"] = user_metadata(config.get("metadata"))
        try:
            created = await js_request(nc, f"STREAM.CREATE.{destination}", config)
        except CliError as exc:
            raise CliError(f"could not create Stream: {exc}") from None
        if not as_json:
            out(f"Stream {destination} was created\n")
        show_info(without_envelope(created), destination, as_json=as_json)


async def edit_stream(
    name: str,
    flags: StreamFlags,
    config_file: str,
    force: bool,
    interactive: bool,
    dry_run: bool,
    as_json: bool,
    show_all: bool,
) -> None:
    async with connection() as nc:
        name, info = await pick_stream(nc, name, show_all=show_all)
        info = await load_info(nc, name, info, f"could not request Stream {name} configuration")
        current = dict(info.get("config") or {})
        current["metadata"] = user_metadata(current.get("metadata"))
        if not current["metadata"]:
            current.pop("metadata")
        try:
            if interactive:
                wanted = edit_in_editor(current)
            elif config_file:
                wanted = load_config_file(config_file)
                wanted["name"] = name
            else:
                wanted = apply_flags(current, flags)
        except CliError as exc:
            raise CliError(f"could not create new configuration for Stream {name}: {exc}") from None
        difference = config_diff(current, wanted, "api.StreamConfig")
        if not difference:
            if not dry_run:
                out("No difference in configuration")
            return
        out(f"Differences (-old +new):\n{difference}", end="")
        if dry_run:
            raise click.exceptions.Exit(1)
        warn_about_kv(name)
        if not force and not prompt.ask_confirmation(f"Really edit Stream {name}"):
            return
        try:
            updated = await js_request(nc, f"STREAM.UPDATE.{name}", wanted)
        except CliError as exc:
            raise CliError(f"could not edit Stream {name}: {exc}") from None
        if not as_json:
            out(f"Stream {name} was updated\n")
        show_info(without_envelope(updated), name, as_json=as_json)


# -- looking ---------------------------------------------------------------------------------------


async def show_stream(
    name: str, as_json: bool, state_only: bool, no_select: bool, show_all: bool
) -> None:
    async with connection() as nc:
        name, info = await pick_stream(nc, name, show_all=show_all, no_select=no_select)
        info = await load_info(nc, name, info, "could not request Stream info")
    show_info(info, name, as_json=as_json, state_only=state_only)
    out()


async def list_streams(subject: str, names_only: bool, as_json: bool, show_all: bool) -> None:
    async with connection() as nc:
        if names_only:
            names = await stream_names(nc, subject)
            if as_json:
                print_json(names)
            else:
                for stream_name in names:
                    out(stream_name)
            return
        try:
            infos, missing, offline = await stream_list(nc, subject)
        except CliError as exc:
            raise CliError(f"could not list streams: {exc}") from None
    shown = [i for i in infos if show_all or not is_internal_stream(i["config"]["name"])]
    skipped = len(shown) != len(infos)
    if as_json:
        # natscli prints its nil name list as `null` when nothing is shown
        print_json([i["config"]["name"] for i in shown] or None)
        return
    if not shown and not missing and not offline:
        out(
            "No Streams defined, pass -a to include system streams"
            if skipped
            else "No Streams defined"
        )
        return
    out(streams_table(shown, subject).render() + missing_tables(missing, offline))


async def report_streams(
    subject: str, cluster: str, sort: str, raw: bool, dot: str, show_leaders: bool
) -> None:
    out("Obtaining Stream stats\n")
    async with connection() as nc:
        infos, missing, offline = await stream_list(nc, subject)
    if cluster:
        infos = [i for i in infos if (i.get("cluster") or {}).get("name", "") == cluster]
    if not infos and not missing and not offline:
        out("No Streams defined")
        return
    infos.sort(key=REPORT_SORTS[sort])
    out(stream_report_table(infos, raw=raw).render(), end="")
    replicated = [i for i in infos if i.get("mirror") or i.get("sources")]
    if any(
        (i.get("config") or {}).get("mirror") or (i.get("config") or {}).get("sources")
        for i in infos
    ):
        out(replication_table(replicated, raw=raw).render(), end="")
        if dot:
            with open(dot, "w") as stream:
                stream.write(replication_dot(infos))
    leaders: dict[str, tuple[str, int]] = {}
    for info in infos:
        group = info.get("cluster") or {}
        if group.get("leader"):
            cluster_name, count = leaders.get(group["leader"], (group.get("name", ""), 0))
            leaders[group["leader"]] = (cluster_name, count + 1)
    if show_leaders and leaders:
        out(leaders_table(leaders, "Streams").render(), end="")
    extra = missing_tables(missing, offline)
    if extra:
        out(extra)


# -- removing -----------------------------------------------------------------------------------------


async def remove_stream(name: str, force: bool, show_all: bool) -> None:
    if force:
        if not name:
            raise CliError("--force requires a stream name")
        async with connection() as nc:
            try:
                await js_request(nc, f"STREAM.DELETE.{name}")
            except CliError as exc:
                if str(exc) == "nats: timeout":
                    out(
                        "Delete failed due to timeout, the stream might not exist or be in an unmanageable state"
                    )
                raise
        return
    async with connection() as nc:
        name, _ = await pick_stream(nc, name, show_all=show_all)
        if not prompt.ask_confirmation(f"Really delete Stream {name}"):
            return
        try:
            await js_request(nc, f"STREAM.DELETE.{name}")
        except CliError as exc:
            raise CliError(f"could not remove Stream: {exc}") from None


async def purge_stream(
    name: str, as_json: bool, force: bool, subject: str, seq: int, keep: int, show_all: bool
) -> None:
    async with connection() as nc:
        name, info = await pick_stream(nc, name, show_all=show_all)
        if not force and not prompt.ask_confirmation(f"Really purge Stream {name}"):
            return
        warn_about_kv(name)
        await load_info(nc, name, info, "could not purge Stream")
        request: dict[str, Any] | None = None
        if keep or subject or seq:
            if seq and keep:
                raise CliError("sequence and keep cannot be combined when purging")
            request = {}
            if subject:
                request["filter"] = subject
            if seq:
                request["seq"] = seq
            if keep:
                request["keep"] = keep
        try:
            reply = await js_request(nc, f"STREAM.PURGE.{name}", request)
        except CliError as exc:
            raise CliError(f"could not purge Stream: {exc}") from None
        out(f"Purged {reply.get('purged', 0)} messages from {name}\n")
        info = await stream_info(nc, name)
    show_info(info, name, as_json=as_json, state_only=True)


async def remove_message(name: str, seq: int, force: bool, show_all: bool) -> None:
    async with connection() as nc:
        name, info = await pick_stream(nc, name, show_all=show_all)
        if seq == -1:
            answer = prompt.prompted(
                "invalid input", prompt.ask, "Message Sequence to remove", required=True
            )
            seq = _number(answer)
            if seq <= 0:
                raise CliError("positive message ID required")
        await load_info(nc, name, info, f"could not load Stream {name}")
        warn_about_kv(name)
        if not force and not prompt.ask_confirmation(
            f"Really remove message {seq} from Stream {name}"
        ):
            return
        await js_request(nc, f"STREAM.MSG.DELETE.{name}", {"seq": seq})


def _number(answer: str) -> int:
    try:
        return int(answer)
    except ValueError:
        raise CliError(
            f"invalid number: strconv.Atoi: parsing {go_quote(answer)}: invalid syntax"
        ) from None


# -- reading messages --------------------------------------------------------------------------------


async def get_message(
    name: str, seq: int, subject: str, as_json: bool, translate: str, show_all: bool
) -> None:
    async with connection() as nc:
        name, info = await pick_stream(nc, name, show_all=show_all)
        if seq == -1 and not subject:
            seq = _number(
                prompt.prompted(
                    "invalid input", prompt.ask, "Message Sequence to retrieve", "-1", required=True
                )
            )
            if seq == -1:
                subject = prompt.prompted(
                    "invalid subject", prompt.ask, "Subject to retrieve last message for"
                )
        await load_info(nc, name, info, f"could not load Stream {name}")
        if seq > -1:
            request: dict[str, Any] = {"seq": seq}
        elif subject:
            request = {"last_by_subj": subject}
        else:
            raise CliError("no ID or subject specified")
        try:
            reply = await js_request(nc, f"STREAM.MSG.GET.{name}", request)
        except CliError as exc:
            raise CliError(f"could not retrieve {name}#{seq}: {exc}") from None
    message = reply.get("message") or {}
    if as_json:
        print_json(message)
        return
    out(stored_message_heading(name, message) + "\n")
    headers = decode_headers(message.get("hdrs"))
    if headers:
        out("Headers:")
        for key, value in headers:
            out(f"  {key}: {value}")
        out()
    data = _decoded(message.get("data"))
    show_body(data, translate, message.get("subject", ""), name)


def _decoded(data: str | None) -> bytes:
    return base64.b64decode(data) if data else b""


def show_body(data: bytes, translate: str, subject: str, stream: str) -> None:
    """natscli's outPutMSGBody: the pretty body, through `--translate` when given."""
    if translate and data:
        try:
            data = translate_body(data, translate, subject, stream)
        except TranslateError as exc:
            out(
                f"{go_quote(data.decode(errors='replace'))}\nError while translating msg body: {exc}\n"
            )
            return
    out_raw(pretty_body(data))


async def view_stream(
    name: str,
    size: int,
    start_id: int,
    since: str,
    raw: bool,
    translate: str,
    subject: str,
    show_all: bool,
) -> None:
    """An interactive pager: `size` messages, then `Next Page?`, until the end of the stream."""
    if not prompt.can_prompt():
        raise CliError("interactive stream paging requires a valid terminal")
    if size > MAX_VIEW_PAGE:
        log("Page size is limited to 25, setting to 25...")
        size = MAX_VIEW_PAGE
    size = max(size, 1)
    config: dict[str, Any] = {
        "ack_policy": "none",
        "deliver_policy": "all",
        "inactive_threshold": 5 * MINUTE,
    }
    if since:
        try:
            delta = parse_duration_ns(since)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        config.update(
            deliver_policy="by_start_time", opt_start_time=rfc3339(time.time_ns() - delta)
        )
    elif start_id > 0:
        config.update(deliver_policy="by_start_sequence", opt_start_seq=start_id)
    if subject:
        config["filter_subject"] = subject
    async with connection() as nc:
        name, _ = await pick_stream(nc, name, show_all=show_all)
        created = await js_request(
            nc, f"CONSUMER.CREATE.{name}", {"stream_name": name, "config": config}
        )
        consumer = created.get("name", "")
        try:
            await _page_through(nc, name, consumer, size, raw, translate)
        finally:
            try:
                await asyncio.wait_for(js_request(nc, f"CONSUMER.DELETE.{name}.{consumer}"), 1)
            except (TimeoutError, CliError):
                pass  # the server removes the idle consumer by itself


async def _page_through(
    nc: Client, stream: str, consumer: str, size: int, raw: bool, translate: str
) -> None:
    subject = f"{js_api_prefix()}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
    while True:
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        request = {"batch": size, "expires": NS_PER_S, "no_wait": True}
        await nc.publish(subject, json.dumps(request).encode(), reply=inbox)
        shown = 0
        last_pending = None
        try:
            while shown < size:
                try:
                    msg = await sub.next_msg(timeout=2)
                except Exception:  # nats-py's timeout: the stream has no more for us
                    break
                meta = parse_js_ack(msg.reply)
                if meta is None:
                    break  # a status (404 No Messages, 408): the end of what is there
                shown += 1
                last_pending = meta.pending
                show_paged_message(msg, meta, raw, translate, stream)
                if meta.pending == 0:
                    break
        finally:
            await sub.unsubscribe()
        if shown == 0 or last_pending == 0:
            log("Reached apparent end of data")
            return
        if not prompt.ask_confirmation("Next Page?", True):
            return


def show_paged_message(
    msg: Msg, meta: JetStreamMeta, raw: bool, translate: str, stream: str
) -> None:
    if raw:
        out_raw(compact_body(msg.data) if msg.data else b"\n")
        return
    stamp = humanize.utc_time(meta.timestamp_ns)
    out(f"[{meta.stream_seq}] Subject: {msg.subject} Received: {humanize.local_time(stamp)}")
    headers = [(k, v) for k, v in (msg.headers or {}).items() if k not in BOOKKEEPING_HEADERS]
    if headers:
        out()
        for key, value in headers:
            out(f"  {key}: {value}")
    show_body(msg.data, translate, msg.subject, stream)
