"""A backup client over the raw JS API, for tests of `$JS.API.STREAM.SNAPSHOT/RESTORE`.

It does what `nats stream backup/restore` does on the wire: collect the snapshot's chunks,
acking each one that has an ack subject, up to the empty message that ends the transfer; and
upload a backup in chunks, each a request answered by an empty message, then an empty one
answered with the stream's info.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import nats

from pynats.jetstream.archive import ArchiveReader, Entry
from pynats.jetstream.s2 import S2Decoder


@dataclass
class Snapshot:
    response: dict[str, Any]  # the SNAPSHOT API response (config and state, or error)
    data: bytes = b""  # the chunks, concatenated: an S2 stream
    end_status: str = ""  # the status of the empty message that ended it ("" = none)
    end_text: str = ""
    chunks: list[tuple[str, int]] = field(default_factory=list)  # (ack subject, size)

    def entries(self) -> list[Entry]:
        return ArchiveReader().feed(S2Decoder().feed(self.data))


async def api(nc: nats.NATS, subject: str, body: Any = b"", timeout: float = 5) -> dict[str, Any]:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    msg = await nc.request(subject, payload, timeout=timeout)
    return json.loads(msg.data)


async def snapshot(
    nc: nats.NATS, stream: str, *, ack: bool = True, timeout: float = 20, **request: Any
) -> Snapshot:
    """Take a snapshot of `stream` (`request`: no_consumers, chunk_size, window_size...)."""
    inbox = nc.new_inbox()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    async def on_msg(msg: Any) -> None:
        await queue.put(msg)

    sub = await nc.subscribe(inbox, cb=on_msg)
    try:
        resp = await api(
            nc, f"$JS.API.STREAM.SNAPSHOT.{stream}", {"deliver_subject": inbox, **request}
        )
        snap = Snapshot(resp)
        if "error" in resp:
            return snap
        data = bytearray()
        async with asyncio.timeout(timeout):
            while True:
                msg = await queue.get()
                if not msg.data:
                    headers = msg.headers or {}
                    snap.end_status = headers.get("Status", "")
                    snap.end_text = headers.get("Description", "")
                    break
                data += msg.data
                snap.chunks.append((msg.reply, len(msg.data)))
                if msg.reply and ack:
                    await nc.publish(msg.reply, b"")
        snap.data = bytes(data)
        return snap
    finally:
        await sub.unsubscribe()


async def restore(
    nc: nats.NATS,
    config: dict[str, Any],
    data: bytes,
    *,
    state: dict[str, Any] | None = None,
    chunk: int = 64 * 1024,
) -> dict[str, Any]:
    """Upload `data` as the backup of stream `config["name"]`: the RESTORE response when it
    is an error, else the final answer (a stream_create_response)."""
    name = config["name"]
    resp = await api(nc, f"$JS.API.STREAM.RESTORE.{name}", {"config": config, "state": state or {}})
    if "error" in resp:
        return resp
    deliver = resp["deliver_subject"]
    for i in range(0, len(data), chunk):
        await nc.request(deliver, data[i : i + chunk], timeout=10)
    final = await nc.request(deliver, b"", timeout=30)
    return json.loads(final.data)
