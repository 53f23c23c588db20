"""The real statsd (0.9.0, Node.js) and carbon-cache (Graphite's whisper writer) for end-to-end
metric tests.

Both are installed once into the test cache (tests.tools: $GUN_TEST_CACHE, else
~/.cache/gun-tests) and reused: statsd with npm, carbon in its own venv (it pulls Twisted).
Node.js is the machine's, else the pinned wheel's (tests.tools.node_bindir).
`statsd_and_carbon(dir)` starts them on free loopback ports, statsd flushing every second into
carbon, and yields where to send and where to read; both are killed by process group
afterwards. Never skipped.

    with statsd_and_carbon(tmp_path) as (statsd_port, whisper_dir):
        StatsdOutlet("127.0.0.1", statsd_port).emit(buckets)
        found = wait_for_values(whisper_dir, {"stats.counters.gun.demo.signup.count": 1})
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NamedTuple

import whisper  # type: ignore[import-untyped]

from tests.meta import free_port
from tests.tools import cache_dir, locked, node_bindir, run

STATSD_VERSION = "0.9.0"
# carbon-cache's venv: carbon and everything it pulls in, pinned.
CARBON_PINS = (
    "carbon==1.1.10",
    "whisper==1.1.10",
    "Twisted==26.10.0",
    "txAMQP==0.8.2",
    "cachetools==8.0.2",
    "urllib3==2.8.0",
    "attrs==26.1.0",
    "Automat==25.4.16",
    "constantly==23.10.4",
    "hyperlink==21.0.0",
    "idna==3.20",
    "Incremental==24.11.0",
    "packaging==26.4",
    "six==1.17.0",
    "typing_extensions==4.16.0",
    "zope.interface==8.7",
)
RETENTIONS = "1s:1h,10s:1d,60s:30d"


class Graphite(NamedTuple):
    statsd_port: int  # UDP, on 127.0.0.1
    whisper_dir: Path  # carbon's LOCAL_DATA_DIR: stats.gauges.x -> whisper_dir/stats/gauges/x.wsp


def statsd_home() -> Path:
    """A directory with node_modules/statsd (npm install statsd@0.9.0), installed once."""
    home = cache_dir() / f"statsd-{STATSD_VERSION}"
    stamp = home / ".installed"
    with locked(home.name):
        if not stamp.exists():
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
            (home / "package.json").write_text('{"private": true}\n')
            # statsd needs only generic-pool; its optional deps (syslog) build native code.
            run(
                ["npm", "install", "--prefix", str(home), "--no-audit", "--no-fund"]
                + ["--ignore-scripts", "--omit=optional", f"statsd@{STATSD_VERSION}"],
                cwd=home,
                env=_with_node(os.environ),
            )
            stamp.touch()
    return home


def _with_node(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the directory of `node` and `npm` (tests.tools) first on PATH."""
    return {**env, "PATH": f"{node_bindir()}{os.pathsep}{env.get('PATH', os.defpath)}"}


def carbon_venv() -> Path:
    """A venv with carbon and whisper (CARBON_PINS), created once."""
    tag = hashlib.sha256("\n".join(CARBON_PINS).encode()).hexdigest()[:8]
    venv = cache_dir() / f"carbon-py{sys.version_info[0]}.{sys.version_info[1]}-{tag}"
    stamp = venv / ".installed"
    with locked(venv.name):
        if not stamp.exists():
            shutil.rmtree(venv, ignore_errors=True)
            run([sys.executable, "-m", "venv", str(venv)])
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
            run([*pip, "--disable-pip-version-check", *CARBON_PINS])
            stamp.touch()
    return venv


def _carbon_conf(root: Path, line: int, pickle: int, query: int) -> None:
    conf, storage = root / "conf", root / "storage"
    conf.mkdir(parents=True)
    (conf / "carbon.conf").write_text(
        f"""[cache]
STORAGE_DIR = {storage}/
LOCAL_DATA_DIR = {storage}/whisper/
WHITELISTS_DIR = {storage}/lists/
CONF_DIR = {conf}/
LOG_DIR = {storage}/log/
PID_DIR = {storage}/
ENABLE_LOGROTATION = False
USER =
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line}
ENABLE_UDP_LISTENER = False
UDP_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {query}
ENABLE_MANHOLE = False
MANHOLE_INTERFACE = 127.0.0.1
ENABLE_AMQP = False
ENABLE_TAGS = False
USE_FLOW_CONTROL = True
LOG_UPDATES = False
LOG_CACHE_HITS = False
CARBON_METRIC_INTERVAL = 60
"""
    )
    (conf / "storage-schemas.conf").write_text(
        f"[default]\npattern = .*\nretentions = {RETENTIONS}\n"
    )
    # As Graphite's example: statsd's counters add up, min/max keep their extremes.
    (conf / "storage-aggregation.conf").write_text(
        "[min]\npattern = \\.min$\nxFilesFactor = 0.1\naggregationMethod = min\n\n"
        "[max]\npattern = \\.max$\nxFilesFactor = 0.1\naggregationMethod = max\n\n"
        "[count]\npattern = \\.count$\nxFilesFactor = 0\naggregationMethod = sum\n\n"
        "[default]\npattern = .*\nxFilesFactor = 0.5\naggregationMethod = average\n"
    )


def _statsd_conf(path: Path, port: int, mgmt: int, carbon_line: int) -> None:
    config = {
        "port": port,
        "address": "127.0.0.1",
        "mgmt_address": "127.0.0.1",
        "mgmt_port": mgmt,
        "graphiteHost": "127.0.0.1",
        "graphitePort": carbon_line,
        "flushInterval": 1000,
        "backends": ["./backends/graphite"],
        "graphite": {"legacyNamespace": False},
        "percentThreshold": [50, 95, 99],
    }
    path.write_text(f"({json.dumps(config, indent=2)})\n")


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no output)"
    return "\n".join(text.splitlines()[-lines:])


def _wait_listening(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within 30 s:\n{_tail(log)}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, SIGKILL to whatever is left of it after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextmanager
def statsd_and_carbon(where: Path) -> Iterator[Graphite]:
    """Real carbon-cache and statsd under `where` (conf, storage, logs), on free ports."""
    home, venv = statsd_home(), carbon_venv()
    root = Path(where) / "graphite"
    line, pickle, query, mgmt = (free_port() for _ in range(4))
    port = free_port(socket.SOCK_DGRAM)
    _carbon_conf(root, line, pickle, query)
    _statsd_conf(root / "statsd.js", port, mgmt, line)
    env = {
        **os.environ,
        "GRAPHITE_ROOT": str(root),
        "GRAPHITE_CONF_DIR": str(root / "conf"),
        "GRAPHITE_STORAGE_DIR": str(root / "storage"),
    }
    started: list[subprocess.Popen[bytes]] = []
    try:
        carbon_log = root / "carbon.out"
        with open(carbon_log, "wb") as out:
            carbon = [
                str(venv / "bin" / "python"),
                str(venv / "bin" / "carbon-cache.py"),
                f"--config={root / 'conf' / 'carbon.conf'}",
                "--debug",
                "start",
            ]
            started.append(_spawn(carbon, env, root, out))
        _wait_listening(line, started[-1], "carbon-cache", carbon_log)
        statsd_log = root / "statsd.out"
        with open(statsd_log, "wb") as out:
            statsd = ["node", "node_modules/statsd/stats.js", str(root / "statsd.js")]
            started.append(_spawn(statsd, _with_node(os.environ), home, out))
        _wait_listening(mgmt, started[-1], "statsd", statsd_log)
        yield Graphite(port, root / "storage" / "whisper")
    finally:
        for proc in reversed(started):
            _stop(proc)


def _spawn(
    cmd: list[str], env: dict[str, str], cwd: Path, out: IO[bytes]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, killed as one
    )


def values(whisper_dir: Path, metric: str, since: float = 600) -> list[float]:
    """The known values of `metric` (a dotted Graphite path) in the last `since` seconds."""
    path = whisper_dir.joinpath(*metric.split("."))
    path = path.with_name(f"{path.name}.wsp")
    if not path.exists():
        return []
    try:
        fetched = whisper.fetch(str(path), time.time() - since)
    except whisper.CorruptWhisperFile:  # carbon is still writing its header
        return []
    if fetched is None:
        return []
    return [float(v) for v in fetched[1] if v is not None]


def wait_for_values(
    whisper_dir: Path, expected: Mapping[str, float], timeout: float = 30.0
) -> dict[str, list[float]]:
    """Poll until each metric has held its expected value at least once; return all values.
    On timeout, fail naming what was found and carbon's and statsd's last output."""
    deadline = time.monotonic() + timeout
    while True:
        found = {metric: values(whisper_dir, metric) for metric in expected}
        if all(want in found[m] for m, want in expected.items()):
            return found
        if time.monotonic() > deadline:
            root = whisper_dir.parents[1]
            raise AssertionError(
                f"after {timeout:.0f} s carbon's whisper files hold {found}, "
                f"expected {dict(expected)}\n--- carbon:\n{_tail(root / 'carbon.out')}\n"
                f"--- statsd:\n{_tail(root / 'statsd.out')}"
            )
        time.sleep(0.2)
