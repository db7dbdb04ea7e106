"""ConsumerConfig: decoding, the defaults nats-server applies, its validation order, the
update rules and the JSON it writes. Pure logic; the wire behaviour is covered (and
compared with nats-server) by the integration tests."""

from __future__ import annotations

import json

import pytest

from pynats.jetstream.config import StreamConfig
from pynats.jetstream.consumer_config import (
    ConsumerConfig,
    apply_defaults,
    check_consumer_config,
    check_update,
    parse_create_request,
    sample_percent,
)
from pynats.jetstream.errors import ApiError
from pynats.jetstream.limits import AccountLimits

NS = 1_000_000_000


def prepared(**fields) -> ConsumerConfig:
    cfg = ConsumerConfig.from_json(fields)
    apply_defaults(cfg, StreamConfig(name="S", subjects=["s.>"]), AccountLimits(), False)
    return cfg


def refusal(**fields) -> tuple[int, str]:
    cfg = prepared(**fields)
    with pytest.raises(ApiError) as err:
        check_consumer_config(cfg, StreamConfig(name="S", subjects=["s.>"]), AccountLimits())
    return err.value.err_code, err.value.description


def test_defaults_for_an_explicit_ack_pull_consumer() -> None:
    cfg = prepared(durable_name="D", ack_policy="explicit")
    assert (cfg.ack_wait, cfg.max_ack_pending, cfg.max_waiting, cfg.max_deliver) == (
        30 * NS,
        1000,
        512,
        -1,
    )
    assert cfg.inactive_threshold == 0, "durables stay"


def test_defaults_for_an_ephemeral_push_consumer_without_acks() -> None:
    cfg = prepared(deliver_subject="d")
    assert (cfg.ack_wait, cfg.max_ack_pending, cfg.max_waiting) == (0, 0, 0)
    assert cfg.inactive_threshold == 5 * NS


def test_backoff_sets_the_ack_wait() -> None:
    cfg = prepared(ack_policy="explicit", backoff=[NS, 5 * NS], max_deliver=4)
    assert cfg.ack_wait == NS
    assert [cfg.ack_wait_for(n) for n in (1, 2, 3, 9)] == [NS, 5 * NS, 5 * NS, 5 * NS]


def test_account_and_stream_limits_shape_the_defaults() -> None:
    stream = StreamConfig(
        name="S", consumer_limits={"max_ack_pending": 20, "inactive_threshold": 7 * NS}
    )
    cfg = ConsumerConfig.from_json({"ack_policy": "explicit"})
    apply_defaults(cfg, stream, AccountLimits(), False)
    assert (cfg.max_ack_pending, cfg.inactive_threshold) == (20, 7 * NS)
    capped = ConsumerConfig.from_json({"ack_policy": "explicit"})
    apply_defaults(capped, StreamConfig(name="S"), AccountLimits(max_ack_pending=100), False)
    assert capped.max_ack_pending == 100


def test_pedantic_refuses_what_would_be_fixed_silently() -> None:
    cfg = ConsumerConfig.from_json({"max_deliver": -5})
    with pytest.raises(ApiError) as err:
        apply_defaults(cfg, StreamConfig(name="S"), AccountLimits(), True)
    assert (err.value.err_code, err.value.description) == (
        10157,
        "pedantic mode: max_deliver must be set to -1",
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"ack_policy": "explicit", "ack_wait": -1}, 10183),
        ({"ack_policy": "explicit", "backoff": [NS, NS], "max_deliver": 1}, 10116),
        ({"filter_subject": "a", "filter_subjects": ["b"]}, 10136),
        ({"filter_subjects": ["a.b", "a.*"]}, 10138),
        ({"deliver_policy": "by_start_time"}, 10094),
        ({"deliver_subject": "s.x"}, 10081),
        ({"deliver_subject": "d", "idle_heartbeat": 1}, 10083),
        ({"idle_heartbeat": NS}, 10088),
        ({"sample_freq": "x%"}, 10095),
        ({"priority_policy": "overflow"}, 10159),
    ],
)
def test_validation(fields, code) -> None:
    assert refusal(**fields)[0] == code


def test_the_first_broken_rule_is_reported() -> None:
    # both the description and the deliver subject are wrong: nats-server names the first
    code, _ = refusal(description="x" * 5000, deliver_subject="d.*")
    assert code == 10107


def test_start_position_texts() -> None:
    assert refusal(deliver_policy="new", opt_start_seq=4)[1] == (
        "consumer delivery policy is deliver new, but optional start sequence is also set"
    )
    assert refusal(deliver_policy="last_per_subject")[1] == (
        "consumer delivery policy is deliver last per subject, but optional filter subject "
        "is not set"
    )


def test_updates() -> None:
    old = prepared(durable_name="D", ack_policy="explicit")
    new = prepared(durable_name="D", ack_policy="explicit", description="x", max_ack_pending=5)
    check_update(old, new)
    with pytest.raises(ApiError) as err:
        check_update(old, prepared(durable_name="D", ack_policy="all"))
    assert err.value.description == "ack policy can not be updated"


def test_sample_frequency() -> None:
    assert sample_percent(prepared(sample_freq="25%")) == 25
    assert sample_percent(prepared(sample_freq="7")) == 7
    assert sample_percent(prepared()) == 0


def test_create_request_decoding_errors_are_go_texts() -> None:
    with pytest.raises(ApiError) as err:
        parse_create_request(json.dumps({"config": {"ack_wait": "1s"}}).encode())
    assert err.value.description == (
        "invalid JSON: json: cannot unmarshal string into Go struct field "
        "CreateConsumerRequest.config.ack_wait of type time.Duration"
    )
    with pytest.raises(ApiError) as err:
        parse_create_request(b'{"config": {}, "action": "replace"}')
    assert err.value.description == 'invalid JSON: unknown consumer action: "replace"'


def test_json_omits_zero_values_and_round_trips() -> None:
    cfg = prepared(name="C", ack_policy="explicit", filter_subject="s.a")
    out = cfg.to_json()
    assert "description" not in out and "deliver_subject" not in out
    assert out["num_replicas"] == 0 and out["filter_subject"] == "s.a"
    assert ConsumerConfig.from_json(out).to_json() == out
