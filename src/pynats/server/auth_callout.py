"""Auth callout (ADR-26): an external service decides who a client is.

With `authorization { auth_callout { issuer, auth_users, account, xkey } }`, the server does
not decide a CONNECT itself, except for the `auth_users` (the callout service's own
connections, which log in as usual). For everyone else it sends an `authorization_request`
JWT, signed with the server's own key (`server_id`), to `$SYS.REQ.USER.AUTH` in the callout
`account`, and waits (at most the auth timeout) for the service's `authorization_response`
JWT, signed by `issuer`: either an `error`, or a user JWT (issued by `issuer`, for the user
key the request named, `aud` the account to place the client in) whose claims give the
client its permissions. With `xkey`, both messages are sealed with curve keys: the request
for the service's xkey (the server's own xkey in the `Nats-Server-Xkey` header), the answer
for the server's.

Meanwhile the client's CONNECT is pending (`ClientConnection` holds what it sent after it):
nothing it sent later is processed, and it gets no PONG, before the answer. A refusal is
nats-server's: `-ERR 'Authorization Violation'`, its log lines, the reason as a warning.

A leaf that dials our leafnode port is decided the same way when that port has no
authorization of its own (nats-server's isLeafNodeAuthorized falls back to the clients'
authentication, callout included): its request says `"kind": "Leafnode"` (and no `type`),
and the account the answer places it in is the account its connection binds. Both kinds of
connection are a `CalloutParty` to the one mechanism here.

The checks of an answer are sans-I/O (`check_response`); `AuthCalloutService` is the part
that sends, waits and admits.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from . import const
from .auth import AuthResult, Permissions, SubjectPermission
from .nkey import (
    PREFIX_ACCOUNT,
    PREFIX_CURVE,
    PREFIX_SERVER,
    PREFIX_USER,
    encode_public_key,
    is_public_key,
)

if TYPE_CHECKING:
    from .accounts import Account
    from .conf.tree import ConfigMap
    from .config_reader import Reader
    from .internal import InternalClient
    from .jwt_auth import AccountClaims
    from .nkey import ServerKeys
    from .options import Options
    from .server import Server
    from .sublist import Subscription

AUTH_CALLOUT_SUBJECT = "$SYS.REQ.USER.AUTH"
AUTH_REQUEST_AUDIENCE = "nats-authorization-request"
XKEY_HEADER = "Nats-Server-Xkey"
JWT_PREFIX = b"eyJ"
REPLY_PREFIX = "$SYS._INBOX."


@dataclass
class AuthCallout:
    """The `auth_callout {}` block of `authorization {}` (config mode)."""

    issuer: str = ""  # the account key that signs the answers and the user JWTs in them
    account: str = const.GLOBAL_ACCOUNT  # where the requests go (the service's account)
    auth_users: list[str] = field(default_factory=list)  # who logs in without a callout
    xkey: str = ""  # the service's xkey: requests are sealed for it
    allowed_accounts: list[str] = field(default_factory=list)


# -- configuration --------------------------------------------------------------------------


def parse_auth_callout(r: Reader, m: ConfigMap, key: str) -> AuthCallout | None:
    """nats-server's parseAuthCallout: unknown fields are reported and skipped, any other
    problem ends it (None)."""
    from .conf.tree import ConfigMap
    from .config_reader import GoPanic, conversion_text, go_value

    block = m[key]
    if not isinstance(block, ConfigMap):
        r.error(m, key, f"Expected authorization callout to be a map/struct, got {go_value(block)}")
        return None
    callout = AuthCallout()
    last = key
    where: ConfigMap = m
    try:
        for k in block:
            if block.is_used_variable(k):
                continue
            last, where = k, block
            lk = k.lower()
            value = block[k]
            if lk == "issuer":
                callout.issuer = r.expect_str(block, k)
                if not is_public_key(callout.issuer, PREFIX_ACCOUNT):
                    r.error(
                        block,
                        k,
                        "Expected callout user to be a valid public account nkey, "
                        f'got "{callout.issuer}"',
                    )
                    return None
            elif lk in ("account", "acc"):
                callout.account = r.expect_str(block, k)
            elif lk in ("auth_users", "users", "allowed_accounts"):
                if not isinstance(value, list):
                    what = "auth_users" if lk != "allowed_accounts" else "allowed accounts"
                    r.error(block, k, f"Expected {what} field to be an array, got *conf.token")
                    return None
                names = []
                for item in value:
                    if not isinstance(item, str):
                        raise GoPanic(block.position(k), conversion_text(item, "string"))
                    names.append(item)
                if lk == "allowed_accounts":
                    callout.allowed_accounts = names
                else:
                    callout.auth_users = names
            elif lk in ("xkey", "key"):
                callout.xkey = r.expect_str(block, k)
                if not is_public_key(callout.xkey, PREFIX_CURVE):
                    r.error(
                        block, k, f'Expected callout xkey to be a valid public xkey, got "{value}"'
                    )
                    return None
            else:
                r.error(block, k, f'Unknown field "{k}" parsing authorization callout')
    except GoPanic as p:
        r.error_at(p.position, p.text)
        return None
    if not callout.account:
        callout.account = const.GLOBAL_ACCOUNT
    if not callout.issuer:
        r.error(where, last, "Authorization callouts require an issuer to be specified")
        return None
    if not callout.auth_users:
        r.error(where, last, "Authorization callouts require authorized users to be specified")
        return None
    return callout


def auth_callout_problem(opts: Options) -> str | None:
    """What nats-server refuses about a callout once the whole file is read."""
    callout = opts.auth_callout
    if callout is None:
        return None
    for name in callout.allowed_accounts:
        if name not in opts.accounts and name != const.GLOBAL_ACCOUNT:
            return f'auth_callout allowed account "{name}" not found in configured accounts'
    return None


# -- JWTs -----------------------------------------------------------------------------------


class CalloutRefused(Exception):
    """The answer does not admit the client; the text is nats-server's warning."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def encode_jwt(claims: dict[str, Any], nats: dict[str, Any], keys: ServerKeys) -> str:
    """A JWT v2 signed by the server. `jti` is computed as the NATS JWT library does it: the
    hash of the standard claims (so it names the moment and the parties, not the payload)."""
    standard = {k: claims[k] for k in ("aud", "exp", "iat", "iss", "sub") if k in claims}
    digest = hashlib.new("sha512_256", _compact(standard)).digest()
    jti = base64.b32encode(digest).decode().rstrip("=")
    body: dict[str, Any] = {}
    for k in ("aud", "exp"):
        if k in claims:
            body[k] = claims[k]
    body["jti"] = jti
    for k in ("iat", "iss", "sub"):
        body[k] = claims[k]
    body["nats"] = nats
    head = _b64(_compact({"typ": "JWT", "alg": "ed25519-nkey"}))
    signed = f"{head}.{_b64(_compact(body))}"
    return f"{signed}.{_b64(keys.sign(signed.encode()))}"


def _decode(token: str, what_prefix: int) -> dict[str, Any]:
    """The claims of a signed JWT, with the NATS JWT library's complaints."""
    from .jwt_auth import JwtError, decode_jwt

    if len(token.split(".")) != 3:
        raise CalloutRefused("Expected 3 chunks")
    try:
        claims = decode_jwt(token)
    except JwtError as e:
        text = str(e)
        raise CalloutRefused(text[:1].upper() + text[1:]) from None
    if not is_public_key(str(claims.get("iss", "")), what_prefix):
        raise CalloutRefused("Unable to validate expected prefixes")
    return claims


def _time_issue(claims: dict[str, Any], now: float) -> str:
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and exp > 0 and exp < now:
        return "claim is expired"
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and nbf > 0 and nbf > now:
        return "claim is not yet valid"
    return ""


@dataclass(frozen=True)
class CalloutTarget:
    """Where a request goes and what its answer must be: from `auth_callout {}` (config
    mode), or from the `authorization` claims of the account a user logged into (operator
    mode: the callout account is that account, which signs the answers itself or with one of
    its signing keys, and places users in itself or in its `allowed_accounts`)."""

    account: str  # the callout account (config mode: its name, operator mode: its key)
    issuer: str  # who signs the answers and the user JWTs (operator mode: the account)
    xkey: str = ""  # the service's xkey: requests are sealed for it
    signing_keys: frozenset[str] = frozenset()  # operator mode: the account's
    allowed_accounts: tuple[str, ...] = ()  # operator mode: where else users may go
    operator_mode: bool = False


@dataclass
class Expectation:
    """What an answer must match: the request it answers and where it may place users."""

    user_nkey: str
    server_id: str
    target: CalloutTarget
    lookup_account: Callable[[str], Account | None]
    # operator mode: the keys that may issue users of an account (itself, its signing keys)
    issuers_of: Callable[[str], set[str]] = lambda key: {key}


def check_response(
    claims: dict[str, Any], expect: Expectation, *, was_sealed: bool
) -> tuple[Account, dict[str, Any]]:
    """The account a decoded `authorization_response` places its client in, and the claims
    of the user JWT in it; CalloutRefused (with nats-server's text) when it does not admit
    the client."""
    now = time.time()
    target = expect.target
    nats = claims.get("nats") or {}
    if nats.get("type") != "authorization_response":
        raise CalloutRefused("Not an authorization request claim")
    subject = str(claims.get("sub", ""))
    audience = str(claims.get("aud", ""))
    error = str(nats.get("error") or "")
    user_jwt = str(nats.get("jwt") or "")
    issuer_account = str(nats.get("issuer_account") or "")
    issue = ""
    if not is_public_key(subject, PREFIX_USER):
        issue = "Subject must be a user public key"
    elif not is_public_key(audience, PREFIX_SERVER):
        issue = "Audience must be a server public key"
    elif not error and not user_jwt:
        issue = "Error or Jwt is required"
    elif error and user_jwt:
        issue = "Only Error or Jwt can be set"
    elif issuer_account and not is_public_key(issuer_account, PREFIX_ACCOUNT):
        issue = "issuer_account is not an account public key"
    else:
        issue = _time_issue(claims, now)
    if issue:
        raise CalloutRefused(f"Authorization response had validation errors: {issue}")
    if subject != expect.user_nkey:
        raise CalloutRefused(
            "Auth callout violation: auth callout response is not for expected user"
        )
    if audience != expect.server_id:
        raise CalloutRefused("Auth callout violation: auth callout response is not for server")
    signer = issuer_account or claims["iss"]
    if not was_sealed and signer != target.issuer and signer not in target.signing_keys:
        raise CalloutRefused("Auth callout signing key is unknown")
    if error:
        raise CalloutRefused(f"Auth callout service returned an error: {error}")
    user = _decode(user_jwt, PREFIX_ACCOUNT)
    return check_user_claims(user, expect, now), user


def check_user_claims(user: dict[str, Any], expect: Expectation, now: float) -> Account:
    target = expect.target
    account = target.account
    nats = user.get("nats") or {}
    if nats.get("type") != "user":
        raise CalloutRefused("Not user claim")
    issue = _time_issue(user, now)
    if issue:
        raise CalloutRefused(f"Error validating user JWT: {issue}")
    if user.get("sub") != expect.user_nkey:
        raise CalloutRefused(
            f'Expected authorized user of "{expect.user_nkey}" but got "{user.get("sub")}" '
            f'on account "{account}"'
        )
    issuer = str(user["iss"])
    if target.operator_mode:
        placement = str(nats.get("issuer_account") or issuer)
        allowed = target.allowed_accounts
        if placement != target.issuer and "*" not in allowed and placement not in allowed:
            raise CalloutRefused(
                f'Account "{issuer}" not permitted as valid account option for auth callout '
                f'for account "{account}"'
            )
    else:
        if nats.get("issuer_account"):
            raise CalloutRefused(
                f'Error non operator mode account "{account}": attempted to use issuer_account'
            )
        if issuer != target.issuer:
            raise CalloutRefused(
                f'Wrong issuer for auth callout response on account "{account}", '
                f'expected "{target.issuer}" got "{issuer}"'
            )
        placement = str(user.get("aud") or "")
    placed = expect.lookup_account(placement)
    if placed is None:
        raise CalloutRefused(
            f'No valid account "{placement}" for auth callout response on account '
            f'"{account}": account missing'
        )
    if target.operator_mode and issuer not in expect.issuers_of(placement):
        raise CalloutRefused(f'User JWT issuer "{issuer}" is not known')
    return placed


def with_callout_denied(perms: Permissions | None) -> Permissions:
    """`perms` plus a publish deny of the callout subject (for clients in the callout
    account: only the server asks the service)."""
    merged = Permissions() if perms is None else Permissions(perms.publish, perms.subscribe)
    merged.response = perms.response if perms is not None else None
    pub = merged.publish
    merged.publish = SubjectPermission(
        allow=pub.allow if pub is not None else None,
        deny=[*(pub.deny if pub is not None else []), AUTH_CALLOUT_SUBJECT],
    )
    return merged


def raw_auth_user(connect: dict[str, Any]) -> str:
    """Who the CONNECT says it is, as `auth_users` name them (nats-server's raw auth user:
    the nkey, the user name, the user key of the JWT, the token)."""
    for key in ("nkey", "user", "jwt", "auth_token"):
        value = connect.get(key)
        if isinstance(value, str) and value:
            return _jwt_subject(connect) if key == "jwt" else value
    return ""


# -- the runtime ----------------------------------------------------------------------------


class CalloutParty(Protocol):
    """A connection whose CONNECT a callout service decides: a client (client.py) or a leaf
    that dialled our leafnode port (leafnodes.py)."""

    @property
    def server(self) -> Server: ...
    @property
    def host(self) -> str: ...
    @property
    def cid(self) -> int: ...
    @property
    def transport(self) -> Any: ...
    @property
    def closed(self) -> bool: ...
    @property
    def log_prefix(self) -> str: ...
    @property
    def connect_opts(self) -> dict[str, Any] | None: ...
    @property
    def nonce(self) -> str: ...
    @property
    def callout_kind(self) -> str:
        """`client_info.kind`: nats-server's kind name ("Client", "Leafnode")."""
        ...

    @property
    def callout_type(self) -> str:
        """`client_info.type` ("nats", "websocket"); "" (left out) for a leaf."""
        ...

    @property
    def verifies_peer(self) -> bool:
        """Its listener verifies the peer's certificate (`client_tls.verified_chains`)."""
        ...

    def close_with_error(self, err: str | None, reason: str) -> None: ...
    def finish_callout(self, result: AuthResult) -> None: ...


class AuthCalloutService:
    """Sends the requests of pending CONNECTs and admits or refuses their clients. In config
    mode `config` is the `auth_callout {}` block; in operator mode (`config` None) accounts
    opt in with the `authorization` claims of their JWTs."""

    def __init__(self, server: Server, config: AuthCallout | None) -> None:
        self.server = server
        self.config = config
        self._clients: dict[str, InternalClient] = {}  # the callout accounts', by name
        self._next_reply = 0

    # -- who is decided by a service ------------------------------------------------------

    def config_target(self, connect: dict[str, Any]) -> CalloutTarget | None:
        """Config mode: the callout for this CONNECT, None for an auth user."""
        config = self.config
        if config is None or raw_auth_user(self.as_seen(connect)) in config.auth_users:
            return None
        return CalloutTarget(
            account=config.account,
            issuer=config.issuer,
            xkey=config.xkey,
            allowed_accounts=tuple(config.allowed_accounts),
        )

    def account_target(self, result: AuthResult) -> CalloutTarget | None:
        """Operator mode: the callout of the account `result` logged into, None when it has
        none or the user is one of its auth users."""
        authorization, claims = self._account_authorization(result)
        if claims is None or result.user in authorization.get("auth_users", ()):
            return None
        return CalloutTarget(
            account=claims.public_key,
            issuer=claims.public_key,
            xkey=str(authorization.get("xkey") or ""),
            signing_keys=frozenset(claims.signing_keys),
            allowed_accounts=tuple(authorization.get("allowed_accounts") or ()),
            operator_mode=True,
        )

    def _account_authorization(
        self, result: AuthResult
    ) -> tuple[dict[str, Any], AccountClaims | None]:
        from .jwt_auth import JwtAuthenticator

        authenticator = self.server.authenticator
        if result.jwt_claims is None or not isinstance(authenticator, JwtAuthenticator):
            return {}, None
        claims = authenticator.account(result.account)
        authorization = claims.authorization if claims is not None else {}
        if claims is None or not authorization.get("auth_users"):
            return {}, None
        return authorization, claims

    def admitting(self, result: AuthResult, target: CalloutTarget | None = None) -> AuthResult:
        """What a client may do once admitted (`target`: by a callout): the clients placed
        in the callout account cannot publish to the callout subject (only the server asks
        the service). In config mode, nats-server leaves the auth users alone when the
        callout names allowed accounts."""
        config = self.config
        if config is not None:
            if target is None and config.allowed_accounts:
                return result
            callout_account = config.account
        elif target is not None:
            callout_account = target.account
        elif self._account_authorization(result)[1] is not None:
            callout_account = result.account  # an auth user of its account's callout
        else:
            return result
        if (result.account or const.GLOBAL_ACCOUNT) == callout_account:
            result.permissions = with_callout_denied(result.permissions)
        return result

    # -- requests ---------------------------------------------------------------------------

    def as_seen(self, connect: dict[str, Any]) -> dict[str, Any]:
        """The CONNECT as nats-server keeps it: a user JWT is dropped outside operator mode
        (so neither the request nor the raw auth user shows it; the signature stays)."""
        opts = self.server.options
        if "jwt" not in connect or opts.trusted_operators or opts.trusted_keys:
            return connect
        return {k: v for k, v in connect.items() if k != "jwt"}

    def start(
        self, client: CalloutParty, connect: dict[str, Any], target: CalloutTarget
    ) -> PendingCallout | None:
        """Send the request for `client`; None when it could not be sent (already refused)."""
        server = self.server
        account = server.resolve_account(target.account)
        if account is None:
            server.logger.warn(
                f'No valid account "{target.account}" for auth callout request: account missing'
            )
            self.refuse(client)
            return None
        # The user key the answer must name: a fresh one per request (no replay).
        user_nkey = encode_public_key(PREFIX_USER, os.urandom(32))
        timeout = server.options.effective_auth_timeout()
        token = self._request(client, self.as_seen(connect), target, user_nkey, timeout)
        payload = token.encode()
        headers = b""
        if target.xkey:
            payload = server.keys.seal(payload, target.xkey)
            headers = f"NATS/1.0\r\n{XKEY_HEADER}: {server.keys.xkey}\r\n\r\n".encode()
        internal = self._internal_client(account)
        self._next_reply += 1
        reply = f"{REPLY_PREFIX}{server.server_id[:8]}.{self._next_reply}"
        pending = PendingCallout(self, client, account, target, user_nkey)
        pending.sub = internal.subscribe(reply, pending.on_reply)
        pending.timer = server.loop.call_later(timeout, pending.on_timeout)
        internal.publish(AUTH_CALLOUT_SUBJECT, payload, reply, headers)
        return pending

    def _internal_client(self, account: Account) -> InternalClient:
        internal = self._clients.get(account.name)
        if internal is None or internal.account is not account:
            from .internal import InternalClient

            internal = InternalClient(self.server, account, "auth-callout")
            self._clients[account.name] = internal
        return internal

    def _request(
        self,
        client: CalloutParty,
        connect: dict[str, Any],
        target: CalloutTarget,
        user_nkey: str,
        timeout: float,
    ) -> str:
        server = self.server
        info = server.info_fields()
        server_id: dict[str, Any] = {
            "name": server.server_name,
            "host": info.get("host", ""),
            "id": server.server_id,
            "version": const.NATS_FEATURE_VERSION,
        }
        if server.cluster is not None:
            server_id["cluster"] = server.cluster.name
        if server.options.server_tags:
            server_id["tags"] = list(server.options.server_tags)
        if target.xkey:
            server_id["xkey"] = server.keys.xkey
        client_info: dict[str, Any] = {"host": client.host, "id": client.cid}
        user = raw_auth_user(connect)
        if user:
            client_info["user"] = user
        name = connect.get("name")
        if isinstance(name, str) and name:
            client_info["name"] = name
        operator_mode = server.options.trusted_operators or server.options.trusted_keys
        if operator_mode and (name_tag := _jwt_claim(connect, "name")):
            client_info["name_tag"] = name_tag  # the sentinel's name, as nats-server tags it
        client_info["kind"] = client.callout_kind
        if client.callout_type:
            client_info["type"] = client.callout_type
        if mqtt_id := getattr(client, "mqtt_id", ""):
            client_info["mqtt_id"] = mqtt_id  # an MQTT client's client ID
        if isinstance(connect.get("sig"), str) and connect["sig"]:
            client_info["nonce"] = client.nonce
        opts: dict[str, Any] = {}
        for key in ("jwt", "nkey", "sig", "auth_token", "user", "pass", "name", "lang", "version"):
            value = connect.get(key)
            if isinstance(value, str) and value:
                opts[key] = value
        protocol = connect.get("protocol", 0)
        opts["protocol"] = protocol if isinstance(protocol, int) else 0
        nats: dict[str, Any] = {
            "server_id": server_id,
            "user_nkey": user_nkey,
            "client_info": client_info,
            "connect_opts": opts,
        }
        tls = client_tls(client)
        if tls is not None:
            nats["client_tls"] = tls
        nats["type"] = "authorization_request"
        nats["version"] = 2
        now = int(time.time())
        claims = {
            "aud": AUTH_REQUEST_AUDIENCE,
            "exp": int(time.time() + timeout),
            "iat": now,
            "iss": server.server_id,
            "sub": target.issuer,
        }
        return encode_jwt(claims, nats, server.keys)

    # -- answers ----------------------------------------------------------------------------

    def decide(self, pending: PendingCallout, payload: bytes) -> AuthResult:
        """The client's admission from the service's answer (CalloutRefused otherwise)."""
        target = pending.target
        account = pending.account.name
        if not payload:
            raise CalloutRefused(
                f'Auth callout violation: "no reason supplied" on account "{account}"'
            )
        was_sealed = False
        if target.xkey and not payload.startswith(JWT_PREFIX):
            try:
                payload = self.server.keys.open(payload, target.xkey)
            except ValueError as e:
                raise CalloutRefused(
                    f'Error decrypting auth callout response on account "{account}": {e}'
                ) from None
            was_sealed = True
        claims = _decode(payload.decode(errors="replace"), PREFIX_ACCOUNT)
        server = self.server
        expect = Expectation(
            user_nkey=pending.user_nkey,
            server_id=server.server_id,
            target=target,
            lookup_account=server.resolve_account
            if target.operator_mode
            else server.lookup_account,
            issuers_of=self._issuers_of,
        )
        placed, user = check_response(claims, expect, was_sealed=was_sealed)
        from .jwt_auth import permissions_from_claims

        user_nats = user.get("nats") or {}
        connect = self.as_seen(pending.client.connect_opts or {})
        result = AuthResult(
            user=str(user.get("name") or raw_auth_user(connect) or pending.user_nkey),
            account=placed.name,
            permissions=permissions_from_claims(user_nats),
            jwt_claims=user,
            connection_types=user_nats.get("allowed_connection_types") or None,
        )
        return self.admitting(result, target)

    def _issuers_of(self, key: str) -> set[str]:
        from .jwt_auth import JwtAuthenticator

        authenticator = self.server.authenticator
        claims = authenticator.account(key) if isinstance(authenticator, JwtAuthenticator) else None
        return {key} | (claims.signing_keys if claims is not None else set())

    def refuse(self, client: CalloutParty) -> None:
        """nats-server's authorization violation: the log line, -ERR, the close."""
        from .protocol import ERR_AUTH_VIOLATION, REASON_AUTH

        if client.closed:
            return
        opts = self.server.options
        connect = client.connect_opts or {}
        if (opts.trusted_operators or opts.trusted_keys) and not connect.get("user"):
            subject = _jwt_subject(connect)
            detail = f' - JWT User "{subject}"' if subject else ""
        elif opts.trusted_operators or opts.trusted_keys:
            detail = f' - User "{connect.get("user")}"'  # a sentinel with a user name
        elif opts.nkeys or any(a.nkey_users for a in opts.accounts.values()):
            detail = f' - Nkey "{connect.get("nkey") or ""}"'
        elif opts.users or any(a.users for a in opts.accounts.values()):
            detail = f' - User "{connect.get("user") or ""}"'
        else:
            detail = ""
        self.server.logger.error(f"{client.log_prefix} - authentication error{detail}")
        client.close_with_error(ERR_AUTH_VIOLATION, REASON_AUTH)
        self.server.flush_pending()


def _jwt_claim(connect: dict[str, Any], name: str) -> str:
    """A claim (`sub`, `name`) of the JWT a CONNECT carries ("" without one); it was
    verified by the time a callout is made."""
    token = connect.get("jwt")
    if not isinstance(token, str) or token.count(".") != 2:
        return ""
    body = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return ""
    return str(claims.get(name) or "") if isinstance(claims, dict) else ""


def _jwt_subject(connect: dict[str, Any]) -> str:
    return _jwt_claim(connect, "sub")


class PendingCallout:
    """One connection's request in flight: its reply subscription and its timer."""

    __slots__ = ("account", "client", "service", "sub", "target", "timer", "user_nkey")

    def __init__(
        self,
        service: AuthCalloutService,
        client: CalloutParty,
        account: Account,
        target: CalloutTarget,
        user_nkey: str,
    ) -> None:
        self.service = service
        self.client = client
        self.account = account
        self.target = target
        self.user_nkey = user_nkey
        self.sub: Subscription | None = None
        self.timer: Any = None

    def cancel(self) -> None:
        """Forget the request: the client went away before the answer."""
        self._forget()

    def on_reply(
        self,
        sub: Subscription,
        publisher: object,
        subject: bytes,
        reply: bytes | None,
        headers: bytes,
        payload: bytes,
    ) -> None:
        if self.sub is not sub:
            return
        self._forget()
        service = self.service
        # Called while the service's message is routed: act once that is done.
        try:
            result = service.decide(self, payload)
        except CalloutRefused as e:
            service.server.loop.call_soon(self._refuse, str(e))
            return
        except Exception:  # a bug refuses this client, never the service's connection
            service.server.logger.error(
                f"Error processing auth callout response:\n{traceback.format_exc()}"
            )
            service.server.loop.call_soon(self._refuse, "Auth callout response not processed")
            return
        service.server.loop.call_soon(self.client.finish_callout, result)

    def on_timeout(self) -> None:
        self.timer = None
        if self.sub is None:
            return
        self._forget()
        service = self.service
        service.server.logger.debug(
            f'Authorization callout response not received in time on account "{self.account.name}"'
        )
        service.refuse(self.client)

    def _refuse(self, reason: str) -> None:
        self.service.refuse(self.client)
        self.service.server.logger.warn(reason)

    def _forget(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        sub, self.sub = self.sub, None
        if sub is not None and sub.client is not None:
            sub.client.remove_subscription(sub)


def client_tls(client: CalloutParty) -> dict[str, Any] | None:
    """`client_tls` of a request: the TLS version, cipher and the client's certificate (under
    `verified_chains` when the server verified it)."""
    import ssl

    from .tls import connection_tls_info

    transport = client.transport
    ssl_obj = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_obj is None:
        return None
    version, cipher = connection_tls_info(transport)
    out: dict[str, Any] = {"version": version, "cipher": cipher}
    der = ssl_obj.getpeercert(binary_form=True)
    if der:
        pem = ssl.DER_cert_to_PEM_cert(der)
        if client.verifies_peer:
            out["verified_chains"] = [[pem]]
        else:
            out["certs"] = [pem]
    return out
