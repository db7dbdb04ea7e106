"""Stream backup and restore: pynats next to the Go nats-server, same client.

    .venv/bin/python benchmarks/backup.py                  # 50,000 messages of 256 B
    .venv/bin/python benchmarks/backup.py --msgs 200000 --size 1024

Scenario: a file stream with `--msgs` messages of `--size` bytes (hex text, so it compresses
about as real JSON does) on 100 subjects. The client (nats-py, acking every chunk, as
`nats stream backup` does) takes a snapshot with the default chunk and window sizes, the
stream is deleted, and the snapshot is uploaded again in 128 KiB chunks. Results: messages
per second for the snapshot (request to the end message) and for the restore (first chunk to
the stream's info), the median of `--repeat` runs, and the size of the compressed backup.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import nats

from servers import RunningServer, ServerSpec, default_go_path, go_spec, pynats_spec

CHUNK = 128 * 1024


async def api(nc: nats.NATS, subject: str, body: Any = b"") -> dict[str, Any]:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return json.loads((await nc.request(subject, payload, timeout=30)).data)


async def take_snapshot(nc: nats.NATS) -> tuple[dict[str, Any], bytes]:
    inbox = nc.new_inbox()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    data = bytearray()

    async def on_chunk(msg: Any) -> None:
        if not msg.data:
            done.set_result(None)
            return
        data.extend(msg.data)
        if msg.reply:
            await nc.publish(msg.reply, b"")

    sub = await nc.subscribe(inbox, cb=on_chunk)
    resp = await api(nc, "$JS.API.STREAM.SNAPSHOT.S", {"deliver_subject": inbox})
    await asyncio.wait_for(done, 600)
    await sub.unsubscribe()
    return resp, bytes(data)


async def upload(nc: nats.NATS, config: dict[str, Any], data: bytes) -> dict[str, Any]:
    resp = await api(nc, "$JS.API.STREAM.RESTORE.S", {"config": config})
    for i in range(0, len(data), CHUNK):
        await nc.request(resp["deliver_subject"], data[i : i + CHUNK], timeout=30)
    return json.loads((await nc.request(resp["deliver_subject"], b"", timeout=600)).data)


async def one_run(port: int, msgs: int, size: int) -> tuple[float, float, int]:
    nc = await nats.connect(f"nats://127.0.0.1:{port}", allow_reconnect=False, connect_timeout=5)
    try:
        await api(nc, "$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"]})
        body = os.urandom(size // 2).hex().encode()
        for i in range(msgs):
            await nc.publish(f"s.{i % 100}", body)
        await nc.flush()
        while (await api(nc, "$JS.API.STREAM.INFO.S"))["state"]["messages"] < msgs:
            await asyncio.sleep(0.05)
        began = time.perf_counter()
        resp, data = await take_snapshot(nc)
        snap_s = time.perf_counter() - began
        await api(nc, "$JS.API.STREAM.DELETE.S")
        began = time.perf_counter()
        done = await upload(nc, resp["config"], data)
        restore_s = time.perf_counter() - began
        if done.get("state", {}).get("messages") != msgs:
            raise RuntimeError(f"restore gave {done}")
        await api(nc, "$JS.API.STREAM.DELETE.S")
        return msgs / snap_s, msgs / restore_s, len(data)
    finally:
        await nc.close()


def measure(spec: ServerSpec, args: argparse.Namespace) -> tuple[float, float, int]:
    snaps, restores, sizes = [], [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="pynats-bench-backup-") as store:
            run = ServerSpec(spec.name, (*spec.command, "-js", "-sd", store))
            with RunningServer(run) as srv:
                snap, restore, size = asyncio.run(one_run(srv.port, args.msgs, args.size))
        snaps.append(snap)
        restores.append(restore)
        sizes.append(size)
        print(
            f"  {spec.name:7} snapshot {snap:>10,.0f} msg/s  restore {restore:>10,.0f} msg/s",
            file=sys.stderr,
        )
    return statistics.median(snaps), statistics.median(restores), int(statistics.median(sizes))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--go", default=default_go_path(), help="the Go nats-server")
    p.add_argument("--msgs", type=int, default=50_000)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    results = {
        "go": measure(go_spec(args.go), args),
        "pynats": measure(pynats_spec(), args),
    }
    go, ours = results["go"], results["pynats"]
    print(f"\n{args.msgs:,} messages of {args.size} B, file storage, median of {args.repeat}")
    print(f"{'':10} {'go':>16} {'pynats':>16} {'pynats/go':>10}")
    for i, what in enumerate(("snapshot", "restore")):
        print(f"{what:10} {go[i]:>10,.0f} msg/s {ours[i]:>10,.0f} msg/s {ours[i] / go[i]:>9.2f}x")
    print(f"{'backup':10} {go[2] / 1e6:>13.1f} MB {ours[2] / 1e6:>13.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
