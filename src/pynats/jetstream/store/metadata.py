"""Durable metadata files: stream and consumer configs, index snapshots.

"Metadata is data": a config is answered as saved only once it would survive a power cut.
`write_durable` writes a temporary file, fsyncs it, renames it over the target and fsyncs the
directory, so a reader sees either the old or the new content, never a mix. Blocking; ~2
fsyncs. Call it from a worker thread if the loop must not wait.
"""

from __future__ import annotations

import os

from .fileio import DEFAULT_FILEIO, FileIO

TMP_SUFFIX = ".tmp"
DELETING_SUFFIX = ".deleting"


def write_durable(path: str, data: bytes, fileio: FileIO = DEFAULT_FILEIO) -> None:
    """Atomically and durably replace `path` with `data` (creating its directory if needed)."""
    directory = os.path.dirname(os.path.abspath(path))
    ensure_dir_durable(directory, fileio)
    tmp = path + TMP_SUFFIX
    fd = fileio.open(tmp)
    try:
        fileio.truncate(fd, 0)
        fileio.pwrite(fd, data, 0)
        fileio.fsync(fd)
    finally:
        fileio.close(fd)
    fileio.rename(tmp, path)
    fileio.fsync_dir(directory)


def read_file(path: str, fileio: FileIO = DEFAULT_FILEIO) -> bytes | None:
    """The file's bytes, or None if it does not exist."""
    if not fileio.exists(path):
        return None
    return fileio.read_file(path)


def ensure_dir_durable(directory: str, fileio: FileIO = DEFAULT_FILEIO) -> None:
    """Create `directory` (and parents) so that its entry survives a power cut."""
    directory = os.path.abspath(directory)
    if fileio.exists(directory):
        return
    missing = []
    probe = directory
    while not fileio.exists(probe):
        missing.append(probe)
        probe = os.path.dirname(probe)
    fileio.mkdir(directory)
    for created in reversed(missing):
        fileio.fsync_dir(os.path.dirname(created))


def remove_durable(path: str, fileio: FileIO = DEFAULT_FILEIO) -> None:
    """Unlink a file and make the removal durable."""
    if fileio.exists(path):
        fileio.unlink(path)
        fileio.fsync_dir(os.path.dirname(os.path.abspath(path)))


def remove_tree_durable(directory: str, fileio: FileIO = DEFAULT_FILEIO) -> None:
    """Delete a directory tree such that a crash never leaves it half-deleted but present.

    The directory is first renamed to `<dir>.deleting` (durably): after a crash, whatever
    remains under that name is garbage that `cleanup_deleting` removes at start-up.
    """
    directory = os.path.abspath(directory)
    if not fileio.exists(directory):
        return
    doomed = directory + DELETING_SUFFIX
    fileio.rename(directory, doomed)
    fileio.fsync_dir(os.path.dirname(directory))
    _remove_tree(doomed, fileio)
    fileio.fsync_dir(os.path.dirname(directory))


def cleanup_deleting(parent: str, fileio: FileIO = DEFAULT_FILEIO) -> None:
    """Finish deletions a crash interrupted (directories named `*.deleting` under `parent`)."""
    if not fileio.exists(parent):
        return
    for name in fileio.listdir(parent):
        if name.endswith(DELETING_SUFFIX):
            _remove_tree(os.path.join(parent, name), fileio)


def _remove_tree(directory: str, fileio: FileIO) -> None:
    for name in fileio.listdir(directory):
        path = os.path.join(directory, name)
        if os.path.isdir(path) and not os.path.islink(path):
            _remove_tree(path, fileio)
        else:
            fileio.unlink(path)
    fileio.rmdir(directory)
