"""The store's subject-filter matcher (NATS wildcard rules)."""

from __future__ import annotations

import pytest

from pynats.jetstream.store.subjects import is_literal, matches_all, subject_matches


@pytest.mark.parametrize(
    ("flt", "subject", "expected"),
    [
        ("a.b", "a.b", True),
        ("a.b", "a.c", False),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.>", "a.b.c", True),
        ("a.>", "a", False),
        ("*.b.>", "x.b.y", True),
        ("*.b.>", "x.c.y", False),
        (">", "anything.at.all", True),
        ("*", "one", True),
        ("*", "one.two", False),
        ("$KV.b.>", "$KV.b.key", True),
    ],
)
def test_wildcard_matching(flt, subject, expected):
    assert subject_matches(flt, subject) is expected


def test_literal_and_match_all():
    assert is_literal("a.b") and not is_literal("a.*") and not is_literal("a.>")
    assert matches_all(None) and matches_all(">") and matches_all("")
    assert not matches_all("a.>")
