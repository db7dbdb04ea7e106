"""`nats bench js ordered|consume|fetch`: reading a stream through consumers (nats-py).

    js ordered   every client reads the whole stream through its own ephemeral, un-acked
                 consumer (what an ordered consumer is on the server), pulling --batch ahead
    js consume   the clients share a durable consumer (`nats-bench`, created or updated when
                 it has the default name) and split --msgs; continuous pulls, one callback
                 per message, acked as --acks says (--doubleack waits for the ack's answer)
    js fetch     the same durable consumer, one fetch of --batch at a time (its latency)

Timing starts at each client's first message, as natscli's does.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

from pynats.cli.bench.core import common_banner, connect_client, io_msgs
from pynats.cli.bench.js import (
    connecting_error,
    explain,
    js_banner,
    purge_stream,
    stream_info,
)
from pynats.cli.bench.report import Sample
from pynats.cli.bench.runner import Meter, Mode, NatsPyClient, Prepare
from pynats.cli.bench.spec import DEFAULT_CONSUMER, BenchSpec, ClientSlot
from pynats.cli.ui import humanize
from pynats.cli.ui.connect import (
    connection,
    flush_ordered,
    jetstream,
    js_api_prefix,
    js_request,
)
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.options import current_settings
from pynats.gotime import NS_PER_S

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg

INACTIVE_THRESHOLD_NS = 10 * NS_PER_S
PULL_EXPIRES_NS = 30 * NS_PER_S


def prepare_consumer(durable: bool, always_connects: bool = True) -> Prepare:
    """Purge and create the durable consumer; natscli connects first even with nothing to do,
    except for `js ordered`, whose clients are the first to connect."""

    async def prepare(spec: BenchSpec) -> None:
        if not (always_connects or spec.purge):
            return
        try:
            async with connection() as nc:
                if spec.purge:
                    await purge_stream(nc, spec.stream)
                if durable and spec.consumer == DEFAULT_CONSUMER:
                    await create_durable(nc, spec)
        except CliError as exc:
            raise connecting_error(exc) from exc

    return prepare


async def create_durable(nc: Client, spec: BenchSpec) -> None:
    config: dict[str, Any] = {
        "durable_name": spec.consumer,
        "deliver_policy": "all",
        "ack_policy": spec.acks,
        "replay_policy": "instant",
        "inactive_threshold": INACTIVE_THRESHOLD_NS,
    }
    if spec.acks != "none":
        config["max_ack_pending"] = spec.batch * spec.clients
    add_filters(config, spec.filters)
    try:
        await js_request(
            nc,
            f"CONSUMER.CREATE.{spec.stream}.{spec.consumer}",
            {"stream_name": spec.stream, "config": config},
        )
    except CliError as exc:
        raise CliError(f"creating the durable consumer '{spec.consumer}': {exc}") from exc


def add_filters(config: dict[str, Any], filters: tuple[str, ...]) -> None:
    if len(filters) == 1:
        config["filter_subject"] = filters[0]
    elif filters:
        config["filter_subjects"] = list(filters)


class PullFeed:
    """Keeps pull requests ahead of a consumer into one inbox subscription.

    At most --batch messages are requested at a time and a new request goes out when half of
    them arrived; never more than `wanted` messages in total are asked for, so clients sharing
    a durable consumer each get their share.
    """

    def __init__(self, nc: Client, stream: str, consumer: str, batch: int, wanted: int) -> None:
        self.nc = nc
        self.subject = f"{js_api_prefix()}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self.batch = max(batch, 1)
        self.wanted = wanted
        self.requested = 0
        self.received = 0
        self.inbox = ""
        self.sub: Any = None
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    async def start(self) -> None:
        self.inbox = self.nc.new_inbox()
        self.sub = await self.nc.subscribe(self.inbox, cb=self._arrived)
        await self._request()

    async def _arrived(self, msg: Msg) -> None:
        await self.queue.put(msg)

    async def _request(self) -> None:
        outstanding = self.requested - self.received
        count = min(self.batch - outstanding, self.wanted - self.requested)
        if count <= 0:
            return
        self.requested += count
        body = json.dumps({"batch": count, "expires": PULL_EXPIRES_NS}).encode()
        await self.nc.publish(self.subject, body, reply=self.inbox)

    async def next(self) -> Any:
        """The next message of the consumer (status messages handled here)."""
        while True:
            msg = await self.queue.get()
            status = (msg.headers or {}).get("Status") if not msg.data else None
            if status is None:
                self.received += 1
                if self.requested - self.received <= self.batch // 2:
                    await self._request()
                return msg
            if status == "100":
                continue
            if status in ("404", "408"):
                pending = int((msg.headers or {}).get("Nats-Pending-Messages", 0) or 0)
                self.requested -= pending
                await self._request()
                continue
            description = (msg.headers or {}).get("Description", "")
            raise CliError(f"nats: {description or 'status ' + status}".rstrip())

    async def stop(self) -> None:
        if self.sub is not None:
            try:
                await self.sub.unsubscribe()
            except Exception:  # the connection may already be closing
                pass


class JSConsumer(NatsPyClient):
    """Reads its messages through pulls (ordered/consume) or fetches, acking as configured."""

    def __init__(self, kind: str, spec: BenchSpec, slot: ClientSlot, meter: Meter) -> None:
        super().__init__(kind, spec, slot, meter)
        self.feed: PullFeed | None = None
        self.ephemeral = ""
        self.fetcher: Any = None
        self.warnings: list[str] = []

    async def open(self) -> None:
        spec = self.spec
        self.nc = await connect_client(f"client number {self.slot.index} could not connect")
        try:
            await stream_info(self.client, spec.stream)
        except CliError as exc:
            raise CliError(f"getting stream '{spec.stream}': {exc}") from exc
        if self.kind == "ordered":
            self.meter.state("Receiving")
            config: dict[str, Any] = {
                "deliver_policy": "all",
                "ack_policy": "none",
                "replay_policy": "instant",
                "inactive_threshold": INACTIVE_THRESHOLD_NS,
                "num_replicas": 1,
                "mem_storage": True,
            }
            add_filters(config, spec.filters)
            try:
                created = await js_request(
                    self.client,
                    f"CONSUMER.CREATE.{spec.stream}",
                    {"stream_name": spec.stream, "config": config},
                )
            except CliError as exc:
                raise CliError(f"creating the ephemeral ordered consumer: {exc}") from exc
            self.ephemeral = created["name"]
            self.feed = PullFeed(
                self.client, spec.stream, self.ephemeral, spec.batch, self.slot.count
            )
            await self.feed.start()
            return
        try:
            await js_request(self.client, f"CONSUMER.INFO.{spec.stream}.{spec.consumer}")
        except CliError as exc:
            raise CliError(f"getting durable consumer '{spec.consumer}': {exc}") from exc
        if self.kind == "consume":
            self.meter.state("Consuming")
            self.feed = PullFeed(
                self.client, spec.stream, spec.consumer, spec.batch, self.slot.count
            )
            await self.feed.start()
        else:
            self.meter.state("Fetching")
            js = jetstream(self.client)
            self.fetcher = await js.pull_subscribe_bind(durable=spec.consumer, stream=spec.stream)
        await flush_ordered(self.client)

    async def handle(self, msg: Msg) -> None:
        spec = self.spec
        if spec.sleep_s > 0:
            await asyncio.sleep(spec.sleep_s)
        if self.kind != "ordered" and spec.acks in ("explicit", "all"):
            try:
                if spec.double_ack:
                    await msg.ack_sync(timeout=current_settings().timeout_s)
                else:
                    await msg.ack()
            except Exception as exc:
                raise CliError(f"acknowledging the message: {explain(exc)}") from exc

    async def run(self) -> Sample:
        slot, meter = self.slot, self.meter
        started: float | None = None
        latencies: list[int] = []
        received = 0
        if self.feed is not None:
            while received < slot.count:
                msg = await self.feed.next()
                if started is None:
                    started = meter.started()
                await self.handle(msg)
                received += 1
                meter.add(1)
        else:
            started, latencies = await self._fetch_all()
        ended = time.monotonic()
        meter.state("Finished")
        assert started is not None
        return Sample(
            slot.count,
            self.spec.size,
            started,
            ended,
            latencies,
            io_msgs=io_msgs(self.client),
            warnings=tuple(self.warnings),
        )

    async def _fetch_all(self) -> tuple[float, list[int]]:
        import nats.errors

        spec, slot, meter = self.spec, self.slot, self.meter
        timeout = current_settings().timeout_s
        started: float | None = None
        latencies = []
        received = 0
        clock = time.perf_counter_ns
        while received < slot.count:
            want = min(spec.batch, slot.count - received)
            before = clock()
            try:
                msgs = await self.fetcher.fetch(want, timeout=timeout)
            except nats.errors.TimeoutError:
                self.warnings.append("fetch-timeout")
                continue
            except Exception as exc:
                raise CliError(
                    f"fetching from the consumer '{spec.consumer}': {explain(exc)}"
                ) from exc
            after = clock()
            for msg in msgs:
                if started is None:
                    started = meter.started()
                await self.handle(msg)
                received += 1
                meter.add(1)
            latencies.append(after - before)
        assert started is not None
        return started, latencies

    async def close(self) -> None:
        if self.feed is not None:
            await self.feed.stop()
        if self.ephemeral and self.nc is not None and self.nc.is_connected:
            try:
                await js_request(
                    self.client, f"CONSUMER.DELETE.{self.spec.stream}.{self.ephemeral}"
                )
            except CliError:
                pass
        await super().close()


# -- the modes -----------------------------------------------------------------------------------


def _filter_banner(spec: BenchSpec) -> dict[str, str]:
    return {"filter": ",".join(spec.filters)} if spec.filters else {}


JS_ORDERED = Mode(
    key="js-ordered",
    label="JetStream ordered ephemeral consumer",
    prefix="S",
    verb="expecting",
    split=False,
    caps_clients=False,
    make_client=lambda spec, slot, meter: JSConsumer("ordered", spec, slot, meter),
    banner=lambda spec: {
        **js_banner(spec),
        "purge": humanize.value(spec.purge),
        **_filter_banner(spec),
        **common_banner(spec),
    },
    prepare=prepare_consumer(durable=False, always_connects=False),
)


def _durable_banner(spec: BenchSpec) -> dict[str, str]:
    return {
        "consumer": spec.consumer,
        "acks": spec.acks,
        "double-acked": humanize.value(spec.double_ack),
        "batch": humanize.value(spec.batch),
        **_filter_banner(spec),
        **js_banner(spec),
        "purge": humanize.value(spec.purge),
        **common_banner(spec),
    }


JS_CONSUME = Mode(
    key="js-consume",
    label="JetStream durable consumer (callback)",
    prefix="S",
    verb="expecting",
    split=True,
    caps_clients=False,
    make_client=lambda spec, slot, meter: JSConsumer("consume", spec, slot, meter),
    banner=_durable_banner,
    prepare=prepare_consumer(durable=True),
)

JS_FETCH = Mode(
    key="js-fetch",
    label="JetStream durable consumer (fetch)",
    prefix="S",
    verb="expecting",
    split=True,
    caps_clients=False,
    make_client=lambda spec, slot, meter: JSConsumer("fetch", spec, slot, meter),
    banner=_durable_banner,
    prepare=prepare_consumer(durable=True),
)
