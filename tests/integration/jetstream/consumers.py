"""Helpers for consumer tests: raw creates (schema-checked), an inbox that collects what a
pull request or push consumer sends, and reading the `$JS.ACK` reply subject."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import nats
from tests.integration.jetstream.conftest import api, schema_registry

NS = 1_000_000_000
MS = 1_000_000


async def add_consumer(nc: nats.NATS, stream: str, name: str, **config: Any) -> dict[str, Any]:
    """Create (or update) consumer `name` through the named create subject; the response
    is schema-validated and must not be an error."""
    body = {"stream_name": stream, "config": {"name": name, **config}}
    response = await api(nc, f"$JS.API.CONSUMER.CREATE.{stream}.{name}", body)
    assert "error" not in response, response
    return response


_ERROR_SCHEMA = {
    "$ref": "https://nats.io/schemas/jetstream/api/v1/definitions.json#/definitions/error_response"
}


def validate_error(response: dict[str, Any]) -> None:
    """Check an error reply against the schema's error shape (for the responses whose
    published schema nats-server's own replies do not satisfy, see the callers)."""
    cls = jsonschema.validators.validator_for(
        {"$schema": "http://json-schema.org/draft-07/schema#"}
    )
    cls(_ERROR_SCHEMA, registry=schema_registry()).validate(response)


async def consumer_info(nc: nats.NATS, stream: str, name: str) -> dict[str, Any]:
    return await api(nc, f"$JS.API.CONSUMER.INFO.{stream}.{name}")


def status_of(msg: Any) -> str:
    """`"404 No Messages"` for a status message, "" for a stored message."""
    headers = msg.headers or {}
    code = headers.get("Status")
    if not code or msg.data:
        return ""
    text = headers.get("Description", "")
    return f"{code} {text}".strip()


def ack_meta(msg: Any) -> dict[str, int]:
    """The numbers in the v1 ack subject `$JS.ACK.<s>.<c>.<dc>.<sseq>.<cseq>.<ts>.<pending>`."""
    tokens = msg.reply.split(".")
    assert len(tokens) == 9, msg.reply
    return {
        "deliveries": int(tokens[4]),
        "stream_seq": int(tokens[5]),
        "consumer_seq": int(tokens[6]),
        "pending": int(tokens[8]),
    }


class Inbox:
    """A subscription that keeps everything it receives, in order."""

    counter = 0

    def __init__(self, nc: nats.NATS, subject: str | None = None, queue: str = "") -> None:
        Inbox.counter += 1
        self.nc = nc
        self.subject = subject or f"_TEST_INBOX.{id(self)}.{Inbox.counter}"
        self.queue = queue
        self.msgs: list[Any] = []
        self._event = asyncio.Event()
        self.sub: Any = None

    async def start(self) -> Inbox:
        async def on_msg(msg: Any) -> None:
            self.msgs.append(msg)
            self._event.set()

        self.sub = await self.nc.subscribe(self.subject, queue=self.queue, cb=on_msg)
        await self.nc.flush()
        return self

    async def stop(self) -> None:
        await self.sub.unsubscribe()
        await self.nc.flush()

    @property
    def data(self) -> list[Any]:
        return [m for m in self.msgs if not status_of(m)]

    @property
    def statuses(self) -> list[str]:
        return [status_of(m) for m in self.msgs if status_of(m)]

    async def wait_for(self, count: int, timeout: float = 5.0, *, statuses: bool = True) -> None:
        """Until `count` messages arrived (statuses included unless `statuses=False`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.msgs if statuses else self.data) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                got = [(m.subject, status_of(m), m.data[:20]) for m in self.msgs]
                raise TimeoutError(f"{count} messages expected on {self.subject}, got {got}")
            self._event.clear()
            try:
                await asyncio.wait_for(self._event.wait(), remaining)
            except TimeoutError:
                pass

    async def pull(self, stream: str, consumer: str, body: Any = b"") -> None:
        """Send a MSG.NEXT request answered to this inbox."""
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        await self.nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}", payload, reply=self.subject
        )
        await self.nc.flush()


async def inbox(nc: nats.NATS, subject: str | None = None, queue: str = "") -> Inbox:
    return await Inbox(nc, subject, queue).start()


async def publish(js: Any, subject: str, count: int, prefix: bytes = b"m") -> list[int]:
    """Publish `count` messages (payloads prefix0, prefix1, ...); their sequences."""
    seqs = []
    for i in range(count):
        ack = await js.publish(subject, prefix + b"%d" % i)
        seqs.append(ack.seq)
    return seqs
