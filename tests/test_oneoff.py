"""One-off processes on the agent (gun.agent.oneoff): real processes attached over a real
socket pair to a tiny client that speaks gun.rendezvous frames (or raw bytes, as Heroku's do).

Each test is a session: what the client typed, what came back, the exit code, and the platform's
lines for the app's log. Every process carries MARK in its environment; the `root` fixture
fails the test if any is left, and the key cases run again as the instance's Unix user (root).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gun import rendezvous as rv
from gun.agent.oneoff import OneOff, attach
from gun.agent.procrecord import ProcessSpec
from gun.isolation import UnixUser
from gun.rendezvous import Framing, Kind
from tests.supervising import MARK, PYTHON, RUN_AS, no_leaks, ours, run_as, runs_as

Script = Callable[["Client"], Awaitable[None]]


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "instance"
    app = root / "releases" / "v1"
    (app / ".profile.d").mkdir(parents=True)
    (app / ".profile.d" / "greet.sh").write_text("export FROM_PROFILE=sourced\n")
    with no_leaks(root):
        yield root


@pytest.fixture(params=RUN_AS)
def user(request: pytest.FixtureRequest, root: Path) -> Iterator[UnixUser | None]:
    with run_as(request.param, root) as made:
        yield made


def one_off(root: Path, command: str, **how: Any) -> OneOff:
    env = {MARK: str(root), "GREETING": "hello"}
    spec = ProcessSpec("run.1", "run", command, env, root / "releases" / "v1", 1)
    defaults: dict[str, Any] = {
        "tty": False, "size": None, "term": None, "ttl": 60.0, "framing": Framing.GUN,
    }  # fmt: skip
    return OneOff(spec, **{**defaults, **how})


@dataclass
class Client:
    """The other end: what it got back, and how it types."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    framing: Framing
    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    code: int | None = None
    closed: bool = False

    async def read_all(self) -> None:
        while True:
            if self.framing == Framing.RAW:
                data = await self.reader.read(rv.READ_CHUNK)
                if not data:
                    break
                self.out += data
                continue
            got = await rv.read_frame(self.reader)
            if got is None:
                break
            kind, payload = got
            assert len(payload) <= rv.READ_CHUNK
            if kind == Kind.STDOUT:
                self.out += payload
            elif kind == Kind.STDERR:
                self.err += payload
            else:
                assert kind == Kind.EXIT and self.code is None
                self.code = rv.read_exit(payload)
        self.closed = True

    async def until(self, text: bytes, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.out:
            assert time.monotonic() < deadline, f"{text!r} never came: {bytes(self.out)!r}"
            await asyncio.sleep(0.02)

    def type(self, data: bytes) -> None:
        self.writer.write(rv.frame(Kind.STDIN, data) if self.framing == Framing.GUN else data)

    def end(self) -> None:
        self.writer.write(rv.frame(Kind.STDIN_END))

    def resize(self, cols: int, rows: int) -> None:
        self.writer.write(rv.resize(cols, rows))

    def hang_up(self) -> None:
        self.writer.transport.abort()


@dataclass
class Session:
    returned: int | None
    out: bytes
    err: bytes
    code: int | None  # what the EXIT frame said
    said: list[str]
    took: float

    @property
    def text(self) -> str:
        return self.out.decode(errors="replace")


def session(one: OneOff, script: Script, user: UnixUser | None = None, **kw: Any) -> Session:
    async def run() -> Session:
        mine, theirs = socket.socketpair()
        agent_reader, agent_writer = await asyncio.open_connection(sock=mine)
        reader, writer = await asyncio.open_connection(sock=theirs)
        client = Client(reader, writer, one.framing)
        reading = asyncio.create_task(client.read_all())
        said: list[str] = []
        started = time.monotonic()
        running = asyncio.create_task(
            attach(one, agent_reader, agent_writer, user=user, say=said.append, **kw)
        )
        try:
            await script(client)
            returned = await running
            took = time.monotonic() - started
            if not client.writer.transport.is_closing():
                await asyncio.wait_for(reading, 10)
        finally:
            running.cancel()
            reading.cancel()
            writer.close()
        return Session(returned, bytes(client.out), bytes(client.err), client.code, said, took)

    return asyncio.run(asyncio.wait_for(run(), 60))


def typing(*keys: bytes, end: bool = True) -> Script:
    async def script(client: Client) -> None:
        for k in keys:
            client.type(k)
        if end:
            client.end()

    return script


def lifecycle(command: str, code: int) -> list[str]:
    return [
        f"Starting process with command `{command}`",
        "State changed from starting to up",
        f"Process exited with status {code}",
        "State changed from up to complete",
    ]


# -- without a terminal ---------------------------------------------------------------------


def test_piped_python_prints_42_and_the_run_exits_0(root: Path, user: UnixUser | None) -> None:
    seen: list[int] = []
    one = one_off(root, f"{PYTHON} -c 'import os, sys; exec(sys.stdin.read()); print(os.getuid())'")
    s = session(one, typing(b"print(6", b"*7)\n"), user, started=seen.append)
    assert (s.returned, s.code, s.err) == (0, 0, b"")
    assert s.text.split() == ["42", str(user.uid if user else os.getuid())]
    assert s.said == lifecycle(one.spec.command, 0)
    assert len(seen) == 1


def test_the_exit_code_is_the_commands_and_stderr_comes_apart(root: Path) -> None:
    s = session(one_off(root, "echo out; echo err >&2; exit 3"), typing())
    assert (s.returned, s.code, s.out, s.err) == (3, 3, b"out\n", b"err\n")


def test_the_environment_is_a_procfile_processs_plus_the_clients_terminal(
    root: Path, user: UnixUser | None
) -> None:
    show = 'echo "$DYNO $PS $PORT $GREETING $FROM_PROFILE $(printenv TERM || echo none)"; pwd'
    show += "; printenv COLUMNS LINES"
    s = session(one_off(root, show), typing(), user, port=5123)
    assert s.text.split() == [
        "run.1", "run.1", "5123", "hello", "sourced", "none", str(root / "releases" / "v1"),
    ]  # fmt: skip
    s = session(one_off(root, show, tty=True, size=(90, 20)), typing(end=False), user, port=5123)
    assert s.text.split()[5:] == ["xterm", str(root / "releases" / "v1"), "90", "20"]


def test_fifty_megabytes_of_stdout_arrive_intact(root: Path, user: UnixUser | None) -> None:
    big = root / "releases" / "v1" / "big"
    big.write_bytes(os.urandom(50_000_000))
    big.chmod(0o644)
    s = session(one_off(root, "cat big"), typing(), user)
    assert (s.returned, s.code) == (0, 0)
    assert hashlib.sha256(s.out).hexdigest() == hashlib.sha256(big.read_bytes()).hexdigest()
    assert s.took < 10, f"50 MB took {s.took:.2f} s"


def test_raw_framing_ends_input_at_ctrl_d_and_merges_stderr(root: Path) -> None:
    """Heroku's clients: bytes both ways, `\\x04` for end of input, no exit frame."""
    one = one_off(root, "cat; echo done >&2", framing=Framing.RAW)
    s = session(one, typing(b"hello\n", b"there\x04ignored", end=False))
    assert (s.returned, s.code, s.out, s.err) == (0, None, b"hello\nthere" + b"done\n", b"")


# -- under a terminal -----------------------------------------------------------------------


def test_a_terminal_is_the_processs_own_with_the_clients_size_and_resizes(
    root: Path, user: UnixUser | None
) -> None:
    async def script(client: Client) -> None:
        await client.until(b"ready")
        client.resize(132, 43)
        client.type(b"go\r")

    command = "tty; stty size; echo ready; read line; stty size; ps -o pid=,sid=,tty= -p $$"
    s = session(one_off(root, command, tty=True, size=(100, 30)), script, user)
    lines = s.text.splitlines()
    assert lines[0].startswith("/dev/pts/") and lines[1:3] == ["30 100", "ready"]
    assert lines[4] == "43 132" and s.code == 0
    pid, sid, tty = lines[5].split()
    assert pid == sid and tty == lines[0].removeprefix("/dev/")  # it leads a session on it


def test_ctrl_c_interrupts_the_running_job_not_the_session(
    root: Path, user: UnixUser | None
) -> None:
    async def script(client: Client) -> None:
        await client.until(b">>> ")
        client.type(b"while True: pass\r")
        await asyncio.sleep(0.5)
        client.type(b"\x03")
        await client.until(b"KeyboardInterrupt")
        client.type(b'import os; print(os.environ["DYNO"], 6*7)\r')
        await client.until(b"run.1 42")
        client.type(b"exit()\r")

    s = session(one_off(root, f"{PYTHON} -q -i", tty=True), script, user)
    assert (s.returned, s.code) == (0, 0)


def test_ctrl_c_reaches_a_job_of_an_interactive_shell(root: Path) -> None:
    async def script(client: Client) -> None:
        await client.until(b"$ ")
        client.type(b"sleep 30; echo $((1+1))done\r")
        await asyncio.sleep(0.5)
        client.type(b"\x03")
        client.type(b"echo alive $((6*7))\r")
        await client.until(b"alive 42")
        client.type(b"exit 5\r")

    s = session(one_off(root, "PS1='$ ' exec bash --norc --noprofile -i", tty=True), script)
    assert (s.returned, s.code) == (5, 5) and b"2done" not in s.out and s.took < 10


def test_end_of_input_under_a_terminal_is_its_eof_character(root: Path) -> None:
    s = session(one_off(root, "cat; echo done", tty=True), typing(b"abc\r"))
    assert s.code == 0 and s.text.split() == ["abc", "abc", "done"]  # echoed, then cat's


# -- stopping -------------------------------------------------------------------------------


async def hang_up_when(text: bytes, client: Client) -> None:
    await client.until(text)
    client.hang_up()


def gone_within(root: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while ours(root):
        assert time.monotonic() < deadline, f"left running: {[p.pid for p in ours(root)]}"
        time.sleep(0.05)


def test_a_client_that_goes_away_hangs_the_whole_session_up(
    root: Path, user: UnixUser | None
) -> None:
    async def script(client: Client) -> None:
        await client.until(b"$ ")
        client.type(b"sleep 1000 & sleep 1001\r")  # jobs in groups of their own
        await asyncio.sleep(0.5)
        client.hang_up()

    one = one_off(root, "PS1='$ ' exec bash --norc --noprofile -i", tty=True)
    s = session(one, script, user)
    assert s.took < 10 and not ours(root)
    assert s.said[2] == "Stopping all processes with SIGHUP: its client went away"
    assert s.said[3:] == ["Process exited with status 129", "State changed from up to complete"]


def test_what_ignores_hangups_is_killed_after_the_grace(root: Path, user: UnixUser | None) -> None:
    command = "trap '' HUP TERM; sh -c 'sleep 1000' & echo ready; sleep 1001"
    s = session(one_off(root, command), lambda c: hang_up_when(b"ready", c), user, grace=1)
    assert 3 <= s.took < 10 and not ours(root)
    assert s.said[2:] == [
        "Stopping all processes with SIGHUP: its client went away",
        "Error R12 (Exit timeout) -> At least one process failed to exit within 1 seconds of "
        "SIGTERM",
        "Stopping all processes with SIGKILL",
        "Process exited with status 137",
        "State changed from up to complete",
    ]


def test_what_the_process_leaves_behind_is_stopped_after_its_exit(root: Path) -> None:
    s = session(one_off(root, "sleep 1000 & echo bye"), typing())
    assert (s.code, s.out) == (0, b"bye\n") and s.took < 5
    gone_within(root, 3)
    assert s.said[-1] == "Stopping all processes with SIGHUP: the process exited"


def test_the_time_limit_stops_a_run_and_says_so(root: Path) -> None:
    s = session(one_off(root, "echo started; sleep 1000", ttl=1), typing(end=False))
    line = "gun: run.1 stopped after its time limit of 1 s (GUN_RUN_TTL)"
    assert (s.out, s.err, s.code, s.returned) == (b"started\n", line.encode() + b"\n", 143, 143)
    assert s.said[2] == "Stopping all processes with SIGTERM: " + line.removeprefix("gun: ")


def test_a_run_stopped_on_request_is_told_so(root: Path) -> None:
    """ps.stop:run.1 sets the run's `stop`."""
    stop = asyncio.Event()

    async def script(client: Client) -> None:
        await client.until(b"started")
        stop.set()

    s = session(one_off(root, "echo started; sleep 1000"), script, stop=stop)
    assert (s.err, s.code, s.returned) == (b"gun: run.1 was stopped\n", 143, 143)
    assert s.said[2] == "Stopping all processes with SIGTERM: run.1 was stopped"


def test_a_malformed_frame_ends_the_run_like_a_disconnect(root: Path) -> None:
    async def script(client: Client) -> None:
        await client.until(b"ready")
        client.writer.write(b"z\0\0\0\0")

    s = session(one_off(root, "echo ready; exec sleep 1000"), script)
    assert s.returned == 129 and s.code is None and s.took < 10
    assert s.said[2] == (
        "Stopping all processes with SIGHUP: its client broke the protocol "
        "(rendezvous: unknown frame kind b'z')"
    )


def test_a_run_that_cannot_start_says_why(root: Path) -> None:
    one = one_off(root, "true")
    gone = OneOff(
        ProcessSpec("run.2", "run", "true", {}, root / "releases" / "v9", 9),
        tty=False, size=None, term=None, ttl=60, framing=Framing.GUN,
    )  # fmt: skip
    s = session(gone, typing(end=False))
    why = f"its release directory {root / 'releases' / 'v9'} is gone"
    assert (s.returned, s.code, s.err) == (
        None,
        127,
        f"gun: run.2 could not start: {why}\n".encode(),
    )
    assert s.said == [f"Process failed to start: {why}"]
    assert session(one, typing()).code == 0


def test_the_process_runs_as_the_instances_user(root: Path, user: UnixUser | None) -> None:
    async def script(client: Client) -> None:
        await client.until(b"ready")
        [proc] = [p for p in ours(root) if p.name() == "sleep"]
        assert runs_as(proc.pid, user)
        client.hang_up()

    session(one_off(root, "echo ready; exec sleep 1000", tty=True), script, user)
