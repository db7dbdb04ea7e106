"""The global flags of `nats`, and how they combine with env vars and the context (cli.md §1).

Every command accepts the global flags, before or after its own name (`nats -s URL pub x` and
`nats pub x -s URL` are the same), because natscli's parser allows both. The command tree
attaches a fresh copy of `global_click_options()` to every command; their callbacks only record
the values typed on the command line into `STATE.flags`. Nothing is resolved at parse time.

`current_settings()` then resolves, once per process, every setting with natscli's precedence:

    command-line flag  >  its environment variable  >  the loaded context  >  built-in default

(an empty value never overrides), and loads the context chosen by `--no-context`,
`--context NAME|FILE.json`, `NATS_CONTEXT` or the selection file. Command modules read
`current_settings()` (or simply call `connect.connect()`), never the flags directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from pynats.cli.ui import context_store, prompt, table
from pynats.cli.ui.context_store import DEFAULT_URL, NatsContext
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.output import out
from pynats.cli.ui.parse import parse_duration_ns
from pynats.gotime import NS_PER_S

DEFAULT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class GlobalFlag:
    """One global flag: its key in Settings, spellings, env var and help."""

    key: str
    names: tuple[str, ...]
    help: str
    env: str | None = None
    metavar: str | None = None
    is_flag: bool = False
    hidden_names: tuple[str, ...] = ()
    existing_file: bool = False
    choices: tuple[str, ...] = ()


GLOBAL_FLAGS: tuple[GlobalFlag, ...] = (
    GlobalFlag("server", ("-s", "--server"), "NATS server urls", "NATS_URL", "URL"),
    GlobalFlag("user", ("--user",), "Username or Token", "NATS_USER", "USER"),
    GlobalFlag("password", ("--password",), "Password", "NATS_PASSWORD", "PASSWORD"),
    GlobalFlag("token", ("--token",), "Token", "NATS_TOKEN", "TOKEN"),
    GlobalFlag(
        "connection_name",
        ("--connection-name",),
        "Nickname to use for the underlying NATS Connection",
        None,
        "NAME",
    ),
    GlobalFlag("creds", ("--creds",), "User credentials", "NATS_CREDS", "FILE"),
    GlobalFlag("nkey", ("--nkey",), "User NKEY", "NATS_NKEY", "FILE"),
    GlobalFlag("jwt", ("--jwt",), "User JWT", "NATS_JWT", "JWT"),
    GlobalFlag("seed", ("--seed",), "User seed", "NATS_SEED", "SEED"),
    GlobalFlag(
        "tls_cert",
        ("--tlscert",),
        "TLS client certificate file",
        "NATS_CERT",
        "FILE",
        existing_file=True,
    ),
    GlobalFlag(
        "tls_key",
        ("--tlskey",),
        "TLS client private key file",
        "NATS_KEY",
        "FILE",
        existing_file=True,
    ),
    GlobalFlag(
        "tls_ca",
        ("--tlsca",),
        "TLS certificate authority chain file",
        "NATS_CA",
        "FILE",
        existing_file=True,
    ),
    GlobalFlag(
        "tls_first",
        ("--tlsfirst",),
        "Perform TLS handshake before expecting the server greeting",
        is_flag=True,
        hidden_names=("--tls-first",),
    ),
    GlobalFlag(
        "timeout", ("--timeout",), "Time to wait on responses from NATS", "NATS_TIMEOUT", "DURATION"
    ),
    GlobalFlag(
        "socks_proxy",
        ("--socks-proxy",),
        "SOCKS5 proxy for connecting to NATS server",
        "NATS_SOCKS_PROXY",
        "PROXY",
    ),
    GlobalFlag(
        "js_domain",
        ("--js-domain",),
        "JetStream domain to access",
        None,
        "DOMAIN",
        hidden_names=("--domain",),
    ),
    GlobalFlag(
        "js_api_prefix",
        ("--js-api-prefix",),
        "Subject prefix for access to JetStream API",
        None,
        "PREFIX",
    ),
    GlobalFlag(
        "js_event_prefix",
        ("--js-event-prefix",),
        "Subject prefix for access to JetStream Advisories",
        None,
        "PREFIX",
    ),
    GlobalFlag(
        "inbox_prefix",
        ("--inbox-prefix",),
        "Custom inbox prefix to use for inboxes",
        None,
        "PREFIX",
    ),
    GlobalFlag(
        "colors",
        ("--colors",),
        "Sets a color scheme to use",
        "NATS_COLOR",
        "SCHEME",
        choices=table.COLOR_SCHEMES,
    ),
    GlobalFlag("context", ("--context",), "Configuration context", "NATS_CONTEXT", "NAME"),
    GlobalFlag("no_context", ("--no-context",), "Disable the selected context", is_flag=True),
    GlobalFlag("trace", ("--trace",), "Trace API interactions", is_flag=True),
)
FLAG_BY_KEY = {flag.key: flag for flag in GLOBAL_FLAGS}

# Env vars whose presence `context info` warns about (they silently override the context).
OVERRIDE_ENV_VARS = (
    "NATS_URL",
    "NATS_USER",
    "NATS_PASSWORD",
    "NATS_CREDS",
    "NATS_NKEY",
    "NATS_CERT",
    "NATS_KEY",
    "NATS_CA",
    "NATS_TIMEOUT",
    "NATS_SOCKS_PROXY",
    "NATS_COLOR",
)


@dataclass
class Settings:
    """Everything a command needs to connect, after flags, env and context were merged."""

    servers: str = DEFAULT_URL
    user: str = ""
    password: str = ""
    token: str = ""
    creds: str = ""
    nkey: str = ""
    jwt: str = ""
    seed: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    tls_first: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    connection_name: str = ""
    socks_proxy: str = ""
    js_domain: str = ""
    js_api_prefix: str = ""
    inbox_prefix: str = ""
    colors: str = ""
    trace: bool = False
    context: NatsContext | None = None


@dataclass
class InvocationState:
    """What this process was asked: flags typed on the command line, settings once resolved."""

    flags: dict[str, Any] = field(default_factory=dict)
    settings: Settings | None = None


STATE = InvocationState()


def reset_state() -> None:
    """Forget flags and settings (the entry point calls this once per run)."""
    global STATE
    STATE = InvocationState()


def flag_value(key: str) -> Any:
    """A global flag as typed on the command line, else its env var, else None."""
    if key in STATE.flags:
        return STATE.flags[key]
    spec = FLAG_BY_KEY[key]
    if spec.env and os.environ.get(spec.env):
        return os.environ[spec.env]
    return None


def current_settings() -> Settings:
    """The merged settings for this run (resolved and cached on first use)."""
    if STATE.settings is None:
        STATE.settings = resolve_settings()
        table.set_color_scheme(STATE.settings.colors)
        if STATE.settings.context is not None:
            prompt.set_prompt_context(STATE.settings.context.name)
    return STATE.settings


def resolve_settings() -> Settings:
    """Merge flags > env > context > defaults into a Settings."""
    context = load_chosen_context()
    settings = Settings(context=context)

    def pick(key: str, context_key: str | None) -> str:
        value = flag_value(key)
        if value not in (None, ""):
            return str(value)
        if context is not None and context_key:
            return (
                context.path_value(context_key)
                if context_key in context_store.PATH_KEYS
                else context.get(context_key)
            )
        return ""

    settings.servers = pick("server", "url") or DEFAULT_URL
    settings.user = pick("user", "user")
    settings.password = pick("password", "password")
    settings.token = pick("token", "token")
    settings.creds = pick("creds", "creds")
    settings.nkey = pick("nkey", "nkey")
    settings.jwt = pick("jwt", "user_jwt")
    settings.seed = pick("seed", "user_seed")
    settings.tls_cert = pick("tls_cert", "cert")
    settings.tls_key = pick("tls_key", "key")
    settings.tls_ca = pick("tls_ca", "ca")
    settings.tls_first = bool(flag_value("tls_first")) or bool(context and context.tls_first)
    settings.connection_name = pick("connection_name", None)
    settings.socks_proxy = pick("socks_proxy", "socks_proxy")
    if settings.socks_proxy in ("none", "-"):
        settings.socks_proxy = ""
    settings.js_domain = pick("js_domain", "jetstream_domain")
    settings.js_api_prefix = pick("js_api_prefix", "jetstream_api_prefix")
    settings.inbox_prefix = pick("inbox_prefix", "inbox_prefix")
    settings.colors = pick("colors", "color_scheme")
    settings.trace = bool(flag_value("trace"))
    timeout = flag_value("timeout")
    settings.timeout_s = (
        _timeout_seconds(timeout) if timeout not in (None, "") else DEFAULT_TIMEOUT_S
    )
    return settings


def _timeout_seconds(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    try:
        return parse_duration_ns(str(value)) / NS_PER_S
    except ValueError as exc:
        raise CliError(f"invalid timeout: {exc}") from exc


def load_chosen_context() -> NatsContext | None:
    """The context picked by --no-context / --context / NATS_CONTEXT / context.txt, or None."""
    if flag_value("no_context"):
        return None
    requested = flag_value("context") or ""
    if requested:
        path = Path(requested)
        if requested.endswith(".json") and path.is_file():
            return context_store.load_file(path)
        if not context_store.is_known(requested):
            raise CliError("context not found")
        return context_store.load(requested)
    chosen = context_store.selected()
    if not chosen:
        return None
    if not context_store.is_known(chosen):
        out(f'The selected context "{chosen}" was not found, unselecting it')
        context_store.unselect()
        raise CliError("context not found")
    return context_store.load(chosen)


# -- click glue -------------------------------------------------------------------------------


class ExistingFile(click.ParamType):
    """A path that must exist when given (fisk's ExistingFile), checked at parse time."""

    name = "FILE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value and not os.path.exists(value):
            self.fail(f"path '{value}' does not exist", param, ctx)
        return value


class GlobalOption(click.Option):
    """A global flag's click option: help lists these under "Global Flags"."""


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A callback that records the flag's value as typed (resolved later, see module doc)."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value not in (None, False, ""):
            STATE.flags[key] = value
        return value

    return callback


def global_click_options() -> list[click.Option]:
    """Fresh click Options for every global flag (one set per command they are attached to)."""
    options: list[click.Option] = []
    for flag in GLOBAL_FLAGS:
        for names, hidden in ((flag.names, False), (flag.hidden_names, True)):
            if not names:
                continue
            param_name = f"global_{flag.key}" + ("_alias" if hidden else "")
            kwargs: dict[str, Any] = {
                "help": flag.help + (f" (env {flag.env})" if flag.env else ""),
                "expose_value": False,
                "callback": _remember(flag.key),
                "hidden": hidden,
                "default": None,
            }
            if flag.is_flag:
                kwargs.update(is_flag=True, default=False)
            elif flag.choices:
                kwargs.update(type=click.Choice(flag.choices), metavar=flag.metavar)
            elif flag.existing_file:
                kwargs.update(type=ExistingFile(), metavar=flag.metavar)
            else:
                kwargs.update(metavar=flag.metavar)
            options.append(GlobalOption([*names, param_name], **kwargs))
    return options
