"""The `$JS.API` route table: which handler answers `$JS.API.<tokens>`, and what it is given.

A route is a token pattern (`*` is one token, a final `>` the rest; each is an argument of
the request, in order), the response type it answers with, and when the request counts in
the account's API total. The table is filled once, explicitly (`api.build_router`), and a
request goes to the first route that matches it.

A handler returns the response fields, or an awaitable of them when it changes metadata (the
responder runs those one at a time), or raises `ApiError`. What handlers share lives here too:
`ApiRequest.stream()`, `ApiRequest.decode()` and the paging of names and lists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from . import decode as d
from .errors import api_error

if TYPE_CHECKING:
    from pynats.server.delivery import Publisher

    from .service import JetStreamAccount
    from .stream import Stream

NAMES_LIMIT = 1024  # names per page (STREAM.NAMES, CONSUMER.NAMES)
LIST_LIMIT = 256  # infos per page (STREAM.LIST, CONSUMER.LIST)

# When a request counts in the account's API total, as nats-server counts it: "before"
# answering, "after" (INFO reports the total before itself), or "errors" only.
Counting = Literal["before", "after", "errors"]


@dataclass
class ApiRequest:
    jsa: JetStreamAccount
    subject: str
    args: list[str]  # the wildcard tokens of the route, in order
    reply: bytes | None
    headers: bytes
    payload: bytes
    publisher: Publisher

    def decode(self, spec: d.Struct) -> dict[str, Any]:
        """The JSON body checked against `spec` (strictly, unless the server is not strict)."""
        return d.decode(self.payload, spec, strict=self.jsa.js.strict)

    def stream(self) -> Stream:
        """The stream the first argument names; JSStreamNotFoundErr when there is none."""
        stream = self.jsa.streams.get(self.args[0])
        if stream is None:
            reason = self.jsa.offline.get(self.args[0])
            if reason:
                raise api_error("JSStreamOfflineReasonErrF", err=reason)
            raise api_error("JSStreamNotFoundErr")
        return stream


Handler = Callable[[ApiRequest], "dict[str, Any] | Awaitable[dict[str, Any]]"]


@dataclass
class Route:
    pattern: tuple[str, ...]
    kind: str  # the response type, without `io.nats.jetstream.api.v1.`
    handler: Handler
    counting: Counting = "before"

    def match(self, tokens: list[str]) -> list[str] | None:
        """The arguments when `tokens` fit the pattern, else None."""
        pat = self.pattern
        if pat[-1] == ">":
            if len(tokens) < len(pat):
                return None
        elif len(tokens) != len(pat):
            return None
        args: list[str] = []
        for i, p in enumerate(pat):
            if p == ">":
                args.append(".".join(tokens[i:]))
                return args
            if p == "*":
                args.append(tokens[i])
            elif p != tokens[i]:
                return None
        return args


class ApiRouter:
    """The routes of `$JS.API.*`; a pattern is registered once."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(
        self, pattern: str, kind: str, handler: Handler, *, counting: Counting = "before"
    ) -> None:
        """Answer `$JS.API.<pattern>` with `handler` (`*`/`>` tokens are its arguments)."""
        tokens = tuple(pattern.split("."))
        if any(r.pattern == tokens for r in self.routes):
            raise ValueError(f"$JS.API.{pattern} is already routed")
        self.routes.append(Route(tokens, kind, handler, counting))

    def match(self, rest: str) -> tuple[Route, list[str]] | tuple[None, None]:
        """The route for `$JS.API.<rest>` and its arguments, or (None, None)."""
        tokens = rest.split(".")
        for r in self.routes:
            args = r.match(tokens)
            if args is not None:
                return r, args
        return None, None


def page_start(total: int, offset: int) -> int:
    """Where a page of `total` items starts for a requested `offset` (clamped into range)."""
    return min(max(offset, 0), total)


def offline_part(offline: dict[str, str]) -> dict[str, Any]:
    """What a list says of stored assets this server cannot serve (ADR-44)."""
    if not offline:
        return {}
    return {"missing": sorted(offline), "offline": dict(sorted(offline.items()))}
