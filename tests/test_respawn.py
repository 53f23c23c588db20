"""The platform's processes under `gun up` (gun.respawn), with real processes: a death is said
with how it ended and the end of its log, the process is started again at once and then after a
growing wait, the ladder starts over once it stayed up, and stop() is the end of it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import pytest

from gun.agent.backoff import Backoff
from gun.respawn import Respawned, ended
from tests.meta import free_port

QUICK = Backoff(initial=0.2, factor=2.0, cap=0.8, reset_after=60.0)
DIES = "import sys; print('about to fail'); print('bad config'); sys.exit(3)"


@contextmanager
def respawned(tmp: Path, code: str, url: str, backoff: Backoff = QUICK) -> Iterator[Respawned]:
    said: list[str] = []
    r = Respawned(
        "thing", [sys.executable, "-c", code], dict(os.environ), tmp / "thing.log", url,
        said.append, backoff,
    )  # fmt: skip
    r.said = said  # type: ignore[attr-defined]
    try:
        yield r
    finally:
        r.stop()
        if r.proc is not None and r.proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(r.proc.pid, signal.SIGKILL)
            r.proc.wait()


def watch(r: Respawned, seconds: float) -> list[float]:
    """Call check() every 10 ms for `seconds`; how long each restart came after the death was
    said."""
    said: list[str] = r.said  # type: ignore[attr-defined]
    began = time.monotonic()
    deaths, waits, seen = [], [], r.restarts
    while time.monotonic() - began < seconds:
        r.check()
        if len(said) > len(deaths):
            deaths.append(time.monotonic())
        if r.restarts != seen:
            seen = r.restarts
            waits.append(time.monotonic() - deaths[-1])
        time.sleep(0.01)
    return waits


def test_a_process_that_dies_is_said_and_started_again_at_once_then_after_a_growing_wait(
    tmp_path: Path,
) -> None:
    with respawned(tmp_path, DIES, "http://127.0.0.1:9") as r:
        r.start()
        first = r.pid
        waits = watch(r, 3.5)
        said: list[str] = r.said  # type: ignore[attr-defined]
    # the first restart at once, then after 0.2, 0.4, 0.8 (the cap), 0.8 s
    assert len(waits) >= 5 and waits[0] < 0.1, waits
    for got, wait in zip(waits[1:5], (0.2, 0.4, 0.8, 0.8), strict=True):
        # a death is seen by polling (every 0.01 s) after it happened: a wait may look shorter
        assert wait - 0.05 <= got < wait + 0.2, waits
    assert [s.split(": restarting it ")[1].split(";")[0] for s in said[:5]] == [
        "now",
        "in 0.2 s",
        "in 0.4 s",
        "in 0.8 s",
        "in 0.8 s",
    ]
    assert said[0] == (
        f"thing (pid {first}) exited with status 3: restarting it now; apps and agents keep"
        f" running. The end of {tmp_path / 'thing.log'}:\n  about to fail\n  bad config"
    )
    assert said[1].endswith(
        f"exited with status 3: restarting it in 0.2 s; apps and agents keep running. The end"
        f" of {tmp_path / 'thing.log'}:" + "\n  about to fail\n  bad config" * 2
    )


def test_a_killed_server_is_said_started_again_and_said_back_once_it_answers(
    tmp_path: Path,
) -> None:
    port = free_port()
    server = (
        "import http.server as h;"
        f" h.test(h.SimpleHTTPRequestHandler, port={port}, bind='127.0.0.1')"
    )
    url = f"http://127.0.0.1:{port}"
    with respawned(tmp_path, server, url) as r:
        r.start()
        r.wait_answering(10)
        killed = r.pid
        assert killed is not None
        os.killpg(killed, signal.SIGKILL)
        deadline = time.monotonic() + 10
        said: list[str] = r.said  # type: ignore[attr-defined]
        while len(said) < 2 and time.monotonic() < deadline:
            r.check()
            time.sleep(0.02)
        assert said[0].startswith(f"thing (pid {killed}) was killed by SIGKILL: restarting it now")
        assert said[1] == f"thing is back on {url} (pid {r.pid})"
        assert r.pid != killed and httpx.get(url, timeout=2).status_code == 200


def test_a_process_that_stayed_up_long_enough_starts_the_ladder_over(tmp_path: Path) -> None:
    lives = "import time; time.sleep(0.3)"
    ladder = Backoff(initial=1.0, factor=2.0, cap=30.0, reset_after=0.25)
    with respawned(tmp_path, lives, "http://127.0.0.1:9", ladder) as r:
        r.start()
        waits = watch(r, 1.5)
        said: list[str] = r.said  # type: ignore[attr-defined]
    assert len(waits) >= 3 and max(waits) < 0.1  # each death after 0.3 s up: restarted at once
    assert all("restarting it now" in s for s in said)


def test_stop_ends_it_for_good(tmp_path: Path) -> None:
    with respawned(tmp_path, "import time; time.sleep(60)", "http://127.0.0.1:9") as r:
        r.start()
        proc = r.proc
        assert proc is not None
        r.stop()
        assert proc.poll() == -signal.SIGTERM
        assert watch(r, 0.3) == [] and r.said == []  # type: ignore[attr-defined]


def test_a_process_that_never_answers_stops_gun_up_at_start_with_its_last_words(
    tmp_path: Path,
) -> None:
    from gun.errors import Unavailable

    with respawned(tmp_path, DIES, "http://127.0.0.1:9") as r:
        r.start()
        with pytest.raises(Unavailable) as e:
            r.wait_answering(10)
    assert e.value.message == "thing exited with status 3: about to fail / bad config"


@pytest.mark.parametrize(
    ("returncode", "words"),
    [
        (0, "exited with status 0"),
        (3, "exited with status 3"),
        (-9, "was killed by SIGKILL"),
        (-15, "was killed by SIGTERM"),
        (-6, "was killed by SIGABRT"),
        (-99, "was killed by signal 99"),
    ],
)
def test_how_a_process_ended(returncode: int, words: str) -> None:
    assert ended(returncode) == words


def test_gun_up_does_not_import_the_cli() -> None:
    code = "import sys, gun.up; print(sorted(m for m in sys.modules if m.startswith('gun.cli')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"
