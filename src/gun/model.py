"""Frozen dataclasses of gun's vocabulary (app, release, formation, layer, token, event); no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple, get_args

from gun.errors import InvalidParams
from gun.layersettings import LayerSettings

APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,29}\Z")
CONFIG_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
PROCESS_TYPE = re.compile(r"^[A-Za-z0-9_-]+\Z")
# a process: TYPE.N, N from 1 (web.1; run.7 for a one-off)
PROCESS_NAME = re.compile(r"^([A-Za-z0-9_-]+)\.([1-9][0-9]{0,5})\Z")
TERM = re.compile(r"[A-Za-z0-9._+-]{1,64}\Z")  # a terminal type a run's client may ask for
LAYER_NAME = re.compile(r"^[a-z][a-z0-9-]{0,29}\Z")
HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,29}\Z")
HOST_ROOT = re.compile(r"^/[A-Za-z0-9._/-]*\Z")
DEFAULT_HOST_ROOT = "/var/lib/gun"
CONFIG_MAX_BYTES = 32 * 1024
CONFIG_KEY_MAX = 255  # what the store's column holds
RESERVED_PREFIX = "gun-"  # app names of the platform's own (the drain reports as gun-drain)
ROUTER_APP = "gun-router"  # the platform's app whose instances run routers (gun.router.onhost)

Role = Literal["admin", "developer", "viewer"]
ROLES: tuple[Role, ...] = ("viewer", "developer", "admin")
# What a token is: a user's (with a role), an instance's agent's, or a drain's (which may only
# look up ingest tokens). A drain token's role is "drain": it has none of the user roles.
TokenKind = Literal["user", "instance", "drain"]
TokenRole = Literal["admin", "developer", "viewer", "drain"]
TOKEN_ROLES: tuple[TokenRole, ...] = ("viewer", "developer", "admin", "drain")
TOKEN_NAME_MAX = 100
TOKEN_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9 ._@:+-]{0,98}[A-Za-z0-9])?\Z")
EXPIRES_MAX_DAYS = 36_500
_DURATION = re.compile(r"^([0-9]{1,9})([smhd])\Z")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ReleaseStatus = Literal["pending", "succeeded", "failed"]
BuildStatus = Literal["pending", "building", "releasing", "succeeded", "failed"]
ACTIVE_BUILD: tuple[BuildStatus, ...] = ("pending", "building", "releasing")
ALL_TYPES = "*"
# A process's state, as its agent reports it and meta shows it (REFERENCE.md §2): starting
# until it runs (a web process: until its port answers), then up; crashed when it exited
# unasked (it is started again after a backoff); stopping while asked to end; down once ended.
ProcessState = Literal["starting", "up", "crashed", "stopping", "down"]
PROCESS_STATES: tuple[ProcessState, ...] = get_args(ProcessState)
# An instance's state: pending until its agent first registers, online while it heartbeats,
# lost after it stayed silent (its processes are placed elsewhere until it is back). An instance
# of a layer with a setup command is in `setup` from its registration until its agent reports
# the command done (then online), or `setup_failed` for good: nothing is placed on either. An
# ec2 instance is requested (RunInstances answered) and then booting (EC2 says it runs) before
# its agent registers, and terminated when EC2 says it ended without instances.delete.
InstanceState = Literal[
    "pending", "requested", "booting", "setup", "setup_failed", "online", "lost", "terminated"
]
INSTANCE_STATES: tuple[InstanceState, ...] = get_args(InstanceState)
SetupState = Literal["running", "succeeded", "failed"]  # of an instance's setup command
SETUP_STATES: tuple[SetupState, ...] = get_args(SetupState)


def show(text: str, limit: int = 60) -> str:
    """`text` quoted for an error message, cut to `limit` characters (a name may be long)."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def check_app_name(name: str) -> str:
    if not isinstance(name, str) or not APP_NAME.match(name):
        raise InvalidParams(
            f"app name {show(name) if isinstance(name, str) else repr(name)} is invalid: use "
            "2-30 lowercase letters, digits and dashes, starting with a letter"
        )
    return name


def check_new_app_name(name: str) -> str:
    """A name a new app may take: the naming rule, and not the platform's own prefix."""
    check_app_name(name)
    if name.startswith(RESERVED_PREFIX):
        raise InvalidParams(
            f"app name {name!r} is reserved: names starting with {RESERVED_PREFIX!r} are the "
            "platform's own (the drain reports its figures as app gun-drain); pick another"
        )
    return name


def check_config_key(key: str) -> str:
    if not CONFIG_KEY.match(key):
        raise InvalidParams(
            f"config key {show(key)} is invalid: use letters, digits and underscores, "
            "not starting with a digit"
        )
    if len(key) > CONFIG_KEY_MAX:
        raise InvalidParams(
            f"config key {show(key)} is {len(key)} characters long: use at most {CONFIG_KEY_MAX}"
        )
    return key


def check_no_nul(what: str, value: str) -> str:
    """Text that reaches an instance's environment, argv or files, or the store (PostgreSQL
    text cannot hold NUL either): `what` names it in the refusal."""
    if "\x00" in value:
        raise InvalidParams(f"{what} has a NUL byte; remove it")
    return value


def check_config_value(key: str, value: str) -> str:
    """Config values become environment variables, which cannot hold a NUL byte."""
    if "\x00" in value:
        raise InvalidParams(
            f"config var {key!r} contains a NUL byte, which no environment variable can hold: "
            "remove it"
        )
    return value


def check_config_size(config: dict[str, str]) -> None:
    size = sum(len(k.encode()) + len(v.encode()) for k, v in config.items())
    if size > CONFIG_MAX_BYTES:
        raise InvalidParams(
            f"config vars would total {size} bytes, over the limit of {CONFIG_MAX_BYTES} bytes"
        )


def check_process_type(name: str) -> str:
    if not PROCESS_TYPE.match(name) or len(name) > 64:
        raise InvalidParams(
            f"process type {show(name)} is invalid: use up to 64 letters, digits, dashes and "
            "underscores"
        )
    return name


def check_layer_name(name: str) -> str:
    if not LAYER_NAME.match(name):
        raise InvalidParams(
            f"layer name {show(name)} is invalid: use up to 30 lowercase letters, digits and "
            "dashes, starting with a letter"
        )
    return name


def check_host_name(name: object) -> str:
    if not isinstance(name, str) or not HOST_NAME.match(name):
        shown = show(name) if isinstance(name, str) else repr(name)
        raise InvalidParams(
            f"host name {shown} is invalid: use up to 30 lowercase letters, digits and dashes,"
            " starting with a letter"
        )
    return name


def check_host_root(root: object) -> str:
    """Where a host's agents live: an absolute path of letters, digits, `.`, `_`, `-` and `/`,
    without `.` or `..` steps, not / itself; returned without repeated or trailing slashes."""
    text = root if isinstance(root, str) else repr(root)
    parts = [p for p in text.split("/") if p]
    if (
        not HOST_ROOT.match(text)
        or not parts
        or any(p in (".", "..") for p in parts)
        or len(text) > 200
    ):
        raise InvalidParams(
            f"root {show(text)} is invalid: give an absolute directory other than /, of letters,"
            " digits, '.', '_', '-' and '/'"
        )
    return "/" + "/".join(parts)


def check_process_state(process: str, state: object) -> ProcessState:
    """One of PROCESS_STATES, else refused naming the process."""
    for s in PROCESS_STATES:
        if s == state:
            return s
    raise InvalidParams(f"process {process!r} has unknown state {state!r}")


def check_instance_state(instance: str, state: object) -> InstanceState:
    """One of INSTANCE_STATES, else refused naming the instance."""
    for s in INSTANCE_STATES:
        if s == state:
            return s
    raise InvalidParams(f"instance {instance!r} has unknown state {state!r}")


def check_role(role: str) -> TokenRole:
    for r in TOKEN_ROLES:
        if r == role:
            return r
    raise InvalidParams(f"role {role!r} is invalid: use one of {', '.join(TOKEN_ROLES)}")


def check_token_name(name: str) -> str:
    if not TOKEN_NAME.match(name):
        raise InvalidParams(
            f"token name {show(name)} is invalid: use 1 to {TOKEN_NAME_MAX} letters, digits, "
            "spaces and . _ @ : + -, starting and ending with a letter or digit"
        )
    return name


def when(t: datetime) -> str:
    """A moment as error messages and tables show it: `2031-01-31 00:00:00 UTC`."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def parse_expiry(text: str, now: datetime) -> datetime:
    """When a token made at `now` with `expires=TEXT` expires.

    TEXT is a duration from now (`90m`, `12h`, `30d`; also `45s`) or an ISO 8601 date or time
    (`2031-01-31`: that day's start, UTC; a time without an offset is UTC). The moment must be
    after `now` and at most 100 years ahead; anything else is refused in one sentence.
    """
    if m := _DURATION.match(text):
        seconds = int(m[1]) * _UNITS[m[2]]
        if seconds == 0:
            raise InvalidParams(
                f"expires={text!r} is no time at all: give one like 30d, 12h or 90m"
            )
        if seconds > EXPIRES_MAX_DAYS * 86400:
            raise InvalidParams(f"expires={text!r} is more than 100 years away")
        return now + timedelta(seconds=seconds)
    try:
        if not text[:4].isascii() or not text[:4].isdigit():
            raise ValueError(text)
        at = datetime.fromisoformat(text)
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        in_past, too_far = at <= now, at - now > timedelta(days=EXPIRES_MAX_DAYS)
    except (ValueError, OverflowError):
        raise InvalidParams(
            f"expires={text!r} is not a duration like 30d, 12h or 90m, "
            "nor an ISO date like 2031-01-31"
        ) from None
    if in_past:
        raise InvalidParams(
            f"expires={text!r} is in the past: give a later date or a duration like 30d"
        )
    if too_far:
        raise InvalidParams(f"expires={text!r} is more than 100 years away")
    return at


def parse_version(raw: int | str) -> int:
    """`v3`, `V3`, `3` or 3 -> 3; anything else is refused naming it."""
    text = str(raw)
    digits = text[1:] if text[:1] in ("v", "V") else text
    if not (digits.isascii() and digits.isdigit()) or int(digits) < 1 or len(digits) > 9:
        raise InvalidParams(f"release {text!r} is not a version: write it as vN or N, e.g. v3")
    return int(digits)


def role_at_least(have: TokenRole, need: Role) -> bool:
    return have != "drain" and ROLES.index(have) >= ROLES.index(need)


@dataclass(frozen=True)
class App:
    id: int
    name: str
    repo: str | None
    created_at: datetime
    release: int | None = None


@dataclass(frozen=True)
class Release:
    app: str
    version: int
    description: str
    status: ReleaseStatus
    created_at: datetime
    config: dict[str, str] = field(repr=False, compare=False)
    process_types: dict[str, str] | None
    slug_id: int | None
    commit: str | None
    actor: str
    current: bool = False

    @property
    def has_build(self) -> bool:
        """A slug, or (strategy git) a commit the instances build."""
        return self.slug_id is not None or self.commit is not None


class ReleaseBuild(NamedTuple):
    """What a release runs, without its config."""

    process_types: dict[str, str] | None
    slug_id: int | None
    commit: str | None


@dataclass(frozen=True)
class Build:
    """A deploy on its way: source -> slug -> release -> release phase. Its output is kept apart."""

    id: int
    app: str
    status: BuildStatus
    strategy: str  # slug or git
    ref: str | None
    commit: str | None
    commit_description: str | None
    release: int | None
    error: str | None
    actor: str
    created_at: datetime
    finished_at: datetime | None

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed")


@dataclass(frozen=True)
class Drain:
    """Where an app's logs go besides the platform's drain: a logplex HTTP(S) URL."""

    id: int
    url: str
    token: str  # sent as Logplex-Drain-Token, as Heroku does (d.UUID)
    created_at: datetime


@dataclass(frozen=True)
class Layer:
    name: str
    types: tuple[str, ...] | None  # None: runs every process type
    setup: str | None = None  # a shell command run once on each new instance, as root
    teardown: str | None = None  # a shell command run once on an instance being deleted
    provider: str | None = None  # the provider of its instances (None: local)
    settings: LayerSettings = field(default_factory=LayerSettings)  # that provider's

    def runs(self, process_type: str) -> bool:
        return self.types is None or process_type in self.types


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's name, role and (optionally) the one app it may touch."""

    token_id: int
    name: str
    role: TokenRole
    app: str | None = None
    instance: str | None = None  # set for an agent's per-instance token
    kind: TokenKind = "user"
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Token:
    """A live (not revoked) token as `gun tokens` lists it: never its value nor its hash."""

    name: str
    role: TokenRole
    app: str | None
    kind: TokenKind
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None

    def expired(self, at: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= at


@dataclass(frozen=True)
class Event:
    id: int
    app: str | None
    actor: str
    action: str
    detail: dict[str, object]
    created_at: datetime


INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8}\Z")


@dataclass(frozen=True)
class Host:
    """A machine the team already has, reached over ssh (providers/ssh.py)."""

    name: str
    user: str
    address: str
    port: int
    root: str  # where agents live there
    known_host: str  # its host key, pinned when it was added
    python: str  # the python3 version it had then, e.g. "3.11.2"
    created_at: datetime
    has_key: bool  # meta keeps a private key for it (else ssh's own identities)
    instances: int = 0


@dataclass(frozen=True)
class Instance:
    id: str  # i-0a1b2c3d
    app: str
    layer: str
    provider: str
    state: InstanceState
    instance_type: str | None
    availability_zone: str | None
    address: str | None
    last_heartbeat: datetime | None
    created_at: datetime
    problem: str | None = None  # why its agent cannot run the current release
    host: str | None = None  # provider ssh: the registered host it runs on
    setup: str | None = None  # its layer's setup when it was made: its agent runs it once
    setup_state: SetupState | None = None  # None until its agent reports on the setup
    setup_output: str | None = None  # what the setup printed (the end of it)
    cloud_id: str | None = None  # provider ec2: its EC2 instance id
    cloud_state: str | None = None  # provider ec2: the state EC2 last reported


@dataclass(frozen=True)
class Process:
    """One process as meta knows it: where placement put it and what its agent last said."""

    app: str
    name: str  # web.1
    type: str
    instance: str | None
    desired: bool
    state: ProcessState
    release: int | None
    port: int | None
    pid: int | None
    restarts: int
    exit_code: int | None
    since: datetime | None


RunState = Literal["starting", "up", "complete"]
RUN_TYPE = "run"  # one-off processes are named run.N


@dataclass(frozen=True)
class Run:
    """A one-off process (`gun run`, `console`): what it runs, for whom, how it is attached."""

    app: str
    number: int
    instance: str | None
    release: int
    command: str
    owner: str  # the name of the token that started it
    attached: bool
    tty: bool
    framing: str  # gun.rendezvous.Framing
    term: str | None
    size: tuple[int, int] | None  # (cols, lines) of the client's terminal
    ttl: float
    state: RunState
    exit_code: int | None
    created_at: datetime
    ended_at: datetime | None

    @property
    def name(self) -> str:
        return f"{RUN_TYPE}.{self.number}"


@dataclass(frozen=True)
class Domain:
    """A hostname the router sends to an app: its default one (APP.<router domain>) or one a
    user added (custom)."""

    hostname: str
    kind: Literal["default", "custom"]
    created_at: datetime | None  # None: the default one, which is never added


@dataclass(frozen=True)
class CertInfo:
    """What anyone who may see an app sees of one of its TLS certificates: never the key."""

    id: int
    hostnames: tuple[str, ...]  # the app's hostnames it covers (and is served for)
    not_before: datetime
    not_after: datetime
    fingerprint: str  # sha256 of the leaf certificate's DER, hex
    issuer: str  # the issuer's common name (else its whole name)
    subject: str  # the subject's common name (else its whole name)
    created_at: datetime


@dataclass(frozen=True)
class Cert:
    """A TLS certificate as the router serves it (by SNI, for each of `hostnames`): the chain,
    leaf first, and its private key, decrypted. Only meta's own code reads these."""

    app: str
    hostnames: tuple[str, ...]
    chain_pem: str
    key_pem: str
    not_after: datetime
    fingerprint: str
