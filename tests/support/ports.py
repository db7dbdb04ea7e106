"""Ports for servers whose configs must name their ports before they start (clusters, leafs).

A port found free by binding port 0 comes from the kernel's ephemeral range, which is also
where every outgoing connection takes its source port: between the check and the server's
bind, another test's connection (or another pytest-xdist worker) may take it. These ports come
from below the ephemeral range instead (nothing takes them unasked), each worker from its own
slice, handed out in turn and checked free by a bind.
"""

from __future__ import annotations

import os
import socket

_LOW, _HIGH = 20000, 32000  # below Linux's default ephemeral range (32768-60999)


def _slice() -> tuple[int, int]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    count = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1), 1)
    width = (_HIGH - _LOW) // count
    start = _LOW + (index % count) * width
    return start, width


_start, _width = _slice()
_next = _start + (os.getpid() * 7919) % _width  # runs after each other do not reuse at once


def free_port() -> int:
    """A port of this worker's slice that nothing listens on now."""
    global _next
    for _ in range(_width):
        port = _start + (_next - _start) % _width
        _next += 1
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in this worker's slice")
