"""Subject mappings (`mappings {}` at the top level and in accounts): a message published on
a mapped subject is routed as if it had been published on the destination.

A mapping's source is a subject, wildcards allowed; its destinations are subject transforms
(subject_transform.py) with a weight in percent. One destination of weight 100 always maps;
weighted ones split traffic at random (a canary, an A/B test); when the weights add up to less
than 100 the rest keeps its subject. Destinations may be scoped to a cluster: a server of that
cluster uses those instead. Mappings are tried in the order written; the first whose source
matches decides. Publish permissions apply to the subject as published, before mapping.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .subject_transform import SubjectTransform
from .subjects import subject_matches


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


def compiled(configs: list[MappingConfig], cluster: str = "") -> Mappings | None:
    """What an account keeps: None when it has no mappings (the publish path checks that)."""
    return Mappings(configs, cluster) if configs else None
