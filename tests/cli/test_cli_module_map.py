"""The map of the `nats` package in `pynats/cli/__init__.py` names every module, and only those."""

from __future__ import annotations

import re
from pathlib import Path

import pynats.cli

CLI_DIR = Path(pynats.cli.__file__).parent
# A map entry: an indented line that starts with the module's path.
MAPPED = re.compile(r"^ +((?:\w+/)*\w+\.py)(?: |$)", re.MULTILINE)


def modules_on_disk() -> set[str]:
    """Every module of the package, as a path relative to it (the map's own file excepted)."""
    found = {path.relative_to(CLI_DIR).as_posix() for path in CLI_DIR.rglob("*.py")}
    return found - {"__init__.py"}


def modules_in_map() -> set[str]:
    return set(MAPPED.findall(pynats.cli.__doc__ or ""))


def test_every_cli_module_is_in_the_package_map() -> None:
    missing = sorted(modules_on_disk() - modules_in_map())
    assert not missing, f"add these to the map in pynats/cli/__init__.py: {missing}"


def test_the_package_map_names_no_module_that_is_gone() -> None:
    stale = sorted(modules_in_map() - modules_on_disk())
    assert not stale, f"the map in pynats/cli/__init__.py names modules that do not exist: {stale}"
