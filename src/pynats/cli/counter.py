"""`nats counter` (alias `ctr`): distributed counters (ADR-49), as natscli reaches them.

A counter is a subject of a stream with `allow_msg_counter` and `allow_direct`: publishing a
message with `Nats-Incr: <n>` adds n to the subject's total, the PubAck carries the new total
(`val`), and the last message of the subject holds it as `{"val":"<total>"}`, with the sources'
shares in `Nats-Counter-Sources`. Totals are arbitrary-precision integers, kept as Python ints.

    nats counter get SUBJECT           the total (`counter not initialized for subject: S`)
    nats counter incr SUBJECT VALUE    add VALUE (may be negative), print the new total
    nats counter view SUBJECT          total, last increment, subject and sources
    nats counter ls [SUBJECT]          the subjects holding counters (--json: a list)

The stream is the one listening on the subject unless --stream names it (as natscli does with
orbit.go's counters package).
"""

from __future__ import annotations

import json
from typing import Any

import click
import nats.errors
from nats.aio.client import Client

from pynats.cli.stream.api import stream_info, stream_names
from pynats.cli.ui.columns import Columns
from pynats.cli.ui.command import NatsGroup
from pynats.cli.ui.connect import connection, js_api_prefix, js_request, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import out, print_json

INCREMENT_HEADER = "Nats-Incr"
SOURCES_HEADER = "Nats-Counter-Sources"
NOT_INITIALIZED = "counter not initialized for subject"


def _stream_option() -> Any:
    return click.option(
        "--stream", default="", metavar="STREAM", help="The stream name to fetch the value from"
    )


def register(root: NatsGroup) -> None:
    @root.group(
        "counter",
        aliases=["ctr"],
        help="Access distributed Counters\n\nThis is an experimental command and will undergo "
        "changes in later versions",
    )
    def counter() -> None:
        """Access distributed Counters."""

    @counter.command("get", aliases=["g"], help="Gets the current value for a counter")
    @click.argument("subject", help="Subject to get counter for")
    @_stream_option()
    def get(subject: str, stream: str) -> None:
        out(str(run_async(_get(subject, stream))))

    @counter.command("view", aliases=["v"], help="View the full counter metadata")
    @click.argument("subject", help="Subject to get counter for")
    @_stream_option()
    def view(subject: str, stream: str) -> None:
        entry = run_async(_view(subject, stream))
        out(render_entry(subject, entry).render(), end="")

    @counter.command("increment", aliases=["incr", "i"], help="Increment the value of a counter")
    @click.argument("subject", help="Subject to get counter for")
    @click.argument("value", required=False, default="", help="The value to increment")
    @_stream_option()
    def increment(subject: str, value: str, stream: str) -> None:
        amount = parse_big_int(value)
        if amount is None:
            raise CliError("invalid value")
        out(str(run_async(_increment(subject, amount, stream))))

    @counter.command("list", aliases=["l", "ls"], help="List Counters in a stream")
    @click.argument(
        "subject", required=False, default="", help="Subject pattern to get counters for"
    )
    @_stream_option()
    @click.option("--json", "as_json", is_flag=True, help="Produce JSON output")
    def list_counters(subject: str, stream: str, as_json: bool) -> None:
        if not stream and not subject:
            raise CliError("no stream or subject specified")
        subjects = run_async(_list(subject, stream))
        if as_json:
            print_json(subjects)
            return
        for name in subjects:
            out(name)


def parse_big_int(text: str) -> int | None:
    """Go's big.Int SetString(text, 10): an optional sign and decimal digits, nothing else."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not digits.isdigit() or not digits.isascii():
        return None
    return int(text)


# -- the counter stream -------------------------------------------------------------------------


async def counter_stream(nc: Client, subject: str, stream: str) -> str:
    """The stream holding `subject`'s counter, checked to be a counter stream."""
    name = stream
    if not name:
        names = await stream_names(nc, subject)
        if not names:
            raise CliError("nats: stream not found")
        name = names[0]
    config = (await stream_info(nc, name)).get("config") or {}
    if not (config.get("allow_msg_counter") and config.get("allow_direct")):
        raise CliError(f'"{name}" is not a valid counter stream')
    return name


async def last_message(nc: Client, stream: str, subject: str) -> Any:
    """The subject's last message by DIRECT.GET, None when the subject has none."""
    api = f"{js_api_prefix()}.DIRECT.GET.{stream}"
    body = json.dumps({"last_by_subj": subject}).encode()
    try:
        msg = await nc.request(api, body, timeout=current_settings().timeout_s)
    except nats.errors.NoRespondersError as exc:
        raise CliError("nats: no responders available for request") from exc
    except nats.errors.TimeoutError as exc:
        raise CliError("nats: timeout") from exc
    headers = msg.headers or {}
    status = headers.get("Status", "")
    if status == "404":
        return None
    if status:
        reason = headers.get("Description") or f"status {status}"
        raise CliError(f"failed to get last message for subject {subject}: nats: {reason}")
    return msg


def counter_value(data: bytes, subject: str) -> int:
    """The total stored in a counter message (`{"val":"123"}`)."""
    if not data:
        raise CliError("invalid counter value: empty counter value")
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise CliError(f"failed to unmarshal counter payload: {exc}") from exc
    value = parse_big_int(str(payload.get("val", ""))) if isinstance(payload, dict) else None
    if value is None:
        raise CliError(f"failed to parse counter value for subject {subject}")
    return value


def counter_sources(header: str) -> dict[str, dict[str, int]]:
    """`Nats-Counter-Sources`: each source stream's share per subject."""
    if not header:
        return {}
    try:
        sources = json.loads(header)
    except ValueError as exc:
        raise CliError(f"failed to parse sources: {exc}") from exc
    result: dict[str, dict[str, int]] = {}
    for source, shares in (sources or {}).items():
        result[source] = {}
        for subject, text in (shares or {}).items():
            value = parse_big_int(str(text))
            if value is None:
                raise CliError(
                    f"failed to parse sources: invalid counter value for subject {subject}: {text}"
                )
            result[source][subject] = value
    return result


# -- the verbs ----------------------------------------------------------------------------------


async def _get(subject: str, stream: str) -> int:
    async with connection() as nc:
        name = await counter_stream(nc, subject, stream)
        msg = await last_message(nc, name, subject)
        if msg is None:
            raise CliError(f"{NOT_INITIALIZED}: {subject}")
        return counter_value(msg.data, subject)


async def _view(subject: str, stream: str) -> dict[str, Any]:
    async with connection() as nc:
        name = await counter_stream(nc, subject, stream)
        msg = await last_message(nc, name, subject)
        if msg is None:
            raise CliError(NOT_INITIALIZED)
        headers = msg.headers or {}
        return {
            "value": counter_value(msg.data, subject),
            "increment": headers.get(INCREMENT_HEADER, ""),
            "subject": headers.get("Nats-Subject", subject),
            "sources": counter_sources(headers.get(SOURCES_HEADER, "")),
        }


async def _increment(subject: str, amount: int, stream: str) -> int:
    async with connection() as nc:
        await counter_stream(nc, subject, stream)
        try:
            msg = await nc.request(
                subject,
                b"",
                timeout=current_settings().timeout_s,
                headers={INCREMENT_HEADER: str(amount)},
            )
        except nats.errors.NoRespondersError as exc:
            raise CliError(
                "failed to publish counter increment: nats: no response from stream"
            ) from exc
        except nats.errors.TimeoutError as exc:
            raise CliError("failed to publish counter increment: nats: timeout") from exc
        try:
            ack = json.loads(msg.data)
        except ValueError as exc:
            raise CliError(f"failed to publish counter increment: {exc}") from exc
        error = ack.get("error") if isinstance(ack, dict) else None
        if isinstance(error, dict):
            raise CliError(
                "failed to publish counter increment: nats: API error: "
                f"code={error.get('code', 0)} err_code={error.get('err_code', 0)} "
                f"description={error.get('description', '')}"
            )
        value = parse_big_int(str(ack.get("val", ""))) if isinstance(ack, dict) else None
        if not isinstance(ack, dict) or not ack.get("val"):
            raise CliError("counter increment response missing value")
        if value is None:
            raise CliError(f"invalid counter value in response: {ack.get('val')}")
        return value


async def _list(subject: str, stream: str) -> list[str]:
    async with connection() as nc:
        name = await counter_stream(nc, subject, stream)
        info = await _stream_subjects(nc, name, subject or ">")
        if not info:
            raise CliError("no counters found")
        return sorted(info)


async def _stream_subjects(nc: Client, stream: str, subject_filter: str) -> dict[str, int]:
    """The stream's subjects matching the filter, with their message counts (all pages)."""
    subjects: dict[str, int] = {}
    while True:
        reply = await js_request(
            nc,
            f"STREAM.INFO.{stream}",
            {"subjects_filter": subject_filter, "offset": len(subjects)},
        )
        page = (reply.get("state") or {}).get("subjects") or {}
        subjects.update(page)
        total = int(reply.get("total", 0) or 0)
        if not page or len(subjects) >= total:
            return subjects


# -- rendering ----------------------------------------------------------------------------------


def render_entry(subject: str, entry: dict[str, Any]) -> Columns:
    screen = Columns(f"Counter {subject}")
    screen.add_row("Value", str(entry["value"]))
    screen.add_row("Increment", entry["increment"])
    screen.add_row("Subject", entry["subject"])
    if entry["sources"]:
        screen.add_section("Sources")
        for source, shares in sorted(entry["sources"].items()):
            screen.add_map_as_value(source, {k: str(v) for k, v in shares.items()})
    else:
        screen.add_line("No source information found")
    return screen
