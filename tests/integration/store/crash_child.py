"""The process the crash tests kill -9: writes forever and reports what became durable.

Lines on stdout (flushed before anything depends on them):
  ready                   stores opened (recovery done)
  D <seq>                 message <seq> is durable (its when_durable callback fired)
  r <seq> / R <seq>       delete of <seq> requested / durable
  A <seq>                 consumer ack of stream seq <seq> is durable
Every few hundred messages it stops and reopens the stores (snapshot written on the way).
With a fourth argument, the stores are encrypted with that key (store/crypt.py).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys

from pynats.jetstream.store import DEFAULT_FILEIO, ConsumerStore, FileStore, StoreConfig, SyncPolicy
from pynats.jetstream.store.crypt import EncryptedFileIO, Keyring


def data_for(seq: int) -> bytes:
    return b"crash-%d-" % seq + bytes([seq % 251]) * (seq % 64)


async def main(directory: str, sync: str, seed: int, key: str) -> None:
    rng = random.Random(seed)
    fileio = EncryptedFileIO(Keyring(key)) if key else DEFAULT_FILEIO
    out = sys.stdout
    policy = SyncPolicy.parse(None if sync == "group" else sync)
    loop = asyncio.get_running_loop()

    def open_stores():
        store = FileStore(
            os.path.join(directory, "msgs"),
            StoreConfig(name="C"),
            policy,
            segment_bytes=8192,
            fileio=fileio,
        )
        consumer = ConsumerStore(
            os.path.join(directory, "c1"), policy, compact_bytes=4096, fileio=fileio
        )
        return store, consumer

    stores = list(open_stores())
    out.write("ready\n")
    out.flush()

    async def durable(s) -> None:
        fut = loop.create_future()
        s.when_durable(lambda err: fut.set_result(err))
        if await fut is not None:
            raise SystemExit("durability failed")

    async def publisher(n: int) -> None:
        while True:
            store = stores[0]
            seq, _ = store.store_msg(f"c.{n}", None, data_for(store.last_seq + 1))
            await durable(store)
            out.write(f"D {seq}\n")
            if rng.random() < 0.05:
                victim = rng.randint(max(1, seq - 200), seq)
                out.write(f"r {victim}\n")
                out.flush()
                store = stores[0]
                if store.remove_msg(victim, erase=rng.random() < 0.5):
                    await durable(store)
                    out.write(f"R {victim}\n")
            if rng.random() < 0.3:
                consumer = stores[1]
                consumer.update_delivered(seq, seq, 1, 0)
                consumer.update_acks(seq, seq)
                await durable(consumer)
                out.write(f"A {seq}\n")
            out.flush()

    async def restarter() -> None:
        while True:
            await asyncio.sleep(rng.uniform(0.05, 0.3))
            for s in stores:
                s.stop()
            stores[:] = open_stores()

    tasks = [asyncio.ensure_future(publisher(n)) for n in range(16)]
    tasks.append(asyncio.ensure_future(restarter()))
    await asyncio.gather(*tasks)


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    key = sys.argv[4] if len(sys.argv) > 4 else ""
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), key))
