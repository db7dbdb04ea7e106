"""A reload (SIGHUP) rebuilds the OCSP stapling (`ocsp {}`), as nats-server 2.15.1 does: the
monitors are built again from the reloaded file, so a certificate rotated in place gets its
own staple and is served by new handshakes, a switched `ocsp` mode takes effect, and a
certificate that cannot be stapled is warned about (`Can't restart OCSP features: ...`).

Both servers run the same files; the staple served after each reload is read with
pyOpenSSL's client (`set_ocsp_client_callback`), on the client port (INFO first, and
`handshake_first`, whose pyOpenSSL listener follows the reloaded context) and on the
websocket port."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.x509 import ocsp
from tests.conftest import connect
from tests.support.servers import RunningServer, start_server
from tests.support.staple_pki import (
    IssuedCert,
    StaplePKI,
    StapleResponder,
    running_pki,
    staple_handshake,
)

RELOADED = "Reloaded server configuration"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StaplePKI, StapleResponder]]:
    yield from running_pki(Path(tmp_path_factory.mktemp("staple-reload")))


@pytest.fixture(params=["pynats", "go"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def handshake(port: int, *, handshake_first: bool = False) -> tuple[int, str]:
    """(the serial of the certificate served, `<serial>:<status>` of the staple or "none")."""
    seen = staple_handshake(port, info_first=not handshake_first)
    if not seen.staple:
        return seen.serial, "none"
    resp = ocsp.load_der_ocsp_response(seen.staple)
    return seen.serial, f"{resp.serial_number}:{resp.certificate_status.name.lower()}"


def message(line: str) -> str:
    """A log line without its pid, time and the configuration digest."""
    text = re.sub(r"^\[\d+\] \S+ \S+ ", "", line)
    text = re.sub(r" \(sha256:[0-9a-f]+\)$", "", text)
    return re.sub(r"checking again in \S+$", "checking again in <d>", text)


class Live:
    """A server on a configuration whose certificate files can be rotated in place."""

    def __init__(self, kind: str, base: Path, authority: StaplePKI, cert: IssuedCert) -> None:
        self.kind = kind
        self.base = base
        self.authority = authority
        self.cert_file = base / "live.pem"
        self.key_file = base / "live-key.pem"
        self.conf = base / "live.conf"
        self.rotate(cert)
        self.srv: RunningServer | None = None

    def rotate(self, cert: IssuedCert) -> None:
        """The certificate and key files rewritten in place (same paths)."""
        shutil.copyfile(cert.key_file, self.key_file)
        shutil.copyfile(cert.cert_file, self.cert_file)

    def write(self, ocsp_conf: str, *, handshake_first: bool = False, extra: str = "") -> None:
        first = "  handshake_first: true\n" if handshake_first else ""
        self.conf.write_text(
            f'tls {{\n  cert_file: "{self.cert_file}"\n  key_file: "{self.key_file}"\n'
            f'  ca_file: "{self.authority.ca_file}"\n{first}}}\n{ocsp_conf}\n'
            f'store_dir: "{self.base / "store"}"\n{extra}'
        )

    def start(self) -> RunningServer:
        self.srv = start_server(["-c", str(self.conf)], oracle=self.kind == "go")
        return self.srv

    def reload(self, *, found: bool) -> list[str]:
        """SIGHUP; the lines from `Trapped "hangup" signal` to `Reloaded server
        configuration`, then the `Found OCSP status` line when `found`."""
        srv = self.srv
        assert srv is not None
        start = len(srv.log_lines)
        srv.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while True:
            lines = [message(line) for line in srv.log_lines[start:]]
            done = any(line.startswith(f"[INF] {RELOADED}") for line in lines)
            found_lines = [line for line in lines if "Found OCSP status" in line]
            if done and (not found or found_lines):
                # nats-server's monitor logs it from its own goroutine: before or after
                # `Reloaded server configuration` (pynats: after); put last here
                return [line for line in lines if line not in found_lines] + found_lines
            assert time.monotonic() < deadline, "\n".join(srv.log_lines[start:])
            time.sleep(0.01)


def assert_reload_lines(live: Live, *between: str) -> None:
    """A reload without a new staple logs, after its first three lines, `Reloaded: tls =
    enabled`, then `between`, then `Reloaded server configuration`."""
    lines = live.reload(found=False)
    assert lines[3:] == ["[INF] Reloaded: tls = enabled", *between, f"[INF] {RELOADED}"]


@pytest.mark.parametrize("handshake_first", [False, True])
async def test_reload_restaples_a_certificate_rotated_in_place_and_a_switched_mode(
    kind: str, handshake_first: bool, pki: tuple[StaplePKI, StapleResponder], tmp_path: Path
) -> None:
    authority, responder = pki
    first = authority.issue(f"first-{kind}-{handshake_first}")
    second = authority.issue(f"second-{kind}-{handshake_first}")
    for cert in (first, second):
        responder.statuses[cert.cert.serial_number] = "good"
    live = Live(kind, tmp_path, authority, first)
    live.write("ocsp { mode: always }", handshake_first=handshake_first)
    srv = live.start()
    a, b = first.cert.serial_number, second.cert.serial_number
    found = f"Found OCSP status for Client certificate at '{live.cert_file}': good, next update "
    try:
        assert handshake(srv.port, handshake_first=handshake_first) == (a, f"{a}:good")
        tls = ssl.create_default_context(cafile=authority.ca_file)
        url = f"tls://127.0.0.1:{srv.port}"
        before = await connect(url, tls=tls, tls_handshake_first=handshake_first)
        sub = await before.subscribe("up")
        await before.flush()

        # (a) nothing changed: the stapling is rebuilt all the same, the status taken from
        # the store directory
        asked = responder.requests
        lines = live.reload(found=True)
        assert lines[:4] == [
            '[INF] Trapped "hangup" signal',
            "[INF] Reloaded: authorization users",
            "[INF] Reloaded: accounts",
            "[INF] Reloaded: tls = enabled",
        ]
        assert lines[4:6] == [
            "[INF] OCSP Stapling enabled for Client connections",
            f"[INF] {RELOADED}",
        ]
        assert lines[6].startswith(f"[INF] {found}"), lines
        assert handshake(srv.port, handshake_first=handshake_first) == (a, f"{a}:good")
        assert responder.requests == asked

        # (b) the certificate rotated in place: its own status fetched and stapled
        live.rotate(second)
        lines = live.reload(found=True)
        assert lines[3:6] == [
            "[INF] Reloaded: tls = enabled",
            "[INF] OCSP Stapling enabled for Client connections",
            f"[INF] {RELOADED}",
        ]
        assert lines[6].startswith(f"[INF] {found}"), lines
        assert handshake(srv.port, handshake_first=handshake_first) == (b, f"{b}:good")
        assert responder.requests == asked + 1
        # the connection made before the reloads keeps going
        await before.publish("up", b"still")
        assert (await sub.next_msg(2)).data == b"still"

        # (c) `ocsp` switched off, then on again
        live.write("ocsp { mode: never }", handshake_first=handshake_first)
        assert_reload_lines(live, "[INF] Reloaded: OCSP")
        assert handshake(srv.port, handshake_first=handshake_first) == (b, "none")
        live.write("ocsp { mode: always }", handshake_first=handshake_first)
        lines = live.reload(found=True)
        assert lines[3:7] == [
            "[INF] Reloaded: tls = enabled",
            "[INF] Reloaded: OCSP",
            "[INF] OCSP Stapling enabled for Client connections",
            f"[INF] {RELOADED}",
        ]
        assert lines[7].startswith(f"[INF] {found}"), lines
        assert handshake(srv.port, handshake_first=handshake_first) == (b, f"{b}:good")
        # `auto` with a certificate without Must-Staple: nothing stapled
        live.write("ocsp { mode: auto }", handshake_first=handshake_first)
        assert_reload_lines(live, "[INF] Reloaded: OCSP")
        assert handshake(srv.port, handshake_first=handshake_first) == (b, "none")
        await before.publish("up", b"again")
        assert (await sub.next_msg(2)).data == b"again"
        await before.close()
    finally:
        srv.stop()


async def test_reload_warns_when_the_rotated_certificate_cannot_be_stapled(
    kind: str, pki: tuple[StaplePKI, StapleResponder], tmp_path: Path
) -> None:
    """`always` and a certificate whose status cannot be had (no responder; revoked): the
    server warns, serves the new certificate without a staple and keeps running."""
    authority, responder = pki
    good = authority.issue(f"good-{kind}")
    silent = authority.issue(f"silent-{kind}", ocsp_url=None)
    revoked = authority.issue(f"revoked-{kind}")
    responder.statuses[good.cert.serial_number] = "good"
    responder.statuses[revoked.cert.serial_number] = "revoked"
    live = Live(kind, tmp_path, authority, good)
    live.write("ocsp { mode: always }")
    srv = live.start()
    try:
        srv.wait_for_log("Found OCSP status")
        live.rotate(silent)
        assert_reload_lines(
            live,
            "[WRN] Can't restart OCSP features: bad OCSP status update for certificate at "
            f"'{live.cert_file}': no available ocsp servers",
        )
        assert handshake(srv.port) == (silent.cert.serial_number, "none")
        live.rotate(good)
        lines = live.reload(found=True)
        assert "[INF] OCSP Stapling enabled for Client connections" in lines
        serial = good.cert.serial_number
        assert handshake(srv.port) == (serial, f"{serial}:good")
        # (nats-server 2.15.1 stops the monitors of the last good reload again at each
        # reload: after two failed ones in a row the next reload hangs, so a good one is
        # put between them)
        live.rotate(revoked)
        assert_reload_lines(
            live,
            "[WRN] Can't restart OCSP features: found existing OCSP status for certificate "
            f"at '{live.cert_file}': revoked",
        )
        assert handshake(srv.port) == (revoked.cert.serial_number, "none")
        assert srv.proc.poll() is None
    finally:
        srv.stop()


async def test_reload_restaples_the_websocket_port(
    kind: str, pki: tuple[StaplePKI, StapleResponder], tmp_path: Path
) -> None:
    """The websocket listener (on pyOpenSSL since start-up) serves the rotated
    certificate and its staple after the reload, and none once `ocsp` is switched off."""
    authority, responder = pki
    first = authority.issue(f"ws-first-{kind}")
    second = authority.issue(f"ws-second-{kind}")
    for cert in (first, second):
        responder.statuses[cert.cert.serial_number] = "good"
    live = Live(kind, tmp_path, authority, first)
    ws_port = free_port()
    websocket = (
        f'websocket {{\n  listen: "127.0.0.1:{ws_port}"\n  tls {{\n'
        f'    cert_file: "{live.cert_file}"\n    key_file: "{live.key_file}"\n  }}\n}}\n'
    )
    live.write("ocsp { mode: always }", extra=websocket)
    srv = live.start()
    a, b = first.cert.serial_number, second.cert.serial_number
    try:
        assert handshake(ws_port, handshake_first=True) == (a, f"{a}:good")
        live.rotate(second)
        lines = live.reload(found=True)
        enabled = "[INF] OCSP Stapling enabled for Client connections"
        assert lines.count(enabled) == 2, lines  # the client port's, the websocket's
        assert handshake(ws_port, handshake_first=True) == (b, f"{b}:good")
        assert handshake(srv.port) == (b, f"{b}:good")
        live.write("ocsp { mode: never }", extra=websocket)
        lines = live.reload(found=False)
        assert enabled not in lines
        assert handshake(ws_port, handshake_first=True) == (b, "none")
    finally:
        srv.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
