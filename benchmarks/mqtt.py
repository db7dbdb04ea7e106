"""MQTT clients: pynats next to the Go nats-server's MQTT listener, same raw-socket clients.

    .venv/bin/python benchmarks/mqtt.py              # QoS 0 fan-through and QoS 1 acks
    .venv/bin/python benchmarks/mqtt.py --count 50000

QoS 0: one MQTT subscriber and one MQTT publisher (each a plain socket in its own thread) on
one topic; the publisher sends pre-built batches of 1,000 PUBLISH packets (16-byte payload),
each followed by a PINGREQ, with at most four batches unanswered; the subscriber counts bytes
(every PUBLISH it gets has the same size). Result: messages delivered per second.

QoS 1: one publisher sends batches of 100 QoS 1 PUBLISH and waits for their 100 PUBACKs
(each is stored in `$MQTT_msgs` first). Result: acknowledged messages per second.
"""

from __future__ import annotations

import argparse
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pynats.server import mqtt_packets as mp

REPO = Path(__file__).resolve().parent.parent
GO = REPO / ".venv-oracle/bin/nats-server"
PYNATS = [sys.executable, "-m", "pynats.server"]
LISTEN_RE = re.compile(rb"Listening for MQTT clients on mqtt://127\.0\.0\.1:(\d+)")
TOPIC = b"bench/mqtt"
PAYLOAD = b"x" * 16


def start(cmd: list[str], tmp: str) -> tuple[subprocess.Popen[bytes], int]:
    conf = Path(tmp) / "mqtt.conf"
    conf.write_text(
        f'server_name: bench\nlisten: "127.0.0.1:-1"\njetstream {{ store_dir: "{tmp}/js" }}\n'
        'mqtt { listen: "127.0.0.1:-1" }\n'
    )
    proc = subprocess.Popen([*cmd, "-c", str(conf)], stderr=subprocess.PIPE)
    assert proc.stderr is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if m := LISTEN_RE.search(line):
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, int(m.group(1))
    raise RuntimeError("server did not start")


def connect(port: int, cid: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(mp.connect_packet(mp.Connect("MQTT", 4, True, 0, cid)))
    assert sock.recv(4)[3] == 0
    return sock


def recv_exactly(sock: socket.socket, n: int) -> None:
    while n > 0:
        data = sock.recv(min(n, 1 << 20))
        if not data:
            raise ConnectionError("closed")
        n -= len(data)


def qos0(port: int, count: int) -> float:
    sub = connect(port, "sub")
    sub.sendall(mp.subscribe_packet(mp.Subscribe(1, [(TOPIC.decode(), 0)])))
    recv_exactly(sub, 5)
    size = len(mp.publish(TOPIC, PAYLOAD))
    pub = connect(port, "pub")
    batch = mp.publish(TOPIC, PAYLOAD) * 1000 + bytes((mp.PINGREQ << 4, 0))
    batches = count // 1000
    done = threading.Event()
    started: list[float] = []

    def receive() -> None:
        recv_exactly(sub, size)  # the first one starts the clock
        started.append(time.perf_counter())
        recv_exactly(sub, size * (batches * 1000 - 1))
        done.set()

    t = threading.Thread(target=receive)
    t.start()
    unanswered = 0
    for _ in range(batches):
        pub.sendall(batch)
        unanswered += 1
        if unanswered > 4:
            recv_exactly(pub, 2)
            unanswered -= 1
    done.wait(120)
    elapsed = time.perf_counter() - started[0]
    pub.close()
    sub.close()
    return (batches * 1000 - 1) / elapsed


def qos1(port: int, count: int) -> float:
    pub = connect(port, "pub1")
    window = 100
    start_t = time.perf_counter()
    pid = 0
    for _ in range(count // window):
        packets = []
        for _ in range(window):
            pid = pid % 65535 + 1
            packets.append(mp.publish(TOPIC, PAYLOAD, qos=1, pid=pid))
        pub.sendall(b"".join(packets))
        recv_exactly(pub, 4 * window)
    elapsed = time.perf_counter() - start_t
    pub.close()
    return (count // window * window) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--qos1-count", type=int, default=20_000)
    args = parser.parse_args()
    for name, cmd in (("nats-server", [str(GO)]), ("pynats", PYNATS)):
        with tempfile.TemporaryDirectory() as tmp:
            proc, port = start(cmd, tmp)
            try:
                rate0 = qos0(port, args.count)
                rate1 = qos1(port, args.qos1_count)
            finally:
                proc.terminate()
                proc.wait(10)
        print(f"{name:12} QoS 0: {rate0:>10,.0f} msgs/s   QoS 1 acked: {rate1:>9,.0f} msgs/s")


if __name__ == "__main__":
    main()
