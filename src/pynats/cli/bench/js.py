"""`nats bench js pub sync|async|atomic`, and the JetStream helpers of the other JS modes.

    js pub sync     one publish at a time, each waiting for its ack (nats-py `js.publish`)
    js pub async    --batch publishes in flight, then wait for all their acks
    js pub atomic   --batch messages published as one atomic batch, committed by the last
                    (needs a server with JetStream API level 2, NATS 2.12+)

`--create` makes the stream natscli makes: limits retention, discard new, direct get allowed.
The parent process prepares (stream, purge) before the clients start, so a missing stream or
an unreachable server is reported once, the way natscli reports it. The other JetStream modes
live in consume.py (ordered/consume/fetch), get.py (direct gets) and kv.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from pynats.cli.bench.core import common_banner, connect_client, io_msgs, jitter, pace
from pynats.cli.bench.report import Sample
from pynats.cli.bench.runner import Meter, Mode, NatsPyClient, Prepare
from pynats.cli.bench.spec import BenchSpec, ClientSlot
from pynats.cli.ui import humanize
from pynats.cli.ui.connect import connection, jetstream, js_request
from pynats.cli.ui.errors import STREAM_NOT_FOUND, ApiError, CliError, describe
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import log

if TYPE_CHECKING:
    from nats.aio.client import Client

ATOMIC_API_LEVEL = 2


def explain(exc: BaseException) -> str:
    """nats.go's words for a nats-py or API failure."""
    import nats.js.errors

    if isinstance(exc, nats.js.errors.BucketNotFoundError):
        return "nats: bucket not found"
    if isinstance(exc, nats.js.errors.KeyNotFoundError):
        return "nats: key not found"
    if isinstance(exc, nats.js.errors.NoStreamResponseError):
        return "nats: no response from stream"
    return describe(exc) or str(exc)


async def stream_info(nc: Client, stream: str) -> dict[str, Any]:
    """STREAM.INFO, with nats.go's words for a missing stream or a server without JetStream."""
    try:
        return await js_request(nc, f"STREAM.INFO.{stream}")
    except CliError as exc:
        if isinstance(exc, ApiError) and exc.err_code == STREAM_NOT_FOUND:
            raise CliError("nats: stream not found") from exc
        if "no responders" in str(exc):
            raise CliError("nats: jetstream not enabled") from exc
        raise


async def api_level(nc: Client) -> int:
    """The JetStream API level the server reports (0 when it does not say)."""
    try:
        info = await js_request(nc, "INFO")
    except CliError:
        return 0
    return int((info.get("api") or {}).get("level") or 0)


async def purge_stream(nc: Client, stream: str) -> None:
    try:
        await stream_info(nc, stream)
    except CliError as exc:
        raise CliError(f"getting stream '{stream}': {exc}") from exc
    try:
        await js_request(nc, f"STREAM.PURGE.{stream}", {})
    except CliError as exc:
        raise CliError(f"purging stream '{stream}': {exc}") from exc


def connecting_error(exc: CliError) -> CliError:
    """natscli prefixes a failed set-up connection with `connecting: `."""
    return CliError(f"connecting: {exc}") if "no servers" in str(exc) else exc


def js_banner(spec: BenchSpec) -> dict[str, str]:
    return {"stream": spec.stream, "sleep": humanize.human_duration(spec.sleep_ns)}


def create_banner(spec: BenchSpec) -> dict[str, str]:
    if not spec.create:
        return {}
    return {
        "storage": spec.storage,
        "max-bytes": humanize.value(spec.max_bytes),
        "replicas": humanize.value(spec.replicas),
        "deduplication": humanize.value(spec.dedup),
        "dedup-window": humanize.human_duration(spec.dedup_window_ns),
    }


# -- js pub --------------------------------------------------------------------------------------


def stream_config(spec: BenchSpec, atomic: bool, api_level: int) -> dict[str, Any]:
    """The stream `--create` defines (natscli's: limits, discard new, direct get).

    natscli also allows atomic batches on it; that is asked for only from servers whose API
    level has the feature, since a server without it may refuse the whole configuration.
    """
    persist_async = spec.persist_async and spec.replicas == 1 and not atomic
    config: dict[str, Any] = {
        "name": spec.stream,
        "subjects": [spec.subscribe_subject],
        "retention": "limits",
        "discard": "new",
        "storage": spec.storage,
        "num_replicas": spec.replicas,
        "max_bytes": spec.max_bytes,
        "max_msgs": -1,
        "max_msgs_per_subject": -1,
        "max_consumers": -1,
        "max_msg_size": -1,
        "max_age": 0,
        "duplicate_window": spec.dedup_window_ns,
        "allow_direct": True,
    }
    if api_level >= ATOMIC_API_LEVEL and not persist_async:
        config["allow_atomic"] = True
    if persist_async:
        config["persist_mode"] = "async"
    return config


def prepare_publish(kind: str) -> Prepare:
    async def prepare(spec: BenchSpec) -> None:
        if kind == "atomic" and spec.persist_async and spec.replicas != 1:
            raise CliError(
                "async persist mode is only supported for streams with 1 replica and "
                "incompatible with atomic batch publishing"
            )
        async with connection() as nc:
            level = await api_level(nc)
            if kind == "atomic" and level < ATOMIC_API_LEVEL:
                raise CliError(
                    "Atomic Batch Publishing requires NATS Server 2.12, specify --async "
                    "for async publishing instead"
                )
            if spec.create:
                try:
                    config = stream_config(spec, kind == "atomic", level)
                    await js_request(nc, f"STREAM.CREATE.{spec.stream}", config)
                except CliError as exc:
                    raise CliError(
                        "could not create the stream. If you want to delete and re-define the "
                        f"stream use `nats stream delete {spec.stream}`: {exc}"
                    ) from exc
            try:
                await stream_info(nc, spec.stream)
            except CliError as exc:
                raise CliError(f"could not access stream {spec.stream}: {exc}") from exc
            log(f"Using stream: {spec.stream}")
            if spec.purge:
                log("Purging the stream")
                await js_request(nc, f"STREAM.PURGE.{spec.stream}", {})

    return prepare


class JSPublisher(NatsPyClient):
    """Publishes its share into the stream: sync, async batches, or atomic batches."""

    def __init__(self, kind: str, spec: BenchSpec, slot: ClientSlot, meter: Meter) -> None:
        super().__init__(kind, spec, slot, meter)

    async def open(self) -> None:
        self.nc = await connect_client("")
        self.js = jetstream(self.client)

    def headers(self, number: int, batch_id: str = "") -> dict[str, str] | None:
        spec = self.spec
        headers = dict(spec.headers)
        if spec.dedup:
            prefix = batch_id or f"{spec.run_token}-{self.slot.index}"
            headers["Nats-Msg-Id"] = f"{prefix}-{number}"
        return headers or None

    async def run(self) -> Sample:
        spec, slot, meter = self.spec, self.slot, self.meter
        await jitter(spec, slot)
        started = meter.started()
        try:
            if self.kind == "sync":
                latencies = await self._sync(started)
            elif self.kind == "async":
                latencies = await self._async(started)
            else:
                latencies = await self._atomic(started)
            await self.client.flush()
        except CliError as exc:
            raise CliError(f"publishing: {exc}") from exc
        ended = time.monotonic()
        meter.state("Finished")
        return Sample(
            slot.count, spec.size, started, ended, latencies, io_msgs=io_msgs(self.client)
        )

    async def _sync(self, started: float) -> list[int]:
        spec, slot, meter = self.spec, self.slot, self.meter
        meter.state("Publishing")
        body = spec.body
        latencies = []
        clock = time.perf_counter_ns
        for i in range(slot.count):
            number = slot.offset + i
            before = clock()
            try:
                await self.js.publish(
                    spec.publish_subject(number), body, headers=self.headers(number)
                )
            except Exception as exc:
                raise CliError(f"publishing synchronously: {explain(exc)}") from exc
            latencies.append(clock() - before)
            meter.add(1)
            await pace(started, i + 1, spec.per_client_rate, spec.sleep_s)
        return latencies

    async def _async(self, started: float) -> list[int]:
        spec, slot, meter = self.spec, self.slot, self.meter
        timeout = current_settings().timeout_s
        body = spec.body
        latencies = []
        clock = time.perf_counter_ns
        done = 0
        while done < slot.count:
            count = min(spec.batch, slot.count - done)
            meter.state("Publishing")
            before = clock()
            futures = []
            for j in range(count):
                number = slot.offset + done + j
                try:
                    futures.append(
                        await self.js.publish_async(
                            spec.publish_subject(number),
                            body,
                            headers=self.headers(number),
                        )
                    )
                except Exception as exc:
                    raise CliError(f"publishing asynchronously: {explain(exc)}") from exc
                meter.add(1)
                if spec.sleep_s > 0 or spec.per_client_rate > 0:
                    paused = time.perf_counter_ns()
                    await pace(started, done + j + 1, spec.per_client_rate, spec.sleep_s)
                    before += time.perf_counter_ns() - paused
            meter.state("AckWait")
            try:
                await asyncio.wait_for(asyncio.gather(*futures), timeout)
            except TimeoutError:
                pending = self.js.publish_async_pending()
                raise CliError(f"JS PubAsync ack timeout (pending={pending})") from None
            except Exception as exc:
                raise CliError(
                    f"async publish acknowledgement is an error: {explain(exc)}"
                ) from exc
            meter.state("ProcessAck")
            latencies.append(clock() - before)
            done += count
        return latencies

    async def _atomic(self, started: float) -> list[int]:
        spec, slot, meter, nc = self.spec, self.slot, self.meter, self.client
        timeout = current_settings().timeout_s
        body = spec.body
        batch_id = f"{spec.run_token}-{slot.index}"
        latencies = []
        clock = time.perf_counter_ns
        done = 0
        while done < slot.count:
            count = min(spec.batch, slot.count - done)
            meter.state("Batching")
            before = clock()
            for j in range(count):
                number = slot.offset + done + j
                headers = self.headers(number, batch_id) or {}
                headers["Nats-Batch-Id"] = batch_id
                headers["Nats-Batch-Sequence"] = str(j + 1)
                subject = spec.publish_subject(number)
                if j == count - 1:
                    meter.state("Committing")
                    headers["Nats-Batch-Commit"] = "1"
                    try:
                        reply = await nc.request(subject, body, timeout=timeout, headers=headers)
                        check_ack(reply.data)
                    except Exception as exc:
                        raise CliError(f"publishing with batch commit: {explain(exc)}") from exc
                else:
                    await nc.publish(subject, body, headers=headers)
                meter.add(1)
                if spec.sleep_s > 0 or spec.per_client_rate > 0:
                    paused = time.perf_counter_ns()
                    await pace(started, done + j + 1, spec.per_client_rate, spec.sleep_s)
                    before += time.perf_counter_ns() - paused
            latencies.append(clock() - before)
            done += count
        return latencies


def check_ack(data: bytes) -> None:
    answer = json.loads(data or b"{}")
    error = answer.get("error")
    if isinstance(error, dict):
        raise CliError(f"{error.get('description', 'unknown error')} ({error.get('err_code')})")


# -- the modes -----------------------------------------------------------------------------------


def js_publish_banner(spec: BenchSpec) -> dict[str, str]:
    return {
        "subject": spec.subscribe_subject,
        "multi-subject": humanize.value(spec.multisubject),
        "multi-subject-max": humanize.value(spec.multisubject_max),
        "multi-subject-randomize": humanize.value(spec.multisubject_randomize),
        "batch": humanize.value(spec.batch),
        **js_banner(spec),
        "purge": humanize.value(spec.purge),
        **create_banner(spec),
        **common_banner(spec),
    }


def _publish_mode(kind: str, label: str) -> Mode:
    return Mode(
        key=f"js-pub-{kind}",
        label=label,
        prefix="P",
        verb="publishing",
        split=True,
        caps_clients=True,
        make_client=lambda spec, slot, meter: JSPublisher(kind, spec, slot, meter),
        banner=js_publish_banner,
        prepare=prepare_publish(kind),
    )


JS_PUB_SYNC = _publish_mode("sync", "JetStream synchronous publisher")
JS_PUB_ASYNC = _publish_mode("async", "JetStream asynchronous publisher")
JS_PUB_ATOMIC = _publish_mode("atomic", "JetStream atomic batch publisher")
