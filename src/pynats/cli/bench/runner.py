"""Running the clients of a `nats bench` mode in worker processes, and watching them.

One Python process running many clients would measure itself: the GIL lets one client work at
a time. So the clients are spread over worker processes (`--workers`, default one per CPU and
never more than the clients), forked from this process. Each worker runs its clients on its
own uvloop event loop; the parent process only coordinates and draws:

    parent                                    worker (one per process)
    ------                                    ------------------------
    prepare (create stream, consumer...)
    fork workers ───────────────────────────▶ open() every client: connect, subscribe
    wait until every worker said "ready" ◀──── "ready"
    send "go" ──────────────────────────────▶ run() every client, counting into shared memory
    every 100 ms: read the counters, draw      ...
    the bars, keep a timeline for --plot
    collect one Sample per client ◀────────── ("sample", index, Sample)

Progress counters live in shared memory (three doubles per client: messages done, state,
start time), so reporting progress costs a client one store per batch, not a message.
A worker whose parent disappears (killed, Ctrl-C) sees its pipe close and exits at once;
workers ignore SIGINT, the parent stops them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, Protocol

from pynats.cli.bench.progress import ProgressBoard
from pynats.cli.bench.report import Sample
from pynats.cli.bench.spec import BenchSpec, ClientSlot
from pynats.cli.ui.connect import event_loop_runner
from pynats.cli.ui.errors import CliError, Fatal, Interrupted, describe
from pynats.cli.ui.output import log

if TYPE_CHECKING:
    from nats.aio.client import Client

STATES = (
    "Setup     ",
    "Publishing",
    "Receiving ",
    "Consuming",
    "Fetching",
    "Requesting",
    "Putting   ",
    "Getting   ",
    "Batching  ",
    "Committing",
    "AckWait   ",
    "ProcessAck",
    "Finished  ",
)
_STATE_INDEX = {name.strip(): number for number, name in enumerate(STATES)}
TICK_S = 0.1
FIELDS_PER_CLIENT = 3  # done, state, started (monotonic seconds, 0 = not yet)


class Meter:
    """One client's live progress, written into memory the parent process reads."""

    def __init__(self, shared: Any, index: int) -> None:
        self._shared = shared
        self._base = index * FIELDS_PER_CLIENT

    def add(self, count: int) -> None:
        self._shared[self._base] += count

    def set(self, total: int) -> None:
        self._shared[self._base] = total

    def state(self, name: str) -> None:
        self._shared[self._base + 1] = _STATE_INDEX[name.strip()]

    def started(self, moment: float | None = None) -> float:
        moment = time.monotonic() if moment is None else moment
        self._shared[self._base + 2] = moment
        return moment


class BenchClient(Protocol):
    """One benchmark client inside a worker: connect first, then run when told to."""

    async def open(self) -> None: ...

    async def run(self) -> Sample | None: ...

    async def close(self) -> None: ...


class NatsPyClient:
    """Base of the bench clients built on nats-py: their settings, and closing the connection."""

    def __init__(self, kind: str, spec: BenchSpec, slot: ClientSlot, meter: Meter) -> None:
        self.kind = kind
        self.spec = spec
        self.slot = slot
        self.meter = meter
        self.nc: Client | None = None

    @property
    def client(self) -> Client:
        """The connection `open()` made: a client runs only once it is open."""
        if self.nc is None:
            raise RuntimeError("the benchmark client is not connected")
        return self.nc

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()


# A mode's set-up in the parent process before the workers start (streams, consumers, buckets).
Prepare = Callable[[BenchSpec], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Mode:
    """A `nats bench` mode: its natscli label and wording, and how to build its clients."""

    key: str
    label: str
    prefix: str
    verb: str
    split: bool
    caps_clients: bool
    make_client: Callable[[BenchSpec, ClientSlot, Meter], BenchClient]
    banner: Callable[[BenchSpec], dict[str, str]]
    prepare: Prepare | None = None
    runs_forever: bool = False


@dataclass
class RunOutcome:
    """What the workers produced: a Sample per client, and the progress timeline."""

    samples: list[Sample]
    timeline: list[tuple[float, list[float]]] = field(default_factory=list)


class ClientFailed(Exception):
    """A client failed; `phase` is "open" (connecting/subscribing) or "run"."""

    def __init__(self, index: int, phase: str, error: BaseException) -> None:
        super().__init__(str(error))
        self.index = index
        self.phase = phase
        self.error = error


# -- the parent side ------------------------------------------------------------------------------


class Supervisor:
    """Forks the workers, releases them together, draws progress, gathers the samples."""

    def __init__(self, mode: Mode, spec: BenchSpec, slots: list[ClientSlot]) -> None:
        self.mode = mode
        self.spec = spec
        self.slots = slots
        self.context = multiprocessing.get_context("fork")
        self.shared = self.context.RawArray("d", FIELDS_PER_CLIENT * len(slots))
        self.board = ProgressBoard(
            [slot.count for slot in slots], spec.progress and not mode.runs_forever
        )
        self.samples: dict[int, Sample] = {}
        self.timeline: list[tuple[float, list[float]]] = []
        self.workers: list[tuple[BaseProcess, Connection]] = []
        self.finished: set[int] = set()

    def run(self) -> RunOutcome:
        groups = distribute(self.slots, self.spec.worker_count())
        # Ctrl-C and SIGTERM end the run, even when this process was started with SIGINT
        # ignored (a background job, some test runners): natscli's signal.Notify does too.
        previous = {
            sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self._start(groups)
            self._wait_until_ready()
            for _, conn in self.workers:
                conn.send("go")
            started = time.monotonic()
            self._watch(started)
        finally:
            self._stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        ordered = [self.samples[slot.index] for slot in self.slots if slot.index in self.samples]
        return RunOutcome(ordered, self.timeline)

    def _start(self, groups: list[list[ClientSlot]]) -> None:
        pipes = [self.context.Pipe() for _ in groups]
        parent_ends = [parent for parent, _ in pipes]
        for group, (parent, child) in zip(groups, pipes, strict=True):
            process = self.context.Process(
                target=worker_main,
                args=(self.mode, self.spec, group, child, self.shared, parent_ends),
                daemon=True,
            )
            process.start()
            child.close()
            self.workers.append((process, parent))

    def _stop(self) -> None:
        for process, conn in self.workers:
            if id(conn) in self.finished:
                process.join(2)  # it is closing its connections and exiting on its own
            if process.is_alive():
                process.terminate()
        for process, conn in self.workers:
            process.join(2)
            if process.is_alive():
                process.kill()
                process.join()
            conn.close()

    def _wait_until_ready(self) -> None:
        waiting = {id(conn) for _, conn in self.workers}
        while waiting:
            for conn, message in self._receive(TICK_S):
                if message[0] == "ready":
                    waiting.discard(id(conn))
            self._draw()

    def _watch(self, started: float) -> None:
        next_sample = started
        while len(self.finished) < len(self.workers):
            for _, message in self._receive(TICK_S):
                if message[0] == "sample":
                    self.samples[message[1]] = message[2]
            now = time.monotonic()
            if now >= next_sample:
                self.timeline.append((now - started, self._column(0)))
                next_sample = now + TICK_S
            self._draw()
        self.timeline.append((time.monotonic() - started, self._column(0)))
        self._draw()

    def _receive(self, timeout: float) -> list[tuple[Connection, tuple[Any, ...]]]:
        """Messages from the workers; a failure or a worker that died ends the run."""
        conns = [conn for _, conn in self.workers if id(conn) not in self.finished]
        ready = multiprocessing.connection.wait(conns, timeout)
        messages: list[tuple[Connection, tuple[Any, ...]]] = []
        for conn in (conn for conn in conns if conn in ready):
            try:
                while id(conn) not in self.finished and conn.poll():
                    message: tuple[Any, ...] = conn.recv()
                    if message[0] in ("error", "fatal", "crash"):
                        self._fail(message)
                    else:
                        messages.append((conn, message))
                        if message[0] == "done":
                            self.finished.add(id(conn))
            except EOFError:
                process = next(p for p, c in self.workers if c is conn)
                process.join(1)
                raise CliError(
                    f"a benchmark worker exited unexpectedly (exit code {process.exitcode})"
                ) from None
        return messages

    def _fail(self, message: tuple[Any, ...]) -> None:
        kind, text = message[0], message[1]
        if kind == "crash":
            raise RuntimeError(f"benchmark worker failed:\n{text}")
        if kind == "fatal":
            raise Fatal(text)
        index, phase = message[2], message[3]
        if phase == "run":
            self.board.drawn = 0
            log(f"Error from client {index}: {text}")
        raise CliError(text)

    def _column(self, offset: int) -> list[float]:
        return [self.shared[i * FIELDS_PER_CLIENT + offset] for i in range(len(self.slots))]

    def _draw(self) -> None:
        if not self.board.enabled:
            return
        now = time.monotonic()
        states = [STATES[int(code)] for code in self._column(1)]
        elapsed = [now - moment if moment else None for moment in self._column(2)]
        self.board.draw(states, elapsed, self._column(0))


def distribute(slots: list[ClientSlot], workers: int) -> list[list[ClientSlot]]:
    """Round-robin the clients over `workers` processes (none left empty)."""
    groups: list[list[ClientSlot]] = [[] for _ in range(min(workers, len(slots)))]
    for number, slot in enumerate(slots):
        groups[number % len(groups)].append(slot)
    return groups


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted()


# -- the worker side ------------------------------------------------------------------------------


def worker_main(
    mode: Mode,
    spec: BenchSpec,
    slots: list[ClientSlot],
    conn: Any,
    shared: Any,
    parent_ends: list[Any],
) -> None:
    """Entry point of a worker process (forked: `mode` and `spec` arrive as they are)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for end in parent_ends:
        end.close()
    try:
        event_loop_runner().run(_work(mode, spec, slots, conn, shared))
    except ClientFailed as failed:
        kind = "fatal" if isinstance(failed.error, Fatal) else "error"
        text = describe(failed.error)
        if text is None:
            conn.send(("crash", "".join(traceback.format_exception(failed.error))))
        else:
            conn.send((kind, text, failed.index, failed.phase))
    except BaseException:
        conn.send(("crash", traceback.format_exc()))
    finally:
        conn.close()


async def _work(
    mode: Mode, spec: BenchSpec, slots: list[ClientSlot], conn: Any, shared: Any
) -> None:
    loop = asyncio.get_running_loop()
    go: asyncio.Future[None] = loop.create_future()

    def from_parent() -> None:
        try:
            conn.recv()
        except (EOFError, OSError):
            os._exit(1)  # the parent is gone: nobody is left to report to
        if not go.done():
            go.set_result(None)

    loop.add_reader(conn.fileno(), from_parent)
    clients = [mode.make_client(spec, slot, Meter(shared, slot.index)) for slot in slots]
    try:
        await asyncio.gather(
            *(_step(c.open, s, "open") for c, s in zip(clients, slots, strict=True))
        )
        conn.send(("ready",))
        await go
        samples = await asyncio.gather(
            *(_step(c.run, s, "run") for c, s in zip(clients, slots, strict=True))
        )
        for slot, sample in zip(slots, samples, strict=True):
            if sample is not None:
                conn.send(("sample", slot.index, sample))
        conn.send(("done",))
    finally:
        loop.remove_reader(conn.fileno())
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


async def _step(action: Callable[[], Awaitable[Any]], slot: ClientSlot, phase: str) -> Any:
    try:
        return await action()
    except Exception as exc:
        raise ClientFailed(slot.index, phase, exc) from exc
