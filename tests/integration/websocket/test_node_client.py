"""The official NATS JavaScript client in Node over WebSocket (examples/node-websocket.mjs,
nats.ws from npm), against our server and Go's: headers, a payload larger than a frame,
request/reply both ways with a nats-py client over TCP, a queue group, and JetStream.

Needs `node` and `examples/node_modules` (`make test` installs the packages when npm is
there); skipped without them. The test installs nothing itself.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from nats.aio.msg import Msg
from tests.conftest import connect

from .support import KINDS, ws_server

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
SCRIPT = EXAMPLES / "node-websocket.mjs"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(
    NODE is None or not (EXAMPLES / "node_modules" / "nats.ws").exists(),
    reason="needs node and examples/node_modules (installed by `make test`)",
)


async def read_step(proc: asyncio.subprocess.Process, step: str) -> dict[str, Any]:
    """The next JSON line of the program, which must be `step`."""
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    if not line:
        err = await proc.stderr.read() if proc.stderr else b""
        raise AssertionError(f"node ended before {step!r}: {err.decode()}")
    report: dict[str, Any] = json.loads(line)
    assert report.pop("step") == step, report
    return report


@pytest.mark.parametrize("kind", KINDS)
async def test_nats_js_in_node_over_websocket(kind: str, tmp_path: Path) -> None:
    assert NODE is not None
    top = f'jetstream {{ store_dir: "{tmp_path / "js"}" }}'
    with ws_server(kind, {"no_tls": True}, top=top) as server:
        nc = await connect(server.url)

        async def answer(msg: Msg) -> None:
            await msg.respond(b"pong:" + msg.data)

        await nc.subscribe("py.svc", cb=answer)
        await nc.flush()
        proc = await asyncio.create_subprocess_exec(
            NODE,
            "--experimental-websocket",
            "--no-warnings",
            str(SCRIPT),
            server.ws_url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            assert (await read_step(proc, "connected"))["headers"] is True
            assert await read_step(proc, "headers") == {"data": "hi", "header": "yes"}
            assert await read_step(proc, "big") == {"length": 300 * 1024, "same": True}
            assert await read_step(proc, "request") == {"data": "pong:ping"}
            assert await read_step(proc, "jetstream") == {
                "acks": [1, 2, 3, 4, 5],
                "got": [f"order {i}" for i in range(5)],
                "ack_floor": 5,
            }
            await read_step(proc, "serving")
            reply = await nc.request("node.echo", b"from python", timeout=5)
            assert reply.data == b"node:from python"
            assert (await nc.request("node.stop", b"", timeout=5)).data == b"bye"
            assert await asyncio.wait_for(proc.wait(), 15) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            await nc.close()
