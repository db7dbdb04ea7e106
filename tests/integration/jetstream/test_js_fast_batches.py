"""Fast-ingest batch publish (ADR-50 level 4, `allow_batched`): the same session against
nats-server and pynats - the stream rules, each op, each error, gaps in both modes, pings,
the flow-control acks and their ramp, commits by `2` and `3`, store errors (`"type":"err"`),
what is stored and with which headers - and a 5000-message batch published as a client does,
obeying the flow control, against both servers."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
import pytest
from tests.conftest import connect
from tests.support.js_script import normalise
from tests.support.servers import start_server

CREATE = "$JS.API.STREAM.CREATE."

# ("req", subject, body) | ("pub", subject, reply, payload, headers)
Step = tuple[Any, ...]


def fi(
    batch_id: str, seq: int | str, op: int | str, flow: int | str = 10, gap: str = "fail"
) -> str:
    return f"in.{batch_id}.{flow}.{gap}.{seq}.{op}.$FI"


def script() -> list[Step]:
    s: list[Step] = []

    def req(subject: str, body: object = None) -> None:
        s.append(("req", subject, body))

    def pub(
        subject: str, reply: str, payload: bytes = b"x", headers: dict[str, str] | None = None
    ) -> None:
        s.append(("pub", subject, reply, payload, headers))

    # stream rules
    req(CREATE + "F", {"name": "F", "subjects": ["f.>"], "allow_batched": True})
    req(CREATE + "N", {"name": "N", "subjects": ["n.>"]})
    req(CREATE + "S", {"name": "S", "subjects": ["s.>"], "allow_batched": True, "max_msg_size": 10})
    req(CREATE + "M", {"name": "M", "mirror": {"name": "F"}, "allow_batched": True})
    req("$JS.API.STREAM.UPDATE.N", {"name": "N", "subjects": ["n.>"], "allow_batched": True})
    req("$JS.API.STREAM.UPDATE.N", {"name": "N", "subjects": ["n.>"], "allow_batched": False})
    # start, append, ping, commit (2)
    pub("f.a", fi("b1", 1, 0), b"one", {"Foo": "bar"})
    pub("f.b", fi("b1", 2, 1), b"two")
    pub("f.a", fi("b1", 2, 4))
    pub("f.c", fi("b1", 3, 2), b"three", {"Nats-Msg-Id": "m1"})
    req("$JS.API.STREAM.MSG.GET.F", {"seq": 1})
    req("$JS.API.STREAM.MSG.GET.F", {"seq": 3})
    pub("f.a", fi("b1", 4, 1))  # committed: unknown
    # a commit at once, a duplicate, an EOB commit (3) and EOB at sequence 1
    pub("f.a", fi("b2", 1, 2), b"once")
    pub("f.a", fi("b3", 1, 2), b"dup", {"Nats-Msg-Id": "m1"})
    pub("f.a", fi("b4", 1, 3))
    pub("f.a", fi("b5", 1, 0))
    pub("f.a", fi("b5", 2, 1))
    pub("f.a", fi("b5", 3, 3), b"not stored")
    # errors: disabled, patterns, ids
    pub("n.a", fi("c1", 1, 0))
    pub("f.a", fi("c2", 2, 1))
    pub("f.a", fi("c3", 2, 0))
    pub("f.a", fi("c4", 1, 5))
    pub("f.a", fi("c4", 1, "x"))
    pub("f.a", fi("c4", 0, 4))
    pub("f.a", fi("c4", "-1", 0))
    pub("f.a", fi("c5", 1, 0, gap="FAIL"))
    pub("f.a", "b.10.fail.1.0.$FI")
    pub("f.a", "x.$FI")
    pub("f.a", fi("x" * 65, 1, 0))
    pub("f.a", fi("y" * 64, 1, 2))
    # flows: default, capped, leading zeros
    pub("f.a", fi("d1", 1, 0, flow=0))
    pub("f.a", fi("d1", 2, 3))
    pub("f.a", fi("d2", 1, 0, flow="abc"))
    pub("f.a", fi("d2", 2, 3))
    pub("f.a", fi("d3", 1, 0, flow=70000))
    pub("f.a", fi("d3", "02", "03"))
    # acks every 3, pings resend the last one
    pub("f.a", fi("p1", 1, 0, flow=3))
    for seq in range(2, 8):
        pub("f.a", fi("p1", seq, 1, flow=3))
        if seq in (2, 3, 6):
            pub("f.a", fi("p1", seq, 4, flow=3))
    # a second batch open: its flow starts at 1 and doubles
    pub("f.a", fi("r1", 1, 0, flow=8))
    for seq in range(2, 14):
        pub("f.a", fi("r1", seq, 1, flow=8))
    pub("f.a", fi("p1", 8, 2, flow=3))
    pub("f.a", fi("r1", 14, 3, flow=8))
    # gaps, fail mode: forward, repeat, restart, ping ahead
    pub("f.a", fi("g1", 1, 0))
    pub("f.a", fi("g1", 2, 1))
    pub("f.a", fi("g1", 5, 1))
    pub("f.a", fi("g2", 1, 0))
    pub("f.a", fi("g2", 1, 1))
    pub("f.a", fi("g3", 1, 0))
    pub("f.a", fi("g3", 1, 0))
    pub("f.a", fi("g4", 1, 0))
    pub("f.a", fi("g4", 2, 4))
    pub("f.a", fi("g5", 1, 0))
    pub("f.a", fi("g5", 3, 2))
    # gaps, ok mode: on past a jump, a ping ahead moves on, a step back ends
    pub("f.a", fi("o1", 1, 0, gap="ok"))
    pub("f.a", fi("o1", 2, 1, gap="ok"))
    pub("f.a", fi("o1", 5, 1, gap="ok"))
    pub("f.a", fi("o1", 6, 4, gap="ok"))
    pub("f.a", fi("o1", 6, 4, gap="ok"))
    pub("f.a", fi("o1", 7, 1, gap="ok"))
    pub("f.a", fi("o1", 9, 3, gap="ok"))
    pub("f.a", fi("o2", 1, 0, gap="ok"))
    pub("f.a", fi("o2", 2, 1, gap="ok"))
    pub("f.a", fi("o2", 2, 1, gap="ok"))
    pub("f.a", fi("o3", 1, 0, gap="ok"))
    pub("f.a", fi("o3", 3, 2, gap="ok"))
    # refused messages: too large (the batch does not move), expected-sequence (it ends)
    pub("s.a", fi("e1", 1, 0))
    pub("s.a", fi("e1", 2, 1), b"0123456789abc")
    pub("s.a", fi("e1", 2, 1))
    pub("s.a", fi("e1", 3, 2), b"0123456789abc")
    pub("s.a", fi("e1", 3, 3), b"0123456789abc")
    pub("s.a", fi("e2", 1, 0), b"0123456789abc")
    pub("s.a", fi("e2", 2, 1))
    pub("f.a", fi("e3", 1, 0))
    pub("f.a", fi("e3", 2, 1), b"a", {"Nats-Expected-Last-Sequence": "1000"})
    pub("f.a", fi("e3", 3, 1))
    pub("f.a", fi("e4", 1, 0, gap="ok"))
    pub("f.a", fi("e4", 2, 1, gap="ok"), b"a", {"Nats-Expected-Last-Sequence": "1000"})
    pub("f.a", fi("e4", 3, 1, gap="ok"))
    pub("f.a", fi("e4", 4, 2, gap="ok"), b"a", {"Nats-Expected-Last-Sequence": "1000"})
    pub("f.a", fi("e5", 1, 0), b"a", {"Nats-Expected-Last-Sequence": "1000"})
    pub("f.a", fi("e5", 2, 1))
    pub("f.a", fi("e6", 1, 2), b"a", {"Nats-Expected-Last-Sequence": "1000"})
    # an atomic batch header means nothing here
    pub("f.a", fi("h1", 1, 0), b"a", {"Nats-Batch-Id": "zz"})
    pub("f.a", fi("h1", 2, 2))
    req("$JS.API.STREAM.MSG.GET.F", {"last_by_subj": "f.a"})
    req("$JS.API.STREAM.MSG.GET.F", {"last_by_subj": "f.b"})
    req("$JS.API.STREAM.MSG.GET.F", {"last_by_subj": "f.c"})
    req("$JS.API.STREAM.INFO.F")
    req("$JS.API.STREAM.INFO.S")
    return s


async def quiet(got: list[Any], pause: float = 0.05, at_least: int = 0) -> None:
    """Until `at_least` answers are in (5 s at most), then nothing more for `pause` seconds."""
    for _ in range(500):
        if len(got) >= at_least:
            break
        await asyncio.sleep(0.01)
    seen = -1
    for _ in range(40):
        if len(got) == seen:
            return
        seen = len(got)
        await asyncio.sleep(pause)


def state_of(info: dict[str, Any]) -> dict[str, Any]:
    state = info.get("state", {})
    return {k: state.get(k) for k in ("messages", "bytes", "first_seq", "last_seq")}


async def run_script(steps: list[Step], oracle: bool, store: str) -> list[Any]:
    srv = start_server(["-js", "-sd", store], oracle=oracle)
    answers: list[Any] = []
    try:
        nc = await connect(srv.url)
        got: list[tuple[str, Any]] = []

        async def on_inbox(msg: Any) -> None:
            got.append((msg.subject, json.loads(msg.data)))

        await nc.subscribe("in.>", cb=on_inbox)
        await nc.subscribe("b.>", cb=on_inbox)
        await nc.subscribe("x.>", cb=on_inbox)
        for step in steps:
            if step[0] == "req":
                _, subject, body = step
                data = json.dumps(body).encode() if body is not None else b""
                msg = await nc.request(subject, data, timeout=3)
                answer = json.loads(msg.data)
                if subject.startswith("$JS.API.STREAM.INFO"):
                    answer = state_of(answer)
                elif "config" in answer:
                    answer = answer["config"].get("metadata", {}).get("_nats.req.level")
                answers.append((subject, normalise(answer)))
            else:
                _, subject, reply, payload, headers = step
                await nc.publish(subject, payload, reply=reply, headers=headers)
                await nc.flush()
                await quiet(got)
                answers.append((subject, reply, list(got)))
                got.clear()
        await nc.close()
    finally:
        srv.stop()
    return answers


async def test_fast_batch_session_matches_nats_server(tmp_path: Path) -> None:
    steps = script()
    go = await run_script(steps, True, f"{tmp_path}/go")
    ours = await run_script(steps, False, f"{tmp_path}/ours")
    diffs = "\n".join(
        f"step {i}: {g[:-1]}\n  go:   {g[-1]}\n  ours: {o[-1]}"
        for i, (g, o) in enumerate(zip(go, ours, strict=True))
        if g != o
    )
    assert not diffs, diffs


class FastPublisher:
    """A fast-ingest publisher as ADR-50 describes the client: the reply subject carries
    everything, at most `outstanding` ack intervals are in flight, the server's `msgs`
    is obeyed, and the batch ends with an EOB commit."""

    def __init__(self, nc: nats.NATS, subject: str, flow: int, outstanding: int = 2) -> None:
        self.nc = nc
        self.subject = subject
        self.prefix = f"fastin.{nc._nuid.next().decode()}"
        self.flow = flow
        self.outstanding = outstanding
        self.seq = 0
        self.acked = 0
        self.msgs = 1
        self.acks = 0
        self.max_msgs = 0
        self.final: dict[str, Any] | None = None
        self.errors: list[Any] = []
        self.changed = asyncio.Event()

    async def start(self) -> None:
        self.sub = await self.nc.subscribe(f"{self.prefix}.>", cb=self._on_msg)

    async def _on_msg(self, msg: Any) -> None:
        data = json.loads(msg.data)
        if data.get("type") == "ack":
            self.acks += 1
            self.acked = max(self.acked, data["seq"])
            self.msgs = data["msgs"]
            self.max_msgs = max(self.max_msgs, self.msgs)
        elif "batch" in data:
            self.final = data
        else:
            self.errors.append(data)
        self.changed.set()

    def _reply(self, op: int) -> str:
        return f"{self.prefix}.{self.flow}.fail.{self.seq}.{op}.$FI"

    async def add(self, payload: bytes) -> None:
        self.seq += 1
        await self.nc.publish(self.subject, payload, reply=self._reply(0 if self.seq == 1 else 1))
        if self.seq == 1:  # the first answer says whether and how fast
            await self._wait(lambda: self.acks > 0)
        while self.seq >= self.acked + self.msgs * self.outstanding:
            await self._wait(lambda: self.seq < self.acked + self.msgs * self.outstanding)

    async def commit(self) -> dict[str, Any]:
        self.seq += 1
        await self.nc.publish(self.subject, b"", reply=self._reply(3))
        await self._wait(lambda: self.final is not None)
        assert self.final is not None
        return self.final

    async def _wait(self, done: Any) -> None:
        while not done():
            if self.errors:
                raise AssertionError(self.errors)
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 5)


@pytest.mark.parametrize("oracle", [False, True], ids=["pynats", "go"])
async def test_five_thousand_messages_with_flow_control(tmp_path: Path, oracle: bool) -> None:
    srv = start_server(["-js", "-sd", str(tmp_path)], oracle=oracle)
    try:
        nc = await connect(srv.url)
        await nc.request(
            CREATE + "FI",
            json.dumps({"name": "FI", "subjects": ["fi.>"], "allow_batched": True}).encode(),
        )
        pub = FastPublisher(nc, "fi.x", flow=100)
        await pub.start()
        for i in range(5000):
            await pub.add(b"%05d" % i + b"." * 123)
        final = await pub.commit()
        assert final["stream"] == "FI"
        assert final["count"] == 5000 and final["seq"] == 5000
        assert final["batch"] == pub.prefix.split(".")[-1]
        assert not pub.errors
        assert pub.max_msgs == 100  # the only publisher: the initial flow at once
        assert pub.acks >= 5000 // 100
        info = json.loads((await nc.request("$JS.API.STREAM.INFO.FI", b"")).data)
        assert info["state"]["messages"] == 5000
        first = json.loads((await nc.request("$JS.API.STREAM.MSG.GET.FI", b'{"seq":1}')).data)
        last = json.loads((await nc.request("$JS.API.STREAM.MSG.GET.FI", b'{"seq":5000}')).data)
        assert "hdrs" not in first["message"] and "hdrs" not in last["message"]
        await nc.close()
    finally:
        srv.stop()


async def limits_session(oracle: bool, store: str) -> list[Any]:
    """1000 open batches on one stream, then one more (10211); another stream still takes
    one; a batch idle for 10 s is gone (10208)."""
    srv = start_server(["-js", "-sd", store], oracle=oracle)
    try:
        nc = await connect(srv.url)
        for name in ("L", "K"):
            cfg = {"name": name, "subjects": [f"{name.lower()}.>"], "allow_batched": True}
            await nc.request(CREATE + name, json.dumps(cfg).encode())
        got: list[tuple[str, Any]] = []

        async def on_inbox(msg: Any) -> None:
            got.append((msg.subject, json.loads(msg.data)))

        await nc.subscribe("in.>", cb=on_inbox)
        for i in range(1000):
            await nc.publish("l.a", b"x", reply=fi(f"n{i}", 1, 0))
        await nc.flush()
        await quiet(got, 0.2, at_least=1000)
        starts = len([1 for _, data in got if data.get("type") == "ack" and data["seq"] == 0])
        got.clear()
        answers: list[Any] = [starts]
        for step in (("l.a", fi("over", 1, 0)), ("k.a", fi("other", 1, 0))):
            await nc.publish(step[0], b"x", reply=step[1])
            await nc.flush()
            await quiet(got, at_least=1)
            answers.append(list(got))
            got.clear()
        await asyncio.sleep(10.5)
        await nc.publish("k.a", b"x", reply=fi("other", 2, 1))
        await nc.publish("l.a", b"x", reply=fi("n5", 1, 4))
        await nc.flush()
        await quiet(got, at_least=2)
        answers.append(sorted(got, key=lambda g: g[0]))  # two streams: either may answer first
        await nc.close()
    finally:
        srv.stop()
    return answers


async def test_limits_and_idle_batches_match_nats_server(tmp_path: Path) -> None:
    go, ours = await asyncio.gather(
        limits_session(True, f"{tmp_path}/go"), limits_session(False, f"{tmp_path}/ours")
    )
    assert go[0] == 1000
    assert go[1][0][1]["error"]["err_code"] == 10211
    assert ours == go


IMPORT_CONF = """
jetstream {{ store_dir: "{store}" }}
accounts {{
  A {{ jetstream: enabled, users [{{user: a, password: a}}], exports [{{service: "f.>"}}] }}
  B {{ users [{{user: b, password: b}}], imports [{{service: {{account: A, subject: "f.>"}}}}] }}
}}
"""


async def import_session(oracle: bool, store: Path) -> list[Any]:
    """A fast batch published in account B through a service import of A's stream subjects:
    the answers cross back to the batch's own reply subjects in B."""
    store.mkdir()
    conf = store / "server.conf"
    conf.write_text(IMPORT_CONF.format(store=store))
    srv = start_server(["-c", str(conf)], oracle=oracle)
    try:
        a = await connect(srv.url.replace("nats://", "nats://a:a@"))
        b = await connect(srv.url.replace("nats://", "nats://b:b@"))
        cfg = {"name": "F", "subjects": ["f.>"], "allow_batched": True}
        await a.request(CREATE + "F", json.dumps(cfg).encode())
        got: list[tuple[str, Any]] = []

        async def on_inbox(msg: Any) -> None:
            got.append((msg.subject, json.loads(msg.data)))

        await b.subscribe("in.>", cb=on_inbox)
        await b.flush()
        steps = [
            ("f.a", fi("fb", 1, 0), 1),
            ("f.a", fi("fb", 2, 1), 0),  # inside the flow window: no answer
            ("f.a", fi("fb", 3, 2), 1),  # the commit: the batch's PubAck
            ("f.b", fi("g1", 1, 0), 1),
            ("f.b", fi("g1", 3, 1), 1),  # a gap
            ("f.c", fi("h", 1, 3), 1),  # an invalid pattern
        ]
        answers: list[Any] = []
        for subject, reply, expected in steps:
            await b.publish(subject, b"x", reply=reply, headers={"X-Step": reply})
            await b.flush()
            await quiet(got, 0.1, at_least=expected)
            answers.append(list(got))
            got.clear()
        info = json.loads((await a.request("$JS.API.STREAM.INFO.F", b"")).data)
        answers.append(state_of(info))
        first = json.loads((await a.request("$JS.API.STREAM.MSG.GET.F", b'{"seq":1}')).data)
        answers.append(first["message"]["hdrs"])  # the stored headers: no Nats-Request-Info
        await a.close()
        await b.close()
    finally:
        srv.stop()
    return answers


async def test_fast_batch_through_a_service_import_matches_nats_server(tmp_path: Path) -> None:
    go = await import_session(True, tmp_path / "go")
    ours = await import_session(False, tmp_path / "ours")
    assert go[2][0][1]["count"] == 3  # the batch was one fast batch on Go too
    assert ours == go
