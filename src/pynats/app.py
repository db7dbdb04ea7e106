"""The `nats-server` entry point: command line -> Options -> Server (+ JetStream when on).

This is the one place that puts the core server and JetStream together, so that `server/`
never imports `jetstream/`. `pynats.testing` builds servers through `build_server` too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import __version__
from .server import const
from .server.busy_poll import BusyPoll
from .server.flags import USAGE, FlagError, UnrecognizedCommand, parse_args
from .server.log import Logger
from .server.options import Options
from .server.server import Server, ServerStartError
from .server.syslog import SyslogError

if TYPE_CHECKING:
    from .server.ocsp_staple import OCSPStapler

SIGNALS = {
    "ldm": signal.SIGUSR2,
    "stop": signal.SIGKILL,
    "quit": signal.SIGINT,
    "term": signal.SIGTERM,
    "reopen": signal.SIGUSR1,
    "reload": signal.SIGHUP,
}


class ConfigurationError(Exception):
    """Options that cannot work together; printed as `nats-server: <text>`, exit 1."""


def version_text() -> str:
    return f"nats-server: v{const.NATS_FEATURE_VERSION} (pynats v{__version__})"


def validate_options(opts: Options) -> None:
    from .server.config_options import startup_problem

    if (opts.tls or opts.tls_verify or opts.tls_cert or opts.tls_key) and not (
        opts.tls_cert and opts.tls_key
    ):
        raise ConfigurationError("TLS Server certificate must be present and valid")
    # Only --routes is checked (routes in a file without a listener are simply not used).
    cluster = opts.cluster
    flag_routes = "cluster.routes" in opts.set_by_flags and cluster.routes
    if flag_routes and not cluster.host and cluster.port == 0:
        raise ConfigurationError("solicited routes require cluster capabilities, e.g. --cluster")
    if opts.max_payload > opts.max_pending:
        raise ConfigurationError(
            f"max_payload ({opts.max_payload}) cannot be higher than max_pending "
            f"({opts.max_pending})"
        )
    if opts.no_auth_user:
        names = {u.username for u in opts.users} | {n.nkey for n in opts.nkeys}
        for acc in opts.accounts.values():
            names.update(u.username for u in acc.users)
            names.update(n.nkey for n in acc.nkey_users)
        if opts.no_auth_user not in names:
            raise ConfigurationError(
                f'no_auth_user: "{opts.no_auth_user}" not present as user or nkey in '
                "authorization block or account configuration"
            )
    problem = startup_problem(opts)
    if problem:
        raise ConfigurationError(problem)
    from .server.jwt_auth import operator_options_problem

    problem = operator_options_problem(opts)
    if problem:
        raise ConfigurationError(problem)
    if opts.resolver == "URL" and opts.resolver_preload:
        raise ConfigurationError(
            "resolver preloads only available for writeable resolver types MEM/DIR/CACHE_DIR"
        )
    if opts.resolver == "URL":
        from .server.resolvers import url_resolver

        problem = url_resolver(opts).unreachable()
        if problem:
            raise ConfigurationError(problem)
    problem = ocsp_peer_problem(opts)
    if problem:
        raise ConfigurationError(problem)
    if opts.port != const.RANDOM_PORT and not 0 <= opts.port <= 65535:
        raise ServerStartError(
            f'Error listening on port: {opts.host}:{opts.port}, "listen tcp: address '
            f'{opts.port}: invalid port"'
        )


def ocsp_peer_problem(opts: Options) -> str:
    """nats-server refuses to start `ocsp_peer` on a listener that does not verify its
    clients' certificates (the client, websocket and leaf node ports)."""
    checked = [(opts.tls_ocsp_peer, opts.tls_verify or opts.tls_map)] if opts.tls else []
    for tls in (opts.websocket.tls, opts.leafnodes.tls):
        if tls is not None:
            checked.append((tls.ocsp_peer, tls.verify or tls.verify_and_map))
    for peer, verify in checked:
        if peer is not None and peer.verify and not verify:
            from .server.ocsp_peer import MTLS_REQUIRED

            return MTLS_REQUIRED
    return ""


def build_server(opts: Options, logger: Logger | None = None) -> Server:
    """A Server for `opts`, with JetStream attached when it is switched on."""
    server = Server(opts, logger)
    if opts.jetstream:
        attach_jetstream(server)
    # a reload may switch JetStream on later (server/reload_jetstream.py)
    server.jetstream_factory = lambda: attach_jetstream(server)
    return server


def attach_jetstream(server: Server) -> None:
    try:
        from .jetstream.service import enable_jetstream
    except ImportError:
        server.logger.warn(
            "JetStream is not available yet in this pynats build; running without it"
        )
        server.options.jetstream = False
        return
    enable_jetstream(server)


# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
TRIM_THRESHOLD_BYTES = 32 * 1024 * 1024
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024


def tune_allocator() -> None:
    """glibc's malloc, told to keep freed memory at the top of its heap (up to 32 MiB) and to
    serve blocks below 4 MiB from the heap, for a server process of its own.

    Every socket read becomes a bytes object of up to 256 KiB. With glibc's defaults, whether
    freeing it gives the top of the heap back to the kernel (and the next read faults fresh
    pages in) depends on what else happens to sit above it: one import more or less flipped
    pub-only 1 KB between 0.64M and 1.3M msgs/s (benchmarks/README.md, Profiling). Fixed
    thresholds take the heap's layout out of it. Elsewhere (musl, macOS) nothing is done.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return
    mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def install_event_loop_policy() -> None:
    """uvloop when installed (a default dependency on Linux and macOS), asyncio otherwise."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def send_signal(spec: str) -> int:
    """`--signal name[=pid|pidfile]`: signal a running server, as `nats-server -sl` does."""
    name, _, target = spec.partition("=")
    sig = SIGNALS.get(name.lower())
    if sig is None:
        print(f'nats-server: unknown signal "{name}"', file=sys.stderr)
        return 1
    if target:
        pid_text = target
        if not target.isdigit():
            try:
                with open(target) as f:
                    pid_text = f.read().strip()
            except OSError:
                pid_text = target
        if not pid_text.isdigit():
            print(f"nats-server: invalid pid: {pid_text}", file=sys.stderr)
            return 1
        pids = [int(pid_text)]
    else:
        pids = find_server_pids()
        if not pids:
            print("nats-server: no nats-server processes running", file=sys.stderr)
            return 1
        if len(pids) > 1:
            listing = "\n".join(f"  {p}" for p in pids)
            print(
                f"nats-server: multiple nats-server processes running:\n{listing}", file=sys.stderr
            )
            return 1
    try:
        os.kill(pids[0], sig)
    except ProcessLookupError:
        print(f'nats-server: \nsignal "{name}" {pids[0]}: no such process', file=sys.stderr)
        return 1
    except PermissionError:
        print(f'nats-server: \nsignal "{name}" {pids[0]}: operation not permitted', file=sys.stderr)
        return 1
    return 0


def find_server_pids() -> list[int]:
    """Running pynats / nats-server processes other than this one (from /proc)."""
    me = os.getpid()
    pids: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return pids
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if _looks_like_server(argv):
            pids.append(int(entry))
    return sorted(pids)


def _looks_like_server(argv: list[bytes]) -> bool:
    if not argv or not argv[0]:
        return False
    if os.path.basename(argv[0]) in (b"nats-server", b"pynats-server"):
        return b"--signal" not in argv and b"-sl" not in argv
    for i, arg in enumerate(argv[1:3], start=1):
        if os.path.basename(arg) in (b"nats-server", b"pynats-server"):
            return b"--signal" not in argv and b"-sl" not in argv
        if arg == b"-m" and i + 1 < len(argv) and argv[i + 1] == b"pynats.server":
            return True
    return False


def load_config(opts: Options) -> Options:
    """Read `-c FILE` into Options; flags given on the command line win."""
    from .server.config_options import apply_config_file

    return apply_config_file(opts)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        cl = parse_args(args)
    except FlagError as e:
        print(str(e), file=sys.stderr)
        print(USAGE)
        return 0
    except UnrecognizedCommand as e:
        print(f"nats-server: {e}", file=sys.stderr)
        return 1
    if cl.show_help or cl.command == "help":
        print(USAGE)
        return 0
    if cl.show_version or cl.command == "version":
        print(version_text())
        return 0
    if cl.show_tls_help:
        print("TLS is configured with --tls, --tlscert, --tlskey, --tlsverify and --tlscacert.")
        return 0
    if cl.signal:
        return send_signal(cl.signal)

    opts = cl.options
    from .server.config_options import ConfigLoadError

    try:
        if opts.config_file:
            opts = load_config(opts)
    except ConfigLoadError as e:
        print(f"nats-server: {e}", file=sys.stderr)
        return 1
    if cl.test_config:
        if not opts.config_file:
            print(
                "nats-server: must specify [-c, --config] option to check configuration file(s)",
                file=sys.stderr,
            )
            return 1
        if opts.config_warnings:
            print("nats-server: " + "\n".join(opts.config_warnings) + "\n", file=sys.stderr)
            return 1
        print(
            f"nats-server: configuration file {opts.config_file} is valid ({opts.config_digest})",
            file=sys.stderr,
        )
        return 0
    for warning in opts.config_warnings:
        print(warning, file=sys.stderr)
    if cl.deferred_error:
        print(f"nats-server: {cl.deferred_error}", file=sys.stderr)
        return 1
    try:
        validate_options(opts)
        staplers = prepare_ocsp_stapling(opts)
    except (ConfigurationError, ServerStartError) as e:
        print(f"nats-server: {e}", file=sys.stderr)
        return 1

    install_event_loop_policy()
    tune_allocator()
    return asyncio.run(serve(opts, staplers))


def prepare_ocsp_stapling(opts: Options) -> dict[str, OCSPStapler]:
    """`ocsp {}`: nats-server gets its certificates' first OCSP statuses while it creates the
    server, so a failure (or a revoked certificate in `always`) ends it before any log line,
    as a configuration problem does (ocsp_staple.py)."""
    from .server import ocsp_staple

    try:
        return ocsp_staple.staplers_for_options(opts)
    except ocsp_staple.OCSPStapleError as e:
        raise ServerStartError(str(e)) from None


async def serve(opts: Options, staplers: dict[str, OCSPStapler] | None = None) -> int:
    try:
        server = build_server(opts)
    except SyslogError as e:
        # nats-server dies through Go's standard logger when its syslog cannot be reached
        print(time.strftime("%Y/%m/%d %H:%M:%S ") + str(e), file=sys.stderr)
        return 1
    server.ocsp_staplers = staplers
    server.freeze_gc_when_ready = True
    server.busy_poll = BusyPoll(const.BUSY_POLL_WINDOW_S)
    try:
        await server.run()
    except ServerStartError as e:
        server.logger.fatal(str(e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
