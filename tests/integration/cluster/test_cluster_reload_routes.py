"""Routes added and removed by a configuration reload (SIGHUP) take effect at once."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

from tests.support.cluster import Cluster


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_reload_dials_an_added_route_and_closes_a_removed_one(
    cluster_factory: Callable[..., Cluster],
) -> None:
    cluster = cluster_factory(["py", "go"], route_urls=lambda m: [])
    ours, go = cluster[0], cluster[1]
    assert ours.server is not None
    assert not ours.routed_names()

    cluster.route_urls = lambda m: [go.route_url] if m is ours else []
    cluster.write_conf(ours)
    ours.server.signal(signal.SIGHUP)
    ours.server.wait_for_log("Reloaded: cluster routes")
    wait_for(lambda: ours.routed_names() == {go.name} and go.routed_names() == {ours.name})

    cluster.route_urls = lambda m: []
    cluster.write_conf(ours)
    ours.server.signal(signal.SIGHUP)
    ours.server.wait_for_log(f"Removed route nats-route://127.0.0.1:{go.cluster_port}")
    # The connections we dialled are closed, and stay closed past the 1 s redial delay.
    wait_for(lambda: not any(r["did_solicit"] for r in ours.http_json("/routez")["routes"]))
    time.sleep(1.5)
    assert not any(r["did_solicit"] for r in ours.http_json("/routez")["routes"])
