"""The same scripted consumer session against the Go nats-server and against pynats: every
answer must be the same, ignoring only ids, timestamps, server names and versions.

The script covers the consumer API (every create form, create/update actions, the config
rules and their error codes, info/names/list paging, delete, pause, unpin), pull requests
and every status they can end with (404, 408 with pending headers, 409 for max waiting,
max bytes, batch completed, request limits and a deleted consumer, 400 bad requests,
priority-group answers), the ack verbs with their double-ack replies, and the consumer
state after each of them.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats.errors
from tests.conftest import connect
from tests.support.servers import start_server

NS = 1_000_000_000
MS = 1_000_000
IGNORED_KEYS = {
    "created",
    "ts",
    "first_ts",
    "last_ts",
    "time",
    "timestamp",
    "id",
    "leader",
    "last_active",
    "pause_remaining",
    "_nats.ver",
    "_nats.level",
    "level",
    "Nats-Pin-Id",
    "pinned_client_id",
    "pinned_ts",
}


def create(name: str, stream: str = "S", **config: Any) -> tuple[str, Any]:
    return (
        f"$JS.API.CONSUMER.CREATE.{stream}.{name}",
        {"stream_name": stream, "config": {"name": name, **config}},
    )


def api_steps() -> list[tuple[str, Any]]:
    s: list[tuple[str, Any]] = []

    def step(subject: str, body: Any = None) -> None:
        s.append((subject, body))

    step("$JS.API.STREAM.CREATE.S", {"name": "S", "subjects": ["s.>"]})
    step("$JS.API.STREAM.CREATE.W", {"name": "W", "subjects": ["w.>"], "retention": "workqueue"})
    step(
        "$JS.API.STREAM.CREATE.I",
        {"name": "I", "subjects": ["i.>"], "retention": "interest", "max_consumers": 1},
    )
    # the create forms
    step("$JS.API.CONSUMER.CREATE.S.D1", {"stream_name": "S", "config": {"durable_name": "D1"}})
    step("$JS.API.CONSUMER.CREATE.S.D1", {"stream_name": "S", "config": {"durable_name": "D1"}})
    step("$JS.API.CONSUMER.DURABLE.CREATE.S.D2", {"stream_name": "S", "config": {}})
    step(
        "$JS.API.CONSUMER.DURABLE.CREATE.S.D2",
        {"stream_name": "S", "config": {"durable_name": "X"}},
    )
    step(
        "$JS.API.CONSUMER.DURABLE.CREATE.S.D2",
        {"stream_name": "S", "config": {"durable_name": "D2", "ack_policy": "explicit"}},
    )
    step("$JS.API.CONSUMER.CREATE.S", {"stream_name": "S", "config": {"durable_name": "E"}})
    step("$JS.API.CONSUMER.CREATE.S.F.s.1", {"stream_name": "S", "config": {"name": "F"}})
    step(
        "$JS.API.CONSUMER.CREATE.S.F.s.1",
        {"stream_name": "S", "config": {"name": "F", "filter_subject": "s.1"}},
    )
    step(
        "$JS.API.CONSUMER.CREATE.S.G.s.1",
        {"stream_name": "S", "config": {"name": "G", "filter_subjects": ["s.1"]}},
    )
    step("$JS.API.CONSUMER.CREATE.S.X", {"stream_name": "T", "config": {}})
    step("$JS.API.CONSUMER.CREATE.NOPE.X", {"stream_name": "NOPE", "config": {}})
    step("$JS.API.CONSUMER.CREATE.S.a/b", {"stream_name": "S", "config": {}})
    step("$JS.API.CONSUMER.CREATE.S.X", b"")
    step("$JS.API.CONSUMER.CREATE.S.X", b"{bad")
    step("$JS.API.CONSUMER.CREATE.S.X", {"stream_name": "S", "config": {"bogus": 1}})
    step("$JS.API.CONSUMER.CREATE.S.X", {"stream_name": "S", "config": {}, "action": "nope"})
    # actions
    step(*create("A1", ack_policy="explicit"))
    step(
        "$JS.API.CONSUMER.CREATE.S.A1",
        {
            "stream_name": "S",
            "config": {"name": "A1", "ack_policy": "explicit"},
            "action": "create",
        },
    )
    step(
        "$JS.API.CONSUMER.CREATE.S.A1",
        {
            "stream_name": "S",
            "config": {"name": "A1", "ack_policy": "explicit", "description": "d"},
            "action": "create",
        },
    )
    step(
        "$JS.API.CONSUMER.CREATE.S.A2",
        {"stream_name": "S", "config": {"name": "A2"}, "action": "update"},
    )
    step(
        "$JS.API.CONSUMER.CREATE.S.A1",
        {
            "stream_name": "S",
            "config": {"name": "A1", "ack_policy": "explicit", "max_deliver": 5, "ack_wait": NS},
            "action": "update",
        },
    )
    # config rules, one broken at a time
    for cfg in (
        {"deliver_policy": "bogus"},
        {"ack_wait": "1s"},
        {"backoff": [-1], "max_deliver": 5},
        {"ack_wait": -1},
        {"backoff": [NS, 2 * NS], "max_deliver": 1},
        {"filter_subject": "a..b"},
        {"filter_subject": "s.a", "filter_subjects": ["s.b"]},
        {"filter_subjects": ["s.a", ""]},
        {"filter_subjects": ["s.a", "s.*"]},
        {"deliver_policy": "last_per_subject"},
        {"deliver_policy": "by_start_time"},
        {"deliver_policy": "by_start_sequence"},
        {"deliver_policy": "new", "opt_start_seq": 4},
        {"opt_start_time": "garbage"},
        {"rate_limit_bps": 100},
        {"idle_heartbeat": 50 * MS, "deliver_subject": "d1"},
        {"idle_heartbeat": NS},
        {"flow_control": True, "deliver_subject": "d2"},
        {"flow_control": True},
        {"max_expires": 10},
        {"deliver_subject": "d3", "max_waiting": 5},
        {"deliver_subject": "d4", "max_ack_pending": 5},
        {"deliver_subject": "s.x"},
        {"deliver_subject": "d.*"},
        {"description": "x" * 5000},
        {"metadata": {"k": "v" * 140_000}},
        {"num_replicas": 3},
        {"num_replicas": -1},
        {"priority_policy": "pinned_client"},
        {"priority_policy": "overflow", "priority_groups": ["bad group!"]},
        {"priority_groups": ["g"]},
        {"priority_policy": "pinned_client", "priority_groups": ["g"], "deliver_subject": "d5"},
        {"priority_timeout": 1000},
        {"priority_policy": "bogus"},
        {"sample_freq": "abc"},
        {"sample_freq": "-5"},
        {"direct": True},
        {"ack_policy": "flow_control"},
        {"name": "a.b"},
        {"max_deliver": -5, "max_waiting": -5, "max_ack_pending": -5, "max_batch": -1},
        {"inactive_threshold": -1, "max_bytes": -3},
        {"sample_freq": "10%", "headers_only": True, "mem_storage": True, "metadata": {"a": "b"}},
    ):
        name = "V"
        step(
            "$JS.API.CONSUMER.CREATE.S.V",
            {"stream_name": "S", "config": {"name": name, "ack_policy": "explicit", **cfg}},
        )
        step("$JS.API.CONSUMER.DELETE.S.V")
    step(
        "$JS.API.CONSUMER.CREATE.S.P",
        {"stream_name": "S", "config": {"name": "P", "max_deliver": -5}, "pedantic": True},
    )
    # updates of what may not change
    step(*create("U", durable_name="U", ack_policy="explicit", deliver_subject="du"))
    for change in (
        {"deliver_policy": "new"},
        {"mem_storage": True},
        {"replay_policy": "original"},
        {"idle_heartbeat": NS},
        {"deliver_subject": ""},
        {"ack_policy": "none"},
        {"deliver_subject": "du2", "description": "moved", "max_ack_pending": 7},
        {"pause_until": "2099-01-01T00:00:00Z", "deliver_subject": "du2"},
    ):
        cfg = {"name": "U", "durable_name": "U", "ack_policy": "explicit", "deliver_subject": "du"}
        cfg.update(change)
        step("$JS.API.CONSUMER.CREATE.S.U", {"stream_name": "S", "config": cfg})
    # work queue and interest streams
    for name, cfg in (
        ("w1", {}),
        ("w2", {"ack_policy": "explicit"}),
        ("w3", {"ack_policy": "explicit"}),
        ("w4", {"ack_policy": "explicit", "filter_subject": "w.a"}),
        ("w5", {"ack_policy": "explicit", "filter_subject": "w.b", "deliver_policy": "new"}),
        ("w6", {"ack_policy": "none", "deliver_subject": "dw"}),
    ):
        step(*create(name, stream="W", **cfg))
    step(*create("i1", stream="I"))
    step(*create("i2", stream="I"))
    step(*create("i3", stream="I", num_replicas=2))
    # read side
    step("$JS.API.CONSUMER.INFO.S.D1")
    step("$JS.API.CONSUMER.INFO.S.D1", {"x": 1})
    step("$JS.API.CONSUMER.INFO.S.NOPE")
    step("$JS.API.CONSUMER.INFO.NOPE.D1")
    step("$JS.API.CONSUMER.NAMES.S")
    step("$JS.API.CONSUMER.NAMES.S", {"offset": 2})
    step("$JS.API.CONSUMER.NAMES.S", {"offset": "x"})
    step("$JS.API.CONSUMER.NAMES.NOPE")
    step("$JS.API.CONSUMER.LIST.S", {"offset": 3})
    step("$JS.API.CONSUMER.LIST.NOPE")
    step("$JS.API.CONSUMER.LEADER.STEPDOWN.S.D1")
    step("$JS.API.CONSUMER.LEADER.STEPDOWN.S.NOPE")
    # pause and unpin
    step("$JS.API.CONSUMER.PAUSE.S.D1", {"pause_until": "2099-01-01T00:00:00Z"})
    step("$JS.API.CONSUMER.INFO.S.D1")
    step("$JS.API.CONSUMER.PAUSE.S.D1", {})
    step("$JS.API.CONSUMER.PAUSE.S.NOPE", {})
    step(
        *create("PG", ack_policy="explicit", priority_policy="pinned_client", priority_groups=["g"])
    )
    step("$JS.API.CONSUMER.UNPIN.S.PG", {"group": "g"})
    step("$JS.API.CONSUMER.UNPIN.S.PG", {"group": "h"})
    step("$JS.API.CONSUMER.UNPIN.S.PG", {})
    step("$JS.API.CONSUMER.UNPIN.S.NOPE", {"group": "g"})
    # delete
    step("$JS.API.CONSUMER.DELETE.S.D1", b"x")
    step("$JS.API.CONSUMER.DELETE.S.D1")
    step("$JS.API.CONSUMER.DELETE.S.D1")
    step("$JS.API.STREAM.INFO.S")
    step("$JS.API.INFO")
    return s


def delivery_steps() -> list[tuple[str, ...]]:
    """Publishes, pull requests and acks; each answer is every message seen in `wait`."""
    s: list[tuple[Any, ...]] = []

    def pub(subject: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        s.append(("pub", subject, data, headers))

    def pull(consumer: str, body: Any, wait: float = 0.0) -> None:
        s.append(("pull", consumer, body, wait))

    def ack(consumer: str, index: int, payload: bytes) -> None:
        s.append(("ack", consumer, index, payload))

    def info(consumer: str) -> None:
        s.append(("api", f"$JS.API.CONSUMER.INFO.S.{consumer}", None))

    def make(name: str, **cfg: Any) -> None:
        subject, body = create(name, **cfg)
        s.append(("api", subject, body))

    for i in range(5):
        pub(f"s.{i % 2}", b"x%d" % i, {"H": "v"} if i == 2 else None)
    make("A", ack_policy="explicit", max_waiting=2, max_batch=20, max_expires=3 * NS)
    pull("A", b"")
    pull("A", b"2")
    pull("A", {"batch": 5, "no_wait": True})
    pull("A", {"batch": 5, "no_wait": True})
    pull("A", {"batch": 50})
    pull("A", {"batch": 1, "expires": 4 * NS})
    pull("A", {"batch": 1, "expires": NS, "idle_heartbeat": 600 * MS})
    pull("A", b"{bad")
    pull("A", {"batch": 1.5})
    pull("A", {"batch": 3, "expires": 200 * MS}, 0.4)
    pull("A", {"batch": 3, "no_wait": True, "expires": 200 * MS}, 0.4)
    pull("A", {"batch": 1, "group": "g", "no_wait": True})
    info("A")
    # acks on what A got: double acks are answered, acks of what was never delivered not
    ack("A", 0, b"")
    ack("A", 0, b"+ACK")
    ack("A", 1, b"-NAK")
    ack("A", 2, b"+WPI")
    ack("A", 3, b"+TERM bye")
    ack("A", 4, b'-NAK {"delay": 60000000000}')
    info("A")
    pull("A", {"batch": 5, "no_wait": True})
    s.append(("raw-ack", "$JS.ACK.S.A.1.50.50.123.0", b""))
    info("A")
    # max bytes and batch completed
    make("B", ack_policy="explicit")
    pull("B", {"batch": 10, "max_bytes": 40, "no_wait": True})
    pull("B", {"batch": 2, "max_bytes": 1000, "no_wait": True})
    pull("B", {"batch": 1, "max_bytes": 1000, "expires": 300 * MS}, 0.2)
    info("B")
    # ack all and +NXT
    make("C", ack_policy="all")
    pull("C", {"batch": 4, "no_wait": True})
    ack("C", 2, b"+ACK")
    info("C")
    ack("C", 0, b"+ACK")
    make("N", ack_policy="explicit")
    pull("N", {"batch": 1, "no_wait": True})
    s.append(("nxt", "N", 0, b"+NXT 2"))
    info("N")
    # ack none: no ack responder
    make("Z", ack_policy="none")
    pull("Z", {"batch": 2, "no_wait": True})
    ack("Z", 0, b"")
    info("Z")
    # max waiting
    make("Q", ack_policy="explicit", max_waiting=1, deliver_policy="new")
    pull("Q", {"batch": 1, "expires": NS}, 0.05)
    pull("Q", {"batch": 1, "expires": NS}, 0.05)
    pull("Q", {"batch": 1, "no_wait": True}, 0.05)
    info("Q")
    # push consumers answer pull requests with 409
    make("PUSH", ack_policy="explicit", deliver_subject="dp")
    pull("PUSH", {"batch": 1})
    # priority groups
    make("O", ack_policy="explicit", priority_policy="overflow", priority_groups=["g"])
    pull("O", {"batch": 1})
    pull("O", {"batch": 1, "group": "h"})
    pull("O", {"batch": 1, "group": "g", "id": "x"})
    pull("O", {"batch": 1, "group": "g", "min_pending": 100, "no_wait": True})
    pull("O", {"batch": 1, "group": "g", "min_pending": 3})
    make("PIN", ack_policy="explicit", priority_policy="pinned_client", priority_groups=["g"])
    pull("PIN", {"batch": 1, "group": "g"})
    pull("PIN", {"batch": 1, "group": "g", "id": "bogus", "no_wait": True})
    s.append(("api", "$JS.API.CONSUMER.UNPIN.S.PIN", {"group": "g"}))
    make("PR", ack_policy="explicit", priority_policy="prioritized", priority_groups=["g"])
    pull("PR", {"batch": 1, "group": "g", "priority": 11})
    # last per subject and filters
    make("L", deliver_policy="last_per_subject", filter_subject="s.*")
    pull("L", {"batch": 5, "no_wait": True})
    make("LS", deliver_policy="last", filter_subject="s.0")
    pull("LS", {"batch": 5, "no_wait": True})
    make("BS", deliver_policy="by_start_sequence", opt_start_seq=4, headers_only=True)
    pull("BS", {"batch": 5, "no_wait": True})
    make("M", filter_subjects=["s.1", "s.nothing"])
    pull("M", {"batch": 5, "no_wait": True})
    # a consumer deleted under waiting requests
    make("DEL", ack_policy="explicit", deliver_policy="new")
    pull("DEL", {"batch": 1, "expires": 2 * NS}, 0.05)
    s.append(("api-then-wait", "$JS.API.CONSUMER.DELETE.S.DEL", "DEL"))
    pull("NOPE", {"batch": 1})
    return s


async def settle(seen: list[Any], wait: float) -> None:
    """A fixed `wait` (answers due after an expiry), or until 40 ms passed without news."""
    if wait:
        await asyncio.sleep(wait)
        return
    loop = asyncio.get_running_loop()
    count, quiet_since = -1, loop.time()
    while loop.time() - quiet_since < 0.04:
        if len(seen) != count:
            count, quiet_since = len(seen), loop.time()
        await asyncio.sleep(0.01)


def normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: normalise(v) for k, v in value.items() if k not in IGNORED_KEYS and v is not None
        }
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def ack_tokens(reply: str | None) -> Any:
    """An ack subject without its timestamp token."""
    if not reply or not reply.startswith("$JS.ACK."):
        return reply
    tokens = reply.split(".")
    return ".".join(tokens[:7] + tokens[8:])


def message(msg: Any) -> dict[str, Any]:
    headers = dict(msg.headers or {})
    return {
        "subject": msg.subject,
        "reply": ack_tokens(msg.reply),
        "headers": normalise({str(k): v for k, v in headers.items()}),
        "data": msg.data,
    }


async def run_script(oracle: bool, store: str) -> list[Any]:
    srv = start_server(["-js", "-sd", store], oracle=oracle)
    answers: list[Any] = []
    try:
        nc = await connect(srv.url)
        for subject, body in api_steps():
            payload = (
                body if isinstance(body, bytes) else json.dumps(body).encode() if body else b""
            )
            try:
                msg = await nc.request(subject, payload, timeout=1.5)
                answers.append((subject, normalise(json.loads(msg.data))))
            except nats.errors.TimeoutError:
                answers.append((subject, "timeout"))
        got: dict[str, list[Any]] = {}
        counter = 0
        for step in delivery_steps():
            kind = step[0]
            if kind == "pub":
                _, subject, data, headers = step
                ack = await nc.request(subject, data, timeout=1.5, headers=headers)
                answers.append(("pub", json.loads(ack.data)))
            elif kind == "api":
                _, subject, body = step
                payload = json.dumps(body).encode() if body is not None else b""
                msg = await nc.request(subject, payload, timeout=1.5)
                answers.append((subject, normalise(json.loads(msg.data))))
            elif kind in ("pull", "nxt", "api-then-wait"):
                counter += 1
                inbox = f"_IN.{counter}"
                seen: list[Any] = []

                async def collect(msg: Any, seen: list[Any] = seen) -> None:
                    seen.append(msg)

                sub = await nc.subscribe(inbox, cb=collect)
                if kind == "pull":
                    _, consumer, body, wait = step
                    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                    await nc.publish(
                        f"$JS.API.CONSUMER.MSG.NEXT.S.{consumer}", payload, reply=inbox
                    )
                elif kind == "nxt":
                    _, consumer, index, payload = step
                    await nc.publish(got[consumer][index].reply, payload, reply=inbox)
                    wait = 0.0
                else:
                    _, subject, consumer = step
                    # the pending request of the previous step gets 409 Consumer Deleted
                    await nc.request(subject, b"", timeout=1.5)
                    wait = 0.0
                await settle(seen, wait)
                await sub.unsubscribe()
                if kind == "api-then-wait":
                    answers.append((step[1], "deleted"))
                    continue
                got.setdefault(step[1], []).extend(m for m in seen if m.reply)
                answers.append((kind, step[1], [message(m) for m in seen]))
            elif kind == "ack":
                _, consumer, index, payload = step
                target = got[consumer][index].reply
                try:
                    reply = await nc.request(target, payload, timeout=0.5)
                    answers.append(("ack", consumer, payload, reply.data, reply.headers))
                except nats.errors.NoRespondersError:
                    answers.append(("ack", consumer, payload, "no responders"))
                except nats.errors.TimeoutError:
                    answers.append(("ack", consumer, payload, "timeout"))
            elif kind == "raw-ack":
                try:
                    reply = await nc.request(step[1], step[2], timeout=0.3)
                    answers.append(("raw-ack", reply.data))
                except nats.errors.TimeoutError:
                    answers.append(("raw-ack", "timeout"))
        await nc.close()
    finally:
        srv.stop()
    return answers


async def test_scripted_consumer_session_answers_like_nats_server(tmp_path) -> None:
    go = await run_script(True, str(tmp_path / "go"))
    ours = await run_script(False, str(tmp_path / "ours"))
    assert len(go) == len(ours)
    mismatches = [
        f"step {i} {g[0]}:\n  go:   {g}\n  ours: {o}"
        for i, (g, o) in enumerate(zip(go, ours, strict=True))
        if g != o
    ]
    assert not mismatches, "\n".join(mismatches)
