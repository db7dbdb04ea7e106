"""`nats kv`: JetStream Key-Value buckets, through nats-py's KeyValue API (cli.md §9).

    nats kv add CONFIG --history 5 --ttl 1h     create a bucket, show its info screen
    nats kv put CONFIG db.host db01              store a value (no value: read stdin)
    nats kv get CONFIG db.host [--raw]           show a value (--raw: the exact bytes)
    nats kv ls [CONFIG]                          buckets, or the keys of one bucket
    nats kv watch CONFIG 'db.>'                  one line per change, flushed as it comes
    nats kv del|purge|compact|revert ...         confirmed on a terminal, -f to skip

Destructive commands ask natscli's questions when stdin and stdout are terminals; without a
terminal they fail with `cannot ask for confirmation without a terminal` unless -f/--force is
given, and a "no" answer prints `Skipping delete` / `Skipping purge` and exits 0. Client
errors are worded as nats.go words them (errors.py); screens and tables are in
render.py, bucket listing and creation beyond nats-py in buckets.py.
"""

from __future__ import annotations

import asyncio
import re
import sys
from typing import TYPE_CHECKING, Any

import click

from pynats.cli.kv import render
from pynats.cli.kv.buckets import (
    KV_STREAM_PREFIX,
    KvBucketSettings,
    list_buckets,
    pick_bucket,
)
from pynats.cli.kv.errors import store_errors
from pynats.cli.ui import prompt
from pynats.cli.ui.command import NatsGroup, apply_options, force_flag, negatable
from pynats.cli.ui.connect import connection, jetstream, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.output import is_tty, out, out_raw
from pynats.cli.ui.parse import BYTE_SIZE, DURATION, parse_key_value
from pynats.gotime import NS_PER_S

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from nats.js.kv import KeyValue

KV_HELP = """Interacts with a JetStream based Key-Value store

The JetStream Key-Value store uses streams to store key-value pairs
for an indefinite period or a per-bucket configured TTL."""

BUCKET_HELP = "The bucket to act on"
KEY_HELP = "The key to act on"
VALID_BUCKET = re.compile(r"[a-zA-Z0-9_-]+")
VALID_KEY = re.compile(r"[-/_=.a-zA-Z0-9]+")
MAX_VALUE_SIZE = 2**31 - 1
MAX_HISTORY = 64
MARKER_REASON_HEADER = "Nats-Marker-Reason"
COMPACT_KEEP_NEWER_THAN_S = 30 * 60  # nats.go's PurgeDeletes default: newer markers are kept


def register(root: NatsGroup) -> None:
    @root.group("kv", help=KV_HELP)
    def kv() -> None:
        """Key-Value store."""

    @kv.command("add", aliases=["new"], help="Adds a new KV Store Bucket")
    @click.argument("bucket", help=BUCKET_HELP)
    @bucket_flags
    def add(bucket: str, **flags: Any) -> None:
        settings = KvBucketSettings(bucket=bucket, **_settings_from_flags(flags))
        run_async(add_bucket(settings))

    @kv.command("put", help="Puts a value into a key")
    @click.argument("bucket", help=BUCKET_HELP)
    @click.argument("key", help=KEY_HELP)
    @click.argument(
        "value", required=False, default="", help="The value to store, when empty reads STDIN"
    )
    def put(bucket: str, key: str, value: str) -> None:
        run_async(put_value(bucket, key, value))

    @kv.command("get", help="Gets a value for a key")
    @click.argument("bucket", help=BUCKET_HELP)
    @click.argument("key", help=KEY_HELP)
    @click.option(
        "--revision", type=click.IntRange(min=0), default=0, help="Gets a specific revision"
    )
    @click.option("--raw", is_flag=True, help="Show only the value string")
    def get(bucket: str, key: str, revision: int, raw: bool) -> None:
        run_async(get_value(bucket, key, revision, raw))

    @kv.command(
        "create",
        help="Puts a value into a key only if the key is new or it's last operation was a delete",
    )
    @click.argument("bucket", help=BUCKET_HELP)
    @click.argument("key", help=KEY_HELP)
    @click.argument(
        "value", required=False, default="", help="The value to store, when empty reads STDIN"
    )
    @click.option("--ttl", "ttl_ns", type=DURATION, default=0, help="Sets a TTL for the key")
    def create(bucket: str, key: str, value: str, ttl_ns: int) -> None:
        run_async(create_value(bucket, key, value, ttl_ns / NS_PER_S))

    @kv.command(
        "update",
        help="Updates a key with a new value if the previous value matches the given revision",
    )
    @click.argument("bucket", help=BUCKET_HELP)
    @click.argument("key", help=KEY_HELP)
    @click.argument("value", help="The value to store")
    @click.argument(
        "revision",
        type=click.IntRange(min=0),
        help="The revision of the previous value in the bucket",
    )
    def update(bucket: str, key: str, value: str, revision: int) -> None:
        run_async(update_value(bucket, key, value, revision))

    @kv.command("del", aliases=["rm"], help="Deletes a key or the entire bucket")
    @click.argument("bucket", help=BUCKET_HELP)
    @click.argument("key", required=False, default="", help=KEY_HELP)
    @force_flag("Act without confirmation")
    def delete(bucket: str, key: str, force: bool) -> None:
        if key:
            run_async(delete_key(bucket, key, force))
        else:
            run_async(delete_bucket(bucket, force))

    @kv.command(
        "purge",
        help="Deletes a key from the bucket, clearing history before creating a delete marker",
    )
    @click.argument("bucket", help=BUCKET_HELP)
    @click.argument("key", help=KEY_HELP)
    @force_flag("Act without confirmation")
    @click.option(
        "--ttl", "ttl_ns", type=DURATION, default=0, help="Sets a TTL for the purge marker"
    )
    def purge(bucket: str, key: str, force: bool, ttl_ns: int) -> None:
        run_async(purge_key(bucket, key, force, ttl_ns / NS_PER_S))

    @kv.command("history", help="Shows the full history for a key")
    @click.argument("bucket", help=BUCKET_HELP)
    @click.argument("key", help=KEY_HELP)
    def history(bucket: str, key: str) -> None:
        run_async(show_history(bucket, key))

    @kv.command("revert", help="Reverts a value to a previous revision using put")
    @click.argument("bucket", help=BUCKET_HELP)
    @click.argument("key", help=KEY_HELP)
    @click.argument("revision", type=click.IntRange(min=0), help="The revision to revert to")
    @negatable("force", False, "Force reverting without prompting")
    def revert(bucket: str, key: str, revision: int, force: bool) -> None:
        run_async(revert_key(bucket, key, revision, force))

    @kv.command("info", aliases=["view", "status"], help="View the status of a KV store")
    @click.argument("bucket", required=False, default="", help=BUCKET_HELP)
    def info(bucket: str) -> None:
        run_async(show_info(bucket))

    @kv.command("watch", help="Watch the bucket or a specific key for updated")
    @click.argument("bucket", help=BUCKET_HELP)
    @click.argument("key", required=False, default=">", help=KEY_HELP)
    @click.option("--history", "include_history", is_flag=True, help="Includes historic values")
    @negatable("deletes", True, "Includes deletes in watched values")
    @click.option("--updates", "updates_only", is_flag=True, help="Only show new values written")
    @click.option(
        "--revision", type=click.IntRange(min=0), default=0, help="Starts from a certain revision"
    )
    def watch(
        bucket: str,
        key: str,
        include_history: bool,
        deletes: bool,
        updates_only: bool,
        revision: int,
    ) -> None:
        run_async(watch_bucket(bucket, key, include_history, deletes, updates_only, revision))

    @kv.command("ls", aliases=["list"], help="List available buckets or the keys in a bucket")
    @click.argument("bucket", required=False, default="", help="The bucket to list the keys")
    @click.argument("key", required=False, default="", help="The key to act on")
    @click.option("-n", "--names", is_flag=True, help="Show just the bucket names")
    @click.option("-v", "--verbose", is_flag=True, help="Show detailed info about the key")
    @click.option(
        "--display-value",
        is_flag=True,
        help="Display value in verbose output (has no effect without 'verbose')",
    )
    def ls(bucket: str, key: str, names: bool, verbose: bool, display_value: bool) -> None:
        if bucket:
            run_async(list_keys(bucket, key, names, verbose, display_value))
        else:
            run_async(
                list_buckets(
                    KV_STREAM_PREFIX, names, "Key-Value Buckets", "No Key-Value buckets found"
                )
            )

    @kv.command("compact", help="Reclaim space used by deleted keys")
    @click.argument("bucket", help=BUCKET_HELP)
    @force_flag("Act without confirmation")
    def compact(bucket: str, force: bool) -> None:
        run_async(compact_bucket(bucket, force))


def bucket_flags(command: Any) -> Any:
    """The flags of `kv add` (natscli's addCreateFlags)."""
    return apply_options(
        click.option("--description", default="", help="A description for the bucket"),
        click.option(
            "--history",
            type=click.IntRange(1, MAX_HISTORY),
            default=1,
            help="How many historic values to keep per key",
        ),
        click.option(
            "--storage",
            type=click.Choice(["file", "f", "memory", "m"]),
            default="file",
            help="Storage backend to use (file, memory)",
        ),
        click.option(
            "--ttl",
            "ttl_ns",
            type=DURATION,
            default=0,
            metavar="DURATION",
            help="How long to keep values for",
        ),
        click.option(
            "--marker-ttl",
            "marker_ttl_ns",
            type=DURATION,
            default=0,
            metavar="DURATION",
            help="Enables Per-Key TTLs and Limit Markers",
        ),
        click.option(
            "--replicas",
            type=click.IntRange(min=0),
            default=1,
            help="How many replicas of the data to store",
        ),
        click.option(
            "--max-value-size",
            type=BYTE_SIZE,
            default=-1,
            metavar="BYTES",
            help="Maximum size for any single value",
        ),
        click.option(
            "--max-bucket-size",
            type=BYTE_SIZE,
            default=-1,
            metavar="BYTES",
            help="Maximum size for the bucket",
        ),
        click.option(
            "--tags", multiple=True, help="Place the bucket on servers that has specific tags"
        ),
        click.option("--cluster", default="", help="Place the bucket on a specific cluster"),
        negatable("compress", False, "Compress the bucket data"),
        click.option(
            "--metadata", multiple=True, metavar="META", help="Adds metadata to the stream"
        ),
        click.option(
            "--republish-source",
            default="",
            metavar="SRC",
            help="Republish messages to --republish-destination",
        ),
        click.option(
            "--republish-destination",
            default="",
            metavar="DEST",
            help="Republish destination for messages in --republish-source",
        ),
        click.option(
            "--republish-headers", is_flag=True, help="Republish only message headers, no bodies"
        ),
        click.option("--mirror", default="", help="Creates a mirror of a different bucket"),
        click.option(
            "--mirror-domain",
            default="",
            help="When mirroring find the bucket in a different domain",
        ),
        click.option(
            "--source",
            "sources",
            multiple=True,
            metavar="BUCKET",
            help="Source from a different bucket",
        ),
    )(command)


def _settings_from_flags(flags: dict[str, Any]) -> dict[str, Any]:
    """`kv add` flags as KvBucketSettings fields, validating what click cannot."""
    if flags["max_value_size"] > MAX_VALUE_SIZE:
        raise CliError(
            f"max value size {flags['max_value_size']:,} is too big maximum is {MAX_VALUE_SIZE:,}"
        )
    metadata = {}
    for item in flags.pop("metadata"):
        try:
            name, value = parse_key_value(item)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        metadata[name] = value
    renamed = {
        "ttl_s": flags.pop("ttl_ns") / NS_PER_S,
        "marker_ttl_s": flags.pop("marker_ttl_ns") / NS_PER_S,
        "compress": bool(flags.pop("compress")),
        "tags": list(flags.pop("tags")),
        "sources": list(flags.pop("sources")),
        "metadata": metadata,
    }
    return {**flags, **renamed}


# -- binding ------------------------------------------------------------------------------------


async def bind(js: JetStreamContext, bucket: str) -> KeyValue:
    """nats-py's KeyValue for an existing bucket (`nats: bucket not found` otherwise)."""
    return await js.key_value(bucket)


def read_value(value: str) -> bytes:
    """The value argument, or all of stdin when it is empty and stdin is not a terminal."""
    if value or is_tty(sys.stdin):
        return value.encode()
    return sys.stdin.buffer.read()


# -- bucket commands ------------------------------------------------------------------------


async def add_bucket(settings: KvBucketSettings) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(settings.bucket):
            if settings.needs_stream_config:
                if not VALID_BUCKET.fullmatch(settings.bucket):
                    raise CliError("nats: invalid bucket name")
                await js.add_stream(settings.stream_config())
                store = await bind(js, settings.bucket)
            else:
                store = await js.create_key_value(settings.key_value_config())
            status = await store.status()
    out(render.bucket_info_screen(settings.bucket, status.stream_info).render(), end="")


async def show_info(bucket: str) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        if not bucket:
            bucket = await pick_bucket(nc, KV_STREAM_PREFIX, "no KV buckets found")
        with store_errors(bucket):
            status = await (await bind(js, bucket)).status()
    out(render.bucket_info_screen(bucket, status.stream_info).render(), end="")


async def delete_bucket(bucket: str, force: bool) -> None:
    import nats.js.errors as js_errors

    if not force and not prompt.confirm(f"Delete bucket {bucket}?"):
        out("Skipping delete")
        return
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket):
            try:
                await js.delete_key_value(bucket)
            except js_errors.NotFoundError as exc:
                raise CliError("nats: bucket not found") from exc


async def compact_bucket(bucket: str, force: bool) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket):
            store = await bind(js, bucket)
            if not force and not prompt.confirm(
                f"Purge all historic values and audit trails for deleted keys in bucket {bucket}?"
            ):
                out("Skipping delete")
                return
            await store.purge_deletes(olderthan=COMPACT_KEEP_NEWER_THAN_S)


# -- key commands -------------------------------------------------------------------------------


async def put_value(bucket: str, key: str, value: str) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket):
            store = await bind(js, bucket)
            await store.put(key, read_value(value))
    out(value)


async def create_value(bucket: str, key: str, value: str, ttl_s: float) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket):
            store = await bind(js, bucket)
            data = read_value(value)
            try:
                await store.create(key, data, msg_ttl=ttl_s if ttl_s > 0 else None)
            except Exception as exc:
                _add_key_exists(exc)
                raise
    out(value)


def _add_key_exists(exc: Exception) -> None:
    """nats.go's Create appends `: key exists` to the wrong-last-sequence error."""
    import nats.js.errors as js_errors

    if isinstance(exc, js_errors.KeyWrongLastSequenceError) and exc.description:
        exc.description = f"{exc.description}: key exists"


async def update_value(bucket: str, key: str, value: str, revision: int) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket):
            store = await bind(js, bucket)
            await store.update(key, read_value(value), last=revision)
    out(value)


async def get_value(bucket: str, key: str, revision: int, raw: bool) -> None:
    import nats.js.errors as js_errors

    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket):
            store = await bind(js, bucket)
            entry = await store.get(key, revision=revision or None)
            # nats-py's Entry has no time, and its get() takes a limit marker the server left
            # for an expired key (`Nats-Marker-Reason`) for a value; the stored message tells.
            # The marker itself expires (marker TTL): gone by now means gone.
            try:
                stored = await js.get_msg(f"{KV_STREAM_PREFIX}{bucket}", seq=entry.revision)
            except js_errors.NotFoundError:
                raise CliError("nats: key not found") from None
            if (stored.headers or {}).get(MARKER_REASON_HEADER):
                raise CliError("nats: key not found")
    value = entry.value or b""
    if raw:
        out_raw(value)
        return
    out(render.render_entry(bucket, key, entry.revision or 0, stored.time, value), end="")


async def delete_key(bucket: str, key: str, force: bool) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket):
            store = await bind(js, bucket)
            if not force and not prompt.confirm(f"Delete key {bucket} > {key}?"):
                out("Skipping delete")
                return
            await store.delete(key)


async def purge_key(bucket: str, key: str, force: bool, ttl_s: float) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket):
            store = await bind(js, bucket)
            if not VALID_KEY.fullmatch(key) or key.startswith(".") or key.endswith("."):
                raise CliError("nats: invalid key")  # nats-py's purge() does not check keys
            if not force and not prompt.confirm(f"Purge key {bucket} > {key}?"):
                out("Skipping purge")
                return
            await store.purge(key, msg_ttl=ttl_s if ttl_s > 0 else None)


async def show_history(bucket: str, key: str) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket):
            entries = await (await bind(js, bucket)).history(key)
    out(render.history_table(bucket, key, entries).render())


async def revert_key(bucket: str, key: str, revision: int, force: bool) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket):
            store = await bind(js, bucket)
            entries = await store.history(key)
            if len(entries) <= 1:
                raise CliError("cannot revert key in a bucket where history=1")
            old = await store.get(key, revision=revision or None)
            if not force:
                shown = render.abbreviated(render.printable_or_base64(old.value))
                out(f"Revision: {old.revision}\n\n{shown}\n")
                if not prompt.ask_confirmation(f"Really revert to revision {revision}"):
                    return
            await store.update(key, old.value or b"", last=entries[-1].revision)
            entries = await store.history(key)
    out(render.history_table(bucket, key, entries).render())


async def list_keys(
    bucket: str, key_filter: str, names_only: bool, verbose: bool, show_values: bool
) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        try:
            with store_errors(bucket):
                store = await bind(js, bucket)
        except CliError as exc:
            raise CliError(f"unable to load bucket: {exc}") from exc
        with store_errors(bucket):
            entries = await current_entries(store, key_filter or ">", with_values=verbose)
    if verbose:
        out(render.keys_table(bucket, entries, show_values).render())
    else:
        for entry in entries:
            out(entry.key)
    if not entries and not names_only:
        out("No keys found in bucket")


async def current_entries(store: KeyValue, keys: str, with_values: bool) -> list[KeyValue.Entry]:
    """The latest entry of every live key matching `keys` (deleted keys left out)."""
    watcher = await store.watch(keys, ignore_deletes=True, meta_only=not with_values)
    entries = []
    try:
        async for entry in watcher:
            if entry is None:  # end of the initial values
                break
            entries.append(entry)
    finally:
        await watcher.stop()
    return entries


# -- watching -----------------------------------------------------------------------------------


async def watch_bucket(
    bucket: str, keys: str, include_history: bool, deletes: bool, updates_only: bool, revision: int
) -> None:
    """Print every change as it happens until Ctrl-C (exit status 0, as natscli)."""
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket):
            store = await bind(js, bucket)
            watcher = await store.watch(
                keys, include_history=include_history or revision > 0, ignore_deletes=not deletes
            )
        live = not updates_only or revision > 0
        try:
            async for entry in watcher:
                if entry is None:  # the initial values are done; what follows is new
                    live = True
                    continue
                if not live or entry.revision < revision:
                    continue
                out(render.watch_line(entry))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            await watcher.stop()
