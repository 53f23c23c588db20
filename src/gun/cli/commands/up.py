"""gun up: the whole platform on this machine, in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

from gun.cli import credentials, output
from gun.settings import gun_home


@click.command("up")
@click.option("--dir", "directory", help="data directory (default GUN_HOME, ~/.local/share/gun)")
@click.option("--port", type=click.IntRange(1, 65535), default=5100, show_default=True)
@click.option(
    "--instances",
    type=click.IntRange(0, 20),
    default=2,
    show_default=True,
    help="local instances each new app gets in layer default",
)
@click.option(
    "--router-port",
    type=click.IntRange(1, 65535),
    default=5180,
    show_default=True,
    help="the router's port on 127.0.0.1: every app at http://APP.localhost:PORT/",
)
@click.option(
    "--router-tls-port",
    type=click.IntRange(1, 65535),
    default=5181,
    show_default=True,
    help="the router's HTTPS port on 127.0.0.1 (certificates of gun up's own CA)",
)
@click.option(
    "--rendezvous-port",
    type=click.IntRange(1, 65535),
    default=5102,
    show_default=True,
    help="where `gun run` and `console` attach to one-off processes, on 127.0.0.1",
)
@click.option(
    "--https",
    is_flag=True,
    help="meta serves HTTPS with a certificate of gun up's CA (DIR/tls/ca.pem), pinned by all",
)
def up(
    directory: str | None,
    port: int,
    instances: int,
    router_port: int,
    router_tls_port: int,
    rendezvous_port: int,
    https: bool,
) -> None:
    """Run the whole platform here: meta on SQLite plus local instances. Ctrl-C stops it all."""
    from gun.up import run

    def ready(url: str, token: str, ca: str | None) -> None:
        saved = credentials.save(credentials.Credentials(api=url, token=token, ca=ca))
        output.note(f"credentials for `gun` written to {saved}")

    home = Path(directory) if directory else gun_home()
    run(
        home,
        port,
        instances,
        output.note,
        ready,
        router_port,
        router_tls_port,
        rendezvous_port,
        https,
    )
