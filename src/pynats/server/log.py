"""The server log, in nats-server's line format.

    [<pid>] 2006/01/02 15:04:05.000000 [INF] message

Output goes to stderr (or the `-l` file). Labels are ANSI-coloured only when stderr is a
terminal, as nats-server does, so harnesses reading a pipe see plain `[INF]`. Every line is
flushed at once: tools wait on these lines to know the server is ready.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .options import Options

_COLOURS = {"INF": "32", "DBG": "36", "TRC": "33", "WRN": "33", "ERR": "31", "FTL": "31"}


class Logger:
    def __init__(
        self,
        *,
        debug: bool = False,
        trace: bool = False,
        trace_verbose: bool = False,
        logtime: bool = True,
        utc: bool = False,
        log_file: str = "",
        silent: bool = False,
    ) -> None:
        self.debug_enabled = debug
        self.trace_enabled = trace or trace_verbose
        self.trace_verbose = trace_verbose
        self.logtime = logtime
        self.utc = utc
        self.log_file = log_file
        self.silent = silent
        self._pid_prefix = f"[{os.getpid()}] "
        self._out: TextIO = sys.stderr
        self._owns_out = False
        self._colour = False
        self._open()

    @classmethod
    def from_options(cls, options: Options) -> Logger:
        """The log the options ask for (`-D`, `-V`, `-VV`, `-T`, `--logtime_utc`, `-l`)."""
        return cls(
            debug=options.debug,
            trace=options.trace,
            trace_verbose=options.trace_verbose,
            logtime=options.logtime,
            utc=options.logtime_utc,
            log_file=options.log_file,
        )

    def _open(self) -> None:
        if self.log_file:
            self._out = open(self.log_file, "a", encoding="utf-8")  # noqa: SIM115
            self._owns_out = True
            self._colour = False
        else:
            self._out = sys.stderr
            self._owns_out = False
            try:
                self._colour = os.isatty(sys.stderr.fileno())
            except (OSError, ValueError):
                self._colour = False

    def reopen(self) -> None:
        """SIGUSR1: reopen the log file (after rotation by an external tool)."""
        if self._owns_out:
            self._out.close()
        self._open()
        self.notice("File log re-opened")

    def close(self) -> None:
        if self._owns_out:
            self._out.close()
            self._owns_out = False
            self._out = sys.stderr

    def _stamp(self) -> str:
        now = time.time()
        tm = time.gmtime(now) if self.utc else time.localtime(now)
        micro = int((now % 1) * 1_000_000)
        return time.strftime("%Y/%m/%d %H:%M:%S", tm) + f".{micro:06d} "

    def _write(self, label: str, msg: str) -> None:
        if self.silent:
            return
        tag = f"[\x1b[{_COLOURS[label]}m{label}\x1b[0m]" if self._colour else f"[{label}]"
        line = f"{self._pid_prefix}{self._stamp() if self.logtime else ''}{tag} {msg}\n"
        try:
            self._out.write(line)
            self._out.flush()
        except (OSError, ValueError):
            pass

    def notice(self, msg: str) -> None:
        self._write("INF", msg)

    def warn(self, msg: str) -> None:
        self._write("WRN", msg)

    def error(self, msg: str) -> None:
        self._write("ERR", msg)

    def fatal(self, msg: str) -> None:
        self._write("FTL", msg)

    def debug(self, msg: str) -> None:
        if self.debug_enabled:
            self._write("DBG", msg)

    def trace(self, msg: str) -> None:
        if self.trace_enabled:
            self._write("TRC", msg)
