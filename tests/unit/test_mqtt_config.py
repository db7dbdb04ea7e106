"""The `mqtt {}` block, judged by pynats as by nats-server: `-t` verdicts and messages, and the
start-up refusals of nats-server's `validateMQTTOptions` (checked in-process on our side)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.support.servers import oracle_server_path

from pynats.app import ConfigurationError, load_config, main, validate_options
from pynats.server.options import Options

USERS = "authorization { users: [{user: x, password: y}] }\n"


def write(tmp_path: Path, body: str, *, jetstream: bool = True, users: bool = True) -> Path:
    path = tmp_path / "mqtt.conf"
    js = f"jetstream {{ store_dir: {tmp_path / 'js'} }}\n" if jetstream else ""
    path.write_text(
        f"server_name: s1\nlisten: 127.0.0.1:-1\n{js}{USERS if users else ''}mqtt {{ {body} }}\n"
    )
    return path


def go_check(path: Path) -> tuple[int, str]:
    result = subprocess.run(
        [oracle_server_path(), "-t", "-c", path.name],
        capture_output=True,
        text=True,
        cwd=path.parent,
        timeout=20,
    )
    return result.returncode, result.stderr.strip()


def our_check(path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(path.parent)
    code = main(["-t", "-c", path.name])
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    "body",
    [
        "port: 1883",
        'listen: "127.0.0.1:1883", ack_wait: "1m", max_ack_pending: 100, js_domain: "hub"',
        'port: 1883, js_api_timeout: "2s", consumer_inactive_threshold: "1h"',
        "port: 1883, consumer_memory_storage: true, stream_replicas: 1",
        "port: 1883, reject_qos2_publish: true, downgrade_qos2_subscribe: true",
        "port: 1883, authorization { token: t, timeout: 2 }, no_auth_user: x",
        'port: "x"',
        "port: 1883, ack_wait: 5",
        'port: 1883, ack_wait: "bad"',
        "port: 1883, max_ack_pending: 70000",
        "port: 1883, consumer_replicas: 3",
        "port: 1883, reject_qos2_publish: 1",
        "port: 1883, bogus: 1",
        "port: 1883, authorization { users: [] }",
    ],
)
def test_config_check_matches_nats_server(
    tmp_path: Path, body: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, body)
    expected = go_check(path)
    assert our_check(path, capsys, monkeypatch) == expected


@pytest.mark.parametrize(
    ("body", "jetstream", "text"),
    [
        ('port: 1883, ack_wait: "-1s"', True, "ack wait must be a positive value"),
        (
            "port: 1883, no_auth_user: bob",
            True,
            'no_auth_user: "bob" not present as user or nkey in authorization block or account '
            "configuration",
        ),
        (
            "port: 1883, authorization { token: t }",
            True,
            "mqtt authentication token not compatible with presence of users/nkeys",
        ),
        (
            "port: 1883, authorization { user: u, password: p }",
            True,
            "mqtt authentication username not compatible with presence of users/nkeys",
        ),
        (
            "port: 1883",
            False,
            "mqtt requires JetStream to be enabled if running in standalone mode",
        ),
    ],
)
def test_start_up_refusal_matches_nats_server(
    tmp_path: Path, body: str, jetstream: bool, text: str
) -> None:
    path = write(tmp_path, body, jetstream=jetstream)
    result = subprocess.run(
        [oracle_server_path(), "-c", str(path)], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 1
    assert f"nats-server: {text}" in result.stderr
    opts = load_config(Options(config_file=str(path)))
    with pytest.raises(ConfigurationError) as refused:
        validate_options(opts)
    assert str(refused.value) == text
