"""The release phase: a release's `release:` command, run once, before any of its processes.

The command runs like a one-off process (`bash -c` after `.profile.d`, the release's env,
`DYNO=release.1`, its own process group) in the unpacked release. Its output lines go to
`emit` as they come; a timeout kills the whole group. The result is (exit code, error), the
error being None when the command ran to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

from gun.agent.procrecord import ProcessSpec, command_line

DYNO = "release.1"
INHERITED = ("PATH", "HOME", "LANG")
DRAIN = 2.0  # seconds to read what is left in the pipe once the command has exited


async def run(
    cwd: Path,
    command: str,
    env: Mapping[str, str],
    timeout: float,
    emit: Callable[[str], None],
) -> tuple[int | None, str | None]:
    spec = ProcessSpec(name=DYNO, type="release", command=command, env=env, cwd=cwd, release=0)
    full = {k: os.environ[k] for k in INHERITED if k in os.environ}
    full.update(env)
    full.update(DYNO=DYNO, PS=DYNO)
    proc = await asyncio.create_subprocess_exec(
        shutil.which("bash") or "/bin/bash",
        "-c",
        command_line(spec),
        cwd=cwd,
        env=full,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    reader = asyncio.create_task(_lines(proc.stdout, emit))
    try:
        code: int | None = await asyncio.wait_for(proc.wait(), timeout)
        error = None
    except TimeoutError:
        code, error = None, f"the release command timed out after {timeout:g} seconds"
    finally:
        # the whole group: a child the command left behind must not outlive the release phase
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            await proc.wait()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(reader), DRAIN)
    reader.cancel()
    if code is not None and code < 0:
        code = 128 - code  # killed by a signal: the shell's convention
    return code, error


async def _lines(stream: asyncio.StreamReader, emit: Callable[[str], None]) -> None:
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line over the stream's limit: take what there is
            line = await stream.read(64 * 1024)
        if not line:
            return
        emit(line.decode("utf-8", "replace").rstrip("\n"))
