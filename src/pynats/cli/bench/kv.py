"""`nats bench kv put|get`: KV puts and gets on --bucket (nats-py's KeyValue).

`kv put` creates the bucket when it has the default name (`benchbucket`); --purge deletes the
bucket first (a KV bucket cannot be purged in one operation). Keys are the message numbers,
`0`..`msgs-1` split over the clients, or random in [0, --randomize).
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from pynats.cli.bench.core import common_banner, connect_client, io_msgs, jitter, pace
from pynats.cli.bench.js import connecting_error, explain
from pynats.cli.bench.report import Sample
from pynats.cli.bench.runner import Meter, Mode, NatsPyClient
from pynats.cli.bench.spec import (
    DEFAULT_BUCKET,
    BenchSpec,
    ClientSlot,
)
from pynats.cli.ui import humanize
from pynats.cli.ui.connect import connection, jetstream
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.output import log


async def prepare_kv_put(spec: BenchSpec) -> None:
    from nats.js.api import KeyValueConfig, StorageType

    try:
        async with connection() as nc:
            js = jetstream(nc)
            if spec.purge:
                try:
                    await js.delete_key_value(spec.bucket)
                except Exception as exc:
                    raise CliError(explain(exc)) from exc
            if spec.bucket == DEFAULT_BUCKET:
                config = KeyValueConfig(
                    bucket=spec.bucket,
                    description="nats bench bucket",
                    history=spec.history,
                    storage=StorageType.MEMORY if spec.storage == "memory" else StorageType.FILE,
                    replicas=spec.replicas,
                    max_bytes=spec.max_bytes,
                )
                try:
                    await js.create_key_value(config)
                except Exception as exc:
                    raise CliError(explain(exc)) from exc
    except CliError as exc:
        raise connecting_error(exc) from exc


class KVClient(NatsPyClient):
    """Puts its share of keys, or gets its share (sequential keys, or --randomize)."""

    def __init__(self, kind: str, spec: BenchSpec, slot: ClientSlot, meter: Meter) -> None:
        super().__init__(kind, spec, slot, meter)
        self.kv: Any = None

    async def open(self) -> None:
        spec = self.spec
        if self.kind == "put":
            self.nc = await connect_client("")
        else:
            self.nc = await connect_client(f"client number {self.slot.index} could not connect")
        try:
            self.kv = await jetstream(self.client).key_value(spec.bucket)
        except Exception as exc:
            verb = "getting the kv bucket" if self.kind == "put" else "finding kv bucket"
            raise CliError(f"{verb} '{spec.bucket}': {explain(exc)}") from exc
        self.meter.state("Putting" if self.kind == "put" else "Getting")

    def key(self, i: int) -> str:
        if self.spec.randomize > 0:
            return str(random.randrange(self.spec.randomize))
        return str(self.slot.offset + i)

    async def run(self) -> Sample:
        spec, slot, meter = self.spec, self.slot, self.meter
        putting = self.kind == "put"
        if putting:
            await jitter(spec, slot)
        value = bytes(spec.size) if spec.size > 0 else b""
        latencies = []
        clock = time.perf_counter_ns
        started = meter.started()
        for i in range(slot.count):
            key = self.key(i)
            before = clock()
            try:
                if putting:
                    await self.kv.put(key, value)
                else:
                    entry = await self.kv.get(key)
            except Exception as exc:
                if putting:
                    raise CliError(f"putting: putting: {explain(exc)}") from exc
                raise CliError(f"getting key '{key}': {explain(exc)}") from exc
            latencies.append(clock() - before)
            if not putting and entry.value is None:
                log(f"Warning: got no value for key '{slot.offset + i}'")
            meter.add(1)
            if putting:
                await pace(started, i + 1, spec.per_client_rate, spec.sleep_s)
            elif spec.sleep_s > 0:
                await asyncio.sleep(spec.sleep_s)
        await self.client.flush()
        ended = time.monotonic()
        meter.state("Finished")
        return Sample(
            slot.count, spec.size, started, ended, latencies, io_msgs=io_msgs(self.client)
        )


# -- the modes -----------------------------------------------------------------------------------


KV_PUT = Mode(
    key="kv-put",
    label="JetStream KV putter",
    prefix="P",
    verb="publishing",
    split=True,
    caps_clients=True,
    make_client=lambda spec, slot, meter: KVClient("put", spec, slot, meter),
    banner=lambda spec: {
        "bucket": spec.bucket,
        "sleep": humanize.human_duration(spec.sleep_ns),
        "purge": humanize.value(spec.purge),
        **common_banner(spec),
    },
    prepare=prepare_kv_put,
)

KV_GET = Mode(
    key="kv-get",
    label="JetStream KV getter",
    prefix="S",
    verb="trying to get",
    split=True,
    caps_clients=False,
    make_client=lambda spec, slot, meter: KVClient("get", spec, slot, meter),
    banner=lambda spec: {
        "bucket": spec.bucket,
        "sleep": humanize.human_duration(spec.sleep_ns),
        "randomize": humanize.value(spec.randomize),
        **common_banner(spec),
    },
)
