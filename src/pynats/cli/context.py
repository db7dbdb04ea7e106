"""`nats context` (alias `ctx`): manage the named connection contexts (cli.md §13).

Contexts live in natscli's files (see context_store.py), so `nats context ls` here lists the
contexts the Go tool saved and the reverse. The `context` commands do not load the selected
context before running (`loads_context=False`): they must keep working when it is broken.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import click

from pynats.cli.ui import context_store, prompt
from pynats.cli.ui.columns import Columns
from pynats.cli.ui.command import NatsGroup, force_flag, json_flag
from pynats.cli.ui.context_store import NatsContext
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.options import OVERRIDE_ENV_VARS, Settings, flag_value
from pynats.cli.ui.output import log, out, paint, print_json
from pynats.cli.ui.table import Table

YAML_COMMENTS = {
    "description": "Friendly description for this context shown when listing contexts",
    "url": "A comma separated list of NATS Servers to connect to",
    "socks_proxy": "Use a Socks5 proxy like ssh to connect to the NATS server URLS",
    "token": "Configures a token to pass in the connection",
    "user": "Connect using a specific username, requires password to be set",
    "creds": "Connect using a NATS Credentials stored in a file",
    "nkey": "Connect using a NKey derived from a seedfile",
    "cert": "Sets a x509 certificate to use, both cert and key should be set",
    "ca": "Sets an optional x509 trust chain to use",
    "nsc": "Retrieves connection information from 'nsc'",
    "jetstream_domain": "Connects to a specific JetStream domain",
    "jetstream_api_prefix": "Subject used as a prefix when accessing the JetStream API if imported from another account",
    "jetstream_event_prefix": "Subject prefix used to access JetStream events if imported from another account",
    "inbox_prefix": "Use a custom inbox prefix",
    "user_jwt": "Connect using a user JWT (and the seed below)",
    "color_scheme": "Table colors: rounded, double, yellow, blue, cyan, green, magenta or red",
    "tls_first": "Performs TLS Handshake before Server sends a greeting",
}


def register(root: NatsGroup) -> None:
    @root.group(
        "context", aliases=["ctx"], loads_context=False, help="Manage nats configuration contexts"
    )
    def context() -> None:
        """Manage nats configuration contexts."""

    @context.command("add", aliases=["save", "create"], help="Update or create a context")
    @click.argument("name")
    @click.option("--description", default="", help="Set a friendly description for this context")
    @click.option(
        "--select", "select_it", is_flag=True, help="Select the saved context as the default one"
    )
    def add(name: str, description: str, select_it: bool) -> None:
        saved = save_context(name, description, starting_point=_starting_point(name))
        if select_it:
            context_store.select(name)
        show_info(saved)

    @context.command("copy", aliases=["cp"], help="Copies an existing context")
    @click.argument("source")
    @click.argument("name")
    @click.option("--description", default="", help="Set a friendly description for this context")
    @click.option(
        "--select", "select_it", is_flag=True, help="Select the saved context as the default one"
    )
    def copy(source: str, name: str, description: str, select_it: bool) -> None:
        if not context_store.is_known(source):
            raise CliError(f'unknown context "{source}"')
        if context_store.is_known(name):
            raise CliError(f'context "{name}" already exist')
        saved = save_context(name, description, starting_point=context_store.load(source))
        if select_it:
            context_store.select(name)
        show_info(saved)

    @context.command("select", aliases=["switch", "set"], help="Select the default context")
    @click.argument("name", required=False, default="")
    def select(name: str) -> None:
        _mark_prompts_with_active_context()
        known = context_store.known_contexts()
        if not known:
            raise CliError("no context defined")
        if not name:
            name = prompt.select(
                "Select a Context", known, default=context_store.selected() or None
            )
        context_store.select(name)
        show_info(context_store.load(name))

    @context.command("unselect", help="Unselect the current context")
    def unselect() -> None:
        current = context_store.selected()
        if not current:
            out("No context currently selected")
            return
        context_store.unselect()
        out(f'Unselected the "{current}" context')

    @context.command("previous", aliases=["-"], help="Switch to the previous context")
    def previous() -> None:
        name = context_store.previous()
        if name:
            context_store.select(name)
        show_selected_or_named("")

    @context.command("ls", aliases=["list", "l"], help="List known contexts")
    @json_flag("Show the list in JSON format")
    @click.option("--names", is_flag=True, help="List just the names of known contexts")
    def ls(as_json: bool, names: bool) -> None:
        contexts = _loadable_contexts()
        if as_json:
            print_json([c.json_data() for c in contexts])
        elif names:
            for item in contexts:
                out(item.name)
        else:
            out(render_context_list(contexts, context_store.selected()))

    @context.command(
        "info",
        aliases=["show", "view", "v"],
        help="Display information on the current or named context",
    )
    @click.argument("name", required=False, default="")
    @json_flag("Show the context in JSON format")
    @click.option(
        "--connect",
        is_flag=True,
        help="Attempts to connect to NATS using the context while validating",
    )
    def info(name: str, as_json: bool, connect: bool) -> None:
        if as_json:
            print_json(_named_or_selected(name).json_data())
            return
        show_selected_or_named(name, connect=connect)

    @context.command("validate", help="Validate one or all contexts")
    @click.argument("name", required=False, default="")
    @click.option(
        "--connect",
        is_flag=True,
        help="Attempts to connect to NATS using the context while validating",
    )
    def validate(name: str, connect: bool) -> None:
        failures = 0
        for item in [name] if name else context_store.known_contexts():
            try:
                failures += show_info(context_store.load(item), connect=connect)
            except CliError as exc:
                out(f"Could not load {item}: {paint(str(exc), 'red')}\n")
                failures += 1
            out()
        if failures:
            raise CliError("validation failed")

    @context.command("rm", aliases=["remove"], help="Remove a context")
    @click.argument("name")
    @force_flag("Force remove without prompting")
    def rm(name: str, force: bool) -> None:
        _mark_prompts_with_active_context()
        context_store.check_name(name)
        is_selected = context_store.selected() == name
        if is_selected and not force:
            raise CliError(
                "cannot remove the selected context, select another one or use the unselect command"
            )
        if not force and not prompt.ask_confirmation(f'Really delete context "{name}"'):
            return
        if is_selected:
            context_store.unselect()
        context_store.delete(name)

    @context.command("edit", aliases=["vi"], help="Edit a context in your EDITOR")
    @click.argument("name")
    def edit(name: str) -> None:
        edit_context(name)


# -- the work -----------------------------------------------------------------------------------


def _mark_prompts_with_active_context() -> None:
    """Prompts show `[name] ?` like elsewhere, without loading (or repairing) the context."""
    if flag_value("no_context"):
        return
    name = flag_value("context") or context_store.selected()
    if name and context_store.is_known(name):
        prompt.set_prompt_context(name)


def _starting_point(name: str) -> NatsContext | None:
    """`context add` updates NAME if it exists, else starts from --context/NATS_CONTEXT."""
    if context_store.is_known(name):
        return context_store.load(name)
    requested = flag_value("context")
    if requested:
        if requested.endswith(".json") and Path(requested).is_file():
            return context_store.load_file(Path(requested))
        return context_store.load(requested)
    return None


def save_context(name: str, description: str, starting_point: NatsContext | None) -> NatsContext:
    """Store NAME: the starting point overwritten by every non-empty flag (and its env var)."""
    context_store.check_name(name)
    context = starting_point or NatsContext(name=name)
    context.name = name
    user = flag_value("user") or ""
    password = flag_value("password") or ""
    token = flag_value("token") or ""
    if user and not password:
        user, token = "", user  # natscli stores a user without a password as a token
    context.update(
        description=description,
        url=flag_value("server") or "",
        socks_proxy=flag_value("socks_proxy") or "",
        user=user,
        password=password,
        token=token,
        creds=flag_value("creds") or "",
        nkey=flag_value("nkey") or "",
        cert=flag_value("tls_cert") or "",
        key=flag_value("tls_key") or "",
        ca=flag_value("tls_ca") or "",
        jetstream_domain=flag_value("js_domain") or "",
        jetstream_api_prefix=flag_value("js_api_prefix") or "",
        jetstream_event_prefix=flag_value("js_event_prefix") or "",
        inbox_prefix=flag_value("inbox_prefix") or "",
        user_jwt=flag_value("jwt") or "",
        user_seed=flag_value("seed") or "",
        color_scheme=flag_value("colors") or "",
        tls_first=bool(flag_value("tls_first")),
    )
    if not context.get("url"):
        context.settings["url"] = context_store.DEFAULT_URL
    context_store.save(context)
    return context


def _named_or_selected(name: str) -> NatsContext:
    name = name or context_store.selected()
    if not name:
        raise CliError("no default context and no name supplied")
    return context_store.load(name)


def show_selected_or_named(name: str, connect: bool = False) -> None:
    show_info(_named_or_selected(name), connect=connect)


def _loadable_contexts() -> list[NatsContext]:
    contexts = []
    for name in context_store.known_contexts():
        try:
            contexts.append(context_store.load(name))
        except CliError as exc:
            log(f"Could not load context {name}: {exc}")
    return contexts


def render_context_list(contexts: list[NatsContext], selected: str) -> str:
    """The `Known Contexts` table, the selected one marked with `*`."""
    if not contexts:
        return "No known contexts"
    table = Table("Known Contexts", headers=["Name", "Description"])
    for item in contexts:
        table.add_row(item.name + ("*" if item.name == selected else ""), item.get("description"))
    return table.render()


def show_info(context: NatsContext, connect: bool = False) -> int:
    """Print the context's info screen; returns how many checks failed (for validate)."""
    screen, failures = context_info_screen(context, connect)
    out(screen.render(), end="")
    out()
    overrides = [v for v in OVERRIDE_ENV_VARS if os.environ.get(v)]
    if overrides:
        out(
            f"{paint('WARNING', 'bright_red')}: Shell environment overrides in place using {', '.join(overrides)}"
        )
    return failures


def context_info_screen(context: NatsContext, connect: bool = False) -> tuple[Columns, int]:
    """The `NATS Configuration Context "name"` screen and its number of failed checks."""
    failures = 0

    def checked(key: str) -> str:
        nonlocal failures
        described, ok = describe_credential(context.get(key), context.path_value(key))
        failures += 0 if ok else 1
        return described

    screen = Columns(f'NATS Configuration Context "{context.name}"')
    screen.add_row_if_not_empty("Description", context.get("description"))
    screen.add_row_if_not_empty("Server URLs", context.url)
    screen.add_row_if_not_empty("SOCKS5 Proxy", context.get("socks_proxy"))
    screen.add_row_if_not_empty("Username", context.get("user"))
    screen.add_row_if_not_empty("Password", "*" * len(context.get("password")))
    screen.add_row_if_not_empty("Token", context.get("token"))
    for label, key in (("Credentials", "creds"), ("User JWT", "user_jwt"), ("NKey", "nkey")):
        if context.get(key):
            screen.add_row(label, checked(key))
    screen.add_row_if_not_empty("User Seed", "*" * len(context.get("user_seed")))
    for label, key in (("Certificate", "cert"), ("Key", "key"), ("CA", "ca")):
        if context.get(key):
            screen.add_row(label, checked(key))
    screen.add_row_if("TLS First", True, context.tls_first)
    screen.add_row_if_not_empty("NSC Lookup", context.get("nsc"))
    screen.add_row_if_not_empty("JS API Prefix", context.get("jetstream_api_prefix"))
    screen.add_row_if_not_empty("JS Event Prefix", context.get("jetstream_event_prefix"))
    screen.add_row_if_not_empty("JS Domain", context.get("jetstream_domain"))
    screen.add_row_if_not_empty("Inbox Prefix", context.get("inbox_prefix"))
    screen.add_row_if_not_empty("Path", str(context.path) if context.path else "")
    screen.add_row_if_not_empty("Color Scheme", context.get("color_scheme"))
    if connect:
        problem = try_connecting(context)
        failures += 1 if problem else 0
        screen.add_row("Connection", paint(problem, "red") if problem else paint("OK", "green"))
    return screen, failures


def describe_credential(raw: str, expanded: str) -> tuple[str, bool]:
    """How the info screen shows a credential reference, and whether it checks out."""
    if raw.startswith("op://"):
        return f"{raw} (1Password)", True
    if raw.startswith("nsc://"):
        return f"{raw} (nsc)", True
    if raw.startswith("env://"):
        return f"{raw} (runtime environment)", True
    if raw.startswith("data:"):
        return "embedded data", True
    if raw.startswith("eyJ") and "." in raw:  # a literal JWT, not a path
        return raw, True
    path = expanded[len("file://") :] if expanded.startswith("file://") else expanded
    ok = os.path.isfile(path) and os.access(path, os.R_OK)
    return f"{raw} ({paint('OK', 'green') if ok else paint('ERROR', 'red')})", ok


def try_connecting(context: NatsContext) -> str:
    """'' when a connection with the context's settings succeeds, else the error text."""
    from pynats.cli.ui.connect import connect, run_async

    settings = Settings(
        servers=context.url,
        user=context.get("user"),
        password=context.get("password"),
        token=context.get("token"),
        creds=context.path_value("creds"),
        nkey=context.path_value("nkey"),
        jwt=context.get("user_jwt"),
        seed=context.get("user_seed"),
        tls_cert=context.path_value("cert"),
        tls_key=context.path_value("key"),
        tls_ca=context.path_value("ca"),
        tls_first=context.tls_first,
        inbox_prefix=context.get("inbox_prefix"),
        context=context,
    )

    async def attempt() -> None:
        client = await connect(settings)
        await client.close()

    try:
        run_async(attempt())
    except CliError as exc:
        return str(exc)
    return ""


# -- editing ------------------------------------------------------------------------------------


def edit_context(name: str) -> None:
    """Open the context as commented YAML in $EDITOR, then store what the user saved."""
    editor = os.environ.get("EDITOR", "")
    if not editor:
        raise CliError("set EDITOR environment variable to your chosen editor")
    if not context_store.is_known(name):
        raise CliError(f'unknown context "{name}"')
    original = context_store.load(name)
    handle, temp = tempfile.mkstemp(suffix=".yaml")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(context_as_yaml(original))
        result = subprocess.run([*shlex.split(editor), temp], check=False)
        if result.returncode != 0:
            raise CliError(f"{editor} exited with status {result.returncode}")
        edited = _read_yaml(Path(temp))
    finally:
        os.unlink(temp)
    updated = NatsContext(name=name)
    for key in context_store.CONTEXT_KEYS:
        if key in edited and edited[key] is not None:
            updated.settings[key] = (
                edited[key] if key in ("tls_first", "windows_ca_certs_match") else str(edited[key])
            )
    path = context_store.context_path(name)
    backup = path.with_suffix(".json.bak")
    path.replace(backup)
    try:
        context_store.save(updated)
    except CliError:
        backup.replace(path)
        raise
    show_info(context_store.load(name))


def context_as_yaml(context: NatsContext) -> str:
    """Every key as `key: value` (JSON scalars are YAML), with a comment above the known ones."""
    lines = []
    for key, value in context.file_data().items():
        if key in YAML_COMMENTS:
            lines.append(f"# {YAML_COMMENTS[key]}")
        lines.append(f"{key}: {json.dumps(value)}")
        lines.append("")
    return "\n".join(lines)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CliError(f"could not parse the edited context: {exc}") from exc
    if not isinstance(data, dict):
        raise CliError("could not parse the edited context: not a mapping")
    return data
