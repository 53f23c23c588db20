"""Alembic builds exactly the schema the code declares; meta refuses any other one."""

from __future__ import annotations

import subprocess
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from gun.store import Store
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
    assert "has schema revision 0000 but this gun needs 0001" in meta.stderr
    assert "run `gun server migrate --database-url URL` to migrate it" in meta.stderr
    assert "Traceback" not in meta.stderr

    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('0001')"))
    done = subprocess.run(
        [*GUN, "server", "migrate", "--database-url", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("is already at schema revision 0001\n")
