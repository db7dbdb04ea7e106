"""`python -m pynats.cli`: the same as the `nats` console script."""

from pynats.cli.main import main

main()
