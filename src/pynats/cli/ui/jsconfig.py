"""JetStream configurations as `stream` and `consumer` build, read, edit and save them.

The documents are the JSON dictionaries the API takes. They come from flags, from `--config
FILE` (`load_config_file`) or from the user's editor (`edit_in_editor`), and go to the server,
or to the screen and a file with `--validate` / `--output` (`write_validated`).

Where the flags land: each noun describes its flags once, as a table of `ConfigField`s: the
flag (a field of its flags dataclass), the configuration key it sets, how the value is turned
into the key's value, and how a typed value is told from the flag's "not given" default. Both
verbs use the table:

* `edit` writes the fields whose flags were given over the current configuration
  (`write_given`), in the table's order, which is natscli's;
* `add` writes the same way the fields it takes as given, and with `ConfigField.write` the
  ones it resolved itself, by asking natscli's questions or taking natscli's defaults
  (`write_value` when it already read the value into the configuration's terms).

What stays outside the tables is what is more than one flag to one key: placement, subject
transforms and republishing, mirrors and sources, filters, backoff and priority groups.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import click

from pynats.cli.ui.errors import CliError
from pynats.cli.ui.output import go_json, out
from pynats.cli.ui.parse import parse_key_value


def unchanged(value: Any) -> Any:
    return value


def is_set(value: Any) -> bool:
    """A tri-state flag (`--x/--no-x`, or a value flag defaulting to None) was given."""
    return value is not None


def is_positive(value: int) -> bool:
    return value > 0


@dataclass(frozen=True)
class ConfigField:
    """One flag and the configuration key it sets."""

    flag: str
    key: str
    to_config: Callable[[Any], Any] = unchanged
    is_given: Callable[[Any], bool] = bool

    def write(self, config: dict[str, Any], value: Any) -> None:
        """Set the key from a value of the flag (typed, asked for or defaulted)."""
        config[self.key] = self.to_config(value)

    def write_value(self, config: dict[str, Any], value: Any) -> None:
        """Set the key from a value already in the configuration's terms (read by the verb)."""
        config[self.key] = value

    def write_given(self, config: dict[str, Any], flags: object) -> None:
        """Set the key when the flag was given."""
        value = getattr(flags, self.flag)
        if self.is_given(value):
            self.write(config, value)


def write_given(config: dict[str, Any], flags: object, table: Iterable[ConfigField]) -> None:
    """`ConfigField.write_given` for every field of `table`, in order."""
    for field in table:
        field.write_given(config, flags)


def fields_by_flag(table: Iterable[ConfigField]) -> dict[str, ConfigField]:
    """A table keyed by flag, for the verbs that write a resolved value of one flag."""
    return {field.flag: field for field in table}


# -- flags that are more than a value --------------------------------------------------------


def metadata_callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """`--metadata K=V` (repeatable) as a dict, None when the flag was not given."""
    if not value:
        return None
    metadata = {}
    for item in value:
        try:
            key, val = parse_key_value(item)
        except ValueError as exc:
            raise click.BadParameter(f"expected KEY=VALUE got '{item}'") from exc
        metadata[key] = val
    return metadata


def split_subjects(values: Any) -> list[str]:
    """`--subjects "a b,c"` given one or more times: every subject, in order."""
    subjects: list[str] = []
    for value in values or ():
        subjects.extend(s for s in re.split(r"[\s,]+", value) if s)
    return subjects


# -- documents -------------------------------------------------------------------------------


def load_config_file(path: str, what: str = "stream") -> dict[str, Any]:
    """A configuration from JSON: the config itself, or an `info --json` document holding it
    under `config` (`what` names the kind in the error, as natscli does)."""
    try:
        with open(path) as handle:
            document = json.load(handle)
    except OSError as exc:
        raise CliError(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}") from exc
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    config = (
        document.get("config") if isinstance(document, dict) and "config" in document else document
    )
    if not isinstance(config, dict):
        raise CliError(f"json: cannot unmarshal into a {what} configuration")
    return dict(config)


def edit_in_editor(config: dict[str, Any]) -> dict[str, Any]:
    """`-i`: the configuration as YAML in $EDITOR; what the user saved is the new one."""
    import yaml

    editor = os.environ.get("EDITOR", "")
    if not editor:
        raise CliError("set EDITOR environment variable to your chosen editor")
    handle, path = tempfile.mkstemp(suffix=".yaml")
    try:
        with os.fdopen(handle, "w") as stream:
            yaml.safe_dump(config, stream, sort_keys=False)
        result = subprocess.run([*shlex.split(editor), path], check=False)
        if result.returncode != 0:
            raise CliError(f"{editor} exited with status {result.returncode}")
        with open(path) as stream:
            edited = yaml.safe_load(stream)
    except yaml.YAMLError as exc:
        raise CliError(str(exc)) from exc
    finally:
        os.unlink(path)
    if not isinstance(edited, dict):
        raise CliError("the edited configuration is not a mapping")
    return edited


def ordered(config: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """The configuration with its fields in the API type's order (unknown ones last)."""
    known = {key: config[key] for key in order if key in config}
    return {**known, **{k: v for k, v in config.items() if k not in known}}


def write_validated(
    config: dict[str, Any],
    *,
    validate: bool,
    output_file: str,
    order: list[str],
    checks: Callable[[dict[str, Any]], list[str]],
    valid_text: str,
) -> None:
    """`--validate` prints the checked configuration and `valid_text`; `--output FILE` saves
    it (mode 0600). `checks` are natscli's client-side checks, skipped with NOVALIDATE set."""
    text = go_json(ordered(config, order), indent=2)
    errors = [] if os.environ.get("NOVALIDATE") else checks(config)
    if validate:
        out(text + "\n")
        if errors:
            raise CliError("Validation Failed: " + "\n\t".join(errors))
        out(valid_text)
        return
    if errors:
        raise CliError("Validation Failed: " + "\n\t".join(errors))
    handle = os.open(output_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
