"""Accounts: each one is its own subject space (its own Sublist), which is what isolates tenants.

A message published in one account never reaches another unless it is exported and imported
(the config/auth work adds exports and imports here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .sublist import Sublist

if TYPE_CHECKING:
    from .client import ClientConnection


class Account:
    __slots__ = (
        "clients",
        "is_system",
        "jetstream",
        "name",
        "sublist",
        "total_conns",
    )

    def __init__(self, name: str, *, cache_enabled: bool = True) -> None:
        self.name = name
        self.sublist = Sublist(cache_enabled=cache_enabled)
        self.clients: set[ClientConnection] = set()
        self.is_system = False
        self.total_conns = 0
        # Set by JetStream when it is enabled for this account.
        self.jetstream: Any = None

    def __repr__(self) -> str:
        return f"<Account {self.name}>"
