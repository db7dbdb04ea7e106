"""Options: every server setting in one dataclass, defaults as nats-server's.

Flags (`flags.py`) and the configuration file (`conf/`) both produce Options; flags given on
the command line win over the file, which is why `flags.py` records which fields it set.
Durations are float seconds, sizes are int bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import const

if TYPE_CHECKING:
    from .accounts import AccountConfig
    from .auth import NkeyUser, Permissions, User


@dataclass
class Options:
    # Identity and listeners
    server_name: str = ""
    host: str = const.DEFAULT_HOST
    port: int = const.DEFAULT_PORT
    client_advertise: str = ""
    http_host: str = ""
    http_port: int = 0
    https_port: int = 0
    http_base_path: str = ""
    ports_file_dir: str = ""
    pid_file: str = ""
    config_file: str = ""
    config_digest: str = ""

    # Logging
    debug: bool = False
    trace: bool = False
    trace_verbose: bool = False
    logtime: bool = True
    logtime_utc: bool = False
    log_file: str = ""
    log_size_limit: int = 0
    syslog: bool = False
    remote_syslog: str = ""
    max_traced_msg_len: int = 0

    # Limits
    max_connections: int = const.MAX_CONNECTIONS
    max_payload: int = const.MAX_PAYLOAD_SIZE
    max_control_line: int = const.MAX_CONTROL_LINE_SIZE
    max_pending: int = const.MAX_PENDING_SIZE
    max_subscriptions: int = 0
    max_sub_tokens: int = 0
    max_closed_clients: int = const.MAX_CLOSED_CLIENTS
    ping_interval: float = const.PING_INTERVAL_S
    ping_max: int = const.PING_MAX_OUTSTANDING
    write_deadline: float = const.WRITE_DEADLINE_S
    no_header_support: bool = False
    disable_sublist_cache: bool = False
    no_fast_producer_stall: bool = False
    disable_short_first_ping: bool = False

    # Lame duck
    lame_duck_duration: float = const.LAME_DUCK_DURATION_S
    lame_duck_grace_period: float = const.LAME_DUCK_GRACE_PERIOD_S

    # Authentication (single user / token from flags or `authorization {}`)
    username: str = ""
    password: str = ""
    authorization: str = ""  # token
    auth_timeout: float = 0.0  # 0 = default (2 s, or tls_timeout + 1 s with TLS)
    no_auth_user: str = ""
    users: list[User] = field(default_factory=list)
    nkeys: list[NkeyUser] = field(default_factory=list)
    default_permissions: Permissions | None = None
    accounts: dict[str, AccountConfig] = field(default_factory=dict)
    system_account: str = ""
    no_system_account: bool = False
    # Operator (JWT) mode
    trusted_operators: list[str] = field(default_factory=list)  # operator JWTs
    trusted_keys: list[str] = field(default_factory=list)
    resolver: str = ""
    resolver_preload: dict[str, str] = field(default_factory=dict)

    # TLS
    tls: bool = False
    tls_verify: bool = False
    tls_map: bool = False
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca_cert: str = ""
    tls_timeout: float = const.TLS_TIMEOUT_S
    tls_handshake_first: bool = False
    tls_handshake_first_fallback: float = 0.0
    allow_non_tls: bool = False
    tls_min_version: str = ""

    # Cluster (accepted, not supported yet)
    cluster_listen: str = ""
    cluster_name: str = ""
    cluster_advertise: str = ""
    cluster_no_advertise: bool = False
    cluster_connect_retries: int = 0
    routes: list[str] = field(default_factory=list)
    profile_port: int = 0

    # JetStream
    jetstream: bool = False
    store_dir: str = ""
    jetstream_max_memory: int = -1
    jetstream_max_store: int = -1
    jetstream_domain: str = ""
    jetstream_sync_interval: float | None = None  # None = fsync before every ack (our default)
    jetstream_sync_always: bool = False
    jetstream_strict: bool = True

    # Accepted and reported, otherwise unused so far
    server_tags: list[str] = field(default_factory=list)
    # Warnings the config reader found (nats-server prints them at start; `-t` fails on them)
    config_warnings: list[str] = field(default_factory=list)
    # Keys of the file pynats does not support yet (logged as warnings at start)
    config_notes: list[str] = field(default_factory=list)

    # Set by the config reader / flags: which fields the command line fixed explicitly.
    set_by_flags: set[str] = field(default_factory=set)

    def effective_auth_timeout(self) -> float:
        if self.auth_timeout > 0:
            return self.auth_timeout
        if self.tls or self.tls_verify:
            return self.tls_timeout + 1.0
        return const.AUTH_TIMEOUT_S

    def monitor_host(self) -> str:
        return self.http_host or self.host
