"""Python interpreters: which ones the build host has, which one an app asks for, which one it gets.

An app asks in `.python-version` (`3.11`, `3.11.7`; the first line that is not a comment) or
`runtime.txt` (`python-3.11.7`); `.python-version` wins when both exist. A version with a patch
number must match exactly; `3.11` takes the newest 3.11.x found. An app that asks for nothing
gets the newest interpreter found. With the config var `PYTHON_VERSION_POLICY=nearest` an
unavailable version gives way to the closest minor version (the newer one on a tie), then the
closest patch, with a warning.

The host's interpreters are the `python3` and `python3.X` on its `PATH` (pyenv-style `shims`
directories skipped) and `$PYENV_ROOT/versions/*/bin/python3` (`PYENV_ROOT` defaulting to
`~/.pyenv`). Only final CPython releases that are not themselves virtualenvs count; each is
known by its real path, with symlinks resolved.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from gun import isolation
from gun.build.buildpacks.base import BuildError
from gun.isolation import UnixUser

Version = tuple[int, ...]

_REQUEST = re.compile(r"^(?:python-)?(\d+)\.(\d+)(?:\.(\d+))?\Z")
_ON_PATH = re.compile(r"^python3(?:\.\d+)?\Z")
_QUERY = """
import glob, json, os, sys, sysconfig
bundled = os.path.join(sysconfig.get_path("stdlib"), "ensurepip", "_bundled", "pip-*.whl")
wheels = glob.glob(bundled) or glob.glob("/usr/share/python-wheels/pip-*.whl")
print(json.dumps({
    "version": list(sys.version_info[:3]),
    "level": sys.version_info[3],
    "impl": sys.implementation.name,
    "venv": sys.prefix != getattr(sys, "base_prefix", sys.prefix),
    "path": os.path.realpath(sys.executable),
    "pip": sorted(wheels)[-1] if wheels else "",
}))
"""
POLICIES = ("exact", "nearest")


@dataclass(frozen=True, order=True)
class Interpreter:
    version: Version
    path: str
    pip_wheel: str = field(default="", compare=False)  # its bundled pip wheel, if it has one

    @property
    def shown(self) -> str:
        return dotted(self.version)


@dataclass(frozen=True)
class Request:
    version: Version  # (major, minor) or (major, minor, patch)
    source: str  # the file that asked

    @property
    def shown(self) -> str:
        return dotted(self.version)


def dotted(version: Version) -> str:
    return ".".join(map(str, version))


def parse_request(text: str, source: str) -> Request:
    """The version a `.python-version` or `runtime.txt` asks for."""
    lines = [line.strip() for line in text.splitlines()]
    wanted = next((line for line in lines if line and not line.startswith("#")), "")
    m = _REQUEST.match(wanted)
    if m is None:
        raise BuildError(
            f"{source} asks for Python {wanted!r}, which is not a version like 3.12 or 3.12.1"
        )
    return Request(tuple(int(part) for part in m.groups() if part is not None), source)


def requested(app_dir: Path) -> tuple[Request | None, str | None]:
    """The app's request, if any, and a warning when its two version files disagree."""
    found = [
        parse_request(path.read_text(errors="replace"), name)
        for name in (".python-version", "runtime.txt")
        if (path := app_dir / name).is_file()
    ]
    if not found:
        return None, None
    if len(found) == 2 and found[0].version != found[1].version:
        return found[0], (
            f"runtime.txt asks for Python {found[1].shown} but .python-version asks for"
            f" {found[0].shown}; using .python-version"
        )
    return found[0], None


def choose(
    request: Request | None, available: list[Interpreter], policy: str
) -> tuple[Interpreter, str | None]:
    """The interpreter for `request` and, when the nearest one stands in, a warning."""
    if policy not in POLICIES:
        raise BuildError(f"PYTHON_VERSION_POLICY is {policy!r}; it must be exact or nearest")
    if not available:
        raise BuildError(
            "no Python interpreter was found on this build host (looked on PATH and under pyenv)"
        )
    if request is None:
        return max(available), None
    want = request.version
    exact = [i for i in available if i.version[: len(want)] == want]
    if exact:
        return max(exact), None
    names = ", ".join(i.shown for i in sorted(available))
    missing = f"Python {request.shown} (asked for in {request.source}) is not available"
    if policy != "nearest":
        raise BuildError(
            f"{missing} on this build host, which has {names}; install it there, ask for one of"
            " those, or set PYTHON_VERSION_POLICY=nearest"
        )

    def minor_distance(i: Interpreter) -> tuple[int, int]:
        major, minor = i.version[:2]
        return abs((major - want[0]) * 1000 + minor - want[1]), -minor - major * 1000

    best_minor = min(available, key=minor_distance).version[:2]
    same_minor = [i for i in available if i.version[:2] == best_minor]
    if len(want) == 3:
        chosen = min(same_minor, key=lambda i: (abs(i.version[2] - want[2]), -i.version[2]))
    else:
        chosen = max(same_minor)
    return chosen, (
        f"{missing} (this host has {names}); building with Python {chosen.shown} instead"
        " because PYTHON_VERSION_POLICY=nearest"
    )


def candidates(environ: dict[str, str] | None = None) -> list[str]:
    """Paths that may be interpreters, in search order: PATH first, then pyenv's versions."""
    environ = dict(os.environ) if environ is None else environ
    found: list[str] = []
    for entry in environ.get("PATH", "").split(os.pathsep):
        directory = Path(entry or ".")
        if directory.name == "shims" or not directory.is_dir():
            continue
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        found += [str(directory / n) for n in names if _ON_PATH.match(n)]
    root = Path(environ.get("PYENV_ROOT") or Path(environ.get("HOME", "~")).expanduser() / ".pyenv")
    versions = root / "versions"
    if versions.is_dir():
        found += [str(p) for p in sorted(versions.glob("*/bin/python3"))]
    return found


# discover's answers, by what the candidates are on disk: asking each interpreter costs ~0.1 s
# a build, and a build worker asks the same ones again and again
_discovered: dict[tuple[bool, tuple[tuple[str, int, int], ...]], list[Interpreter]] = {}


def discover(
    environ: dict[str, str] | None = None, timeout: float = 20, user: UnixUser | None = None
) -> list[Interpreter]:
    """The distinct interpreters found, each asked for its version (all asked at once, as
    `user` if given: one it cannot run is not found); asked again only when a candidate's file
    changed (path, size, modification time)."""
    paths = candidates(environ)
    signature = []
    for path in paths:
        with contextlib.suppress(OSError):
            st = os.stat(path)
            signature.append((os.path.realpath(path), st.st_size, st.st_mtime_ns))
    key = (user is not None, tuple(signature))  # every build user is "others" to them
    hit = _discovered.get(key)
    if hit is None:
        hit = _discovered[key] = _ask(paths, timeout, user)
    return list(hit)


def _ask(paths: list[str], timeout: float, user: UnixUser | None) -> list[Interpreter]:
    seen: set[str] = set()
    procs: list[subprocess.Popen[bytes]] = []
    for path in paths:
        real = os.path.realpath(path)
        if real in seen or not os.access(real, os.X_OK):
            continue
        seen.add(real)
        try:
            procs.append(
                subprocess.Popen(
                    [real, "-I", "-S", "-c", _QUERY],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                    **isolation.popen_user(user),
                )
            )
        except OSError:
            continue
    found: dict[str, Interpreter] = {}
    for proc in procs:
        try:
            stdout, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            continue
        try:
            facts = json.loads(stdout)
        except ValueError:
            continue
        if proc.returncode != 0 or not isinstance(facts, dict):
            continue
        if facts.get("impl") != "cpython" or facts.get("venv"):
            continue
        if facts["level"] != "final" or facts["path"] in found:
            continue
        found[facts["path"]] = Interpreter(
            tuple(facts["version"]), facts["path"], str(facts.get("pip") or "")
        )
    # One interpreter per version: the first found, so PATH wins over pyenv.
    by_version: dict[Version, Interpreter] = {}
    for interpreter in found.values():
        by_version.setdefault(interpreter.version, interpreter)
    return sorted(by_version.values())
