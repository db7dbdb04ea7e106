"""Make operator, account and user JWTs (and .creds files) for operator-mode tests.

Written from the JWT v2 format the NATS tools produce: a JSON header and claims, base64url
without padding, signed with the issuer's ed25519 nkey. `v1=True` makes the older format that
existing operators still hold: the claim type at the top level, `"alg":"ed25519"`, and the
signature over the claims part alone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class Identity:
    seed: bytes
    public_key: str

    @classmethod
    def new(cls, prefix: int) -> Identity:
        seed = nkeys.encode_seed(os.urandom(32), prefix)
        return cls(seed, nkeys.from_seed(seed).public_key.decode())

    def sign(self, data: bytes) -> bytes:
        return nkeys.from_seed(self.seed).sign(data)


def operator() -> Identity:
    return Identity.new(nkeys.PREFIX_BYTE_OPERATOR)


def account() -> Identity:
    return Identity.new(nkeys.PREFIX_BYTE_ACCOUNT)


def user() -> Identity:
    return Identity.new(nkeys.PREFIX_BYTE_USER)


def encode(
    issuer: Identity,
    subject: str,
    name: str,
    nats: dict[str, Any],
    *,
    v1: bool = False,
    **extra: Any,
) -> str:
    claims: dict[str, Any] = {
        "iat": int(time.time()),
        "iss": issuer.public_key,
        "name": name,
        "sub": subject,
        **extra,
    }
    if v1:
        body_claims = {k: v for k, v in nats.items() if k != "type"}
        claims.update({"type": nats["type"], "nats": body_claims})
    else:
        claims["nats"] = {"version": 2, **nats}
    claims["jti"] = _b64(hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest())[:52]
    alg = "ed25519" if v1 else "ed25519-nkey"
    header = _b64(json.dumps({"typ": "jwt" if v1 else "JWT", "alg": alg}).encode())
    body = _b64(json.dumps(claims).encode())
    signed = body if v1 else f"{header}.{body}"
    signature = _b64(issuer.sign(signed.encode()))
    return f"{header}.{body}.{signature}"


def operator_jwt(op: Identity, name: str = "OP", *, v1: bool = False) -> str:
    return encode(op, op.public_key, name, {"type": "operator"}, v1=v1)


def account_jwt(
    op: Identity,
    acc: Identity,
    name: str,
    limits: dict[str, Any] | None = None,
    *,
    v1: bool = False,
    **nats_extra: Any,
) -> str:
    """`nats_extra`: more account claims (`authorization` for an auth callout, ...)."""
    base_limits = {
        "subs": -1,
        "data": -1,
        "payload": -1,
        "imports": -1,
        "exports": -1,
        "wildcards": True,
        "conn": -1,
        "leaf": -1,
    }
    base_limits.update(limits or {})
    nats = {"type": "account", "limits": base_limits, **nats_extra}
    return encode(op, acc.public_key, name, nats, v1=v1)


def user_jwt(
    acc: Identity,
    usr: Identity,
    name: str,
    permissions: dict[str, Any] | None = None,
    *,
    v1: bool = False,
    **extra: Any,
) -> str:
    nats: dict[str, Any] = {
        "type": "user",
        "subs": -1,
        "data": -1,
        "payload": -1,
        "pub": {},
        "sub": {},
    }
    nats.update(permissions or {})
    return encode(acc, usr.public_key, name, nats, v1=v1, **extra)


def scoped_user_jwt(
    signer: Identity, acc: Identity, usr: Identity, name: str, **nats_extra: Any
) -> str:
    """A user signed by one of its account's scoped signing keys: no permissions or limits of
    its own (the key's template gives them), `issuer_account` naming the account."""
    nats = {"type": "user", "issuer_account": acc.public_key, **nats_extra}
    return encode(signer, usr.public_key, name, nats)


def activation_jwt(
    issuer: Identity,
    importer: str,
    subject: str,
    kind: str,
    *,
    issuer_account: str = "",
    **extra: Any,
) -> str:
    """An activation token: the exporting account (or its signing key, with `issuer_account`)
    lets `importer` import `subject` of `kind` (`exp`, `iat` in `extra`)."""
    nats: dict[str, Any] = {"type": "activation", "subject": subject, "kind": kind}
    if issuer_account:
        nats["issuer_account"] = issuer_account
    return encode(issuer, importer, "activation", nats, **extra)


def delete_request(issuer: Identity, accounts: list[str], subject: str = "") -> str:
    """What `nsc delete account` sends to `$SYS.REQ.CLAIMS.DELETE`: a generic JWT naming the
    accounts, self-signed by the operator (or one of its signing keys)."""
    nats = {"type": "generic", "accounts": accounts}
    return encode(issuer, subject or issuer.public_key, "delete", nats)


def write_creds(path: Path, jwt: str, usr: Identity) -> Path:
    path.write_text(
        "-----BEGIN NATS USER JWT-----\n"
        f"{jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{usr.seed.decode()}\n"
        "------END USER NKEY SEED------\n"
    )
    return path


# -- auth callout ----------------------------------------------------------------------------
#
# What a callout service needs: read the server's `authorization_request` (checking that the
# server signed it), answer with an `authorization_response` signed by the callout issuer, and,
# with `xkey`, open and seal the messages with curve keys (NaCl box, `xkv1` framing).

PREFIX_BYTE_CURVE = 23 << 3  # 'X'
XKEY_VERSION = b"xkv1"


def _public_key_text(prefix: int, raw: bytes) -> str:
    body = bytes([prefix]) + raw
    body += nkeys.crc16_checksum(body)
    return base64.b32encode(body).decode().rstrip("=")


def _public_key_raw(text: str) -> bytes:
    raw = base64.b32decode(text + "=" * (-len(text) % 8))
    return raw[1:-2]


def decode_verified(token: str) -> dict[str, Any]:
    """The claims of a JWT whose signature by its `iss` key checks out (else ValueError)."""
    from nacl.signing import VerifyKey

    header, body, signature = token.split(".")
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    sig = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    VerifyKey(_public_key_raw(claims["iss"])).verify(f"{header}.{body}".encode(), sig)
    return claims


@dataclass
class CurveKey:
    """An xkey: a curve25519 key pair, its public half shown as `X...`."""

    private: bytes

    @classmethod
    def new(cls) -> CurveKey:
        return cls(os.urandom(32))

    @property
    def public_key(self) -> str:
        from nacl.public import PrivateKey

        return _public_key_text(PREFIX_BYTE_CURVE, bytes(PrivateKey(self.private).public_key))

    def seal(self, data: bytes, recipient: str) -> bytes:
        from nacl.public import Box, PrivateKey, PublicKey

        box = Box(PrivateKey(self.private), PublicKey(_public_key_raw(recipient)))
        return XKEY_VERSION + bytes(box.encrypt(data, os.urandom(24)))

    def open(self, data: bytes, sender: str) -> bytes:
        from nacl.public import Box, PrivateKey, PublicKey

        if not data.startswith(XKEY_VERSION):
            raise ValueError("not an xkv1 message")
        box = Box(PrivateKey(self.private), PublicKey(_public_key_raw(sender)))
        return bytes(box.decrypt(data[len(XKEY_VERSION) :]))


def curve() -> CurveKey:
    return CurveKey.new()


def authorization_response(
    issuer: Identity,
    user_nkey: str,
    server_id: str,
    *,
    user_jwt: str = "",
    error: str = "",
    issuer_account: str = "",
) -> str:
    """The callout service's answer: a user JWT (`user_jwt`) or an `error`, for `user_nkey` on
    the server `server_id`."""
    nats: dict[str, Any] = {"type": "authorization_response"}
    if user_jwt:
        nats["jwt"] = user_jwt
    if error:
        nats["error"] = error
    if issuer_account:
        nats["issuer_account"] = issuer_account
    return encode(issuer, user_nkey, "", nats, aud=server_id)
