"""kill -9 at random moments: every message, delete and consumer ack that was reported
durable is there after restart, and nothing but real messages is served.

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

from pynats.jetstream.store import ConsumerStore, FileStore, MessageNotFound, StoreConfig

CHILD = os.path.join(os.path.dirname(__file__), "crash_child.py")
ITERATIONS = int(os.environ.get("PYNATS_STORE_CRASH_ITERATIONS", "5"))
READY_TIMEOUT_S = 20.0


def data_for(seq: int) -> bytes:
    return b"crash-%d-" % seq + bytes([seq % 251]) * (seq % 64)


class Child:
    """The writer subprocess and the lines it managed to report before dying."""

    def __init__(self, directory: str, sync: str, seed: int) -> None:
        self.lines: list[str] = []
        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, CHILD, directory, sync, str(seed)],
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


def verify(directory: str, promises: dict[str, set[int]]) -> None:
    durable, requested, removed, acks = (promises[k] for k in "DrRA")
    store = FileStore(os.path.join(directory, "msgs"), StoreConfig(name="C"))
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
    consumer = ConsumerStore(os.path.join(directory, "c1"))
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


@pytest.mark.parametrize("sync", ["group", "always", "50ms"])
def test_kill_9_never_loses_what_was_reported_durable(tmp_path, sync):
    rng = random.Random(f"crash-{sync}")
    live = str(tmp_path / "live")
    promises: dict[str, set[int]] = {k: set() for k in "DrRA"}
    total_durable = 0
    for iteration in range(ITERATIONS):
        child = Child(live, sync, rng.randrange(1 << 30))
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
        verify(image, promises)
        shutil.rmtree(image)
    assert total_durable > 50, "the child should have made progress"
