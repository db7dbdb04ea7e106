"""`nats cheat`: the verbs are in commands.py, the helpers beside it."""

from pynats.cli.cheat.commands import register

__all__ = ["register"]
