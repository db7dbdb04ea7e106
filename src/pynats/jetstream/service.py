"""JetStream on a server: `enable_jetstream(server)` is what `pynats.app` calls.

`JetStream` is the server-wide part (store directory, server limits, sync policy, start-up
banner and recovery, monitoring); `JetStreamAccount` is one account's JetStream (limits,
usage, API counters, its streams). Streams of an account live under
`<store_dir>/jetstream/<account>/streams/<name>/`: `meta.inf` (the config, written durably
before the create/update is answered) and `msgs/` (the file store).

Consumers of a file stream live under `<stream>/obs/<name>/`: `meta.inf` (config and
creation time, durable before the create is answered) and the `ConsumerStore` files (state
snapshot plus operation log). Consumers with `mem_storage` and those of memory streams keep
their state in memory only.

Which accounts: without an `accounts {}` block JetStream is on for the global account with
unlimited limits. With one, each account's `jetstream` value (`enabled`, or a map of limits)
decides; `limits.limits_from_config` reads it.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import tempfile
import time
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from pynats.gotime import format_duration
from pynats.server import const, feature_flags
from pynats.server.internal import InternalClient
from pynats.server.server import ServerStartError
from pynats.server.strconv import friendly_bytes

from . import advisories, jsz, queues
from .api import ApiResponder, build_router
from .config import (
    META_SERVER_LEVEL,
    META_SERVER_VERSION,
    StreamConfig,
    load_stored_config,
    subjects_overlap,
)
from .errors import api_error
from .limits import AccountLimits, jwt_account_limits, limits_from_config
from .store import (
    ConsumerState,
    ConsumerStore,
    Damage,
    FileStore,
    MemoryStore,
    MessageStore,
    SyncMode,
    SyncPolicy,
    cleanup_deleting,
    crypt,
    read_file,
    remove_tree_durable,
    write_durable,
)
from .store.fileio import DEFAULT_FILEIO, FileIO
from .store.metadata import ensure_dir_durable
from .stream import Stream

if TYPE_CHECKING:
    from pynats.server.accounts import Account
    from pynats.server.delivery import Publisher
    from pynats.server.server import Server
    from pynats.server.sublist import Subscription

    from .backup import RestoreSession
    from .consumer import Consumer
    from .consumer_config import ConsumerConfig
    from .push import InterestWatch

PYNATS_JETSTREAM_INFO = "pynats_jetstream"  # route INFO: when JetStream started here (ns)
JS_API_LEVEL = const.JS_API_LEVEL
META_FILE = "meta.inf"
MSGS_DIR = "msgs"
STREAMS_DIR = "streams"
CONSUMERS_DIR = "obs"
CONSUMER_LOG_COMPACT_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_MEMORY_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_STORE_BYTES = 1024**4
GO_DEFAULT_SYNC_INTERVAL_NS = 120 * 10**9  # nats-server's defaultSyncInterval (2m)

BANNER = (
    "    _ ___ _____ ___ _____ ___ ___   _   __  __",
    " _ | | __|_   _/ __|_   _| _ \\ __| /_\\ |  \\/  |",
    "| || | _|  | | \\__ \\ | | |   / _| / _ \\| |\\/| |",
    " \\__/|___| |_| |___/ |_| |_|_\\___/_/ \\_\\_|  |_|",
    "",
    "         https://docs.nats.io/jetstream",
    "",
)


def enable_jetstream(server: Server) -> JetStream:
    """Attach JetStream to `server` through its extension points."""
    js = JetStream(server)
    server.add_startup_hook(js.start)
    server.add_shutdown_hook(js.shutdown)
    server.add_account_hook(js.account_added)
    server.peer_hooks.append(js.peer_joined)
    server.monitor_routes["jsz"] = partial(jsz.jsz, js)
    server.varz_extra.append(js.fill_varz)
    server.healthz_checks.append(partial(jsz.healthz_check, js))
    server.jetstream = js  # what a reload switches off and on (server/reload_jetstream.py)
    return js


def _ignore_request(
    sub: Subscription,
    publisher: Publisher,
    subject: bytes,
    reply: bytes | None,
    headers: bytes,
    payload: bytes,
) -> None:
    """What takes `$JS.API` requests after a reload switched JetStream off: nothing answers."""


def go_temp_dir() -> str:
    """Go's os.TempDir() on Unix: $TMPDIR as it is (Python's tempfile.gettempdir() would skip
    an unusable one), else /tmp."""
    return os.environ.get("TMPDIR") or "/tmp"


def system_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def available_disk_bytes(path: str) -> int:
    probe = path
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    try:
        st = os.statvfs(probe or "/")
    except OSError:
        return 0
    return st.f_bavail * st.f_frsize


class JetStream:
    """Server-wide JetStream state."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.accounts: dict[str, JetStreamAccount] = {}
        self.disabled_responders: list[InternalClient] = []
        # after a reload switched JetStream off: what answers nothing on `$JS.API.>` in the
        # accounts that had JetStream (or its 10039 answer), as nats-server's leftover
        # service imports do
        self.silent_responders: list[InternalClient] = []
        self.recovery_errors: list[str] = []
        # accounts created by a reload, whose streams are recovered once it is applied
        self.added_in_reload: list[JetStreamAccount] = []
        self.source_lookups: dict[str, JetStreamAccount | None] = {}
        self.started = False
        self.started_ns = 0
        # a reload switched JetStream off (or failed to switch it on): /jsz and /healthz
        # answer as a server without JetStream
        self.disabled = False
        self._api_lock: asyncio.Lock | None = None
        self.configure()

    def configure(self) -> None:
        """Take the server's `jetstream {}` options (at start-up, and when a reload switches
        JetStream on again)."""
        opts = self.server.options
        self.domain = opts.jetstream_domain
        # `feature_flags { js_ack_fc_v2 }`: consumers send the v2 ack and flow control
        # subjects (with the domain and the account hash), as nats-server then does
        self.ack_fc_v2 = feature_flags.enabled(opts.feature_flags, "js_ack_fc_v2")
        self.api_level = JS_API_LEVEL
        self.atomic_batches_open = 0  # across every stream (batches.MAX_INFLIGHT_TOTAL)
        self.strict = opts.jetstream_strict
        # `jetstream { limits {} }`, by their /varz names (consumer and stream checks read it)
        self.server_limits: dict[str, int] = dict(opts.jetstream_limits)
        self.unique_tag = opts.jetstream_unique_tag
        # each stream's limit on messages waiting for their fsync (queues.py)
        self.max_buffered_msgs = queues.positive_or(
            opts.jetstream_max_buffered_msgs, queues.DEFAULT_MAX_BUFFERED_MSGS
        )
        self.max_buffered_size = queues.positive_or(
            opts.jetstream_max_buffered_size, queues.DEFAULT_MAX_BUFFERED_SIZE
        )
        self.temp_dir_used = not opts.store_dir
        base = opts.store_dir or os.path.join(go_temp_dir(), "nats")
        self.store_root = os.path.abspath(os.path.join(base, "jetstream"))
        self.store_relative = not os.path.isabs(base)
        self._configure_resources()
        if opts.jetstream_sync_always:
            self.sync_policy = SyncPolicy(SyncMode.ALWAYS)
        elif opts.jetstream_sync_interval is not None:
            self.sync_policy = SyncPolicy.parse(int(opts.jetstream_sync_interval * 1e9))
        else:
            self.sync_policy = SyncPolicy()
        # encryption at rest: every stored file goes through `fileio` (store/crypt.py)
        self.keyring: crypt.Keyring | None = None
        self.prev_keyring: crypt.Keyring | None = None
        self.fileio: FileIO = DEFAULT_FILEIO
        if opts.jetstream_key:
            cipher = crypt.parse_cipher(opts.jetstream_cipher or "chacha") or crypt.CHACHA
            self.keyring = crypt.Keyring(opts.jetstream_key, cipher)
            if opts.jetstream_prev_key:
                self.prev_keyring = crypt.Keyring(opts.jetstream_prev_key, cipher)
            self.fileio = crypt.EncryptedFileIO(self.keyring)

    # -- lifecycle ---------------------------------------------------------------------------

    def _configure_resources(self) -> None:
        """The memory and storage JetStream may use: the configured sizes, or nats-server's
        dynamic ones (3/4 of the memory, of the free disk)."""
        opts = self.server.options
        self.max_memory = opts.jetstream_max_memory
        if self.max_memory < 0:
            mem = system_memory_bytes()
            self.max_memory = mem * 3 // 4 if mem else DEFAULT_MAX_MEMORY_BYTES
        self.max_store = opts.jetstream_max_store
        if self.max_store < 0:
            disk = available_disk_bytes(self.store_root)
            self.max_store = disk * 3 // 4 if disk else DEFAULT_MAX_STORE_BYTES

    async def start(self) -> None:
        self.start_now()

    def start_now(self) -> None:
        """Start JetStream: the banner, the store directory, every account's streams and
        consumers recovered. ServerStartError when the store directory cannot be used."""
        log = self.server.logger
        began = time.monotonic()
        self._api_lock = asyncio.Lock()
        self.recovery_errors = []
        self.added_in_reload = []
        self.source_lookups = {}
        self.atomic_batches_open = 0
        log.notice("Starting JetStream")
        if self.temp_dir_used:
            log.warn("Temporary storage directory used, data could be lost on system reboot")
        problem = self._prepare_store_dir()
        if problem:
            # nats-server logs how long it took even when it gives up, then dies with [FTL].
            took = time.monotonic() - began
            log.notice(f"Took {format_duration(round(took * 1e9))} to start JetStream")
            raise ServerStartError(f"Can't start JetStream: {problem}")
        for line in BANNER:
            log.notice(line)
        log.notice("---------------- JETSTREAM ----------------")
        log.notice(f"  Strict:          {str(self.strict).lower()}")
        log.notice(f"  Max Memory:      {friendly_bytes(self.max_memory)}")
        log.notice(f"  Max Storage:     {friendly_bytes(self.max_store)}")
        log.notice(f'  Store Directory: "{self.store_root}"')
        if self.domain:
            log.notice(f"  Domain:          {self.domain}")
        if self.keyring is not None:
            log.notice(f"  Encryption:      {crypt.CIPHER_NAMES[self.keyring.cipher]}")
        policy = self.sync_policy
        if policy.mode is SyncMode.INTERVAL:  # ours: the lazy mode is not our default
            log.notice(f"  Sync Interval:   {format_duration(policy.interval_ns)} (lazy)")
        log.notice(f"  API Level:       {self.api_level}")
        log.notice("-------------------------------------------")
        if policy.mode is SyncMode.INTERVAL:
            log.warn(
                "JetStream file storage syncs to disk every "
                f"{format_duration(policy.interval_ns)}: acknowledged messages can be lost on a "
                "power failure (sync_interval)"
            )
        self.api = ApiResponder(self, build_router())
        for account in list(self.server.accounts.values()):
            self._enable_account(account)
        for jsa in self.accounts.values():
            jsa.recover()
        for jsa in self.accounts.values():
            for stream in jsa.streams.values():
                jsa.start_sources(stream)
        self.started = True
        self.disabled = False
        self.started_ns = time.time_ns()
        # Other pynats servers of a cluster learn from this that JetStream runs here (Go
        # servers ignore the field: they must not count us as a JetStream peer).
        self.server.route_info_extra[PYNATS_JETSTREAM_INFO] = self.started_ns
        took = time.monotonic() - began
        log.notice(f"Took {format_duration(round(took * 1e9))} to start JetStream")

    def _prepare_store_dir(self) -> str | None:
        """nats-server's checks of the store directory (enableJetStream): create it when it
        does not exist, else it must be a directory we can write to. The problem text, or
        None."""
        path = self.store_root
        try:
            st = os.stat(path)
        except FileNotFoundError:
            try:
                ensure_dir_durable(path)
            except OSError as e:
                where = e.filename if isinstance(e.filename, str) else path
                if self.store_relative:
                    where = os.path.relpath(where)
                reason = (e.strerror or str(e)).lower()
                return f"could not create storage directory - mkdir {where}: {reason}"
            return None
        except OSError:
            return "storage directory is not a directory"
        if not stat.S_ISDIR(st.st_mode):
            return "storage directory is not a directory"
        try:
            fd, probe = tempfile.mkstemp(prefix="_test_", dir=path)
            os.close(fd)
            os.unlink(probe)
        except OSError:
            return "storage directory is not writable"
        return None

    def _enable_account(self, account: Account) -> None:
        if account.is_system:
            return
        limits = self.account_limits(account.name)
        if limits is None:
            self.disabled_responders.append(self.api.attach_disabled(account))
            return
        jsa = JetStreamAccount(self, account, limits)
        self.accounts[account.name] = jsa
        account.jetstream = jsa
        self.api.attach(jsa)

    def account_added(self, account: Account) -> None:
        """An account created after start-up (by a reload, an account JWT fetched or pushed)
        gets JetStream (or the 10039 responder), and with it the streams and consumers it
        has in the store directory, as nats-server recovers them."""
        if self.started and account.name not in self.accounts:
            self._enable_account(account)
            jsa = self.accounts.get(account.name)
            if jsa is None:
                return
            if getattr(self.server, "reloading", False):
                # recovered after the reload's `Reloaded:` lines (reload_options), as
                # nats-server logs its restores
                self.added_in_reload.append(jsa)
            else:
                self._recover_added(jsa)

    def _recover_added(self, jsa: JetStreamAccount) -> None:
        if self.accounts.get(jsa.account.name) is not jsa:
            return  # JetStream restarted or the account switched off meanwhile
        jsa.recover()
        for stream in jsa.streams.values():
            jsa.start_sources(stream)

    def account_limits(self, name: str) -> AccountLimits | None:
        """None = JetStream off for this account (see the module docstring)."""
        declared: dict[str, Any] = {}
        for acc, cfg in (self.server.options.accounts or {}).items():
            value = (
                cfg.get("jetstream") if isinstance(cfg, dict) else getattr(cfg, "jetstream", None)
            )
            if value is not None:
                declared[acc] = value
        if name in declared:
            return limits_from_config(declared[name])
        opts = self.server.options
        if opts.trusted_operators or opts.trusted_keys:
            # an account JWT turns JetStream on with storage limits (nats-server's
            # `mem_storage`/`disk_storage`, or tiered limits)
            return jwt_account_limits(self.server.authenticator.account_limits(name))
        if name == const.GLOBAL_ACCOUNT and not any(
            limits_from_config(v) is not None for v in declared.values()
        ):
            return AccountLimits()
        return None

    async def shutdown(self) -> None:
        if self.disabled:
            return  # a reload switched it off: nothing left to stop (nats-server logs nothing)
        self.stop_stores()

    def stop_stores(self) -> None:
        """Stop every stream and consumer and close their stores: everything they took is
        durable once this returns (the stores' final fsync)."""
        log = self.server.logger
        log.notice("Initiating JetStream Shutdown...")
        for jsa in self.accounts.values():
            self._stop_account(jsa)
        log.notice("JetStream Shutdown")

    def _stop_account(self, jsa: JetStreamAccount) -> None:
        log = self.server.logger
        for stream in list(jsa.streams.values()):
            for consumer in list(stream.consumers.values()):
                consumer.stop(deleted=False)
                try:
                    consumer.store.stop()
                except Exception as e:
                    log.error(
                        f"Error stopping consumer '{jsa.name} > {stream.name} > "
                        f"{consumer.name}': {e}"
                    )
        jsa.stop()
        for stream in list(jsa.streams.values()):
            stream.stop()
            try:
                stream.save_recovery_state()
            except OSError as e:
                log.warn(f"Could not save the dedupe window of '{jsa.name} > {stream.name}': {e}")
        for stream in list(jsa.streams.values()):
            try:
                stream.store.stop()
            except Exception as e:
                log.error(f"Error stopping stream '{jsa.name} > {stream.name}': {e}")

    def _detach(self) -> list[Account]:
        """Take JetStream off every account (its API subscriptions, its streams' interest);
        the accounts it was on, with JetStream or with the 10039 answer."""
        accounts = [jsa.account for jsa in self.accounts.values()]
        for jsa in self.accounts.values():
            jsa.client.close()
            jsa.account.jetstream = None
        for responder in self.disabled_responders:
            accounts.append(responder.account)
            responder.close()
        self.accounts.clear()
        self.disabled_responders.clear()
        self.server.route_info_extra.pop(PYNATS_JETSTREAM_INFO, None)
        return accounts

    # -- switched on and off by a reload (server/reload_jetstream.py) ------------------------

    @property
    def running(self) -> bool:
        return self.started

    def reload_disable(self) -> None:
        """A reload switched JetStream off: stop and close every store (nothing acknowledged
        is lost), then leave `$JS.API.>` requests unanswered in the accounts that had
        JetStream, as nats-server does (its service imports stay)."""
        if not self.started:
            return
        self.started = False
        self.stop_stores()
        for account in self._detach():
            silent = InternalClient(self.server, account, "$JS")
            silent.subscribe("$JS.API.>", _ignore_request)
            self.silent_responders.append(silent)
        self.disabled = True
        self.server.monitor_routes.pop("jsz", None)
        self.server.refresh_info()

    def reload_enable(self) -> None:
        """A reload switched JetStream on (again): the options as they are now, the banner,
        every account's streams recovered from the store directory. When the directory
        cannot be used, nats-server's warning, and JetStream stays off."""
        log = self.server.logger
        log.notice("Restarting JetStream")
        for silent in self.silent_responders:
            silent.close()
        self.silent_responders.clear()
        self.configure()
        try:
            self.start_now()
        except ServerStartError as e:
            log.warn(str(e))
            self.stop_stores()
            self.disabled = True
            return
        self.server.monitor_routes["jsz"] = partial(jsz.jsz, self)
        self.server.refresh_info()

    def reload_options(self) -> None:
        """A reload kept JetStream on: take the server limits, explicit memory and storage
        sizes, and each account's `jetstream` (switched on: its streams recovered; off: its
        streams stopped and closed, 10039 answered; limits: taken)."""
        opts = self.server.options
        self.server_limits = dict(opts.jetstream_limits)
        if opts.jetstream_max_memory >= 0:
            self.max_memory = opts.jetstream_max_memory
        if opts.jetstream_max_store >= 0:
            self.max_store = opts.jetstream_max_store
        for account in list(self.server.accounts.values()):
            if account.is_system:
                continue
            limits = self.account_limits(account.name)
            jsa = self.accounts.get(account.name)
            if jsa is not None and limits is not None:
                jsa.limits = limits
            elif jsa is not None:
                self._stop_account(jsa)
                jsa.client.close()
                account.jetstream = None
                del self.accounts[account.name]
                self.disabled_responders.append(self.api.attach_disabled(account))
            elif limits is not None:
                for responder in [r for r in self.disabled_responders if r.account is account]:
                    responder.close()
                    self.disabled_responders.remove(responder)
                self._enable_account(account)
                jsa = self.accounts[account.name]
                jsa.recover()
                for stream in jsa.streams.values():
                    jsa.start_sources(stream)
        added, self.added_in_reload = self.added_in_reload, []
        for jsa in added:
            self._recover_added(jsa)

    # -- one JetStream per cluster -------------------------------------------------------

    def peer_joined(self, name: str, info: Mapping[str, Any]) -> None:
        """A server joined the cluster. pynats runs JetStream on one server of a cluster (no
        replication): when another server already runs it - a Go JetStream cluster, or a
        pynats server that started JetStream first - this one refuses its own."""
        if not self.started:
            return
        other = info.get(PYNATS_JETSTREAM_INFO)
        if info.get("jetstream"):
            why = f"server {name!r} runs the cluster's JetStream (Go nats-server)"
        elif isinstance(other, int) and (other, name) < (self.started_ns, self.server.server_name):
            why = f"server {name!r} started JetStream first"
        else:
            return
        self.server.logger.error(
            f"JetStream disabled on this server: {why}; pynats runs JetStream on one server "
            "of a cluster, and clients of every server use that one"
        )
        self.server.loop.create_task(self.withdraw(go_peer=bool(info.get("jetstream"))))

    async def withdraw(self, *, go_peer: bool) -> None:
        """Stop answering: shut JetStream down here and let routing reach the other one."""
        if not self.started:
            return
        self.started = False
        self.stop_stores()
        self._detach()
        server = self.server
        server.options.jetstream = False
        server.refresh_info()
        if go_peer:
            server.reach_cluster_jetstream()

    # -- helpers -----------------------------------------------------------------------------

    @property
    def api_lock(self) -> asyncio.Lock:
        assert self._api_lock is not None
        return self._api_lock

    def server_metadata(self) -> dict[str, str]:
        return {
            META_SERVER_LEVEL: str(self.api_level),
            META_SERVER_VERSION: const.NATS_FEATURE_VERSION,
        }

    def cluster_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {}
        if self.server.options.cluster.name:
            info["name"] = self.server.options.cluster.name
        info["leader"] = self.server.server_name
        return info

    def config_json(self) -> dict[str, Any]:
        policy = self.sync_policy
        out: dict[str, Any] = {
            "max_memory": self.max_memory,
            "max_storage": self.max_store,
            "store_dir": self.store_root,
        }
        if policy.mode is SyncMode.INTERVAL:
            out["sync_interval"] = policy.interval_ns
        elif policy.mode is SyncMode.ALWAYS:
            # as nats-server: `always` leaves its (unused) interval at the 2m default
            out["sync_interval"] = GO_DEFAULT_SYNC_INTERVAL_NS
            out["sync_always"] = True
        else:
            out["sync_interval"] = 0
        if self.domain:
            out["domain"] = self.domain
        if self.unique_tag:
            out["unique_tag"] = self.unique_tag
        out["strict"] = self.strict
        return out

    def limits_json(self) -> dict[str, Any]:
        """/varz and /jsz `limits`: the server-wide limits that are set, in nats-server's
        order, and the default consumer limit."""
        out: dict[str, Any] = {}
        for name in (
            "max_request_batch",
            "max_ack_pending",
            "max_ha_assets",
            "max_duplicate_window",
        ):
            if self.server_limits.get(name):
                out[name] = self.server_limits[name]
        out["default_max_consumers"] = 1000
        return out

    def stats_json(self) -> dict[str, Any]:
        memory = storage = reserved_mem = reserved_store = total = errors = 0
        for jsa in self.accounts.values():
            memory += jsa.memory_used()
            storage += jsa.storage_used()
            rm, rs = jsa.reserved()
            reserved_mem += rm
            reserved_store += rs
            total += jsa.api_total
            errors += jsa.api_errors
        return {
            "memory": memory,
            "storage": storage,
            "reserved_memory": reserved_mem,
            "reserved_storage": reserved_store,
            "accounts": len(self.accounts),
            "ha_assets": 0,
            "api": {"level": self.api_level, "total": total, "errors": errors},
        }

    def fill_varz(self, varz: dict[str, Any]) -> None:
        if self.disabled:
            return  # switched off by a reload: a server without JetStream has no section
        varz["jetstream"] = {
            "config": self.config_json(),
            "stats": self.stats_json(),
            "limits": self.limits_json(),
        }

    def memory_reserved_total(self) -> int:
        return sum(jsa.reserved()[0] for jsa in self.accounts.values())

    def storage_reserved_total(self) -> int:
        return sum(jsa.reserved()[1] for jsa in self.accounts.values())


class JetStreamAccount:
    """One account's JetStream: its limits, usage, API counters and streams."""

    def __init__(self, js: JetStream, account: Account, limits: AccountLimits) -> None:
        self.js = js
        self.account = account
        self.name = account.name
        self.limits = limits
        self.client = InternalClient(js.server, account, "$JS")
        self.streams: dict[str, Stream] = {}
        self.api_total = 0
        self.api_errors = 0
        self.api_sub: Subscription | None = None  # `$JS.API.>` (see api.ApiResponder)
        self.directory = os.path.join(js.store_root, account.name, STREAMS_DIR)
        # stored streams this server is too old to serve (ADR-44): name -> why
        self.offline: dict[str, str] = {}
        self.restoring: dict[str, RestoreSession] = {}  # stream name -> its restore upload
        self._interest_watch: InterestWatch | None = None

    def interest_watch(self) -> InterestWatch:
        if self._interest_watch is None:
            from .push import InterestWatch

            self._interest_watch = InterestWatch(self.account, self.js.server.loop)
        return self._interest_watch

    def stop(self) -> None:
        if self._interest_watch is not None:
            self._interest_watch.stop()

    # -- usage -------------------------------------------------------------------------------

    def memory_used(self) -> int:
        return sum(s.store.bytes for s in self.streams.values() if s.config.is_memory)

    def storage_used(self) -> int:
        return sum(s.store.bytes for s in self.streams.values() if not s.config.is_memory)

    def reserved(self) -> tuple[int, int]:
        mem = store = 0
        for s in self.streams.values():
            if s.config.max_bytes > 0:
                if s.config.is_memory:
                    mem += s.config.max_bytes
                else:
                    store += s.config.max_bytes
        return mem, store

    def consumer_count(self) -> int:
        return sum(len(s.consumers) for s in self.streams.values())

    def info_json(self) -> dict[str, Any]:
        mem, store = self.reserved()
        out: dict[str, Any] = {
            "memory": self.memory_used(),
            "storage": self.storage_used(),
            "reserved_memory": mem,
            "reserved_storage": store,
            "streams": len(self.streams),
            "consumers": self.consumer_count(),
            "limits": self.limits.to_json(),
        }
        if self.js.domain:
            out["domain"] = self.js.domain
        out["api"] = {
            "level": self.js.api_level,
            "total": self.api_total,
            "errors": self.api_errors,
        }
        return out

    # -- checks ------------------------------------------------------------------------------

    def check_max_bytes(self, cfg: StreamConfig) -> None:
        """The account's `max_bytes_required` (10113) and per-stream maximum for the stream's
        storage, `memory_max_stream_bytes` / `store_max_stream_bytes` (10122). nats-server
        checks them in checkStreamCfg, after the subjects and before the subject transform
        and republish rules; `cfg` has its defaults applied (max_bytes 0 is -1)."""
        lim = self.limits
        if lim.max_bytes_required and cfg.max_bytes <= 0:
            raise api_error("JSStreamMaxBytesRequired")
        per_stream = lim.memory_max_stream_bytes if cfg.is_memory else lim.storage_max_stream_bytes
        if per_stream > 0 and cfg.max_bytes > per_stream:
            raise api_error("JSStreamMaxStreamBytesExceeded")

    def check_limits(self, cfg: StreamConfig, existing: Stream | None = None) -> None:
        """Account and server limits for creating (or updating to) `cfg`: the number of
        streams, then the bytes reserved (nats-server's jsNonClusteredStreamLimitsCheck)."""
        lim = self.limits
        if existing is None and lim.max_streams > 0 and len(self.streams) >= lim.max_streams:
            raise api_error("JSMaximumStreamsLimitErr")
        old = (
            existing.config.max_bytes
            if existing is not None and existing.config.max_bytes > 0
            else 0
        )
        mem, store = self.reserved()
        if cfg.is_memory:
            acc_max, server_max, reserved = lim.max_memory, self.js.max_memory, mem
            server_reserved = self.js.memory_reserved_total()
        else:
            acc_max, server_max, reserved = lim.max_storage, self.js.max_store, store
            server_reserved = self.js.storage_reserved_total()
        # A stream without max_bytes still takes a byte (nats-server's checkBytesLimits): an
        # account whose limit for that storage is 0 may have no such stream at all.
        adds = cfg.max_bytes if cfg.max_bytes > 0 else 1
        if acc_max >= 0 and reserved - old + adds > acc_max:
            raise api_error(
                "JSMemoryResourcesExceededErr" if cfg.is_memory else "JSStorageResourcesExceededErr"
            )
        if cfg.max_bytes > 0 and server_reserved - old + cfg.max_bytes > server_max:
            raise api_error("JSInsufficientResourcesErr")

    def check_overlap(self, cfg: StreamConfig, exclude: str = "") -> None:
        for stream in self.streams.values():
            if stream.name != exclude and subjects_overlap(cfg.subjects, stream.config.subjects):
                raise api_error("JSStreamSubjectOverlapErr")

    # -- stream lifecycle ----------------------------------------------------------------------

    def stream_dir(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _open_store(self, cfg: StreamConfig, directory: str | None) -> MessageStore:
        if cfg.is_memory or directory is None:
            return MemoryStore(cfg.store_config())
        return FileStore(
            os.path.join(directory, MSGS_DIR),
            cfg.store_config(),
            self.js.sync_policy,
            loop=self.js.server.loop,
            fileio=self.js.fileio,
        )

    async def _write_meta(self, directory: str, cfg: StreamConfig, created_ns: int) -> None:
        data = json.dumps({"created": created_ns, "config": cfg.to_json()}).encode()
        path = os.path.join(directory, META_FILE)
        await asyncio.get_running_loop().run_in_executor(
            None, write_durable, path, data, self.js.fileio
        )

    async def create_stream(self, cfg: StreamConfig) -> Stream:
        """Create and start a stream (config durable first for file streams)."""
        if cfg.name in self.restoring:
            raise api_error("JSStreamNameExistErr")
        created = time.time_ns()
        directory = None if cfg.is_memory else self.stream_dir(cfg.name)
        if directory is not None:
            await self._write_meta(directory, cfg, created)
        self.check_attached()
        store = self._open_store(cfg, directory)
        stream = self._activate(cfg, store, created, directory)
        advisories.stream_action(self, cfg.name, "create")
        return stream

    def check_attached(self) -> None:
        """After an await: a reload may have switched JetStream off (or off for this account)
        meanwhile; what was written stays on disk for when it is switched on again."""
        if self.js.accounts.get(self.name) is not self:
            raise api_error("JSNotEnabledForAccountErr")

    def _activate(
        self, cfg: StreamConfig, store: MessageStore, created: int, directory: str | None
    ) -> Stream:
        store.on_damage = partial(self._log_stream_damage, cfg.name)
        stream = Stream(self, cfg, store, created, directory)
        self.streams[cfg.name] = stream
        stream.start()
        self.start_sources(stream)
        for jsa in self.js.accounts.values():
            for other in jsa.streams.values():
                if other.sources is not None and other is not stream:
                    other.sources.origin_created(stream)
        return stream

    # -- restore (backup.py) ---------------------------------------------------------------------

    def open_restore_store(self, cfg: StreamConfig) -> tuple[MessageStore, str | None]:
        """The empty store a restore fills. Its directory has no metadata file until the
        restore completes, so recovery never takes a half-restored stream for a stream; what
        an earlier, interrupted restore left there is removed first."""
        directory = None if cfg.is_memory else self.stream_dir(cfg.name)
        if directory is not None and os.path.exists(directory):
            remove_tree_durable(directory)
        return self._open_store(cfg, directory), directory

    def discard_restore_store(self, store: MessageStore, directory: str | None) -> None:
        store.delete()
        if directory is not None and os.path.exists(directory):
            remove_tree_durable(directory)

    async def adopt_restored(
        self,
        cfg: StreamConfig,
        store: MessageStore,
        directory: str | None,
        consumers: list[tuple[str, ConsumerConfig, ConsumerState]],
    ) -> Stream:
        """Make a restored store a stream: once its messages are durable, its metadata, then
        its consumers with the state the backup gave them."""
        from .consumer import Consumer

        loop = asyncio.get_running_loop()
        durable: asyncio.Future[BaseException | None] = loop.create_future()

        def on_durable(err: BaseException | None) -> None:
            if not durable.done():
                durable.set_result(err)

        store.when_durable(on_durable)
        err = await durable
        if err is not None:
            raise api_error("JSStreamRestoreErrF", err=str(err))
        created = time.time_ns()
        if directory is not None:
            await self._write_meta(directory, cfg, created)
        if self.js.accounts.get(self.name) is not self:
            store.stop()  # JetStream was switched off meanwhile: recovered when it is back
        self.check_attached()
        stream = self._activate(cfg, store, created, directory)
        for name, ccfg, state in consumers:
            cdir = None if ccfg.mem_storage else self.consumer_dir(stream, name)
            if cdir is not None:
                await self._write_consumer_meta(cdir, name, ccfg, created)
            cstore = self._open_consumer_store(cdir)
            cstore.update_state(state)
            consumer = Consumer(stream, name, ccfg, cstore, created, cdir)
            stream.consumers[name] = consumer
            consumer.start_recovered()
        advisories.stream_action(self, cfg.name, "create")
        return stream

    async def update_stream(self, stream: Stream, cfg: StreamConfig) -> None:
        if stream.directory is not None:
            await self._write_meta(stream.directory, cfg, stream.created_ns)
        if stream.closed:
            raise api_error("JSStreamNotFoundErr")
        old_sources = stream.config.to_json().get("sources"), stream.config.to_json().get("mirror")
        stream.update(cfg)
        new_sources = cfg.to_json().get("sources"), cfg.to_json().get("mirror")
        if old_sources != new_sources:
            if stream.sources is not None:
                stream.sources.stop()
                stream.sources = None
            self.start_sources(stream)
        advisories.stream_action(self, cfg.name, "modify")

    async def delete_stream(self, stream: Stream) -> None:
        """Stop, then remove durably: the directory is renamed away first (one atomic step),
        so a crash never brings a half-deleted stream back."""
        for consumer in list(stream.consumers.values()):
            consumer.stop(deleted=True)
            consumer.store.stop()
            advisories.consumer_action(self, stream.name, consumer.name, "delete")
        stream.consumers.clear()
        stream.stop()
        self.streams.pop(stream.name, None)
        for other in self.streams.values():
            if other.sources is not None:
                other.sources.origin_deleted(stream)
        if stream.directory is None:
            stream.store.delete()
        else:
            loop = asyncio.get_running_loop()
            doomed = stream.directory + ".deleting"
            await loop.run_in_executor(None, _rename_durable, stream.directory, doomed)
            stream.store.delete()
            await loop.run_in_executor(None, cleanup_deleting, self.directory)
        advisories.stream_action(self, stream.name, "delete")

    def start_sources(self, stream: Stream) -> None:
        cfg = stream.config
        if cfg.mirror is None and not cfg.sources:
            return
        from .sources import SourceLinks

        stream.sources = SourceLinks(stream)
        stream.sources.start()

    # -- recovery ------------------------------------------------------------------------------

    def recover(self) -> None:
        """Open every stream stored for this account (start-up)."""
        log = self.js.server.logger
        if not os.path.isdir(self.directory):
            return
        cleanup_deleting(self.directory)
        for name in sorted(os.listdir(self.directory)):
            directory = os.path.join(self.directory, name)
            if not os.path.isdir(directory) or name.endswith(".deleting"):
                continue
            began = time.monotonic()
            try:
                if self.js.keyring is not None:
                    # first encrypt a plaintext stream or re-encrypt the previous key's files
                    self._convert_encryption(name, directory)
                raw = self._read_meta(directory)
            except crypt.EncryptionError as e:
                log.warn(f"  Error decrypting our stream metafile: {e}")
                continue
            except OSError as e:
                msg = f"Error recovering stream '{self.name} > {name}': {e}"
                log.error(f"  {msg}")
                self.js.recovery_errors.append(msg)
                continue
            if raw is None:
                log.warn(f"  Stream directory '{directory}' has no {META_FILE}: skipped")
                continue
            if self.js.keyring is None:
                log.notice(f"  Starting restore for stream '{self.name} > {name}'")
            try:
                meta = json.loads(raw)
                reason = self._unsupported(meta["config"])
                if reason:
                    self.offline[meta["config"].get("name") or name] = reason
                    log.warn(f"  Stream '{self.name} > {name}' is offline: {reason}")
                    continue
                cfg = load_stored_config(meta["config"])
                store = self._open_store(cfg, directory)
            except Exception as e:
                msg = f"Error recovering stream '{self.name} > {name}': {e}"
                log.error(f"  {msg}")
                self.js.recovery_errors.append(msg)
                continue
            stream = Stream(self, cfg, store, int(meta.get("created", 0)), directory)
            self.streams[cfg.name] = stream
            stream.start()
            took = round(time.monotonic() - began, 3)
            log.notice(
                f"  Restored {store.msgs} messages for stream '{self.name} > {name}' in "
                f"{format_duration(round(took * 1e9))}"
            )
            for damage in store.damage():
                self._log_stream_damage(name, damage, "  ")
            # from now on, damage found when a message is read is logged when found
            store.on_damage = partial(self._log_stream_damage, name)
            self._recover_consumers(stream)

    def _read_meta(self, directory: str) -> bytes | None:
        """A stream's or consumer's stored config; `EncryptionError` when it is encrypted with
        a key we do not have, or encrypted while no key is configured (nats-server's texts)."""
        raw = read_file(os.path.join(directory, META_FILE), self.js.fileio)
        if raw is not None and self.js.keyring is None and crypt.is_encrypted(raw):
            raise crypt.EncryptionError("encryption not enabled")
        return raw

    def _convert_encryption(self, name: str, directory: str) -> None:
        """Encrypt a stream stored in plaintext, re-encrypt what the previous key (`prev_key`)
        or another cipher encrypted; files of an unknown key are left for their owner to
        refuse (a consumer's metafile). Each file is replaced durably, so a crash part way
        leaves a mix the next start finishes."""
        js = self.js
        assert js.keyring is not None
        found, todo = crypt.convert_tree(directory, js.keyring, js.prev_keyring, DEFAULT_FILEIO)
        meta = found.get(os.path.join(directory, META_FILE))
        if meta is None:
            return  # no metafile: the caller skips the directory
        if meta == crypt.FOREIGN:
            raise crypt.WrongKey(os.path.join(directory, META_FILE))
        log = js.server.logger
        log.notice(f"  Starting restore for stream '{self.name} > {name}'")
        if not todo:
            return
        if meta == crypt.PLAIN:
            log.notice(f"  Encrypting stream '{self.name} > {name}'")
        else:
            cipher = crypt.CIPHER_NAMES[js.keyring.cipher]
            log.notice(f"  Converting to {cipher} for stream '{self.name} > {name}'")
        for path in todo:
            crypt.rewrite(path, js.keyring, js.prev_keyring, DEFAULT_FILEIO)

    def _log_stream_damage(self, stream: str, damage: Damage, indent: str = "") -> None:
        self.js.server.logger.warn(
            f"{indent}Stream '{self.name} > {stream}': damaged data in {damage.file} at "
            f"{damage.offset} ({damage.reason}); {len(damage.seqs)} messages lost"
        )

    # -- consumers -----------------------------------------------------------------------------

    def consumer_dir(self, stream: Stream, name: str) -> str | None:
        if stream.directory is None:
            return None
        return os.path.join(stream.directory, CONSUMERS_DIR, name)

    def _open_consumer_store(self, directory: str | None) -> ConsumerStore:
        return ConsumerStore(
            directory,
            self.js.sync_policy,
            loop=self.js.server.loop,
            compact_bytes=CONSUMER_LOG_COMPACT_BYTES,
            fileio=self.js.fileio,
        )

    async def write_consumer_meta(self, consumer: Consumer) -> None:
        if consumer.directory is not None:
            await self._write_consumer_meta(
                consumer.directory, consumer.name, consumer.config, consumer.created_ns
            )

    async def _write_consumer_meta(
        self, directory: str, name: str, cfg: ConsumerConfig, created: int
    ) -> None:
        data = json.dumps({"name": name, "created": created, "config": cfg.to_json()}).encode()
        path = os.path.join(directory, META_FILE)
        await asyncio.get_running_loop().run_in_executor(
            None, write_durable, path, data, self.js.fileio
        )

    async def create_consumer(self, stream: Stream, name: str, cfg: ConsumerConfig) -> Consumer:
        """Create and start a consumer (its config durable first when it is stored)."""
        from .consumer import Consumer

        created = time.time_ns()
        directory = None if cfg.mem_storage else self.consumer_dir(stream, name)
        if directory is not None:
            await self._write_consumer_meta(directory, name, cfg, created)
        if stream.closed:
            raise api_error("JSStreamNotFoundErr")
        store = self._open_consumer_store(directory)
        consumer = Consumer(stream, name, cfg, store, created, directory)
        stream.consumers[name] = consumer
        consumer.start_new()
        advisories.consumer_action(self, stream.name, name, "create")
        return consumer

    async def delete_consumer(self, consumer: Consumer) -> None:
        stream = consumer.stream
        consumer.stop(deleted=True)
        if stream.consumers.get(consumer.name) is consumer:
            del stream.consumers[consumer.name]
        consumer.store.stop()
        if consumer.directory is not None:
            await asyncio.get_running_loop().run_in_executor(
                None, remove_tree_durable, consumer.directory
            )
        advisories.consumer_action(self, stream.name, consumer.name, "delete")

    def delete_inactive_consumer(self, consumer: Consumer) -> None:
        """`inactive_threshold` passed: delete it, in turn with API changes."""

        async def run() -> None:
            async with self.js.api_lock:
                if not consumer.closed and not consumer.is_active():
                    await self.delete_consumer(consumer)

        self.js.server.loop.create_task(run())

    def _unsupported(self, config: dict[str, Any]) -> str:
        """Why a stored asset cannot be served here: it needs a newer API level (ADR-44)."""
        metadata = config.get("metadata") or {}
        try:
            level = int(metadata.get("_nats.req.level") or 0)
        except (TypeError, ValueError):
            return ""
        current = self.js.api_level
        if level <= current:
            return ""
        return f"unsupported - required API level: {level}, current API level: {current}"

    def _recover_consumers(self, stream: Stream) -> None:
        from .consumer import Consumer
        from .consumer_config import ConsumerConfig

        if stream.directory is None:
            return
        log = self.js.server.logger
        parent = os.path.join(stream.directory, CONSUMERS_DIR)
        if not os.path.isdir(parent):
            return
        cleanup_deleting(parent)
        names = sorted(os.listdir(parent))
        if names:
            log.notice(
                f"  Recovering {len(names)} consumers for stream - '{self.name} > {stream.name}'"
            )
        for name in names:
            directory = os.path.join(parent, name)
            if not os.path.isdir(directory) or name.endswith(".deleting"):
                continue
            try:
                raw = self._read_meta(directory)
            except crypt.EncryptionError as e:
                log.warn(f"  Error decrypting our consumer metafile: {e}")
                continue
            if raw is None:
                log.warn(f"  Consumer directory '{directory}' has no {META_FILE}: skipped")
                continue
            try:
                meta = json.loads(raw)
                reason = self._unsupported(meta["config"])
                if reason:
                    stream.offline_consumers[meta.get("name") or name] = reason
                    log.warn(
                        f"  Consumer '{self.name} > {stream.name} > {name}' is offline: {reason}"
                    )
                    continue
                cfg = ConsumerConfig.from_json(meta["config"])
                store = self._open_consumer_store(directory)
            except Exception as e:
                msg = f"Error recovering consumer '{self.name} > {stream.name} > {name}': {e}"
                log.error(f"  {msg}")
                self.js.recovery_errors.append(msg)
                continue
            cname = meta.get("name") or cfg.name or name
            consumer = Consumer(stream, cname, cfg, store, int(meta.get("created", 0)), directory)
            stream.consumers[cname] = consumer
            consumer.start_recovered()
            for damage in store.damage():
                log.warn(
                    f"  Consumer '{self.name} > {stream.name} > {name}': damaged state in "
                    f"{damage.file} at {damage.offset} ({damage.reason})"
                )


def _rename_durable(src: str, dst: str) -> None:
    from .store import DEFAULT_FILEIO

    if os.path.exists(src):
        DEFAULT_FILEIO.rename(src, dst)
        DEFAULT_FILEIO.fsync_dir(os.path.dirname(src))
