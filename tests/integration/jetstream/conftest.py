"""Fixtures for JetStream tests: real servers with JetStream, nats-py clients, raw `$JS.API`
requests whose every response is validated against the published JSON schemas.

The schemas in `schemas/` are nats.py's `nats-jetstream/schemas/jetstream/api/v1/` (Apache
License 2.0), copied unchanged from `shared/reference/data/jetstream-api-schemas/`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.request
from collections.abc import AsyncIterator, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import nats
import pytest
from referencing import Registry, Resource
from tests.conftest import connect
from tests.support.servers import RunningServer, start_server

SCHEMA_DIR = Path(__file__).parent / "schemas"
TYPE_PREFIX = "io.nats.jetstream.api.v1."
# PYNATS_JS_TESTS_AGAINST_GO=1 runs the shared-server tests against the Go server instead, to
# check that what they expect is what nats-server does (a few assert pynats specifics).
AGAINST_GO = os.environ.get("PYNATS_JS_TESTS_AGAINST_GO") == "1"


# Stream configuration fields of nats-server 2.12 and 2.14 that the published schemas predate
# (ADR-49 counters, ADR-50 batches, ADR-51 schedules, ADR-56 persist mode).
NEWER_STREAM_FIELDS: dict[str, Any] = {
    "allow_msg_counter": {"type": "boolean"},
    "allow_atomic": {"type": "boolean"},
    "allow_msg_schedules": {"type": "boolean"},
    "allow_batched": {"type": "boolean"},
    "persist_mode": {"type": "string", "enum": ["default", "async"]},
}


@cache
def schema_registry() -> Registry:
    resources = []
    for path in SCHEMA_DIR.glob("*.json"):
        doc = json.loads(path.read_text())
        if path.name == "definitions.json":
            defs = doc["definitions"]
            defs["stream_configuration"]["properties"].update(NEWER_STREAM_FIELDS)
            # ADR-59/60 (2.14): acks by answering flow control
            defs["consumer_configuration"]["properties"]["ack_policy"]["enum"].append(
                "flow_control"
            )
        resources.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(resources)


@cache
def validator_for(kind: str) -> jsonschema.Validator:
    path = SCHEMA_DIR / f"{kind}.json"
    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=schema_registry())


def validate(response: dict[str, Any]) -> None:
    """Validate a JS API response against the schema its `type` names."""
    kind = response["type"].removeprefix(TYPE_PREFIX)
    validator_for(kind).validate(response)


def validate_as(kind: str, document: dict[str, Any]) -> None:
    validator_for(kind).validate(document)


async def api(
    nc: nats.NATS,
    subject: str,
    body: Any = None,
    *,
    timeout: float = 3.0,
    check_schema: bool = True,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A raw `$JS.API` request; the response is schema-checked (when it has a `type`)."""
    if body is None:
        payload = b""
    elif isinstance(body, bytes):
        payload = body
    else:
        payload = json.dumps(body).encode()
    msg = await nc.request(subject, payload, timeout=timeout, headers=headers)
    response = json.loads(msg.data)
    if check_schema and "type" in response:
        validate(response)
    return response


def error_of(response: dict[str, Any]) -> tuple[int, int, str]:
    err = response["error"]
    return err["code"], err["err_code"], err["description"]


def http_json(srv: RunningServer, path: str) -> Any:
    with urllib.request.urlopen(srv.monitor_url + path, timeout=5) as resp:
        return json.loads(resp.read())


def unique(request: pytest.FixtureRequest) -> str:
    """A stream name (and subject prefix) unique to the test."""
    base = re.sub(r"[^A-Za-z0-9]", "_", request.node.originalname).strip("_")[-40:]
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6]
    return f"{base}_{digest}"


@pytest.fixture(scope="module")
def js_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One pynats server with JetStream (file store in a temp dir) per test module."""
    store = tmp_path_factory.mktemp("js")
    srv = start_server(["-js", "-sd", str(store)], http_port=-1, oracle=AGAINST_GO)
    yield srv
    srv.stop()
    bugs = [line for line in srv.log_lines if "Traceback" in line or "internal error" in line]
    assert not bugs, "the server logged internal errors:\n" + srv.log_text()


@pytest.fixture
async def nc(js_server: RunningServer) -> AsyncIterator[nats.NATS]:
    client = await connect(js_server.url)
    yield client
    await client.close()


@pytest.fixture
def js(nc: nats.NATS) -> Any:
    return nc.jetstream()


@pytest.fixture
def sname(request: pytest.FixtureRequest) -> str:
    return unique(request)
