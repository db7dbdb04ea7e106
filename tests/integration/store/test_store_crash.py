"""kill -9 at random moments: every message, delete and consumer ack that was reported
durable is there after restart, and nothing but real messages is served.

The `group` mode runs once more with the stores encrypted (store/crypt.py): the same promise,
and no message body is found in the files.

PYNATS_STORE_CRASH_ITERATIONS (default 5 per sync mode) runs the loop longer."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from pynats.jetstream.store import (
    DEFAULT_FILEIO,
    ConsumerStore,
    FileIO,
    FileStore,
    MessageNotFound,
    StoreConfig,
)
from pynats.jetstream.store.crypt import EncryptedFileIO, Keyring

CHILD = os.path.join(os.path.dirname(__file__), "crash_child.py")
ITERATIONS = int(os.environ.get("PYNATS_STORE_CRASH_ITERATIONS", "5"))
READY_TIMEOUT_S = 20.0
KEY = "crash-test-key"


def data_for(seq: int) -> bytes:
    return b"crash-%d-" % seq + bytes([seq % 251]) * (seq % 64)


class Child:
    """The writer subprocess and the lines it managed to report before dying."""

    def __init__(self, directory: str, sync: str, seed: int, key: str = "") -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, CHILD, directory, sync, str(seed)] + ([key] if key else []),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            if line == "ready\n":
                self.ready.set()
            elif line.endswith("\n"):  # a torn last line was never a promise
                self.lines.append(line.split())

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        stderr = self.proc.stderr.read()  # type: ignore[union-attr]
        assert "Traceback" not in stderr, stderr


def verify(directory: str, promises: dict[str, set[int]], fileio: FileIO = DEFAULT_FILEIO) -> None:
    durable, requested, removed, acks = (promises[k] for k in "DrRA")
    store = FileStore(os.path.join(directory, "msgs"), StoreConfig(name="C"), fileio=fileio)
    try:
        assert store.damage() == [] or all(d.reason == "truncated record" for d in store.damage())
        for seq in durable - requested:
            assert store.load_msg(seq).data == data_for(seq), f"durable message {seq} lost"
        for seq in removed:
            with pytest.raises(MessageNotFound):
                store.load_msg(seq)
        for seq in range(store.first_seq, store.last_seq + 1):
            try:
                msg = store.load_msg(seq)
            except MessageNotFound:
                continue
            assert msg.data == data_for(seq), f"garbage served at {seq}"
        assert store.last_seq >= max(durable, default=0)
    finally:
        store.stop()
    consumer = ConsumerStore(os.path.join(directory, "c1"), fileio=fileio)
    try:
        for seq in acks:
            assert seq not in consumer.state.pending, f"durable ack of {seq} lost"
            assert consumer.state.ack_floor.stream_seq >= seq or seq in _pending_gap(consumer)
    finally:
        consumer.stop()


def _pending_gap(consumer: ConsumerStore) -> set[int]:
    """Acked seqs above the floor are fine as long as an older one is still pending."""
    floor = consumer.state.ack_floor.stream_seq
    return set(range(floor + 1, consumer.state.delivered.stream_seq + 1))


def _plaintext_found(directory: str) -> list[str]:
    found = []
    for root, _dirs, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as f:
                if b"crash-" in f.read():
                    found.append(os.path.join(root, name))
    return found


@pytest.mark.parametrize("sync", ["group", "always", "50ms", "group-encrypted"])
def test_kill_9_never_loses_what_was_reported_durable(tmp_path, sync):
    rng = random.Random(f"crash-{sync}")
    key = KEY if sync.endswith("-encrypted") else ""
    sync = sync.removesuffix("-encrypted")
    fileio = EncryptedFileIO(Keyring(key)) if key else DEFAULT_FILEIO
    live = str(tmp_path / "live")
    promises: dict[str, set[int]] = {k: set() for k in "DrRA"}
    total_durable = 0
    for iteration in range(ITERATIONS):
        child = Child(live, sync, rng.randrange(1 << 30), key)
        if iteration % 4 == 3:
            time.sleep(rng.uniform(0.0, 0.15))  # sometimes die during start-up recovery
        else:
            assert child.ready.wait(READY_TIMEOUT_S), "child did not start"
            time.sleep(rng.uniform(0.05, 0.4))
        child.kill()
        for kind, seq in child.lines:
            promises[kind].add(int(seq))
        total_durable = len(promises["D"])
        image = str(tmp_path / f"image{iteration}")
        shutil.copytree(live, image)  # verify a copy: the next child continues the crashed state
        verify(image, promises, fileio)
        if key:
            assert _plaintext_found(image) == [], "a message body is stored in plaintext"
        shutil.rmtree(image)
    assert total_durable > 50, "the child should have made progress"
