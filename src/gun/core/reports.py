"""Reports: agents' heartbeats, each with the state of every process its agent runs, taken
many at a time in one transaction.

A fleet's heartbeats arrive together (1,000 agents report at once after a scale) and each used
to be a transaction of its own: seven round trips and a commit, waiting for a pooled
connection and for the processes' rows a scale held (bench/fleet.py: a PATCH took 4-7 s behind
them). `apply` takes a batch (api/agent_routes.py group-commits them, core/batch.py): the
instances, their processes and leases read in one query each, the heartbeats written in one
statement, the processes' changes in another. What a report means is as before, report by
report:
- the instance is `online` (or `setup` / `setup_failed` while its setup has not succeeded), its
  heartbeat now, its problem what the agent says;
- a process whose report changed something is written; a heartbeat that changes nothing
  writes only the instance's row; a process of a name not placed on the instance is not
  written (its update would have matched no row: the batch holds the app's lock, so nothing
  is placed meanwhile);
- a process up on the current release ends its replacement lease (long-polls wake);
- a process the agent no longer reports is deleted if undesired, else shown `down`;
- an instance whose state changed has its app placed again;
- a one-off process (`run.N`) that ended has its exit code recorded (core/runs.py).

The batch's apps are locked, in name order, before anything is written: a batch writes many
processes' rows, and a scale writing the same rows in another order would deadlock with it.
Each caller hears its own refusal; of two reports of one instance in a batch only the newer
is applied (it says all the older did).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from gun.core.placing import write_placement
from gun.core.runs import record_exit, run_number
from gun.errors import Forbidden, GunError, NotFound
from gun.model import App, Instance, InstanceState, Principal, Process, SetupState
from gun.protocol import ObservedProcess, Report
from gun.store import Tx
from gun.store.fleet import ProcessReport
from gun.store.time import now


@dataclass(frozen=True)
class Call:
    who: Principal
    instance: str
    report: Report


def state_after_setup(setup: str | None, setup_state: SetupState | None) -> InstanceState:
    """The state of a heartbeating instance: online, unless its setup has not succeeded."""
    if setup is None or setup_state == "succeeded":
        return "online"
    return "setup_failed" if setup_state == "failed" else "setup"


def check_agent(who: Principal, instance_id: str) -> None:
    """Forbidden unless `who` is the agent token of this instance."""
    if who.instance != instance_id:
        raise Forbidden(f"token {who.name!r} is not the agent token of instance {instance_id!r}")


def same(stored: Process, seen: ObservedProcess) -> bool:
    """Whether a report says of a process just what the store holds already."""
    return (
        stored.state == seen.state
        and stored.release == seen.release
        and stored.port == seen.port
        and stored.pid == seen.pid
        and stored.restarts == seen.restarts
        and stored.exit_code == seen.exit_code
        and stored.since == seen.since
    )


def apply(tx: Tx, calls: Sequence[Call]) -> list[None | BaseException]:
    """Take a batch of reports in `tx`; for each call, None or the error to raise to it."""
    results: list[None | BaseException] = [None] * len(calls)
    newest: dict[str, int] = {}  # instance id: the index of its newest report
    for n, call in enumerate(calls):
        try:
            check_agent(call.who, call.instance)
            newest[call.instance] = n
        except GunError as e:
            results[n] = e
    insts = tx.instances.get_many(newest)
    for iid in [i for i in newest if i not in insts]:
        results[newest.pop(iid)] = NotFound(f"instance {iid!r} does not exist")
    apps: dict[str, App | None] = {
        name: tx.apps.find(name, lock=True) for name in sorted({insts[i].app for i in newest})
    }
    for iid in [i for i in newest if apps[insts[i].app] is None]:
        results[newest.pop(iid)] = NotFound(f"app {insts[iid].app!r} does not exist")
    # again, under the locks: meta's watch may have marked one lost meanwhile (it holds the
    # app's lock to do it), and an instance that reports is then back and placed again
    insts = tx.instances.get_many(newest)
    for iid in [i for i in newest if i not in insts]:
        results[newest.pop(iid)] = NotFound(f"instance {iid!r} does not exist")
    app_ids = {a.id for a in apps.values() if a is not None}
    stored = tx.processes.of_instances(app_ids, newest)
    leased = tx.processes.leased_on(app_ids, newest)
    batch = _Batch(tx)
    for iid, n in newest.items():
        app = apps[insts[iid].app]
        assert app is not None
        batch.take(app, insts[iid], calls[n], stored.get(iid, []), leased.get(iid, set()))
    batch.write()
    return results


class _Batch:
    """The writes of a batch of reports, most of them gathered into two statements."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.at = now()
        self.beats: list[tuple[str, str, datetime, str | None]] = []
        self.rows: list[ProcessReport] = []
        self.currents: dict[int, int | None] = {}
        self.placing: dict[str, App] = {}

    def current(self, app: App) -> int | None:
        if app.id not in self.currents:
            self.currents[app.id] = self.tx.releases.current_version(app.id)
        return self.currents[app.id]

    def take(
        self, app: App, inst: Instance, call: Call, stored: list[Process], leased: set[str]
    ) -> None:
        tx, report, iid = self.tx, call.report, inst.id
        if report.setup is not None and inst.setup is not None:
            state = state_after_setup(inst.setup, report.setup.state)
            tx.instances.update(
                iid,
                state=state,
                last_heartbeat=self.at,
                problem=report.problem,
                setup_state=report.setup.state,
                setup_output=report.setup.output,
            )
        else:
            state = state_after_setup(inst.setup, inst.setup_state)
            self.beats.append((iid, state, self.at, report.problem))
        was = {p.name: p for p in stored}
        ended = False
        for o in report.processes:
            old = was.get(o.name)
            if old is None:  # no process of that name is placed here: nothing to write
                number = run_number(o.name)
                if number is not None:  # a one-off process: up, or ended (its audit ends)
                    if o.state == "up":
                        tx.runs.started(app.id, number)
                    elif o.state in ("down", "crashed") and o.exit_code is not None:
                        record_exit(tx, app, number, o.exit_code)
                continue
            if o.name in leased or not same(old, o):
                self.rows.append(
                    ProcessReport(
                        app.id,
                        o.name,
                        iid,
                        o.state,
                        o.release,
                        o.port,
                        o.pid,
                        o.restarts,
                        o.exit_code,
                        o.since,
                    )
                )
            # up on the current release: its replacement lease ends
            if o.name in leased and o.state == "up" and o.release == self.current(app):
                ended = tx.processes.end_lease(app.id, o.name) or ended
        if ended:  # the agents waiting for a lease hear of it at once (long-polls wake)
            tx.apps.bump_generation(app.id)
        seen = {o.name for o in report.processes}
        for p in stored:
            if p.name in seen:
                continue
            if not p.desired:
                tx.processes.delete(app.id, p.name)
            elif p.state in ("up", "stopping", "crashed"):
                # its agent reported it once and no longer does: it is not running, and must
                # not be shown as it last was (placed ones stay `starting`)
                tx.processes.report(
                    app.id, iid, p.name, state="down", pid=None, port=None, since=self.at
                )
        if inst.state != state:
            self.placing[app.name] = app
            tx.events.record(app, "meta", f"instance.{state}", {"id": iid})

    def write(self) -> None:
        self.tx.instances.beat(self.beats)
        self.tx.processes.report_many(self.rows)
        for app in self.placing.values():
            write_placement(self.tx, app)
