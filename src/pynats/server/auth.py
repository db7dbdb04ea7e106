"""Authentication and permissions: who is this connection, which account is it bound to, and
what may it publish and subscribe to?

`Authenticator.authenticate` runs once per CONNECT. Every failure looks the same to the client
(`-ERR 'Authorization Violation'`); the reason is only returned for the log, and never says
whether a user exists.

`Permissions` are compiled into a `PermissionChecker` per connection, with a bounded cache of
publish decisions so that a user with permissions pays a dict lookup per publish, and a user
without pays nothing.
"""

from __future__ import annotations

import base64
import hmac
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pynats.gotime import NS_PER_S

from .sublist import Sublist, Subscription

if TYPE_CHECKING:
    from .options import Options

BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2x$", "$2y$")
PERM_CACHE_MAX = 4096
DEFAULT_RESPONSE_MAX_MSGS = 1
DEFAULT_RESPONSE_EXPIRES_S = 120.0


# -- the model (filled by flags and the config file) ---------------------------------------


@dataclass
class SubjectPermission:
    """`allow` None means everything is allowed unless denied."""

    allow: list[str] | None = None
    deny: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """`{"allow": [...], "deny": [...]}` with empty lists left out, as nats-server shows it."""
        out: dict[str, Any] = {}
        if self.allow:
            out["allow"] = list(self.allow)
        if self.deny:
            out["deny"] = list(self.deny)
        return out


@dataclass
class ResponsePermission:
    max_msgs: int = DEFAULT_RESPONSE_MAX_MSGS
    expires: float = DEFAULT_RESPONSE_EXPIRES_S


@dataclass
class Permissions:
    publish: SubjectPermission | None = None
    subscribe: SubjectPermission | None = None
    response: ResponsePermission | None = None

    def is_empty(self) -> bool:
        return self.publish is None and self.subscribe is None and self.response is None


@dataclass
class User:
    username: str
    password: str = ""
    permissions: Permissions | None = None
    account: str = ""
    allowed_connection_types: list[str] | None = None
    proxy_required: bool = False  # may connect only through a trusted proxy


@dataclass
class NkeyUser:
    nkey: str
    permissions: Permissions | None = None
    account: str = ""
    allowed_connection_types: list[str] | None = None
    proxy_required: bool = False


@dataclass
class AuthResult:
    user: str = ""
    account: str = ""
    permissions: Permissions | None = None
    jwt_claims: dict[str, Any] | None = None
    # `allowed_connection_types` of the user (None: any): STANDARD, WEBSOCKET, LEAFNODE, ...
    connection_types: list[str] | None = None
    # A user JWT's permissions and limits (its scoped signing key's template when it has one):
    # src, times, subs, payload... (jwt_users.py)
    jwt_limits: dict[str, Any] | None = None
    # the user may connect only through a trusted proxy (users' `proxy_required`; a user
    # JWT's is read from `jwt_claims`)
    proxy_required: bool = False


# -- secrets --------------------------------------------------------------------------------


def secret_matches(given: str, expected: str) -> bool:
    """Compare a password or token; `expected` may be a bcrypt hash."""
    if expected.startswith(BCRYPT_PREFIXES):
        import bcrypt

        try:
            return bcrypt.checkpw(given.encode(), expected.encode())
        except ValueError:
            return False
    return hmac.compare_digest(given.encode(), expected.encode())


def has_plaintext_passwords(options: Options) -> bool:
    """True when a client password in the config is not a bcrypt hash: nats-server then warns
    once at start-up. A user without a password is one too, unless TLS certificates name it
    (verify_and_map)."""
    if options.password and not options.password.startswith(BCRYPT_PREFIXES):
        return True
    users = [*options.users, *(u for acc in options.accounts.values() for u in acc.users)]
    return any(
        not user.password.startswith(BCRYPT_PREFIXES)
        for user in users
        if user.password or not options.tls_map
    )


def verify_nonce_signature(public_key: str, nonce: str, signature: str) -> bool:
    """Check an ed25519 signature of the INFO nonce (raw-URL or standard base64)."""
    from .nkey import verify_signature

    sig_text = signature.strip()
    padded = sig_text + "=" * (-len(sig_text) % 4)
    try:
        sig = base64.urlsafe_b64decode(padded)
    except (ValueError, TypeError):
        try:
            sig = base64.b64decode(padded)
        except (ValueError, TypeError):
            return False
    return verify_signature(public_key, nonce.encode(), sig)


# -- permission checks ----------------------------------------------------------------------


def _subject_list(subjects: list[str], *, with_queues: bool) -> Sublist:
    sl = Sublist(cache_enabled=False)
    for i, entry in enumerate(subjects):
        parts = entry.split()
        if not parts:
            continue
        subject = parts[0].encode()
        queue = parts[1].encode() if with_queues and len(parts) > 1 else None
        sl.insert(Subscription(None, subject, queue, str(i).encode()))
    return sl


class PermissionChecker:
    """The compiled permissions of one connection."""

    __slots__ = (
        "_pub_allow",
        "_pub_cache",
        "_pub_deny",
        "_sub_allow",
        "_sub_deny",
        "deny_subscribe_patterns",
        "permissions",
        "response",
    )

    def __init__(self, perms: Permissions) -> None:
        self.permissions = perms
        pub, sub = perms.publish, perms.subscribe
        self._pub_allow = (
            _subject_list(pub.allow, with_queues=False) if pub and pub.allow is not None else None
        )
        self._pub_deny = _subject_list(pub.deny, with_queues=False) if pub and pub.deny else None
        self._sub_allow = (
            _subject_list(sub.allow, with_queues=True) if sub and sub.allow is not None else None
        )
        self._sub_deny = _subject_list(sub.deny, with_queues=True) if sub and sub.deny else None
        self.deny_subscribe_patterns = [
            d.split()[0].encode() for d in (sub.deny if sub else []) if d.split()
        ]
        self.response = perms.response
        self._pub_cache: dict[bytes, bool] = {}

    def as_json(self) -> dict[str, Any]:
        """The permissions as nats-server reports them ($SYS.REQ.USER.INFO)."""
        out: dict[str, Any] = {}
        for name, perm in (
            ("publish", self.permissions.publish),
            ("subscribe", self.permissions.subscribe),
        ):
            if perm is None:
                continue
            out[name] = perm.as_json()
        resp = self.permissions.response
        if resp is not None:
            out["responses"] = {"max": resp.max_msgs, "ttl": int(resp.expires * NS_PER_S)}
        return out

    @property
    def publish_cache(self) -> dict[bytes, bool]:
        """subject -> allowed; connections read it directly on the publish path."""
        return self._pub_cache

    @property
    def restricts_publish(self) -> bool:
        return self._pub_allow is not None or self._pub_deny is not None

    def can_publish(self, subject: bytes) -> bool:
        cached = self._pub_cache.get(subject)
        if cached is not None:
            return cached
        allowed = True
        if self._pub_allow is not None:
            plain = self._pub_allow.match(subject).psubs
            allowed = bool(plain)
        if allowed and self._pub_deny is not None:
            plain = self._pub_deny.match(subject).psubs
            allowed = not plain
        if len(self._pub_cache) >= PERM_CACHE_MAX:
            self._pub_cache.clear()  # the same dict object: connections hold a reference
        self._pub_cache[subject] = allowed
        return allowed

    def can_subscribe(self, subject: bytes, queue: bytes | None) -> bool:
        allowed = True
        if self._sub_allow is not None:
            plain, groups = self._sub_allow.match(subject)[:2]
            allowed = bool(plain)
            if queue is not None and groups:
                allowed = allowed or any(g[0].queue == queue for g in groups)
        if allowed and self._sub_deny is not None:
            plain, groups = self._sub_deny.match(subject)[:2]
            allowed = not plain
            if queue is not None and groups and any(g[0].queue == queue for g in groups):
                allowed = False
        return allowed

    def needs_delivery_filter(self, subject: bytes) -> bool:
        """A wildcard subscription that overlaps a deny entry must have messages filtered."""
        if b"*" not in subject and b">" not in subject:
            return False
        from .subjects import subjects_collide

        return any(subjects_collide(subject, d) for d in self.deny_subscribe_patterns)

    def delivery_denied(self, subject: bytes) -> bool:
        if self._sub_deny is None:
            return False
        plain = self._sub_deny.match(subject).psubs
        return bool(plain)


class ResponseTracker:
    """Reply subjects a connection may publish to because it received a request
    (`allow_responses`): each good for `max_msgs` replies within `expires` seconds."""

    __slots__ = ("_allowed", "perm")

    def __init__(self, perm: ResponsePermission) -> None:
        self.perm = perm
        self._allowed: dict[bytes, list[float]] = {}  # reply -> [remaining, deadline]

    def grant(self, reply: bytes) -> None:
        if len(self._allowed) > PERM_CACHE_MAX:
            self.prune()
        expires = self.perm.expires
        deadline = time.monotonic() + expires if expires > 0 else float("inf")
        self._allowed[reply] = [float(self.perm.max_msgs), deadline]

    def consume(self, subject: bytes) -> bool:
        entry = self._allowed.get(subject)
        if entry is None:
            return False
        if entry[1] < time.monotonic():
            del self._allowed[subject]
            return False
        if self.perm.max_msgs > 0:
            entry[0] -= 1
            if entry[0] <= 0:
                del self._allowed[subject]
        return True

    def prune(self) -> None:
        now = time.monotonic()
        for reply in [r for r, (_, deadline) in self._allowed.items() if deadline < now]:
            del self._allowed[reply]


# -- authentication -------------------------------------------------------------------------


class ConnectAuthenticator(Protocol):
    """What the server asks of whoever decides CONNECTs: `Authenticator` (users from the
    options) or `jwt_auth.JwtAuthenticator` (operator mode)."""

    @property
    def required(self) -> bool:
        """INFO's `auth_required`: clients must present credentials."""

    @property
    def needs_nonce(self) -> bool:
        """INFO carries a nonce for the client to sign (nkeys, JWTs)."""

    def authenticate(
        self, connect: dict[str, Any], nonce: str = "", tls_identities: list[str] | None = None
    ) -> tuple[AuthResult | None, str]:
        """(result, reason): result None refuses the client; reason is for the log only."""

    def account_limits(self, account_key: str) -> dict[str, Any]:
        """The limits of an account's JWT (`conn`, `subs`, `payload`), {} when it has none."""

    def knows_account(self, name: str) -> bool:
        """`name` is an account this server may host (configured, or a resolvable JWT)."""


class Authenticator:
    """Decides a CONNECT: single user, token, users list, nkeys, accounts, no_auth_user.

    Operator (JWT) mode is handled by `jwt_auth.JwtAuthenticator`; both are
    `ConnectAuthenticator`s.
    """

    def __init__(self, options: Options) -> None:
        self.options = options
        self.users: dict[str, User] = {}
        self.nkeys: dict[str, NkeyUser] = {}
        self._load()

    def _load(self) -> None:
        opts = self.options
        for user in opts.users:
            self.users[user.username] = user
        for nk in opts.nkeys:
            self.nkeys[nk.nkey] = nk
        for name, acc in opts.accounts.items():
            for user in acc.users:
                user.account = user.account or name
                self.users[user.username] = user
            for nk in acc.nkey_users:
                nk.account = nk.account or name
                self.nkeys[nk.nkey] = nk

    @property
    def auth_configured(self) -> bool:
        o = self.options
        return bool(o.username or o.authorization or self.users or self.nkeys or o.tls_map)

    @property
    def required(self) -> bool:
        """INFO's auth_required: forced false when no_auth_user is set (as nats-server)."""
        return self.auth_configured and not self.options.no_auth_user

    @property
    def needs_nonce(self) -> bool:
        return bool(self.nkeys)

    def authenticate(
        self, connect: dict[str, Any], nonce: str = "", tls_identities: list[str] | None = None
    ) -> tuple[AuthResult | None, str]:
        """Returns (result, reason): result is None when the client must be refused.

        `tls_identities` are the names in a verified client certificate (verify_and_map):
        the first one that is a configured user authenticates the connection.
        """
        opts = self.options
        if opts.tls_map:
            for name in tls_identities or ():
                user = self.users.get(name)
                if user is not None:
                    return _user_result(user), ""
            if self.users:
                return None, "no user mapped from the client certificate"
        if not self.auth_configured:
            return AuthResult(), ""
        has_creds = any(
            connect.get(k) for k in ("user", "pass", "auth_token", "nkey", "sig", "jwt")
        )
        if not has_creds and opts.no_auth_user:
            user = self.users.get(opts.no_auth_user)
            if user is not None:
                return _user_result(user), ""
        nkey = connect.get("nkey")
        if isinstance(nkey, str) and nkey and self.nkeys:
            entry = self.nkeys.get(nkey)
            sig = connect.get("sig")
            if entry is None or not isinstance(sig, str) or not nonce:
                return None, "nkey not found or no signature"
            if not verify_nonce_signature(nkey, nonce, sig):
                return None, "signature not verified"
            return (
                AuthResult(
                    user=nkey,
                    account=entry.account,
                    permissions=entry.permissions,
                    connection_types=entry.allowed_connection_types,
                    proxy_required=entry.proxy_required,
                ),
                "",
            )
        if opts.authorization:
            token = connect.get("auth_token")
            if isinstance(token, str) and secret_matches(token, opts.authorization):
                return AuthResult(), ""
            return None, "invalid token" if token else "no token provided"
        user_name = connect.get("user")
        password = connect.get("pass")
        if opts.username:
            if (
                isinstance(user_name, str)
                and isinstance(password, str)
                and hmac.compare_digest(user_name.encode(), opts.username.encode())
                and secret_matches(password, opts.password)
            ):
                return AuthResult(user=user_name), ""
            return None, "invalid user/password"
        if isinstance(user_name, str) and user_name:
            user = self.users.get(user_name)
            if (
                user is not None
                and isinstance(password, str)
                and secret_matches(password, user.password)
            ):
                return _user_result(user), ""
            return None, "invalid user/password"
        return None, "no credentials provided"

    def knows_account(self, name: str) -> bool:
        return name in self.options.accounts

    def account_limits(self, account_key: str) -> dict[str, Any]:
        """Accounts from the options carry no JWT limits."""
        return {}


def _user_result(user: User) -> AuthResult:
    return AuthResult(
        user=user.username,
        account=user.account,
        permissions=user.permissions,
        connection_types=user.allowed_connection_types,
        proxy_required=user.proxy_required,
    )


def connection_type_allowed(result: AuthResult, kind: str) -> bool:
    """`kind` (STANDARD, WEBSOCKET...) is among the user's allowed connection types."""
    types = result.connection_types
    return not types or kind in {t.upper() for t in types}
