"""`nats server run [NAME]` (hidden, as in natscli): a local development server.

What natscli sets up, with pynats as the server (`python -m pynats.server`, never another
binary): a configuration file in the temporary directory with three accounts, USER (user
`local`, JetStream enabled, importing SERVICE's `service.>` as `imports.SERVICE.>`), SERVICE
(user `service`, exporting `service.>`) and SYSTEM (user `system`, the system account), each
password random and stored bcrypt-hashed; and three contexts, NAME, NAME_service and
NAME_system (NAME defaults to `nats_development`). Contexts that exist already are kept, and
their passwords and port reused, so a second run serves the same contexts.

    --jetstream       JetStream, stored in $XDG_DATA_HOME/nats/NAME (~/.local/share/nats/NAME)
    --port N          the client port (default: a free one)
    --monitor N       HTTP monitoring on that port
    --verbose         debug logging (--trace, the global flag, adds protocol tracing)
    --clean           remove the three contexts on exit
    --extend-demo     a leafnode connection to demo.nats.io for the USER account
    --extend          a leafnode connection to the current context's servers for USER

The details are printed, then the server runs, its log on this terminal, until SIGINT,
SIGTERM or SIGQUIT: the server is stopped, the configuration file removed, and the command
exits 0. A server that stops by itself is an error (`nats: error: ...`, exit 1).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import click

from pynats.cli.server.passwd import bcrypt_hash
from pynats.cli.ui import context_store
from pynats.cli.ui.errors import CliError
from pynats.cli.ui.options import current_settings
from pynats.cli.ui.output import out

DEFAULT_NAME = "nats_development"
BCRYPT_COST = 5
PASSWORD_LENGTH = 32
PASSWORD_ALPHABET = string.ascii_letters + string.digits
DEMO_LEAF_URL = "nats://demo.nats.io:7422"
STOP_TIMEOUT_S = 15.0
POLL_S = 0.2
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)


@dataclass
class RunConfig:
    """Everything the configuration file and the contexts are made from."""

    name: str
    port: int
    user_password: str
    service_password: str
    system_password: str
    jetstream: bool = False
    store_dir: str = ""
    js_domain: str = ""
    debug: bool = False
    trace: bool = False
    monitor_port: int = 0
    leaf_remotes: tuple[tuple[str, str], ...] = ()  # (url, credentials file)

    @property
    def url(self) -> str:
        """The server's client URL as nats-server's ClientURL() gives it for `listen: 0.0.0.0`."""
        return f"nats://0.0.0.0:{self.port}"


def register(server: click.Group) -> None:
    """Hang `run` under `nats server`."""

    @server.command("run", hidden=True, help="Runs a local development NATS server")
    @click.argument(
        "name",
        required=False,
        default=DEFAULT_NAME,
        help="Uses a named context for local access to the server",
    )
    @click.option("--extend-demo", is_flag=True, help="Extends the NATS demo network")
    @click.option("--extend", is_flag=True, help="Extends a NATS network using a context")
    @click.option("--jetstream", is_flag=True, help="Enables JetStream support")
    @click.option("--port", default="-1", help="Sets the local listening port")
    @click.option(
        "--monitor",
        default=0,
        type=int,
        help="Enable HTTP based monitoring on a local listening port",
    )
    @click.option("--clean", is_flag=True, help="Remove contexts after exiting")
    @click.option("--verbose", is_flag=True, help="Log in debug mode")
    def run(
        name: str,
        extend_demo: bool,
        extend: bool,
        jetstream: bool,
        port: str,
        monitor: int,
        clean: bool,
        verbose: bool,
    ) -> None:
        config = prepare(name, port, jetstream, verbose, monitor, extend_demo, extend)
        run_server(config, clean, extend_demo, extend)


def _random_password() -> str:
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_LENGTH))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _known_password(name: str) -> str:
    if not context_store.is_known(name):
        return ""
    return context_store.load(name).get("password")


def data_home() -> Path:
    """natscli's XdgShareHome: $XDG_DATA_HOME, else ~/.local/share."""
    parent = os.environ.get("XDG_DATA_HOME", "")
    return Path(parent) if parent else Path.home() / ".local" / "share"


def prepare(
    name: str,
    port_text: str,
    jetstream: bool,
    verbose: bool,
    monitor: int,
    extend_demo: bool,
    extend: bool,
) -> RunConfig:
    """The instance's settings: earlier contexts' passwords and port, else fresh ones."""
    context_store.check_name(name)
    settings = current_settings()
    remotes: list[tuple[str, str]] = []
    if extend_demo:
        remotes.append((DEMO_LEAF_URL, ""))
    if extend:
        if not settings.servers:
            raise CliError("extending using a context requires a server url in the context")
        remotes.append((settings.servers.split(",")[0].strip(), settings.creds))
    try:
        port = int(port_text)
    except ValueError:
        raise CliError(f'invalid port "{port_text}"') from None
    if context_store.is_known(name):
        known = urlsplit(context_store.load(name).url).port
        if known:
            port = known
    if port == -1:
        port = _free_port()
    config = RunConfig(
        name=name,
        port=port,
        user_password=_known_password(name) or _random_password(),
        service_password=_known_password(f"{name}_service") or _random_password(),
        system_password=_known_password(f"{name}_system") or _random_password(),
        debug=verbose,
        trace=settings.trace,
        monitor_port=monitor,
        leaf_remotes=tuple(remotes),
    )
    if jetstream:
        config.jetstream = True
        config.store_dir = str(data_home() / "nats" / name)
        if remotes:
            config.js_domain = name.upper()
    return config


def _q(text: str) -> str:
    """A quoted string value of the configuration file."""
    return json.dumps(text)


def server_config(config: RunConfig) -> str:
    """The configuration file natscli writes, with the hashes of the three passwords."""
    lines = [
        f"listen: 0.0.0.0:{config.port}",
        f"server_name: {_q(config.name)}",
        f"debug: {str(config.debug).lower()}",
        f"trace: {str(config.trace).lower()}",
        "system_account: SYSTEM",
        "logtime: false",
    ]
    if config.monitor_port:
        lines.append(f"http_port: {config.monitor_port}")
    if config.jetstream:
        lines.append("jetstream {")
        lines.append(f"    store_dir: {_q(config.store_dir)}")
        if config.js_domain:
            lines.append(f"    domain: {_q(config.js_domain)}")
        lines.append("}")
    user_hash = bcrypt_hash(config.user_password, BCRYPT_COST)
    service_hash = bcrypt_hash(config.service_password, BCRYPT_COST)
    system_hash = bcrypt_hash(config.system_password, BCRYPT_COST)
    lines += [
        "accounts {",
        "    USER: {",
        "        jetstream: enabled",
        f'        users: [{{user: "local", password: {_q(user_hash)}}}]',
        '        imports: [{service: {account: SERVICE, subject: "service.>"}, '
        'to: "imports.SERVICE.>"}]',
        "    }",
        "    SERVICE: {",
        "        jetstream: enabled",
        f'        users: [{{user: "service", password: {_q(service_hash)}}}]',
        '        exports: [{service: "service.>"}]',
        "    }",
        "    SYSTEM: {",
        f'        users: [{{user: "system", password: {_q(system_hash)}}}]',
        "    }",
        "}",
    ]
    if config.leaf_remotes:
        lines.append("leafnodes {")
        lines.append("    remotes = [")
        for url, creds in config.leaf_remotes:
            entry = f"url: {_q(url)}, account: USER"
            if creds:
                entry += f", credentials: {_q(creds)}"
            lines.append(f"        {{{entry}}}")
        lines.append("    ]")
        lines.append("}")
    return "\n".join(lines) + "\n"


def configure_contexts(config: RunConfig) -> tuple[str, str, str]:
    """Create the three contexts unless they exist; returns their names."""
    service = f"{config.name}_service"
    system = f"{config.name}_system"
    wanted = (
        (config.name, "local", config.user_password, "Local user access for NATS Development instance", config.js_domain),
        (service, "service", config.service_password, "Local service access for NATS Development instance", config.js_domain),
        (system, "system", config.system_password, "System user access for NATS Development instance", ""),
    )  # fmt: skip
    for name, user, password, description, domain in wanted:
        if context_store.is_known(name):
            continue
        context = context_store.NatsContext(name=name)
        context.update(
            url=config.url,
            user=user,
            password=password,
            description=description,
            jetstream_domain=domain,
        )
        context_store.save(context)
    return config.name, service, system


def print_details(
    config: RunConfig, names: tuple[str, str, str], clean: bool, demo: bool, extend: bool
) -> None:
    user, service, system = names
    out(f"Starting local development NATS Server instance: {config.name}")
    out()
    out(f"        User Credentials: User: local   Password: {config.user_password} Context: {user}")
    out(
        f"     Service Credentials: User: service Password: {config.service_password} "
        f"Context: {service}"
    )
    out(
        f"      System Credentials: User: system  Password: {config.system_password} "
        f"Context: {system}"
    )
    if config.js_domain:
        out(f"        JetStream Domain: {config.js_domain}")
    out(f"  Extending Demo Network: {str(demo).lower()}")
    if extend:
        context = current_settings().context
        out(f"   Extending Remote NATS: using {context.name if context else ''} context")
    else:
        out("   Extending Remote NATS: false")
    out(f"                     URL: {config.url}")
    out(f"           Clean on Exit: {str(clean).lower()}")
    out()
    out()
    out("NOTE: This is not a supported way to run a production NATS Server, view documentation")
    out("      at https://docs.nats.io/running-a-nats-service/introduction for production use.")
    out()


def run_server(config: RunConfig, clean: bool, demo: bool, extend: bool) -> None:
    """Write the configuration, make the contexts, run pynats until a stop signal."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in STOP_SIGNALS}
    handle, config_path = tempfile.mkstemp(prefix="nats-server-run-", suffix=".cfg")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(server_config(config))
        names = configure_contexts(config)
        try:
            print_details(config, names, clean, demo, extend)
            code = _serve(config_path, stop)
        finally:
            if clean:
                for name in names:
                    context_store.delete(name)
        if code is not None:
            raise CliError(f"the server stopped with exit status {code}")
    finally:
        try:
            os.unlink(config_path)
        except OSError:
            pass
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _serve(config_path: str, stop: threading.Event) -> int | None:
    """Run the server; None when a stop signal ended it, else its own exit status."""
    if stop.is_set():
        return None
    proc = subprocess.Popen([sys.executable, "-m", "pynats.server", "-c", config_path])
    try:
        while not stop.is_set():
            try:
                code = proc.wait(timeout=POLL_S)
            except subprocess.TimeoutExpired:
                continue
            # A Ctrl-C on a terminal reaches the server too: then it is no failure.
            return None if stop.is_set() else code
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        return None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
