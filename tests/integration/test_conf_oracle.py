"""Differential test: our configuration parser against the Go nats-server (`nats-server -t -c`).

Every file in tests/data/conf/ is checked by both. `ok_*` files must be valid for Go and for
us, with the same sha256 digest; `bad_*` files must be syntax errors for Go (errors of the
conf package, not option checks), and we must reject them with the very same message. A
list of short snippets probes the odd corners the same way.

What the Go server (2.15.1) taught us, and the parser reproduces:
- `-t` only parses and checks options: it creates no store directory and opens no port, so
  sample files can name paths like /data/nats-jetstream.
- The seed example written on one line (`jetstream { store_dir: "..."  max_mem: 1G ... }`)
  is a syntax error: inside a map, values need a newline, `,` or `;` between them.
- `[1,2]` is an error (a number followed by `]` becomes the string `2]`), `[1, 2 ]` is fine.
- `m { a }` sets `a = {}`, `port: 1kbi` sets nothing, `port\n4222` is `port: 4222`, and an
  unclosed top-level `{` is fine when the file ends with a newline.
- Columns in `file:line:col` are 0-based on line 1 and 1-based after it.
- `include /abs/path` is joined to the including file's directory like a relative path, and
  a file that includes itself crashes Go with a stack overflow (we report an error).
- Keys referenced as `$variables` are still part of the digest.
- Lexer errors are printed as `Parse error on line N: '...'`, without file or column.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support.servers import oracle_server_path, pynats_server_command

from pynats.server.conf import ConfigError, load_config_file

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "conf"
SAMPLE_ENV = {
    "PYNATS_CONF_TEST_PORT": "4333",
    "PYNATS_CONF_TEST_NAME": "from_env",
    "PYNATS_CONF_TEST_CYCLE_A": "$PYNATS_CONF_TEST_CYCLE_B",
    "PYNATS_CONF_TEST_CYCLE_B": "$PYNATS_CONF_TEST_CYCLE_A",
    "PYNATS_CONF_TEST_BROKEN": "[a,,b]",
    "PYNATS_CONF_TEST_MAP": '{user: a, password: "p<&>"}',
}
SYNTAX_ERROR_STARTS = (
    "Parse error on line ",
    "config is invalid (",
    "variable reference for ",
    "integer '",
    "expected integer",
    "float '",
    "expected float",
    "expected boolean",
    "expected Zulu",
    "error parsing include file ",
)
VALID = re.compile(r"configuration file .* is valid \((sha256:[0-9a-f]{64})\)")
OPTION_ERROR = re.compile(r"^\S*:\d+:\d+: ")


@dataclass(frozen=True)
class Verdict:
    """What a server made of a file: `valid` (with digest), `syntax` or `options` error."""

    kind: str
    detail: str


def go_verdict(path: Path) -> Verdict:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **SAMPLE_ENV}
    done = subprocess.run(
        [oracle_server_path(), "-t", "-c", str(path)],
        capture_output=True,
        env=env,
        timeout=30,
    )
    text = done.stderr.decode("utf-8", "surrogateescape").rstrip("\n")
    if match := VALID.search(text):
        return Verdict("valid", match.group(1))
    message = text.removeprefix("nats-server: ")
    if message.startswith(SYNTAX_ERROR_STARTS) and not OPTION_ERROR.match(message):
        return Verdict("syntax", message)
    return Verdict("options", message)


def our_verdict(path: Path) -> Verdict:
    try:
        return Verdict("valid", load_config_file(path, env=SAMPLE_ENV).digest)
    except ConfigError as exc:
        return Verdict("syntax", str(exc))


def sample_names(prefix: str) -> list[str]:
    return sorted(p.name for p in SAMPLES.glob(f"{prefix}*.conf"))


def test_sample_folder_covers_enough_files() -> None:
    assert len(sample_names("ok_")) >= 20
    assert len(sample_names("bad_")) >= 20


@pytest.mark.parametrize("name", sample_names("ok_"))
def test_file_go_accepts_gets_the_same_digest_from_us(name: str) -> None:
    path = SAMPLES / name
    go = go_verdict(path)
    assert go.kind == "valid", f"the Go server rejects a sample meant to be valid: {go.detail}"
    assert our_verdict(path) == go


@pytest.mark.parametrize("name", sample_names("bad_"))
def test_file_go_rejects_is_rejected_by_us_with_the_same_message(name: str) -> None:
    path = SAMPLES / name
    go = go_verdict(path)
    assert go.kind == "syntax", f"the Go server does not see a syntax error: {go}"
    assert our_verdict(path) == go


SNIPPETS = [
    "port: 4222",
    "{ port = 1 } debug = true",
    "{{ port = 1 }}",
    "{ port = 1 }}",
    "{ port = 1 }}}",
    "{ port = 1",
    "{ port = 1 # comment",
    "m { a }",
    "port: 1kbi",
    "port: 1k5",
    "port = [1]",
    "server_tags = [1, 2 ]",
    "server_tags = ['a''b']",
    "port = 4222 / ",
    "port 4222; debug true, trace true",
    "server_tags: [a, b",
    "server_tags: ['",
    "authorization { user: a, password: '",
    "port: 4222\nfoo",
    "port: 4222\nfoo =",
    'port: 4222\n"',
    'port: 4222\n"abc',
    "include 'includes/limits.conf' x",
    "include /includes/limits.conf",
    "include includes",
    "include ",
    "pid_file (\nabc\n)",
    "pid_file (\nabc\n)\n",
    "pid_file (abc)\n)\n",
    "pid_file: abc'def",
    "pid_file: $2a$10$abc",
    "pid_file: $2b$10$abc",
    "pid_file: '$2b$10$abc'",
    'pid_file: "a\\tb\\x41\\xff\\xe2\\x80\\xa8<&>"',
    'pid_file: "\\x4',
    "authorization { timeout: 0.0000001 }",
    "authorization { timeout: 0.000001 }",
    "max_payload: 8589934592G",
    "port: -",
    "port: -x",
    "port: 1.",
    "port: 1.2.3.4x",
    "server_name: 2016-05-04T18:53:41Zx",
    "port: $PYNATS_CONF_TEST_PORT",
    "authorization: $PYNATS_CONF_TEST_MAP",
    "a = 1\nport = $a",
    'server_metadata { a: "x"\nb: $a }',
    "port: 4222\n\x00garbage",
    "port: 4222 \x00",
    '"\x00port: 1',
    "port: 4222\n\udcff",  # a byte that is not UTF-8
    "server_name: caf\udcc3",  # a truncated UTF-8 sequence
    "\ufeffport: 4222",
    "port:\xa04222",
    "authorization {\n  /user: a\n  password: b\n}",
    'server_tags: [\n// c\n"a" # c\n]',
]


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_snippet_means_the_same_to_both_servers(snippet: str, tmp_path: Path) -> None:
    includes = tmp_path / "includes"
    includes.mkdir()
    (includes / "limits.conf").write_bytes((SAMPLES / "includes" / "limits.conf").read_bytes())
    path = tmp_path / "snippet.conf"
    path.write_bytes(snippet.encode("utf-8", "surrogateescape"))
    go = go_verdict(path)
    ours = our_verdict(path)
    if go.kind == "options":  # syntax fine, refused by option checks we do not do here
        assert ours.kind == "valid", f"Go accepts the syntax ({go.detail}), we say {ours}"
    else:
        assert ours == go


UNKNOWN_FIELD = re.compile(r'^(\S+:\d+:\d+): unknown field "([^"]*)"')
MISPLACED_KEYS = [
    ("foo = 1", ("foo",)),
    ("   foo = 1", ("foo",)),
    ("port: 1\n\t  foo: 2", ("foo",)),
    ('"foo": 1', ("foo",)),
    ('port: 1\n  "foo": 1', ("foo",)),
    ("port: 1 ;  foo: 2", ("foo",)),
    ("port: 1\n  \u00fc = 2", ("\u00fc",)),
    ('{\n  "foo": 1 }', ("foo",)),
    ("a = 1\n  b = $a", ("b",)),
    ("authorization {\n  user: a\n    foo: 1\n}", ("authorization", "foo")),
    ("jetstream {\n  foox: 1\n}", ("jetstream", "foox")),
    ("port: 1\ninclude includes/unknown.conf", ("zz",)),
]


@pytest.mark.parametrize(("snippet", "key_path"), MISPLACED_KEYS)
def test_key_positions_are_where_go_reports_unknown_fields(
    snippet: str, key_path: tuple[str, ...], tmp_path: Path
) -> None:
    (tmp_path / "includes").mkdir()
    (tmp_path / "includes" / "unknown.conf").write_text("\n zz = 1\n")
    path = tmp_path / "snippet.conf"
    path.write_text(snippet)
    go = go_verdict(path)
    match = UNKNOWN_FIELD.match(go.detail)
    assert go.kind == "options" and match, f"expected one unknown field from Go, got {go}"
    assert match.group(2) == key_path[-1]
    tree = load_config_file(path, env=SAMPLE_ENV).data
    for key in key_path[:-1]:
        tree = tree[key]
    assert str(tree.position(key_path[-1])) == match.group(1)


@pytest.mark.parametrize(
    "text",
    [
        'tls { cert_file: "a" key_file: "b" }\n',  # a lexer error
        "port: $PYNATS_CONF_TEST_NOT_SET\n",  # an unknown variable
        'include "not-there.conf"\n',
    ],
)
def test_the_server_prints_a_syntax_error_as_nats_server_does(text: str, tmp_path: Path) -> None:
    """Not only the library's text: the server's own start-up line (`nats-server: ...`, no
    file or column for a syntax error) and its exit status."""
    path = tmp_path / "bad.conf"
    path.write_text(text)
    results = []
    for cmd in ([oracle_server_path()], pynats_server_command()):
        done = subprocess.run(
            [*cmd, "-c", str(path)], capture_output=True, cwd=tmp_path, timeout=30
        )
        results.append((done.returncode, done.stderr.decode().strip()))
    assert results[0] == results[1]
    assert results[0][1].startswith("nats-server: ")
