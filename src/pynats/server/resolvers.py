"""Account resolvers: where operator mode finds the JWT of an account, and how it changes.

- MEMORY: the `resolver_preload` JWTs; a push on `$SYS` updates an account in use.
- URL(<url>): fetched over HTTP from `<url><account key>` (an account server); read-only. An
  https account server is reached with `resolver_tls` (client certificate, CA, `insecure`).
- FULL: every account JWT in a directory (`<dir>/<account key>.jwt`), changed by pushes on
  `$SYS` (`$SYS.REQ.CLAIMS.UPDATE`, `$SYS.REQ.ACCOUNT.<key>.CLAIMS.UPDATE`), listed, looked up,
  deleted (an operator-signed request; the file becomes `<key>.jwt.deleted`, or is removed
  with `hard_delete`) and kept in step with the other servers of a cluster by packs.
- CACHE: the same directory, holding only the JWTs in use (least recently used ones evicted
  past `limit`, each kept `ttl` after its last use); unknown accounts are looked up on `$SYS`.

The layout of the directory (optionally sharded by the key's last two characters), the pack
format (one `<key>|<jwt>` per message, an empty message at the end), the store's hash (the XOR
of every JWT's SHA-256) and the update/delete rules and texts are nats-server's, so a directory
moves between the two servers and a pynats server syncs with Go ones. This module does no I/O
on the network: `system.py` serves the subjects and answers with what these functions decide.
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .jwt_auth import JwtError, OperatorKeys, decode_account_jwt, decode_jwt
from .nkey import PREFIX_ACCOUNT, InvalidNkey, decode_public_key

if TYPE_CHECKING:
    from .options import Options

JWT_SUFFIX = ".jwt"
DELETED_SUFFIX = ".deleted"
# nats-server's DEFAULT_ACCOUNT_FETCH_TIMEOUT, and the resolvers' defaults.
FETCH_TIMEOUT_S = 1.9
SYNC_INTERVAL_S = 60.0
CACHE_LIMIT = 1000
EXPIRE_CHECK_S = 60.0
HASH_SIZE = 32

# Subjects (nats-server's events.go names them the same way).
LOOKUP_SUBJECT = "$SYS.REQ.ACCOUNT.{}.CLAIMS.LOOKUP"
PACK_SUBJECT = "$SYS.REQ.CLAIMS.PACK"
LIST_SUBJECT = "$SYS.REQ.CLAIMS.LIST"
UPDATE_SUBJECT = "$SYS.REQ.CLAIMS.UPDATE"
DELETE_SUBJECT = "$SYS.REQ.CLAIMS.DELETE"
ACCOUNT_UPDATE_SUBJECTS = ("$SYS.ACCOUNT.{}.CLAIMS.UPDATE", "$SYS.REQ.ACCOUNT.{}.CLAIMS.UPDATE")


class StoreError(Exception):
    pass


def is_account_key(key: Any) -> bool:
    if not isinstance(key, str):
        return False
    try:
        return decode_public_key(key)[0] == PREFIX_ACCOUNT
    except InvalidNkey:
        return False


def _is_public_key(key: str) -> bool:
    try:
        decode_public_key(key)
    except InvalidNkey:
        return False
    return True


def _claims_or_none(token: str) -> dict[str, Any] | None:
    try:
        return decode_jwt(token)
    except JwtError:
        return None


@dataclass
class _Entry:
    digest: bytes
    expires: float  # unix seconds, math.inf for never


class DirJwtStore:
    """JWTs as files named by their key, with an index of what is there: each file's digest
    (for the store hash) and when it expires, in least-recently-used order."""

    def __init__(
        self,
        directory: str,
        *,
        shard: bool = False,
        limit: int = 0,
        evict: bool = False,
        ttl: float = 0.0,
        delete: str = "",  # "" (refused), "rename" or "hard"
    ) -> None:
        os.makedirs(directory, exist_ok=True)
        self.directory = os.path.abspath(directory)
        self.shard = shard
        self.limit = limit if limit > 0 else math.inf
        self.evict = evict
        self.ttl = ttl
        self.delete_mode = delete
        self.index: OrderedDict[str, _Entry] = OrderedDict()
        self._hash = bytearray(HASH_SIZE)
        # Called with the key after a write that changed a JWT, and after a deletion.
        self.on_change: Callable[[str], None] | None = None
        self.on_delete: Callable[[str], None] | None = None
        for path in self._files():
            with open(path) as f:
                token = f.read()
            self._track(os.path.basename(path)[: -len(JWT_SUFFIX)], token)

    # -- the index ------------------------------------------------------------------------

    def _files(self) -> Iterator[str]:
        """Every `*.jwt` below the directory, in lexical order level by level (Go's Walk)."""

        def walk(path: str) -> Iterator[str]:
            for name in sorted(os.listdir(path)):
                full = os.path.join(path, name)
                if os.path.isdir(full):
                    yield from walk(full)
                elif name.endswith(JWT_SUFFIX):
                    yield full

        yield from walk(self.directory)

    def _expiry(self, token: str) -> float:
        if self.ttl:
            return time.time() + self.ttl
        claims = _claims_or_none(token) or {}
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, (int, float)) and exp > 0 else math.inf

    def _xor(self, digest: bytes) -> None:
        for i, b in enumerate(digest):
            self._hash[i] ^= b

    def _track(self, key: str, token: str) -> None:
        digest = hashlib.sha256(token.encode()).digest()
        old = self.index.pop(key, None)
        if old is not None:
            self._xor(old.digest)
        self.index[key] = _Entry(digest, self._expiry(token))
        self._xor(digest)

    def _untrack(self, key: str) -> None:
        old = self.index.pop(key, None)
        if old is not None:
            self._xor(old.digest)

    def _touch(self, key: str) -> None:
        entry = self.index.get(key)
        if entry is None:
            return
        if self.ttl:
            entry.expires = time.time() + self.ttl
        if self.evict:
            self.index.move_to_end(key)

    @property
    def hash(self) -> bytes:
        """The XOR of every indexed JWT's SHA-256: equal hashes, equal stores."""
        return bytes(self._hash)

    # -- reading and writing ----------------------------------------------------------------

    def path_for(self, key: str) -> str | None:
        if len(key) < 2 or not _is_public_key(key):
            return None
        name = key + JWT_SUFFIX
        if self.shard:
            return os.path.join(self.directory, key[-2:], name)
        return os.path.join(self.directory, name)

    def load(self, key: str) -> str | None:
        path = self.path_for(key)
        if path is None:
            return None
        try:
            with open(path) as f:
                token = f.read()
        except OSError:
            return None
        self._touch(key)
        return token

    def save(self, key: str, token: str) -> bool:
        """Write `token` as `key`'s JWT; True when it changed. StoreError when refused."""
        path = self.path_for(key)
        if path is None:
            raise StoreError("invalid public key")
        if not token:
            raise StoreError("invalid JWT")
        digest = hashlib.sha256(token.encode()).digest()
        entry = self.index.get(key)
        if entry is not None:
            self._touch(key)
            if entry.digest == digest:
                return False
        elif len(self.index) >= self.limit:
            if not self.evict:
                raise StoreError("jwt store is full")
            oldest = next(iter(self.index))
            oldest_path = self.path_for(oldest)
            if oldest_path is not None:
                os.remove(oldest_path)
            self._untrack(oldest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(token)
        self._track(key, token)
        if self.on_change is not None:
            self.on_change(key)
        return True

    def save_if_newer(self, key: str, token: str) -> bool:
        """`save`, unless the JWT there is the same one (jti) or was issued later."""
        path = self.path_for(key)
        if path is None:
            raise StoreError("invalid public key")
        if os.path.exists(path):
            try:
                new = decode_jwt(token)
            except JwtError as e:
                raise StoreError(str(e)) from None
            with open(path) as f:
                existing = _claims_or_none(f.read())
            if existing is not None:
                if existing.get("jti") == new.get("jti"):
                    return False
                if (existing.get("iat") or 0) > (new.get("iat") or 0):
                    return False
                if new.get("sub") != key:
                    raise StoreError("jwt subject nkey and provided nkey do not match")
                if existing.get("sub") != new.get("sub"):
                    raise StoreError("subject of existing and new jwt do not match")
        return self.save(key, token)

    def delete(self, key: str) -> None:
        if not self.delete_mode:
            raise StoreError("store is not set up to for delete")
        path = self.path_for(key)
        if path is None:
            raise StoreError("invalid public key")
        try:
            if self.delete_mode == "rename":
                os.replace(path, path + DELETED_SUFFIX)
            else:
                os.remove(path)
        except FileNotFoundError:
            return
        self._untrack(key)
        if self.on_delete is not None:
            self.on_delete(key)

    def walk(self) -> Iterator[tuple[str, str]]:
        """(key, JWT) of every indexed, unexpired JWT, in the directory's order."""
        now = time.time()
        for path in self._files():
            key = os.path.basename(path)[: -len(JWT_SUFFIX)]
            if key not in self.index:
                continue
            try:
                with open(path) as f:
                    token = f.read()
            except OSError:
                continue
            if not token:
                continue
            exp = (_claims_or_none(token) or {}).get("exp")
            if isinstance(exp, (int, float)) and 0 < exp < now:
                continue
            yield key, token

    def merge(self, pack: str) -> None:
        """Take what another server's pack holds, where it is newer than ours."""
        for line in pack.split("\n"):
            if not line:
                continue
            parts = line.split("|")
            if len(parts) != 2:
                raise StoreError(f"line in package didn't contain 2 entries: {line!r}")
            if not is_account_key(parts[0]):
                raise StoreError("key to merge is not a valid public account key")
            self.save_if_newer(parts[0], parts[1])

    def expire(self) -> list[str]:
        """Remove the JWTs whose time is up (their own `exp`, or the ttl); their keys."""
        now = time.time()
        gone = [key for key, entry in self.index.items() if entry.expires <= now]
        for key in gone:
            path = self.path_for(key)
            try:
                if path is not None:
                    os.remove(path)
            except OSError:
                continue
            self._untrack(key)
        return gone


# -- the resolvers ----------------------------------------------------------------------------


class AccountResolver:
    """Finds account JWTs by key. `kind` is nats-server's name for it."""

    kind = ""
    is_writable = True  # resolver_preload may fill it

    def fetch(self, key: str) -> str | None:
        raise NotImplementedError

    def store(self, key: str, token: str) -> None:
        raise NotImplementedError


class MemoryResolver(AccountResolver):
    kind = "MEMORY"

    def __init__(self) -> None:
        self.jwts: dict[str, str] = {}

    def fetch(self, key: str) -> str | None:
        return self.jwts.get(key)

    def store(self, key: str, token: str) -> None:
        self.jwts[key] = token


class UrlResolver(AccountResolver):
    """GET `<url><account key>`: the body is the JWT (a 200 only). `context` is the client
    TLS of `resolver_tls` for an https account server (None: the system's roots)."""

    kind = "URL"
    is_writable = False

    def __init__(
        self, url: str, timeout: float = FETCH_TIMEOUT_S, context: ssl.SSLContext | None = None
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.context = context
        self.last_error = ""

    def fetch(self, key: str) -> str | None:
        url = self.url + key
        try:
            with urllib.request.urlopen(url, timeout=self.timeout, context=self.context) as r:
                if r.status == 200:
                    return str(r.read().decode())
                self.last_error = f'could not fetch <"{url}">: {r.status} {r.reason}'
                return None
        except urllib.error.HTTPError as e:
            self.last_error = f'could not fetch <"{url}">: {e.code} {e.reason}'
        except (OSError, ValueError, http.client.HTTPException) as e:
            self.last_error = f'could not fetch <"{url}">: Get "{url}": {_go_get_error(url, e)}'
        return None

    def store(self, key: str, token: str) -> None:
        raise StoreError("store operation not supported for URL Resolver")

    def unreachable(self) -> str:
        """Why the account server does not answer its base URL (nats-server checks it before
        starting), or ""."""
        self.last_error = ""
        self.fetch("")
        return self.last_error


# OpenSSL's names of the TLS alerts a server sends, and Go's words for them.
_TLS_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "certificate required",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "handshake failure",
    "SSLV3_ALERT_BAD_CERTIFICATE": "bad certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "expired certificate",
    "SSLV3_ALERT_CERTIFICATE_REVOKED": "revoked certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "unknown certificate",
    "TLSV1_ALERT_UNKNOWN_CA": "unknown certificate authority",
    "TLSV1_ALERT_PROTOCOL_VERSION": "protocol version not supported",
}
# OpenSSL's verification results that Go reports as an unknown authority.
_UNKNOWN_AUTHORITY = {2, 18, 19, 20, 21}


def _go_get_error(url: str, error: BaseException) -> str:
    """What Go's HTTP client says of a failed GET (after `Get "<url>": `), for the failures
    an account server's clients meet: refused connections and TLS."""
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        error = error.reason
    if isinstance(error, ssl.SSLCertVerificationError):
        if error.verify_code in _UNKNOWN_AUTHORITY:
            reason = "x509: certificate signed by unknown authority"
        elif error.verify_code == 10:
            reason = "x509: certificate has expired or is not yet valid"
        else:
            reason = f"x509: {error.verify_message}"
        return f"tls: failed to verify certificate: {reason}"
    if isinstance(error, ssl.SSLError) and error.reason in _TLS_ALERTS:
        return f"remote error: tls: {_TLS_ALERTS[error.reason]}"
    if isinstance(error, ConnectionRefusedError):
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"dial tcp {parts.hostname}:{port}: connect: connection refused"
    if isinstance(error, TimeoutError):
        return "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    return str(error)


class DirResolver(AccountResolver):
    """FULL and CACHE: a DirJwtStore, and the `$SYS` requests that change it."""

    def __init__(self, kind: str, store: DirJwtStore, interval: float, timeout: float) -> None:
        self.kind = kind
        self.dir_store = store
        self.interval = interval or SYNC_INTERVAL_S
        self.timeout = timeout or FETCH_TIMEOUT_S

    def fetch(self, key: str) -> str | None:
        return self.dir_store.load(key) or None

    def store(self, key: str, token: str) -> None:
        self.dir_store.save_if_newer(key, token)

    @property
    def expire_check(self) -> float:
        ttl = self.dir_store.ttl
        return min(ttl / 2, EXPIRE_CHECK_S) if ttl else EXPIRE_CHECK_S

    @property
    def log_line(self) -> str:
        which = "all" if self.kind == "FULL" else "some"
        return f"Managing {which} jwt in exclusive directory {self.dir_store.directory}"


def url_resolver(options: Options) -> UrlResolver:
    """The URL resolver of `options`, with `resolver_tls` as its client TLS (nats-server
    gives it the block's certificate, its CA file as the roots and `insecure`)."""
    context = None
    if options.resolver_tls is not None:
        from .tls import build_route_client_context

        context = build_route_client_context(options.resolver_tls)
    ro = options.resolver_options
    return UrlResolver(ro.url, ro.timeout or FETCH_TIMEOUT_S, context)


def build_resolver(options: Options) -> AccountResolver:
    """The resolver the options name (MEMORY when none is named), preloads stored.
    JwtError for a preload that is not an account JWT."""
    ro = options.resolver_options
    resolver: AccountResolver
    if options.resolver == "URL":
        resolver = url_resolver(options)
    elif options.resolver == "FULL":
        delete = ("hard" if ro.hard_delete else "rename") if ro.allow_delete else ""
        store = DirJwtStore(ro.dir, limit=ro.limit, delete=delete)
        resolver = DirResolver("FULL", store, ro.interval, ro.timeout)
    elif options.resolver == "CACHE":
        store = DirJwtStore(
            ro.dir, limit=ro.limit or CACHE_LIMIT, evict=True, ttl=ro.ttl, delete="hard"
        )
        resolver = DirResolver("CACHE", store, 0.0, ro.timeout)
    else:
        resolver = MemoryResolver()
    if isinstance(resolver, DirResolver):
        for key, token in options.resolver_preload.items():
            decode_account_jwt(token)
            try:
                resolver.store(key, token)
            except StoreError as e:
                raise JwtError(f'preload account error for "{key}": {e}') from None
    return resolver


# -- what the $SYS requests decide ------------------------------------------------------------


@dataclass
class ClaimsReply:
    """The outcome of an update or delete request: nats-server's respondToUpdate."""

    account: str  # "" when the answer names none
    message: str
    error: str = ""

    @property
    def log_text(self) -> str:
        parts = [self.message]
        if self.account:
            parts.append(self.account)
        if self.error:
            parts.append(self.error)
        return " - ".join(parts)

    def body(self) -> dict[str, Any]:
        """The `data` or `error` member of the answer (keys in Go's map order)."""
        inner: dict[str, Any] = {}
        if self.account:
            inner["account"] = self.account
        if self.error:
            inner["code"] = 500
            inner["description"] = f"{self.message} - {self.error}"
            return {"error": inner}
        inner["code"] = 200
        inner["message"] = self.message
        return {"data": inner}


def update_claims(
    resolver: DirResolver,
    operator: OperatorKeys,
    token: str,
    subject_key: str | None,
    is_loaded: Callable[[str], bool],
) -> ClaimsReply:
    """A pushed account JWT for FULL or CACHE (`subject_key`: the account named by the
    subject, None for `$SYS.REQ.CLAIMS.UPDATE`)."""
    cache = resolver.kind == "CACHE"
    failed = "jwt update cache resulted in error" if cache else "jwt update resulted in error"
    try:
        claims = decode_account_jwt(token)
    except JwtError as e:
        named = subject_key if (cache and subject_key) else "n/a"
        return ClaimsReply(named, failed, str(e))
    key = str(claims.get("sub") or "")
    if subject_key is not None and key != subject_key:
        return ClaimsReply(subject_key, failed, "subject does not match jwt content")
    if claims.get("iss") == operator.operator and operator.strict:
        return ClaimsReply(key, failed, "operator requires issuer to be a signing key")
    if cache and not is_loaded(key):
        return ClaimsReply(key, "jwt update cache skipped")
    try:
        resolver.dir_store.save(key, token)
    except (StoreError, OSError) as e:
        return ClaimsReply(key, failed, str(e))
    return ClaimsReply(key, "jwt updated cache" if cache else "jwt updated")


def update_loaded_account(
    token: str,
    subject_key: str,
    is_loaded: Callable[[str], bool],
    apply: Callable[[str, str], str],
) -> ClaimsReply:
    """A pushed account JWT for MEMORY and URL: only an account in use changes (`apply`
    returns an error text, "" when it took the JWT)."""
    if not token:
        return ClaimsReply(subject_key, "jwt update error", "request body is empty")
    try:
        claims = decode_account_jwt(token)
    except JwtError as e:
        return ClaimsReply(subject_key, "jwt update resulted in error", str(e))
    if claims.get("sub") != subject_key:
        return ClaimsReply(subject_key, "jwt update error", "subject does not match jwt content")
    if not is_loaded(subject_key):
        return ClaimsReply(subject_key, "jwt update skipped")
    error = apply(subject_key, token)
    if error:
        return ClaimsReply(subject_key, "jwt update error", error)
    return ClaimsReply(subject_key, "jwt updated")


def delete_claims(
    resolver: DirResolver, operator: OperatorKeys, token: str, system_account: str
) -> ClaimsReply:
    """`$SYS.REQ.CLAIMS.DELETE`: a generic JWT, self-signed by the operator (or one of its
    signing keys), listing in `accounts` the accounts to delete."""
    store = resolver.dir_store
    subject = ""
    error = ""
    accounts: list[Any] = []
    try:
        claims = decode_jwt(token)
    except JwtError as e:
        error = str(e)
    else:
        subject = str(claims.get("sub") or "")
        listed = (claims.get("nats") or {}).get("accounts")
        if not store.delete_mode:
            error = "delete must be enabled in server config"
        elif subject != claims.get("iss"):
            error = "not self signed"
        elif claims.get("iss") not in operator.keys:
            error = "not trusted"
        elif not isinstance(listed, list):
            error = "malformed request"
        else:
            accounts = listed
            for entry in accounts:
                if not is_account_key(entry):
                    error = "malformed request"
                    break
                if entry == system_account:
                    error = "not allowed to delete system account"
                    break
    if error:
        return ClaimsReply("", f"delete accounts request by {subject} failed", error)
    errors: list[str] = []
    for key in accounts:
        try:
            store.delete(key)
        except (StoreError, OSError) as e:
            errors.append(str(e))
    deleted = len(accounts) - len(errors)
    if errors:
        message = f"deleted {deleted} accounts, failed for {len(errors)}"
        return ClaimsReply("", message, "\n".join(errors))
    return ClaimsReply("", f"deleted {deleted} accounts")
