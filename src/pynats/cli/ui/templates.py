"""The body/subject/header templates of `nats pub`, `request` and `reply` (cli.md §2, §5).

natscli expands these with Go's text/template. This is the subset its templates use: literal
text, `{{ Func arg ... }}` calls with integer or string arguments, `{{ .Field }}` lookups,
`{{/* comments */}}`, `{{-`/`-}}` whitespace trimming and `|` pipelines (the value on the left
becomes the last argument on the right). Functions and fields:

    Count / Cnt      the message number (pub/request: 1..N; reply: the 0-based reply counter)
    ID               a new NUID per evaluation          UUID       a random UUID
    TimeStamp        local time, RFC3339                Time       local time, Go "Kitchen"
    Unix / UnixNano  seconds / nanoseconds since 1970   Random a b random [a-zA-Z0-9]{a..b}
    Request          the request body (reply only; the function exists only for a non-empty
                     request, the field always)

An unknown name or a syntax error raises TemplateError; callers fall back to the raw text as
natscli does (`expand_or_raw`).
"""

from __future__ import annotations

import datetime as dt
import random
import re
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pynats.cli.ui.output import log

_ALPHANUMERIC = string.ascii_letters + string.digits
_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<raw>`[^`]*`)|(?P<field>\.[A-Za-z_]\w*)'
    r"|(?P<number>-?\d+)|(?P<name>[A-Za-z_]\w*)|(?P<pipe>\|))"
)


class TemplateError(Exception):
    """A template that natscli's Go templates would have rejected."""


@dataclass
class TemplateValues:
    """What a template can refer to for one message."""

    count: int
    request: str | None = None  # None: not a reply, the Request function is undefined


def expand(template: str, values: TemplateValues, name: str = "body") -> str:
    """Expand `template`; TemplateError if it does not parse or names something unknown."""
    if "{{" not in template:
        return template
    parts: list[str] = []
    position = 0
    while True:
        start = template.find("{{", position)
        if start < 0:
            parts.append(template[position:])
            break
        end = template.find("}}", start + 2)
        if end < 0:
            raise TemplateError(f"template: {name}:{_line(template, start)}: unclosed action")
        text = template[position:start]
        action = template[start + 2 : end]
        if action.startswith("-") and action[1:2] in (" ", "\t", "\n", "\r"):
            text = text.rstrip()
            action = action[1:]
        trim_after = action.endswith("-") and action[-2:-1] in (" ", "\t", "\n", "\r")
        if trim_after:
            action = action[:-1]
        parts.append(text)
        parts.append(_evaluate(action.strip(), values, name, _line(template, start)))
        position = end + 2
        if trim_after:
            while position < len(template) and template[position] in " \t\r\n":
                position += 1
    return "".join(parts)


def expand_or_raw(template: str, values: TemplateValues, what: str = "body") -> str:
    """Expand, or log `Could not parse <what> template: <err>` and return the raw text."""
    try:
        return expand(template, values, what)
    except TemplateError as exc:
        log(f"Could not parse {what} template: {exc}")
        return template


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _evaluate(action: str, values: TemplateValues, name: str, line: int) -> str:
    if action.startswith("/*") and action.endswith("*/"):
        return ""
    if not action:
        raise TemplateError(f"template: {name}:{line}: missing value for command")
    result: Any = None
    for index, command in enumerate(_split_pipeline(action, name, line)):
        args = command[1:]
        if index > 0:
            args = [*args, result]
        result = _call(command[0], args, values, name, line)
    return _go_print(result)


def _split_pipeline(action: str, name: str, line: int) -> list[list[Any]]:
    commands: list[list[Any]] = [[]]
    position = 0
    while position < len(action):
        match = _TOKEN.match(action, position)
        if match is None or match.end() == position:
            if action[position:].strip() == "":
                break
            raise TemplateError(
                f"template: {name}:{line}: unexpected {action[position:].strip()!r} in command"
            )
        position = match.end()
        kind = match.lastgroup
        token = match.group(kind) if kind else ""
        if kind == "pipe":
            commands.append([])
        elif kind == "string":
            commands[-1].append(_Literal(bytes(token[1:-1], "utf-8").decode("unicode_escape")))
        elif kind == "raw":
            commands[-1].append(_Literal(token[1:-1]))
        elif kind == "number":
            commands[-1].append(_Literal(int(token)))
        elif kind == "field":
            commands[-1].append(_Field(token[1:]))
        else:
            commands[-1].append(_Name(token))
    if any(not c for c in commands):
        raise TemplateError(f"template: {name}:{line}: missing command in pipeline")
    return commands


@dataclass(frozen=True)
class _Literal:
    value: Any


@dataclass(frozen=True)
class _Field:
    name: str


@dataclass(frozen=True)
class _Name:
    name: str


def _call(head: Any, args: list[Any], values: TemplateValues, name: str, line: int) -> Any:
    resolved = [_argument(a, values, name, line) for a in args]
    if isinstance(head, _Literal):
        if resolved:
            raise TemplateError(
                f"template: {name}:{line}: can't give argument to non-function {head.value!r}"
            )
        return head.value
    if isinstance(head, _Field):
        if resolved:
            raise TemplateError(
                f"template: {name}:{line}: {head.name} has arguments but cannot be invoked as function"
            )
        return _field(head.name, values, name, line)
    functions = _functions(values)
    function = functions.get(head.name)
    if function is None:
        raise TemplateError(f'template: {name}:{line}: function "{head.name}" not defined')
    try:
        return function(*resolved)
    except TypeError as exc:
        raise TemplateError(
            f"template: {name}:{line}: wrong number of args for {head.name}"
        ) from exc


def _argument(arg: Any, values: TemplateValues, name: str, line: int) -> Any:
    if isinstance(arg, _Literal):
        return arg.value
    if isinstance(arg, _Field):
        return _field(arg.name, values, name, line)
    if isinstance(arg, _Name):
        return _call(arg, [], values, name, line)
    return arg


def _field(field: str, values: TemplateValues, name: str, line: int) -> Any:
    fields = {**_values(values), "Request": lambda: values.request or ""}
    if field not in fields:
        raise TemplateError(f"template: {name}:{line}: can't evaluate field {field}")
    return fields[field]()


def _functions(values: TemplateValues) -> dict[str, Callable[..., Any]]:
    functions: dict[str, Callable[..., Any]] = {**_values(values), "Random": random_string}
    if values.request:
        functions["Request"] = lambda: values.request
    return functions


def _values(values: TemplateValues) -> dict[str, Callable[[], Any]]:
    """The names usable both as `{{ Name }}` and as `{{ .Name }}`."""
    return {
        "Count": lambda: values.count,
        "Cnt": lambda: values.count,
        "ID": _nuid,
        "UUID": lambda: str(uuid.uuid4()),
        "TimeStamp": _local_rfc3339,
        "Time": _kitchen_time,
        "Unix": lambda: int(time.time()),
        "UnixNano": time.time_ns,
    }


def random_string(minimum: int, maximum: int) -> str:
    """A random `[a-zA-Z0-9]` string whose length is uniform in [minimum, maximum]."""
    low, high = sorted((int(minimum), int(maximum)))
    return "".join(random.choices(_ALPHANUMERIC, k=random.randint(low, high)))


def _nuid() -> str:
    from nats.nuid import NUID

    return NUID().next().decode()


def _local_rfc3339() -> str:
    """Go's `time.Now().Format(time.RFC3339)`: local time, `2025-03-02T10:14:07+01:00` or `Z`."""
    moment = dt.datetime.now().astimezone()
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    offset = moment.utcoffset() or dt.timedelta(0)
    if offset == dt.timedelta(0):
        return text + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    hours, mins = divmod(abs(minutes), 60)
    return f"{text}{sign}{hours:02d}:{mins:02d}"


def _kitchen_time() -> str:
    """Go's time.Kitchen layout, `3:04PM`."""
    now = dt.datetime.now()
    return f"{now.hour % 12 or 12}:{now.minute:02d}{'AM' if now.hour < 12 else 'PM'}"


def _go_print(value: Any) -> str:
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
