"""`nats server mappings` (alias `mapping`): try a subject mapping locally, with the same
transform engine the server uses (pynats.server.subject_transform).

    nats server mapping SOURCE DEST SUBJECT   the mapped subject and a blank line
    nats server mapping SOURCE DEST           asks for subjects until an empty one (terminal)

An invalid source or destination is natscli's error line (exit 1); a subject the source does
not match prints `Error: no matching transforms available`, then an empty result line.
"""

from __future__ import annotations

import click

from pynats.cli.ui.errors import CliError
from pynats.cli.ui.output import out
from pynats.cli.ui.prompt import ask
from pynats.server.subject_transform import SubjectTransform, TransformError, compile_transform

NO_MATCH = "no matching transforms available"


def register(server: click.Group) -> None:
    @server.command("mappings", aliases=["mapping"], help="Test subject mapping patterns")
    @click.argument("source", required=False, default="", help="Source subject pattern")
    @click.argument("dest", required=False, default="", help="Destination subject pattern")
    @click.argument("subject", required=False, default="", help="Subject to transform")
    def mappings(source: str, dest: str, subject: str) -> None:
        if not source:
            source = ask("Source subject pattern", required=True)
        if not dest:
            dest = ask("Destination subject pattern", required=True)
        try:
            transform = compile_transform(source, dest)
        except TransformError as exc:
            raise CliError(str(exc)) from None
        if subject:
            show(transform, subject)
            return
        out("Enter subjects to test, empty subject terminates.")
        out()
        out("NOTE: This only tests mappings, it does not add them to the server")
        out()
        while True:
            subject = ask("Subject")
            if not subject:
                break
            show(transform, subject)


def show(transform: SubjectTransform, subject: str) -> None:
    mapped = transform.apply(subject)
    if mapped is None:
        out(f"Error: {NO_MATCH}")
        mapped = ""
    out(mapped)
    out()
