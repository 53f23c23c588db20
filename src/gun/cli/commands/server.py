"""gun server meta | migrate: run the control plane, migrate its database."""

from __future__ import annotations

import click

from gun.cli import output
from gun.settings import DrainSettings, MetaSettings


@click.group("server")
def server() -> None:
    """Run parts of the platform alone."""


@server.command("meta")
@click.option("--listen", help="HOST:PORT (GUN_LISTEN; default 127.0.0.1:5100)")
@click.option("--database-url", help="sqlite:///PATH or postgresql://... (GUN_DATABASE_URL)")
@click.option("--secret-key", help="Fernet key for config vars at rest (GUN_SECRET_KEY)")
@click.option("--home", help="data directory (GUN_HOME; default ~/.local/share/gun)")
def meta(
    listen: str | None, database_url: str | None, secret_key: str | None, home: str | None
) -> None:
    """The control plane: the REST API and the store. Also read from the environment:
    GUN_ADMIN_TOKEN (the first admin token, when the store has none), GUN_DRAIN_TOKEN
    (meta keeps a drain token named drain of this value: give it to the drain as
    GUN_DRAIN_META_TOKEN) and GUN_PUBLIC_URL (meta's URL as agents on other hosts reach it;
    default: the listening address)."""
    from gun.api.serve import run

    run(
        MetaSettings.resolve(
            home=home, database_url=database_url, listen=listen, secret_key=secret_key
        )
    )


@server.command("drain")
@click.option("--listen", help="HOST:PORT (GUN_DRAIN_LISTEN; default 127.0.0.1:5101)")
@click.option("--home", help="data directory (GUN_HOME): logs/ and whisper/ go there")
def drain(listen: str | None, home: str | None) -> None:
    """The log drain: logplex in; archives, live tails and metrics out. Also read from the
    environment: GUN_META_URL, GUN_DRAIN_META_TOKEN (a drain token: meta's GUN_DRAIN_TOKEN, or
    one made with `gun tokens.create NAME role=drain`), GUN_LOG_ARCHIVE,
    GUN_LOG_RETENTION_DAYS, GUN_WHISPER_DIR (or off), GUN_STATSD (HOST:PORT),
    GUN_METRICS_RESOLUTION, GUN_METRICS_GRACE, GUN_METRICS_PREFIX, GUN_DRAIN_WORKERS (processes
    serving HTTP, their buckets merged; default 1), GUN_DRAIN_TLS_CERT and GUN_DRAIN_TLS_KEY
    (HTTPS, for Heroku's HTTPS drains), GUN_DRAIN_COMPILED (auto, on or off: the hot modules
    compiled by mypyc, when `python -m gun.compiled build` made them for these sources) and
    GUN_COMPILED_DIR (where that build is)."""
    from gun import compiled

    settings = DrainSettings.resolve(home=home, listen=listen)
    runs = compiled.use(mode=settings.compiled)  # before the drain's modules are imported
    from gun.logs.server import run

    run(settings, runs)


@server.command("migrate")
@click.option("--database-url", help="sqlite:///PATH or postgresql://... (GUN_DATABASE_URL)")
@click.option("--home", help="data directory (GUN_HOME)")
def migrate(database_url: str | None, home: str | None) -> None:
    """Bring the database's schema up to this version of gun."""
    from gun.store import migrate as m
    from gun.store.engine import make_engine

    settings = MetaSettings.resolve(home=home, database_url=database_url)
    engine = make_engine(settings.database_url)
    try:
        before, after = m.upgrade(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    if before == after:
        output.line(f"{where} is already at schema revision {after}")
    else:
        output.line(f"migrated {where} from schema revision {before or 'empty'} to {after}")


@server.command("agent")
@click.option(
    "--root",
    help="the instance's directory (GUN_AGENT_ROOT)",
    envvar="GUN_AGENT_ROOT",
    required=True,
)
@click.option(
    "--meta", "meta_url", help="meta's URL (GUN_META_URL; default from ROOT/etc/agent.json)"
)
@click.option("--instance", help="this instance's id (GUN_INSTANCE_ID)")
def agent(root: str, meta_url: str | None, instance: str | None) -> None:
    """An instance's agent: runs what meta wants on this instance."""
    from pathlib import Path

    from gun.agent.agent import main
    from gun.agent.config import AgentConfig

    main(AgentConfig.load(Path(root), meta=meta_url, instance=instance))
