"""`nats stream backup` (alias `snapshot`) and `nats stream restore`: a stream over the network
into a directory and back, in the layout natscli's jsm.go writes, so either tool restores the
other's backups (cli.md §7.10).

A backup directory holds two files:

    backup.json      {"config": <StreamConfig>, "state": <StreamState>}, as the snapshot API
                     answered them, indented by two spaces (the restore request is made of it)
    stream.arc.s2    the bytes the server sent, untouched: an S2 stream around a NATSARC1
                     archive (nats-server 2.15+); `stream.tar.s2` when they are an older
                     server's tar, which is the only thing that tells the names apart

The backup (`$JS.API.STREAM.SNAPSHOT.<stream>`): the server streams chunks to our inbox; a full
chunk carries a reply subject, and answering it (an empty message) opens the window for the
next. An empty message ends the transfer: no status or `204` is success, `408 No Interest`,
`408 No Flow Response` or `500 <error>` a failure. The chunks are also S2-decoded on the way
in, only to count the uncompressed bytes (the bar and the summary) and to see the archive's
magic; a decoding problem stops the counting, never the backup. The data goes to a partial file
first and is renamed once the archive's kind is known.

The restore (`$JS.API.STREAM.RESTORE.<stream>`): the reply names an upload subject; the file goes
there in 512 KiB requests, each answered by an empty message, then an empty request whose reply
is a `stream_create_response` (the stream's info, or the error). The stream must not exist.

`--config FILE` replaces the backup's configuration (its name must stay): natscli means to, but
a shadowed variable there only checks the name and restores the backup's own configuration.
`nats account backup|restore` (account.py) run the same steps once per stream.

What is printed follows natscli's backupStream / restoreAction, quirks included: the info screen
after a restore is titled `Information for Stream  created ...` (natscli never sets the name it
prints there). Progress bars are drawn on stderr when it is a terminal, as everywhere in this
tool; with `--no-progress` a restore logs jsm.go's debug lines instead.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from pynats.cli.obj.progress import ByteProgressBar
from pynats.cli.stream.api import stream_info, without_envelope
from pynats.cli.stream.render import stream_info_screen
from pynats.cli.ui.command import negatable
from pynats.cli.ui.connect import connection, js_request, run_async
from pynats.cli.ui.errors import STREAM_NOT_FOUND, ApiError, CliError
from pynats.cli.ui.humanize import comma, ibytes, round_duration
from pynats.cli.ui.messages import go_quote
from pynats.cli.ui.options import ExistingFile, current_settings
from pynats.cli.ui.output import go_json, log, out
from pynats.cli.ui.parse import parse_byte_size
from pynats.gotime import MILLISECOND, NS_PER_S, format_duration

if TYPE_CHECKING:
    from nats.aio.client import Client

META_FILE = "backup.json"
ARCHIVE_FILE = "stream.arc.s2"
LEGACY_ARCHIVE_FILE = "stream.tar.s2"
PARTIAL_FILE = ".stream.s2.partial"
ARCHIVE_MAGIC = b"NATSARC1"

RESTORE_CHUNK_BYTES = 512 * 1024  # jsm.go's upload chunk
ACCOUNT_CHUNK_BYTES = 128 * 1024  # the chunk `nats account backup` asks for
MIN_IDLE_TIMEOUT_S = 5.0  # natscli gives up on a backup after this long without a chunk
FINAL_REPLY_TIMEOUT_S = 3600.0  # the server restores before answering the last request
# A full window of chunks can be in flight: nats-py must not drop any as a slow consumer.
PENDING_BYTES_LIMIT = 64 * 1024 * 1024
SNAPSHOT_OK = "204"
STREAM_CREATE_RESPONSE = "io.nats.jetstream.api.v1.stream_create_response"
HEALTH_CHECK_NOTE = (
    "Health Check was requested, this can take a long time without progress reports\n"
)


# -- backup ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SnapshotOptions:
    """What the snapshot request asks for; sizes of 0 leave the server's defaults."""

    consumers: bool = True
    check: bool = False
    chunk_size: int = 0
    window_size: int = 0

    def request(self, inbox: str) -> dict[str, Any]:
        body: dict[str, Any] = {"deliver_subject": inbox, "no_consumers": not self.consumers}
        if self.chunk_size > 0:
            body["chunk_size"] = self.chunk_size
        if self.window_size > 0:
            body["window_size"] = self.window_size
        if self.check:
            body["jsck"] = True
        return body


class ArchiveProbe:
    """Decodes the received S2 stream only to count its bytes and read its first eight."""

    def __init__(self) -> None:
        from pynats.jetstream.s2 import S2Decoder

        self._decoder: Any = S2Decoder()
        self.uncompressed = 0
        self.head = b""

    def feed(self, chunk: bytes) -> int:
        """The uncompressed bytes `chunk` completed (0 once the stream failed to decode)."""
        if self._decoder is None:
            return 0
        try:
            data = self._decoder.feed(chunk)
        except ValueError:
            self._decoder = None  # not S2 after all: keep the bytes, stop counting
            return 0
        if len(self.head) < len(ARCHIVE_MAGIC):
            self.head += data[: len(ARCHIVE_MAGIC) - len(self.head)]
        self.uncompressed += len(data)
        return len(data)

    @property
    def is_archive(self) -> bool:
        return self.head == ARCHIVE_MAGIC


@dataclass
class Received:
    """What a finished snapshot transfer brought in."""

    config: dict[str, Any]
    state: dict[str, Any]
    chunks: int = 0
    compressed: int = 0
    uncompressed: int = 0
    started: int = field(default_factory=time.monotonic_ns)
    ended: int = 0


class BackupReport:
    """natscli's backupStream output: the start line, a bar (or trace lines), the summary."""

    def __init__(self, name: str, *, show_progress: bool, check: bool) -> None:
        self.name = name
        self.trace = current_settings().trace
        self.show_progress = show_progress and not self.trace
        self.check = check
        self.bar: ByteProgressBar | None = None
        self.last_chunk_ns = time.monotonic_ns()

    def started(self, state: dict[str, Any]) -> None:
        expected = int(state.get("bytes", 0) or 0)
        out(f"Starting backup of Stream {go_quote(self.name)} with {ibytes(expected)}")
        if self.show_progress:
            out()
            self.bar = ByteProgressBar(expected)
        if self.check:
            out(HEALTH_CHECK_NOTE)

    def chunk(self, received: Received, size: int, uncompressed: int) -> None:
        now = time.monotonic_ns()
        if self.trace:
            delta = format_duration(now - self.last_chunk_ns)
            out(f"Received {ibytes(size)} chunk {comma(received.chunks)} with time delta {delta}")
        self.last_chunk_ns = now
        if self.bar is not None and uncompressed:
            self.bar.advance(uncompressed)

    def finished(self, received: Received | None) -> None:
        if self.bar is not None:
            self.bar.done = max(self.bar.done, self.bar.total)
            self.bar.finish()
            self.bar = None
        out()
        if received is None:
            return
        took = format_duration(round_duration(received.ended - received.started, MILLISECOND))
        out(
            f"Received {ibytes(received.compressed)} compressed data in"
            f" {comma(received.chunks)} chunks for stream {go_quote(self.name)} in {took},"
            f" {ibytes(received.uncompressed)} uncompressed "
        )


async def snapshot_to_directory(
    nc: Client, name: str, directory: str, options: SnapshotOptions, report: BackupReport
) -> Received:
    """Back the stream up into `directory`; CliError (without natscli's prefix) on failure."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, pending_bytes_limit=PENDING_BYTES_LIMIT)
    try:
        reply = await js_request(nc, f"STREAM.SNAPSHOT.{name}", options.request(inbox))
        received = Received(config=reply.get("config") or {}, state=reply.get("state") or {})
        report.started(received.state)
        idle_s = max(MIN_IDLE_TIMEOUT_S, current_settings().timeout_s)
        probe = ArchiveProbe()
        partial = os.path.join(directory, PARTIAL_FILE)
        try:
            with open(partial, "wb") as data_file:
                await _receive_chunks(nc, sub, data_file, received, probe, report, idle_s)
        except BaseException:
            os.remove(partial)  # half a backup restores nothing: leave no file that looks like one
            raise
        received.uncompressed = probe.uncompressed
        received.ended = time.monotonic_ns()
    finally:
        await sub.unsubscribe()
    kept, other = (
        (ARCHIVE_FILE, LEGACY_ARCHIVE_FILE)
        if probe.is_archive
        else (LEGACY_ARCHIVE_FILE, ARCHIVE_FILE)
    )
    os.replace(partial, os.path.join(directory, kept))
    stale = os.path.join(directory, other)
    if os.path.exists(stale):
        os.remove(stale)  # a restore would prefer it over the backup just taken
    meta = {"config": received.config, "state": received.state}
    with open(os.path.join(directory, META_FILE), "w") as meta_file:
        meta_file.write(go_json(meta, indent=2))
    return received


async def _receive_chunks(
    nc: Client,
    sub: Any,
    data_file: BinaryIO,
    received: Received,
    probe: ArchiveProbe,
    report: BackupReport,
    idle_s: float,
) -> None:
    """Write each chunk and acknowledge it, until the empty message that ends the transfer."""
    import nats.errors

    while True:
        try:
            msg = await sub.next_msg(timeout=idle_s)
        except nats.errors.TimeoutError:
            raise CliError("backup timed out after receiving no data for a long period") from None
        if not msg.data:
            _check_end_of_snapshot(msg.headers or {})
            return
        data_file.write(msg.data)
        received.chunks += 1
        received.compressed += len(msg.data)
        report.chunk(received, len(msg.data), probe.feed(msg.data))
        if msg.reply:
            await nc.publish(msg.reply, b"")


def _check_end_of_snapshot(headers: dict[str, str]) -> None:
    """The empty message that ends a transfer: success, or the server's reason to stop."""
    status = str(headers.get("Status", "") or "")
    if status in ("", SNAPSHOT_OK):
        return
    description = str(headers.get("Description", "") or "").strip()
    raise CliError(f"{status} {description}".strip())


def chunk_sizes(chunk_size: str, window_size: str) -> tuple[int, int]:
    """`--chunk-size` and `--window-size` in bytes (natscli's size syntax; 0 = not given)."""
    sizes = []
    for text in (chunk_size, window_size):
        if not text:
            sizes.append(0)
            continue
        try:
            sizes.append(max(parse_byte_size(text), 0))
        except ValueError as exc:
            raise CliError(str(exc)) from None
    return sizes[0], sizes[1]


async def backup_one(
    nc: Client, name: str, directory: str, options: SnapshotOptions, *, show_progress: bool
) -> None:
    """natscli's backupStream: the transfer with its report; CliError carries the reason."""
    report = BackupReport(name, show_progress=show_progress, check=options.check)
    try:
        received = await snapshot_to_directory(nc, name, directory, options, report)
    except BaseException:
        report.finished(None)
        raise
    report.finished(received)


async def backup_stream(
    name: str, directory: str, options: SnapshotOptions, *, show_progress: bool
) -> None:
    async with connection() as nc:
        await stream_info(nc, name)  # natscli loads the stream first: an unknown one fails here
        try:
            await backup_one(nc, name, directory, options, show_progress=show_progress)
        except CliError as exc:
            raise CliError(f"snapshot failed: {exc}") from None


# -- restore ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """`--cluster`, `--tag` and `--replicas` of a restore (empty: keep the backup's)."""

    cluster: str = ""
    tags: tuple[str, ...] = ()
    replicas: int = 0

    def apply(self, config: dict[str, Any]) -> dict[str, Any]:
        config = dict(config)
        if self.cluster or self.tags:
            placement: dict[str, Any] = {"cluster": self.cluster}
            if self.tags:
                placement["tags"] = list(self.tags)
            config["placement"] = placement
        if self.replicas > 0:
            config["num_replicas"] = self.replicas
        return config


def read_backup_meta(directory: str) -> dict[str, Any]:
    """backup.json as natscli reads it; failures are natscli's `restore failed: ...`."""
    path = os.path.join(directory, META_FILE)
    try:
        with open(path, "rb") as meta_file:
            meta = json.loads(meta_file.read())
    except OSError as exc:
        raise CliError(f"restore failed: open {path}: {_os_reason(exc)}") from None
    except ValueError as exc:
        raise CliError(f"restore failed: {exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise CliError(f"restore failed: {path} holds no stream configuration")
    return meta


def backup_data_file(directory: str) -> str:
    """The archive of a backup directory: the 2.15 name first, then the legacy one."""
    for name in (ARCHIVE_FILE, LEGACY_ARCHIVE_FILE):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    return os.path.join(directory, ARCHIVE_FILE)


def _os_reason(exc: OSError) -> str:
    """Go's wording of a failed file operation (`no such file or directory`)."""
    return (exc.strerror or str(exc)).lower()


def override_config(meta: dict[str, Any], config_file: str) -> dict[str, Any]:
    """`--config FILE`: a StreamConfig or a `stream info --json` document, same stream name."""
    try:
        with open(config_file, "rb") as stream:
            loaded = json.loads(stream.read())
    except OSError as exc:
        raise CliError(f"open {config_file}: {_os_reason(exc)}") from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if not isinstance(loaded, dict):
        raise CliError("json: cannot unmarshal into Go value of type api.StreamConfig")
    config = loaded["config"] if isinstance(loaded.get("config"), dict) else loaded
    if config.get("name", "") != meta["config"].get("name", ""):
        raise CliError("stream names may not be changed during restore")
    return dict(config)


class RestoreReport:
    """A bar over the bytes sent, or (with --no-progress) jsm.go's debug log lines."""

    def __init__(self, *, show_progress: bool) -> None:
        self.show_progress = show_progress and not current_settings().trace
        self.bar: ByteProgressBar | None = None
        self.interval = 1

    def started(self, name: str, data_path: str, size: int) -> None:
        chunks = 1 + size // RESTORE_CHUNK_BYTES
        self.interval = math.ceil(chunks / 20) if chunks >= 20 else 1
        if self.show_progress:
            self.bar = ByteProgressBar(size)
        else:
            log(f"Starting restore of {go_quote(name)} from {data_path} using {chunks} chunks")

    def sent(self, chunks_before: int, size: int) -> None:
        if self.bar is not None:
            self.bar.advance(size)
        elif chunks_before > 0 and chunks_before % self.interval == 0:
            log(f"Sent {chunks_before} chunks")

    def uploaded(self, chunks: int) -> None:
        if self.bar is None:
            log(
                f"Sent {chunks} chunks, server will now restore the snapshot,"
                " this might take a long time"
            )

    def finished(self) -> None:
        if self.bar is not None:
            self.bar.finish()
            self.bar = None


async def restore_from_directory(
    nc: Client,
    directory: str,
    config: dict[str, Any],
    state: dict[str, Any],
    report: RestoreReport,
) -> None:
    """Upload the backup as the stream `config` names; CliError (natscli's words) on failure."""
    import nats.errors

    name = str(config.get("name", ""))
    data_path = backup_data_file(directory)
    try:
        size = os.path.getsize(data_path)
    except OSError as exc:
        raise CliError(f"restore failed: stat {data_path}: {_os_reason(exc)}") from None
    request = {"config": config, "state": state}
    try:
        reply = await js_request(nc, f"STREAM.RESTORE.{name}", request)
    except CliError as exc:
        raise CliError(f"restore failed: {exc}") from None
    upload = str(reply.get("deliver_subject") or "")
    timeout_s = current_settings().timeout_s
    report.started(name, data_path, size)
    sent = 0
    try:
        with open(data_path, "rb") as data_file:
            while chunk := data_file.read(RESTORE_CHUNK_BYTES):
                answer = await nc.request(upload, chunk, timeout=timeout_s)
                if _is_error_reply(answer):
                    raise CliError(
                        f"restore failed: {go_quote(answer.data.decode(errors='replace'))}"
                    )
                report.sent(sent, len(chunk))
                sent += 1
        report.uploaded(sent)
        final = await nc.request(upload, b"", timeout=FINAL_REPLY_TIMEOUT_S)
    except nats.errors.TimeoutError:
        raise CliError("restore failed: nats: timeout") from None
    except nats.errors.NoRespondersError:
        raise CliError("restore failed: nats: no responders available for request") from None
    finally:
        report.finished()
    status = str((final.headers or {}).get("Status", "") or "")
    if not final.data and status:
        description = str((final.headers or {}).get("Description", "") or "")
        raise CliError(f"restore failed: {status} {description}".strip())
    try:
        created = json.loads(final.data)
    except ValueError as exc:
        raise CliError(f"restore failed: {exc}") from None
    kind = created.get("type", "") if isinstance(created, dict) else ""
    if kind != STREAM_CREATE_RESPONSE:
        raise CliError(
            "restore failed: invalid final response, expected a"
            f" {STREAM_CREATE_RESPONSE} message but got {go_quote(str(kind))}"
        )
    error = created.get("error")
    if isinstance(error, dict):
        code = error.get("err_code")
        raise CliError(
            "restore failed: "
            + str(
                ApiError(error.get("description") or "unknown error", int(code) if code else None)
            )
        )


def _is_error_reply(msg: Any) -> bool:
    """jsm.go's IsErrorResponse: `-ERR ...`, a JSON API error, or a failure status."""
    status = str((msg.headers or {}).get("Status", "") or "")
    if status.isdigit() and int(status) >= 400:
        return True
    if msg.data.startswith(b"-ERR"):
        return True
    try:
        reply = json.loads(msg.data)
    except ValueError:
        return False
    return isinstance(reply, dict) and isinstance(reply.get("error"), dict)


async def stream_exists(nc: Client, name: str) -> bool:
    try:
        await stream_info(nc, name)
    except ApiError as exc:
        if exc.err_code == STREAM_NOT_FOUND:
            return False
        raise
    return True


async def restore_one(
    nc: Client, directory: str, config_file: str, placement: Placement, *, show_progress: bool
) -> None:
    """natscli's restoreAction for one backup directory: checks, upload, the stream's info."""
    meta = read_backup_meta(directory)
    name = str(meta["config"].get("name", ""))
    try:
        known = await stream_exists(nc, name)
    except CliError as exc:
        raise CliError(f"Could not check if the stream already exist: {exc}") from None
    if known:
        raise CliError(f"Stream {go_quote(name)} already exist")
    config = override_config(meta, config_file) if config_file else dict(meta["config"])
    config = placement.apply({**config, "name": name})
    out(f"Starting restore of Stream {go_quote(name)} from file {go_quote(directory)}\n")
    started = time.monotonic_ns()
    state = meta["state"] if isinstance(meta.get("state"), dict) else {}
    await restore_from_directory(
        nc, directory, config, state, RestoreReport(show_progress=show_progress)
    )
    took = format_duration(round_duration(time.monotonic_ns() - started, NS_PER_S))
    out()
    out(f"Restored stream {go_quote(name)} in {took}")
    out()
    try:
        info = without_envelope(await js_request(nc, f"STREAM.INFO.{name}"))
    except CliError as exc:
        raise CliError(f"could not request Stream info: {exc}") from None
    # natscli titles this screen with a stream name it never set: `Stream  created`.
    out(stream_info_screen(info, "").render(), end="")


async def restore_stream(
    directory: str, config_file: str, placement: Placement, *, show_progress: bool
) -> None:
    async with connection() as nc:
        await restore_one(nc, directory, config_file, placement, show_progress=show_progress)


class ExistingDirectory(click.ParamType):
    """A directory that must exist (fisk's ExistingDir), checked at parse time."""

    name = "DIR"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not os.path.exists(value):
            self.fail(f"path '{value}' does not exist", param, ctx)
        if not os.path.isdir(value):
            self.fail(f"'{value}' is a file", param, ctx)
        return value


def register(stream: click.Group, all_option: Callable[[Any], Any]) -> None:
    """Add `backup` and `restore` to the `nats stream` group."""

    @stream.command(
        "backup", aliases=["snapshot"], help="Creates a backup of a stream over the NATS network"
    )
    @click.argument("name", metavar="STREAM")
    @click.argument("directory", metavar="TARGET")
    @negatable("progress", True, "Enables or disables progress reporting using a progress bar")
    @click.option("--check", is_flag=True, help="Checks the stream for health prior to backup")
    @negatable("consumers", True, "Enable or disable consumer backups")
    @click.option(
        "--chunk-size", default="", help="Sets a specific chunk size that the server will send"
    )
    @click.option(
        "--window-size", default="", help="Sets a specific window size that the server will send"
    )
    @all_option
    def backup(
        name: str,
        directory: str,
        progress: bool,
        check: bool,
        consumers: bool,
        chunk_size: str,
        window_size: str,
        show_all: bool,
    ) -> None:
        chunk, window = chunk_sizes(chunk_size, window_size)
        options = SnapshotOptions(
            consumers=consumers, check=check, chunk_size=chunk, window_size=window
        )
        run_async(backup_stream(name, directory, options, show_progress=progress))

    @stream.command("restore", help="Restore a stream over the NATS network")
    @click.argument("directory", metavar="FILE", type=ExistingDirectory())
    @negatable("progress", True, "Enables or disables progress reporting using a progress bar")
    @click.option(
        "--config",
        "config_file",
        type=ExistingFile(),
        default="",
        help="Load a different configuration when restoring the stream",
    )
    @click.option("--cluster", default="", help="Place the stream in a specific cluster")
    @click.option(
        "--tag",
        "tags",
        multiple=True,
        help="Place the stream on servers that has specific tags (pass multiple times)",
    )
    @click.option(
        "--replicas", type=int, default=0, help="Override how many replicas of the data to create"
    )
    @all_option
    def restore(
        directory: str,
        progress: bool,
        config_file: str,
        cluster: str,
        tags: tuple[str, ...],
        replicas: int,
        show_all: bool,
    ) -> None:
        placement = Placement(cluster=cluster, tags=tags, replicas=replicas)
        run_async(restore_stream(directory, config_file, placement, show_progress=progress))
