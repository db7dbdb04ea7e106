"""Restarting the server: file streams, their messages, purges and deletes, the dedupe
window and the last message id all come back; memory streams do not; the log says what
was restored, as nats-server does."""

from __future__ import annotations

import json

import nats.errors
import nats.js.errors
import pytest
from tests.conftest import connect
from tests.support.servers import RunningServer, start_server
from tests.support.waiting import wait_until


class Restartable:
    def __init__(self, tmp_path) -> None:
        self.args = ["-js", "-sd", str(tmp_path)]
        self.srv: RunningServer | None = None

    async def start(self):
        self.srv = start_server(self.args)
        nc = await connect(self.srv.url)
        return nc, nc.jetstream()

    async def restart(self, nc):
        await nc.close()
        assert self.srv is not None
        self.srv.stop()
        return await self.start()

    def stop(self) -> None:
        if self.srv is not None:
            self.srv.stop()


@pytest.fixture
def restartable(tmp_path):
    r = Restartable(tmp_path)
    yield r
    r.stop()


async def test_file_streams_and_messages_survive_a_restart(restartable) -> None:
    nc, js = await restartable.start()
    await js.add_stream(name="F", subjects=["f.*"], max_msgs_per_subject=10, description="kept")
    await js.add_stream(name="M", storage="memory")
    for i in range(20):
        await js.publish(f"f.{i % 4}", b"payload-%d" % i, headers={"Idx": str(i)})
    await js.publish("M", b"volatile")
    await js.delete_msg("F", 3)
    await js.purge_stream("F", subject="f.0")
    before = await js.stream_info("F", subjects_filter=">")
    nc, js = await restartable.restart(nc)
    log = restartable.srv.log_text()
    assert "Starting restore for stream '$G > F'" in log
    assert "Restored 14 messages for stream '$G > F'" in log
    after = await js.stream_info("F", subjects_filter=">")
    assert after.config == before.config and after.config.description == "kept"
    assert after.state == before.state
    assert after.created == before.created
    msg = await js.get_msg("F", seq=20)
    assert (msg.data, msg.headers["Idx"]) == (b"payload-19", "19")
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.stream_info("M")
    assert (await js.publish("f.1", b"more")).seq == 21
    await nc.close()


async def test_deleted_streams_stay_deleted(restartable) -> None:
    nc, js = await restartable.start()
    await js.add_stream(name="GONE")
    await js.publish("GONE", b"x")
    await js.delete_stream("GONE")
    nc, js = await restartable.restart(nc)
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.stream_info("GONE")
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request("GONE", b"x", timeout=1)
    await nc.close()


async def test_dedupe_window_and_last_msg_id_survive_a_restart(restartable) -> None:
    nc, js = await restartable.start()
    await js.add_stream(name="D")
    await js.publish("D", b"1", headers={"Nats-Msg-Id": "one"})
    await js.publish("D", b"2", headers={"Nats-Msg-Id": "two"})
    nc, js = await restartable.restart(nc)
    dup = await js.publish("D", b"1 again", headers={"Nats-Msg-Id": "one"})
    assert (dup.seq, dup.duplicate) == (1, True)
    ok = await nc.request("D", b"3", timeout=2, headers={"Nats-Expected-Last-Msg-Id": "two"})
    assert json.loads(ok.data)["seq"] == 3
    await nc.close()


async def test_dedupe_window_survives_a_crash_after_a_clean_restart(restartable) -> None:
    """A clean shutdown saves the window; after the next start, new ids and a kill -9 must
    still give the right answers (the saved file may not be reused once stale)."""
    nc, js = await restartable.start()
    await js.add_stream(name="D")
    await js.publish("D", b"1", headers={"Nats-Msg-Id": "one"})
    nc, js = await restartable.restart(nc)
    await js.publish("D", b"2", headers={"Nats-Msg-Id": "two"})
    await nc.close()
    assert restartable.srv is not None
    restartable.srv.kill()
    nc, js = await restartable.start()
    for msg_id, seq in (("one", 1), ("two", 2)):
        dup = await js.publish("D", b"again", headers={"Nats-Msg-Id": msg_id})
        assert (dup.seq, dup.duplicate) == (seq, True)
    await nc.close()


async def test_max_age_keeps_expiring_after_a_restart(restartable) -> None:
    nc, js = await restartable.start()
    await js.add_stream(name="A", max_age=1.0)
    await js.publish("A", b"old")
    nc, js = await restartable.restart(nc)

    async def expired() -> bool:
        return (await js.stream_info("A")).state.messages == 0

    await wait_until(expired, timeout=5)
    await nc.close()


async def test_updated_config_is_what_comes_back(restartable) -> None:
    nc, js = await restartable.start()
    await js.add_stream(name="U", subjects=["u.a"])
    await js.update_stream(name="U", subjects=["u.a", "u.b"], max_msgs=7)
    nc, js = await restartable.restart(nc)
    info = await js.stream_info("U")
    assert info.config.subjects == ["u.a", "u.b"] and info.config.max_msgs == 7
    assert (await js.publish("u.b", b"x")).seq == 1
    await nc.close()
