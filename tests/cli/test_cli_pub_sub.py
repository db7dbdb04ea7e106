"""`nats pub` and `nats sub` on Core NATS: output as natscli prints it, and pipelines."""

from __future__ import annotations

import base64
import json
import re
import stat
import sys
from pathlib import Path

import pexpect

from tests.cli.conftest import NatsCli, wait_for_interest
from tests.support.servers import RunningServer

TIME = r"\d\d:\d\d:\d\d"
SUBSCRIBED = r"Subscribing on "


def test_sub_prints_headers_bodies_and_a_counter(nats: NatsCli) -> None:
    sub = nats.spawn("sub", "demo.>", "--count", "3")
    sub.wait_for_stderr(SUBSCRIBED)
    assert nats.run("pub", "demo.a", "hello", "-H", "Trace:abc").returncode == 0
    assert nats.run("pub", "demo.b", "").returncode == 0
    assert nats.run("pub", "demo.c", "with newline\n", "--reply", "answers.here").returncode == 0
    assert sub.wait() == 0
    assert sub.stdout == (
        '[#1] Received on "demo.a"\n'
        "Trace: abc\n"
        "\n"
        "hello\n"
        "\n"
        "\n"
        '[#2] Received on "demo.b"\n'
        "nil body\n"
        "\n"
        "\n"
        '[#3] Received on "demo.c" with reply "answers.here"\n'
        "with newline\n"
        "\n"
    )
    assert re.search(rf"^{TIME} Subscribing on demo\.>$", sub.stderr, re.M)


def test_pub_reports_on_stderr_and_keeps_stdout_empty(nats: NatsCli) -> None:
    result = nats.run("pub", "demo.greet", "hi {{Count}}", "--count", "2")
    assert result.returncode == 0, result
    assert result.stdout == ""
    assert re.fullmatch(rf'({TIME} Published 4 bytes to "demo\.greet"\n){{2}}', result.stderr)
    assert nats.run("pub", "demo.greet", "hi", "-q").stderr == ""


def test_piped_stdin_becomes_the_body_exactly(nats: NatsCli, core_server: RunningServer) -> None:
    document = '{"id": 7, "items": ["a", "b"]}\n'
    sub = nats.spawn("sub", "orders.new", "--raw", "--count", "1")
    wait_for_interest(core_server, "orders.new")
    result = nats.run("pub", "orders.new", input=document)
    assert result.returncode == 0, result
    assert "Reading payload from STDIN" in result.stderr
    assert "Published 31 bytes" in result.stderr
    assert sub.wait() == 0
    assert json.loads(sub.stdout) == {"id": 7, "items": ["a", "b"]}


def test_send_on_newline_publishes_one_message_per_line(
    nats: NatsCli, core_server: RunningServer
) -> None:
    sub = nats.spawn("sub", "lines", "--raw", "--count", "3")
    wait_for_interest(core_server, "lines")
    assert (
        nats.run("pub", "lines", "--send-on", "newline", input="one\ntwo\nthree\n").returncode == 0
    )
    assert sub.wait() == 0
    assert sub.stdout == "one\ntwo\nthree\n"


def test_templates_number_messages_and_header_values(nats: NatsCli) -> None:
    sub = nats.spawn("sub", "tpl", "--count", "3")
    sub.wait_for_stderr(SUBSCRIBED)
    result = nats.run(
        "pub", "tpl", "n={{Count}} {{ .Cnt }} {{Random 5 5}}", "--count", "3", "-H", "Id:{{ID}}"
    )
    assert result.returncode == 0, result
    assert sub.wait() == 0
    bodies = re.findall(r"^n=(\d) (\d) ([A-Za-z0-9]+)$", sub.stdout, re.M)
    assert [(a, b) for a, b, _ in bodies] == [("1", "1"), ("2", "2"), ("3", "3")]
    assert all(len(r) == 5 for _, _, r in bodies)
    ids = re.findall(r"^Id: ([A-Za-z0-9]{22})$", sub.stdout, re.M)
    assert len(set(ids)) == 3


def test_templates_can_be_disabled_and_bad_ones_fall_back_to_the_raw_text(
    nats: NatsCli, core_server: RunningServer
) -> None:
    sub = nats.spawn("sub", "raw.tpl", "--raw", "--count", "2")
    wait_for_interest(core_server, "raw.tpl")
    assert nats.run("pub", "raw.tpl", "{{Count}}", "--no-templates").returncode == 0
    bad = nats.run("pub", "raw.tpl", "{{Nope}}")
    assert bad.returncode == 0
    assert (
        'Could not parse body template: template: body:1: function "Nope" not defined' in bad.stderr
    )
    assert sub.wait() == 0
    assert sub.stdout == "{{Count}}\n{{Nope}}\n"


def test_raw_output_is_flushed_per_message_into_a_pipe(
    nats: NatsCli, core_server: RunningServer
) -> None:
    sub = nats.spawn("sub", "flush.me", "--raw")
    wait_for_interest(core_server, "flush.me")
    assert nats.run("pub", "flush.me", "first").returncode == 0
    assert sub.read_stdout_line() == b"first\n"
    assert nats.run("pub", "flush.me", "second").returncode == 0
    assert sub.read_stdout_line() == b"second\n"
    sub.interrupt()
    assert sub.wait() == 0, "Ctrl-C ends a subscription quietly"


def test_queue_group_members_share_the_messages(nats: NatsCli, core_server: RunningServer) -> None:
    first = nats.spawn("sub", "work", "--queue", "workers", "--raw", "--wait", "2s")
    second = nats.spawn("sub", "work", "--queue", "workers", "--raw", "--wait", "2s")
    wait_for_interest(core_server, "work", count=2)
    assert nats.run("pub", "work", "job {{Count}}", "--count", "10", "-q").returncode == 0
    assert first.wait() == 0 and second.wait() == 0
    jobs = first.stdout.splitlines() + second.stdout.splitlines()
    assert sorted(jobs) == sorted(f"job {n}" for n in range(1, 11))


def test_headers_only_and_subjects_only(nats: NatsCli) -> None:
    headers = nats.spawn("sub", "hdr", "--headers-only", "--count", "1")
    subjects = nats.spawn("sub", "hdr", "--subjects-only", "--count", "1")
    headers.wait_for_stderr(SUBSCRIBED)
    subjects.wait_for_stderr(SUBSCRIBED)
    assert nats.run("pub", "hdr", "secret body", "-H", "K:V").returncode == 0
    assert headers.wait() == 0 and subjects.wait() == 0
    assert headers.stdout == '[#1] Received on "hdr"\nK: V\n\n'
    assert subjects.stdout == '[#1] Received on "hdr"\n'


def test_dump_writes_one_json_file_per_message_as_natscli_does(
    nats: NatsCli, core_server: RunningServer, tmp_path: Path
) -> None:
    target = tmp_path / "dumped"
    sub = nats.spawn("sub", "dump.me", "--dump", str(target), "--count", "2")
    wait_for_interest(core_server, "dump.me")
    assert nats.run("pub", "dump.me", "<one>", "-H", "A:b").returncode == 0
    assert nats.run("pub", "dump.me", "").returncode == 0
    assert sub.wait() == 0
    assert sub.stdout == ""
    assert sorted(p.name for p in target.iterdir()) == ["1.json", "2.json"]
    assert stat.S_IMODE((target / "1.json").stat().st_mode) == 0o600
    assert (target / "1.json").read_text() == (
        '{"Subject":"dump.me","Reply":"","Header":{"A":["b"]},"Data":"'
        + base64.b64encode(b"<one>").decode()
        + '","Sub":null}'
    )
    assert json.loads((target / "2.json").read_text())["Header"] is None


def test_dump_to_stdout_separates_messages_with_nul(
    nats: NatsCli, core_server: RunningServer
) -> None:
    sub = nats.spawn("sub", "nul.sep", "--dump", "-", "--count", "2")
    wait_for_interest(core_server, "nul.sep")
    assert nats.run("pub", "nul.sep", "a", "--count", "2", "-q").returncode == 0
    assert sub.wait() == 0
    documents = b"".join(sub.stdout_bytes).split(b"\0")
    assert documents[-1] == b""
    assert [base64.b64decode(json.loads(d)["Data"]) for d in documents[:-1]] == [b"a", b"a"]


def test_inbox_subscription_shows_the_generated_subject(nats: NatsCli) -> None:
    sub = nats.spawn("sub", "--inbox", "--count", "1")
    inbox = sub.wait_for_stderr(r"Subscribing on (_INBOX\.\S+)").group(1)
    assert nats.run("pub", inbox, "to the inbox").returncode == 0
    assert sub.wait() == 0
    assert sub.stdout == f'[#1] Received on "{inbox}"\nto the inbox\n\n\n'


def test_sub_without_subject_is_a_usage_error(cli: NatsCli) -> None:
    result = cli.run("sub")
    assert result.returncode == 1
    assert result.stdout.startswith("No subjects or --stream flag provided.\n")
    assert result.stderr.startswith("error: subject is required")


def test_wait_ends_a_quiet_subscription(nats: NatsCli) -> None:
    result = nats.run("sub", "nobody.talks", "--wait", "300ms")
    assert result.returncode == 0, result
    assert result.stdout == ""
    assert result.elapsed < 10


def test_ignored_subjects_are_not_shown_or_counted(nats: NatsCli) -> None:
    sub = nats.spawn("sub", "feed.>", "-I", "feed.noise", "--count", "1")
    sub.wait_for_stderr(SUBSCRIBED)
    assert nats.run("pub", "feed.noise", "x").returncode == 0
    assert nats.run("pub", "feed.news", "y").returncode == 0
    assert sub.wait() == 0
    assert sub.stdout == '[#1] Received on "feed.news"\ny\n\n\n'


def test_pub_on_a_terminal_reads_what_the_user_types_until_ctrl_d(nats: NatsCli) -> None:
    sub = nats.spawn("sub", "typed", "--count", "1")
    sub.wait_for_stderr(SUBSCRIBED)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "pynats.cli", "pub", "typed", "-s", str(nats.url)],
        env=nats.environment({}),
        encoding="utf-8",
        timeout=10,
    )
    child.expect("Reading payload from STDIN")
    child.sendline("typed by hand")
    child.sendeof()
    child.expect('Published 14 bytes to "typed"')
    child.expect(pexpect.EOF)
    assert sub.wait() == 0
    assert sub.stdout.endswith("typed by hand\n\n")


def test_ctrl_c_stops_a_pub_waiting_for_terminal_input(nats: NatsCli) -> None:
    child = pexpect.spawn(
        sys.executable,
        ["-m", "pynats.cli", "pub", "never", "-s", str(nats.url)],
        env=nats.environment({}),
        encoding="utf-8",
        timeout=10,
    )
    child.expect("Reading payload from STDIN")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert "Published" not in (child.before or "")


def test_translate_pipes_each_body_through_a_command(nats: NatsCli) -> None:
    sub = nats.spawn("sub", "shout", "--translate", "tr a-z A-Z", "--count", "1")
    sub.wait_for_stderr(SUBSCRIBED)
    assert nats.run("pub", "shout", "quiet words").returncode == 0
    assert sub.wait() == 0
    assert sub.stdout == '[#1] Received on "shout"\nQUIET WORDS\n\n\n'
