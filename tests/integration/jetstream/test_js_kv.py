"""Key-Value buckets through nats-py: the server side of `create_key_value` / `key_value`."""

from __future__ import annotations

import asyncio

import nats.js.errors
import pytest
from tests.support.waiting import wait_until


def bucket_name(sname: str) -> str:
    return sname.replace(".", "_")[-60:]


async def test_put_get_and_revisions(js, sname) -> None:
    kv = await js.create_key_value(bucket=bucket_name(sname), history=5)
    r1 = await kv.put("color", b"red")
    r2 = await kv.put("color", b"blue")
    assert r2 == r1 + 1
    entry = await kv.get("color")
    assert (entry.value, entry.revision, entry.key) == (b"blue", r2, "color")
    assert (await kv.get("color", revision=r1)).value == b"red"
    with pytest.raises(nats.js.errors.KeyNotFoundError):
        await kv.get("nope")
    await kv.put("other", b"x")
    with pytest.raises(nats.js.errors.KeyNotFoundError):
        await kv.get("color", revision=r2 + 1)  # a revision of another key


async def test_create_fails_if_the_key_exists_and_works_again_after_delete(js, sname) -> None:
    kv = await js.create_key_value(bucket=bucket_name(sname))
    await kv.create("k", b"1")
    with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
        await kv.create("k", b"2")
    await kv.delete("k")
    with pytest.raises(nats.js.errors.KeyNotFoundError):
        await kv.get("k")
    rev = await kv.create("k", b"3")
    assert (await kv.get("k")).revision == rev


async def test_update_is_compare_and_set(js, sname) -> None:
    kv = await js.create_key_value(bucket=bucket_name(sname))
    rev = await kv.put("k", b"1")
    new = await kv.update("k", b"2", last=rev)
    with pytest.raises(nats.js.errors.KeyWrongLastSequenceError):
        await kv.update("k", b"3", last=rev)
    assert (await kv.get("k")).revision == new


async def test_history_keys_and_purge(js, sname) -> None:
    kv = await js.create_key_value(bucket=bucket_name(sname), history=3)
    for i in range(5):
        await kv.put("a", b"%d" % i)
    await kv.put("b.c", b"x")
    history = await kv.history("a")
    assert [e.value for e in history] == [b"2", b"3", b"4"], "history keeps the newest three"
    assert sorted(await kv.keys()) == ["a", "b.c"]
    await kv.delete("b.c")
    assert await kv.keys() == ["a"]
    await kv.purge("a")
    history = await kv.history("a")
    assert [e.operation for e in history] == ["PURGE"], "purge leaves only its marker"
    with pytest.raises(nats.js.errors.NoKeysError):
        await kv.keys()


async def test_watch_all_sends_current_values_then_updates_then_deletes(js, sname) -> None:
    kv = await js.create_key_value(bucket=bucket_name(sname), history=5)
    await kv.put("a", b"1")
    await kv.put("a", b"2")
    await kv.put("b", b"1")
    watcher = await kv.watchall()
    initial = []
    async for entry in watcher:
        if entry is None:
            break
        initial.append((entry.key, entry.value))
    assert initial == [("a", b"2"), ("b", b"1")], "the latest value of each key"
    await kv.put("c", b"new")
    update = await watcher.updates(timeout=3)
    assert (update.key, update.value, update.operation) == ("c", b"new", None)
    await kv.delete("a")
    deleted = await watcher.updates(timeout=3)
    assert (deleted.key, deleted.operation) == ("a", "DEL")
    await watcher.stop()


async def test_watch_options(js, sname) -> None:
    kv = await js.create_key_value(bucket=bucket_name(sname), history=5)
    await kv.put("k", b"1")
    await kv.put("k", b"2")
    await kv.put("gone", b"x")
    await kv.delete("gone")

    async def initial(**kwargs):
        watcher = await kv.watch(">", **kwargs)
        seen = []
        async for entry in watcher:
            if entry is None:
                break
            seen.append(entry)
        await watcher.stop()
        return seen

    everything = await initial(include_history=True)
    assert [(e.key, e.value) for e in everything] == [
        ("k", b"1"),
        ("k", b"2"),
        ("gone", b"x"),
        ("gone", b""),
    ]
    live = await initial(ignore_deletes=True)
    assert [e.key for e in live] == ["k"]
    meta = await initial(meta_only=True)
    assert [(e.key, e.value) for e in meta] == [("k", b""), ("gone", b"")]


async def test_watch_of_an_empty_bucket_signals_the_end_at_once(js, sname) -> None:
    kv = await js.create_key_value(bucket=bucket_name(sname))
    watcher = await kv.watchall()
    assert await watcher.updates(timeout=2) is None
    await kv.put("first", b"!")
    entry = await watcher.updates(timeout=3)
    assert entry.key == "first"
    await watcher.stop()


async def test_status_and_bucket_binding(js, sname) -> None:
    name = bucket_name(sname)
    await js.create_key_value(bucket=name, history=4, ttl=60, max_value_size=100)
    kv = await js.key_value(name)
    await kv.put("a", b"1")
    status = await kv.status()
    assert (status.bucket, status.values, status.history, status.ttl) == (name, 1, 4, 60.0)
    with pytest.raises(nats.js.errors.BadRequestError):
        await kv.put("big", b"x" * 101)
    with pytest.raises(nats.js.errors.BucketNotFoundError):
        await js.key_value(name + "_missing")


async def test_ttl_expires_values(js, sname) -> None:
    kv = await js.create_key_value(bucket=bucket_name(sname), ttl=0.5)
    await kv.put("short", b"lived")
    assert (await kv.get("short")).value == b"lived"

    async def expired() -> bool:
        try:
            await kv.get("short")
        except nats.js.errors.KeyNotFoundError:
            return True
        return False

    await wait_until(expired, timeout=5)


async def test_purge_deletes_removes_old_markers(js, sname) -> None:
    name = bucket_name(sname)
    kv = await js.create_key_value(bucket=name)
    await kv.put("a", b"1")
    await kv.put("b", b"1")
    await kv.delete("a")
    await kv.purge("b")
    assert (await kv.status()).values == 2
    await kv.purge_deletes(olderthan=-1)
    assert (await kv.status()).values == 0


async def test_delete_bucket(js, sname) -> None:
    name = bucket_name(sname)
    await js.create_key_value(bucket=name)
    assert await js.delete_key_value(name)
    with pytest.raises(nats.js.errors.BucketNotFoundError):
        await js.key_value(name)


async def test_concurrent_creates_only_one_wins(js, sname) -> None:
    kv = await js.create_key_value(bucket=bucket_name(sname))
    results = await asyncio.gather(
        *(kv.create("lock", b"%d" % i) for i in range(5)), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, int)]
    assert len(winners) == 1
    assert all(
        isinstance(r, nats.js.errors.KeyWrongLastSequenceError) for r in results if r not in winners
    )
