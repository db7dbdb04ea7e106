"""Subject mappings (`mappings {}`), pynats next to the Go server with the same config files:
what `-t` says of every sample in tests/data/mappings, and what a mapping does to messages -
moved subjects, transform functions, weighted splits, per-account mappings - and that a
mapped subject's old subscribers get nothing."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import nats
import pytest
from tests.support.servers import oracle_server_path, pynats_server_command, start_server

DATA = Path(__file__).parent.parent / "data" / "mappings"
SAMPLES = sorted(DATA.glob("*.conf"))


def check(cmd: list[str], path: Path) -> tuple[int, str]:
    result = subprocess.run(
        [*cmd, "-t", "-c", path.name], capture_output=True, text=True, cwd=path.parent, timeout=20
    )
    return result.returncode, result.stderr.strip()


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_the_mappings_block_is_judged_as_nats_server_judges_it(path: Path) -> None:
    go = check([oracle_server_path()], path)
    ours = check(pynats_server_command(), path)
    assert ours == go
    assert (go[0] == 0) == path.stem.startswith("ok_")


CONFIG = """
mappings {
  "orders.*.*": "processed.{{wildcard(2)}}.{{wildcard(1)}}"
  "moved": "elsewhere"
  "shard.*": "shard.{{partition(4,1)}}.{{wildcard(1)}}"
  "split": [ { destination: "split.a", weight: 50% }, { destination: "split.b", weight: 50% } ]
  "some": [ { destination: "some.mapped", weight: 30% } ]
}
authorization { users [ { user: g, password: g } ] }
accounts {
  A { users [ { user: a, password: a } ], mappings { "in.a": "out.a" } }
}
"""


@pytest.mark.parametrize("oracle", [True, False], ids=["go", "pynats"])
async def test_published_subjects_are_mapped(tmp_path: Path, oracle: bool) -> None:
    conf = tmp_path / "server.conf"
    conf.write_text(CONFIG)
    srv = start_server(["-c", str(conf)], oracle=oracle)
    try:
        nc = await nats.connect(
            srv.url, user="g", password="g", allow_reconnect=False, max_reconnect_attempts=1
        )
        in_a = await nats.connect(
            srv.url, user="a", password="a", allow_reconnect=False, max_reconnect_attempts=1
        )
        got: dict[str, list[bytes]] = {}

        async def record(msg: nats.aio.msg.Msg) -> None:
            got.setdefault(msg.subject, []).append(msg.data)

        for subject in (
            "processed.>",
            "moved",
            "elsewhere",
            "shard.>",
            "split.>",
            "some",
            "some.mapped",
        ):
            await nc.subscribe(subject, cb=record)
        for subject in ("out.a", "in.a"):
            await in_a.subscribe(subject, cb=record)
        await nc.flush()
        await in_a.flush()
        await nc.publish("orders.eu.42", b"order")
        await nc.publish("moved", b"m")
        for key in ("alpha", "beta", "gamma"):
            await nc.publish(f"shard.{key}", key.encode())
        for _ in range(400):
            await nc.publish("split", b"s")
            await nc.publish("some", b"x")
        await in_a.publish("in.a", b"account")
        await in_a.flush()
        await nc.flush()
        await asyncio.sleep(0)  # callbacks run after the flush's PONG
        for _ in range(100):
            if sum(len(v) for v in got.values()) >= 806:
                break
            await asyncio.sleep(0.02)
        assert got["processed.42.eu"] == [b"order"]
        assert got["elsewhere"] == [b"m"] and "moved" not in got
        shards = {s: v for s, v in got.items() if s.startswith("shard.")}
        assert len(shards) == 3 and all(s.split(".")[1] in "0123" for s in shards)
        assert 120 < len(got["split.a"]) < 280 and len(got["split.a"]) + len(got["split.b"]) == 400
        assert (
            60 < len(got["some.mapped"]) < 200 and len(got["some.mapped"]) + len(got["some"]) == 400
        )
        assert got.get("out.a") == [b"account"] and "in.a" not in got
        await nc.close()
        await in_a.close()
    finally:
        srv.stop()


PERMISSIONS_CONF = """
mappings { "a.*": "b.$1" }
authorization { users [
  {user: x, password: x, permissions: {publish: {allow: ["a.*"]}}}
  {user: y, password: y, permissions: {publish: {allow: ["b.*"]}}}
  {user: z, password: z}
]}
"""


@pytest.mark.parametrize("oracle", [False, True], ids=["pynats", "go"])
async def test_publish_permissions_apply_to_the_mapped_subject(
    tmp_path: Path, oracle: bool
) -> None:
    """A mapping decides where a message goes, so the publish permissions judge that
    subject: allowed `a.*` alone does not let a message into `b.1`; allowed `b.*` does."""
    conf = tmp_path / "perms.conf"
    conf.write_text(PERMISSIONS_CONF)
    srv = start_server(["-c", str(conf)], oracle=oracle)
    try:
        url = f"127.0.0.1:{srv.port}"
        watcher = await nats.connect(f"nats://z:z@{url}", allow_reconnect=False)
        seen = await watcher.subscribe(">")
        await watcher.flush()
        outcomes = {}
        for user in ("x", "y"):
            errors: list[str] = []

            async def on_error(e: Exception, errors: list[str] = errors) -> None:
                errors.append(str(e))

            nc = await nats.connect(
                f"nats://{user}:{user}@{url}", allow_reconnect=False, error_cb=on_error
            )
            await nc.publish("a.1", b"")
            await nc.publish("b.2", b"")  # where a.1 would go: x may not send there either
            await nc.flush()
            await watcher.flush()
            got = []
            while True:
                try:
                    got.append((await seen.next_msg(timeout=0.2)).subject)
                except nats.errors.TimeoutError:
                    break
            outcomes[user] = (got, [e.lower() for e in errors])
            await nc.close()
        await watcher.close()
    finally:
        srv.stop()
    assert outcomes["x"] == (
        [],
        [
            'nats: permissions violation for publish to "b.1"',
            'nats: permissions violation for publish to "b.2"',
        ],
    )
    assert outcomes["y"] == (["b.1", "b.2"], [])
