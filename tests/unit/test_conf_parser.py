"""The config parser: values, variables, includes, positions, errors and the digest."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pynats.server.conf import (
    ConfigError,
    ConfigList,
    ConfigMap,
    Position,
    config_digest,
    go_json,
    load_config_file,
    parse_config,
)


def parse(text: str, **env: str) -> ConfigMap:
    return parse_config(text, env=env)


def error_of(text: str, *, filename: str | None = None, **env: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, filename=filename, env=env)
    return caught.value


# -- values ---------------------------------------------------------------------------------


def test_seed_example_parses_to_nested_values() -> None:
    text = 'jetstream {\n  store_dir: "/data/nats-jetstream"\n  max_mem: 1G\n  max_file: 10G\n}\n'
    assert parse(text) == {
        "jetstream": {
            "store_dir": "/data/nats-jetstream",
            "max_mem": 1_000_000_000,
            "max_file": 10_000_000_000,
        }
    }


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("0", 0),
        ("-12", -12),
        ("1k", 1000),
        ("1K", 1000),
        ("1kb", 1024),
        ("1Ki", 1024),
        ("1KiB", 1024),
        ("2m", 2_000_000),
        ("2MB", 2 * 1024**2),
        ("2mib", 2 * 1024**2),
        ("3g", 3 * 10**9),
        ("3Gb", 3 * 1024**3),
        ("3gi", 3 * 1024**3),
        ("1t", 10**12),
        ("1TB", 1024**4),
        ("1p", 10**15),
        ("1PiB", 1024**5),
        ("1e", 10**18),
        ("1EB", 1024**6),
        ("-1G", -(10**9)),
    ],
)
def test_integer_size_suffixes_are_decimal_alone_and_binary_with_b_or_i(
    literal: str, value: int
) -> None:
    assert parse(f"a = {literal}") == {"a": value}


def test_a_size_that_overflows_int64_wraps_around_like_go() -> None:
    assert parse("a = 10e") == {"a": 10 * 10**18 - 2**64}


@pytest.mark.parametrize("word", ["true", "TRUE", "Yes", "on", "ON"])
def test_true_words_in_any_case(word: str) -> None:
    assert parse(f"a = {word}") == {"a": True}


@pytest.mark.parametrize("word", ["false", "False", "no", "NO", "off", "Off"])
def test_false_words_in_any_case(word: str) -> None:
    assert parse(f"a = {word}") == {"a": False}


def test_scalars_of_every_type() -> None:
    text = (
        "float = 1.5\nneg_float = -0.25\nip = 127.0.0.1\nhostport = 127.0.0.1:4222\n"
        "when = 2016-05-04T18:53:41Z\nduration = 10s\nquoted = \"2m\"\nraw = 'a\\tb'\n"
        "block (\nline 1\n)\n"
    )
    assert parse(text) == {
        "float": 1.5,
        "neg_float": -0.25,
        "ip": "127.0.0.1",
        "hostport": "127.0.0.1:4222",
        "when": datetime(2016, 5, 4, 18, 53, 41, tzinfo=UTC),
        "duration": "10s",
        "quoted": "2m",
        "raw": "a\\tb",
        "block": "\nline 1\n",
    }


def test_json_file_is_a_valid_config() -> None:
    text = '{\n  "port": 4567,\n  "tags": ["a", "b"],\n  "auth": {"user": "u", "ok": true}\n}\n'
    assert parse(text) == {"port": 4567, "tags": ["a", "b"], "auth": {"user": "u", "ok": True}}


def test_containers_are_config_maps_and_lists() -> None:
    data = parse("m { l = [ {k: v}, [1 ] ] }")
    assert isinstance(data, ConfigMap)
    assert isinstance(data["m"], ConfigMap)
    assert isinstance(data["m"]["l"], ConfigList)
    assert isinstance(data["m"]["l"][0], ConfigMap)
    assert data == {"m": {"l": [{"k": "v"}, [1]]}}


def test_later_keys_replace_earlier_ones() -> None:
    assert parse("a = 1\na = 2") == {"a": 2}


def test_a_key_without_value_takes_the_next_value_set_in_its_map() -> None:
    # nats-server pairs keys and values through a stack: `a` is pending when the map closes.
    assert parse("m { a }") == {"a": {}}


def test_an_integer_with_an_unknown_suffix_sets_nothing() -> None:
    assert parse("a = 1kbi\nb = 2") == {"b": 2}


def test_extra_closing_brace_after_wrapped_top_level_is_tolerated() -> None:
    assert parse("{ a = 1 }}") == {"a": 1}


def test_empty_text_is_an_empty_map() -> None:
    assert parse("") == {}
    assert parse("# only a comment\n") == {}


# -- variables --------------------------------------------------------------------------------


def test_variable_reads_a_key_defined_earlier() -> None:
    data = parse("size = 2MB\nmax_payload = $size")
    assert data["max_payload"] == 2 * 1024**2


def test_variable_reads_enclosing_maps_innermost_first() -> None:
    data = parse("a = outer\nm { a = inner, n { x = $a } }\ny = $a")
    assert data["m"]["n"]["x"] == "inner"
    assert data["y"] == "outer"


def test_variable_falls_back_to_the_environment_parsed_as_a_value() -> None:
    data = parse(
        "port = $PORT\nauth = $AUTH\nflag = $FLAG\nname = $NAME",
        PORT="4333",
        AUTH="{user: a, pass: b}",
        FLAG="yes",
        NAME="srv",
    )
    assert data == {"port": 4333, "auth": {"user": "a", "pass": "b"}, "flag": True, "name": "srv"}


def test_config_keys_shadow_the_environment() -> None:
    assert parse("PORT = 1\nport = $PORT", PORT="2")["port"] == 1


def test_variables_are_not_expanded_inside_quotes() -> None:
    assert parse("a = 1\nb = \"$a\"\nc = '$a'") == {"a": 1, "b": "$a", "c": "$a"}


def test_variables_work_inside_arrays() -> None:
    assert parse("a = x\nl = [$a, $a ]")["l"] == ["x", "x"]


def test_bcrypt_hash_is_not_a_variable() -> None:
    hashed = "$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm5qhcCZRd05GjI/sSOT.xtiHyG"
    assert parse(f"password = {hashed}") == {"password": hashed}


def test_unresolved_variable_error_names_it_and_its_line() -> None:
    error = error_of("port = 1\nname = $NOPE", filename="my.conf")
    assert str(error) == "variable reference for 'NOPE' on line 2 can not be found"
    assert (error.file, error.line, error.column) == ("my.conf", 2, 9)


def test_a_variable_defined_after_its_use_is_unresolved() -> None:
    assert str(error_of("a = $b\nb = 1")) == "variable reference for 'b' on line 1 can not be found"


def test_only_the_2a_bcrypt_prefix_is_special() -> None:
    assert str(error_of("p = $2b$10$abc")) == (
        "variable reference for '2b$10$abc' on line 1 can not be found"
    )


def test_environment_cycles_are_detected() -> None:
    error = error_of("port = $A", A="$B", B="$A")
    assert str(error) == (
        "variable reference for 'A' on line 1 could not be parsed: "
        "variable reference for 'B' on line 1 could not be parsed: "
        "variable reference for 'A' on line 1 could not be parsed: "
        "variable reference cycle for 'A'"
    )


def test_environment_values_may_repeat_a_variable_without_a_cycle() -> None:
    assert parse("l = $L", L="[$X, $X ]", X="1")["l"] == [1, 1]


def test_an_environment_value_that_does_not_parse_is_reported() -> None:
    assert str(error_of("a = $BAD", BAD="[a,,b]")) == (
        "variable reference for 'BAD' on line 1 could not be parsed: "
        "Parse error on line 1: 'Unexpected array value terminator ','.'"
    )


def test_keys_used_as_variables_are_remembered() -> None:
    data = parse("limit = 5\nm { inner = 1, x = $inner }\nmax = $limit\nunused = 2")
    assert data.is_used_variable("limit")
    assert not data.is_used_variable("max")
    assert not data.is_used_variable("unused")
    assert data["m"].used_variables == {"inner"}


def test_redefining_a_used_variable_clears_the_mark() -> None:
    data = parse("a = 1\nb = $a\na = 2")
    assert not data.is_used_variable("a")


def test_environment_lookups_mark_nothing() -> None:
    data = parse("x = $E", E="1")
    assert data.used_variables == frozenset()


# -- includes ---------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_include_merges_keys_relative_to_the_including_file(tmp_path: Path) -> None:
    write(tmp_path / "conf" / "limits.conf", "max_payload = 2MB\n")
    main = write(tmp_path / "conf" / "main.conf", "port = 1\ninclude limits.conf\n")
    data = load_config_file(main).data
    assert data == {"port": 1, "max_payload": 2 * 1024**2}


def test_include_inside_a_block_merges_into_that_block(tmp_path: Path) -> None:
    write(tmp_path / "users.conf", "users = [ {user: a, password: b} ]\n")
    main = write(
        tmp_path / "main.conf", 'authorization {\n  include "users.conf"\n  timeout: 2\n}\n'
    )
    assert load_config_file(main).data == {
        "authorization": {"users": [{"user": "a", "password": "b"}], "timeout": 2}
    }


def test_nested_includes_are_relative_to_the_file_that_includes_them(tmp_path: Path) -> None:
    write(tmp_path / "sub" / "inner.conf", "debug = true\n")
    write(tmp_path / "sub" / "outer.conf", "include inner.conf\n")
    main = write(tmp_path / "main.conf", "include 'sub/outer.conf'\n")
    assert load_config_file(main).data == {"debug": True}


def test_an_absolute_include_path_is_joined_to_the_directory_like_nats_server(
    tmp_path: Path,
) -> None:
    write(tmp_path / "etc" / "x.conf", "joined = true\n")
    main = write(tmp_path / "main.conf", "include /etc/x.conf\n")
    assert load_config_file(main).data == {"joined": True}


def test_variables_defined_in_an_included_file_are_visible_after_it(tmp_path: Path) -> None:
    write(tmp_path / "vars.conf", "PASS = s3cret\n")
    main = write(tmp_path / "main.conf", "include vars.conf\npassword = $PASS\n")
    data = load_config_file(main).data
    assert data["password"] == "s3cret"
    assert data.is_used_variable("PASS")


def test_included_keys_remember_their_own_file(tmp_path: Path) -> None:
    included = write(tmp_path / "inc.conf", "\n  debug = true\n")
    main = write(tmp_path / "main.conf", "port = 1\ninclude inc.conf\n")
    data = load_config_file(main).data
    assert data.position("debug") == Position(str(included), 2, 3)
    assert data.position("port") == Position(str(main), 1, 0)


def test_a_missing_include_is_reported_with_the_joined_path(tmp_path: Path) -> None:
    main = write(tmp_path / "main.conf", "include nothere.conf\n")
    with pytest.raises(ConfigError) as caught:
        load_config_file(main)
    assert str(caught.value) == (
        f"error parsing include file 'nothere.conf', "
        f"open {tmp_path}/nothere.conf: no such file or directory"
    )


def test_including_a_directory_is_reported(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    main = write(tmp_path / "main.conf", "include dir\n")
    with pytest.raises(ConfigError, match=r"read .*/dir: is a directory$"):
        load_config_file(main)


def test_an_error_inside_an_included_file_points_into_that_file(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.conf", "a = 1\nb = [1,,2]\n")
    main = write(tmp_path / "main.conf", "include broken.conf\n")
    with pytest.raises(ConfigError) as caught:
        load_config_file(main)
    error = caught.value
    assert str(error) == (
        "error parsing include file 'broken.conf', "
        "Parse error on line 2: 'Unexpected array value terminator ','.'"
    )
    assert (error.file, error.line) == (str(broken), 2)
    assert error.reason == "Unexpected array value terminator ','."


def test_an_include_cycle_is_an_error_not_a_crash(tmp_path: Path) -> None:
    write(tmp_path / "b.conf", "include a.conf\n")
    main = write(tmp_path / "a.conf", "include b.conf\n")
    with pytest.raises(ConfigError, match="include cycle"):
        load_config_file(main)


def test_the_same_file_may_be_included_twice_without_a_cycle(tmp_path: Path) -> None:
    write(tmp_path / "common.conf", "x = 1\n")
    main = write(tmp_path / "main.conf", "a { include common.conf }\nb { include common.conf }\n")
    assert load_config_file(main).data == {"a": {"x": 1}, "b": {"x": 1}}


def test_text_without_a_file_includes_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "cwd.conf", "from_cwd = 1\n")
    monkeypatch.chdir(tmp_path)
    assert parse_config("include cwd.conf", env={}) == {"from_cwd": 1}


# -- positions --------------------------------------------------------------------------------


def test_every_key_remembers_where_it_was_written() -> None:
    data = parse_config("port: 4222\nauthorization {\n    user: a\n}\n", filename="s.conf")
    assert data.position("port") == Position("s.conf", 1, 0)
    assert data.position("authorization") == Position("s.conf", 2, 1)
    assert data["authorization"].position("user") == Position("s.conf", 3, 5)
    assert data.position("missing") is None
    assert str(data.position("port")) == "s.conf:1:0"


def test_array_elements_remember_positions_like_nats_server() -> None:
    data = parse_config("l = [\n  one\n  {k: v}\n]", filename="s.conf")
    assert data["l"].position(0) == Position("s.conf", 2, 3)
    assert data["l"].position(1) == Position("s.conf", 3, 9)  # after the map's `}`
    assert data["l"].position(5) is None


def test_a_value_taken_from_a_variable_is_placed_at_its_key() -> None:
    data = parse_config("a = 1\n  b = $a", filename="s.conf")
    assert data.position("b") == Position("s.conf", 2, 3)


# -- errors -----------------------------------------------------------------------------------


def test_lexer_errors_read_like_nats_server_and_know_their_place() -> None:
    error = error_of("port: 4222\n  bad: [1,,2]", filename="bad.conf")
    assert str(error) == "Parse error on line 2: 'Unexpected array value terminator ','.'"
    assert (error.file, error.line, error.column) == ("bad.conf", 2, 12)
    assert error.reason == "Unexpected array value terminator ','."
    assert error.location == "bad.conf:2:12"
    assert error.with_location() == f"bad.conf:2:12: {error}"


def test_text_ending_right_after_a_key_is_invalid() -> None:
    error = error_of("port: 4222\nfoo", filename="t.conf")
    assert str(error) == "config is invalid (t.conf:2:4)"
    assert (error.line, error.column) == (2, 4)


def test_text_ending_after_a_separator_gives_the_key_an_empty_string() -> None:
    assert parse("port: 4222\nfoo =") == {"port": 4222, "foo": ""}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a = 99999999999999999999", "integer '99999999999999999999' is out of the range"),
        ("a = -9223372036854775809", "integer '-9223372036854775809' is out of the range"),
        ("a = \u0663", "expected integer, but got '\u0663'"),
        ("a = 1\u0663", "expected integer, but got '1\u0663'"),
        ("a = 1" + "0" * 400 + ".0", "float '1" + "0" * 400 + ".0' is out of the range"),
        ("a = 1.\u0663", "expected float, but got '1.\u0663'"),
        (
            "a = 2016-13-04T18:53:41Z",
            "expected Zulu formatted DateTime, but got '2016-13-04T18:53:41Z'",
        ),
        (
            "a = 2015-02-29T00:00:00Z",
            "expected Zulu formatted DateTime, but got '2015-02-29T00:00:00Z'",
        ),
        (
            "a = 2016-05-04T18:53:60Z",
            "expected Zulu formatted DateTime, but got '2016-05-04T18:53:60Z'",
        ),
    ],
)
def test_value_errors_read_like_nats_server(text: str, message: str) -> None:
    error = error_of(text, filename="v.conf")
    assert str(error) == message
    assert (error.file, error.line, error.column) == ("v.conf", 1, 4)


def test_int64_bounds_are_accepted() -> None:
    assert parse("a = 9223372036854775807\nb = -9223372036854775808") == {
        "a": 2**63 - 1,
        "b": -(2**63),
    }


def test_year_zero_which_go_accepts_is_kept_as_text() -> None:
    assert parse("a = 0000-01-01T00:00:00Z") == {"a": "0000-01-01T00:00:00Z"}


# -- loading files and the digest --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "digest"),
    [  # digests printed by `nats-server -t` 2.15.1 for these files
        ("port: 4222", "797533ebd0dfba7d34a0f9337ecf147e442871f48ddfd07ed751575a5737267e"),
        ('{"port": 4567}', "04790c7665ba519766c9122d2540b23730bf83f693ece549f2c2583010937247"),
        (
            'var1 = "x"\npid_file: $var1\n',
            "83a753ba6048b23238e7ac6fa83ebcae9c6853121d341cc3b625b8a059428400",
        ),
        (
            'pid_file: "\\xff"',
            "643f480115aa49a452b3429320aac6204e0aca76fc7249545574b9da9b2e2704",
        ),
    ],
)
def test_load_config_file_digest_matches_nats_server(
    tmp_path: Path, text: str, digest: str
) -> None:
    path = write(tmp_path / "t.conf", text)
    loaded = load_config_file(path)
    assert loaded.digest == f"sha256:{digest}"
    assert loaded.path == str(path)


def test_loading_a_missing_file_reads_like_go(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_file(tmp_path / "none.conf")
    assert str(caught.value) == f"open {tmp_path}/none.conf: no such file or directory"


def test_load_config_file_resolves_variables_from_the_given_environment(tmp_path: Path) -> None:
    path = write(tmp_path / "t.conf", "port: $P\n")
    assert load_config_file(path, env={"P": "7"}).data == {"port": 7}


def test_digest_is_sha256_of_go_json_with_a_newline() -> None:
    data = parse("b = 1\na = [x, 1.5]")
    expected = hashlib.sha256(b'{"a":["x",1.5],"b":1}\n').hexdigest()
    assert config_digest(data) == f"sha256:{expected}"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (1.5, "1.5"),
        (1.0, "1"),
        (-0.0, "-0"),
        (0.000001, "0.000001"),
        (0.0000001, "1e-7"),
        (1.2345678901234569e23, "1.2345678901234569e+23"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1e-10, "1e-10"),
        (True, "true"),
        (-5, "-5"),
        ("<&>", '"\\u003c\\u0026\\u003e"'),
        ("\x01\t\b\f\n\r\x7f", '"\\u0001\\t\\b\\f\\n\\r\x7f"'),
        ("\u2028\u2029é", '"\\u2028\\u2029é"'),
        ('"\\/', '"\\"\\\\/"'),
        (b"\xff".decode("utf-8", "surrogateescape"), '"\ufffd"'),
        (datetime(2016, 5, 4, 18, 53, 41, tzinfo=UTC), '"2016-05-04T18:53:41Z"'),
        ({"b": 1, "a": {}, "é": [], "z": []}, '{"a":{},"b":1,"z":[],"é":[]}'),
    ],
)
def test_go_json_encodes_like_go(value: object, encoded: str) -> None:
    assert go_json(value) == encoded


def test_go_json_handles_nesting_deeper_than_python_recursion() -> None:
    depth = 5000
    data = parse("a = " + "[" * depth + "]" * depth)
    assert go_json(data) == '{"a":' + "[" * depth + "]" * depth + "}"
