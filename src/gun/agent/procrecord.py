"""One process as the OS and the disk know it: spec, record, pid and group, raw output.

The supervisor decides what happens to a process; this module makes the system calls.

ROOT/state/procs/NAME.json  the spec, pid, pgid, start time, port, restarts and tail offset,
                            written atomically so a new agent can re-adopt the process
ROOT/log/procs/NAME.out     everything the process wrote to stdout and stderr (O_APPEND)
(ROOT/log/app.log, where the supervisor copies every line, is gun.agent.applog's.)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from gun import atomic, isolation, lines
from gun.errors import InvalidParams
from gun.isolation import UnixUser
from gun.model import (
    PROCESS_NAME,
    PROCESS_STATES,
    ProcessState,
    check_config_key,
    check_process_type,
)

State = ProcessState  # model.py's: one Literal of the process states, everywhere
READ_CHUNK = 1 << 20  # bytes read from one output file per tail tick, at most
TICK_LINES = 10_000  # lines taken from one output file per tail tick, at most
GROUP_POLL = 0.05  # seconds between checks that a process group is empty
ZOMBIE_SCAN = 0.25  # seconds between looks through /proc for a group of zombies only
ALIVE_POLL = 0.5  # seconds between checks of a pid, when there is no pidfd

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessSpec:
    """What to run: one process of a release, e.g. web.1 running the Procfile's web command."""

    name: str  # web.1
    type: str  # web
    command: str  # from the Procfile, run with bash -c
    env: Mapping[str, str] = field(repr=False)  # the release's config vars
    cwd: Path  # ROOT/releases/vN
    release: int

    def __post_init__(self) -> None:
        match = PROCESS_NAME.match(self.name)
        if not match:
            raise InvalidParams(
                f"process name {self.name!r} is invalid: write it as TYPE.N, e.g. web.1"
            )
        check_process_type(self.type)
        if match.group(1) != self.type:
            raise InvalidParams(
                f"process name {self.name!r} does not match its type {self.type!r}: "
                f"name it {self.type}.N"
            )
        if not self.command.strip():
            raise InvalidParams(f"process {self.name} has an empty command: give it one to run")
        for key in self.env:
            check_config_key(key)


@dataclass(frozen=True)
class ProcessRecord:
    spec: ProcessSpec
    state: State
    pid: int | None
    pgid: int | None
    create_time: float | None  # psutil.Process(pid).create_time(): tells a reused pid apart
    port: int | None
    restarts: int
    offset: int  # bytes of NAME.out already copied to app.log
    started: datetime  # when the current leader was spawned
    since: datetime  # when the state last changed

    def to_json(self) -> dict[str, Any]:
        s = self.spec
        return {
            "name": s.name,
            "type": s.type,
            "command": s.command,
            "env": dict(s.env),
            "cwd": str(s.cwd),
            "release": s.release,
            "state": self.state,
            "pid": self.pid,
            "pgid": self.pgid,
            "create_time": self.create_time,
            "port": self.port,
            "restarts": self.restarts,
            "offset": self.offset,
            "started": self.started.isoformat(),
            "since": self.since.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord:
        """Read a record back; raises ValueError (or KeyError, TypeError) if it is malformed."""
        spec = ProcessSpec(
            name=str(data["name"]),
            type=str(data["type"]),
            command=str(data["command"]),
            env={str(k): str(v) for k, v in dict(data["env"]).items()},
            cwd=Path(str(data["cwd"])),
            release=int(data["release"]),
        )
        state = next((s for s in PROCESS_STATES if s == data["state"]), None)
        if state is None:
            raise ValueError(f"state {data['state']!r} is not one of {', '.join(PROCESS_STATES)}")
        create_time = data["create_time"]
        return cls(
            spec=spec,
            state=state,
            pid=_opt_int(data["pid"]),
            pgid=_opt_int(data["pgid"]),
            create_time=None if create_time is None else float(create_time),
            port=_opt_int(data["port"]),
            restarts=int(data["restarts"]),
            offset=int(data["offset"]),
            started=datetime.fromisoformat(str(data["started"])),
            since=datetime.fromisoformat(str(data["since"])),
        )


def _opt_int(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    return value


def record_fields(obj: object) -> dict[str, Any]:
    """The attributes of obj that a ProcessRecord has, by name."""
    return {f.name: getattr(obj, f.name) for f in fields(ProcessRecord)}


# -- files -------------------------------------------------------------------------------------


def record_path(root: Path, name: str) -> Path:
    return root / "state" / "procs" / f"{name}.json"


def out_path(root: Path, name: str) -> Path:
    return root / "log" / "procs" / f"{name}.out"


def save(root: Path, record: ProcessRecord, key: str | None = None) -> None:
    """Write the record atomically at state/procs/KEY.json (KEY: the process's name unless
    given). Not fsynced: it is written on every tail pass that moved the offset, and a crash of
    the machine ends its processes anyway."""
    path = record_path(root, key or record.spec.name)
    atomic.write(path, json.dumps(record.to_json(), sort_keys=True), mode=0o600, sync=False)


def remove(root: Path, name: str) -> None:
    record_path(root, name).unlink(missing_ok=True)


def load_all(root: Path, subdir: str = "") -> list[ProcessRecord]:
    """Every readable record (in state/procs/SUBDIR); an unreadable one is logged and renamed
    NAME.json.bad."""
    records = []
    for path in sorted((root / "state" / "procs" / subdir).glob("*.json")):
        try:
            records.append(ProcessRecord.from_json(json.loads(path.read_bytes())))
        except (OSError, ValueError, KeyError, TypeError, InvalidParams) as e:
            logger.warning("process record %s is unreadable and was set aside: %s", path, e)
            path.replace(path.with_name(path.name + ".bad"))
    return records


# -- the process and its group -----------------------------------------------------------------


# Heroku's convention: buildpacks leave .profile.d/*.sh in the app, sourced before each
# command (the python buildpack puts its venv on PATH there)
PROFILE_D = 'for f in .profile.d/*.sh; do [ -r "$f" ] && . "$f"; done; '


def command_line(spec: ProcessSpec) -> str:
    """What `bash -c` runs: the command, after the app's .profile.d scripts if it has any."""
    profile = spec.cwd / ".profile.d"
    if profile.is_dir() and any(profile.glob("*.sh")):
        return PROFILE_D + spec.command
    return spec.command


INHERITED = ("PATH", "LANG")  # from the agent, unless the release sets them


def environment(spec: ProcessSpec, **extra: str) -> dict[str, str]:
    """A process's environment: the agent's PATH and LANG, HOME (the release directory, as
    Heroku's HOME is /app), the release's config vars, then `extra` (PORT, DYNO, PS)."""
    env = {k: os.environ[k] for k in INHERITED if k in os.environ}
    env["HOME"] = str(spec.cwd)
    env.update(spec.env)
    env.update(extra)
    return env


def launch(
    spec: ProcessSpec, env: Mapping[str, str], user: UnixUser | None, prefix: str = ""
) -> contextlib.AbstractContextManager[isolation.Launch]:
    """How to start one of an app's processes (a Procfile's, or the release phase's): `bash -c
    PREFIX COMMAND_LINE` in its release directory, as `user` if given (gun.isolation.launch)."""
    return isolation.launch(_bash(), command_line(spec), env, user, prefix)


@functools.cache
def _bash() -> str:
    return shutil.which("bash") or "/bin/bash"


def spawn(
    spec: ProcessSpec,
    env: Mapping[str, str],
    out: Path,
    prefix: str = "",
    user: UnixUser | None = None,
) -> int:
    """Start the process (`launch`) in a new session, output to a fresh file `out`; its pid.

    The caller reaps it (os.waitpid once `gone` returns), so Popen is told to forget it.
    """
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        with launch(spec, env, user, prefix) as how:
            popen = subprocess.Popen(
                how.argv,
                cwd=spec.cwd,
                env=how.env,
                stdin=how.stdin,
                stdout=fd,
                stderr=fd,
                start_new_session=True,
            )
    finally:
        os.close(fd)
    popen.returncode = 0  # not a status: it keeps Popen from reaping or warning about it
    return popen.pid


def create_time(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def same_process(pid: int, created: float | None) -> bool:
    """Whether pid is alive, not a zombie, and (if given) the process created at `created`."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return created is None or abs(proc.create_time() - created) < 0.05
    except psutil.Error:
        return False


async def gone(pid: int, create_time: float | None) -> None:
    """Return once process pid has exited: a pidfd wakes the loop; without pidfd, poll."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # no pidfd: Linux before 5.3, or not Linux
        while same_process(pid, create_time):
            await asyncio.sleep(ALIVE_POLL)
        return
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await ready
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def reaped(pid: int, create_time: float | None) -> int | None:
    """Wait for the process to exit and reap it; its exit code, None if not our child."""
    await gone(pid, create_time)
    try:
        found, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None  # an earlier agent started it: its status went to its parent
    return exit_code(os.waitstatus_to_exitcode(status)) if found else None


def killpg(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def group_exists(pgid: int) -> bool:
    """Whether the group has a member, zombies included."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. Zombies do not count: a killed child of a
    killed leader is an orphan, reaped by PID 1, which here sometimes takes seconds. Reads all
    of /proc when the group has members: not for every poll."""
    if not group_exists(pgid):
        return False
    try:
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    except OSError:  # no /proc: count the zombies too
        return True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False


async def vanish(
    pgid: int, exited: asyncio.Future[int | None] | None, timeout: float | None
) -> bool:
    """Wait until the leader has exited and the group is empty; False if timeout passes first."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    if exited is not None and not exited.done():
        await asyncio.wait({exited}, timeout=timeout)
        if not exited.done():
            return False
    scanned = loop.time()
    while group_exists(pgid):
        if loop.time() - scanned >= ZOMBIE_SCAN:
            scanned = loop.time()
            if not group_alive(pgid):  # only zombies left
                break
        if deadline is not None and loop.time() >= deadline:
            return False
        await asyncio.sleep(GROUP_POLL)
    return True


def exit_code(returncode: int) -> int:
    """A shell's view of an exit: killed by signal N is 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


# -- output ------------------------------------------------------------------------------------


def read_lines(fd: int, offset: int, *, final: bool) -> tuple[list[str], int]:
    """Lines an output file gained after offset, and the offset after them.

    Takes one chunk and TICK_LINES lines at most, unless final (the writer is gone: read all,
    including an unfinished last line). A file shorter than offset was truncated: start over.
    """
    size = os.fstat(fd).st_size
    if size < offset:
        offset = 0
    texts: list[str] = []
    while offset < size:
        data = os.pread(fd, min(size - offset, READ_CHUNK), offset)
        if not data:
            break
        last = final and offset + len(data) >= size
        found, used = lines.split_lines(data, final=last, most=None if final else TICK_LINES)
        texts += [lines.text(line) for line in found]
        offset += used
        if not final or used == 0:
            break
    return texts, offset
