"""What a test session made and left behind, scoped so that another gun on the same machine (a
developer's `scripts/up`, another worktree's tests) is never counted.

What the session made is what names one of its two directories: pytest's basetemp (every
tmp_path is in it, so every supervisor root, `gun up` home and app directory a test makes) and
the session's temp dir (TMPDIR for the whole run, so what the tests and the servers they start
put in "the temp dir" lands there):

- processes: live ones whose cwd, command line or environment (TMPDIR, tests.supervising.MARK)
  names a session directory;
- ports: sockets listening in the test process itself (servers run in a thread); a leftover
  process's ports go with it;
- cgroups: `gun-<hash of a supervisor's root>` (gun.agent.contain.name_for) of any directory
  in the basetemp, where contain puts them; another platform's roots hash to other names;
- Unix users: any whose home or comment names a session directory, or whose name is one of
  those cgroup names (app isolation's per-instance `gun-*` users, tests.pg's server users);
- temp files: whatever is left in the session's temp dir, but for the caches that programs keep
  there on purpose to reuse (TOOL_CACHES: Node 22's compile cache, which npm turns on, also in
  builds).

`left(made)` finds them, removes them (kills the processes' groups, removes the cgroups,
deletes the users and files) and returns one line for each, so the session fails naming them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from gun import isolation
from gun.agent import contain

# Below these, no test makes a supervisor root: not walked when hashing directory names.
NOT_ROOTS = frozenset({"node_modules", "site-packages", ".git", "__pycache__", "whisper"})
MAX_DEPTH = 10  # below the basetemp; the deepest root today is at 5
TOOL_CACHES = frozenset({"node-compile-cache"})


@dataclass(frozen=True)
class Made:
    """The directories of one test session."""

    basetemp: Path
    tmp: Path

    def pattern(self) -> re.Pattern[str]:
        """Matches either directory (or a path in it) wherever it is written in a text."""
        dirs = "|".join(re.escape(str(d)) for d in (self.basetemp, self.tmp))
        return re.compile(rf"(?:{dirs})(?=/|$|[\s\x00:=;\"'])")


def left(made: Made) -> list[str]:
    """Everything `made` left, removed; one line for each."""
    found = processes(made) + ports()
    names = roots(made.basetemp)
    found += cgroups(names) + users(made, set(names)) + temp_files(made.tmp)
    return found


def processes(made: Made) -> list[str]:
    pattern, me = made.pattern(), os.getpid()
    found: list[psutil.Process] = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if p.pid == me or p.status() == psutil.STATUS_ZOMBIE:
                continue
            env = "\0".join(f"{k}={v}" for k, v in p.environ().items())
            if pattern.search("\0".join([p.cwd(), *p.cmdline(), env])):
                found.append(p)
    lines = []
    for p in found:
        with contextlib.suppress(psutil.Error):
            lines.append(f"process {p.pid} ({' '.join(p.cmdline())[:200]}) in {p.cwd()}")
            pgid = os.getpgid(p.pid)
            if pgid != os.getpgrp():
                os.killpg(pgid, signal.SIGKILL)
            p.kill()
    psutil.wait_procs(found, timeout=5)
    return lines


def ports() -> list[str]:
    listening = [
        c for c in psutil.Process().net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN
    ]
    return [f"port {c.laddr.port} still listened on by the test process" for c in listening]


def roots(basetemp: Path) -> dict[str, Path]:
    """contain.name_for(d) -> d for every directory d in the basetemp."""
    names = {}
    for d in _walk(basetemp, MAX_DEPTH):
        names[contain.name_for(d)] = d
    return names


def _walk(top: Path, depth: int) -> Iterator[Path]:
    yield top
    if depth == 0:
        return
    with contextlib.suppress(OSError), os.scandir(top) as entries:
        for e in entries:
            if e.name not in NOT_ROOTS and e.is_dir(follow_symlinks=False):
                yield from _walk(Path(e.path), depth - 1)


def cgroups(roots: dict[str, Path], mount: Path = contain.MOUNT) -> list[str]:
    """The cgroups of `roots` (name -> root) in this process's cgroup, in each hierarchy."""
    try:
        mine = Path("/proc/self/cgroup").read_text()
    except OSError:
        return []
    lines = []
    for base, hierarchy in contain.hierarchies(mount):
        for d in sorted((base / contain.own_path(hierarchy, mine)).glob("gun-*")):
            if d.name in roots:
                lines.append(f"cgroup {d} of {roots[d.name]}")
                contain.remove(roots[d.name])
                with contextlib.suppress(OSError):
                    d.rmdir()
    return lines


def users(made: Made, names: set[str]) -> list[str]:
    lines = []
    for u in of_session(made, names, pwd.getpwall()):
        lines.append(f"Unix user {u.pw_name} ({u.pw_gecos}, home {u.pw_dir})")
        delete_user(u.pw_name)
    return lines


def of_session(
    made: Made, names: set[str], entries: Iterable[pwd.struct_passwd]
) -> list[pwd.struct_passwd]:
    """The users among `entries` named in `names`, or whose home or comment names a directory
    of the session."""
    pattern = made.pattern()
    return [u for u in entries if u.pw_name in names or pattern.search(f"{u.pw_dir}\0{u.pw_gecos}")]


def delete_user(name: str) -> None:
    """Kill every process of user `name`, then delete the user and its own group."""
    isolation.remove(name)


def temp_files(tmp: Path) -> list[str]:
    lines = []
    for entry in sorted(tmp.iterdir()):
        if entry.name not in TOOL_CACHES:
            lines.append(f"temp file {entry}")
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    return lines
