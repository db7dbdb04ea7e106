"""The one narrow door through which the stores touch the disk.

Every open, write, fsync, rename, truncate and unlink of the message and consumer stores goes
through a `FileIO`. That is what lets tests swap in `RecordingFileIO`, keep the history of
operations, and rebuild the disk that a power failure would leave at any point
(`powerloss.py`). Writes are positional (`pwrite`) so the history says exactly which bytes
landed where. Keep this layer thin: no caching, no policy.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass


class FileIO:
    """Plain POSIX file operations on real files."""

    def open(self, path: str, create: bool = True) -> int:
        """Open read-write (created if missing and `create`); never O_APPEND (pwrite needs it)."""
        flags = os.O_RDWR | (os.O_CREAT if create else 0)
        return os.open(path, flags, 0o644)

    def close(self, fd: int) -> None:
        os.close(fd)

    def pwrite(self, fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, offset)
            view = view[written:]
            offset += written

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        return os.pread(fd, size, offset)

    def fsync(self, fd: int) -> None:
        os.fdatasync(fd) if hasattr(os, "fdatasync") else os.fsync(fd)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def size(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def truncate(self, fd: int, size: int) -> None:
        os.ftruncate(fd, size)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def mkdir(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def rmdir(self, path: str) -> None:
        os.rmdir(path)

    def listdir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def read_file(self, path: str) -> bytes:
        fd = os.open(path, os.O_RDONLY)
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def mark(self, note: object) -> None:
        """A point in the history (e.g. "these records were acked"); no-op on real disks."""


DEFAULT_FILEIO = FileIO()


@dataclass(frozen=True)
class Op:
    """One recorded operation. Paths are relative to the recorder's root."""

    kind: str  # create | write | truncate | fsync | fsync_dir | rename | unlink | mkdir | rmdir | mark
    path: str = ""
    offset: int = 0
    data: bytes = b""
    target: str = ""
    note: object = None


class RecordingFileIO(FileIO):
    """A real `FileIO` that also keeps the ordered history of what it did under `root`.

    An fsync is recorded when it *starts*: only bytes written before that point are covered,
    which is the conservative reading when other threads keep writing during the call.
    """

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.history: list[Op] = []
        self.baseline: dict[str, bytes | None] = _read_tree(self.root)
        self._paths: dict[int, str] = {}
        self._lock = threading.Lock()

    def _rel(self, path: str) -> str:
        return os.path.relpath(os.path.abspath(path), self.root)

    def _log(self, op: Op) -> None:
        with self._lock:
            self.history.append(op)

    def open(self, path: str, create: bool = True) -> int:
        existed = os.path.exists(path)
        fd = super().open(path, create)
        self._paths[fd] = self._rel(path)
        if not existed:
            self._log(Op("create", self._rel(path)))
        return fd

    def close(self, fd: int) -> None:
        self._paths.pop(fd, None)
        super().close(fd)

    def pwrite(self, fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
        self._log(Op("write", self._paths[fd], offset, bytes(data)))
        super().pwrite(fd, data, offset)

    def fsync(self, fd: int) -> None:
        self._log(Op("fsync", self._paths[fd]))
        super().fsync(fd)

    def fsync_dir(self, path: str) -> None:
        self._log(Op("fsync_dir", self._rel(path)))
        super().fsync_dir(path)

    def truncate(self, fd: int, size: int) -> None:
        self._log(Op("truncate", self._paths[fd], size))
        super().truncate(fd, size)

    def rename(self, src: str, dst: str) -> None:
        self._log(Op("rename", self._rel(src), target=self._rel(dst)))
        super().rename(src, dst)

    def unlink(self, path: str) -> None:
        self._log(Op("unlink", self._rel(path)))
        super().unlink(path)

    def mkdir(self, path: str) -> None:
        missing = []
        probe = os.path.abspath(path)
        while not os.path.exists(probe):
            missing.append(probe)
            probe = os.path.dirname(probe)
        super().mkdir(path)
        for created in reversed(missing):
            self._log(Op("mkdir", self._rel(created)))

    def rmdir(self, path: str) -> None:
        self._log(Op("rmdir", self._rel(path)))
        super().rmdir(path)

    def mark(self, note: object) -> None:
        self._log(Op("mark", note=note))


def _read_tree(root: str) -> dict[str, bytes | None]:
    """Files (bytes) and directories (None) already under `root`, taken as durable."""
    tree: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            tree[os.path.relpath(os.path.join(dirpath, name), root)] = None
        for name in filenames:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                tree[os.path.relpath(path, root)] = f.read()
    return tree
