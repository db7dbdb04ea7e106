"""Account JetStream limits from the configuration file (`accounts { A: { jetstream: {...} } }`),
differential: the Go nats-server and pynats load the same file and must answer the same.

What nats-server 2.15.1 does (parseJetStreamForAccount, checkStreamCfg):
- The keys, case-insensitive: `max_memory|max_mem|mem|memory`, `max_store|max_file|max_disk|
  store|disk`, `max_streams|streams`, `max_consumers|consumers`, `max_ack_pending`,
  `mem_max_stream_bytes|memory_max_stream_bytes`, `disk_max_stream_bytes|
  store_max_stream_bytes` (all integers; `1G` unquoted is one, "1G" is not:
  `Expected a parseable size for "<key>", got 1G`), `max_bytes_required|max_stream_bytes|
  max_bytes` (a bool: `Expected a parseable bool ...`), `cluster_traffic` (`system`, `owner`
  or empty). Anything else is `unknown field "<key>"` (`storage_max_stream_bytes` too).
- `$JS.API.INFO` shows them under `limits` as `memory_max_stream_bytes`,
  `storage_max_stream_bytes` and `max_bytes_required` (/jsz does not show them).
- Creating or updating a stream: with `max_bytes_required`, a max_bytes of 0, -1 or none is
  10113; a max_bytes above the per-stream maximum of the stream's storage is 10122. These come
  after the other config rules but before the subject transform and republish ones, and
  before "name already in use" (10058), "stream not found" (10059), the name mismatch of an
  update (10056) and an update's storage change; on create they come after the stream count
  (10027) and the account's reservations (10028).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import nats
import pytest
from tests.conftest import connect
from tests.support.js_script import normalise
from tests.support.servers import oracle_server_path, pynats_server_command, start_server

REQUIRED = {
    "error": {
        "code": 400,
        "err_code": 10113,
        "description": "account requires a stream config to have max bytes set",
    },
}
EXCEEDED = {
    "error": {
        "code": 400,
        "err_code": 10122,
        "description": "stream max bytes exceeds account limit max stream bytes",
    },
}

ACCOUNTS = """
accounts {
  A: { jetstream: { max_memory: 1500, max_store: 20M, memory_max_stream_bytes: 1000,
                    store_max_stream_bytes: 2000, max_bytes_required: true, max_streams: 3,
                    max_consumers: 7, max_ack_pending: 50 },
       users: [{user: a, password: a}] }
  B: { jetstream: { MEM_MAX_STREAM_BYTES: 1000, disk_max_stream_bytes: 2K },
       users: [{user: b, password: b}] }
  C: { jetstream: { max_bytes: true }, users: [{user: c, password: c}] }
}
"""

Step = tuple[str, str, Any]  # (user, subject, body)


def _create(name: str, storage: str = "memory", **extra: Any) -> dict[str, Any]:
    return {"name": name, "subjects": [f"{name}.>"], "storage": storage, **extra}


def script() -> list[Step]:
    s: list[Step] = []
    for user in "abc":
        s.append((user, "$JS.API.INFO", None))
    # A: max bytes required, per-stream maxima 1000 (memory) / 2000 (file), 1500 memory
    for storage in ("memory", "file"):
        too_big = 1001 if storage == "memory" else 2001
        for i, extra in enumerate(
            ({}, {"max_bytes": 0}, {"max_bytes": -1}, {"max_bytes": too_big})
        ):
            name = f"N{storage[0]}{i}"
            s.append(("a", f"$JS.API.STREAM.CREATE.{name}", _create(name, storage, **extra)))
    s += [
        ("a", "$JS.API.STREAM.CREATE.M0", _create("M0", max_bytes=2000)),  # 10028 before 10122
        ("a", "$JS.API.STREAM.CREATE.M1", _create("M1", max_bytes=1000)),
        ("a", "$JS.API.STREAM.CREATE.M1", _create("M1", max_bytes=1000)),
        ("a", "$JS.API.STREAM.CREATE.M1", _create("M1")),  # 10113 before 10058
        ("a", "$JS.API.STREAM.CREATE.M1", {**_create("M1", max_bytes=1001), "subjects": ["q"]}),
        ("a", "$JS.API.STREAM.CREATE.M2", _create("M2", max_bytes=600)),  # 10028
        ("a", "$JS.API.STREAM.CREATE.M2", _create("M2", num_replicas=3)),  # 10113 first
        ("a", "$JS.API.STREAM.CREATE.M2", {**_create("M2"), "subjects": ["a..b"]}),
        (
            "a",
            "$JS.API.STREAM.CREATE.M2",
            {**_create("M2"), "subject_transform": {"src": "M2.>", "dest": "$1"}},
        ),
        (
            "a",
            "$JS.API.STREAM.CREATE.M2",
            {**_create("M2"), "republish": {"src": "M2.>", "dest": "M2.x"}},
        ),
        ("a", "$JS.API.STREAM.CREATE.M2", _create("M2", sealed=True)),
        ("a", "$JS.API.STREAM.CREATE.M2", {**_create("M2"), "subjects": ["M1.>"]}),
        ("a", "$JS.API.STREAM.CREATE.F1", _create("F1", "file", max_bytes=2000)),
        ("a", "$JS.API.STREAM.CREATE.F2", _create("F2", "file", max_bytes=10)),
        ("a", "$JS.API.STREAM.CREATE.F3", _create("F3", "file")),  # 10027 before 10113
        ("a", "$JS.API.STREAM.CREATE.F3", {**_create("F3", "file"), "subjects": ["a..b"]}),
        # updates
        ("a", "$JS.API.STREAM.UPDATE.M1", _create("M1")),
        ("a", "$JS.API.STREAM.UPDATE.M1", _create("M1", max_bytes=0)),
        ("a", "$JS.API.STREAM.UPDATE.M1", _create("M1", max_bytes=1001)),
        ("a", "$JS.API.STREAM.UPDATE.M1", _create("M1", max_bytes=1600)),
        ("a", "$JS.API.STREAM.UPDATE.M1", _create("M1", "file")),
        ("a", "$JS.API.STREAM.UPDATE.M1", _create("M1", "file", max_bytes=3000)),
        ("a", "$JS.API.STREAM.UPDATE.M1", _create("F1")),
        ("a", "$JS.API.STREAM.UPDATE.NOPE", _create("NOPE")),
        ("a", "$JS.API.STREAM.UPDATE.NOPE", _create("NOPE", max_bytes=5000)),
        (
            "a",
            "$JS.API.STREAM.UPDATE.M1",
            {**_create("M1"), "subject_transform": {"src": "M1.>", "dest": "$1"}},
        ),
        ("a", "$JS.API.STREAM.UPDATE.M1", {**_create("M1"), "subjects": ["a..b"]}),
        ("a", "$JS.API.STREAM.UPDATE.M1", _create("M1", max_bytes=900)),
        ("a", "$JS.API.STREAM.UPDATE.F1", _create("F1", "file", max_bytes=1500)),
        ("a", "$JS.API.INFO", None),
    ]
    # B: per-stream maxima only; no max_bytes is fine
    s += [
        ("b", "$JS.API.STREAM.CREATE.B1", _create("B1")),
        ("b", "$JS.API.STREAM.CREATE.B2", _create("B2", "file")),
        ("b", "$JS.API.STREAM.CREATE.B3", _create("B3", max_bytes=1001)),
        ("b", "$JS.API.STREAM.CREATE.B3", _create("B3", "file", max_bytes=2001)),
        ("b", "$JS.API.STREAM.CREATE.B3", _create("B3", "file", max_bytes=2000)),
        ("b", "$JS.API.STREAM.UPDATE.B1", _create("B1", max_bytes=5000)),
        ("b", "$JS.API.STREAM.UPDATE.B3", _create("B3", "file")),
        ("b", "$JS.API.INFO", None),
    ]
    # C: max bytes required, no maxima
    s += [
        ("c", "$JS.API.STREAM.CREATE.C1", _create("C1")),
        ("c", "$JS.API.STREAM.CREATE.C1", _create("C1", "file")),
        ("c", "$JS.API.STREAM.CREATE.C1", _create("C1", "file", max_bytes=1 << 20)),
        ("c", "$JS.API.STREAM.UPDATE.C1", _create("C1", "file")),
        ("c", "$JS.API.INFO", None),
    ]
    return s


async def run_script(oracle: bool, tmp: Path, steps: list[Step]) -> list[Any]:
    """Every answer of one server (Go or ours) to `steps`, normalised."""
    store = tmp / ("go" if oracle else "ours")
    conf = tmp / f"{store.name}.conf"
    conf.write_text(f'jetstream {{ store_dir: "{store}" }}\n{ACCOUNTS}')
    srv = start_server(["-c", str(conf)], oracle=oracle)
    clients: dict[str, nats.NATS] = {}
    answers: list[Any] = []
    try:
        for user in "abc":
            clients[user] = await connect(srv.url, user=user, password=user)
        for user, subject, body in steps:
            payload = b"" if body is None else json.dumps(body).encode()
            msg = await clients[user].request(subject, payload, timeout=3)
            answers.append((user, subject, normalise(json.loads(msg.data))))
    finally:
        for client in clients.values():
            await client.close()
        srv.stop()
    assert not any("Traceback" in line for line in srv.log_lines), srv.log_text()
    return answers


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    import asyncio

    tmp = tmp_path_factory.mktemp("js-account-limits")
    steps = script()

    async def both() -> dict[str, list[Any]]:
        return {
            "go": await run_script(True, tmp, steps),
            "ours": await run_script(False, tmp, steps),
        }

    return asyncio.run(both())


def _answer(answers: list[Any], user: str, subject: str, nth: int = 0) -> Any:
    found = [a for u, s, a in answers if u == user and s == subject]
    return found[nth]


def test_every_answer_is_the_go_servers(answers: dict[str, list[Any]]) -> None:
    go, ours = answers["go"], answers["ours"]
    assert len(go) == len(ours) == len(script())
    mismatches = [
        f"step {i} {g[0]} {g[1]}:\n  go:   {g[2]}\n  ours: {o[2]}"
        for i, (g, o) in enumerate(zip(go, ours, strict=True))
        if g != o
    ]
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("server", ["go", "ours"])
def test_account_info_shows_the_limits(answers: dict[str, list[Any]], server: str) -> None:
    got = answers[server]
    assert _answer(got, "a", "$JS.API.INFO")["limits"] == {
        "max_memory": 1500,
        "max_storage": 20_000_000,
        "max_streams": 3,
        "max_consumers": 7,
        "max_ack_pending": 50,
        "memory_max_stream_bytes": 1000,
        "storage_max_stream_bytes": 2000,
        "max_bytes_required": True,
    }
    limits_b = _answer(got, "b", "$JS.API.INFO")["limits"]
    assert limits_b["memory_max_stream_bytes"] == 1000
    assert limits_b["storage_max_stream_bytes"] == 2000  # 2K in a config file
    assert limits_b["max_bytes_required"] is False
    limits_c = _answer(got, "c", "$JS.API.INFO")["limits"]
    assert limits_c["max_bytes_required"] is True
    assert limits_c["memory_max_stream_bytes"] == limits_c["storage_max_stream_bytes"] == -1


@pytest.mark.parametrize("server", ["go", "ours"])
def test_stream_max_bytes_rules(answers: dict[str, list[Any]], server: str) -> None:
    got = answers[server]
    typ = "io.nats.jetstream.api.v1.stream_create_response"
    utyp = "io.nats.jetstream.api.v1.stream_update_response"
    for name in ("Nm0", "Nm1", "Nm2", "Nf0", "Nf1", "Nf2"):
        assert _answer(got, "a", f"$JS.API.STREAM.CREATE.{name}") == {**REQUIRED, "type": typ}
    for name in ("Nm3", "Nf3"):
        assert _answer(got, "a", f"$JS.API.STREAM.CREATE.{name}") == {**EXCEEDED, "type": typ}
    assert _answer(got, "a", "$JS.API.STREAM.CREATE.M1", 2) == {**REQUIRED, "type": typ}
    assert _answer(got, "a", "$JS.API.STREAM.CREATE.M1", 3) == {**EXCEEDED, "type": typ}
    assert _answer(got, "a", "$JS.API.STREAM.UPDATE.M1", 0) == {**REQUIRED, "type": utyp}
    assert _answer(got, "a", "$JS.API.STREAM.UPDATE.M1", 2) == {**EXCEEDED, "type": utyp}
    assert _answer(got, "a", "$JS.API.STREAM.UPDATE.NOPE") == {**REQUIRED, "type": utyp}
    assert _answer(got, "a", "$JS.API.STREAM.UPDATE.M1", 9)["config"]["max_bytes"] == 900
    assert _answer(got, "b", "$JS.API.STREAM.CREATE.B1")["config"]["max_bytes"] == -1
    assert _answer(got, "b", "$JS.API.STREAM.CREATE.B3", 0) == {**EXCEEDED, "type": typ}
    assert _answer(got, "b", "$JS.API.STREAM.CREATE.B3", 1) == {**EXCEEDED, "type": typ}
    assert _answer(got, "b", "$JS.API.STREAM.CREATE.B3", 2)["config"]["max_bytes"] == 2000
    assert _answer(got, "b", "$JS.API.STREAM.UPDATE.B1") == {**EXCEEDED, "type": utyp}
    assert _answer(got, "c", "$JS.API.STREAM.CREATE.C1", 1) == {**REQUIRED, "type": typ}
    assert "error" not in _answer(got, "c", "$JS.API.STREAM.CREATE.C1", 2)
    assert _answer(got, "c", "$JS.API.STREAM.UPDATE.C1") == {**REQUIRED, "type": utyp}


# -- the configuration check (`nats-server -t`) --------------------------------------------

CHECKS = [
    ("memory_max_stream_bytes: 1K, store_max_stream_bytes: 1M, max_bytes_required: true", None),
    ("mem_max_stream_bytes: 5, disk_max_stream_bytes: 6, max_stream_bytes: false", None),
    ("MAX_BYTES: true, Max_Ack_Pending: 10, cluster_traffic: owner", None),
    ("max_mem: 1G, max_file: 2G, streams: 3, consumers: 4, cluster_traffic: system", None),
    ('memory_max_stream_bytes: "1K"', 'Expected a parseable size for "memory_max_stream_bytes"'),
    ("max_bytes_required: 1", 'Expected a parseable bool for "max_bytes_required", got 1'),
    ("store_max_stream_bytes: true", 'Expected a parseable size for "store_max_stream_bytes"'),
    ("max_ack_pending: 1.5", 'Expected a parseable size for "max_ack_pending", got 1.5'),
    ("storage_max_stream_bytes: 5", 'unknown field "storage_max_stream_bytes"'),
    ("bogus: 1", 'unknown field "bogus"'),  # (Go walks a map in random order: one error)
    ("cluster_traffic: System", "Expected 'system' or 'owner' string value"),
    ("cluster_traffic: 1", "Expected either 'system' or 'owner' string value"),
]


def _check(cmd: list[str], path: Path) -> tuple[int, str]:
    proc = subprocess.run(
        [*cmd, "-t", "-c", path.name],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=path.parent,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stderr


@pytest.mark.parametrize(("block", "error"), CHECKS, ids=[c[0][:40] for c in CHECKS])
def test_config_check_like_nats_server(tmp_path: Path, block: str, error: str | None) -> None:
    path = tmp_path / "t.conf"
    path.write_text(f"accounts {{ A: {{ jetstream: {{ {block} }}, users: [{{user: a}}] }} }}\n")
    go = _check([oracle_server_path()], path)
    ours = _check(pynats_server_command(), path)
    assert ours == go
    code, text = go
    if error is None:
        assert code == 0 and "is valid" in text, text
    else:
        assert code == 1 and error in text, text
