"""Reading and removing stored messages: STREAM.MSG.GET, DIRECT.GET (all forms),
STREAM.MSG.DELETE and STREAM.PURGE (and their combinations)."""

from __future__ import annotations

import base64
import json

import nats.errors
import nats.js.errors
import pytest
from tests.integration.jetstream.conftest import api, error_of


async def filled(js, sname: str, n: int = 6, **cfg) -> None:
    """A stream `sname` on `sname.*` with messages 1..n on subjects .0 .1 .2 .0 .1 .2 ..."""
    await js.add_stream(name=sname, subjects=[f"{sname}.*"], **cfg)
    for i in range(n):
        await js.publish(f"{sname}.{i % 3}", b"v%d" % i, headers={"H": str(i)} if i == 1 else None)


async def test_msg_get_by_sequence_last_and_next_subject(nc, js, sname) -> None:
    await filled(js, sname)
    by_seq = await api(nc, f"$JS.API.STREAM.MSG.GET.{sname}", {"seq": 2})
    msg = by_seq["message"]
    assert (msg["subject"], msg["seq"]) == (f"{sname}.1", 2)
    assert base64.b64decode(msg["data"]) == b"v1"
    assert base64.b64decode(msg["hdrs"]) == b"NATS/1.0\r\nH: 1\r\n\r\n"
    assert msg["time"].endswith("Z")
    last = await api(nc, f"$JS.API.STREAM.MSG.GET.{sname}", {"last_by_subj": f"{sname}.1"})
    assert last["message"]["seq"] == 5 and "hdrs" not in last["message"]
    wild = await api(nc, f"$JS.API.STREAM.MSG.GET.{sname}", {"last_by_subj": f"{sname}.*"})
    assert wild["message"]["seq"] == 6
    nxt = await api(nc, f"$JS.API.STREAM.MSG.GET.{sname}", {"next_by_subj": f"{sname}.0", "seq": 2})
    assert nxt["message"]["seq"] == 4
    no_hdr = await api(nc, f"$JS.API.STREAM.MSG.GET.{sname}", {"seq": 2, "no_hdr": True})
    assert "hdrs" not in no_hdr["message"]
    since = await api(
        nc,
        f"$JS.API.STREAM.MSG.GET.{sname}",
        {"start_time": "2000-01-01T00:00:00Z", "next_by_subj": f"{sname}.2"},
    )
    assert since["message"]["seq"] == 3


async def test_nats_py_get_msg_forms(js, sname) -> None:
    await filled(js, sname)
    assert (await js.get_msg(sname, seq=3)).data == b"v2"
    assert (await js.get_msg(sname, subject=f"{sname}.0")).seq == 4
    assert (await js.get_last_msg(sname, f"{sname}.2")).seq == 6
    nxt = await js.get_msg(sname, seq=2, subject=f"{sname}.2", next=True)
    assert nxt.seq == 3
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.get_msg(sname, seq=99)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        {},
        {"seq": 1, "last_by_subj": "x"},
        {"last_by_subj": "x", "next_by_subj": "y"},
        {"seq": 1, "batch": 2},
        {"seq": 1, "max_bytes": 10},
        {"multi_last": ["x"]},
    ],
)
async def test_msg_get_bad_requests(nc, js, sname, body) -> None:
    await filled(js, sname, 1)
    r = await api(nc, f"$JS.API.STREAM.MSG.GET.{sname}", body)
    assert error_of(r) == (400, 10003, "bad request")


async def test_msg_get_not_found_and_unknown_stream(nc, js, sname) -> None:
    await filled(js, sname, 1)
    r = await api(nc, f"$JS.API.STREAM.MSG.GET.{sname}", {"seq": 9})
    assert error_of(r) == (404, 10037, "no message found")
    r = await api(nc, f"$JS.API.STREAM.MSG.GET.{sname}X", {"seq": 1})
    assert error_of(r) == (404, 10059, "stream not found")


async def request_all(nc, subject: str, body: bytes, *, until_status: bool) -> list:
    """Send a direct get; collect replies (until a terminal status when streaming)."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(subject, body, reply=inbox)
    out = []
    while True:
        msg = await sub.next_msg(timeout=3)
        out.append(msg)
        status = (msg.headers or {}).get("Status")
        if not until_status or status in ("204", "404", "408", "413"):
            break
    await sub.unsubscribe()
    return out


async def test_direct_get_single_message_forms(nc, js, sname) -> None:
    await filled(js, sname, allow_direct=True)
    (by_seq,) = await request_all(
        nc, f"$JS.API.DIRECT.GET.{sname}", b'{"seq":2}', until_status=False
    )
    assert by_seq.data == b"v1"
    assert by_seq.headers == {
        "H": "1",
        "Nats-Stream": sname,
        "Nats-Subject": f"{sname}.1",
        "Nats-Sequence": "2",
        "Nats-Time-Stamp": by_seq.headers["Nats-Time-Stamp"],
    }
    (by_subject,) = await request_all(
        nc, f"$JS.API.DIRECT.GET.{sname}.{sname}.0", b"", until_status=False
    )
    assert by_subject.headers["Nats-Sequence"] == "4"
    (wild,) = await request_all(
        nc, f"$JS.API.DIRECT.GET.{sname}.{sname}.*", b"", until_status=False
    )
    assert wild.headers["Nats-Sequence"] == "6"
    (no_hdr,) = await request_all(
        nc, f"$JS.API.DIRECT.GET.{sname}", b'{"seq":2,"no_hdr":true}', until_status=False
    )
    assert no_hdr.data == b"v1" and not no_hdr.headers
    direct = await js.get_msg(sname, subject=f"{sname}.2", direct=True)
    assert direct.seq == 6 and direct.data == b"v5"


@pytest.mark.parametrize(
    ("suffix", "body", "status", "text"),
    [
        ("", b"", "408", "Empty Request"),
        ("", b'{"batch":3}', "408", "Empty Request"),
        ("", b"junk", "408", "Malformed Request"),
        ("", b'{"seq":1,"last_by_subj":"x"}', "408", "Bad Request"),
        ("", b'{"batch":3,"last_by_subj":"x"}', "408", "Bad Request"),
        (".x.y", b'{"seq":1}', "408", "Bad Request"),
        ("", b'{"seq":99}', "404", "Message Not Found"),
        ("", b'{"multi_last":["nothing.here"]}', "404", "No Results"),
    ],
)
async def test_direct_get_statuses(nc, js, sname, suffix, body, status, text) -> None:
    await filled(js, sname, 2, allow_direct=True)
    (msg,) = await request_all(nc, f"$JS.API.DIRECT.GET.{sname}{suffix}", body, until_status=False)
    assert msg.data == b""
    assert msg.headers["Status"] == status
    assert msg.headers["Description"] == text


async def test_direct_get_batch_streams_messages_then_eob(nc, js, sname) -> None:
    await filled(js, sname, allow_direct=True)
    replies = await request_all(
        nc, f"$JS.API.DIRECT.GET.{sname}", b'{"seq":4,"batch":10}', until_status=True
    )
    seqs = [m.headers["Nats-Sequence"] for m in replies[:-1]]
    assert seqs == ["4", "5", "6"]
    assert [m.headers["Nats-Num-Pending"] for m in replies[:-1]] == ["2", "1", "0"]
    assert [m.headers["Nats-Last-Sequence"] for m in replies[:-1]] == ["0", "4", "5"]
    eob = replies[-1]
    assert eob.headers["Status"] == "204" and eob.headers["Description"] == "EOB"
    assert (eob.headers["Nats-Num-Pending"], eob.headers["Nats-Last-Sequence"]) == ("0", "6")
    filtered = await request_all(
        nc,
        f"$JS.API.DIRECT.GET.{sname}",
        json.dumps({"batch": 3, "next_by_subj": f"{sname}.1"}).encode(),
        until_status=True,
    )
    assert [m.headers.get("Nats-Sequence") for m in filtered] == ["2", "5", None]
    assert filtered[0].headers["H"] == "1"


async def test_direct_get_multi_last(nc, js, sname) -> None:
    await filled(js, sname, allow_direct=True)
    body = json.dumps({"multi_last": [f"{sname}.0", f"{sname}.2"]}).encode()
    replies = await request_all(nc, f"$JS.API.DIRECT.GET.{sname}", body, until_status=True)
    assert [m.headers.get("Nats-Sequence") for m in replies] == ["4", "6", None]
    assert replies[-1].headers["Nats-UpTo-Sequence"] == "6"
    body = json.dumps({"multi_last": [f"{sname}.>"], "up_to_seq": 4}).encode()
    replies = await request_all(nc, f"$JS.API.DIRECT.GET.{sname}", body, until_status=True)
    assert [m.headers.get("Nats-Sequence") for m in replies] == ["2", "3", "4", None]
    assert [m.headers.get("Nats-Num-Pending") for m in replies[:-1]] == ["2", "1", "0"]
    assert replies[-1].headers["Nats-UpTo-Sequence"] == "4"


async def test_direct_get_is_off_unless_allowed(nc, js, sname) -> None:
    await filled(js, sname, 1)
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request(f"$JS.API.DIRECT.GET.{sname}", b'{"seq":1}', timeout=1)
    await js.update_stream(name=sname, subjects=[f"{sname}.*"], allow_direct=True)
    msg = await nc.request(f"$JS.API.DIRECT.GET.{sname}", b'{"seq":1}', timeout=2)
    assert msg.headers["Nats-Sequence"] == "1"


async def test_msg_delete_erase_and_no_erase(nc, js, sname) -> None:
    await filled(js, sname)
    assert await js.delete_msg(sname, 2) is True
    r = await api(nc, f"$JS.API.STREAM.MSG.DELETE.{sname}", {"seq": 3, "no_erase": True})
    assert r == {"type": "io.nats.jetstream.api.v1.stream_msg_delete_response", "success": True}
    info = await js.stream_info(sname)
    assert (info.state.messages, info.state.num_deleted) == (4, 2)
    r = await api(nc, f"$JS.API.STREAM.MSG.DELETE.{sname}", {"seq": 3})
    assert error_of(r) == (400, 10043, "sequence 3 not found")
    for body in ({}, b""):
        r = await api(nc, f"$JS.API.STREAM.MSG.DELETE.{sname}", body)
        assert error_of(r) == (400, 10003, "bad request")
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.get_msg(sname, seq=2)


async def test_deny_delete_and_deny_purge(nc, js, sname) -> None:
    await filled(js, sname, 2, deny_delete=True, deny_purge=True)
    r = await api(nc, f"$JS.API.STREAM.MSG.DELETE.{sname}", {"seq": 1})
    assert error_of(r) == (500, 10057, "message delete not permitted")
    r = await api(nc, f"$JS.API.STREAM.PURGE.{sname}")
    assert error_of(r) == (500, 10110, "stream purge not permitted")
    assert r["purged"] == 0


@pytest.mark.parametrize(
    ("request_body", "purged", "remaining"),
    [
        (None, 6, []),
        ({"filter": "{s}.1"}, 2, [1, 3, 4, 6]),
        ({"seq": 4}, 3, [4, 5, 6]),
        ({"keep": 2}, 4, [5, 6]),
        ({"filter": "{s}.0", "keep": 1}, 1, [2, 3, 4, 5, 6]),
        ({"filter": "{s}.0", "seq": 4}, 1, [2, 3, 4, 5, 6]),
        ({"filter": "{s}.*", "keep": 3}, 3, [4, 5, 6]),
        ({"filter": "{s}.*", "seq": 3}, 2, [3, 4, 5, 6]),
    ],
)
async def test_purge_variants(nc, js, sname, request_body, purged, remaining) -> None:
    await filled(js, sname)
    body = None
    if request_body is not None:
        body = {
            k: (v.replace("{s}", sname) if isinstance(v, str) else v)
            for k, v in request_body.items()
        }
    r = await api(nc, f"$JS.API.STREAM.PURGE.{sname}", body)
    assert r == {
        "type": "io.nats.jetstream.api.v1.stream_purge_response",
        "success": True,
        "purged": purged,
    }
    info = await js.stream_info(sname, subjects_filter=">")
    assert info.state.messages == len(remaining)
    present = []
    for seq in range(1, 7):
        try:
            present.append((await js.get_msg(sname, seq=seq)).seq)
        except nats.js.errors.NotFoundError:
            pass
    assert present == remaining


async def test_full_purge_moves_first_sequence_past_the_end(js, sname) -> None:
    await filled(js, sname)
    assert await js.purge_stream(sname) is True
    info = await js.stream_info(sname)
    assert (info.state.messages, info.state.first_seq, info.state.last_seq) == (0, 7, 6)
    assert (await js.publish(f"{sname}.0", b"after")).seq == 7


async def test_purge_errors(nc, js, sname) -> None:
    await filled(js, sname, 2)
    r = await api(nc, f"$JS.API.STREAM.PURGE.{sname}", {"seq": 3, "keep": 1})
    assert error_of(r) == (400, 10003, "bad request")
    assert r["purged"] == 0
    r = await api(nc, f"$JS.API.STREAM.PURGE.{sname}X")
    assert error_of(r) == (404, 10059, "stream not found")
    with_nats_py = await js.purge_stream(sname, subject=f"{sname}.0", keep=0)
    assert with_nats_py is True
