"""Alembic builds exactly the schema the code declares; meta refuses any other one."""

from __future__ import annotations

import subprocess
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from gun.store import Store
from gun.store.migrate import alembic_config, head
from gun.store.schema import metadata
from tests.meta import GUN


def test_migrations_match_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_meta_refuses_a_foreign_schema_and_names_the_migrate_command(
    store: Store, tmp_path: Path
) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))
    env = {"PATH": "/usr/bin:/bin", "GUN_HOME": str(tmp_path)}
    meta = subprocess.run(
        [*GUN, "server", "meta", "--database-url", url, "--listen", "127.0.0.1:1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert meta.returncode == 1
    assert f"has schema revision 0000 but this gun needs {head()}" in meta.stderr
    assert "run `gun server migrate --database-url URL` to migrate it" in meta.stderr
    assert "Traceback" not in meta.stderr


def test_migrate_upgrades_a_store_of_the_first_schema(store: Store, tmp_path: Path) -> None:
    url = store.engine.url.render_as_string(hide_password=False)
    command.downgrade(alembic_config(store.engine), "0001")  # a store as the first gun left it
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) != []
    env = {"PATH": "/usr/bin:/bin", "GUN_HOME": str(tmp_path)}
    done = subprocess.run(
        [*GUN, "server", "migrate", "--database-url", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(f"from schema revision 0001 to {head()}\n")
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    again = subprocess.run(
        [*GUN, "server", "migrate", "--database-url", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert again.stdout.endswith(f"is already at schema revision {head()}\n")
