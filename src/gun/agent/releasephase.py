"""The release phase: a release's `release:` command, run once, before any of its processes.

The command runs like a one-off process (`bash -c` after `.profile.d`, the release's env,
`DYNO=release.1`, its own process group, the instance's Unix user if given) in the unpacked
release. Its output lines go to `emit` as they come; a timeout kills the whole group. The
result is (exit code, error), the error being None when the command ran to its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

from gun import lines
from gun.agent.procrecord import READ_CHUNK, ProcessSpec, environment, exit_code, gone, launch
from gun.isolation import UnixUser

DYNO = "release.1"
DRAIN = 2.0  # seconds to read what is left in the pipe once the command has exited


async def run(
    cwd: Path,
    command: str,
    env: Mapping[str, str],
    timeout: float,
    emit: Callable[[str], None],
    user: UnixUser | None = None,
) -> tuple[int | None, str | None]:
    spec = ProcessSpec(name=DYNO, type="release", command=command, env=env, cwd=cwd, release=0)
    full = environment(spec, DYNO=DYNO, PS=DYNO)
    with launch(spec, full, user) as how:
        proc = await asyncio.create_subprocess_exec(
            *how.argv,
            cwd=cwd,
            env=how.env,
            stdin=how.stdin,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    assert proc.stdout is not None
    reader = asyncio.create_task(_lines(proc.stdout, emit))
    error = None
    try:
        # the command's own exit, not proc.wait(): that also waits for the output pipe to
        # close, which a child the command left behind keeps open
        await asyncio.wait_for(gone(proc.pid, None), timeout)
    except TimeoutError:
        error = f"the release command timed out after {timeout:g} seconds"
    finally:
        # the whole group: a child the command left behind must not outlive the release phase
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        code = await proc.wait()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(reader), DRAIN)
    reader.cancel()
    if error is not None:
        return None, error
    return exit_code(code), None


async def _lines(stream: asyncio.StreamReader, emit: Callable[[str], None]) -> None:
    """Emit each line as it comes; a line over MAX_LINE bytes in pieces, as a process's are."""
    pending = b""
    while True:
        chunk = await stream.read(READ_CHUNK)
        pending += chunk
        found, used = lines.split_lines(pending, final=not chunk)
        pending = pending[used:]
        for line in found:
            emit(lines.text(line))
        if not chunk:
            return
