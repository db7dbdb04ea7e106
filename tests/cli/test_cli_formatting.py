"""The value syntaxes and renderings natscli users read every day (cli.md §0.3, §0.5-0.7)."""

from __future__ import annotations

import pytest

from pynats.cli.ui import humanize
from pynats.cli.ui.columns import Columns
from pynats.cli.ui.messages import compact_body, parse_js_ack, pretty_body
from pynats.cli.ui.parse import parse_byte_size, parse_duration_ns
from pynats.cli.ui.table import Table
from pynats.gotime import format_duration

SECOND = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("0", 0),
        ("1s", SECOND),
        ("500ms", SECOND // 2),
        ("1.5h", 5400 * SECOND),
        ("1d3h5m", (24 * 3600 + 3 * 3600 + 5 * 60) * SECOND),
        ("2w", 14 * 24 * 3600 * SECOND),
        ("1M", 30 * 24 * 3600 * SECOND),
        ("1y", 365 * 24 * 3600 * SECOND),
        ("-1m", -60 * SECOND),
        ("10µs", 10_000),
    ],
)
def test_durations_accept_natscli_units(text: str, nanos: int) -> None:
    assert parse_duration_ns(text) == nanos


@pytest.mark.parametrize("text", ["5", "", "1x", "1s5", "s"])
def test_durations_without_a_known_unit_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration_ns(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("100", 100),
        ("1K", 1024),
        ("1kb", 1024),
        ("2MiB", 2 * 1024**2),
        ("1GB", 1024**3),
        ("1T", 1024**4),
        ("", -1),
        ("-5", -1),
    ],
)
def test_byte_sizes_are_base_1024_and_negative_means_unlimited(text: str, size: int) -> None:
    assert parse_byte_size(text) == size


def test_fractional_byte_sizes_are_rejected_with_natscli_words() -> None:
    with pytest.raises(ValueError, match="bytes must end in B, K, KB, M, MB, G, GB, T or TB"):
        parse_byte_size("1.5GB")


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (512, "512 B"), (1946, "1.9 KiB"), (325_632, "318 KiB"), (22_020_096, "21 MiB")],
)
def test_sizes_render_in_iec_units(size: int, text: str) -> None:
    assert humanize.ibytes(size) == text


@pytest.mark.parametrize(
    ("nanos", "human", "go"),
    [
        (850_400, "850µs", "850.4µs"),
        (12_300_000, "12ms", "12.3ms"),
        (30 * SECOND, "30.00s", "30s"),
        (4_100_000_000, "4.10s", "4.1s"),
        (120 * SECOND, "2m0s", "2m0s"),
        ((26 * 3600 + 3 * 60 + 4) * SECOND, "1d2h3m4s", "26h3m4s"),
        (2**63 - 1, "never", "2562047h47m16.854775807s"),
    ],
)
def test_durations_render_like_natscli_and_go(nanos: int, human: str, go: str) -> None:
    assert humanize.human_duration(nanos) == human
    assert format_duration(nanos) == go


def test_numbers_get_thousands_separators() -> None:
    assert humanize.comma(1234567) == "1,234,567"
    assert humanize.float_comma(1234.56789) == "1,234.568"


def test_table_matches_the_rounded_go_pretty_layout() -> None:
    table = Table("Known Contexts", headers=["Name", "Description"])
    table.add_row("local*", "Local dev server")
    table.add_row("prod", "Production cluster")
    assert table.render() == (
        "╭─────────────────────────────╮\n"
        "│        Known Contexts       │\n"
        "├────────┬────────────────────┤\n"
        "│ Name   │ Description        │\n"
        "├────────┼────────────────────┤\n"
        "│ local* │ Local dev server   │\n"
        "│ prod   │ Production cluster │\n"
        "╰────────┴────────────────────╯\n"
    )


def test_numeric_columns_are_right_aligned_and_footers_separated() -> None:
    table = Table(headers=["Name", "Count"])
    table.add_row("a", 5)
    table.add_row("b", 1234)
    table.add_footer("total", 1239)
    assert table.render() == (
        "╭───────┬───────╮\n"
        "│ Name  │ Count │\n"
        "├───────┼───────┤\n"
        "│ a     │     5 │\n"
        "│ b     │  1234 │\n"
        "├───────┼───────┤\n"
        "│ total │  1239 │\n"
        "╰───────┴───────╯\n"
    )


def test_table_formats_chosen_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    table = Table("T", headers=["A", "B"])
    table.add_row("x", "y,z")
    monkeypatch.setenv("NATS_TABLE_FORMAT", "csv")
    assert table.render() == 'A,B\nx,"y,z"\n'
    monkeypatch.setenv("NATS_TABLE_FORMAT", "md")
    assert table.render() == "# T\n| A | B |\n| --- | --- |\n| x | y,z |\n"


def test_info_screen_labels_are_right_aligned_across_sections() -> None:
    screen = Columns("Information for Stream ORDERS")
    screen.add_row("Subjects", ["ORDERS.>", "OTHER.*"])
    screen.add_row("Replicas", 1)
    screen.add_section("Options")
    screen.add_row("Retention", "Limits")
    screen.add_row("Allows Rollups", False)
    screen.add_rows("Sources", ["A", "B"])
    assert screen.render() == (
        "Information for Stream ORDERS\n"
        "\n"
        "        Subjects: ORDERS.>, OTHER.*\n"
        "        Replicas: 1\n"
        "\n"
        "Options:\n"
        "\n"
        "       Retention: Limits\n"
        "  Allows Rollups: false\n"
        "         Sources: A\n"
        "                  B\n"
    )


def test_message_bodies_render_like_natscli() -> None:
    assert compact_body(b"") == b"nil body\n"
    assert compact_body(b"x") == b"x\n"
    assert pretty_body(b"x") == b"x\n\n\n"
    assert pretty_body(b"x\n") == b"x\n\n"
    assert pretty_body(b"") == b"nil body\n\n\n"


def test_jetstream_reply_subjects_carry_the_metadata() -> None:
    v1 = parse_js_ack("$JS.ACK.ORDERS.C1.1.42.7.1700000000000000000.3")
    assert v1 is not None and (v1.stream, v1.stream_seq, v1.consumer_seq, v1.pending) == (
        "ORDERS",
        42,
        7,
        3,
    )
    v2 = parse_js_ack("$JS.ACK.hub.ACCHASH.ORDERS.C1.2.42.7.1700000000000000000.0.token")
    assert v2 is not None and (v2.domain, v2.delivered, v2.stream_seq) == ("hub", 2, 42)
    assert parse_js_ack("_INBOX.abc") is None
