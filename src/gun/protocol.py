"""The agent protocol's wire types: what meta tells an instance's agent (its desired slice) and
what the agent tells meta (its registration, and its reports: the heartbeat); pure.

Every message carries `version`, the protocol it is written in (VERSION); the agent also names
its protocol on every call in the `Gun-Protocol` header. Meta refuses an agent of another
protocol (`refusal`), and an agent does not act on a slice of another protocol.

`to_json(message)` gives the JSON object of a message; `read_slice`, `read_report` and
`read_registration` read one back from decoded JSON (what `json.loads` returns), so that
`read_x(json.loads(json.dumps(to_json(x)))) == x`. A reader raises ProtocolError with one
sentence naming the field by its path, e.g. `slice.processes[2].command: expected a string,
got 3`. Its rules (values are read by gun.jsonread):
- `version` is read first: the other fields of another protocol may mean other things, so a
  message of another version is refused as such (UnsupportedProtocol), whatever else it holds.
- Every field is required, null included where a field may be null: nothing is defaulted
  (but the registration's `ip`, below).
- Whole numbers are JSON integers (not 2.0, not true) within their field's bounds (what the
  store's columns hold); seconds are finite numbers of at least 0; moments are ISO 8601 text
  with a UTC offset.
- Text is UTF-8 without NUL (no environment, argv, file name or PostgreSQL text holds one).
- What becomes a file name or a key is checked: a process is named TYPE.N after its own type,
  once per message; a slug's sha256 is 64 lowercase hex digits, a commit 40 (or 64). A slice
  runs a slug or a commit, not both; a release phase exactly one of them.
- Fields a reader does not know are ignored: within one protocol version a newer writer may
  add a field that older readers can do without, and mixed versions of gun keep talking.
  Anything a reader needs is a new protocol version.

`lease` was added to the slice within protocol 1 (fencing, docs/fleet.md): an agent from before
it ignores it (and does not fence); an agent that knows it requires it, as every field, so it
expects a meta at least as new as itself (the ssh provider installs meta's own gun on hosts).
So were `rendezvous_tls` and `rendezvous_ca` (the rendezvous's TLS, told rather than guessed
from meta's URL, as it may have a certificate of its own).
`ip` was added to the registration within protocol 1 the other way round: meta reads a
registration without it (an older agent's) as null, the ip not known.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from gun.errors import ProtocolError, UnsupportedProtocol
from gun.jsonread import (
    Object,
    array,
    boolean,
    expected,
    matching,
    maybe,
    moment,
    seconds,
    show,
    text,
    whole,
)
from gun.model import (
    APP_NAME,
    PROCESS_NAME,
    PROCESS_STATES,
    PROCESS_TYPE,
    SETUP_STATES,
    TERM,
    ProcessState,
    SetupState,
)

VERSION = 1
HEADER = "Gun-Protocol"  # the agent's protocol, on every call it makes
# where an agent downloads its app's slugs, under meta's URL (with its own token)
SLUG_PATH = "/v1/agent/instances/{instance}/slugs/{sha256}"

INT32 = 2**31 - 1  # what the store's integer columns hold
GENERATION_MAX = 2**62  # the long-poll's `after` goes up to this
REPORT_PROCESSES_MAX = 10_000
PROBLEM_MAX = 2000  # characters of an instance's problem meta keeps
COMMAND_MAX = 10_000  # characters of a layer's setup or teardown command
SETUP_OUTPUT_MAX = 64 * 1024  # characters of a setup's output an agent reports (its end)
ADDRESS_MAX = 500
CA_MAX = 64 * 1024  # characters of the PEM of a CA's certificates
SHA256 = re.compile(r"[0-9a-f]{64}\Z")
RENDEZVOUS = re.compile(r"rendezvous://[A-Za-z0-9.:\[\]-]{1,300}:[0-9]{1,5}\Z")
FRAMINGS = ("gun", "raw")  # gun.rendezvous.Framing
COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?\Z")


def refusal(version: int | str) -> str:
    """Meta's sentence for an agent of a protocol it does not speak."""
    return f"agent protocol {version} is not one meta speaks (meta speaks {VERSION})"


# -- meta to agent: the desired slice ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlugRef:
    """A slug an agent downloads, verifies (sha256) and unpacks."""

    sha256: str
    url: str  # its path under meta's URL: SLUG_PATH
    size: int | None  # bytes, if meta knows


def slug_ref(instance: str, sha256: str, size: int | None) -> SlugRef:
    """The slug `sha256` as the agent of `instance` downloads it."""
    return SlugRef(sha256, SLUG_PATH.format(instance=quote(instance, safe=""), sha256=sha256), size)


@dataclass(frozen=True, slots=True)
class GitSource:
    """Strategy git: the commit an instance fetches from the app's repo and builds itself."""

    repo: str
    commit: str


@dataclass(frozen=True, slots=True)
class ReleasePhaseOrder:
    """A pending release's `release:` command, for the one instance that is to run it."""

    release: int
    command: str
    slug: SlugRef | None  # what it runs in: the release's slug, or its commit built here
    git: GitSource | None
    env: dict[str, str] = field(repr=False)  # the pending release's config vars
    timeout: float  # seconds the command may run


@dataclass(frozen=True, slots=True)
class Rollout:
    """How replacements roll on the instance."""

    drain_seconds: float  # a replaced web process keeps serving this long after its successor
    max_unavailable: int  # processes of a type that may be down at once for replacements


@dataclass(frozen=True, slots=True)
class Lease:
    """The slice's processes are fenced: the agent runs them only while it holds its lease.

    The agent renews the lease with every heartbeat meta acknowledges, counted from when it
    sent it; meta may mark the instance lost (and place its processes elsewhere) `timeout`
    seconds after the last heartbeat it heard. So the agent starts stopping its processes
    `timeout - grace - margin` seconds after the last acknowledged heartbeat it sent, gives
    them `grace` seconds between SIGTERM and SIGKILL, and keeps `margin` for clock drift and
    its own delays (gun.agent.lease)."""

    timeout: float  # meta's GUN_INSTANCE_TIMEOUT
    grace: float  # SIGTERM to SIGKILL for a fenced process
    margin: float

    @property
    def keep(self) -> float:
        """Seconds after the last acknowledged heartbeat was sent that processes may run."""
        return self.timeout - self.grace - self.margin


@dataclass(frozen=True, slots=True)
class DesiredProcess:
    name: str  # web.1
    type: str
    command: str
    nonce: int  # bumped by meta to have the process restarted


@dataclass(frozen=True, slots=True)
class RunOrder:
    """A one-off process the agent is to run (gun.agent.runs): attached ones once it has met
    their client at meta's rendezvous (`Slice.rendezvous`), detached ones at once."""

    name: str  # run.N
    command: str
    attached: bool
    tty: bool  # under a pty (the client has a terminal)
    framing: str  # gun.rendezvous.Framing: gun or raw
    term: str | None  # the client's TERM
    size: tuple[int, int] | None  # (cols, lines) of the client's terminal
    ttl: float  # seconds it may run


@dataclass(frozen=True, slots=True)
class Slice:
    """What one instance's agent must run: everything it may see, and nothing of other apps."""

    version: int
    generation: int  # the app's: a long-poll answers once it is past the agent's
    app: str
    instance: str
    release: int | None  # the current release, if the app has one
    slug: SlugRef | None  # the release's slug, or (strategy git) None and `git`
    env: dict[str, str] = field(repr=False)  # the release's config vars
    processes: tuple[DesiredProcess, ...]  # sorted by name
    release_phase: ReleasePhaseOrder | None = field(repr=False)
    git: GitSource | None
    drains: tuple[str, ...] = field(repr=False)  # logplex URLs: the platform's drain first
    rollout: Rollout
    # the layer's commands, run as root: `setup` once before the instance runs anything (the
    # layer's when the instance was made), `teardown` once when it is deleted (the layer's now)
    setup: str | None = field(repr=False)
    teardown: str | None = field(repr=False)
    lease: Lease | None = None  # None: the processes are not fenced (they run without meta)
    runs: tuple[RunOrder, ...] = ()  # one-off processes to run here, sorted by name
    rendezvous: str | None = None  # rendezvous://HOST:PORT where attached runs meet their client
    rendezvous_tls: bool = False  # whether it speaks TLS
    rendezvous_ca: str | None = field(default=None, repr=False)  # PEM: the CA it is of


# -- agent to meta: registration and reports -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Registration:
    """The agent is up (at `address`, its directory, if it says); `ip` is the address its
    packets toward meta leave from, where routers reach its web processes (None: it could not
    tell, or it is older than the field)."""

    version: int
    address: str | None
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class ObservedProcess:
    """One process as the agent's supervisor sees it."""

    name: str
    state: ProcessState
    release: int | None
    port: int | None
    pid: int | None
    restarts: int  # crash restarts
    exit_code: int | None  # how its last run ended
    since: datetime | None  # when its state last changed


@dataclass(frozen=True, slots=True)
class SetupRun:
    """How the instance's setup command went: running, succeeded or failed (exit_code None when
    it could not start, or was killed by a signal), and the end of what it printed."""

    state: SetupState
    exit_code: int | None
    output: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Report:
    """The heartbeat: every process the agent runs, what keeps the instance from working (None
    when nothing does), and its setup (None: it has none)."""

    version: int
    processes: tuple[ObservedProcess, ...]
    problem: str | None
    setup: SetupRun | None


Message = Slice | Registration | Report


def to_json(message: Message) -> dict[str, Any]:
    """The JSON object of a message (nested dataclasses as objects, tuples as arrays, moments
    as ISO 8601 text)."""
    out = _json(message)
    assert isinstance(out, dict)
    return out


def _json(value: object) -> object:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple | list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# -- reading ---------------------------------------------------------------------------------


def read_slice(data: object) -> Slice:
    """A slice from meta; one of another protocol is UnsupportedProtocol, saying so."""
    o = Object(data, "slice")
    version = whole(*o.get("version"), lo=0, hi=INT32)
    if version != VERSION:
        raise UnsupportedProtocol(
            f"meta sent a slice in protocol {version}, which this agent does not speak "
            f"(it speaks {VERSION})"
        )
    read = Slice(
        version=version,
        generation=whole(*o.get("generation"), lo=0, hi=GENERATION_MAX),
        app=matching(*o.get("app"), APP_NAME, "an app name"),
        instance=text(*o.get("instance"), limit=100),
        release=maybe(whole, *o.get("release"), lo=0, hi=INT32),
        slug=maybe(_slug, *o.get("slug")),
        env=_env(*o.get("env")),
        processes=array(*o.get("processes"), _desired_process),
        release_phase=maybe(_release_phase, *o.get("release_phase")),
        git=maybe(_git, *o.get("git")),
        drains=array(*o.get("drains"), text),
        rollout=_rollout(*o.get("rollout")),
        lease=maybe(_lease, *o.get("lease")),
        setup=maybe(text, *o.get("setup"), limit=COMMAND_MAX),
        teardown=maybe(text, *o.get("teardown"), limit=COMMAND_MAX),
        runs=array(*o.get("runs"), _run_order),
        rendezvous=maybe(matching, *o.get("rendezvous"), RENDEZVOUS, "rendezvous://HOST:PORT"),
        rendezvous_tls=boolean(*o.get("rendezvous_tls")),
        rendezvous_ca=maybe(text, *o.get("rendezvous_ca"), limit=CA_MAX),
    )
    _once_each((p.name for p in read.processes), "slice.processes")
    _once_each((r.name for r in read.runs), "slice.runs")
    if read.slug is not None and read.git is not None:
        raise ProtocolError("slice.git: expected null, as slice.slug is given (one or the other)")
    return read


def read_registration(data: object) -> Registration:
    o = Object(data, "registration")
    version = whole(*o.get("version"), lo=0, hi=INT32)
    if version != VERSION:
        raise UnsupportedProtocol(refusal(version))
    return Registration(
        version=version,
        address=maybe(text, *o.get("address"), limit=ADDRESS_MAX),
        ip=maybe(_ip, *o.added("ip")),
    )


def read_report(data: object) -> Report:
    o = Object(data, "report")
    version = whole(*o.get("version"), lo=0, hi=INT32)
    if version != VERSION:
        raise UnsupportedProtocol(refusal(version))
    processes = array(*o.get("processes"), _observed_process, limit=REPORT_PROCESSES_MAX)
    _once_each((p.name for p in processes), "report.processes")
    return Report(
        version=version,
        processes=processes,
        problem=maybe(text, *o.get("problem"), limit=PROBLEM_MAX),
        setup=maybe(_setup_run, *o.get("setup")),
    )


def read_header(value: str | None) -> int:
    """The protocol an agent names in its Gun-Protocol header; UnsupportedProtocol unless it is
    VERSION (a header missing, or not a number, too)."""
    if value is None:
        raise UnsupportedProtocol(
            f"the agent named no protocol (no {HEADER} header): meta speaks {VERSION}"
        )
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 9):
        raise UnsupportedProtocol(
            f"{HEADER} header {show(value)} is not a protocol version (meta speaks {VERSION})"
        )
    if int(text) != VERSION:
        raise UnsupportedProtocol(refusal(int(text)))
    return VERSION


# the parts of messages, each read at its path


def _desired_process(data: object, at: str) -> DesiredProcess:
    o = Object(data, at)
    ptype = _type(*o.get("type"))
    return DesiredProcess(
        name=_name(*o.get("name"), ptype),
        type=ptype,
        command=text(*o.get("command")),
        nonce=whole(*o.get("nonce"), lo=0, hi=INT32),
    )


def _run_order(data: object, at: str) -> RunOrder:
    o = Object(data, at)
    found, where = o.get("framing")
    if found not in FRAMINGS:
        raise expected(where, f"one of {', '.join(FRAMINGS)}", found)
    return RunOrder(
        name=_name(*o.get("name"), "run"),
        command=text(*o.get("command"), limit=COMMAND_MAX),
        attached=boolean(*o.get("attached")),
        tty=boolean(*o.get("tty")),
        framing=str(found),
        term=maybe(matching, *o.get("term"), TERM, "a terminal type"),
        size=maybe(_size, *o.get("size")),
        ttl=seconds(*o.get("ttl")),
    )


def _size(data: object, at: str) -> tuple[int, int]:
    if not isinstance(data, list) or len(data) != 2:
        raise expected(at, "[columns, lines]", data)
    return whole(data[0], f"{at}[0]", lo=1, hi=65535), whole(data[1], f"{at}[1]", lo=1, hi=65535)


def _observed_process(data: object, at: str) -> ObservedProcess:
    o = Object(data, at)
    return ObservedProcess(
        name=_name(*o.get("name"), None),
        state=_state(*o.get("state")),
        release=maybe(whole, *o.get("release"), lo=0, hi=INT32),
        port=maybe(whole, *o.get("port"), lo=1, hi=65535),
        pid=maybe(whole, *o.get("pid"), lo=1, hi=INT32),
        restarts=whole(*o.get("restarts"), lo=0, hi=INT32),
        exit_code=maybe(whole, *o.get("exit_code"), lo=-INT32 - 1, hi=INT32),
        since=maybe(moment, *o.get("since")),
    )


def _ip(data: object, at: str) -> str:
    """An IPv4 or IPv6 address (no zone: a router on another host cannot use one), normalised
    (`2001:DB8::1` is `2001:db8::1`)."""
    found = text(data, at)
    try:
        ip = ipaddress.ip_address(found)
    except ValueError:
        ip = None
    if ip is None or (isinstance(ip, ipaddress.IPv6Address) and ip.scope_id):
        raise expected(at, "an IPv4 or IPv6 address", data)
    return str(ip)


def _slug(data: object, at: str) -> SlugRef:
    o = Object(data, at)
    return SlugRef(
        sha256=matching(*o.get("sha256"), SHA256, "64 lowercase hex digits"),
        url=matching(*o.get("url"), re.compile(r"/\S*\Z"), "a path under meta's URL, /..."),
        size=maybe(whole, *o.get("size"), lo=0, hi=2**63 - 1),
    )


def _git(data: object, at: str) -> GitSource:
    o = Object(data, at)
    return GitSource(
        repo=text(*o.get("repo"), limit=2000),
        commit=matching(*o.get("commit"), COMMIT, "a full commit id (40 or 64 lowercase hex)"),
    )


def _release_phase(data: object, at: str) -> ReleasePhaseOrder:
    o = Object(data, at)
    slug = maybe(_slug, *o.get("slug"))
    git = maybe(_git, *o.get("git"))
    if (slug is None) == (git is None):
        raise ProtocolError(f"{at}: expected a slug or a git source, exactly one of them")
    return ReleasePhaseOrder(
        release=whole(*o.get("release"), lo=0, hi=INT32),
        command=text(*o.get("command")),
        slug=slug,
        git=git,
        env=_env(*o.get("env")),
        timeout=seconds(*o.get("timeout")),
    )


def _setup_run(data: object, at: str) -> SetupRun:
    o = Object(data, at)
    found, where = o.get("state")
    state = next((s for s in SETUP_STATES if s == found), None)
    if state is None:
        raise expected(where, f"one of {', '.join(SETUP_STATES)}", found)
    return SetupRun(
        state=state,
        exit_code=maybe(whole, *o.get("exit_code"), lo=-INT32, hi=INT32),
        output=text(*o.get("output"), limit=SETUP_OUTPUT_MAX),
    )


def _rollout(data: object, at: str) -> Rollout:
    o = Object(data, at)
    return Rollout(
        drain_seconds=seconds(*o.get("drain_seconds")),
        max_unavailable=whole(*o.get("max_unavailable"), lo=1, hi=INT32),
    )


def _lease(data: object, at: str) -> Lease:
    o = Object(data, at)
    lease = Lease(
        timeout=seconds(*o.get("timeout")),
        grace=seconds(*o.get("grace")),
        margin=seconds(*o.get("margin")),
    )
    if lease.keep <= 0:
        raise ProtocolError(
            f"{at}: expected grace + margin below the timeout, got {lease.grace:g} + "
            f"{lease.margin:g} against {lease.timeout:g}"
        )
    return lease


# values of the protocol's own


def _type(value: object, at: str) -> str:
    found = text(value, at)
    if not PROCESS_TYPE.match(found) or len(found) > 64:
        raise expected(at, "a process type (up to 64 letters, digits, - and _)", value)
    return found


def _name(value: object, at: str, ptype: str | None) -> str:
    found = text(value, at)
    m = PROCESS_NAME.match(found)
    if not m:
        raise expected(at, "a process name TYPE.N, e.g. web.1", value)
    if ptype is not None and m.group(1) != ptype:
        raise expected(at, f"a process of its type, {ptype}.N", value)
    return found


def _once_each(names: Iterable[str], at: str) -> None:
    """Each process once: the agent keys its files and its reconcile by name."""
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ProtocolError(f"{at}[{i}].name: {show(name)} is named twice")
        seen.add(name)


def _state(value: object, at: str) -> ProcessState:
    for s in PROCESS_STATES:
        if s == value:
            return s
    raise expected(at, f"a process state ({', '.join(PROCESS_STATES)})", value)


def _env(value: object, at: str) -> dict[str, str]:
    """Config vars: names and values of text (an environment holds no NUL, no = in a name)."""
    if not isinstance(value, dict):
        raise expected(at, "an object of config vars", value)
    out: dict[str, str] = {}
    for key, v in value.items():
        if not key or "=" in key:
            raise expected(at, "config var names without =", key)
        out[text(key, at)] = text(v, f"{at}.{key}")
    return out
