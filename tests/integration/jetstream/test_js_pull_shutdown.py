"""A server that shuts down tells its waiting pull requests: `409 Server Shutdown` with what
each request still wanted (`Nats-Pending-Messages`, `Nats-Pending-Bytes`), once per reply
subject, before it closes the connections. Checked against the Go nats-server too."""

from __future__ import annotations

import signal
from typing import Any

from tests.conftest import connect
from tests.integration.jetstream.consumers import (
    NS,
    add_consumer,
    consumer_info,
    inbox,
    publish,
    status_of,
)
from tests.support.servers import start_server
from tests.support.waiting import wait_until


def pending(msg: Any) -> tuple[str, str]:
    return msg.headers.get("Nats-Pending-Messages", ""), msg.headers.get("Nats-Pending-Bytes", "")


async def shutdown_statuses(oracle: bool, store_dir: str) -> dict[str, list[tuple[str, str, str]]]:
    """Three waiting requests on two inboxes, then SIGTERM: what each inbox received."""
    srv = start_server(["-js", "-sd", store_dir], oracle=oracle)
    try:
        nc = await connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s"])
        await publish(js, "s", 1)
        await add_consumer(nc, "S", "C", ack_policy="explicit")
        bytes_box = await inbox(nc)
        shared_box = await inbox(nc)
        # gets the one message, then waits for 4 more within what is left of its 1000 bytes
        await bytes_box.pull("S", "C", {"batch": 5, "expires": 30 * NS, "max_bytes": 1000})
        await bytes_box.wait_for(1)
        # two requests answered to one reply subject: one status for both
        await shared_box.pull("S", "C", {"batch": 3, "expires": 30 * NS})
        await shared_box.pull("S", "C", {"batch": 2, "expires": 30 * NS})

        # nats-server registers pull requests on the consumer's own goroutine: wait for them
        async def waiting() -> bool:
            return (await consumer_info(nc, "S", "C"))["num_waiting"] == 3

        await wait_until(waiting, timeout=5, what="3 waiting requests")
        srv.signal(signal.SIGTERM)
        await bytes_box.wait_for(2)
        await shared_box.wait_for(1)
        await nc.close()
        assert srv.proc.wait(10) == 0
        return {
            name: [(status_of(m), *pending(m)) for m in box.msgs if status_of(m)]
            for name, box in (("bytes", bytes_box), ("shared", shared_box))
        }
    finally:
        srv.kill()


async def test_waiting_pull_requests_get_409_server_shutdown(tmp_path) -> None:
    got = await shutdown_statuses(False, str(tmp_path))
    [(text, msgs, left)] = got["bytes"]
    assert (text, msgs) == ("409 Server Shutdown", "4")
    assert 0 < int(left) < 1000
    assert got["shared"] == [("409 Server Shutdown", "2", "0")]


async def test_shutdown_statuses_are_nats_servers(tmp_path) -> None:
    ours = await shutdown_statuses(False, str(tmp_path / "pynats"))
    theirs = await shutdown_statuses(True, str(tmp_path / "go"))
    assert ours == theirs
