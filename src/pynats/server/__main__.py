"""`python -m pynats.server`: the same entry point as the `nats-server` command."""

import sys

from pynats.app import main

sys.exit(main())
