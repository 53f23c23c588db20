"""The HTTP API: native /v1 routes, the seed's paths, one error mapper."""

from gun.api.app import create_app

__all__ = ["create_app"]
