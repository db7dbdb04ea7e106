"""Consumer configurations from flags, prompts and JSON files (`consumer add` and `edit`).

As with streams (stream/config.py), `ConsumerFlags` keeps the flags as typed, with sentinels
for "not given", because natscli asks exactly the questions whose flags are missing
(cli.md §8.1), and `consumer edit` changes exactly the fields whose flags were given (§8.6).
The key each flag sets, and how, is the FIELDS table (see ui/jsconfig.py), used by both.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re
import time
from dataclasses import dataclass, fields
from typing import Any

import click

from pynats.cli.stream.api import user_metadata
from pynats.cli.ui import prompt
from pynats.cli.ui.command import apply_options
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.humanize import round_duration
from pynats.cli.ui.jsconfig import (
    ConfigField,
    fields_by_flag,
    is_positive,
    is_set,
    load_config_file,
    metadata_callback,
    split_subjects,
    write_given,
)
from pynats.cli.ui.parse import DURATION, checked_duration_ns, parse_duration_ns
from pynats.gotime import MILLISECOND, MINUTE, NS_PER_S, format_duration, rfc3339

DEFAULT_BACKOFF_MIN_NS = MINUTE
DEFAULT_BACKOFF_MAX_NS = 20 * MINUTE
ACK_POLICIES = {
    "none": "none",
    "all": "all",
    "explicit": "explicit",
    "flow_control": "flow_control",
    "flowcontrol": "flow_control",
    "fc": "flow_control",
}
# The order of api.ConsumerConfig's fields: `--validate` and `--output` print configs this way.
CONSUMER_CONFIG_ORDER = [
    "durable_name",
    "name",
    "description",
    "deliver_policy",
    "opt_start_seq",
    "opt_start_time",
    "ack_policy",
    "ack_wait",
    "max_deliver",
    "backoff",
    "filter_subject",
    "filter_subjects",
    "replay_policy",
    "rate_limit_bps",
    "sample_freq",
    "max_waiting",
    "max_ack_pending",
    "flow_control",
    "headers_only",
    "max_batch",
    "max_expires",
    "max_bytes",
    "deliver_subject",
    "deliver_group",
    "idle_heartbeat",
    "inactive_threshold",
    "num_replicas",
    "mem_storage",
    "metadata",
    "pause_until",
    "priority_policy",
    "priority_groups",
    "priority_timeout",
]


@dataclass
class ConsumerFlags:
    """The configuration flags of `consumer add/edit`; None/empty/-1 meaning "not given"."""

    ack: str = ""
    bps: int = 0
    backoff: str = ""
    backoff_steps: int = 10
    backoff_min: int = DEFAULT_BACKOFF_MIN_NS
    backoff_max: int = DEFAULT_BACKOFF_MAX_NS
    deliver: str = ""
    deliver_group: str | None = None
    description: str = ""
    ephemeral: bool = False
    filter: tuple[str, ...] = ()
    flow_control: bool | None = None
    heartbeat: str = ""
    headers_only: bool | None = None
    max_deliver: int = 0
    max_pending: int = -1
    max_waiting: int = 0
    max_pull_batch: int = 0
    max_pull_expire: int = 0
    max_pull_bytes: int = 0
    pull: bool = False
    replay: str = ""
    sample: int = -1
    target: str = ""
    wait: int | None = None
    inactive_threshold: int = 0
    memory: bool = False
    replicas: int = 0
    metadata: dict[str, str] | None = None
    pause: str = ""
    pinned_groups: tuple[str, ...] = ()
    pinned_ttl: int = 0
    overflow_groups: tuple[str, ...] = ()
    prioritized_groups: tuple[str, ...] = ()

    @classmethod
    def take(cls, options: dict[str, Any]) -> ConsumerFlags:
        names = {f.name for f in fields(cls)}
        outstanding = options.pop("max_outstanding", None)
        picked = {name: options.pop(name) for name in list(options) if name in names}
        if outstanding is not None:
            picked["max_pending"] = outstanding
        for item in fields(cls):
            if item.default == "" and picked.get(item.name) is None:
                picked.pop(item.name, None)
        if picked.get("flow_control") is False:
            picked["flow_control"] = None
        return cls(**picked)

    def backoff_policy(self) -> list[int] | None:
        """The backoff periods of `--backoff linear` (jsm.go's LinearBackoffPeriods)."""
        if self.backoff == "none":
            return None
        steps, low, high = self.backoff_steps, self.backoff_min, self.backoff_max
        if not self.backoff or steps <= 0 or low == 0 or high == 0:
            raise CliError(
                "could not determine backoff policy: required policy properties not supplied"
            )
        low, high = min(low, high), max(low, high)
        step = (high - low) // steps
        if high != low and step == 0:
            raise CliError(
                f"could not determine backoff policy: step range between {format_duration(low)} "
                f"and {format_duration(high)} is too small for {steps} steps"
            )
        return [low + round_duration(i * step, MILLISECOND) for i in range(steps)]


def consumer_config_options(*, edit: bool) -> Any:
    """The click options of natscli's consumer addCreateFlags (edit=True: `edit`'s subset)."""
    options: list[Any] = []
    if not edit:
        options += [
            click.option("--ack", default="", help="Acknowledgment policy (none, all, explicit)"),
            click.option(
                "--bps",
                type=click.IntRange(min=0),
                default=0,
                help="Restrict message delivery to a certain bit per second",
            ),
        ]
    options += [
        click.option(
            "--backoff",
            type=click.Choice(["linear", "none"]),
            default=None,
            metavar="MODE",
            help="Creates a consumer backoff policy using a specific pre-written algorithm (none, linear)",
        ),
        click.option(
            "--backoff-steps",
            type=click.IntRange(min=0),
            default=10,
            metavar="STEPS",
            help="Number of steps to use when creating the backoff policy",
        ),
        click.option(
            "--backoff-min",
            type=DURATION,
            default="1m",
            metavar="MIN",
            help="The shortest backoff period that will be generated",
        ),
        click.option(
            "--backoff-max",
            type=DURATION,
            default="20m",
            metavar="MAX",
            help="The longest backoff period that will be generated",
        ),
    ]
    if not edit:
        options += [
            click.option(
                "--deliver",
                default="",
                metavar="POLICY",
                help="Start policy (all, new, last, subject, 1h, msg sequence)",
            ),
            click.option(
                "--deliver-group",
                default=None,
                metavar="GROUP",
                help="Delivers push messages only to subscriptions matching this group",
            ),
        ]
    options.append(
        click.option(
            "--description", default="", help="Sets a contextual description for the consumer"
        )
    )
    if not edit:
        options.append(
            click.option("--ephemeral", is_flag=True, help="Create an ephemeral Consumer")
        )
    options.append(
        click.option(
            "--filter", multiple=True, metavar="SUBJECTS", help="Filter Stream by subjects"
        )
    )
    if not edit:
        options += [
            click.option("--flow-control", is_flag=True, help="Enable Push consumer flow control"),
            click.option(
                "--heartbeat", default="", help="Enable idle Push consumer heartbeats (-1 disable)"
            ),
        ]
    options += [
        click.option(
            "--headers-only/--no-headers-only",
            default=None,
            help="Deliver only headers and no bodies",
        ),
        click.option(
            "--max-deliver",
            type=int,
            default=0,
            metavar="TRIES",
            help="Maximum amount of times a message will be delivered",
        ),
        click.option(
            "--max-outstanding",
            type=int,
            default=None,
            hidden=True,
            help="Maximum pending Acks before consumers stop delivering messages",
        ),
        click.option(
            "--max-pending",
            type=int,
            default=-1,
            help="Maximum pending Acks before consumers are paused",
        ),
    ]
    if not edit:
        options.append(
            click.option(
                "--max-waiting",
                type=int,
                default=0,
                metavar="PULLS",
                help="Maximum number of outstanding pulls allowed",
            )
        )
    options += [
        click.option(
            "--max-pull-batch",
            type=int,
            default=0,
            metavar="BATCH_SIZE",
            help="Maximum size batch size for a pull request to accept",
        ),
        click.option(
            "--max-pull-expire",
            type=DURATION,
            default=0,
            metavar="EXPIRES",
            help="Maximum expire duration for a pull request to accept",
        ),
        click.option(
            "--max-pull-bytes",
            type=int,
            default=0,
            metavar="BYTES",
            help="Maximum max bytes for a pull request to accept",
        ),
    ]
    if not edit:
        options += [
            click.option("--pull", is_flag=True, help="Deliver messages in 'pull' mode"),
            click.option(
                "--replay",
                type=click.Choice(["instant", "original"]),
                default=None,
                metavar="POLICY",
                help="Replay Policy (instant, original)",
            ),
        ]
    options += [
        click.option(
            "--sample",
            type=int,
            default=-1,
            help="Percentage of requests to sample for monitoring purposes",
        ),
        click.option(
            "--target", default="", metavar="SUBJECT", help="Push based delivery target subject"
        ),
        click.option("--wait", type=DURATION, default=None, help="Acknowledgment waiting time"),
        click.option(
            "--inactive-threshold",
            type=DURATION,
            default=0,
            metavar="THRESHOLD",
            help="How long to allow an ephemeral consumer to be idle before removing it",
        ),
    ]
    if not edit:
        options.append(
            click.option(
                "--memory",
                is_flag=True,
                help="Force the consumer state to be stored in memory rather than inherit from the stream",
            )
        )
    options += [
        click.option(
            "--replicas",
            type=int,
            default=0,
            help="Sets a custom replica count rather than inherit from the stream",
        ),
        click.option(
            "--metadata",
            multiple=True,
            metavar="META",
            callback=metadata_callback,
            help="Adds metadata to the consumer",
        ),
    ]
    if not edit:
        options += [
            click.option(
                "--pause",
                default="",
                help="Pause the consumer for a duration after start or until a specific timestamp (eg 2025-01-02 15:04:05)",
            ),
            click.option(
                "--pinned-groups",
                multiple=True,
                help="Create a Pinned Client consumer based on these groups",
            ),
            click.option(
                "--pinned-ttl",
                type=DURATION,
                default=0,
                help="The time to allow for a client to pull before losing the pinned status",
            ),
            click.option(
                "--overflow-groups",
                multiple=True,
                help="Create a Overflow consumer based on these groups",
            ),
            click.option(
                "--prioritized-groups",
                multiple=True,
                help="Create a Prioritized consumer based on these groups",
            ),
        ]

    return apply_options(*options)


# -- --config FILE ----------------------------------------------------------------------------


def config_from_file(path: str, name: str, target: str) -> dict[str, Any]:
    config = load_config_file(path, "consumer")
    if config.get("durable_name") and name and config["durable_name"] != name:
        config["durable_name"] = name
    if config.get("deliver_subject") and target:
        config["deliver_subject"] = target
    if "metadata" in config:
        config["metadata"] = user_metadata(config["metadata"])
    return config


# -- consumer add: flags, defaults and questions -----------------------------------------------


def start_policy(config: dict[str, Any], policy: str) -> None:
    """`--deliver`: all, new/next, last, subject/last_per_subject, a sequence, or a duration ago."""
    if not policy:
        return
    if policy == "all":
        config["deliver_policy"] = "all"
    elif policy == "last":
        config["deliver_policy"] = "last"
    elif policy in ("new", "next"):
        config["deliver_policy"] = "new"
    elif policy in ("subject", "last_per_subject"):
        config["deliver_policy"] = "last_per_subject"
    elif policy.isdigit():
        config["deliver_policy"] = "by_start_sequence"
        config["opt_start_seq"] = int(policy)
    else:
        delta = checked_duration_ns(policy, "could not parse starting delta")
        config["deliver_policy"] = "by_start_time"
        config["opt_start_time"] = rfc3339(time.time_ns() - delta)


def ack_policy(text: str) -> str:
    policy = ACK_POLICIES.get(text.lower())
    if policy is None:
        raise CliError(f"invalid ack policy '{text}'")
    return policy


def pause_until(text: str) -> str:
    """`--pause`: a `YYYY-MM-DD HH:MM:SS` local time, or a duration from now, as RFC 3339."""
    try:
        moment = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        try:
            delta = parse_duration_ns(text)
        except ValueError:
            raise CliError(
                "could not parse the pause time as either timestamp or duration"
            ) from None
        return rfc3339(time.time_ns() + delta)
    return rfc3339(calendar.timegm(moment.timetuple()) * NS_PER_S)


# Every flag that sets one configuration key. `consumer edit` writes those it has that were
# given; `consumer add` writes them as natscli does once the questions are answered.
FIELDS = (
    ConfigField("description", "description"),
    ConfigField("ack", "ack_policy", ack_policy),
    ConfigField("wait", "ack_wait", is_given=is_set),
    ConfigField("replay", "replay_policy"),
    ConfigField("sample", "sample_freq", str),
    ConfigField("max_deliver", "max_deliver"),
    ConfigField("max_pending", "max_ack_pending", is_given=lambda count: count != -1),
    ConfigField("target", "deliver_subject"),
    ConfigField("deliver_group", "deliver_group"),
    ConfigField(
        "heartbeat",
        "idle_heartbeat",
        lambda text: checked_duration_ns(text, "invalid heartbeat duration"),
    ),
    ConfigField("flow_control", "flow_control"),
    ConfigField("headers_only", "headers_only", is_given=is_set),
    ConfigField("inactive_threshold", "inactive_threshold"),
    ConfigField("max_pull_batch", "max_batch", is_given=is_positive),
    ConfigField("max_pull_expire", "max_expires", is_given=is_positive),
    ConfigField("max_pull_bytes", "max_bytes", is_given=is_positive),
    ConfigField("max_waiting", "max_waiting"),
    ConfigField("bps", "rate_limit_bps"),
    ConfigField("replicas", "num_replicas", is_given=is_positive),
    ConfigField("memory", "mem_storage"),
    ConfigField("metadata", "metadata", dict, is_given=is_set),
    ConfigField("pause", "pause_until", pause_until),
)
FIELD = fields_by_flag(FIELDS)


def _fields(*flags: str) -> tuple[ConfigField, ...]:
    return tuple(FIELD[flag] for flag in flags)


def _write_filters(config: dict[str, Any], filters: list[str]) -> None:
    """One subject goes in `filter_subject`, several in `filter_subjects`; never both."""
    if len(filters) == 1:
        config["filter_subject"] = filters[0]
        config.pop("filter_subjects", None)
    elif len(filters) > 1:
        config["filter_subjects"] = filters
        config.pop("filter_subject", None)


def prepare_new_config(flags: ConsumerFlags, name: str, *, defaults: bool) -> dict[str, Any]:
    """`consumer add` without --config: natscli's questions for every missing flag, in order."""
    if not name and not flags.ephemeral:
        name = prompt.prompted(
            "could not request durable name", prompt.ask, "Consumer name", required=True
        )
    config: dict[str, Any] = {}
    if flags.ephemeral:
        if name:
            config["name"] = name
    else:
        config["durable_name"] = name
    FIELD["description"].write_given(config, flags)
    if re.search(r"[.*>]", config.get("durable_name", "")):
        raise CliError("durable name can not contain '.', '*', '>'")

    target = flags.target
    if not flags.pull and not target:
        target = prompt.prompted(
            "could not request delivery target",
            prompt.ask,
            "Delivery target (empty for Pull Consumers)",
        )
    is_push = bool(target)

    group = flags.deliver_group
    start = flags.deliver
    policy = flags.ack
    replay = flags.replay
    max_deliver = flags.max_deliver
    max_pending = flags.max_pending
    heartbeat = flags.heartbeat
    headers_only = flags.headers_only
    flow_control = flags.flow_control
    if defaults:
        group = group if group is not None else ""
        start = start or "all"
        policy = policy or ("explicit" if flags.pull or not target else "none")
        max_deliver = max_deliver or -1
        max_pending = 0 if max_pending == -1 else max_pending
        replay = replay or "instant"
        heartbeat = heartbeat or "-1"
        headers_only = bool(headers_only)
        if is_push:
            flow_control = bool(flow_control)

    if is_push and group is None:
        group = prompt.prompted(
            "could not request delivery group", prompt.ask, "Delivery Queue Group"
        )
    if not start:
        start = prompt.prompted(
            "could not request start policy",
            prompt.ask,
            "Start policy (all, new, last, subject, 1h, msg sequence)",
            "all",
            required=True,
        )
    config["deliver_policy"] = "all"
    start_policy(config, start)
    if not policy:
        policy = prompt.prompted(
            "could not ask acknowledgement policy",
            prompt.select,
            "Acknowledgment policy",
            ["explicit", "all", "none"],
            "none" if target else "explicit",
        )
    if not replay:
        replay = prompt.prompted(
            "could not ask replay policy",
            prompt.select,
            "Replay policy",
            ["instant", "original"],
            "instant",
        )
    FIELD["ack"].write(config, policy)
    if flags.wait is not None and flags.wait > 0:
        FIELD["wait"].write(config, flags.wait)
    if config["ack_policy"] == "none":
        FIELD["max_deliver"].write(config, -1)

    filters = list(flags.filter)
    if not filters and not defaults:
        answer = prompt.prompted(
            "could not ask for filtering subject",
            prompt.ask,
            "Filter Stream by subjects (blank for all)",
        )
        filters = split_subjects([answer])
    _write_filters(config, filters)
    if not filters and config["deliver_policy"] == "last_per_subject":
        config["filter_subject"] = ">"
    FIELD["replay"].write(config, replay)

    if flags.sample > 0:
        if flags.sample > 100:
            raise CliError("sample percent is not between 0 and 100")
        FIELD["sample"].write(config, flags.sample)

    acked = config["ack_policy"] != "none"
    if max_deliver == 0 and acked:
        max_deliver = prompt.prompted(
            "could not ask for maximum allowed deliveries",
            prompt.ask_int,
            "Maximum Allowed Deliveries",
            -1,
        )
    if max_pending == -1 and acked:
        max_pending = prompt.prompted(
            "could not ask for maximum outstanding acknowledgements",
            prompt.ask_int,
            "Maximum Acknowledgments Pending",
            0,
        )

    if is_push:
        FIELD["target"].write(config, target)
        if group:
            FIELD["deliver_group"].write(config, group)
        if heartbeat == "-1":
            pass
        elif heartbeat:
            FIELD["heartbeat"].write(config, heartbeat)
        else:
            answer = prompt.prompted(
                "could not ask for idle heartbeat", prompt.ask, "Idle Heartbeat", "0s"
            )
            FIELD["heartbeat"].write(config, answer)
        if not config.get("idle_heartbeat"):
            config.pop("idle_heartbeat", None)
        if flow_control is None:
            flow_control = prompt.prompted(
                "could not ask flow control",
                prompt.confirm,
                "Enable Flow Control, ie --flow-control",
            )
        if flow_control:
            FIELD["flow_control"].write(config, True)

    if headers_only is None:
        headers_only = prompt.prompted(
            "could not ask headers only", prompt.confirm, "Deliver headers only without bodies"
        )
    if headers_only:
        FIELD["headers_only"].write(config, True)

    backoff_flags = flags
    if acked and not defaults and not flags.backoff:
        backoff_flags = ask_backoff(flags)
    if backoff_flags.backoff:
        periods = backoff_flags.backoff_policy()
        if periods:
            config["backoff"] = periods
            if max_deliver == -1:
                max_deliver = len(periods) + 1

    if max_pending == -1:
        max_pending = 0
    FIELD["max_pending"].write(config, max_pending)
    write_given(
        config,
        flags,
        _fields("inactive_threshold", "max_pull_batch", "max_pull_expire", "max_pull_bytes"),
    )
    if not is_push:
        FIELD["max_waiting"].write_given(config, flags)
    if max_deliver != 0 and acked:
        FIELD["max_deliver"].write(config, max_deliver)
    if flags.bps > 0 and not is_push:
        raise CliError("rate limits are only possible on Push consumers")
    if not is_push and flags.heartbeat not in ("", "-1"):
        raise CliError("pull subscribers does not support idle heartbeats")
    write_given(config, flags, _fields("bps"))
    if flags.replicas:
        FIELD["replicas"].write(config, flags.replicas)
    write_given(config, flags, _fields("memory", "pause"))
    if flags.metadata:
        FIELD["metadata"].write(config, user_metadata(flags.metadata))
    _priority_groups(config, flags)
    return {key: config[key] for key in CONSUMER_CONFIG_ORDER if key in config}


def _priority_groups(config: dict[str, Any], flags: ConsumerFlags) -> None:
    if flags.pinned_groups and flags.overflow_groups:
        raise CliError("setting both overflow and pinned groups are not supported")
    if flags.pinned_groups:
        config["priority_policy"] = "pinned_client"
        config["priority_groups"] = list(flags.pinned_groups)
        if flags.pinned_ttl:
            config["priority_timeout"] = flags.pinned_ttl
    elif flags.overflow_groups:
        config["priority_policy"] = "overflow"
        config["priority_groups"] = list(flags.overflow_groups)
    elif flags.prioritized_groups:
        config["priority_policy"] = "prioritized"
        config["priority_groups"] = list(flags.prioritized_groups)


def ask_backoff(flags: ConsumerFlags) -> ConsumerFlags:
    """natscli's askBackoffPolicy: optional linear retry periods between a min and a max."""
    if not prompt.confirm("Add a Retry Backoff Policy", False):
        return flags
    mode = prompt.select("Backoff policy", ["linear", "none"], "none")
    if mode == "none":
        return flags
    low = checked_duration_ns(prompt.ask("Minimum retry time", "1m"), "invalid duration")
    high = checked_duration_ns(prompt.ask("Maximum retry time", "10m"), "invalid duration")
    steps = prompt.ask_int("Number of steps to generate in the policy", 20)
    if steps < 1:
        raise CliError("backoff steps must be > 0")
    chosen = ConsumerFlags(**{f.name: getattr(flags, f.name) for f in fields(flags)})
    chosen.backoff, chosen.backoff_min, chosen.backoff_max, chosen.backoff_steps = (
        mode,
        low,
        high,
        steps,
    )
    return chosen


# -- consumer edit: apply the given flags ---------------------------------------------------------


def apply_flags(config: dict[str, Any], flags: ConsumerFlags) -> dict[str, Any]:
    """natscli's copyAndEditConsumer: the flags that were given, applied to `config`."""
    new = json.loads(json.dumps(config))
    write_given(
        new,
        flags,
        _fields("description", "inactive_threshold", "max_deliver", "max_pending", "wait"),
    )
    if flags.sample != -1:
        if not 0 <= flags.sample <= 100:
            raise CliError("sample percent is not between 0 and 100")
        if flags.sample > 0:
            FIELD["sample"].write(new, flags.sample)
        else:
            new.pop(FIELD["sample"].key, None)
    write_given(new, flags, _fields("max_pull_batch", "max_pull_expire", "max_pull_bytes"))
    if flags.backoff:
        periods = flags.backoff_policy()
        if periods:
            new["backoff"] = periods
        else:
            new.pop("backoff", None)
    write_given(new, flags, _fields("target", "headers_only"))
    _write_filters(new, list(flags.filter))
    write_given(new, flags, _fields("replicas", "metadata"))
    return new


def validation_errors(config: dict[str, Any]) -> list[str]:
    """The client-side checks natscli's schema validation makes before anything is sent."""
    errors = []
    if config.get("ack_policy") not in ("none", "all", "explicit", "flow_control"):
        errors.append("ack_policy: must be one of none, all, explicit")
    if config.get("replay_policy", "instant") not in ("instant", "original"):
        errors.append("replay_policy: must be one of instant, original")
    if config.get("deliver_policy", "all") not in (
        "all",
        "last",
        "new",
        "by_start_sequence",
        "by_start_time",
        "last_per_subject",
    ):
        errors.append("deliver_policy: invalid deliver policy")
    return errors
