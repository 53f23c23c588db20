"""The agent protocol's wire types (gun.protocol): every message reads back as it was written,
every slice meta can build the agent can read, and what does not read is one sentence naming
the field by its path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gun import protocol
from gun.core.release_phase import order
from gun.core.slices import build_slice, lease_terms
from gun.errors import ProtocolError, UnsupportedProtocol
from gun.jsonread import show
from gun.model import App, Process, Release
from gun.protocol import (
    VERSION,
    DesiredProcess,
    GitSource,
    Lease,
    ObservedProcess,
    Registration,
    ReleasePhaseOrder,
    Report,
    Rollout,
    RunOrder,
    SetupRun,
    Slice,
)

SHA = "5e" * 32
COMMIT = "c0ffee" + "0" * 34
T0 = datetime(2031, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)
ROLLOUT = Rollout(drain_seconds=2.0, max_unavailable=1)
SLUG = protocol.slug_ref("i-0a1b2c3d", SHA, 1234)

EMPTY = Slice(
    version=VERSION,
    generation=0,
    app="fresh",
    instance="i-0a1b2c3d",
    release=None,
    slug=None,
    env={},
    processes=(),
    release_phase=None,
    git=None,
    drains=(),
    rollout=ROLLOUT,
    setup=None,
    teardown=None,
)
RUNNING = Slice(
    version=VERSION,
    generation=7,
    app="demo",
    instance="i-0a1b2c3d",
    release=3,
    slug=SLUG,
    env={"GREETING": "héllo wörld ☃", "EMPTY": "", "QUOTES": '\'"$HOME"\n#'},
    processes=(
        DesiredProcess("web.1", "web", "python3 web.py --port $PORT", 0),
        DesiredProcess("worker.1", "worker", "python3 worker.py", 4),
    ),
    release_phase=None,
    git=None,
    drains=("http://127.0.0.1:5101/logs/gdi_x", "https://logs.example.com/drain"),
    rollout=Rollout(drain_seconds=0.0, max_unavailable=3),
    setup="apt-get install -y libpq5 && echo 'ready ✓'",
    teardown="logger bye\nrm -rf /srv/cache",
    lease=Lease(timeout=30.0, grace=10.0, margin=3.0),
    runs=(
        RunOrder(
            "run.1",
            "python manage.py shell",
            True,
            True,
            "gun",
            "xterm-256color",
            (80, 24),
            86400.0,
        ),
        RunOrder("run.2", "rake db:migrate", False, False, "raw", None, None, 3600.0),
    ),
    rendezvous="rendezvous://127.0.0.1:5102",
    rendezvous_tls=True,
    rendezvous_ca="-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
)
RELEASING = Slice(
    version=VERSION,
    generation=8,
    app="demo",
    instance="i-0a1b2c3d",
    release=3,
    slug=None,
    env={"A": "1"},
    processes=(DesiredProcess("web.1", "web", "bin/web", 1),),
    release_phase=ReleasePhaseOrder(
        release=4,
        command="bin/migrate ✓",
        slug=None,
        git=GitSource("https://example.com/demo.git", COMMIT),
        env={},
        timeout=3600.0,
    ),
    git=GitSource("https://example.com/demo.git", "ab" * 20),
    drains=(),
    rollout=ROLLOUT,
    setup=None,
    teardown=None,
)
UP = ObservedProcess("web.1", "up", 3, 40123, 4242, 0, None, T0)
CRASHED = ObservedProcess(
    "worker.12", "crashed", None, None, None, 7, 137, T0.astimezone(timezone(timedelta(hours=-5)))
)


def wire(data: dict[str, Any]) -> Any:
    """What the other side decodes."""
    return json.loads(json.dumps(data))


@pytest.mark.parametrize(
    ("message", "read"),
    [
        (EMPTY, protocol.read_slice),
        (RUNNING, protocol.read_slice),
        (RELEASING, protocol.read_slice),
        (Report(VERSION, (), None, None), protocol.read_report),
        (Report(VERSION, (UP, CRASHED), "no space left on device", None), protocol.read_report),
        (Report(VERSION, (UP,), "ünïcode problem ☃", None), protocol.read_report),
        (Report(VERSION, (), None, SetupRun("running", None, "")), protocol.read_report),
        (Report(VERSION, (UP,), None, SetupRun("succeeded", 0, "ok\nré ✓")), protocol.read_report),
        (Report(VERSION, (), None, SetupRun("failed", 100, "E: no")), protocol.read_report),
        (Registration(VERSION, None), protocol.read_registration),
        (Registration(VERSION, "/var/lib/gun/instances/i-0a1b2c3d"), protocol.read_registration),
        (Registration(VERSION, "/srv/gun/i-0a1b2c3d", "172.31.5.9"), protocol.read_registration),
        (Registration(VERSION, None, "2001:db8::9"), protocol.read_registration),
    ],
    ids=lambda v: type(v).__name__ if not callable(v) else "",
)
def test_every_message_reads_back_as_it_was_written(message: Any, read: Any) -> None:
    assert read(wire(protocol.to_json(message))) == message


def test_the_wire_form_of_a_slice() -> None:
    assert wire(protocol.to_json(RUNNING)) == {
        "version": 1,
        "generation": 7,
        "app": "demo",
        "instance": "i-0a1b2c3d",
        "release": 3,
        "slug": {
            "sha256": SHA,
            "url": f"/v1/agent/instances/i-0a1b2c3d/slugs/{SHA}",
            "size": 1234,
        },
        "env": {"GREETING": "héllo wörld ☃", "EMPTY": "", "QUOTES": '\'"$HOME"\n#'},
        "processes": [
            {"name": "web.1", "type": "web", "command": "python3 web.py --port $PORT", "nonce": 0},
            {"name": "worker.1", "type": "worker", "command": "python3 worker.py", "nonce": 4},
        ],
        "release_phase": None,
        "git": None,
        "drains": ["http://127.0.0.1:5101/logs/gdi_x", "https://logs.example.com/drain"],
        "rollout": {"drain_seconds": 0.0, "max_unavailable": 3},
        "setup": "apt-get install -y libpq5 && echo 'ready ✓'",
        "teardown": "logger bye\nrm -rf /srv/cache",
        "lease": {"timeout": 30.0, "grace": 10.0, "margin": 3.0},
        "runs": [
            {
                "name": "run.1",
                "command": "python manage.py shell",
                "attached": True,
                "tty": True,
                "framing": "gun",
                "term": "xterm-256color",
                "size": [80, 24],
                "ttl": 86400.0,
            },
            {
                "name": "run.2",
                "command": "rake db:migrate",
                "attached": False,
                "tty": False,
                "framing": "raw",
                "term": None,
                "size": None,
                "ttl": 3600.0,
            },
        ],
        "rendezvous": "rendezvous://127.0.0.1:5102",
        "rendezvous_tls": True,
        "rendezvous_ca": "-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
    }
    assert wire(protocol.to_json(Report(VERSION, (CRASHED,), None, None))) == {
        "version": 1,
        "processes": [
            {
                "name": "worker.12",
                "state": "crashed",
                "release": None,
                "port": None,
                "pid": None,
                "restarts": 7,
                "exit_code": 137,
                "since": "2031-01-31T07:00:00.123456-05:00",
            }
        ],
        "problem": None,
        "setup": None,
    }


def test_fields_a_reader_does_not_know_are_ignored() -> None:
    newer = wire(protocol.to_json(RUNNING))
    newer["priority"] = "high"
    newer["processes"][0]["cpu"] = 2
    assert protocol.read_slice(newer) == RUNNING
    report = {**wire(protocol.to_json(Report(VERSION, (UP,), None, None))), "uptime": 3}
    assert protocol.read_report(report) == Report(VERSION, (UP,), None, None)


# -- every slice meta can build, the agent can read -------------------------------------------

TYPES = st.sampled_from(["web", "worker", "release"]) | st.from_regex(
    r"[A-Za-z0-9_-]{1,64}", fullmatch=True
)
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)
KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
ENV = st.dictionaries(KEYS, TEXT, max_size=5)
MOMENT = st.datetimes(timezones=st.just(UTC))


@st.composite
def releases(draw: st.DrawFn, app: App, *, pending: bool = False) -> Release:
    """A release of the app; a pending one has a release command."""
    types = draw(st.dictionaries(TYPES, TEXT, min_size=1, max_size=4))
    if pending:
        types["release"] = draw(TEXT)
    return Release(
        app=app.name,
        version=draw(st.integers(1, 10_000)),
        description=draw(TEXT),
        status="pending" if pending else "succeeded",
        created_at=draw(MOMENT),
        config=draw(ENV),
        process_types=draw(st.sampled_from([types, types, types, None])),
        slug_id=draw(st.integers(1, 2**31 - 1) | st.none()),
        commit=draw(st.from_regex(r"[0-9a-f]{40}", fullmatch=True) | st.none()),
        actor=draw(TEXT),
    )


@st.composite
def placed(draw: st.DrawFn, app: App, release: Release | None) -> list[Process]:
    """Processes placed on the instance, mostly of the release's types, some no longer
    wanted (unique names)."""
    types = sorted((release.process_types or {}) if release else {}) or ["web"]
    kinds = draw(st.lists(st.sampled_from(types) | TYPES, min_size=1, max_size=6) | st.just([]))
    names = {f"{t}.{draw(st.integers(1, 999_999))}": t for t in kinds}
    return [
        Process(
            app=app.name,
            name=name,
            type=ptype,
            instance="i-0a1b2c3d",
            desired=draw(st.sampled_from([True, True, False])),
            state="starting",
            release=None,
            port=None,
            pid=None,
            restarts=0,
            exit_code=None,
            since=None,
        )
        for name, ptype in names.items()
    ]


@st.composite
def slice_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """Whatever one transaction may read for an instance's slice."""
    app = App(
        id=draw(st.integers(1, 2**31 - 1)),
        name=draw(st.from_regex(r"[a-z][a-z0-9-]{1,29}", fullmatch=True)),
        repo=draw(st.just("https://example.com/app.git") | st.none()),
        created_at=draw(MOMENT),
    )
    release = draw(releases(app) | st.none())
    slug = (SHA, draw(st.integers(0, 2**40))) if release and release.slug_id else None
    pending = draw(releases(app, pending=True) | st.none())
    phase_slug = ("ab" * 32, 10) if pending and pending.slug_id else None
    instance = draw(st.sampled_from(["i-0a1b2c3d", "i-ffffffff"]))
    procs = draw(placed(app, release))
    return {
        "generation": draw(st.integers(0, 2**62)),
        "app": app,
        "instance": instance,
        "release": release,
        "slug": slug,
        "placed": procs,
        "nonces": {p.name: draw(st.integers(0, 2**31 - 1)) for p in procs},
        "release_phase": (
            order(app, instance, pending, phase_slug, draw(st.floats(0, 3600))) if pending else None
        ),
        "drains": draw(st.lists(TEXT, max_size=3)),
        "rollout": Rollout(draw(st.floats(0, 600)), draw(st.integers(1, 1000))),
        "setup": draw(st.none() | TEXT),
        "teardown": draw(st.none() | TEXT),
        "lease": lease_terms(
            draw(st.sampled_from(["local", "ssh", "ec2"])), draw(st.floats(1.0, 3600.0))
        ),
    }


@settings(max_examples=300, deadline=None)
@given(slice_inputs())
def test_every_slice_meta_can_build_the_agent_can_read(inputs: dict[str, Any]) -> None:
    built = build_slice(**inputs)
    assert protocol.read_slice(wire(protocol.to_json(built))) == built
    event(f"processes: {bool(built.processes)}, release phase: {built.release_phase is not None}")
    event(f"slug: {built.slug is not None}, git: {built.git is not None}")
    event(f"fenced: {built.lease is not None}")
    # what it holds: the placed processes still wanted that the release has a command for
    types = (inputs["release"].process_types or {}) if inputs["release"] else {}
    assert [p.name for p in built.processes] == sorted(
        p.name for p in inputs["placed"] if p.desired and p.type in types
    )


# -- what does not read: one sentence, naming the field ---------------------------------------

GOOD = wire(protocol.to_json(RUNNING))
GOOD_PHASE = wire(protocol.to_json(RELEASING))["release_phase"]
GOOD_REPORT = wire(protocol.to_json(Report(VERSION, (UP,), None, None)))


def with_(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of data with the value at path (`processes.1.command`) replaced, or removed
    when value is DROP."""
    out = json.loads(json.dumps(data))
    *parents, last = path.split(".")
    node: Any = out
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    key: Any = int(last) if isinstance(node, list) else last
    if value is DROP:
        del node[key]
    else:
        node[key] = value
    return out


DROP = object()
THREE = [
    {"name": "web.1", "type": "web", "command": "a", "nonce": 0},
    {"name": "web.2", "type": "web", "command": "b", "nonce": 0},
    {"name": "web.3", "type": "web", "command": 3, "nonce": 0},
]


@pytest.mark.parametrize(
    ("data", "sentence"),
    [
        (3, "slice: expected an object, got 3"),
        (
            [GOOD],
            'slice: expected an object, got [{"version": 1, "generation": 7, "app": "demo", "in'
            "stance...",
        ),
        (None, "slice: expected an object, got null"),
        (with_(GOOD, "version", DROP), "slice.version: missing"),
        (with_(GOOD, "version", "1"), 'slice.version: expected a whole number, got "1"'),
        (with_(GOOD, "rollout", DROP), "slice.rollout: missing"),
        (with_(GOOD, "processes", THREE), "slice.processes[2].command: expected a string, got 3"),
        (
            with_(GOOD, "generation", -1),
            "slice.generation: expected a whole number of at least 0, got -1",
        ),
        (with_(GOOD, "generation", 7.0), "slice.generation: expected a whole number, got 7.0"),
        (with_(GOOD, "generation", True), "slice.generation: expected a whole number, got true"),
        (
            with_(GOOD, "processes.0.name", "web\x00.1"),
            'slice.processes[0].name: expected text without NUL, got "web\\u0000.1"',
        ),
        (
            with_(GOOD, "processes.0.name", "../../etc/passwd"),
            'slice.processes[0].name: expected a process name TYPE.N, e.g. web.1, got "../../etc/'
            'passwd"',
        ),
        (
            with_(GOOD, "processes.1.name", "web.2"),
            'slice.processes[1].name: expected a process of its type, worker.N, got "web.2"',
        ),
        (
            with_(GOOD, "processes.1", {"name": "web.1", "type": "web", "command": "", "nonce": 0}),
            'slice.processes[1].name: "web.1" is named twice',
        ),
        (
            with_(GOOD, "processes.0.type", "we b"),
            "slice.processes[0].type: expected a process type (up to 64 letters, digits, - and _)"
            ', got "we b"',
        ),
        (
            with_(GOOD, "processes.0.nonce", -2),
            "slice.processes[0].nonce: expected a whole number of at least 0, got -2",
        ),
        (with_(GOOD, "app", "Demo"), 'slice.app: expected an app name, got "Demo"'),
        (
            with_(GOOD, "env.GREETING", "a\x00b"),
            'slice.env.GREETING: expected text without NUL, got "a\\u0000b"',
        ),
        (with_(GOOD, "env.N", 1), "slice.env.N: expected a string, got 1"),
        (with_(GOOD, "env", ["A=1"]), 'slice.env: expected an object of config vars, got ["A=1"]'),
        (
            with_(GOOD, "env", {"A=B": "1"}),
            'slice.env: expected config var names without =, got "A=B"',
        ),
        (
            with_(GOOD, "slug.sha256", "../../x"),
            'slice.slug.sha256: expected 64 lowercase hex digits, got "../../x"',
        ),
        (
            with_(GOOD, "slug.url", "http://elsewhere/slug"),
            'slice.slug.url: expected a path under meta\'s URL, /..., got "http://elsewhere/slug"',
        ),
        (
            with_(GOOD, "git", {"repo": "https://x/y.git", "commit": "ab" * 20}),
            "slice.git: expected null, as slice.slug is given (one or the other)",
        ),
        (
            with_(GOOD, "release_phase", {**GOOD_PHASE, "git": None}),
            "slice.release_phase: expected a slug or a git source, exactly one of them",
        ),
        (
            with_(GOOD, "release_phase", {**GOOD_PHASE, "git": {"repo": "r", "commit": "HEAD"}}),
            "slice.release_phase.git.commit: expected a full commit id (40 or 64 lowercase hex), "
            'got "HEAD"',
        ),
        (
            with_(GOOD, "rollout.max_unavailable", 0),
            "slice.rollout.max_unavailable: expected a whole number of at least 1, got 0",
        ),
        (
            with_(GOOD, "rollout.drain_seconds", float("nan")),
            "slice.rollout.drain_seconds: expected a number of seconds, got NaN",
        ),
        (
            with_(GOOD, "rollout.drain_seconds", -1),
            "slice.rollout.drain_seconds: expected a number of seconds of at least 0, got -1",
        ),
        (with_(GOOD, "drains", "http://x"), 'slice.drains: expected an array, got "http://x"'),
        (with_(GOOD, "drains.1", None), "slice.drains[1]: expected a string, got null"),
        (with_(GOOD, "lease", DROP), "slice.lease: missing"),
        (with_(GOOD, "runs", DROP), "slice.runs: missing"),
        (
            with_(GOOD, "runs.0.name", "web.1"),
            'slice.runs[0].name: expected a process of its type, run.N, got "web.1"',
        ),
        (with_(GOOD, "runs.1.name", "run.1"), 'slice.runs[1].name: "run.1" is named twice'),
        (with_(GOOD, "runs.0.tty", 1), "slice.runs[0].tty: expected true or false, got 1"),
        (
            with_(GOOD, "runs.0.framing", "ssh"),
            'slice.runs[0].framing: expected one of gun, raw, got "ssh"',
        ),
        (
            with_(GOOD, "runs.0.term", "xterm; rm -rf /"),
            'slice.runs[0].term: expected a terminal type, got "xterm; rm -rf /"',
        ),
        (
            with_(GOOD, "runs.0.size", [80, 0]),
            "slice.runs[0].size[1]: expected a whole number of at least 1, got 0",
        ),
        (
            with_(GOOD, "runs.0.size", [80]),
            "slice.runs[0].size: expected [columns, lines], got [80]",
        ),
        (
            with_(GOOD, "rendezvous", "http://127.0.0.1:5102"),
            'slice.rendezvous: expected rendezvous://HOST:PORT, got "http://127.0.0.1:5102"',
        ),
        (with_(GOOD, "lease.margin", DROP), "slice.lease.margin: missing"),
        (
            with_(GOOD, "lease.grace", -1),
            "slice.lease.grace: expected a number of seconds of at least 0, got -1",
        ),
        (
            with_(GOOD, "lease.grace", 27.0),
            "slice.lease: expected grace + margin below the timeout, got 27 + 3 against 30",
        ),
    ],
)
def test_a_slice_that_does_not_read_is_one_sentence(data: Any, sentence: str) -> None:
    with pytest.raises(ProtocolError) as e:
        protocol.read_slice(data)
    assert (type(e.value), e.value.message) == (ProtocolError, sentence)


@pytest.mark.parametrize(
    ("data", "sentence"),
    [
        ([], "report: expected an object, got []"),
        (with_(GOOD_REPORT, "problem", DROP), "report.problem: missing"),
        (with_(GOOD_REPORT, "setup", DROP), "report.setup: missing"),
        (
            with_(GOOD_REPORT, "setup", {"state": "done", "exit_code": 0, "output": ""}),
            'report.setup.state: expected one of running, succeeded, failed, got "done"',
        ),
        (
            with_(GOOD_REPORT, "setup", {"state": "failed", "exit_code": 1.5, "output": ""}),
            "report.setup.exit_code: expected a whole number, got 1.5",
        ),
        (
            with_(GOOD_REPORT, "setup", {"state": "failed", "exit_code": 1, "output": None}),
            "report.setup.output: expected a string, got null",
        ),
        (with_(GOOD_REPORT, "processes", None), "report.processes: expected an array, got null"),
        (
            with_(GOOD_REPORT, "processes.0.state", "exploded"),
            "report.processes[0].state: expected a process state (starting, up, crashed, "
            'stopping, down), got "exploded"',
        ),
        (
            with_(GOOD_REPORT, "processes.0.since", "2031-01-31T12:00:00"),
            "report.processes[0].since: expected an ISO 8601 time with a UTC offset, got "
            '"2031-01-31T12:00:00"',
        ),
        (
            with_(GOOD_REPORT, "processes.0.since", "yesterday"),
            "report.processes[0].since: expected an ISO 8601 time with a UTC offset, got "
            '"yesterday"',
        ),
        (
            with_(GOOD_REPORT, "processes.0.port", 70000),
            "report.processes[0].port: expected a whole number of at most 65535, got 70000",
        ),
        (
            with_(GOOD_REPORT, "processes.0.pid", 2**40),
            "report.processes[0].pid: expected a whole number of at most 2147483647, got "
            "1099511627776",
        ),
        (
            with_(GOOD_REPORT, "processes.0.name", "web.1\x00"),
            'report.processes[0].name: expected text without NUL, got "web.1\\u0000"',
        ),
        (
            with_(GOOD_REPORT, "processes", [GOOD_REPORT["processes"][0]] * 2),
            'report.processes[1].name: "web.1" is named twice',
        ),
        (
            with_(GOOD_REPORT, "problem", "x" * 2001),
            "report.problem: expected at most 2000 characters, got 2001",
        ),
        (
            with_(GOOD_REPORT, "problem", "\ud800"),
            'report.problem: expected UTF-8 text, got "\\ud800"',
        ),
    ],
)
def test_a_report_that_does_not_read_is_one_sentence(data: Any, sentence: str) -> None:
    with pytest.raises(ProtocolError) as e:
        protocol.read_report(data)
    assert (type(e.value), e.value.message) == (ProtocolError, sentence)


@pytest.mark.parametrize(
    ("data", "sentence"),
    [
        ({"address": "x"}, "registration.version: missing"),
        ({"version": 1}, "registration.address: missing"),
        ({"version": 1, "address": 3}, "registration.address: expected a string, got 3"),
        (
            {"version": 1, "address": "x" * 501},
            "registration.address: expected at most 500 characters, got 501",
        ),
    ],
)
def test_a_registration_that_does_not_read_is_one_sentence(data: Any, sentence: str) -> None:
    with pytest.raises(ProtocolError) as e:
        protocol.read_registration(data)
    assert e.value.message == sentence


@pytest.mark.parametrize(
    ("ip", "read"),
    [
        (None, None),
        ("10.0.0.7", "10.0.0.7"),
        ("2001:DB8:0:0::1", "2001:db8::1"),  # normalised
        ("::ffff:10.0.0.7", "::ffff:a00:7"),
        ("fe80::1", "fe80::1"),
    ],
)
def test_the_ip_an_agent_registers(ip: str | None, read: str | None) -> None:
    got = protocol.read_registration({"version": 1, "address": None, "ip": ip})
    assert got == Registration(VERSION, None, read)


def test_a_registration_without_an_ip_is_an_older_agents() -> None:
    assert protocol.read_registration({"version": 1, "address": "/srv"}) == Registration(
        VERSION, "/srv", None
    )


@pytest.mark.parametrize(
    "ip",
    [
        "", "localhost", "10.0.0.256", "10.0.0", "010.0.0.7", " 10.0.0.7", "10.0.0.7:80",
        "10.0.0.0/8", "fe80::1%eth0", "2001:db8::1::2", "[2001:db8::1]", "x" * 501,
        7, 167772167, True, ["10.0.0.7"], {"v4": "10.0.0.7"},
    ],
)  # fmt: skip
def test_an_ip_that_is_not_one_is_one_sentence(ip: Any) -> None:
    with pytest.raises(ProtocolError) as e:
        protocol.read_registration({"version": 1, "address": None, "ip": ip})
    assert e.value.message == (
        f"registration.ip: expected an IPv4 or IPv6 address, got {show(ip)}"
        if isinstance(ip, str)
        else f"registration.ip: expected a string, got {show(ip)}"
    )


@given(st.ip_addresses())
def test_every_ip_reads_back_normalised(ip: IPv4Address | IPv6Address) -> None:
    for written in (str(ip), ip.exploded, ip.compressed.upper()):
        got = protocol.read_registration({"version": 1, "address": None, "ip": written})
        assert got.ip == str(ip)
        assert protocol.read_registration(wire(protocol.to_json(got))) == got


# -- versions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("read", "data", "sentence"),
    [
        (protocol.read_registration, {"version": 2}, protocol.refusal(2)),
        (protocol.read_report, {"version": 2, "processes": "whatever"}, protocol.refusal(2)),
        (
            protocol.read_slice,
            {"version": 2, "generation": -1},
            "meta sent a slice in protocol 2, which this agent does not speak (it speaks 1)",
        ),
        (
            protocol.read_slice,
            with_(GOOD, "version", 0),
            "meta sent a slice in protocol 0, which this agent does not speak (it speaks 1)",
        ),
    ],
)
def test_a_message_of_another_version_is_refused_as_such(
    read: Any, data: Any, sentence: str
) -> None:
    """Read first: the rest of another protocol's message may mean anything."""
    with pytest.raises(UnsupportedProtocol) as e:
        read(data)
    assert e.value.message == sentence
    assert (e.value.status, e.value.id) == (400, "unsupported_protocol")


def test_the_sentence_meta_refuses_an_agent_with() -> None:
    assert protocol.refusal(2) == "agent protocol 2 is not one meta speaks (meta speaks 1)"


@pytest.mark.parametrize(
    ("header", "sentence"),
    [
        (None, "the agent named no protocol (no Gun-Protocol header): meta speaks 1"),
        ("2", "agent protocol 2 is not one meta speaks (meta speaks 1)"),
        ("0", "agent protocol 0 is not one meta speaks (meta speaks 1)"),
        ("one", 'Gun-Protocol header "one" is not a protocol version (meta speaks 1)'),
        ("", 'Gun-Protocol header "" is not a protocol version (meta speaks 1)'),
        ("1.0", 'Gun-Protocol header "1.0" is not a protocol version (meta speaks 1)'),
    ],
)
def test_the_header_an_agent_names_its_protocol_in(header: str | None, sentence: str) -> None:
    with pytest.raises(UnsupportedProtocol) as e:
        protocol.read_header(header)
    assert e.value.message == sentence


def test_meta_hears_its_own_protocol() -> None:
    assert protocol.read_header("1") == protocol.read_header(" 1 ") == VERSION == 1


# -- fencing: which slices carry a lease, and its numbers -------------------------------------


@pytest.mark.parametrize(
    ("provider", "timeout", "terms", "keep"),
    [
        ("local", 30.0, None, None),  # gun up: on meta's machine, never fenced
        ("ssh", 30.0, Lease(30.0, 10.0, 3.0), 17.0),
        ("ec2", 30.0, Lease(30.0, 10.0, 3.0), 17.0),
        ("ssh", 6.0, Lease(6.0, 2.0, 1.0), 3.0),
        ("ssh", 1.0, Lease(1.0, 1 / 3, 0.25), 1 - 1 / 3 - 0.25),
        ("ssh", 600.0, Lease(600.0, 30.0, 5.0), 565.0),
    ],
)
def test_the_lease_of_an_instance(
    provider: str, timeout: float, terms: Lease | None, keep: float | None
) -> None:
    got = lease_terms(provider, timeout)
    assert got == terms
    if got is not None:
        assert got.keep == pytest.approx(keep)


@given(st.floats(1.0, 3600.0))
def test_every_lease_leaves_time_to_run(timeout: float) -> None:
    terms = lease_terms("ssh", timeout)
    assert terms is not None
    assert terms.keep >= timeout * 5 / 12 - 1e-9  # grace <= 1/3, margin <= 1/4
    assert terms.grace > 0 and terms.margin > 0
