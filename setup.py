"""Build hook: compile the hot modules from their Python source with mypyc.

pyproject.toml holds the metadata; this file only adds the extension modules. The modules
listed in src/pynats/_compiled.py (COMPILED_MODULES) are compiled when a C compiler is
there; without one, or when compiling fails, the package installs as pure Python with a
warning and runs the same (slower). `PYNATS_COMPILE=0` skips compiling on purpose;
`PYNATS_COMPILER=cython` compiles the same files with Cython instead (what the comparison
in benchmarks/README.md measured; needs Cython in the build environment).
"""

from __future__ import annotations

import os
import re
import sys
import time

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def hot_modules() -> list[str]:
    """COMPILED_MODULES of src/pynats/_compiled.py, as source paths (read, not imported:
    the package is not importable while it is being built)."""
    with open(os.path.join(HERE, "src", "pynats", "_compiled.py")) as f:
        text = f.read()
    block = re.search(r"COMPILED_MODULES = \((.*?)\)", text, re.S)
    assert block is not None, "COMPILED_MODULES not found in src/pynats/_compiled.py"
    names = re.findall(r'"(pynats\.[\w.]+)"', block.group(1))
    return [os.path.join("src", *name.split(".")) + ".py" for name in names]


def warn_pure(why: str) -> None:
    print(
        "WARNING: pynats is installed as pure Python, its hot modules are not compiled "
        f"(it works, more slowly): {why}",
        file=sys.stderr,
    )


class OptionalBuildExt(build_ext):
    """build_ext that installs pure Python instead of failing. All or nothing: mypyc's
    modules share one library and check each other's types, so a partial build is removed."""

    def run(self) -> None:
        try:
            super().run()
        except (Exception, SystemExit) as exc:  # no compiler, missing headers, ...
            for path in self.get_outputs():
                if os.path.exists(path):
                    os.remove(path)
            warn_pure(f"building the extensions failed: {type(exc).__name__}: {exc}")


def have_c_compiler() -> bool:
    from shutil import which

    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    command = getattr(compiler, "compiler", None) or ["cc"]
    return which(command[0]) is not None


BUILDING = {"build_ext", "build", "bdist_wheel", "editable_wheel", "develop", "install"}


def extensions() -> list:
    if not BUILDING & set(sys.argv[1:]):
        return []  # metadata or an sdist: nothing to translate
    if os.environ.get("PYNATS_COMPILE", "1") in ("0", "", "no", "false"):
        print("pynats: PYNATS_COMPILE=0, installing pure Python", file=sys.stderr)
        return []
    if not have_c_compiler():
        warn_pure("no C compiler found")
        return []
    compiler = os.environ.get("PYNATS_COMPILER", "mypyc")
    paths = hot_modules()
    started = time.perf_counter()
    try:
        if compiler == "cython":
            from Cython.Build import cythonize

            exts = cythonize(paths, compiler_directives={"language_level": 3}, quiet=True)
        else:
            from mypyc.build import mypycify

            # Third-party packages are not in the build environment: their types are Any.
            # Only the hot modules must type-check here: what they import is read for its
            # types (errors there are the project mypy run's business, and differ without the
            # third-party packages, which the isolated build environment does not have).
            exts = mypycify(
                ["--ignore-missing-imports", "--follow-imports=silent", *paths], opt_level="3"
            )
    except (Exception, SystemExit) as exc:  # mypyc exits on a type error
        warn_pure(f"{compiler} could not translate the modules: {type(exc).__name__}: {exc}")
        return []
    took = time.perf_counter() - started
    print(f"pynats: {compiler} translated {len(paths)} modules in {took:.1f}s", file=sys.stderr)
    return exts


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
