"""Operator (JWT) mode: decentralized authentication with operator, account and user JWTs.

Trust flows down a chain of ed25519 signatures: the operator JWT (configured with
`operator:`) names the keys that may sign accounts; each account JWT (given to the MEMORY
resolver with `resolver_preload`) names the keys that may sign its users; a client presents
its user JWT in CONNECT and proves it holds the user's key by signing the INFO nonce (the
`.creds` file the official clients read holds both). Permissions and limits come from the
JWTs' `nats` claims.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pynats.gotime import NS_PER_S

from .auth import (
    DEFAULT_RESPONSE_EXPIRES_S,
    DEFAULT_RESPONSE_MAX_MSGS,
    AuthResult,
    Permissions,
    ResponsePermission,
    SubjectPermission,
    verify_nonce_signature,
)
from .nkey import (
    PREFIX_ACCOUNT,
    PREFIX_OPERATOR,
    PREFIX_USER,
    InvalidNkey,
    decode_public_key,
    verify_signature,
)

if TYPE_CHECKING:
    from .options import Options


class JwtError(ValueError):
    pass


def read_operator_jwt(value: str) -> str:
    """An operator JWT given inline or as a path to a file holding it."""
    text = value.strip()
    if text.startswith("eyJ"):
        return text
    if os.path.exists(text):
        with open(text) as f:
            for line in f:
                line = line.strip()
                if line.startswith("eyJ"):
                    return line
        raise ValueError(f"no JWT found in {text}")
    raise ValueError(f"not a JWT or a readable file: {text}")


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode_jwt(token: str) -> dict[str, Any]:
    """The claims of `token`, after checking it is signed by its own `iss` key."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JwtError("not a JWT")
    try:
        header = json.loads(_b64decode(parts[0]))
        claims = json.loads(_b64decode(parts[1]))
        signature = _b64decode(parts[2])
    except (ValueError, TypeError):
        raise JwtError("malformed JWT") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JwtError("malformed JWT")
    if str(header.get("alg", "")).lower() not in ("ed25519-nkey", "ed25519"):
        raise JwtError(f"unsupported algorithm {header.get('alg')!r}")
    issuer = claims.get("iss")
    if not isinstance(issuer, str):
        raise JwtError("JWT without issuer")
    if not verify_signature(issuer, f"{parts[0]}.{parts[1]}".encode(), signature):
        raise JwtError("JWT signature is not valid")
    return claims


def _key_prefix(key: str) -> int:
    try:
        return decode_public_key(key)[0]
    except InvalidNkey:
        return -1


def _signing_keys(nats_claims: dict[str, Any]) -> set[str]:
    keys: set[str] = set()
    for entry in nats_claims.get("signing_keys") or []:
        if isinstance(entry, str):
            keys.add(entry)
        elif isinstance(entry, dict) and isinstance(entry.get("key"), str):
            keys.add(entry["key"])
    return keys


def _expired(claims: dict[str, Any], now: float) -> bool:
    exp = claims.get("exp")
    return isinstance(exp, (int, float)) and exp > 0 and exp < now


def _subject_permission(raw: Any) -> SubjectPermission | None:
    if not isinstance(raw, dict):
        return None
    allow = raw.get("allow")
    deny = raw.get("deny")
    if not allow and not deny:
        return None
    return SubjectPermission(allow=list(allow) if allow else None, deny=list(deny or []))


def permissions_from_claims(nats_claims: dict[str, Any]) -> Permissions | None:
    perms = Permissions(
        publish=_subject_permission(nats_claims.get("pub")),
        subscribe=_subject_permission(nats_claims.get("sub")),
    )
    resp = nats_claims.get("resp")
    if isinstance(resp, dict):
        ttl_ns = resp.get("ttl") or 0
        perms.response = ResponsePermission(
            max_msgs=int(resp.get("max") or DEFAULT_RESPONSE_MAX_MSGS),
            expires=ttl_ns / NS_PER_S if ttl_ns else DEFAULT_RESPONSE_EXPIRES_S,
        )
    return None if perms.is_empty() else perms


@dataclass
class AccountClaims:
    public_key: str
    name: str
    signing_keys: set[str]
    limits: dict[str, Any] = field(default_factory=dict)
    revocations: dict[str, int] = field(default_factory=dict)
    expires: float = 0.0


class JwtAuthenticator:
    """Authenticates CONNECTs carrying user JWTs against the trusted operators."""

    needs_nonce = True
    required = True

    def __init__(self, options: Options) -> None:
        self.options = options
        self.trusted_keys: set[str] = set(options.trusted_keys)
        for token in options.trusted_operators:
            claims = decode_jwt(token)
            if _key_prefix(claims.get("sub", "")) != PREFIX_OPERATOR:
                raise JwtError("operator JWT subject is not an operator key")
            self.trusted_keys.add(claims["sub"])
            self.trusted_keys |= _signing_keys(claims.get("nats") or {})
        self.accounts: dict[str, AccountClaims] = {}
        for key, token in options.resolver_preload.items():
            self.add_account_jwt(token, expected=key)

    def add_account_jwt(self, token: str, expected: str | None = None) -> AccountClaims:
        claims = decode_jwt(token)
        subject = claims.get("sub", "")
        if expected is not None and subject != expected:
            raise JwtError(f"account JWT subject {subject} does not match {expected}")
        if _key_prefix(subject) != PREFIX_ACCOUNT:
            raise JwtError("account JWT subject is not an account key")
        if claims["iss"] not in self.trusted_keys:
            raise JwtError("account JWT not issued by a trusted operator")
        nats_claims = claims.get("nats") or {}
        account = AccountClaims(
            public_key=subject,
            name=claims.get("name") or subject,
            signing_keys=_signing_keys(nats_claims),
            limits=nats_claims.get("limits") or {},
            revocations={k: int(v) for k, v in (nats_claims.get("revocations") or {}).items()},
            expires=float(claims.get("exp") or 0),
        )
        self.accounts[subject] = account
        return account

    def knows_account(self, name: str) -> bool:
        return name in self.accounts

    def authenticate(
        self, connect: dict[str, Any], nonce: str = "", tls_identities: list[str] | None = None
    ) -> tuple[AuthResult | None, str]:
        token = connect.get("jwt")
        if not isinstance(token, str) or not token:
            return None, "no user JWT provided"
        try:
            claims = decode_jwt(token)
        except JwtError as e:
            return None, f"user JWT: {e}"
        user_key = claims.get("sub", "")
        if _key_prefix(user_key) != PREFIX_USER:
            return None, "user JWT subject is not a user key"
        nats_claims = claims.get("nats") or {}
        now = time.time()
        if _expired(claims, now):
            return None, "user JWT expired"
        issuer = claims["iss"]
        account_key = nats_claims.get("issuer_account") or issuer
        account = self.accounts.get(account_key)
        if account is None:
            return None, f"account {account_key} not found"
        if issuer != account_key and issuer not in account.signing_keys:
            return None, "user JWT not issued by its account"
        if account.expires and account.expires < now:
            return None, "account JWT expired"
        revoked_at = account.revocations.get(user_key) or account.revocations.get("*")
        if revoked_at is not None and int(claims.get("iat") or 0) <= revoked_at:
            return None, "user JWT revoked"
        if not nats_claims.get("bearer_token"):
            sig = connect.get("sig")
            if not isinstance(sig, str) or not verify_nonce_signature(user_key, nonce, sig):
                return None, "nonce signature not verified"
        return (
            AuthResult(
                user=user_key,
                account=account_key,
                permissions=permissions_from_claims(nats_claims),
                jwt_claims=claims,
            ),
            "",
        )

    def account_limits(self, account_key: str) -> dict[str, Any]:
        account = self.accounts.get(account_key)
        return account.limits if account is not None else {}
