"""Lexer for the nats-server configuration language: bytes or text in, tokens out (sans-I/O).

The language is forgiving and full of corners (the parser's docstring lists the strangest),
and a pynats server must accept exactly the files nats-server accepts. So this lexer is a state
machine whose cursor behaves like nats-server's: it walks UTF-8 bytes rune by rune, a NUL
byte reads like the end of input, it can step back over the last rune only, and positions
are byte offsets. Each state is a method that consumes input, may emit tokens, and returns
the next state; `after` is the stack of states to resume once a nested value is done.

Token positions follow nats-server's arithmetic, because later errors (`unknown field`)
must print the same `file:line:column`: `line` is the line where the token ends and
`column` is the byte offset of its start minus the offset of the newline that began its
line, which makes columns 0-based on line 1 and 1-based after it. Errors carry the line and
the column of the last byte read.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

EOF = "\x00"
"""What `_Lexer.next` returns at the end of input; a literal NUL byte reads the same."""

_SPACE = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") | frozenset(
    chr(c) for c in range(0x2000, 0x200B)
)
_BLANK = frozenset(" \t")
_NEWLINE = frozenset("\n\r")
_KEY_SEPARATORS = frozenset("=:")
_SIZE_LETTERS = frozenset("kKmMgGtTpPeE")
_SIZE_TAILS = frozenset("bBiI")
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
# The language's booleans: the lexer tells them from bare strings, the parser reads them.
TRUE_WORDS = frozenset(("true", "yes", "on"))
FALSE_WORDS = frozenset(("false", "no", "off"))
BOOL_WORDS = TRUE_WORDS | FALSE_WORDS
_DATE_SHAPE = "00-00T00:00:00Z"
_ESCAPES = {"t": b"\t", "n": b"\n", "r": b"\r", '"': b'"', "\\": b"\\"}
_NUMBER_ENDS = frozenset("\n\r};, \t") | {EOF}
_BARE_STRING_ENDS = frozenset("\n\r;,]} \t") | {EOF}


class TokenKind(enum.Enum):
    """What a token is; the parser builds values from these."""

    KEY = "key"
    STRING = "string"
    BOOL = "bool"
    INTEGER = "integer"
    FLOAT = "float"
    DATETIME = "datetime"
    ARRAY_START = "array_start"
    ARRAY_END = "array_end"
    MAP_START = "map_start"
    MAP_END = "map_end"
    VARIABLE = "variable"
    INCLUDE = "include"
    COMMENT = "comment"
    ERROR = "error"
    EOF = "eof"


@dataclass(frozen=True, slots=True)
class Token:
    """One lexeme. `text` is decoded (escapes applied, quotes removed, `$` dropped from
    variables); bytes that are not UTF-8 survive as surrogate escapes."""

    kind: TokenKind
    text: str
    line: int
    column: int


def is_space(r: str) -> bool:
    """Unicode white space as nats-server sees it (Go's `unicode.IsSpace`)."""
    return r in _SPACE


def is_digit(r: str) -> bool:
    """Any Unicode decimal digit: the lexer lets them into numbers, the parser rejects them."""
    return r.isdecimal()


def tokenize(source: str | bytes) -> list[Token]:
    """All tokens of `source`, ending with one EOF or ERROR token."""
    return _Lexer(_as_bytes(source)).run()


def _as_bytes(source: str | bytes) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        return source.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return source.encode("utf-8", "surrogatepass")


def decode(raw: bytes) -> str:
    """Config bytes as text; invalid UTF-8 bytes become surrogate escapes, not errors."""
    return raw.decode("utf-8", "surrogateescape")


def _lead_length(byte: int) -> int:
    if 0xC2 <= byte <= 0xDF:
        return 2
    if 0xE0 <= byte <= 0xEF:
        return 3
    if 0xF0 <= byte <= 0xF4:
        return 4
    return 1


def _rune_at(data: bytes, pos: int) -> tuple[str, int]:
    """The rune starting at `pos` and its width; an invalid sequence is U+FFFD of width 1."""
    byte = data[pos]
    if byte < 0x80:
        return chr(byte), 1
    width = _lead_length(byte)
    if width > 1:
        try:
            return data[pos : pos + width].decode("utf-8"), width
        except UnicodeDecodeError:
            pass
    return "\ufffd", 1


def _shown(r: str) -> str:
    """A rune as nats-server quotes it inside an error message."""
    return "\\n" if r == "\n" else r


class _LexFailure(Exception):
    """Raised by a state to end lexing with an ERROR token."""


State = Callable[[], "State | None"]


class _Lexer:
    """Cursor plus states. `start` marks where the pending lexeme began, `pos` the next
    byte; `line_start`/`token_line_start` remember newlines for nats-server's columns."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.start = 0
        self.pos = 0
        self.width = 0
        self.line = 1
        self.line_start = 0
        self.token_line_start = 0
        self.parts: list[bytes] = []
        self.string_state: State = self._bare_string
        self.after: list[State] = []
        self.tokens: list[Token] = []

    def run(self) -> list[Token]:
        state: State | None = self._top
        try:
            while state is not None:
                state = state()
        except _LexFailure:
            pass
        return self.tokens

    # -- cursor -----------------------------------------------------------------------------

    def next(self) -> str:
        if self.pos >= len(self.data):
            self.width = 0
            return EOF
        if self.data[self.pos] == 0x0A:
            self.line += 1
            self.line_start = self.pos
        r, self.width = _rune_at(self.data, self.pos)
        self.pos += self.width
        return r

    def backup(self) -> None:
        self.pos -= self.width
        if self.pos < len(self.data) and self.data[self.pos] == 0x0A:
            self.line -= 1

    def peek(self) -> str:
        r = self.next()
        self.backup()
        return r

    def ignore(self) -> None:
        self.start = self.pos
        self.token_line_start = self.line_start

    def pending(self) -> bytes:
        return self.data[self.start : self.pos]

    def emit(self, kind: TokenKind, *, clear_parts: bool = False) -> None:
        raw = b"".join(self.parts) + self.pending()
        if clear_parts:
            self.parts = []
        column = self.pos - self.token_line_start - len(raw)
        self.tokens.append(Token(kind, decode(raw), self.line, column))
        self.start = self.pos
        self.token_line_start = self.line_start

    def emit_string(self) -> None:
        self.emit(TokenKind.STRING, clear_parts=True)

    def fail(self, message: str) -> NoReturn:
        column = self.pos - self.line_start
        self.tokens.append(Token(TokenKind.ERROR, message, self.line, column))
        raise _LexFailure

    def push(self, state: State) -> None:
        self.after.append(state)

    def pop(self) -> State:
        if not self.after:
            self.fail("BUG in lexer: no states to pop.")
        return self.after.pop()

    def finish(self) -> None:
        """Emit EOF, or fail if something was read since the last token."""
        if self.pos > self.start:
            self.fail("Unexpected EOF.")
        self.emit(TokenKind.EOF)

    def slash_comment(self, resume: State) -> State | None:
        """After a `/`: the comment state if a second `/` follows, else None (one rune read)."""
        if self.next() == "/":
            self.push(resume)
            return self._comment
        self.backup()
        return None

    # -- top level and `{ }`-wrapped top level ----------------------------------------------

    def _top(self) -> State | None:
        r = self.next()
        if is_space(r):
            self.ignore()
            return self._top
        if r == "{":
            self.push(self._top)
            self.ignore()
            return self._block_start
        if r == "#":
            self.push(self._top)
            return self._comment
        if r == "/" and (comment := self.slash_comment(self._top)):
            return comment
        if r in ("/", EOF):
            self.finish()
            return None
        self.backup()
        self.push(self._top_value_end)
        return self._key_start

    def _top_value_end(self) -> State:
        r = self.next()
        if r == "#":
            self.push(self._top)
            return self._comment
        if r == "/" and (comment := self.slash_comment(self._top)):
            return comment
        if r == "/" or r in _BLANK:
            return self._top_value_end
        if r in _NEWLINE or r == EOF or r in ";,}":
            self.ignore()
            return self._top
        self.fail(
            "Expected a top-level value to end with a new line, comment or EOF, "
            f"but got '{_shown(r)}' instead."
        )

    def _block_start(self) -> State | None:
        r = self.next()
        if is_space(r):
            self.ignore()
            return self._block_start
        if r == "{":
            self.push(self._block_end)
            self.ignore()
            return self._block_start
        if r == "}":
            self.ignore()
            return self.pop()
        if r == "#":
            self.push(self._block_start)
            return self._comment
        if r == "/" and (comment := self.slash_comment(self._block_start)):
            return comment
        if r in ("/", EOF):
            self.finish()
            return None
        self.backup()
        self.push(self._block_value_end)
        return self._key_start

    def _block_value_end(self) -> State:
        r = self.next()
        if r == "#":
            self.push(self._block_value_end)
            return self._comment
        if r == "/" and (comment := self.slash_comment(self._block_value_end)):
            return comment
        if r == "/" or r in _BLANK:
            return self._block_value_end
        if r in _NEWLINE or r in ";,":
            self.ignore()
            return self._block_start
        if r == "}":
            self.backup()
            return self._block_end
        self.fail(
            "Expected a block-level value to end with a new line, comment or EOF, "
            f"but got '{_shown(r)}' instead."
        )

    def _block_end(self) -> State:
        r = self.next()
        if r == "#":
            self.push(self._block_start)
            return self._comment
        if r == "/" and (comment := self.slash_comment(self._block_start)):
            return comment
        if r == "/" or r in _NEWLINE or r in _BLANK:
            return self._block_end
        if r in ";,":
            self.ignore()
            return self._block_start
        if r == "}":
            self.ignore()
            return self.pop()
        self.fail(f"Expected a block-level to end with a '}}', but got '{_shown(r)}' instead.")

    # -- keys outside maps ------------------------------------------------------------------

    def _key_start(self) -> State:
        r = self.peek()
        if r in _KEY_SEPARATORS:
            self.fail(f"Unexpected key separator '{r}'")
        if is_space(r):
            self.next()
            self.ignore()
            return self._key_start
        if r in "\"'":
            self.next()
            self.ignore()
            return self._quoted_key(r)
        self.ignore()
        self.next()
        return self._key

    def _quoted_key(self, quote: str) -> State:
        def state() -> State | None:
            r = self.peek()
            if r == quote:
                self.emit(TokenKind.KEY)
                self.next()
                self.ignore()
                return self._key_end
            if r == EOF:
                self.finish()
                return None
            self.next()
            return state

        return state

    def _key(self) -> State:
        r = self.peek()
        if is_space(r):
            return self._keyword_or_key(self._key_end, None)
        if r in _KEY_SEPARATORS or r == EOF:
            self.emit(TokenKind.KEY)
            return self._key_end
        self.next()
        return self._key

    def _keyword_or_key(self, key_end: State, resume: State | None) -> State:
        """A bare word followed by space is either the `include` keyword or a key."""
        if decode(self.pending()).lower() == "include":
            self.ignore()
            if resume is not None:
                self.push(resume)
            return self._include_start
        self.emit(TokenKind.KEY)
        return key_end

    def _key_end(self) -> State | None:
        r = self.next()
        if is_space(r):
            self.ignore()
            return self._key_end
        if r in _KEY_SEPARATORS:
            self.ignore()
            return self._value
        if r == EOF:
            self.emit(TokenKind.EOF)
            return None
        self.backup()
        return self._value

    # -- include ----------------------------------------------------------------------------

    def _include_start(self) -> State:
        r = self.next()
        if r in _BLANK:
            self.ignore()
            return self._include_start
        self.backup()
        return self._include

    def _include(self) -> State:
        r = self.next()
        if r == "'":
            self.ignore()
            return self._quoted_include("'", "Unexpected EOF in quoted include")
        if r == '"':
            self.ignore()
            return self._quoted_include('"', "Unexpected EOF in double quoted include")
        refusals = {
            "[": "start of an array",
            "{": "start of a map",
            "(": "start of a block",
            "\\": "escape sequence",
        }
        if r in refusals:
            self.fail(f"Expected include value but found {refusals[r]}")
        if is_digit(r) or r == "-":
            self.fail("Expected include value but found start of a number")
        if r in _NEWLINE:
            self.fail("Expected include value but found new line")
        self.backup()
        return self._bare_include

    def _quoted_include(self, quote: str, eof_message: str) -> State:
        def state() -> State:
            r = self.next()
            if r == quote:
                self.backup()
                self.emit(TokenKind.INCLUDE)
                self.next()
                self.ignore()
                return self.pop()
            if r == EOF:
                self.fail(eof_message)
            return state

        return state

    def _bare_include(self) -> State:
        r = self.next()
        if r in _NEWLINE or r == EOF or r in ";}" or r in _BLANK:
            self.backup()
            self.emit(TokenKind.INCLUDE)
            return self.pop()
        if r == "'":
            self.backup()
            self.emit(TokenKind.INCLUDE)
            self.next()
            self.ignore()
            return self.pop()
        return self._bare_include

    # -- values -----------------------------------------------------------------------------

    def _value(self) -> State:
        r = self.next()
        if r in _BLANK:
            self.ignore()
            return self._value
        if r == "[":
            self.ignore()
            self.emit(TokenKind.ARRAY_START)
            return self._array_value
        if r == "{":
            self.ignore()
            self.emit(TokenKind.MAP_START)
            return self._map_key_start
        if r == "'":
            self.ignore()
            return self._single_quoted
        if r == '"':
            self.ignore()
            self.string_state = self._double_quoted
            return self._double_quoted
        if r == "-":
            return self._negative_number_start
        if r == "(":
            self.ignore()
            return self._raw_block
        if is_digit(r):
            self.backup()
            return self._number_start
        if r == ".":
            self.fail("Floats must start with a digit")
        if r in _NEWLINE:
            self.fail("Expected value but found new line")
        self.backup()
        self.string_state = self._bare_string
        return self._bare_string

    def _array_value(self) -> State:
        r = self.next()
        if is_space(r):
            self.ignore()
            return self._array_value
        if r == "#":
            self.push(self._array_value)
            return self._comment
        if r == "/" and (comment := self.slash_comment(self._array_value)):
            return comment
        if r in "/,":
            self.fail("Unexpected array value terminator ','.")
        if r == "]":
            return self._array_end
        self.backup()
        self.push(self._array_value_end)
        return self._value

    def _array_value_end(self) -> State:
        r = self.next()
        if r in _BLANK:
            self.ignore()
            return self._array_value_end
        if r == "#":
            self.push(self._array_value_end)
            return self._comment
        if r == "/" and (comment := self.slash_comment(self._array_value_end)):
            return comment
        if r in "/," or r in _NEWLINE:
            self.ignore()
            return self._array_value
        if r == "]":
            return self._array_end
        self.fail(
            'Expected an array value terminator "," or an array terminator "]", '
            f"but got '{_shown(r)}' instead."
        )

    def _array_end(self) -> State:
        self.ignore()
        self.emit(TokenKind.ARRAY_END)
        return self.pop()

    # -- maps -------------------------------------------------------------------------------

    def _map_key_start(self) -> State:
        r = self.peek()
        if r in _KEY_SEPARATORS:
            self.fail(f"Unexpected key separator '{r}'.")
        if r == "]":
            self.fail("Unexpected array end ']' processing map.")
        if is_space(r):
            self.next()
            self.ignore()
            return self._map_key_start
        if r == "}":
            self.next()
            self.ignore()
            return self._map_end
        if r == "#":
            self.next()
            self.push(self._map_key_start)
            return self._comment
        if r == "/":
            self.next()
            if comment := self.slash_comment(self._map_key_start):
                return comment
            # A lone '/' is dropped: the key starts at the rune after it.
        elif r in "\"'":
            self.next()
            self.ignore()
            return self._map_quoted_key(r)
        elif r == EOF:
            self.fail("Unexpected EOF processing map.")
        self.ignore()
        self.next()
        return self._map_key

    def _map_quoted_key(self, quote: str) -> State:
        which = "quoted" if quote == "'" else "double quoted"

        def state() -> State:
            r = self.peek()
            if r == EOF:
                self.fail(f"Unexpected EOF processing {which} map key.")
            if r == quote:
                self.emit(TokenKind.KEY)
                self.next()
                self.ignore()
                return self._map_key_end
            self.next()
            return state

        return state

    def _map_key(self) -> State:
        r = self.peek()
        if r == EOF:
            self.fail("Unexpected EOF processing map key.")
        if is_space(r):
            return self._keyword_or_key(self._map_key_end, self._map_value_end)
        if r in _KEY_SEPARATORS:
            self.emit(TokenKind.KEY)
            return self._map_key_end
        self.next()
        return self._map_key

    def _map_key_end(self) -> State:
        r = self.next()
        if is_space(r):
            self.ignore()
            return self._map_key_end
        if r in _KEY_SEPARATORS:
            self.ignore()
            return self._map_value
        self.backup()
        return self._map_value

    def _map_value(self) -> State:
        r = self.next()
        if is_space(r):
            self.ignore()
            return self._map_value
        if r == ",":
            self.fail('Unexpected map value terminator ",".')
        if r == "}":
            self.ignore()
            return self._map_end
        self.backup()
        self.push(self._map_value_end)
        return self._value

    def _map_value_end(self) -> State:
        r = self.next()
        if r in _BLANK:
            self.ignore()
            return self._map_value_end
        if r == "#":
            self.push(self._map_value_end)
            return self._comment
        if r == "/" and (comment := self.slash_comment(self._map_value_end)):
            return comment
        if r in "/;," or r in _NEWLINE:
            self.ignore()
            return self._map_key_start
        if r == "}":
            self.ignore()
            return self._map_end
        self.fail(
            'Expected a map value terminator "," or a map terminator "}", '
            f"but got '{_shown(r)}' instead."
        )

    def _map_end(self) -> State:
        self.ignore()
        self.emit(TokenKind.MAP_END)
        return self.pop()

    # -- strings ----------------------------------------------------------------------------

    def _single_quoted(self) -> State | None:
        r = self.next()
        if r == "'":
            self.backup()
            self.emit(TokenKind.STRING)
            self.next()
            self.ignore()
            return self.pop()
        if r == EOF:
            self.finish()
            return None
        return self._single_quoted

    def _double_quoted(self) -> State | None:
        r = self.next()
        if r == "\\":
            self.cut_before_escape()
            return self._escape
        if r == '"':
            self.backup()
            self.emit_string()
            self.next()
            self.ignore()
            return self.pop()
        if r == EOF:
            self.finish()
            return None
        return self._double_quoted

    def _bare_string(self) -> State:
        r = self.next()
        if r == "\\":
            self.cut_before_escape()
            return self._escape
        if r in _BARE_STRING_ENDS:
            self.backup()
            self.emit_bare_word()
            return self.pop()
        if r == "'":
            self.backup()
            self.emit_string()
            self.next()
            self.ignore()
            return self.pop()
        return self._bare_string

    def emit_bare_word(self) -> None:
        """An unquoted word is a boolean, a `$variable` or a string, in that order."""
        if self.parts:
            self.emit_string()
        elif decode(self.pending()).lower() in BOOL_WORDS:
            self.emit(TokenKind.BOOL)
        elif self.start < len(self.data) and self.data[self.start] == 0x24:  # '$'
            self.start += 1
            self.emit(TokenKind.VARIABLE)
        else:
            self.emit_string()

    def cut_before_escape(self) -> None:
        """Keep the text before a backslash; the escape's meaning is appended next."""
        self.parts.append(self.data[self.start : self.pos - 1])
        self.start = self.pos

    def add_part(self, part: bytes) -> State:
        self.parts.append(part)
        self.start = self.pos
        return self.string_state

    def _escape(self) -> State:
        r = self.next()
        if r == "x":
            return self._hex_escape
        if r in _ESCAPES:
            return self.add_part(_ESCAPES[r])
        self.fail(
            f"Invalid escape character '{_shown(r)}'. Only the following escape characters "
            'are allowed: \\xXX, \\t, \\n, \\r, \\", \\\\.'
        )

    def _hex_escape(self) -> State:
        for _ in range(2):
            if self.next() in _NEWLINE:
                self.fail("Expected two hexadecimal digits after '\\x', but hit end of line")
        pair = self.data[self.pos - 2 : self.pos]
        if len(pair) != 2 or not all(b in _HEX_DIGITS for b in pair):
            self.fail(f"Expected two hexadecimal digits after '\\x', but got '{decode(pair)}'")
        return self.add_part(bytes([int(pair, 16)]))

    def _raw_block(self) -> State:
        """`( ... )`: everything up to a `)` that stands alone on its line."""
        r = self.next()
        if r == EOF:
            self.fail("Unexpected EOF processing block.")
        if r != ")":
            return self._raw_block
        self.backup()
        self.backup()
        if self.next() != "\n":
            self.next()
            return self._raw_block
        self.next()
        if self.next() in ("\n", EOF):
            self.backup()
            self.backup()
            self.emit(TokenKind.STRING)
            self.next()
            self.ignore()
            return self.pop()
        self.backup()
        return self._raw_block

    # -- numbers, dates, addresses ----------------------------------------------------------

    def _number_start(self) -> State:
        r = self.next()
        if not is_digit(r):
            self.fail_not_a_digit(r)
        return self._number

    def fail_not_a_digit(self, r: str) -> NoReturn:
        if r == ".":
            self.fail("Floats must start with a digit, not '.'.")
        self.fail(f"Expected a digit but got '{_shown(r)}'.")

    def _number(self) -> State:
        """Digits so far; what follows decides integer, size, float, IP, date or string."""
        r = self.next()
        if r == "-":
            if self.pos - self.start != 5:
                self.fail("All ISO8601 dates must be in full Zulu form.")
            return self._date
        if is_digit(r):
            return self._number
        if r == ".":
            return self._float_start
        if r in _SIZE_LETTERS:
            return self._size_suffix
        if r not in _NUMBER_ENDS:
            self.string_state = self._bare_string
            return self._bare_string
        self.backup()
        self.emit(TokenKind.INTEGER)
        return self.pop()

    def _size_suffix(self) -> State:
        r = self.next()
        if r in _SIZE_TAILS:
            return self._size_suffix
        self.backup()
        if r in _NUMBER_ENDS:
            self.emit(TokenKind.INTEGER)
            return self.pop()
        self.string_state = self._bare_string
        return self._bare_string

    def _date(self) -> State:
        for expected in _DATE_SHAPE:
            r = self.next()
            if expected == "0":
                if not is_digit(r):
                    self.fail(
                        f"Expected digit in ISO8601 datetime, but found '{_shown(r)}' instead."
                    )
            elif r != expected:
                self.fail(
                    f"Expected '{expected}' in ISO8601 datetime, but found '{_shown(r)}' instead."
                )
        self.emit(TokenKind.DATETIME)
        return self.pop()

    def _negative_number_start(self) -> State:
        r = self.next()
        if not is_digit(r):
            self.fail_not_a_digit(r)
        return self._negative_number

    def _negative_number(self) -> State:
        r = self.next()
        if is_digit(r):
            return self._negative_number
        if r == ".":
            return self._float_start
        if r in _SIZE_LETTERS:
            return self._size_suffix
        self.backup()
        self.emit(TokenKind.INTEGER)
        return self.pop()

    def _float_start(self) -> State:
        r = self.next()
        if not is_digit(r):
            self.fail(f"Floats must have a digit after the '.', but got '{_shown(r)}' instead.")
        return self._float

    def _float(self) -> State:
        r = self.next()
        if is_digit(r):
            return self._float
        if r == ".":
            return self._address
        self.backup()
        self.emit(TokenKind.FLOAT)
        return self.pop()

    def _address(self) -> State:
        """`1.2.3.4` or `127.0.0.1:4222`: looked like a float, is a string."""
        r = self.next()
        if is_digit(r) or r in ".:-":
            return self._address
        self.backup()
        self.emit(TokenKind.STRING)
        return self.pop()

    # -- comments ---------------------------------------------------------------------------

    def _comment(self) -> State:
        self.ignore()
        return self._comment_text

    def _comment_text(self) -> State:
        r = self.peek()
        if r in _NEWLINE or r == EOF:
            self.emit(TokenKind.COMMENT)
            return self.pop()
        self.next()
        return self._comment_text
