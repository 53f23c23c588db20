"""The layer's setup and teardown commands on this instance (OpsWorks' setup and shutdown
events): setup runs once, before the agent runs anything of the app; teardown once, when the
instance is deleted (`python -m gun.agent.uninstall`).

Each runs as the agent's user (root on a host), with `sh -c COMMAND` in the instance's root,
stdin from /dev/null and a small environment (PATH, HOME, GUN_APP, GUN_INSTANCE_ID). Its lines
go to the app's log as `heroku[setup]` / `heroku[teardown]` as they come, and the end of its
output (SETUP_OUTPUT_MAX) is kept: setup's in ROOT/state/setup.json and in every report to
meta, which shows it and leaves the instance `setup_failed` (nothing placed on it) when the
command fails. A setup that failed is not run again: the instance is deleted and made anew.
A setup cut short by the agent's stop runs again when the agent starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from gun import atomic
from gun.model import SetupState
from gun.protocol import SETUP_OUTPUT_MAX, SetupRun

log = logging.getLogger("gun.agent")
STATE = Path("state") / "setup.json"
LINE_MAX = 10_000  # bytes of output in one line; a longer one is cut
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

Sink = Callable[[str, str], None]  # (source, line): the app's log


def environment(root: Path, app: str, instance: str) -> dict[str, str]:
    return {
        "PATH": PATH,
        "HOME": os.environ.get("HOME", "/root"),
        "GUN_APP": app,
        "GUN_INSTANCE_ID": instance,
        "GUN_ROOT": str(root),
    }


async def run_command(
    command: str, root: Path, env: dict[str, str], source: str, sink: Sink, progress: list[str]
) -> int | None:
    """`sh -c command` in `root`: each line to `sink` and `progress` as it comes; its exit code
    (None when it was killed by a signal). Cancelled, it kills the command's process group.

    Output is text as the protocol carries it: a NUL becomes U+FFFD, a line longer than LINE_MAX
    is cut into lines of LINE_MAX, and `progress` keeps only about the last SETUP_OUTPUT_MAX
    characters (a setup may print without end)."""
    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", command, cwd=root, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    kept = 0

    def emit(raw: bytes) -> None:
        nonlocal kept
        text = raw.decode("utf-8", "replace").replace("\x00", "\ufffd")
        progress.append(text)
        kept += len(text) + 1
        while kept > 2 * SETUP_OUTPUT_MAX and len(progress) > 1:
            kept -= len(progress.pop(0)) + 1
        sink(source, text)

    try:
        pending = b""
        while chunk := await proc.stdout.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                emit(raw)
            while len(pending) > LINE_MAX:
                emit(pending[:LINE_MAX])
                pending = pending[LINE_MAX:]
        if pending:
            emit(pending)
        code = await proc.wait()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    return None if code < 0 else code


def tail(lines: list[str]) -> str:
    """The end of the output, at most SETUP_OUTPUT_MAX characters."""
    text = "\n".join(lines)
    return text[-SETUP_OUTPUT_MAX:]


class Setup:
    """This instance's setup: run once, remembered in ROOT/state/setup.json."""

    def __init__(self, root: Path, sink: Sink) -> None:
        self.root, self.sink = root, sink
        self._lines: list[str] = []
        self.run: SetupRun | None = self._load()

    def _load(self) -> SetupRun | None:
        try:
            saved = json.loads((self.root / STATE).read_text())
            if saved["state"] in ("succeeded", "failed"):
                return SetupRun(saved["state"], saved["exit_code"], saved["output"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return None  # never run, or cut short: it runs (again)

    def report(self) -> SetupRun | None:
        """How it goes, for the next report to meta."""
        if self.run is not None and self.run.state == "running":
            return SetupRun("running", None, tail(self._lines))
        return self.run

    async def ensure(self, command: str, app: str, instance: str) -> bool:
        """Whether the setup has succeeded: it runs now if it never ran to its end."""
        if self.run is not None and self.run.state != "running":
            return self.run.state == "succeeded"
        self._lines = []
        self.run = SetupRun("running", None, "")
        log.info("running the layer's setup")
        env = environment(self.root, app, instance)
        try:
            code = await run_command(
                command, self.root, env, "heroku[setup]", self.sink, self._lines
            )
        except OSError as e:  # no sh, the root gone
            self._lines.append(f"the setup could not start: {e}")
            code = None
        state: SetupState = "succeeded" if code == 0 else "failed"
        self.run = SetupRun(state, code, tail(self._lines))
        atomic.write(
            self.root / STATE,
            json.dumps({"state": state, "exit_code": code, "output": self.run.output}),
        )
        log.info("the layer's setup %s (exit code %s)", state, code)
        return state == "succeeded"


TEARDOWN_SECONDS = 300  # a teardown still running then is killed


def teardown(root: Path, timeout: float = TEARDOWN_SECONDS) -> str | None:
    """Run the layer's teardown of the instance at `root` (as its last slice names it), before
    its agent is stopped; its output (the end of it, and how it ended), or None without one."""
    from gun.agent import files

    desired = files.load_desired(root)
    if desired is None or desired.teardown is None:
        return None
    lines: list[str] = []
    env = environment(root, desired.app, desired.instance)

    async def run() -> int | None:
        return await asyncio.wait_for(
            run_command(desired.teardown or "", root, env, "teardown", lambda *_: None, lines),
            timeout,
        )

    try:
        code = asyncio.run(run())
        ended = f"the teardown exited {code}" if code is not None else "the teardown was killed"
    except TimeoutError:
        ended = f"the teardown was killed after {timeout:g} s"
    except OSError as e:
        ended = f"the teardown could not start: {e}"
    return tail([*lines, ended])
