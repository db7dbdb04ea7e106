"""`nats object` (alias `obj`): JetStream object stores, through nats-py's ObjectStore API.

    nats obj add FILES --replicas 1             create a bucket, show its info screen
    nats obj put FILES image.jpg                store a file (progress bar on a terminal)
    cat x.jpg | nats obj put FILES --name x.jpg store stdin under a name
    nats obj get FILES image.jpg -O out.jpg     fetch it; the SHA-256 digest is verified
    nats obj ls [FILES] / info / del / seal / watch

Transfers stream through nats-py in 128 KiB chunks (or --chunk-size), so multi-MB objects
never sit in memory whole. Overwriting an object or a local file, deleting and sealing ask
natscli's questions on a terminal and need -f/--force otherwise (cli.md §10).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click

from pynats.cli.kv.buckets import (
    OBJ_STREAM_PREFIX,
    ObjBucketSettings,
    list_buckets,
    pick_bucket,
)
from pynats.cli.kv.errors import store_errors
from pynats.cli.obj import render
from pynats.cli.obj.progress import (
    PROGRESS_THRESHOLD_BYTES,
    ByteProgressBar,
    CountingReader,
    CountingWriter,
)
from pynats.cli.ui import humanize, prompt
from pynats.cli.ui.command import NatsGroup, force_flag, negatable
from pynats.cli.ui.connect import connection, jetstream, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import out
from pynats.cli.ui.parse import BYTE_SIZE, DURATION, parse_header, parse_key_value
from pynats.gotime import NS_PER_S

if TYPE_CHECKING:
    from nats.js import JetStreamContext
    from nats.js.api import ObjectInfo
    from nats.js.object_store import ObjectStore

OBJ_HELP = """Interacts with a JetStream based Object store

The JetStream Object store uses streams to store large objects
for an indefinite period or a per-bucket configured TTL."""

BUCKET_HELP = "The bucket to act on"
FILE_HELP = "The file to retrieve"
VALID_BUCKET = re.compile(r"[a-zA-Z0-9_-]+")
AVERAGE_AFTER_S = 2.0


def register(root: NatsGroup) -> None:
    @root.group("object", aliases=["obj"], help=OBJ_HELP)
    def obj() -> None:
        """Object store."""

    @obj.command("add", help="Adds a new Object Store Bucket")
    @click.argument("bucket", help=BUCKET_HELP)
    @click.option(
        "--ttl",
        "ttl_ns",
        type=DURATION,
        default=0,
        metavar="DURATION",
        help="How long to keep objects for",
    )
    @click.option(
        "--replicas",
        type=click.IntRange(min=0),
        default=1,
        help="How many replicas of the data to store",
    )
    @click.option(
        "--max-bucket-size",
        type=BYTE_SIZE,
        default=-1,
        metavar="BYTES",
        help="Maximum size for the bucket",
    )
    @click.option("--description", default="", help="A description for the bucket")
    @click.option(
        "--storage",
        type=click.Choice(["file", "f", "memory", "m"]),
        default="file",
        help="Storage backend to use (file, memory)",
    )
    @click.option("--tags", multiple=True, help="Place the store on servers that has specific tags")
    @click.option("--cluster", default="", help="Place the store on a specific cluster")
    @click.option("--metadata", multiple=True, metavar="META", help="Adds metadata to the bucket")
    @negatable("compress", False, "Compress the bucket data")
    def add(
        bucket: str,
        ttl_ns: int,
        replicas: int,
        max_bucket_size: int,
        description: str,
        storage: str,
        tags: tuple[str, ...],
        cluster: str,
        metadata: tuple[str, ...],
        compress: bool,
    ) -> None:
        settings = ObjBucketSettings(
            bucket=bucket,
            description=description,
            ttl_s=ttl_ns / NS_PER_S,
            replicas=replicas,
            max_bucket_size=max_bucket_size,
            storage=storage,
            compress=bool(compress),
            tags=list(tags),
            cluster=cluster,
            metadata=_metadata(metadata),
        )
        run_async(add_bucket(settings))

    @obj.command("put", help="Puts a file into the store")
    @click.argument("bucket", help=BUCKET_HELP)
    @click.argument("file", required=False, default="", help="The file to put")
    @click.option("--name", default="", help="Override the name supplied to the object store")
    @click.option("--description", default="", help="Sets an optional description for the object")
    @click.option(
        "-H",
        "--header",
        "headers",
        multiple=True,
        help="Adds headers to the object using K:V format",
    )
    @click.option(
        "--chunk-size",
        type=click.IntRange(min=1, max=2**32 - 1),
        metavar="BYTES",
        default=None,
        help="Sets the chunk size for the file",
    )
    @negatable("progress", True, "Disable progress bars")
    @force_flag("Act without confirmation")
    def put(
        bucket: str,
        file: str,
        name: str,
        description: str,
        headers: tuple[str, ...],
        chunk_size: int | None,
        progress: bool,
        force: bool,
    ) -> None:
        upload = Upload(file, name or file, description, _headers(headers), chunk_size, progress)
        run_async(put_object(bucket, upload, force))

    @obj.command("del", aliases=["rm"], help="Deletes a file or bucket from the store")
    @click.argument("bucket", help=BUCKET_HELP)
    @click.argument("file", required=False, default="", help=FILE_HELP)
    @force_flag("Act without confirmation")
    def delete(bucket: str, file: str, force: bool) -> None:
        run_async(delete_object_or_bucket(bucket, file, force))

    @obj.command("get", help="Retrieves a file from the store")
    @click.argument("bucket", help=BUCKET_HELP)
    @click.argument("file", help=FILE_HELP)
    @click.option("-O", "--output", default="", help="Override the output file name")
    @negatable("progress", True, "Disable progress bars")
    @force_flag("Act without confirmation")
    def get(bucket: str, file: str, output: str, progress: bool, force: bool) -> None:
        run_async(get_object(bucket, file, output, progress, force))

    @obj.command("info", aliases=["show", "i"], help="Get information about a bucket or object")
    @click.argument("bucket", required=False, default="", help=BUCKET_HELP)
    @click.argument("file", required=False, default="", help=FILE_HELP)
    def info(bucket: str, file: str) -> None:
        run_async(show_info(bucket, file))

    @obj.command("ls", help="List buckets or contents of a specific bucket")
    @click.argument("bucket", required=False, default="", help=BUCKET_HELP)
    @click.option(
        "-n", "--names", is_flag=True, help="When listing buckets, show just the bucket names"
    )
    def ls(bucket: str, names: bool) -> None:
        if bucket:
            run_async(list_objects(bucket, names))
        else:
            run_async(
                list_buckets(
                    OBJ_STREAM_PREFIX,
                    names,
                    "Object Store Buckets",
                    "No Object Store buckets found",
                )
            )

    @obj.command("seal", help="Seals a bucket preventing further updates")
    @click.argument("bucket", help=BUCKET_HELP)
    @force_flag("Force sealing without prompting")
    def seal(bucket: str, force: bool) -> None:
        run_async(seal_bucket(bucket, force))

    @obj.command("watch", help="Watch a bucket for changes")
    @click.argument("bucket", help=BUCKET_HELP)
    def watch(bucket: str) -> None:
        run_async(watch_bucket(bucket))


def _metadata(items: tuple[str, ...]) -> dict[str, str]:
    metadata = {}
    for item in items:
        try:
            key, value = parse_key_value(item)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        metadata[key] = value
    return metadata


def _headers(items: tuple[str, ...]) -> dict[str, list[str]]:
    """`-H K:V` flags as nats.go stores object headers: each key with a list of values."""
    headers: dict[str, list[str]] = {}
    for item in items:
        try:
            key, value = parse_header(item)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        headers.setdefault(key, []).append(value)
    return headers


@dataclass
class Upload:
    """What `obj put` sends: a file (or stdin when empty) and the object's name and metadata."""

    file: str
    name: str
    description: str
    headers: dict[str, list[str]]
    chunk_size: int | None
    progress: bool

    def meta(self) -> Any:
        from nats.js import api

        options = None
        if self.chunk_size:
            options = api.ObjectMetaOptions(max_chunk_size=self.chunk_size)
        return api.ObjectMeta(
            name=os.path.normpath(self.name),
            description=self.description or None,
            headers=self.headers or None,
            options=options,
        )


def go_base(path: str) -> str:
    """Go's filepath.Base: the last element, trailing slashes ignored; `.` for nothing."""
    trimmed = path.rstrip("/")
    if not trimmed:
        return "/" if path else "."
    return trimmed.rsplit("/", 1)[-1]


async def modification_time(js: JetStreamContext, info: ObjectInfo) -> dt.datetime | None:
    """When the object was written: its `mtime`, else the time of its meta message.

    nats.go leaves `mtime` at year 1 when writing and reads the meta message's time instead,
    so objects put by Go clients need the second lookup.
    """
    moment = humanize.parse_go_time(info.mtime or "")
    if moment is not None and moment.year > 1:
        return moment
    encoded = base64.urlsafe_b64encode(info.name.encode()).decode()
    try:
        stored = await js.get_last_msg(
            f"{OBJ_STREAM_PREFIX}{info.bucket}", f"$O.{info.bucket}.M.{encoded}"
        )
    except Exception:  # the time is decoration; the object itself was already found
        return None
    return stored.time


async def bind(js: JetStreamContext, bucket: str) -> ObjectStore:
    return await js.object_store(bucket)


# -- buckets ------------------------------------------------------------------------------------


async def add_bucket(settings: ObjBucketSettings) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(settings.bucket, objects=True):
            if settings.needs_stream_config:
                if not VALID_BUCKET.fullmatch(settings.bucket):
                    raise CliError("nats: invalid object-store name")
                await js.add_stream(settings.stream_config())
                store = await bind(js, settings.bucket)
            else:
                store = await js.create_object_store(
                    settings.bucket, config=settings.object_store_config()
                )
            status = await store.status()
    out(render.bucket_info_screen(settings.bucket, status.stream_info).render(), end="")


async def show_bucket(store: ObjectStore, bucket: str) -> None:
    status = await store.status()
    out(render.bucket_info_screen(bucket, status.stream_info).render(), end="")


async def show_info(bucket: str, name: str) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        if not bucket:
            bucket = await pick_bucket(nc, OBJ_STREAM_PREFIX, "no Object buckets found")
        with store_errors(bucket, objects=True):
            store = await bind(js, bucket)
            if not name:
                await show_bucket(store, bucket)
                return
            info = await store.get_info(name)
            modified = await modification_time(js, info)
    out(render.object_info_screen(info, modified).render(), end="")


async def list_objects(bucket: str, names_only: bool) -> None:
    import nats.js.errors as js_errors

    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket, objects=True):
            store = await bind(js, bucket)
            try:
                found = await store.list(ignore_deletes=True)
            except js_errors.NotFoundError:  # nats-py's word for an empty store
                found = []
            objects = [(info, await modification_time(js, info)) for info in found]
    if names_only:
        for info, _ in objects:
            out(info.name)
        return
    if not objects:
        out("No entries found")
        return
    out(render.contents_table(objects).render())


async def delete_object_or_bucket(bucket: str, name: str, force: bool) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket, objects=True):
            store = await bind(js, bucket)
            if name:
                if not force:
                    info = await store.get_info(name)
                    size = humanize.ibytes(info.size or 0)
                    if not prompt.confirm(f"Delete {size} byte file {bucket} > {name}?"):
                        out("Skipping delete")
                        return
                await store.delete(name)
                out(f"Removed {bucket} > {name}")
                await show_bucket(store, bucket)
                return
            if not force and not prompt.confirm(f"Delete bucket {bucket} and all its files?"):
                out("Skipping delete")
                return
            await js.delete_object_store(bucket)


async def seal_bucket(bucket: str, force: bool) -> None:
    if not force and not prompt.ask_confirmation(
        f"Really seal Bucket {bucket}, sealed buckets can not be unsealed or modified"
    ):
        return
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket, objects=True):
            store = await bind(js, bucket)
            await store.seal()
            out(f"{bucket} has been sealed")
            await show_bucket(store, bucket)


async def watch_bucket(bucket: str) -> None:
    """Every object change, starting with the stored ones, until Ctrl-C (exit status 0)."""
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket, objects=True):
            store = await bind(js, bucket)
            watcher = await store.watch(include_history=True)
        try:
            async for info in watcher:
                if info is None:  # end of the stored objects
                    continue
                out(render.watch_line(info, await modification_time(js, info)))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            await watcher.stop()


# -- transfers ----------------------------------------------------------------------------------


async def put_object(bucket: str, upload: Upload, force: bool) -> None:
    import nats.js.errors as js_errors

    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket, objects=True):
            store = await bind(js, bucket)
            if not upload.file and not upload.name:
                raise CliError("--name is required when reading from stdin")
            try:
                existing = await store.get_info(upload.name)
            except js_errors.NotFoundError:
                existing = None
            if existing is not None and not existing.deleted and not force:
                modified = await modification_time(js, existing)
                out(render.object_info_screen(existing, modified).render())
                if not prompt.ask_confirmation(f"Replace existing file {bucket} > {upload.name}"):
                    return
                out()
            info = await _send(store, upload)
    out()
    out(render.object_info_screen(info, dt.datetime.now(dt.UTC)).render(), end="")


async def _send(store: ObjectStore, upload: Upload) -> ObjectInfo:
    """Put the file (or stdin) into the store, with a progress bar for a large file."""
    meta = upload.meta()
    # nats-py streams from any object with readinto() (it checks with hasattr) but annotates
    # BufferedIOBase: stdin's buffer (typed BinaryIO) and CountingReader are such objects.
    if not upload.file:
        return await store.put(meta.name, sys.stdin.buffer, meta=meta)  # type: ignore[arg-type]
    try:
        source = open(upload.file, "rb")  # noqa: SIM115 - closed below, after the transfer
    except OSError as exc:
        raise CliError(f"open {upload.file}: {(exc.strerror or str(exc)).lower()}") from exc
    with source:
        size = os.fstat(source.fileno()).st_size
        bar = None
        reader: io.BufferedIOBase | CountingReader = source
        if upload.progress and not current_settings().trace and size > PROGRESS_THRESHOLD_BYTES:
            bar = ByteProgressBar(size)
            reader = CountingReader(source, bar.advance)
        info = await store.put(meta.name, reader, meta=meta)  # type: ignore[arg-type]
        if bar is not None:
            bar.finish()
            if bar.enabled:
                out()  # natscli leaves a blank line under its bar
    return info


async def get_object(bucket: str, name: str, output: str, progress: bool, force: bool) -> None:
    async with connection() as nc:
        js = jetstream(nc)
        with store_errors(bucket, objects=True):
            store = await bind(js, bucket)
            info = await store.get_info(name)
            if info.deleted:
                raise CliError("file has been deleted")
            target = os.path.abspath(output or go_base(info.name))
            exists = os.path.lexists(target)
            if (
                exists
                and not force
                and not prompt.ask_confirmation(f"Replace existing target file {target}")
            ):
                return
            size = info.size or 0
            started = time.monotonic()
            written = await _receive(store, name, target, size, progress)
            elapsed = time.monotonic() - started
    if written > 0 and written != size:
        raise CliError(f"wrote {humanize.ibytes(written)}, expected {humanize.ibytes(size)}")
    message = f"Wrote: {humanize.ibytes(written)} to {target} in {humanize.human_duration(humanize.seconds_to_ns(elapsed))}"
    if elapsed > AVERAGE_AFTER_S:
        message += f" average {humanize.ibytes(size / elapsed)}/s"
    out(message)


async def _receive(store: ObjectStore, name: str, target: str, size: int, progress: bool) -> int:
    """Write the object into `target` (removed again on failure); returns the bytes written."""
    try:
        sink = open(target, "wb")  # noqa: SIM115 - closed below, after the transfer
    except OSError as exc:
        raise CliError(f"open {target}: {(exc.strerror or str(exc)).lower()}") from exc
    bar = None
    if progress and not current_settings().trace and size > PROGRESS_THRESHOLD_BYTES:
        bar = ByteProgressBar(size)
        if bar.enabled:
            out()  # natscli frames its bar with blank lines
    writer = CountingWriter(sink, bar.advance if bar is not None else None)
    try:
        with sink:
            # nats-py writes into any object with write() (see _send about its annotation).
            await store.get(name, writeinto=writer)  # type: ignore[arg-type]
    except BaseException:
        os.unlink(target)
        raise
    finally:
        if bar is not None:
            bar.finish()
            if bar.enabled:
                out()
    return writer.written
