"""Turning the resolved settings into a connected nats-py client, and running async commands.

Command modules do::

    def register(root):
        @root.command("thing")
        def thing() -> None:
            run_async(_thing())

    async def _thing() -> None:
        async with connection() as nc:           # bounded connect, closed on exit
            js = jetstream(nc)                    # nats-py JetStreamContext (domain/prefix/timeout)
            info = await js_request(nc, "STREAM.INFO.ORDERS")   # raw $JS.API call, --trace aware

Why not call `nats.connect()` directly: nats-py retries a failing first connect forever (with
`max_reconnect_attempts` of 0 or less) or for minutes (the default 60 attempts, 2 s apart).
`connect()` here tries each server of the list a bounded number of times and fails with
nats.go's words (`nats: no servers available for connection`, `nats: Authorization Violation`);
once connected, the client reconnects forever like natscli's, logging
`>>> Disconnected due to: ..., will attempt reconnect`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import ssl
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from importlib import metadata
from typing import TYPE_CHECKING, Any

from pynats.cli.ui.errors import ApiError, CliError, Interrupted
from pynats.cli.ui.options import Settings, current_settings
from pynats.cli.ui.output import log

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext, JetStreamManager

# nats-py counts retries: each server is tried once, then once more, before giving up.
CONNECT_RETRIES_PER_SERVER = 1
RECONNECT_WAIT_S = 2.0


def cli_version() -> str:
    try:
        return metadata.version("pynats")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "development"


def server_list(servers: str) -> list[str]:
    """`-s a,b` -> ['nats://a:4222'...]: comma-separated, default scheme and port as nats.go."""
    urls = []
    for item in servers.split(","):
        item = item.strip()
        if not item:
            continue
        if "://" not in item:
            item = "nats://" + item
        urls.append(item)
    return urls


async def connect(settings: Settings | None = None, *, name: str | None = None) -> Client:
    """A connected nats-py client for `settings` (default: this run's), or CliError."""
    import nats
    import nats.errors

    settings = settings or current_settings()
    last_error: list[BaseException] = []

    async def on_error(exc: Exception) -> None:
        last_error.append(exc)
        if client.is_connected and not isinstance(exc, nats.errors.SlowConsumerError):
            log(f">>> Unexpected NATS error: {exc}")

    async def on_disconnect() -> None:
        if connected.is_set() and not client.is_closed:
            reason = last_error[-1] if last_error else "connection lost"
            log(f">>> Disconnected due to: {reason}, will attempt reconnect")

    async def on_reconnect() -> None:
        if settings.trace:
            log(f">>> Reconnected to {_url_text(client.connected_url)}")

    async def on_discovered() -> None:
        if settings.trace:
            log(">>> Discovered new servers")

    client = nats.NATS()
    connected = asyncio.Event()
    options = connect_options(settings)
    try:
        await asyncio.wait_for(
            client.connect(
                servers=server_list(settings.servers),
                name=name or settings.connection_name or f"NATS CLI Version {cli_version()}",
                error_cb=on_error,
                disconnected_cb=on_disconnect,
                reconnected_cb=on_reconnect,
                discovered_server_cb=on_discovered,
                max_reconnect_attempts=CONNECT_RETRIES_PER_SERVER,
                reconnect_time_wait=0,
                connect_timeout=max(1, int(settings.timeout_s)),
                **options,
            ),
            timeout=max(settings.timeout_s, 1.0) + 1.0,
        )
    except (TimeoutError, nats.errors.NoServersError, OSError, nats.errors.Error) as exc:
        await _close_quietly(client)
        raise CliError(_connect_failure(exc, last_error)) from exc
    # Connected: from now on behave like natscli, reconnecting forever with a pause.
    client.options["max_reconnect_attempts"] = -1
    client.options["reconnect_time_wait"] = RECONNECT_WAIT_S
    connected.set()
    if settings.trace:
        log(f">>> Connected to {_url_text(client.connected_url)}")
    return client


def _connect_failure(exc: BaseException, seen: list[BaseException]) -> str:
    """nats.go's words for a failed first connect: the auth error if there was one."""
    import nats.errors

    for error in reversed(seen):
        if isinstance(error, nats.errors.AuthorizationError):
            return "nats: Authorization Violation"
        if isinstance(error, nats.errors.Error) and "authorization" in str(error).lower():
            return "nats: Authorization Violation"
        if isinstance(error, ssl.SSLError | nats.errors.SecureConnFailedError):
            return f"nats: {error}"
    if isinstance(exc, nats.errors.Error) and not isinstance(exc, nats.errors.NoServersError):
        return str(exc)
    return "nats: no servers available for connection"


async def _close_quietly(client: Client) -> None:
    try:
        await client.close()
    except Exception:  # the half-open client may be in any state; we are reporting an error
        pass


def _url_text(url: Any) -> str:
    if url is None:
        return ""
    return f"{url.scheme}://{url.hostname}:{url.port}"


def connect_options(settings: Settings) -> dict[str, Any]:
    """nats-py keyword arguments for auth, TLS and inbox prefix (natscli's precedence)."""
    options: dict[str, Any] = {}
    if settings.socks_proxy:
        raise CliError("connecting through a SOCKS5 proxy is not supported yet")
    if settings.user and settings.password:
        options.update(user=settings.user, password=settings.password)
    elif settings.user:
        options["token"] = settings.user  # natscli: a user without a password is a token
    elif settings.creds:
        options["user_credentials"] = credentials_source(settings.creds)
    elif settings.nkey:
        options["nkeys_seed_str"] = read_secret(settings.nkey).strip()
    elif settings.jwt:
        options.update(_jwt_callbacks(settings.jwt, settings.seed))
    if settings.token and "token" not in options:
        options["token"] = (
            read_secret(settings.token) if "://" in settings.token else settings.token
        )
    tls = tls_context(settings)
    if tls is not None:
        options["tls"] = tls
    if settings.tls_first:
        options["tls_handshake_first"] = True
    if settings.inbox_prefix:
        options["inbox_prefix"] = settings.inbox_prefix
    return options


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """An SSL context when any TLS flag is set or a server URL asks for tls://."""
    wants_tls = any(u.startswith("tls://") for u in server_list(settings.servers))
    if not (settings.tls_ca or settings.tls_cert or wants_tls or settings.tls_first):
        return None
    context = ssl.create_default_context(cafile=settings.tls_ca or None)
    if settings.tls_cert and settings.tls_key:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


def read_secret(reference: str) -> str:
    """The text behind a credential reference: a path, file://, env://VAR or data:;base64,."""
    if reference.startswith("env://"):
        value = os.environ.get(reference[len("env://") :])
        if value is None:
            raise CliError(f"environment variable {reference[len('env://') :]} is not set")
        return value
    if reference.startswith("data:"):
        _, _, payload = reference.partition(",")
        return base64.b64decode(payload).decode()
    if reference.startswith(("op://", "nsc://")):
        raise CliError(
            f"credential references like {reference.split('://')[0]}:// are not supported"
        )
    path = reference[len("file://") :] if reference.startswith("file://") else reference
    try:
        with open(os.path.expanduser(path)) as stream:
            return stream.read()
    except OSError as exc:
        raise CliError(f"could not read {path}: {exc.strerror}") from exc


def credentials_source(reference: str) -> Any:
    """What nats-py's `user_credentials` accepts for a creds reference."""
    from nats.aio.client import RawCredentials

    if reference.startswith(("env://", "data:")):
        return RawCredentials(read_secret(reference))
    path = reference[len("file://") :] if reference.startswith("file://") else reference
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        raise CliError(f"open {path}: no such file or directory")
    return path


def _jwt_callbacks(jwt_ref: str, seed_ref: str) -> dict[str, Any]:
    import nkeys

    jwt = (
        read_secret(jwt_ref).strip() if "://" in jwt_ref or jwt_ref.startswith("data:") else jwt_ref
    )
    seed = (
        read_secret(seed_ref).strip()
        if "://" in seed_ref or seed_ref.startswith("data:")
        else seed_ref
    )

    def user_jwt() -> bytearray:
        return bytearray(jwt.encode())

    def sign(nonce: str) -> bytes:
        if not seed:
            return b""
        keys = nkeys.from_seed(bytearray(seed.encode()))
        return base64.b64encode(keys.sign(nonce.encode()))

    return {"user_jwt_cb": user_jwt, "signature_cb": sign}


async def flush_ordered(client: Client, timeout: int = 10) -> None:
    """Return once the server has read everything sent before, subscriptions included.

    nats-py's `flush()` writes its PING straight to the socket, ahead of commands still in
    the client's pending buffer (a SUB just made waits there for the flusher task), so on a
    busy machine the server can answer PONG before it has read the SUB: "Subscribing on ..."
    would be printed before the subscription exists, and a message published at once lost.
    The first round trip lets the flusher write the buffer; the second PING follows it."""
    await client.flush(timeout)
    await client.flush(timeout)


@asynccontextmanager
async def connection(
    settings: Settings | None = None, *, name: str | None = None
) -> AsyncIterator[Client]:
    """`async with connection() as nc:` a connected client, drained of pending output on exit."""
    client = await connect(settings, name=name)
    try:
        yield client
    finally:
        if not client.is_closed:
            try:
                await asyncio.wait_for(client.flush(), timeout=2)
            except Exception:  # best effort: the command already has its result or its error
                pass
            await _close_quietly(client)


def server_info(nc: Client) -> dict[str, Any]:
    """The INFO the server sent on connect (nats-py keeps it private; this is the one accessor)."""
    return dict(getattr(nc, "_server_info", {}) or {})


# -- JetStream --------------------------------------------------------------------------------


def js_api_prefix(settings: Settings | None = None) -> str:
    """`$JS.API`, `$JS.<domain>.API` or the --js-api-prefix, without the trailing dot."""
    settings = settings or current_settings()
    if settings.js_domain:
        return f"$JS.{settings.js_domain}.API"
    if settings.js_api_prefix:
        return settings.js_api_prefix.rstrip(".")
    return "$JS.API"


def jetstream(nc: Client, settings: Settings | None = None) -> JetStreamContext:
    """A nats-py JetStreamContext honouring --js-domain / --js-api-prefix / --timeout."""
    settings = settings or current_settings()
    return nc.jetstream(prefix=js_api_prefix(settings), timeout=settings.timeout_s)


def jetstream_manager(nc: Client, settings: Settings | None = None) -> JetStreamManager:
    """A nats-py JetStreamManager with the same prefix and timeout rules."""
    settings = settings or current_settings()
    return nc.jsm(prefix=js_api_prefix(settings), timeout=settings.timeout_s)


async def js_request(nc: Client, api: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call `$JS.API.<api>` with a JSON body and return the JSON reply.

    An `{"error": ...}` reply raises ApiError with natscli's text (`stream not found (10059)`);
    no JetStream raises `nats: no responders available for request`. With --trace the request
    and reply are logged as natscli does (`>>> subject` / `<<< subject` with the bodies).
    """
    subject = f"{js_api_prefix()}.{api}"
    reply = await traced_request(nc, subject, payload)
    error = reply.get("error")
    if isinstance(error, dict):
        code = error.get("err_code")
        raise ApiError(error.get("description") or "unknown error", int(code) if code else None)
    return reply


async def traced_request(
    nc: Client, subject: str, payload: dict[str, Any] | None = None, timeout: float | None = None
) -> dict[str, Any]:
    """A JSON request/reply with --trace logging; errors become CliError with nats.go words."""
    import nats.errors

    settings = current_settings()
    body = json.dumps(payload).encode() if payload is not None else b""
    if settings.trace:
        log(f">>> {subject}")
        log(body.decode() or "")
    try:
        msg = await nc.request(subject, body, timeout=timeout or settings.timeout_s)
    except nats.errors.NoRespondersError as exc:
        raise CliError("nats: no responders available for request") from exc
    except nats.errors.TimeoutError as exc:
        raise CliError("nats: timeout") from exc
    if settings.trace:
        log(f"<<< {subject}")
        log(msg.data.decode(errors="replace"))
    try:
        reply = json.loads(msg.data or b"{}")
    except ValueError as exc:
        raise CliError(f"invalid JSON reply on {subject}: {exc}") from exc
    if not isinstance(reply, dict):
        raise CliError(f"unexpected reply on {subject}")
    return reply


# -- running a command's coroutine ------------------------------------------------------------


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a command's coroutine to completion; Ctrl-C or SIGTERM cancel it.

    A coroutine that wants its own shutdown behaviour (sub exits 0, reply prints `Draining...`)
    catches `asyncio.CancelledError`; one that does not is ended with `Interrupted`, which the
    entry point turns into exit status 130.
    """
    with event_loop_runner() as runner:
        return runner.run(_cancellable(coro))


def event_loop_runner() -> asyncio.Runner:
    """An asyncio Runner on uvloop when it is installed (the CLI's and bench workers' loop)."""
    try:
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover - uvloop is optional on some platforms
        return asyncio.Runner()


async def _cancellable(coro: Coroutine[Any, Any, Any]) -> Any:
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(coro)
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupt)
    try:
        return await task
    except asyncio.CancelledError:
        if interrupted:
            raise Interrupted() from None
        raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
