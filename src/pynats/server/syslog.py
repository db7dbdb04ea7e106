"""Logging to syslog (`syslog: true`, `remote_syslog: "udp://host:port"`), as nats-server does.

nats-server hands each log line to Go's `log/syslog` writer, so this is that writer's wire
format, one message per write, ending in a newline:

    remote (udp://, tcp://):  <PRI>2006-01-02T15:04:05Z07:00 HOSTNAME TAG[PID]: message
    a unix socket:            <PRI>Jan _2 15:04:05 TAG[PID]: message

The tag is the name the server was started as (`nats-server`). The severity follows the
level: notices and traces `notice` (5), warnings `warning` (4), errors `err` (3), fatal
errors `crit` (2), debug lines `debug` (7). The facility is `daemon` for the local syslog
(`syslog: true`, which tries /dev/log, /var/run/syslog and /var/run/log, datagram then
stream) and 0 (`kern`) for `remote_syslog`, whose writer nats-server opens with the bare
LOG_DEBUG priority. A failed write is retried once on a fresh connection and then dropped.

`format_message` is the pure part; `SyslogWriter` owns the socket (and raises `SyslogError`
with nats-server's words when it cannot start).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time

from .conf.units import go_quote

NOTICE, WARNING, ERR, CRIT, DEBUG = 5, 4, 3, 2, 7
SEVERITY_BY_LABEL = {"INF": NOTICE, "TRC": NOTICE, "WRN": WARNING, "ERR": ERR, "FTL": CRIT}
SEVERITY_BY_LABEL["DBG"] = DEBUG
FACILITY_DAEMON = 3 << 3
FACILITY_KERN = 0
LOCAL_SYSLOG_PATHS = ("/dev/log", "/var/run/syslog", "/var/run/log")
DEFAULT_TAG = "nats-server"

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


class SyslogError(Exception):
    """The syslog could not be reached or its address is wrong: nats-server's text, which it
    logs through Go's standard logger before exiting with status 1."""


class _DialError(Exception):
    """A failed dial, in the words of Go's net.Dial (`dial tcp host:port: connect: ...`)."""


def process_tag(argv0: str | None = None) -> str:
    """The name the server was started as (nats-server's GetSysLoggerTag); `python -m`
    starts it as a `__main__.py`, which says nothing, so that one is `nats-server`."""
    name = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    return DEFAULT_TAG if not name or name.endswith(".py") else name


def rfc3339_local(now: float) -> str:
    """Go's time.RFC3339 of the local time: `Z` for UTC, else the offset."""
    tm = time.localtime(now)
    offset = tm.tm_gmtoff or 0
    if offset == 0:
        zone = "Z"
    else:
        sign = "+" if offset > 0 else "-"
        hours, minutes = divmod(abs(offset) // 60, 60)
        zone = f"{sign}{hours:02d}:{minutes:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + zone


def stamp_local(now: float) -> str:
    """Go's time.Stamp (`Jan _2 15:04:05`), in English whatever the locale."""
    tm = time.localtime(now)
    return f"{_MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} " + time.strftime("%H:%M:%S", tm)


def format_message(
    priority: int, tag: str, msg: str, *, is_local: bool, now: float, hostname: str, pid: int
) -> bytes:
    """One message as Go's log/syslog writes it (a unix socket gets the short local form)."""
    newline = "" if msg.endswith("\n") else "\n"
    if is_local:
        text = f"<{priority}>{stamp_local(now)} {tag}[{pid}]: {msg}{newline}"
    else:
        text = f"<{priority}>{rfc3339_local(now)} {hostname} {tag}[{pid}]: {msg}{newline}"
    return text.encode("utf-8", errors="replace")


def parse_remote(url: str) -> tuple[str, str]:
    """`udp://host:port`, `tcp://host:port` or `unix:///path` -> (network, address), with the
    errors nats-server gives (Go's url.Parse, then its own check of the scheme)."""
    match = _SCHEME.match(url)
    if match is None:
        first_segment = url.split("/", 1)[0]
        if ":" in first_segment:
            raise SyslogError(
                f"parse {go_quote(url)}: first path segment in URL cannot contain colon"
            )
        network, rest = "", url
    else:
        network, rest = match.group()[:-1].lower(), url[match.end() :]
    host, path = "", rest
    if rest.startswith("//"):
        authority, slash, tail = rest[2:].partition("/")
        host, path = authority.rpartition("@")[2], slash + tail
        if host.startswith("[") and "]" not in host:
            raise SyslogError(f"parse {go_quote(url)}: missing ']' in host")
    path = path.split("?", 1)[0].split("#", 1)[0]
    if network in ("udp", "tcp"):
        return network, host
    if network == "unix":
        return network, path
    raise SyslogError(f"error invalid network type: {go_quote(network)}")


def _errno_text(e: OSError) -> str:
    """An OS error as Go's syscall.Errno prints it ("connection refused")."""
    text = e.strerror or str(e)
    return text[:1].lower() + text[1:]


def _dial_inet(network: str, address: str) -> socket.socket:
    host, sep, port_text = address.rpartition(":")
    if not sep:
        raise _DialError(f"dial {network} {address}: address {address}: missing port in address")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    kind = socket.SOCK_DGRAM if network == "udp" else socket.SOCK_STREAM
    try:
        infos = socket.getaddrinfo(host or None, int(port_text), type=kind)
    except (OSError, ValueError) as e:
        raise _DialError(f"dial {network} {address}: {e}") from None
    last: OSError | None = None
    for family, socktype, proto, _name, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            sock.connect(sockaddr)
        except OSError as e:
            sock.close()
            last = e
            continue
        return sock
    reason = _errno_text(last) if last is not None else "no suitable address"
    raise _DialError(f"dial {network} {address}: connect: {reason}")


def _dial_unix(path: str, kinds: tuple[int, ...]) -> socket.socket:
    last: OSError | None = None
    for kind in kinds:
        sock = socket.socket(socket.AF_UNIX, kind)
        try:
            sock.connect(path)
        except OSError as e:
            sock.close()
            last = e
            continue
        return sock
    assert last is not None
    raise _DialError(f"dial unix {path}: connect: {_errno_text(last)}")


class SyslogWriter:
    """A connection to a syslog daemon: the local one (`remote=""`) or `remote_syslog`'s."""

    def __init__(self, remote: str = "", *, tag: str | None = None) -> None:
        self.remote = remote
        self.tag = process_tag() if tag is None else tag
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        if remote:
            self.network, self.address = parse_remote(remote)
            self.facility = FACILITY_KERN
        else:
            self.network, self.address = "", ""
            self.facility = FACILITY_DAEMON
        self.is_local = self.network in ("", "unix")
        try:
            self._sock: socket.socket | None = self._connect()
        except _DialError as e:
            raise SyslogError(f"error connecting to syslog: {go_quote(str(e))}") from None

    def _connect(self) -> socket.socket:
        if self.network in ("udp", "tcp"):
            return _dial_inet(self.network, self.address)
        if self.network == "unix":
            return _dial_unix(self.address, (socket.SOCK_STREAM,))
        for path in LOCAL_SYSLOG_PATHS:
            try:
                return _dial_unix(path, (socket.SOCK_DGRAM, socket.SOCK_STREAM))
            except _DialError:
                continue
        raise _DialError("Unix syslog delivery error")

    def write(self, severity: int, msg: str) -> None:
        data = format_message(
            self.facility | severity,
            self.tag,
            msg,
            is_local=self.is_local,
            now=time.time(),
            hostname=self.hostname,
            pid=self.pid,
        )
        for _attempt in range(2):
            if self._sock is None:
                try:
                    self._sock = self._connect()
                except _DialError:
                    return
            try:
                self._sock.sendall(data)
                return
            except OSError:
                self._sock.close()
                self._sock = None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
