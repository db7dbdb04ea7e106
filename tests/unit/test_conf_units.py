"""Duration options and JetStream storage sizes (nats-server's
getStorageSize), with the error texts nats-server prints after the field name. The error
texts below were checked against nats-server 2.15.1 (`ping_interval` / `max_mem` options)."""

from __future__ import annotations

import pytest

from pynats.server.conf import duration_from_config, parse_config, parse_size


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (1073741824, 1073741824),
        ("1G", 1024**3),
        ("512M", 512 * 1024**2),
        ("4K", 4096),
        ("2T", 2 * 1024**4),
        ("-1G", -(1024**3)),
        ("", 0),
        ("8589934592G", -(2**63)),  # wraps around like Go's int64
    ],
)
def test_parse_size_reads_ints_and_binary_suffixed_strings(value: object, size: int) -> None:
    assert parse_size(value) == size


def test_unquoted_sizes_use_the_integer_suffix_rules_instead() -> None:
    data = parse_config("jetstream { max_mem: 1G, max_file: 1GB }", env={})
    limits = data["jetstream"]
    assert parse_size(limits["max_mem"]) == 10**9
    assert parse_size(limits["max_file"]) == 1024**3


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1g", "sizes defined as strings must end in K, M, G, T"),
        ("1024", "sizes defined as strings must end in K, M, G, T"),
        ("10X", "sizes defined as strings must end in K, M, G, T"),
        ("1GB", 'strconv.ParseInt: parsing "1G": invalid syntax'),
        ("abc", 'strconv.ParseInt: parsing "ab": invalid syntax'),
        ("1.5G", 'strconv.ParseInt: parsing "1.5": invalid syntax'),
        ("G", 'strconv.ParseInt: parsing "": invalid syntax'),
        ("1 G", 'strconv.ParseInt: parsing "1 ": invalid syntax'),
        (
            "9999999999999999999K",
            'strconv.ParseInt: parsing "9999999999999999999": value out of range',
        ),
        (1.5, "must be int64 or string"),
        (True, "must be int64 or string"),
    ],
)
def test_parse_size_errors_read_like_nats_server(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_size(value)
    assert str(caught.value) == message


def test_duration_option_given_as_string_is_parsed_without_warning() -> None:
    assert duration_from_config("ping_interval", "1h30m") == (5400.0, None)


def test_duration_option_given_as_integer_counts_seconds_and_warns() -> None:
    assert duration_from_config("ping_interval", 5) == (
        5.0,
        "ping_interval should be converted to a duration",
    )


def test_duration_option_with_a_bad_string_names_the_field() -> None:
    with pytest.raises(ValueError) as caught:
        duration_from_config("write_deadline", "5")
    assert str(caught.value) == 'error parsing write_deadline: time: missing unit in duration "5"'


@pytest.mark.parametrize(
    ("value", "go_type"),
    [(1.5, "float64"), (True, "bool"), ([1], "[]interface {}"), ({}, "map[string]interface {}")],
)
def test_duration_option_of_another_type_is_refused_with_gos_words(
    value: object, go_type: str
) -> None:
    with pytest.raises(ValueError) as caught:
        duration_from_config("ping_interval", value)
    assert str(caught.value) == f"interface conversion: interface {{}} is {go_type}, not int64"
