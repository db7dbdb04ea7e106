"""natscli's operations commands under `nats server`: check, request, passwd, mappings.

Each server-facing test runs against the Go server and ours (the `server_kind` parameter); the
system account user sys/sys asks the $SYS questions, app/app owns the JetStream assets.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator

import bcrypt
import pytest

from tests.cli.conftest import NatsCli, closed_port
from tests.support.servers import RunningServer

NAGIOS = re.compile(r"^(OK|WARNING|CRITICAL) (.*?)(?: \| (.*))?$")


@pytest.fixture
def system(tmp_path, sys_server: RunningServer) -> Iterator[NatsCli]:
    runner = NatsCli(tmp_path / "sys", sys_server.url)
    runner.home.mkdir()
    runner.env.update(HOME=str(runner.home), NATS_USER="sys", NATS_PASSWORD="sys")
    yield runner
    runner.cleanup()


@pytest.fixture
def app(tmp_path, sys_server: RunningServer) -> Iterator[NatsCli]:
    runner = NatsCli(tmp_path / "app", sys_server.url)
    runner.home.mkdir()
    runner.env.update(HOME=str(runner.home), NATS_USER="app", NATS_PASSWORD="app")
    yield runner
    runner.cleanup()


def perf_data(line: str) -> dict[str, str]:
    match = NAGIOS.match(line)
    assert match, line
    return dict(item.split("=", 1) for item in (match.group(3) or "").split())


# -- check -------------------------------------------------------------------------------------


def test_check_connection_is_ok_with_connect_rtt_and_request_times(app: NatsCli) -> None:
    result = app.run("server", "check", "connection")
    assert result.returncode == 0, result
    line = result.stdout.rstrip("\n")
    assert re.match(
        r"OK Connection OK:connected to nats://127\.0\.0\.1:\d+ in [0-9.]+(µs|ms|s) "
        r"OK:rtt time [0-9.]+(µs|ms|s) OK:round trip took [0-9.]+s \| ",
        line,
    ), line
    data = perf_data(line)
    assert list(data) == ["connect_time", "rtt", "request_time"]
    assert re.fullmatch(r"\d+\.\d{4}s;0\.5000;1\.0000", data["connect_time"])


def test_check_connection_thresholds_turn_critical(app: NatsCli) -> None:
    result = app.run("server", "check", "conn", "--req-warn", "1ns", "--req-critical", "2ns")
    assert result.returncode == 2, result
    assert result.stdout.startswith("CRITICAL Connection Crit:round trip request took 0.")


def test_check_connection_to_nothing_is_critical(tmp_path) -> None:
    nowhere = NatsCli(tmp_path, f"nats://127.0.0.1:{closed_port()}")
    result = nowhere.run("server", "check", "connection", "--timeout", "1s")
    assert result.returncode == 2, result
    assert result.stdout.startswith("CRITICAL Connection Crit:connection failed: ")


def test_check_server_reads_the_varz_of_a_named_server(system: NatsCli) -> None:
    result = system.run(
        "server", "check", "server", "--name", "cli-test", "--js-required", "--auth-required"
    )
    assert result.returncode == 0, result
    line = result.stdout.rstrip("\n")
    assert line.startswith("OK cli-test OK:JetStream enabled OK:Authentication required | ")
    assert list(perf_data(line)) == ["uptime", "cpu", "mem", "connections", "subscriptions"]

    tls = system.run("server", "check", "server", "--name", "cli-test", "--tls-required")
    assert tls.returncode == 2
    assert tls.stdout.startswith("CRITICAL cli-test Crit:TLS not required | ")

    conns = system.run(
        "server",
        "check",
        "server",
        "--name",
        "cli-test",
        "--conn-warn",
        "100",
        "--conn-critical",
        "200",
    )
    assert conns.returncode == 0, conns
    assert re.search(r"OK:Connections \d+\.00 \|", conns.stdout)
    assert re.search(r" connections=\d+;100;200 ", conns.stdout)


def test_check_server_without_system_account_is_critical(app: NatsCli) -> None:
    result = app.run("server", "check", "server", "--name", "cli-test", "--timeout", "1s")
    assert result.returncode == 2, result
    assert result.stdout.startswith("CRITICAL cli-test Crit:varz failed: nats: ")


def test_check_jetstream_reports_account_usage(app: NatsCli) -> None:
    result = app.run("server", "check", "jetstream")
    assert result.returncode == 0, result
    line = result.stdout.rstrip("\n")
    assert line.startswith("OK JetStream | memory=0B memory_pct=0%;75;90 ")
    assert list(perf_data(line)) == [
        "memory", "memory_pct", "storage", "storage_pct", "streams", "streams_pct",
        "consumers", "consumers_pct", "replicas_ok", "replicas_no_leader",
        "replicas_missing_replicas", "replicas_lagged", "replicas_not_seen", "replicas_fail",
    ]  # fmt: skip
    bad = app.run("server", "check", "js", "--mem-warn", "90", "--mem-critical", "80")
    assert bad.returncode == 2
    assert bad.stdout.startswith("CRITICAL JetStream Crit:memory: invalid thresholds | ")


def test_check_stream_consumer_message_and_kv(app: NatsCli) -> None:
    assert app.run("stream", "add", "CHK", "--subjects", "chk.>", "--defaults").returncode == 0
    for body in ("one", "two"):
        assert app.run("pub", "chk.a", body).returncode == 0
    assert app.run("consumer", "add", "CHK", "C1", "--pull", "--defaults").returncode == 0
    try:
        stream = app.run("server", "check", "stream", "--stream", "CHK", "--msgs-warn", "5")
        assert stream.returncode == 1, stream
        assert stream.stdout == (
            "WARNING CHK Warn:2 messages OK:0 sources | messages=2;5 sources=0\n"
        )
        fine = app.run("server", "check", "stream", "--stream", "CHK", "--msgs-critical", "1")
        assert fine.stdout == "OK CHK OK:2 messages OK:0 sources | messages=2;;1 sources=0\n"
        missing = app.run("server", "check", "stream", "--stream", "NOPE")
        assert missing.returncode == 2
        assert missing.stdout == (
            "CRITICAL NOPE Crit:could not load info: stream not found (10059)\n"
        )

        consumer = app.run(
            "server", "check", "consumer", "--stream", "CHK", "--consumer", "C1",
            "--unprocessed-critical", "2",
        )  # fmt: skip
        assert consumer.returncode == 2, consumer
        assert consumer.stdout.startswith(
            "CRITICAL CHK_C1 Crit:Unprocessed Messages: 0 | "
            "ack_pending=0 pull_waiting=0 pending=2;;2 redelivered=0"
        )

        message = app.run(
            "server", "check", "message", "--stream", "CHK", "--subject", "chk.a",
            "--content", "^tw",
        )  # fmt: skip
        assert message.returncode == 0, message
        assert re.fullmatch(
            r"OK Stream Message OK:Valid message on CHK > chk\.a \| age=\d+\.\d{4}s size=3B\n",
            message.stdout,
        )
        wrong = app.run("server", "check", "message", "--stream", "CHK", "--content", "^x")
        assert wrong.returncode == 2
        assert "Crit:does not match regex: ^x |" in wrong.stdout
    finally:
        app.run("stream", "rm", "CHK", "-f")

    assert app.run("kv", "add", "CFG").returncode == 0
    try:
        assert app.run("kv", "put", "CFG", "a", "1").returncode == 0
        assert app.run("kv", "put", "CFG", "b", "2").returncode == 0
        assert app.run("kv", "del", "CFG", "b", "-f").returncode == 0
        kv = app.run("server", "check", "kv", "--bucket", "CFG", "--key", "a")
        assert kv.returncode == 0, kv
        assert kv.stdout.startswith("OK CFG OK:bucket CFG OK:key a found | values=2;-1;-1 ")
        deleted = app.run("server", "check", "kv", "--bucket", "CFG", "--key", "b")
        assert deleted.returncode == 2
        assert "Crit:key b is deleted" in deleted.stdout
        absent = app.run("server", "check", "kv", "--bucket", "NOPE")
        assert absent.stdout == "CRITICAL NOPE Crit:bucket NOPE not found\n"
    finally:
        app.run("kv", "rm", "CFG", "-f")


def test_check_renders_json_prometheus_and_text(app: NatsCli) -> None:
    as_json = app.run("server", "check", "--format", "json", "jetstream")
    assert as_json.returncode == 0, as_json
    document = json.loads(as_json.stdout)
    assert document["status"] == "OK"
    assert document["check_suite"] == "jetstream"
    assert document["check_name"] == "JetStream"
    assert document["perf_data"][1] == {
        "name": "memory_pct", "value": 0, "warning": 75, "critical": 90, "unit": "%",
    }  # fmt: skip

    prom = app.run("server", "check", "--format", "prometheus", "js", "--mem-warn", "95")
    assert prom.returncode == 0, prom  # prometheus output always exits 0
    assert (
        "# HELP nats_server_check_jetstream_status_code Nagios compatible status code for "
        "jetstream\n# TYPE nats_server_check_jetstream_status_code gauge\n"
        'nats_server_check_jetstream_status_code{item="JetStream",status="CRITICAL"} 2\n'
    ) in prom.stdout
    assert 'nats_server_check_jetstream_memory_pct{item="JetStream"} 0\n' in prom.stdout

    text = app.run("server", "check", "--format", "text", "js")
    assert text.stdout.startswith("JetStream: OK\n\n\nCheck Metrics\n\n╭")
    assert "│ memory_pct " in text.stdout


def test_check_writes_the_outfile_and_exits_1(app: NatsCli, tmp_path) -> None:
    target = tmp_path / "check.txt"
    result = app.run("server", "check", "--outfile", str(target), "jetstream")
    assert result.returncode == 1  # as natscli's monitor package does
    assert result.stdout == ""
    assert target.read_text().startswith("OK JetStream | ")


def _creds(tmp_path, claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    token = f"{part({'typ': 'JWT', 'alg': 'ed25519-nkey'})}.{part(claims)}.c2ln"
    path = tmp_path / "user.creds"
    path.write_text(
        f"-----BEGIN NATS USER JWT-----\n{token}\n------END NATS USER JWT------\n\n"
        "-----BEGIN USER NKEY SEED-----\nSUAEXAMPLE\n------END USER NKEY SEED------\n"
    )
    return str(path)


def test_check_credential_expiry(cli: NatsCli, tmp_path) -> None:
    never = _creds(tmp_path, {"sub": "UABC", "nats": {"type": "user"}})
    required = cli.run("server", "check", "credential", "--credential", never)
    assert required.returncode == 2
    assert required.stdout.startswith("CRITICAL Credential Crit:never expires | expiry=")
    allowed = cli.run("server", "check", "credential", "--credential", never, "--no-require-expiry")
    assert allowed.returncode == 0
    assert allowed.stdout.startswith("OK Credential OK:never expires | expiry=")

    soon = _creds(tmp_path, {"sub": "UABC", "exp": int(time.time()) + 3600})
    expiring = cli.run("server", "check", "credential", "--credential", soon)
    assert expiring.returncode == 0
    assert re.match(
        r"OK Credential OK:expires in \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC \| expiry=3\d{3}\.0000s",
        expiring.stdout,
    )


# -- request -----------------------------------------------------------------------------------


def test_request_prints_each_servers_answer(system: NatsCli) -> None:
    varz = system.run("server", "request", "variables", "1")
    assert varz.returncode == 0, varz
    document = json.loads(varz.stdout)
    assert document["server"]["name"] == "cli-test"
    assert document["data"]["server_name"] == "cli-test"

    connz = system.run("server", "req", "connz", "1", "--subscriptions")
    assert connz.returncode == 0, connz
    conns = json.loads(connz.stdout)["data"]
    assert conns["num_connections"] >= 1
    assert any(c.get("authorized_user") == "sys" for c in conns["connections"])

    jsz = system.run("server", "request", "jetstream", "1", "--accounts")
    assert jsz.returncode == 0, jsz
    assert "config" in json.loads(jsz.stdout)["data"]

    health = system.run("server", "request", "healthz", "1")
    assert json.loads(health.stdout)["data"]["status"] == "ok"

    named = system.run("server", "request", "--name", "elsewhere", "varz", "--timeout", "500ms")
    assert named.returncode == 0
    assert named.stdout == ""


def test_request_needs_the_system_account(app: NatsCli) -> None:
    result = app.run("server", "request", "varz", "1", "--timeout", "1s")
    assert result.returncode == 1
    assert result.stderr == (
        "nats: error: server request failed, ensure the account used has system privileges "
        "and appropriate permissions\n"
    )


# -- passwd and mappings (no server) -----------------------------------------------------------


def test_passwd_hashes_with_bcrypt_at_the_given_cost(cli: NatsCli) -> None:
    password = "correct horse battery staple"
    result = cli.run("server", "mkpasswd", "-p", password, "-c", "5")
    assert result.returncode == 0, result
    hashed = result.stdout.rstrip("\n")
    assert hashed.startswith("$2a$05$")
    assert bcrypt.checkpw(password.encode(), hashed.encode())

    generated = cli.run("server", "passwd", "-g", "--cost", "4")
    first, second = generated.stdout.splitlines()
    secret = first.removeprefix("Generated password: ")
    assert len(secret) == 22
    assert second.startswith("       bcrypt hash: $2a$04$")
    assert bcrypt.checkpw(secret.encode(), second.split(": ")[1].encode())


def test_passwd_refuses_short_passwords_and_bad_costs(cli: NatsCli) -> None:
    short = cli.run("server", "passwd", "--pass", "short")
    assert (short.returncode, short.stderr) == (
        1,
        "nats: error: password should be at least 22 characters long\n",
    )
    cost = cli.run("server", "passwd", "-p", "x" * 22, "-c", "32")
    assert cost.stderr == "nats: error: bcrypt cost should be between 4 and 31\n"
    no_tty = cli.run("server", "passwd")
    assert no_tty.returncode == 1
    assert no_tty.stderr.startswith("nats: error: could not read password: ")


def test_mapping_transforms_a_subject_locally(cli: NatsCli) -> None:
    mapped = cli.run("server", "mapping", "orders.*.*", "out.{{wildcard(2)}}.$1", "orders.a.b")
    assert (mapped.returncode, mapped.stdout) == (0, "out.b.a\n\n")
    split = cli.run("server", "mappings", "p.*", "{{partition(3,1)}}.p.$1", "p.key")
    assert re.fullmatch(r"[012]\.p\.key\n\n", split.stdout)
    other = cli.run("server", "mapping", "orders.*", "out.$1", "users.x")
    assert other.stdout == "Error: no matching transforms available\n\n\n"
    bad = cli.run("server", "mapping", "orders.*", "out.$2", "orders.x")
    assert bad.returncode == 1
    assert bad.stderr.startswith("nats: error: invalid mapping destination: ")
