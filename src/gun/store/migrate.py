"""Alembic, driven from code: check that a database's schema matches, and migrate it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from gun.errors import SchemaMismatch

HERE = Path(__file__).parent


def alembic_config(engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def head() -> str:
    return str(ScriptDirectory.from_config(alembic_config()).get_current_head())


def current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate to the newest schema; returns (from, to) revisions."""
    before = current(engine)
    command.upgrade(alembic_config(engine), "head")
    return before, head()


def ensure(engine: Engine, migrate_hint: str) -> None:
    """Initialise an empty database; refuse one whose schema differs from this code's."""
    rev = current(engine)
    want = head()
    if rev == want:
        return
    if rev is None and not inspect(engine).get_table_names():
        upgrade(engine)
        return
    where = engine.url.render_as_string(hide_password=True)
    have = rev or "none (tables made by something else)"
    raise SchemaMismatch(
        f"the database {where} has schema revision {have} but this gun needs {want}: "
        f"run `{migrate_hint}` to migrate it"
    )
