"""Progress of an object transfer: a byte-counting bar, and the file wrappers that feed it.

nats-py's ObjectStore reads a put's source with `readinto()` and writes a get's data with
`write()`, both in a worker thread; `CountingReader` / `CountingWriter` wrap the real file and
report each chunk to a callback, so the bar (and the byte count `obj get` checks) follow the
transfer. The bar is the shared one-line bar of progress.py, drawn only when stderr is a
terminal, with sizes in IEC units (`1.5 MiB / 5.0 MiB`) like natscli's object transfers.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from pynats.cli.ui.humanize import ibytes
from pynats.cli.ui.progress import ProgressBar

# natscli draws a bar only for objects larger than this.
PROGRESS_THRESHOLD_BYTES = 20 * 1024


class ByteProgressBar(ProgressBar):
    """The shared progress bar, counting bytes."""

    TEXT_WIDTH = 50

    def describe(self, bar: str, fraction: float, elapsed: float, rate: float) -> str:
        return (
            f"{ibytes(self.done)} / {ibytes(self.total)} {bar} {fraction * 100:5.1f}%"
            f" {ibytes(rate)}/s\x1b[K"
        )


class CountingReader:
    """A binary file whose `readinto()` reports how many bytes each call read."""

    def __init__(self, raw: io.BufferedIOBase, on_read: Callable[[int], None]) -> None:
        self.raw = raw
        self.on_read = on_read

    def readinto(self, buffer: bytearray | memoryview) -> int:
        count = self.raw.readinto(buffer) or 0
        if count:
            self.on_read(count)
        return count


class CountingWriter:
    """A binary file whose `write()` counts the bytes written (and reports them)."""

    def __init__(
        self, raw: io.BufferedIOBase, on_write: Callable[[int], None] | None = None
    ) -> None:
        self.raw = raw
        self.on_write = on_write
        self.written = 0

    def write(self, data: bytes) -> int:
        count = self.raw.write(data)
        self.written += len(data)
        if self.on_write is not None:
            self.on_write(len(data))
        return count
