"""`nats cheat`: examples for every noun, in the `cheat` tool's format."""

from __future__ import annotations

from tests.cli.conftest import NatsCli

NOUNS = {
    "publish": "nats pub ",
    "subscribe": "nats sub ",
    "request": "nats request ",
    "reply": "nats reply ",
    "bench": "nats bench ",
    "stream": "nats stream ",
    "consumer": "nats consumer ",
    "kv": "nats kv ",
    "object": "nats object ",
    "server": "nats server ",
    "account": "nats account ",
    "context": "nats context ",
}


def test_cheat_without_a_label_lists_the_sheets(cli: NatsCli) -> None:
    result = cli.run("cheat")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[:2] == ["Available Cheats:", ""]
    labels = [line.removeprefix("    ") for line in lines[2:]]
    assert all(line.startswith("    ") for line in lines[2:])
    assert labels == sorted(labels)
    assert set(NOUNS) <= set(labels)
    assert cli.run("cheat", "no-such-label").stdout == result.stdout
    assert cli.run("cheat", "--list").stdout == result.stdout


def test_every_noun_has_a_sheet_of_commented_examples(cli: NatsCli) -> None:
    for label, command in NOUNS.items():
        sheet = cli.run("cheat", label).stdout
        assert command in sheet, label
        blocks = sheet.strip().split("\n\n")
        for block in blocks:
            comment, *examples = block.split("\n")
            assert comment.startswith("# "), (label, block)
            assert examples and all(e.strip() and not e.startswith("#") for e in examples), (
                label,
                block,
            )


def test_short_noun_names_find_their_sheet(cli: NatsCli) -> None:
    assert cli.run("cheat", "pub").stdout == cli.run("cheat", "publish").stdout
    assert cli.run("cheat", "obj").stdout == cli.run("cheat", "object").stdout


def test_cheat_is_hidden_from_the_help(cli: NatsCli) -> None:
    assert "cheat" not in cli.run("--help").stdout.split("Commands:")[1].split("Flags:")[0]


def test_save_writes_one_file_per_sheet_with_front_matter(cli: NatsCli) -> None:
    target = cli.home / "cheats"
    result = cli.run("cheat", "--save", str(target))
    assert result.returncode == 0
    assert f"Saved cheat to {target / 'publish'}\n" in result.stdout
    saved = (target / "publish").read_text()
    assert saved.startswith("---\ntags: [nats]\n---\n\n# ")
    assert saved == f"---\ntags: [nats]\n---\n\n{cli.run('cheat', 'publish').stdout}"
