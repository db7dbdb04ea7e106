"""Errors a `nats` user can cause, and the natscli wording for the client library's errors.

natscli's contract (cli.md §0.2): a failing command prints one line `nats: error: <message>` to
stderr and exits 1. Commands raise `CliError` for problems the user can fix; exceptions from
nats-py are translated by `describe()` into the text nats.go would have used. Anything else is a
bug in this tool and keeps its traceback.
"""

from __future__ import annotations

import asyncio


class CliError(Exception):
    """A failure the user caused or can fix: shown as `nats: error: <message>`, exit code 1."""

    exit_code = 1


class ApiError(CliError):
    """A JetStream API error reply (`{"error": {...}}`), worded as natscli words it
    (`stream not found (10059)`), with the server's error code kept for decisions."""

    def __init__(self, description: str, err_code: int | None) -> None:
        super().__init__(f"{description} ({err_code})" if err_code else description)
        self.description = description
        self.err_code = err_code


# The JetStream API error codes (server/errors.json) the CLI acts on.
STREAM_NAME_IN_USE = 10058
STREAM_NOT_FOUND = 10059
WRONG_LAST_SEQUENCE = 10071
JETSTREAM_NOT_ENABLED = 10076


class Interrupted(Exception):
    """The user pressed Ctrl-C (or the process got SIGTERM) while a command was running."""


def describe(exc: BaseException) -> str | None:
    """The one-line message for an expected failure, or None when `exc` is a bug of ours."""
    if isinstance(exc, CliError):
        return str(exc)
    message = _describe_client_error(exc)
    if message is not None:
        return message
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "nats: timeout"
    if isinstance(exc, OSError):
        return str(exc)
    return None


def _describe_client_error(exc: BaseException) -> str | None:
    """Words for nats-py exceptions, matching nats.go's where users script against them."""
    try:
        import nats.errors
        import nats.js.errors
    except ImportError:  # pragma: no cover - nats-py is a hard dependency
        return None
    if isinstance(exc, nats.js.errors.APIError) and getattr(exc, "description", None):
        if getattr(exc, "err_code", None):
            return f"{exc.description} ({exc.err_code})"
        return str(exc.description)
    if isinstance(exc, nats.errors.AuthorizationError):
        return "nats: Authorization Violation"
    if isinstance(exc, nats.errors.Error):
        return str(exc) or type(exc).__name__
    return None


class Fatal(Exception):
    """A fatal log line, natscli's `log.Fatalf`: printed as `HH:MM:SS <message>`, exit 1."""

    exit_code = 1
