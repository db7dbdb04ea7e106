"""`nats stream`: the verbs are in commands.py, the helpers beside it."""

from pynats.cli.stream.commands import register

__all__ = ["register"]
