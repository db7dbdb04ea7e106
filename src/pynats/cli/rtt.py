"""`nats rtt [ITERATIONS]`: the round-trip time to each server of the context.

As natscli does, every URL of the server list is a target; a host name is resolved and each
of its addresses is tested on its own connection (an IP address is tested as given). Each
connection waits 25 ms, then times ITERATIONS PING/PONG exchanges and reports their average
(timed here with the monotonic clock: nats-py's rtt() reads the loop's clock, which uvloop
keeps in whole milliseconds).
A connection that fails is logged (`Failed to compute rtt for ...`) and shown as `failed`.

```
nats://localhost:4222:

   nats://127.0.0.1:4222: 312µs
       nats://[::1]:4222: 298µs
```
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import click

from pynats.cli.ui import humanize
from pynats.cli.ui.command import NatsGroup, json_flag
from pynats.cli.ui.connect import connect, run_async, server_list
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import log, out, print_json
from pynats.gotime import rfc3339

SETTLE_S = 0.025
DEFAULT_PORT = "4222"


@dataclass
class RttResult:
    address: str
    time_ns: int = 0
    rtt_ns: int = 0
    url: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "time": rfc3339(self.time_ns),
            "address": self.address,
            "rtt": self.rtt_ns,
            "url": self.url,
        }


@dataclass
class RttTarget:
    url: str
    results: list[RttResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "results": [r.to_json() for r in self.results]}


def register(root: NatsGroup) -> None:
    @root.command("rtt", help="Compute round-trip time to NATS server")
    @click.argument(
        "iterations",
        required=False,
        default=5,
        type=int,
        help="How many round trips to do when testing",
    )
    @json_flag()
    def rtt(iterations: int, as_json: bool) -> None:
        targets = run_async(measure(iterations))
        if as_json:
            print_json([t.to_json() for t in targets])
            return
        out(render(targets), end="")


def targets_of(servers: str) -> list[RttTarget]:
    """One target per URL of the list, one result per address its host resolves to."""
    targets = []
    for url in server_list(servers):
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = str(parts.port or DEFAULT_PORT)
        except ValueError as exc:
            raise CliError(f"parse {url!r}: invalid port") from exc
        target = RttTarget(url)
        targets.append(target)
        if _is_ip(host) or not host:
            target.results.append(RttResult(f"{parts.scheme}://{_join(host, port)}"))
            continue
        addresses = _lookup(host)
        if not addresses:
            target.results.append(RttResult(f"{parts.scheme}://{_join(host, port)}"))
            continue
        for address in addresses:
            target.results.append(RttResult(f"{parts.scheme}://{_join(address, port)}"))
    return targets


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _join(host: str, port: str) -> str:
    """Go's net.JoinHostPort: IPv6 addresses in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _lookup(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    addresses: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def measure(iterations: int) -> list[RttTarget]:
    settings = current_settings()
    if iterations <= 0:
        raise CliError("iterations should be greater than 0")
    targets = targets_of(settings.servers)
    for target in targets:
        for result in target.results:
            result.time_ns = time.time_ns()
            try:
                result.url, result.rtt_ns = await _average_rtt(result.address, iterations)
            except CliError as exc:
                log(f"Failed to compute rtt for {result.address}: {exc}")
    return targets


async def _average_rtt(address: str, iterations: int) -> tuple[str, int]:
    settings = current_settings()
    if settings.trace:
        log(f">>> Connecting to {address}")
    nc = await connect(dataclasses.replace(settings, servers=address))
    try:
        await asyncio.sleep(SETTLE_S)
        if settings.trace:
            out(f"RTT iterations for server: {address}")
        total_ns = 0
        for i in range(1, iterations + 1):
            try:
                before = time.perf_counter_ns()
                await nc.flush(timeout=max(1, int(settings.timeout_s)))  # one PING/PONG
                rtt_ns = time.perf_counter_ns() - before
            except Exception as exc:  # nats-py's TimeoutError or a closed connection
                raise CliError(f"rtt failed: {exc or 'nats: timeout'}") from exc
            total_ns += rtt_ns
            if settings.trace:
                out(f"#{i}:\trtt={humanize.human_duration(rtt_ns)}")
                if i == iterations:
                    out()
        url = nc.connected_url
        return (url.geturl() if url is not None else address), total_ns // iterations
    finally:
        await nc.close()


def render(targets: list[RttTarget]) -> str:
    width = max([3, *(len(r.address) + 3 for t in targets for r in t.results)])
    lines = []
    for target in targets:
        lines += [f"{target.url}:", ""]
        for result in target.results:
            shown = humanize.human_duration(result.rtt_ns) if result.rtt_ns > 0 else "failed"
            lines.append(f"{result.address:>{width}}: {shown}")
        lines.append("")
    return "\n".join(lines) + "\n"
