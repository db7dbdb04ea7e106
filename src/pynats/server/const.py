"""Versions, limits and defaults, with their units in their names (as nats-server keeps them)."""

from __future__ import annotations

import platform
from typing import Final

# The nats-server feature level we implement. Clients and test harnesses read `version` from
# INFO and /varz and switch features on by it; pynats' own version is logged and in /varz.
NATS_FEATURE_VERSION = "2.14.0"
PROTO = 1
# JetStream API level (ADR-44): 4 = counters, atomic and fast batches, schedules, consumer
# reset, durable sourcing (nats-server 2.14)
JS_API_LEVEL = 4
GO_VERSION_FIELD = f"python{platform.python_version()}"
GIT_COMMIT = ""

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 4222
RANDOM_PORT = -1

MAX_PAYLOAD_SIZE = 1024 * 1024
MAX_PAYLOAD_WARN_SIZE = 8 * 1024 * 1024
MAX_CONTROL_LINE_SIZE = 4096
MAX_PENDING_SIZE = 64 * 1024 * 1024
MAX_CONNECTIONS = 64 * 1024
MAX_CLOSED_CLIENTS = 10_000

PING_INTERVAL_S = 120.0
PING_MAX_OUTSTANDING = 2
FIRST_PING_INTERVAL_S = 2.0
AUTH_TIMEOUT_S = 2.0
TLS_TIMEOUT_S = 2.0
WRITE_DEADLINE_S = 10.0
LAME_DUCK_DURATION_S = 120.0
LAME_DUCK_GRACE_PERIOD_S = 10.0

# Failed dials of a route or leaf remote logged as errors: the first, then every Nth (the rest
# at debug level); before the first connection and once it was lost.
CONNECT_ERROR_REPORTS = 3600
RECONNECT_ERROR_REPORTS = 1

# Outbound flow control: above HIGH the socket is "blocked" (the write deadline runs and
# producers to it are stalled briefly); the connection is cut as a slow consumer past max_pending.
WRITE_BUFFER_HIGH_BYTES = 4 * 1024 * 1024
WRITE_BUFFER_LOW_BYTES = 1024 * 1024
PRODUCER_STALL_MAX_S = 0.010

# How long the event loop of a `nats-server` process keeps polling after a read that came
# this soon after the one before it (busy_poll.py).
BUSY_POLL_WINDOW_S = 200e-6

DEFAULT_CONN_LIST_SIZE = 1024
GLOBAL_ACCOUNT = "$G"
SYSTEM_ACCOUNT = "$SYS"

# nats-server's connection kinds (what /connz, /routez and the logs call them).
CLIENT: Final = 0
ROUTER: Final = 1
GATEWAY: Final = 2
SYSTEM: Final = 3
LEAF: Final = 4
JETSTREAM: Final = 5
ACCOUNT: Final = 6
