"""Accounts: each one is its own subject space (its own Sublist), which is what isolates tenants.

A message published in one account never reaches another unless it is exported and imported
(the config/auth work adds exports and imports here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .sublist import Sublist, Subscription

if TYPE_CHECKING:
    from .auth import NkeyUser, Permissions, User
    from .client import ClientConnection
    from .internal import InternalClient
    from .mappings import MappingConfig, Mappings
    from .shadows import StreamImport


@dataclass
class ExportConfig:
    """`exports: [{stream: "a.>"}, {service: "req.>", response: singleton}]`."""

    kind: str  # "stream" | "service"
    subject: str
    accounts: list[str] | None = None  # private export: only these accounts may import
    response_type: str = "Singleton"  # services: Singleton | Stream | Chunked
    response_threshold: float = 120.0
    # From account JWTs: `token_req` (an importer needs an activation token), the activation
    # tokens revoked (importing account -> issued at or before), `account_token_position`.
    token_required: bool = False
    revocations: dict[str, int] = field(default_factory=dict)
    account_token_position: int = 0
    allow_trace: bool = False  # services: traced requests are traced on into the exporter


@dataclass
class ImportConfig:
    """`imports: [{stream: {account, subject}, prefix}, {service: {account, subject}, to}]`."""

    kind: str  # "stream" | "service"
    account: str
    subject: str
    to: str = ""  # local subject (service) / mapped subject (stream)
    prefix: str = ""  # stream imports: prefix added to the subject
    allow_trace: bool = False  # streams: traced messages are traced on into the importer
    share: bool = False  # services: the exporter learns all of who asked (Nats-Request-Info)


@dataclass
class AccountConfig:
    name: str
    users: list[User] = field(default_factory=list)
    nkey_users: list[NkeyUser] = field(default_factory=list)
    exports: list[ExportConfig] = field(default_factory=list)
    imports: list[ImportConfig] = field(default_factory=list)
    jetstream: dict[str, Any] | bool | None = None  # None: not set; True/False; or limits
    default_permissions: Permissions | None = None
    nkey: str = ""
    msg_trace: tuple[str, int] = ("", 0)  # `msg_trace`: traceparent destination, sampling %
    mappings: list[MappingConfig] = field(default_factory=list)
    # `limits { max_connections, max_subscriptions, max_payload, max_leafnodes }` (-1: none)
    limits: AccountLimits | None = None


@dataclass
class AccountLimits:
    """A config account's `limits {}`, the same limits an account JWT's claims set."""

    max_connections: int = -1
    max_subscriptions: int = -1
    max_payload: int = -1
    max_leafnodes: int = -1


class Account:
    __slots__ = (
        "claim_imports",
        "claim_mappings",
        "clients",
        "closed_traffic",
        "config",
        "exports",
        "gateway_replies",
        "imports_client",
        "internal_subs",
        "is_system",
        "jetstream",
        "jetstream_imported",
        "last_limit_error",
        "leaf_loop_subject",
        "mappings",
        "max_connections",
        "max_leafnodes",
        "max_payload",
        "max_subscriptions",
        "name",
        "name_bytes",
        "responses",
        "rmsg_head",
        "stream_imports",
        "sublist",
        "trace_dest",
        "trace_sampling",
    )

    def __init__(self, name: str, *, cache_enabled: bool = True) -> None:
        self.name = name
        self.name_bytes = name.encode()
        self.rmsg_head = b"RMSG " + self.name_bytes + b" "  # how routes frame its messages
        self.sublist = Sublist(cache_enabled=cache_enabled)
        self.clients: set[ClientConnection] = set()
        # What its clients that are gone received and were sent: in msgs, in bytes, out
        # msgs, out bytes (account statistics are totals since start, as nats-server's).
        self.closed_traffic = [0, 0, 0, 0]
        self.is_system = False
        # With gateways (gateways.py), the account's `GatewayReplies`: messages with a reply
        # sent to a gateway get it rewritten (so they take send_msg, not the plain-copy fast
        # path), and a reply to a request from another cluster finds its way back. None
        # without gateways.
        self.gateway_replies: Any = None
        # Set by JetStream when it is enabled for this account.
        self.jetstream: Any = None
        # Reaches the cluster's JetStream through the system account (imports.wire_jetstream_api)
        self.jetstream_imported = False
        # This server's `$LDS.<token>` for the account (leafnodes.loop_subject)
        self.leaf_loop_subject: bytes | None = None
        self.config: AccountConfig | None = None
        # `msg_trace`: where messages with a sampled W3C traceparent are traced (msgtrace.py)
        self.trace_dest = b""
        self.trace_sampling = 100
        # `mappings {}`: applied to what this account's clients and leafs publish (mappings.py)
        self.mappings: Mappings | None = None
        # The mappings of its account JWT, added after those of the config (jwt_exports.py)
        self.claim_mappings: list[MappingConfig] = []
        # Limits from an account JWT or a config account's `limits {}` (-1 = unlimited);
        # subscriptions and payload are each client's (nats-server's applyAccountLimits)
        self.max_connections = -1
        self.max_subscriptions = -1
        self.max_payload = -1
        self.max_leafnodes = -1
        # When a client's subscription limit was last logged (time.monotonic(), 2 s apart)
        self.last_limit_error = float("-inf")
        # Subscriptions held by the server itself ($SYS services, imports): not the
        # account's to count against its limits.
        self.internal_subs = 0
        self.exports: list[ExportConfig] = []
        # The internal client that carries this account's imports, and the reply subjects
        # it mapped for service imports (`_R_.<token>` -> where the response goes).
        self.imports_client: InternalClient | None = None
        self.responses: dict[bytes, ServiceResponse] = {}
        # The subscriptions that carry the imports of its account JWT (jwt_exports.py)
        self.claim_imports: list[Subscription | StreamImport] = []
        # Its stream imports, which shadow its subscriptions in the exporters (shadows.py);
        # None until the first one (and its sublist listener) is wired.
        self.stream_imports: list[StreamImport] | None = None

    def subscription_count(self) -> int:
        """Subscriptions as nats-server counts them: the other clusters' interest (which
        gateways.py keeps in the sublist, nats-server apart) left out."""
        replies = self.gateway_replies
        return int(self.sublist.count) - (replies.entries if replies is not None else 0)

    def __repr__(self) -> str:
        return f"<Account {self.name}>"


def apply_config_limits(account: Account, config: AccountConfig) -> None:
    """A config account takes its `limits {}` (at start and on reload; new connections and
    subscriptions are held to them)."""
    limits = config.limits or AccountLimits()
    account.max_connections = limits.max_connections
    account.max_subscriptions = limits.max_subscriptions
    account.max_payload = limits.max_payload
    account.max_leafnodes = limits.max_leafnodes


# -- exports and imports ---------------------------------------------------------------------


@dataclass
class ServiceResponse:
    """Where a response to a mapped reply subject goes, and until when."""

    account: Account
    reply: bytes
    singleton: bool
    deadline: float


def find_export(
    exporter: Account,
    kind: str,
    subject: str,
    importer: str,
    activated: Callable[[ExportConfig], bool] | None = None,
) -> ExportConfig | None:
    """The export of `exporter` that covers `subject` for `importer`, if any; an export that
    requires a token needs `activated` to accept the importer's activation for it."""
    return find_export_in(exporter.exports, kind, subject, importer, activated)


def find_export_in(
    exports: list[ExportConfig],
    kind: str,
    subject: str,
    importer: str,
    activated: Callable[[ExportConfig], bool] | None = None,
) -> ExportConfig | None:
    """`find_export` over a list of exports (a config's account, before it is an Account)."""
    from .subjects import is_subset_match

    for export in exports:
        if export.kind != kind:
            continue
        if export.accounts is not None and importer not in export.accounts:
            continue
        if not is_subset_match(subject.encode(), export.subject.encode()):
            continue
        position = export.account_token_position
        if position > 0:
            tokens = subject.split(".")
            if position > len(tokens) or tokens[position - 1] != importer:
                continue
        elif export.token_required and (activated is None or not activated(export)):
            continue
        return export
    return None


def map_subject(subject: bytes, source: bytes, dest: bytes) -> bytes:
    """Map `subject` (which matches `source`) onto `dest`: wildcard tokens of `dest` take the
    tokens `source`'s wildcards matched, in order, `$n` (an account JWT's local subject) the
    n-th; a literal `dest` replaces the subject."""
    if not dest or dest == source:
        return subject
    stoks = source.split(b".")
    toks = subject.split(b".")
    captured: list[bytes] = []
    for i, t in enumerate(stoks):
        if t == b"*":
            captured.append(toks[i])
        elif t == b">":
            captured.append(b".".join(toks[i:]))
    out: list[bytes] = []
    k = 0
    for t in dest.split(b"."):
        if t in (b"*", b">") and k < len(captured):
            out.append(captured[k])
            k += 1
        elif t[:1] == b"$" and t[1:].isdigit() and 0 < int(t[1:]) <= len(captured):
            out.append(captured[int(t[1:]) - 1])
        else:
            out.append(t)
    return b".".join(out)
