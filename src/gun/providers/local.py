"""The local provider: an instance is a directory plus an agent process on this machine."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from gun import atomic, isolation
from gun.agent.setup import teardown
from gun.agent.uninstall import uninstall
from gun.providers.base import Made, NewInstance

AGENT_CONFIG = "etc/agent.json"


class LocalProvider:
    name = "local"

    def __init__(self, root: Path, python: str = sys.executable) -> None:
        self.root = root
        self.python = python
        # create, delete and ensure_running take turns: the watcher must not start a second
        # agent between a new instance's agent.json and its agent.pid, nor respawn an agent
        # being stopped for a delete between its exit and its directory's removal
        self._lock = threading.Lock()
        self._children: dict[Path, subprocess.Popen[bytes]] = {}  # agents we started: reaped

    def dir(self, instance_id: str) -> Path:
        return self.root / instance_id

    def create(self, new: NewInstance) -> Made:
        root = self.dir(new.id)
        with self._lock:
            # the instance's user passes through these to its releases; the rest is the agent's
            isolation.make_dir(self.root, isolation.SEARCHABLE)
            isolation.make_dir(root, isolation.SEARCHABLE)
            isolation.make_dir(root / "etc", isolation.PRIVATE_DIR)
            isolation.make_dir(root / "log", isolation.PRIVATE_DIR)
            config = new.agent_json()
            atomic.write(root / AGENT_CONFIG, json.dumps(config), mode=0o600)
            self._spawn(root)
        return Made(str(root))

    def _spawn(self, root: Path) -> int:
        with open(root / "log" / "agent.log", "ab") as log:
            proc = subprocess.Popen(
                [self.python, "-m", "gun.agent", "--root", str(root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        self._children[root] = proc
        record = {"pid": proc.pid, "started": psutil.Process(proc.pid).create_time()}
        atomic.write(root / "agent.pid", json.dumps(record))
        return proc.pid

    def agent_pid(self, instance_id: str) -> int | None:
        """The pid of the instance's agent if it is alive (same pid and start time)."""
        child = self._children.get(self.dir(instance_id))
        if child is not None and child.poll() is not None:  # reap it: no zombie agents
            del self._children[self.dir(instance_id)]
        path = self.dir(instance_id) / "agent.pid"
        try:
            record = json.loads(path.read_text())
            proc = psutil.Process(int(record["pid"]))
            same = abs(proc.create_time() - float(record["started"])) < 0.01
            if same and proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                return int(proc.pid)
        except (OSError, ValueError, KeyError, psutil.Error):
            pass
        return None

    def stop(self, instance_id: str, timeout: float = 40.0) -> None:
        """SIGTERM the agent (it stops its processes within their grace), then SIGKILL."""
        self._stop([instance_id], timeout)

    def _stop(self, instance_ids: list[str], timeout: float) -> None:
        """SIGTERM every one of the agents at once, wait for them together, and SIGKILL those
        still there after `timeout`."""
        pids = {}
        for instance_id in instance_ids:
            pid = self.agent_pid(instance_id)
            if pid is None:
                continue
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            pids[instance_id] = pid
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            pids = {i: pid for i, pid in pids.items() if self.agent_pid(i) is not None}
            if pids:
                time.sleep(0.05)
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    def delete(self, instance_id: str, host: str | None = None) -> str | None:
        """Run the layer's teardown, stop the agent, kill what is left of its processes, remove
        its Unix user (if it had one) and its directory; the teardown's output."""
        with self._lock:
            said = teardown(self.dir(instance_id))
            self.stop(instance_id)
            uninstall(self.dir(instance_id))  # what is left if the agent had to be killed
            return said

    def ids(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / AGENT_CONFIG).exists())

    def shell(self, instance_id: str) -> list[str]:
        return ["bash", "-c", f"cd {shlex.quote(str(self.dir(instance_id)))} && exec bash -i"]

    def ensure_running(self) -> list[str]:
        restarted = []
        with self._lock:
            for instance_id in self.ids():
                if self.agent_pid(instance_id) is None:
                    self._spawn(self.dir(instance_id))
                    restarted.append(instance_id)
        return restarted

    def stop_all(self, timeout: float = 40.0) -> None:
        """Stop every agent, all at once (gun up's Ctrl-C)."""
        self._stop(self.ids(), timeout)
