"""The JetStream API error catalogue: nats-server's `errors.json`, loaded, not retyped.

Every JS API error reply is `{"code": <http-like>, "err_code": <stable NATS code>,
"description": <text>}`; the catalogue gives all three per constant, with `{placeholders}` in
the description filled at the point of failure:

    raise api_error("JSStreamWrongLastSequenceErrF", seq=11)

The file ships as package data (`pynats/jetstream/data/jetstream-errors.json`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class CatalogueEntry:
    constant: str
    code: int
    error_code: int
    description: str


@cache
def catalogue() -> dict[str, CatalogueEntry]:
    raw = resources.files(__package__).joinpath("data/jetstream-errors.json").read_text("utf-8")
    return {
        e["constant"]: CatalogueEntry(e["constant"], e["code"], e["error_code"], e["description"])
        for e in json.loads(raw)
    }


class ApiError(Exception):
    """A JS API error as it goes on the wire."""

    def __init__(self, code: int, err_code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.err_code = err_code
        self.description = description
        self.counted = True  # in the account's API error count

    # How a message trace (ADR-41) reports this refusal in its `js` event: nats-server says
    # `description (err_code)` for its API errors, but some refusals come from errors of its
    # own (`trace_text`), and those found after it took the message's subject keep the
    # subject in the event (`trace_keeps_subject`).
    trace_text = ""
    trace_keeps_subject = False

    def traced_as(self, text: str = "", *, keeps_subject: bool = False) -> ApiError:
        """This error, reported in a message trace as `text` (when given)."""
        self.trace_text = text
        self.trace_keeps_subject = keeps_subject
        return self

    def trace_error(self) -> str:
        return self.trace_text or f"{self.description} ({self.err_code})"

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "err_code": self.err_code, "description": self.description}

    def __repr__(self) -> str:
        return f"ApiError({self.code}, {self.err_code}, {self.description!r})"


def api_error(constant: str, **fields: Any) -> ApiError:
    """The catalogue's error `constant`, its `{placeholders}` filled from `fields`."""
    entry = catalogue()[constant]
    text = entry.description
    for name, value in fields.items():
        text = text.replace("{" + name + "}", str(value))
    return ApiError(entry.code, entry.error_code, text)


def invalid_config(text: str) -> ApiError:
    """10052: the stream configuration is invalid, with nats-server's explanation."""
    return api_error("JSStreamInvalidConfigF", err=text)


def invalid_json(text: str) -> ApiError:
    return api_error("JSInvalidJSONErr", err=text)


def bad_request() -> ApiError:
    return api_error("JSBadRequestErr")
