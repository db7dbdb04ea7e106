"""Subject filters as the store sees them: `str` subjects, `*` and `>` wildcards.

The server has its own, faster matcher for `bytes` subjects; the store keeps this small one so
that it depends on nothing above it. Filters are tokenised once and cached, because the same
few filters (a consumer's, a purge's) are matched against many subjects.
"""

from __future__ import annotations

from functools import lru_cache

FULL_WILDCARD = ">"
TOKEN_WILDCARD = "*"


def is_literal(subject_filter: str) -> bool:
    """True when the filter names exactly one subject (no `*` or `>` token)."""
    return _tokens(subject_filter) is None


def matches_all(subject_filter: str | None) -> bool:
    """True for the filters that select every message (`None`, empty, `>`)."""
    return not subject_filter or subject_filter == FULL_WILDCARD


def subject_matches(subject_filter: str, subject: str) -> bool:
    """Does the literal `subject` fall under `subject_filter` (NATS wildcard rules)?"""
    tokens = _tokens(subject_filter)
    if tokens is None:
        return subject_filter == subject
    parts = subject.split(".")
    last = len(tokens) - 1
    for i, token in enumerate(tokens):
        if token == FULL_WILDCARD and i == last:
            return len(parts) > i
        if i >= len(parts):
            return False
        if token != TOKEN_WILDCARD and token != parts[i]:
            return False
    return len(parts) == len(tokens)


@lru_cache(maxsize=1024)
def _tokens(subject_filter: str) -> tuple[str, ...] | None:
    """The filter's tokens, or None when it is literal (compared as a whole string)."""
    tokens = tuple(subject_filter.split("."))
    if TOKEN_WILDCARD in tokens or FULL_WILDCARD in tokens:
        return tokens
    return None
