"""The Heroku Platform API, the subset the stock `heroku` CLI and heroku3 use (issue 15;
REFERENCE.md §6), served at the API's root beside gun's own `/v1`, from the same Platform
methods: no rule of gun's has a second implementation here, only Heroku's names and shapes.
docs/heroku.md says how to point the clients at gun."""

from __future__ import annotations

from fastapi import APIRouter

from gun.api.heroku import apps, builds, config, domains, dynos, logs, sources
from gun.api.heroku.common import HerokuHeaders

routers: list[APIRouter] = [
    apps.router,
    config.router,
    dynos.router,
    builds.router,
    sources.router,
    logs.router,
    domains.router,
]

__all__ = ["HerokuHeaders", "routers"]
