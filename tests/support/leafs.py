"""Start a hub and a leaf (any mix of our server and the Go server) on 127.0.0.1.

The hub listens for leaf connections (`leafnodes { listen }`); the leaf dials it
(`leafnodes { remotes: [...] }`). Each server gets its own config file, free ports, a monitoring
port and a temp dir.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client

from tests.support.ports import free_port
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

# (hub kind, leaf kind): a pynats leaf on a Go hub, a Go leaf on a pynats hub, both pynats
MIXES = [("go", "py"), ("py", "go"), ("py", "py")]


def mix_id(mix: tuple[str, str]) -> str:
    return f"{mix[1]}-leaf-on-{mix[0]}-hub"


@dataclass
class Node:
    kind: str  # "py" or "go"
    name: str
    client_port: int
    http_port: int
    leaf_port: int
    conf: Path
    extra: str = ""
    server: RunningServer | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    def http_json(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as r:
            return json.loads(r.read())

    def leaf_names(self) -> list[str]:
        try:
            return [leaf["name"] for leaf in self.http_json("/leafz")["leafs"]]
        except OSError:
            return []

    def leaf_interest(self) -> set[str]:
        """Subjects the other side of this node's leaf connections told it about."""
        out: set[str] = set()
        for leaf in self.http_json("/leafz?subs=1")["leafs"]:
            out.update(leaf.get("subscriptions_list") or [])
        return out


@dataclass
class LeafPair:
    hub: Node
    leaf: Node
    started: list[RunningServer] = field(default_factory=list)

    def start(self, node: Node) -> Node:
        node.conf.write_text(
            f"server_name: {node.name}\nlisten: 127.0.0.1:{node.client_port}\n"
            f"http: 127.0.0.1:{node.http_port}\n{node.extra}\n"
        )
        node.server = start_server(
            ["-c", str(node.conf)],
            oracle=node.kind == "go",
            port=node.client_port,
            http_port=node.http_port,
        )
        self.started.append(node.server)
        return node

    def wait_connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not (self.hub.leaf_names() and self.leaf.leaf_names()):
            if time.monotonic() > deadline:
                logs = "\n\n".join(
                    f"== {n.name}\n{n.server.log_text() if n.server else ''}"
                    for n in (self.hub, self.leaf)
                )
                raise TimeoutError(f"leaf connection not made\n{logs}")
            time.sleep(0.05)

    def stop_all(self) -> None:
        for srv in self.started:
            srv.stop()


def make_node(kind: str, name: str, tmp: Path) -> Node:
    d = tmp / name
    d.mkdir(parents=True, exist_ok=True)
    return Node(kind, name, free_port(), free_port(), free_port(), d / "server.conf")


def make_leaf_pair(
    hub_kind: str,
    leaf_kind: str,
    tmp: Path,
    *,
    hub_block: Callable[[Node], str] | None = None,
    remote: Callable[[Node], str] | None = None,
    hub_extra: str = "",
    leaf_extra: str = "",
    start: bool = True,
) -> LeafPair:
    """`hub_block` writes the inside of the hub's `leafnodes {}` (default: listen only),
    `remote` one remote entry of the leaf (default: the hub's URL)."""
    hub = make_node(hub_kind, f"HUB-{hub_kind.upper()}", tmp)
    leaf = make_node(leaf_kind, f"LEAF-{leaf_kind.upper()}", tmp)
    inside = hub_block(hub) if hub_block else ""
    hub.extra = f"leafnodes {{\n  listen: 127.0.0.1:{hub.leaf_port}\n{inside}\n}}\n{hub_extra}"
    entry = remote(hub) if remote else f'{{ url: "nats-leaf://127.0.0.1:{hub.leaf_port}" }}'
    leaf.extra = f"leafnodes {{\n  remotes: [ {entry} ]\n}}\n{leaf_extra}"
    pair = LeafPair(hub, leaf)
    if start:
        pair.start(hub)
        pair.start(leaf)
    return pair


async def connect(node: Node) -> Client:
    """A nats-py client of `node` that does not reconnect (a test sees every break)."""
    return await nats.connect(node.url, allow_reconnect=False, max_reconnect_attempts=1)


async def interest_at(node: Node, subject: str) -> None:
    """Wait until `node` heard of interest in `subject` over its leaf connections."""
    await wait_until(lambda: subject in node.leaf_interest(), timeout=5, what=subject)
