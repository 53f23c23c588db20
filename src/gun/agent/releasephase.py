"""The release phase: a release's `release:` command, run once, before any of its processes.

The command runs like a one-off process (`bash -c` after `.profile.d`, the release's env,
`DYNO=release.1`, its own process group, the instance's Unix user if given) in the unpacked
release. Its output lines go to `emit` as they come; a timeout kills the whole group. The
result is (exit code, error), the error being None when the command ran to its end.

`ReleasePhases` is the agent's side: the phase of each pending release its slices name runs
once, its output goes to app.log and to meta as it comes (every 0.3 s), and its result is
posted until meta has it. Whatever keeps the release from being prepared here is a result
too (an error), so that the release fails rather than hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

from gun import lines
from gun.agent.materialise import Materialiser
from gun.agent.metaclient import MetaClient, Refused, Unreachable
from gun.agent.procrecord import READ_CHUNK, ProcessSpec, environment, exit_code, gone, launch
from gun.agent.supervisor import Supervisor
from gun.errors import GunError
from gun.isolation import UnixUser
from gun.loops import why
from gun.protocol import ReleasePhaseOrder, Slice

DYNO = "release.1"
log = logging.getLogger("gun.agent")
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


class ReleasePhases:
    """The release phases of one instance (see the module docstring)."""

    def __init__(
        self,
        meta: MetaClient,
        api: str,
        instance: str,
        releases: Materialiser,
        supervisor: Supervisor,
        stopping: asyncio.Event,
    ) -> None:
        self.meta = meta
        self._api = api  # the instance's prefix of meta's agent API
        self.instance = instance
        self.releases = releases
        self.supervisor = supervisor
        self.stopping = stopping
        self._tasks: dict[int, asyncio.Task[None]] = {}  # release phases run, by version

    def start(self, slice_: Slice) -> None:
        """Run the phase the slice names, unless it ran (or runs) already."""
        phase = slice_.release_phase
        if phase is not None and phase.release not in self._tasks:
            task = asyncio.create_task(self._run(phase, slice_.app))
            self._tasks[phase.release] = task

    async def _run(self, phase: ReleasePhaseOrder, app: str) -> None:
        """Run the pending release's command once, its output sent to meta as it comes."""
        version = phase.release
        api = f"{self._api}/releases/{version}"
        applog = self.supervisor.applog
        lines: list[str] = []
        done = asyncio.Event()

        def emit(line: str) -> None:
            lines.append(line + "\n")
            applog.write("app", DYNO, [line])

        async def send() -> None:
            while lines:
                text = "".join(lines)
                try:
                    await self.meta.call("POST", f"{api}/output", body={"text": text})
                except (Refused, Unreachable) as e:
                    log.warning("release phase output not sent: %s", e)
                    return
                del lines[: text.count("\n")]

        async def pump() -> None:
            while not done.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 0.3)
                await send()

        pumper = asyncio.create_task(pump())
        applog.write("heroku", DYNO, [f"Release v{version} phase"])
        try:
            cwd = await self.releases.prepared(version, phase, app)
            emit(f"Running `{phase.command}` on {self.instance}")
            code, error = await run(
                cwd, phase.command, phase.env, phase.timeout, emit, self.supervisor.user
            )
        except Exception as e:  # whatever it is, meta hears of it: the release fails, not hangs
            if not isinstance(e, GunError | Refused | Unreachable | OSError):
                log.exception("the release phase of v%s failed", version)
            code, error = None, f"{self.instance} could not prepare v{version}: {why(e)}"
        done.set()
        await pumper
        delay = 0.5
        while not self.stopping.is_set():
            try:
                await self.meta.call(
                    "POST", f"{api}/result", body={"exit_code": code, "error": error}
                )
                return
            except Refused as e:
                log.error("meta refused the release phase result of v%s: %s", version, e)
                return
            except Unreachable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
