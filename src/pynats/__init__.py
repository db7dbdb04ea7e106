"""pynats: the NATS server with JetStream, and the `nats` command-line tool, in Python."""

from pynats._compiled import choose

__version__ = "0.1.0"

choose()  # compiled hot modules, or their Python source (PYNATS_PURE=1)
