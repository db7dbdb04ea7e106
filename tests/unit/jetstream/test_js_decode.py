"""Strict request decoding: syntax and type errors worded as nats-server words them (the
expected texts were taken from nats-server 2.15.1 answers)."""

from __future__ import annotations

import pytest

from pynats.jetstream import decode as d
from pynats.jetstream.errors import ApiError

SPEC = d.Struct(
    "StreamConfigRequest", {"name": d.STRING, "max_msgs": d.INT64, "subjects": d.STRINGS}
)


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        (b"not json", "invalid character 'o' in literal null (expecting 'u') at offset 2"),
        (b"{", "unexpected EOF"),
        (b'{"name":', "unexpected EOF"),
        (b'{"name" "x"}', "invalid character '\"' after object key at offset 9"),
        (
            b'{"name":"x",}',
            "invalid character '}' looking for beginning of object key string at offset 13",
        ),
        (b'{"name":"x"} x', "invalid character 'x' looking for beginning of value at offset 14"),
        (
            b"{name:1}",
            "invalid character 'n' looking for beginning of object key string at offset 2",
        ),
        (b'{"a":tru}', "invalid character '}' in literal true (expecting 'e') at offset 9"),
        (b'{"a":1.}', "invalid character '}' in numeric literal at offset 8"),
        (b'{"a":-}', "invalid character '}' in numeric literal at offset 7"),
        (b'{"a":"\x01"}', "invalid character '\\x01' in string at offset 7"),
        (b'{"a":"\\q"}', "invalid escape sequence `\\q` in string at offset 8"),
        (b"[1 2]", "invalid character '2' after array element at offset 4"),
        (b'{"a":1 "b":2}', "invalid character '\"' after object key:value pair at offset 8"),
        (b'{"max_msgs":01}', "invalid character '1' after object key:value pair at offset 14"),
    ],
)
def test_syntax_errors_match_nats_server(payload: bytes, text: str) -> None:
    with pytest.raises(ApiError) as err:
        d.decode(payload, SPEC)
    assert (err.value.err_code, err.value.description) == (10025, "invalid JSON: " + text)


def test_non_object_requests() -> None:
    with pytest.raises(ApiError) as err:
        d.decode(b'"str"', SPEC)
    assert err.value.description == (
        "invalid JSON: json: cannot unmarshal string into Go value of type server.StreamConfigRequest"
    )


def test_empty_and_null_are_empty_requests() -> None:
    assert d.decode(b"", SPEC) == {}
    assert d.decode(b"  ", SPEC) == {}
    assert d.decode(b"null", SPEC) == {}
    assert d.decode(b'{"name":null}', SPEC) == {}


def test_non_strict_mode_ignores_unknown_fields() -> None:
    assert d.decode(b'{"name":"a","x":1}', SPEC, strict=False) == {"name": "a"}
    with pytest.raises(ApiError):
        d.decode(b'{"name":"a","x":1}', SPEC)


def test_integer_ranges_and_kinds() -> None:
    int32 = d.Struct("R", {"v": d.INT32, "u": d.UINT64})
    with pytest.raises(ApiError) as err:
        d.decode(b'{"v":4294967296}', int32)
    assert err.value.description.endswith(
        "cannot unmarshal number 4294967296 into Go struct field R.v of type int32"
    )
    with pytest.raises(ApiError) as err:
        d.decode(b'{"u":-1}', int32)
    assert "number -1" in err.value.description
    with pytest.raises(ApiError) as err:
        d.decode(b'{"subjects":[1]}', SPEC)
    assert err.value.description.endswith(
        "cannot unmarshal number into Go struct field StreamConfigRequest.subjects of type string"
    )
