"""pynats: the NATS server with JetStream, and the `nats` command-line tool, in Python."""

__version__ = "0.1.0"
