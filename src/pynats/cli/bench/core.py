"""The Core NATS modes of `nats bench`: pub, sub (raw protocol), service request and serve.

`bench pub` and `bench sub` speak the wire protocol through wire.py so that one client
can push or count millions of messages a second; `service request` and `service serve` are
latency-bound (one request in flight per client) and use nats-py, like the rest of the CLI.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any

from pynats.cli.bench.report import Sample
from pynats.cli.bench.runner import Meter, Mode, NatsPyClient
from pynats.cli.bench.spec import (
    SERVICE_NAME,
    SERVICE_VERSION,
    BenchSpec,
    ClientSlot,
)
from pynats.cli.bench.wire import WireConnection, header_block, open_wire, pub_frame
from pynats.cli.ui import humanize
from pynats.cli.ui.connect import cli_version, connect, flush_ordered
from pynats.cli.ui.errors import CliError, Fatal
from pynats.cli.ui.messages import go_quote
from pynats.cli.ui.options import current_settings

if TYPE_CHECKING:
    from nats.aio.client import Client

# One write of a publisher carries about this many bytes of frames.
PUBLISH_RUN_BYTES = 512 * 1024
# With --throughput, one write carries at most this much time's worth of messages.
THROTTLE_SLICE_S = 0.005
FLUSH_TIMEOUT_S = 30.0


def client_name() -> str:
    return current_settings().connection_name or f"NATS CLI Version {cli_version()}"


async def pace(started: float, sent: int, rate: float, sleep: float) -> None:
    """--sleep after each publication, and --throughput pacing (natscli's throttle)."""
    if sleep > 0:
        await asyncio.sleep(sleep)
    if rate > 0:
        delay = started + sent / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def jitter(spec: BenchSpec, slot: ClientSlot) -> None:
    """natscli spreads the clients' first publication over one --sleep interval."""
    if spec.sleep_s > 0 and slot.index != 0:
        await asyncio.sleep(random.uniform(0, spec.sleep_s))


# -- bench pub ---------------------------------------------------------------------------------


class FrameSource:
    """The PUB frames of messages `first`..`first+count-1`, built a run at a time."""

    def __init__(self, spec: BenchSpec) -> None:
        self.spec = spec
        headers = header_block(spec.headers)
        body = spec.body
        if headers:
            self.tail = b" %d %d\r\n%s%s\r\n" % (
                len(headers),
                len(headers) + len(body),
                headers,
                body,
            )
            verb = b"HPUB "
        else:
            self.tail = b" %d\r\n%s\r\n" % (len(body), body)
            verb = b"PUB "
        self.frame = pub_frame(spec.subject, body, headers)
        self.head = verb + spec.subject.encode() + b"."
        self.frame_size = len(self.frame)
        self._runs: dict[int, bytes] = {}

    def chunk(self, first: int, count: int) -> bytes:
        spec = self.spec
        if not spec.multisubject:
            run = self._runs.get(count)
            if run is None:
                run = self.frame * count
                if len(self._runs) < 4:
                    self._runs[count] = run
            return run
        parts: list[bytes] = []
        head, tail = self.head, self.tail
        limit = spec.multisubject_max
        if limit == 0:
            for number in range(first, first + count):
                parts += (head, b"%d" % number, tail)
            return b"".join(parts)
        pattern = b"%%0%dd" % len(str(limit))
        if spec.multisubject_randomize:
            for _ in range(count):
                parts += (head, pattern % random.randrange(limit), tail)
        else:
            for number in range(first, first + count):
                parts += (head, pattern % (number % limit), tail)
        return b"".join(parts)


class CorePublisher:
    """Publishes its share of the messages in batched writes of pre-built frames."""

    def __init__(self, spec: BenchSpec, slot: ClientSlot, meter: Meter) -> None:
        self.spec = spec
        self.slot = slot
        self.meter = meter
        self.conn: WireConnection | None = None

    async def open(self) -> None:
        self.conn = await open_wire(current_settings(), client_name())
        self.source = FrameSource(self.spec)

    def run_size(self) -> int:
        spec = self.spec
        if spec.sleep_s > 0:
            return 1
        size = max(1, PUBLISH_RUN_BYTES // self.source.frame_size)
        rate = spec.per_client_rate
        if rate > 0:
            size = min(size, max(1, int(rate * THROTTLE_SLICE_S)))
        return size

    async def run(self) -> Sample:
        assert self.conn is not None
        spec, slot, meter = self.spec, self.slot, self.meter
        protocol = self.conn.protocol
        if spec.headers and not self.conn.has_headers:
            raise CliError("publishing: publishing: nats: headers not supported by this server")
        if len(spec.body) + len(header_block(spec.headers)) > self.conn.max_payload:
            raise CliError("publishing: publishing: nats: maximum payload exceeded")
        meter.state("Publishing")
        await jitter(spec, slot)
        run = self.run_size()
        rate = spec.per_client_rate
        latencies: list[float] = []  # ns per message of each batched write
        started = meter.started()
        sent = 0
        clock = time.perf_counter_ns
        try:
            while sent < slot.count:
                count = min(run, slot.count - sent)
                data = self.source.chunk(slot.offset + sent, count)
                before = clock()
                protocol.write(data)
                await protocol.drain()
                latencies.append((clock() - before) / count)
                sent += count
                meter.add(count)
                if rate > 0 or spec.sleep_s > 0:
                    await pace(started, sent, rate, spec.sleep_s)
            await protocol.flush(FLUSH_TIMEOUT_S)
        except CliError as exc:
            raise CliError(f"publishing: publishing: {exc}") from exc
        except TimeoutError:
            raise CliError("flushing: nats: timeout") from None
        ended = time.monotonic()
        meter.state("Finished")
        return Sample(slot.count, spec.size, started, ended, latencies, io_msgs=slot.count)

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.protocol.close()


# -- bench sub ---------------------------------------------------------------------------------


class CoreSubscriber:
    """Counts messages on the subject from the first one to the expected number."""

    SID = b"1"

    def __init__(self, spec: BenchSpec, slot: ClientSlot, meter: Meter) -> None:
        self.spec = spec
        self.slot = slot
        self.meter = meter
        self.conn: WireConnection | None = None
        self.started: float | None = None
        self.ended = 0.0
        self.complete: asyncio.Future[None] | None = None

    async def open(self) -> None:
        self.complete = asyncio.get_running_loop().create_future()
        try:
            self.conn = await open_wire(current_settings(), client_name(), self._counted)
        except CliError as exc:
            raise CliError(f"client number {self.slot.index} failed to connect: {exc}") from exc
        subject = self.spec.subscribe_subject.encode()
        self.conn.protocol.write(b"SUB %s %s\r\n" % (subject, self.SID))
        await self.conn.protocol.flush(FLUSH_TIMEOUT_S)
        self.meter.state("Receiving")

    def _counted(self, total: int) -> None:
        if self.started is None:
            self.started = self.meter.started()
        expected = self.slot.count
        self.meter.set(min(total, expected))
        if total >= expected and self.complete is not None and not self.complete.done():
            self.ended = time.monotonic()
            self.complete.set_result(None)

    async def run(self) -> Sample:
        assert self.conn is not None and self.complete is not None
        closed = self.conn.protocol.closed
        await asyncio.wait({self.complete, closed}, return_when=asyncio.FIRST_COMPLETED)
        if not self.complete.done():
            closed.result()
        self.meter.state("Finished")
        received = self.conn.protocol.parser.msgs
        assert self.started is not None
        return Sample(self.slot.count, self.spec.size, self.started, self.ended, io_msgs=received)

    async def close(self) -> None:
        if self.conn is not None:
            self.conn.protocol.close()


# -- bench service request / serve --------------------------------------------------------------


def nats_headers(spec: BenchSpec) -> dict[str, str] | None:
    return dict(spec.headers) if spec.headers else None


async def connect_client(message: str) -> Any:
    """A nats-py client; a failure is worded `<message>: <nats error>` as natscli does."""
    try:
        return await connect(name=client_name())
    except CliError as exc:
        raise CliError(f"{message}: {exc}" if message else str(exc)) from exc


def io_msgs(nc: Client) -> int:
    return int(nc.stats["in_msgs"] + nc.stats["out_msgs"])


class ServiceRequester(NatsPyClient):
    """Sends its share of requests one at a time and checks each reply."""

    def __init__(self, spec: BenchSpec, slot: ClientSlot, meter: Meter) -> None:
        super().__init__("", spec, slot, meter)

    async def open(self) -> None:
        self.nc = await connect_client(f"client number {self.slot.index} failed to connect")

    async def run(self) -> Sample:
        import nats.errors

        spec, slot, meter, nc = self.spec, self.slot, self.meter, self.client
        timeout = current_settings().timeout_s
        headers = nats_headers(spec)
        body = spec.body
        meter.state("Requesting")
        await jitter(spec, slot)
        latencies: list[int] = []
        started = meter.started()
        clock = time.perf_counter_ns
        for number in range(slot.count):
            subject = spec.publish_subject(slot.offset + number)
            before = clock()
            try:
                reply = await nc.request(subject, body, timeout=timeout, headers=headers)
            except nats.errors.NoRespondersError:
                raise CliError(
                    "requesting: requesting: nats: no responders available for request"
                ) from None
            except nats.errors.TimeoutError:
                raise CliError("requesting: requesting: nats: timeout") from None
            latencies.append(clock() - before)
            data = reply.data
            if not data or data[:1] == b"-" or b"error" in data:
                text = go_quote(data.decode(errors="replace"))
                raise Fatal(f"Request did not receive a good reply: {text}")
            meter.add(1)
            await pace(started, number + 1, spec.per_client_rate, spec.sleep_s)
        await nc.flush()
        ended = time.monotonic()
        meter.state("Finished")
        return Sample(slot.count, spec.size, started, ended, latencies, io_msgs=io_msgs(nc))


class ServiceServer(NatsPyClient):
    """A `nats-bench-service` micro-service instance answering `ok`, until interrupted."""

    def __init__(self, spec: BenchSpec, slot: ClientSlot, meter: Meter) -> None:
        super().__init__("", spec, slot, meter)

    async def open(self) -> None:
        from nats.micro import add_service

        self.nc = await connect_client(f"client number {self.slot.index} failed to connect")
        try:
            service = await add_service(self.client, name=SERVICE_NAME, version=SERVICE_VERSION)
            await service.add_endpoint(
                name="default", subject=self.spec.subject, handler=self.reply
            )
        except ValueError as exc:
            raise CliError(f"adding the service: {exc}") from exc
        await flush_ordered(self.client)

    async def reply(self, request: Any) -> None:
        if self.spec.sleep_s > 0:
            await asyncio.sleep(self.spec.sleep_s)
        await request.respond(b"ok")

    async def run(self) -> None:
        await asyncio.get_running_loop().create_future()  # serves until the process is stopped


# -- the modes ---------------------------------------------------------------------------------


def common_banner(spec: BenchSpec) -> dict[str, str]:
    items = {
        "msgs": humanize.value(spec.msgs),
        "msg-size": humanize.ibytes(spec.size),
        "clients": humanize.value(spec.clients),
    }
    if spec.throughput > 0:
        items["throughput"] = humanize.value(spec.throughput)
    if spec.duration_ns > 0:
        items["duration"] = humanize.human_duration(spec.duration_ns)
    return items


def publisher_banner(spec: BenchSpec) -> dict[str, str]:
    return {
        "subject": spec.subscribe_subject,
        "multi-subject": humanize.value(spec.multisubject),
        "multi-subject-max": humanize.value(spec.multisubject_max),
        "multi-subject-randomize": humanize.value(spec.multisubject_randomize),
    }


PUB = Mode(
    key="pub",
    label="Core NATS publisher",
    prefix="P",
    verb="publishing",
    split=True,
    caps_clients=True,
    make_client=CorePublisher,
    banner=lambda spec: {
        **publisher_banner(spec),
        "sleep": humanize.human_duration(spec.sleep_ns),
        **common_banner(spec),
    },
)

SUB = Mode(
    key="sub",
    label="Core NATS subscriber",
    prefix="S",
    verb="expecting",
    split=False,
    caps_clients=False,
    make_client=CoreSubscriber,
    banner=lambda spec: {
        "subject": spec.subscribe_subject,
        "multi-subject": humanize.value(spec.multisubject),
        **common_banner(spec),
    },
)

SERVICE_REQUEST = Mode(
    key="request",
    label="Core NATS service requester",
    prefix="P",
    verb="requesting",
    split=True,
    caps_clients=True,
    make_client=ServiceRequester,
    banner=lambda spec: {
        "subject": spec.subject,
        "sleep": humanize.human_duration(spec.sleep_ns),
        **common_banner(spec),
    },
)

SERVICE_SERVE = Mode(
    key="serve",
    label="Core NATS service server",
    prefix="?",
    verb="",
    split=False,
    caps_clients=False,
    make_client=ServiceServer,
    banner=lambda spec: {
        "subject": spec.subject,
        "sleep": humanize.human_duration(spec.sleep_ns),
        **common_banner(spec),
    },
    runs_forever=True,
)
