"""INFO's `api_lvl` against Go's: sent with or without JetStream, in the first INFO and in the
async one after the first PONG (protocol 1), in nats-server's place among the fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.support.raw import RawClient
from tests.support.servers import start_server

from pynats.server import const

NOT_OURS = {"git_commit"}  # fields pynats does not send


def infos(oracle: bool, args: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    srv = start_server(args, oracle=oracle)
    try:
        c = RawClient(srv.port)
        c.send(b'CONNECT {"verbose":false,"protocol":1}\r\nPING\r\n')
        assert c.read_line() == b"PONG"
        line = c.read_line()
        assert line.startswith(b"INFO "), line
        c.sock.close()
        return c.info, json.loads(line[5:])
    finally:
        srv.stop()


@pytest.mark.parametrize("jetstream", [False, True], ids=["plain", "jetstream"])
def test_api_lvl_is_in_every_client_info(jetstream: bool, tmp_path: Path) -> None:
    def args(who: str) -> list[str]:
        return ["-js", "-sd", str(tmp_path / who)] if jetstream else []

    go = infos(True, args("go"))
    ours = infos(False, args("ours"))
    for go_info, our_info in zip(go, ours, strict=True):
        assert [k for k in go_info if k not in NOT_OURS] == list(our_info)
        # nats-server 2.15.1 says 5; pynats the level of the version it announces (2.14)
        assert go_info["api_lvl"] == 5
        assert our_info["api_lvl"] == const.JS_API_LEVEL
