"""`nats`: the command tree, and natscli's error and exit conventions (cli.md §0.2).

How a noun plugs in: create `pynats/cli/<noun>.py` (or a `<noun>/` package whose `__init__`
exports it) with a `register(root)` function that adds its group and verbs to the root
`NatsGroup` (see ui/command.py for an example), and add that function to NOUNS below. The
nouns are imported by name, so a missing one fails at start instead of vanishing from help.

Exit codes and output of the entry point:
* success: 0;
* an error a user can cause (CliError, nats-py errors, bad values): `nats: error: <msg>`, 1;
* a parser error (unknown flag, missing argument): `error: <msg>` and a blank line on stderr,
  then the command's usage on stdout, 1 (for an unknown or missing subcommand the message ends
  with `, use --help for full help including flags and arguments` and the usage is the list of
  subcommands);
* Ctrl-C / SIGTERM during a command that does not handle it: 130, no traceback.
Anything else is a bug and keeps its traceback.

Shell completion (click's): add to ~/.bashrc `eval "$(_NATS_COMPLETE=bash_source nats)"`, or to
~/.zshrc `eval "$(_NATS_COMPLETE=zsh_source nats)"`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence

import click

from pynats.cli import (
    account,
    bench,
    cheat,
    consumer,
    context,
    counter,
    errors,
    events,
    kv,
    latency,
    micro,
    obj,
    pub,
    reply,
    request,
    rtt,
    server,
    stream,
    sub,
    top,
    trace,
)
from pynats.cli.ui.command import NatsGroup, SubcommandRequired
from pynats.cli.ui.connect import cli_version
from pynats.cli.ui.errors import Fatal, Interrupted, describe
from pynats.cli.ui.options import reset_state
from pynats.cli.ui.output import err, log

NOUNS: tuple[Callable[[NatsGroup], None], ...] = (
    account.register,
    bench.register,
    cheat.register,
    consumer.register,
    context.register,
    counter.register,
    errors.register,
    events.register,
    kv.register,
    latency.register,
    micro.register,
    obj.register,
    pub.register,
    reply.register,
    request.register,
    rtt.register,
    server.register,
    stream.register,
    sub.register,
    top.register,
    trace.register,
)

HELP = """NATS Utility

NATS Server and JetStream administration.

See 'nats cheat' for a quick cheatsheet of commands"""

HELP_HINT = ", use --help for full help including flags and arguments"


def build_cli() -> NatsGroup:
    """The root group with every noun registered."""
    root = NatsGroup("nats", help=HELP, is_root=True)
    click.version_option(cli_version(), "--version", message="%(version)s")(root)
    _register_help(root)
    for register in NOUNS:
        register(root)
    return root


def _register_help(root: NatsGroup) -> None:
    @root.command("help", loads_context=False, help="Show help.")
    @click.argument("command", nargs=-1)
    @click.pass_context
    def help_command(ctx: click.Context, command: tuple[str, ...]) -> None:
        target: click.Command = root
        target_ctx = click.Context(root, info_name="nats")
        for name in command:
            sub = target.get_command(target_ctx, name) if isinstance(target, click.Group) else None
            if sub is None:
                raise click.UsageError(f'expected command but got "{name}"', ctx=target_ctx)
            target_ctx = click.Context(sub, info_name=name, parent=target_ctx)
            target = sub
        click.echo(target.get_help(target_ctx))


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point: run one `nats` command and exit with natscli's codes."""
    reset_state()
    root = build_cli()
    if "_NATS_COMPLETE" in os.environ:
        root.main(args=argv, prog_name="nats")
    args = list(sys.argv[1:] if argv is None else argv)
    sys.exit(run(root, args))


def run(root: NatsGroup, args: list[str]) -> int:
    """Parse and invoke; return the exit code (every expected failure is reported here)."""
    try:
        with root.make_context("nats", args) as ctx:
            root.invoke(ctx)
        return 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        return _report_usage_error(exc)
    except click.Abort:
        err()
        return 1
    except Fatal as exc:
        log(str(exc))
        return exc.exit_code
    except Interrupted:
        return 130
    except KeyboardInterrupt:
        err()
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 0
    except Exception as exc:
        message = describe(exc)
        if message is None:
            raise
        err(f"nats: error: {message}")
        return 1


def _report_usage_error(exc: click.UsageError) -> int:
    """Print a parser error the way fisk does, with the usage that helps fix it."""
    ctx = exc.ctx
    if isinstance(exc, SubcommandRequired | click.exceptions.NoSuchCommand):
        message = (
            str(exc)
            if isinstance(exc, SubcommandRequired)
            else f'expected command but got "{exc.command_name}"'
        )
        err(f"error: {message}{HELP_HINT}\n")
        if ctx is not None and isinstance(ctx.command, NatsGroup):
            click.echo(ctx.command.compact_usage(ctx), nl=False)
        return 1
    if isinstance(exc, click.BadParameter) and not isinstance(exc, click.MissingParameter):
        err(f"nats: error: {_bad_value_text(exc)}")
        return 1
    err(f"error: {_parser_message(exc)}\n")
    if ctx is not None:
        click.echo(ctx.get_help())
    return 1


def _parser_message(exc: click.UsageError) -> str:
    """fisk's wording for click's parser errors."""
    if isinstance(exc, click.exceptions.NoSuchOption):
        kind = "long" if exc.option_name.startswith("--") else "short"
        return f"unknown {kind} flag '{exc.option_name}'"
    if isinstance(exc, click.BadOptionUsage) and "requires an argument" in exc.message:
        return f"expected argument for flag '{exc.option_name}'"
    if isinstance(exc, click.MissingParameter) and exc.param is not None:
        if isinstance(exc.param, click.Argument):
            return f"required argument '{exc.param.name}' not provided"
        flag = max(exc.param.opts, key=len) if exc.param.opts else f"--{exc.param.name}"
        return f"required flag {flag} not provided"
    extra = re.match(r"Got unexpected extra arguments? \((\S+)", exc.message)
    if extra:
        return f"unexpected argument '{extra.group(1)}'"
    return exc.format_message()


def _bad_value_text(exc: click.BadParameter) -> str:
    """A value that did not parse: name the flag and keep the parser's reason."""
    hint = None
    if exc.param is not None and exc.param.opts:
        hint = max(exc.param.opts, key=len)
    elif exc.param is not None:
        hint = exc.param.name
    return f"invalid value for {hint}: {exc.message}" if hint else exc.message


def _silence_stdout() -> None:
    """After EPIPE (`nats sub x | head -1`) point stdout at /dev/null so exit does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


if __name__ == "__main__":  # pragma: no cover
    main()
