"""The live dashboard of the monitoring port, in a real browser: headless Chromium opens
`/dashboard` of a pynats server (JetStream on, monitoring under an `http_base_path`) while a
nats-py client publishes, and the test reads what the page shows as it changes: the server's
identity, a message rate that moves with the traffic, the connections with their
subscriptions (sortable), streams and consumers, a stream created while the page is open.

pynats only: nats-server has no dashboard. Skipped without chromium.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from tests.conftest import connect
from tests.support.browser import CHROMIUM, Browser, Page
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium")

BASE_PATH = "/nats"
SERVER_NAME = "dashboard-test"
POLL_MS = 200
TIMEOUT_S = 10.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    conf = tmp_path / "server.conf"
    conf.write_text(f'http_base_path: "{BASE_PATH}"\n')
    running = start_server(
        ["-c", str(conf), "-js", "-sd", str(tmp_path / "store"), "-n", SERVER_NAME],
        http_port=-1,
    )
    yield running
    running.stop()


@pytest.fixture
async def page(server: RunningServer, tmp_path: Path) -> AsyncIterator[Page]:
    async with Browser(tmp_path / "profile") as browser:
        yield await browser.open(f"{server.monitor_url}{BASE_PATH}/dashboard?interval={POLL_MS}")


def monitor(server: RunningServer, path: str) -> Any:
    with urllib.request.urlopen(f"{server.monitor_url}{BASE_PATH}{path}", timeout=5) as resp:
        return json.loads(resp.read())


@contextlib.asynccontextmanager
async def traffic(nc: nats.NATS, subject: str) -> AsyncIterator[None]:
    """Messages published to `subject` for as long as the block runs."""

    stop = asyncio.Event()

    async def publish() -> None:
        while not stop.is_set():
            for _ in range(20):
                await nc.publish(subject, b"tick")
            await nc.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.01)

    task = asyncio.create_task(publish())
    try:
        yield
    finally:
        stop.set()
        await task  # not cancelled: nats-py trips over a flush cancelled mid-way


async def shown(page: Page, expression: str, what: str) -> Any:
    """What `expression` evaluates to in the page, once it is something (truthy)."""

    async def look() -> Any:
        return await page.evaluate(expression)

    return await wait_until(look, timeout=TIMEOUT_S, what=what, step=0.02)


def dataset(selector: str, key: str) -> str:
    """A JS expression: `data-<key>` of the first element matching `selector`, or null."""
    return f"(document.querySelector({json.dumps(selector)})?.dataset.{key} ?? null)"


async def test_the_dashboard_shows_the_server_live(
    server: RunningServer, page: Page, tmp_path: Path
) -> None:
    nc = await connect(server.url, name="dashboard-watcher")
    other = await connect(server.url, name="another-client")
    try:
        js = nc.jetstream()
        await js.add_stream(name="ORDERS", subjects=["orders.>"])
        for n in range(3):
            await js.publish(f"orders.{n}", b"order")
        await js.add_consumer("ORDERS", durable_name="shipper")
        await nc.subscribe("traffic.>")
        await other.subscribe("other.subject")
        await nc.flush()
        await other.flush()
        varz = monitor(server, "/varz")

        # Who the server is.
        name = await shown(page, "document.getElementById('server-name').textContent", "name")
        assert name == SERVER_NAME
        shown_id = await page.evaluate("document.getElementById('server-id').textContent")
        assert shown_id == varz["server_id"]

        # The message rate moves with the traffic, and falls back to nothing without it.
        async with traffic(nc, "traffic.ticks"):
            rate = await shown(
                page,
                f"Number({dataset('#rates', 'msgRateIn')}) > 0 && {dataset('#rates', 'msgRateIn')}",
                "a message rate above 0 while messages flow",
            )
            assert float(rate) > 0
            chart = "document.querySelectorAll('#chart-msgs polyline.series.in')[0]?.points.length"
            assert await shown(page, f"({chart} ?? 0) >= 2", "the rate chart has a line")
        await shown(
            page, f"{dataset('#rates', 'msgRateIn')} === '0.00'", "the rate back to 0 after it"
        )

        # The connections, with their subscriptions and pending bytes, sortable by name.
        row = "#connections-table tr[data-name='dashboard-watcher']"
        await shown(page, f"document.querySelector({json.dumps(row)}) !== null", "the connection")
        cid = await page.evaluate(dataset(row, "cid"))
        subjects = await page.evaluate(
            f"document.querySelector(\"tr.subs-row[data-cid='{cid}']\").textContent"
        )
        assert "traffic.>" in subjects
        assert await page.evaluate(dataset(row, "pendingBytes")) == "0"
        names = (
            "[...document.querySelectorAll('#connections-table tr[data-name]')]"
            ".map(r => r.dataset.name)"
        )
        await page.evaluate(
            "document.querySelector('#connections-table th[data-key=name]').click()"
        )
        assert await page.evaluate(names) == ["another-client", "dashboard-watcher"]
        await page.evaluate(
            "document.querySelector('#connections-table th[data-key=name]').click()"
        )
        assert await page.evaluate(names) == ["dashboard-watcher", "another-client"]

        # Streams and consumers: messages, consumer lag and ack pending.
        orders = "#streams-table tr[data-stream='ORDERS']"
        assert await shown(page, dataset(orders, "messages"), "ORDERS") == "3"
        shipper = "#consumers-table tr[data-consumer='shipper']"
        assert await shown(page, dataset(shipper, "lag"), "the consumer") == "3"
        assert await page.evaluate(dataset(shipper, "ackPending")) == "0"
        pull = await js.pull_subscribe("orders.>", durable="shipper", stream="ORDERS")
        fetched = await pull.fetch(2, timeout=5)
        await shown(page, f"{dataset(shipper, 'ackPending')} === '2'", "2 messages ack pending")
        assert await page.evaluate(dataset(shipper, "lag")) == "1"
        for msg in fetched:
            await msg.ack()

        # A stream created while the page is open appears with its messages.
        await js.add_stream(name="EVENTS", subjects=["events.>"])
        for _ in range(2):
            await js.publish("events.created", b"event")
        events = "#streams-table tr[data-stream='EVENTS']"
        assert await shown(page, dataset(events, "messages"), "the new stream EVENTS") == "2"

        accounts = "#accounts-table tr[data-account='$G']"
        assert await shown(page, dataset(accounts, "connections"), "the account") == "2"
        assert await page.evaluate("document.body.dataset.error ?? null") is None

        await page.screenshot(tmp_path / "dashboard.png")
        assert (tmp_path / "dashboard.png").read_bytes().startswith(b"\x89PNG")
    finally:
        await other.close()
        await nc.close()


def test_the_index_page_links_the_dashboard(server: RunningServer) -> None:
    url = f"{server.monitor_url}{BASE_PATH}/"
    with urllib.request.urlopen(url, timeout=5) as resp:
        index = resp.read().decode()
    assert "href=./dashboard>" in index and "href=./varz>" in index
    with urllib.request.urlopen(url + "dashboard/", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/html")
        assert f'data-base="{BASE_PATH}"' in resp.read().decode()
