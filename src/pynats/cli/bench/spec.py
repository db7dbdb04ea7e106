"""What one `nats bench` run was asked to do: the flags, checked, as one plain value.

`BenchSpec` is built once by the command (bench.py) and then read everywhere else: by the
banner, by the parent process that prepares streams and draws progress, and by the worker
processes that run the clients (they get it through fork, so it holds only plain data).
`ClientSlot` is one client's share of the work.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from pynats.gotime import MINUTE, NS_PER_S

DEFAULT_STREAM = "benchstream"
DEFAULT_BUCKET = "benchbucket"
DEFAULT_CONSUMER = "nats-bench"
SERVICE_NAME = "nats-bench-service"
SERVICE_VERSION = "1.0.0"


@dataclass
class BenchSpec:
    """Every flag of every `nats bench` mode (a mode reads the ones it declares)."""

    mode: str
    subject: str = ""
    msgs: int = 100_000
    size: int = 128
    clients: int = 1
    progress: bool = True
    csv_file: str = ""
    plot_file: str = ""
    workers: int = 0
    sleep_ns: int = 0
    throughput: int = 0
    duration_ns: int = 0
    multisubject: bool = False
    multisubject_max: int = 100_000
    multisubject_randomize: bool = False
    payload: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    stream: str = DEFAULT_STREAM
    create: bool = False
    storage: str = "file"
    replicas: int = 1
    max_bytes: int = 1024**3
    dedup: bool = False
    dedup_window_ns: int = 2 * MINUTE
    purge: bool = False
    persist_async: bool = False
    batch: int = 500
    consumer: str = DEFAULT_CONSUMER
    acks: str = "explicit"
    double_ack: bool = False
    filters: tuple[str, ...] = ()
    get_filter: str = ">"
    bucket: str = DEFAULT_BUCKET
    history: int = 1
    randomize: int = 0
    run_token: str = ""

    @property
    def sleep_s(self) -> float:
        """--sleep in the seconds asyncio.sleep takes."""
        return self.sleep_ns / NS_PER_S

    @property
    def subscribe_subject(self) -> str:
        """The subject subscribers and streams use: `SUBJ.*` in multi-subject mode."""
        return f"{self.subject}.*" if self.multisubject else self.subject

    @property
    def body(self) -> bytes:
        """The payload of every message: the --payload file, else --size zero bytes."""
        return self.payload if self.payload is not None else bytes(self.size)

    @property
    def per_client_rate(self) -> float:
        """The --throughput target of one client in msgs/s (0 = as fast as possible)."""
        return self.throughput / self.clients if self.throughput > 0 and self.clients else 0.0

    def publish_subject(self, number: int) -> str:
        """The subject of message `number` (natscli: `SUBJ.<n>` zero-padded in multi mode)."""
        if not self.multisubject:
            return self.subject
        if self.multisubject_max == 0:
            return f"{self.subject}.{number}"
        width = len(str(self.multisubject_max))
        if self.multisubject_randomize:
            number = random.randrange(self.multisubject_max)
        return f"{self.subject}.{number % self.multisubject_max:0{width}d}"

    def worker_count(self) -> int:
        """Processes the clients are spread over: --workers, else one per CPU (≤ clients)."""
        wanted = self.workers if self.workers > 0 else (os.cpu_count() or 1)
        return max(1, min(wanted, self.clients))


@dataclass(frozen=True)
class ClientSlot:
    """One client: its 0-based index, how many messages it handles, and its first number."""

    index: int
    count: int
    offset: int


def split_messages(total: int, clients: int) -> list[int]:
    """natscli's split: as even as possible, the first clients taking the remainder."""
    if clients <= 0:
        return []
    share, extra = divmod(total, clients)
    return [share + (1 if i < extra else 0) for i in range(clients)]


def client_slots(total: int, clients: int, split: bool) -> list[ClientSlot]:
    """Each client's share: the total split across clients, or the total for every client."""
    if not split:
        return [ClientSlot(i, total, 0) for i in range(clients)]
    slots = []
    offset = 0
    for index, count in enumerate(split_messages(total, clients)):
        slots.append(ClientSlot(index, count, offset))
        offset += count
    return slots
