"""Authentication: who is this connection, and which account does it belong to?

The server asks `Authenticator.authenticate` once per CONNECT. Every failure looks the same to
the client (`-ERR 'Authorization Violation'`), so the reason is only returned for the log.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from .options import Options

BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2x$", "$2y$")


@dataclass
class AuthResult:
    user: str = ""
    account: str = ""
    permissions: dict[str, Any] | None = None


def secret_matches(given: str, expected: str) -> bool:
    """Compare a password or token; `expected` may be a bcrypt hash."""
    if expected.startswith(BCRYPT_PREFIXES):
        import bcrypt

        try:
            return bcrypt.checkpw(given.encode(), expected.encode())
        except ValueError:
            return False
    return hmac.compare_digest(given.encode(), expected.encode())


class Authenticator:
    """Single user/password or token, from flags or `authorization {}`."""

    def __init__(self, options: Options) -> None:
        self.options = options

    @property
    def required(self) -> bool:
        return self.options.auth_required() and not self.options.no_auth_user

    def authenticate(self, connect: dict[str, Any]) -> tuple[AuthResult | None, str]:
        """Returns (result, reason): result is None when the client must be refused."""
        opts = self.options
        if not opts.auth_required():
            return AuthResult(), ""
        if opts.authorization:
            token = connect.get("auth_token")
            if isinstance(token, str) and secret_matches(token, opts.authorization):
                return AuthResult(), ""
            return None, "invalid token" if token else "no token provided"
        if opts.username:
            user = connect.get("user")
            password = connect.get("pass")
            if (
                isinstance(user, str)
                and isinstance(password, str)
                and hmac.compare_digest(user.encode(), opts.username.encode())
                and secret_matches(password, opts.password)
            ):
                return AuthResult(user=user), ""
            return None, "invalid user/password" if user else "no user provided"
        return None, "no credentials"
