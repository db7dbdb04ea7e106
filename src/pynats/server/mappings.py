"""Subject mappings (`mappings {}` at the top level and in accounts): a message published on
a mapped subject is routed as if it had been published on the destination.

A mapping's source is a subject, wildcards allowed; its destinations are subject transforms
(subject_transform.py) with a weight in percent. One destination of weight 100 always maps;
weighted ones split traffic at random (a canary, an A/B test); when the weights add up to less
than 100 the rest keeps its subject. Destinations may be scoped to a cluster: a server of that
cluster uses those instead. Mappings are tried in the order written; the first whose source
matches decides. Publish permissions apply to the subject as published, before mapping.

An account JWT carries them too (`mappings`: source -> [{subject, weight, cluster}], a weight
of 0 meaning 100): `from_claims` reads them as nats-server's UpdateAccountClaims adds them, one
AddWeightedMappings each, a mapping it would refuse left out.

They apply where nats-server applies them (its parser, for CLIENT and LEAF connections): to
what clients publish and to what a leaf connection brings into its account, never to what
arrives over a route (the sending server mapped it already). Their sources are interest a
leaf connection announces, so a leaf sends what the account maps (leafnodes.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .subject_transform import SubjectTransform, TransformError
from .subjects import is_valid_subject, subject_matches


@dataclass
class MappingDest:
    destination: str
    weight: int  # percent
    cluster: str = ""


@dataclass
class MappingConfig:
    source: str
    dests: list[MappingDest] = field(default_factory=list)


@dataclass
class _Compiled:
    source: bytes
    literal: bool
    choices: list[tuple[int, SubjectTransform]]  # (cumulative weight, transform)


class Mappings:
    """An account's mappings, compiled; `apply` is on the publish path."""

    def __init__(self, configs: list[MappingConfig], cluster: str = "") -> None:
        self._order: list[_Compiled] = []  # the first whose source matches decides
        self.sources = [cfg.source.encode() for cfg in configs]
        for cfg in configs:
            dests = [d for d in cfg.dests if d.cluster == cluster and cluster] or [
                d for d in cfg.dests if not d.cluster
            ]
            total = 0
            choices = []
            for dest in dests:
                total += dest.weight
                choices.append((total, SubjectTransform(cfg.source, dest.destination)))
            source = cfg.source.encode()
            literal = "*" not in cfg.source and ">" not in cfg.source.split(".")
            compiled = _Compiled(source, literal, choices)
            self._order.append(compiled)

    def apply(self, subject: bytes) -> bytes:
        """The subject to route (the same object when no mapping applies)."""
        for candidate in self._order:
            if candidate.source == subject or (
                not candidate.literal and subject_matches(candidate.source, subject)
            ):
                found = candidate
                break
        else:
            return subject
        choices = found.choices
        if not choices:
            return subject
        transform = _pick(choices)
        if transform is None:  # the share of the 100% no destination has
            return subject
        mapped = transform.apply(subject.decode())
        return mapped.encode() if mapped else subject


def _pick(choices: list[tuple[int, SubjectTransform]]) -> SubjectTransform | None:
    """A destination at random by weight (cumulative percentages)."""
    if choices[0][0] >= 100:
        return choices[0][1]
    draw = random.randrange(100)
    return next((transform for upto, transform in choices if draw < upto), None)


def from_claims(raw: Any) -> list[MappingConfig]:
    """The `mappings` of account claims, in the order the JWT lists them; a later entry for a
    source already seen replaces it in place (nats-server's AddWeightedMappings)."""
    if not isinstance(raw, dict):
        return []
    out: dict[str, MappingConfig] = {}
    for source, entries in raw.items():
        if not isinstance(source, str) or not isinstance(entries, list):
            continue
        dests = []
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            weight = entry.get("weight") or 0
            dests.append(
                MappingDest(
                    str(entry.get("subject") or ""),
                    int(weight) if isinstance(weight, int) and weight > 0 else 100,
                    str(entry.get("cluster") or ""),
                )
            )
        if not refusal(source, dests):
            out[source] = MappingConfig(source, dests)
    return list(out.values())


def refusal(source: str, dests: list[MappingDest]) -> str:
    """Why nats-server's AddWeightedMappings refuses this mapping, or ""."""
    if not is_valid_subject(source.encode()):
        return "invalid subject"
    seen: set[str] = set()
    totals: dict[str, int] = {}
    for dest in dests:
        if dest.destination in seen:
            return f"duplicate entry for {dest.destination!r}"
        seen.add(dest.destination)
        if dest.weight > 100:
            return "individual weights need to be <= 100"
        totals[dest.cluster] = totals.get(dest.cluster, 0) + dest.weight
        if totals[dest.cluster] > 100:
            return "total weight needs to be <= 100"
        tokens = dest.destination.split(".")
        if not dest.destination or "*" in tokens or (">" in tokens and not source.endswith(">")):
            return "invalid subject"
        try:
            SubjectTransform(source, dest.destination)
        except TransformError as e:
            return str(e)
    return ""


def compiled(configs: list[MappingConfig], cluster: str = "") -> Mappings | None:
    """What an account keeps: None when it has no mappings (the publish path checks that)."""
    return Mappings(configs, cluster) if configs else None
