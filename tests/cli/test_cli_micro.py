"""`nats micro`: services written with nats-py's `nats.micro`, discovered through $SRV.*."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import NatsCli
from tests.support.servers import RunningServer

SERVICE_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    import nats
    from nats import micro

    async def main(url, name, description):
        nc = await nats.connect(url)

        async def echo(req):
            await req.respond(req.data)

        async def fail(req):
            raise ValueError("it broke")

        svc = await micro.add_service(
            nc, name=name, version="1.2.3", description=description,
            metadata={"team": "blue"},
        )
        group = svc.add_group(name=name)
        await group.add_endpoint(name="echo", handler=echo, metadata={"kind": "echo"})
        await group.add_endpoint(name="fail", handler=fail)
        await nc.flush()
        print(svc.id, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main(*sys.argv[1:]))
    """
)


class Services:
    """nats-py micro services running in their own processes."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, name: str, description: str = "a test service") -> str:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVICE_SCRIPT, self.url, name, description],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        service_id = proc.stdout.readline().strip()
        assert service_id, f"service {name} did not start"
        return service_id

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def table_rows(text: str) -> list[list[str]]:
    """The cells of a rounded table's rows (the title line left out)."""
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines()]
    return [row for row in rows if len(row) > 1]


@pytest.fixture
def services(core_server: RunningServer) -> Iterator[Services]:
    running = Services(core_server.url)
    yield running
    running.stop()


def test_micro_ls_lists_every_instance_sorted_with_repeats_blanked(
    nats: NatsCli, services: Services
) -> None:
    ids = sorted([services.start("calc"), services.start("calc")])
    other = services.start("audit", "keeps records")
    result = nats.run("micro", "ls")
    assert result.returncode == 0, result
    assert "All Micro Services" in result.stdout
    rows = table_rows(result.stdout)
    assert rows[0] == ["Name", "Version", "ID", "Description"]
    assert rows[1:] == [
        ["audit", "1.2.3", other, "keeps records"],
        ["calc", "", ids[0], "a test service"],
        ["", "", ids[1], ""],
    ]
    one = nats.run("service", "ls", "calc", "--json")
    assert one.returncode == 0, one
    docs = json.loads(one.stdout)
    assert [d["id"] for d in docs] == ids
    assert list(docs[0]) == [
        "name",
        "id",
        "version",
        "metadata",
        "type",
        "description",
        "endpoints",
    ]
    assert docs[0]["type"] == "io.nats.micro.v1.info_response"
    assert docs[0]["metadata"] == {"team": "blue"}
    assert [e["subject"] for e in docs[0]["endpoints"]] == ["calc.echo", "calc.fail"]


def test_micro_info_shows_endpoints_and_their_statistics(nats: NatsCli, services: Services) -> None:
    service_id = services.start("shop")
    assert nats.run("request", "shop.echo", "hi", "--raw").stdout == "hi\n"
    nats.run("request", "shop.fail", "x")
    result = nats.run("micro", "info", "shop")
    assert result.returncode == 0, result
    text = result.stdout
    assert text.startswith("Service Information\n\n")
    assert re.search(rf"^ +Service: shop \({service_id}\)$", text, re.M)
    assert re.search(r"^ +Description: a test service$", text, re.M)
    assert re.search(r"^ +Version: 1\.2\.3$", text, re.M)
    assert re.search(r"^ +Metadata: team: blue$", text, re.M)
    assert re.search(r"^ +Subject: shop\.echo$", text, re.M)
    assert "Statistics for 2 Endpoint(s):" in text
    assert "  echo Endpoint Statistics:" in text
    assert re.search(r"^ +Last Error: ValueError\('it broke'\)$", text, re.M)
    as_json = nats.run("micro", "info", "shop", service_id, "--json")
    doc = json.loads(as_json.stdout)
    assert doc["info"]["id"] == service_id
    echo, fail = doc["stats"]["endpoints"]
    assert (echo["name"], echo["num_requests"], echo["num_errors"]) == ("echo", 1, 0)
    assert (fail["num_errors"], fail["last_error"]) == (1, "ValueError('it broke')")
    assert list(doc["stats"]) == [
        "name",
        "id",
        "version",
        "metadata",
        "type",
        "started",
        "endpoints",
    ]


def test_micro_stats_totals_every_instance(nats: NatsCli, services: Services) -> None:
    services.start("count")
    services.start("count")
    for _ in range(3):
        nats.run("request", "count.echo", "n")
    result = nats.run("micro", "stats", "count")
    assert result.returncode == 0, result
    assert "count Service Statistics" in result.stdout
    cells = table_rows(result.stdout)[-1]
    assert cells[:4] == ["", "", "3", "0"]
    docs = json.loads(nats.run("micro", "stats", "count", "--json").stdout)
    assert len(docs) == 2
    assert sum(e["num_requests"] for d in docs for e in d["endpoints"]) == 3


def test_micro_ping_prints_each_instance_with_its_rtt(nats: NatsCli, services: Services) -> None:
    first = services.start("pinger")
    second = services.start("other")
    result = nats.run("micro", "ping", "--timeout", "1s")
    assert result.returncode == 0, result
    lines = sorted(result.stdout.splitlines())
    assert len(lines) == 2
    assert re.fullmatch(rf"other {second} +rtt=\S+", lines[0])
    assert re.fullmatch(rf"pinger {first} +rtt=\S+", lines[1])
    assert lines[1].index("rtt=") == 51
    only = nats.run("micro", "ping", "pinger", "--timeout", "500ms")
    assert only.stdout.split()[:2] == ["pinger", first]


def test_micro_without_services(nats: NatsCli) -> None:
    for args in (("micro", "ls"), ("micro", "info", "nothing"), ("micro", "stats", "nothing")):
        result = nats.run(*args, "--timeout", "1s")
        assert result.returncode == 1, result
        assert result.stderr == "nats: error: no micro instances found\n"
    ping = nats.run("micro", "ping", "--timeout", "300ms")
    assert (ping.returncode, ping.stdout) == (0, "")


def test_micro_requires_a_service_name_for_info(cli: NatsCli, tmp_path: Path) -> None:
    result = cli.run("micro", "info")
    assert result.returncode == 1
    assert "required argument 'service' not provided" in result.stderr
