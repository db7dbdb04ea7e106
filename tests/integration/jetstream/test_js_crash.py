"""kill -9 at random moments: every acknowledged publish and every acknowledged stream
create is there after the restart, with the same payload, in every sync mode we offer.

The test process publishes (pipelined requests) and creates streams while a timer SIGKILLs
the server at a random moment; then the server restarts on the same store directory and
everything acknowledged so far is checked, and the loop goes on.
PYNATS_JS_CRASH_ITERATIONS (default 3 per mode) runs more kills; PYNATS_JS_CRASH_SEED fixes
the randomness.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import signal

import nats.errors
import pytest
from tests.conftest import connect
from tests.support.servers import RunningServer, start_server

ITERATIONS = int(os.environ.get("PYNATS_JS_CRASH_ITERATIONS", "3"))
SEED = int(os.environ.get("PYNATS_JS_CRASH_SEED", str(random.randrange(1 << 30))))
PIPELINE = 32


def payload_for(iteration: int, k: int) -> bytes:
    return b"it%d-msg%d-" % (iteration, k) + bytes([k % 251]) * (k % 97)


async def verify(srv: RunningServer, acked: dict[str, dict[int, bytes]]) -> None:
    nc = await connect(srv.url)
    try:
        for stream, messages in acked.items():
            names = json.loads((await nc.request("$JS.API.STREAM.NAMES", b"", timeout=5)).data)
            assert stream in (names["streams"] or []), f"acked stream {stream} lost (seed {SEED})"
            seqs = sorted(messages)
            for start in range(0, len(seqs), 64):
                chunk = seqs[start : start + 64]
                replies = await asyncio.gather(
                    *(
                        nc.request(
                            f"$JS.API.STREAM.MSG.GET.{stream}",
                            json.dumps({"seq": seq}).encode(),
                            timeout=5,
                        )
                        for seq in chunk
                    )
                )
                for seq, reply in zip(chunk, replies, strict=True):
                    body = json.loads(reply.data)
                    assert "message" in body, f"{stream} seq {seq} lost: {body} (seed {SEED})"
                    data = base64.b64decode(body["message"].get("data", ""))
                    assert data == messages[seq], f"{stream} seq {seq} differs (seed {SEED})"
    finally:
        await nc.close()


async def publish_until_killed(
    srv: RunningServer, iteration: int, rng: random.Random, acked: dict[str, dict[int, bytes]]
) -> None:
    loop = asyncio.get_running_loop()
    loop.call_later(rng.uniform(0.05, 0.5), srv.proc.send_signal, signal.SIGKILL)
    try:
        nc = await connect(srv.url)
    except Exception:
        return
    k = 0
    try:
        while True:
            if k % 200 == 0:
                name = f"C{iteration}_{k}"
                body = json.dumps({"name": name, "subjects": [f"crash.{name}"]}).encode()
                reply = await nc.request(f"$JS.API.STREAM.CREATE.{name}", body, timeout=1)
                assert "error" not in json.loads(reply.data)
                acked[name] = {}
                current = name
            batch = [(k + i, payload_for(iteration, k + i)) for i in range(PIPELINE)]
            k += PIPELINE
            results = await asyncio.gather(
                *(nc.request(f"crash.{current}", p, timeout=1) for _, p in batch),
                return_exceptions=True,
            )
            failed = False
            for (_, p), result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    failed = True
                    continue
                ack = json.loads(result.data)
                assert "error" not in ack, ack
                acked[current][ack["seq"]] = p
            if failed:
                return
    except (TimeoutError, nats.errors.Error, OSError):
        return
    finally:
        try:
            await nc.close()
        except Exception:
            pass


SYNC_SETTINGS = {
    "fsync-before-ack": "",
    "always": ", sync_interval: always",
    "lazy": ', sync_interval: "2m"',
}


@pytest.mark.parametrize("mode", list(SYNC_SETTINGS))
async def test_acked_messages_and_streams_survive_kill_9(tmp_path, mode) -> None:
    conf = tmp_path / "js.conf"
    sync = SYNC_SETTINGS[mode]
    conf.write_text(f'jetstream {{ store_dir: "{tmp_path}/store"{sync} }}\n')
    rng = random.Random(SEED)
    acked: dict[str, dict[int, bytes]] = {}
    for iteration in range(ITERATIONS):
        srv = start_server(["-c", str(conf)])
        try:
            await verify(srv, acked)
            await publish_until_killed(srv, iteration, rng, acked)
        finally:
            if srv.proc.poll() is None:
                srv.proc.wait(timeout=10)
            srv.kill()
        assert srv.proc.returncode == -signal.SIGKILL
    srv = start_server(["-c", str(conf)])
    try:
        await verify(srv, acked)
    finally:
        srv.stop()
    assert sum(len(m) for m in acked.values()) > 0, "nothing was acknowledged"
