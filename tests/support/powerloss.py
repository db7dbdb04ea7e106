"""The power-loss harness: record what the stores do to the disk, then rebuild the disk a
power failure would leave at any point of that history.

`RecordingFileIO` is a real `FileIO` (the stores' only door to the disk) that also keeps the
ordered history of operations under its root; `mark` notes points in it ("this was acked").
`rebuild` replays a prefix of the history under the strict model ("a filesystem that drops
everything not fsynced"):

- a file's bytes survive only as of its last fsync before the cut; the writes after it may
  reach the disk partly: a prefix of them, the last one possibly torn (`rng` chooses how many);
- a name (create, rename, unlink, mkdir) survives only once its parent directory was fsynced
  after the change; an unlinked-but-not-durably file comes back with its durable bytes.

It never touches the recorded directory, only a fresh one.
"""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass, field

from pynats.jetstream.store import FileIO


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
        """A point in the history (e.g. "these records were acked"): see `acked_notes`."""
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


# -- rebuilding the disk after a cut --------------------------------------------------------


@dataclass
class _Inode:
    is_dir: bool
    content: bytearray = field(default_factory=bytearray)
    durable: bytes = b""
    unsynced: list[Op] = field(default_factory=list)


@dataclass
class _Disk:
    inodes: list[_Inode] = field(default_factory=list)
    names: dict[str, int] = field(default_factory=dict)  # path -> inode, as the OS sees it
    durable_names: dict[str, int] = field(default_factory=dict)  # path -> inode, after a crash

    def new_inode(self, is_dir: bool, content: bytes = b"") -> int:
        self.inodes.append(_Inode(is_dir, bytearray(content), content))
        return len(self.inodes) - 1


def fsync_points(history: list[Op]) -> list[int]:
    """Cut positions just after each fsync / directory fsync (and after the last op)."""
    points = [i + 1 for i, op in enumerate(history) if op.kind in ("fsync", "fsync_dir")]
    if not points or points[-1] != len(history):
        points.append(len(history))
    return points


def acked_notes(history: list[Op], cut: int) -> list[object]:
    """The `mark` notes (acks) recorded before the cut."""
    return [op.note for op in history[:cut] if op.kind == "mark"]


def rebuild(
    baseline: dict[str, bytes | None],
    history: list[Op],
    cut: int,
    dest: str,
    rng: random.Random | None = None,
) -> None:
    """Write into the empty directory `dest` what survives a power cut after `history[:cut]`.

    With `rng`, each file also gets a random prefix of its unsynced writes (the last one torn
    at a random length); without it, exactly the fsynced state.
    """
    disk = _Disk()
    for path, content in sorted(baseline.items()):
        inode = disk.new_inode(content is None, content or b"")
        disk.names[path] = disk.durable_names[path] = inode
    for op in history[:cut]:
        _apply(disk, op)
    _materialise(disk, dest, rng)


def _apply(disk: _Disk, op: Op) -> None:
    kind = op.kind
    if kind == "create":
        disk.names[op.path] = disk.new_inode(False)
    elif kind == "mkdir":
        disk.names[op.path] = disk.new_inode(True)
    elif kind in ("write", "truncate"):
        inode = disk.inodes[disk.names[op.path]]
        _write(inode.content, op)
        inode.unsynced.append(op)
    elif kind == "fsync":
        inode = disk.inodes[disk.names[op.path]]
        inode.durable = bytes(inode.content)
        inode.unsynced.clear()
    elif kind == "fsync_dir":
        _sync_dir(disk, op.path)
    elif kind == "rename":
        inode_id = disk.names.pop(op.path)
        disk.names[op.target] = inode_id
    elif kind in ("unlink", "rmdir"):
        disk.names.pop(op.path, None)


def _write(content: bytearray, op: Op, limit: int | None = None) -> None:
    if op.kind == "truncate":
        del content[op.offset :]
        return
    data = op.data if limit is None else op.data[:limit]
    end = op.offset + len(data)
    if len(content) < op.offset:
        content.extend(bytes(op.offset - len(content)))
    content[op.offset : end] = data


def _parent(path: str) -> str:
    parent = os.path.dirname(path)
    return parent if parent else "."


def _sync_dir(disk: _Disk, directory: str) -> None:
    """Make the directory's entries durable as the OS sees them now."""
    directory = os.path.normpath(directory)
    for path in [p for p in disk.durable_names if _parent(p) == directory]:
        if disk.names.get(path) != disk.durable_names[path]:
            del disk.durable_names[path]
    for path, inode in disk.names.items():
        if _parent(path) == directory:
            disk.durable_names[path] = inode


def _reachable(disk: _Disk, path: str) -> bool:
    parent = _parent(path)
    while parent != ".":
        inode = disk.durable_names.get(parent)
        if inode is None or not disk.inodes[inode].is_dir:
            return False
        parent = _parent(parent)
    return True


def _materialise(disk: _Disk, dest: str, rng: random.Random | None) -> None:
    for path in sorted(disk.durable_names, key=lambda p: p.count("/")):
        if not _reachable(disk, path):
            continue
        inode = disk.inodes[disk.durable_names[path]]
        full = os.path.join(dest, path)
        if inode.is_dir:
            os.makedirs(full, exist_ok=True)
            continue
        content = bytearray(inode.durable)
        if rng is not None and inode.unsynced:
            applied = rng.randint(0, len(inode.unsynced))
            for op in inode.unsynced[:applied]:
                _write(content, op)
            if applied < len(inode.unsynced) and rng.random() < 0.5:
                torn = inode.unsynced[applied]
                if torn.kind == "write" and torn.data:
                    _write(content, torn, rng.randint(1, len(torn.data)))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(content)
