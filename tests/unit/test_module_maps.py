"""The maps of the code stay true: docs/architecture.md names every module of the server, of
JetStream and of the store, and jetstream/__init__.py names every JetStream module. (The CLI
keeps its own map in cli/__init__.py, checked by tests/cli/test_cli_module_map.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pynats.jetstream

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "pynats"
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()


def modules(package: Path, *, recursive: bool = False) -> list[str]:
    """Module file names (not __init__/__main__) of a package, relative to it."""
    pattern = "**/*.py" if recursive else "*.py"
    return sorted(
        str(p.relative_to(package))
        for p in package.glob(pattern)
        if p.name not in ("__init__.py", "__main__.py")
    )


def named_in(text: str, module: str) -> bool:
    """The module's file name appears as a word in the text."""
    name = Path(module).name
    return re.search(rf"(?<![\w/]){re.escape(name)}(?!\w)", text) is not None


@pytest.mark.parametrize(
    "module",
    ["app.py", "gotime.py"]
    + [f"server/{m}" for m in modules(SRC / "server")]
    + [f"jetstream/{m}" for m in modules(SRC / "jetstream")],
)
def test_architecture_page_names_every_module(module: str) -> None:
    assert named_in(ARCHITECTURE, module), f"docs/architecture.md does not name {module}"


@pytest.mark.parametrize("module", modules(SRC / "jetstream", recursive=True))
def test_jetstream_package_map_names_every_module(module: str) -> None:
    doc = pynats.jetstream.__doc__ or ""
    assert named_in(doc, module), f"jetstream/__init__.py does not name {module}"


def test_the_maps_name_no_module_that_is_gone() -> None:
    listed = set(re.findall(r"\b([a-z_]+\.py)\b", pynats.jetstream.__doc__ or ""))
    existing = {Path(m).name for m in modules(SRC / "jetstream", recursive=True)}
    assert listed <= existing | {"__init__.py"}, listed - existing
