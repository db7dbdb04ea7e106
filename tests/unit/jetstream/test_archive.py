"""NATSARC1 archives: entries read back as written whatever the splits, the end sentinel ends
the archive, anything that is not an archive is told apart from a broken one, and no input makes
the reader buffer more than one bounded entry or fail with anything but its own errors."""

from __future__ import annotations

import random

import pytest

from pynats.jetstream import archive
from pynats.jetstream.archive import (
    END_ENTRY,
    MAGIC,
    ArchiveError,
    ArchiveReader,
    Entry,
    NotAnArchive,
    encode_entry,
)

ENTRIES = [
    Entry("state.json", 1_700_000_000_000_000_000, 0, b"", b'{"messages":2}'),
    Entry("consumers/C", 1_700_000_000_000_000_000, 0, b"", b'{"config":{},"state":{}}'),
    Entry("orders.new", 1_700_000_000_000_000_001, 1, b"NATS/1.0\r\nA: 1\r\n\r\n", b"first"),
    Entry("orders.new", -5, 2, b"", b"x" * 300),
    Entry("orders.\u00e9", 0, (1 << 64) - 1, b"", b""),
    Entry("", 0, 0, b"", b""),
]


def encode(entries: list[Entry]) -> bytes:
    return MAGIC + b"".join(
        encode_entry(e.name, e.timestamp, e.sequence, e.header, e.payload) for e in entries
    )


def read(data: bytes, cuts: list[int] | None = None, **kwargs: int) -> list[Entry]:
    reader = ArchiveReader(**kwargs)
    entries = []
    start = 0
    for cut in [*sorted(cuts or []), len(data)]:
        entries += reader.feed(data[start:cut])
        start = cut
    return entries


def uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def raw_entry(
    name: bytes, ts_zigzag: int, seq: int, hdr_size: int, pl_size: int, data: bytes = b""
) -> bytes:
    return b"".join(map(uvarint, (len(name), ts_zigzag, seq, hdr_size, pl_size))) + name + data


def test_entries_read_back_as_written() -> None:
    reader = ArchiveReader()
    assert reader.feed(encode(ENTRIES)) == ENTRIES
    assert reader.ended and reader.at_boundary
    assert [e.is_end for e in ENTRIES] == [False] * 5 + [True]


def test_entries_read_back_the_same_split_at_every_offset() -> None:
    data = encode(ENTRIES)
    for cut in range(len(data) + 1):
        assert read(data, [cut]) == ENTRIES
    assert read(data, list(range(len(data)))) == ENTRIES


def test_entries_read_back_the_same_under_random_splits() -> None:
    rng = random.Random(1)
    entries = [
        Entry(
            f"s.{i}", rng.randrange(-(1 << 63), 1 << 63), i, rng.randbytes(i % 5), rng.randbytes(i)
        )
        for i in range(1, 200)
    ]
    data = encode([*entries, Entry("", 0, 0, b"", b"")])
    for _ in range(30):
        cuts = [rng.randrange(len(data) + 1) for _ in range(rng.randrange(1, 50))]
        assert read(data, cuts)[:-1] == entries


def test_the_wire_format_is_nats_servers() -> None:
    # name len, zigzag(-1) = 1, sequence 300 (two bytes), header 2, payload 3, name, data
    assert encode_entry("ab", -1, 300, b"hh", b"ppp") == b"\x02\x01\xac\x02\x02\x03abhhppp"
    assert encode_entry("t", 1, 0, b"", b"") == b"\x01\x02\x00\x00\x00t"
    assert END_ENTRY == b"\x00\x00\x00\x00\x00"


@pytest.mark.parametrize("timestamp", [0, 1, -1, 63, -64, 64, (1 << 63) - 1, -(1 << 63)])
def test_timestamps_are_zigzag_varints(timestamp: int) -> None:
    entry = Entry("m", timestamp, 1, b"", b"")
    assert read(encode([entry])) == [entry]


def test_nothing_may_follow_the_end_sentinel() -> None:
    reader = ArchiveReader()
    assert reader.feed(MAGIC + END_ENTRY) == [Entry("", 0, 0, b"", b"")]
    assert reader.ended
    assert reader.feed(b"") == []
    with pytest.raises(ArchiveError, match="after the end"):
        reader.feed(b"\x00")


def test_an_archive_without_its_sentinel_has_not_ended() -> None:
    reader = ArchiveReader()
    reader.feed(encode(ENTRIES[:3]))
    assert not reader.ended and reader.at_boundary
    reader.feed(encode_entry("x", 0, 4, b"", b"abc")[:-1])
    assert not reader.at_boundary


@pytest.mark.parametrize(
    "data",
    [
        b"ustar\x00" + b"\x00" * 100,
        b"stream/S/meta.inf" + b"\x00" * 100,  # a legacy tar backup's first member name
        b"NATSARC2",
        b"X",
        b"NATSARQ",
    ],
)
def test_data_without_the_magic_is_not_an_archive(data: bytes) -> None:
    with pytest.raises(NotAnArchive):
        ArchiveReader().feed(data)


def test_the_magic_is_told_as_soon_as_its_bytes_differ() -> None:
    reader = ArchiveReader()
    assert reader.feed(b"NATS") == []
    with pytest.raises(NotAnArchive):
        reader.feed(b"ARX")
    assert ArchiveReader().feed(b"NATSARC") == []


def test_an_empty_archive_needs_its_magic_only() -> None:
    reader = ArchiveReader()
    assert reader.feed(MAGIC) == []
    assert reader.at_boundary and not reader.ended


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (uvarint(archive.MAX_NAME_LEN + 1) + b"\0\0\0\0", "name"),
        (raw_entry(b"s", 0, 1, 1 << 63, 0), "negative"),
        (raw_entry(b"s", 0, 1, 0, 1 << 63), "negative"),
        (raw_entry(b"s", 0, 1, 1 << 62, 1 << 62), "negative"),
        (raw_entry(b"s", 0, 1, (1 << 64) - 1, 0), "negative"),
        (b"\x01" + b"\xff" * 9 + b"\x02", "overflows"),  # 10th byte above 1
        (b"\x01" + b"\x80" * 10, "overflows"),  # no end within ten bytes
        (raw_entry(b"", 0, 7, 0, 0), "without a name"),
        (raw_entry(b"", 2, 0, 0, 0), "without a name"),
        (raw_entry(b"", 0, 0, 0, 1, b"x"), "without a name"),
    ],
)
def test_invalid_entries_are_refused(entry: bytes, message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        ArchiveReader().feed(MAGIC + entry)


def test_a_ten_byte_varint_that_fits_is_read() -> None:
    # sequence 2**64 - 1: nine 0xff bytes and a final 0x01
    entry = b"\x01\x00" + b"\xff" * 9 + b"\x01" + b"\x00\x00s"
    assert ArchiveReader().feed(MAGIC + entry) == [Entry("s", 0, (1 << 64) - 1, b"", b"")]


def test_non_minimal_varints_are_read_like_go() -> None:
    entry = b"\x81\x00\x00\x80\x00\x00\x00s"  # name length 1 written in two bytes, seq 0 too
    assert ArchiveReader().feed(MAGIC + entry) == [Entry("s", 0, 0, b"", b"")]


def test_an_entry_larger_than_max_entry_is_refused_before_its_data_arrives() -> None:
    reader = ArchiveReader(max_entry=1000)
    assert reader.feed(MAGIC + encode_entry("ok", 0, 1, b"h" * 500, b"p" * 500)) != []
    with pytest.raises(ArchiveError, match="larger than 1000"):
        reader.feed(raw_entry(b"big", 0, 2, 500, 501))  # the sizes alone, no data yet


def test_names_that_are_not_utf8_survive_a_round_trip() -> None:
    data = MAGIC + raw_entry(b"s.\xff", 0, 1, 0, 0)
    [entry] = ArchiveReader().feed(data)
    assert MAGIC + encode_entry(entry.name, 0, 1, b"", b"") == data


@pytest.mark.parametrize(
    "args",
    [
        ("s", 1 << 63, 1, b"", b""),
        ("s", -(1 << 63) - 1, 1, b"", b""),
        ("s", 0, -1, b"", b""),
        ("s", 0, 1 << 64, b"", b""),
        ("x" * (archive.MAX_NAME_LEN + 1), 0, 1, b"", b""),
    ],
)
def test_encode_entry_refuses_values_outside_the_format(args: tuple) -> None:
    with pytest.raises(ValueError):
        encode_entry(*args)


def test_after_an_error_the_reader_stays_failed() -> None:
    reader = ArchiveReader()
    with pytest.raises(NotAnArchive):
        reader.feed(b"garbage!")
    with pytest.raises(NotAnArchive):
        reader.feed(MAGIC)


def test_mutated_archives_parse_or_raise_archive_errors() -> None:
    rng = random.Random(13)
    valid = encode(ENTRIES)
    for _ in range(5000):
        data = bytearray(valid)
        for _ in range(rng.randrange(1, 4)):
            pos = rng.randrange(len(data))
            action = rng.randrange(4)
            if action == 0:
                data[pos] = rng.randrange(256)
            elif action == 1:
                del data[pos : pos + rng.randrange(1, 6)]
            elif action == 2:
                data[pos:pos] = rng.randbytes(rng.randrange(1, 6))
            else:
                data[pos] = rng.choice([0x00, 0x7F, 0x80, 0xFF])
        cuts = [rng.randrange(len(data) + 1) for _ in range(rng.randrange(3))]
        try:
            read(bytes(data), cuts, max_entry=1 << 16)
        except (ArchiveError, NotAnArchive):
            pass
