"""The error and exit conventions every natscli user scripts against (cli.md §0.2, §0.3)."""

from __future__ import annotations

from tests.cli.conftest import NatsCli, closed_port

HINT = "use --help for full help including flags and arguments"


def test_no_arguments_prints_the_usage_and_succeeds(cli: NatsCli) -> None:
    result = cli.run()
    assert result.returncode == 0, result
    assert "Usage: nats" in result.stdout
    assert "publish (pub)" in result.stdout
    assert result.stderr == ""


def test_help_is_available_at_every_level(cli: NatsCli) -> None:
    for args in (
        ("-h",),
        ("--help",),
        ("pub", "--help"),
        ("context", "ls", "-h"),
        ("server", "ping", "-h"),
    ):
        result = cli.run(*args)
        assert result.returncode == 0, result
        assert "Usage:" in result.stdout, result
    assert "Global Flags" in cli.run("sub", "-h").stdout
    help_command = cli.run("help", "request")
    assert help_command.returncode == 0
    assert "Usage: nats request" in help_command.stdout


def test_unknown_command_is_named_and_the_commands_listed(cli: NatsCli) -> None:
    result = cli.run("strem", "ls")
    assert result.returncode == 1
    assert result.stderr == f'error: expected command but got "strem", {HINT}\n\n'
    assert "subscribe (sub)" in result.stdout


def test_group_without_subcommand_is_a_usage_error(cli: NatsCli) -> None:
    result = cli.run("context")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: a subcommand from the list below is required, {HINT}")
    assert "ls (list, l)" in result.stdout


def test_unknown_flag_is_reported_with_the_command_usage(cli: NatsCli) -> None:
    result = cli.run("pub", "--bogus", "x")
    assert result.returncode == 1
    assert result.stderr == "error: unknown long flag '--bogus'\n\n"
    assert "Usage: nats pub" in result.stdout


def test_missing_argument_and_missing_flag_value_are_usage_errors(cli: NatsCli) -> None:
    missing = cli.run("pub")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: required argument 'subject' not provided")
    no_value = cli.run("pub", "x", "--count")
    assert no_value.returncode == 1
    assert no_value.stderr.startswith("error: expected argument for flag '--count'")


def test_bad_flag_values_are_one_error_line_without_traceback(cli: NatsCli) -> None:
    for args, fragment in (
        (("pub", "x", "--count", "many"), "--count"),
        (("pub", "x", "--sleep", "5"), "invalid duration"),
        (("pub", "x", "--send-on", "sometimes"), "--send-on"),
        (("pub", "x", "-H", "no-colon"), "invalid header"),
    ):
        result = cli.run(*args)
        assert result.returncode == 1, result
        assert result.stderr.startswith("nats: error: "), result
        assert fragment in result.stderr, result
        assert "Traceback" not in result.stderr


def test_unreachable_server_fails_fast_with_the_natscli_message(cli: NatsCli) -> None:
    result = cli.run("pub", "demo", "hi", "-s", f"nats://127.0.0.1:{closed_port()}")
    assert result.returncode == 1
    assert result.stderr == "nats: error: nats: no servers available for connection\n"
    assert result.elapsed < 5, "the first connect must be bounded"


def test_version_flag_prints_the_version(cli: NatsCli) -> None:
    result = cli.run("--version")
    assert result.returncode == 0
    assert result.stdout.strip()[0].isdigit()


def test_existing_file_flags_are_checked_when_parsed(cli: NatsCli) -> None:
    result = cli.run("pub", "x", "--tlsca", "/no/such/ca.pem")
    assert result.returncode == 1
    assert "path '/no/such/ca.pem' does not exist" in result.stderr
