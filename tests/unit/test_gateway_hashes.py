"""The gateway reply prefix's hashes, as nats-server computes them (values seen on the wire
from nats-server 2.15.1: `_GR_.NUmM6c.` for cluster A, `_GR_.b2oh2L.` for cluster B)."""

from __future__ import annotations

from pynats.server.gateways import gw_hash


def test_cluster_hashes_match_nats_server() -> None:
    assert gw_hash("A") == b"NUmM6c"
    assert gw_hash("B") == b"b2oh2L"


def test_hashes_are_six_base62_characters() -> None:
    for name in ("", "a cluster", "NBDRU4VFC27JXJ7HMATDY2GWNIKLHUT6QQMPMFABJVF4ARNIZNPFK7PN"):
        h = gw_hash(name)
        assert len(h) == 6 and h.isalnum()
