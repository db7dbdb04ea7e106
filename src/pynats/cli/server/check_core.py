"""The checks of `nats server check` that need no JetStream: connection, server, credential.

Also the helpers every check shares (a connection that turns its failure into a CRITICAL
result, seconds from nanoseconds, Go's %v of a float threshold).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import re
import secrets
import string
import time
from typing import TYPE_CHECKING, Any

from pynats.cli.server.check_result import (
    CheckResult,
    PerfDataItem,
    go_float,
)
from pynats.cli.ui import humanize
from pynats.cli.ui.connect import connect
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.options import current_settings
from pynats.gotime import NS_PER_S, format_duration

if TYPE_CHECKING:
    from nats.aio.client import Client


async def connect_or_critical(check: CheckResult, failure: str) -> Client | None:
    try:
        return await connect()
    except CliError as exc:
        check.critical(f"{failure}: {exc}")
        return None


def seconds(ns: int) -> float:
    return ns / NS_PER_S


def go_number(value: float) -> str:
    """Go's %v of a float64 (a threshold in seconds): `0.5`, `1`."""
    return go_float(value)


def go_time(moment: dt.datetime) -> str:
    """Go's Time.String() of a UTC time: `2025-01-02 03:04:05.123456789 +0000 UTC`."""
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + " +0000 UTC"


# -- connection ---------------------------------------------------------------------------------


async def check_connection(check: CheckResult, options: dict[str, Any]) -> None:
    started = time.monotonic()
    nc = await connect_or_critical(check, "connection failed")
    if nc is None:
        return
    try:
        connect_ns = int((time.monotonic() - started) * NS_PER_S)
        url = nc.connected_url
        url_text = f"{url.scheme}://{url.hostname}:{url.port}" if url else ""
        warn, crit = options["connect_warn"], options["connect_critical"]
        check.pd(
            PerfDataItem(
                "connect_time",
                seconds(connect_ns),
                seconds(warn),
                seconds(crit),
                "s",
                "Time taken to connect to NATS",
            )
        )
        if connect_ns >= crit:
            check.critical(
                f"connected to {url_text}, connect time exceeded {go_number(seconds(crit))}"
            )
        elif connect_ns >= warn:
            check.warn(f"connected to {url_text}, connect time exceeded {go_number(seconds(warn))}")
        else:
            check.ok(f"connected to {url_text} in {format_duration(connect_ns)}")

        rtt_started = time.monotonic()
        try:
            await nc.flush(timeout=max(1, int(current_settings().timeout_s)))
        except Exception as exc:  # nats-py raises its own timeout types
            check.critical(f"rtt failed: {exc}")
        rtt_ns = int((time.monotonic() - rtt_started) * NS_PER_S)
        warn, crit = options["rtt_warn"], options["rtt_critical"]
        check.pd(
            PerfDataItem(
                "rtt",
                seconds(rtt_ns),
                seconds(warn),
                seconds(crit),
                "s",
                "The round-trip-time of the connection",
            )
        )
        if rtt_ns >= crit:
            check.critical(f"rtt time exceeded {go_number(seconds(crit))}")
        elif rtt_ns >= warn:
            check.critical(f"rtt time exceeded {go_number(seconds(warn))}")  # as natscli does
        else:
            check.ok(f"rtt time {format_duration(rtt_ns)}")

        body = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(100))
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox, max_msgs=1)
        request_started = time.monotonic()
        await nc.publish(inbox, body.encode())
        received = b""
        try:
            msg = await sub.next_msg(timeout=current_settings().timeout_s)
            received = msg.data
        except Exception:  # nats-py's TimeoutError
            check.critical(f"did not receive from {inbox}: nats: timeout")
        request_ns = int((time.monotonic() - request_started) * NS_PER_S)
        warn, crit = options["req_warn"], options["req_critical"]
        check.pd(
            PerfDataItem(
                "request_time",
                seconds(request_ns),
                seconds(warn),
                seconds(crit),
                "s",
                "Time taken for a full Request-Reply operation",
            )
        )
        if received != body.encode():
            check.critical("did not receive expected message")
        if request_ns >= crit:
            check.critical(f"round trip request took {seconds(request_ns):f}")
        elif request_ns >= warn:
            check.warn(f"round trip request took {seconds(request_ns):f}")
        else:
            check.ok(f"round trip took {seconds(request_ns):f}s")
    finally:
        await nc.close()


# -- server -------------------------------------------------------------------------------------


async def check_server(check: CheckResult, options: dict[str, Any]) -> None:
    import nats.errors

    nc = await connect_or_critical(check, "connection failed")
    if nc is None:
        return
    name = options["name"]
    try:
        body = json.dumps({"server_name": name}).encode()
        try:
            msg = await nc.request(
                "$SYS.REQ.SERVER.PING.VARZ", body, timeout=current_settings().timeout_s
            )
            reply = json.loads(msg.data)
        except nats.errors.NoRespondersError:
            check.critical("varz failed: nats: no responders available for request")
            return
        except nats.errors.TimeoutError:
            check.critical("varz failed: nats: timeout")
            return
        except ValueError as exc:
            check.critical(f"varz failed: {exc}")
            return
    finally:
        await nc.close()
    if reply.get("error"):
        error = reply["error"]
        text = error.get("description", error) if isinstance(error, dict) else error
        check.critical(f'varz failed: invalid response received: "{text}"')
        return
    varz = reply.get("data")
    if not varz:
        check.critical(f"varz failed: no data received for {name}")
        return
    evaluate_varz(check, options, varz)


def evaluate_varz(check: CheckResult, options: dict[str, Any], varz: dict[str, Any]) -> None:
    """natscli's CheckServerWithConnection on a varz document."""
    name = options["name"]
    if varz.get("server_name") != name:
        check.critical(f'result from wrong server "{varz.get("server_name", "")}"')
    if options["js_required"]:
        if (varz.get("jetstream") or {}).get("config"):
            check.ok("JetStream enabled")
        else:
            check.critical("JetStream not enabled")
    if options["tls_required"]:
        if varz.get("tls_required"):
            check.ok("TLS required")
        else:
            check.critical("TLS not required")
    if options["auth_required"]:
        if varz.get("auth_required"):
            check.ok("Authentication required")
        else:
            check.critical("Authentication not required")

    start = humanize.parse_go_time(str(varz.get("start", "")))
    now = humanize.parse_go_time(str(varz.get("now", "")))
    up_ns = humanize.ns_between(now, start) if start and now else 0
    up_warn, up_crit = seconds(options["uptime_warn"]), seconds(options["uptime_critical"])
    if up_warn > 0 or up_crit > 0:
        if up_crit > up_warn:
            check.critical("Up invalid thresholds")
            return
        up_text = f"Up {humanize.human_duration(up_ns)}"
        if up_ns <= options["uptime_critical"]:
            check.critical(up_text)
        elif up_ns <= options["uptime_warn"]:
            check.warn(up_text)
        else:
            check.ok(up_text)

    cpu = float(varz.get("cpu", 0))
    mem = float(varz.get("mem", 0))
    conns = float(varz.get("connections", 0))
    subs = float(varz.get("subscriptions", 0))
    check.pd(
        PerfDataItem(
            "uptime", seconds(up_ns), up_warn, up_crit, "s", "NATS Server uptime in seconds"
        ),
        PerfDataItem(
            "cpu",
            cpu,
            options["cpu_warn"],
            options["cpu_critical"],
            "%",
            "NATS Server CPU usage in percentage",
        ),
        PerfDataItem(
            "mem",
            mem,
            options["mem_warn"],
            options["mem_critical"],
            "",
            "NATS Server memory usage in bytes",
        ),
        PerfDataItem(
            "connections",
            conns,
            options["conn_warn"],
            options["conn_critical"],
            "",
            "Active connections",
        ),
        PerfDataItem(
            "subscriptions",
            subs,
            options["subs_warn"],
            options["subs_critical"],
            "",
            "Active subscriptions",
        ),
    )

    def threshold(label: str, crit: float, warn: float, value: float, invertible: bool) -> None:
        if crit == 0 and warn == 0:
            return
        if not invertible and crit < warn:
            check.critical(f"{label} invalid thresholds")
            return
        text = f"{label} {value:.2f}"
        if invertible and crit < warn:
            if value <= crit:
                check.critical(text)
            elif value <= warn:
                check.warn(text)
            else:
                check.ok(text)
        elif value >= crit:
            check.critical(text)
        elif value >= warn:
            check.warn(text)
        else:
            check.ok(text)

    threshold("CPU", options["cpu_critical"], options["cpu_warn"], cpu, False)
    threshold("Memory", options["mem_critical"], options["mem_warn"], mem, False)
    threshold("Connections", options["conn_critical"], options["conn_warn"], conns, True)
    threshold("Subscriptions", options["subs_critical"], options["subs_warn"], subs, True)


# -- credential ---------------------------------------------------------------------------------

_JWT_BLOCK = re.compile(r"-{3,}[^\n]*JWT[^\n]*-{3,}\s*\n\s*(\S+)\s*\n", re.I)


def check_credential(check: CheckResult, options: dict[str, Any]) -> None:
    path = options["credential"]
    try:
        if os.path.isdir(path):
            raise OSError(f"{path} is a directory")
        with open(path, "rb") as stream:
            content = stream.read().decode(errors="replace")
    except OSError as exc:
        reason = exc.strerror.lower() if exc.strerror else str(exc)
        detail = f"stat {path}: {reason}" if exc.strerror else reason
        check.critical(f"credential not accessible: {detail}")
        return
    match = _JWT_BLOCK.search(content)
    token = match.group(1) if match else content.strip()
    try:
        claims = _jwt_claims(token)
    except ValueError as exc:
        check.critical(f"invalid credential: {exc}")
        return
    expires = int(claims.get("exp") or 0)
    until = expires - int(time.time())
    warn_ns, crit_ns = options["validity_warn"], options["validity_critical"]
    check.pd(PerfDataItem("expiry", until, warn_ns, crit_ns, "s", "Expiry time in seconds"))
    if expires == 0 and options["require_expiry"]:
        check.critical("never expires")
    elif crit_ns > 0 and until <= crit_ns:
        check.critical(f"expires sooner than {humanize.human_duration(crit_ns)}")
    elif warn_ns > 0 and until <= warn_ns:
        check.warn(f"expires sooner than {humanize.human_duration(warn_ns)}")
    elif expires == 0:
        check.ok("never expires")
    else:
        moment = dt.datetime.fromtimestamp(expires, dt.UTC)
        check.ok(f"expires in {go_time(moment)}")


def _jwt_claims(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("expected 3 chunks")
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(str(exc)) from exc
    if not isinstance(claims, dict):
        raise ValueError("invalid claims")
    return claims
