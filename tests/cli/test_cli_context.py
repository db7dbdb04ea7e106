"""`nats context`: natscli's on-disk format, both directions, and its prompts (cli.md §13)."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pexpect

from tests.cli.conftest import NatsCli

CONTEXT_KEYS = [
    "description", "url", "socks_proxy", "token", "user", "password", "creds", "nkey", "cert", "key",
    "ca", "nsc", "jetstream_domain", "jetstream_api_prefix", "jetstream_event_prefix", "inbox_prefix",
    "user_jwt", "user_seed", "color_scheme", "tls_first", "windows_cert_store", "windows_cert_match_by",
    "windows_cert_match", "windows_ca_certs_match",
]  # fmt: skip

# A context exactly as natscli 0.2 writes it (every key, two-space indent, no trailing newline).
NATSCLI_CONTEXT = """{
  "description": "Production cluster",
  "url": "nats://prod-1:4222,nats://prod-2:4222",
  "socks_proxy": "",
  "token": "",
  "user": "",
  "password": "",
  "creds": "%s",
  "nkey": "",
  "cert": "",
  "key": "",
  "ca": "",
  "nsc": "",
  "jetstream_domain": "hub",
  "jetstream_api_prefix": "",
  "jetstream_event_prefix": "",
  "inbox_prefix": "",
  "user_jwt": "",
  "user_seed": "",
  "color_scheme": "",
  "tls_first": false,
  "windows_cert_store": "",
  "windows_cert_match_by": "",
  "windows_cert_match": "",
  "windows_ca_certs_match": null
}"""


def install_natscli_contexts(cli: NatsCli, selected: str = "prod") -> Path:
    """Contexts written by the Go tool: `prod` (with a creds file), `local` (old, short form)."""
    cli.context_dir.mkdir(parents=True)
    creds = cli.home / "prod.creds"
    creds.write_text("-----BEGIN NATS USER JWT-----\n")
    (cli.context_dir / "prod.json").write_text(NATSCLI_CONTEXT % creds)
    (cli.context_dir / "local.json").write_text(
        '{"description": "Local dev server", "url": "nats://127.0.0.1:4222", "extra_key_from_future": 1}'
    )
    (cli.context_dir / "notes.txt").write_text("not a context")
    (cli.context_dir / "empty.json").write_text("")
    (cli.config_dir / "nats" / "context.txt").write_text(selected)
    return creds


def test_contexts_written_by_natscli_are_listed_with_the_selected_one_marked(cli: NatsCli) -> None:
    install_natscli_contexts(cli)
    result = cli.run("context", "ls")
    assert result.returncode == 0, result
    assert result.stdout == (
        "╭────────────────────────────╮\n"
        "│       Known Contexts       │\n"
        "├───────┬────────────────────┤\n"
        "│ Name  │ Description        │\n"
        "├───────┼────────────────────┤\n"
        "│ local │ Local dev server   │\n"
        "│ prod* │ Production cluster │\n"
        "╰───────┴────────────────────╯\n"
        "\n"
    )
    assert cli.run("context", "ls", "--names").stdout == "local\nprod\n"
    listed = json.loads(cli.run("ctx", "ls", "--json").stdout)
    assert [c["name"] for c in listed] == ["local", "prod"]
    assert listed[1]["jetstream_domain"] == "hub"


def test_context_info_shows_what_is_set_and_checks_files(cli: NatsCli) -> None:
    creds = install_natscli_contexts(cli)
    result = cli.run("context", "info")
    assert result.returncode == 0, result
    assert result.stdout == (
        'NATS Configuration Context "prod"\n'
        "\n"
        "  Description: Production cluster\n"
        "  Server URLs: nats://prod-1:4222,nats://prod-2:4222\n"
        f"  Credentials: {creds} (OK)\n"
        "    JS Domain: hub\n"
        f"         Path: {cli.context_dir / 'prod.json'}\n"
        "\n"
    )
    creds.unlink()
    assert f"{creds} (ERROR)" in cli.run("context", "show", "prod").stdout
    shown = json.loads(cli.run("context", "info", "local", "--json").stdout)
    assert shown["name"] == "local" and shown["url"] == "nats://127.0.0.1:4222"


def test_context_info_warns_about_environment_overrides(cli: NatsCli) -> None:
    install_natscli_contexts(cli)
    result = cli.run(
        "context", "info", "local", env={"NATS_URL": "nats://elsewhere:4222", "NATS_USER": "bob"}
    )
    assert result.stdout.endswith(
        "WARNING: Shell environment overrides in place using NATS_URL, NATS_USER\n"
    )


def test_saved_context_is_in_natscli_format(cli: NatsCli) -> None:
    result = cli.run(
        "context",
        "save",
        "dev",
        "-s",
        "nats://dev:4222",
        "--description",
        "Dev box",
        "--user",
        "bob",
        "--password",
        "pw",
        "--select",
    )
    assert result.returncode == 0, result
    assert result.stdout.startswith('NATS Configuration Context "dev"\n\n  Description: Dev box\n')
    assert "     Password: **\n" in result.stdout
    path = cli.context_dir / "dev.json"
    text = path.read_text()
    data = json.loads(text)
    assert list(data) == CONTEXT_KEYS
    assert data["url"] == "nats://dev:4222" and data["user"] == "bob" and data["password"] == "pw"
    assert data["tls_first"] is False and data["windows_ca_certs_match"] is None
    assert text.startswith('{\n  "description": "Dev box",\n')
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (cli.config_dir / "nats" / "context.txt").read_text() == "dev"


def test_saving_updates_only_the_given_settings_and_env_counts_as_flags(cli: NatsCli) -> None:
    install_natscli_contexts(cli)
    assert cli.run("context", "add", "prod", "--description", "Renamed").returncode == 0
    data = json.loads((cli.context_dir / "prod.json").read_text())
    assert data["description"] == "Renamed"
    assert data["jetstream_domain"] == "hub"
    assert cli.run("context", "add", "fromenv", env={"NATS_URL": "nats://env:4222"}).returncode == 0
    assert json.loads((cli.context_dir / "fromenv.json").read_text())["url"] == "nats://env:4222"


def test_user_without_password_is_stored_as_token_and_mixed_credentials_refused(
    cli: NatsCli,
) -> None:
    assert cli.run("context", "add", "tok", "--user", "s3cret").returncode == 0
    data = json.loads((cli.context_dir / "tok.json").read_text())
    assert (data["user"], data["token"]) == ("", "s3cret")
    creds = cli.home / "x.creds"
    creds.write_text("x")
    mixed = cli.run(
        "context", "add", "mixed", "--user", "a", "--password", "b", "--creds", str(creds)
    )
    assert mixed.returncode == 1
    assert (
        mixed.stderr
        == "nats: error: too many types of credentials. Choose only one from 'user/token', 'creds', 'nkey', 'nsc'\n"
    )
    assert not (cli.context_dir / "mixed.json").exists()


def test_xdg_config_home_is_honoured_and_home_is_the_fallback(cli: NatsCli) -> None:
    assert cli.run("context", "add", "viaxdg").returncode == 0
    assert (cli.config_dir / "nats" / "context" / "viaxdg.json").exists()
    assert cli.run("context", "add", "viahome", env={"XDG_CONFIG_HOME": ""}).returncode == 0
    assert (cli.home / ".config" / "nats" / "context" / "viahome.json").exists()


def test_select_unselect_and_previous(cli: NatsCli) -> None:
    install_natscli_contexts(cli)
    selection = cli.config_dir / "nats" / "context.txt"
    selected = cli.run("context", "select", "local")
    assert selected.returncode == 0
    assert selected.stdout.startswith('NATS Configuration Context "local"')
    assert selection.read_text() == "local"
    assert (cli.config_dir / "nats" / "previous-context.txt").read_text() == "prod"
    assert cli.run("context", "previous").returncode == 0
    assert selection.read_text() == "prod"
    assert cli.run("context", "unselect").stdout == 'Unselected the "prod" context\n'
    assert not selection.exists()
    assert cli.run("context", "unselect").stdout == "No context currently selected\n"
    unknown = cli.run("context", "select", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr == 'nats: error: context not found: "nope"\n'


def test_remove_refuses_the_selected_context_unless_forced(cli: NatsCli) -> None:
    install_natscli_contexts(cli)
    refused = cli.run("context", "rm", "prod")
    assert refused.returncode == 1
    assert (
        refused.stderr
        == "nats: error: cannot remove the selected context, select another one or use the unselect command\n"
    )
    forced = cli.run("context", "rm", "prod", "-f")
    assert forced.returncode == 0 and forced.stdout == ""
    assert not (cli.context_dir / "prod.json").exists()
    assert not (cli.config_dir / "nats" / "context.txt").exists()


def test_prompts_fail_without_a_terminal(cli: NatsCli) -> None:
    install_natscli_contexts(cli)
    confirm = cli.run("context", "rm", "local")
    assert confirm.returncode == 1
    assert (
        confirm.stderr
        == "nats: error: could not obtain confirmation: cannot ask for confirmation without a terminal\n"
    )
    assert (cli.context_dir / "local.json").exists()
    picker = cli.run("context", "select")
    assert picker.returncode == 1
    assert picker.stderr == "nats: error: cannot prompt for user input without a terminal\n"


def spawn_on_terminal(cli: NatsCli, *args: str) -> pexpect.spawn:
    env = cli.environment({"TERM": "xterm"})
    return pexpect.spawn(
        sys.executable,
        ["-m", "pynats.cli", *args],
        env=env,
        cwd=str(cli.home),
        encoding="utf-8",
        timeout=10,
        dimensions=(24, 100),
    )


def test_remove_asks_for_confirmation_on_a_terminal(cli: NatsCli) -> None:
    install_natscli_contexts(cli)
    child = spawn_on_terminal(cli, "context", "rm", "local")
    child.expect_exact('? Really delete context "local" (y/N)')
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert (cli.context_dir / "local.json").exists()

    child = spawn_on_terminal(cli, "context", "rm", "local")
    child.expect_exact("(y/N)")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert not (cli.context_dir / "local.json").exists()


def test_select_without_a_name_offers_a_picker_on_a_terminal(cli: NatsCli) -> None:
    install_natscli_contexts(cli, selected="local")
    child = spawn_on_terminal(cli, "context", "select")
    child.expect_exact("? Select a Context")
    child.expect_exact("> local")
    child.send("\x1b[B")  # arrow down to `prod`
    child.expect_exact("> prod")
    child.send("\r")
    child.expect_exact('NATS Configuration Context "prod"')
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert (cli.config_dir / "nats" / "context.txt").read_text() == "prod"


def test_prompt_shows_the_active_context_name(cli: NatsCli) -> None:
    install_natscli_contexts(cli, selected="local")
    (cli.context_dir / "spare.json").write_text('{"url": "nats://127.0.0.1:4222"}')
    child = spawn_on_terminal(cli, "context", "rm", "spare", "--context", "prod")
    child.expect_exact('[prod] ? Really delete context "spare" (y/N)')
    child.sendline("n")
    child.expect(pexpect.EOF)


def test_edit_opens_the_editor_and_stores_the_result(cli: NatsCli) -> None:
    install_natscli_contexts(cli)
    editor = cli.home / "editor.py"
    editor.write_text(
        "import sys, re\n"
        "path = sys.argv[1]\n"
        "text = open(path).read()\n"
        "open(path, 'w').write(re.sub(r'(?m)^description: .*$', 'description: \"Edited in editor\"', text))\n"
    )
    result = cli.run("context", "edit", "local", env={"EDITOR": f"{sys.executable} {editor}"})
    assert result.returncode == 0, result
    assert "  Description: Edited in editor\n" in result.stdout
    data = json.loads((cli.context_dir / "local.json").read_text())
    assert data["description"] == "Edited in editor"
    assert list(data) == CONTEXT_KEYS
    no_editor = cli.run("context", "edit", "local", env={"EDITOR": None})
    assert (
        no_editor.stderr == "nats: error: set EDITOR environment variable to your chosen editor\n"
    )
    unknown = cli.run("context", "edit", "nope", env={"EDITOR": "true"})
    assert unknown.stderr == 'nats: error: unknown context "nope"\n'


def test_context_commands_work_when_the_selection_is_stale(cli: NatsCli) -> None:
    install_natscli_contexts(cli, selected="deleted-meanwhile")
    assert cli.run("context", "select", "local").returncode == 0
    assert os.path.exists(cli.config_dir / "nats" / "context.txt")
