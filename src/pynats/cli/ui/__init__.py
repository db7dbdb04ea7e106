"""The toolkit every `nats` noun is built with: the command tree, settings, output, values."""
