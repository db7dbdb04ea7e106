"""Talking to a cluster's system account from tests: gathering every server's answer to one
request (and noticing a server that answers twice), and waiting until every server counts
every other in `active_servers`."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import nats
from nats.aio.client import Client
from tests.support.cluster import Cluster, Member

# A cluster config with a system account (sys/sys) and an application account (a/a).
SYSTEM_ACCOUNT_CONFIG = """
accounts {
  SYS: { users: [{user: sys, password: sys}] }
  A: { users: [{user: a, password: a}] }
}
system_account: SYS
"""

# What an extra answer would take to arrive after the expected ones.
DUPLICATE_GRACE_S = 0.25


def sys_url(member: Member) -> str:
    return f"nats://sys:sys@127.0.0.1:{member.client_port}"


def app_url(member: Member) -> str:
    return f"nats://a:a@127.0.0.1:{member.client_port}"


async def connect(url: str, **kwargs: Any) -> Client:
    opts: dict[str, Any] = {
        "connect_timeout": 2,
        "allow_reconnect": False,
        "max_reconnect_attempts": 1,
    }
    opts.update(kwargs)
    return await nats.connect(url, **opts)


async def gather(
    nc: Client,
    subject: str,
    body: bytes = b"",
    *,
    expect: int,
    timeout: float = 3.0,
) -> list[dict[str, Any]]:
    """Every JSON answer to one request: until `expect` arrived (and a moment more, to catch
    a server answering twice) or the timeout passed."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(subject, body, reply=inbox)
    answers: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if len(answers) >= expect:
            remaining = min(remaining, DUPLICATE_GRACE_S)
        if remaining <= 0:
            break
        try:
            msg = await sub.next_msg(timeout=remaining)
        except nats.errors.TimeoutError:
            break
        answers.append(json.loads(msg.data))
    await sub.unsubscribe()
    return answers


async def wait_all_active(cluster: Cluster, timeout: float = 20.0) -> None:
    """Until every running member answers a ping, each saying it knows all of them."""
    live = [m for m in cluster if m.is_running]
    names = {m.name for m in live}
    deadline = time.monotonic() + timeout
    ncs = [await connect(sys_url(m)) for m in live]
    try:
        while True:
            views = [await gather(nc, "$SYS.REQ.SERVER.PING", expect=len(live)) for nc in ncs]
            counts = [
                sorted((a["server"]["name"], a["statsz"]["active_servers"]) for a in view)
                for view in views
            ]
            wanted = sorted((name, len(live)) for name in names)
            if all(c == wanted for c in counts):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"servers do not all count each other: {counts}")
            await asyncio.sleep(0.2)
    finally:
        for nc in ncs:
            await nc.close()
