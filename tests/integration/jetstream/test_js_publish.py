"""Publishing into a stream: pub-acks, the Nats-* publish headers, limits and discard policy."""

from __future__ import annotations

import json

import nats.errors
import nats.js.errors
import pytest
from tests.integration.jetstream.conftest import api, error_of, validate_as

NS = 1_000_000_000


async def pub_ack(nc, subject: str, payload: bytes = b"x", headers=None) -> dict:
    msg = await nc.request(subject, payload, timeout=3, headers=headers)
    ack = json.loads(msg.data)
    validate_as("pub_ack_response", ack)
    return ack


async def test_ack_has_stream_and_sequence_in_nats_server_format(nc, js, sname) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.>"])
    msg = await nc.request(f"{sname}.a", b"hello", timeout=3)
    assert msg.data == b'{"stream":"%s","seq":1}' % sname.encode()
    ack = await js.publish(f"{sname}.b", b"world")
    assert (ack.stream, ack.seq, ack.duplicate) == (sname, 2, None)


async def test_publish_without_reply_is_stored(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    await nc.publish(sname, b"fire and forget")
    await nc.flush()
    info = await js.stream_info(sname)
    assert info.state.messages == 1
    assert (await js.get_msg(sname, seq=1)).data == b"fire and forget"


async def test_no_ack_stream_stores_but_does_not_answer(nc, js, sname) -> None:
    await js.add_stream(name=sname, no_ack=True)
    with pytest.raises(nats.errors.TimeoutError):
        await nc.request(sname, b"quiet", timeout=0.3)
    assert (await js.stream_info(sname)).state.messages == 1


async def test_msg_id_dedupes_within_the_window(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    first = await js.publish(sname, b"1", headers={"Nats-Msg-Id": "a"})
    dup = await nc.request(sname, b"1 again", timeout=3, headers={"Nats-Msg-Id": "a"})
    assert dup.data == b'{"stream":"%s","seq":1,"duplicate": true}' % sname.encode()
    py_dup = await js.publish(sname, b"1 again", headers={"Nats-Msg-Id": "a"})
    assert (py_dup.seq, py_dup.duplicate) == (first.seq, True)
    other = await js.publish(sname, b"2", headers={"Nats-Msg-Id": "b"})
    assert other.seq == 2 and not other.duplicate
    assert (await js.stream_info(sname)).state.messages == 2


async def test_msg_id_window_expires(js, sname) -> None:
    import asyncio

    await js.add_stream(name=sname, duplicate_window=0.2)
    await js.publish(sname, b"1", headers={"Nats-Msg-Id": "a"})
    await asyncio.sleep(0.3)  # the window itself is what is under test
    again = await js.publish(sname, b"1", headers={"Nats-Msg-Id": "a"})
    assert again.seq == 2 and not again.duplicate


async def test_expected_stream_header(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    ack = await pub_ack(nc, sname, headers={"Nats-Expected-Stream": "OTHER"})
    assert ack["error"] == {
        "code": 400,
        "err_code": 10060,
        "description": "expected stream does not match",
    }
    assert (ack["stream"], ack["seq"]) == (sname, 0)
    ok = await pub_ack(nc, sname, headers={"Nats-Expected-Stream": sname})
    assert ok["seq"] == 1


async def test_expected_last_sequence_header(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    ack = await pub_ack(nc, sname, headers={"Nats-Expected-Last-Sequence": "5"})
    assert error_of(ack) == (400, 10071, "wrong last sequence: 0")
    assert (await pub_ack(nc, sname, headers={"Nats-Expected-Last-Sequence": "0"}))["seq"] == 1
    with pytest.raises(nats.js.errors.APIError) as err:
        await js.publish(sname, b"x", headers={"Nats-Expected-Last-Sequence": "0"})
    assert err.value.err_code == 10071


async def test_expected_last_subject_sequence_header(nc, js, sname) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.*"])
    hdr = "Nats-Expected-Last-Subject-Sequence"
    assert (await pub_ack(nc, f"{sname}.a", headers={hdr: "0"}))["seq"] == 1
    ack = await pub_ack(nc, f"{sname}.a", headers={hdr: "0"})
    assert error_of(ack) == (400, 10071, "wrong last sequence: 1")
    await pub_ack(nc, f"{sname}.b")
    assert (await pub_ack(nc, f"{sname}.a", headers={hdr: "1"}))["seq"] == 3
    # a subject override (wildcards allowed) checks another subject's last sequence
    ack = await pub_ack(
        nc,
        f"{sname}.c",
        headers={hdr: "3", "Nats-Expected-Last-Subject-Sequence-Subject": f"{sname}.*"},
    )
    assert ack["seq"] == 4
    ack = await pub_ack(
        nc, f"{sname}.c", headers={"Nats-Expected-Last-Subject-Sequence-Subject": f"{sname}.a"}
    )
    assert error_of(ack)[1] == 10193


async def test_expected_last_msg_id_header(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    ack = await pub_ack(nc, sname, headers={"Nats-Expected-Last-Msg-Id": "zz"})
    assert error_of(ack) == (400, 10070, "wrong last msg ID: ")
    await pub_ack(nc, sname, headers={"Nats-Msg-Id": "m1"})
    ok = await pub_ack(nc, sname, headers={"Nats-Expected-Last-Msg-Id": "m1", "Nats-Msg-Id": "m2"})
    assert ok["seq"] == 2
    ack = await pub_ack(nc, sname, headers={"Nats-Expected-Last-Msg-Id": "m1"})
    assert error_of(ack) == (400, 10070, "wrong last msg ID: m2")


async def test_rollup_sub_keeps_only_the_newest_message_of_the_subject(nc, js, sname) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.*"], allow_rollup_hdrs=True)
    for i in range(3):
        await js.publish(f"{sname}.a", b"%d" % i)
    await js.publish(f"{sname}.b", b"b")
    ack = await js.publish(f"{sname}.a", b"rolled", headers={"Nats-Rollup": "sub"})
    info = await js.stream_info(sname, subjects_filter=">")
    assert info.state.subjects == {f"{sname}.a": 1, f"{sname}.b": 1}
    assert (await js.get_last_msg(sname, f"{sname}.a")).seq == ack.seq


async def test_rollup_all_purges_everything_before(js, sname) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.*"], allow_rollup_hdrs=True)
    for s in "abc":
        await js.publish(f"{sname}.{s}", b"x")
    ack = await js.publish(f"{sname}.d", b"all", headers={"Nats-Rollup": "all"})
    info = await js.stream_info(sname)
    assert (info.state.messages, info.state.first_seq) == (1, ack.seq)


async def test_rollup_errors(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    ack = await pub_ack(nc, sname, headers={"Nats-Rollup": "sub"})
    assert error_of(ack) == (500, 10111, "rollup not permitted")
    await js.update_stream(name=sname, allow_rollup_hdrs=True)
    ack = await pub_ack(nc, sname, headers={"Nats-Rollup": "bad"})
    assert error_of(ack) == (500, 10111, 'rollup value invalid: "bad"')


async def test_ttl_header_needs_allow_msg_ttl_and_a_valid_value(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    ack = await pub_ack(nc, sname, headers={"Nats-TTL": "10s"})
    assert error_of(ack) == (400, 10166, "per-message TTL is disabled")
    await js.update_stream(name=sname, allow_msg_ttl=True)
    for bad in ("bad", "500ms", "0"):
        ack = await pub_ack(nc, sname, headers={"Nats-TTL": bad})
        assert error_of(ack) == (400, 10165, "invalid per-message TTL")
    for good in ("10", "1h", "never"):
        assert "error" not in await pub_ack(nc, sname, headers={"Nats-TTL": good})


async def test_max_msg_size_counts_headers_and_payload(nc, js, sname) -> None:
    await js.add_stream(name=sname, max_msg_size=50)
    ack = await pub_ack(nc, sname, b"x" * 51)
    assert error_of(ack) == (400, 10054, "message size exceeds maximum allowed")
    ack = await pub_ack(nc, sname, b"x" * 30, headers={"Nats-Msg-Id": "a-long-message-id"})
    assert error_of(ack)[1] == 10054
    assert (await pub_ack(nc, sname, b"x" * 50))["seq"] == 1


@pytest.mark.parametrize(
    ("limit", "text"),
    [("max_msgs", "maximum messages exceeded"), ("max_bytes", "maximum bytes exceeded")],
)
async def test_discard_new_refuses_when_full(nc, sname, limit, text) -> None:
    # a file-store message of 1 byte on subject `sname` accounts len(sname) + 1 + 30 bytes
    value = 2 if limit == "max_msgs" else 2 * (len(sname) + 1 + 30)
    await api(nc, f"$JS.API.STREAM.CREATE.{sname}", {"name": sname, "discard": "new", limit: value})
    assert (await pub_ack(nc, sname, b"x"))["seq"] == 1
    assert (await pub_ack(nc, sname, b"x"))["seq"] == 2
    ack = await pub_ack(nc, sname, b"x")
    assert error_of(ack) == (503, 10077, text)


async def test_discard_new_per_subject(nc, js, sname) -> None:
    await api(
        nc,
        f"$JS.API.STREAM.CREATE.{sname}",
        {
            "name": sname,
            "subjects": [f"{sname}.*"],
            "discard": "new",
            "discard_new_per_subject": True,
            "max_msgs_per_subject": 1,
        },
    )
    assert (await pub_ack(nc, f"{sname}.a"))["seq"] == 1
    ack = await pub_ack(nc, f"{sname}.a")
    assert error_of(ack) == (503, 10077, "maximum messages per subject exceeded")
    assert (await pub_ack(nc, f"{sname}.b"))["seq"] == 2


async def test_discard_old_drops_the_oldest(js, sname) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.*"], max_msgs=3, max_msgs_per_subject=2)
    for i in range(3):
        await js.publish(f"{sname}.a", b"%d" % i)
    info = await js.stream_info(sname)
    assert (info.state.messages, info.state.first_seq) == (2, 2)
    for s in "bc":
        await js.publish(f"{sname}.{s}", b"x")
    info = await js.stream_info(sname)
    assert (info.state.messages, info.state.first_seq, info.state.last_seq) == (3, 3, 5)


async def test_status_line_in_published_headers_is_not_stored(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    raw = b"NATS/1.0 503\r\nA: 1\r\n\r\n"
    # nats-py cannot send a status line; speak the protocol directly through its transport
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc._send_command(
        b"HPUB %b %b %d %d\r\n%b\r\n" % (sname.encode(), inbox.encode(), len(raw), len(raw), raw)
    )
    await nc.flush()
    await sub.next_msg(timeout=3)
    stored = await js.get_msg(sname, seq=1)
    assert stored.headers == {"A": "1"}


async def test_interest_stream_without_consumers_acks_but_keeps_nothing(nc, js, sname) -> None:
    await api(
        nc,
        f"$JS.API.STREAM.CREATE.{sname}",
        {"name": sname, "retention": "interest"},
    )
    first = await pub_ack(nc, sname)
    second = await pub_ack(nc, sname)
    assert (first["seq"], second["seq"]) == (1, 2)
    info = await js.stream_info(sname)
    assert (info.state.messages, info.state.last_seq) == (0, 2)


async def test_republish_copies_stored_messages_with_stream_headers(nc, js, sname) -> None:
    await api(
        nc,
        f"$JS.API.STREAM.CREATE.{sname}",
        {
            "name": sname,
            "subjects": [f"{sname}.*"],
            "republish": {"src": f"{sname}.*", "dest": f"rp.{sname}.$1"},
        },
    )
    sub = await nc.subscribe(f"rp.{sname}.>")
    await js.publish(f"{sname}.a", b"one", headers={"H": "v"})
    await js.publish(f"{sname}.a", b"two")
    first = await sub.next_msg(timeout=3)
    second = await sub.next_msg(timeout=3)
    assert (first.subject, first.data) == (f"rp.{sname}.a", b"one")
    assert first.headers["H"] == "v"
    assert first.headers["Nats-Stream"] == sname
    assert first.headers["Nats-Subject"] == f"{sname}.a"
    assert first.headers["Nats-Sequence"] == "1"
    assert first.headers["Nats-Last-Sequence"] == "0"
    assert first.headers["Nats-Time-Stamp"].endswith("Z")
    assert second.headers["Nats-Last-Sequence"] == "1"


async def test_republish_headers_only(nc, js, sname) -> None:
    await api(
        nc,
        f"$JS.API.STREAM.CREATE.{sname}",
        {
            "name": sname,
            "subjects": [f"{sname}.*"],
            "republish": {"src": f"{sname}.*", "dest": f"rp.{sname}.$1", "headers_only": True},
        },
    )
    sub = await nc.subscribe(f"rp.{sname}.*")
    await js.publish(f"{sname}.x", b"12345")
    msg = await sub.next_msg(timeout=3)
    assert msg.data == b"" and msg.headers["Nats-Msg-Size"] == "5"


async def test_subject_transform_renames_before_storing(js, sname) -> None:
    from nats.js.api import StreamConfig, SubjectTransform

    await js.add_stream(
        StreamConfig(
            name=sname,
            subjects=[f"{sname}.in.*"],
            subject_transform=SubjectTransform(src=f"{sname}.in.*", dest=f"{sname}.out.$1"),
        )
    )
    await js.publish(f"{sname}.in.x", b"x")
    assert (await js.get_msg(sname, seq=1)).subject == f"{sname}.out.x"


async def test_workqueue_stream_keeps_messages_until_consumed(nc, js, sname) -> None:
    r = await api(nc, f"$JS.API.STREAM.CREATE.{sname}", {"name": sname, "retention": "workqueue"})
    assert r["config"]["retention"] == "workqueue"
    for i in range(3):
        assert (await pub_ack(nc, sname, b"job%d" % i))["seq"] == i + 1
    assert (await js.stream_info(sname)).state.messages == 3


async def test_timestamps_are_rfc3339_utc_with_nanoseconds(nc, js, sname) -> None:
    import re

    r = await api(nc, f"$JS.API.STREAM.CREATE.{sname}", {"name": sname})
    await pub_ack(nc, sname)
    info = await api(nc, f"$JS.API.STREAM.INFO.{sname}")
    pattern = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
    for value in (
        r["created"],
        info["created"],
        info["ts"],
        info["state"]["first_ts"],
        info["state"]["last_ts"],
    ):
        assert pattern.match(value), value
        assert not re.search(r"\.\d*0Z$", value)  # trailing zeros trimmed, as Go prints
