"""`nats kv`: the verbs are in commands.py, the helpers beside it."""

from pynats.cli.kv.commands import register

__all__ = ["register"]
