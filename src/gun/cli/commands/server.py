"""gun server meta | drain | router | migrate | agent | certs: run the platform's parts, migrate its
database, make certificates for its HTTPS."""

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
@click.option(
    "--rendezvous-listen",
    help="HOST:PORT where `gun run` attaches to one-off processes (GUN_RENDEZVOUS_LISTEN; "
    "default: none, so only run:detached works)",
)
def meta(
    listen: str | None,
    database_url: str | None,
    secret_key: str | None,
    home: str | None,
    rendezvous_listen: str | None,
) -> None:
    """The control plane: the REST API and the store. Also read from the environment:
    GUN_ADMIN_TOKEN (the first admin token, when the store has none), GUN_DRAIN_TOKEN
    (meta keeps a drain token named drain of this value: give it to the drain as
    GUN_DRAIN_META_TOKEN), GUN_PUBLIC_URL (meta's URL as agents on other hosts reach it;
    default: the listening address), GUN_TLS_CERT and GUN_TLS_KEY (serve HTTPS) and GUN_TLS_CA
    (the CA its agents pin; `gun server certs` makes one)."""
    from gun.api.serve import run

    run(
        MetaSettings.resolve(
            home=home,
            database_url=database_url,
            listen=listen,
            secret_key=secret_key,
            rendezvous_listen=rendezvous_listen,
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


@server.command("router")
@click.option("--listen", help="HOST:PORT (GUN_ROUTER_LISTEN; default 127.0.0.1:5180)")
@click.option("--meta", "meta_url", help="meta's URL (GUN_META_URL; default http://127.0.0.1:5100)")
@click.option("--home", help="data directory (GUN_HOME): the router's files go in router/")
def router(listen: str | None, meta_url: str | None, home: str | None) -> None:
    """The router: HAProxy kept in step with meta's routing table, every app at
    APP.<router domain> and its domains, Heroku's router lines to each app's drains. Also read
    from the environment: GUN_ROUTER_TOKEN (an admin token not scoped to an app),
    GUN_ROUTER_TIMEOUT (seconds an app has to start its response: H12, default 30),
    GUN_ROUTER_CHECK_INTERVAL (seconds between health checks, default 1), GUN_ROUTER_MAX_BODY
    (bytes, default 100 MiB), GUN_HAPROXY (the haproxy program), GUN_TLS_CA (meta's CA)."""
    import os
    from pathlib import Path

    from gun.errors import UsageError
    from gun.router.runner import main
    from gun.settings import gun_home, pem_certificates, router_settings

    token = os.environ.get("GUN_ROUTER_TOKEN")
    if not token:
        raise UsageError("the router needs GUN_ROUTER_TOKEN: an admin token not scoped to an app")
    settings = router_settings(Path(home).expanduser() if home else gun_home(), listen)
    meta = meta_url or os.environ.get("GUN_META_URL") or "http://127.0.0.1:5100"
    main(settings, meta, token, pem_certificates("GUN_TLS_CA"))


@server.command("certs")
@click.argument("names", nargs=-1, required=True)
@click.option("--dir", "directory", default="certs", show_default=True, help="where the files go")
def certs(names: tuple[str, ...], directory: str) -> None:
    """A CA of your own and a certificate signed by it for NAMES (host names or IP addresses
    meta and the drain are reached at), for HTTPS without a public CA: serve with
    GUN_TLS_CERT/GUN_TLS_KEY (meta) and GUN_DRAIN_TLS_CERT/GUN_DRAIN_TLS_KEY (the drain), and
    give ca.pem as GUN_TLS_CA (meta hands it to the agents, which pin it) and to `gun login
    --ca`. A CA already in --dir is kept and signs the new certificate."""
    from pathlib import Path

    from gun import certs as making

    made = making.write(Path(directory), list(names))
    what = "made" if made.ca_made else "kept"
    output.note(f"CA {what}: {made.ca} (its key beside it, 0600)")
    output.note(f"certificate for {', '.join(names)}: {made.cert} (key {made.key}, 0600)")
    output.note(
        f"meta:  GUN_TLS_CERT={made.cert} GUN_TLS_KEY={made.key} GUN_TLS_CA={made.ca}\n"
        f"drain: GUN_DRAIN_TLS_CERT={made.cert} GUN_DRAIN_TLS_KEY={made.key}\n"
        f"CLI:   gun login --api https://{names[0]}:5100 --token TOKEN --ca {made.ca}"
    )


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
