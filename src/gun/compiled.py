"""The drain's compiled build: its hot modules compiled to C extensions by mypyc, and loaded in
place of their sources only when they were compiled from exactly the sources installed.

- `build(into)` copies the installed package's sources to a scratch directory, runs mypyc
  (from mypy, a dev dependency; it needs a C compiler) over HOT there, and keeps the
  extensions in `into/KEY/` with a manifest. KEY is a digest of every source file of the
  package and of the interpreter (`key()`), so a build can never stand for other sources:
  change one byte of gun and the build no longer applies until it is built again.
- `use(where, mode)` is called before any of HOT is imported. It finds the build for the
  installed sources and puts a finder first on `sys.meta_path` that loads exactly those
  modules from it. It returns one sentence saying what the process runs: compiled, or pure
  Python and why. With mode "on" a missing build is a UsageError; with "off" it loads
  nothing.

The compiled modules behave as their sources do (tests/test_compiled.py checks the drain's
buckets are the same either way); they are faster because mypyc turns the typed code into C.

`python -m gun.compiled build [DIR]` builds (scripts/setup does when a C compiler is there);
`python -m gun.compiled status [DIR]` says whether the build for these sources exists.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from gun.errors import UsageError

# What mypyc compiles: the drain's per-line path (read frames, parse, aggregate, filter tails).
HOT = (
    "gun.lines",
    "gun.logs.model",
    "gun.logs.frames",
    "gun.logs.parse",
    "gun.logs.aggregate",
    "gun.logs.filters",
)
MODES = ("auto", "on", "off")
MANIFEST = "manifest.json"
PACKAGE = Path(__file__).resolve().parent


def default_dir() -> Path:
    """Where builds live: beside the interpreter's installation (a venv's own), or
    GUN_COMPILED_DIR."""
    return Path(os.environ.get("GUN_COMPILED_DIR") or Path(sys.prefix) / "share" / "gun-compiled")


def key(package: Path = PACKAGE) -> str:
    """A digest of every .py file under the package (path and bytes) and of the interpreter."""
    h = hashlib.sha256()
    h.update(f"{sys.implementation.cache_tag} {sysconfig.get_platform()}\n".encode())
    for path in sorted(package.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        data = path.read_bytes()
        h.update(f"{path.relative_to(package).as_posix()} {len(data)}\n".encode())
        h.update(data)
    return h.hexdigest()[:32]


def built(where: Path | None = None) -> bool:
    """Whether `where` (default_dir()) holds the build for these sources."""
    return ((where or default_dir()) / key() / MANIFEST).is_file()


def _source(module: str) -> str:
    return module.split(".", 1)[1].replace(".", "/") + ".py"


def build(into: Path, package: Path = PACKAGE) -> Path:
    """Compile HOT from `package` into `into/KEY/` (already there: nothing to do). Other
    builds in `into` are removed. Returns the build's directory."""
    k = key(package)
    final = into / k
    if (final / MANIFEST).is_file():
        return final
    into.mkdir(parents=True, exist_ok=True)
    into.chmod(into.stat().st_mode & ~0o022)  # use() loads nothing others could write to
    with tempfile.TemporaryDirectory(prefix="gun-mypyc-") as scratch:
        work = Path(scratch)
        shutil.copytree(package, work / "gun", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
        done = subprocess.run(
            [sys.executable, "-m", "mypyc", *(f"gun/{_source(m)}" for m in HOT)],
            cwd=work,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-20:]
            raise UsageError("mypyc could not compile the drain: " + " | ".join(tail))
        suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
        modules = {m: m.replace(".", "/") + suffix for m in HOT}
        groups = [p.name for p in work.glob(f"*__mypyc{suffix}")]
        if len(groups) != 1 or not all((work / f).is_file() for f in modules.values()):
            raise UsageError(f"mypyc's output in {work} is not what gun expects")
        group = groups[0][: -len(suffix)]
        modules[group] = groups[0]
        staged = Path(tempfile.mkdtemp(prefix=f".{k}-", dir=into))
        for file in modules.values():
            (staged / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(work / file, staged / file)
        (staged / MANIFEST).write_text(json.dumps({"key": k, "modules": modules}, indent=1))
        staged.chmod(0o755)
        try:
            staged.rename(final)
        except OSError:  # another build of the same sources got there first
            shutil.rmtree(staged, ignore_errors=True)
    for other in into.iterdir():
        if other.name != final.name and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)
    return final


class _Finder(importlib.abc.MetaPathFinder):
    """Loads exactly the modules of one build, from their files."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


def _trusted(path: Path) -> str | None:
    """Why the build at `path` must not be loaded (None: it may): code is loaded from it, so
    it and its parent must belong to this user or root and be writable by nobody else."""
    for p in (path, path.parent):
        st = p.stat()
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return f"{p} may be written by another user"
    return None


def use(where: Path | None = None, mode: str = "auto") -> str:
    """Load the build for these sources in place of HOT (see the module docstring)."""
    if mode not in MODES:
        raise UsageError(f"GUN_DRAIN_COMPILED must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "off":
        return "pure Python (GUN_DRAIN_COMPILED=off)"
    early = [m for m in HOT if m in sys.modules]
    if early:
        raise RuntimeError(f"gun.compiled.use came after {', '.join(early)} was imported")
    where = where or default_dir()
    k = key()
    build_dir = where / k
    why = None
    if not (build_dir / MANIFEST).is_file():
        why = f"no compiled build for these sources in {where} (python -m gun.compiled build)"
    else:
        why = _trusted(build_dir)
    if why is not None:
        if mode == "on":
            raise UsageError(f"GUN_DRAIN_COMPILED=on, but there is {why}")
        return f"pure Python: {why}"
    manifest = json.loads((build_dir / MANIFEST).read_text())
    files = {name: build_dir / file for name, file in manifest["modules"].items()}
    sys.meta_path.insert(0, _Finder(files))
    return f"compiled by mypyc ({build_dir})"


def compiled() -> bool:
    """Whether HOT were loaded from a build (after they were imported)."""
    return all(
        getattr(sys.modules.get(m), "__file__", "").endswith(
            tuple(importlib.machinery.EXTENSION_SUFFIXES)
        )
        for m in HOT
    )


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("build", "status") or len(argv) > 2:
        print("usage: python -m gun.compiled build|status [DIR]", file=sys.stderr)
        return 2
    where = Path(argv[1]) if len(argv) == 2 else default_dir()
    if argv[0] == "build":
        try:
            print(f"compiled the drain's hot modules into {build(where)}")
        except UsageError as e:
            print(e.message, file=sys.stderr)
            return 1
        return 0
    found = built(where)
    print(f"{'a' if found else 'no'} compiled build for these sources in {where}")
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
