"""How a cluster forms: full mesh, gossip, pooled routes, names, auth, and refusals — with Go
servers on either side of every route."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from tests.integration.cluster.conftest import TOPOLOGIES
from tests.support.cluster import Cluster, Member


def route_connections(member: Member) -> list[dict[str, object]]:
    return list(member.http_json("/routez")["routes"])


@pytest.mark.parametrize("kinds", TOPOLOGIES)
def test_every_server_routes_to_every_other_with_a_pool_and_the_system_account(
    cluster_factory: Callable[..., Cluster], kinds: list[str]
) -> None:
    cluster = cluster_factory(kinds)
    cluster.wait_formed()

    def pools_complete() -> bool:
        for member in cluster:
            routes = route_connections(member)
            for other in cluster:
                # Pool of 3 plus the pinned $SYS connection, to every peer, as Go 2.10+ does.
                if other is not member and sum(r["remote_name"] == other.name for r in routes) != 4:
                    return False
        return True

    deadline = time.monotonic() + 10
    while not pools_complete():
        assert time.monotonic() < deadline, [route_connections(m) for m in cluster]
        time.sleep(0.05)
    for member in cluster:
        assert member.http_json("/varz")["remotes"] == len(cluster.members) - 1


@pytest.mark.parametrize("kinds", TOPOLOGIES)
def test_a_cluster_forms_from_a_single_seed_route_by_gossip(
    cluster_factory: Callable[..., Cluster], kinds: list[str]
) -> None:
    cluster = cluster_factory(kinds, start=False)
    seed = cluster[0].route_url
    cluster.route_urls = lambda m: [] if m is cluster[0] else [seed]
    for m in cluster:
        cluster.start(m)
    cluster.wait_formed()


def test_servers_with_pooling_off_form_one_connection_per_pair(
    cluster_factory: Callable[..., Cluster],
) -> None:
    cluster = cluster_factory(["go", "py"], cluster_extra=lambda m: "  pool_size: -1")
    cluster.wait_formed()
    for member in cluster:
        assert len(route_connections(member)) == 1


def test_pooling_on_one_side_only_falls_back_to_one_connection(
    cluster_factory: Callable[..., Cluster],
) -> None:
    cluster = cluster_factory(
        ["go", "py"], cluster_extra=lambda m: "  pool_size: -1" if m.kind == "go" else ""
    )
    cluster.wait_formed()
    for member in cluster:
        assert len(route_connections(member)) == 1


@pytest.mark.parametrize("ours_first", [True, False])
def test_a_different_cluster_name_is_refused_both_ways(
    cluster_factory: Callable[..., Cluster], ours_first: bool
) -> None:
    kinds = ["py", "go"] if ours_first else ["go", "py"]
    cluster = cluster_factory(kinds, start=False)
    cluster.name = "alpha"
    cluster.start(cluster[0])
    cluster.name = "beta"
    cluster.start(cluster[1])
    for member in cluster:
        assert member.server is not None
        member.server.wait_for_log(r"Rejecting connection, cluster name", timeout=6)
    assert all(not route_connections(m) for m in cluster)


def test_routes_with_the_cluster_credentials_join_and_others_are_refused(
    cluster_factory: Callable[..., Cluster],
) -> None:
    auth = "  authorization { user: ru, password: rp, timeout: 2 }"
    cluster = cluster_factory(["go", "py", "py"], start=False, cluster_extra=lambda m: auth)
    good = [x.route_url.replace("//", "//ru:rp@") for x in cluster]
    cluster.route_urls = lambda m: good
    for m in cluster:
        cluster.start(m)
    cluster.wait_formed()
    bad = [x.route_url.replace("//", "//ru:wrong@") for x in cluster]
    intruders = cluster_factory(["py", "go"], start=False, route_urls=lambda m: bad)
    intruders.name = cluster.name
    for m in intruders:
        intruders.start(m)
    for m in intruders:
        assert m.server is not None
        for x in cluster:
            assert m.name not in x.routed_names()
    for x in cluster:
        assert x.server is not None
        x.server.wait_for_log("authentication error", timeout=6)


def test_a_client_on_the_route_port_is_refused_as_go_refuses_it(
    cluster_factory: Callable[..., Cluster],
) -> None:
    cluster = cluster_factory(["go", "py"], route_urls=lambda m: [])
    answers = []
    for member in cluster:
        with socket.create_connection(("127.0.0.1", member.cluster_port), timeout=3) as s:
            s.recv(4096)  # the route INFO
            s.sendall(b'CONNECT {"lang":"python","verbose":false}\r\n')
            data = b""
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            answers.append(data)
    assert answers[0] == answers[1] == b"-ERR 'attempted to connect to route port'\r\n"


def test_a_route_that_never_says_connect_is_closed_after_the_auth_timeout(
    cluster_factory: Callable[..., Cluster],
) -> None:
    auth = "  authorization { user: ru, password: rp, timeout: 0.5 }"
    cluster = cluster_factory(["go", "py"], route_urls=lambda m: [], cluster_extra=lambda m: auth)
    for member in cluster:
        with socket.create_connection(("127.0.0.1", member.cluster_port), timeout=3) as s:
            info = s.recv(4096)
            assert b'"auth_required":true' in info
            started = time.monotonic()
            rest = b""
            while chunk := s.recv(4096):
                rest += chunk
            assert b"Authentication Timeout" in rest
            assert time.monotonic() - started < 2.5


def test_two_servers_with_the_same_name_do_not_route(
    cluster_factory: Callable[..., Cluster],
) -> None:
    cluster = cluster_factory(["py", "go"], start=False)
    for m in cluster:
        m.name = "SAME"
    for m in cluster:
        cluster.start(m)
    for m in cluster:
        assert m.server is not None
    log = "\n".join(m.server.log_text() for m in cluster if m.server)
    deadline = time.monotonic() + 6
    while "duplicate name" not in log and time.monotonic() < deadline:
        time.sleep(0.05)
        log = "\n".join(m.server.log_text() for m in cluster if m.server)
    assert 'Remote server has a duplicate name: "SAME"' in log
    assert all(not route_connections(m) for m in cluster)


def test_a_go_server_that_wants_compression_routes_with_us_uncompressed(
    cluster_factory: Callable[..., Cluster],
) -> None:
    """We answer compression as "not supported": a Go peer set to s2 falls back to plain."""
    cluster = cluster_factory(
        ["go", "py"], cluster_extra=lambda m: "  compression: s2_best" if m.kind == "go" else ""
    )
    cluster.wait_formed()
    go_view = route_connections(cluster[0])
    assert go_view and all(r["compression"] == "not supported" for r in go_view)
