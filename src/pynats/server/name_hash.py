"""nats-server's short hashes of names: base-62 digits of the bytes of a name's SHA-256.

Other servers compute the same hash from the same name, so it is nats-server's to the digit:
the JetStream node name in the banner (`Node:`) and the `$SYS._INBOX.<node>.` reply prefix
(8 characters of the server name), the gateway reply prefix `_GR_.<cluster>.<server>.`
(6 of each) and the MQTT session subjects (8 of the client ID).
"""

from __future__ import annotations

import hashlib

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def name_hash(name: str, size: int = 8) -> str:
    digest = hashlib.sha256(name.encode()).digest()
    return "".join(DIGITS[b % 62] for b in digest[:size])
