"""Start real clusters on 127.0.0.1: any mix of our server (`py`) and the Go server (`go`).

Every member gets its own config file, free client/route/monitoring ports and a temp dir. By
default each member lists every member's route URL (as operators write full-mesh configs); with
`seed_only=True` members list only the first one and the mesh forms by gossip.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.ports import free_port
from tests.support.servers import RunningServer, start_server


@dataclass
class Member:
    kind: str  # "py" or "go"
    name: str
    client_port: int
    cluster_port: int
    http_port: int
    conf: Path
    server: RunningServer | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def route_url(self) -> str:
        return f"nats-route://127.0.0.1:{self.cluster_port}"

    def http_json(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as r:
            return json.loads(r.read())

    def has_remote_interest(self, subject: str) -> bool:
        """This member knows of interest in `subject` from another server: its /routez lists
        it (a queue subscription as `subject group`)."""
        routez = self.http_json("/routez?subs=1")
        return any(
            entry == subject or entry.startswith(subject + " ")
            for route in routez["routes"]
            for entry in route.get("subscriptions_list") or []
        )

    def routed_names(self) -> set[str]:
        """Names of the servers this member has a registered route to."""
        try:
            routez = self.http_json("/routez")
        except OSError:
            return set()
        return {r.get("remote_name", "") for r in routez.get("routes") or []}

    @property
    def is_running(self) -> bool:
        return self.server is not None and self.server.proc.poll() is None


@dataclass
class Cluster:
    members: list[Member]
    tmp: Path
    name: str
    extra: Callable[[Member], str] | None = None
    route_urls: Callable[[Member], list[str]] | None = None
    cluster_extra: Callable[[Member], str] | None = None
    started: list[RunningServer] = field(default_factory=list)

    def __iter__(self) -> Iterator[Member]:
        return iter(self.members)

    def __getitem__(self, i: int) -> Member:
        return self.members[i]

    def write_conf(self, m: Member) -> None:
        routes = self.route_urls(m) if self.route_urls else [x.route_url for x in self.members]
        route_list = ", ".join(routes)
        extra = self.extra(m) if self.extra else ""
        inside = self.cluster_extra(m) if self.cluster_extra else ""
        m.conf.write_text(
            f"server_name: {m.name}\n"
            f"listen: 127.0.0.1:{m.client_port}\n"
            f"http: 127.0.0.1:{m.http_port}\n"
            f"cluster {{\n  name: {self.name}\n  listen: 127.0.0.1:{m.cluster_port}\n"
            f"  routes: [{route_list}]\n{inside}\n}}\n{extra}\n"
        )

    def start(self, m: Member) -> Member:
        self.write_conf(m)
        m.server = start_server(
            ["-c", str(m.conf)], oracle=m.kind == "go", port=m.client_port, http_port=m.http_port
        )
        self.started.append(m.server)
        return m

    def wait_formed(self, timeout: float = 15.0, members: list[Member] | None = None) -> None:
        """Until every running member has a route to every other running member."""
        live = [m for m in (members or self.members) if m.is_running]
        want = {m.name for m in live}
        deadline = time.monotonic() + timeout
        while True:
            missing = {m.name: want - {m.name} - m.routed_names() for m in live}
            if not any(missing.values()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"cluster not formed, missing routes: {missing}\n{self.logs(live)}"
                )
            time.sleep(0.05)

    def logs(self, members: list[Member] | None = None) -> str:
        """Every member's log so far, each under its name: for failure messages."""
        return "\n\n".join(
            f"== {m.name} ({m.kind})\n{m.server.log_text() if m.server else ''}"
            for m in members or self.members
        )

    def kill(self, m: Member) -> None:
        """kill -9: no goodbye to clients or routes."""
        assert m.server is not None
        m.server.kill()

    def restart(self, m: Member) -> Member:
        """Start a stopped member again on the same ports."""
        return self.start(m)

    def stop_all(self) -> None:
        for srv in self.started:
            srv.stop()


def make_cluster(
    kinds: list[str],
    tmp: Path,
    *,
    name: str = "c1",
    extra: Callable[[Member], str] | None = None,
    route_urls: Callable[[Member], list[str]] | None = None,
    cluster_extra: Callable[[Member], str] | None = None,
    start: bool = True,
) -> Cluster:
    """Members named `PY-1`, `GO-2`, ... (position in `kinds`, 1-based)."""
    members = []
    for i, kind in enumerate(kinds, 1):
        name_i = f"{kind.upper()}-{i}"
        d = tmp / name_i
        d.mkdir(parents=True, exist_ok=True)
        members.append(
            Member(kind, name_i, free_port(), free_port(), free_port(), d / "server.conf")
        )
    cluster = Cluster(members, tmp, name, extra, route_urls, cluster_extra)
    if start:
        for m in members:
            cluster.start(m)
    return cluster
