"""StreamConfig parsing, defaults, validation and JSON (pure logic; the API tests cover the
same rules end to end against a server)."""

from __future__ import annotations

import json

import pytest

from pynats.jetstream.config import (
    StreamConfig,
    check_stream_config,
    check_update,
    parse_stream_request,
)
from pynats.jetstream.errors import ApiError

NS = 1_000_000_000


def checked(**fields) -> StreamConfig:
    cfg, pedantic = parse_stream_request(json.dumps({"name": "S", **fields}).encode())
    return check_stream_config(cfg, pedantic=pedantic)


def error(**fields) -> tuple[int, int, str]:
    with pytest.raises(ApiError) as err:
        checked(**fields)
    return err.value.code, err.value.err_code, err.value.description


def test_defaults_match_nats_server() -> None:
    cfg = checked()
    out = cfg.to_json()
    assert out["subjects"] == ["S"]
    assert out["duplicate_window"] == 120 * NS
    assert out["max_msg_size"] == -1
    assert "description" not in out and "no_ack" not in out and "first_seq" not in out
    assert out["metadata"] == {"_nats.req.level": "0"}


def test_mirrors_and_sources_get_no_default_subjects_or_window() -> None:
    mirror = checked(mirror={"name": "O"}).to_json()
    assert "subjects" not in mirror and "duplicate_window" not in mirror
    sourced = checked(sources=[{"name": "O"}]).to_json()
    assert "subjects" not in sourced and "duplicate_window" not in sourced


def test_duplicate_window_follows_a_short_max_age() -> None:
    assert checked(max_age=30 * NS).duplicate_window == 30 * NS
    assert checked(max_age=3600 * NS).duplicate_window == 120 * NS


def test_discard_is_case_insensitive_on_input() -> None:
    assert checked(discard="NEW").discard == "new"


def test_json_errors_use_go_wording() -> None:
    with pytest.raises(ApiError) as err:
        parse_stream_request(b'{"name":"S","subjects":"a"}')
    assert err.value.description == (
        "invalid JSON: json: cannot unmarshal string into Go struct field "
        "StreamConfigRequest.subjects of type []string"
    )
    with pytest.raises(ApiError) as err:
        parse_stream_request(b'{"name":"S","max_msgs":true}')
    assert "cannot unmarshal bool into Go struct field StreamConfigRequest.max_msgs" in (
        err.value.description
    )
    with pytest.raises(ApiError) as err:
        parse_stream_request(b'{"name":"S","sources":[{"name":"A","x":1}]}')
    assert err.value.description == 'invalid JSON: json: unknown field "x"'


def test_field_names_match_case_insensitively_like_go() -> None:
    cfg, _ = parse_stream_request(b'{"Name":"S","MAX_MSGS":5}')
    assert (cfg.name, cfg.max_msgs) == ("S", 5)


def test_source_start_time_keeps_its_zone() -> None:
    out = checked(sources=[{"name": "A", "opt_start_time": "2024-01-01T00:00:00.5+01:00"}])
    assert out.to_json()["sources"][0]["opt_start_time"] == "2024-01-01T00:00:00.5+01:00"
    assert out.sources[0].start_time_ns == 1704063600500000000


def test_pedantic_mode_refuses_silent_fixes() -> None:
    assert error(max_msgs=-5, pedantic=True) == (
        400,
        10157,
        "pedantic mode: max_msgs must be set to -1",
    )


def test_same_as_ignores_server_metadata() -> None:
    a = checked(max_msgs=3)
    b = checked(max_msgs=3)
    b.metadata["_nats.ver"] = "x"
    assert a.same_as(b)
    assert not a.same_as(checked(max_msgs=4))


def test_update_rules() -> None:
    old = checked()
    with pytest.raises(ApiError) as err:
        check_update(old, checked(mirror={"name": "O"}, subjects=[]))
    assert err.value.err_code == 10055
    sealed = check_update(old, checked(sealed=True, max_age=3600 * NS, allow_rollup_hdrs=True))
    assert (sealed.max_age, sealed.discard, sealed.allow_rollup_hdrs) == (0, "new", False)
    assert sealed.deny_delete and sealed.deny_purge
    ttl = checked(allow_msg_ttl=True)
    with pytest.raises(ApiError):
        check_update(ttl, checked())


def test_store_config_carries_the_limits() -> None:
    store = checked(max_msgs=10, max_bytes=100, discard="new", storage="memory").store_config()
    assert (store.max_msgs, store.max_bytes, store.discard.value, store.storage.value) == (
        10,
        100,
        "new",
        "memory",
    )
