"""Public nkeys: base32(prefix byte, 32-byte ed25519 key, CRC-16), and their signatures.

The prefix byte says what a key is (operator, account, user, server). Our `server_id` is one:
clients treat it as an opaque string, but tools display and compare it, and nats-server always
sends a 56-character public nkey starting with `N`; ours has the same shape.
"""

from __future__ import annotations

import base64
import os
import secrets

# The first byte of a decoded public nkey says what kind of key it is.
PREFIX_OPERATOR = 14 << 3  # 'O'
PREFIX_SERVER = 13 << 3  # 'N'
PREFIX_ACCOUNT = 0 << 3  # 'A'
PREFIX_USER = 20 << 3  # 'U'


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


def new_server_id() -> str:
    return encode_public_key(PREFIX_SERVER, os.urandom(32))


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
