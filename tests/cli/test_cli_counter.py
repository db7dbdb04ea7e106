"""`nats counter`: ADR-49 counters (Nats-Incr) on both servers."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats as nats_py
import pytest

from tests.cli.conftest import NatsCli
from tests.support.servers import RunningServer


async def _create_streams(url: str, configs: list[dict[str, Any]]) -> None:
    nc = await nats_py.connect(url)
    try:
        for config in configs:
            reply = await nc.request(
                f"$JS.API.STREAM.CREATE.{config['name']}", json.dumps(config).encode(), timeout=5
            )
            assert "error" not in json.loads(reply.data), reply.data
    finally:
        await nc.close()


def counter_config(name: str, subjects: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "subjects": subjects,
        "storage": "memory",
        "allow_msg_counter": True,
        "allow_direct": True,
        **extra,
    }


@pytest.fixture
def js(tmp_path: Path, js_server: RunningServer) -> Iterator[NatsCli]:
    runner = NatsCli(tmp_path, js_server.url)
    tag = f"t{time.monotonic_ns()}"
    runner.tag = tag  # type: ignore[attr-defined]
    asyncio.run(
        _create_streams(
            js_server.url,
            [
                counter_config(f"CTR{tag}", [f"{tag}.ctr.>"]),
                {"name": f"PLAIN{tag}", "subjects": [f"{tag}.plain.>"], "storage": "memory"},
            ],
        )
    )
    yield runner
    runner.cleanup()


def test_counter_increments_and_reads_the_total(js: NatsCli) -> None:
    tag = js.tag  # type: ignore[attr-defined]
    subject = f"{tag}.ctr.hits"
    first = js.run("counter", "incr", subject, "5")
    assert (first.returncode, first.stdout) == (0, "5\n"), first
    no_url = NatsCli(js.home)  # the URL from the environment: `-s` may not follow `--`
    second = no_url.run("ctr", "i", subject, "--", "-2", env={"NATS_URL": js.url})
    assert second.stdout == "3\n"
    huge = js.run("counter", "increment", subject, "100000000000000000000000")
    assert huge.stdout == "100000000000000000000003\n"
    got = js.run("counter", "get", subject)
    assert (got.returncode, got.stdout) == (0, "100000000000000000000003\n"), got
    by_stream = js.run("counter", "get", subject, "--stream", f"CTR{tag}")
    assert by_stream.stdout == got.stdout


def test_counter_view_shows_value_increment_and_sources(
    js: NatsCli, js_server: RunningServer
) -> None:
    tag = js.tag  # type: ignore[attr-defined]
    js.run("counter", "incr", f"{tag}.ctr.a", "7")
    view = js.run("counter", "view", f"{tag}.ctr.a")
    assert view.returncode == 0, view
    assert view.stdout.startswith(f"Counter {tag}.ctr.a\n\n")
    assert re.search(r"^ +Value: 7$", view.stdout, re.M)
    assert re.search(r"^ +Increment: 7$", view.stdout, re.M)
    assert re.search(rf"^ +Subject: {tag}\.ctr\.a$", view.stdout, re.M)
    assert view.stdout.rstrip().endswith("No source information found")
    asyncio.run(
        _create_streams(
            js_server.url,
            [counter_config(f"AGG{tag}", [], sources=[{"name": f"CTR{tag}"}])],
        )
    )
    deadline = time.monotonic() + 10
    while True:
        aggregated = js.run("counter", "view", f"{tag}.ctr.a", "--stream", f"AGG{tag}")
        if aggregated.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert aggregated.returncode == 0, aggregated
    assert "Sources:" in aggregated.stdout
    assert re.search(rf"^ +CTR{tag}: {tag}\.ctr\.a: 7$", aggregated.stdout, re.M), aggregated


def test_counter_ls_lists_subjects(js: NatsCli) -> None:
    tag = js.tag  # type: ignore[attr-defined]
    for name in ("b", "a", "c"):
        js.run("counter", "incr", f"{tag}.ctr.{name}", "1")
    listed = js.run("counter", "ls", "--stream", f"CTR{tag}")
    assert listed.stdout == f"{tag}.ctr.a\n{tag}.ctr.b\n{tag}.ctr.c\n", listed
    filtered = js.run("counter", "ls", f"{tag}.ctr.b", "--json")
    assert json.loads(filtered.stdout) == [f"{tag}.ctr.b"]


def test_counter_errors(js: NatsCli) -> None:
    tag = js.tag  # type: ignore[attr-defined]
    cases = [
        (
            ("counter", "get", f"{tag}.ctr.none"),
            f"counter not initialized for subject: {tag}.ctr.none",
        ),
        (("counter", "incr", f"{tag}.ctr.x"), "invalid value"),
        (("counter", "incr", f"{tag}.ctr.x", "1.5"), "invalid value"),
        (("counter", "get", f"{tag}.plain.x"), f'"PLAIN{tag}" is not a valid counter stream'),
        (("counter", "get", f"{tag}.nowhere"), "nats: stream not found"),
        (("counter", "ls"), "no stream or subject specified"),
        (("counter", "ls", "--stream", f"CTR{tag}"), "no counters found"),
    ]
    for args, message in cases:
        result = js.run(*args)
        assert result.returncode == 1, result
        assert result.stderr == f"nats: error: {message}\n", result
