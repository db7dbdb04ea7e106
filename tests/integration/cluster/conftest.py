"""Fixtures for tests of real clusters: mixes of our server and the Go server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.cluster import Cluster, make_cluster

# The mixes the issue asks for: all ours, two Go + one of ours, one Go + two of ours.
TOPOLOGIES = [
    pytest.param(["py", "py", "py"], id="py-py-py"),
    pytest.param(["go", "go", "py"], id="go-go-py"),
    pytest.param(["go", "py", "py"], id="go-py-py"),
]


@pytest.fixture
def cluster_factory(tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Start clusters for one test; every server is stopped afterwards."""
    made: list[Cluster] = []
    counter = [0]

    def make(kinds: list[str], **kwargs: Any) -> Cluster:
        counter[0] += 1
        cluster = make_cluster(kinds, tmp_path / f"c{counter[0]}", **kwargs)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop_all()
