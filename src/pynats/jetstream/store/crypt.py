"""Encryption at rest (`jetstream { key, cipher, prev_key }`): a `FileIO` that encrypts.

`EncryptedFileIO` wraps the stores' one door to the disk (fileio.py), so the stores, their
record format, checksums, recovery and group commit are the same code with and without a key;
a server without a key never builds one and its files are written exactly as before.

Every file written through it starts with a plaintext preamble, then the file's logical bytes
XOR a keystream:

    offset size field
         0    4 magic b"PNJE"
         4    1 version (1)
         5    1 cipher (1 ChaCha20, 2 AES-256-CTR)
         6    2 reserved (0)
         8   24 salt: random, new for every file
        32   16 key check

From the server key and the salt, HKDF-SHA256 derives 64 bytes: the file's 32-byte cipher key,
a 16-byte IV and the key check. So every file has its own key, and the wrong server key is
told apart from damage by the check (`WrongKey`) instead of reading as garbage.

The keystream is positional (ChaCha20's block counter, AES-CTR's counter at `offset // block`):
a `pwrite` at any logical offset encrypts on its own, a `pread` decrypts on its own, and the
stores keep their offsets. Logical offset `o` is physical `o + 48`. The checksums the stores
keep are over the plaintext: a torn or damaged record decrypts to bytes that fail them, as a
plaintext one does. The preamble goes to the disk in the same `pwrite` as the file's first
bytes; a file shorter than the preamble (torn before its first fsync) reads as empty.

Like nats-server's message blocks, the keystream is not authenticated: it keeps what is stored
unreadable without the key; the record checksums find damage, not a forger. A record erased in
place (same offset, same length) reuses its keystream: the file then holds the erased record's
bytes, not the message's.
"""

from __future__ import annotations

import hmac
import os
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .fileio import FileIO

MAGIC = b"PNJE"
VERSION = 1
PREAMBLE = struct.Struct("<4sBBH24s16s")
PREAMBLE_SIZE = PREAMBLE.size  # 48
CHACHA = 1
AES = 2
# what nats-server's start-up banner calls them
CIPHER_NAMES = {CHACHA: "ChaCha20-Poly1305", AES: "AES-GCM"}
_INFO = b"pynats jetstream at rest v1"


class EncryptionError(Exception):
    """A stored file cannot be read with the configured key."""


class WrongKey(EncryptionError):
    def __init__(self, path: str) -> None:
        super().__init__("unable to recover keys")
        self.path = path


def parse_cipher(name: str) -> int | None:
    """`jetstream { cipher }` as nats-server reads it (any case), or None when unknown."""
    low = name.lower()
    if low in ("chacha", "chachapoly"):
        return CHACHA
    if low == "aes":
        return AES
    return None


def is_encrypted(data: bytes) -> bool:
    """Whether a file's first bytes are an encrypted file's preamble (or a torn one)."""
    if len(data) >= PREAMBLE_SIZE:
        return data[:4] == MAGIC
    return bool(data) and MAGIC.startswith(data[:4])


@dataclass
class _FileKey:
    cipher: int
    key: bytes
    iv: bytes

    def crypt(self, data: bytes | bytearray | memoryview, offset: int) -> bytes:
        """`data` XOR the keystream at logical `offset` (encrypts and decrypts)."""
        if self.cipher == CHACHA:
            block, skip = divmod(offset, 64)
            algo: algorithms.ChaCha20 | algorithms.AES = algorithms.ChaCha20(
                self.key, struct.pack("<I", block & 0xFFFFFFFF) + self.iv[:12]
            )
            mode = None
        else:
            block, skip = divmod(offset, 16)
            counter = (int.from_bytes(self.iv, "big") + block) % (1 << 128)
            algo = algorithms.AES(self.key)
            mode = modes.CTR(counter.to_bytes(16, "big"))
        enc = Cipher(algo, mode).encryptor()
        if skip:
            enc.update(bytes(skip))
        return enc.update(bytes(data))


class Keyring:
    """The server key and cipher: derives each file's key from its salt."""

    def __init__(self, key: str, cipher: int = CHACHA) -> None:
        self.secret = key.encode()
        self.cipher = cipher

    def _derive(self, cipher: int, salt: bytes) -> tuple[_FileKey, bytes]:
        out = HKDF(hashes.SHA256(), 64, salt, _INFO + bytes([cipher])).derive(self.secret)
        return _FileKey(cipher, out[:32], out[32:48]), out[48:64]

    def new_file(self) -> tuple[_FileKey, bytes]:
        """A fresh file key and the preamble that records it."""
        salt = os.urandom(24)
        fkey, check = self._derive(self.cipher, salt)
        return fkey, PREAMBLE.pack(MAGIC, VERSION, self.cipher, 0, salt, check)

    def open_file(self, preamble: bytes, path: str) -> _FileKey:
        """The key of a file from its preamble; `WrongKey` when it is not ours."""
        magic, version, cipher, _r, salt, check = PREAMBLE.unpack_from(preamble)
        if magic != MAGIC or version != VERSION or cipher not in CIPHER_NAMES:
            raise WrongKey(path)
        fkey, expected = self._derive(cipher, salt)
        if not hmac.compare_digest(check, expected):
            raise WrongKey(path)
        return fkey

    def owns(self, data: bytes) -> bool:
        """Whether an encrypted file (its first bytes) was written with this key."""
        try:
            self.open_file(data[:PREAMBLE_SIZE], "")
        except (WrongKey, struct.error):
            return False
        return True

    def decrypt(self, data: bytes, path: str) -> bytes:
        """A whole file's logical bytes."""
        if len(data) < PREAMBLE_SIZE:
            return b""
        return self.open_file(data[:PREAMBLE_SIZE], path).crypt(memoryview(data)[PREAMBLE_SIZE:], 0)

    def encrypt(self, plain: bytes) -> bytes:
        """A whole file's bytes on disk."""
        fkey, preamble = self.new_file()
        return preamble + fkey.crypt(plain, 0)


@dataclass
class _Open:
    path: str
    key: _FileKey | None  # None until the preamble is on disk
    error: WrongKey | None = None  # not our key: unreadable until truncated to nothing

    def check(self) -> None:
        if self.error is not None:
            raise self.error


class EncryptedFileIO(FileIO):
    """A `FileIO` whose files are encrypted with `keyring`, over `inner` (the real disk)."""

    def __init__(self, keyring: Keyring, inner: FileIO | None = None) -> None:
        self.keyring = keyring
        self.inner = inner if inner is not None else FileIO()
        self._open: dict[int, _Open] = {}

    def open(self, path: str, create: bool = True) -> int:
        inner = self.inner
        fd = inner.open(path, create)
        state = _Open(path, None)
        try:
            if inner.size(fd) >= PREAMBLE_SIZE:
                state.key = self.keyring.open_file(inner.pread(fd, PREAMBLE_SIZE, 0), path)
        except WrongKey as e:
            state.error = e  # a temporary file left by a crash is truncated before use
        except BaseException:
            inner.close(fd)
            raise
        self._open[fd] = state
        return fd

    def close(self, fd: int) -> None:
        self._open.pop(fd, None)
        self.inner.close(fd)

    def pwrite(self, fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
        state = self._open[fd]
        state.check()
        if state.key is None:
            key, preamble = self.keyring.new_file()
            if offset == 0:
                self.inner.pwrite(fd, preamble + key.crypt(data, 0), 0)
                state.key = key
                return
            self.inner.pwrite(fd, preamble, 0)
            state.key = key
        self.inner.pwrite(fd, state.key.crypt(data, offset), offset + PREAMBLE_SIZE)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        state = self._open[fd]
        state.check()
        key = state.key
        if key is None:
            return b""
        return key.crypt(self.inner.pread(fd, size, offset + PREAMBLE_SIZE), offset)

    def fsync(self, fd: int) -> None:
        self.inner.fsync(fd)

    def fsync_dir(self, path: str) -> None:
        self.inner.fsync_dir(path)

    def size(self, fd: int) -> int:
        state = self._open[fd]
        state.check()
        if state.key is None:
            return 0
        return max(0, self.inner.size(fd) - PREAMBLE_SIZE)

    def truncate(self, fd: int, size: int) -> None:
        state = self._open[fd]
        if size == 0:
            self.inner.truncate(fd, 0)
            state.key = state.error = None
            return
        state.check()
        if state.key is None:
            self.pwrite(fd, b"", 0)
        self.inner.truncate(fd, size + PREAMBLE_SIZE)

    def rename(self, src: str, dst: str) -> None:
        self.inner.rename(src, dst)

    def unlink(self, path: str) -> None:
        self.inner.unlink(path)

    def mkdir(self, path: str) -> None:
        self.inner.mkdir(path)

    def rmdir(self, path: str) -> None:
        self.inner.rmdir(path)

    def listdir(self, path: str) -> list[str]:
        return self.inner.listdir(path)

    def exists(self, path: str) -> bool:
        return self.inner.exists(path)

    def read_file(self, path: str) -> bytes:
        return self.keyring.decrypt(self.inner.read_file(path), path)


# --- start-up: encrypting a plaintext store, rotating to a new key (prev_key) ------------------

PLAIN = "plain"
CURRENT = "current"  # this key and cipher
CONVERT = "convert"  # this key, another cipher; or the previous key
FOREIGN = "foreign"  # encrypted with a key we do not have
EMPTY = "empty"  # nothing stored yet (or a preamble torn before its first fsync)


def classify(data: bytes, keyring: Keyring, prev: Keyring | None) -> str:
    if not data or (len(data) < PREAMBLE_SIZE and is_encrypted(data)):
        return EMPTY
    if not is_encrypted(data):
        return PLAIN
    if keyring.owns(data):
        return CURRENT if data[5] == keyring.cipher else CONVERT
    if prev is not None and prev.owns(data):
        return CONVERT
    return FOREIGN


def convert_tree(
    directory: str, keyring: Keyring, prev: Keyring | None, fileio: FileIO
) -> tuple[dict[str, str], list[str]]:
    """Classify every file under `directory`; returns ({path: class}, [files to rewrite])."""
    found: dict[str, str] = {}
    todo: list[str] = []
    for root, _dirs, files in os.walk(directory):
        for name in sorted(files):
            path = os.path.join(root, name)
            fd = fileio.open(path, create=False)
            try:
                head = fileio.pread(fd, PREAMBLE_SIZE, 0)
            finally:
                fileio.close(fd)
            kind = classify(head, keyring, prev)
            found[path] = kind
            if kind in (PLAIN, CONVERT):
                todo.append(path)
    return found, todo


def rewrite(path: str, keyring: Keyring, prev: Keyring | None, fileio: FileIO) -> None:
    """Re-encrypt one file with `keyring` (durably: temp file, fsync, rename, fsync dir)."""
    from .metadata import write_durable

    data = fileio.read_file(path)
    if not is_encrypted(data):
        plain = data
    elif keyring.owns(data):
        plain = keyring.decrypt(data, path)
    elif prev is not None:
        plain = prev.decrypt(data, path)
    else:
        raise WrongKey(path)
    write_durable(path, plain, EncryptedFileIO(keyring, fileio))
