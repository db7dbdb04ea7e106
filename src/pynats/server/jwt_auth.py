"""Operator (JWT) mode: decentralized authentication with operator/account/user JWTs."""

from __future__ import annotations

import os


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
