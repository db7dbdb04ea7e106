"""Subject transforms: wildcard references and mapping functions, validated like nats-server."""

from __future__ import annotations

import pytest

from pynats.server.subject_transform import TransformError, compile_transform


@pytest.mark.parametrize(
    ("src", "dest", "subject", "expected"),
    [
        ("a.*", "x.{{wildcard(1)}}", "a.q", "x.q"),
        ("a.*.*", "b.$2.$1", "a.x.y", "b.y.x"),
        ("o.>", "t.>", "o.1.2", "t.1.2"),
        ("a.*", "s.{{split(1,-)}}", "a.p-q-r", "s.p.q.r"),
        ("a.*", "s.{{splitfromleft(1,2)}}", "a.abcd", "s.ab.cd"),
        ("a.*", "s.{{splitfromright(1,1)}}", "a.abcd", "s.abc.d"),
        ("a.*", "s.{{slicefromleft(1,2)}}", "a.abcde", "s.ab.cd.e"),
        ("a.*", "s.{{slicefromright(1,2)}}", "a.abcde", "s.a.bc.de"),
        ("a.*", "s.{{left(1,2)}}.{{right(1,2)}}", "a.abcde", "s.ab.de"),
        ("", "", "any.thing", "any.thing"),
    ],
)
def test_transforms_map_matching_subjects(src, dest, subject, expected) -> None:
    assert compile_transform(src, dest).apply(subject) == expected


def test_non_matching_subjects_are_left_alone() -> None:
    assert compile_transform("a.*", "b.$1").apply("c.d") is None


def test_partition_is_stable_and_in_range() -> None:
    t = compile_transform("a.*", "p.{{partition(4,1)}}")
    seen = {t.apply(f"a.{i}") for i in range(50)}
    assert seen <= {"p.0", "p.1", "p.2", "p.3"} and len(seen) > 1
    assert t.apply("a.17") == t.apply("a.17")


@pytest.mark.parametrize(
    ("src", "dest", "text"),
    [
        ("c", "d.$1", "invalid mapping destination: wildcard index out of range in $1"),
        ("c.*", "d.{{nope(1)}}", "invalid mapping destination: unknown function in {{nope(1)}}"),
        ("c.*", "d.>", "invalid mapping destination: full wildcard not allowed in d.>"),
    ],
)
def test_invalid_destinations_are_explained(src, dest, text) -> None:
    with pytest.raises(TransformError) as err:
        compile_transform(src, dest)
    assert str(err.value) == text and not err.value.is_source


def test_invalid_source_is_reported_as_such() -> None:
    with pytest.raises(TransformError) as err:
        compile_transform("a..b", "x")
    assert err.value.is_source


def test_strict_transforms_must_use_every_source_wildcard() -> None:
    compile_transform("r.*", "rp.$1", strict=True)
    compile_transform("r.>", "rp.>", strict=True)
    for src, dest in (("r.*", "rp.x"), (">", "rp.three"), ("r.*.*", "rp.$2")):
        with pytest.raises(TransformError):
            compile_transform(src, dest, strict=True)
