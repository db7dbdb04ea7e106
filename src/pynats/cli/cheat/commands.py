"""`nats cheat [LABEL]`: quick examples for every noun (hidden from help, as in natscli).

nats cheat              `Available Cheats:` and the labels, one per line
nats cheat publish      the sheet for publishing
nats cheat --save DIR   one file per sheet, readable by the `cheat` tool
"""

from __future__ import annotations

from pathlib import Path

import click

from pynats.cli.cheat.sheets import ALIASES, CHEATS
from pynats.cli.ui.command import NatsGroup
from pynats.cli.ui.output import out


def register(root: NatsGroup) -> None:
    @root.command("cheat", hidden=True, loads_context=False, help="Shows cheats for nats")
    @click.argument("label", required=False, default="", help="The cheat to show")
    @click.option("--list", "list_only", is_flag=True, help="List available cheats")
    @click.option(
        "--save", default="", metavar="DIRECTORY", help="Saves the cheats to the given directory"
    )
    def cheat(label: str, list_only: bool, save: str) -> None:
        if save:
            save_cheats(Path(save))
            return
        sheet = CHEATS.get(ALIASES.get(label, label))
        if list_only or sheet is None:
            list_cheats()
            return
        out(sheet)


def list_cheats() -> None:
    out("Available Cheats:")
    out()
    for label in sorted(CHEATS):
        out(f"    {label}")


def save_cheats(directory: Path) -> None:
    """Write each sheet with the `cheat` tool's front matter into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for label in sorted(CHEATS):
        target = directory / label
        target.write_text(f"---\ntags: [nats]\n---\n\n{CHEATS[label]}\n")
        out(f"Saved cheat to {target}")
