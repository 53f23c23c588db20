"""`gun server meta`: open the store, make the first admin token, serve the API with uvicorn."""

from __future__ import annotations

import gc
import logging
import ssl
import sys

import uvicorn

from gun.api.app import Door, create_app
from gun.build.slugstore import slug_store_from_url
from gun.core import Platform
from gun.core.builds import BuildOptions
from gun.core.hosts import Hosts
from gun.crypto import Box, load_or_create_key
from gun.providers.ec2 import Ec2Provider
from gun.providers.local import LocalProvider
from gun.providers.ssh_provider import SshProvider
from gun.settings import MetaSettings, parse_listen
from gun.store import Store

log = logging.getLogger("gun.meta")


def open_platform(settings: MetaSettings) -> Platform:
    slugs = slug_store_from_url(settings.slug_store, settings.home)
    box = Box(load_or_create_key(settings.home, settings.secret_key))
    hint = "gun server migrate --database-url URL"
    store = Store.open(settings.database_url, box, migrate_hint=hint)
    host, port = parse_listen(settings.listen)
    return Platform(
        store,
        slugs=slugs,
        providers={
            "local": LocalProvider(settings.home / "instances"),
            "ssh": SshProvider(Hosts(store).reach),
            "ec2": Ec2Provider(),
        },
        meta_url=settings.public_url
        or f"{settings.scheme}://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}",
        meta_ca=settings.tls_ca,
        auto_instances=settings.auto_instances,
        drain_url=settings.drain_url,
        max_processes=settings.max_processes,
        instance_timeout=settings.instance_timeout,
        router_domain=settings.router_domain,
        rendezvous=settings.rendezvous_address,
        build_options=BuildOptions(
            settings.home / "builds",
            concurrency=settings.build_concurrency,
            timeout=settings.build_timeout,
            release_timeout=settings.release_timeout,
            preboot_drain=settings.preboot_drain,
            max_unavailable=settings.max_unavailable,
            keep_slugs=settings.keep_slugs,
            slug_limits=settings.slug_limits,
        ),
    )


def rendezvous_door(settings: MetaSettings) -> Door | None:
    """Where the rendezvous listens, with its TLS (its own certificate, else meta's, else none);
    None: it does not listen."""
    if settings.rendezvous_listen is None:
        return None
    host, port = parse_listen(settings.rendezvous_listen)
    tls = None
    if (given := settings.rendezvous_tls) is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(given[0], given[1])
    return Door(host.strip("[]"), port, tls)


def run(settings: MetaSettings) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # a line per drain read otherwise (the dashboard's pages read it every second or so)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    host, port = parse_listen(settings.listen)
    platform = open_platform(settings)
    made = platform.tokens.bootstrap_admin(settings.admin_token)
    if made:
        # Printed once, at first start; only its hash is stored.
        print(f"admin token (shown once): {made}", file=sys.stderr, flush=True)
        url = f"{settings.scheme}://{host}:{port}"
        print(f"  gun login --api {url} --token {made}", file=sys.stderr, flush=True)
    if settings.drain_token:
        done = platform.tokens.ensure_drain_token(settings.drain_token)
        if done:
            print(f"GUN_DRAIN_TOKEN: {done}", file=sys.stderr, flush=True)
    print(f"meta listening on {settings.scheme}://{host}:{port}", file=sys.stderr, flush=True)
    # What is loaded by now lives as long as meta: out of the collector's sight, a full
    # collection scans only newer objects. Without this, full collections of the ~100 MB of
    # imports (40-60 ms each, about twice a second under 50 writing clients) were the p99 of
    # PATCH config-vars in bench/api.py: 65 ms, against 24 ms with it.
    gc.collect()
    gc.freeze()
    try:
        uvicorn.run(
            create_app(
                platform,
                instance_timeout=settings.instance_timeout,
                rendezvous=rendezvous_door(settings),
            ),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            # asyncio's own loop: with uvloop the p99 of GET /config_vars/show was 7x worse
            # under 50 concurrent clients (bench/api.py), at the same throughput
            loop="asyncio",
            http="httptools",
            timeout_graceful_shutdown=2,
            ssl_certfile=settings.tls_cert,
            ssl_keyfile=settings.tls_key,
        )
    finally:
        platform.store.close()
