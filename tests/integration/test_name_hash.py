"""nats-server's name hashes (server/name_hash.py): the banner's JetStream `Node:` line is
the Go server's for the same server name, and so are the gateway and MQTT hashes."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.servers import start_server

from pynats.server.name_hash import name_hash


def test_known_hashes() -> None:
    # as nats-server 2.15.1 prints and sends them
    assert name_hash("s1") == "k2My6qdB"  # banner `Node:` of server_name s1
    assert name_hash("A", 6) == "NUmM6c"  # `_GR_.NUmM6c.` for cluster A


@pytest.mark.parametrize("name", ["s1", "hub-east-1"])
def test_the_banner_names_the_node_as_nats_server_does(tmp_path: Path, name: str) -> None:
    nodes = []
    for oracle in (True, False):
        store = tmp_path / ("go" if oracle else "ours")
        srv = start_server(["-n", name, "-js", "-sd", str(store)], oracle=oracle)
        srv.stop()
        nodes.append(
            [line.split("Node:", 1)[1].strip() for line in srv.log_lines if "Node:" in line]
        )
    assert nodes[0] == nodes[1] == [name_hash(name)]
