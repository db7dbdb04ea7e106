"""What a reload (SIGHUP) may change of JetStream, with nats-server 2.15.1's rules and texts.

`jetstream` may be switched on or off: `Reloaded: JetStream` is logged with the other
`Reloaded:` lines (after the leaf nodes', before the MQTT ones), and once they are all logged
JetStream is stopped (`Initiating JetStream Shutdown...`, every store flushed and closed) or
started again (`Restarting JetStream`, the banner, the streams recovered from the store
directory). A server whose JetStream runs and stays on re-reads `limits {}` (`Reloaded:
JetStream limits`), larger `max_mem`/`max_file` sizes (`Reloaded: JetStream max_mem_store =
2.79 GB`) and each account's `jetstream`.

Everything else in `jetstream {}` is refused, as nats-server refuses it, naming its Options
field (`config reload not supported for JetStreamDomain: old=, new=d`), in that struct's
order; so is, while JetStream runs, a new store directory (`... for jetstream storage
directory`), a size where there was none (`... for jetstream dynamic max memory and store`),
a smaller size (`... for decreasing jetstream max memory and store`), and, unless JetStream is being switched off, a size or store directory dropped (checked after
every other option: `... for jetstream max memory and max store`, `... for jetstream storage
dir`). JetStream itself lives in `pynats.jetstream` (`service.JetStream`); the server sees it
through `ReloadableJetStream`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from pynats.gotime import NS_PER_S, format_duration

from .strconv import friendly_bytes

if TYPE_CHECKING:
    from .options import Options

# nats-server's defaults as its options print them
GO_SYNC_INTERVAL_NS = 120 * NS_PER_S  # `SyncInterval` when not set (`2m0s`)
GO_REQUEST_QUEUE_LIMIT = 10_000  # `JetStreamRequestQueueLimit` when not set
GO_CIPHERS = {"aes": "AES-GCM"}  # anything else is ChaCha20-Poly1305, its default


class ReloadableJetStream(Protocol):
    """What a reload needs from JetStream (`server.jetstream`)."""

    @property
    def running(self) -> bool:
        """JetStream runs now (nats-server's JetStreamEnabled)."""

    def reload_disable(self) -> None:
        """Stop JetStream: every store flushed and closed, the API left unanswered."""

    def reload_enable(self) -> None:
        """Start JetStream again from the server's (new) options; when it cannot start, log
        why and stay off."""

    def reload_options(self) -> None:
        """JetStream runs and stays on: take the new limits and accounts' `jetstream`."""


@dataclasses.dataclass
class JetStreamReload:
    """What a reload does to JetStream: its `Reloaded:` lines, the switch (None, "on" or
    "off"), and a refusal nats-server only makes once every other option was compared."""

    lines: list[str] = dataclasses.field(default_factory=list)
    switch: str | None = None
    refused_later: str | None = None


def _strict(o: Options) -> bool:
    return not o.jetstream_strict  # nats-server's NoJetStreamStrict


def _cipher(o: Options) -> str:
    return GO_CIPHERS.get(o.jetstream_cipher, "ChaCha20-Poly1305")


def _request_queue_limit(o: Options) -> int:
    return o.jetstream_request_queue_limit or GO_REQUEST_QUEUE_LIMIT


def _info_queue_limit(o: Options) -> int:
    return o.jetstream_info_queue_limit or _request_queue_limit(o)


def _sync_interval(o: Options) -> str:
    interval = o.jetstream_sync_interval
    return format_duration(GO_SYNC_INTERVAL_NS if interval is None else round(interval * NS_PER_S))


def _attr(name: str) -> Callable[[Options], Any]:
    return lambda o: getattr(o, name)


# The `jetstream {}` settings a reload refuses, in nats-server's Options order, by its field
# names (`extension_hint`, `tpm` and the replication keys are only noted by pynats).
REFUSED_BEFORE_SIZES = (("NoJetStreamStrict", _strict),)
REFUSED_AFTER_SIZES = (
    ("JetStreamDomain", _attr("jetstream_domain")),
    ("JetStreamKey", _attr("jetstream_key")),
    ("JetStreamOldKey", _attr("jetstream_prev_key")),
    ("JetStreamCipher", _cipher),
    ("JetStreamUniqueTag", _attr("jetstream_unique_tag")),
)
REFUSED_AFTER_LIMITS = (
    ("JetStreamMaxCatchup", _attr("jetstream_max_outstanding_catchup")),
    ("JetStreamRequestQueueLimit", _request_queue_limit),
    ("JetStreamInfoQueueLimit", _info_queue_limit),
    ("StreamMaxBufferedMsgs", _attr("jetstream_max_buffered_msgs")),
    ("StreamMaxBufferedSize", _attr("jetstream_max_buffered_size")),
)
REFUSED_AFTER_STORE_DIR = (
    ("SyncInterval", _sync_interval),
    ("SyncAlways", _attr("jetstream_sync_always")),
)


class JetStreamReloadError(Exception):
    """A `jetstream {}` change nats-server refuses (its text)."""


def _refuse(old: Options, new: Options, fields: tuple[tuple[str, Any], ...]) -> None:
    for label, value in fields:
        before, after = value(old), value(new)
        if before != after:
            raise JetStreamReloadError(
                f"config reload not supported for {label}: "
                f"old={_go_text(before)}, new={_go_text(after)}"
            )


def _go_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def jetstream_changes(running: bool, old: Options, new: Options) -> JetStreamReload:
    """Compare the `jetstream` options of a reload (nats-server's diffOptions for them);
    `running`: JetStream runs now. JetStreamReloadError for what is refused at once."""
    change = JetStreamReload()
    if new.jetstream != old.jetstream or (new.jetstream and not running):
        change.lines.append("Reloaded: JetStream")
        if new.jetstream and not running:
            change.switch = "on"
        elif not new.jetstream and running:
            change.switch = "off"
    _refuse(old, new, REFUSED_BEFORE_SIZES)
    sizes_dropped = False
    for name, before, after in (
        ("max_mem_store", old.jetstream_max_memory, new.jetstream_max_memory),
        ("max_file_store", old.jetstream_max_store, new.jetstream_max_store),
    ):
        if not running or before == after:
            continue
        if before == -1:
            raise JetStreamReloadError(
                "config reload not supported for jetstream dynamic max memory and store"
            )
        if after == -1:
            sizes_dropped = True  # fine if JetStream is being switched off
        elif after < before:
            raise JetStreamReloadError(
                "config reload not supported for decreasing jetstream max memory and store"
            )
        else:
            change.lines.append(f"Reloaded: JetStream {name} = {friendly_bytes(after)}")
    _refuse(old, new, REFUSED_AFTER_SIZES)
    if old.jetstream_limits != new.jetstream_limits:
        change.lines.append("Reloaded: JetStream limits")
    _refuse(old, new, REFUSED_AFTER_LIMITS)
    store_dir_dropped = False
    if running and old.store_dir != new.store_dir:
        if new.store_dir:
            raise JetStreamReloadError(
                "config reload not supported for jetstream storage directory"
            )
        store_dir_dropped = True  # a temporary directory: fine if JetStream is switched off
    _refuse(old, new, REFUSED_AFTER_STORE_DIR)
    if new.jetstream:
        if sizes_dropped:
            change.refused_later = (
                "config reload not supported for jetstream max memory and max store"
            )
        elif store_dir_dropped:
            change.refused_later = "config reload not supported for jetstream storage dir"
    return change
