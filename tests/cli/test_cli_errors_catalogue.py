"""`nats errors`: the JetStream API error catalogue, listed, looked up and validated."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import NatsCli


def test_errors_lookup_describes_one_code(cli: NatsCli) -> None:
    result = cli.run("errors", "lookup", "10059")
    assert result.returncode == 0, result
    assert result.stdout == (
        "NATS Error Code: 10059\n\n"
        "        Description: stream not found\n"
        "          HTTP Code: 404\n"
        "  Go Index Constant: JSStreamNotFoundErr\n\n"
        "No further information available\n"
    )
    missing = cli.run("err", "show", "1")
    assert (missing.returncode, missing.stderr) == (1, "nats: error: no error matches code 1\n")


def test_errors_ls_filters_by_regular_expression_and_sorts(cli: NatsCli) -> None:
    result = cli.run("errors", "ls", "^consumer not found$")
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert "NATS Errors" in lines[1]
    assert [c.strip() for c in lines[3].split("│")[1:-1]] == [
        "NATS Code",
        "HTTP Error Code",
        "Description",
        "Comment",
        "Go Constant",
    ]
    assert [c.strip() for c in lines[5].split("│")[1:-1]] == [
        "10014",
        "404",
        "consumer not found",
        "",
        "JSConsumerNotFoundErr",
    ]
    codes = [
        int(line.split("│")[1])
        for line in cli.run("errors", "ls", "stream", "code", "-R").stdout.splitlines()[5:-1]
    ]
    assert len(codes) > 10 and codes == sorted(codes, reverse=True)
    none = cli.run("errors", "ls", "nothing-like-this")
    assert none.returncode == 1
    assert none.stderr == (
        "nats: error: no errors found matching regular expression nothing-like-this\n"
    )


def test_errors_validate_and_a_custom_file(cli: NatsCli, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps(
            [
                {
                    "constant": "JSThingErr",
                    "code": 400,
                    "error_code": 10999,
                    "description": "thing broke",
                    "comment": "",
                    "help": "Try again.",
                    "url": "",
                    "deprecates": "",
                }
            ]
        )
    )
    assert cli.run("errors", "validate", str(good)).stdout == "Validated 1 errors\n"
    lookup = cli.run("errors", "lookup", "10999", "--errors", str(good))
    assert lookup.stdout.endswith("\nTry again.\n")
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps([{"constant": "", "code": 0, "error_code": 5, "description": "x {y"}])
    )
    result = cli.run("errors", "validate", str(bad))
    assert result.returncode == 1
    assert result.stdout == (
        "5 failed: error codes may not be below 10000, code is require, constant is required, "
        "unmatched number of { and }, constants for errors with tokens must end in F like "
        "JSStreamMsgDeleteFailedF\n"
    )
    assert result.stderr == f"nats: error: {bad} is invalid\n"
