"""Server identity in nkey form: `N` + base32(prefix byte, 32-byte key, CRC-16).

Clients treat `server_id` as an opaque string, but tools display and compare it, and nats-server
always sends a 56-character public nkey starting with `N`; ours has the same shape.
"""

from __future__ import annotations

import base64
import os
import secrets

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
