#!/usr/bin/env python3
"""Memory and start-up at scale: pynats and the Go nats-server side by side, in one run.

For each server, four phases, each on a fresh server except where a restart is the point:

1. connections: `--conns` raw TCP clients (CONNECT + PING/PONG each, `--batch` at a time),
   then the server's RSS and /varz `connections`; RSS per connection above the idle server.
2. subscriptions: `--subs` subscriptions on `--sub-conns` connections (distinct subjects
   `scale.<conn>.<i>`, one in ten a wildcard `scale.<conn>.<i>.*` or `scale.<conn>.<i>.>`),
   then RSS and the growth of /varz `subscriptions` (must be `--subs`).
3. stream: a file stream filled with `--msgs` messages of `--size` bytes (pipelined
   publishes with acks, on 100 subjects), RSS; then SIGTERM, and a restart timed from the
   process start to `Server is ready` and to `STREAM.INFO` answering with every message.
4. consumers: `--consumers` durable pull consumers (explicit ack) on that stream, RSS; then
   a restart timed to ready and to `STREAM.INFO` counting every consumer.

RSS is `VmRSS` of /proc/<pid>/status for both servers, read after a 1 s pause. Each server
runs its defaults with a config file holding only the monitoring port and the JetStream
store directory (so Go syncs every 2 minutes while pynats fsyncs before each ack, grouped).
The generator is this process (raw protocol, no client library); the servers are their own
processes. RLIMIT_NOFILE's soft limit is raised to the hard limit here, and the servers
inherit it; if that is too low for `--conns`, the count is scaled down and says so.

    .venv/bin/python benchmarks/scale.py [--go PATH] [--only go|pynats] [--conns 10000]
        [--subs 100000] [--msgs 1000000] [--size 128] [--consumers 1000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from jetstream import connect
from loadgen import CONNECT, HOST, PING, ServerError, open_client
from servers import (
    READY_LINE,
    RunningServer,
    ServerFailed,
    ServerSpec,
    default_go_path,
    free_ports,
    go_spec,
    pynats_spec,
)

STREAM = "SCALE"
STREAM_SUBJECTS = 100
ACK_SUBJECT = b"_scale.ack"
API_REPLY = b"_scale.api"
SETTLE = 1.0  # seconds before reading RSS after a phase
READY_TIMEOUT = 600.0
STOP_TIMEOUT = 300.0
FD_MARGIN = 256  # descriptors besides the client connections (logs, stores, listeners)


class ScaleServer(RunningServer):
    """A server with a config file (monitoring port, JetStream store) on fixed ports, so that
    a restart finds the same store; readiness and stopping are timed."""

    def __init__(self, spec: ServerSpec, conf: Path, port: int, http_port: int) -> None:
        self.http_port = http_port
        self.launched = time.monotonic()
        super().__init__(ServerSpec(spec.name, (*spec.command, "-c", str(conf))), port)

    def __enter__(self) -> ScaleServer:
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> float:
        """Seconds from the process start to `Server is ready` in its log."""
        deadline = self.launched + timeout
        while READY_LINE not in self._log_bytes():
            if self.proc.poll() is not None:
                raise ServerFailed(f"{self.spec.name} exited: {self._tail()}")
            if time.monotonic() > deadline:
                raise ServerFailed(f"{self.spec.name} not ready after {timeout:.0f}s")
            time.sleep(0.005)
        return time.monotonic() - self.launched

    def stop(self) -> None:
        self.stop_timed()

    def stop_timed(self) -> float:
        """SIGTERM and wait for the exit (kill after STOP_TIMEOUT); seconds taken."""
        began = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        took = time.monotonic() - began
        if not self._log.closed:
            self._log.close()
        return took

    def settled_rss_mb(self) -> float:
        time.sleep(SETTLE)
        return self.rss_kb() / 1024

    def varz(self) -> dict[str, object]:
        url = f"http://{HOST}:{self.http_port}/varz"
        with urllib.request.urlopen(url, timeout=30) as reply:
            return json.loads(reply.read())


class Store:
    """A config file and store directory that outlive one server process."""

    def __init__(self, root: Path, name: str, jetstream: bool) -> None:
        self.dir = root / name
        self.dir.mkdir(parents=True)
        self.port, self.http_port = free_ports(2)
        self.conf = self.dir / "server.conf"
        text = f"http: {HOST}:{self.http_port}\n"
        if jetstream:
            text += f'jetstream {{ store_dir: "{self.dir / "store"}" }}\n'
        self.conf.write_text(text)

    def start(self, spec: ServerSpec) -> ScaleServer:
        return ScaleServer(spec, self.conf, self.port, self.http_port)

    def disk_mb(self) -> float:
        total = sum(p.stat().st_size for p in (self.dir / "store").rglob("*") if p.is_file())
        return total / (1 << 20)


# --- the generator: raw protocol -------------------------------------------------------------


def _recv_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ServerError(f"connection closed while waiting for {marker!r}")
        data += chunk
        if b"-ERR" in data:
            raise ServerError(data[data.find(b"-ERR") :].split(b"\r\n")[0].decode())
    return data


def open_clients(port: int, count: int, batch: int) -> list[socket.socket]:
    """`count` connections, `batch` at a time: connect and read INFO for each of a batch, then
    CONNECT + PING on each and wait for every PONG before the next batch."""
    socks: list[socket.socket] = []
    try:
        while len(socks) < count:
            group = []
            for _ in range(min(batch, count - len(socks))):
                sock = socket.create_connection((HOST, port), timeout=60)
                socks.append(sock)
                group.append(sock)
            for sock in group:
                _recv_until(sock, b"\r\n")
            for sock in group:
                sock.sendall(CONNECT + PING)
            for sock in group:
                _recv_until(sock, b"PONG\r\n")
    except BaseException:
        close_all(socks)
        raise
    return socks


def close_all(socks: list[socket.socket]) -> None:
    for sock in socks:
        sock.close()


def sub_frames(conn: int, count: int) -> bytes:
    """`count` SUBs of connection `conn`: literal subjects, every tenth one a wildcard."""
    frames = []
    for i in range(count):
        if i % 20 == 0:
            subject = b"scale.%d.%d.*" % (conn, i)
        elif i % 20 == 10:
            subject = b"scale.%d.%d.>" % (conn, i)
        else:
            subject = b"scale.%d.%d" % (conn, i)
        frames.append(b"SUB %b %d\r\n" % (subject, i + 1))
    return b"".join(frames)


def open_subscribers(port: int, total: int, conns: int) -> list[socket.socket]:
    """`total` subscriptions spread over `conns` connections, each confirmed by a PONG."""
    socks: list[socket.socket] = []
    try:
        for conn in range(conns):
            count = total // conns + (1 if conn < total % conns else 0)
            socks.append(open_client(port, sub_frames(conn, count)))
    except BaseException:
        close_all(socks)
        raise
    return socks


def fill(port: int, total: int, size: int, window: int = 4096, chunk: int = 500) -> int:
    """Publish exactly `total` messages with acks, at most `window` unacknowledged, on
    `STREAM_SUBJECTS` subjects in turn; returns the number of error acks."""
    sock = connect(port)
    sock.sendall(b"SUB %b 1\r\n" % ACK_SUBJECT)
    payload = b"x" * size
    frames = [
        b"PUB scale.js.%d %b %d\r\n%b\r\n" % (i % STREAM_SUBJECTS, ACK_SUBJECT, size, payload)
        for i in range(chunk)
    ]
    whole = b"".join(frames)
    sock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ)
    sent = acked = errors = 0
    out = b""
    carry = b""
    marker = b"MSG " + ACK_SUBJECT
    deadline = time.monotonic() + 3600
    try:
        while acked < total:
            if time.monotonic() > deadline:
                raise ServerError(f"only {acked} of {total} acked")
            if not out and sent < total and sent - acked + chunk <= window:
                n = min(chunk, total - sent)
                out = whole if n == chunk else b"".join(frames[:n])
                sent += n
            if out:
                try:
                    out = out[sock.send(out) :]
                except BlockingIOError:
                    pass
            if sel.select(timeout=0 if out else 1.0):
                try:
                    data = sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    raise ServerError("server closed the publishing connection")
                data = carry + data
                acked += data.count(marker)
                errors += data.count(b'"error"')
                if b"PING\r\n" in data:
                    out += b"PONG\r\n"
                carry = data[-len(marker) + 1 :]
    finally:
        sel.close()
        sock.close()
    return errors


class Replies:
    """Whole MSG/HMSG frames from a blocking socket: (subject, headers + payload)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def next(self) -> tuple[bytes, bytes]:
        while True:
            eol = self.buf.find(b"\r\n")
            if eol >= 0:
                line = self.buf[:eol]
                if line.startswith((b"MSG ", b"HMSG ")):
                    size = int(line.split()[-1])
                    end = eol + 2 + size + 2
                    if len(self.buf) >= end:
                        body = self.buf[eol + 2 : end - 2]
                        self.buf = self.buf[end:]
                        return line.split()[1], body
                else:
                    self.buf = self.buf[eol + 2 :]
                    if line == b"PING":
                        self.sock.sendall(b"PONG\r\n")
                    elif line.startswith(b"-ERR"):
                        raise ServerError(line.decode(errors="replace"))
                    continue
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise ServerError("server closed the connection")
            self.buf += chunk


def create_stream(port: int) -> None:
    sock = connect(port)
    try:
        sock.sendall(b"SUB %b 1\r\n" % API_REPLY)
        cfg = {"name": STREAM, "subjects": ["scale.js.>"], "storage": "file"}
        _api(sock, f"$JS.API.STREAM.CREATE.{STREAM}", cfg, API_REPLY)
        _, body = Replies(sock).next()
        if b'"error"' in body:
            raise ServerError(f"stream create: {body!r}")
    finally:
        sock.close()


def _api(sock: socket.socket, subject: str, cfg: Mapping[str, object], reply: bytes) -> None:
    body = json.dumps(cfg).encode()
    sock.sendall(b"PUB %b %b %d\r\n%b\r\n" % (subject.encode(), reply, len(body), body))


def create_consumers(port: int, count: int, window: int = 64) -> int:
    """`count` durable pull consumers, at most `window` creates in flight; error replies."""
    sock = connect(port)
    sock.settimeout(120)
    try:
        sock.sendall(b"SUB %b.* 1\r\n" % API_REPLY)
        replies = Replies(sock)
        sent = answered = errors = 0
        while answered < count:
            while sent < count and sent - answered < window:
                name = f"D{sent}"
                cfg = {
                    "stream_name": STREAM,
                    "config": {"durable_name": name, "ack_policy": "explicit"},
                }
                subject = f"$JS.API.CONSUMER.DURABLE.CREATE.{STREAM}.{name}"
                _api(sock, subject, cfg, b"%b.%d" % (API_REPLY, sent))
                sent += 1
            _, body = replies.next()
            answered += 1
            errors += b'"error"' in body
        return errors
    finally:
        sock.close()


def wait_stream(server: ScaleServer, messages: int, consumers: int) -> float:
    """Seconds from the process start until `STREAM.INFO` reports `messages` messages and
    `consumers` consumers (polled every 10 ms, one connection once the port accepts)."""
    deadline = server.launched + READY_TIMEOUT
    sock: socket.socket | None = None
    try:
        while True:
            if server.proc.poll() is not None:
                raise ServerFailed(f"{server.spec.name} exited: {server._tail()}")
            if time.monotonic() > deadline:
                raise ServerFailed(f"{server.spec.name}: stream not recovered")
            try:
                if sock is None:
                    sock = connect(server.port)
                    sock.sendall(b"SUB %b 1\r\n" % API_REPLY)
                    replies = Replies(sock)
                sock.sendall(
                    b"PUB $JS.API.STREAM.INFO.%b %b 0\r\n\r\n" % (STREAM.encode(), API_REPLY)
                )
                _, body = replies.next()
                state = json.loads(body).get("state") or {}
                if state.get("messages") == messages and state.get("consumer_count") == consumers:
                    return time.monotonic() - server.launched
            except (OSError, ValueError, ServerError):
                if sock is not None:
                    sock.close()
                sock = None
            time.sleep(0.01)
    finally:
        if sock is not None:
            sock.close()


# --- the phases ------------------------------------------------------------------------------


T = TypeVar("T")


def timed(action: Callable[[], T]) -> tuple[float, T]:
    began = time.monotonic()
    result = action()
    return time.monotonic() - began, result


def measure(spec: ServerSpec, args: argparse.Namespace, root: Path, out: dict[str, float]) -> None:
    """Every phase against one kind of server; numbers go into `out` as they come."""

    def say(text: str) -> None:
        print(f"  {spec.name:7s} {text}", file=sys.stderr, flush=True)

    # 1. connections
    store = Store(root, f"{spec.name}-conns", jetstream=False)
    with store.start(spec) as srv:
        out["start_ready"] = srv.wait_ready()
        out["idle_rss"] = base = srv.settled_rss_mb()
        took, socks = timed(lambda: open_clients(srv.port, args.conns, args.batch))
        try:
            out["conns_open_s"] = took
            out["conns_rss"] = rss = srv.settled_rss_mb()
            out["per_conn_kb"] = (rss - base) * 1024 / max(args.conns, 1)
            out["varz_conns"] = float(srv.varz()["connections"])  # type: ignore[arg-type]
        finally:
            close_all(socks)
        say(
            f"{args.conns} connections: {out['conns_rss']:.1f} MB, {out['per_conn_kb']:.2f} KB each"
        )

    # 2. subscriptions
    store = Store(root, f"{spec.name}-subs", jetstream=False)
    with store.start(spec) as srv:
        srv.wait_ready()
        base = srv.settled_rss_mb()
        subs_before = int(srv.varz()["subscriptions"])  # type: ignore[call-overload]
        took, socks = timed(lambda: open_subscribers(srv.port, args.subs, args.sub_conns))
        try:
            out["subs_s"] = took
            out["subs_rss"] = rss = srv.settled_rss_mb()
            out["per_sub_b"] = (rss - base) * (1 << 20) / max(args.subs, 1)
            subs_after = int(srv.varz()["subscriptions"])  # type: ignore[call-overload]
            out["varz_subs"] = float(subs_after - subs_before)
        finally:
            close_all(socks)
        say(f"{args.subs} subscriptions: {out['subs_rss']:.1f} MB, {out['per_sub_b']:.0f} B each")

    # 3. stream, then a restart
    store = Store(root, f"{spec.name}-js", jetstream=True)
    with store.start(spec) as srv:
        out["js_start_ready"] = srv.wait_ready()
        out["js_idle_rss"] = base = srv.settled_rss_mb()
        create_stream(srv.port)
        took, errors = timed(lambda: fill(srv.port, args.msgs, args.size))
        out["fill_s"] = took
        if errors:
            raise ServerError(f"{errors} publishes failed")
        out["stream_rss"] = rss = srv.settled_rss_mb()
        out["per_msg_b"] = (rss - base) * (1 << 20) / max(args.msgs, 1)
        out["shutdown_s"] = srv.stop_timed()
        out["disk_mb"] = store.disk_mb()
    say(f"{args.msgs} messages stored in {out['fill_s']:.1f}s: {out['stream_rss']:.1f} MB")
    with store.start(spec) as srv:
        out["recover_ready"] = srv.wait_ready()
        out["recover_info"] = wait_stream(srv, args.msgs, 0)
        out["recover_rss"] = base = srv.settled_rss_mb()
        say(f"restart: ready {out['recover_ready']:.2f}s, stream {out['recover_info']:.2f}s")

        # 4. consumers, then a restart
        took, errors = timed(lambda: create_consumers(srv.port, args.consumers))
        out["consumers_s"] = took
        if errors:
            raise ServerError(f"{errors} consumer creates failed")
        out["consumers_rss"] = rss = srv.settled_rss_mb()
        out["per_consumer_kb"] = (rss - base) * 1024 / max(args.consumers, 1)
        out["consumers_shutdown_s"] = srv.stop_timed()
    with store.start(spec) as srv:
        out["consumers_ready"] = srv.wait_ready()
        out["consumers_info"] = wait_stream(srv, args.msgs, args.consumers)
        out["consumers_restart_rss"] = srv.settled_rss_mb()
    say(f"{args.consumers} consumers: restart ready {out['consumers_ready']:.2f}s")


def metrics(args: argparse.Namespace) -> list[tuple[str, str, str, bool]]:
    """(key, label, unit, ratio shown) in table order."""
    n, m, k, c = args.conns, args.subs, args.msgs, args.consumers
    return [
        ("start_ready", "start-up to ready (empty, no JetStream)", "s", True),
        ("idle_rss", "idle RSS", "MB", True),
        ("conns_open_s", f"open {n:,} connections (client-side time)", "s", True),
        ("conns_rss", f"RSS with {n:,} connections", "MB", True),
        ("per_conn_kb", "RSS per connection", "KB", True),
        ("varz_conns", "/varz connections", "", False),
        ("subs_s", f"subscribe {m:,} (to last PONG)", "s", True),
        ("subs_rss", f"RSS with {m:,} subscriptions", "MB", True),
        ("per_sub_b", "RSS per subscription", "B", True),
        ("varz_subs", "/varz subscriptions added", "", False),
        ("js_start_ready", "start-up to ready (JetStream, empty)", "s", True),
        ("js_idle_rss", "idle RSS, JetStream on", "MB", True),
        ("fill_s", f"store {k:,} x {args.size} B (acked)", "s", True),
        ("stream_rss", f"RSS with {k:,} messages stored", "MB", True),
        ("per_msg_b", "RSS per stored message", "B", True),
        ("shutdown_s", "shutdown (SIGTERM to exit)", "s", True),
        ("disk_mb", "store on disk", "MB", True),
        ("recover_ready", "restart: to Server is ready", "s", True),
        ("recover_info", f"restart: to STREAM.INFO with {k:,}", "s", True),
        ("recover_rss", "RSS after restart", "MB", True),
        ("consumers_s", f"create {c:,} durable consumers", "s", True),
        ("consumers_rss", f"RSS with {c:,} consumers", "MB", True),
        ("per_consumer_kb", "RSS per consumer", "KB", True),
        ("consumers_shutdown_s", "shutdown with consumers", "s", True),
        ("consumers_ready", "restart with consumers: to ready", "s", True),
        ("consumers_info", f"restart: to STREAM.INFO with {c:,} consumers", "s", True),
        ("consumers_restart_rss", "RSS after that restart", "MB", True),
    ]


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:,.2f} s"
    if unit in ("MB", "KB"):
        return f"{value:,.1f} {unit}"
    return f"{value:,.0f} {unit}".rstrip()


def render(
    args: argparse.Namespace, names: list[str], results: dict[str, dict[str, float]]
) -> tuple[str, list[dict[str, object]]]:
    rows: list[list[str]] = [["metric", *names]]
    if len(names) == 2:
        rows[0].append(f"{names[1]}/{names[0]}")
    table = []
    for key, label, unit, with_ratio in metrics(args):
        values = [results[name].get(key) for name in names]
        line = [label, *(_fmt(v, unit) for v in values)]
        record: dict[str, object] = {"metric": key, "label": label, "unit": unit}
        record.update({name: v for name, v in zip(names, values, strict=True)})
        if len(names) == 2:
            ref, cand = values
            ratio = cand / ref if with_ratio and ref and cand is not None else None
            line.append(f"{ratio:.2f}x" if ratio is not None else "")
            record["ratio"] = ratio
        rows.append(line)
        table.append(record)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    text = "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    )
    return text, table


def raise_nofile(conns: int) -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (inherited by the servers); the number of
    connections that fits, with `FD_MARGIN` left for everything else."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard == resource.RLIM_INFINITY or hard >= conns + FD_MARGIN:
        return conns
    fits = max(hard - FD_MARGIN, 1)
    print(
        f"RLIMIT_NOFILE hard limit is {hard}: {conns} connections do not fit, using {fits}",
        file=sys.stderr,
    )
    return fits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--go", default=default_go_path())
    parser.add_argument("--only", choices=("go", "pynats"), default="")
    parser.add_argument("--conns", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=50, help="connections opened per round")
    parser.add_argument("--subs", type=int, default=100_000)
    parser.add_argument("--sub-conns", type=int, default=4)
    parser.add_argument("--msgs", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--consumers", type=int, default=1_000)
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    asked = args.conns
    args.conns = raise_nofile(args.conns)
    specs = [go_spec(args.go), pynats_spec()]
    if args.only:
        specs = [s for s in specs if s.name == args.only]
    names = [s.name for s in specs]
    results: dict[str, dict[str, float]] = {name: {} for name in names}
    failures: dict[str, str] = {}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pynats-scale-") as tmp:
        for spec in specs:
            try:
                measure(spec, args, Path(tmp), results[spec.name])
            except (ServerFailed, ServerError, OSError) as exc:
                failures[spec.name] = f"{type(exc).__name__}: {exc}"
                print(f"  {spec.name:7s} FAILED: {failures[spec.name]}", file=sys.stderr)
    elapsed = time.monotonic() - started
    text, table = render(args, names, results)
    print(
        f"\nScale: {args.conns:,} connections, {args.subs:,} subscriptions, "
        f"{args.msgs:,} x {args.size} B messages, {args.consumers:,} consumers "
        f"({elapsed:.0f} s)"
    )
    print(text)
    for name, why in failures.items():
        print(f"{name} failed: {why}")
    if args.json:
        record = {
            "args": vars(args),
            "conns_asked": asked,
            "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
            "commands": {
                s.name: ServerSpec(s.name, (*s.command, "-c", "server.conf")).argv("PORT")
                for s in specs
            },
            "results": table,
            "failures": failures,
            "seconds": elapsed,
        }
        Path(args.json).write_text(json.dumps(record, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
