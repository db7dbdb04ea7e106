"""Public nkeys: base32(prefix byte, 32-byte ed25519 key, CRC-16), and their signatures.

The prefix byte says what a key is (operator, account, user, server, curve). Our `server_id`
is the public half of the server's own ed25519 key (`ServerKeys`), as nats-server's: clients
treat it as an opaque string, but an auth callout service checks the server's signature on
its requests with it. The server's curve key (`xkey`, `X...`) seals what it sends an auth
callout service that asked for encryption (NaCl box, in the `xkv1` framing of nkeys' xkeys).
"""

from __future__ import annotations

import base64
import os
import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nacl.public import PublicKey

# The first byte of a decoded public nkey says what kind of key it is.
PREFIX_OPERATOR = 14 << 3  # 'O'
PREFIX_SERVER = 13 << 3  # 'N'
PREFIX_ACCOUNT = 0 << 3  # 'A'
PREFIX_USER = 20 << 3  # 'U'
PREFIX_CURVE = 23 << 3  # 'X'

XKEY_VERSION = b"xkv1"  # what a sealed message starts with
XKEY_NONCE_BYTES = 24


def crc16(data: bytes) -> int:
    """CRC-16/XMODEM, the checksum nkeys append before encoding."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def encode_public_key(prefix: int, raw: bytes) -> str:
    body = bytes([prefix]) + raw
    body += crc16(body).to_bytes(2, "little")
    return base64.b32encode(body).decode().rstrip("=")


def new_nonce() -> str:
    """The 11 random bytes, raw-URL-base64, that a client signs for nkey/JWT auth."""
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode().rstrip("=")


class InvalidNkey(ValueError):
    pass


def decode_public_key(text: str) -> tuple[int, bytes]:
    """(prefix byte, 32-byte key) of a public nkey; InvalidNkey when malformed or corrupted."""
    try:
        raw = base64.b32decode(text + "=" * (-len(text) % 8))
    except (ValueError, TypeError):
        raise InvalidNkey("invalid encoding") from None
    if len(raw) != 35:
        raise InvalidNkey("invalid length")
    body, checksum = raw[:-2], int.from_bytes(raw[-2:], "little")
    if crc16(body) != checksum:
        raise InvalidNkey("invalid checksum")
    return body[0], body[1:]


def verify_signature(public_key: str, data: bytes, signature: bytes) -> bool:
    """ed25519 check of `signature` over `data` by the holder of `public_key`."""
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    try:
        _, raw = decode_public_key(public_key)
        VerifyKey(raw).verify(data, signature)
    except (InvalidNkey, BadSignatureError, ValueError):
        return False
    return True


class ServerKeys:
    """The server's own keys: ed25519 (`id`, the server_id; `sign`) and curve25519 (`xkey`;
    `seal` and `open` messages exchanged with the holder of another xkey)."""

    __slots__ = ("_curve", "_signing", "id", "xkey")

    def __init__(self) -> None:
        from nacl.public import PrivateKey
        from nacl.signing import SigningKey

        self._signing = SigningKey.generate()
        self._curve = PrivateKey.generate()
        self.id = encode_public_key(PREFIX_SERVER, bytes(self._signing.verify_key))
        self.xkey = encode_public_key(PREFIX_CURVE, bytes(self._curve.public_key))

    def sign(self, data: bytes) -> bytes:
        return bytes(self._signing.sign(data).signature)

    def seal(self, data: bytes, recipient: str) -> bytes:
        """`data` encrypted for the holder of the xkey `recipient`: `xkv1`, nonce, box."""
        from nacl.public import Box

        box = Box(self._curve, _curve_public_key(recipient))
        return XKEY_VERSION + bytes(box.encrypt(data, os.urandom(XKEY_NONCE_BYTES)))

    def open(self, data: bytes, sender: str) -> bytes:
        """What the holder of the xkey `sender` sealed for us; ValueError when it is not."""
        from nacl.exceptions import CryptoError
        from nacl.public import Box

        if not data.startswith(XKEY_VERSION):
            raise ValueError("invalid xkey version")
        box = Box(self._curve, _curve_public_key(sender))
        try:
            return bytes(box.decrypt(data[len(XKEY_VERSION) :]))
        except CryptoError:
            raise ValueError("could not decrypt message") from None


def is_public_key(text: str, prefix: int) -> bool:
    """`text` is a well-formed public nkey of the kind `prefix`."""
    try:
        return decode_public_key(text)[0] == prefix
    except InvalidNkey:
        return False


def _curve_public_key(text: str) -> PublicKey:
    from nacl.public import PublicKey

    prefix, raw = decode_public_key(text)
    if prefix != PREFIX_CURVE:
        raise ValueError("not a public xkey")
    return PublicKey(raw)
