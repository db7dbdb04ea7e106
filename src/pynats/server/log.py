"""The server log, in nats-server's line format.

    [<pid>] 2006/01/02 15:04:05.000000 [INF] message

Output goes to stderr (or the `-l` file). Labels are ANSI-coloured only when stderr is a
terminal, as nats-server does, so harnesses reading a pipe see plain `[INF]`. Every line is
flushed at once: tools wait on these lines to know the server is ready.

A log file may be rotated as nats-server's file logger rotates it (`log_size_limit`,
`logfile_max_num`): once a write takes the file past the limit, it is renamed
`<file>.YYYY.MM.DD.hh.mm.ss.nnnnnnnnn` (local time), a new one is opened and starts with
`Rotated log, backup saved as "<backup>"`; with a maximum number of files, the oldest backups
go (`Purged log file "<name>"`) so that the backups and the live file make that number. Those
lines are written as nats-server writes them, ending in CRLF.

With `remote_syslog` or `syslog: true` (and no log file, which wins as in nats-server) each
line goes to syslog instead (`syslog.py`): the message alone, its level as the severity.
"""

from __future__ import annotations

import os
import re
import sys
import time
from typing import TYPE_CHECKING, TextIO

from .conf.units import go_quote
from .syslog import SEVERITY_BY_LABEL, SyslogWriter

if TYPE_CHECKING:
    from .options import Options

_COLOURS = {"INF": "32", "DBG": "36", "TRC": "33", "WRN": "33", "ERR": "31", "FTL": "31"}
LOG_FILE_MODE = 0o640  # nats-server's defaultLogPerms
_BACKUP_STAMP = re.compile(r"\d{4}\.\d\d\.\d\d\.\d\d\.\d\d\.\d\d(\.\d{1,9})?")


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
        size_limit: int = 0,
        max_files: int = 0,
        silent: bool = False,
        syslog: bool = False,
        remote_syslog: str = "",
    ) -> None:
        self.debug_enabled = debug
        self.trace_enabled = trace or trace_verbose
        self.trace_verbose = trace_verbose
        self.logtime = logtime
        self.utc = utc
        self.log_file = log_file
        self.size_limit = size_limit if log_file else 0
        self.max_files = max_files
        self.silent = silent
        self._pid_prefix = f"[{os.getpid()}] "
        self._out: TextIO = sys.stderr
        self._owns_out = False
        self._colour = False
        self._size = 0  # bytes in the log file, counted against size_limit
        self._rate_limited: dict[str, float] = {}  # warn_rate_limited: key -> last time
        self._syslog: SyslogWriter | None = None
        if not log_file and (remote_syslog or syslog):
            self._syslog = SyslogWriter(remote_syslog)  # SyslogError: the server cannot start
        self._open()
        if self.size_limit and self._size > self.size_limit:
            self.notice("Rotating logfile...")

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
            size_limit=options.log_size_limit,
            max_files=options.log_max_num,
            syslog=options.syslog,
            remote_syslog=options.remote_syslog,
        )

    def _open(self) -> None:
        if self.log_file:
            fd = os.open(self.log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, LOG_FILE_MODE)
            self._out = open(fd, "a", encoding="utf-8")  # noqa: SIM115
            self._size = os.fstat(fd).st_size
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
        if not self.log_file:
            self.notice("File log re-open ignored, not a file logger")
            return
        if self._owns_out:
            self._out.close()
        self._open()
        self.notice("File log re-opened")

    def close(self) -> None:
        if self._syslog is not None:
            self._syslog.close()
            self._syslog = None
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
        if self._syslog is not None:
            self._syslog.write(SEVERITY_BY_LABEL[label], msg)
            return
        tag = f"[\x1b[{_COLOURS[label]}m{label}\x1b[0m]" if self._colour else f"[{label}]"
        line = f"{self._pid_prefix}{self._stamp() if self.logtime else ''}{tag} {msg}\n"
        try:
            self._out.write(line)
            self._out.flush()
        except (OSError, ValueError):
            return
        if self.size_limit:
            self._size += len(line.encode())
            if self._size > self.size_limit:
                self._rotate()

    def _direct(self, label: str, msg: str) -> int:
        """A line written as nats-server's file logger writes its own (rotation, purge):
        local time, CRLF; returns its size."""
        stamp = ""
        if self.logtime:
            now = time.time()
            micro = int((now % 1) * 1_000_000)
            stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(now)) + f".{micro:06d} "
        data = f"{self._pid_prefix}{stamp}[{label}] {msg}\r\n"
        try:
            self._out.write(data)
            self._out.flush()
        except (OSError, ValueError):
            pass
        return len(data.encode())

    def _rotate(self) -> None:
        seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
        stamp = time.strftime("%Y.%m.%d.%H.%M.%S", time.localtime(seconds))
        backup = f"{self.log_file}.{stamp}.{nanos:09d}"
        self._out.close()
        try:
            os.rename(self.log_file, backup)
        except OSError:
            self._open()
            return
        self._open()
        self._size = self._direct("INF", f"Rotated log, backup saved as {go_quote(backup)}")
        if self.max_files > 0:
            self._purge()

    def _purge(self) -> None:
        """Remove the oldest backups beyond `max_files - 1` (names sort by their time)."""
        directory, base = os.path.split(self.log_file)
        directory = directory or "."
        try:
            names = sorted(os.listdir(directory))
        except OSError as e:
            self._direct(
                "ERR",
                f"Unable to read directory {go_quote(directory)} for log purge ({e}), "
                "will attempt next rotation",
            )
            return
        prefix = base + "."
        backups = [
            name
            for name in names
            if name.startswith(prefix)
            and _BACKUP_STAMP.fullmatch(name[len(prefix) :])
            and not os.path.isdir(os.path.join(directory, name))
        ]
        for name in backups[: max(0, len(backups) - (self.max_files - 1))]:
            try:
                os.remove(os.path.join(directory, name))
            except OSError as e:
                self._direct(
                    "ERR",
                    f"Unable to remove backup log file {go_quote(name)} ({e}), "
                    "will attempt next rotation",
                )
                return
            self._direct("INF", f"Purged log file {go_quote(name)}")

    def notice(self, msg: str) -> None:
        self._write("INF", msg)

    def warn(self, msg: str) -> None:
        self._write("WRN", msg)

    def warn_rate_limited(self, key: str, msg: str) -> None:
        """A warning that a flood would repeat (a full queue, a dropping stream): at most one
        per `key` a second, as nats-server's rate-limited warnings (keyed by their format, so
        the count in the text does not make each one new)."""
        now = time.monotonic()
        last = self._rate_limited.get(key)
        if last is not None and now - last < 1.0:
            return
        self._rate_limited[key] = now
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
