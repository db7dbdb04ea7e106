"""The error catalogue ships with the package and fills its placeholders."""

from __future__ import annotations

import json
from importlib import resources

from pynats.jetstream.errors import api_error, catalogue


def test_catalogue_is_package_data_with_every_entry() -> None:
    raw = resources.files("pynats.jetstream").joinpath("data/jetstream-errors.json").read_text()
    entries = json.loads(raw)
    assert len(entries) == len(catalogue()) == 226
    found = catalogue()["JSStreamNotFoundErr"]
    assert (found.code, found.error_code, found.description) == (404, 10059, "stream not found")


def test_placeholders_are_filled() -> None:
    err = api_error("JSStreamWrongLastSequenceErrF", seq=11)
    assert err.to_json() == {
        "code": 400,
        "err_code": 10071,
        "description": "wrong last sequence: 11",
    }
    assert api_error("JSInvalidJSONErr", err="x").description == "invalid JSON: x"
