"""`nats server`: the verbs are in commands.py, the helpers beside it."""

from pynats.cli.server.commands import register

__all__ = ["register"]
