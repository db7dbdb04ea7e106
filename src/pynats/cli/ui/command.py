"""The click classes of the `nats` command tree: aliases, global flags everywhere, natscli help.

A noun (`pub.py`, `stream/commands.py`, ...) receives the root `NatsGroup` in its `register()`
function and hangs its commands on it::

    def register(root: NatsGroup) -> None:
        @root.group("stream", aliases=["str", "st"], help="JetStream Stream management")
        def stream() -> None: ...

        @stream.command("ls", aliases=["list", "l"], help="List all known Streams")
        @json_flag()
        def stream_ls(as_json: bool) -> None:
            run_async(_list_streams(as_json))

What the classes add to click:
* `aliases=[...]` on `command()`/`group()`: alternative names, shown in help after the name;
* every command and group accepts the global flags (`-s`, `--user`, `--context`, ...) anywhere
  on its own part of the command line (see options.py), listed under "Global Flags" in help;
* before a command's callback runs, the context is loaded and the settings resolved
  (`loads_context=False` skips that for commands that must work with a broken context, like
  `nats context ...` and `nats cheat`);
* a group run without a subcommand is a natscli usage error (the root prints its help instead).

natscli's recurring flags are declared once, at the end: `json_flag()` (-j/--json),
`force_flag()` (-f/--force), `negatable()` (--x/--no-x), `config_file_options()` (the add
commands' --config/--validate/--output); `apply_options()` stacks several into one decorator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import click

from pynats.cli.ui.options import (
    ExistingFile,
    GlobalOption,
    current_settings,
    global_click_options,
)

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class SubcommandRequired(click.UsageError):
    """A group was invoked without choosing one of its subcommands."""


class NatsCommand(click.Command):
    """A leaf command: aliases, global flags, context loading before the callback runs."""

    def __init__(
        self,
        *args: Any,
        aliases: Iterable[str] = (),
        loads_context: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(*args, **kwargs)
        self.aliases = tuple(aliases)
        self.loads_context = loads_context
        self.params.extend(global_click_options())

    def invoke(self, ctx: click.Context) -> Any:
        if self.loads_context and _chain_loads_context(ctx):
            current_settings()
        return super().invoke(ctx)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        _format_split_options(self, ctx, formatter)

    def format_arguments(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Arguments are listed under "Args" by format_options (newer click lists them too)."""


class NatsGroup(click.Group):
    """A noun (or the root): subcommands with aliases, global flags, natscli usage errors."""

    command_class = NatsCommand
    group_class = type

    def __init__(
        self,
        *args: Any,
        aliases: Iterable[str] = (),
        loads_context: bool = True,
        is_root: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("context_settings", CONTEXT_SETTINGS)
        super().__init__(*args, **kwargs)
        self.aliases = tuple(aliases)
        self.loads_context = loads_context
        self.is_root = is_root
        self.alias_map: dict[str, str] = {}
        self.params.extend(global_click_options())

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        super().add_command(cmd, name)
        for alias in getattr(cmd, "aliases", ()):
            self.alias_map[alias] = name or cmd.name or alias

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.alias_map.get(cmd_name, cmd_name))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args and not ctx.resilient_parsing:
            if self.is_root:
                click.echo(ctx.get_help(), color=ctx.color)
                ctx.exit(0)
            raise SubcommandRequired("a subcommand from the list below is required", ctx=ctx)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        if not ctx._protected_args and not ctx.resilient_parsing:
            if self.is_root:
                click.echo(ctx.get_help(), color=ctx.color)
                ctx.exit(0)
            raise SubcommandRequired("a subcommand from the list below is required", ctx=ctx)
        return super().invoke(ctx)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.format_commands(ctx, formatter)
        _format_split_options(self, ctx, formatter)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is None or cmd.hidden:
                continue
            aliases = getattr(cmd, "aliases", ())
            label = f"{name} ({', '.join(aliases)})" if aliases else name
            rows.append((label, cmd.get_short_help_str(limit=formatter.width - 30)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def compact_usage(self, ctx: click.Context) -> str:
        """The subcommand list printed after a "subcommand required" error."""
        formatter = ctx.make_formatter()
        formatter.write_usage(ctx.command_path, "<command> [<args> ...]")
        self.format_commands(ctx, formatter)
        return formatter.getvalue()


def _chain_loads_context(ctx: click.Context) -> bool:
    """False when the command or any group above it opted out of loading the context."""
    node: click.Context | None = ctx
    while node is not None:
        if not getattr(node.command, "loads_context", True):
            return False
        node = node.parent
    return True


def _format_split_options(
    command: click.Command, ctx: click.Context, formatter: click.HelpFormatter
) -> None:
    """List a command's arguments, its own flags, then the global flags, under their headings."""
    sections: dict[str, list[tuple[str, str]]] = {"Args": [], "Flags": [], "Global Flags": []}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        if isinstance(param, click.Argument):
            sections["Args"].append(record)
        elif isinstance(param, GlobalOption):
            sections["Global Flags"].append(record)
        else:
            sections["Flags"].append(record)
    for title, records in sections.items():
        if records:
            with formatter.section(title):
                formatter.write_dl(records)


def negatable(name: str, default: bool | None, help: str, **kwargs: Any) -> Callable[[Any], Any]:
    """A natscli negatable boolean: `--name` / `--no-name` (default None = not given)."""
    return click.option(f"--{name}/--no-{name}", default=default, help=help, **kwargs)


def apply_options(*options: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """One decorator from several click options (or other decorators), listed in help in the
    given order."""

    def decorate(function: Any) -> Any:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def config_file_options() -> Callable[[Any], Any]:
    """`--config FILE`, `--validate`, `--output FILE`: the trio of natscli's add commands."""
    return apply_options(
        click.option(
            "--config",
            "config_file",
            type=ExistingFile(),
            default="",
            help="JSON file to read configuration from",
        ),
        click.option(
            "--validate",
            is_flag=True,
            help="Only validates the configuration against the official Schema",
        ),
        click.option(
            "--output",
            "output_file",
            default="",
            metavar="FILE",
            help="Save configuration instead of creating",
        ),
    )


def json_flag(help: str = "Produce JSON output") -> Callable[[Any], Any]:
    """natscli's `-j/--json`: the value reaches the callback as `as_json`."""
    return click.option("-j", "--json", "as_json", is_flag=True, help=help)


def force_flag(help: str = "Force the operation without prompting") -> Callable[[Any], Any]:
    """natscli's `-f/--force`: skip confirmations (the value is `force`)."""
    return click.option("-f", "--force", is_flag=True, help=help)
