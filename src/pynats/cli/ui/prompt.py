"""Interactive questions, asked only when a person can answer them (cli.md §0.4).

natscli prompts only when **both** stdin and stdout are terminals; otherwise every prompt fails
at once with a fixed message, so scripts never hang waiting for input. The widgets look like
those of the Go `survey` library natscli uses:

    ? Stream Name (ORDERS)              ask()        text, empty answer = default
    ? Really delete context "x" (y/N)   confirm()    yes/no
    ? Select a Context                  select()     arrow keys move, Enter picks,
    > local                                           typing filters the list
      prod

When a context is active the `?` becomes `[<context>] ?`. Command modules call these helpers
and never read stdin themselves; `can_prompt()` tells whether asking is possible at all (for
example to decide between a picker and a "name required" error). natscli words a question that
could not be asked as `<what it was for>: <reason>`: `prompted(context, ask, ...)` does that
for any of the widgets, and `ask_confirmation()` is its `could not obtain confirmation` case.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from pynats.cli.ui.errors import CliError
from pynats.cli.ui.output import is_tty

NO_TERMINAL = "cannot prompt for user input without a terminal"
NO_TERMINAL_CONFIRM = "cannot ask for confirmation without a terminal"

_context_name = ""

P = ParamSpec("P")
T = TypeVar("T")


class PromptUnavailable(CliError):
    """Raised instead of prompting when stdin or stdout is not a terminal."""


def set_prompt_context(name: str) -> None:
    """Show `[name] ?` instead of `?` in front of every question (the active context)."""
    global _context_name
    _context_name = name or ""


def can_prompt() -> bool:
    """True when both stdin and stdout are terminals, the only case natscli asks questions."""
    return is_tty(sys.stdin) and is_tty(sys.stdout)


def _marker() -> str:
    return f"[{_context_name}] ?" if _context_name else "?"


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _read_line() -> str:
    line = sys.stdin.readline()
    if line == "":
        raise CliError("EOF")
    return line.rstrip("\r\n")


def ask(question: str, default: str = "", *, required: bool = False) -> str:
    """Ask for a line of text; an empty answer gives `default`."""
    if not can_prompt():
        raise PromptUnavailable(NO_TERMINAL)
    suffix = f" ({default})" if default else ""
    while True:
        _write(f"{_marker()} {question}{suffix} ")
        answer = _read_line().strip() or default
        if answer or not required:
            return answer
        _write("X Sorry, your reply was invalid: Value is required\n")


def ask_int(question: str, default: int) -> int:
    """Ask for an integer; re-asks until the answer parses."""
    if not can_prompt():
        raise PromptUnavailable(NO_TERMINAL_CONFIRM)
    while True:
        answer = ask(question, str(default))
        try:
            return int(answer)
        except ValueError:
            _write(f"X Sorry, your reply was invalid: {answer!r} is not a number\n")


def confirm(question: str, default: bool = False) -> bool:
    """Ask a yes/no question: `? question (y/N)`; an empty answer gives `default`."""
    if not can_prompt():
        raise PromptUnavailable(NO_TERMINAL_CONFIRM)
    hint = "(Y/n)" if default else "(y/N)"
    while True:
        _write(f"{_marker()} {question} {hint} ")
        answer = _read_line().strip().lower()
        if answer == "":
            return default
        if answer in ("y", "yes"):
            return True
        if answer in ("n", "no"):
            return False
        _write(
            f'X Sorry, your reply was invalid: "{answer}" is not a valid answer, please try again.\n'
        )


def select(message: str, options: list[str], default: str | None = None) -> str:
    """Let the user pick one of `options` with the arrow keys; returns the chosen option."""
    if not can_prompt():
        raise PromptUnavailable(NO_TERMINAL)
    if not options:
        raise CliError("nothing to select from")
    return _Picker(message, options, default).run()


class _Picker:
    """A survey-style select list drawn on the terminal in raw mode."""

    def __init__(self, message: str, options: list[str], default: str | None) -> None:
        self.message = message
        self.options = options
        self.filter = ""
        self.cursor = options.index(default) if default in options else 0
        rows = _terminal_rows()
        self.page_size = max(1, min(len(options), rows - 4 if rows > 5 else len(options)))
        self.drawn = 0

    def visible(self) -> list[str]:
        text = self.filter.lower()
        return [o for o in self.options if text in o.lower()]

    def draw(self) -> None:
        if self.drawn:
            _write(f"\x1b[{self.drawn}A\r\x1b[J")
        matches = self.visible()
        self.cursor = min(self.cursor, max(len(matches) - 1, 0))
        start = min(max(self.cursor - self.page_size + 1, 0), max(len(matches) - self.page_size, 0))
        hint = (
            f"  [filter: {self.filter}]"
            if self.filter
            else "  [Use arrows to move, type to filter]"
        )
        lines = [f"{_marker()} {self.message}{hint}"]
        for index in range(start, min(start + self.page_size, len(matches))):
            pointer = ">" if index == self.cursor else " "
            lines.append(f"{pointer} {matches[index]}")
        _write("\r\n".join(lines) + "\r\n")
        self.drawn = len(lines)

    def run(self) -> str:
        import termios
        import tty

        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setraw(fd)
            self.draw()
            while True:
                key = _read_key(fd)
                matches = self.visible()
                if key in ("\r", "\n") and matches:
                    choice = matches[self.cursor]
                    break
                if key == "\x03":
                    raise KeyboardInterrupt
                if key == "\x1b[A":
                    self.cursor = (self.cursor - 1) % max(len(matches), 1)
                elif key == "\x1b[B":
                    self.cursor = (self.cursor + 1) % max(len(matches), 1)
                elif key in ("\x7f", "\x08"):
                    self.filter = self.filter[:-1]
                elif len(key) == 1 and key.isprintable():
                    self.filter += key
                    self.cursor = 0
                self.draw()
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        _write(f"\x1b[{self.drawn}A\r\x1b[J{_marker()} {self.message} {choice}\n")
        return choice


def _read_key(fd: int) -> str:
    """One key press from a raw-mode terminal; arrow keys come back as their escape sequence."""
    first = os.read(fd, 1).decode(errors="replace")
    if first != "\x1b":
        return first
    rest = os.read(fd, 2).decode(errors="replace")
    return first + rest


def _terminal_rows() -> int:
    import shutil

    return shutil.get_terminal_size((80, 24)).lines


def prompted(context: str, ask: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`ask(*args, **kwargs)`; when it cannot be answered (no terminal, end of input) the
    error reads `<context>: <reason>`."""
    try:
        return ask(*args, **kwargs)
    except CliError as exc:
        raise CliError(f"{context}: {exc}") from None


def ask_confirmation(question: str, default: bool = False) -> bool:
    """natscli's askConfirmation: `confirm()`, failing with `could not obtain confirmation`."""
    return prompted("could not obtain confirmation", confirm, question, default)


def pick(kind: str, options: list[str], default: str | None = None) -> str:
    """natscli's pickers (`Select a Stream`); without a terminal the error names what is missing.

    Use when a Stream/Consumer/Bucket name was not given: on a terminal the user chooses, in a
    script the command fails with `cannot pick a Stream without a terminal and no Stream name
    supplied`, exactly as natscli does.
    """
    if not can_prompt():
        raise PromptUnavailable(
            f"cannot pick a {kind} without a terminal and no {kind} name supplied"
        )
    return select(f"Select a {kind}", options, default)
