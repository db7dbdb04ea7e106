"""Named connection contexts on disk, in the format natscli (jsm.go's natscontext) uses.

A context made by the Go `nats` tool works here and the reverse (cli.md §13.1, ADR-21):

    <root>/context/<NAME>.json      one context, 2-space indented JSON, mode 0600
    <root>/context.txt              the selected context name (no trailing newline)
    <root>/previous-context.txt     the name selected before it

where <root> is `$XDG_CONFIG_HOME/nats` when that variable is non-empty, else
`~/.config/nats`. Files are written atomically (temp file + rename) with every key present, in
natscli's order; unknown keys in a file are ignored on load. Values are kept as written: `$VAR`
and `~` in the path-like fields are expanded only when a connection uses them
(`NatsContext.path_value`), so a save never rewrites what the user typed.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pynats.cli.ui.errors import CliError
from pynats.cli.ui.output import go_json

DEFAULT_URL = "nats://127.0.0.1:4222"

# Every key natscli writes, in its order; `name` is not stored in the file.
CONTEXT_KEYS: tuple[str, ...] = (
    "description",
    "url",
    "socks_proxy",
    "token",
    "user",
    "password",
    "creds",
    "nkey",
    "cert",
    "key",
    "ca",
    "nsc",
    "jetstream_domain",
    "jetstream_api_prefix",
    "jetstream_event_prefix",
    "inbox_prefix",
    "user_jwt",
    "user_seed",
    "color_scheme",
    "tls_first",
    "windows_cert_store",
    "windows_cert_match_by",
    "windows_cert_match",
    "windows_ca_certs_match",
)
PATH_KEYS = ("creds", "nkey", "cert", "key", "ca")


def _blank_settings() -> dict[str, Any]:
    settings: dict[str, Any] = dict.fromkeys(CONTEXT_KEYS, "")
    settings["tls_first"] = False
    settings["windows_ca_certs_match"] = None
    return settings


@dataclass
class NatsContext:
    """One named set of connection settings; `settings` holds every file key."""

    name: str
    settings: dict[str, Any] = field(default_factory=_blank_settings)
    path: Path | None = None

    def get(self, key: str) -> str:
        """A string setting ('' when unset)."""
        value = self.settings.get(key)
        return value if isinstance(value, str) else ""

    def path_value(self, key: str) -> str:
        """A path-like setting with `$VAR` and a leading `~` expanded, as natscli does on load."""
        value = self.get(key)
        if not value or "://" in value or value.startswith("data:"):
            return value
        return os.path.expanduser(os.path.expandvars(value))

    @property
    def url(self) -> str:
        return self.get("url") or DEFAULT_URL

    @property
    def tls_first(self) -> bool:
        return bool(self.settings.get("tls_first"))

    def update(self, **values: Any) -> None:
        """Overwrite settings with the given values, skipping empty ones (natscli's With*)."""
        for key, value in values.items():
            if key not in self.settings:
                raise KeyError(key)
            if value not in ("", None, False):
                self.settings[key] = value

    def file_data(self) -> dict[str, Any]:
        """The JSON object stored in the context file."""
        return {key: self.settings.get(key, _blank_settings()[key]) for key in CONTEXT_KEYS}

    def json_data(self) -> dict[str, Any]:
        """The object `context info --json` prints: the file data plus the context name."""
        return {"name": self.name, **self.file_data()}


def config_root() -> Path:
    """`$XDG_CONFIG_HOME/nats` when that is set and non-empty, else `~/.config/nats`."""
    parent = os.environ.get("XDG_CONFIG_HOME", "")
    if parent:
        return Path(parent) / "nats"
    return Path.home() / ".config" / "nats"


def context_dir() -> Path:
    return config_root() / "context"


def is_valid_name(name: str) -> bool:
    return bool(name) and ".." not in name and "/" not in name and "\\" not in name


def check_name(name: str) -> None:
    if not is_valid_name(name):
        raise CliError(f'invalid context name "{name}"')


def context_path(name: str) -> Path:
    check_name(name)
    return context_dir() / f"{name}.json"


def known_contexts() -> list[str]:
    """Names of the stored contexts, sorted; empty files and odd names are ignored."""
    try:
        entries = list(context_dir().iterdir())
    except OSError:
        return []
    names = []
    for entry in entries:
        if entry.suffix != ".json" or not entry.is_file():
            continue
        try:
            if entry.stat().st_size == 0:
                continue
        except OSError:
            continue
        if is_valid_name(entry.stem):
            names.append(entry.stem)
    return sorted(names)


def is_known(name: str) -> bool:
    return is_valid_name(name) and context_path(name).is_file()


def load(name: str) -> NatsContext:
    """Load context `name`; CliError `unknown context "x"` when there is no such file."""
    check_name(name)
    path = context_path(name)
    if not path.is_file():
        raise CliError(f'unknown context "{name}"')
    return load_file(path, name)


def load_file(path: Path, name: str | None = None) -> NatsContext:
    """Load a context from any JSON file (the `--context /path/x.json` form)."""
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError) as exc:
        raise CliError(f"could not load context {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise CliError(f"could not load context {path}: not a JSON object")
    context = NatsContext(name=name or path.stem, path=path)
    for key in CONTEXT_KEYS:
        if key in data and data[key] is not None:
            context.settings[key] = data[key]
    if not context.get("url"):
        context.settings["url"] = DEFAULT_URL
    return context


def save(context: NatsContext, name: str | None = None) -> Path:
    """Write the context as `<name>.json` atomically with mode 0600; returns the path."""
    if name:
        context.name = name
    check_name(context.name)
    check_credentials(context)
    directory = context_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = directory / f"{context.name}.json"
    _write_atomically(target, go_json(context.file_data(), indent=2))
    context.path = target
    return target


def check_credentials(context: NatsContext) -> None:
    """natscli refuses to store more than one kind of credential in a context."""
    kinds = [
        bool(context.get("user") or context.get("token")),
        bool(context.get("creds")),
        bool(context.get("nkey")),
        bool(context.get("nsc")),
    ]
    if sum(kinds) > 1:
        raise CliError(
            "too many types of credentials. Choose only one from 'user/token', 'creds', 'nkey', 'nsc'"
        )


def delete(name: str) -> None:
    """Remove a stored context (a missing file is not an error)."""
    path = context_path(name)
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def selected() -> str:
    """The selected context name, '' when none is."""
    try:
        return (config_root() / "context.txt").read_text().strip()
    except OSError:
        return ""


def previous() -> str:
    """The context selected before the current one, '' when unknown."""
    try:
        return (config_root() / "previous-context.txt").read_text().strip()
    except OSError:
        return ""


def select(name: str) -> None:
    """Make `name` the selected context; the old selection becomes the previous one."""
    check_name(name)
    if not is_known(name):
        raise CliError(f'context not found: "{name}"')
    _set_selection(name)


def unselect() -> None:
    """Clear the selection (the old one becomes the previous one)."""
    _set_selection("")


def _set_selection(name: str) -> None:
    root = config_root()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    current = selected()
    if current:
        _write_atomically(root / "previous-context.txt", current)
    if name:
        _write_atomically(root / "context.txt", name)
    else:
        try:
            (root / "context.txt").unlink()
        except FileNotFoundError:
            pass


def _write_atomically(target: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.chmod(temp, 0o600)
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
