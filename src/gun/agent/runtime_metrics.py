"""Runtime metrics: Heroku's log-runtime-metrics lines for each running process, every ~20 s.

Two lines per process, as Heroku writes them (APPNAME `heroku`, PROCID `web.1`):

    source=web.1 dyno=heroku.APP.INSTANCE sample#load_avg_1m=0.52 sample#load_avg_5m=0.41
        sample#load_avg_15m=0.30 sample#cpu_percent=3.25
    source=web.1 dyno=heroku.APP.INSTANCE sample#memory_total=41.23MB sample#memory_rss=41.23MB
        sample#memory_cache=0.00MB sample#memory_swap=0.00MB sample#memory_pgpgin=0pages
        sample#memory_pgpgout=0pages sample#memory_quota=512.00MB

Figures are psutil's, summed over the process's group (its pgid: the supervisor starts each
process in a session of its own) and the leader's descendants (which catches children that
called setsid, not ones that also left the tree: only a cgroup holds everything). MB are MiB,
two decimals, as Heroku's. Where gun's figures differ from a dyno's:
- load_avg_* is the instance's load average, the same for every process on it (a dyno's is
  its container's);
- memory_total = memory_rss + memory_swap; memory_cache, memory_pgpgin and memory_pgpgout come
  from a cgroup's memory.stat and are 0 until processes run in cgroups of their own;
- dyno is heroku.APP.INSTANCE (Heroku: app id and a UUID per dyno run), so it says where the
  process runs;
- sample#cpu_percent is gun's (Heroku has none): CPU time of the group (children it reaped
  included) over wall time since the previous sample, 100 = one core, unitless.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Protocol

import psutil

MB = 1024 * 1024
RUNNING = ("starting", "up")
CpuSeen = dict[tuple[str, int, float], tuple[float, float]]
"""(name, pid, the leader's create time) -> (CPU seconds, time.time()) of a sample."""


class Running(Protocol):
    """What a sample needs to know of a process: the supervisor's ProcessState has it."""

    @property
    def name(self) -> str: ...
    @property
    def pid(self) -> int | None: ...
    @property
    def state(self) -> str: ...


def sample_lines(
    processes: Iterable[Running],
    *,
    app: str,
    instance: str,
    quota_mb: float = 512.0,
    cpu_seen: CpuSeen | None = None,
) -> list[tuple[str, str]]:
    """(PROCID, text) of the metric lines of each running process; a process that is gone is
    left out. `cpu_seen` holds the readings of the previous call and is replaced by this
    call's: cpu_percent then covers the time between them; without it (or for a process new
    since) it covers the process's whole life."""
    running = [(p.name, p.pid) for p in processes if p.state in RUNNING and p.pid is not None]
    members = _members([pid for _, pid in running])
    previous = dict(cpu_seen or {})
    if cpu_seen is not None:
        cpu_seen.clear()
    load = " ".join(
        f"sample#load_avg_{span}={value:.2f}"
        for span, value in zip(("1m", "5m", "15m"), os.getloadavg(), strict=True)
    )
    lines = []
    for name, pid in running:
        group = members.get(pid)
        if not group:
            continue
        rss, swap, cpu = _usage(group)
        try:
            started = group[pid].create_time()
        except psutil.Error:
            continue
        now = time.time()
        key = (name, pid, started)
        before_cpu, before = previous.get(key, (0.0, started))
        if cpu_seen is not None:
            cpu_seen[key] = (cpu, now)
        percent = 100 * max(0.0, cpu - before_cpu) / max(now - before, 1e-3)
        head = f"source={name} dyno=heroku.{app}.{instance}"
        lines.append((name, f"{head} {load} sample#cpu_percent={percent:.2f}"))
        memory = (
            f"sample#memory_total={(rss + swap) / MB:.2f}MB sample#memory_rss={rss / MB:.2f}MB "
            f"sample#memory_cache=0.00MB sample#memory_swap={swap / MB:.2f}MB "
            f"sample#memory_pgpgin=0pages sample#memory_pgpgout=0pages "
            f"sample#memory_quota={quota_mb:.2f}MB"
        )
        lines.append((name, f"{head} {memory}"))
    return lines


def _members(leaders: list[int]) -> dict[int, dict[int, psutil.Process]]:
    """For each leader pid: the processes of its group and its descendants, by pid."""
    own = os.getpgid(0)
    by_group: dict[int, int] = {}
    found: dict[int, dict[int, psutil.Process]] = {}
    for pid in leaders:
        try:
            found[pid] = {pid: psutil.Process(pid)}
            pgid = os.getpgid(pid)
        except (OSError, psutil.Error):
            found.pop(pid, None)
            continue
        if pgid != own:  # not ours to sum: a process started without a session of its own
            by_group[pgid] = pid
    if by_group:
        for pid in psutil.pids():
            try:
                leader = by_group.get(os.getpgid(pid))
                if leader is not None and pid not in found[leader]:
                    found[leader][pid] = psutil.Process(pid)
            except (OSError, psutil.Error):
                continue
    for pid, group in found.items():
        try:
            for child in group[pid].children(recursive=True):
                group.setdefault(child.pid, child)
        except psutil.Error:
            continue
    return found


def _usage(group: dict[int, psutil.Process]) -> tuple[int, int, float]:
    """RSS and swap in bytes, and CPU seconds (reaped children's included), of the group."""
    rss = swap = 0
    cpu = 0.0
    for proc in group.values():
        try:
            try:
                full = proc.memory_full_info()
                rss += full.rss
                swap += getattr(full, "swap", 0)
            except psutil.AccessDenied:
                rss += proc.memory_info().rss
            t = proc.cpu_times()
            cpu += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return rss, swap, cpu
