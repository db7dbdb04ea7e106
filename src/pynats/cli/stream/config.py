"""Stream configurations from flags, prompts and JSON files (`stream add`, `edit`, `copy`).

A configuration is the JSON dictionary the JetStream API takes (cli.md §7.1, jetstream.md §3),
built in one of three ways:

* `prepare_new_config`: `stream add` — the flags given, then (on a terminal) natscli's questions
  for everything missing, in natscli's order, or natscli's defaults with `--defaults`;
* `config_from_file`: `--config FILE` — a stream configuration, or a whole `stream info
  --json` document (recognised by its top-level `config` key);
* `apply_flags`: `stream edit` and `stream copy` — only the flags that were given, applied to an
  existing configuration.

`StreamFlags` holds the flags exactly as typed (None or empty = not given), so each path can
tell "not given" from "given as the default value", as natscli does. Which configuration key
each flag sets, and how, is the tables LIMIT_FIELDS, OPTION_FIELDS, FEATURE_FIELDS and
ADD_ONLY_FIELDS (see ui/jsconfig.py); both paths write through them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import click

from pynats.cli.stream.api import user_metadata
from pynats.cli.ui import prompt
from pynats.cli.ui.command import apply_options, json_flag, negatable
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.jsconfig import (
    ConfigField,
    fields_by_flag,
    is_set,
    load_config_file,
    metadata_callback,
    split_subjects,
    write_given,
)
from pynats.cli.ui.output import out
from pynats.cli.ui.parse import (
    BYTE_SIZE,
    DURATION,
    checked_duration_ns,
    parse_byte_size,
)
from pynats.gotime import MINUTE, format_duration

MAX_INT32 = 2**31 - 1
DEFAULT_DUPE_WINDOW_NS = 2 * MINUTE
REQUIRED_MAX_BYTES = 256 * 1024 * 1024
STREAM_CONFIG_SCHEMA = "io.nats.jetstream.api.v1.stream_configuration"
_NAME_FORBIDDEN = re.compile(r"[.*>\s/\\]")

STORAGE = {"file": "file", "f": "file", "memory": "memory", "m": "memory"}
RETENTION = {
    "limits": "limits",
    "interest": "interest",
    "work queue": "workqueue",
    "workq": "workqueue",
    "work": "workqueue",
}
DISCARD = {"new": "new", "old": "old"}


@dataclass
class StreamFlags:
    """The configuration flags of `stream add/edit/copy`, None/empty meaning "not given"."""

    subjects: tuple[str, ...] = ()
    description: str = ""
    storage: str = ""
    compression: str | None = None
    replicas: int = 0
    tag: tuple[str, ...] | None = None
    cluster: str | None = None
    ack: bool | None = None
    retention: str = ""
    discard: str = ""
    discard_per_subject: bool | None = None
    first_sequence: int = 0
    max_age: str = ""
    max_bytes: int | None = None
    max_consumers: int = -1
    max_msg_size: int | None = None
    max_msgs: int = 0
    max_msgs_per_subject: int = 0
    dupe_window: str = ""
    mirror: str = ""
    no_mirror: bool = False
    sources: tuple[str, ...] = ()
    allow_batch: bool | None = None
    allow_fast: bool | None = None
    allow_counter: bool | None = None
    allow_rollup: bool | None = None
    deny_delete: bool | None = None
    deny_purge: bool | None = None
    allow_direct: bool | None = None
    allow_mirror_direct: bool | None = None
    allow_msg_ttl: bool | None = None
    allow_schedules: bool | None = None
    subject_del_markers_ttl: int | None = None
    transform_source: str = ""
    transform_destination: str = ""
    no_transform: bool = False
    metadata: dict[str, str] | None = None
    republish_source: str = ""
    republish_destination: str = ""
    republish_headers: bool = False
    no_republish: bool = False
    limit_consumer_inactive: int = 0
    limit_consumer_max_pending: int = 0
    persist_mode: str = ""

    @classmethod
    def take(cls, options: dict[str, Any]) -> StreamFlags:
        """Pull this dataclass's fields out of a command's keyword arguments."""
        names = {f.name for f in fields(cls)}
        picked = {name: options.pop(name) for name in list(options) if name in names}
        if picked.get("tag") == ():
            picked["tag"] = None
        for item in fields(cls):
            if item.default == "" and picked.get(item.name) is None:
                picked.pop(item.name, None)
        return cls(**picked)

    def check_pairs(self) -> None:
        """natscli's checkRepubTransform: source and destination flags come in pairs."""
        if bool(self.republish_source) != bool(self.republish_destination) or (
            self.republish_headers and not (self.republish_source and self.republish_destination)
        ):
            message = "must specify both --republish-source and --republish-destination"
            if self.republish_headers:
                message += " when using --headers-only"
            raise CliError(message)
        if bool(self.transform_source) != bool(self.transform_destination):
            raise CliError("must specify both --transform-source and --transform-destination")


def _name_of(names: dict[str, str]) -> Callable[[str], str]:
    """A policy flag or answer (`work`, `Work Queue`) as its configuration name (`workqueue`)."""
    return lambda text: names[text.lower()]


# Storage and limits: `stream add` writes every one (asking for those not given), `stream edit`
# the given ones.
LIMIT_FIELDS = (
    ConfigField("discard", "discard", _name_of(DISCARD)),
    ConfigField("subjects", "subjects", split_subjects),
    ConfigField("storage", "storage", _name_of(STORAGE)),
    ConfigField("retention", "retention", _name_of(RETENTION)),
    ConfigField("max_bytes", "max_bytes"),
    ConfigField("max_msgs", "max_msgs"),
    ConfigField("max_msgs_per_subject", "max_msgs_per_subject"),
    ConfigField(
        "max_age",
        "max_age",
        lambda text: checked_duration_ns(text, "invalid maximum age limit format"),
    ),
    ConfigField("max_msg_size", "max_msg_size"),
    ConfigField("max_consumers", "max_consumers", is_given=lambda count: count != -1),
    ConfigField(
        "dupe_window",
        "duplicate_window",
        lambda text: checked_duration_ns(text, "invalid duplicate window"),
    ),
    ConfigField("replicas", "num_replicas"),
)
# Options: `stream add` asks about the roll-up, delete and purge ones, and defaults the others.
OPTION_FIELDS = (
    ConfigField("description", "description"),
    ConfigField("allow_rollup", "allow_rollup_hdrs", is_given=is_set),
    ConfigField("deny_purge", "deny_purge", is_given=is_set),
    ConfigField("deny_delete", "deny_delete", is_given=is_set),
    ConfigField("allow_direct", "allow_direct", is_given=is_set),
    ConfigField("allow_mirror_direct", "mirror_direct", is_given=is_set),
    ConfigField("discard_per_subject", "discard_new_per_subject", is_given=is_set),
    ConfigField("metadata", "metadata", dict, is_given=is_set),
    ConfigField("compression", "compression", is_given=is_set),
)
# Features: written as given by both verbs.
FEATURE_FIELDS = (
    ConfigField("allow_msg_ttl", "allow_msg_ttl"),
    ConfigField("subject_del_markers_ttl", "subject_delete_marker_ttl", is_given=is_set),
    ConfigField("allow_counter", "allow_msg_counter", is_given=is_set),
    ConfigField("allow_batch", "allow_atomic", is_given=is_set),
    ConfigField("allow_fast", "allow_batched", is_given=is_set),
    ConfigField("allow_schedules", "allow_msg_schedules", is_given=is_set),
)
# Only `stream add` has these (`stream copy` accepts and ignores them, as natscli does).
ADD_ONLY_FIELDS = (
    ConfigField("first_sequence", "first_seq"),
    ConfigField("persist_mode", "persist_mode", is_given=lambda mode: mode == "async"),
)
FIELD = fields_by_flag((*LIMIT_FIELDS, *OPTION_FIELDS, *FEATURE_FIELDS, *ADD_ONLY_FIELDS))


def _write_ack(config: dict[str, Any], ack: bool | None) -> None:
    """`--ack/--no-ack`: the configuration says `no_ack`, and only when it is true."""
    if ack is True:
        config.pop("no_ack", None)
    elif ack is False:
        config["no_ack"] = True


def _subject_transform(flags: StreamFlags) -> dict[str, Any] | None:
    if flags.transform_source and flags.transform_destination:
        return {"src": flags.transform_source, "dest": flags.transform_destination}
    return None


def _republish(flags: StreamFlags) -> dict[str, Any] | None:
    if flags.republish_source and flags.republish_destination:
        return {
            "src": flags.republish_source,
            "dest": flags.republish_destination,
            "headers_only": flags.republish_headers,
        }
    return None


def stream_config_options(*, edit: bool) -> Any:
    """The click options natscli's addCreateFlags declares (edit=True: `stream edit`'s set)."""

    options: list[Any] = [
        click.option("--subjects", multiple=True, help="Subjects that are consumed by the stream"),
        click.option(
            "--description", default="", help="Sets a contextual description for the stream"
        ),
    ]
    if not edit:
        options.append(
            click.option(
                "--storage",
                type=click.Choice(["file", "f", "memory", "m"]),
                default=None,
                help="Storage backend to use (file, memory)",
            )
        )
    options += [
        click.option(
            "--compression",
            type=click.Choice(["none", "s2"]),
            default=None,
            help="Compression algorithm to use (file storage only)",
        ),
        click.option(
            "--replicas",
            type=int,
            default=0,
            help="When clustered, how many replicas of the data to create",
        ),
        click.option(
            "--tag",
            multiple=True,
            help="Place the stream on servers that has specific tags (pass multiple times)",
        ),
        click.option("--cluster", default=None, help="Place the stream on a specific cluster"),
        click.option("--ack/--no-ack", default=None, help="Acknowledge publishes"),
        click.option(
            "--retention",
            type=click.Choice(["limits", "interest", "workq", "work"]),
            default=None,
            help="Defines a retention policy (limits, interest, work)",
        ),
        click.option(
            "--discard",
            type=click.Choice(["new", "old"]),
            default=None,
            help="Defines the discard policy (new, old)",
        ),
        negatable(
            "discard-per-subject",
            None,
            "Sets the 'new' discard policy and applies it to every subject in the stream",
        ),
    ]
    if not edit:
        options.append(
            click.option("--first-sequence", type=int, default=0, help="Sets the starting sequence")
        )
    options += [
        click.option("--max-age", default="", help="Maximum age of messages to keep"),
        click.option(
            "--max-bytes",
            type=BYTE_SIZE,
            default=None,
            metavar="BYTES",
            help="Maximum bytes to keep",
        ),
        click.option(
            "--max-consumers",
            type=int,
            default=-1,
            help="Maximum number of consumers to allow",
        ),
        click.option(
            "--max-msg-size",
            type=BYTE_SIZE,
            default=None,
            metavar="BYTES",
            help="Maximum size any 1 message may be",
        ),
        click.option("--max-msgs", type=int, default=0, help="Maximum amount of messages to keep"),
        click.option(
            "--max-msgs-per-subject",
            type=int,
            default=0,
            help="Maximum amount of messages to keep per subject",
        ),
        click.option(
            "--dupe-window", default="", help="Duration of the duplicate message tracking window"
        ),
        click.option("--mirror", default="", help="Completely mirror another stream"),
    ]
    if edit:
        options.append(
            click.option("--no-mirror", is_flag=True, help="Removes current mirror configuration")
        )
    options += [
        click.option(
            "--source",
            "sources",
            multiple=True,
            metavar="STREAM",
            help="Source data from other streams, merging into this one",
        ),
        negatable("allow-batch", None, "Allow atomic batch publishing"),
        negatable("allow-fast", None, "Allow fast batch publishing"),
        click.option(
            "--allow-counter",
            is_flag=True,
            default=None,
            help="Configures the stream as a distributed counter",
        ),
        negatable(
            "allow-rollup",
            None,
            "Allows roll-ups to be done by publishing messages with special headers",
        ),
        negatable("deny-delete", None, "Deny messages from being deleted via the API"),
        negatable("deny-purge", None, "Deny entire stream or subject purges via the API"),
        negatable(
            "allow-direct",
            None,
            "Allows fast, direct, access to stream data via the direct get API",
        ),
        negatable(
            "allow-mirror-direct",
            None,
            "Allows fast, direct, access to stream data via the direct get API on mirrors",
        ),
        click.option(
            "--allow-msg-ttl",
            is_flag=True,
            default=None,
            help="Allows per-message TTL handling",
        ),
        negatable("allow-schedules", None, "Allows message schedules"),
        click.option(
            "--subject-del-markers-ttl",
            type=DURATION,
            default=None,
            metavar="DURATION",
            help="How long delete markers should persist in the stream",
        ),
        click.option(
            "--transform-source",
            default="",
            metavar="SOURCE",
            help="Stream subject transform source",
        ),
        click.option(
            "--transform-destination",
            default="",
            metavar="DEST",
            help="Stream subject transform destination",
        ),
    ]
    if edit:
        options.append(
            click.option(
                "--no-transform",
                is_flag=True,
                help="Removes current subject transform configuration",
            )
        )
    options += [
        click.option(
            "--metadata",
            multiple=True,
            metavar="META",
            callback=metadata_callback,
            help="Adds metadata to the stream",
        ),
        click.option(
            "--republish-source",
            default="",
            metavar="SOURCE",
            help="Republish messages to --republish-destination",
        ),
        click.option(
            "--republish-destination",
            default="",
            metavar="DEST",
            help="Republish destination for messages in --republish-source",
        ),
        click.option(
            "--republish-headers",
            is_flag=True,
            help="Republish only message headers, no bodies",
        ),
    ]
    if edit:
        options.append(
            click.option(
                "--no-republish", is_flag=True, help="Removes current republish configuration"
            )
        )
    else:
        options += [
            click.option(
                "--limit-consumer-inactive",
                type=DURATION,
                default=0,
                metavar="THRESHOLD",
                help="The maximum Consumer inactive threshold the stream allows",
            ),
            click.option(
                "--limit-consumer-max-pending",
                type=int,
                default=0,
                metavar="PENDING",
                help="The maximum Consumer Ack Pending the stream Allows",
            ),
            click.option(
                "--persist-mode",
                type=click.Choice(["default", "async"]),
                default=None,
                help="Configures the persistence mode",
            ),
        ]
    options.append(json_flag())

    return apply_options(*options)


# -- --config FILE ----------------------------------------------------------------------------


def config_from_file(flags: StreamFlags, path: str, name: str) -> dict[str, Any]:
    """`stream add --config FILE`: the file, overridden by the name argument and a few flags."""
    try:
        config = load_config_file(path)
    except CliError as exc:
        raise CliError(f"invalid input: {exc}") from None
    if "metadata" in config:
        config["metadata"] = user_metadata(config.get("metadata"))
    if name:
        config["name"] = name
    if flags.subjects:
        config["subjects"] = list(flags.subjects)
    if flags.tag:
        config.setdefault("placement", {})
        config["placement"] = {**(config["placement"] or {}), "tags": list(flags.tag)}
    if flags.cluster:
        config["placement"] = {**(config.get("placement") or {}), "cluster": flags.cluster}
    if flags.description:
        config["description"] = flags.description
    if flags.replicas > 0:
        config["num_replicas"] = flags.replicas
    return config


# -- stream add: flags, defaults and questions -----------------------------------------------


def _ask_bytes(question: str, default: str, required_note: str = "") -> int:
    """natscli's askOneBytes: a size answer, `-1` meaning unlimited (returned as 0)."""
    if not prompt.can_prompt():
        raise prompt.PromptUnavailable(prompt.NO_TERMINAL_CONFIRM)
    while True:
        answer = prompt.ask(question, default, required=True)
        if answer == "-1":
            answer = "0"
        try:
            size = parse_byte_size(answer)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        if required_note and size <= 0:
            out(required_note)
            continue
        return size


def prepare_new_config(
    flags: StreamFlags, name: str, *, defaults: bool, require_size: bool
) -> dict[str, Any]:
    """`stream add` without --config: flags first, then defaults or questions, natscli's order."""
    if not name:
        name = prompt.prompted("invalid input", prompt.ask, "Stream Name", required=True)
    subjects = list(flags.subjects)
    if not flags.mirror and not flags.sources:
        if not subjects:
            answer = prompt.prompted("invalid input", prompt.ask, "Subjects", required=True)
            subjects = [answer]
        subjects = split_subjects(subjects)
    if flags.mirror and subjects:
        raise CliError("mirrors cannot listen for messages on subjects")

    storage = flags.storage
    compression = flags.compression or ""
    replicas = flags.replicas
    retention = flags.retention
    discard = flags.discard
    max_msgs = flags.max_msgs
    max_per_subject = flags.max_msgs_per_subject
    max_bytes = flags.max_bytes
    max_age_text = flags.max_age
    max_msg_size = flags.max_msg_size
    if defaults:
        storage = storage or "file"
        compression = compression or "none"
        replicas = replicas or 1
        retention = retention or "limits"
        discard = discard or "old"
        max_msgs = max_msgs or -1
        max_per_subject = max_per_subject or -1
        if max_bytes is None:
            max_bytes = REQUIRED_MAX_BYTES if require_size else -1
        max_age_text = max_age_text or "-1"
        if max_msg_size is None:
            max_msg_size = -1

    if not storage:
        storage = prompt.prompted("invalid input", prompt.select, "Storage", ["file", "memory"])
    if not replicas:
        replicas = prompt.prompted("invalid input", prompt.ask_int, "Replication", 1)
    if replicas <= 0:
        raise CliError("replicas should be >= 1")
    if not retention:
        retention = prompt.prompted(
            "invalid input",
            prompt.select,
            "Retention Policy",
            ["Limits", "Interest", "Work Queue"],
            "Limits",
        )
    if not discard:
        discard = prompt.prompted(
            "invalid input", prompt.select, "Discard Policy", ["New", "Old"], "Old"
        )
    if not max_msgs:
        max_msgs = prompt.prompted("invalid input", prompt.ask_int, "Stream Messages Limit", -1)
        max_msgs = max_msgs if max_msgs > 0 else -1
    if not max_per_subject and subjects:
        max_per_subject = prompt.prompted(
            "invalid input", prompt.ask_int, "Per Subject Messages Limit", -1
        )
        max_per_subject = max_per_subject if max_per_subject > 0 else -1
    if not max_bytes:
        note = "MaxBytes is required per Account Settings" if require_size else ""
        max_bytes = prompt.prompted(
            "invalid input",
            _ask_bytes,
            "Total Stream Size",
            "256MB" if require_size else "-1",
            note,
        )
    if max_bytes is None or max_bytes <= 0:
        max_bytes = -1
    if not max_age_text:
        max_age_text = prompt.prompted("invalid input", prompt.ask, "Message TTL", "-1")
    max_age = 0
    if max_age_text != "-1":
        max_age = FIELD["max_age"].to_config(max_age_text)
    if not max_msg_size:
        max_msg_size = prompt.prompted("invalid input", _ask_bytes, "Max Message Size", "-1")
    if not max_msg_size:
        max_msg_size = -1
    if max_msg_size > MAX_INT32:
        raise CliError(f"max value size {max_msg_size:,} is too big maximum is {MAX_INT32:,}")

    dupe_text = flags.dupe_window
    if not dupe_text and not flags.mirror:
        default_window = DEFAULT_DUPE_WINDOW_NS
        if 0 < max_age < DEFAULT_DUPE_WINDOW_NS:
            default_window = max_age
        if defaults:
            dupe_text = format_duration(default_window)
        else:
            dupe_text = prompt.prompted(
                "invalid input",
                prompt.ask,
                "Duplicate tracking time window",
                format_duration(default_window),
            )
    dupe_window = (
        checked_duration_ns(dupe_text, "invalid duplicate window format") if dupe_text else 0
    )

    allow_rollup = bool(flags.allow_rollup)
    deny_delete = bool(flags.deny_delete)
    deny_purge = bool(flags.deny_purge)
    if not defaults:
        if flags.allow_rollup is None:
            allow_rollup = prompt.prompted(
                "invalid input", prompt.confirm, "Allow message Roll-ups"
            )
        if flags.deny_delete is None:
            deny_delete = not prompt.prompted(
                "invalid input", prompt.confirm, "Allow message deletion", True
            )
        if flags.deny_purge is None:
            deny_purge = not prompt.prompted(
                "invalid input",
                prompt.confirm,
                "Allow purging subjects or the entire stream",
                True,
            )

    config: dict[str, Any] = {"name": name}
    write_given(config, flags, (FIELD["description"], *FEATURE_FIELDS, *ADD_ONLY_FIELDS))
    if subjects:
        FIELD["subjects"].write_value(config, subjects)
    for flag, value in (
        ("retention", retention),
        ("max_consumers", flags.max_consumers),
        ("max_msgs", max_msgs),
        ("max_bytes", max_bytes),
        ("max_msgs_per_subject", max_per_subject),
        ("max_msg_size", max_msg_size),
        ("discard", discard),
        ("storage", storage),
        ("replicas", replicas),
        ("allow_rollup", allow_rollup),
        ("deny_delete", deny_delete),
        ("deny_purge", deny_purge),
        ("compression", compression or "none"),
        ("allow_direct", True if flags.allow_direct is None else flags.allow_direct),
        ("allow_mirror_direct", bool(flags.allow_mirror_direct)),
    ):
        FIELD[flag].write(config, value)
    FIELD["max_age"].write_value(config, max_age)
    if dupe_window:
        FIELD["dupe_window"].write_value(config, dupe_window)
    if flags.discard_per_subject:
        FIELD["discard_per_subject"].write(config, True)
    if flags.metadata:
        FIELD["metadata"].write(config, user_metadata(flags.metadata))
    _write_ack(config, flags.ack)
    if flags.cluster or flags.tag:
        placement: dict[str, Any] = {}
        if flags.cluster:
            placement["cluster"] = flags.cluster
        if flags.tag:
            placement["tags"] = list(flags.tag)
        config["placement"] = placement
    if flags.mirror:
        config["mirror"] = _stream_source(flags.mirror, defaults, is_mirror=True)
    if flags.sources:
        config["sources"] = [_stream_source(s, defaults, is_mirror=False) for s in flags.sources]
    flags.check_pairs()
    transform, republish = _subject_transform(flags), _republish(flags)
    if transform:
        config["subject_transform"] = transform
    if republish:
        config["republish"] = republish
    limits: dict[str, Any] = {}
    if flags.limit_consumer_inactive > 0:
        limits["inactive_threshold"] = flags.limit_consumer_inactive
    if flags.limit_consumer_max_pending > 0:
        limits["max_ack_pending"] = flags.limit_consumer_max_pending
    config["consumer_limits"] = limits
    return config


def _stream_source(text: str, defaults: bool, *, is_mirror: bool) -> dict[str, Any]:
    """`--mirror`/`--source`: a JSON object used verbatim, or a name plus natscli's questions."""
    if text.strip().startswith("{") and text.strip().endswith("}"):
        try:
            source = json.loads(text)
        except ValueError as exc:
            kind = "mirror" if is_mirror else "source"
            raise CliError(f"invalid {kind}: {exc}") from None
        if not isinstance(source, dict) or not source.get("name"):
            raise CliError(f"invalid {'mirror' if is_mirror else 'source'}: name is required")
        return source
    if is_mirror and defaults:
        return {"name": text}
    return _ask_source(text, is_mirror)


def _ask_source(name: str, is_mirror: bool) -> dict[str, Any]:
    """The follow-up questions about a mirror or source given by name."""
    source: dict[str, Any] = {"name": name}
    what = "mirror" if is_mirror else f'source "{name}"'
    prefix = "Mirror" if is_mirror else f"{name} Source"
    context = (
        "Could not request mirror details" if is_mirror else "Could not request source details"
    )
    if prompt.prompted(context, prompt.confirm, f"Adjust {what} start"):
        start = prompt.prompted("Invalid sequence", prompt.ask_int, f"{prefix} Start Sequence", 0)
        if start > 0:
            source["opt_start_seq"] = start
        if start == 0 or not is_mirror:
            label = (
                "Mirror Start Time (YYYY:MM:DD HH:MM:SS)"
                if is_mirror
                else f"{prefix} UTC Time Stamp (YYYY:MM:DD HH:MM:SS)"
            )
            stamp = prompt.prompted("could not request start time", prompt.ask, label)
            if stamp:
                source["opt_start_time"] = _utc_stamp(stamp)
    if prompt.prompted(context, prompt.confirm, f"Adjust {what} filter and transform"):
        transforms = []
        while True:
            subject = prompt.prompted(
                "could not request filter",
                prompt.ask,
                f"Filter {'mirror' if is_mirror else 'source'} by subject (hit enter to finish)",
            )
            if not subject:
                break
            dest = prompt.prompted(
                "could not request transform destination",
                prompt.ask,
                "Subject transform destination",
            )
            transforms.append({"src": subject, "dest": dest})
        if transforms:
            source["subject_transforms"] = transforms
    other = "mirror" if is_mirror else f'"{name}"'
    if prompt.prompted(
        context, prompt.confirm, f"Import {other} from a different JetStream domain"
    ):
        label = (
            "Foreign JetStream domain name"
            if is_mirror
            else f"{prefix} foreign JetStream domain name"
        )
        domain = prompt.prompted(context, prompt.ask, label, required=True)
        label = (
            "Delivery prefix" if is_mirror else f"{prefix} foreign JetStream domain delivery prefix"
        )
        deliver = prompt.prompted(context, prompt.ask, label)
        source["external"] = {"api": f"$JS.{domain}.API", "deliver": deliver}
        return source
    if prompt.prompted(context, prompt.confirm, f"Import {other} from a different account"):
        label = (
            "Foreign account API prefix" if is_mirror else f"{prefix} foreign account API prefix"
        )
        api_prefix = prompt.prompted(context, prompt.ask, label, required=True)
        label = (
            "Foreign account delivery prefix"
            if is_mirror
            else f"{prefix} foreign account delivery prefix"
        )
        deliver = prompt.prompted(context, prompt.ask, label, required=True)
        source["external"] = {"api": api_prefix, "deliver": deliver}
    return source


def _utc_stamp(text: str) -> str:
    try:
        moment = dt.datetime.strptime(text, "%Y:%m:%d %H:%M:%S")
    except ValueError as exc:
        raise CliError(f"invalid time format: {exc}") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- stream edit / copy: apply the given flags ------------------------------------------------


def apply_flags(config: dict[str, Any], flags: StreamFlags) -> dict[str, Any]:
    """natscli's copyAndEditStream: the flags that were given, applied to `config`."""
    flags.check_pairs()
    new = json.loads(json.dumps(config))
    _write_ack(new, flags.ack)
    write_given(new, flags, LIMIT_FIELDS)
    placement = dict(new.get("placement") or {})
    if flags.cluster is not None:
        placement["cluster"] = flags.cluster
    if flags.tag is not None:
        placement["tags"] = [t for t in flags.tag if t]
    if not placement.get("cluster") and not placement.get("tags"):
        new.pop("placement", None)
    else:
        new["placement"] = {k: v for k, v in placement.items() if v}
    if flags.sources or flags.mirror:
        raise CliError("cannot edit mirrors, or sources using the CLI, use --config instead")
    write_given(new, flags, OPTION_FIELDS)
    republish, transform = _republish(flags), _subject_transform(flags)
    if flags.no_republish:
        new.pop("republish", None)
    elif republish:
        new["republish"] = republish
    if flags.no_transform:
        new.pop("subject_transform", None)
    elif transform:
        new["subject_transform"] = transform
    write_given(new, flags, FEATURE_FIELDS)
    if flags.no_mirror:
        new.pop("mirror", None)
    return new


# -- validation, saving, editing ----------------------------------------------------------------

# The order of api.StreamConfig's fields: `--validate` and `--output` print configs this way.
STREAM_CONFIG_ORDER = [
    "name",
    "description",
    "subjects",
    "retention",
    "max_consumers",
    "max_msgs_per_subject",
    "max_msgs",
    "max_bytes",
    "max_age",
    "max_msg_size",
    "storage",
    "discard",
    "num_replicas",
    "no_ack",
    "duplicate_window",
    "placement",
    "mirror",
    "sources",
    "compression",
    "subject_transform",
    "republish",
    "sealed",
    "deny_delete",
    "deny_purge",
    "allow_rollup_hdrs",
    "allow_direct",
    "mirror_direct",
    "discard_new_per_subject",
    "first_seq",
    "metadata",
    "allow_msg_ttl",
    "subject_delete_marker_ttl",
    "consumer_limits",
    "allow_atomic",
    "allow_msg_counter",
    "allow_msg_schedules",
    "persist_mode",
    "allow_batched",
]


def validation_errors(config: dict[str, Any]) -> list[str]:
    """What natscli's client-side checks reject before a configuration reaches the server."""
    errors = []
    name = config.get("name", "")
    if not isinstance(name, str) or not name:
        errors.append("name: name is required")
    elif _NAME_FORBIDDEN.search(name):
        errors.append(f"name: Does not match pattern '^[^.*>]+$' ({name})")
    if not config.get("no_ack") and ">" in (config.get("subjects") or []):
        return ["subjects cannot be '>' when acknowledgement is enabled"]
    if config.get("retention") not in (None, "limits", "interest", "workqueue"):
        errors.append("retention: must be one of limits, interest, workqueue")
    if config.get("storage") not in (None, "file", "memory"):
        errors.append("storage: must be one of file, memory")
    if config.get("discard") not in (None, "old", "new"):
        errors.append("discard: must be one of old, new")
    replicas = config.get("num_replicas", 1)
    if isinstance(replicas, int) and not 0 <= replicas <= 5:
        errors.append("num_replicas: Must be less than or equal to 5")
    return errors
