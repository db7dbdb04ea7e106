"""The same scripted JetStream session against the Go nats-server and against pynats: every
answer must be the same, ignoring only ids, timestamps, server names and versions.

The script covers stream create/update/info/names/list/delete, publishing with every
publish header, limits and discard policies, purge variants, message get and delete, direct
get statuses, and the error paths of each. Known, intended differences are listed in
`IGNORED_KEYS` (API level: we implement level 1).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.conftest import connect
from tests.support.js_script import Step, differences
from tests.support.servers import start_server

NS = 1_000_000_000


def script() -> list[Step]:
    s: list[Step] = []

    def step(subject: str, body: Any = None, headers: dict[str, str] | None = None) -> None:
        s.append((subject, body, headers))

    step("$JS.API.INFO")
    step("$JS.API.INFO", None, {"Nats-Required-Api-Level": "99"})
    step("$JS.API.INFO", None, {"Nats-Required-Api-Level": "one"})
    step("$JS.API.STREAM.CREATE.ORDERS", {"name": "ORDERS", "subjects": ["orders.*"]})
    step("$JS.API.STREAM.CREATE.ORDERS", {"name": "ORDERS", "subjects": ["orders.*"]})
    step("$JS.API.STREAM.CREATE.ORDERS", {"name": "ORDERS", "subjects": ["orders.>"]})
    step("$JS.API.STREAM.CREATE.X", {"name": "X", "subjects": ["orders.new"]})
    step("$JS.API.STREAM.CREATE.X", {"name": "Y"})
    step("$JS.API.STREAM.CREATE.X", {"name": "X", "bogus": True})
    step("$JS.API.STREAM.CREATE.X", {"name": "X", "max_msgs": "ten"})
    step("$JS.API.STREAM.CREATE.X", {"name": "X", "storage": "disk"})
    step("$JS.API.STREAM.CREATE.X", {"name": "X", "max_age": 5})
    step("$JS.API.STREAM.CREATE.X", {"name": "X", "num_replicas": 3})
    step("$JS.API.STREAM.CREATE.X", {"name": "X", "subjects": ["a", "a.>", "a.b"]})
    step("$JS.API.STREAM.CREATE.X", {"name": "X", "discard_new_per_subject": True})
    step("$JS.API.STREAM.CREATE.X", {"name": "X", "sealed": True})
    step("$JS.API.STREAM.CREATE.a/b", {"name": "a/b"})
    step("$JS.API.STREAM.CREATE.X", b"not json")
    step("$JS.API.STREAM.CREATE.X", b'{"name":"X",}')
    step("$JS.API.STREAM.CREATE.X", b'{"name":"X"')
    step("$JS.API.STREAM.CREATE.X", b'"X"')
    # publishing
    for i in range(4):
        step(f"orders.{'new' if i % 2 == 0 else 'paid'}", b"order-%d" % i)
    step("orders.new", b"dup", {"Nats-Msg-Id": "m-1"})
    step("orders.new", b"dup", {"Nats-Msg-Id": "m-1"})
    step("orders.new", b"x", {"Nats-Expected-Stream": "OTHER"})
    step("orders.new", b"x", {"Nats-Expected-Stream": "ORDERS"})
    step("orders.new", b"x", {"Nats-Expected-Last-Sequence": "3"})
    step("orders.new", b"x", {"Nats-Expected-Last-Sequence": "7"})
    step("orders.paid", b"x", {"Nats-Expected-Last-Subject-Sequence": "0"})
    step("orders.paid", b"x", {"Nats-Expected-Last-Subject-Sequence": "4"})
    step("orders.new", b"x", {"Nats-Expected-Last-Msg-Id": "nope"})
    step("orders.new", b"x", {"Nats-Msg-Id": "m-2"})
    step("orders.new", b"x", {"Nats-Expected-Last-Msg-Id": "m-2"})
    step("orders.new", b"x", {"Nats-Rollup": "sub"})
    step("orders.new", b"x", {"Nats-TTL": "5s"})
    # info, get, delete
    step("$JS.API.STREAM.INFO.ORDERS")
    step("$JS.API.STREAM.INFO.ORDERS", {"deleted_details": True, "subjects_filter": ">"})
    step("$JS.API.STREAM.INFO.ORDERS", {"subjects_filter": "orders.*", "offset": 1})
    step("$JS.API.STREAM.INFO.NOPE")
    step("$JS.API.STREAM.MSG.GET.ORDERS", {"seq": 5})
    step("$JS.API.STREAM.MSG.GET.ORDERS", {"last_by_subj": "orders.paid"})
    step("$JS.API.STREAM.MSG.GET.ORDERS", {"next_by_subj": "orders.paid", "seq": 3})
    step("$JS.API.STREAM.MSG.GET.ORDERS", {"seq": 99})
    step("$JS.API.STREAM.MSG.GET.ORDERS", {"seq": 1, "last_by_subj": "orders.new"})
    step("$JS.API.STREAM.MSG.GET.ORDERS", {})
    step("$JS.API.STREAM.MSG.DELETE.ORDERS", {"seq": 2})
    step("$JS.API.STREAM.MSG.DELETE.ORDERS", {"seq": 2})
    step("$JS.API.STREAM.MSG.DELETE.ORDERS", {"seq": 3, "no_erase": True})
    step("$JS.API.STREAM.MSG.DELETE.ORDERS", {})
    step("$JS.API.STREAM.INFO.ORDERS", {"deleted_details": True})
    # update
    step(
        "$JS.API.STREAM.UPDATE.ORDERS", {"name": "ORDERS", "subjects": ["orders.*"], "max_msgs": 5}
    )
    step(
        "$JS.API.STREAM.UPDATE.ORDERS",
        {"name": "ORDERS", "subjects": ["orders.*"], "storage": "memory"},
    )
    step(
        "$JS.API.STREAM.UPDATE.ORDERS",
        {"name": "ORDERS", "subjects": ["orders.*"], "retention": "workqueue"},
    )
    step(
        "$JS.API.STREAM.UPDATE.ORDERS",
        {
            "name": "ORDERS",
            "subjects": ["orders.*"],
            "max_msgs": 5,
            "allow_rollup_hdrs": True,
            "deny_delete": True,
        },
    )
    step(
        "$JS.API.STREAM.UPDATE.ORDERS", {"name": "ORDERS", "subjects": ["orders.*"], "max_msgs": 5}
    )
    step("$JS.API.STREAM.UPDATE.NOPE", {"name": "NOPE"})
    step("orders.new", b"roll", {"Nats-Rollup": "sub"})
    step("orders.new", b"x", {"Nats-Rollup": "everything"})
    step("$JS.API.STREAM.MSG.DELETE.ORDERS", {"seq": 4})
    step("$JS.API.STREAM.INFO.ORDERS", {"subjects_filter": ">"})
    # limits and discard new
    step(
        "$JS.API.STREAM.CREATE.LIMITED",
        {
            "name": "LIMITED",
            "subjects": ["lim.*"],
            "max_msgs": 3,
            "discard": "new",
            "max_msg_size": 40,
            "max_msgs_per_subject": 2,
            "storage": "memory",
        },
    )
    for i in range(4):
        step(f"lim.{i % 2}", b"v%d" % i)
    step("lim.big", b"y" * 41)
    step(
        "$JS.API.STREAM.CREATE.PER",
        {
            "name": "PER",
            "subjects": ["per.*"],
            "max_msgs_per_subject": 1,
            "discard": "new",
            "discard_new_per_subject": True,
        },
    )
    step("per.a", b"1")
    step("per.a", b"2")
    step("per.b", b"3")
    step("$JS.API.STREAM.CREATE.OLD", {"name": "OLD", "subjects": ["old"], "max_msgs": 2})
    for i in range(4):
        step("old", b"o%d" % i)
    step("$JS.API.STREAM.INFO.OLD", {"deleted_details": True})
    # purge
    step("$JS.API.STREAM.CREATE.P", {"name": "P", "subjects": ["p.*"]})
    for i in range(8):
        step(f"p.{i % 3}", b"p%d" % i)
    step("$JS.API.STREAM.PURGE.P", {"filter": "p.1"})
    step("$JS.API.STREAM.PURGE.P", {"seq": 4, "keep": 1})
    step("$JS.API.STREAM.PURGE.P", {"filter": "p.0", "keep": 1})
    step("$JS.API.STREAM.PURGE.P", {"seq": 5})
    step("$JS.API.STREAM.INFO.P", {"deleted_details": True, "subjects_filter": ">"})
    step("$JS.API.STREAM.PURGE.P", {"keep": 1})
    step("$JS.API.STREAM.PURGE.P")
    step("$JS.API.STREAM.INFO.P")
    step("p.0", b"after purge")
    # direct get
    step("$JS.API.STREAM.CREATE.D", {"name": "D", "subjects": ["d.*"], "allow_direct": True})
    for i in range(5):
        step(f"d.{i % 2}", b"d%d" % i, {"H": "v"} if i == 2 else None)
    step("$JS.API.DIRECT.GET.D", {"seq": 3})
    step("$JS.API.DIRECT.GET.D.d.1")
    step("$JS.API.DIRECT.GET.D", {"last_by_subj": "d.*"})
    step("$JS.API.DIRECT.GET.D", {"next_by_subj": "d.1", "seq": 3})
    step("$JS.API.DIRECT.GET.D", {"seq": 42})
    step("$JS.API.DIRECT.GET.D", b"")
    step("$JS.API.DIRECT.GET.D", b"{not json")
    step("$JS.API.DIRECT.GET.D", {"seq": 1, "last_by_subj": "d.0"})
    step("$JS.API.DIRECT.GET.D.d.0", {"seq": 1})
    step("$JS.API.DIRECT.GET.NOPE", {"seq": 1})
    # names, list, delete
    step("$JS.API.STREAM.NAMES")
    step("$JS.API.STREAM.NAMES", {"subject": "p.*"})
    step("$JS.API.STREAM.NAMES", {"offset": 2})
    step("$JS.API.STREAM.LIST", {"subject": "lim.x"})
    step("$JS.API.STREAM.LIST", {"subject": "nothing.matches"})
    step("$JS.API.CONSUMER.NAMES.D")
    step("$JS.API.CONSUMER.LIST.D")
    step("$JS.API.STREAM.DELETE.P", b"junk")
    step("$JS.API.STREAM.DELETE.P")
    step("$JS.API.STREAM.DELETE.P")
    step("p.0", b"nobody home")
    step("$JS.API.INFO")
    return s


async def test_scripted_session_answers_like_nats_server(tmp_path) -> None:
    mismatches = await differences(script(), str(tmp_path))
    assert not mismatches, mismatches


@pytest.mark.parametrize("storage", ["file", "memory"])
async def test_stream_bytes_accounting_matches(tmp_path, storage) -> None:
    """`bytes` in stream state uses nats-server's per-message formulas for both stores."""
    results = []
    for oracle in (True, False):
        srv = start_server(["-js", "-sd", str(tmp_path / str(oracle))], oracle=oracle)
        try:
            nc = await connect(srv.url)
            await nc.request(
                "$JS.API.STREAM.CREATE.B",
                json.dumps({"name": "B", "subjects": ["b.>"], "storage": storage}).encode(),
                timeout=2,
            )
            await nc.request("b.one", b"x" * 100, timeout=2)
            await nc.request("b.two.longer", b"", timeout=2, headers={"K": "v" * 20})
            info = json.loads((await nc.request("$JS.API.STREAM.INFO.B", b"", timeout=2)).data)
            results.append(info["state"]["bytes"])
            await nc.close()
        finally:
            srv.stop()
    assert results[0] == results[1]
