"""JetStream encryption at rest (`jetstream { key, cipher, prev_key }`, store/crypt.py) on real
servers: what is published survives a restart and a kill -9 and is readable back, while no
stored file holds a body, a subject or a header; the banner, /varz and the refusals of a
wrong or missing key are nats-server's (the Go server runs the same configurations);
`prev_key` rotates the store to the new key, and a plaintext store is encrypted at start-up."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import re
import signal
from pathlib import Path

import nats.errors
import pytest
from tests.conftest import connect
from tests.support.servers import RunningServer, start_server

SUBJECT = "secret.orders.eu"
BODY = b"TOP-SECRET-PAYLOAD"
HEADER_VALUE = "card-4111-1111"
LOG_PREFIX = re.compile(r"^\[\d+\] \S+ \S+ ")


def start(tmp_path: Path, store: Path, oracle: bool = False, **jetstream: str) -> RunningServer:
    lines = [f'store_dir: "{store}"'] + [f'{k}: "{v}"' for k, v in jetstream.items()]
    conf = tmp_path / f"js-{len(list(tmp_path.glob('js-*.conf')))}.conf"
    conf.write_text("jetstream {\n  " + "\n  ".join(lines) + "\n}\n")
    return start_server(["-c", str(conf)], oracle=oracle, http_port=-1)


async def fill(srv: RunningServer, count: int = 20) -> None:
    """Stream S (secret.>) with `count` messages and a durable consumer that acked 5."""
    nc = await connect(srv.url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["secret.>"], description="confidential stream")
        for i in range(count):
            await js.publish(SUBJECT, BODY + b"-%d" % i, headers={"X-Card": HEADER_VALUE})
        sub = await js.pull_subscribe("secret.>", durable="D", stream="S")
        for msg in await sub.fetch(5, timeout=5):
            await msg.ack_sync()
    finally:
        await nc.close()


async def read_back(srv: RunningServer, count: int = 20) -> dict:
    """Every message as stored, and the consumer's info."""
    nc = await connect(srv.url)
    try:
        for seq in range(1, count + 1):
            reply = await nc.request(
                "$JS.API.STREAM.MSG.GET.S", json.dumps({"seq": seq}).encode(), timeout=5
            )
            msg = json.loads(reply.data)["message"]
            assert msg["subject"] == SUBJECT
            assert base64.b64decode(msg["data"]) == BODY + b"-%d" % (seq - 1)
            assert HEADER_VALUE.encode() in base64.b64decode(msg["hdrs"])
        info = await nc.request("$JS.API.CONSUMER.INFO.S.D", b"", timeout=5)
        return json.loads(info.data)
    finally:
        await nc.close()


async def stream_names(srv: RunningServer) -> list[str]:
    nc = await connect(srv.url)
    try:
        reply = await nc.request("$JS.API.STREAM.NAMES", b"", timeout=5)
        return json.loads(reply.data)["streams"] or []
    finally:
        await nc.close()


def plaintext_in(store: Path) -> list[str]:
    """Stored files holding a body, the subject, a header value or the description."""
    found = []
    for root, _dirs, files in os.walk(store):
        for name in files:
            raw = Path(root, name).read_bytes()
            for needle in (BODY, SUBJECT.encode(), HEADER_VALUE.encode(), b"confidential"):
                if needle in raw:
                    found.append(f"{name}: {needle!r}")
    return found


def log_line(srv: RunningServer, pattern: str) -> str:
    return LOG_PREFIX.sub("", srv.wait_for_log(pattern))


@pytest.mark.parametrize("cipher", ["chachapoly", "aes"])
async def test_published_messages_survive_a_restart_and_nothing_stored_is_readable(
    tmp_path, cipher
):
    store = tmp_path / "store"
    srv = start(tmp_path, store, key="s3cr3t", cipher=cipher)
    try:
        await fill(srv)
    finally:
        srv.stop()
    assert plaintext_in(store) == []
    srv = start(tmp_path, store, key="s3cr3t", cipher=cipher)
    try:
        info = await read_back(srv)
        assert info["ack_floor"]["stream_seq"] == 5 and info["num_pending"] == 15
    finally:
        srv.stop()
    assert plaintext_in(store) == []


async def test_banner_and_varz_are_nats_servers(tmp_path):
    banners, configs = {}, {}
    for oracle in (False, True):
        srv = start(tmp_path, tmp_path / f"store-{oracle}", oracle, key="k", cipher="aes")
        try:
            banners[oracle] = log_line(srv, r"Encryption:")
            configs[oracle] = srv.http_json("/varz")["jetstream"]["config"]
        finally:
            srv.stop()
    assert banners[False] == banners[True] == "[INF]   Encryption:      AES-GCM"
    # neither shows the key, the cipher or that encryption is on
    assert not {k for k in configs[False] if re.search("key|cipher|encr", k)}
    assert not {k for k in configs[True] if re.search("key|cipher|encr", k)}


async def test_a_wrong_or_missing_key_refuses_the_stream_as_nats_server_does(tmp_path):
    lines: dict[bool, list[str]] = {}
    for oracle in (False, True):
        store = tmp_path / f"store-{oracle}"
        srv = start(tmp_path, store, oracle, key="right")
        try:
            await fill(srv)
        finally:
            srv.stop()
        lines[oracle] = []
        for jetstream in ({"key": "wrong"}, {}):
            srv = start(tmp_path, store, oracle, **jetstream)
            try:
                lines[oracle].append(log_line(srv, r"Error decrypting our stream metafile"))
                assert await stream_names(srv) == []
            finally:
                srv.stop()
    expected = [
        "[WRN]   Error decrypting our stream metafile: unable to recover keys",
        "[WRN]   Error decrypting our stream metafile: encryption not enabled",
    ]
    assert lines[True] == expected
    assert lines[False] == expected
    srv = start(tmp_path, tmp_path / "store-False", key="right")  # nothing was damaged
    try:
        await read_back(srv)
    finally:
        srv.stop()


async def test_prev_key_rotates_and_a_plaintext_store_is_encrypted(tmp_path):
    # the log lines, compared with the Go server's on the same sequence of configurations
    seen: dict[bool, list[str]] = {}
    for oracle in (False, True):
        store = tmp_path / f"store-{oracle}"
        srv = start(tmp_path, store, oracle)
        try:
            await fill(srv)
        finally:
            srv.stop()
        seen[oracle] = []
        srv = start(tmp_path, store, oracle, key="old")
        try:
            seen[oracle].append(log_line(srv, r"Encrypting stream"))
            assert await stream_names(srv) == ["S"]
        finally:
            srv.stop()
        srv = start(tmp_path, store, oracle, key="new", prev_key="old")
        try:
            seen[oracle].append(log_line(srv, r"Converting to"))
            assert await stream_names(srv) == ["S"]
        finally:
            srv.stop()
    expected = [
        "[INF]   Encrypting stream '$G > S'",
        "[INF]   Converting to ChaCha20-Poly1305 for stream '$G > S'",
    ]
    assert seen[True] == expected
    assert seen[False] == expected
    store = tmp_path / "store-False"
    assert plaintext_in(store) == []
    srv = start(tmp_path, store, key="new")  # the new key alone reads all of it
    try:
        info = await read_back(srv)
        assert info["ack_floor"]["stream_seq"] == 5
    finally:
        srv.stop()
    srv = start(tmp_path, store, key="old")  # the old key no longer does
    try:
        log_line(srv, r"unable to recover keys")
    finally:
        srv.stop()


async def test_kill_9_during_encrypted_writes_loses_no_acked_message(tmp_path):
    store = tmp_path / "store"
    rng = random.Random()
    acked: dict[int, bytes] = {}
    for iteration in range(3):
        srv = start(tmp_path, store, key="crash-key")
        nc = await connect(srv.url, allow_reconnect=False)
        js = nc.jetstream()
        if iteration == 0:
            await js.add_stream(name="S", subjects=["secret.>"])
        killed = asyncio.Event()

        def kill(srv: RunningServer = srv, killed: asyncio.Event = killed) -> None:
            srv.proc.send_signal(signal.SIGKILL)
            killed.set()

        asyncio.get_running_loop().call_later(rng.uniform(0.2, 0.6), kill)
        died = asyncio.ensure_future(killed.wait())

        async def publisher(n: int, js=js, died=died, iteration: int = iteration) -> None:
            k = 0
            while True:
                body = BODY + b"-%d-%d-%d" % (iteration, n, k)
                pub = asyncio.ensure_future(js.publish(SUBJECT, body, timeout=5))
                await asyncio.wait({pub, died}, return_when=asyncio.FIRST_COMPLETED)
                if not pub.done():
                    pub.cancel()  # in flight when the server died: never acknowledged
                    return
                try:
                    ack = pub.result()
                except (nats.errors.Error, TimeoutError, OSError):
                    return
                acked[ack.seq] = body
                k += 1

        await asyncio.gather(*(publisher(n) for n in range(8)))
        srv.proc.wait(timeout=10)
        try:
            await nc.close()
        except Exception:
            pass
    assert len(acked) > 50, "the publishers should have made progress"
    assert plaintext_in(store) == []
    srv = start(tmp_path, store, key="crash-key")
    try:
        nc = await connect(srv.url)
        try:
            for seq, body in sorted(acked.items()):
                reply = await nc.request(
                    "$JS.API.STREAM.MSG.GET.S", json.dumps({"seq": seq}).encode(), timeout=5
                )
                msg = json.loads(reply.data).get("message")
                assert msg is not None, f"acked message {seq} lost"
                assert base64.b64decode(msg["data"]) == body, f"message {seq} differs"
        finally:
            await nc.close()
    finally:
        srv.stop()
