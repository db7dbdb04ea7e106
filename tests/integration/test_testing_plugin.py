"""pynats.testing: the in-process server and the pytest fixtures users enable in their projects."""

from __future__ import annotations

import textwrap

import nats
import pytest

from pynats.testing import InProcessServer

pytest_plugins = ["pytester"]


async def test_nats_client_fixture_talks_to_nats_server_fixture(nats_server, nats_client) -> None:
    sub = await nats_client.subscribe("fixture.test")
    await nats_client.publish("fixture.test", b"ok")
    assert (await sub.next_msg(2)).data == b"ok"
    assert nats_client.connected_url.port == nats_server.port


async def test_factory_makes_servers_with_options(nats_server_factory) -> None:
    secured = nats_server_factory(username="u", password="p")
    with pytest.raises(nats.errors.Error):
        await nats.connect(
            secured.url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=1
        )
    nc = await nats.connect(f"nats://u:p@127.0.0.1:{secured.port}", connect_timeout=2)
    await nc.close()


async def test_in_process_server_on_the_running_loop() -> None:
    async with InProcessServer() as server:
        nc = await nats.connect(server.url, connect_timeout=2)
        reply_sub = await nc.subscribe("echo")
        await nc.publish("echo", b"loop")
        assert (await reply_sub.next_msg(2)).data == b"loop"
        await nc.close()


def test_in_process_server_in_a_thread_for_sync_code() -> None:
    import socket

    with (
        InProcessServer() as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=2) as s,
    ):
        assert s.recv(4096).startswith(b"INFO ")


def test_plugin_works_in_a_users_project(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["pynats.testing.pytest_plugin"]')
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    pytester.makepyfile(
        textwrap.dedent(
            """
            async def test_roundtrip(nats_client):
                sub = await nats_client.subscribe("user.project")
                await nats_client.publish("user.project", b"hello")
                assert (await sub.next_msg(2)).data == b"hello"

            def test_sync_user(nats_server):
                assert nats_server.url.startswith("nats://127.0.0.1:")
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
