"""Restart time and memory of a JetStream stream of N small messages (pynats).

    python benchmarks/js_restart.py [--msgs 1000000] [--size 16]

Fills a file stream with N messages (async publishing, acked), then restarts the server twice:
after a clean shutdown (SIGTERM: index snapshot and dedupe window saved) and after kill -9
(recovery from the logs). Prints the time from process start to `Server is ready`, the RSS
and the message count after each start.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time

import nats

HOST, PORT = "127.0.0.1", 14310


def start(store: str) -> tuple[subprocess.Popen[str], float]:
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pynats.server", "-a", HOST, "-p", str(PORT), "-js", "-sd", store],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if "Server is ready" in line:
            break
    return proc, time.monotonic() - started


def rss_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return 0


async def fill(msgs: int, size: int) -> float:
    nc = await nats.connect(f"nats://{HOST}:{PORT}")
    js = nc.jetstream()
    await js.add_stream(name="BIG", subjects=["big.>"])
    payload = b"x" * size
    started = time.monotonic()
    pending = []
    for i in range(msgs):
        pending.append(await js.publish_async(f"big.{i % 100}", payload))
        if len(pending) >= 2000:
            await asyncio.gather(*pending)
            pending = []
    await asyncio.gather(*pending)
    await nc.close()
    return time.monotonic() - started


async def count() -> int:
    nc = await nats.connect(f"nats://{HOST}:{PORT}")
    info = await nc.jetstream().stream_info("BIG")
    await nc.close()
    return info.state.messages


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--msgs", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pynats-restart-") as store:
        proc, _ = start(store)
        took = asyncio.run(fill(args.msgs, args.size))
        print(f"stored {args.msgs} messages in {took:.1f}s; RSS {rss_mb(proc.pid)} MB")
        proc.terminate()
        proc.wait()
        for how in ("clean shutdown", "kill -9"):
            proc, ready = start(store)
            print(
                f"restart after {how}: ready in {ready:.2f}s, RSS {rss_mb(proc.pid)} MB, "
                f"{asyncio.run(count())} messages"
            )
            if how == "clean shutdown":
                proc.kill()
            else:
                proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
