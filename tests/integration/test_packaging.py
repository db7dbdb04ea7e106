"""The package as a user gets it: `python -m build` makes an sdist and a wheel (built from that
sdist, so both are complete), and the wheel installed into a fresh virtualenv, with its
dependencies from the package index, gives a working `nats-server`, `nats` and
`pynats.testing`.

One slow test on its own (a build, a virtualenv, an install: about a minute; pip's cache makes
the install quick the second time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from tests.support.servers import start_server

pytestmark = pytest.mark.timeout(900)

REPO = Path(__file__).resolve().parents[2]
STEP_TIMEOUT_S = 300

IN_PROCESS_CHECK = """
import asyncio, nats, pynats
from pynats.testing import InProcessServer

async def main():
    async with InProcessServer(jetstream=True) as server:
        nc = await nats.connect(server.url)
        sub = await nc.subscribe("in.process")
        await nc.publish("in.process", b"works")
        msg = await sub.next_msg(timeout=5)
        js = nc.jetstream()
        await js.add_stream(name="S", subjects=["s"])
        ack = await js.publish("s", b"stored")
        await nc.close()
        print(pynats.__file__, msg.data.decode(), ack.seq)

asyncio.run(main())
"""


def clean_env() -> dict[str, str]:
    """The environment without anything pointing at this checkout or its virtualenv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.pop("PIP_NO_CACHE_DIR", None)
    return env


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        cmd,
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, f"{cmd}\n{result.stdout}\n{result.stderr}"
    return result


class Subscriber:
    """`nats sub` running in the background; its output collected line by line."""

    def __init__(self, cmd: list[str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.subscribed = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if "Subscribing on" in line:
                self.subscribed.set()
        self.subscribed.set()

    def output_when_done(self) -> str:
        self.proc.wait(timeout=30)
        return "".join(self.lines)


def test_wheel_installs_into_a_clean_venv_and_works(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)], cwd=tmp_path)
    wheels = list(dist.glob("pynats-*.whl"))
    assert len(wheels) == 1 and len(list(dist.glob("pynats-*.tar.gz"))) == 1

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    bin_dir = venv / "bin"
    run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheels[0])], cwd=tmp_path)

    server = start_server(
        ["-js", "-sd", str(tmp_path / "store")],
        executable=str(bin_dir / "nats-server"),
        http_port=-1,
        cwd=str(tmp_path),
    )
    try:
        assert any("Starting JetStream" in line for line in server.log_lines)
        with urllib.request.urlopen(server.monitor_url + "/metrics", timeout=5) as resp:
            assert b"jetstream_server_total_streams" in resp.read()
        with urllib.request.urlopen(server.monitor_url + "/dashboard", timeout=5) as resp:
            page = resp.read()  # its HTML, style and script are package data of the wheel
        assert b'id="chart-msgs"' in page and b"function drawChart" in page
        nats_cli = [str(bin_dir / "nats"), "--server", server.url]
        assert run([str(bin_dir / "nats"), "--version"], cwd=tmp_path).stdout.strip()

        sub = Subscriber([*nats_cli, "sub", "greetings", "--count", "1"], cwd=tmp_path)
        assert sub.subscribed.wait(30), sub.lines
        run([*nats_cli, "pub", "greetings", "hello from the wheel"], cwd=tmp_path)
        assert "hello from the wheel" in sub.output_when_done()

        run([*nats_cli, "stream", "add", "ORDERS", "--subjects", "orders", "--defaults"], tmp_path)
        run([*nats_cli, "pub", "orders", "one"], cwd=tmp_path)
        info = run([*nats_cli, "stream", "info", "ORDERS", "--json"], cwd=tmp_path).stdout
        assert json.loads(info)["state"]["messages"] == 1
    finally:
        server.stop()

    out = run([str(bin_dir / "python"), "-c", IN_PROCESS_CHECK], cwd=tmp_path).stdout.split()
    assert out[0].startswith(str(venv)), out
    assert out[1:] == ["works", "1"]
