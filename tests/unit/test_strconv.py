"""Go's strconv.ParseBool, shared by the command line and the monitoring queries."""

from __future__ import annotations

import pytest

from pynats.server.strconv import parse_bool


@pytest.mark.parametrize("text", ["1", "t", "T", "TRUE", "true", "True"])
def test_go_true_spellings_read_as_true(text: str) -> None:
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["0", "f", "F", "FALSE", "false", "False"])
def test_go_false_spellings_read_as_false(text: str) -> None:
    assert parse_bool(text) is False


@pytest.mark.parametrize("text", ["", "yes", "on", "tRUE", " true", "2"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_bool(text)
