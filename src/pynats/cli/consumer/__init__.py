"""`nats consumer`: the verbs are in commands.py, the helpers beside it."""

from pynats.cli.consumer.commands import register

__all__ = ["register"]
