"""Leaf remotes added and removed by a reload (SIGHUP) take effect at once."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.leafs import make_leaf_pair


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.parametrize("hub_kind", ["go", "py"])
def test_a_reload_removes_a_remote_and_a_later_one_adds_it_back(
    tmp_path: Path, hub_kind: str
) -> None:
    pair = make_leaf_pair(hub_kind, "py", tmp_path)
    try:
        pair.wait_connected()
        leaf = pair.leaf
        assert leaf.server is not None
        with_remote = leaf.extra
        leaf.extra = ""
        leaf.conf.write_text(
            f"server_name: {leaf.name}\nlisten: 127.0.0.1:{leaf.client_port}\n"
            f"http: 127.0.0.1:{leaf.http_port}\n"
        )
        leaf.server.signal(signal.SIGHUP)
        wait_for(lambda: not leaf.leaf_names() and not pair.hub.leaf_names())
        leaf.conf.write_text(
            f"server_name: {leaf.name}\nlisten: 127.0.0.1:{leaf.client_port}\n"
            f"http: 127.0.0.1:{leaf.http_port}\n{with_remote}\n"
        )
        leaf.server.signal(signal.SIGHUP)
        wait_for(lambda: leaf.leaf_names() == [pair.hub.name])
    finally:
        pair.stop_all()
