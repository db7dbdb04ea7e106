"""What nats-server refuses in a config's imports before anything is wired: an import of an
account that does not exist, one that no export authorizes, a stream imported twice, and an
import that would form a cycle between accounts (a message or request that would travel from
account to account forever).

nats-server adds the imports one at a time (every stream import, then every service import)
and checks each against the imports added before it, so a cycle is reported on the import that
closes it. It walks its accounts in map order, which varies from run to run; we walk them in the
order of the file, so that a config always gets the same answer.

The cycle rules, as nats-server applies them:
- a service import into account A of the subject S (local name L) from account D forms a cycle
  when D, or an account D imports from, has a service import whose exported subject collides
  with L and that comes from an account already on the path (A first);
- a stream import into A of S from D forms a cycle when D exports S and has a stream import
  whose local subject collides with S from an account on the path, the same walk onwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .accounts import AccountConfig, ImportConfig, find_export_in
from .conf.units import go_quote
from .subjects import is_subset_match, subjects_collide

MAX_CYCLE_SEARCH_DEPTH = 1024  # accounts on one path before the search gives up
CYCLE = "import forms a cycle"
DEPTH = "search cycle depth exhausted"


@dataclass
class _Imported:
    """An import already added: whose it is, what it carries and what it is called here."""

    exporter: str
    subject: str  # in the exporting account
    local: str  # in the importing account


@dataclass
class _Imports:
    streams: dict[str, list[_Imported]] = field(default_factory=dict)
    services: dict[str, list[_Imported]] = field(default_factory=dict)


def import_errors(accounts: dict[str, AccountConfig]) -> list[str]:
    """nats-server's error for each import it would refuse, in the order it reports them."""
    added = _Imports()
    errors: list[str] = []
    for kind in ("stream", "service"):
        for account in accounts.values():
            for imp in account.imports:
                if imp.kind != kind:
                    continue
                problem = _check(accounts, added, account.name, imp)
                if problem:
                    errors.append(problem)
    return errors


def _check(
    accounts: dict[str, AccountConfig], added: _Imports, importer: str, imp: ImportConfig
) -> str:
    exporter = accounts.get(imp.account)
    if exporter is None:
        return f'"{imp.account}" account not defined for {imp.kind} import'
    what = f"Error adding {imp.kind} import {go_quote(imp.subject)}"
    if find_export_in(exporter.exports, imp.kind, imp.subject, importer) is None:
        return f"{what}: {imp.kind} import not authorized"
    if imp.kind == "stream":
        mine = added.streams.setdefault(importer, [])
        if reason := _stream_cycle(accounts, added, imp.account, imp.subject, {importer}):
            return f"{what}: {reason}"
        if any(i.exporter == imp.account and i.subject == imp.subject for i in mine):
            return f"{what}: stream import already exists"
        mine.append(_Imported(imp.account, imp.subject, _stream_local(imp)))
        return ""
    local = imp.to or imp.subject
    if reason := _service_cycle(added, imp.account, local, {importer}):
        return f"{what}: {reason}"
    added.services.setdefault(importer, []).append(_Imported(imp.account, imp.subject, local))
    return ""


def _stream_local(imp: ImportConfig) -> str:
    if imp.prefix:
        return imp.prefix.rstrip(".") + "." + imp.subject
    return imp.to or imp.subject


def _service_cycle(added: _Imports, account: str, subject: str, visited: set[str]) -> str:
    """Does a request for `subject` in `account` travel back to an account on the path?"""
    if len(visited) >= MAX_CYCLE_SEARCH_DEPTH:
        return DEPTH
    for imp in added.services.get(account, []):
        if not subjects_collide(subject.encode(), imp.subject.encode()):
            continue
        if imp.exporter in visited:
            return CYCLE
        visited.add(account)
        if is_subset_match(imp.local.encode(), subject.encode()):
            subject = imp.local
        if reason := _service_cycle(added, imp.exporter, subject, visited):
            return reason
    return ""


def _stream_cycle(
    accounts: dict[str, AccountConfig],
    added: _Imports,
    account: str,
    subject: str,
    visited: set[str],
) -> str:
    """Do messages on `subject` exported by `account` come back from an account on the path?"""
    if len(visited) >= MAX_CYCLE_SEARCH_DEPTH:
        return DEPTH
    exports = accounts[account].exports
    if not any(
        e.kind == "stream" and is_subset_match(subject.encode(), e.subject.encode())
        for e in exports
    ):
        return ""
    for imp in added.streams.get(account, []):
        if not subjects_collide(subject.encode(), imp.local.encode()):
            continue
        if imp.exporter in visited:
            return CYCLE
        visited.add(account)
        if is_subset_match(imp.local.encode(), subject.encode()):
            subject = imp.local
        if reason := _stream_cycle(accounts, added, imp.exporter, subject, visited):
            return reason
    return ""
