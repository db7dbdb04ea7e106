"""The `nats-server` command line, parsed the way Go's flag package does.

One or two dashes (`-js`, `--jetstream`), `-sd DIR` and `-sd=DIR` alike, booleans only take a
value with `=` (`-js=false`), a non-flag argument ends the flags (then only `version` and `help`
are accepted). Error texts and exit codes are nats-server's: a bad flag prints the error and the
usage and exits 0, an unknown command exits 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import strconv
from .options import Options, parse_go_url, split_host_port

USAGE = """
Usage: nats-server [options]

Server Options:
    -a, --addr, --net <host>         Bind to host address (default: 0.0.0.0)
    -p, --port <port>                Use port for clients (default: 4222)
    -n, --name
        --server_name <server_name>  Server name (default: auto)
    -P, --pid <file>                 File to store PID
    -m, --http_port <port>           Use port for http monitoring
    -ms,--https_port <port>          Use port for https monitoring
    -c, --config <file>              Configuration file
    -t                               Test configuration and exit
    -sl,--signal <signal>[=<pid>]    Send signal to nats-server process (ldm, stop, quit, term, reopen, reload)
                                     <pid> can be either a PID (e.g. 1) or the path to a PID file (e.g. /var/run/nats-server.pid)
        --client_advertise <string>  Client URL to advertise to other servers
        --ports_file_dir <dir>       Creates a ports file in the specified directory (<executable_name>_<pid>.ports).

Logging Options:
    -l, --log <file>                 File to redirect log output
    -T, --logtime                    Timestamp log entries (default: true)
        --logtime_utc                Timestamps in UTC instead of local timezone (default: false)
    -s, --syslog                     Log to syslog or windows event log
    -r, --remote_syslog <addr>       Syslog server addr (udp://localhost:514)
    -D, --debug                      Enable debugging output
    -V, --trace                      Trace the raw protocol
    -VV                              Verbose trace (traces system account as well)
    -DV                              Debug and trace
    -DVV                             Debug and verbose trace (traces system account as well)
        --log_size_limit <limit>     Logfile size limit (default: auto)
        --max_traced_msg_len <len>   Maximum printable length for traced messages (default: unlimited)

JetStream Options:
    -js, --jetstream                 Enable JetStream functionality
    -sd, --store_dir <dir>           Set the storage directory

Authorization Options:
        --user <user>                User required for connections
        --pass <password>            Password required for connections
        --auth <token>               Authorization token required for connections

TLS Options:
        --tls                        Enable TLS, do not verify clients (default: false)
        --tlscert <file>             Server certificate file
        --tlskey <file>              Private key for server certificate
        --tlsverify                  Enable TLS, verify client certificates
        --tlscacert <file>           Client certificate CA for verification

Cluster Options:
        --routes <rurl-1, rurl-2>    Routes to solicit and connect
        --cluster <cluster-url>      Cluster URL for solicited routes
        --cluster_name <string>      Cluster Name, if not set one will be dynamically generated
        --no_advertise <bool>        Do not advertise known cluster information to clients
        --cluster_advertise <string> Cluster URL to advertise to other servers
        --connect_retries <number>   For implicit routes, number of connect retries
        --cluster_listen <url>       Cluster url from which members can solicit routes

Profiling Options:
        --profile <port>             Profiling HTTP port

Common Options:
    -h, --help                       Show this message
    -v, --version                    Show version
        --help_tls                   TLS help
"""


class FlagError(Exception):
    """A command-line error: `message` goes to stderr, then the usage (exit 0, as Go's)."""


@dataclass
class CommandLine:
    """What the command line asked for, besides options."""

    options: Options
    show_help: bool = False
    show_version: bool = False
    show_tls_help: bool = False
    test_config: bool = False
    signal: str = ""
    command: str = ""  # "version" / "help" given as a positional argument
    set_fields: set[str] = field(default_factory=set)
    # An error nats-server reports only after reading the configuration file (a --cluster
    # URL that does not parse): `-t -c FILE` never sees it, a start stops with it (exit 1).
    deferred_error: str = ""


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]
    kind: str  # "bool" | "str" | "int"
    apply: Callable[[CommandLine, Any], None]


def _set(name: str) -> Callable[[CommandLine, Any], None]:
    def apply(cl: CommandLine, value: Any) -> None:
        setattr(cl.options, name, value)
        cl.set_fields.add(name)

    return apply


def _set_many(**fields: Any) -> Callable[[CommandLine, Any], None]:
    def apply(cl: CommandLine, value: Any) -> None:
        for name, v in fields.items():
            setattr(cl.options, name, value if v is None else (v and value))
            cl.set_fields.add(name)

    return apply


def _set_cli(name: str) -> Callable[[CommandLine, Any], None]:
    def apply(cl: CommandLine, value: Any) -> None:
        setattr(cl, name, value)

    return apply


def _set_cluster(name: str) -> Callable[[CommandLine, Any], None]:
    def apply(cl: CommandLine, value: Any) -> None:
        setattr(cl.options.cluster, name, value)
        cl.set_fields.add(f"cluster.{name}")

    return apply


def _routes(cl: CommandLine, value: str) -> None:
    """`--routes a,b`: replaces the file's routes (an empty value clears them)."""
    cl.options.cluster.routes = [r.strip() for r in value.split(",") if r.strip()]
    cl.set_fields.add("cluster.routes")


def _cluster_listen(cl: CommandLine, value: str) -> None:
    """`--cluster URL`: the listen host and port, and cluster credentials from the URL's
    user info (none in the URL clears the file's). An empty URL switches the cluster off."""
    cluster = cl.options.cluster
    cl.deferred_error = ""
    if not value:
        cluster.port = 0
        cl.set_fields.add("cluster.port")
        return
    try:
        cluster.host, cluster.port, cluster.username, cluster.password = parse_cluster_url(value)
    except ValueError as e:
        cl.deferred_error = str(e)
        return
    cl.set_fields.update(("cluster.host", "cluster.port", "cluster.username", "cluster.password"))


def parse_cluster_url(text: str) -> tuple[str, int, str, str]:
    """(host, port, username, password) of a --cluster URL, as nats-server's
    `overrideCluster` reads it: port -1 asks for a random port; ValueError has Go's text."""
    wants_random = text.endswith(":-1")
    if wants_random:
        text = text[:-3] + ":0"  # -1 is not a port to Go's URL parser
    url = parse_go_url(text)
    host, port_text = split_host_port(url.host)
    if wants_random:
        port_text = "-1"
    if not port_text:
        raise ValueError("EOF")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f'strconv.ParseInt: parsing "{port_text}": invalid syntax') from None
    if not -(1 << 63) <= port < (1 << 63):
        raise ValueError(f'strconv.ParseInt: parsing "{port_text}": value out of range')
    if url.username is None:
        return host, port, "", ""
    if url.password is None:
        raise ValueError("expected cluster password to be set")
    return host, port, url.username, url.password


def _tls_flag(name: str) -> Callable[[CommandLine, Any], None]:
    def apply(cl: CommandLine, value: Any) -> None:
        setattr(cl.options, name, value)
        cl.set_fields.add(name)
        if name != "tls" and value:
            # any --tls* flag switches TLS on, as nats-server does
            cl.options.tls = True
            cl.set_fields.add("tls")

    return apply


FLAGS: list[Flag] = [
    Flag(("a", "addr", "net"), "str", _set("host")),
    Flag(("p", "port"), "int", _set("port")),
    Flag(("n", "name", "server_name"), "str", _set("server_name")),
    Flag(("P", "pid"), "str", _set("pid_file")),
    Flag(("m", "http_port"), "int", _set("http_port")),
    Flag(("ms", "https_port"), "int", _set("https_port")),
    Flag(("c", "config"), "str", _set("config_file")),
    Flag(("t",), "bool", _set_cli("test_config")),
    Flag(("sl", "signal"), "str", _set_cli("signal")),
    Flag(("client_advertise",), "str", _set("client_advertise")),
    Flag(("ports_file_dir",), "str", _set("ports_file_dir")),
    Flag(("l", "log"), "str", _set("log_file")),
    Flag(("T", "logtime"), "bool", _set("logtime")),
    Flag(("logtime_utc",), "bool", _set("logtime_utc")),
    Flag(("s", "syslog"), "bool", _set("syslog")),
    Flag(("r", "remote_syslog"), "str", _set("remote_syslog")),
    Flag(("D", "debug"), "bool", _set("debug")),
    Flag(("V", "trace"), "bool", _set("trace")),
    Flag(("VV",), "bool", _set_many(trace=None, trace_verbose=None)),
    Flag(("DV",), "bool", _set_many(debug=None, trace=None)),
    Flag(("DVV",), "bool", _set_many(debug=None, trace=None, trace_verbose=None)),
    Flag(("log_size_limit",), "int", _set("log_size_limit")),
    Flag(("max_traced_msg_len",), "int", _set("max_traced_msg_len")),
    Flag(("js", "jetstream"), "bool", _set("jetstream")),
    Flag(("sd", "store_dir"), "str", _set("store_dir")),
    Flag(("user",), "str", _set("username")),
    Flag(("pass",), "str", _set("password")),
    Flag(("auth",), "str", _set("authorization")),
    Flag(("tls",), "bool", _tls_flag("tls")),
    Flag(("tlscert",), "str", _tls_flag("tls_cert")),
    Flag(("tlskey",), "str", _tls_flag("tls_key")),
    Flag(("tlsverify",), "bool", _tls_flag("tls_verify")),
    Flag(("tlscacert",), "str", _tls_flag("tls_ca_cert")),
    Flag(("routes",), "str", _routes),
    Flag(("cluster", "cluster_listen"), "str", _cluster_listen),
    Flag(("cluster_name",), "str", _set_cluster("name")),
    Flag(("no_advertise",), "bool", _set_cluster("no_advertise")),
    Flag(("cluster_advertise",), "str", _set_cluster("advertise")),
    Flag(("connect_retries",), "int", _set_cluster("connect_retries")),
    Flag(("profile",), "int", _set("profile_port")),
    Flag(("h", "help"), "bool", _set_cli("show_help")),
    Flag(("v", "version"), "bool", _set_cli("show_version")),
    Flag(("help_tls",), "bool", _set_cli("show_tls_help")),
]
_BY_NAME = {name: flag for flag in FLAGS for name in flag.names}


def _parse_int(text: str, name: str) -> int:
    """Go's strconv.ParseInt with base 0: decimal, 0x.., 0o.., 0b.., underscores allowed."""
    try:
        return int(text, 0)
    except ValueError:
        raise FlagError(f'invalid value "{text}" for flag -{name}: parse error') from None


def parse_args(argv: list[str], options: Options | None = None) -> CommandLine:
    """Parse `argv` (without the program name) into Options plus command-line actions."""
    cl = CommandLine(options=options or Options())
    i = 0
    while i < len(argv):
        arg = argv[i]
        if len(arg) < 2 or not arg.startswith("-"):
            break
        i += 1
        if arg == "--":
            break
        body = arg[2:] if arg.startswith("--") else arg[1:]
        if not body or body.startswith("-") or body.startswith("="):
            raise FlagError(f"bad flag syntax: {arg}")
        name, has_value, value = body.partition("=")
        flag = _BY_NAME.get(name)
        if flag is None:
            raise FlagError(f"flag provided but not defined: -{name}")
        if flag.kind == "bool":
            try:
                parsed: Any = strconv.parse_bool(value) if has_value else True
            except ValueError:
                raise FlagError(
                    f'invalid boolean value "{value}" for -{name}: parse error'
                ) from None
        else:
            if not has_value:
                if i >= len(argv):
                    raise FlagError(f"flag needs an argument: -{name}")
                value = argv[i]
                i += 1
            parsed = _parse_int(value, name) if flag.kind == "int" else value
        flag.apply(cl, parsed)
    rest = argv[i:]
    if rest:
        command = rest[0]
        if command in ("version", "help"):
            cl.command = command
        else:
            raise UnrecognizedCommand(command)
    cl.options.set_by_flags = set(cl.set_fields)
    return cl


class UnrecognizedCommand(Exception):
    def __init__(self, command: str) -> None:
        super().__init__(f'unrecognized command: "{command}"')
