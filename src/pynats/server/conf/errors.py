"""The one exception the configuration language raises.

nats-server prints configuration errors as plain sentences (`Parse error on line 3: '...'`,
`variable reference for 'X' on line 2 can not be found`, ...). `str(ConfigError)` is exactly
that sentence, so a server built on this package can print the same start-up failure as the Go
server. Where the error happened is kept separately (`file`, `line`, `column`), because the Go
text often leaves the file and column out.
"""

from __future__ import annotations


class ConfigError(Exception):
    """A configuration file (or text) that nats-server would refuse to load.

    `message` (also `str(err)`) is the nats-server wording. `reason` is the innermost cause
    without the wrapping (`Unexpected EOF.` for `Parse error on line 1: 'Unexpected EOF.'`).
    `file`, `line` and `column` point at the innermost place known, with `column` counted the
    way nats-server counts it (see `Position`); any of them may be None when unknown.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column
        self.reason = reason if reason is not None else message

    def __str__(self) -> str:
        return self.message

    @property
    def location(self) -> str:
        """`file:line:column` as far as known (`<string>` stands for text without a file)."""
        parts = [self.file or "<string>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def with_location(self) -> str:
        """The message prefixed by its location, for logs that want both."""
        return f"{self.location}: {self.message}"

    def wrapped(self, message: str) -> ConfigError:
        """A new error with an outer message and this error's location and reason."""
        return ConfigError(
            message, file=self.file, line=self.line, column=self.column, reason=self.reason
        )
