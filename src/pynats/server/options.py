"""Options: every server setting in one dataclass, defaults as nats-server's.

Flags (`flags.py`) and the configuration file (`conf/`) both produce Options; flags given on
the command line win over the file, which is why `flags.py` records which fields it set.
Durations are float seconds, sizes are int bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import const
from .conf.units import go_quote

if TYPE_CHECKING:
    from .accounts import AccountConfig
    from .auth import NkeyUser, Permissions, SubjectPermission, User
    from .auth_callout import AuthCallout
    from .mappings import MappingConfig
    from .ocsp_peer import OCSPCacheConfig, OCSPPeerConfig
    from .ocsp_staple import OCSPStapleConfig

DEFAULT_ROUTE_POOL_SIZE = 3
ROUTE_MAX_PING_INTERVAL_S = 30.0


@dataclass
class TLSSettings:
    """One `tls {}` block of a server-to-server listener (cluster today; later leaf nodes and
    websocket), as written. From a file, its certificates were loaded while reading (as
    nats-server does), so they exist and parse; `tls.py` turns it into SSLContexts. Routes
    verify the peer both ways whatever `verify` says (nats-server forces it)."""

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    verify: bool = False
    insecure: bool = False  # dialling side: do not verify the peer's certificate
    timeout: float = const.TLS_TIMEOUT_S  # seconds for the handshake
    verify_and_map: bool = False
    min_version: str = ""  # "1.2" / "1.3", "" = 1.2
    verify_cert_and_check_known_urls: bool = False
    ocsp_peer: OCSPPeerConfig | None = None  # `ocsp_peer`: check the peer's OCSP status
    # tls_options.py: Go's cipher suite and curve names, the pinned SPKI SHA-256s (None: no
    # pinning), handshakes a second (client port only; 0: no limit), and several
    # certificates chosen by SNI ((cert_file, key_file) pairs; the first is the default)
    cipher_suites: list[str] = field(default_factory=list)
    curve_preferences: list[str] = field(default_factory=list)
    allow_insecure_cipher_suites: bool = False
    pinned_certs: frozenset[str] | None = None
    rate_limit: int = 0
    certs: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class ClusterOptions:
    """The `cluster {}` block and the cluster flags: this server's routes.

    Values are as nats-server keeps them after reading the file: `port` 0 means no cluster
    listener and -1 a random one; zero durations and counts mean "the server's default"
    (see the `effective_*` helpers); `compression` holds the normalised mode name when the
    text was one nats-server knows, else the text as written (refused at start-up with
    nats-server's message, see `config_cluster.cluster_problem`).
    """

    name: str = ""
    host: str = ""  # listen host ("" = 0.0.0.0)
    port: int = 0  # 0 = no cluster listener, -1 = random port
    advertise: str = ""
    no_advertise: bool = False
    routes: list[str] = field(default_factory=list)  # nats-route://user:pass@host:port
    username: str = ""
    password: str = ""
    auth_timeout: float = 0.0  # seconds, 0 = default
    tls: TLSSettings | None = None
    pool_size: int = DEFAULT_ROUTE_POOL_SIZE  # -1 = no pooling (one connection)
    pinned_accounts: list[str] = field(default_factory=list)  # `accounts: [...]`
    compression: str = "accept"
    compression_rtt_thresholds: list[float] = field(default_factory=list)  # seconds
    compression_text: str = field(default="", compare=False)  # as written, for messages
    import_permissions: SubjectPermission | None = None
    export_permissions: SubjectPermission | None = None
    connect_retries: int = 0
    connect_backoff: bool = False
    ping_interval: float = 0.0  # seconds, 0 = the server's
    ping_max: int = 0  # 0 = the server's
    write_deadline: float = 0.0  # seconds, 0 = the server's
    write_timeout: str = ""  # "default" / "close" / "retry", "" = default

    def is_enabled(self) -> bool:
        """A cluster listener is configured (routes alone, without it, are not dialled)."""
        return self.port != 0

    @property
    def tls_timeout(self) -> float:
        return self.tls.timeout if self.tls is not None else const.TLS_TIMEOUT_S

    def effective_auth_timeout(self) -> float:
        """As nats-server: the configured value, else the TLS timeout + 1 s with TLS, else 2 s."""
        if self.auth_timeout > 0:
            return self.auth_timeout
        if self.tls is not None:
            return self.tls.timeout + 1.0
        return const.AUTH_TIMEOUT_S


DEFAULT_LEAFNODE_PORT = 7422
LEAF_RECONNECT_DELAY_S = 1.0


@dataclass
class LeafRemote:
    """One entry of `leafnodes { remotes: [...] }`: a hub this server dials as a leaf."""

    urls: list[str] = field(default_factory=list)  # nats-leaf://, tls://, ws://, wss://
    account: str = ""  # the local account bound to the hub ("" = the global account)
    credentials: str = ""  # a .creds file (user JWT + nkey seed)
    nkey: str = ""  # an nkey seed file or seed
    tls: TLSSettings | None = None
    hub: bool = False  # this side acts as the hub of the connection
    deny_imports: list[str] = field(default_factory=list)  # subjects not taken from the hub
    deny_exports: list[str] = field(default_factory=list)  # subjects not sent to the hub
    compression: str = ""  # "" = the default (s2_auto); else as `LeafNodeOptions.compression`
    ws_compression: bool = False
    ws_no_masking: bool = False
    first_info_timeout: float = 1.0  # seconds
    dial_timeout: float = 0.0  # seconds, 0 = default
    no_randomize: bool = False
    disabled: bool = False
    # Read from the file too (nats-server refuses to reload a change of any of them):
    compression_rtt_thresholds: list[float] = field(default_factory=list)  # seconds
    compression_text: str = field(default="", compare=False)  # as written, for messages
    tls_handshake_first: bool = False
    isolate: bool = False  # `isolate_leafnode_interest`: no east-west interest to this hub
    request_isolation: bool = False  # ask the hub to isolate us
    ignore_discovered_servers: bool = False  # dial only `urls`, not the hub's leafnode_urls
    jetstream_cluster_migrate: bool = False
    jetstream_cluster_migrate_delay: float = 0.0  # seconds
    proxy_url: str = ""  # an HTTP CONNECT proxy for ws:// and wss:// URLs
    proxy_username: str = ""
    proxy_password: str = ""
    proxy_timeout: float = 0.0  # seconds


@dataclass
class LeafUser:
    """`leafnodes { authorization { users: [...] } }`: credentials a leaf may present, and
    the account its connection is bound to."""

    username: str = ""
    password: str = ""
    account: str = ""


@dataclass
class LeafNodeOptions:
    """The `leafnodes {}` block: the leaf listener (this server as a hub) and the remotes
    (this server as a leaf of other hubs). `port` 0 means no listener, -1 a random one."""

    host: str = ""
    port: int = 0
    advertise: str = ""
    no_advertise: bool = False
    username: str = ""  # authorization { user, password } (single user)
    password: str = ""
    account: str = ""  # authorization { account }: bind every leaf to it
    users: list[LeafUser] = field(default_factory=list)
    auth_timeout: float = 0.0  # seconds, 0 = default
    tls: TLSSettings | None = None
    compression: str = ""  # nats-server's mode name ("" = the default, s2_auto)
    isolate_leafnode_interest: bool = False
    min_version: str = ""
    reconnect_delay: float = LEAF_RECONNECT_DELAY_S  # seconds between dials of a remote
    dial_timeout: float = 0.0
    write_deadline: float = 0.0
    remotes: list[LeafRemote] = field(default_factory=list)
    # Read from the file too:
    nkey: str = ""  # authorization { nkey }: the one user nkey a leaf may present
    proxy_required: bool = False
    write_timeout: str = ""  # "default" / "close" / "retry", "" = default
    compression_rtt_thresholds: list[float] = field(default_factory=list)  # seconds
    compression_text: str = field(default="", compare=False)  # as written, for messages
    tls_handshake_first: bool = False
    tls_handshake_first_fallback: float = 0.0  # seconds

    def is_enabled(self) -> bool:
        """A leaf listener is configured."""
        return self.port != 0


@dataclass
class RemoteGateway:
    """One entry of `gateway { gateways: [...] }`: another cluster and where to reach it."""

    name: str = ""
    urls: list[str] = field(default_factory=list)  # as written (nats://[user:pass@]host:port)
    tls: TLSSettings | None = None


@dataclass
class GatewayOptions:
    """The `gateway {}` block (config_gateway.py reads it): this cluster's name among the
    clusters of a supercluster, the gateway listener, and the other clusters to dial.
    `port` 0 means no gateway, -1 a random port."""

    name: str = ""
    host: str = ""
    port: int = 0
    advertise: str = ""
    username: str = ""  # authorization { user, password, timeout }
    password: str = ""
    auth_timeout: float = 0.0  # seconds, 0 = default
    tls: TLSSettings | None = None
    gateways: list[RemoteGateway] = field(default_factory=list)
    reject_unknown: bool = False
    connect_retries: int = 0
    connect_backoff: bool = False
    write_deadline: float = 0.0
    write_timeout: str = ""

    def is_enabled(self) -> bool:
        return self.port != 0 and bool(self.name)


@dataclass
class WebsocketOptions:
    """The `websocket {}` block: a listener for clients (and leafs, path `/leafnode`) over
    WebSocket. TLS is required unless `no_tls`. `port` 0 means no listener, -1 random."""

    host: str = ""
    port: int = 0
    advertise: str = ""
    no_tls: bool = False
    tls: TLSSettings | None = None
    same_origin: bool = False
    allowed_origins: list[str] = field(default_factory=list)
    handshake_timeout: float = 0.0  # seconds, 0 = none (as nats-server)
    compression: bool = False
    jwt_cookie: str = ""
    username_cookie: str = ""
    password_cookie: str = ""
    token_cookie: str = ""
    no_auth_user: str = ""
    username: str = ""  # authorization { user, password, token, timeout }
    password: str = ""
    token: str = ""
    auth_timeout: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    ping_interval: float = 0.0

    def is_enabled(self) -> bool:
        return self.port != 0


@dataclass
class MqttOptions:
    """The `mqtt {}` block: a listener for MQTT 3.1.1 clients (mqtt_config.py reads it).
    `port` 0 means no listener, -1 random. Durations in seconds (0 = nats-server's default)."""

    host: str = ""
    port: int = 0
    tls: TLSSettings | None = None
    no_auth_user: str = ""
    username: str = ""  # authorization { user, password, token, timeout }
    password: str = ""
    token: str = ""
    auth_timeout: float = 0.0
    ack_wait: float = 0.0
    max_ack_pending: int = 0
    js_domain: str = ""
    js_api_timeout: float = 0.0
    stream_replicas: int = 0
    consumer_replicas: int = 0
    consumer_memory_storage: bool = False
    consumer_inactive_threshold: float = 0.0
    reject_qos2_publish: bool = False
    downgrade_qos2_subscribe: bool = False

    def is_enabled(self) -> bool:
        return self.port != 0


@dataclass
class ResolverOptions:
    """`resolver: {...}` beyond MEMORY: where the account JWTs are kept or fetched from."""

    dir: str = ""
    url: str = ""  # URL(...): account JWTs fetched from <url><account key>
    allow_delete: bool = False
    hard_delete: bool = False
    interval: float = 0.0  # FULL: seconds between syncs with the cluster (0 = 1 minute)
    limit: int = 0  # most JWTs kept (0 = no limit for FULL, 1000 for CACHE)
    ttl: float = 0.0  # CACHE: seconds a JWT is kept after its last use (0 = until it expires)
    timeout: float = 0.0  # seconds to wait for an account's JWT (0 = nats-server's 1.9 s)


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
    log_max_num: int = 0  # files kept by rotation, the live one included (0: all)
    syslog: bool = False
    remote_syslog: str = ""
    max_traced_msg_len: int = 0
    trace_headers: bool = False  # trace a message's headers instead of its payload

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
    write_timeout: str = ""  # "default" / "close" / "retry", "" = default (close for clients)
    no_header_support: bool = False
    disable_sublist_cache: bool = False
    no_fast_producer_stall: bool = False
    disable_short_first_ping: bool = False

    # Lame duck
    lame_duck_duration: float = const.LAME_DUCK_DURATION_S
    lame_duck_grace_period: float = const.LAME_DUCK_GRACE_PERIOD_S
    connect_error_reports: int = const.CONNECT_ERROR_REPORTS
    reconnect_error_reports: int = const.RECONNECT_ERROR_REPORTS

    # Authentication (single user / token from flags or `authorization {}`)
    username: str = ""
    password: str = ""
    authorization: str = ""  # token
    auth_timeout: float = 0.0  # 0 = default (2 s, or tls_timeout + 1 s with TLS)
    no_auth_user: str = ""
    users: list[User] = field(default_factory=list)
    nkeys: list[NkeyUser] = field(default_factory=list)
    default_permissions: Permissions | None = None
    auth_callout: AuthCallout | None = None  # `authorization { auth_callout {} }`
    accounts: dict[str, AccountConfig] = field(default_factory=dict)
    mappings: list[MappingConfig] = field(default_factory=list)  # the global account's
    system_account: str = ""
    no_system_account: bool = False
    # Operator (JWT) mode
    trusted_operators: list[str] = field(default_factory=list)  # operator JWTs
    trusted_keys: list[str] = field(default_factory=list)
    resolver: str = ""  # "", MEMORY, FULL, CACHE or URL
    resolver_options: ResolverOptions = field(default_factory=ResolverOptions)
    resolver_preload: dict[str, str] = field(default_factory=dict)
    resolver_tls: TLSSettings | None = None  # `resolver_tls {}`: the URL resolver's client TLS
    # `resolver_pinned_accounts`: the only accounts whose users may log in (None: any; an
    # empty list, as in nats-server, none at all)
    resolver_pinned_accounts: list[str] | None = None
    default_sentinel: str = ""  # a bearer user JWT for CONNECTs without one

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
    tls_ocsp_peer: OCSPPeerConfig | None = None  # the client listener's `tls { ocsp_peer }`
    # the client listener's `tls {}` keys of tls_options.py (see TLSSettings)
    tls_cipher_suites: list[str] = field(default_factory=list)
    tls_curve_preferences: list[str] = field(default_factory=list)
    tls_pinned_certs: frozenset[str] | None = None
    tls_rate_limit: int = 0
    tls_certs: list[tuple[str, str]] = field(default_factory=list)
    ocsp_cache: OCSPCacheConfig | None = None  # `ocsp_cache` (None: the default, local)
    ocsp: OCSPStapleConfig | None = None  # `ocsp {}`: stapling (ocsp_staple.py)
    # PROXY protocol (v1/v2) header expected before anything else on client connections
    trusted_proxies: list[str] = field(default_factory=list)  # proxies { trusted }: nkeys
    proxy_protocol: bool = False

    # Cluster (routes to the other servers of this cluster)
    cluster: ClusterOptions = field(default_factory=ClusterOptions)
    # Leaf nodes (this server as a hub, and as a leaf of remote hubs) and WebSocket clients
    leafnodes: LeafNodeOptions = field(default_factory=LeafNodeOptions)
    websocket: WebsocketOptions = field(default_factory=WebsocketOptions)
    gateway: GatewayOptions = field(default_factory=GatewayOptions)
    mqtt: MqttOptions = field(default_factory=MqttOptions)
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
    # `jetstream { key, prev_key, cipher }`: encryption at rest (jetstream/store/crypt.py)
    jetstream_key: str = ""
    jetstream_prev_key: str = ""
    jetstream_cipher: str = ""  # "" (ChaCha20, the default), "chacha", "chachapoly" or "aes"
    # `jetstream { limits {} }`: the server-wide JetStream limits, by the names /varz shows
    # them under (max_request_batch, max_ack_pending, max_ha_assets, max_duplicate_window ns)
    jetstream_limits: dict[str, int] = field(default_factory=dict)
    # `jetstream { unique_tag, max_outstanding_catchup }`: JetStream clustering's placement
    # tag prefix and catch-up budget; a single server only reports the tag (docs/options.md)
    jetstream_unique_tag: str = ""
    jetstream_max_outstanding_catchup: int = 0
    # ingest and API queues (0: nats-server's defaults, see jetstream/queues.py)
    jetstream_max_buffered_msgs: int = 0
    jetstream_max_buffered_size: int = 0
    jetstream_request_queue_limit: int = 0
    jetstream_info_queue_limit: int = 0
    # `default_js_domain {account: domain}`: an account without JetStream reaches the named
    # domain's API (`$JS.API.>` mapped to `$JS.<domain>.API.>`)
    default_js_domain: dict[str, str] = field(default_factory=dict)
    # `feature_flags {}` as written (nats-server reports them; see feature_flags.py)
    feature_flags: dict[str, bool] = field(default_factory=dict)

    # Accepted and reported, otherwise unused so far
    server_tags: list[str] = field(default_factory=list)
    server_metadata: dict[str, str] = field(default_factory=dict)  # /varz `metadata`
    # Warnings the config reader found (nats-server prints them at start; `-t` fails on them)
    config_warnings: list[str] = field(default_factory=list)
    # Keys of the file pynats does not support yet (logged as warnings at start)
    config_notes: list[str] = field(default_factory=list)

    # Set by the config reader / flags: which fields the command line fixed explicitly
    # (nested ones dotted: "cluster.name").
    set_by_flags: set[str] = field(default_factory=set)

    def effective_auth_timeout(self) -> float:
        if self.auth_timeout > 0:
            return self.auth_timeout
        if self.tls or self.tls_verify:
            return self.tls_timeout + 1.0
        return const.AUTH_TIMEOUT_S

    def monitor_host(self) -> str:
        return self.http_host or self.host


# -- URLs as nats-server reads them -----------------------------------------------------------
#
# Route URLs in the file and the --cluster URL go through Go's net/url and net.SplitHostPort;
# what those accept and their error texts are part of nats-server's observable behaviour (a
# config with a bad route URL is refused, `--cluster host:port` without a scheme fails).


@dataclass(frozen=True)
class GoURL:
    """The parts of a URL that routes use; `host` is the authority's host[:port]."""

    scheme: str
    host: str
    username: str | None  # None: no userinfo at all
    password: str | None  # None: userinfo without ':'


_USERINFO_EXTRA = set("-._:~!$&'()*+,;=%@")
_HOST_EXTRA = set("-_.~!$&'()*+,;=:[]<>\"")


def parse_go_url(text: str) -> GoURL:
    """Go's `url.Parse`, for the parts routes use; ValueError carries Go's message."""
    main, _, fragment = text.partition("#")

    def fail(reason: str) -> ValueError:
        return ValueError(f"parse {go_quote(main)}: {reason}")

    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in main):
        raise fail("net/url: invalid control character in URL")
    scheme, rest = "", main
    for i, c in enumerate(main):
        if c.isascii() and (c.isalpha() or (i > 0 and (c.isdigit() or c in "+-."))):
            continue
        if c == ":":
            if i == 0:
                raise fail("missing protocol scheme")
            scheme, rest = main[:i].lower(), main[i + 1 :]
        break
    rest = rest.partition("?")[0]
    host, username, password = "", None, None
    if not rest.startswith("/"):
        if scheme:  # opaque ("nats:host"): nothing more is checked
            return _with_fragment(GoURL(scheme, "", None, None), text, fragment)
        if ":" in rest.partition("/")[0]:
            raise fail("first path segment in URL cannot contain colon")
    elif rest.startswith("//") and (scheme or not rest.startswith("///")):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        userinfo, at, hostport = authority.rpartition("@")
        host = _go_url_host(hostport, fail)
        if at:
            if any(
                not (c.isascii() and c.isalnum()) and c not in _USERINFO_EXTRA for c in userinfo
            ):
                raise fail("net/url: invalid userinfo")
            name, colon, secret = userinfo.partition(":")
            username = _go_unescape(name, fail)
            password = _go_unescape(secret, fail) if colon else None
    _go_unescape(rest, fail)
    return _with_fragment(GoURL(scheme, host, username, password), text, fragment)


def _with_fragment(url: GoURL, text: str, fragment: str) -> GoURL:
    """A bad escape in the fragment is reported with the whole text, as Go does."""

    def fail(reason: str) -> ValueError:
        return ValueError(f"parse {go_quote(text)}: {reason}")

    _go_unescape(fragment, fail)
    return url


def _go_url_host(host: str, fail: Callable[[str], ValueError]) -> str:
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0:
            raise fail("missing ']' in host")
        colon_port = host[end + 1 :]
    else:
        colon = host.rfind(":")
        colon_port = host[colon:] if colon >= 0 else ""
    if colon_port and (colon_port[0] != ":" or not all("0" <= c <= "9" for c in colon_port[1:])):
        raise fail(f"invalid port {go_quote(colon_port)} after host")
    i = 0
    while i < len(host):
        c = host[i]
        if c == "%":
            escape = host[i : i + 3]
            if len(escape) < 3 or not all(h in "0123456789abcdefABCDEF" for h in escape[1:]):
                raise fail(f"invalid URL escape {go_quote(escape)}")
            if int(escape[1], 16) < 8 and escape != "%25":
                raise fail(f"invalid URL escape {go_quote(escape)}")
            i += 3
            continue
        if c.isascii() and not c.isalnum() and c not in _HOST_EXTRA:
            raise fail(f"invalid character {go_quote(c)} in host name")
        i += 1
    return host


def _go_unescape(text: str, fail: Callable[[str], ValueError]) -> str:
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%":
            escape = text[i : i + 3]
            if len(escape) < 3 or not all(h in "0123456789abcdefABCDEF" for h in escape[1:]):
                raise fail(f"invalid URL escape {go_quote(escape)}")
            out.append(int(escape[1:], 16))
            i += 3
        else:
            out += text[i].encode()
            i += 1
    return out.decode("utf-8", "surrogateescape")


def split_host_port(hostport: str) -> tuple[str, str]:
    """Go's `net.SplitHostPort`; ValueError carries Go's message."""

    def fail(why: str) -> ValueError:
        return ValueError(f"address {hostport}: {why}" if hostport else why)

    colon = hostport.rfind(":")
    if colon < 0:
        raise fail("missing port in address")
    start = end_bracket = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise fail("missing ']' in address")
        if end + 1 == len(hostport):
            raise fail("missing port in address")
        if end + 1 != colon:
            raise fail(
                "too many colons in address"
                if hostport[end + 1] == ":"
                else "missing port in address"
            )
        host = hostport[1:end]
        start, end_bracket = 1, end + 1
    else:
        host = hostport[:colon]
        if ":" in host:
            raise fail("too many colons in address")
    if "[" in hostport[start:]:
        raise fail("unexpected '[' in address")
    if "]" in hostport[end_bracket:]:
        raise fail("unexpected ']' in address")
    return host, hostport[colon + 1 :]
