"""How `nats` finds its server and credentials: flags, env vars, contexts (cli.md §1)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import NatsCli, closed_port
from tests.support.servers import RunningServer, start_server


def write_context(cli: NatsCli, name: str, **settings: object) -> Path:
    """A context file the way natscli writes it (only the given keys differ from blank)."""
    cli.context_dir.mkdir(parents=True, exist_ok=True)
    path = cli.context_dir / f"{name}.json"
    path.write_text(json.dumps({"description": "", "url": "", **settings}, indent=2))
    return path


def test_global_flags_work_before_and_after_the_command(
    cli: NatsCli, core_server: RunningServer
) -> None:
    before = cli.run("-s", core_server.url, "pub", "demo", "hi")
    after = cli.run("pub", "demo", "hi", "-s", core_server.url)
    assert before.returncode == 0, before
    assert after.returncode == 0, after


def test_comma_separated_servers_fall_through_to_one_that_answers(
    cli: NatsCli, core_server: RunningServer
) -> None:
    servers = f"nats://127.0.0.1:{closed_port()},{core_server.url}"
    result = cli.run("pub", "demo", "hi", "-s", servers)
    assert result.returncode == 0, result


def test_nats_url_is_used_and_the_flag_wins_over_it(
    cli: NatsCli, core_server: RunningServer
) -> None:
    dead = f"nats://127.0.0.1:{closed_port()}"
    assert cli.run("pub", "demo", "hi", env={"NATS_URL": core_server.url}).returncode == 0
    assert (
        cli.run("pub", "demo", "hi", "-s", core_server.url, env={"NATS_URL": dead}).returncode == 0
    )
    assert cli.run("pub", "demo", "hi", env={"NATS_URL": dead}).returncode == 1


def test_selected_context_supplies_the_server_and_env_overrides_it(
    cli: NatsCli, core_server: RunningServer
) -> None:
    write_context(cli, "here", url=core_server.url)
    (cli.config_dir / "nats" / "context.txt").write_text("here")
    assert cli.run("pub", "demo", "hi").returncode == 0
    dead = f"nats://127.0.0.1:{closed_port()}"
    overridden = cli.run("pub", "demo", "hi", env={"NATS_URL": dead})
    assert overridden.returncode == 1
    assert "no servers available" in overridden.stderr


def test_context_flag_and_env_pick_a_context_by_name_or_file(
    cli: NatsCli, core_server: RunningServer
) -> None:
    dead = f"nats://127.0.0.1:{closed_port()}"
    write_context(cli, "dead", url=dead)
    path = write_context(cli, "live", url=core_server.url)
    (cli.config_dir / "nats" / "context.txt").write_text("dead")
    assert cli.run("pub", "demo", "hi", "--context", "live").returncode == 0
    assert cli.run("pub", "demo", "hi", env={"NATS_CONTEXT": "live"}).returncode == 0
    assert cli.run("pub", "demo", "hi", "--context", str(path)).returncode == 0
    assert cli.run("pub", "demo", "hi").returncode == 1
    assert cli.run("pub", "demo", "hi", "--no-context", "-s", core_server.url).returncode == 0


def test_unknown_context_is_an_error_and_a_stale_selection_is_dropped(cli: NatsCli) -> None:
    named = cli.run("pub", "demo", "hi", "--context", "nope")
    assert named.returncode == 1
    assert named.stderr == "nats: error: context not found\n"
    selection = cli.config_dir / "nats" / "context.txt"
    selection.parent.mkdir(parents=True)
    selection.write_text("gone")
    stale = cli.run("pub", "demo", "hi")
    assert stale.returncode == 1
    assert stale.stdout == 'The selected context "gone" was not found, unselecting it\n'
    assert not selection.exists()


@pytest.fixture(scope="module")
def auth_server(server_kind: str) -> Iterator[RunningServer]:
    server = start_server(["--user", "alice", "--pass", "s3cret"], oracle=(server_kind == "go"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token_server(server_kind: str) -> Iterator[RunningServer]:
    server = start_server(["--auth", "t0ken"], oracle=(server_kind == "go"))
    yield server
    server.stop()


def test_user_and_password_from_flags_or_env(cli: NatsCli, auth_server: RunningServer) -> None:
    assert (
        cli.run(
            "pub", "x", "y", "-s", auth_server.url, "--user", "alice", "--password", "s3cret"
        ).returncode
        == 0
    )
    env = {"NATS_USER": "alice", "NATS_PASSWORD": "s3cret", "NATS_URL": auth_server.url}
    assert cli.run("pub", "x", "y", env=env).returncode == 0
    wrong = cli.run("pub", "x", "y", "-s", auth_server.url, "--user", "alice", "--password", "nope")
    assert wrong.returncode == 1
    assert wrong.stderr == "nats: error: nats: Authorization Violation\n"


def test_user_without_password_is_sent_as_a_token(
    cli: NatsCli, token_server: RunningServer
) -> None:
    assert cli.run("pub", "x", "y", "-s", token_server.url, "--user", "t0ken").returncode == 0
    assert cli.run("pub", "x", "y", "-s", token_server.url, "--token", "t0ken").returncode == 0
    assert cli.run("pub", "x", "y", "-s", token_server.url, "--token", "wrong").returncode == 1


def test_context_connection_check_reports_ok_or_the_error(
    cli: NatsCli, core_server: RunningServer
) -> None:
    write_context(cli, "good", url=core_server.url)
    write_context(cli, "bad", url=f"nats://127.0.0.1:{closed_port()}")
    good = cli.run("context", "info", "good", "--connect")
    assert good.returncode == 0, good
    assert "   Connection: OK\n" in good.stdout
    bad = cli.run("context", "info", "bad", "--connect")
    assert "   Connection: nats: no servers available for connection\n" in bad.stdout
    validate = cli.run("context", "validate", "--connect")
    assert validate.returncode == 1
    assert validate.stderr == "nats: error: validation failed\n"
