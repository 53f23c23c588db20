"""Fixtures: stores on SQLite and PostgreSQL, a Platform, a real meta server, the real CLI."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from cryptography.fernet import Fernet
from hypothesis import settings

from gun.core import Platform
from gun.crypto import Box
from gun.model import Principal
from gun.store import Store
from gun.store.engine import make_engine
from gun.store.migrate import upgrade
from tests import fakes, leaks, pg
from tests.meta import MetaServer, free_port

pytest_plugins = [
    "tests.appusers",  # temp dirs app users can reach; no user left
    "tests.hosts.plugin",  # test hosts for fleet tests: tests/hosts/README.md
]

STORES = ["sqlite", "postgresql"]

# Parsers are cheap: look harder than hypothesis's default 100 examples.
settings.register_profile("gun", max_examples=400, deadline=None)
settings.load_profile("gun")


def _with_db(url: str, db: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{db}"


class PgDatabases:
    """Makes fresh databases on one server, each a copy of a migrated template."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.made: list[str] = []
        self.template = self._create(f"gun_tpl_{uuid.uuid4().hex[:10]}", None)
        engine = make_engine(_with_db(url, self.template))
        upgrade(engine)
        engine.dispose()

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url, autocommit=True)

    def _create(self, name: str, template: str | None) -> str:
        with self._admin() as c:
            tpl = f" TEMPLATE {template}" if template else ""
            c.execute(f"CREATE DATABASE {name}{tpl}")  # type: ignore[arg-type]
        self.made.append(name)
        return name

    def fresh(self) -> str:
        return _with_db(self.url, self._create(f"gun_t_{uuid.uuid4().hex[:12]}", self.template))

    def drop_all(self) -> None:
        with self._admin() as c:
            for name in reversed(self.made):
                c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    with pg.server() as url:
        dbs = PgDatabases(url)
        try:
            yield dbs
        finally:
            dbs.drop_all()


@pytest.fixture(params=STORES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    dbs: PgDatabases = request.getfixturevalue("pg_databases")
    return dbs.fresh()


@pytest.fixture
def box() -> Box:
    return Box(Fernet.generate_key())


@pytest.fixture
def store(database_url: str, box: Box) -> Iterator[Store]:
    s = Store.open(database_url, box)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def platform(store: Store) -> Platform:
    return Platform(store, host_checker=fakes.host_facts)  # ssh goes nowhere from here


@pytest.fixture
def admin(platform: Platform) -> Principal:
    token = platform.tokens.bootstrap_admin(None)
    assert token is not None
    return platform.tokens.authenticate(token)


@pytest.fixture
def meta(database_url: str, tmp_path: Path) -> Iterator[MetaServer]:
    server = MetaServer(tmp_path / "home", database_url, admin_token="gun_test_admin_token")
    try:
        server.start()
        yield server
    finally:
        server.stop()


def module_meta(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, **extra_env: str
) -> Iterator[MetaServer]:
    """One meta server for a module on the store of `request.param`, with these settings."""
    home = tmp_path_factory.mktemp("meta")
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'meta.db'}"
    else:
        url = request.getfixturevalue("pg_databases").fresh()
    server = MetaServer(home, url, admin_token="gun_test_admin_token")
    server.extra_env = dict(extra_env)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module", params=STORES)
def shared_meta(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MetaServer]:
    """One meta server per test module and store, for tests that each use their own app."""
    yield from module_meta(request, tmp_path_factory)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the developer's own credentials or GUN_* settings."""
    for key in list(os.environ):
        if key.startswith("GUN_") and not key.startswith("GUN_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("GUN_HOME", str(tmp_path / "home"))


# S3: moto_server stands in for it, since AWS is unreachable from these machines -------------

MOTO_SERVER = Path(sys.executable).parent / "moto_server"


@contextlib.contextmanager
def moto_server(log: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """A real moto_server on 127.0.0.1 (with `env` added to its environment), run in its own
    process group and stopped on the way out; its endpoint URL."""
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited {proc.returncode}: {log.read_text()}")
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not answer: {log.read_text()}") from None
                time.sleep(0.05)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright (tests/browser.py), one per test module."""
    from tests import browser

    with browser.chromium() as b:
        yield b


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint URL of a real moto_server, run in its own process group."""
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        yield url


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials, and none of the developer's own AWS settings or files."""
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@pytest.fixture
def bucket(moto: str, aws_env: None) -> tuple[Any, str]:
    """A client for moto and a fresh, empty bucket."""
    import boto3  # type: ignore[import-untyped]

    client = boto3.client("s3", endpoint_url=moto, region_name="us-east-1")
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return client, name


# what the session leaves -------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _nothing_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The session's temp dir is TMPDIR for the whole run; at the end nothing that names it or
    the basetemp is left: processes, listening ports, cgroups, Unix users, temp files
    (tests/leaks.py). Another gun running on the machine is none of these."""
    basetemp = tmp_path_factory.getbasetemp()
    tmp = Path(tempfile.mkdtemp(prefix="gun-tests-"))
    tmp.chmod(0o711)  # tests.pg's server user reaches its directory in it
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TMPDIR", str(tmp))
        mp.setattr(tempfile, "tempdir", str(tmp))
        yield
    found = leaks.left(leaks.Made(basetemp, tmp))
    shutil.rmtree(tmp, ignore_errors=True)
    assert not found, "the tests left behind:\n" + "\n".join(found)
