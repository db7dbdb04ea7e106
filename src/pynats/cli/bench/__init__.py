"""`nats bench`: the verbs are in commands.py, the helpers beside it."""

from pynats.cli.bench.commands import register

__all__ = ["register"]
