"""Fuzzing the config language: whatever the input, parsing ends, and the only exception
is ConfigError. Accepted input must also digest (the encoder sees every value type)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pynats.server.conf import ConfigError, config_digest, parse_config
from pynats.server.conf.lexer import TokenKind, tokenize

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "conf"
VALID_SAMPLES = sorted(SAMPLES.glob("ok_*.conf"))

# Characters that steer the lexer, plus words and fragments that open its special paths.
CONFIG_PIECES = [
    *"{}[]()\"':=,;#/\\$ \n\t\r.-+",
    *"ab01kKeEtx",
    "\x00",
    "\xa0",
    "\u2028",
    "é",
    "\u0663",
    "include ",
    "port",
    "true",
    "2016-05-04T18:53:41Z",
    "$E",
    "$2a$",
    "(\n",
    "\n)",
    "\\x4",
    "\\t",
    "1.2.3.4",
    "1kb",
    "//",
]
config_like_text = st.lists(st.sampled_from(CONFIG_PIECES), max_size=60).map("".join)
FUZZ_SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def parse_or_config_error(data: str | bytes, directory: Path) -> None:
    """Parse inside an empty directory (includes find nothing) with a tiny environment."""
    try:
        parsed = parse_config(data, filename=str(directory / "fuzz.conf"), env={"E": "{a: [1 ]}"})
    except ConfigError as exc:
        assert str(exc)
        return
    assert config_digest(parsed).startswith("sha256:")


@pytest.fixture(scope="module")
def empty_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FUZZ_SETTINGS
@given(text=st.text(max_size=200))
def test_random_text_parses_or_raises_config_error(text: str, empty_dir: Path) -> None:
    parse_or_config_error(text, empty_dir)


@FUZZ_SETTINGS
@given(data=st.binary(max_size=200))
def test_random_bytes_parse_or_raise_config_error(data: bytes, empty_dir: Path) -> None:
    parse_or_config_error(data, empty_dir)


@FUZZ_SETTINGS
@given(text=config_like_text)
def test_config_like_text_parses_or_raises_config_error(text: str, empty_dir: Path) -> None:
    parse_or_config_error(text, empty_dir)


@FUZZ_SETTINGS
@given(text=config_like_text)
def test_lexer_always_ends_with_one_eof_or_error(text: str) -> None:
    tokens = tokenize(text)
    assert tokens[-1].kind in (TokenKind.EOF, TokenKind.ERROR)
    assert all(t.kind not in (TokenKind.EOF, TokenKind.ERROR) for t in tokens[:-1])


edits = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace"]),
        st.integers(min_value=0),
        st.sampled_from(sorted({*b"{}[]()\"':=,;#/\\$ \n\t.-x1", 0x00, 0xFF, 0xC3})),
    ),
    min_size=1,
    max_size=4,
)


def mutate(original: bytes, changes: list[tuple[str, int, int]]) -> bytes:
    data = bytearray(original)
    for operation, where, byte in changes:
        index = where % (len(data) + 1)
        if operation == "insert":
            data.insert(index, byte)
        elif data:
            index = min(index, len(data) - 1)
            if operation == "delete":
                del data[index]
            else:
                data[index] = byte
    return bytes(data)


@FUZZ_SETTINGS
@given(sample=st.sampled_from(VALID_SAMPLES), changes=edits)
def test_mutated_valid_configs_parse_or_raise_config_error(
    sample: Path, changes: list[tuple[str, int, int]], empty_dir: Path
) -> None:
    parse_or_config_error(mutate(sample.read_bytes(), changes), empty_dir)


def test_pathological_nesting_does_not_exhaust_the_stack(empty_dir: Path) -> None:
    for text in ["a = " + "[" * 20000, "a = " + "{b: " * 20000, "{" * 20000]:
        parse_or_config_error(text, empty_dir)
