"""`nats request` and `nats reply`: the round trip, timings, echo and command services."""

from __future__ import annotations

import re
import sys

from tests.cli.conftest import NatsCli

TIME = r"\d\d:\d\d:\d\d"
LISTENING = r'Listening on "[^"]+" in group "NATS-RPLY-22"'


def test_request_prints_the_reply_and_its_round_trip_time(nats: NatsCli) -> None:
    service = nats.spawn(
        "reply", "svc.greet", "hello #{{Count}} you said {{Request}}", "--count", "2"
    )
    service.wait_for_stderr(LISTENING)
    first = nats.run("request", "svc.greet", "hi")
    assert first.returncode == 0, first
    assert first.stdout == "hello #0 you said hi\n\n\n"
    assert re.fullmatch(
        rf'{TIME} Sending request on "svc\.greet"\n{TIME} Received with rtt [0-9.]+(µs|ms|s)\n',
        first.stderr,
    )
    second = nats.run("req", "svc.greet", "again", "--raw")
    assert second.stdout == "hello #1 you said again\n"
    assert second.stderr == ""
    assert service.wait() == 1, "reply always ends with a fatal Exiting"
    assert re.search(rf"{TIME} Draining\.\.\.\n{TIME} Exiting\n$", service.stderr)
    assert re.search(rf'{TIME} \[#0\] Received on subject "svc\.greet":', service.stderr)
    assert service.stdout == "\nhi\n\nagain\n"


def test_echo_service_returns_body_and_headers_with_a_counter(nats: NatsCli) -> None:
    service = nats.spawn("reply", "svc.echo")
    service.wait_for_stderr("No body or command supplied, enabling echo mode")
    service.wait_for_stderr(LISTENING)
    result = nats.run("request", "svc.echo", "ping", "-H", "X-Trace:t1")
    assert result.returncode == 0, result
    assert result.stdout == "ping\n\n\n"
    assert re.search(rf"^{TIME} X-Trace: t1$", result.stderr, re.M)
    assert re.search(rf"^{TIME} NATS-Reply-Counter: 0$", result.stderr, re.M)
    assert re.search(rf"^{TIME} $", result.stderr, re.M), "an empty log line closes the headers"
    service.interrupt()
    assert service.wait() == 1
    assert "Exiting" in service.stderr


def test_command_service_replies_with_program_output(nats: NatsCli) -> None:
    script = "import os,sys; print('{{1}}', os.environ['NATS_REQUEST_SUBJECT'], os.environ['NATS_REQUEST_BODY'])"
    service = nats.spawn(
        "reply", "weather.*", "--command", f'{sys.executable} -c "{script}"', "--count", "1"
    )
    service.wait_for_stderr(LISTENING)
    result = nats.run("req", "weather.paris", "sunny?", "--raw")
    assert result.returncode == 0, result
    assert result.stdout == "paris weather.paris sunny?\n"
    assert service.wait() == 1


def test_request_without_responders_is_reported_but_not_an_error(nats: NatsCli) -> None:
    result = nats.run("request", "nobody.home", "anyone?")
    assert result.returncode == 0, result
    assert result.stdout == ""
    assert re.search(rf"^{TIME} No responders are available$", result.stderr, re.M)


def test_request_collects_several_replies(nats: NatsCli) -> None:
    services = [
        nats.spawn("reply", "svc.many", f"answer {n}", "--queue", f"group{n}") for n in range(3)
    ]
    for service in services:
        service.wait_for_stderr(r"Listening on")
    result = nats.run("request", "svc.many", "", "--replies", "3", "--raw")
    assert result.returncode == 0, result
    assert sorted(result.stdout.splitlines()) == ["answer 0", "answer 1", "answer 2"]
    everything = nats.run("request", "svc.many", "", "--replies", "0", "--raw", "--timeout", "1s")
    assert len(everything.stdout.splitlines()) == 3


def test_request_count_sends_numbered_requests(nats: NatsCli) -> None:
    service = nats.spawn("reply", "svc.count", "--echo", "--count", "3")
    service.wait_for_stderr(LISTENING)
    result = nats.run("request", "svc.count", "req {{Count}}", "--count", "3", "--raw")
    assert result.returncode == 0, result
    assert result.stdout == "req 1\nreq 2\nreq 3\n"
    assert service.wait() == 1


def test_request_body_from_stdin(nats: NatsCli) -> None:
    service = nats.spawn("reply", "svc.stdin", "--echo", "--count", "1")
    service.wait_for_stderr(LISTENING)
    result = nats.run("request", "svc.stdin", "--raw", input="from a pipe")
    assert result.stdout == "from a pipe\n"
    assert service.wait() == 1
