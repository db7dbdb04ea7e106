"""Mirrors and sources: a mirror follows its origin (same sequences), sources merge with
filters and transforms, both catch up after being offline (created late, origin missing,
server restarted), also through an API prefix (domain or another account)."""

from __future__ import annotations

import nats.js.errors
from nats.js.api import StreamConfig, StreamSource, SubjectTransform
from tests.conftest import connect
from tests.integration.jetstream.conftest import api
from tests.support.servers import start_server
from tests.support.waiting import wait_until


async def count(js, name: str) -> int:
    try:
        return (await js.stream_info(name)).state.messages
    except nats.js.errors.NotFoundError:
        return -1


async def until_count(js, name: str, n: int, timeout: float = 5.0) -> None:
    async def reached() -> bool:
        return await count(js, name) == n

    await wait_until(reached, timeout=timeout)


async def test_mirror_copies_existing_and_new_messages_with_their_sequences(nc, js, sname) -> None:
    origin, mirror = sname, sname + "_M"
    await js.add_stream(name=origin, subjects=[f"{origin}.*"], allow_direct=True)
    for i in range(5):
        await js.publish(f"{origin}.{i % 2}", b"m%d" % i)
    await js.delete_msg(origin, 2)
    r = await api(
        nc, f"$JS.API.STREAM.CREATE.{mirror}", {"name": mirror, "mirror": {"name": origin}}
    )
    assert r["config"]["mirror_direct"] is True  # the origin allows direct gets
    assert r["mirror"]["name"] == origin
    await until_count(js, mirror, 4)
    for i in range(5, 8):
        await js.publish(f"{origin}.{i % 2}", b"m%d" % i)
    await until_count(js, mirror, 7)
    info = await js.stream_info(mirror)
    assert (info.state.first_seq, info.state.last_seq, info.state.num_deleted) == (1, 8, 1)
    for seq in (1, 3, 8):
        mine, theirs = await js.get_msg(mirror, seq=seq), await js.get_msg(origin, seq=seq)
        assert (mine.subject, mine.data) == (theirs.subject, theirs.data)
        # and the time it was stored at the origin, as nats-server mirrors keep it
        get = {"seq": seq}
        mine_at = (await api(nc, f"$JS.API.STREAM.MSG.GET.{mirror}", get))["message"]["time"]
        theirs_at = (await api(nc, f"$JS.API.STREAM.MSG.GET.{origin}", get))["message"]["time"]
        assert mine_at == theirs_at
    assert info.mirror.name == origin and info.mirror.lag == 0
    # a mirror takes no publishes of its own
    assert info.config.subjects in (None, [])


async def test_mirror_with_filter_subject(js, sname) -> None:
    origin, mirror = sname, sname + "_M"
    await js.add_stream(name=origin, subjects=[f"{origin}.*"])
    for i in range(6):
        await js.publish(f"{origin}.{i % 3}", b"x")
    await js.add_stream(
        StreamConfig(name=mirror, mirror=StreamSource(name=origin, filter_subject=f"{origin}.1"))
    )
    await until_count(js, mirror, 2)
    info = await js.stream_info(mirror, subjects_filter=">")
    assert info.state.subjects == {f"{origin}.1": 2}
    assert info.state.last_seq == 5


async def test_mirror_created_before_its_origin_catches_up(js, sname) -> None:
    origin, mirror = sname, sname + "_M"
    await js.add_stream(StreamConfig(name=mirror, mirror=StreamSource(name=origin)))
    await js.add_stream(name=origin)
    for i in range(3):
        await js.publish(origin, b"%d" % i)
    await until_count(js, mirror, 3)
    # the origin goes away and comes back: the mirror picks up after its last sequence
    await js.delete_stream(origin)
    await js.add_stream(name=origin, first_seq=4)
    await js.publish(origin, b"after")
    await until_count(js, mirror, 4)
    assert (await js.get_msg(mirror, seq=4)).data == b"after"


async def test_sources_merge_with_filters_transforms_and_a_stream_source_header(js, sname) -> None:
    a, b, merged = sname + "_A", sname + "_B", sname + "_S"
    await js.add_stream(name=a, subjects=[f"{a}.*"])
    await js.add_stream(name=b, subjects=[f"{b}.*"])
    for i in range(4):
        await js.publish(f"{a}.{i % 2}", b"a%d" % i)
        await js.publish(f"{b}.x", b"b%d" % i)
    await js.add_stream(
        StreamConfig(
            name=merged,
            subjects=[f"{merged}.own"],
            sources=[
                StreamSource(name=a, filter_subject=f"{a}.1"),
                StreamSource(
                    name=b,
                    subject_transforms=[SubjectTransform(src=f"{b}.*", dest=f"{merged}.from_b.$1")],
                ),
            ],
        )
    )
    await until_count(js, merged, 2 + 4)
    info = await js.stream_info(merged, subjects_filter=">")
    assert info.state.subjects == {f"{a}.1": 2, f"{merged}.from_b.x": 4}
    assert {s.name for s in info.sources} == {a, b}
    from_a = await js.get_last_msg(merged, f"{a}.1")
    parts = from_a.headers["Nats-Stream-Source"].split(" ")
    assert parts[:5] == [a, "4", f"{a}.1", ">", f"{a}.1"]
    from_b = await js.get_last_msg(merged, f"{merged}.from_b.x")
    assert from_b.headers["Nats-Stream-Source"].split(" ")[:5] == [
        b,
        "4",
        f"{b}.*",
        f"{merged}.from_b.$1",
        f"{b}.x",
    ]
    await js.publish(f"{a}.1", b"live")
    await until_count(js, merged, 7)


async def test_source_start_sequence(js, sname) -> None:
    origin, sourced = sname, sname + "_S"
    await js.add_stream(name=origin)
    for i in range(5):
        await js.publish(origin, b"%d" % i)
    await js.add_stream(
        StreamConfig(name=sourced, sources=[StreamSource(name=origin, opt_start_seq=4)])
    )
    await until_count(js, sourced, 2)
    assert (await js.get_msg(sourced, seq=1)).data == b"3"


async def test_mirror_and_sources_resume_after_restart_without_duplicates(tmp_path) -> None:
    args = ["-js", "-sd", str(tmp_path)]
    srv = start_server(args)
    try:
        nc = await connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="O", subjects=["o.*"])
        await js.add_stream(StreamConfig(name="M", mirror=StreamSource(name="O")))
        await js.add_stream(StreamConfig(name="S", sources=[StreamSource(name="O")]))
        for i in range(5):
            await js.publish(f"o.{i}", b"%d" % i)
        await until_count(js, "M", 5)
        await until_count(js, "S", 5)
        await nc.close()
    finally:
        srv.stop()
    srv = start_server(args)
    try:
        nc = await connect(srv.url)
        js = nc.jetstream()
        for i in range(5, 8):
            await js.publish(f"o.{i}", b"%d" % i)
        await until_count(js, "M", 8)
        await until_count(js, "S", 8)
        seen = [(await js.get_msg("S", seq=s)).data for s in range(1, 9)]
        assert seen == [b"%d" % i for i in range(8)]
        assert (await js.stream_info("M")).state.last_seq == 8
        await nc.close()
    finally:
        srv.stop()


async def test_source_through_the_domain_api_prefix(tmp_path) -> None:
    conf = tmp_path / "d.conf"
    conf.write_text(f'jetstream {{ store_dir: "{tmp_path}", domain: "hub" }}\n')
    srv = start_server(["-c", str(conf)])
    try:
        nc = await connect(srv.url)
        js = nc.jetstream()
        await js.add_stream(name="O", subjects=["o"])
        ack = await js.publish("o", b"x")
        assert ack.domain == "hub"
        r = await api(
            nc,
            "$JS.hub.API.STREAM.CREATE.S",
            {"name": "S", "sources": [{"name": "O", "external": {"api": "$JS.hub.API"}}]},
        )
        assert r["sources"][0]["external"] == {"api": "$JS.hub.API", "deliver": ""}
        await until_count(js, "S", 1)
        hub = nc.jetstream(domain="hub")
        assert (await hub.stream_info("S")).state.messages == 1
        await nc.close()
    finally:
        srv.stop()


async def test_source_from_another_account_through_an_imported_api(tmp_path) -> None:
    conf = tmp_path / "acc.conf"
    conf.write_text(
        f'jetstream {{ store_dir: "{tmp_path}" }}\n'
        "accounts {\n"
        "  A: { jetstream: enabled, users: [{user: a, password: a}],\n"
        '       exports: [{service: "$JS.API.>"}] }\n'
        "  B: { jetstream: enabled, users: [{user: b, password: b}],\n"
        '       imports: [{service: {account: A, subject: "$JS.API.>"}, to: "$JS.A.API.>"}] }\n'
        "}\n"
    )
    srv = start_server(["-c", str(conf)])
    try:
        a = await connect(srv.url, user="a", password="a")
        b = await connect(srv.url, user="b", password="b")
        ja, jb = a.jetstream(), b.jetstream()
        await ja.add_stream(name="ORIGIN", subjects=["orig.>"])
        for i in range(3):
            await ja.publish(f"orig.{i}", b"%d" % i)
        r = await api(
            b,
            "$JS.API.STREAM.CREATE.COPY",
            {"name": "COPY", "mirror": {"name": "ORIGIN", "external": {"api": "$JS.A.API"}}},
        )
        assert "error" not in r
        await until_count(jb, "COPY", 3)
        await ja.publish("orig.3", b"3")
        await until_count(jb, "COPY", 4)
        await a.close()
        await b.close()
    finally:
        srv.stop()


async def test_interest_stream_keeps_messages_only_until_a_source_took_them(js, sname) -> None:
    """A sourcing stream is interest for an interest-retention origin: what it copied goes."""
    origin, sourced = sname, sname + "_S"
    await js.add_stream(name=origin, subjects=[f"{origin}.*"], retention="interest")
    await js.publish(f"{origin}.a", b"nobody listens yet")
    assert (await js.stream_info(origin)).state.messages == 0
    await js.add_stream(StreamConfig(name=sourced, sources=[StreamSource(name=origin)]))
    for i in range(3):
        await js.publish(f"{origin}.a", b"%d" % i)
    await until_count(js, sourced, 3)
    await until_count(js, origin, 0)
    info = await js.stream_info(origin)
    assert (info.state.first_seq, info.state.last_seq) == (5, 4)
    sourced_info = await js.stream_info(sourced)
    assert sourced_info.sources[0].lag == 0


async def test_source_start_time(js, sname) -> None:
    origin, sourced = sname, sname + "_S"
    await js.add_stream(name=origin)
    for i in range(3):
        await js.publish(origin, b"old%d" % i)
    cutoff = (await js.get_msg(origin, seq=3)).time
    for i in range(2):
        await js.publish(origin, b"new%d" % i)
    start = (await js.get_msg(origin, seq=4)).time
    assert start > cutoff
    await js.add_stream(
        StreamConfig(
            name=sourced,
            sources=[
                StreamSource(name=origin, opt_start_time=start.isoformat().replace("+00:00", "Z"))
            ],
        )
    )
    await until_count(js, sourced, 2)
    assert (await js.get_msg(sourced, seq=1)).data == b"new0"
