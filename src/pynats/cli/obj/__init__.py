"""`nats obj`: the verbs are in commands.py, the helpers beside it."""

from pynats.cli.obj.commands import register

__all__ = ["register"]
