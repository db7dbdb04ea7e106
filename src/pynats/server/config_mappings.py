"""`mappings {}` (alias `maps`), at the top level and in an account: each key a source
subject, each value a destination - a string, or `{destination, weight, cluster}` entries
(`dest` also names it; a weight is a percentage, `80%` or `80`) - read as nats-server reads
them, with its error texts."""

from __future__ import annotations

from typing import Any

from .conf import ConfigMap
from .conf.tree import Position
from .config_reader import Reader
from .mappings import MappingConfig, MappingDest
from .subject_transform import SubjectTransform, TransformError
from .subjects import is_valid_subject


def parse_mappings(r: Reader, m: ConfigMap, key: str) -> list[MappingConfig]:
    block = m[key]
    out: list[MappingConfig] = []
    if not isinstance(block, ConfigMap):
        r.error(m, key, f"Expected a mappings map, got {type(block).__name__}")
        return out
    for source in block:
        value = block[source]
        if not is_valid_subject(source.encode()):
            where = m.position(key)  # nats-server names the block's line, column 0
            start = Position(where.file, where.line, 0) if where is not None else None
            r.error_at(start, f'Subject "{source}" is not a valid subject')
            continue
        dests = _destinations(r, block, source, value)
        if dests is None:
            continue
        if _over_100(dests):
            r.error(
                block,
                source,
                f'Error adding mapping for "{source}" : total weight needs to be <= 100',
            )
            continue
        bad = next((text for d in dests if (text := _problem(source, d.destination))), None)
        if bad is not None:
            r.error(block, source, bad)
            continue
        out.append(MappingConfig(source, dests))
    return out


def _destinations(r: Reader, block: ConfigMap, source: str, value: Any) -> list[MappingDest] | None:
    if isinstance(value, str):
        return [MappingDest(value, 100)]
    entries = [value] if isinstance(value, ConfigMap) else value
    if not isinstance(entries, list) or not all(isinstance(e, ConfigMap) for e in entries):
        r.error(block, source, "Expected an entry for the mapping destination")
        return None
    dests = []
    for entry in entries:
        lowered = {k.lower(): entry[k] for k in entry}
        dest = str(lowered.get("destination", lowered.get("dest", "")))
        weight = _weight(lowered.get("weight"))
        if weight is None:
            r.error(block, source, f'Missing weight for mapping destination "{dest}"')
            return None
        dests.append(MappingDest(dest, weight, str(lowered.get("cluster", ""))))
    return dests


def _over_100(dests: list[MappingDest]) -> bool:
    """The weights add up to over 100% (each cluster's scoped destinations on their own)."""
    totals: dict[str, int] = {}
    for dest in dests:
        totals[dest.cluster] = totals.get(dest.cluster, 0) + dest.weight
    return any(total > 100 for total in totals.values())


def _weight(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    text = str(value).strip().removesuffix("%")
    return int(text) if text.isdigit() else None


def _problem(source: str, dest: str) -> str | None:
    """nats-server's complaint about a destination, or None."""
    prefix = f'Error adding mapping for "{source}" to "{dest}" : '
    tokens = dest.split(".")
    if "*" in tokens or (">" in tokens and not source.endswith(">")):
        return prefix + "invalid subject"
    if not dest or any(c in dest for c in " \t\r\n"):
        return prefix + "invalid mapping destination: invalid transform"
    try:
        SubjectTransform(source, dest)
    except TransformError as e:
        # nats-server's mapping error names the index too
        return prefix + str(e) + (f": [{e.index}]" if e.index is not None else "")
    return None
