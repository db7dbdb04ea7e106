"""The JetStream API requests `nats stream` and `nats consumer` make (all pages of a list, info
without the envelope, through `connect.js_request`), natscli's pickers, and the stream naming
and metadata conventions `kv` and `obj` share (`KV_`/`OBJ_` streams, reserved `_nats.` keys).

Everything here talks JSON dictionaries, exactly as the server sends them: the info screens
render them and `--json` prints them (without the response envelope's `type` and paging
fields, which are not part of a StreamInfo/ConsumerInfo).

Picking a stream or consumer follows natscli (cli.md §0.4): a name that exists is used as is;
otherwise, on a terminal, a list to choose from is shown; without a terminal the command fails
with `cannot pick a Stream without a terminal and no Stream name supplied`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pynats.cli.ui import prompt
from pynats.cli.ui.connect import js_request
from pynats.cli.ui.errors import STREAM_NOT_FOUND, ApiError, CliError

if TYPE_CHECKING:
    from nats.aio.client import Client

# Streams that back other abstractions: hidden from lists and pickers unless -a/--all is given.
KV_STREAM_PREFIX = "KV_"
OBJ_STREAM_PREFIX = "OBJ_"
INTERNAL_STREAM_PREFIXES = (KV_STREAM_PREFIX, OBJ_STREAM_PREFIX, "$MQTT_")
RESERVED_METADATA_PREFIX = "_nats."
# Fields of an API response that are the envelope, not the StreamInfo/ConsumerInfo itself.
ENVELOPE_FIELDS = ("type", "total", "offset", "limit", "did_create")


def without_envelope(reply: dict[str, Any]) -> dict[str, Any]:
    """The info object inside an API reply (what natscli's `--json` prints)."""
    return {k: v for k, v in reply.items() if k not in ENVELOPE_FIELDS}


def is_internal_stream(name: str) -> bool:
    return name.startswith(INTERNAL_STREAM_PREFIXES)


def is_kv_stream(name: str) -> bool:
    return name.startswith(KV_STREAM_PREFIX)


def user_metadata(metadata: dict[str, str] | None) -> dict[str, str]:
    """Metadata without the server's reserved `_nats.*` keys."""
    return {k: v for k, v in (metadata or {}).items() if not k.startswith(RESERVED_METADATA_PREFIX)}


# -- account ---------------------------------------------------------------------------------


async def account_info(nc: Client) -> dict[str, Any]:
    return await js_request(nc, "INFO")


async def max_bytes_required(nc: Client) -> bool:
    """Whether the account insists on `max_bytes` for new streams (false when unknown)."""
    try:
        info = await account_info(nc)
    except CliError:
        return False
    return bool((info.get("limits") or {}).get("max_bytes_required"))


# -- streams ---------------------------------------------------------------------------------


async def stream_names(nc: Client, subject: str = "") -> list[str]:
    """Every stream name (all pages), optionally only those listening on `subject`."""
    names: list[str] = []
    while True:
        request: dict[str, Any] = {"offset": len(names)}
        if subject:
            request["subject"] = subject
        reply = await js_request(nc, "STREAM.NAMES", request)
        page = reply.get("streams") or []
        names.extend(page)
        if not page or len(names) >= int(reply.get("total", 0) or 0):
            return names


async def stream_list(
    nc: Client, subject: str = ""
) -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
    """Every StreamInfo (all pages), plus the names the server could not report on."""
    infos: list[dict[str, Any]] = []
    missing: list[str] = []
    offline: dict[str, str] = {}
    while True:
        request: dict[str, Any] = {"offset": len(infos)}
        if subject:
            request["subject"] = subject
        reply = await js_request(nc, "STREAM.LIST", request)
        page = reply.get("streams") or []
        infos.extend(page)
        missing.extend(reply.get("missing") or [])
        offline.update(reply.get("offline") or {})
        if not page or len(infos) >= int(reply.get("total", 0) or 0):
            return infos, missing, offline


async def stream_info(nc: Client, name: str) -> dict[str, Any]:
    return without_envelope(await js_request(nc, f"STREAM.INFO.{name}"))


async def select_stream(
    nc: Client, name: str, *, show_all: bool = False, no_select: bool = False
) -> tuple[str, dict[str, Any] | None]:
    """natscli's selectStream: the stream called `name`, or one the user picks."""
    if name:
        try:
            return name, await stream_info(nc, name)
        except ApiError as exc:
            if exc.err_code != STREAM_NOT_FOUND:
                raise
    names = await stream_names(nc)
    if name and name in names:
        return name, None
    if not prompt.can_prompt():
        raise CliError("cannot pick a Stream without a terminal and no Stream name supplied")
    if no_select:
        raise CliError(f'unknown stream "{name}"')
    choices = [n for n in names if show_all or not is_internal_stream(n)]
    if not choices:
        raise CliError("no Streams are defined")
    return prompt.select("Select a Stream", choices), None


# -- consumers -------------------------------------------------------------------------------


async def consumer_names(nc: Client, stream: str) -> list[str]:
    names: list[str] = []
    while True:
        reply = await js_request(nc, f"CONSUMER.NAMES.{stream}", {"offset": len(names)})
        page = reply.get("consumers") or []
        names.extend(page)
        if not page or len(names) >= int(reply.get("total", 0) or 0):
            return names


async def consumer_list(nc: Client, stream: str) -> tuple[list[dict[str, Any]], list[str]]:
    infos: list[dict[str, Any]] = []
    missing: list[str] = []
    while True:
        reply = await js_request(nc, f"CONSUMER.LIST.{stream}", {"offset": len(infos)})
        page = reply.get("consumers") or []
        infos.extend(page)
        missing.extend(reply.get("missing") or [])
        if not page or len(infos) >= int(reply.get("total", 0) or 0):
            return infos, missing


async def consumer_info(nc: Client, stream: str, name: str) -> dict[str, Any]:
    return without_envelope(await js_request(nc, f"CONSUMER.INFO.{stream}.{name}"))


async def select_consumer(
    nc: Client, stream: str, name: str, *, no_select: bool = False
) -> tuple[str, dict[str, Any] | None]:
    """natscli's selectConsumer: the consumer called `name`, or one the user picks."""
    if name:
        try:
            return name, await consumer_info(nc, stream, name)
        except ApiError:
            pass
    if no_select:
        raise CliError(f'unknown consumer "{stream}" > "{name}"')
    if not prompt.can_prompt():
        raise CliError("cannot pick a Consumer without a terminal and no Consumer name supplied")
    names = await consumer_names(nc, stream)
    if not names:
        raise CliError(f"no Consumers are defined for Stream {stream}")
    chosen = prompt.select("Select a Consumer", names)
    return chosen, await consumer_info(nc, stream, chosen)
