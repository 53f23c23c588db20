"""The drain bench's load from wrk (Debian's `wrk`): C, an event loop per thread, so it takes a
few percent of a CPU where the Python clients take 10-19 %. With 2 drain workers on 2 CPUs the
load must share those CPUs, and what it takes is missing from the drain.

A Lua script reads the bodies from a file, sends those of the second it is in (see
mixes.timed_bodies) in turn, each with its own
`Logplex-Frame-Id` (the thread's id and a counter), and counts the lines the drain says it took
(`{"lines": N, ...}`) and the answers that were not 200.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

SEPARATOR = b"\n\x00\n"  # between bodies in the file: no logplex body of the mixes holds a NUL

SCRIPT = """
local path, sep, frames = %(path)s, "\\n\\0\\n", "%(frames)d"
local start, per = %(start)d, %(per)d  -- the epoch second of the first bodies; bodies a second
local threads, next_id = {}, 0
function setup(thread)
  next_id = next_id + 1
  thread:set("me", "%(run)s-" .. next_id)
  table.insert(threads, thread)
end

local bodies, i = {}, 0
sent, lines, failed = 0, 0, 0
function init(args)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  local at = 1
  while at <= #data do
    local s, e = data:find(sep, at, true)
    if not s then s, e = #data + 1, #data end
    table.insert(bodies, data:sub(at, s - 1))
    at = e + 1
  end
end

function request()
  i = i + 1
  local second = math.min(math.max(os.time() - start, 0), #bodies / per - 1)
  local body = bodies[second * per + i %% per + 1]
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/logplex-1",
    ["Logplex-Msg-Count"] = frames,
    ["Logplex-Frame-Id"] = me .. "-" .. i,
  }, body)
end

function response(status, headers, body)
  sent = sent + 1
  if status == 200 then
    lines = lines + tonumber(body:match('^{"lines": ?(%%d+)'))
  else
    failed = failed + 1
  end
end

function done(summary, latency, requests)
  local s, l, f = 0, 0, 0
  for _, t in ipairs(threads) do
    s, l, f = s + t:get("sent"), l + t:get("lines"), f + t:get("failed")
  end
  io.write(string.format("GUNBENCH sent=%%d lines=%%d failed=%%d errors=%%d\\n", s, l, f,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
"""


@dataclass
class Load:
    sent: int
    lines: int
    failed: int
    cpu: float  # seconds of wrk's user + system time


def available() -> str | None:
    return shutil.which("wrk")


class Wrk:
    """`threads` wrk threads holding `connections` connections each, one body in flight on each,
    for `seconds`, pinned to `cpus`: `start`, then `running` until it is done, then `result`."""

    def __init__(
        self, wrk: str, url: str, timed: tuple[int, list[list[bytes]]], frames: int, work: Path
    ) -> None:
        start, seconds = timed
        payloads = [body for second in seconds for body in second]
        if any(SEPARATOR in p for p in payloads):
            raise ValueError("a body holds the separator")
        (work / "bodies").write_bytes(SEPARATOR.join(payloads))
        self.script = work / "drain.lua"
        where = '"' + str(work / "bodies").replace("\\", "\\\\").replace('"', '\\"') + '"'
        self.script.write_text(
            SCRIPT
            % {
                "path": where, "frames": frames, "run": uuid.uuid4().hex, "start": start,
                "per": len(seconds[0]),
            }
        )  # fmt: skip
        self.wrk, self.url = wrk, url
        self.proc: subprocess.Popen[str] | None = None
        self._before = resource.getrusage(resource.RUSAGE_CHILDREN)

    def start(self, seconds: float, threads: int, connections: int, cpus: set[int]) -> int:
        pin = ["taskset", "-c", ",".join(map(str, sorted(cpus)))] if shutil.which("taskset") else []
        argv = [*pin, self.wrk, "-t", str(threads), "-c", str(threads * connections)]
        argv += ["-d", f"{seconds:g}s", "--timeout", "30s", "-s", str(self.script), self.url]
        self._before = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def result(self) -> Load:
        assert self.proc is not None and self.proc.stdout is not None
        out = self.proc.stdout.read()
        code = self.proc.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        line = next((ln for ln in out.splitlines() if ln.startswith("GUNBENCH ")), None)
        if code != 0 or line is None:
            raise SystemExit(f"wrk failed ({code}): {out}")
        got = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
        if got["errors"]:
            raise SystemExit(f"wrk had {got['errors']} socket errors against {self.url}")
        cpu = after.ru_utime - self._before.ru_utime + after.ru_stime - self._before.ru_stime
        return Load(got["sent"], got["lines"], got["failed"], cpu)

    def kill(self) -> None:
        if self.running():
            assert self.proc is not None
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
