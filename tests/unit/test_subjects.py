from __future__ import annotations

import pytest

from pynats.server.subjects import (
    is_subset_match,
    is_valid_literal_subject,
    is_valid_subject,
    subject_matches,
    subjects_collide,
)


@pytest.mark.parametrize(
    "subject,valid",
    [
        (b"foo", True),
        (b"foo.bar", True),
        (b"foo.*", True),
        (b"foo.>", True),
        (b">", True),
        (b"*", True),
        (b"foo*.bar", True),  # a literal token containing '*'
        (b"", False),
        (b"foo.", False),
        (b".foo", False),
        (b"foo..bar", False),
        (b"foo.>.bar", False),
        (b"foo bar", False),
        (b"foo\tbar", False),
        (b"foo\r\n", False),
    ],
)
def test_subscription_subject_validity(subject: bytes, valid: bool) -> None:
    assert is_valid_subject(subject) is valid


@pytest.mark.parametrize(
    "subject,valid",
    [(b"foo.bar", True), (b"foo.*", False), (b"foo.>", False), (b"foo*", True), (b"a..b", False)],
)
def test_publish_subject_must_be_literal(subject: bytes, valid: bool) -> None:
    assert is_valid_literal_subject(subject) is valid


@pytest.mark.parametrize(
    "filter_,subject,match",
    [
        (b"foo.*", b"foo.bar", True),
        (b"foo.*", b"foo.bar.baz", False),
        (b"foo.>", b"foo.bar.baz", True),
        (b"foo.>", b"foo", False),
        (b"*.bar", b"foo.bar", True),
        (b">", b"anything.at.all", True),
    ],
)
def test_wildcard_matching(filter_: bytes, subject: bytes, match: bool) -> None:
    assert subject_matches(filter_, subject) is match


def test_collisions_and_subsets() -> None:
    assert subjects_collide(b"foo.*", b"foo.bar")
    assert subjects_collide(b"foo.>", b"*.bar.baz")
    assert not subjects_collide(b"foo.*", b"bar.*")
    assert not subjects_collide(b"foo.*", b"foo.a.b")
    assert is_subset_match(b"foo.bar", b"foo.*")
    assert is_subset_match(b"foo.*.baz", b"foo.>")
    assert not is_subset_match(b"foo.>", b"foo.*")
