"""`$JS.API.STREAM.*`: create, update, info, delete, names, list — through nats-py's JetStream
manager and raw requests, every response validated against its JSON schema."""

from __future__ import annotations

import nats.errors
import nats.js.errors
import pytest
from nats.js.api import (
    DiscardPolicy,
    Placement,
    RePublish,
    RetentionPolicy,
    StorageType,
    StoreCompression,
    StreamConfig,
    SubjectTransform,
)
from tests.integration.jetstream.conftest import api, error_of

NS = 1_000_000_000


async def create(nc, name: str, **fields):
    return await api(nc, f"$JS.API.STREAM.CREATE.{name}", {"name": name, **fields})


async def test_create_applies_nats_server_defaults(nc, sname) -> None:
    r = await create(nc, sname)
    assert r["type"] == "io.nats.jetstream.api.v1.stream_create_response"
    assert r["did_create"] is True
    cfg = r["config"]
    assert cfg == {
        "name": sname,
        "subjects": [sname],
        "retention": "limits",
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": 0,
        "max_msgs_per_subject": -1,
        "max_msg_size": -1,
        "discard": "old",
        "storage": "file",
        "num_replicas": 1,
        "duplicate_window": 120 * NS,
        "compression": "none",
        "allow_direct": False,
        "mirror_direct": False,
        "sealed": False,
        "deny_delete": False,
        "deny_purge": False,
        "allow_rollup_hdrs": False,
        "consumer_limits": {},
        "allow_msg_ttl": False,
        "metadata": {
            "_nats.level": "4",
            "_nats.req.level": "0",
            "_nats.ver": cfg["metadata"]["_nats.ver"],
        },
    }
    assert r["state"] == {
        "messages": 0,
        "bytes": 0,
        "first_seq": 0,
        "first_ts": "0001-01-01T00:00:00Z",
        "last_seq": 0,
        "last_ts": "0001-01-01T00:00:00Z",
        "consumer_count": 0,
    }
    assert r["created"].endswith("Z") and "T" in r["created"]


async def test_every_config_field_round_trips_through_nats_py(js, sname) -> None:
    cfg = StreamConfig(
        name=sname,
        description="orders of the day",
        subjects=[f"{sname}.>"],
        retention=RetentionPolicy.LIMITS,
        max_consumers=10,
        max_msgs=1000,
        max_bytes=1 << 20,
        discard=DiscardPolicy.NEW,
        discard_new_per_subject=True,
        max_age=3600.0,
        max_msgs_per_subject=5,
        max_msg_size=4096,
        storage=StorageType.MEMORY,
        num_replicas=1,
        duplicate_window=60.0,
        placement=Placement(cluster="east"),
        allow_rollup_hdrs=True,
        deny_delete=True,
        first_seq=100,
        republish=RePublish(src=f"{sname}.>", dest=f"rp.{sname}.>", headers_only=True),
        subject_transform=SubjectTransform(src=f"{sname}.>", dest=f"{sname}.t.>"),
        allow_direct=True,
        compression=StoreCompression.S2,
        allow_msg_ttl=True,
        subject_delete_marker_ttl=5.0,
        metadata={"team": "blue"},
    )
    info = await js.add_stream(cfg)
    got = info.config
    assert got.description == "orders of the day"
    assert got.subjects == [f"{sname}.>"]
    assert (got.max_consumers, got.max_msgs, got.max_bytes) == (10, 1000, 1 << 20)
    assert got.discard == DiscardPolicy.NEW and got.discard_new_per_subject is True
    assert got.max_age == 3600.0 and got.duplicate_window == 60.0
    assert (got.max_msgs_per_subject, got.max_msg_size) == (5, 4096)
    assert got.storage == StorageType.MEMORY
    assert got.placement.cluster == "east"
    assert got.allow_rollup_hdrs and got.deny_delete and got.allow_direct
    assert got.first_seq == 100
    assert got.republish.dest == f"rp.{sname}.>" and got.republish.headers_only
    assert got.subject_transform.dest == f"{sname}.t.>"
    assert got.compression == StoreCompression.S2
    assert got.allow_msg_ttl and got.subject_delete_marker_ttl == 5.0
    assert got.metadata["team"] == "blue"
    assert got.metadata["_nats.req.level"] == "1"
    assert info.state.first_seq == 100 and info.state.last_seq == 99
    again = await js.stream_info(sname)
    assert again.config == got


async def test_create_is_idempotent_but_a_different_config_is_refused(nc, sname) -> None:
    first = await create(nc, sname, max_msgs=10)
    second = await create(nc, sname, max_msgs=10)
    assert second["created"] == first["created"]
    assert second["did_create"] is True
    third = await create(nc, sname, max_msgs=11)
    assert error_of(third) == (
        400,
        10058,
        "stream name already in use with a different configuration",
    )


async def test_nats_py_reports_name_in_use(js, sname) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.a"])
    with pytest.raises(nats.js.errors.BadRequestError) as err:
        await js.add_stream(name=sname, subjects=[f"{sname}.b"])
    assert err.value.err_code == 10058


@pytest.mark.parametrize(
    ("subject_name", "body", "expected"),
    [
        ("Q", {"name": "R"}, (400, 10056, "stream name in subject does not match request")),
        ("Q", b"", (400, 10056, "stream name in subject does not match request")),
        ("a/b", {"name": "a/b"}, (400, 10128, "Stream name can not contain path separators")),
        (
            "Q",
            {"name": "Q", "bogus": 1},
            (400, 10025, 'invalid JSON: json: unknown field "bogus"'),
        ),
        (
            "Q",
            {"name": "Q", "max_msgs": "x"},
            (
                400,
                10025,
                "invalid JSON: json: cannot unmarshal string into Go struct field "
                "StreamConfigRequest.max_msgs of type int64",
            ),
        ),
        (
            "Q",
            {"name": "Q", "max_age": 1.5},
            (
                400,
                10025,
                "invalid JSON: json: cannot unmarshal number 1.5 into Go struct field "
                "StreamConfigRequest.max_age of type time.Duration",
            ),
        ),
        (
            "Q",
            {"name": "Q", "mirror": {"name": 3}},
            (
                400,
                10025,
                "invalid JSON: json: cannot unmarshal number into Go struct field "
                "StreamConfigRequest.mirror.name of type string",
            ),
        ),
        (
            "Q",
            {"name": "Q", "retention": "bogus"},
            (400, 10025, 'invalid JSON: can not unmarshal "\\"bogus\\""'),
        ),
        (
            "Q",
            {"name": "Q", "compression": "zip"},
            (400, 10025, "invalid JSON: unknown compression algorithm"),
        ),
        (
            "Q",
            {"name": "Q", "num_replicas": 3},
            (500, 10074, "replicas > 1 not supported in non-clustered mode"),
        ),
        ("Q", {"name": "Q", "num_replicas": 6}, (500, 10052, "maximum replicas is 5")),
        ("Q", {"name": "Q", "num_replicas": -1}, (400, 10133, "replicas count cannot be negative")),
        ("Q", {"name": "Q", "max_age": 10}, (500, 10052, "max age needs to be >= 100ms")),
        ("Q", {"name": "Q", "max_age": -5}, (500, 10052, "max age can not be negative")),
        (
            "Q",
            {"name": "Q", "description": "d" * 4097},
            (500, 10052, "stream description is too long, maximum allowed is 4096"),
        ),
        (
            "Q",
            {"name": "Q", "metadata": {"k": "v" * 200_000}},
            (500, 10052, "stream metadata exceeds maximum size of 131072 bytes"),
        ),
        (
            "Q",
            {"name": "Q", "subjects": ["x.a", "x.a"]},
            (500, 10052, 'subject "x.a" overlaps with "x.a"'),
        ),
        (
            "Q",
            {"name": "Q", "subjects": ["x.*", "x.b"]},
            (500, 10052, 'subject "x.*" overlaps with "x.b"'),
        ),
        ("Q", {"name": "Q", "subjects": ["x..b"]}, (500, 10052, "invalid subject")),
        (
            "Q",
            {"name": "Q", "subjects": [">"]},
            (500, 10052, "capturing all subjects requires no-ack to be true"),
        ),
        (
            "Q",
            {"name": "Q", "subjects": ["$JS.API.>"]},
            (500, 10052, "subjects that overlap with jetstream api require no-ack to be true"),
        ),
        (
            "Q",
            {"name": "Q", "subjects": ["$SYS.>"]},
            (500, 10052, "subjects that overlap with system api require no-ack to be true"),
        ),
        (
            "Q",
            {"name": "Q", "duplicate_window": 10},
            (500, 10052, "duplicates window needs to be >= 100ms"),
        ),
        (
            "Q",
            {"name": "Q", "max_age": NS, "duplicate_window": 2 * NS},
            (500, 10052, "duplicates window can not be larger then max age"),
        ),
        (
            "Q",
            {"name": "Q", "discard_new_per_subject": True},
            (500, 10052, "discard new per subject requires discard new policy to be set"),
        ),
        (
            "Q",
            {"name": "Q", "discard": "new", "discard_new_per_subject": True},
            (500, 10052, "discard new per subject requires max msgs per subject > 0"),
        ),
        (
            "Q",
            {"name": "Q", "deny_purge": True, "allow_rollup_hdrs": True},
            (500, 10052, "roll-ups require the purge permission"),
        ),
        (
            "Q",
            {"name": "Q", "subject_delete_marker_ttl": NS // 2},
            (500, 10052, "subject delete marker TTL must be at least 1 second"),
        ),
        (
            "Q",
            {"name": "Q", "subject_delete_marker_ttl": 5 * NS, "pedantic": True},
            (500, 10052, "subject delete marker cannot be set if message TTLs are disabled"),
        ),
        (
            "Q",
            {"name": "Q", "sealed": True},
            (500, 10052, "stream configuration for create can not be sealed"),
        ),
        (
            "Q",
            {"name": "Q", "mirror_direct": True},
            (500, 10052, "stream has no mirror but does have mirror direct"),
        ),
        (
            "Q",
            {"name": "Q", "mirror": {"name": "O"}, "subjects": ["b"]},
            (400, 10034, "stream mirrors can not contain subjects"),
        ),
        (
            "Q",
            {"name": "Q", "mirror": {"name": "O"}, "sources": [{"name": "Z"}]},
            (400, 10031, "stream mirrors can not also contain other sources"),
        ),
        (
            "Q",
            {"name": "Q", "mirror": {"name": "O"}, "first_seq": 5},
            (400, 10143, "stream mirrors can not have first sequence configured"),
        ),
        (
            "Q",
            {"name": "Q", "mirror": {"name": "a.b"}},
            (400, 10142, "mirrored stream name is invalid"),
        ),
        (
            "Q",
            {"name": "Q", "sources": [{"name": "a.b"}]},
            (400, 10141, "sourced stream name is invalid"),
        ),
        (
            "Q",
            {"name": "Q", "sources": [{"name": "Z"}, {"name": "Z"}]},
            (400, 10140, "duplicate source configuration detected"),
        ),
        (
            "Q",
            {"name": "Q", "subjects": ["c"], "republish": {"src": "c", "dest": "c"}},
            (500, 10052, "stream configuration for republish destination forms a cycle"),
        ),
        (
            "Q",
            {"name": "Q", "subjects": ["c"], "subject_transform": {"src": "c", "dest": "d.$1"}},
            (
                400,
                10156,
                "stream transform: invalid mapping destination: wildcard index out of range in $1",
            ),
        ),
    ],
)
async def test_invalid_create_requests_get_nats_server_errors(
    nc, subject_name, body, expected
) -> None:
    r = await api(nc, f"$JS.API.STREAM.CREATE.{subject_name}", body)
    assert error_of(r) == expected
    assert "config" not in r


async def test_subjects_must_not_overlap_with_another_stream(nc, sname) -> None:
    await create(nc, sname, subjects=[f"{sname}.*"])
    r = await create(nc, sname + "2", subjects=[f"{sname}.a"])
    assert error_of(r) == (400, 10065, "subjects overlap with an existing stream")
    r = await create(nc, sname + "3", subjects=[f"{sname}.>"])
    assert error_of(r) == (400, 10065, "subjects overlap with an existing stream")


async def test_limits_are_normalised_and_windows_follow_max_age(nc, sname) -> None:
    r = await create(
        nc,
        sname,
        max_consumers=0,
        max_msgs=-7,
        max_bytes=0,
        max_msgs_per_subject=0,
        max_msg_size=0,
        max_age=30 * NS,
        placement={},
    )
    cfg = r["config"]
    for field in ("max_consumers", "max_msgs", "max_bytes", "max_msgs_per_subject", "max_msg_size"):
        assert cfg[field] == -1
    assert cfg["duplicate_window"] == 30 * NS
    assert "placement" not in cfg


async def test_delete_markers_force_ttl_and_rollups(nc, sname) -> None:
    r = await create(nc, sname, subject_delete_marker_ttl=5 * NS)
    cfg = r["config"]
    assert cfg["allow_msg_ttl"] is True
    assert cfg["allow_rollup_hdrs"] is True
    assert cfg["metadata"]["_nats.req.level"] == "1"


async def test_allow_batched_is_a_level_four_feature(nc, sname) -> None:
    r = await create(nc, sname, allow_batched=True)
    cfg = r["config"]
    assert cfg["allow_batched"] is True
    assert cfg["metadata"]["_nats.req.level"] == "4"


async def test_update_changes_limits_and_subjects(js, nc, sname) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.a"])
    for i in range(5):
        await js.publish(f"{sname}.a", b"%d" % i)
    info = await js.update_stream(name=sname, subjects=[f"{sname}.a", f"{sname}.b"], max_msgs=2)
    assert info.config.subjects == [f"{sname}.a", f"{sname}.b"]
    assert info.config.max_msgs == 2
    assert info.state.messages == 2 and info.state.first_seq == 4
    ack = await js.publish(f"{sname}.b", b"new subject")
    assert ack.seq == 6
    r = await api(nc, f"$JS.API.STREAM.UPDATE.{sname}", {"name": sname, "subjects": [f"{sname}.a"]})
    assert r["type"] == "io.nats.jetstream.api.v1.stream_update_response"
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request(f"{sname}.b", b"gone", timeout=1)


@pytest.mark.parametrize(
    ("old", "new", "text"),
    [
        (
            {"storage": "file"},
            {"storage": "memory"},
            "stream configuration update can not change storage type",
        ),
        (
            {},
            {"retention": "workqueue"},
            "stream configuration update can not change retention policy to/from workqueue",
        ),
        (
            {"retention": "workqueue"},
            {"retention": "limits"},
            "stream configuration update can not change retention policy to/from workqueue",
        ),
        (
            {"deny_delete": True},
            {},
            "stream configuration update can not cancel deny message deletes",
        ),
        ({"deny_purge": True}, {}, "stream configuration update can not cancel deny purge"),
    ],
)
async def test_immutable_fields_cannot_change_on_update(nc, sname, old, new, text) -> None:
    assert "error" not in await create(nc, sname, **old)
    r = await api(nc, f"$JS.API.STREAM.UPDATE.{sname}", {"name": sname, **new})
    assert error_of(r) == (500, 10052, text)


async def test_update_errors(nc, sname) -> None:
    r = await api(nc, f"$JS.API.STREAM.UPDATE.{sname}", {"name": sname})
    assert error_of(r) == (404, 10059, "stream not found")
    await create(nc, sname)
    r = await api(nc, f"$JS.API.STREAM.UPDATE.{sname}", {"name": sname + "X"})
    assert error_of(r) == (400, 10056, "stream name in subject does not match request")
    r = await api(nc, f"$JS.API.STREAM.UPDATE.{sname}", b"")
    assert error_of(r)[:2] == (500, 10052)
    r = await api(nc, f"$JS.API.STREAM.UPDATE.{sname}", {"name": sname, "num_replicas": 3})
    assert error_of(r) == (500, 10074, "replicas > 1 not supported in non-clustered mode")
    await create(nc, sname + "O", subjects=[f"{sname}.other"])
    r = await api(nc, f"$JS.API.STREAM.UPDATE.{sname}", {"name": sname, "subjects": [f"{sname}.>"]})
    assert error_of(r) == (400, 10065, "subjects overlap with an existing stream")


async def test_sealing_a_stream_locks_it(nc, sname) -> None:
    await create(nc, sname, max_age=3600 * NS)
    await nc.request(sname, b"before", timeout=2)
    r = await api(
        nc, f"$JS.API.STREAM.UPDATE.{sname}", {"name": sname, "sealed": True, "max_age": 3600 * NS}
    )
    cfg = r["config"]
    assert cfg["sealed"] and cfg["deny_delete"] and cfg["deny_purge"]
    assert cfg["discard"] == "new" and cfg["max_age"] == 0
    ack = await nc.request(sname, b"after", timeout=2)
    assert b'"err_code":10109' in ack.data
    r = await api(nc, f"$JS.API.STREAM.MSG.DELETE.{sname}", {"seq": 1})
    assert error_of(r) == (400, 10109, "invalid operation on sealed stream")
    r = await api(nc, f"$JS.API.STREAM.PURGE.{sname}")
    assert error_of(r) == (400, 10109, "invalid operation on sealed stream")
    assert r["purged"] == 0
    r = await api(nc, f"$JS.API.STREAM.UPDATE.{sname}", {"name": sname, "sealed": False})
    assert error_of(r) == (500, 10052, "stream configuration update can not unseal a sealed stream")


async def test_info_with_deleted_details_and_subject_paging(nc, js, sname) -> None:
    await js.add_stream(name=sname, subjects=[f"{sname}.*"])
    for i in range(6):
        await js.publish(f"{sname}.{i % 3}", b"x")
    await js.delete_msg(sname, 2)
    await js.delete_msg(sname, 4)
    plain = await api(nc, f"$JS.API.STREAM.INFO.{sname}")
    assert (plain["total"], plain["offset"], plain["limit"]) == (0, 0, 0)
    assert plain["cluster"]["leader"]
    assert plain["state"]["num_deleted"] == 2 and "deleted" not in plain["state"]
    assert plain["state"]["num_subjects"] == 3 and "subjects" not in plain["state"]
    full = await api(
        nc, f"$JS.API.STREAM.INFO.{sname}", {"deleted_details": True, "subjects_filter": ">"}
    )
    assert full["state"]["deleted"] == [2, 4]
    assert full["state"]["subjects"] == {f"{sname}.0": 1, f"{sname}.1": 1, f"{sname}.2": 2}
    assert (full["total"], full["offset"], full["limit"]) == (3, 0, 100000)
    paged = await api(
        nc, f"$JS.API.STREAM.INFO.{sname}", {"subjects_filter": f"{sname}.*", "offset": 2}
    )
    assert paged["state"]["subjects"] == {f"{sname}.2": 2}
    assert (paged["total"], paged["offset"]) == (3, 2)
    one = await js.stream_info(sname, subjects_filter=f"{sname}.1")
    assert one.state.subjects == {f"{sname}.1": 1}
    missing = await api(nc, f"$JS.API.STREAM.INFO.{sname}NOPE")
    assert error_of(missing) == (404, 10059, "stream not found")
    assert (missing["total"], missing["offset"], missing["limit"]) == (0, 0, 0)
    bad = await api(nc, f"$JS.API.STREAM.INFO.{sname}", {"limit": 3})
    assert error_of(bad) == (400, 10025, 'invalid JSON: json: unknown field "limit"')


async def test_delete_stream(js, nc, sname) -> None:
    await js.add_stream(name=sname)
    await js.publish(sname, b"x")
    r = await api(nc, f"$JS.API.STREAM.DELETE.{sname}", b"nope")
    assert error_of(r) == (400, 10038, "expected an empty request payload")
    assert await js.delete_stream(sname) is True
    with pytest.raises(nats.js.errors.NotFoundError):
        await js.stream_info(sname)
    r = await api(nc, f"$JS.API.STREAM.DELETE.{sname}")
    assert error_of(r) == (404, 10059, "stream not found")
    with pytest.raises(nats.errors.NoRespondersError):
        await nc.request(sname, b"after delete", timeout=1)
    # the name can be used again, from scratch
    info = await js.add_stream(name=sname)
    assert info.state.last_seq == 0


async def test_names_and_list_page_and_filter_by_subject(nc, js, sname) -> None:
    for i in range(3):
        await js.add_stream(name=f"{sname}_{i}", subjects=[f"{sname}.{i}.>"])
    names = await api(nc, "$JS.API.STREAM.NAMES", {"subject": f"{sname}.>"})
    assert names["streams"] == [f"{sname}_0", f"{sname}_1", f"{sname}_2"]
    assert (names["total"], names["offset"], names["limit"]) == (3, 0, 1024)
    names = await api(nc, "$JS.API.STREAM.NAMES", {"subject": f"{sname}.1.x", "offset": 0})
    assert names["streams"] == [f"{sname}_1"]
    names = await api(nc, "$JS.API.STREAM.NAMES", {"subject": f"{sname}.>", "offset": 2})
    assert names["streams"] == [f"{sname}_2"] and names["offset"] == 2
    names = await api(nc, "$JS.API.STREAM.NAMES", {"subject": f"{sname}.9"})
    assert names["streams"] is None and names["total"] == 0
    empty = await api(nc, "$JS.API.STREAM.LIST", {"subject": f"{sname}.9"})
    assert empty["streams"] == []
    everything = await api(nc, "$JS.API.STREAM.NAMES", {"offset": -3})
    assert everything["offset"] == 0 and everything["streams"] == sorted(everything["streams"])
    listing = await api(nc, "$JS.API.STREAM.LIST", {"subject": f"{sname}.>"})
    assert listing["limit"] == 256
    assert [s["config"]["name"] for s in listing["streams"]] == names_sorted(sname, 3)
    assert listing["streams"][0]["config"]["metadata"] == {"_nats.req.level": "0"}
    assert "cluster" not in listing["streams"][0]
    bad = await api(nc, "$JS.API.STREAM.NAMES", {"limit": 2})
    assert error_of(bad) == (400, 10025, 'invalid JSON: json: unknown field "limit"')
    assert "streams" not in bad
    py_names = await js.streams_info()
    assert {f"{sname}_0", f"{sname}_1", f"{sname}_2"} <= {s.config.name for s in py_names}


def names_sorted(prefix: str, n: int) -> list[str]:
    return [f"{prefix}_{i}" for i in range(n)]


async def test_required_api_level_header(nc) -> None:
    r = await api(nc, "$JS.API.INFO", headers={"Nats-Required-Api-Level": "7"})
    assert error_of(r) == (412, 10185, "JetStream minimum api level required")
    r = await api(nc, "$JS.API.INFO", headers={"Nats-Required-Api-Level": "1"})
    assert "error" not in r


async def test_unknown_api_subjects_get_no_answer(nc) -> None:
    with pytest.raises(nats.errors.TimeoutError):
        await nc.request("$JS.API.NOT.A.THING", b"", timeout=0.3)


async def test_stepdown_needs_clustering(nc, sname) -> None:
    await create(nc, sname)
    r = await api(nc, f"$JS.API.STREAM.LEADER.STEPDOWN.{sname}")
    assert error_of(r) == (503, 10010, "JetStream clustering support required")


async def test_consumer_api_on_a_stream_without_consumers(nc, js, sname) -> None:
    await js.add_stream(name=sname)
    names = await api(nc, f"$JS.API.CONSUMER.NAMES.{sname}")
    assert (names["total"], names["consumers"]) == (0, [])
    listing = await api(nc, f"$JS.API.CONSUMER.LIST.{sname}")
    assert listing["consumers"] == []
    r = await api(nc, f"$JS.API.CONSUMER.INFO.{sname}.C")
    assert error_of(r) == (404, 10014, "consumer not found")
    # nats-server adds `consumers: []` to this error; nats.py's schema does not foresee it
    r = await api(nc, f"$JS.API.CONSUMER.NAMES.{sname}X", check_schema=False)
    assert error_of(r) == (404, 10059, "stream not found")
