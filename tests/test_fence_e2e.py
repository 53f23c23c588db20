"""Fencing without meta, for real: a real meta (GUN_INSTANCE_TIMEOUT=6: the lease is
6 - 2 (grace) - 1 (margin) = 3 s) and a real agent of an instance that is not on meta's machine
(the test provider's, fenced like ssh and ec2). meta stops: the agent's lease lapses and it
stops its processes before meta could have placed them elsewhere; meta starts again: the agent,
heard again and given a fresh slice, runs them again. (`gun up`'s local instances are not
fenced: tests/test_up_respawn_e2e.py kills meta and sees every process keep running.)"""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from tests.test_agent_loops_e2e import until, world_at

TIMEOUT = 6.0


def test_a_fenced_instance_stops_its_processes_while_meta_is_away_and_runs_them_after(
    tmp_path: Path,
) -> None:
    with world_at(tmp_path, tmp_path / "instance", GUN_INSTANCE_TIMEOUT=str(TIMEOUT)) as w:
        before = {p["name"]: p["pid"] for p in w.processes()}
        assert sorted(before) == ["web.1", "worker.1"]

        away = time.monotonic()
        w.meta.stop()
        until(
            lambda: not any(psutil.pid_exists(pid) for pid in before.values()),
            "the processes stopped",
            timeout=TIMEOUT + 2,
        )
        took = time.monotonic() - away
        print(f"\nprocesses gone {took:.1f} s after meta was told to stop")
        # they ran on through the start of the outage, and were gone before meta could have
        # marked the instance lost (T after the last heartbeat it heard, before it stopped)
        assert 1.0 < took < TIMEOUT, took
        log = (tmp_path / "agent.log").read_text()
        assert "lease lapsed: stopping web.1, worker.1" in log, log[-3000:]

        w.meta.start()  # it shows what it heard last until the agent reports again

        def again() -> bool:
            pids = {p["pid"] for p in w.processes()}
            return w.settled_on(3) and pids.isdisjoint(before.values())

        until(again, "web.1 and worker.1 up again", timeout=30)
        log = (tmp_path / "agent.log").read_text()
        assert "a fresh slice from meta: fenced processes may run" in log, log[-3000:]
