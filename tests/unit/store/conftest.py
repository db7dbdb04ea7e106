"""One contract, two stores: fixtures that build either kind on real files in tmp_path."""

from __future__ import annotations

import pytest

from pynats.jetstream.store import FileStore, MemoryStore, StorageType, StoreConfig


class StoreMaker:
    """Builds the store under test; `reopen` restarts a file store (memory: same store)."""

    def __init__(self, kind: str, path) -> None:
        self.kind = kind
        self.path = str(path / "msgs")
        self.store = None

    def __call__(self, **limits) -> FileStore | MemoryStore:
        storage = StorageType.FILE if self.kind == "file" else StorageType.MEMORY
        config = StoreConfig(name="S", storage=storage, **limits)
        if self.kind == "file":
            self.store = FileStore(self.path, config, segment_bytes=4096)
        else:
            self.store = MemoryStore(config)
        return self.store

    def reopen(self, **limits):
        if self.kind == "memory":
            return self.store
        self.store.stop()
        return self(**limits)


@pytest.fixture(params=["memory", "file"])
def make_store(request, tmp_path):
    maker = StoreMaker(request.param, tmp_path)
    yield maker
    if maker.store is not None:
        maker.store.stop()
