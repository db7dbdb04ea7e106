"""Arbitrary bytes on one connection never crash the server or stall other connections."""

from __future__ import annotations

import random
import socket

from tests.support.raw import RawClient
from tests.support.servers import RunningServer

VALID_OPS = [
    b'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n',
    b'CONNECT {"verbose":true,"pedantic":true,"protocol":1}\r\n',
    b"SUB foo 1\r\n",
    b"SUB foo.* q 2\r\n",
    b"UNSUB 1\r\n",
    b"UNSUB 2 5\r\n",
    b"PUB foo 5\r\nhello\r\n",
    b"PUB foo reply 0\r\n\r\n",
    b"HPUB foo 12 14\r\nNATS/1.0\r\n\r\nhi\r\n",
    b"PING\r\n",
    b"PONG\r\n",
]


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        choice = rng.random()
        pos = rng.randrange(len(out) + 1)
        if choice < 0.3 and out:
            out[min(pos, len(out) - 1)] = rng.randrange(256)
        elif choice < 0.6:
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif choice < 0.8 and out:
            del out[pos : pos + rng.randint(1, 8)]
        else:
            out[pos:pos] = rng.choice(VALID_OPS)
    return bytes(out)


def blast(port: int, data: bytes) -> None:
    """Send `data` in random pieces and read whatever comes back, without waiting long."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        try:
            s.sendall(data)
            s.settimeout(0.05)
            while s.recv(65536):
                pass
        except OSError:
            pass


def test_random_and_mutated_input_never_hurts_the_server(server: RunningServer) -> None:
    rng = random.Random(20261126)
    with RawClient(server.port) as healthy:
        healthy.handshake()
        healthy.send(b"SUB canary 1\r\n")
        for round_ in range(150):
            if round_ % 3 == 0:
                data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 400)))
            else:
                base = b"".join(rng.choice(VALID_OPS) for _ in range(rng.randint(1, 6)))
                data = mutate(rng, base)
            blast(server.port, data)
            # the other connection still gets its messages, promptly
            healthy.send(b"PUB canary 2\r\nok\r\n")
            got = healthy.ping_pong(timeout=2)
            if got.startswith(b"PING\r\n"):  # the server's keepalive: answer it
                healthy.send(b"PONG\r\n")
                got = got[len(b"PING\r\n") :]
            assert got == b"MSG canary 1 2\r\nok\r\n"
    assert server.proc.poll() is None
    assert not any("Traceback" in line or "internal error" in line for line in server.log_lines)
