"""`Nats-Request-Info`: a request crossing a service import tells the exporting account who
asked, as nats-server does (getClientInfo): the account and RTT, and with the import's
`share: true` all of the client. Compared with the Go nats-server on the same config file."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats.errors
import pytest
from tests.conftest import connect
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

CONFIG = """
server_name: RI
accounts {
  A {
    users [{user: a, password: a}]
    exports [{service: "svc.>"}, {service: "shr.>"}]
  }
  B {
    users [{user: b, password: b}]
    imports [
      {service: {account: A, subject: "svc.>"}}
      {service: {account: A, subject: "shr.>"}, share: true}
    ]
  }
}
"""
HEADER = "Nats-Request-Info"
SHARED_KEYS = [
    "start",
    "host",
    "id",
    "acc",
    "user",
    "name",
    "lang",
    "ver",
    "rtt",
    "server",
    "kind",
    "client_type",
]


@pytest.fixture(scope="module", params=["pynats", "go"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    path = Path(tmp_path_factory.mktemp(f"ri-{request.param}")) / "server.conf"
    path.write_text(CONFIG)
    srv = start_server(["-c", str(path)], oracle=request.param == "go")
    yield srv
    srv.stop()


async def asked(server: RunningServer, subject: str, headers: dict[str, str] | None) -> Any:
    """The headers the exporter's responder saw for one request of B's."""
    a = await connect(f"nats://a:a@127.0.0.1:{server.port}")
    b = await connect(f"nats://b:b@127.0.0.1:{server.port}", name="requester")
    seen: list[dict[str, str]] = []

    async def answer(msg: Any) -> None:
        seen.append(dict(msg.headers or {}))
        await a.publish(msg.reply, b"ok")

    async def request() -> Any:
        try:
            return await b.request(subject, b"q", timeout=3, headers=headers)
        except nats.errors.NoRespondersError:
            return None  # the Go server, loaded, may not see the new responder at once

    try:
        await a.subscribe(subject, cb=answer)
        await a.flush()
        reply = await wait_until(request, timeout=5, what=f"an answer on {subject}")
        assert reply.data == b"ok"
        assert len(seen) == 1
        return seen[0]
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("forged", [False, True], ids=["plain", "forged-header"])
async def test_a_service_import_names_the_requesters_account(
    server: RunningServer, forged: bool
) -> None:
    headers = {HEADER: '{"acc":"A"}', "X": "1"} if forged else None
    seen = await asked(server, "svc.x", headers)
    info = json.loads(seen[HEADER])
    assert list(info) == ["acc", "rtt"]
    assert info["acc"] == "B"
    assert isinstance(info["rtt"], int)
    if forged:
        assert seen["X"] == "1"


async def test_a_shared_service_import_names_the_whole_requester(server: RunningServer) -> None:
    seen = await asked(server, "shr.x", {"X": "1"})
    info = json.loads(seen[HEADER])
    assert list(info) == SHARED_KEYS
    assert {k: info[k] for k in ("acc", "user", "name", "lang", "server", "kind")} == {
        "acc": "B",
        "user": "b",
        "name": "requester",
        "lang": "python3",
        "server": "RI",
        "kind": "Client",
    }
    assert info["client_type"] == "nats"
    assert info["host"] == "127.0.0.1"
    assert isinstance(info["id"], int) and info["id"] > 0
    assert info["start"].endswith("Z")
    assert list(seen) == ["X", HEADER]
