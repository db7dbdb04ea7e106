"""`persist_mode` (ADR-56): `async` file streams acknowledge before the disk has the message;
the rules and errors as nats-server answers them."""

from __future__ import annotations

from pathlib import Path

import nats
from tests.integration.jetstream.conftest import api
from tests.support.js_script import Step, differences

CREATE = "$JS.API.STREAM.CREATE."


def script() -> list[Step]:
    s: list[Step] = []
    for name, extra in [
        ("A", {"persist_mode": "async"}),
        ("B", {"persist_mode": "async", "storage": "memory"}),
        ("C", {"persist_mode": "async", "allow_atomic": True}),
        ("D", {"persist_mode": "bogus"}),
        ("E", {"persist_mode": "default"}),
        ("F", {"persist_mode": "async", "num_replicas": 3}),
        ("G", {"persist_mode": ""}),
    ]:
        s.append((CREATE + name, {"name": name, "subjects": [name.lower()], **extra}, None))
    s.append(("$JS.API.STREAM.UPDATE.A", {"name": "A", "subjects": ["a"]}, None))
    s.append(
        ("$JS.API.STREAM.UPDATE.E", {"name": "E", "subjects": ["e"], "persist_mode": "async"}, None)
    )
    s.append(("$JS.API.STREAM.UPDATE.E", {"name": "E", "subjects": ["e"]}, None))
    s.append(("a", b"x", None))
    s.append(("$JS.API.STREAM.INFO.A", None, None))
    return s


async def test_persist_mode_answers_like_nats_server(tmp_path: Path) -> None:
    mismatches = await differences(script(), str(tmp_path))
    assert not mismatches, mismatches


async def test_an_async_stream_takes_and_keeps_messages(nc: nats.NATS, sname: str) -> None:
    await api(
        nc, CREATE + sname, {"name": sname, "subjects": [f"{sname}.>"], "persist_mode": "async"}
    )
    js = nc.jetstream()
    acks = [await js.publish(f"{sname}.x", b"%d" % i) for i in range(50)]
    assert [a.seq for a in acks] == list(range(1, 51))
    info = await js.stream_info(sname)
    assert info.state.messages == 50 and info.config.persist_mode == "async"
