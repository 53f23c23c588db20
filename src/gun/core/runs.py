"""Runs: one-off processes, `run.N` (`gun run`, `console`), in the current release's world on
an instance of the app.

A run is stored with the instance chosen for it (`choose`, pure) and put in that instance's
slice, which wakes its agent. An attached run's client is given a secret for meta's rendezvous
(gun.rendezvous); only its sha256 is kept, and it is good for one connection. The agent dials
the rendezvous too, with its instance's token; meta joins the two (api/rendezvous.py) and the
run is `up`; when either end goes, it is `complete` and leaves the slice (its agent stops it if
it still runs). The agent's report of its exit code ends its audit: `run` when it starts (who,
the command, where), `run.exit` when it ends (the exit code, how long it ran).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gun.core.access import authorize
from gun.errors import Conflict, Forbidden, InvalidParams, NotFound
from gun.model import PROCESS_NAME, RUN_TYPE, TERM, App, Instance, Principal, Run
from gun.protocol import COMMAND_MAX, RunOrder
from gun.rendezvous import Address, Framing
from gun.store import Store, Tx
from gun.store.time import now

# `console` without a Procfile `console:` type: the buildpack's REPL, as the release's files say
# which buildpack built it (python: Django's shell if there is a manage.py; node), else bash
CONSOLE_GUESS = (
    "py=$(command -v python || command -v python3); "
    'if [ -f manage.py ]; then exec "$py" manage.py shell; '
    "elif [ -f requirements.txt ] || [ -f pyproject.toml ] || [ -f runtime.txt ] "
    '|| [ -f .python-version ]; then exec "$py"; '
    "elif [ -f package.json ]; then exec node; "
    "else exec bash; fi"
)
# `console.db`: psql on the URL in a config var, its parts given to psql in PG* variables (an
# argv is readable by every user of the host: the password must not be in one)
PSQL = (
    "import os, sys, urllib.parse as u\n"
    "name = sys.argv[1]\n"
    "url = (os.environ.get(name) or '').replace(',', ' ').split()\n"
    "url or sys.exit(f'{name} is not set')\n"
    "p, env = u.urlsplit(url[0]), dict(os.environ)\n"
    "parts = {'PGHOST': p.hostname, 'PGPORT': p.port, 'PGUSER': p.username,\n"
    "         'PGPASSWORD': p.password, 'PGDATABASE': p.path.lstrip('/')}\n"
    "env.update({k: u.unquote(str(v)) for k, v in parts.items() if v})\n"
    "env.update({'PG' + k.upper(): v for k, v in u.parse_qsl(p.query) if k == 'sslmode'})\n"
    "os.execvpe('psql', ['psql'], env)\n"
)
DATABASE_VARS = {"primary": "DATABASE_URL", "follower": "DATABASE_FOLLOWER_URLS"}
TTL_VAR = "GUN_RUN_TTL"  # config var: seconds a run may go on
DEFAULT_TTL = 24 * 3600.0
RUN_PREFIX = f"{RUN_TYPE}."


@dataclass(frozen=True)
class RunRequest:
    """What a client asks to run, and how it attaches."""

    command: str
    attached: bool = True
    tty: bool = False
    framing: Framing = Framing.GUN
    term: str | None = None
    size: tuple[int, int] | None = None  # (cols, lines)
    layer: str | None = None
    console: bool = False  # the app's console: the command is chosen (console_command)
    database: str | None = None  # console.db: psql on the primary's or a follower's URL

    def check(self) -> None:
        if self.database is not None and self.database not in DATABASE_VARS:
            raise InvalidParams(f"database {self.database!r} is not primary or follower")
        if self.console or self.database is not None:
            return
        if not self.command.strip():
            raise InvalidParams("the command is empty: give one, e.g. `gun app:APP run -- bash`")
        if len(self.command) > COMMAND_MAX or "\x00" in self.command:
            raise InvalidParams(
                f"the command must be at most {COMMAND_MAX} characters, without NUL"
            )
        if self.term is not None and not TERM.match(self.term):
            raise InvalidParams(f"TERM {self.term!r} is not a terminal type")
        if self.size is not None and not all(1 <= n <= 65535 for n in self.size):
            raise InvalidParams(f"terminal size {self.size} is invalid: columns and lines 1-65535")


@dataclass(frozen=True)
class Started:
    run: Run
    attach_url: str | None  # rendezvous://HOST:PORT/SECRET for an attached run
    rendezvous: Address | None = None  # for an attached run: its TLS, the CA to trust


def run_number(name: str) -> int | None:
    """N of `run.N` (None for any other name)."""
    m = PROCESS_NAME.match(name)
    return int(m.group(2)) if m and m.group(1) == RUN_TYPE else None


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def ttl_of(config: Mapping[str, str]) -> float:
    """Seconds a run may go on: GUN_RUN_TTL if the app sets it, else 24 h."""
    value = config.get(TTL_VAR)
    if value is None:
        return DEFAULT_TTL
    try:
        ttl = float(value)
    except ValueError:
        ttl = math.nan
    if not (math.isfinite(ttl) and ttl > 0):
        raise InvalidParams(f"config var {TTL_VAR}={value!r} is not a number of seconds above 0")
    return ttl


def console_command(process_types: Mapping[str, str] | None) -> str:
    """The command `console` runs: the Procfile's `console:` type, else a guess from the
    release's files (CONSOLE_GUESS)."""
    return (process_types or {}).get("console") or CONSOLE_GUESS


def psql_command(config: Mapping[str, str], app: str, database: str) -> str:
    """`console.db`'s command: psql on the app's DATABASE_URL (or its first follower's)."""
    var = DATABASE_VARS[database]
    if not config.get(var, "").strip():
        if database == "follower":
            raise Conflict(f"app {app!r} has no follower database: {var} is not set")
        raise Conflict(
            f"app {app!r} has no database: set {var} (gun app:{app} config.set {var}=postgres://...)"
        )
    return f"exec python3 -c {shlex.quote(PSQL)} {var}"


def choose(
    instances: Sequence[Instance], layer: str | None, load: Mapping[str, int]
) -> Instance | None:
    """Where a run goes (pure): an online instance (of `layer`, if given), the one running the
    fewest processes and runs (`load`), the first by id among equals."""
    online = [i for i in instances if i.state == "online" and layer in (None, i.layer)]
    return min(online, key=lambda i: (load.get(i.id, 0), i.id), default=None)


def order_of(run: Run) -> RunOrder:
    return RunOrder(
        name=run.name,
        command=run.command,
        attached=run.attached,
        tty=run.tty,
        framing=run.framing,
        term=run.term,
        size=run.size,
        ttl=run.ttl,
    )


class Runs:
    def __init__(self, store: Store, rendezvous: Address | None) -> None:
        self.store = store
        self.rendezvous = rendezvous  # where, if meta serves one

    def start(self, who: Principal, name: str, req: RunRequest) -> Started:
        authorize(who, "developer", name)
        req.check()
        if req.attached and self.rendezvous is None:
            raise Conflict(
                "meta serves no rendezvous, so nothing can attach to a run: start meta with "
                "--rendezvous-listen, or use run:detached"
            )
        secret = secrets.token_urlsafe(32) if req.attached else None
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            version = tx.releases.current_version(app.id)
            release = tx.releases.get(app, version) if version is not None else None
            if release is None or (release.slug_id is None and release.commit is None):
                raise Conflict(f"app {name!r} has no code released yet: deploy it before running")
            ttl = ttl_of(release.config)
            if req.database is not None:
                command = psql_command(release.config, name, req.database)
            elif req.console:
                command = console_command(release.process_types)
            else:
                command = req.command
            instances = tx.instances.of(app.id)
            if req.layer is not None and req.layer not in {
                layer.name for layer in tx.layers.of(app.id)
            } | {i.layer for i in instances}:
                raise NotFound(f"app {name!r} has no layer {req.layer!r}")
            load: dict[str, int] = {}
            for p in tx.processes.of(app.id):
                if p.instance and p.desired:
                    load[p.instance] = load.get(p.instance, 0) + 1
            for r in tx.runs.active(app.id):
                if r.instance:
                    load[r.instance] = load.get(r.instance, 0) + 1
            chosen = choose(instances, req.layer, load)
            if chosen is None:
                where = f"layer {req.layer!r} of app {name!r}" if req.layer else f"app {name!r}"
                raise Conflict(
                    f"{where} has no online instance to run it on: scale a process type up or "
                    "add one with instances.create"
                )
            run = tx.runs.insert(
                app.id,
                Run(
                    app=name,
                    number=0,
                    instance=chosen.id,
                    release=release.version,
                    command=command,
                    owner=who.name,
                    attached=req.attached,
                    tty=req.tty,
                    framing=str(req.framing),
                    term=req.term,
                    size=req.size,
                    ttl=ttl,
                    state="starting",
                    exit_code=None,
                    created_at=now(),
                    ended_at=None,
                ),
                secret_hash(secret) if secret else None,
            )
            tx.apps.bump_generation(app.id)  # its agent hears of it
            tx.events.record(
                app,
                who.name,
                "run",
                {
                    "name": run.name,
                    "command": command,
                    "instance": chosen.id,
                    "attached": req.attached,
                    "release": release.version,
                },
            )
        if secret is None or self.rendezvous is None:
            return Started(run, None)
        return Started(run, f"{self.rendezvous.url}/{secret}", self.rendezvous)

    def active(self, who: Principal, name: str) -> list[Run]:
        """The app's runs that have not ended (`gun ps`)."""
        authorize(who, "viewer", name)
        with self.store.read() as tx:
            return tx.runs.active(tx.apps.existing(name).id)

    def stop(self, who: Principal, name: str, run_name: str) -> Run:
        """Stop a run (`ps.stop:run.N`): it leaves its instance's slice, and its agent stops
        it (SIGTERM, SIGKILL after the grace), telling its client why."""
        authorize(who, "developer", name)
        number = run_number(run_name)
        with self.store.write() as tx:
            app = tx.apps.existing(name, lock=True)
            run = tx.runs.get(app.id, number) if number is not None else None
            if run is None or run.state == "complete":
                raise NotFound(f"app {name!r} has no run {run_name!r} going")
            tx.runs.set(app.id, run.number, state="complete", ended_at=now())
            tx.apps.bump_generation(app.id)
            tx.events.record(app, who.name, "run.stop", {"name": run.name})
        return run

    # -- the rendezvous ----------------------------------------------------------------------

    def claim_client(self, secret: str) -> Run:
        """The run a client's secret is for, now used up; NotFound for any other secret. The
        run may be `up`, or even over, already: its agent, let in first, starts it before the
        client comes (a slow client; heroku3, whose secret has no line end, is read after a
        pause), and its output waits at the rendezvous (which lets the client in to an ended
        run only while its agent's end waits there)."""
        with self.store.write() as tx:
            found = tx.runs.by_secret(secret_hash(secret))
            if found is None or not found[1].attached:
                raise NotFound("no run waits for that secret: it was used, or never given")
            app_id, run = found
            tx.runs.set(app_id, run.number, secret_hash=None)
        return run

    def claim_agent(self, who: Principal, instance: str, name: str) -> Run:
        """The run `name` on `instance`, whose agent `who` is dialling for it."""
        if who.instance != instance or who.app is None:
            raise Forbidden(f"token {who.name!r} is not the agent token of instance {instance!r}")
        number = run_number(name)
        with self.store.read() as tx:
            app = tx.apps.existing(who.app)
            run = tx.runs.get(app.id, number) if number is not None else None
        if run is None or run.instance != instance or run.state != "starting" or not run.attached:
            raise NotFound(f"{name} of app {who.app!r} is not waiting on instance {instance}")
        return run

    def joined(self, app: str, number: int) -> None:
        """Both ends are there: the run is up (unless it ended already)."""
        with self.store.write() as tx:
            a = tx.apps.existing(app)
            tx.runs.started(a.id, number)

    def ended(self, app: str, number: int) -> None:
        """An end went (or never came): the run is complete and leaves its instance's slice."""
        with self.store.write() as tx:
            a = tx.apps.find(app, lock=True)
            if a is None:
                return
            run = tx.runs.get(a.id, number)
            if run is None or run.state == "complete":
                return
            tx.runs.set(a.id, number, state="complete", ended_at=now())
            tx.apps.bump_generation(a.id)


def record_exit(tx: Tx, app: App, number: int, code: int) -> None:
    """Its agent says how a run ended (in a report's transaction): the end of its audit, once.
    The run is complete from then on, whichever end went first."""
    run = tx.runs.get(app.id, number)
    if run is None or run.exit_code is not None:
        return
    ended = run.ended_at or now()
    tx.runs.set(app.id, number, state="complete", exit_code=code, ended_at=ended)
    if run.state != "complete":
        tx.apps.bump_generation(app.id)
    tx.events.record(
        app,
        run.owner,
        "run.exit",
        {
            "name": run.name,
            "command": run.command,
            "exit_code": code,
            "seconds": round((ended - run.created_at).total_seconds(), 3),
        },
    )
