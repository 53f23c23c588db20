"""The meta API application: FastAPI with the native, seed and health routes."""

from __future__ import annotations

from fastapi import FastAPI

from gun import __version__
from gun.api import errors, routes, seed
from gun.core import Platform


def create_app(platform: Platform) -> FastAPI:
    app = FastAPI(
        title="gun meta",
        version=__version__,
        description="The gun control plane: apps, config vars, formation, releases.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.platform = platform
    errors.install(app)

    @app.get("/health", tags=["health"])
    @app.get("/v1/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(routes.router)
    app.include_router(seed.router)
    return app
