"""Exports and imports defined in account JWTs, wired as `accounts {}` blocks wire theirs.

An account JWT's `exports` become the account's `ExportConfig`s (public, or `token_req`
private ones with the activations they revoked); its `imports` become `ImportConfig`s wired by
imports.py, each only while the exporter allows it: a private export needs the import's
activation token, a JWT signed by the exporting account (or one of its signing keys, naming it
as `issuer_account`) whose subject is the importing account, of the import's kind, covering its
subject, not expired and not revoked by the export.

An account's imports are wired when the server first uses the account (its exporters are
loaded for it, as nats-server looks them up), and wired again when its JWT changes, when the
JWT of an account it imports from changes (an export removed, an activation revoked) and when
one of its activations expires; nothing else is re-evaluated on the message path.

The JWT's `mappings` go with it the same way: read when the account is first used, replaced
when its JWT changes (mappings.from_claims), announced to its leaf connections.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from pynats.gotime import NS_PER_S

from .accounts import Account, ExportConfig, ImportConfig, find_export
from .imports import unwire_import, wire_import
from .jwt_auth import JwtAuthenticator, JwtError, claim_type, decode_jwt
from .mappings import from_claims as mappings_from_claims
from .subjects import is_subset_match

if TYPE_CHECKING:
    from .server import Server

RESPONSE_TYPES = {"singleton": "Singleton", "stream": "Stream", "chunked": "Chunked"}
DEFAULT_RESPONSE_THRESHOLD_S = 120.0


def exports_from_claims(nats_claims: dict[str, Any]) -> list[ExportConfig]:
    """The `exports` of an account JWT as the runtime's export model."""
    exports: list[ExportConfig] = []
    for raw in nats_claims.get("exports") or []:
        if not isinstance(raw, dict) or raw.get("type") not in ("stream", "service"):
            continue
        subject = raw.get("subject")
        if not isinstance(subject, str) or not subject:
            continue
        threshold_ns = raw.get("response_threshold") or 0
        revocations = raw.get("revocations") or {}
        exports.append(
            ExportConfig(
                kind=raw["type"],
                subject=subject,
                response_type=RESPONSE_TYPES.get(
                    str(raw.get("response_type", "")).lower(), "Singleton"
                ),
                response_threshold=(
                    threshold_ns / NS_PER_S
                    if isinstance(threshold_ns, int) and threshold_ns > 0
                    else DEFAULT_RESPONSE_THRESHOLD_S
                ),
                token_required=bool(raw.get("token_req")),
                revocations={str(k): int(v) for k, v in revocations.items()}
                if isinstance(revocations, dict)
                else {},
                account_token_position=int(raw.get("account_token_position") or 0),
            )
        )
    return exports


class ClaimImport:
    """One `imports` entry of an account JWT: what imports.py wires, and its activation."""

    __slots__ = ("config", "import_subject", "raw", "token")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        kind = raw["type"]
        subject = str(raw.get("subject") or "")
        to = str(raw.get("to") or "")
        local = str(raw.get("local_subject") or "")
        self.token = str(raw.get("token") or "")
        if kind == "stream":
            # `to` is the older spelling of a prefix; `local_subject` renames
            self.config = ImportConfig("stream", raw["account"], subject, to=local, prefix=to)
            self.import_subject = subject
        elif local:
            local = ".".join("*" if t[:1] == "$" else t for t in local.split("."))
            self.config = ImportConfig("service", raw["account"], subject, to=local)
            self.import_subject = subject
        else:
            # the older form: `subject` is the importer's, `to` the exporter's
            remote = to or subject
            self.config = ImportConfig("service", raw["account"], remote, to=subject)
            self.import_subject = remote
        self.config.share = raw.get("share") is True


def imports_from_claims(nats_claims: dict[str, Any]) -> list[ClaimImport]:
    imports: list[ClaimImport] = []
    for raw in nats_claims.get("imports") or []:
        if (
            isinstance(raw, dict)
            and raw.get("type") in ("stream", "service")
            and isinstance(raw.get("account"), str)
            and raw.get("subject")
        ):
            imports.append(ClaimImport(raw))
    return imports


def is_revoked(revocations: dict[str, int], key: str, issued_at: int) -> bool:
    """nats-server's isRevoked: revoked for `key` (or `*`) at or after it was issued."""
    at = revocations.get(key)
    if at is not None and at >= issued_at:
        return True
    at = revocations.get("*")
    return at is not None and at >= issued_at


class AccountLinks:
    """Keeps the imports and exports of the accounts in use what their JWTs say."""

    def __init__(self, server: Server, auth: JwtAuthenticator) -> None:
        self.server = server
        self.auth = auth
        auth.links = self
        server.add_account_hook(self.account_added)
        for account in list(server.accounts.values()):
            self.account_added(account)

    def account_added(self, account: Account) -> None:
        claims = self.auth.account(account.name)
        if claims is None:
            return
        account.exports = exports_from_claims(claims.nats)
        self._map(account, claims.nats)
        self._wire(account)

    def claims_changed(self, account: Account) -> None:
        """`account` took new claims: its exports and imports, and the imports of every
        account in use that imports from it, follow."""
        claims = self.auth.accounts.get(account.name)
        account.exports = exports_from_claims(claims.nats) if claims is not None else []
        self._map(account, claims.nats if claims is not None else {})
        self._wire(account)
        for other in list(self.server.accounts.values()):
            other_claims = self.auth.accounts.get(other.name)
            if other is account or other_claims is None:
                continue
            if any(
                i.config.account == account.name for i in imports_from_claims(other_claims.nats)
            ):
                self._wire(other)

    def _map(self, account: Account, nats_claims: dict[str, Any]) -> None:
        mappings = mappings_from_claims(nats_claims.get("mappings"))
        if not mappings and not account.claim_mappings:
            return
        account.claim_mappings = mappings
        self.server.compile_mappings(account)
        if self.server.leafnodes is not None:
            self.server.leafnodes.mappings_changed(account)

    def _wire(self, importer: Account) -> None:
        for wired in importer.claim_imports:
            unwire_import(wired)
        importer.claim_imports.clear()
        claims = self.auth.accounts.get(importer.name)
        if claims is None:
            return
        logger = self.server.logger
        for imp in imports_from_claims(claims.nats):
            cfg = imp.config
            exporter = self.server.accounts.get(cfg.account)
            if exporter is None and self.auth.account(cfg.account) is not None:
                exporter = self.server.ensure_account(cfg.account)
            if exporter is None:
                logger.error(
                    f"Can't locate account [{cfg.account}] for import of "
                    f"[{imp.raw.get('subject')}] {cfg.kind} (err=missing account)"
                )
                continue
            expiry: list[float] = []
            activated = functools.partial(self._activation_valid, exporter, importer, imp, expiry)
            export = find_export(exporter, cfg.kind, cfg.subject, importer.name, activated)
            if export is None:
                logger.debug(
                    f"Error adding {cfg.kind} import to account [{importer.name}]: "
                    f"{cfg.kind} import not authorized"
                )
                continue
            importer.claim_imports.append(wire_import(self.server, exporter, importer, cfg, export))
            if expiry:
                delay = max(expiry[0] - time.time(), 0.0)
                self.server.loop.call_later(delay, self._activation_expired, importer)

    def _activation_expired(self, importer: Account) -> None:
        if self.server.accounts.get(importer.name) is importer:
            self._wire(importer)

    def _activation_valid(
        self,
        exporter: Account,
        importer: Account,
        imp: ClaimImport,
        expiry: list[float],
        export: ExportConfig,
    ) -> bool:
        """nats-server's checkActivation for the import's token and this export."""
        if not imp.token:
            return False
        try:
            act = decode_jwt(imp.token)
        except JwtError:
            return False
        if claim_type(act) != "activation":
            return False
        nats = act.get("nats") or {}
        issuer = act.get("iss", "")
        issuer_account = nats.get("issuer_account") or act.get("issuer_account") or ""
        if not (issuer == exporter.name or issuer_account == exporter.name):
            return False
        if act.get("sub") != importer.name or nats.get("kind") != imp.config.kind:
            return False
        act_subject = nats.get("subject")
        if not isinstance(act_subject, str) or not is_subset_match(
            imp.import_subject.encode(), act_subject.encode()
        ):
            return False
        if issuer_account:
            exporter_claims = self.auth.accounts.get(exporter.name)
            if exporter_claims is None or issuer not in exporter_claims.signing_keys:
                return False
        now = time.time()
        exp = act.get("exp") or 0
        if isinstance(exp, (int, float)) and exp > 0:
            if exp <= now:
                return False
            expiry.append(float(exp))
        nbf = act.get("nbf") or 0
        if isinstance(nbf, (int, float)) and nbf > now:
            return False
        return not is_revoked(export.revocations, importer.name, int(act.get("iat") or 0))
