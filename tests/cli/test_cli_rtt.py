"""`nats rtt`: round trips to each address of the server list."""

from __future__ import annotations

import json
import re

from tests.cli.conftest import NatsCli, closed_port
from tests.support.servers import RunningServer


def test_rtt_reports_the_average_per_address(nats: NatsCli, core_server: RunningServer) -> None:
    result = nats.run("rtt", "3")
    assert result.returncode == 0, result
    address = core_server.url if "://" in core_server.url else f"nats://{core_server.url}"
    assert re.fullmatch(
        rf"{re.escape(address)}:\n\n   {re.escape(address)}: [0-9.]+(µs|ms|s)\n\n", result.stdout
    ), result.stdout


def test_rtt_json_and_a_host_name_resolved_to_its_addresses(
    cli: NatsCli, core_server: RunningServer
) -> None:
    port = core_server.url.rsplit(":", 1)[1]
    result = cli.run("rtt", "2", "--json", "-s", f"localhost:{port}")
    assert result.returncode == 0, result
    (target,) = json.loads(result.stdout)
    assert target["url"] == f"nats://localhost:{port}"
    ok = [r for r in target["results"] if r["rtt"] > 0]
    assert any(r["address"] == f"nats://127.0.0.1:{port}" for r in ok), target
    assert all(set(r) == {"time", "address", "rtt", "url"} for r in target["results"])


def test_rtt_marks_an_unreachable_server_failed(cli: NatsCli, core_server: RunningServer) -> None:
    dead = f"nats://127.0.0.1:{closed_port()}"
    result = cli.run("rtt", "1", "-s", f"{dead},{core_server.url}")
    assert result.returncode == 0, result
    assert f"   {dead}: failed\n" in result.stdout
    assert re.search(
        rf"\d\d:\d\d:\d\d Failed to compute rtt for {re.escape(dead)}: ", result.stderr
    )
