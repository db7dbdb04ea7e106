"""Encryption at rest (store/crypt.py) on real files: the encrypting FileIO keeps offsets and
sizes, stores nothing readable, refuses another key, and the file store's checksums still find
torn and damaged records under it."""

from __future__ import annotations

import os

import pytest

from pynats.jetstream.store import (
    ConsumerStore,
    DamagedMessage,
    FileIO,
    FileStore,
    StoreConfig,
    crypt,
    write_durable,
)
from pynats.jetstream.store.crypt import (
    AES,
    CHACHA,
    PREAMBLE_SIZE,
    EncryptedFileIO,
    Keyring,
    WrongKey,
)

CFG = StoreConfig(name="S")


def physical(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("cipher", [CHACHA, AES])
def test_positional_writes_and_reads_round_trip(tmp_path, cipher):
    io = EncryptedFileIO(Keyring("k1", cipher))
    path = str(tmp_path / "f")
    fd = io.open(path)
    assert io.size(fd) == 0
    plain = bytearray(os.urandom(1000))
    io.pwrite(fd, plain[:300], 0)
    io.pwrite(fd, plain[300:1000], 300)  # an offset inside a keystream block
    io.pwrite(fd, b"Z" * 17, 123)  # overwrite in place (an erasing delete)
    plain[123:140] = b"Z" * 17
    assert io.size(fd) == 1000
    for offset, size in ((0, 1000), (1, 5), (63, 130), (555, 445), (990, 100)):
        assert io.pread(fd, size, offset) == bytes(plain[offset : offset + size])
    io.truncate(fd, 500)
    assert io.size(fd) == 500
    io.close(fd)
    raw = physical(path)
    assert len(raw) == PREAMBLE_SIZE + 500 and raw[:4] == b"PNJE" and raw[5] == cipher
    assert raw[PREAMBLE_SIZE:] != bytes(plain[:500])
    assert io.read_file(path) == bytes(plain[:500])
    # every file has its own key: the same bytes encrypt differently
    write_durable(str(tmp_path / "g"), bytes(plain[:500]), io)
    assert physical(str(tmp_path / "g"))[PREAMBLE_SIZE:] != raw[PREAMBLE_SIZE:]


def test_another_key_is_refused_not_read_as_damage(tmp_path):
    path = str(tmp_path / "f")
    write_durable(path, b"secret bytes", EncryptedFileIO(Keyring("right")))
    other = EncryptedFileIO(Keyring("wrong"))
    with pytest.raises(WrongKey, match="unable to recover keys"):
        other.read_file(path)
    fd = other.open(path)
    with pytest.raises(WrongKey):
        other.size(fd)
    other.truncate(fd, 0)  # a leftover temporary file is reused: truncated first
    other.pwrite(fd, b"mine", 0)
    other.close(fd)
    assert other.read_file(path) == b"mine"


def test_a_preamble_torn_before_its_fsync_reads_as_an_empty_file(tmp_path):
    path = str(tmp_path / "f")
    with open(path, "wb") as f:
        f.write(b"PNJE\x01\x01")
    io = EncryptedFileIO(Keyring("k"))
    assert io.read_file(path) == b""
    fd = io.open(path)
    assert io.size(fd) == 0
    io.pwrite(fd, b"fresh", 0)
    io.close(fd)
    assert io.read_file(path) == b"fresh"


def _segments(directory: str) -> list[str]:
    return sorted(os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".log"))


def test_file_store_encrypted_stores_nothing_readable_and_recovers(tmp_path):
    io = EncryptedFileIO(Keyring("store-key", AES))
    directory = str(tmp_path / "msgs")
    store = FileStore(directory, CFG, fileio=io, segment_bytes=4096)
    for i in range(100):
        store.store_msg(
            f"orders.secret.{i % 3}", b"NATS/1.0\r\nX-Card: 4111\r\n\r\n", b"BODY%03d" % i
        )
    store.remove_msg(7, erase=True)
    store.stop()
    consumer = ConsumerStore(str(tmp_path / "c1"), fileio=io)
    consumer.update_delivered(5, 5, 1, 0)
    consumer.update_acks(5, 5)
    consumer.stop()
    for root, _dirs, files in os.walk(tmp_path):
        for name in files:
            raw = physical(os.path.join(root, name))
            for needle in (b"BODY0", b"orders.secret", b"X-Card", b"PNJS", b"PNIX"):
                assert needle not in raw, (name, needle)
    os.unlink(os.path.join(directory, "index.snap"))  # recover by scanning the segments
    store = FileStore(directory, CFG, fileio=io, segment_bytes=4096)
    try:
        assert store.msgs == 99 and store.damage() == []
        assert store.load_msg(51).data == b"BODY050"
        assert store.load_msg(99).subject == "orders.secret.2"
    finally:
        store.stop()
    consumer = ConsumerStore(str(tmp_path / "c1"), fileio=io)
    assert consumer.state.ack_floor.stream_seq == 5
    consumer.stop()
    with pytest.raises(WrongKey):
        FileStore(directory, CFG, fileio=EncryptedFileIO(Keyring("other")))


def test_a_torn_encrypted_tail_is_dropped_like_a_plaintext_one(tmp_path):
    io = EncryptedFileIO(Keyring("k"))
    directory = str(tmp_path / "msgs")
    store = FileStore(directory, CFG, fileio=io)
    for i in range(10):
        store.store_msg("a", None, b"m%d" % i)
    store.sync()
    store._close_files()  # a crash: no snapshot
    (last,) = _segments(directory)
    with open(last, "r+b") as f:
        f.truncate(os.path.getsize(last) - 3)
    store = FileStore(directory, CFG, fileio=io)
    try:
        assert store.msgs == 9 and store.load_msg(9).data == b"m8"
        assert [d.reason for d in store.damage()] == ["truncated record"]
        store.store_msg("a", None, b"after")  # continues in a fresh segment
        assert store.load_msg(store.last_seq).data == b"after"
    finally:
        store.stop()


def test_a_flipped_encrypted_byte_fails_the_record_checksum(tmp_path):
    io = EncryptedFileIO(Keyring("k"))
    directory = str(tmp_path / "msgs")
    store = FileStore(directory, CFG, fileio=io, cache_bytes=0)
    for i in range(5):
        store.store_msg("a", None, b"payload-%d" % i)
    store.sync()
    (seg,) = _segments(directory)
    raw = bytearray(physical(seg))
    raw[-3] ^= 0x40  # inside the last message's payload
    with open(seg, "r+b") as f:
        f.write(raw)
    try:
        with pytest.raises(DamagedMessage):
            store.load_msg(5)
        assert store.load_msg(4).data == b"payload-3"
    finally:
        store.stop()


def test_convert_tree_encrypts_plaintext_and_rotates_the_previous_key(tmp_path):
    new, old = Keyring("new"), Keyring("old", AES)
    plain_io = FileIO()
    files = {
        "plain": (b'{"config": 1}', None),
        "old": (b"old secret", old),
        "new-aes": (b"same key, other cipher", Keyring("new", AES)),
        "current": (b"already fine", new),
        "foreign": (b"nobody's", Keyring("stranger")),
    }
    for name, (data, ring) in files.items():
        io = plain_io if ring is None else EncryptedFileIO(ring)
        write_durable(str(tmp_path / name), data, io)
    (tmp_path / "empty").write_bytes(b"")
    found, todo = crypt.convert_tree(str(tmp_path), new, old, plain_io)
    kinds = {os.path.basename(p): k for p, k in found.items()}
    assert kinds == {
        "plain": crypt.PLAIN,
        "old": crypt.CONVERT,
        "new-aes": crypt.CONVERT,
        "current": crypt.CURRENT,
        "foreign": crypt.FOREIGN,
        "empty": crypt.EMPTY,
    }
    for path in todo:
        crypt.rewrite(path, new, old, plain_io)
    io = EncryptedFileIO(new)
    for name in ("plain", "old", "new-aes", "current"):
        assert io.read_file(str(tmp_path / name)) == files[name][0]
        assert physical(str(tmp_path / name))[5] == CHACHA
    found, todo = crypt.convert_tree(str(tmp_path), new, None, plain_io)
    assert todo == []


def test_cipher_names_as_nats_server_reads_them():
    assert crypt.parse_cipher("ChaChaPoly") == CHACHA
    assert crypt.parse_cipher("chacha") == CHACHA
    assert crypt.parse_cipher("AES") == AES
    assert crypt.parse_cipher("chacha20") is None
