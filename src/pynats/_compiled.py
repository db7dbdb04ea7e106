"""The compiled hot path: which modules are built from their Python source, and how to run
that source instead (`PYNATS_PURE=1`).

`pip install` compiles the modules in `COMPILED_MODULES` with mypyc (setup.py) when a C
compiler is there. A compiled module is an extension (`.so`) next to its `.py`, and the import
system prefers extensions, so `PYNATS_PURE=1` puts a finder in front of it that loads these
modules from their `.py` instead. `pynats/__init__.py` installs it before any of them is
imported. The modules go together: compiled ones check that the objects they get from each
other are of their compiled classes, so it is all compiled or all source. In a checkout
installed with `pip install -e .`, a `.py` edited after it was compiled would be shadowed by
its stale `.so`: then all of them run as source, with a warning, until the next install.
`load_pure` loads one module's source under another name next to the compiled one, so tests
can compare both in one process.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

# Keep in step with HOT_MODULES in setup.py.
COMPILED_MODULES = (
    "pynats.server.protocol",
    "pynats.server.link_protocol",
    "pynats.server.sublist",
    "pynats.server.subjects",
    "pynats.server.delivery",
    "pynats.jetstream.acks",
    "pynats.jetstream.store.records",
    "pynats.jetstream.store.index",
    "pynats.jetstream.store.consumer",
    "pynats.jetstream.pull",
    "pynats.jetstream.stream",
    "pynats.jetstream.consumer",
    "pynats.jetstream.store.indexed",
    "pynats.jetstream.store.file",
    "pynats.jetstream.store.memory",
    "pynats.jetstream.direct",
)
PURE_ENV = "PYNATS_PURE"
_ROOT = os.path.dirname(os.path.abspath(__file__))


def pure_requested() -> bool:
    """PYNATS_PURE is set to something other than empty or 0."""
    return os.environ.get(PURE_ENV, "") not in ("", "0")


def source_path(module: str) -> str:
    """The `.py` file of one of our modules (`pynats.server.protocol` -> .../protocol.py)."""
    return os.path.join(_ROOT, *module.split(".")[1:]) + ".py"


def _source_spec(name: str, module: str) -> importlib.machinery.ModuleSpec:
    path = source_path(module)
    spec = importlib.util.spec_from_file_location(
        name, path, loader=importlib.machinery.SourceFileLoader(name, path)
    )
    assert spec is not None
    return spec


class PureSourceFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' Python source ahead of their extensions."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname in COMPILED_MODULES:
            return _source_spec(fullname, fullname)
        return None


def install_pure_finder() -> None:
    """Make every later import of a compiled module load its `.py` (idempotent)."""
    if not any(isinstance(f, PureSourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, PureSourceFinder())


def stale_modules() -> list[str]:
    """Compiled modules whose `.py` changed after their extension was built (an editable
    install being edited). Two seconds of slack: an installed wheel writes both at once."""
    stale = []
    for name in COMPILED_MODULES:
        py = source_path(name)
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            ext = py[:-3] + suffix
            if os.path.exists(ext):
                if os.path.getmtime(py) > os.path.getmtime(ext) + 2.0:
                    stale.append(name)
                break
    return stale


def choose() -> None:
    """At `import pynats`: the Python source when asked for, or when compiled code is stale."""
    if pure_requested():
        install_pure_finder()
        return
    stale = stale_modules()
    if stale:
        import warnings

        warnings.warn(
            f"pynats: {', '.join(stale)} changed since it was compiled; running the hot "
            "modules as Python source (pip install -e . compiles them again)",
            RuntimeWarning,
            stacklevel=3,
        )
        install_pure_finder()


def is_compiled(module: ModuleType) -> bool:
    """The module was loaded from an extension, not from Python source."""
    file = getattr(module, "__file__", None) or ""
    return file.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def status() -> dict[str, bool]:
    """Each hot module: imported compiled (True) or as Python source (False)."""
    out = {}
    for name in COMPILED_MODULES:
        out[name] = is_compiled(importlib.import_module(name))
    return out


def describe() -> str:
    """One line: how the hot modules run in this process."""
    status = _status_without_import()
    short = ", ".join(name.rpartition(".")[2] for name in status)
    if all(status.values()):
        return f"pynats hot modules compiled (mypyc): {short}"
    if pure_requested():
        return f"pynats hot modules as Python source (PYNATS_PURE=1): {short}"
    return f"pynats hot modules as Python source (not compiled): {short}"


def _status_without_import() -> dict[str, bool]:
    """status() as the import system would decide, without importing the modules."""
    if any(isinstance(f, PureSourceFinder) for f in sys.meta_path):
        return dict.fromkeys(COMPILED_MODULES, False)
    out = {}
    for name in COMPILED_MODULES:
        spec = importlib.util.find_spec(name)
        out[name] = spec is not None and (spec.origin or "").endswith(
            tuple(importlib.machinery.EXTENSION_SUFFIXES)
        )
    return out


def load_pure(module: str, *, with_pure: tuple[str, ...] = ()) -> ModuleType:
    """`module`'s Python source as a separate module (`<package>._pure_<name>`), whatever is
    imported under its own name. Its relative imports resolve as usual (to the compiled
    siblings when they are compiled), except those named in `with_pure`, which get their
    pure twins (a class compiled by mypyc cannot be subclassed by Python source)."""
    package, _, leaf = module.rpartition(".")
    name = f"{package}._pure_{leaf}"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    saved = {dep: sys.modules.get(dep) for dep in with_pure}
    try:
        for dep in with_pure:
            sys.modules[dep] = load_pure(dep)
        spec = _source_spec(name, module)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        assert spec.loader is not None
        spec.loader.exec_module(mod)
    finally:
        for dep, previous in saved.items():
            if previous is None:
                sys.modules.pop(dep, None)
            else:
                sys.modules[dep] = previous
    return mod
