"""`nats top NAME`: nats-top's screen for one server, through the system account.

Every `--interval` seconds the server's VARZ and CONNZ are requested and drawn as natscli's
top package draws them: a header (version, uptime, CPU, memory, slow consumers, messages and
bytes in and out with their rates per second) and a table of connections, sorted by the
server (`--sort`, one of natscli's keys) and limited to `--conns` of them:

```
NATS server version 2.10.22 (uptime: 1m3s)
Server: cli-test
  ID:   NB...
  Load: CPU:  0.0%  Memory: 21.3M  Slow Consumers: 0
  In:   Msgs: 12  Bytes: 1.2K  Msgs/Sec: 0.0  Bytes/Sec: 0
  Out:  Msgs: 9  Bytes: 870  Msgs/Sec: 0.0  Bytes/Sec: 0

Connections Polled: 2
  HOST                CID    NAME   SUBS    PENDING     MSGS_TO ...
```

How it asks: the first request is `$SYS.REQ.SERVER.PING.VARZ` filtered by server name (the
answer whose name or ID is exactly NAME is kept, as natscli's exact match); later requests go
to that server's own `$SYS.REQ.SERVER.<id>.VARZ|CONNZ` subjects.

On a terminal the screen is redrawn in place and keys work as in nats-top: `q` quits, space
toggles rates per second in the table, `s` the subscriptions column, `b` raw numbers, `d` DNS
names, `h`/`?` the help screen (natscli's `o` and `n` prompts are not here: use `--sort` and
`--conns`). Without a terminal (a pipe) each screen is printed after the previous one with
a blank line between them; `-r/--max-refresh N` stops after N screens, and `-o -` prints one
screen (`--delimiter` makes it CSV-like), as in natscli.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from nats.aio.client import Client

from pynats.cli.server.report import NO_PRIVILEGES
from pynats.cli.server.request import CONNZ_SORTS
from pynats.cli.ui.command import NatsGroup
from pynats.cli.ui.connect import connection, run_async
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import is_tty, log, out_raw
from pynats.gotime import NS_PER_S, parse_rfc3339

REQUEST_TIMEOUT_S = 1.0
CLEAR = "\033[2J\033[1;1H"
HIDE_CURSOR = "\033[?25l"
SHOW_CURSOR = "\033[?25h"

HELP_SCREEN = """
Command          Description

o<option>        Set primary sort key to <option> (here: start again with --sort).

                 Option can be one of: {cid|subs|pending|msgs_to|msgs_from|
                 bytes_to|bytes_from|idle|last}

n<limit>         Set sample size of connections (here: start again with --conns).

s                Toggle displaying connection subscriptions.

d                Toggle activating DNS address lookup for clients.

b                Toggle displaying raw bytes.

space            Toggle displaying rates per second in connections.

q                Quit nats-top.

Press any key to continue...

"""


def register(root: NatsGroup) -> None:
    @root.command("top", help="Shows top-like statistic for connections on a specific server")
    @click.argument("name", required=True, help="The server name to gather statistics for")
    @click.option(
        "-n", "--conns", default=1024, type=int, help="Maximum number of connections to show"
    )
    @click.option("-d", "--interval", "delay", default=1, type=int, help="Refresh interval")
    @click.option(
        "--sort", default="cid", type=click.Choice(CONNZ_SORTS), help="Sort connections by"
    )
    @click.option("--lookup", is_flag=True, help="Looks up client addresses in DNS")
    @click.option("-o", "--output", default="", help="Saves the first snapshot to a file")
    @click.option(
        "--delimiter", default="", help="Specifies a output delimiter, defaults to grid-like text"
    )
    @click.option("-b", "--raw", is_flag=True, help="Show raw bytes")
    @click.option("-r", "--max-refresh", default=-1, type=int, help="Maximum refreshes")
    @click.option("--subs", is_flag=True, help="Shows the subscriptions column")
    def top(
        name: str,
        conns: int,
        delay: int,
        sort: str,
        lookup: bool,
        output: str,
        delimiter: str,
        raw: bool,
        max_refresh: int,
        subs: bool,
    ) -> None:
        engine = Engine(name, conns, sort, subs)
        view = View(subs=subs, raw=raw, lookup=lookup)
        run_async(run_top(engine, view, max(delay, 1), output, delimiter, max_refresh))


# -- fetching ---------------------------------------------------------------------------------


@dataclass
class Rates:
    in_msgs: float = 0.0
    out_msgs: float = 0.0
    in_bytes: float = 0.0
    out_bytes: float = 0.0
    # per connection: the change of (in_msgs, out_msgs, in_bytes, out_bytes) since last time
    connections: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)


@dataclass
class Snapshot:
    varz: dict[str, Any] = field(default_factory=dict)
    connz: dict[str, Any] = field(default_factory=dict)
    rates: Rates = field(default_factory=Rates)
    error: str = ""


class Engine:
    """Asks one server for its VARZ and CONNZ and keeps what rates need from the last time."""

    def __init__(self, host: str, conns: int, sort: str, subs: bool) -> None:
        self.host = host
        self.conns = conns
        self.sort = sort
        self.subs = subs
        self.server_id = ""
        self.last: Snapshot | None = None
        self.nc: Client | None = None

    async def find_server(self) -> None:
        """The first VARZ: every server answering PING.VARZ for NAME, the exact one kept."""
        assert self.nc is not None
        nc = self.nc
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        subject = "$SYS.REQ.SERVER.PING.VARZ"
        body = json.dumps({"server_name": self.host}).encode()
        trace(f">>> {subject}: {body.decode()}")
        try:
            await nc.publish(subject, body, reply=inbox)
            deadline = time.monotonic() + REQUEST_TIMEOUT_S
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    msg = await sub.next_msg(timeout=remaining)
                except Exception:  # nats-py's timeout
                    break
                if msg.headers and msg.headers.get("Status") == "503":
                    raise CliError(f"initial test request failed: {NO_PRIVILEGES}")
                trace(f"<<< ({len(msg.data)}B) {msg.data.decode(errors='replace')}")
                reply = _json(msg.data)
                server = reply.get("server") or {}
                if self.host in (server.get("name"), server.get("id")):
                    if reply.get("error"):
                        raise CliError(f"initial test request failed: {_error_text(reply)}")
                    self.server_id = str(server.get("id", ""))
                    return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        raise CliError("initial test request failed: nats: timeout")

    async def request(self, kind: str, options: dict[str, Any]) -> dict[str, Any]:
        import nats.errors

        assert self.nc is not None
        subject = f"$SYS.REQ.SERVER.{self.server_id}.{kind}"
        body = json.dumps(options).encode()
        trace(f">>> {subject}: {body.decode()}")
        try:
            msg = await self.nc.request(subject, body, timeout=REQUEST_TIMEOUT_S)
        except nats.errors.NoRespondersError as exc:
            raise CliError(NO_PRIVILEGES) from exc
        except nats.errors.TimeoutError as exc:
            raise CliError("nats: timeout") from exc
        trace(f"<<< ({len(msg.data)}B) {msg.data.decode(errors='replace')}")
        reply = _json(msg.data)
        if reply.get("error"):
            raise CliError(_error_text(reply))
        data = reply.get("data")
        return data if isinstance(data, dict) else {}

    async def fetch(self) -> Snapshot:
        snapshot = Snapshot()
        try:
            snapshot.varz = await self.request("VARZ", {})
            options: dict[str, Any] = {"limit": self.conns, "sort": self.sort}
            if self.subs:
                options["subscriptions"] = True
            snapshot.connz = await self.request("CONNZ", options)
        except CliError as exc:
            snapshot.error = str(exc)
            return snapshot
        snapshot.rates = self._rates(snapshot)
        self.last = snapshot
        return snapshot

    def _rates(self, now: Snapshot) -> Rates:
        """Server rates per second since the last snapshot (by the server's clock, `now`);
        per connection, as nats-top, the change since the last snapshot."""
        rates = Rates()
        before = self.last
        previous: dict[int, dict[str, Any]] = {}
        if before is not None:
            previous = {_int(c, "cid"): c for c in before.connz.get("connections") or []}
            elapsed_ns = _time_ns(now.varz.get("now")) - _time_ns(before.varz.get("now"))
            if elapsed_ns > 0:

                def per_second(key: str) -> float:
                    change = _int(now.varz, key) - _int(before.varz, key)
                    return change * NS_PER_S / elapsed_ns

                rates.in_msgs, rates.out_msgs = per_second("in_msgs"), per_second("out_msgs")
                rates.in_bytes, rates.out_bytes = per_second("in_bytes"), per_second("out_bytes")
        for conn in now.connz.get("connections") or []:
            cid = _int(conn, "cid")
            last = previous.get(cid)
            if last is None:
                rates.connections[cid] = (0, 0, 0, 0)
                continue
            in_msgs, out_msgs, in_bytes, out_bytes = (
                _int(conn, key) - _int(last, key)
                for key in ("in_msgs", "out_msgs", "in_bytes", "out_bytes")
            )
            rates.connections[cid] = (in_msgs, out_msgs, in_bytes, out_bytes)
        return rates


def trace(message: str) -> None:
    if current_settings().trace:
        log(message)


def _json(data: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(data or b"{}")
    except ValueError as exc:
        raise CliError(f"invalid JSON reply: {exc}") from exc
    return reply if isinstance(reply, dict) else {}


def _error_text(reply: dict[str, Any]) -> str:
    error = reply.get("error")
    if isinstance(error, dict):
        return str(error.get("description") or error.get("code") or error)
    return str(error)


def _int(data: dict[str, Any], key: str) -> int:
    try:
        return int(data.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def _time_ns(text: Any) -> int:
    try:
        return parse_rfc3339(str(text or ""))
    except ValueError:
        return 0


# -- drawing ----------------------------------------------------------------------------------


def psize(raw: bool, size: float) -> str:
    """nats-top's byte sizes: 512, 1.5K, 2.0M, 1.1G (1024-based)."""
    if raw or size < 1024:
        return f"{size:.0f}"
    for unit, scale in (("K", 1024), ("M", 1024**2)):
        if size < scale * 1024:
            return f"{size / scale:.1f}{unit}"
    return f"{size / 1024**3:.1f}G"


def nsize(raw: bool, count: float) -> str:
    """nats-top's counts: 999, 1.5K, 2.0M, 3.1B, 1.0T (1000-based)."""
    if raw or count < 1000:
        return f"{count:.0f}"
    for unit, scale in (("K", 10**3), ("M", 10**6), ("B", 10**9)):
        if count < scale * 1000:
            return f"{count / scale:.1f}{unit}"
    return f"{count / 10**12:.1f}T"


def go_time_text(text: Any) -> str:
    """A JSON timestamp as Go's time.Time.String() prints it: `2024-01-02 15:04:05.5 +0000 UTC`."""
    ns = _time_ns(text)
    if not ns:
        return "0001-01-01 00:00:00 +0000 UTC"
    secs, frac = divmod(ns, NS_PER_S)
    base = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(secs))
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + " +0000 UTC"


@dataclass
class View:
    """What the screen shows; the keys of the interactive screen toggle these."""

    subs: bool = False
    raw: bool = False
    lookup: bool = False
    rates: bool = False
    resolved: dict[str, str] = field(default_factory=dict)

    def host_of(self, conn: dict[str, Any]) -> str:
        address = f"{conn.get('ip', '')}:{conn.get('port', 0)}"
        if not self.lookup:
            return address
        ip = str(conn.get("ip", ""))
        if ip not in self.resolved:
            try:
                self.resolved[ip] = socket.gethostbyaddr(ip)[0] or address
            except OSError:
                self.resolved[ip] = address
        return self.resolved[ip]


STANDARD_HEADERS = (
    "SUBS",
    "PENDING",
    "MSGS_TO",
    "MSGS_FROM",
    "BYTES_TO",
    "BYTES_FROM",
    "LANG",
    "VERSION",
    "UPTIME",
    "LAST_ACTIVITY",
)
WIDTHS = (6, 10, 10, 10, 10, 10, 7, 7, 7, 40)
HOST_WIDTH = 15


def _header_values(snap: Snapshot, view: View) -> dict[str, str]:
    varz, rates, raw = snap.varz, snap.rates, view.raw
    return {
        "version": str(varz.get("version", "")),
        "uptime": str(varz.get("uptime", "")),
        "cpu": f"{float(varz.get('cpu') or 0):.1f}%",
        "mem": psize(False, _int(varz, "mem")),
        "slow": str(_int(varz, "slow_consumers")),
        "in_msgs": nsize(raw, _int(varz, "in_msgs")),
        "out_msgs": nsize(raw, _int(varz, "out_msgs")),
        "in_bytes": psize(raw, _int(varz, "in_bytes")),
        "out_bytes": psize(raw, _int(varz, "out_bytes")),
        "in_msgs_rate": f"{rates.in_msgs:.1f}",
        "out_msgs_rate": f"{rates.out_msgs:.1f}",
        "in_bytes_rate": psize(raw, int(rates.in_bytes)),
        "out_bytes_rate": psize(raw, int(rates.out_bytes)),
    }


def _row_values(conn: dict[str, Any], snap: Snapshot, view: View) -> list[str]:
    raw = view.raw
    if view.rates:
        cid = int(conn.get("cid", 0))
        in_msgs, out_msgs, in_bytes, out_bytes = snap.rates.connections.get(cid, (0, 0, 0, 0))
    else:
        in_msgs, out_msgs = _int(conn, "in_msgs"), _int(conn, "out_msgs")
        in_bytes, out_bytes = _int(conn, "in_bytes"), _int(conn, "out_bytes")
    return [
        str(_int(conn, "subscriptions")),
        nsize(raw, _int(conn, "pending_bytes")),
        nsize(raw, out_msgs),
        nsize(raw, in_msgs),
        psize(raw, out_bytes),
        psize(raw, in_bytes),
        str(conn.get("lang", "")),
        str(conn.get("version", "")),
        str(conn.get("uptime", "")),
        go_time_text(conn.get("last_activity")),
    ]


def render_screen(snap: Snapshot, view: View) -> str:
    """The grid-like screen of natscli's top."""
    h = _header_values(snap, view)
    varz = snap.varz
    name = str(varz.get("server_name", ""))
    if name == varz.get("server_id"):
        name = ""
    lines = [
        f"NATS server version {h['version']} (uptime: {h['uptime']}) {snap.error}",
        f"Server: {name}",
        f"  ID:   {varz.get('server_id', '')}",
        f"  Load: CPU:  {h['cpu']}  Memory: {h['mem']}  Slow Consumers: {h['slow']}",
        f"  In:   Msgs: {h['in_msgs']}  Bytes: {h['in_bytes']}  Msgs/Sec: {h['in_msgs_rate']}"
        f"  Bytes/Sec: {h['in_bytes_rate']}",
        f"  Out:  Msgs: {h['out_msgs']}  Bytes: {h['out_bytes']}  Msgs/Sec: {h['out_msgs_rate']}"
        f"  Bytes/Sec: {h['out_bytes_rate']}",
        "",
        f"Connections Polled: {_int(snap.connz, 'num_connections')}",
    ]
    conns: list[dict[str, Any]] = list(snap.connz.get("connections") or [])
    host_width, name_width = HOST_WIDTH, 0
    for conn in conns:
        host = view.host_of(conn)
        if len(host) > host_width:
            host_width = len(host) + 2
        conn_name = str(conn.get("name", ""))
        if len(conn_name) > name_width:
            name_width = max(len(conn_name) + 2, len("NAME"))

    def row(host: str, cid: str, conn_name: str, values: list[str], subs: str) -> str:
        text = f"  {host:<{host_width}}  {cid:<6} "
        if name_width:
            text += f"{conn_name:<{name_width}} "
        text += "  ".join(f"{v:<{w}}" for v, w in zip(values, WIDTHS, strict=True))
        return text + subs

    header_subs = f"{'SUBSCRIPTIONS':>13}" if view.subs else ""
    lines.append(row("HOST", "CID", "NAME", list(STANDARD_HEADERS), header_subs))
    for conn in conns:
        subs = ", ".join(conn.get("subscriptions_list") or []) if view.subs else ""
        lines.append(
            row(
                view.host_of(conn),
                str(_int(conn, "cid")),
                str(conn.get("name", "")),
                _row_values(conn, snap, view),
                subs,
            )
        )
    return "\n".join(lines) + "\n"


def render_delimited(snap: Snapshot, view: View, delimiter: str) -> str:
    """The `--delimiter` variant of the screen (every connection has a NAME column)."""
    h = _header_values(snap, view)
    d = delimiter
    lines = [
        d.join(["NATS server version", h["version"], f"(uptime: {h['uptime']})", snap.error]),
        "Server:",
        d.join(["Load:", "CPU:", h["cpu"], "Memory:", h["mem"], "Slow Consumers:", h["slow"]]),
        d.join(["In:", "Msgs:", h["in_msgs"], "Bytes:", h["in_bytes"], "Msgs/Sec:",
                h["in_msgs_rate"], "Bytes/Sec:", h["in_bytes_rate"]]),
        d.join(["Out:", "Msgs:", h["out_msgs"], "Bytes:", h["out_bytes"], "Msgs/Sec:",
                h["out_msgs_rate"], "Bytes/Sec:", h["out_bytes_rate"]]),
        "",
        d.join(["Connections Polled:", str(_int(snap.connz, "num_connections"))]),
    ]  # fmt: skip
    header = ["HOST", "CID", "NAME", *STANDARD_HEADERS]
    if view.subs:
        header.append("SUBSCRIPTIONS")
    lines.append(d.join(header))
    plain = View(subs=view.subs, raw=view.raw, lookup=view.lookup, resolved=view.resolved)
    for conn in snap.connz.get("connections") or []:
        cells = [view.host_of(conn), str(_int(conn, "cid")), str(conn.get("name", ""))]
        cells += _row_values(conn, snap, plain)
        line = d.join(cells)
        if view.subs:
            line += d + "  ".join(conn.get("subscriptions_list") or [])
        lines.append(line)
    return "\n".join(lines) + "\n"


# -- running ----------------------------------------------------------------------------------


async def run_top(
    engine: Engine, view: View, delay: int, output: str, delimiter: str, max_refresh: int
) -> None:
    async with connection() as nc:
        engine.nc = nc
        await engine.find_server()
        if output:
            snap = await engine.fetch()
            text = (
                render_delimited(snap, view, delimiter) if delimiter else render_screen(snap, view)
            )
            if output == "-":
                out_raw(text.encode())
                return
            try:
                path = Path(output)
                path.write_text(text)
                path.chmod(0o600)
            except OSError as exc:
                raise CliError(
                    f"failed to write stats-snapshot to output file '{output}': {exc}"
                ) from exc
            return
        if is_tty(sys.stdout):
            await _interactive(engine, view, delay, max_refresh)
        else:
            await _printed(engine, view, delay, max_refresh)


async def _printed(engine: Engine, view: View, delay: int, max_refresh: int) -> None:
    """Screens one after the other, for a pipe."""
    shown = 0
    while True:
        started = time.monotonic()
        snap = await engine.fetch()
        out_raw((("\n" if shown else "") + render_screen(snap, view)).encode())
        shown += 1
        if 0 < max_refresh <= shown:
            return
        await asyncio.sleep(max(0.0, delay - (time.monotonic() - started)))


async def _interactive(engine: Engine, view: View, delay: int, max_refresh: int) -> None:
    """The screen redrawn in place, with nats-top's keys."""
    keys: asyncio.Queue[str] = asyncio.Queue()
    with _keyboard(keys):
        out_raw(HIDE_CURSOR.encode())
        try:
            shown = 0
            snap: Snapshot | None = None
            help_shown = False
            next_fetch = 0.0
            while True:
                if time.monotonic() >= next_fetch:
                    next_fetch = time.monotonic() + delay
                    snap = await engine.fetch()
                    shown += 1
                text = HELP_SCREEN if help_shown else render_screen(snap or Snapshot(), view)
                out_raw((CLEAR + text).encode())
                if 0 < max_refresh <= shown:
                    return
                try:
                    key = await asyncio.wait_for(
                        keys.get(), max(0.0, next_fetch - time.monotonic())
                    )
                except TimeoutError:
                    continue
                if help_shown:
                    help_shown = False
                elif key in ("q", "\x03"):
                    return
                elif key == " ":
                    view.rates = not view.rates
                elif key == "s":
                    view.subs = engine.subs = not view.subs
                elif key == "b":
                    view.raw = not view.raw
                elif key == "d":
                    view.lookup = not view.lookup
                elif key in ("h", "?"):
                    help_shown = True
        finally:
            out_raw((CLEAR + SHOW_CURSOR).encode())


@contextlib.contextmanager
def _keyboard(keys: asyncio.Queue[str]) -> Iterator[None]:
    """Single key presses from a terminal on stdin, into `keys` (nothing without a terminal)."""
    if not is_tty(sys.stdin):
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    loop = asyncio.get_running_loop()

    def readable() -> None:
        data = os.read(fd, 32)
        for char in data.decode(errors="ignore"):
            keys.put_nowait(char)

    tty.setcbreak(fd)
    loop.add_reader(fd, readable)
    try:
        yield
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
