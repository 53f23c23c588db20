"""A supervisor's files of its processes: each one's record, written and removed, and its output
file, copied line by line into app.log.

A record that cannot be written or removed (a full disk) never touches the process: the failure
is kept in `error` (the instance's problem) until a record is written again; meanwhile a new
agent would not re-adopt what changed since, and finds a stale record's process dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from gun.agent import procrecord
from gun.agent.applog import AppLog
from gun.agent.process import RETIRING, Proc, now
from gun.agent.procrecord import ProcessRecord
from gun.loops import why

logger = logging.getLogger("gun.agent.supervisor")


class ProcessFiles:
    """The records under ROOT/state/procs and output files under ROOT/log/procs."""

    def __init__(self, root: Path, applog: AppLog) -> None:
        self.root = root
        self.applog = applog
        self.error: str | None = None  # why the last record was not written or removed

    def save(self, p: Proc) -> None:
        """Write p's record; a failure is kept in `error`, never raised."""
        try:
            procrecord.save(self.root, ProcessRecord(**procrecord.record_fields(p)), p.key)
        except OSError as e:
            if why(e) != self.error:
                logger.error("process record not written: %s", why(e))
            self.error = why(e)
            return
        self.error = None

    def remove(self, key: str) -> None:
        """Remove a record; a failure is kept in `error`, never raised."""
        try:
            procrecord.remove(self.root, key)
        except OSError as e:
            self.error = why(e)
            logger.error("process record not removed: %s", self.error)

    def retire(self, p: Proc) -> None:
        """Mark p retiring: its record and output file move to retiring/ (its new copy's go
        where its were)."""
        for d in ("state/procs", "log/procs"):
            (self.root / d / RETIRING).mkdir(parents=True, exist_ok=True)
        before = procrecord.out_path(self.root, p.key)
        p.retiring = True
        with contextlib.suppress(FileNotFoundError):
            os.rename(before, procrecord.out_path(self.root, p.key))
        self.save(p)
        self.remove(p.spec.name)

    def load(self, rec: ProcessRecord, *, retiring: bool = False) -> Proc:
        """The Proc a record left by an earlier agent describes, its output file open."""
        age = (now() - rec.started).total_seconds()
        p = Proc(**procrecord.record_fields(rec), retiring=retiring)
        p.started_at = asyncio.get_running_loop().time() - age
        with contextlib.suppress(FileNotFoundError):
            p.out_fd = os.open(procrecord.out_path(self.root, p.key), os.O_RDONLY)
        return p

    def pump(self, p: Proc, *, final: bool) -> bool:
        """Copy p's new output lines to app.log; whether its offset moved."""
        if p.out_fd is None:
            return False
        texts, offset = procrecord.read_lines(p.out_fd, p.offset, final=final)
        self.applog.write("app", p.spec.name, texts)
        moved, p.offset = offset != p.offset, offset
        return moved

    def close_out(self, p: Proc, *, unlink: bool) -> None:
        """Close p's output file (and remove it, when p is gone for good)."""
        if p.out_fd is not None:
            os.close(p.out_fd)
            p.out_fd = None
        if unlink:
            procrecord.out_path(self.root, p.key).unlink(missing_ok=True)
