"""The config lexer: which tokens each lexical rule produces, where, and its error messages."""

from __future__ import annotations

import pytest

from pynats.server.conf.lexer import Token, TokenKind, tokenize

K = TokenKind


def kinds_and_texts(source: str | bytes) -> list[tuple[TokenKind, str]]:
    """Tokens without positions, comments and the final EOF: what most rules are about."""
    return [
        (token.kind, token.text)
        for token in tokenize(source)
        if token.kind not in (K.COMMENT, K.EOF)
    ]


def error_of(source: str | bytes) -> Token:
    last = tokenize(source)[-1]
    assert last.kind is K.ERROR, f"expected a lexer error, got {last}"
    return last


@pytest.mark.parametrize(
    "text", ["port: 4222", "port = 4222", "port 4222", "port:4222", "port\t=\t4222"]
)
def test_key_and_value_may_be_separated_by_colon_equals_or_space(text: str) -> None:
    assert kinds_and_texts(text) == [(K.KEY, "port"), (K.INTEGER, "4222")]


def test_key_and_value_may_be_on_different_lines_without_a_separator() -> None:
    assert kinds_and_texts("port\n\n  4222") == [(K.KEY, "port"), (K.INTEGER, "4222")]


@pytest.mark.parametrize("text", ['"my key": 1', "'my key': 1"])
def test_keys_may_be_quoted_and_keep_spaces(text: str) -> None:
    assert kinds_and_texts(text) == [(K.KEY, "my key"), (K.INTEGER, "1")]


@pytest.mark.parametrize("comment", ["# hash", "// slashes"])
def test_comments_run_to_the_end_of_the_line(comment: str) -> None:
    tokens = tokenize(f"{comment}\na = 1 {comment}\n")
    assert [(t.kind, t.text) for t in tokens if t.kind is K.COMMENT] == [
        (K.COMMENT, comment.lstrip("#/")),
        (K.COMMENT, comment.lstrip("#/")),
    ]
    assert kinds_and_texts(f"{comment}\na = 1 {comment}\n") == [(K.KEY, "a"), (K.INTEGER, "1")]


@pytest.mark.parametrize("terminator", [";", ",", "\n", "\r\n", " ;"])
def test_values_end_with_newline_semicolon_or_comma(terminator: str) -> None:
    assert kinds_and_texts(f"a = 1{terminator}b = 2") == [
        (K.KEY, "a"),
        (K.INTEGER, "1"),
        (K.KEY, "b"),
        (K.INTEGER, "2"),
    ]


def test_blocks_produce_map_tokens_with_keys_inside() -> None:
    assert kinds_and_texts("tls { cert: a; key = b }") == [
        (K.KEY, "tls"),
        (K.MAP_START, ""),
        (K.KEY, "cert"),
        (K.STRING, "a"),
        (K.KEY, "key"),
        (K.STRING, "b"),
        (K.MAP_END, ""),
    ]


def test_top_level_may_be_wrapped_in_braces_so_json_lexes() -> None:
    assert kinds_and_texts('{"port": 4567, "debug": true}') == [
        (K.KEY, "port"),
        (K.INTEGER, "4567"),
        (K.KEY, "debug"),
        (K.BOOL, "true"),
    ]


def test_arrays_nest_maps_and_arrays_with_comments_between_elements() -> None:
    assert kinds_and_texts('a = [ 1, "two" # c\n [x], {k: v} ]') == [
        (K.KEY, "a"),
        (K.ARRAY_START, ""),
        (K.INTEGER, "1"),
        (K.STRING, "two"),
        (K.ARRAY_START, ""),
        (K.STRING, "x"),
        (K.ARRAY_END, ""),
        (K.MAP_START, ""),
        (K.KEY, "k"),
        (K.STRING, "v"),
        (K.MAP_END, ""),
        (K.ARRAY_END, ""),
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ('"tab\\there"', "tab\there"),
        ('"nl\\ncr\\r"', "nl\ncr\r"),
        ('"quote\\" backslash\\\\"', 'quote" backslash\\'),
        ('"hex \\x41\\x42"', "hex AB"),
        ('"utf-8 bytes \\xc3\\xa9"', "utf-8 bytes é"),
        ("'single \\t stays raw'", "single \\t stays raw"),
        ("bare\\tword", "bare\tword"),
        ('"# not a comment"', "# not a comment"),
    ],
)
def test_double_quotes_and_bare_words_apply_escapes_single_quotes_do_not(
    value: str, text: str
) -> None:
    assert kinds_and_texts(f"a = {value}") == [(K.KEY, "a"), (K.STRING, text)]


def test_a_hex_escape_that_is_not_utf8_keeps_the_byte() -> None:
    (_, (kind, text)) = kinds_and_texts('a = "\\xff"')
    assert kind is K.STRING
    assert text.encode("utf-8", "surrogateescape") == b"\xff"


@pytest.mark.parametrize("word", ["true", "TRUE", "yes", "Yes", "on", "false", "No", "OFF"])
def test_unquoted_boolean_words_in_any_case_are_booleans(word: str) -> None:
    assert kinds_and_texts(f"a = {word}") == [(K.KEY, "a"), (K.BOOL, word)]


def test_quoted_boolean_words_are_strings() -> None:
    assert kinds_and_texts('a = "true"') == [(K.KEY, "a"), (K.STRING, "true")]


@pytest.mark.parametrize(
    "number", ["0", "42", "-1", "1k", "1K", "1kb", "2KiB", "3mi", "1G", "4e", "5EB"]
)
def test_integers_keep_their_size_suffix_for_the_parser(number: str) -> None:
    assert kinds_and_texts(f"a = {number}") == [(K.KEY, "a"), (K.INTEGER, number)]


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("1.5", K.FLOAT),
        ("-0.25", K.FLOAT),
        ("127.0.0.1", K.STRING),
        ("127.0.0.1:4222", K.STRING),
        ("10s", K.STRING),
        ("1k5", K.STRING),
        ("2016-05-04T18:53:41Z", K.DATETIME),
    ],
)
def test_values_starting_with_a_digit_become_numbers_dates_ips_or_strings(
    value: str, kind: TokenKind
) -> None:
    assert kinds_and_texts(f"a = {value}") == [(K.KEY, "a"), (kind, value)]


def test_raw_block_runs_until_a_closing_paren_alone_on_its_line() -> None:
    text = "a (\nline (one)\n  line two)\n)\nb = 1"
    assert kinds_and_texts(text) == [
        (K.KEY, "a"),
        (K.STRING, "\nline (one)\n  line two)\n"),
        (K.KEY, "b"),
        (K.INTEGER, "1"),
    ]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("include a.conf", "a.conf"),
        ('include "dir/with space.conf"', "dir/with space.conf"),
        ("include 'b.conf'", "b.conf"),
        ("INCLUDE c.conf", "c.conf"),
    ],
)
def test_include_keyword_takes_a_path(text: str, path: str) -> None:
    assert kinds_and_texts(text) == [(K.INCLUDE, path)]


def test_include_works_inside_a_block() -> None:
    assert kinds_and_texts("auth { include users.conf }") == [
        (K.KEY, "auth"),
        (K.MAP_START, ""),
        (K.INCLUDE, "users.conf"),
        (K.MAP_END, ""),
    ]


def test_include_with_a_separator_is_an_ordinary_key() -> None:
    assert kinds_and_texts("include: x") == [(K.KEY, "include"), (K.STRING, "x")]


def test_dollar_words_are_variables_but_not_inside_quotes() -> None:
    assert kinds_and_texts("a = $NAME") == [(K.KEY, "a"), (K.VARIABLE, "NAME")]
    assert kinds_and_texts('a = "$NAME"') == [(K.KEY, "a"), (K.STRING, "$NAME")]
    assert kinds_and_texts("a = '$NAME'") == [(K.KEY, "a"), (K.STRING, "$NAME")]


def test_positions_count_like_nats_server_zero_based_on_line_one_only() -> None:
    tokens = tokenize("port: 4222\n  debug: true\n")
    positions = [(t.kind, t.line, t.column) for t in tokens if t.kind is K.KEY]
    assert positions == [(K.KEY, 1, 0), (K.KEY, 2, 3)]


def test_positions_are_byte_offsets() -> None:
    tokens = tokenize("é = 1\n  ü = 2")
    assert [(t.text, t.line, t.column) for t in tokens if t.kind is K.KEY] == [
        ("é", 1, 0),
        ("ü", 2, 3),
    ]


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("a = [1,,2]", 1, 8, "Unexpected array value terminator ','."),
        ('a = "never closed', 1, 17, "Unexpected EOF."),
        ("a =\n1", 2, 1, "Expected value but found new line"),
        (
            "a = 1 b",
            1,
            7,
            "Expected a top-level value to end with a new line, comment or EOF, but got 'b' instead.",
        ),
        ("a = .5", 1, 5, "Floats must start with a digit"),
        ("a = 1.x", 1, 7, "Floats must have a digit after the '.', but got 'x' instead."),
        ("a = -x", 1, 6, "Expected a digit but got 'x'."),
        ("a = 2016-05-04", 1, 14, "Expected 'T' in ISO8601 datetime, but found '\x00' instead."),
        ("a = 123-4", 1, 8, "All ISO8601 dates must be in full Zulu form."),
        (
            'a = "\\q"',
            1,
            7,
            "Invalid escape character 'q'. Only the following escape characters are allowed: \\xXX, \\t, \\n, \\r, \\\", \\\\.",
        ),
        ('a = "\\xZZ"', 1, 9, "Expected two hexadecimal digits after '\\x', but got 'ZZ'"),
        ('a = "\\x4\n"', 2, 1, "Expected two hexadecimal digits after '\\x', but hit end of line"),
        ("a (\nno end", 2, 7, "Unexpected EOF processing block."),
        (": 1", 1, 0, "Unexpected key separator ':'"),
        ("m { = 1 }", 1, 4, "Unexpected key separator '='."),
        ("m { ] }", 1, 4, "Unexpected array end ']' processing map."),
        ("m {\n a = 1\n", 3, 1, "Unexpected EOF processing map."),
        ("m { a", 1, 5, "Unexpected EOF processing map key."),
        ("m { 'a", 1, 6, "Unexpected EOF processing quoted map key."),
        ('m { "a', 1, 6, "Unexpected EOF processing double quoted map key."),
        ("m { a = , }", 1, 9, 'Unexpected map value terminator ",".'),
        (
            "m { a = 1 b = 2 }",
            1,
            11,
            'Expected a map value terminator "," or a map terminator "}", but got \'b\' instead.',
        ),
        (
            "a = [1 2]",
            1,
            8,
            'Expected an array value terminator "," or an array terminator "]", but got \'2\' instead.',
        ),
        (
            "{ a = 1 b = 2 }",
            1,
            9,
            "Expected a block-level value to end with a new line, comment or EOF, but got 'b' instead.",
        ),
        ("include [x]", 1, 9, "Expected include value but found start of an array"),
        ("include {x}", 1, 9, "Expected include value but found start of a map"),
        ("include (x)", 1, 9, "Expected include value but found start of a block"),
        ("include 5.conf", 1, 9, "Expected include value but found start of a number"),
        ("include \\x", 1, 9, "Expected include value but found escape sequence"),
        ("include 'x", 1, 10, "Unexpected EOF in quoted include"),
        ('include "x', 1, 10, "Unexpected EOF in double quoted include"),
        ("/a = 1", 1, 1, "Unexpected EOF."),
    ],
)
def test_each_lexer_error_has_nats_server_text_line_and_column(
    text: str, line: int, column: int, message: str
) -> None:
    error = error_of(text)
    assert (error.text, error.line, error.column) == (message, line, column)


def test_a_newline_in_an_error_is_shown_escaped() -> None:
    assert error_of("a = [1 x\n").text.endswith("but got 'x' instead.")
    assert error_of("a = 2016-05-04\n").text == (
        "Expected 'T' in ISO8601 datetime, but found '\\n' instead."
    )


def test_a_nul_byte_reads_like_the_end_of_input() -> None:
    assert kinds_and_texts("a = 1\x00") == [(K.KEY, "a"), (K.INTEGER, "1")]
    assert tokenize("a = 1\x00")[-1].kind is K.EOF
    error = error_of("a = 1\n\x00b = 2")
    assert (error.text, error.line) == ("Unexpected EOF.", 2)


def test_invalid_utf8_is_kept_and_never_raises() -> None:
    tokens = tokenize(b"a = caf\xc3\nb = \xff\xfe")
    texts = [t.text.encode("utf-8", "surrogateescape") for t in tokens if t.kind is K.STRING]
    assert texts == [b"caf\xc3", b"\xff\xfe"]


def test_every_token_list_ends_with_exactly_one_eof_or_error() -> None:
    for text in ["", "a = 1", "a = [", "a = {", "}", "{", "x y z"]:
        tokens = tokenize(text)
        assert tokens[-1].kind in (K.EOF, K.ERROR)
        assert [t.kind for t in tokens[:-1]].count(K.EOF) == 0
