"""Leaf tests reuse the cluster fixtures (a leaf on a clustered hub)."""

from tests.integration.cluster.conftest import cluster_factory

__all__ = ["cluster_factory"]
