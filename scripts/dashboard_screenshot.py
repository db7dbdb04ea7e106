"""Regenerate docs/dashboard.png, the dashboard screenshot in the README.

    .venv/bin/python scripts/dashboard_screenshot.py [--out docs/dashboard.png] [--seconds 20]

Starts a pynats server with JetStream in a temporary directory, gives it some life (a few named
clients, two streams with consumers, a publish rate that changes), opens /dashboard in headless
Chromium (tests/support/browser.py) and saves what it shows. Needs chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import nats  # noqa: E402
from tests.support.browser import CHROMIUM, Browser  # noqa: E402
from tests.support.servers import start_server  # noqa: E402


async def publish_waves(nc: nats.NATS, seconds: float) -> None:
    """Orders and metrics at a rate that rises and falls, so the charts have a shape."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    while (elapsed := loop.time() - start) < seconds:
        burst = int(40 + 35 * math.sin(elapsed / 2.5))
        for _ in range(burst):
            n += 1
            await nc.publish(f"orders.eu.{n % 7}", b'{"item":"book","qty":1}')
            await nc.publish("metrics.cpu", b"0.42")
        await nc.flush()
        await asyncio.sleep(0.05)


async def scene(monitor_url: str, nats_url: str, out: Path, seconds: float) -> None:
    orders = await nats.connect(nats_url, name="orders-service")
    worker = await nats.connect(nats_url, name="shipping-worker")
    agent = await nats.connect(nats_url, name="metrics-agent")
    try:
        js = orders.jetstream()
        await js.add_stream(name="ORDERS", subjects=["orders.>"])
        await js.add_stream(name="AUDIT", subjects=["audit.>"], max_msgs=10000)
        for n in range(250):
            await js.publish(f"audit.login.{n % 3}", b"user logged in")
        await js.add_consumer("ORDERS", durable_name="shipping")
        await js.add_consumer("AUDIT", durable_name="reports")
        await agent.subscribe("metrics.>")
        await agent.subscribe("alerts.*", queue="agents")
        shipping = await worker.jetstream().pull_subscribe("orders.>", durable="shipping")

        with tempfile.TemporaryDirectory() as profile:
            async with Browser(Path(profile), width=1280, height=1240) as browser:
                page = await browser.open(f"{monitor_url}/dashboard?interval=500")
                await publish_waves(orders, seconds / 2)
                for msg in await shipping.fetch(40, timeout=5):
                    await msg.ack()
                await shipping.fetch(15, timeout=5)  # left unacknowledged: ack pending
                await publish_waves(orders, seconds / 2)
                await page.screenshot(out)
    finally:
        for nc in (agent, worker, orders):
            await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "dashboard.png")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    if CHROMIUM is None:
        sys.exit("needs chromium (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as store:
        server = start_server(["-js", "-sd", store, "-n", "pynats-demo"], http_port=-1)
        try:
            asyncio.run(scene(server.monitor_url, server.url, args.out, args.seconds))
        finally:
            server.stop()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
