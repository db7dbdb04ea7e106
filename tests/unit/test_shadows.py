"""Where a subscription of the importing account listens in the exporter (nats-server's
addShadowSubscriptions cases), and how subjects map both ways."""

from __future__ import annotations

import pytest

from pynats.server.accounts import Account
from pynats.server.shadows import StreamImport


def route(source: str, dest: str) -> StreamImport:
    return StreamImport(Account("A"), Account("B"), source.encode(), dest.encode())


@pytest.mark.parametrize(
    ("source", "dest", "subscribed", "shadow"),
    [
        # equal to the import's subjects in the importer: the exporter's subjects
        ("ev.>", "fromA.ev.>", "fromA.ev.>", "ev.>"),
        # inside them: mapped back
        ("ev.>", "fromA.ev.>", "fromA.ev.x", "ev.x"),
        ("ev.>", "fromA.ev.>", "fromA.ev.*.y", "ev.*.y"),
        ("ev.>", "ev.>", "ev.x.>", "ev.x.>"),
        ("a.*.*", "b.$2.$1", "b.x.y", "a.y.x"),
        ("a.lit", "b.lit", "b.lit", "a.lit"),
        # covering them: the exporter's subjects
        ("ev.>", "fromA.ev.>", ">", "ev.>"),
        ("ev.>", "fromA.ev.>", "fromA.>", "ev.>"),
        ("a.lit", "p.a.lit", "p.*.lit", "a.lit"),
        # overlapping: the part inside, mapped back
        ("a.*", "b.*", "*.x", "a.x"),
        ("a.*", "a.*", "*.x", "a.x"),
        # elsewhere: nothing
        ("ev.>", "fromA.ev.>", "other.>", None),
        ("ev.>", "fromA.ev.>", "fromA.other", None),
        ("a.*", "b.*", "b.x.y", None),
    ],
)
def test_shadow_subject(source: str, dest: str, subscribed: str, shadow: str | None) -> None:
    got = route(source, dest).shadow_subject(subscribed.encode())
    assert got == (shadow.encode() if shadow is not None else None)


@pytest.mark.parametrize(
    ("source", "dest", "published", "delivered"),
    [
        ("ev.>", "fromA.ev.>", "ev.x.y", "fromA.ev.x.y"),
        ("ev.>", "ev.>", "ev.x", "ev.x"),
        ("a.*.*", "b.$2.$1", "a.x.y", "b.y.x"),
        ("a.lit", "p.a.lit", "a.lit", "p.a.lit"),
    ],
)
def test_messages_take_the_importers_subject(
    source: str, dest: str, published: str, delivered: str
) -> None:
    r = route(source, dest)
    assert r.to_importer(published.encode()) == delivered.encode()
    assert r.to_exporter(delivered.encode()) == published.encode()
