"""`nats bench js get sync|batch`: direct gets of stream messages by sequence (nats-py).

Every client reads --msgs messages from the start of the stream: one direct get per message
(`sync`, with its latency), or --batch messages per batched direct get request (`batch`,
ending at the server's end-of-batch status).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from pynats.cli.bench.consume import prepare_consumer
from pynats.cli.bench.core import common_banner, connect_client, io_msgs
from pynats.cli.bench.js import explain, js_banner, stream_info
from pynats.cli.bench.report import Sample
from pynats.cli.bench.runner import Meter, Mode, NatsPyClient
from pynats.cli.bench.spec import BenchSpec, ClientSlot
from pynats.cli.ui import humanize
from pynats.cli.ui.connect import jetstream_manager, js_api_prefix
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import log


class JSGetter(NatsPyClient):
    """Reads --msgs messages per client with direct gets: one per request, or --batch."""

    def __init__(self, kind: str, spec: BenchSpec, slot: ClientSlot, meter: Meter) -> None:
        super().__init__(kind, spec, slot, meter)
        self.warnings: list[str] = []

    async def open(self) -> None:
        self.nc = await connect_client(f"client number {self.slot.index} could not connect")
        self.meter.state("Getting")

    async def run(self) -> Sample:
        spec, slot, meter = self.spec, self.slot, self.meter
        try:
            info = await stream_info(self.client, spec.stream)
        except CliError as exc:
            raise CliError(f"getting stream '{spec.stream}': {exc}") from exc
        if self.kind == "sync":
            started, latencies = await self._one_by_one(info)
        else:
            started, latencies = await self._batched()
        ended = time.monotonic()
        meter.state("Finished")
        return Sample(
            slot.count,
            spec.size,
            started,
            ended,
            latencies,
            io_msgs=io_msgs(self.client),
            warnings=tuple(self.warnings),
        )

    async def _one_by_one(self, info: dict[str, Any]) -> tuple[float, list[int]]:
        spec, slot, meter = self.spec, self.slot, self.meter
        manager = jetstream_manager(self.client)
        direct = bool(info.get("config", {}).get("allow_direct"))
        first = int(info.get("state", {}).get("first_seq", 1) or 1)
        latencies = []
        clock = time.perf_counter_ns
        started = meter.started()
        for i in range(slot.count):
            sequence = first + i
            before = clock()
            try:
                await manager.get_msg(spec.stream, seq=sequence, direct=direct)
            except Exception as exc:
                raise CliError(
                    f"getting message sequence number {sequence} from the stream: {explain(exc)}"
                ) from exc
            latencies.append(clock() - before)
            meter.add(1)
            if spec.sleep_s > 0:
                await asyncio.sleep(spec.sleep_s)
        return started, latencies

    async def _batched(self) -> tuple[float, list[int]]:
        spec, slot, meter, nc = self.spec, self.slot, self.meter, self.client
        timeout = current_settings().timeout_s
        subject = f"{js_api_prefix()}.DIRECT.GET.{spec.stream}"
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        latencies = []
        clock = time.perf_counter_ns
        started = meter.started()
        next_seq = 1
        received = 0
        try:
            while received < slot.count:
                want = min(spec.batch, slot.count - received)
                request = {"batch": want, "seq": next_seq, "next_by_subj": spec.get_filter}
                before = clock()
                await nc.publish(subject, json.dumps(request).encode(), reply=inbox)
                gotten = 0
                while True:
                    try:
                        msg = await sub.next_msg(timeout=timeout)
                    except Exception as exc:
                        raise CliError(f"doing a direct get on the stream: {explain(exc)}") from exc
                    headers = msg.headers or {}
                    status = headers.get("Status")
                    if status is None:
                        gotten += 1
                        next_seq = int(headers.get("Nats-Sequence", next_seq)) + 1
                        meter.add(1)
                        continue
                    if status in ("204", "404"):
                        break
                    raise CliError(
                        "getting message from the stream: "
                        f"nats: {headers.get('Description') or 'status ' + status}"
                    )
                latencies.append(clock() - before)
                received += gotten
                if gotten != want:
                    self.warnings.append("short-batch")
                    log_line = (
                        f"[{slot.index + 1}] Warning: Got {gotten} (expected {want}) "
                        "messages in this batch"
                    )
                    log(log_line)
                    if gotten == 0:
                        raise CliError("getting message from the stream: nats: no more messages")
                if spec.sleep_s > 0:
                    await asyncio.sleep(spec.sleep_s)
        finally:
            await sub.unsubscribe()
        return started, latencies


# -- the modes -----------------------------------------------------------------------------------


JS_GET_SYNC = Mode(
    key="js-get-sync",
    label="JetStream synchronous getter",
    prefix="S",
    verb="expecting",
    split=False,
    caps_clients=False,
    make_client=lambda spec, slot, meter: JSGetter("sync", spec, slot, meter),
    banner=lambda spec: {**js_banner(spec), **common_banner(spec)},
    prepare=prepare_consumer(durable=False),
)

JS_GET_BATCH = Mode(
    key="js-get-batch",
    label="JetStream batched direct getter",
    prefix="S",
    verb="expecting",
    split=False,
    caps_clients=False,
    make_client=lambda spec, slot, meter: JSGetter("batch", spec, slot, meter),
    banner=lambda spec: {
        "batch": humanize.value(spec.batch),
        "filter": spec.get_filter,
        **js_banner(spec),
        **common_banner(spec),
    },
    prepare=prepare_consumer(durable=False),
)
