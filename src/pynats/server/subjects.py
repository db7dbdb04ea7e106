"""Subject and token rules shared by every layer (core routing, permissions, JetStream).

Subjects are `bytes` on the core path. Tokens are separated by `.`; `*` matches exactly one
token and `>` one or more trailing tokens, each only when it is a whole token. Whitespace never
appears in a valid subject. The helpers work on `bytes`; `str` variants used by JetStream and
configuration code go through the same functions after encoding.
"""

from __future__ import annotations

from typing import Final

PWC: Final = b"*"
FWC: Final = b">"
_WHITESPACE = frozenset(b" \t\r\n\f\v")


def _has_whitespace(subject: bytes) -> bool:
    return any(b in _WHITESPACE for b in subject)


def is_valid_subject(subject: bytes) -> bool:
    """A subscription subject: non-empty tokens, `>` only as the last token, no whitespace."""
    if not subject or _has_whitespace(subject):
        return False
    tokens = subject.split(b".")
    last = len(tokens) - 1
    for i, token in enumerate(tokens):
        if not token:
            return False
        if token == FWC and i != last:
            return False
    return True


def is_valid_literal_subject(subject: bytes) -> bool:
    """A publish subject: a valid subject with no wildcard tokens."""
    if not is_valid_subject(subject):
        return False
    return all(t != PWC and t != FWC for t in subject.split(b"."))


def is_literal(subject: bytes) -> bool:
    """True when no token is a wildcard (validity is not checked)."""
    if b"*" not in subject and b">" not in subject:
        return True
    return all(t != PWC and t != FWC for t in subject.split(b"."))


def subject_matches(filter_: bytes, subject: bytes) -> bool:
    """Does the literal `subject` match `filter_` (which may hold wildcards)?"""
    if filter_ == subject:
        return True
    ftoks = filter_.split(b".")
    stoks = subject.split(b".")
    for i, ft in enumerate(ftoks):
        if ft == FWC:
            return len(stoks) > i
        if i >= len(stoks):
            return False
        if ft != PWC and ft != stoks[i]:
            return False
    return len(ftoks) == len(stoks)


def subjects_collide(a: bytes, b: bytes) -> bool:
    """Could any literal subject match both `a` and `b` (both may hold wildcards)?"""
    atoks = a.split(b".")
    btoks = b.split(b".")
    for i in range(max(len(atoks), len(btoks))):
        if i >= len(atoks) or i >= len(btoks):
            return False
        x, y = atoks[i], btoks[i]
        if x == FWC or y == FWC:
            return True
        if x in (PWC, y) or y == PWC:
            continue
        return False
    return True


def is_subset_match(subject: bytes, test: bytes) -> bool:
    """Is every subject matched by `subject` also matched by `test`?"""
    stoks = subject.split(b".")
    ttoks = test.split(b".")
    for i, tt in enumerate(ttoks):
        if i >= len(stoks):
            return False
        st = stoks[i]
        if tt == FWC:
            return True
        if st == FWC:
            return False
        if tt == PWC:
            continue
        if st == PWC or st != tt:
            return False
    return len(stoks) == len(ttoks)


def ack_numbers_at(subject: bytes) -> tuple[int, int]:
    """Where the numbers of a JetStream ack subject start: (tokens before them, their first
    byte). A v1 ack (`$JS.ACK.<stream>.<consumer>.` then 5 numbers, 9 tokens) has 4 tokens
    before them, a v2 ack (`$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.`, 11 or more
    tokens) 6; (0, 0) for any other token count. The routing (`Sublist.match`, which caches
    acks by the part before the numbers) and the ack parser (`acks.parse_subject`) both read
    the subject this way."""
    dots = fourth = sixth = 0
    for i in range(len(subject)):  # a loop, not bytes.count/find: native when compiled
        if subject[i] == 46:  # .
            dots += 1
            if dots == 4:
                fourth = i + 1
            elif dots == 6:
                sixth = i + 1
    if dots == 8:
        return 4, fourth
    if dots >= 10:
        return 6, sixth
    return 0, 0
