"""NATS over WebSocket: pynats next to the Go nats-server's websocket listener, same client.

    .venv/bin/python benchmarks/websocket.py                 # 1:1 pub/sub, 16 B .. 1 KB
    .venv/bin/python benchmarks/websocket.py --framing       # the framing micro-benchmark

Scenario (1:1 pub/sub over websockets): one publisher and one subscriber, both WebSocket
clients (each in its own process) on one literal subject. The publisher sends one masked
binary frame of PUB operations (256 KiB) ending with PING, pre-built once, over and over,
with at most four frames not yet answered by a PONG; the subscriber counts the payload bytes
of the frames it gets (headers are parsed, payloads are not) and divides by the MSG frame
length. Result: messages delivered per second over the window. Both servers get the same
`websocket { no_tls: true }` block (plus `compression: true` with --compression, where the
clients ask for permessage-deflate and the subscriber inflates).

`--framing` compares ways of reading client frames in-process (no sockets): our
`ws_frames.FrameDecoder` with the C mask of `websockets` and with the pure-Python mask, and
the sans-I/O protocol of the `websockets` package, on the same stream of masked frames.
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import socket
import sys
import tempfile
import threading
import time
import zlib
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from loadgen import (
    CONNECT,
    HOST,
    PING,
    PONG,
    RECV_LOWAT,
    msg_frame_len,
    payload_of,
    pub_batch,
)
from pynats.server import ws_frames
from servers import (
    RunningServer,
    ServerSpec,
    default_go_path,
    free_port,
    go_spec,
    pynats_spec,
)

SUBJECT = b"bench.ws"
FRAME_BYTES = 1 << 20
IN_FLIGHT = 16
_CTX = multiprocessing.get_context("fork")


# -- a minimal WebSocket client -------------------------------------------------------------


def ws_connect(port: int, *, compression: bool) -> tuple[socket.socket, bytes]:
    """Upgrade a socket; returns it and the bytes already read after the 101."""
    sock = socket.create_connection((HOST, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    ext = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if compression else ""
    sock.sendall(
        f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{ext}\r\n".encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("server closed during the upgrade")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head.decode(errors="replace"))
    return sock, rest


def client_frame(payload: bytes) -> bytes:
    key = os.urandom(4)
    return ws_frames.frame_header(len(payload), mask_key=key) + ws_frames.apply_mask(payload, key)


class FrameCounter:
    """Reads server frames: counts payload bytes, and keeps the payloads when asked (`keep`)
    or inflates them when they are compressed (to count them)."""

    def __init__(self, sock: socket.socket, pending: bytes = b"") -> None:
        self.sock = sock
        self.header = b""  # bytes of a frame header not complete yet
        self.remaining = 0  # payload bytes left in the current frame
        self.compressed = False
        self.parts: list[bytes] = []
        self.payload_bytes = 0
        self.keep = True
        self.kept = b""
        self.buf = bytearray(1 << 20)
        if pending:
            self._walk(pending)

    def pump(self) -> int:
        """Read once; returns the payload bytes newly seen (inflated size when compressed)."""
        if self.remaining and not (self.keep or self.compressed or self.header):
            # Inside a plain frame: the kernel drops the bytes (MSG_TRUNC), as the TCP
            # subscribers of loadgen.py do, and never past the frame's end.
            want = min(self.remaining, len(self.buf))
            n = self.sock.recv_into(self.buf, want, socket.MSG_TRUNC)
            if n == 0:
                raise RuntimeError("server closed the connection")
            self.remaining -= n
            self.payload_bytes += n
            return n
        n = self.sock.recv_into(self.buf)
        if n == 0:
            raise RuntimeError("server closed the connection")
        data = self.header + bytes(self.buf[:n])
        self.header = b""
        return self._walk(data)

    def _walk(self, data: bytes) -> int:
        seen = 0
        pos = 0
        while pos < len(data):
            if self.remaining:
                take = min(self.remaining, len(data) - pos)
                chunk = data[pos : pos + take]
                pos += take
                self.remaining -= take
                if self.compressed:
                    self.parts.append(chunk)
                    if not self.remaining:
                        inflated = ws_frames.inflate_message(self.parts, 0)
                        self.parts = []
                        seen += len(inflated)
                        if self.keep:
                            self.kept += inflated
                else:
                    seen += take
                    if self.keep:
                        self.kept += chunk
                continue
            if len(data) - pos < 2:
                self.header = data[pos:]
                break
            b0, b1 = data[pos], data[pos + 1]
            length, hlen = b1 & 0x7F, 2
            if length == 126:
                hlen = 4
            elif length == 127:
                hlen = 10
            if len(data) - pos < hlen:
                self.header = data[pos:]
                break
            if length >= 126:
                length = int.from_bytes(data[pos + 2 : pos + hlen], "big")
            pos += hlen
            if b0 & 0x0F != ws_frames.OP_CONTINUATION:
                self.compressed = bool(b0 & 0x40)
            self.remaining = length
        self.payload_bytes += seen
        return seen

    def read_until(self, marker: bytes) -> None:
        self.keep = True
        while marker not in self.kept:
            self.pump()
        self.kept = self.kept[self.kept.index(marker) + len(marker) :]


# -- the roles ------------------------------------------------------------------------------


def run_subscriber(
    out: Connection, port: int, size: int, compression: bool, warmup: float, duration: float
) -> None:
    try:
        sock, rest = ws_connect(port, compression=compression)
        counter = FrameCounter(sock, rest)
        sock.sendall(client_frame(CONNECT + b"SUB " + SUBJECT + b" 1\r\n" + PING))
        counter.read_until(PONG)
        counter.keep = False
        counter.kept = b""
        # Woken only when this much is readable, as loadgen's TCP subscribers.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, RECV_LOWAT)
        out.send(("ready", None))
        frame_len = msg_frame_len(SUBJECT, b"1", size)
        # Wait for the first message, then the warm-up, then count over the window.
        while counter.payload_bytes == 0:
            counter.pump()
        start_at = time.perf_counter() + warmup
        while time.perf_counter() < start_at:
            counter.pump()
        start_bytes, start = counter.payload_bytes, time.perf_counter()
        end_at = start + duration
        while time.perf_counter() < end_at:
            counter.pump()
        elapsed = time.perf_counter() - start
        out.send(("result", (counter.payload_bytes - start_bytes) / frame_len / elapsed))
    except Exception as exc:
        out.send(("error", f"{type(exc).__name__}: {exc}"))


def run_publisher(out: Connection, port: int, size: int, compression: bool, stop: Any) -> None:
    try:
        sock, rest = ws_connect(port, compression=compression)
        counter = FrameCounter(sock, rest)
        sock.sendall(client_frame(CONNECT + PING))
        counter.read_until(PONG)
        batch, _ = pub_batch(SUBJECT, payload_of(size), FRAME_BYTES)
        if compression:
            compressor = zlib.compressobj(1, zlib.DEFLATED, -15)
            body = (compressor.compress(batch + PING) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
            key = os.urandom(4)
            head = bytearray(ws_frames.frame_header(len(body), mask_key=key))
            head[0] |= ws_frames.RSV1_BIT
            frame = bytes(head) + ws_frames.apply_mask(body, key)
        else:
            frame = client_frame(batch + PING)
        credits = threading.Semaphore(IN_FLIGHT)

        def pongs() -> None:
            while not stop.is_set():
                before = counter.kept.count(PONG)
                counter.pump()
                for _ in range(counter.kept.count(PONG) - before):
                    credits.release()
                if len(counter.kept) > 1 << 16:
                    counter.kept = counter.kept[-8:]

        counter.kept = b""
        threading.Thread(target=pongs, daemon=True).start()
        out.send(("ready", None))
        while not stop.is_set():
            if credits.acquire(timeout=0.5):
                sock.sendall(frame)
    except Exception as exc:
        if not stop.is_set():
            out.send(("error", f"{type(exc).__name__}: {exc}"))


def pubsub(port: int, size: int, compression: bool, warmup: float, duration: float) -> float:
    stop = _CTX.Event()
    sub_out, sub_in = _CTX.Pipe(duplex=False)
    pub_out, pub_in = _CTX.Pipe(duplex=False)
    sub = _CTX.Process(
        target=run_subscriber, args=(sub_in, port, size, compression, warmup, duration)
    )
    sub.start()
    kind, value = sub_out.recv()
    if kind != "ready":
        raise RuntimeError(value)
    pub = _CTX.Process(target=run_publisher, args=(pub_in, port, size, compression, stop))
    pub.start()
    try:
        if not sub_out.poll(warmup + duration + 30):
            raise TimeoutError("no result from the subscriber")
        kind, value = sub_out.recv()
        if kind != "result":
            if pub_out.poll():  # the publisher's failure is the cause
                value = f"{value} (publisher: {pub_out.recv()[1]})"
            raise RuntimeError(value)
        return float(value)
    finally:
        stop.set()
        for proc in (pub, sub):
            proc.join(5)
            if proc.is_alive():
                proc.kill()


def measure(args: argparse.Namespace) -> int:
    specs = {"go": go_spec(args.go), "pynats": pynats_spec()}
    if args.only:
        specs = {args.only: specs[args.only]}
    results: dict[tuple[str, int], float | str] = {}
    tmp = tempfile.TemporaryDirectory(prefix="pynats-bench-ws-")
    order = list(specs)
    for i, size in enumerate(args.sizes):
        for name in order if i % 2 == 0 else order[::-1]:
            ws_port = free_port()
            conf = Path(tmp.name) / f"{name}.conf"
            comp = "compression: true" if args.compression else ""
            conf.write_text(f'websocket {{ listen: "{HOST}:{ws_port}", no_tls: true, {comp} }}\n')
            spec = specs[name]
            spec = ServerSpec(spec.name, (*spec.command, "-c", str(conf)))
            try:
                with RunningServer(spec):
                    results[(name, size)] = pubsub(
                        ws_port, size, args.compression, args.warmup, args.duration
                    )
            except Exception as exc:
                results[(name, size)] = f"{type(exc).__name__}: {exc}"
            print(f"  {name:7} {size:5} B  {results[(name, size)]}", file=sys.stderr)
    tmp.cleanup()
    title = "1:1 pub/sub over websockets" + (" (deflate)" if args.compression else "")
    print(f"\n{'scenario':32} {'size':>7} {'go':>16} {'pynats':>16} {'pynats/go':>10}")
    failed = False
    for size in args.sizes:
        cells = []
        for name in ("go", "pynats"):
            value = results.get((name, size), "-")
            failed |= isinstance(value, str) and value != "-"
            cells.append(f"{value:>11,.0f} msg/s" if isinstance(value, float) else f"{value:>16}")
        go, ours = results.get(("go", size)), results.get(("pynats", size))
        ratio = f"{ours / go:.2f}x" if isinstance(go, float) and isinstance(ours, float) else "-"
        print(f"{title:32} {size:5} B {cells[0]} {cells[1]} {ratio:>10}")
    return 1 if failed else 0


# -- framing micro-benchmark ----------------------------------------------------------------


def framing(args: argparse.Namespace) -> int:
    """Decode throughput of one stream of masked client frames, in MB/s of payload: big
    frames (a client's flush under load) and small ones (one PUB per frame)."""
    print(f"{'reader of masked client frames':44} {'64 KiB frames':>14} {'150 B frames':>14}")
    rows: dict[str, list[float]] = {}
    for frame_size in (64 * 1024, 150):
        batch, _ = pub_batch(SUBJECT, payload_of(128), frame_size)
        count = max(64, (4 << 20) // len(batch))
        frames = [client_frame(batch) for _ in range(count)]
        stream = b"".join(frames)
        chunks = [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
        total = len(batch) * count
        runs = {
            "ws_frames.FrameDecoder, websockets' C mask": lambda c=chunks, t=total: _ours(
                c, t, ws_frames.apply_mask
            ),
            "ws_frames.FrameDecoder, pure-Python mask": lambda c=chunks, t=total: _ours(
                c, t, ws_frames.xor_mask
            ),
            "websockets.ServerProtocol (sans-I/O)": lambda c=chunks, t=total: _websockets(c, t),
        }
        for label, run in runs.items():
            rows.setdefault(label, []).append(max(run() for _ in range(args.repeat)))
    for label, speeds in rows.items():
        print(f"{label:44} {speeds[0]:9.0f} MB/s {speeds[1]:9.0f} MB/s")
    return 0


def _ours(chunks: list[bytes], total: int, mask: Any) -> float:
    saved = ws_frames.apply_mask
    ws_frames.apply_mask = mask
    try:
        decoder = ws_frames.FrameDecoder()
        start = time.perf_counter()
        got = sum(len(decoder.feed(c)) for c in chunks)
        elapsed = time.perf_counter() - start
    finally:
        ws_frames.apply_mask = saved
    assert got == total, (got, total)
    return total / elapsed / 1e6


def _websockets(chunks: list[bytes], total: int) -> float:
    from websockets.frames import Frame
    from websockets.server import ServerProtocol

    protocol = ServerProtocol(max_size=None)
    key = base64.b64encode(os.urandom(16)).decode()
    protocol.receive_data(
        f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    [request] = protocol.events_received()
    protocol.send_response(protocol.accept(request))
    protocol.data_to_send()
    start = time.perf_counter()
    got = 0
    for chunk in chunks:
        protocol.receive_data(chunk)
        for event in protocol.events_received():
            if isinstance(event, Frame):
                got += len(event.data)
    elapsed = time.perf_counter() - start
    assert got == total, (got, total)
    return total / elapsed / 1e6


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--go", default=default_go_path(), help="the Go nats-server")
    p.add_argument("--only", choices=["go", "pynats"])
    p.add_argument("--sizes", default="16,128,1024")
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--compression", action="store_true", help="permessage-deflate")
    p.add_argument("--framing", action="store_true", help="the framing micro-benchmark")
    p.add_argument("--repeat", type=int, default=3, help="framing: best of N")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in str(args.sizes).split(",") if s]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return framing(args) if args.framing else measure(args)


if __name__ == "__main__":
    sys.exit(main())
