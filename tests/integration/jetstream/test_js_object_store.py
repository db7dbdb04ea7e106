"""Object Store through nats-py: put/get in chunks from 0 bytes to 100 MB with the digest
checked, info, list, delete, watch, links, seal, and the server's memory while a big object
streams through it."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time

import nats.js.errors
import pytest
from nats.js.api import ObjectMeta

CHUNK = 128 * 1024
BIG_OBJECT_MB = int(os.environ.get("PYNATS_JS_BIG_OBJECT_MB", "100"))


def bucket(sname: str) -> str:
    return sname[-50:]


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 17])
async def test_put_and_get_round_trip(js, sname, size) -> None:
    obs = await js.create_object_store(bucket=bucket(sname))
    data = os.urandom(size)
    info = await obs.put("thing", data)
    assert info.size == size
    assert info.chunks == (size + CHUNK - 1) // CHUNK
    result = await obs.get("thing")
    assert result.data == data
    assert result.info.digest == info.digest


async def test_info_list_and_delete(js, sname) -> None:
    obs = await js.create_object_store(bucket=bucket(sname), description="things")
    await obs.put("a", b"alpha", meta=ObjectMeta(name="a", description="first"))
    await obs.put("b/with spaces", b"beta")
    info = await obs.get_info("a")
    assert (info.name, info.description, info.size, info.bucket) == ("a", "first", 5, bucket(sname))
    names = sorted(o.name for o in await obs.list())
    assert names == ["a", "b/with spaces"]
    await obs.delete("a")
    with pytest.raises(nats.js.errors.ObjectNotFoundError):
        await obs.get("a")
    assert [o.name for o in await obs.list(ignore_deletes=True)] == ["b/with spaces"]
    assert [(o.name, bool(o.deleted)) for o in await obs.list()] == [
        ("b/with spaces", False),
        ("a", True),
    ]
    status = await obs.status()
    assert status.bucket == bucket(sname) and status.description == "things"


async def test_replacing_an_object_drops_the_old_chunks(js, sname) -> None:
    obs = await js.create_object_store(bucket=bucket(sname))
    await obs.put("o", os.urandom(3 * CHUNK))
    await obs.put("o", b"small now")
    assert (await obs.get("o")).data == b"small now"
    info = await js.stream_info(f"OBJ_{bucket(sname)}")
    assert info.state.messages == 2, "one chunk and one meta message"


async def test_links(js, sname) -> None:
    """A link is an ObjectInfo naming another object (nats-py reads links; other clients
    write them): published here as those clients publish it."""
    name = bucket(sname)
    obs = await js.create_object_store(bucket=name)
    await obs.put("target", b"linked content")
    link = {
        "name": "alias",
        "bucket": name,
        "nuid": "linknuid",
        "size": 0,
        "chunks": 0,
        "options": {"link": {"bucket": name, "name": "target"}},
    }
    subject = f"$O.{name}.M.{base64.urlsafe_b64encode(b'alias').decode()}"
    await js.publish(subject, json.dumps(link).encode(), headers={"Nats-Rollup": "sub"})
    assert (await obs.get("alias")).data == b"linked content"
    info = await obs.get_info("alias")
    assert info.options.link.name == "target"


async def test_watch_sees_puts_and_deletes(js, sname) -> None:
    obs = await js.create_object_store(bucket=bucket(sname))
    await obs.put("before", b"1")
    watcher = await obs.watch()
    first = await watcher.updates(timeout=3)
    assert first.name == "before"
    assert await watcher.updates(timeout=3) is None, "end of the current objects"
    await obs.put("after", b"2")
    update = await watcher.updates(timeout=3)
    assert update.name == "after"
    await obs.delete("after")
    gone = await watcher.updates(timeout=3)
    assert (gone.name, gone.deleted) == ("after", True)
    await watcher.stop()


async def test_seal_makes_the_bucket_read_only(js, sname) -> None:
    obs = await js.create_object_store(bucket=bucket(sname))
    await obs.put("kept", b"data")
    await obs.seal()
    assert (await obs.status()).sealed is True
    assert (await obs.get("kept")).data == b"data"
    with pytest.raises(nats.js.errors.APIError):
        await obs.put("new", b"refused")


async def test_a_corrupted_chunk_is_caught_by_the_digest(js, nc, sname) -> None:
    obs = await js.create_object_store(bucket=bucket(sname))
    info = await obs.put("o", b"original bytes")
    # rewrite the chunk under the same nuid: the meta still names the old digest
    await js.purge_stream(f"OBJ_{bucket(sname)}", subject=f"$O.{bucket(sname)}.C.{info.nuid}")
    await js.publish(f"$O.{bucket(sname)}.C.{info.nuid}", b"tampered bytes")
    with pytest.raises(nats.js.errors.DigestMismatchError):
        await obs.get("o")


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssWatch:
    """Samples the server's resident memory in a thread while a transfer runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kb(self.pid))
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def test_a_100_mb_object_round_trips_with_its_digest_and_flat_memory(
    js_server, js, sname, tmp_path
) -> None:
    size = BIG_OBJECT_MB * 1024 * 1024
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    block = os.urandom(1024 * 1024)
    with open(source, "wb") as f:
        for i in range(BIG_OBJECT_MB):
            piece = block[i:] + block[:i]
            digest.update(piece)
            f.write(piece)
    obs = await js.create_object_store(bucket=bucket(sname))
    pid = js_server.proc.pid
    baseline = rss_kb(pid)
    with RssWatch(pid) as put_watch, open(source, "rb") as f:
        info = await obs.put("big", f)
    assert (info.size, info.chunks) == (size, size // CHUNK)
    target = tmp_path / "copy.bin"
    with RssWatch(pid) as get_watch, open(target, "wb") as out:
        result = await obs.get("big", writeinto=out)
    assert result.info.digest == info.digest
    copied = hashlib.sha256()
    with open(target, "rb") as f:
        while chunk := f.read(1 << 20):
            copied.update(chunk)
    assert copied.digest() == digest.digest()
    assert os.path.getsize(target) == size
    # the object went through the server without being held in its memory (a pynats
    # promise: nats-server 2.15.1 grows by about the object's size here)
    growth_mb = (max(put_watch.peak, get_watch.peak) - baseline) / 1024
    assert growth_mb < 80, f"server memory grew by {growth_mb:.0f} MB for a {size >> 20} MB object"
