"""Micro-benchmarks of the JetStream message store (no server, no network).

Reports store_msg rates (memory; file lazy; file group commit with concurrent publishers
waiting for their acks; file `always`), then restart time and RSS of a file store holding
--messages small messages, with and without the index snapshot.

    .venv/bin/python benchmarks/store_micro.py                 # full run (~1 min)
    .venv/bin/python benchmarks/store_micro.py --messages 100000 --rate-messages 50000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from pynats.jetstream.store import FileStore, MemoryStore, StorageType, StoreConfig, SyncPolicy
from pynats.jetstream.store.snapshot import SNAPSHOT_NAME

PAYLOAD = b"x" * 64
SUBJECTS = [f"bench.{i}" for i in range(16)]


def rate_sync(store, count: int) -> float:
    start = time.perf_counter()
    store_msg = store.store_msg
    for i in range(count):
        store_msg(SUBJECTS[i & 15], None, PAYLOAD)
    if hasattr(store, "flush"):
        store.flush()
    return count / (time.perf_counter() - start)


def rate_group(directory: str, publishers: int, count: int) -> tuple[float, int]:
    """Publishers each publish, wait for durability, repeat: acked messages per second."""

    async def run() -> tuple[float, int]:
        store = FileStore(directory, StoreConfig(name="B"))
        loop = asyncio.get_running_loop()
        per = count // publishers

        async def publisher(n: int) -> None:
            subject = SUBJECTS[n & 15]
            for _ in range(per):
                store.store_msg(subject, None, PAYLOAD)
                fut = loop.create_future()
                store.when_durable(fut.set_result)
                await fut

        start = time.perf_counter()
        await asyncio.gather(*(publisher(n) for n in range(publishers)))
        elapsed = time.perf_counter() - start
        rounds = store.sync_rounds
        store.stop()
        return per * publishers / elapsed, rounds

    try:
        import uvloop

        return uvloop.run(run())
    except ImportError:
        return asyncio.run(run())


def rate_always(directory: str, seconds: float) -> float:
    store = FileStore(directory, StoreConfig(name="B"), SyncPolicy.parse("always"))
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            store.store_msg("bench.a", None, PAYLOAD)
        count += 100
    elapsed = time.perf_counter() - start
    store.stop()
    return count / elapsed


def open_probe(directory: str) -> dict:
    """Run in a fresh process: how long opening takes and what it costs in RSS."""
    code = f"""
import json, time, resource
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * 4096
from pynats.jetstream.store import FileStore, StoreConfig
before = rss()
start = time.perf_counter()
store = FileStore({directory!r}, StoreConfig(name="B"))
opened = time.perf_counter() - start
state = store.state()
store.load_msg(state.first_seq); store.load_msg(state.last_seq)
print(json.dumps({{"open_s": opened, "rss_mb": rss() / 2**20, "rss_delta_mb": (rss() - before) / 2**20,
                  "msgs": state.msgs, "damage": len(store.damage())}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate-messages", type=int, default=200_000)
    parser.add_argument("--publishers", type=int, default=256)
    parser.add_argument("--group-messages", type=int, default=100_000)
    parser.add_argument("--always-seconds", type=float, default=2.0)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--dir", default=None, help="where to put the stores (default: a tmp dir)")
    args = parser.parse_args()
    base = tempfile.mkdtemp(prefix="store-micro-", dir=args.dir)
    results = {}
    try:
        cfg_mem = StoreConfig(name="B", storage=StorageType.MEMORY)
        results["memory msgs/s"] = rate_sync(MemoryStore(cfg_mem), args.rate_messages)
        lazy = FileStore(os.path.join(base, "lazy"), StoreConfig(name="B"), SyncPolicy.parse("2m"))
        results["file lazy msgs/s"] = rate_sync(lazy, args.rate_messages)
        lazy.stop()
        acked, rounds = rate_group(
            os.path.join(base, "group"), args.publishers, args.group_messages
        )
        results[f"file group commit, {args.publishers} publishers, acked msgs/s"] = acked
        results["file group commit msgs per fsync"] = args.group_messages / max(rounds, 1)
        results["file always msgs/s"] = rate_always(
            os.path.join(base, "always"), args.always_seconds
        )
        for name in ("lazy", "group", "always"):
            shutil.rmtree(os.path.join(base, name))

        big = os.path.join(base, "big")
        store = FileStore(big, StoreConfig(name="B"), SyncPolicy.parse("2m"))
        start = time.perf_counter()
        rate_sync(store, args.messages)
        results[f"write {args.messages} msgs s"] = time.perf_counter() - start
        store.stop()
        results["disk MB"] = (
            sum(os.path.getsize(os.path.join(big, n)) for n in os.listdir(big)) / 2**20
        )
        probe = open_probe(big)
        results["restart with snapshot s"] = probe["open_s"]
        results["RSS after restart MB"] = probe["rss_mb"]
        results["RSS of the open store MB"] = probe["rss_delta_mb"]
        os.unlink(os.path.join(big, SNAPSHOT_NAME))
        probe = open_probe(big)
        results["restart by log scan s"] = probe["open_s"]
        results["RSS after scan restart MB"] = probe["rss_mb"]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(
            f"{key:<{width}}  {value:,.2f}"
            if isinstance(value, float)
            else f"{key:<{width}}  {value:,}"
        )


if __name__ == "__main__":
    main()
