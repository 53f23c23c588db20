"""The Heroku Platform API's dynos (REFERENCE.md §6): gun's processes and its runs (`run.N`)
as Heroku's dynos, their restarts, and one-off dynos, from the Platform's methods.

route                                        heroku CLI                  heroku3
GET    /apps/{app}/dynos                     ps                          app.dynos()
GET    /apps/{app}/dynos/{dyno}              ps web.1
POST   /apps/{app}/dynos                     run, run:detached           app.run_command()
DELETE /apps/{app}/dynos                     ps:restart                  app.restart()
DELETE /apps/{app}/dynos/{dyno}              ps:restart web.1, ps:kill   dyno.restart(), kill
POST   /apps/{app}/dynos/{dyno}/actions/stop ps:stop web.1
DELETE /apps/{app}/formations/{type}         ps:restart web

A process restarted is started again by its agent (a new pid, a new `since`); a run restarted
or stopped is stopped (SIGTERM, SIGKILL after its grace; an attached client is told why): a
one-off process is never started twice. A formation dyno stopped is started again at once, as
on Heroku, where the formation brings it back: gun's `ps.stop` is for runs.

A one-off dyno is a gun run whose client speaks Heroku's rendezvous protocol with raw bytes
(`Framing.RAW`): under a pty unless `force_no_tty`, sized and typed by `env`'s COLUMNS, LINES
and TERM; any other variable of `env` is exported before the command. Its `attach_url` is
rendezvous://HOST:PORT/SECRET at meta's rendezvous (TLS: `gun up` writes the CA to trust to
DIR/tls/ca.pem).
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import StrictBool, StrictFloat, StrictInt, StrictStr

from gun.api.auth import Gun, Who
from gun.api.heroku.apps import Lenient
from gun.api.heroku.common import find_app
from gun.core import Platform
from gun.core.runs import RunRequest, run_number
from gun.errors import InvalidParams, NotFound
from gun.heroku_ids import app_uuid, dyno_uuid, is_uuid, release_uuid
from gun.model import RUN_TYPE, App, Principal, Process, Run
from gun.rendezvous import Framing

router = APIRouter()
SIZE = "standard-1X"  # gun has no dyno sizes: what Heroku calls its plainest
# gun's states of a process or a run, as Heroku says them (up, starting, crashed, down, idle)
STATES = {
    "starting": "starting",
    "up": "up",
    "crashed": "crashed",
    "stopping": "down",
    "down": "down",
    "complete": "down",
}
_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}\Z")
_SIZE_OF = {"COLUMNS", "LINES"}


def dyno_json(
    a: App,
    name: str,
    ptype: str,
    command: str,
    state: str,
    release: int | None,
    when: datetime | None,
    attach_url: str | None = None,
) -> dict[str, Any]:
    aid = app_uuid(a.id, a.created_at)
    moment = (when or datetime.now(UTC)).isoformat()
    of = None if release is None else {"id": release_uuid(aid, release), "version": release}
    return {
        "id": dyno_uuid(aid, name),
        "name": name,
        "type": ptype,
        "command": command,
        "state": STATES.get(state, "down"),
        "size": SIZE,
        "attach_url": attach_url,
        "release": of,
        "app": {"id": aid, "name": a.name},
        "created_at": moment,
        "updated_at": moment,
    }


def process_dyno(
    a: App, p: Process, commands: dict[str, str], current: int | None
) -> dict[str, Any]:
    release = p.release if p.release is not None else current
    return dyno_json(a, p.name, p.type, commands.get(p.type, ""), p.state, release, p.since)


def run_dyno(a: App, r: Run, attach_url: str | None = None) -> dict[str, Any]:
    return dyno_json(a, r.name, RUN_TYPE, r.command, r.state, r.release, r.created_at, attach_url)


def dynos_of(gun: Platform, who: Principal, a: App) -> list[dict[str, Any]]:
    """The app's processes that are wanted, then its runs going, each by name."""
    release = next((r for r in gun.releases.all(who, a.name, limit=10) if r.current), None)
    commands = dict(release.process_types or {}) if release else {}
    current = release.version if release else None
    procs = sorted(
        (p for p in gun.processes.all(who, a.name) if p.desired),
        key=lambda p: (p.type, int(p.name.rpartition(".")[2])),
    )
    runs = sorted(gun.runs.active(who, a.name), key=lambda r: r.number)
    return [process_dyno(a, p, commands, current) for p in procs] + [run_dyno(a, r) for r in runs]


def find_dyno(gun: Platform, who: Principal, a: App, ref: str) -> dict[str, Any]:
    """`{dyno}`: a name (web.1, run.3) or a dyno's UUID."""
    key = "id" if is_uuid(ref) else "name"
    for d in dynos_of(gun, who, a):
        if d[key] == ref.lower():
            return d
    raise NotFound(f"app {a.name!r} has no dyno {ref!r}")


@router.get("/apps/{app}/dynos")
def dynos(app: str, who: Who, gun: Gun) -> list[dict[str, Any]]:
    return dynos_of(gun, who, find_app(gun, who, app))


@router.get("/apps/{app}/dynos/{dyno}")
def dyno(app: str, dyno: str, who: Who, gun: Gun) -> dict[str, Any]:
    return find_dyno(gun, who, find_app(gun, who, app), dyno)


@router.delete("/apps/{app}/dynos", status_code=202)
def restart_all(app: str, who: Who, gun: Gun) -> dict[str, Any]:
    gun.processes.restart(who, find_app(gun, who, app).name, None)
    return {}


@router.delete("/apps/{app}/dynos/{dyno}", status_code=202)
def restart_one(app: str, dyno: str, who: Who, gun: Gun) -> dict[str, Any]:
    _stop_or_restart(gun, who, find_app(gun, who, app), dyno)
    return {}


@router.post("/apps/{app}/dynos/{dyno}/actions/stop", status_code=202)
def stop(app: str, dyno: str, who: Who, gun: Gun) -> dict[str, Any]:
    _stop_or_restart(gun, who, find_app(gun, who, app), dyno)
    return {}


@router.delete("/apps/{app}/formations/{ptype}", status_code=202)
def restart_type(app: str, ptype: str, who: Who, gun: Gun) -> dict[str, Any]:
    gun.processes.restart(who, find_app(gun, who, app).name, ptype)
    return {}


def _stop_or_restart(gun: Platform, who: Principal, a: App, ref: str) -> None:
    """A run is stopped, a process (or a process type's) restarted."""
    name = find_dyno(gun, who, a, ref)["name"] if is_uuid(ref) else ref
    if run_number(name) is not None:
        gun.runs.stop(who, a.name, name)
    else:
        gun.processes.restart(who, a.name, name)


# -- one-off dynos -----------------------------------------------------------------------------


class DynoCreate(Lenient):
    command: StrictStr
    attach: StrictBool = False
    env: dict[str, StrictStr | StrictInt | StrictFloat | StrictBool | None] = {}
    force_no_tty: StrictBool | None = None
    size: StrictStr | None = None  # gun has no sizes: ignored
    type: StrictStr | None = None  # always `run`


def run_request(body: DynoCreate) -> RunRequest:
    """What `heroku run` asks, as gun's run: raw bytes, a pty unless force_no_tty."""
    env = {k: _env_value(k, v) for k, v in body.env.items() if v is not None}
    size = None
    if "COLUMNS" in env and "LINES" in env:
        size = (_whole(env["COLUMNS"], "COLUMNS"), _whole(env["LINES"], "LINES"))
    exports = []
    for key, value in sorted(env.items()):
        if key in _SIZE_OF or key == "TERM":
            continue
        if not _VAR.match(key):
            raise InvalidParams(f"env: {key!r} is not a variable name (letters, digits, _)")
        exports.append(f"export {key}={shlex.quote(value)}; ")
    return RunRequest(
        command="".join(exports) + exit_status_kept(body.command),
        attached=body.attach,
        tty=body.attach and not body.force_no_tty,
        framing=Framing.RAW,
        term=env.get("TERM") or None,
        size=size,
    )


EXIT_MARKER = ' ; echo "\uffff heroku-command-exit-status: $?"'


def exit_status_kept(command: str) -> str:
    """`heroku run -x CMD` sends `CMD ; echo "\\uFFFF heroku-command-exit-status: $?"` and
    reads CMD's exit code from what the echo prints; a CMD that exits the shell (`exit 3`)
    would leave no marker, so CMD runs in a subshell of its own."""
    if command.endswith(EXIT_MARKER) and command != EXIT_MARKER:
        return f"( {command[: -len(EXIT_MARKER)]} ){EXIT_MARKER}"
    return command


def _env_value(key: str, value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _whole(text: str, name: str) -> int:
    if not text.isdigit():
        raise InvalidParams(f"env: {name}={text!r} is not a whole number of characters")
    return int(text)


@router.post("/apps/{app}/dynos", status_code=201)
def create_dyno(app: str, body: DynoCreate, who: Who, gun: Gun) -> dict[str, Any]:
    a = find_app(gun, who, app)
    started = gun.runs.start(who, a.name, run_request(body))
    return run_dyno(a, started.run, started.attach_url)
