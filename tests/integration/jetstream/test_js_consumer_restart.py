"""Consumer state across restarts: a clean restart, and `kill -9` while a worker consumes
with double acks. The promise (ARCHITECTURE.md): an unacknowledged message is never lost,
and an ack the server confirmed is never undone, so that message is not delivered again.

PYNATS_JS_CONSUMER_CRASH_ITERATIONS (default 3) sets the number of kills;
PYNATS_JS_CRASH_SEED fixes the randomness.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal

import nats.errors
import pytest
from nats.js.api import AckPolicy, ConsumerConfig
from tests.conftest import connect
from tests.integration.jetstream.conftest import api
from tests.integration.jetstream.consumers import MS, add_consumer, consumer_info, inbox
from tests.support.servers import RunningServer, start_server

ITERATIONS = int(os.environ.get("PYNATS_JS_CONSUMER_CRASH_ITERATIONS", "3"))
SEED = int(os.environ.get("PYNATS_JS_CRASH_SEED", str(random.randrange(1 << 30))))
MESSAGES = 800 * max(ITERATIONS, 1)


async def test_clean_restart_keeps_consumer_state(tmp_path) -> None:
    args = ["-js", "-sd", str(tmp_path)]
    srv = start_server(args)
    try:
        nc = await connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="S")
        for i in range(10):
            await js.publish("S", b"%d" % i)
        await add_consumer(nc, "S", "C", durable_name="C", ack_policy="explicit", ack_wait=400 * MS)
        await add_consumer(nc, "S", "P", ack_policy="none", deliver_subject="push.here")
        box = await inbox(nc)
        await box.pull("S", "C", {"batch": 5})
        await box.wait_for(5)
        for msg in box.msgs[:3]:
            await nc.request(msg.reply, b"", timeout=2)
        before = await consumer_info(nc, "S", "C")
        await nc.close()
    finally:
        srv.stop()
    srv = start_server(args)
    try:
        nc = await connect(srv.url)
        after = await consumer_info(nc, "S", "C")
        for key in ("config", "delivered", "ack_floor", "num_ack_pending", "num_pending"):
            assert _strip(after[key]) == _strip(before[key]), key
        assert after["created"] == before["created"]
        assert "error" not in await consumer_info(nc, "S", "P")
        box = await inbox(nc)
        await box.pull("S", "C", {"batch": 7, "expires": 3_000 * MS})
        await box.wait_for(7, timeout=4)
        got = sorted(int(m.data) for m in box.data)
        assert got == [3, 4, 5, 6, 7, 8, 9], "the two pending come back, then the rest"
        redelivered = [m for m in box.data if int(m.data) in (3, 4)]
        assert all(m.reply.split(".")[4] == "2" for m in redelivered)
        await nc.close()
    finally:
        srv.stop()


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in ("last_active", "metadata")}
    return value


async def test_deleted_consumers_stay_deleted_after_restart(tmp_path) -> None:
    args = ["-js", "-sd", str(tmp_path)]
    srv = start_server(args)
    try:
        nc = await connect(srv.url)
        await nc.jetstream().add_stream(name="S")
        await add_consumer(nc, "S", "gone", durable_name="gone")
        await add_consumer(nc, "S", "kept", durable_name="kept")
        await api(nc, "$JS.API.CONSUMER.DELETE.S.gone")
        await nc.close()
    finally:
        srv.kill()  # the delete was answered: it must hold even without a clean stop
    srv = start_server(args)
    try:
        nc = await connect(srv.url)
        names = await api(nc, "$JS.API.CONSUMER.NAMES.S")
        assert names["consumers"] == ["kept"]
        await nc.close()
    finally:
        srv.stop()


async def consume_until_killed(
    srv: RunningServer,
    rng: random.Random,
    confirmed: set[int],
    seen: set[int],
    violations: list[str],
) -> None:
    loop = asyncio.get_running_loop()
    loop.call_later(rng.uniform(0.1, 0.6), srv.proc.send_signal, signal.SIGKILL)
    try:
        nc = await connect(srv.url)
    except Exception:
        return
    try:
        sub = await nc.jetstream().pull_subscribe_bind("C", stream="S")
        while True:
            try:
                msgs = await sub.fetch(50, timeout=0.5)
            except nats.errors.TimeoutError:
                if len(confirmed) == MESSAGES:
                    return
                continue
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq in confirmed:
                    violations.append(f"seq {seq} delivered again after its ack was confirmed")
                seen.add(seq)
            results = await asyncio.gather(
                *(m.ack_sync(timeout=1) for m in msgs), return_exceptions=True
            )
            for msg, result in zip(msgs, results, strict=True):
                if not isinstance(result, BaseException):
                    confirmed.add(msg.metadata.sequence.stream)
    except (nats.errors.Error, OSError, TimeoutError):
        return
    finally:
        try:
            await nc.close()
        except Exception:
            pass


@pytest.mark.parametrize("mode", ["default", "always", "lazy"])
async def test_kill_9_never_loses_a_message_nor_undoes_a_confirmed_ack(tmp_path, mode) -> None:
    args = ["-js", "-sd", str(tmp_path)]
    if mode != "default":
        sync = "always" if mode == "always" else '"2m"'
        conf = tmp_path / "js.conf"
        conf.write_text(f"jetstream {{ sync_interval: {sync} }}\n")
        args += ["-c", str(conf)]
    rng = random.Random(SEED)
    srv = start_server(args)
    try:
        nc = await connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="S")
        acks = await asyncio.gather(*(js.publish("S", b"%d" % i) for i in range(MESSAGES)))
        assert len({a.seq for a in acks}) == MESSAGES
        await js.add_consumer(
            "S",
            ConsumerConfig(durable_name="C", ack_policy=AckPolicy.EXPLICIT, ack_wait=0.5),
        )
        await nc.close()
    finally:
        srv.stop()
    confirmed: set[int] = set()
    seen: set[int] = set()
    violations: list[str] = []
    kills = 0
    for _ in range(ITERATIONS):
        srv = start_server(args)
        try:
            await consume_until_killed(srv, rng, confirmed, seen, violations)
            # done before the timer fired (everything confirmed): kill it now all the same
            while srv.proc.poll() is None:
                srv.proc.send_signal(signal.SIGKILL)
                await asyncio.sleep(0.05)
        finally:
            srv.kill()
        kills += srv.proc.returncode == -signal.SIGKILL
    assert kills == ITERATIONS
    # a last life without a kill: everything not acked yet must still come (an ack that
    # became durable but whose confirmation the kill swallowed is acked: it does not)
    srv = start_server(args)
    try:
        nc = await connect(srv.url)
        sub = await nc.jetstream().pull_subscribe_bind("C", stream="S")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while loop.time() < deadline:
            info = await consumer_info(nc, "S", "C")
            if info["ack_floor"]["stream_seq"] == MESSAGES:
                break
            try:
                msgs = await sub.fetch(100, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq in confirmed:
                    violations.append(f"seq {seq} delivered again after its ack was confirmed")
                seen.add(seq)
                await msg.ack_sync()
                confirmed.add(seq)
        info = await consumer_info(nc, "S", "C")
        await nc.close()
    finally:
        srv.stop()
    everything = set(range(1, MESSAGES + 1))
    assert not violations, f"{violations[:5]} ({len(violations)} in all, seed {SEED})"
    assert seen == everything, f"lost: {sorted(everything - seen)[:10]} (seed {SEED})"
    assert (info["ack_floor"]["stream_seq"], info["num_ack_pending"]) == (MESSAGES, 0)
    assert len(confirmed) > MESSAGES // 2, "the kills left too little to check"
