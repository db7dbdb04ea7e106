"""DirJwtStore: nats-server's directory of account JWTs (layout, hash, newer-wins merges,
limits, eviction, expiry, deletion) without a server."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from tests.support import jwts

from pynats.server.resolvers import DirJwtStore, StoreError


def xor_hash(*tokens: str) -> bytes:
    out = bytearray(32)
    for token in tokens:
        for i, b in enumerate(hashlib.sha256(token.encode()).digest()):
            out[i] ^= b
    return bytes(out)


def account_token(op: jwts.Identity, acc: jwts.Identity, **times: int) -> str:
    """An account JWT with `iat`/`exp` as given."""
    nats = {"type": "account", "limits": {}}
    return jwts.encode(op, acc.public_key, "A", nats, v1=False, **times)


def test_one_file_per_account_and_sharded_directories_are_read(tmp_path: Path) -> None:
    op, acc = jwts.operator(), jwts.account()
    token = account_token(op, acc)
    shard = tmp_path / acc.public_key[-2:]
    shard.mkdir()
    (shard / f"{acc.public_key}.jwt").write_text(token)
    store = DirJwtStore(str(tmp_path), shard=True)
    assert store.load(acc.public_key) == token
    assert list(store.walk()) == [(acc.public_key, token)]
    assert store.hash == xor_hash(token)


def test_save_writes_key_dot_jwt_and_reports_changes(tmp_path: Path) -> None:
    op, acc = jwts.operator(), jwts.account()
    token = account_token(op, acc)
    changed: list[str] = []
    store = DirJwtStore(str(tmp_path))
    store.on_change = changed.append
    assert store.save(acc.public_key, token)
    assert not store.save(acc.public_key, token)
    assert (tmp_path / f"{acc.public_key}.jwt").read_text() == token
    assert changed == [acc.public_key]
    with pytest.raises(StoreError, match="invalid public key"):
        store.save("nope", token)


def test_save_if_newer_keeps_a_later_jwt(tmp_path: Path) -> None:
    op, acc = jwts.operator(), jwts.account()
    later = account_token(op, acc, iat=int(time.time()) + 60)
    earlier = account_token(op, acc, iat=int(time.time()) - 60)
    store = DirJwtStore(str(tmp_path))
    store.save(acc.public_key, later)
    assert not store.save_if_newer(acc.public_key, earlier)
    store.merge(f"{acc.public_key}|{earlier}\n")
    assert store.load(acc.public_key) == later
    newest = account_token(op, acc, iat=int(time.time()) + 120)
    assert store.save_if_newer(acc.public_key, newest)
    with pytest.raises(StoreError, match="2 entries"):
        store.merge("no separator")


def test_a_full_store_refuses_and_a_cache_evicts_the_least_recently_used(tmp_path: Path) -> None:
    op = jwts.operator()
    a, b, c = jwts.account(), jwts.account(), jwts.account()
    full = DirJwtStore(str(tmp_path / "full"), limit=1)
    full.save(a.public_key, account_token(op, a))
    with pytest.raises(StoreError, match="jwt store is full"):
        full.save(b.public_key, account_token(op, b))
    cache = DirJwtStore(str(tmp_path / "cache"), limit=2, evict=True)
    cache.save(a.public_key, account_token(op, a))
    cache.save(b.public_key, account_token(op, b))
    cache.load(a.public_key)
    cache.save(c.public_key, account_token(op, c))
    assert sorted(os.listdir(tmp_path / "cache")) == sorted(
        [f"{a.public_key}.jwt", f"{c.public_key}.jwt"]
    )


def test_expired_jwts_are_removed_and_left_out_of_walks(tmp_path: Path) -> None:
    op, acc = jwts.operator(), jwts.account()
    token = account_token(op, acc, exp=int(time.time()) - 1)
    store = DirJwtStore(str(tmp_path))
    store.save(acc.public_key, token)
    assert list(store.walk()) == []
    assert store.expire() == [acc.public_key]
    assert os.listdir(tmp_path) == []
    assert store.hash == bytes(32)


@pytest.mark.parametrize(("mode", "left"), [("rename", ".jwt.deleted"), ("hard", None)])
def test_delete_renames_or_removes(tmp_path: Path, mode: str, left: str | None) -> None:
    op, acc = jwts.operator(), jwts.account()
    deleted: list[str] = []
    store = DirJwtStore(str(tmp_path), delete=mode)
    store.on_delete = deleted.append
    store.save(acc.public_key, account_token(op, acc))
    store.delete(acc.public_key)
    store.delete(jwts.account().public_key)  # nothing there: not an error
    assert os.listdir(tmp_path) == ([acc.public_key + left] if left else [])
    assert deleted == [acc.public_key]
    with pytest.raises(StoreError, match="not set up"):
        DirJwtStore(str(tmp_path / "no")).delete(acc.public_key)
