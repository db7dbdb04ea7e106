"""`nats errors` (aliases `err`, `error`): the JetStream API error codes, documented.

The catalogue is the server's own (pynats/jetstream/data/jetstream-errors.json, nats-server's
errors.json), or the file named by --errors, as natscli reads jsm.go's copy of it.

    nats errors ls [MATCH] [SORT]   the `NATS Errors` table, filtered by a regular expression
    nats errors lookup CODE         one code: description, HTTP code, Go constant, help
    nats errors validate [FILE]     the checks nats-server's developers run on errors.json
"""

from __future__ import annotations

import json
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import click

from pynats.cli.ui.command import NatsGroup, apply_options
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.output import is_tty, out
from pynats.cli.ui.table import Table

SORT_KEYS = ("code", "http", "description", "descr", "d")
CATALOGUE_PACKAGE = "pynats.jetstream"
CATALOGUE_PATH = "data/jetstream-errors.json"


def _errors_file_option() -> Any:
    return click.option(
        "--errors",
        "errors_file",
        default=None,
        metavar="FILE",
        type=click.Path(exists=True, dir_okay=False),
        help="The errors.json file to use as input",
    )


def register(root: NatsGroup) -> None:
    @root.group("errors", aliases=["err", "error"], help="Error code documentation")
    def errors() -> None:
        """Error code documentation."""

    @errors.command("ls", aliases=["list"], help="List all known error codes")
    @click.argument(
        "match",
        required=False,
        default="",
        help="Regular expression match to limit the displayed results",
    )
    @click.argument(
        "sort",
        required=False,
        default="code",
        type=click.Choice(SORT_KEYS),
        help="Sorts by a specific field (code, http, description, d, desc)",
    )
    @apply_options(
        click.option("-R", "--reverse", is_flag=True, help="Reverse sort"),
        _errors_file_option(),
    )
    def list_errors(match: str, sort: str, reverse: bool, errors_file: str | None) -> None:
        pattern = _compile(match.lower() if match else ".")
        matched = [e for e in load_errors(errors_file) if is_match(e, pattern)]
        if not matched:
            raise CliError(f"no errors found matching regular expression {pattern.pattern}")
        out(render_list(sort_errors(matched, sort, reverse)), end="")

    @errors.command(
        "lookup",
        aliases=["find", "get", "l", "view", "show"],
        help="Looks up an error by it's code",
    )
    @click.argument("code", type=click.IntRange(0, 65535), help="The code to retrieve")
    @_errors_file_option()
    def lookup(code: int, errors_file: str | None) -> None:
        for entry in load_errors(errors_file):
            if entry.get("error_code") == code:
                out(render_lookup(entry), end="")
                return
        raise CliError(f"no error matches code {code}")

    @errors.command("validate", help="Validates the validity of the errors definition")
    @click.argument(
        "file",
        required=False,
        default=None,
        type=click.Path(exists=True, dir_okay=False),
        help="The file to validate",
    )
    @_errors_file_option()
    def validate(file: str | None, errors_file: str | None) -> None:
        path = file or errors_file
        if not path:
            raise CliError("errors file is required")
        entries = load_errors(path)
        failed = False
        for entry in entries:
            problems = validation_problems(entry)
            if problems:
                out(f"{entry.get('error_code', 0)} failed: {', '.join(problems)}")
                failed = True
        if failed:
            raise CliError(f"{path} is invalid")
        out(f"Validated {len(entries)} errors")


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise CliError(f"invalid regular expression {pattern}: {exc}") from exc


def load_errors(path: str | None = None) -> list[dict[str, Any]]:
    """The catalogue entries (nats-server's ErrorsData fields), from `path` or the package."""
    try:
        if path:
            text = Path(path).read_text("utf-8")
        else:
            text = resources.files(CATALOGUE_PACKAGE).joinpath(CATALOGUE_PATH).read_text("utf-8")
        entries = json.loads(text)
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise CliError("json: cannot unmarshal errors: not a list of error definitions")
    return entries


def is_match(entry: dict[str, Any], pattern: re.Pattern[str]) -> bool:
    """natscli matches the lower-cased texts and the codes."""
    fields = (
        str(entry.get("description", "")).lower(),
        str(entry.get("code", 0)),
        str(entry.get("error_code", 0)),
        str(entry.get("help", "")).lower(),
        str(entry.get("constant", "")).lower(),
        str(entry.get("comment", "")).lower(),
    )
    return any(pattern.search(text) for text in fields)


def sort_errors(entries: list[dict[str, Any]], key: str, reverse: bool) -> list[dict[str, Any]]:
    field = {"code": "error_code", "http": "code"}.get(key, "description")

    def order(entry: dict[str, Any]) -> Any:
        value = entry.get(field, "" if field == "description" else 0)
        return str(value) if field == "description" else int(value)

    return sorted(entries, key=order, reverse=reverse)


def render_list(entries: list[dict[str, Any]]) -> str:
    table = Table("NATS Errors")
    table.add_headers("NATS Code", "HTTP Error Code", "Description", "Comment", "Go Constant")
    for e in entries:
        table.add_row(
            int(e.get("error_code", 0)),
            int(e.get("code", 0)),
            e.get("description", ""),
            e.get("comment", ""),
            e.get("constant", ""),
        )
    return table.render()


def render_lookup(entry: dict[str, Any]) -> str:
    code = str(entry.get("error_code", 0))
    if is_tty(sys.stdout):
        code = f"\x1b[1m{code}\x1b[0m"
    lines = [f"NATS Error Code: {code}", "", f"        Description: {entry.get('description', '')}"]
    if entry.get("comment"):
        lines.append(f"            Comment: {entry['comment']}")
    lines.append(f"          HTTP Code: {entry.get('code', 0)}")
    lines.append(f"  Go Index Constant: {entry.get('constant', '')}")
    if entry.get("url"):
        lines.append(f"           Help URL: {entry['url']}")
    lines.append("")
    lines.append(entry.get("help") or "No further information available")
    return "\n".join(lines) + "\n"


def validation_problems(entry: dict[str, Any]) -> list[str]:
    """natscli's validateErr, word for word."""
    problems = []
    description = str(entry.get("description", ""))
    constant = str(entry.get("constant", ""))
    if re.fullmatch(r"\{[^}]+\}", description) and not entry.get("comment"):
        problems.append("token only descriptions requires a comment")
    if int(entry.get("error_code", 0)) < 1000:
        problems.append("error codes may not be below 10000")
    if not entry.get("code"):
        problems.append("code is require")
    if not constant:
        problems.append("constant is required")
    if not description:
        problems.append("description is required")
    if description.count("{") != description.count("}"):
        problems.append("unmatched number of { and }")
    if "{" in description and not constant.endswith("F"):
        problems.append(
            "constants for errors with tokens must end in F like JSStreamMsgDeleteFailedF"
        )
    return problems
